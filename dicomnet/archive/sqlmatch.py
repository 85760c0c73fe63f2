"""An identifier as SQL: PS3.4 C.2.2.2 matching done by the database.

``compile_query`` turns a C-FIND identifier into one SELECT over the schema's tables:
the record table of the level joined with the tables above it, a condition per key
with a value (single value, universal, wildcard, list of UIDs, DA/TM/DT ranges, combined
date-time ranges when negotiated), keys of lower levels as one EXISTS when relational
queries were negotiated, and computed attributes (C.6.1.1) as subqueries. Every value
is a parameter; wildcard patterns have the SQL wildcard characters escaped.

Keys the schema does not hold are not matched (an SCP may ignore optional keys it does
not support, PS3.4 C.2.2.1.2) and come back empty; so do keys of lower levels in a
hierarchical query. Sequences the schema holds (``schema.ITEM_TABLES``) take sequence
matching (C.2.2.2.6); others come back empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.dataelem import DataElement

from ..qr.index import QueryOptions, matching_keys
from ..qr.matching import (
    RANGE_VRS,
    WILDCARD_VRS,
    CombinedRange,
    InvalidQuery,
    comparable_range,
    key_values,
    split_combined,
)
from .config import IndexConfig
from .dialect import Dialect
from .schema import (
    COMPUTED,
    SEQUENCES,
    TABLE_NAMED,
    TABLE_OF_LEVEL,
    TABLES,
    Attribute,
    Computed,
    ItemTable,
    Table,
)

_Condition = tuple[str, list[object]]
_ConditionOf = Callable[[str], _Condition | None]

_HELD: dict[str, tuple[Table, Attribute]] = {
    attribute.keyword: (table, attribute) for table in TABLES for attribute in table.attributes
}


@dataclass(frozen=True)
class ReturnKey:
    """A requested key: where its value is in a result row (None: not held, empty)."""

    element: DataElement
    column: int | None
    computed: Computed | None = None
    items: ItemTable | None = None  # a sequence: the column holds its owner's pk


@dataclass(frozen=True)
class CompiledQuery:
    """A query's SQL and parameters. Its rows are (pk, specific character set, one column
    per return key that has one), in insertion order of the records."""

    level: str
    sql: str
    params: tuple[object, ...]
    returns: tuple[ReturnKey, ...]


@dataclass
class _Conditions:
    sql: list[str]
    params: list[object]

    def add(self, condition: tuple[str, list[object]] | None) -> None:
        if condition is not None:
            self.sql.append(condition[0])
            self.params.extend(condition[1])

    def where(self) -> str:
        return f" WHERE {' AND '.join(self.sql)}" if self.sql else ""


def compile_query(
    level: str,
    identifier: Dataset,
    options: QueryOptions,
    config: IndexConfig,
    dialect: Dialect,
) -> CompiledQuery:
    """The SELECT answering a C-FIND at ``level``; raises ``InvalidQuery`` for an
    identifier that does not fit (``options.check``) or a malformed range."""
    options.check(level, identifier)
    compiler = _Compiler(TABLE_OF_LEVEL[level], options, config, dialect)
    keys = matching_keys(identifier)
    matched, ranges = split_combined(keys) if options.combined_datetime else (keys, [])
    for key in matched:
        compiler.match(key)
    for combined in ranges:
        compiler.match_combined(combined)
    where = compiler.finish()
    table = compiler.table
    selected = [f"{table.name}.pk", f"{table.name}.specific_character_set"]
    returns: list[ReturnKey] = []
    for key in keys:
        expression, computed = compiler.returned(key)
        if expression is None:
            returns.append(ReturnKey(key, None))
        else:
            items = SEQUENCES.get(key.keyword) if key.VR == "SQ" else None
            returns.append(ReturnKey(key, len(selected), computed, items))
            selected.append(expression)
    sql = (
        f"SELECT {', '.join(selected)} FROM {_chain_up(table)}{where.where()} "
        f"ORDER BY {table.name}.pk"
    )
    return CompiledQuery(level, sql, tuple(where.params), tuple(returns))


def files_query(query: CompiledQuery) -> tuple[str, tuple[object, ...]]:
    """The SELECT of the file path of every instance under the records ``query`` finds."""
    table = TABLE_OF_LEVEL[query.level]
    instance = TABLES[-1]
    sql = (
        f"SELECT instance.file_path FROM {_chain_up(instance)} WHERE {table.name}.pk IN "
        f"(SELECT pk FROM ({query.sql}) AS matched) ORDER BY instance.pk"
    )
    return sql, query.params


def _chain_up(table: Table) -> str:
    """``table`` joined with every table above it."""
    clause = table.name
    current = table
    while current.parent is not None:
        parent = TABLE_NAMED[current.parent]
        clause += (
            f" JOIN {parent.name} ON {parent.name}.pk = {current.name}.{current.parent_column}"
        )
        current = parent
    return clause


def _chain_down(table: Table, source: str, prefix: str) -> tuple[str, str]:
    """FROM ... WHERE clause over the tables from below ``table`` down to ``source``
    (aliased ``<prefix><name>``) limited to the rows under the current ``table`` row;
    and the alias of ``source``."""
    start = TABLES.index(table)
    end = TABLES.index(TABLE_NAMED[source])
    chain = TABLES[start + 1 : end + 1]
    first = chain[0]
    clause = f"FROM {first.name} AS {prefix}{first.name}"
    for upper, lower in zip(chain, chain[1:], strict=False):
        clause += (
            f" JOIN {lower.name} AS {prefix}{lower.name}"
            f" ON {prefix}{lower.name}.{lower.parent_column} = {prefix}{upper.name}.pk"
        )
    clause += f" WHERE {prefix}{first.name}.{first.parent_column} = {table.name}.pk"
    return clause, f"{prefix}{chain[-1].name}"


class _Compiler:
    def __init__(
        self, table: Table, options: QueryOptions, config: IndexConfig, dialect: Dialect
    ) -> None:
        self.table = table
        self.position = TABLES.index(table)
        self.options = options
        self.config = config
        self.dialect = dialect
        self.conditions = _Conditions([], [])
        self.below: dict[int, list[_Condition]] = {}  # table -> conditions

    def match(self, key: DataElement) -> None:
        computed = COMPUTED.get(key.keyword)
        if computed is not None:
            if computed.table == self.table.name:
                self.conditions.add(self._computed_condition(computed, key))
            return
        if key.VR == "SQ":
            item_table = SEQUENCES.get(key.keyword)
            if item_table is not None:
                self._place(
                    TABLE_NAMED[item_table.table],
                    lambda ref: _sequence_condition(
                        item_table, ref, key, self.config, self.dialect
                    ),
                )
            return
        held = _HELD.get(key.keyword)
        if held is None:
            return
        table, attribute = held
        self._place(table, lambda ref: _condition(attribute, ref, key, self.config, self.dialect))

    def match_combined(self, combined: CombinedRange) -> None:
        held = [table for table in TABLES if (combined.date, combined.time) in table.datetime_pairs]
        if held:
            column = held[0].datetime_pairs[(combined.date, combined.time)]
            low, high = combined.low, combined.high
            self._place(held[0], lambda ref: _range_condition(f"{ref}.{column}", low, high))

    def _place(self, table: Table, condition: _ConditionOf) -> None:
        position = TABLES.index(table)
        if position <= self.position:
            self.conditions.add(condition(table.name))
        elif self.options.relational:
            made = condition(f"low_{table.name}")
            if made is not None:
                self.below.setdefault(position, []).append(made)

    def finish(self) -> _Conditions:
        """The conditions, with the lower levels' ones as one EXISTS (relational)."""
        if self.below:
            deepest = TABLES[max(self.below)]
            clause, _ = _chain_down(self.table, deepest.name, "low_")
            params: list[object] = []
            for position in sorted(self.below):
                for sql, values in self.below[position]:
                    clause += f" AND {sql}"
                    params.extend(values)
            self.conditions.add((f"EXISTS (SELECT 1 {clause})", params))
        return self.conditions

    def returned(self, key: DataElement) -> tuple[str | None, Computed | None]:
        """The SELECT expression of a return key, and the computed attribute it is."""
        computed = COMPUTED.get(key.keyword)
        if computed is not None:
            if computed.table != self.table.name:
                return None, None
            source, alias = _chain_down(self.table, computed.source, "c_")
            if computed.attribute is None:
                return f"(SELECT count(*) {source})", computed
            column = TABLE_NAMED[computed.source].by_keyword[computed.attribute].column
            return self.dialect.distinct_list(f"{alias}.{column}", source), computed
        if key.VR == "SQ":
            item_table = SEQUENCES.get(key.keyword)
            owner = None if item_table is None else TABLE_NAMED[item_table.table]
            if owner is None or TABLES.index(owner) > self.position:
                return None, None
            return f"{owner.name}.pk", None  # the items are fetched by their owner
        held = _HELD.get(key.keyword)
        if held is None or TABLES.index(held[0]) > self.position:
            return None, None
        return f"{held[0].name}.{held[1].column}", None

    def _computed_condition(self, computed: Computed, key: DataElement) -> _Condition | None:
        source, alias = _chain_down(self.table, computed.source, "m_")
        if computed.attribute is None:  # a count: single value matching of the number
            if key.is_empty:
                return None
            try:
                values = [int(v) for v in key_values(key)]
            except ValueError as exc:
                raise InvalidQuery(f"{key.keyword} takes a number: {exc}") from exc
            count = f"(SELECT count(*) {source})"
            return "(" + " OR ".join(f"{count} = ?" for _ in values) + ")", list(values)
        attribute = TABLE_NAMED[computed.source].by_keyword[computed.attribute]
        condition = _condition(attribute, alias, key, self.config, self.dialect)
        if condition is None:
            return None
        return f"EXISTS (SELECT 1 {source} AND {condition[0]})", condition[1]


