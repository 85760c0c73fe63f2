"""``StoreProcess``: an archive's stores in a process of their own, answered on the
network loop.

Storing costs CPU (reading the header, building the rows, the database): in the SCP's
process it holds the interpreter lock against the loop that receives the next
instances, and the two threads hand the lock back and forth on every system call. In a
process of its own (``worker.py``) it runs beside the loop, on another core. The loop
hands each received instance over through a socket pair and reads the outcomes from it
like from any connection, so a C-STORE response is sent from the loop thread, as every
other response.

The store process is the archive's: it reconciles at start (``report``); it stops when
``close`` has handed over every store. If it dies, the stores it held are answered
A700 (their spool files deleted; a store it had journaled is resolved by the next one's
reconcile), and a new one is started, at most one per ``restart_delay`` when it keeps
failing to start; while none runs, a store is answered A700 at once.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .. import runtime
from ..enums import DicomCommandStatusType
from ..loop import EventLoop, TimerHandle
from .config import DEFAULT_CONFIG, IndexConfig
from .frames import FrameReader, Logged, Ready, Request, Results, StartFailed, frame
from .queue import Done, answer
from .store import DuplicatePolicy, Received, ReconcileReport, StoreOutcome, unlink_or_log

log = logging.getLogger("dicomnet.archive")

_READ_SIZE = 1 << 16
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where ``dicomnet`` is found


class StoreProcessFailed(RuntimeError):
    """The store process could not start (its index could not be opened, or it died)."""


@dataclass(frozen=True)
class StoreSettings:
    """The archive a store process stores into: ``root`` (absolute), the index at
    ``index_url`` with ``index_config``, the duplicate ``policy``, ``power_loss_safe``
    (see ``Archive``); at most ``max_batch`` instances in one ``store_many``; its log
    lines at ``log_level`` and above are logged by the archive's process."""

    root: Path
    index_url: str
    index_config: IndexConfig = DEFAULT_CONFIG
    policy: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST
    power_loss_safe: bool = False
    max_batch: int = 64
    log_level: int = logging.INFO


class _Worker:
    """One store process and the archive's end of its socket pair."""

    def __init__(self, settings: StoreSettings) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dicomnet.archive.worker", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env={**os.environ, "PYTHONPATH": _python_path()},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.reader = FrameReader()
        self.unsent = bytearray(frame(settings))
        self.ready = False
        self.report: ReconcileReport | None = None  # what its reconcile did, once ready

    def stop(self) -> None:
        """Close our end (the process stores what it has, then exits) and reap it."""
        self.sock.close()
        self.process.wait()


def _python_path() -> str:
    rest = os.environ.get("PYTHONPATH")
    return _PACKAGE_ROOT + (os.pathsep + rest if rest else "")


