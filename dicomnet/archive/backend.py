"""What the index needs from a database: transactions on a connection of the calling
thread, each giving a ``Session`` that runs the generated SQL (``?`` parameters)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .dialect import Dialect

Row = tuple[Any, ...]


class Session(Protocol):
    """One transaction's statements."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run ``sql``; its rows (none for a statement that returns none)."""
        ...


class Backend(Protocol):
    """A database: connections per thread, transactions on them."""

    dialect: Dialect
    description: str  # where the database is, for messages (no password)

    def transaction(self, write: bool = True) -> AbstractContextManager[Session]:
        """A transaction on the calling thread's connection, committed when the block
        ends, rolled back when it raises. ``write=False`` for one that only reads."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...
