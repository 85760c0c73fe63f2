"""``StoreQueue``: an archive's stores on one thread of their own, in batches.

An SCP's callback must not block, so it hands each received instance over to be stored
elsewhere. Worker threads that store one instance each make every store pay for its own
two transactions, and on a busy SCP the threads fight over the interpreter lock and the
database's write lock (stores of one database are serialised there anyway). One thread
that takes everything that arrived while it stored the last batch (``Archive.store_many``)
commits a batch in the time of one store: the more requestors or outstanding C-STOREs,
the larger the batches. A store still waits for nothing but the database, never for a
requestor, so one slow client does not slow the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from ..enums import DicomCommandStatusType
from .store import Archive, Received, StoreOutcome

log = logging.getLogger("dicomnet.archive")

Done = Callable[[StoreOutcome], None]
"""Called with a store's outcome (it may ``Send*`` the answer): on the queue's thread, or
on the loop thread for a ``StoreProcess``."""

_STOP = None


class StoreQueue:
    """Stores handed over with ``submit`` (from any thread) go into ``archive``, at
    most ``max_batch`` in one ``store_many``; ``close`` stores what is queued and ends
    the thread."""

    def __init__(self, archive: Archive, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"a batch holds at least one store, not {max_batch}")
        self.archive = archive
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Received, Done] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dicomnet-archive", daemon=True)
        self._thread.start()

    def submit(self, received: Received, done: Done) -> None:
        """Store ``received``; ``done(outcome)`` follows on the queue's thread."""
        self._queue.put((received, done))

    def close(self) -> None:
        """Store what was submitted, then end the thread (waits for it)."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            if batch:
                self._store(batch)

    def _next_batch(self) -> tuple[list[tuple[Received, Done]], bool]:
        """The stores waiting (at least one: blocks for it, unless told to stop), at most
        ``max_batch``; and whether ``close`` asked to stop after them."""
        batch: list[tuple[Received, Done]] = []
        item = self._queue.get()
        while len(batch) < self.max_batch:
            if item is _STOP:
                return batch, True
            batch.append(item)
            if len(batch) == self.max_batch:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return batch, False

    def _store(self, batch: list[tuple[Received, Done]]) -> None:
        outcomes = store_all(self.archive, [received for received, _ in batch])
        for (received, done), outcome in zip(batch, outcomes, strict=True):
            answer(received, done, outcome)


def store_all(archive: Archive, received: list[Received]) -> list[StoreOutcome]:
    """``archive.store_many(received)``; should it raise (a bug), every store is
    answered Processing Failure, so that every requestor gets an answer."""
    try:
        return archive.store_many(received)
    except Exception:
        log.exception("cannot store %d instance(s)", len(received))
        return [StoreOutcome(DicomCommandStatusType.ProcessingFailure)] * len(received)


def answer(received: Received, done: Done, outcome: StoreOutcome) -> None:
    """``done(outcome)``; an error it raises (the association ended meanwhile) is logged."""
    try:
        done(outcome)
    except Exception:
        log.exception("cannot answer the store of %s", received.sop_instance)
