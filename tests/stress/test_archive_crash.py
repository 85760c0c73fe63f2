"""Stress: the archive's store against kill -9, and two archive processes sharing one
PostgreSQL index.

Crash safety: a child process stores generated instances in a loop, writing each SOP
Instance UID to a report file once ``Archive.store`` returned Success; the test kills it
with SIGKILL at a random point, restarts it (it reconciles at start), kills it again,
and so on. Afterwards index and files must agree: every instance reported stored is
indexed with its file, every indexed instance has its file, every file under the
archive is indexed, and no journal entry is left.

Sharing: two processes store into their own directories through one PostgreSQL index,
then each waits until it sees all the instances of both, and queries them.

This file is also the child process: ``python test_archive_crash.py URL ROOT SPOOL
REPORT COUNT EXPECT`` (COUNT 0: until killed; EXPECT: total to wait for, 0: none).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


# -- the child process ------------------------------------------------------------------


def child(
    url: str, root: Path, spool_dir: Path, report: Path, count: int, expect: int, hold: bool
) -> int:
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    from dicomnet.archive import Archive, open_index

    index = open_index(url)
    archive = Archive(root, index)
    print(f"reconciled: {archive.reconcile()}", flush=True)
    spool_dir.mkdir(parents=True, exist_ok=True)
    study = series = generate_uid()
    stored = 0
    with report.open("a") as out:
        if hold:  # the first store stops with its file in place, its rows not committed

            def moved_and_held(stores: list[tuple[object, object]]) -> None:
                for entry, _record in stores:
                    _line(out, f"moved {entry.sop_instance_uid}")  # type: ignore[attr-defined]
                sys.stdin.read()  # the test kills the process here

            archive.index.journal_commit = moved_and_held  # type: ignore[method-assign,assignment]
        while count == 0 or stored < count:
            if stored % 5 == 0:
                study, series = generate_uid(), generate_uid()
            ds = Dataset()
            ds.SOPClassUID = CTImageStorage
            ds.SOPInstanceUID = generate_uid()
            ds.PatientID = f"PID{os.getpid() % 7}"
            ds.PatientName = "CRASH^TEST"
            ds.StudyInstanceUID = study
            ds.SeriesInstanceUID = series
            ds.Modality = "CT"
            ds.add_new("PixelData", "OB", os.urandom(64 * 1024))  # data to write and fsync
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            spooled = spool_dir / f"dicomnet-{ds.SOPInstanceUID[-16:]}.part"
            ds.save_as(spooled, enforce_file_format=True)
            _line(out, f"storing {ds.SOPInstanceUID}")  # the test kills on seeing this
            outcome = archive.store(spooled, CTImageStorage, ds.SOPInstanceUID)
            if outcome.status != 0:
                print(f"store failed: {outcome}", flush=True)
                return 1
            _line(out, f"stored {ds.SOPInstanceUID}")
            stored += 1
    if expect:
        deadline = time.monotonic() + 60
        while index.count() < expect and time.monotonic() < deadline:
            time.sleep(0.05)  # polling another process's commits, with a deadline
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.SOPInstanceUID = ""
        print(f"sees {len(list(index.find('IMAGE', identifier)))}", flush=True)
    index.close()
    return 0


def _line(out: TextIO, text: str) -> None:
    out.write(f"{text}\n")
    out.flush()
    os.fsync(out.fileno())


# -- the tests --------------------------------------------------------------------------


def start_child(*arguments: object, hold: bool = False) -> subprocess.Popen[str]:
    """The child process; with ``hold``, its first store stops between moving its file
    into place and committing its rows (it reads its stdin, which the test never
    writes), where the test kills it."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, __file__, *map(str, arguments), str(int(hold))],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def reported(report: Path, what: str = "stored") -> list[str]:
    """The SOP Instance UIDs the report says are ``what`` ("stored", or "storing": a
    store begun)."""
    if not report.exists():
        return []
    lines = (line.split() for line in report.read_text().splitlines())
    return [parts[1] for parts in lines if len(parts) == 2 and parts[0] == what]


