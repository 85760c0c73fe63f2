"""The SQLite backend: the embedded default, one database file next to the storage.

WAL mode lets readers go on while one writer commits, across threads and processes;
a writer waits ``IndexConfig.busy_timeout`` for another. Each thread has its own
connection (sqlite3 connections must not be shared by threads at the same time).
Write transactions start with ``BEGIN IMMEDIATE`` so that two writers never deadlock
upgrading read locks; ``synchronous=FULL``: a commit is on disk when it returns.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .backend import Row
from .config import IndexConfig
from .dialect import SQLITE


class _Session:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._connection.execute(sql, tuple(params)).fetchall()


class SQLiteBackend:
    """Connections to the SQLite database ``path`` (created when missing)."""

    dialect = SQLITE

    def __init__(self, path: Path, config: IndexConfig) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        self._config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection()  # fail now, not at the first query, when the file cannot be opened

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError(f"{self.description} is closed")
            connection = sqlite3.connect(
                self.path,
                timeout=self._config.busy_timeout,
                isolation_level=None,  # transactions are begun explicitly
                check_same_thread=False,  # only for close(); each thread uses its own
            )
            self._connections.append(connection)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[_Session]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _Session(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
