"""The archive index's schema, described once: the tables of the four levels, the C-FIND
attributes each holds (the unique, required and common optional keys of PS3.4 C.6.1 and
C.6.2), the attributes computed over a record (C.6.1.1), and the journal of stores in
progress. The DDL of both databases, the rows of an instance and the SQL of a query are
all made from it.

Every value is text as DICOM writes it (several values joined by a backslash; person
names without empty trailing components). Beside its value a PN attribute has a
case-folded copy (``<column>_fold``) for case-insensitive matching, a DA, TM or DT
attribute its ``comparable`` form (``<column>_key``) for range matching, and a date with
its time in the same table the two as one ``comparable`` DT (``study_datetime_key``
for StudyDate and StudyTime...) for combined date-time matching. Sequence attributes
the schema holds have their items in tables of their own (``ITEM_TABLES``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.tag import BaseTag, Tag

from ..qr.matching import DATE_TIME_PAIRS, RANGE_VRS, WILDCARD_VRS
from .dialect import Dialect

SCHEMA_VERSION = 1
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def column_name(keyword: str) -> str:
    """``StudyInstanceUID`` -> ``study_instance_uid``."""
    return _WORD_BOUNDARY.sub("_", keyword).lower()


@dataclass(frozen=True)
class Attribute:
    """One attribute a table holds; ``multi`` when it may have several values."""

    keyword: str
    multi: bool = False

    @cached_property
    def tag(self) -> BaseTag:
        number = tag_for_keyword(self.keyword)
        if number is None:  # a typo in the schema below, found by the first import
            raise ValueError(f"{self.keyword} is not a DICOM keyword")
        return Tag(number)

    @cached_property
    def vr(self) -> str:
        return dictionary_VR(self.tag).split(" or ")[0]

    @cached_property
    def dictionary_vr(self) -> str | None:
        """The VR of an implicit VR element; None when the dictionary gives several."""
        vr = dictionary_VR(self.tag)
        return None if " or " in vr else vr

    @cached_property
    def column(self) -> str:
        return column_name(self.keyword)

    @cached_property
    def fold_column(self) -> str | None:
        return f"{self.column}_fold" if self.vr == "PN" else None

    @cached_property
    def key_column(self) -> str | None:
        return f"{self.column}_key" if self.vr in RANGE_VRS else None

    def columns(self) -> tuple[str, ...]:
        """The columns the attribute takes: its value, then its matching forms."""
        extra = (self.fold_column, self.key_column)
        return (self.column, *(name for name in extra if name))


@dataclass(frozen=True)
class Table:
    """The table of one level: its unique key, its parent level's table (None for the
    patients) and the attributes it holds."""

    name: str
    level: str
    unique: str
    parent: str | None
    attributes: tuple[Attribute, ...]
    files: tuple[str, ...] = ()  # instance table: where its file is and what it holds
    # Whether each matched attribute gets an index of its own. A query at the instance
    # level names its series (hierarchical: PS3.4 C.4.1.3.1), so the parent key's index
    # bounds it to one series' rows; an index per attribute there would be written with
    # every instance stored (13 of them cost 40% of indexing one) and read by no query
    # but a relational one, which then scans.
    attribute_indexes: bool = True

    @cached_property
    def by_keyword(self) -> dict[str, Attribute]:
        return {attribute.keyword: attribute for attribute in self.attributes}

    @cached_property
    def datetime_pairs(self) -> dict[tuple[str, str], str]:
        """(date keyword, time keyword) -> the column of the two as one DT."""
        return {
            (date, time): f"{column_name(date).removesuffix('_date')}_datetime_key"
            for date, time in DATE_TIME_PAIRS
            if date in self.by_keyword and time in self.by_keyword
        }

    @property
    def parent_column(self) -> str | None:
        return f"{self.parent}_pk" if self.parent else None

    def value_columns(self) -> tuple[str, ...]:
        """Every column but the primary and parent keys."""
        columns = [name for attribute in self.attributes for name in attribute.columns()]
        return (*columns, *self.datetime_pairs.values(), "specific_character_set", *self.files)


def _attributes(*keywords: str, multi: tuple[str, ...] = ()) -> tuple[Attribute, ...]:
    return tuple(Attribute(k, k in multi) for k in keywords) + tuple(
        Attribute(k, True) for k in multi
    )


TABLES = (
    Table(
        "patient",
        "PATIENT",
        "PatientID",
        None,
        _attributes(
            "PatientID",
            "PatientName",
            "IssuerOfPatientID",
            "PatientBirthDate",
            "PatientBirthTime",
            "PatientSex",
            "EthnicGroup",
            "PatientComments",
            multi=("OtherPatientIDs", "OtherPatientNames"),
        ),
    ),
    Table(
        "study",
        "STUDY",
        "StudyInstanceUID",
        "patient",
        _attributes(
            "StudyInstanceUID",
            "StudyDate",
            "StudyTime",
            "AccessionNumber",
            "StudyID",
            "StudyDescription",
            "ReferringPhysicianName",
            "PatientAge",
            "PatientSize",
            "PatientWeight",
            "AdditionalPatientHistory",
            "InstitutionName",
            multi=("NameOfPhysiciansReadingStudy",),
        ),
    ),
    Table(
        "series",
        "SERIES",
        "SeriesInstanceUID",
        "study",
        _attributes(
            "SeriesInstanceUID",
            "Modality",
            "SeriesNumber",
            "SeriesDescription",
            "SeriesDate",
            "SeriesTime",
            "BodyPartExamined",
            "Laterality",
            "ProtocolName",
            "StationName",
            "PerformedProcedureStepStartDate",
            "PerformedProcedureStepStartTime",
            multi=("PerformingPhysicianName", "OperatorsName"),
        ),
    ),
    Table(
        "instance",
        "IMAGE",
        "SOPInstanceUID",
        "series",
        _attributes(
            "SOPInstanceUID",
            "SOPClassUID",
            "InstanceNumber",
            "ContentDate",
            "ContentTime",
            "AcquisitionDate",
            "AcquisitionTime",
            "AcquisitionDateTime",
            "AcquisitionNumber",
            "Rows",
            "Columns",
            "NumberOfFrames",
            multi=("ImageType",),
        ),
        files=("file_path", "file_size", "transfer_syntax_uid"),
        attribute_indexes=False,
    ),
)
"""The levels' tables, top down (each one's parent comes before it)."""


@dataclass(frozen=True)
class ItemTable:
    """A sequence attribute of a level's table, its items in a table of their own (one
    row per item) for sequence matching (PS3.4 C.2.2.2.6)."""

    name: str
    sequence: str
    table: str
    attributes: tuple[Attribute, ...]

    @property
    def parent_column(self) -> str:
        return f"{self.table}_pk"

    @cached_property
    def by_keyword(self) -> dict[str, Attribute]:
        return {attribute.keyword: attribute for attribute in self.attributes}

    def value_columns(self) -> tuple[str, ...]:
        return tuple(name for attribute in self.attributes for name in attribute.columns())


ITEM_TABLES = (
    # Series level of both models (PS3.4 C.6.1.1.4, C.6.2.1.3)
    ItemTable(
        "series_request",
        "RequestAttributesSequence",
        "series",
        _attributes("RequestedProcedureID", "ScheduledProcedureStepID"),
    ),
)
SEQUENCES = {item_table.sequence: item_table for item_table in ITEM_TABLES}

TABLE_OF_LEVEL = {table.level: table for table in TABLES}
TABLE_NAMED = {table.name: table for table in TABLES}


@dataclass(frozen=True)
class Computed:
    """An attribute computed over a record of ``table`` (PS3.4 C.6.1.1.x): the number of
    rows under it in ``source`` (``attribute`` None), or the distinct values of the
    source's ``attribute``."""

    keyword: str
    table: str
    source: str
    attribute: str | None = None