def wait_for_stores(report: Path, count: int, process: subprocess.Popen[str]) -> None:
    """Wait until the child began its ``count``-th store, so a kill lands in a store."""
    from polling import wait_until  # this file also runs as the child, without tests/

    def begun() -> bool:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the storing process ended ({process.returncode}): {output}")
        return len(reported(report, "storing")) >= count

    wait_until(begun, 120, f"the storing process to report {count} stores")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    from postgres_cluster import index_url

    return index_url(request, request.param, tmp_path)


def wait_for_held_store(report: Path, moved: int, process: subprocess.Popen[str]) -> None:
    """Wait until the child (started with ``hold``) reports the file of its held store
    in place: the kill then lands between that and the commit of its rows."""
    from polling import wait_until  # this file also runs as the child, without tests/

    def held() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the storing process ended ({process.returncode})")
        return len(reported(report, "moved")) > moved

    wait_until(held, 120, "the storing process to hold a store")


def test_kill_9_during_stores_leaves_index_and_files_in_agreement(url: str, tmp_path: Path) -> None:
    from dicomnet.archive import Archive, open_index

    root, spool_dir, report = tmp_path / "archive", tmp_path / "spool", tmp_path / "report"
    chooser = random.Random(os.getpid())
    outputs = []
    for round_number in range(10):
        held = bool(round_number % 2)  # every other kill right inside a journaled store
        process = start_child(url, root, spool_dir, report, 0, 0, hold=held)
        if held:
            wait_for_held_store(report, len(reported(report, "moved")), process)
        else:
            begun = len(reported(report, "storing"))
            wait_for_stores(report, begun + chooser.randint(1, 8), process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        if process.stdout:
            outputs.append(process.stdout.read())
            process.stdout.close()

    index = open_index(url)
    try:
        outputs.append(f"reconciled: {Archive(root, index).reconcile()}")
        # each restart after a held store found its file in place and indexed it
        for output in outputs[2::2]:
            assert "reconciled: 1 indexed" in output, outputs
        stored = reported(report)
        assert len(stored) >= 10
        for uid in stored:
            path = index.instance(uid)
            assert path is not None and Path(path).is_file(), uid
        indexed = set(index.files("PATIENT", _all_patients()))
        assert all(Path(path).is_file() for path in indexed)
        kept = {str(path) for path in root.rglob("*") if path.is_file()}
        assert kept == indexed  # no file the index does not know
        assert index.journal_entries(str(root.absolute())) == []
    finally:
        index.close()


def _all_patients() -> object:
    from pydicom import Dataset

    identifier = Dataset()
    identifier.QueryRetrieveLevel = "PATIENT"
    return identifier


def test_two_archives_share_one_postgresql_index(postgres_cluster: object, tmp_path: Path) -> None:
    url = postgres_cluster.new_database()  # type: ignore[attr-defined]
    from dicomnet.archive import open_index

    open_index(url).close()  # the schema, before two processes race to it
    count = 20
    processes = [
        start_child(
            url,
            tmp_path / name,
            tmp_path / f"spool-{name}",
            tmp_path / f"report-{name}",
            count,
            2 * count,
        )
        for name in ("a", "b")
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    for output in outputs:
        assert f"sees {2 * count}" in output, output
    index = open_index(url)
    try:
        files = index.files("PATIENT", _all_patients())
        assert len(files) == 2 * count
        assert {Path(f).parts[-4] for f in files} == {"a", "b"}  # both roots
    finally:
        index.close()


if __name__ == "__main__":
    url_, root_, spool_, report_, count_, expect_, hold_ = sys.argv[1:]
    sys.exit(
        child(
            url_, Path(root_), Path(spool_), Path(report_), int(count_), int(expect_), hold_ == "1"
        )
    )
