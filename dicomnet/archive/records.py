"""An instance's rows: the values its header gives each table of the schema."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from ..qr.matching import combined_value, comparable
from .schema import ITEM_TABLES, TABLES, Attribute, Table

# Header values larger than this stay on disk (none of the indexed ones is that large).
_HEADER_DEFER_SIZE = 4096


class UnreadableInstance(ValueError):
    """A file that is not a Part-10 instance the index can hold; says why."""


@dataclass(frozen=True)
class InstanceRecord:
    """The values of one instance for every table (column -> value, None when absent),
    and the items of its sequences by item table (None: the instance has none, so the
    record keeps the items it has)."""

    rows: dict[str, dict[str, object]]
    items: dict[str, list[dict[str, object]] | None]

    @property
    def sop_instance_uid(self) -> str:
        return str(self.rows["instance"]["sop_instance_uid"])

    @property
    def path(self) -> str:
        return str(self.rows["instance"]["file_path"])


def read_header(path: str | os.PathLike[str]) -> Dataset:
    """The header of a Part-10 file without its pixel data; raises ``UnreadableInstance``."""
    try:
        return dcmread(path, stop_before_pixels=True, defer_size=_HEADER_DEFER_SIZE)
    except Exception as exc:  # pydicom raises many types for files it cannot read
        raise UnreadableInstance(f"cannot read {os.fspath(path)}: {exc}") from exc


def instance_record(header: Dataset, path: str | os.PathLike[str], size: int) -> InstanceRecord:
    """The rows of the instance in ``header``, kept in ``path`` (``size`` bytes). Raises
    ``UnreadableInstance`` when a unique key (Study, Series, SOP Instance UID) is missing;
    a missing Patient ID is an empty one (it is type 2)."""
    rows: dict[str, dict[str, object]] = {}
    charset = text_value(element(header, "SpecificCharacterSet"))
    for table in TABLES:
        row = _row(table, header)
        row["specific_character_set"] = charset
        if table.parent is None:
            row[table.by_keyword[table.unique].column] = row.get("patient_id") or ""
        elif not row[table.by_keyword[table.unique].column]:
            raise UnreadableInstance(f"{os.fspath(path)} has no {table.unique}")
        rows[table.name] = row
    meta = getattr(header, "file_meta", None)
    rows["instance"].update(
        file_path=os.fspath(path),
        file_size=size,
        transfer_syntax_uid=text_value(element(meta, "TransferSyntaxUID")) if meta else None,
    )
    items: dict[str, list[dict[str, object]] | None] = {}
    for item_table in ITEM_TABLES:
        sequence = element(header, item_table.sequence)
        if sequence is None or sequence.VR != "SQ" or not sequence.value:
            items[item_table.name] = None
        else:
            items[item_table.name] = [
                _values(item_table.attributes, item) for item in sequence.value
            ]
    return InstanceRecord(rows, items)


def _values(attributes: tuple[Attribute, ...], dataset: Dataset) -> dict[str, object]:
    """The columns of ``attributes``: each value and its matching forms."""
    row: dict[str, object] = {}
    for attribute in attributes:
        value = text_value(element(dataset, attribute.keyword), attribute)
        row[attribute.column] = value
        if attribute.fold_column:
            row[attribute.fold_column] = value.casefold() if value else None
        if attribute.key_column:
            row[attribute.key_column] = comparable(value, attribute.vr, "0") if value else None
    return row


def _row(table: Table, header: Dataset) -> dict[str, object]:
    row = _values(table.attributes, header)
    for (date, time), column in table.datetime_pairs.items():
        date_value = row[table.by_keyword[date].column]
        time_value = row[table.by_keyword[time].column]
        row[column] = combined_value(str(date_value), str(time_value or "")) if date_value else None
    return row


def element(dataset: Dataset, keyword: str) -> DataElement | None:
    """The element ``keyword`` of ``dataset``; None when it has none."""
    tag = _tag(keyword)
    if tag not in dataset:  # most keys of the schema are absent from a given header
        return None
    found = dataset[tag]
    return found if isinstance(found, DataElement) else None


@functools.cache
def _tag(keyword: str) -> BaseTag:
    # pydicom looks a keyword up in its dictionary on every call: the schema's few dozen
    # keywords, read for every stored instance, are looked up once
    return Tag(keyword)


def text_value(element: DataElement | None, attribute: Attribute | None = None) -> str | None:
    """An element's value as the schema stores it: text, several values joined by a
    backslash, person names without empty trailing components; None when empty."""
    if element is None or element.is_empty or element.VR == "SQ":
        return None
    value = element.value
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    if attribute is not None and not attribute.multi:
        values = values[:1]
    texts = [str(v).rstrip("^= ") if element.VR == "PN" else str(v).strip() for v in values]
    text = "\\".join(texts)
    return text or None