def _condition(
    attribute: Attribute, ref: str, key: DataElement, config: IndexConfig, dialect: Dialect
) -> _Condition | None:
    """The SQL of one key against the attribute of the table ``ref`` (None: universal).
    Several key values are alternatives (a list of UIDs; PS3.4 C.2.2.2.2)."""
    if key.is_empty:
        return None
    vr = attribute.vr
    values = key_values(key)
    if vr in WILDCARD_VRS and values == ["*"]:
        return None
    parts: list[str] = []
    params: list[object] = []
    for value in values:
        if vr in RANGE_VRS:
            low, high = comparable_range(value, vr)
            sql, bounds = _range_condition(f"{ref}.{attribute.key_column}", low, high)
            parts.append(sql)
            params.extend(bounds)
            continue
        column = attribute.column
        if attribute.fold_column and not config.pn_case_sensitive:
            column, value = attribute.fold_column, value.casefold()
        expression = f"{ref}.{column}"
        wildcard = vr in WILDCARD_VRS and ("*" in value or "?" in value)
        if attribute.multi:  # one of the stored values; a "*" may reach across values
            sql, pattern = dialect.wildcard(f"('\\' || {expression} || '\\')", f"*\\{value}\\*")
        elif wildcard:
            sql, pattern = dialect.wildcard(expression, value)
        else:
            sql, pattern = f"{expression} = ?", value
        parts.append(sql)
        params.append(pattern)
    return "(" + " OR ".join(parts) + ")", params


def _sequence_condition(
    item_table: ItemTable, ref: str, key: DataElement, config: IndexConfig, dialect: Dialect
) -> _Condition | None:
    """Sequence matching (PS3.4 C.2.2.2.6): one item of the record matches every key of
    the query's item (its first; None when it has no key with a value)."""
    if not key.value:
        return None
    alias = f"{ref}_{item_table.name}"
    conditions = _Conditions([], [])
    for item_key in key.value[0]:
        attribute = item_table.by_keyword.get(item_key.keyword)
        if attribute is not None:
            conditions.add(_condition(attribute, alias, item_key, config, dialect))
    if not conditions.sql:
        return None
    return (
        f"EXISTS (SELECT 1 FROM {item_table.name} AS {alias} WHERE "
        f"{alias}.{item_table.parent_column} = {ref}.pk AND {' AND '.join(conditions.sql)})",
        conditions.params,
    )


def _range_condition(expression: str, low: str | None, high: str | None) -> _Condition:
    parts, params = [], []
    if low is not None:
        parts.append(f"{expression} >= ?")
        params.append(low)
    if high is not None:
        parts.append(f"{expression} <= ?")
        params.append(high)
    return "(" + " AND ".join(parts) + ")", list(params)
