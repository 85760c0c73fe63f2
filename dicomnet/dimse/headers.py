"""The header of a Part-10 file, read without pydicom's file reader.

An archive reads the header of every instance it stores. ``pydicom.dcmread`` parses
the meta group into converted values and walks the data set through a general
element generator; here the meta group is read as ``read_part10_start`` reads it, and the
data set's elements up to the pixel data are sliced out of that same read as
``RawDataElement``s in a plain ``Header`` map (a pydicom Dataset, whose construction
alone cost as much as reading the values an index needs, is built only when a value
needs pydicom's conversion). Sequences are kept whole, as bytes, for pydicom to parse
on demand.

Only the plain encodings are read here: Implicit VR Little Endian, and Explicit VR
Little Endian (the data set encoding of every compressed syntax). Anything else
(big endian, deflated), and anything unusual on the way (a header too large to hold,
bytes that do not parse), raises ``NotPlain``: the caller reads such a file with
pydicom, which has an answer (or an error) for every case.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from ..errors import DIMSEError
from ..uids import DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, IMPLICIT_VR_LE
from .part10 import read_part10_start

_PIXEL_TAGS_FROM = 0x7FE00008  # Float / Double Float / Pixel Data: the header ends there
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_TAG_AND_LENGTH = struct.Struct("<HHL")  # implicit VR, and item / delimiter headers
_EXPLICIT = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
_LONG_LENGTH = struct.Struct("<L")
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_READ = 16 << 10  # one read holds the header of nearly every instance (a few KiB)
MAX_HEADER = 1 << 20  # a header larger than this is not held here


class NotPlain(Exception):
    """The file is not one this reader handles; says why (pydicom reads it instead)."""


Elements = dict[BaseTag, DataElement | RawDataElement]


@dataclass
class Header:
    """The top-level elements of a data set up to its pixel data, by tag (``elements``:
    raw as read, a value is converted only when asked for), in ``transfer_syntax``.
    Reading values straight from ``elements`` costs a dictionary look-up; ``dataset()``
    builds the pydicom Dataset over the same elements when one is needed."""

    elements: Elements
    transfer_syntax: str
    _dataset: Dataset | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, dataset: Dataset) -> Header:
        """The header of a Dataset pydicom read (its elements as it holds them)."""
        meta = getattr(dataset, "file_meta", None)
        syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        tags = dataset.keys()  # iterating a Dataset would convert every element
        elements: Elements = {tag: dataset.get_item(tag, keep_deferred=True) for tag in tags}
        return cls(elements, syntax, dataset)

    def dataset(self) -> Dataset:
        """The elements as a pydicom Dataset (with ``file_meta`` holding the Transfer
        Syntax UID); converting a value there converts it in ``elements`` too."""
        if self._dataset is None:
            dataset = Dataset(self.elements)
            dataset.set_original_encoding(self.transfer_syntax == IMPLICIT_VR_LE, True, None)
            meta = FileMetaDataset()
            meta.TransferSyntaxUID = UID(self.transfer_syntax)
            dataset.file_meta = meta
            self._dataset = dataset
        return self._dataset


def read_header(path: str | os.PathLike[str]) -> Header:
    """The header of the Part-10 file ``path``: its data set up to the pixel data, as
    raw elements. Raises ``NotPlain``."""
    try:
        part10, data = read_part10_start(path, _READ)
    except DIMSEError as exc:
        raise NotPlain(str(exc)) from exc
    syntax, offset, length = part10.transfer_syntax, part10.data_offset, part10.data_length
    try:
        return parse_header(data, syntax, complete=len(data) == length, offset=offset)
    except HeaderIncomplete:
        pass
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(min(length, MAX_HEADER))
    try:
        return parse_header(data, syntax, complete=len(data) == length, offset=offset)
    except HeaderIncomplete:
        raise NotPlain(f"a header larger than {MAX_HEADER} bytes") from None


def parse_header(data: bytes, transfer_syntax: str, *, complete: bool, offset: int = 0) -> Header:
    """The header in ``data``, the start of a data set in ``transfer_syntax`` (the whole
    data set when ``complete``; ``offset``: where it lies in its file). Raises
    ``HeaderIncomplete`` when ``data`` ends before the header does, ``NotPlain`` when
    the data set is not one this module reads."""
    _check_syntax(transfer_syntax)
    implicit = transfer_syntax == IMPLICIT_VR_LE
    return Header(_Scanner(data, offset, implicit, complete).elements(), transfer_syntax)


def _check_syntax(transfer_syntax: str) -> None:
    if transfer_syntax in (EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE):
        raise NotPlain(f"transfer syntax {transfer_syntax}")


class HeaderIncomplete(NotPlain):
    """The bytes given end inside the header: more of the data set is needed."""


class _Scanner:
    """Top-level elements of a data set's bytes, up to the pixel data or the end."""

    def __init__(self, data: bytes, base: int, implicit: bool, final: bool) -> None:
        self.data = data
        self.base = base  # file offset of data[0]
        self.implicit = implicit
        self.final = final  # no more to read: running out ends the header, or is an error

    def elements(self) -> Elements:
        data, implicit, end = self.data, self.implicit, len(self.data)
        found: Elements = {}
        position = 0
        while position < end:
            if end - position < 8:
                self._short(position)
            tag, vr, length, start = self._element_header(position, implicit)
            if tag >= _PIXEL_TAGS_FROM:
                break
            if length == _UNDEFINED:
                stop = self._skip_sequence(start, implicit or vr == b"UN")
                value = data[start : stop - 8]  # items only: the delimiter is left out
                vr = b"SQ" if vr in (None, b"UN") else vr
            else:
                stop = start + length
                if stop > end:
                    self._short(stop)
                value = data[start:stop]
            key = BaseTag(tag)
            found[key] = RawDataElement(
                key,
                None if vr is None else vr.decode("ascii"),
                len(value),
                value,
                self.base + start,
                implicit,
                True,
            )
            position = stop
        else:
            if not self.final:  # the read ended between two elements
                raise HeaderIncomplete
        return found

    def _element_header(self, position: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
        """(tag, VR or None when implicit, value length, where the value starts)."""
        data = self.data
        if implicit:
            group, element, length = _TAG_AND_LENGTH.unpack_from(data, position)
            return group << 16 | element, None, length, position + 8
        group, element, vr, length = _EXPLICIT.unpack_from(data, position)
        tag = group << 16 | element
        if tag in (_ITEM, _ITEM_END, _SEQUENCE_END):
            raise NotPlain(f"item tag {tag:08X} outside a sequence")
        if vr in _LONG_VRS:
            if position + 12 > len(data):
                self._short(position + 12)
            (length,) = _LONG_LENGTH.unpack_from(data, position + 8)
            return tag, vr, length, position + 12
        if not vr.isalpha() or not vr.isupper():
            raise NotPlain(f"element {tag:08X} has no VR ({vr!r})")
        return tag, vr, length, position + 8

    def _skip_sequence(self, position: int, implicit: bool) -> int:
        """Past the sequence delimiter of an undefined-length sequence starting at
        ``position`` (its first item)."""
        data = self.data
        while True:
            if position + 8 > len(data):
                self._short(position + 8)
            group, element, length = _TAG_AND_LENGTH.unpack_from(data, position)
            tag = group << 16 | element
            position += 8
            if tag == _SEQUENCE_END:
                return position
            if tag != _ITEM:
                raise NotPlain(f"{tag:08X} where a sequence item was expected")
            if length == _UNDEFINED:
                position = self._skip_item(position, implicit)
            else:
                position += length

    def _skip_item(self, position: int, implicit: bool) -> int:
        """Past the item delimiter of an undefined-length item starting at ``position``."""
        data = self.data
        while True:
            if position + 8 > len(data):
                self._short(position + 8)
            group, element, _ = _TAG_AND_LENGTH.unpack_from(data, position)
            if group << 16 | element == _ITEM_END:
                return position + 8
            _, vr, length, start = self._element_header(position, implicit)
            if length == _UNDEFINED:
                position = self._skip_sequence(start, implicit or vr == b"UN")
            else:
                position = start + length

    def _short(self, needed: int) -> None:
        """The data ends before ``needed``: read more, or the file is not plain."""
        if not self.final:
            raise HeaderIncomplete
        raise NotPlain("the data set ends inside an element")
