"""``ArchiveIndex``: the ``QueryIndex`` of an archive over a SQL database (SQLite or
PostgreSQL, see ``open_index``), matching done by the database (``sqlmatch``).

An instance is its rows in the four level tables, written in one transaction: an
upsert per level, top down (a record's attributes are those of its latest instance;
an attribute the latest one lacks keeps its value), so a record is never seen half
written. Records left without instances by a replacement are removed with it.

The store journal (``store_journal``) holds the stores in progress of ``Archive``
(see ``store.py``): its methods are here so that a journal row and an instance's rows
change in one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TypeVar

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag

from ..qr.index import DEFAULT_OPTIONS, QueryOptions, response_identifier
from ..qr.matching import Lookup
from .backend import Backend, Session
from .config import DEFAULT_CONFIG, IndexConfig
from .records import InstanceRecord, instance_record, read_header
from .schema import ITEM_TABLES, JOURNAL_COLUMNS, SCHEMA_VERSION, TABLE_NAMED, TABLES, ddl
from .sqlmatch import CompiledQuery, ReturnKey, compile_query, files_query

_T = TypeVar("_T")
_Parents = dict[str, tuple[tuple[str, ...], tuple[object, ...], int]]
"""Parent rows by table: their columns, their values and their primary key."""

_SPECIFIC_CHARACTER_SET = Tag("SpecificCharacterSet")
_INSTANCE_FILE_SQL = "SELECT file_path FROM instance WHERE sop_instance_uid = ?"
_BEFORE_SQL = "SELECT file_path, series_pk FROM instance WHERE sop_instance_uid = ?"
# A journal entry, its obsolete_path the file of the instance it replaces when that lies
# elsewhere, found in the same statement (one round trip); with _ONLY_NEW, none is added
# for an instance already indexed.
_JOURNAL_ADD_SQL = (
    f"INSERT INTO store_journal ({', '.join(JOURNAL_COLUMNS)}) "
    "SELECT ?, ?, ?, COALESCE((SELECT file_path FROM instance "
    "WHERE sop_instance_uid = ? AND file_path <> ?), ?), ?, ?, ?{only_new} "
    "RETURNING pk, obsolete_path"
)
_ONLY_NEW = " WHERE NOT EXISTS (SELECT 1 FROM instance WHERE sop_instance_uid = ?)"
_INTEGER_VRS = frozenset({"US", "UL", "SS", "SL", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})


class SchemaMismatch(RuntimeError):
    """The database holds an index of another schema version than this code's."""


@dataclass(frozen=True)
class JournalEntry:
    """A store in progress. ``state`` "moving": the file may or may not be at
    ``final_path`` yet; "committed": the instance's rows are in, ``obsolete_path`` (a
    replaced instance's old file) is still to be deleted."""

    sop_instance_uid: str
    final_path: str
    spool_path: str
    obsolete_path: str | None
    root: str
    owner: str
    state: str = "moving"
    pk: int = 0


