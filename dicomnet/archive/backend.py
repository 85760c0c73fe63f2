"""What the index needs from a database: transactions, each on a connection of its own
for as long as it runs, giving a ``Session`` that runs the generated SQL (``?``
parameters); and the bounded pool of connections both backends hand out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Generic, Protocol, TypeVar

from .dialect import Dialect

Row = tuple[Any, ...]


class Session(Protocol):
    """One transaction's statements."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run ``sql``; its rows (none for a statement that returns none)."""
        ...


class Backend(Protocol):
    """A database: a pool of connections, transactions on them."""

    dialect: Dialect
    description: str  # where the database is, for messages (no password)

    def transaction(self, write: bool = True) -> AbstractContextManager[Session]:
        """A transaction on a connection of the pool, committed when the block
        ends, rolled back when it raises. ``write=False`` for one that only reads."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


C = TypeVar("C")


class IndexBusy(RuntimeError):
    """Every connection of the pool stayed in use for the whole wait."""


class ConnectionPool(Generic[C]):
    """At most ``size`` connections, each used by one transaction at a time and kept open
    between them. Bounded by the pool, not by the threads that query: a server running a
    thread per request never holds more connections (descriptors, PostgreSQL backends)
    than ``size``, and none stay with threads that ended."""

    def __init__(
        self,
        open_connection: Callable[[], C],
        close_connection: Callable[[C], None],
        usable: Callable[[C], bool],
        size: int,
        wait: float,
        description: str,
    ) -> None:
        if size < 1:
            raise ValueError(f"an index needs at least one connection, not {size}")
        self._open = open_connection
        self._close = close_connection
        self._usable = usable
        self._size = size
        self._wait = wait
        self._description = description
        self._condition = threading.Condition()
        self._idle: list[C] = []
        self._count = 0  # idle and in use
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[C]:
        """A connection for the block; back to the pool when it ends."""
        connection = self._take()
        try:
            yield connection
        finally:
            self._give_back(connection)

    def _take(self) -> C:
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self._description} is closed")
                while self._idle:
                    connection = self._idle.pop()
                    if self._usable(connection):
                        return connection
                    self._count -= 1
                    self._close(connection)  # dropped by the server: open another
                if self._count < self._size:
                    self._count += 1
                    break
                if not self._condition.wait(self._wait):
                    raise IndexBusy(
                        f"{self._description}: all {self._size} connections stayed in use "
                        f"for {self._wait:g} s"
                    )
        try:
            return self._open()
        except BaseException:
            with self._condition:
                self._count -= 1
                self._condition.notify()
            raise

    def _give_back(self, connection: C) -> None:
        with self._condition:
            if not self._closed:
                self._idle.append(connection)
                self._condition.notify()
                return
            self._count -= 1
        self._close(connection)

    def close(self) -> None:
        """Close the idle connections now, the others when their transaction ends."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._condition.notify_all()
        for connection in idle:
            self._close(connection)
