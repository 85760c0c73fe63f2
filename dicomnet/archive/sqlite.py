"""The SQLite backend: the embedded default, one database file next to the storage.

WAL mode lets readers go on while one writer commits, across threads and processes;
a writer waits ``IndexConfig.busy_timeout`` for another. Connections come from a
bounded pool, one transaction (one thread) at a time on each.
Write transactions start with ``BEGIN IMMEDIATE`` so that two writers never deadlock
upgrading read locks; ``synchronous`` FULL or NORMAL by ``IndexConfig.durable_commits``.
The write transactions of one process take turns on a lock of their own first: SQLite
makes a writer that finds the database locked sleep and retry (1, 2, 5, 10 ms...), so
threads storing at once spent most of their time asleep; the lock hands over at once,
and SQLite's wait is left for writers of other processes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .backend import ConnectionPool, Row
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
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writing = threading.Lock()  # see the module
        self._pool = ConnectionPool(
            self._open,
            sqlite3.Connection.close,
            lambda connection: True,
            config.max_connections,
            config.busy_timeout,
            self.description,
        )
        with self._pool.connection():  # fail now, not at the first query, when it cannot open
            pass

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=self._config.busy_timeout,
            isolation_level=None,  # transactions are begun explicitly
            check_same_thread=False,  # pooled: used by one thread at a time, any thread
        )
        connection.execute("PRAGMA journal_mode=WAL")
        synchronous = "FULL" if self._config.durable_commits else "NORMAL"
        connection.execute(f"PRAGMA synchronous={synchronous}")
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[_Session]:
        with self._writing if write else nullcontext(), self._pool.connection() as connection:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _Session(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def close(self) -> None:
        self._pool.close()