COMPUTED = {
    computed.keyword: computed
    for computed in (
        Computed("NumberOfPatientRelatedStudies", "patient", "study"),
        Computed("NumberOfPatientRelatedSeries", "patient", "series"),
        Computed("NumberOfPatientRelatedInstances", "patient", "instance"),
        Computed("NumberOfStudyRelatedSeries", "study", "series"),
        Computed("NumberOfStudyRelatedInstances", "study", "instance"),
        Computed("ModalitiesInStudy", "study", "series", "Modality"),
        Computed("SOPClassesInStudy", "study", "instance", "SOPClassUID"),
        Computed("NumberOfSeriesRelatedInstances", "series", "instance"),
    )
}

JOURNAL_COLUMNS = (
    "sop_instance_uid",
    "final_path",
    "spool_path",
    "obsolete_path",
    "root",
    "owner",
    "state",
)
"""A store in progress (see ``store.Archive``): the file it moves into place, and the
file a replacement makes obsolete."""


def ddl(dialect: Dialect) -> list[str]:
    """The statements creating the schema (each a no-op when it exists)."""
    statements = [
        "CREATE TABLE IF NOT EXISTS archive_schema (version INTEGER NOT NULL)",
    ]
    for table in TABLES:
        unique = table.by_keyword[table.unique].column
        columns = [f"pk {dialect.primary_key}"]
        if table.parent:
            columns.append(f"{table.parent_column} BIGINT NOT NULL REFERENCES {table.parent} (pk)")
        columns += [
            f"{name} {'BIGINT' if name == 'file_size' else 'TEXT'}"
            + (" NOT NULL UNIQUE" if name == unique else "")
            for name in table.value_columns()
        ]
        statements.append(f"CREATE TABLE IF NOT EXISTS {table.name} ({', '.join(columns)})")
        if table.parent:
            statements.append(_index(table.name, table.parent_column or ""))
        for attribute in table.attributes if table.attribute_indexes else ():
            if attribute.keyword == table.unique or attribute.multi:
                continue
            matched = attribute.fold_column or attribute.key_column or attribute.column
            # a pattern operator class serves LIKE prefixes but not ranges (PostgreSQL)
            patterns = dialect.pattern_ops if attribute.vr in WILDCARD_VRS else ""
            statements.append(_index(table.name, matched, patterns))
        if table.attribute_indexes:
            statements += [_index(table.name, c) for c in table.datetime_pairs.values()]
    for item_table in ITEM_TABLES:
        parent = (
            f"{item_table.parent_column} BIGINT NOT NULL "
            f"REFERENCES {item_table.table} (pk) ON DELETE CASCADE"
        )
        values = ", ".join(f"{name} TEXT" for name in item_table.value_columns())
        statements += [
            f"CREATE TABLE IF NOT EXISTS {item_table.name} "
            f"(pk {dialect.primary_key}, {parent}, {values})",
            _index(item_table.name, item_table.parent_column),
        ]
    journal = ", ".join(f"{name} TEXT" for name in JOURNAL_COLUMNS)
    statements += [
        f"CREATE TABLE IF NOT EXISTS store_journal (pk {dialect.primary_key}, {journal})",
        _index("store_journal", "root"),
    ]
    return statements


def _index(table: str, column: str, operator_class: str = "") -> str:
    suffix = f" {operator_class}" if operator_class else ""
    return f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {table} ({column}{suffix})"