class StoreProcess:
    """Stores handed over with ``submit`` go into the archive ``settings`` describe,
    in a process of its own; ``done(outcome)`` follows on the loop thread of
    ``DicomNet`` (``DicomNet.Startup()`` first). Starting waits until the store process
    reconciled the archive (its report is ``report``) and raises
    ``StoreProcessFailed`` when it cannot start. ``close`` stores what was submitted,
    answers it, and ends the process."""

    def __init__(self, settings: StoreSettings, restart_delay: float = 1.0) -> None:
        if settings.max_batch < 1:
            raise ValueError(f"a batch holds at least one store, not {settings.max_batch}")
        self.settings = settings
        self.restart_delay = restart_delay
        self._loop: EventLoop = runtime.get_loop()
        self._waiting: dict[int, tuple[Received, Done]] = {}
        self._numbers = iter(range(1, sys.maxsize))
        self._closing = False
        self._restart: TimerHandle | None = None
        self._worker: _Worker | None = _Worker(settings)
        self.report = self._wait_until_ready(self._worker)
        runtime.run_on_loop(self._watch)

    @property
    def pid(self) -> int | None:
        """The store process's id; None while none runs."""
        worker = self._worker
        return None if worker is None else worker.process.pid

    # -- any thread ----------------------------------------------------------------------

    def submit(self, received: Received, done: Done) -> None:
        """Store ``received``; ``done(outcome)`` follows on the loop thread."""
        runtime.run_on_loop(partial(self._submit, received, done))

    def close(self) -> None:
        """Store what was submitted and answer it, then end the store process."""
        worker = runtime.run_on_loop(self._detach)
        if worker is None:
            return
        worker.sock.setblocking(True)
        try:
            worker.sock.sendall(worker.unsent)
            worker.sock.shutdown(socket.SHUT_WR)
            while data := worker.sock.recv(_READ_SIZE):
                self._take(worker, data)
        except (OSError, StoreProcessFailed) as exc:
            log.error("the store process failed while closing: %s", exc)
        worker.stop()
        self._fail_waiting("the archive's store process ended before storing it")

    # -- start-up ------------------------------------------------------------------------

    def _wait_until_ready(self, worker: _Worker) -> ReconcileReport:
        """Blocking, at start: send the settings, read until ``Ready``."""
        try:
            worker.sock.sendall(worker.unsent)
            worker.unsent.clear()
            while not worker.ready:
                data = worker.sock.recv(_READ_SIZE)
                if not data:
                    ended = _exit(worker.process.wait())
                    raise StoreProcessFailed(f"the store process ended at start ({ended})")
                self._take(worker, data)
        except BaseException:
            worker.stop()
            raise
        assert worker.report is not None  # it came with Ready
        return worker.report

    # -- the loop thread -----------------------------------------------------------------

    def _watch(self) -> None:
        worker = self._worker
        if worker is not None:
            worker.sock.setblocking(False)
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if worker.unsent else 0)
            self._loop.register(worker.sock, events, partial(self._on_ready, worker))

    def _submit(self, received: Received, done: Done) -> None:
        worker = self._worker
        if worker is None:
            why = "the archive is closing" if self._closing else "the store process is down"
            done(_failed(why))
            return
        number = next(self._numbers)
        self._waiting[number] = (received, done)
        queued = bool(worker.unsent)
        worker.unsent += frame(Request(number, received))
        if not queued:  # written once this loop turn ends: the turn's stores in one send
            self._loop.call_soon(partial(self._write_if_current, worker))

    def _write_if_current(self, worker: _Worker) -> None:
        if self._worker is worker:  # not lost or detached meanwhile
            self._write(worker)

    def _write(self, worker: _Worker) -> None:
        try:
            sent = worker.sock.send(worker.unsent)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._worker_lost(worker, f"cannot reach the store process: {exc}")
            return
        del worker.unsent[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if worker.unsent else 0)
        self._loop.modify(worker.sock, events, partial(self._on_ready, worker))

    def _on_ready(self, worker: _Worker, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._write(worker)
        if mask & selectors.EVENT_READ and self._worker is worker:
            self._read(worker)

    def _read(self, worker: _Worker) -> None:
        try:
            data = worker.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno != errno.ECONNRESET:
                raise
            data = b""
        if not data:
            self._worker_lost(worker, "the store process ended")
            return
        was_ready = worker.ready
        try:
            self._take(worker, data)
        except StoreProcessFailed as exc:
            self._worker_lost(worker, f"the store process failed: {exc}")
            return
        if worker.ready and not was_ready:
            log.info("store process restarted: %s", worker.report)

    def _take(self, worker: _Worker, data: bytes) -> None:
        """Act on what the store process sent; raises ``StoreProcessFailed`` when it
        could not start."""
        worker.reader.feed(data)
        for message in worker.reader.messages():
            if isinstance(message, Results):
                for number, outcome in message.outcomes:
                    received, done = self._waiting.pop(number)
                    answer(received, done, outcome)
            elif isinstance(message, Logged):
                for line in message.lines:
                    logging.getLogger(line.logger).log(line.level, "%s", line.message)
            elif isinstance(message, Ready):
                worker.ready, worker.report = True, message.report
            elif isinstance(message, StartFailed):
                raise StoreProcessFailed(f"cannot open the index: {message.reason}")

    def _worker_lost(self, worker: _Worker, why: str) -> None:
        """The store process died: answer what it held, start another."""
        self._loop.unregister(worker.sock)
        worker.stop()
        log.error("%s (%s); its stores are answered A700", why, _exit(worker.process.returncode))
        self._worker = None
        self._fail_waiting("the archive's store process ended before storing it")
        if not worker.ready:  # it died starting: wait before the next try
            self._start_later()
        else:
            self._start()

    def _start_later(self) -> None:
        self._restart = self._loop.call_at(self._loop.time() + self.restart_delay, self._start)

    def _start(self) -> None:
        self._restart = None
        if self._closing:
            return
        try:
            self._worker = _Worker(self.settings)
        except OSError as exc:
            log.error("cannot start a store process: %s", exc)
            self._start_later()
            return
        self._watch()

    def _fail_waiting(self, why: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for received, done in waiting.values():
            unlink_or_log(Path(received.spooled_file))
            answer(received, done, _failed(why))

    def _detach(self) -> _Worker | None:
        """Stop taking stores; the store process, for ``close`` to finish with."""
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
        worker, self._worker = self._worker, None
        if worker is not None:
            self._loop.unregister(worker.sock)
        return worker


def _failed(why: str) -> StoreOutcome:
    return StoreOutcome(DicomCommandStatusType.RefusedOutOfResources, why)


def _exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"