class ArchiveIndex:
    """A ``QueryIndex`` over a database; safe to use from several threads (each uses
    its own connection) and, sharing one database, from several processes.

    ``find`` and ``files`` take the keys the schema holds (``schema.TABLES``, plus the
    computed attributes); other keys are not matched and come back empty. They raise
    ``InvalidQuery`` for an identifier that does not fit the options' model or holds a
    malformed range, and a database error when the database fails.
    """

    def __init__(self, backend: Backend, config: IndexConfig = DEFAULT_CONFIG) -> None:
        self.backend = backend
        self.config = config
        # The patient, study and series rows this index wrote last (see ``_writing``):
        # an instance of the same series writes none of them again.
        self._parents: _Parents = {}
        self._create_schema()

    def __repr__(self) -> str:
        return f"ArchiveIndex({self.backend.description})"

    def _create_schema(self) -> None:
        dialect = self.backend.dialect
        with self.backend.transaction() as session:
            if dialect.schema_lock:
                session.execute(dialect.schema_lock)
            for statement in ddl(dialect):
                session.execute(statement)
            versions = session.execute("SELECT version FROM archive_schema")
            if not versions:
                session.execute("INSERT INTO archive_schema (version) VALUES (?)", [SCHEMA_VERSION])
            elif versions[0][0] != SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"{self.backend.description} holds index schema {versions[0][0]}, "
                    f"this version reads schema {SCHEMA_VERSION}"
                )

    # -- QueryIndex ----------------------------------------------------------------------

    def add(self, path: str | os.PathLike[str]) -> None:
        """Index (or re-index) the Part-10 file ``path`` where it is; raises
        ``UnreadableInstance`` when it cannot be read or lacks a unique key."""
        record = read_record(path)
        self._writing(lambda session, parents: self.put(session, record, parents))

    def find(
        self, level: str, identifier: Dataset, *, options: QueryOptions = DEFAULT_OPTIONS
    ) -> Iterator[Dataset]:
        query = self._compile(level, identifier, options)
        with self.backend.transaction(write=False) as session:
            rows = session.execute(query.sql, query.params)
            items = {
                ret.column: _items(session, ret, {row[ret.column] for row in rows})
                for ret in query.returns
                if ret.items is not None and ret.column is not None
            }
        keys = [ret.element for ret in query.returns]
        for row in rows:
            yield response_identifier(level, keys, _row_lookup(query, row, items))

    def files(
        self, level: str, identifier: Dataset, *, options: QueryOptions = DEFAULT_OPTIONS
    ) -> list[str]:
        sql, params = files_query(self._compile(level, identifier, options))
        with self.backend.transaction(write=False) as session:
            return [row[0] for row in session.execute(sql, params)]

    def _compile(self, level: str, identifier: Dataset, options: QueryOptions) -> CompiledQuery:
        return compile_query(level, identifier, options, self.config, self.backend.dialect)

    # -- more than QueryIndex ------------------------------------------------------------

    def instance(self, sop_instance_uid: str) -> str | None:
        """The file of the instance ``sop_instance_uid``; None when it is not indexed."""
        with self.backend.transaction(write=False) as session:
            rows = session.execute(_INSTANCE_FILE_SQL, [sop_instance_uid])
        return rows[0][0] if rows else None

    def count(self) -> int:
        """How many instances are indexed."""
        with self.backend.transaction(write=False) as session:
            return int(session.execute("SELECT count(*) FROM instance")[0][0])

    def __len__(self) -> int:
        return self.count()

    def close(self) -> None:
        """Close the database connections (those in use when their transaction ends)."""
        self.backend.close()

    # -- writing (one transaction each, given by the caller) ------------------------------

    def _writing(self, write: Callable[[Session, _Parents], _T]) -> _T:
        """``write(session, parents)`` in a transaction. ``parents`` are the parent rows
        this index wrote last, which the write may take as they are; it adds those it
        writes, kept once the transaction committed. A parent row taken may have gone
        since (another process pruned it): then the write fails, and runs again with
        every row written."""
        for reuse in (True, False):
            taken = reuse and bool(self._parents)
            parents = dict(self._parents) if taken else {}
            try:
                with self.backend.transaction() as session:
                    result = write(session, parents)
            except Exception:
                self._parents.clear()
                if not taken:
                    raise
                continue
            self._parents.update(parents)
            return result
        raise AssertionError("unreachable")  # the second round raises or returns

    def put(
        self, session: Session, record: InstanceRecord, parents: _Parents | None = None
    ) -> str | None:
        """Write the instance's rows in ``session``'s transaction; the file of the
        instance it replaces when that was somewhere else (now unreferenced), else None.
        ``parents``: see ``_writing`` (none: every row is written)."""
        parents = {} if parents is None else parents
        uid = record.sop_instance_uid
        # the instance row it replaces: with the upsert when one statement can see it
        together = self.backend.dialect.upsert_sees_prior_rows
        before = [] if together else session.execute(_BEFORE_SQL, [uid])
        pks: list[int] = []
        for table in TABLES:
            row = dict(record.rows[table.name])
            if table.parent_column:
                row[table.parent_column] = pks[-1]
            columns = tuple(row)
            values = tuple(row[c] for c in columns)
            last = parents.get(table.name)
            if last is not None and last[0] == columns and last[1] == values:
                pks.append(last[2])
                continue
            upsert = _upsert_sql(table.name, columns)
            if together and table is TABLES[-1]:
                ((pk, *prior),) = session.execute(_with_prior_row(upsert), [uid, *values])
                before = [tuple(prior)] if prior[0] is not None else []
                pks.append(int(pk))
                continue
            pks.append(int(session.execute(upsert, values)[0][0]))
            if table is not TABLES[-1]:
                parents[table.name] = (columns, values, pks[-1])
        owners = {table.name: pk for table, pk in zip(TABLES, pks, strict=True)}
        for item_table in ITEM_TABLES:
            items = record.items[item_table.name]
            if items is None:
                continue
            owner = owners[item_table.table]
            session.execute(
                f"DELETE FROM {item_table.name} WHERE {item_table.parent_column} = ?", [owner]
            )
            columns = item_table.value_columns()
            insert = (
                f"INSERT INTO {item_table.name} ({item_table.parent_column}, "
                f"{', '.join(columns)}) VALUES (?{', ?' * len(columns)})"
            )
            for item in items:
                session.execute(insert, [owner, *(item[c] for c in columns)])
        if not before:
            return None
        old_path, old_series = before[0]
        if old_series != pks[-2]:  # moved to another series: its old records may be empty
            self._parents.clear()
            parents.clear()
            self._prune(session, int(old_series))
        return str(old_path) if old_path != record.path else None

    def _prune(self, session: Session, series_pk: int) -> None:
        """Remove the series ``series_pk`` and the records above it left empty."""
        pk: int | None = series_pk
        for level in range(len(TABLES) - 2, -1, -1):  # series, study, patient
            table, child = TABLES[level], TABLES[level + 1]
            if pk is None:
                return
            above = f"{table.parent_column} AS parent" if table.parent_column else "NULL"
            parent = session.execute(f"SELECT {above} FROM {table.name} WHERE pk = ?", [pk])
            session.execute(
                f"DELETE FROM {table.name} WHERE pk = ? AND NOT EXISTS "
                f"(SELECT 1 FROM {child.name} WHERE {child.parent_column} = ?)",
                [pk, pk],
            )
            pk = parent[0][0] if parent else None

    # -- the store journal ---------------------------------------------------------------

    def journal_add(
        self, entries: Sequence[JournalEntry], only_new: bool = False
    ) -> list[JournalEntry | str]:
        """In one transaction, committed on return, for each of ``entries`` (stores about
        to move their file into place): record it, ``obsolete_path`` the file of the
        instance it stores when that is indexed elsewhere; with ``only_new`` an instance
        already indexed is not recorded. For each: the entry recorded (with its ``pk``),
        or the file of the indexed instance when none was."""
        added: list[JournalEntry | str] = []
        if not entries:
            return added
        sql = _JOURNAL_ADD_SQL.format(only_new=_ONLY_NEW if only_new else "")
        with self.backend.transaction() as session:
            for entry in entries:
                uid, final = entry.sop_instance_uid, entry.final_path
                values: list[object] = [uid, final, entry.spool_path, uid, final]
                values += [entry.obsolete_path, entry.root, entry.owner, entry.state]
                if only_new:
                    values.append(uid)
                rows = session.execute(sql, values)
                if not rows:  # indexed already, and only_new: the file it has
                    found = session.execute(_INSTANCE_FILE_SQL, [uid])
                    added.append(str(found[0][0]) if found else "")
                    continue
                pk, obsolete = rows[0]
                obsolete_path = None if obsolete is None else str(obsolete)
                added.append(replace(entry, obsolete_path=obsolete_path, pk=int(str(pk))))
        return added

    def journal_commit(
        self, stores: Sequence[tuple[JournalEntry, InstanceRecord]]
    ) -> list[str | None]:
        """In one transaction, for each (entry, record) of ``stores``: the instance's
        rows in, and the journal entry gone, or, when a file is left to delete, kept as
        "committed" with it as ``obsolete_path`` (see ``journal_done``). Returns those
        files (None where there is none)."""

        def commit(session: Session, parents: _Parents) -> list[str | None]:
            obsoletes: list[str | None] = []
            for entry, record in stores:
                obsolete = self.put(session, record, parents) or entry.obsolete_path
                if obsolete and obsolete != entry.final_path:
                    session.execute(
                        "UPDATE store_journal SET state = 'committed', obsolete_path = ? "
                        "WHERE pk = ?",
                        [obsolete, entry.pk],
                    )
                    obsoletes.append(obsolete)
                else:
                    session.execute("DELETE FROM store_journal WHERE pk = ?", [entry.pk])
                    obsoletes.append(None)
            return obsoletes

        return self._writing(commit) if stores else []

    def journal_done(self, entry: JournalEntry) -> None:
        """The journal entry is resolved: remove it."""
        with self.backend.transaction() as session:
            session.execute("DELETE FROM store_journal WHERE pk = ?", [entry.pk])

    def journal_entries(self, root: str) -> list[JournalEntry]:
        """The stores in progress under the storage directory ``root``, oldest first."""
        with self.backend.transaction(write=False) as session:
            rows = session.execute(
                f"SELECT {', '.join(JOURNAL_COLUMNS)}, pk FROM store_journal WHERE root = ? "
                "ORDER BY pk",
                [root],
            )
        return [_journal_entry(row) for row in rows]


