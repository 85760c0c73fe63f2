"""How an archive index behaves, as one value object."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexConfig:
    """``pn_case_sensitive``: person names match case-sensitively (PS3.4 C.2.2.2.1 lets
    an SCP match them case-insensitively, which is what users expect: the default).
    ``busy_timeout``: seconds a SQLite writer waits for another one before failing.
    ``connect_timeout``: seconds to wait for a PostgreSQL server to answer.
    ``durable_commits``: a commit is on disk when it returns (SQLite ``synchronous=FULL``;
    PostgreSQL the server's ``synchronous_commit``, on unless configured otherwise) and
    survives a power cut; without it (SQLite ``NORMAL`` in WAL mode, PostgreSQL
    ``synchronous_commit=off``) a commit survives the archive process being killed, and
    a power cut or a crash of the database server loses at most the last commits, never
    the database.
    ``max_connections``: the most database connections the index holds at once (the
    transactions of more threads wait for one, up to ``busy_timeout``)."""

    pn_case_sensitive: bool = False
    busy_timeout: float = 30.0
    connect_timeout: float = 10.0
    max_connections: int = 8
    durable_commits: bool = False


DEFAULT_CONFIG = IndexConfig()
