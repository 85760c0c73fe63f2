"""``open_index``: an archive index from a URL."""

from __future__ import annotations

from pathlib import Path

from .config import DEFAULT_CONFIG, IndexConfig
from .index import ArchiveIndex
from .postgres import PostgresBackend
from .sqlite import SQLiteBackend

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


class UnsupportedIndexURL(ValueError):
    """A URL naming no database this package can index in."""


def open_index(url: str, config: IndexConfig = DEFAULT_CONFIG) -> ArchiveIndex:
    """The index at ``url``, its schema created when the database has none.

    ``sqlite:///PATH``: a SQLite database file, created with its directory when missing;
    PATH is taken as written after the three slashes, so ``sqlite:///index.db`` is
    relative to the working directory and ``sqlite:////srv/archive/index.db`` absolute
    (SQLAlchemy's convention). ``postgresql://user@host:port/db`` (or ``postgres://``,
    any URL psycopg accepts, e.g. ``postgresql:///db?host=/run/postgresql`` for a unix
    socket): a PostgreSQL database, which must exist. Raises ``UnsupportedIndexURL`` for
    anything else, and the database's error when it cannot be opened.
    """
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE) :]
        if not path or path == ":memory:":
            raise UnsupportedIndexURL(
                f"{url!r}: give the database file (an index in memory is per connection)"
            )
        return ArchiveIndex(SQLiteBackend(Path(path), config), config)
    if url.startswith(_POSTGRES):
        return ArchiveIndex(PostgresBackend(url, config), config)
    raise UnsupportedIndexURL(
        f"{url!r} is not an index URL: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )
