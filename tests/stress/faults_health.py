"""After a fault: is the server still whole? One check, reused by every fault test.

A server survived a fault when its loop still answers a C-ECHO, and its open
descriptors, threads and temporary files are back where they were before: a descriptor
or a spool file left behind is a leak that adds up over thousands of failed
associations, and a thread left behind is a worker that never noticed its peer left.
Sample programs are watched through /proc/<pid>; this process through /proc/self and
``threading.enumerate()``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from polling import wait_until

from dicomnet import DicomNet, Timeouts
from dicomnet.archive import IndexConfig
from dicomnet.scu import build_request, open_association, release
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

LOOPBACK = "127.0.0.1"
WAIT = 15.0
# A SQLite connection of the archive index holds its database, -wal and -shm files.
_INDEX_FILES = ("index.db", "index.db-wal", "index.db-shm")
_POOLED_INDEX_DESCRIPTORS = len(_INDEX_FILES) * IndexConfig().max_connections
SETTLE = 10.0  # seconds a server gets to close what a fault left open
_LISTEN = "0A"  # TCP state in /proc/net/tcp
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)


def echo(port: int, called: str = "ANY-SCP") -> int:
    """One C-ECHO on a new association (the caller started the dicomnet loop); its status."""
    net = DicomNet(None, timeouts=TIMEOUTS)
    try:
        request = build_request("HEALTH-CHECK", called, 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
        open_association(net, LOOPBACK, port, request)
        message_id = net.next_message_id()
        net.SendCEchoRequest(1, message_id, VERIFICATION)
        status = net.wait_response(message_id, WAIT).status
        release(net)
        return status
    finally:
        net.Close()


def descriptors(pid: int | str = "self") -> list[str]:
    """What each open descriptor of ``pid`` points at."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:  # closed meanwhile (listing /proc/self/fd opens one)
            continue
    return sorted(found)


def task_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def leftover_files(directories: Sequence[Path]) -> list[Path]:
    """dicomnet's spool files (``dicomnet-*.part``) in ``directories``."""
    return sorted(path for directory in directories for path in directory.glob("dicomnet-*"))


def settle(check: Callable[[], list[str]], timeout: float = SETTLE) -> None:
    """Wait until ``check()`` finds nothing wrong; fail with what it found last."""
    problems: list[str] = []

    def settled() -> bool:
        problems[:] = check()
        return not problems

    try:
        wait_until(settled, timeout, "the server to settle")
    except AssertionError:
        raise AssertionError("; ".join(problems)) from None


@dataclass
class ProcessHealth:
    """A server process and where it spools received data (no spool file may stay)."""

    pid: int
    port: int
    temp_dirs: Sequence[Path] = ()
    called: str = "ANY-SCP"
    # A server whose requests run in dicomnet's worker pool keeps idle pool threads, and
    # how many the pool starts depends on timing: its thread count proves nothing, so
    # the tests show instead that a worker is free and that the stuck one ended.
    pooled: bool = False  # request threads and index connections come from pools
    _fds: list[str] = field(default_factory=list)
    _tasks: int = 0

    def baseline(self, warm_up: Callable[[], None] | None = None) -> None:
        """Remember the healthy state, after ``warm_up()`` and a C-ECHO were served
        (things made lazily on first use exist from then on)."""
        if warm_up is not None:
            warm_up()
        assert echo(self.port, self.called) == 0
        settle(lambda: [f"still connected: {c}"] if (c := self._connections()) else [])
        self._fds, self._tasks = descriptors(self.pid), task_count(self.pid)

    def _own(self, fds: list[str]) -> list[str]:
        """The descriptors that must come back to the baseline: with ``pooled``, those of
        the archive index's connection pool are bounded by the pool instead."""
        if not self.pooled:
            return fds
        return [fd for fd in fds if not fd.endswith(_INDEX_FILES)]

    def _connections(self) -> list[str]:
        """The process's TCP sockets that are not listening (whatever their state)."""
        own = {d for d in descriptors(self.pid) if d.startswith("socket:[")}
        found = []
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{self.pid}/net/{table}") as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[3] != _LISTEN and f"socket:[{fields[9]}]" in own:
                        found.append(line.strip())
        return found

    def assert_recovered(self) -> None:
        """The loop answers, and descriptors, threads and temporary files are back."""
        assert echo(self.port, self.called) == 0, "the server no longer answers C-ECHO"

        def problems() -> list[str]:
            found = []
            now = descriptors(self.pid)
            if len(self._own(now)) != len(self._own(self._fds)):
                found.append(f"descriptors {self._fds} became {now}")
            if self.pooled and len(now) - len(self._own(now)) > _POOLED_INDEX_DESCRIPTORS:
                found.append(f"more index connections than its pool holds: {now}")
            if not self.pooled and (tasks := task_count(self.pid)) != self._tasks:
                found.append(f"{self._tasks} threads became {tasks}")
            if leftovers := leftover_files(self.temp_dirs):
                found.append(f"files left behind: {leftovers}")
            return found

        settle(problems)


@dataclass
class InProcessHealth:
    """The same check for dicomnet running in this process (an SCU under test)."""

    temp_dirs: Sequence[Path] = ()
    _fds: int = 0
    _threads: set[threading.Thread] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._fds = len(descriptors())
        self._threads = set(threading.enumerate())

    def assert_recovered(self) -> None:
        def problems() -> list[str]:
            found = []
            if (fds := len(descriptors())) != self._fds:
                found.append(f"{self._fds} descriptors became {fds}: {descriptors()}")
            if extra := set(threading.enumerate()) - self._threads:
                found.append(f"threads left: {sorted(t.name for t in extra)}")
            if leftovers := leftover_files(self.temp_dirs):
                found.append(f"files left behind: {leftovers}")
            return found

        settle(problems)
