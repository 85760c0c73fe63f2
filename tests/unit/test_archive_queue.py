"""dicomnet.archive.StoreQueue: stores handed over from any thread are stored on the
queue's own thread, those that wait together in one batch, each answered with its own
outcome; a failing answer or a failing archive stops nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage
from test_archive_store import data_set, spool

from dicomnet.archive import Archive, Received, StoreOutcome, StoreQueue, open_index

WAIT = 10.0


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    index = open_index(f"sqlite:///{tmp_path / 'index.db'}")
    yield Archive(tmp_path / "archive", index)
    index.close()


def received(directory: Path) -> Received:
    directory.mkdir(exist_ok=True)
    ds = data_set()
    return Received(spool(directory, ds), CTImageStorage, ds.SOPInstanceUID)


class Answers:
    """The outcomes ``done`` got, by SOP Instance UID, and the threads it ran on."""

    def __init__(self, expected: int) -> None:
        self.outcomes: dict[str, StoreOutcome] = {}
        self.threads: set[str] = set()
        self.expected = expected
        self.all_in = threading.Event()

    def done(self, uid: str, outcome: StoreOutcome) -> None:
        self.outcomes[uid] = outcome
        self.threads.add(threading.current_thread().name)
        if len(self.outcomes) == self.expected:
            self.all_in.set()


def test_stores_submitted_together_are_stored_in_batches_and_each_answered(
    archive: Archive, tmp_path: Path
) -> None:
    batches: list[int] = []
    real_store_many = archive.store_many
    release = threading.Event()

    def store_many(items: list[Received]) -> list[StoreOutcome]:
        release.wait(WAIT)  # the first batch waits until all are queued
        batches.append(len(items))
        return real_store_many(items)

    archive.store_many = store_many  # type: ignore[method-assign]
    queue = StoreQueue(archive, max_batch=4)
    items = [received(tmp_path / "spool") for _ in range(9)]
    answers = Answers(len(items))
    for item in items:
        queue.submit(item, lambda outcome, uid=item.sop_instance: answers.done(uid, outcome))
    release.set()
    assert answers.all_in.wait(WAIT)
    queue.close()
    assert {uid: o.status for uid, o in answers.outcomes.items()} == {
        item.sop_instance: 0 for item in items
    }
    # while the first batch was stored the others waited, and went in batches of 4
    assert sum(batches) == 9 and batches[1] == 4 and max(batches) == 4
    assert answers.threads == {"dicomnet-archive"}
    assert archive.index.count() == 9


def test_a_failing_answer_or_archive_does_not_stop_the_queue(
    archive: Archive, tmp_path: Path
) -> None:
    def broken_answer(outcome: StoreOutcome) -> None:
        raise RuntimeError("the association ended")

    queue = StoreQueue(archive)
    statuses: list[int] = []
    queue.submit(received(tmp_path / "spool"), broken_answer)
    queue.submit(received(tmp_path / "spool"), lambda outcome: statuses.append(outcome.status))
    queue.close()
    assert statuses == [0]  # answered after the answer before it failed

    def failing(items: list[Received]) -> list[StoreOutcome]:
        raise RuntimeError("a bug")

    archive.store_many = failing  # type: ignore[method-assign]
    queue = StoreQueue(archive)
    queue.submit(received(tmp_path / "spool"), lambda outcome: statuses.append(outcome.status))
    queue.submit(received(tmp_path / "spool"), lambda outcome: statuses.append(outcome.status))
    queue.close()
    assert statuses == [0, 0x0110, 0x0110]  # every requestor still gets an answer


def test_close_stores_what_was_submitted(archive: Archive, tmp_path: Path) -> None:
    queue = StoreQueue(archive)
    items = [received(tmp_path / "spool") for _ in range(5)]
    statuses: list[int] = []
    for item in items:
        queue.submit(item, lambda outcome: statuses.append(outcome.status))
    queue.close()  # returns once every submitted store is done and answered
    assert statuses == [0] * 5 and archive.index.count() == 5


def test_a_batch_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        StoreQueue(None, max_batch=0)  # type: ignore[arg-type]