def read_record(path: str | os.PathLike[str]) -> InstanceRecord:
    """The rows of the Part-10 file ``path`` (absolute), read from its header."""
    absolute = Path(path).absolute()
    header = read_header(absolute)
    return instance_record(header, absolute, absolute.stat().st_size)


def _journal_entry(row: Sequence[object]) -> JournalEntry:
    uid, final, spool, obsolete, root, owner, state, pk = row
    return JournalEntry(
        str(uid),
        str(final),
        str(spool),
        None if obsolete is None else str(obsolete),
        str(root),
        str(owner),
        str(state),
        int(str(pk)),
    )


@cache  # by the table's name: hashing a Table hashes its whole description
def _upsert_sql(name: str, columns: tuple[str, ...]) -> str:
    table = TABLE_NAMED[name]
    unique = table.by_keyword[table.unique].column
    # an instance is replaced whole; a higher record keeps what its latest instance lacks
    whole = table.parent == TABLES[-2].name
    updates = ", ".join(
        f"{column} = excluded.{column}"
        if whole or column == table.parent_column
        else f"{column} = COALESCE(excluded.{column}, {table.name}.{column})"
        for column in columns
        if column != unique
    )
    marks = ", ".join("?" for _ in columns)
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({unique}) DO UPDATE SET {updates} RETURNING pk"
    )


