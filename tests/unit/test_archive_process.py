"""dicomnet.archive.StoreProcess: stores go into the archive in a process of their own
and are answered on the loop thread; the store process reconciles at start, forwards
its log, is replaced when it dies (its stores answered A700), and ends with the archive.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from polling import wait_until
from pydicom.uid import CTImageStorage
from test_archive_store import data_set, spool

from dicomnet import CANNOT_UNDERSTAND, DicomCommandStatusType, DicomNet
from dicomnet.archive import (
    Received,
    StoreOutcome,
    StoreProcess,
    StoreProcessFailed,
    StoreSettings,
    open_index,
)
from dicomnet.archive.index import JournalEntry
from dicomnet.loop import VirtualClock

WAIT = 30.0
SUCCESS = DicomCommandStatusType.Success
OUT_OF_RESOURCES = DicomCommandStatusType.RefusedOutOfResources
DATA_SET_DOES_NOT_MATCH = 0xA900


@pytest.fixture
def engine() -> Iterator[None]:
    DicomNet.Startup()
    yield
    DicomNet.Shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(tmp_path / "archive", f"sqlite:///{tmp_path / 'index.db'}")


@pytest.fixture
def stores(settings: StoreSettings, engine: None) -> Iterator[StoreProcess]:
    stores = StoreProcess(settings)
    yield stores
    stores.close()


class Answers:
    """The outcomes answered, by SOP Instance UID, and the threads they came on."""

    def __init__(self) -> None:
        self.outcomes: dict[str, StoreOutcome] = {}
        self.threads: set[str] = set()
        self.changed = threading.Condition()

    def done_for(self, uid: str) -> Callable[[StoreOutcome], None]:
        def done(outcome: StoreOutcome) -> None:
            with self.changed:
                self.outcomes[uid] = outcome
                self.threads.add(threading.current_thread().name)
                self.changed.notify_all()

        return done

    def wait_for(self, count: int) -> dict[str, StoreOutcome]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.outcomes) >= count, WAIT)
            return dict(self.outcomes)


def submit(stores: StoreProcess, directory: Path, answers: Answers, command_uid: str = "") -> str:
    """Spool a new instance into ``directory`` and submit it (under ``command_uid`` as
    the command's SOP Instance UID, when given); its UID."""
    directory.mkdir(exist_ok=True)
    ds = data_set()
    uid = str(ds.SOPInstanceUID)
    path = spool(directory, ds)
    stores.submit(Received(path, CTImageStorage, command_uid or uid), answers.done_for(uid))
    return uid


def test_stores_are_kept_and_indexed_by_another_process_and_answered_on_the_loop_thread(
    stores: StoreProcess, settings: StoreSettings, tmp_path: Path
) -> None:
    answers = Answers()
    uids = [submit(stores, tmp_path / "spool", answers) for _ in range(5)]
    outcomes = answers.wait_for(5)
    assert stores.pid is not None and stores.pid != os.getpid()
    assert {uid: outcomes[uid].status for uid in uids} == dict.fromkeys(uids, SUCCESS)
    assert answers.threads == {"dicomnet-loop"}
    index = open_index(settings.index_url)
    try:
        for uid in uids:
            path = outcomes[uid].path
            assert path is not None and path.is_file()
            assert index.instance(uid) == str(path)
    finally:
        index.close()
    assert list((tmp_path / "spool").iterdir()) == []


def test_close_stores_and_answers_everything_submitted_then_ends_the_process(
    settings: StoreSettings, engine: None, tmp_path: Path
) -> None:
    stores = StoreProcess(settings)
    pid = stores.pid
    answers = Answers()
    uids = [submit(stores, tmp_path / "spool", answers) for _ in range(20)]
    stores.close()
    assert {uid: answers.outcomes[uid].status for uid in uids} == dict.fromkeys(uids, SUCCESS)
    assert stores.pid is None
    assert pid is not None and not Path(f"/proc/{pid}").exists()  # reaped
    late = Answers()
    uid = submit(stores, tmp_path / "spool", late)
    assert late.outcomes[uid].status == OUT_OF_RESOURCES
    assert "closing" in late.outcomes[uid].comment


def test_the_store_process_log_lines_reach_the_archive_log(
    stores: StoreProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answers = Answers()
    with caplog.at_level(logging.WARNING, logger="dicomnet.archive"):
        uid = submit(stores, tmp_path / "spool", answers, command_uid="1.2.999")
        outcome = answers.wait_for(1)[uid]
    assert outcome.status == DATA_SET_DOES_NOT_MATCH
    assert any(
        r.name == "dicomnet.archive" and r.levelno == logging.WARNING and uid in r.getMessage()
        for r in caplog.records
    )


def test_a_store_process_that_dies_has_its_stores_answered_a700_and_is_replaced(
    stores: StoreProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = stores.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)  # it takes nothing more until it is killed
    answers = Answers()
    held = [submit(stores, tmp_path / "held", answers) for _ in range(3)]
    with caplog.at_level(logging.ERROR, logger="dicomnet.archive"):
        os.kill(first, signal.SIGKILL)
        outcomes = answers.wait_for(3)
    assert any("killed by signal 9" in r.getMessage() for r in caplog.records)
    for uid in held:
        assert outcomes[uid].status == OUT_OF_RESOURCES
        assert "store process ended" in outcomes[uid].comment
    assert list((tmp_path / "held").iterdir()) == []  # nothing left in transit
    uid = submit(stores, tmp_path / "spool", answers)
    assert answers.wait_for(4)[uid].status == SUCCESS
    assert stores.pid not in (None, first)


def test_the_store_process_reconciles_what_a_dead_one_left_before_storing(
    settings: StoreSettings, engine: None, tmp_path: Path
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ds = data_set()
    final = settings.root / "kept.dcm"
    settings.root.mkdir(parents=True)
    spool(settings.root, ds).rename(final)  # moved into place, the commit never came
    index = open_index(settings.index_url)
    try:
        owner = f"{socket.gethostname()}:{dead.pid}"
        index.journal_add(
            [
                JournalEntry(
                    ds.SOPInstanceUID,
                    str(final),
                    str(tmp_path / "gone.part"),
                    None,
                    str(settings.root),
                    owner,
                )
            ]
        )
        stores = StoreProcess(settings)
        stores.close()
        assert stores.report.indexed == [str(final)]
        assert index.instance(ds.SOPInstanceUID) == str(final)
    finally:
        index.close()


def test_a_store_process_that_cannot_open_its_index_fails_to_start_saying_why(
    tmp_path: Path, engine: None
) -> None:
    with pytest.raises(StoreProcessFailed, match="cannot open the index: 'mysql://db/pacs'"):
        StoreProcess(StoreSettings(tmp_path / "archive", "mysql://db/pacs"))


ARCHIVE_SCRIPT = """
import sys
from pathlib import Path
from dicomnet import DicomNet
from dicomnet.archive import StoreProcess, StoreSettings
DicomNet.Startup()
stores = StoreProcess(StoreSettings(Path(sys.argv[1]), sys.argv[2]))
print(stores.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_the_store_process_ends_when_the_archive_is_killed(settings: StoreSettings) -> None:
    archive = subprocess.Popen(
        [sys.executable, "-c", ARCHIVE_SCRIPT, str(settings.root), settings.index_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert archive.stdout is not None
    worker = int(archive.stdout.readline())
    archive.kill()
    archive.wait()
    # the store process is the killed archive's child: polled, it is another process
    wait_until(lambda: not _alive(worker), WAIT, "the store process to end")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended, its parent gone before reaping it


def test_stores_wait_in_the_archive_while_the_store_process_takes_no_more(
    stores: StoreProcess, tmp_path: Path
) -> None:
    pid = stores.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # its socket fills up: the rest waits on the archive's side
    answers = Answers()
    count = 4000  # about 1 MB of requests, several times what a socket pair buffers
    try:
        for number in range(count):
            missing = tmp_path / f"never-spooled-{number}.part"
            stores.submit(
                Received(missing, CTImageStorage, f"1.2.3.{number}"), answers.done_for(str(number))
            )
    finally:
        os.kill(pid, signal.SIGCONT)
    outcomes = answers.wait_for(count)
    assert {outcome.status for outcome in outcomes.values()} == {CANNOT_UNDERSTAND}
    assert stores.pid == pid  # nothing was lost on the way: the same process answered all


def pump_until(check: Callable[[], bool], what: str) -> None:
    """Run the manually pumped loop until ``check()`` holds (events from the store
    process arrive on its socket)."""
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"no {what}"
        DicomNet.pump(0.05)


def test_a_store_process_dying_at_start_is_retried_after_the_restart_delay(
    settings: StoreSettings, tmp_path: Path
) -> None:
    clock = VirtualClock(jump=False)
    DicomNet.Startup(threaded=False, clock=clock)
    try:
        stores = StoreProcess(settings, restart_delay=5.0)
        first = stores.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        pump_until(lambda: stores.pid not in (None, first), "replacement")  # at once: it had run
        second = stores.pid
        assert second is not None
        os.kill(second, signal.SIGKILL)  # before it is ready
        pump_until(lambda: stores.pid is None, "notice of the failed start")
        answers = Answers()
        down = submit(stores, tmp_path / "spool", answers)
        assert answers.outcomes[down].status == OUT_OF_RESOURCES  # none runs: answered at once
        assert "down" in answers.outcomes[down].comment
        DicomNet.pump(0)
        assert stores.pid is None  # the delay has not passed
        clock.advance(5.0)
        pump_until(lambda: stores.pid is not None, "retry after the delay")
        stored = submit(stores, tmp_path / "spool", answers)
        pump_until(lambda: stored in answers.outcomes, "answer")
        assert answers.outcomes[stored].status == SUCCESS
        stores.close()
    finally:
        DicomNet.Shutdown()
