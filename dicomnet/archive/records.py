"""An instance's rows: the values its header gives each table of the schema."""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass

from pydicom import Dataset, dcmread
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue

from ..dimse import headers
from ..dimse.headers import Header
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


def read_header(path: str | os.PathLike[str]) -> Header:
    """The header of a Part-10 file without its pixel data; raises ``UnreadableInstance``.

    Plain files are sliced into raw elements by ``dimse.headers``; pydicom reads the
    others (and says what is wrong with a broken one)."""
    try:
        return headers.read_header(path)
    except (headers.NotPlain, OSError):
        pass
    try:
        return Header.of(dcmread(path, stop_before_pixels=True, defer_size=_HEADER_DEFER_SIZE))
    except Exception as exc:  # pydicom raises many types for files it cannot read
        raise UnreadableInstance(f"cannot read {os.fspath(path)}: {exc}") from exc


def instance_record(
    header: Header | Dataset, path: str | os.PathLike[str], size: int
) -> InstanceRecord:
    """The rows of the instance in ``header``, kept in ``path`` (``size`` bytes). Raises
    ``UnreadableInstance`` when a unique key (Study, Series, SOP Instance UID) is missing;
    a missing Patient ID is an empty one (it is type 2)."""
    if isinstance(header, Dataset):
        header = Header.of(header)
    values = _Values(header)
    rows: dict[str, dict[str, object]] = {}
    charset = values.text(_CHARSET)
    for table in TABLES:
        row = _row(table, values)
        row["specific_character_set"] = charset
        if table.parent is None:
            row[table.by_keyword[table.unique].column] = row.get("patient_id") or ""
        elif not row[table.by_keyword[table.unique].column]:
            raise UnreadableInstance(f"{os.fspath(path)} has no {table.unique}")
        rows[table.name] = row
    rows["instance"].update(
        file_path=os.fspath(path),
        file_size=size,
        transfer_syntax_uid=header.transfer_syntax.strip("\0 ") or None,
    )
    items: dict[str, list[dict[str, object]] | None] = {}
    for item_table in ITEM_TABLES:
        tag = _attribute(item_table.sequence).tag
        # most headers have none: looked for without converting anything
        sequence = header.dataset()[tag] if tag in header.elements else None
        if sequence is None or sequence.VR != "SQ" or not sequence.value:
            items[item_table.name] = None
        else:
            items[item_table.name] = [
                _values(item_table.attributes, _Values(Header.of(item), values.encodings))
                for item in sequence.value
            ]
    return InstanceRecord(rows, items)


def _values(attributes: tuple[Attribute, ...], values: _Values) -> dict[str, object]:
    """The columns of ``attributes``: each value and its matching forms."""
    row: dict[str, object] = {}
    for attribute in attributes:
        value = values.text(attribute)
        row[attribute.column] = value
        if attribute.fold_column:
            row[attribute.fold_column] = value.casefold() if value else None
        if attribute.key_column:
            row[attribute.key_column] = comparable(value, attribute.vr, "0") if value else None
    return row


def _row(table: Table, values: _Values) -> dict[str, object]:
    row = _values(table.attributes, values)
    for (date, time), column in table.datetime_pairs.items():
        date_value = row[table.by_keyword[date].column]
        time_value = row[table.by_keyword[time].column]
        row[column] = combined_value(str(date_value), str(time_value or "")) if date_value else None
    return row


def header_value(header: Header, keyword: str) -> str | None:
    """The value of ``keyword`` in ``header`` as the schema stores it (``text_value``)."""
    return _Values(header).text(_attribute(keyword))


@functools.cache
def _attribute(keyword: str) -> Attribute:
    return Attribute(keyword)


class _Values:
    """The schema's values of one data set, read from its raw elements: pydicom would
    convert (and validate) each element to a value only for ``text_value`` to make it
    text again, most of a store's cost. Decoded here as pydicom decodes them; an element
    whose decoding is less plain (character set code extensions, a value that does not
    decode, a VR of UN, a value left on disk) goes through pydicom."""

    __slots__ = ("_header", "_elements", "_encodings", "_inherited")

    def __init__(self, header: Header, inherited: list[str] | None = None) -> None:
        self._header = header
        self._elements = header.elements
        self._inherited = inherited  # a sequence item's: those of the data set above
        self._encodings: list[str] | None = None

    @property
    def encodings(self) -> list[str]:
        """The Python encodings of the data set's Specific Character Set."""
        if self._encodings is None:
            raw = self._elements.get(_CHARSET_TAG)
            if raw is None and self._inherited is not None:
                self._encodings = self._inherited
            else:
                names = self.text(_CHARSET)
                self._encodings = _python_encodings(tuple(names.split("\\")) if names else ())
        return self._encodings

    def text(self, attribute: Attribute) -> str | None:
        raw = self._elements.get(attribute.tag)
        if raw is None:
            return None
        if isinstance(raw, RawDataElement):
            if raw.length == 0:
                return None
            texts = self._raw_texts(raw, attribute)
            if texts is not None:
                text = "\\".join(texts if attribute.multi else texts[:1])
                return text or None
        found = self._header.dataset()[attribute.tag]  # converted (read when left on disk)
        return text_value(found if isinstance(found, DataElement) else None, attribute)

    def _raw_texts(self, raw: RawDataElement, attribute: Attribute) -> list[str] | None:
        """The texts of ``raw`` as ``text_value`` makes them of pydicom's value; None
        when pydicom is to convert it."""
        data = raw.value
        vr = raw.VR or attribute.dictionary_vr  # implicit VR: the dictionary's
        if data is None or vr is None:
            return None
        if vr in _DEFAULT_REPERTOIRE:
            return [
                text.strip() for text in data.decode(default_encoding).rstrip(" \0").split("\\")
            ]
        if vr in _NUMBER_FORMATS:
            size, number = _NUMBER_FORMATS[vr]
            if len(data) % size:
                return None
            endian = "<" if raw.is_little_endian else ">"
            return [str(n) for n in struct.unpack(f"{endian}{len(data) // size}{number}", data)]
        if vr not in _CHARSET_VRS or _ESC in data:
            return None
        try:
            if vr == "PN":
                return [
                    name.rstrip("^= ")
                    for name in data.rstrip(b"\0 ").decode(self.encodings[0]).split("\\")
                ]
            decoded = data.decode(self.encodings[0])
        except (UnicodeError, LookupError):  # pydicom warns, and replaces or falls back
            return None
        if vr in _SINGLE_VALUE_VRS:  # a backslash is text in these
            return [decoded.rstrip("\0 ").strip()]
        return [text.rstrip("\0 ").strip() for text in decoded.split("\\")]


# VRs of the default repertoire, decoded by pydicom without the character set
_DEFAULT_REPERTOIRE = frozenset({"AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
_NUMBER_FORMATS = {
    vr: (struct.calcsize(f"<{number}"), number)
    for vr, number in (
        ("US", "H"),
        ("SS", "h"),
        ("UL", "L"),
        ("SL", "l"),
        ("UV", "Q"),
        ("SV", "q"),
        ("FL", "f"),
        ("FD", "d"),
    )
}
_CHARSET_VRS = frozenset({"PN", "SH", "LO", "UC", "LT", "ST", "UT"})
_SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT"})
_ESC = b"\x1b"  # code extensions (ISO 2022): decoded by pydicom
_CHARSET = Attribute("SpecificCharacterSet", multi=True)
_CHARSET_TAG = _CHARSET.tag


@functools.cache
def _python_encodings(names: tuple[str, ...]) -> list[str]:
    return convert_encodings(list(names)) if names else [default_encoding]


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