def _with_prior_row(upsert: str) -> str:
    """The instance ``upsert`` returning, after its pk, the file and series of the row it
    replaced (NULLs when new): a statement's own changes are invisible to its scans."""
    prior = f"({_BEFORE_SQL})"
    return (
        f"WITH prior AS {prior} {upsert}, "
        "(SELECT file_path FROM prior), (SELECT series_pk FROM prior)"
    )


def _row_lookup(
    query: CompiledQuery, row: Sequence[object], items: dict[int, dict[object, list[Dataset]]]
) -> Lookup:
    """A result row seen as a record (``qr.matching.Lookup``); ``items``: the sequence
    items of each owner, by the column of the sequence's return key."""
    elements: dict[BaseTag, DataElement] = {}
    if row[1]:
        elements[_SPECIFIC_CHARACTER_SET] = DataElement(
            _SPECIFIC_CHARACTER_SET, "CS", _value(str(row[1]), "CS")
        )
    for ret in query.returns:
        if ret.column is None or row[ret.column] is None:
            continue
        key = ret.element
        if ret.items is not None:
            found = items[ret.column].get(row[ret.column], [])
            elements[key.tag] = DataElement(key.tag, "SQ", DicomSequence(found))
        else:
            elements[key.tag] = DataElement(key.tag, key.VR, _value(str(row[ret.column]), key.VR))
    return elements.get


_ITEMS_PER_QUERY = 500  # owners per SELECT ... IN (...)


def _items(session: Session, ret: ReturnKey, owners: set[object]) -> dict[object, list[Dataset]]:
    """The items of a sequence return key for each owner row: the item keys the query's
    item asks for (every attribute held when it asks for none)."""
    assert ret.items is not None
    item_table = ret.items
    query_items = ret.element.value
    wanted = (
        [k for k in query_items[0]]
        if query_items and len(query_items[0])
        else [DataElement(a.tag, a.vr, None) for a in item_table.attributes]
    )
    columns = [a.column for a in item_table.attributes]
    found: dict[object, list[Dataset]] = {}
    ordered = sorted(owners, key=str)
    for start in range(0, len(ordered), _ITEMS_PER_QUERY):
        chunk = ordered[start : start + _ITEMS_PER_QUERY]
        rows = session.execute(
            f"SELECT {item_table.parent_column}, {', '.join(columns)} FROM {item_table.name} "
            f"WHERE {item_table.parent_column} IN ({', '.join('?' for _ in chunk)}) ORDER BY pk",
            chunk,
        )
        for owner, *values in rows:
            by_keyword = dict(zip((a.keyword for a in item_table.attributes), values, strict=True))
            item = Dataset()
            for key in wanted:
                value = by_keyword.get(key.keyword)
                item.add(
                    DataElement(
                        key.tag, key.VR, None if value is None else _value(str(value), key.VR)
                    )
                )
            found.setdefault(owner, []).append(item)
    return found


def _value(text: str, vr: str) -> object:
    """Stored text as the value of an element of ``vr``."""
    values: list[object] = list(text.split("\\"))
    if vr in _INTEGER_VRS:
        values = [int(str(v)) for v in values]
    elif vr in _FLOAT_VRS:
        values = [float(str(v)) for v in values]
    return values[0] if len(values) == 1 else values
