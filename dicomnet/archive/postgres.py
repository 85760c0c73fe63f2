"""The PostgreSQL backend (psycopg 3), for an index several archive processes or hosts
share. Connections come from a bounded pool (opened on first use, and again when the
server dropped one); every statement runs in an explicit transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .backend import ConnectionPool, Row
from .config import IndexConfig
from .dialect import POSTGRESQL

try:
    import psycopg
except ImportError:  # optional: only this backend needs it
    psycopg = None  # type: ignore[assignment]


class _Session:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        # generated SQL holds no literal "?" or "%" (dialect.py), so this is safe
        cursor = self._connection.execute(sql.replace("?", "%s"), tuple(params))
        return list(cursor.fetchall()) if cursor.description is not None else []


class PostgresBackend:
    """Connections to the PostgreSQL database ``conninfo`` (a URL or key=value string
    psycopg accepts)."""

    dialect = POSTGRESQL

    def __init__(self, conninfo: str, config: IndexConfig) -> None:
        if psycopg is None:
            raise RuntimeError(
                "a postgresql:// index needs psycopg 3: pip install 'psycopg[binary]'"
            )
        self._conninfo = conninfo
        self.description = _without_password(conninfo)
        self._config = config
        self._pool: ConnectionPool[Any] = ConnectionPool(
            self._open,
            lambda connection: connection.close(),
            lambda connection: not connection.closed and not connection.broken,
            config.max_connections,
            config.busy_timeout,
            self.description,
        )
        with self._pool.connection():  # fail now when the server cannot be reached
            pass

    def _open(self) -> Any:
        connection = psycopg.connect(
            self._conninfo,
            autocommit=True,  # transactions are begun explicitly
            connect_timeout=max(1, round(self._config.connect_timeout)),
        )
        if not self._config.durable_commits:
            # as SQLite's NORMAL: a commit returns before the server flushed its WAL; it
            # survives the archive being killed, a crash of the server may lose the last
            connection.execute("SET synchronous_commit = off")
        return connection

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[_Session]:
        with self._pool.connection() as connection, connection.transaction():
            yield _Session(connection)

    def close(self) -> None:
        self._pool.close()


def _without_password(conninfo: str) -> str:
    """The connection string for messages: a password never appears in them."""
    if psycopg is None:
        return conninfo
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "postgresql (unreadable connection string)"
    parts.pop("password", None)
    return " ".join(f"{key}={value}" for key, value in parts.items())
