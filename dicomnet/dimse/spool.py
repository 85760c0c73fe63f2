"""Spooling received C-STORE data sets to Part-10 files as they arrive.

A received data set is never assembled in memory: the sink writes the PS3.10 preamble
and file meta information first, then each data fragment straight from the receive
buffer to disk. The result is a valid Part-10 file that the application can keep by
moving it (``os.replace``, atomic within a file system) or read as a ``Dataset``. The file
is deleted on abort, on error, and when nobody claimed it.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import secrets
import struct
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import DIMSEError
from ..uids import DEFLATED_EXPLICIT_VR_LE, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from .assembly import SinkError
from .datasets import check_inflated_length

if TYPE_CHECKING:  # annotations only: pydicom loads when a data set is read
    from pydicom import Dataset


_PREAMBLE = b"\0" * 128 + b"DICM"
DEFER_SIZE = 64 << 10  # values larger than this stay on disk until read
_READ_CHUNK = 1 << 20  # bytes read at a time when a spool file is checked
_FLUSH_BYTES = 4 << 20  # write out held fragments once this much has gathered
_MAX_IOVECS = 1024  # Linux IOV_MAX: buffers per writev
_SPOOL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
_SPOOL_NAME_TRIES = 100
_spool_numbers = itertools.count()  # spool file names within this process


@dataclass
class SpooledFile:
    """A received data set on disk, as a Part-10 file."""

    path: str
    transfer_syntax: str
    data_offset: int  # where the data set starts (after the meta header)
    length: int  # bytes of the data set
    # removes the file when the data set parsed from it is garbage collected
    _collector: weakref.finalize[[str], Dataset] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def read_dataset(self, max_inflated: int) -> Dataset:
        """Parse the file; large values are read from disk only when accessed, so the
        file is kept until the returned Dataset is garbage collected. A deflated data set
        that would inflate to more than ``max_inflated`` bytes is a ``DIMSEError``."""
        if self.transfer_syntax == DEFLATED_EXPLICIT_VR_LE:
            check_inflated_length(self._data_chunks(), max_inflated)
        from pydicom import dcmread

        try:
            dataset = dcmread(self.path, defer_size=DEFER_SIZE)
        except Exception as exc:  # pydicom raises many types for malformed input
            raise DIMSEError(f"received data set does not parse: {exc}") from exc
        self._collector = weakref.finalize(dataset, remove_quietly, self.path)
        return dataset

    def _data_chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as file:
            file.seek(self.data_offset)
            while chunk := file.read(_READ_CHUNK):
                yield chunk

    def discard(self) -> None:
        remove_quietly(self.path)

    def keep(self) -> None:
        """The file is someone else's now: a parsed data set no longer removes it."""
        if self._collector is not None:
            self._collector.detach()


class SpoolError(SinkError):
    """Received data could not be written to disk; ``os_error`` says why.

    Its text leads with the operating system's reason ("No space left on device
    (ENOSPC)") and leaves out the exception code, which would only say "Parameter"; its
    ``reason``, the refusal's Error Comment, is that reason alone (no path)."""

    def __init__(self, doing: str, os_error: OSError) -> None:
        self.os_error = os_error
        name = errno.errorcode.get(os_error.errno or 0)
        reason = os_error.strerror or str(os_error)
        reason = f"{reason} ({name})" if name else reason
        super().__init__(f"{reason} {doing}", reason)

    def __str__(self) -> str:
        return self.message


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian group 0002 element (PS3.10 7.1)."""
    if vr == b"OB":
        return struct.pack("<HH2sxxL", 2, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 2, element, vr, len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


_VERSION_ELEMENT = _meta_element(0x0001, b"OB", b"\0\1")
_IMPLEMENTATION_ELEMENTS = _meta_element(
    0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\0")
) + _meta_element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" "))


@functools.lru_cache(maxsize=64)
def _repeated_uid_element(element: int, uid: str) -> bytes:
    """A UI element whose value recurs file after file (SOP class, transfer syntax)."""
    return _meta_element(element, b"UI", _padded(uid, b"\0"))


def file_meta_bytes(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble, "DICM" and the group 0002 meta elements of a Part-10 file.

    Written by hand rather than through pydicom: it runs once per received instance."""
    body = b"".join(
        (
            _VERSION_ELEMENT,
            _repeated_uid_element(0x0002, sop_class),
            _meta_element(0x0003, b"UI", _padded(sop_instance, b"\0")),
            _repeated_uid_element(0x0010, transfer_syntax),
            _IMPLEMENTATION_ELEMENTS,
        )
    )
    group_length = struct.pack("<HH2sHL", 2, 0x0000, b"UL", 4, len(body))
    return _PREAMBLE + group_length + body


def _create_spool_file(directory: str | None) -> tuple[int, str]:
    """A new spool file, opened exclusively for writing: ``(fd, absolute path)``.

    Named from the process and a counter, which costs a tenth of ``tempfile.mkstemp``
    (it runs once per received instance); a name left behind by an earlier process with
    the same number is never reused, the next try adds a random part."""
    directory = directory or tempfile.gettempdir()
    if not os.path.isabs(directory):
        directory = os.path.abspath(directory)
    name = f"dicomnet-{os.getpid()}-{next(_spool_numbers)}"
    for _ in range(_SPOOL_NAME_TRIES):
        path = os.path.join(directory, f"{name}.part")
        try:
            return os.open(path, _SPOOL_FLAGS, 0o600), path
        except FileExistsError:
            name = f"dicomnet-{os.getpid()}-{secrets.token_hex(6)}"
    raise FileExistsError(errno.EEXIST, "no free spool file name", directory)


class SpoolSink:
    """``DataSink`` that writes a C-STORE data set into a Part-10 file in ``directory``."""

    def __init__(
        self, directory: str | None, sop_class: str, sop_instance: str, transfer_syntax: str
    ) -> None:
        header = file_meta_bytes(sop_class, sop_instance, transfer_syntax)
        try:
            fd, self.path = _create_spool_file(directory)
        except OSError as exc:
            raise SpoolError(
                f"creating a spool file in {directory or tempfile.gettempdir()}", exc
            ) from exc
        self._fd: int | None = fd
        self._transfer_syntax = transfer_syntax
        self._offset = len(header)
        self._length = 0
        # the meta header goes out with the first data, in the same writev
        self._pending: list[memoryview] = [memoryview(header)]
        self._pending_bytes = len(header)

    def write(self, fragment: memoryview) -> None:
        """Take a fragment; it is written by ``flush`` (many at once, with one writev),
        which the receiver calls before it reuses the buffer the fragment lives in."""
        self._pending.append(fragment)
        self._pending_bytes += len(fragment)
        self._length += len(fragment)
        if self._pending_bytes >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        try:
            for start in range(0, len(pending), _MAX_IOVECS):
                self._write_all(pending[start : start + _MAX_IOVECS])
        except OSError as exc:
            self.discard()
            raise SpoolError(f"writing the spool file {self.path}", exc) from exc

    def _write_all(self, buffers: list[memoryview]) -> None:
        assert self._fd is not None
        while buffers:
            written = os.writev(self._fd, buffers)
            while buffers and written >= len(buffers[0]):
                written -= len(buffers[0])
                buffers = buffers[1:]
            if buffers and written:
                buffers = [buffers[0][written:], *buffers[1:]]

    def close(self) -> SpooledFile:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return SpooledFile(self.path, self._transfer_syntax, self._offset, self._length)

    def discard(self) -> None:
        self._pending, self._pending_bytes = [], 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        remove_quietly(self.path)
