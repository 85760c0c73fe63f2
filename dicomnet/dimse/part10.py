"""Sending a data set from a Part-10 file (PS3.10 7.1) without decoding it.

Only the file meta information is read: it says where the data set starts, its transfer
syntax and its SOP class/instance. When the association accepted that transfer syntax the
data set bytes go out as they are on disk (``FileSource``); when it accepted another
uncompressed one the file is parsed and re-encoded; anything else is a clear error.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from ..errors import DIMSEError
from ..uids import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from .datasets import encode_dataset
from .fragment import BytesSource, DataSource, FileSource

_PREAMBLE_LENGTH = 128
_SHORT_HEADER = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
_LONG_LENGTH = struct.Struct("<L")
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_META_LIMIT = 1 << 20  # a meta header larger than this is not a sane file
_FIRST_READ = 8 << 10  # enough for any ordinary meta header

CONVERTIBLE_TRANSFER_SYNTAXES = frozenset(
    {IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE}
)


@dataclass(frozen=True)
class Part10File:
    """What the meta header of a Part-10 file says."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    data_offset: int
    data_length: int


def read_part10_header(path: str | os.PathLike[str]) -> Part10File:
    """Read only the preamble and group 0002 of ``path`` (usually one small read)."""
    return read_part10_start(path, 0)[0]


def read_part10_start(path: str | os.PathLike[str], data_bytes: int) -> tuple[Part10File, bytes]:
    """The preamble and group 0002 of ``path``, and the first ``data_bytes`` of its data
    set (fewer when the file ends first): one read when the meta group is of ordinary
    size."""
    path = os.fspath(path)
    # plain descriptor reads: a buffered file object costs more than the read (per file sent
    # or stored)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        wanted = _FIRST_READ + data_bytes
        head = _read_at(fd, 0, wanted)
        try:
            values, offset = _parse_meta(head, path, final=len(head) < wanted)
        except _NeedMore:
            head += _read_at(fd, len(head), _PREAMBLE_LENGTH + 4 + _META_LIMIT - len(head))
            values, offset = _parse_meta(head, path, final=True)
        data = head[offset : offset + data_bytes]
        if len(data) < data_bytes and offset + len(data) < size:  # a long meta group
            data = _read_at(fd, offset, data_bytes)
    except OSError as exc:  # a read error (a directory, EIO) names no file: say which
        raise type(exc)(exc.errno, exc.strerror, path) from exc
    finally:
        os.close(fd)
    missing = [
        name
        for element, name in (
            (0x0002, "MediaStorageSOPClassUID"),
            (0x0003, "MediaStorageSOPInstanceUID"),
            (0x0010, "TransferSyntaxUID"),
        )
        if element not in values
    ]
    if missing:
        raise DIMSEError(f"{path}: file meta information lacks {', '.join(missing)}")
    part10 = Part10File(path, values[0x0002], values[0x0003], values[0x0010], offset, size - offset)
    return part10, data


def _read_at(fd: int, offset: int, count: int) -> bytes:
    """``count`` bytes from ``offset`` of the file ``fd``, fewer only at its end."""
    parts: list[bytes] = []
    while count > 0:
        part = os.pread(fd, count, offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
        count -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _NeedMore(Exception):
    """The first read ended inside the meta group."""


def _parse_meta(head: bytes, path: str, final: bool) -> tuple[dict[int, str], int]:
    """UI values of group 0002 by element, and where the data set starts."""
    if head[_PREAMBLE_LENGTH : _PREAMBLE_LENGTH + 4] != b"DICM":
        raise DIMSEError(f"{path} is not a DICOM Part-10 file (no DICM prefix)")
    truncated = DIMSEError if final else _NeedMore
    values: dict[int, str] = {}
    offset = _PREAMBLE_LENGTH + 4
    while True:
        # A data set element must follow the meta group; running out first means the
        # file was cut short (or its meta group is beyond any sane size).
        if offset + _SHORT_HEADER.size > len(head):
            raise truncated(f"{path}: file meta information is truncated (no data set)")
        group, element, vr, length = _SHORT_HEADER.unpack_from(head, offset)
        if group != 0x0002:
            return values, offset
        value_offset = offset + _SHORT_HEADER.size
        if vr in _LONG_VRS:
            if value_offset + _LONG_LENGTH.size > len(head):
                raise truncated(f"{path}: file meta element (0002,{element:04X}) is truncated")
            (length,) = _LONG_LENGTH.unpack_from(head, value_offset)
            value_offset += _LONG_LENGTH.size
        end = value_offset + length
        if end > len(head):
            raise truncated(f"{path}: file meta element (0002,{element:04X}) is truncated")
        if vr == b"UI":
            values[element] = head[value_offset:end].rstrip(b"\0 ").decode("ascii", "replace")
        offset = end


def part10_source(part10: Part10File, accepted_transfer_syntax: str) -> DataSource:
    """The data set of ``part10`` as it must go out on a context with that syntax."""
    if part10.transfer_syntax == accepted_transfer_syntax:
        return FileSource(part10.path, part10.data_offset, part10.data_length)
    convertible = CONVERTIBLE_TRANSFER_SYNTAXES
    if part10.transfer_syntax in convertible and accepted_transfer_syntax in convertible:
        try:
            from pydicom import dcmread

            dataset = dcmread(part10.path)
        except Exception as exc:  # pydicom raises many types for malformed input
            raise DIMSEError(f"{part10.path} does not parse: {exc}") from exc
        return BytesSource(encode_dataset(dataset, accepted_transfer_syntax))
    raise DIMSEError(
        f"{part10.path} is encoded in {part10.transfer_syntax}, the association accepted "
        f"{accepted_transfer_syntax}, and dicomnet does not transcode compressed data"
    )
