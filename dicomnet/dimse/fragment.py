"""Splitting outgoing DIMSE messages into P-DATA-TF PDUs (PS3.8 annex E, D.1.1).

Each PDU carries one PDV: first the command set fragments (control header 01H, 03H on
the last), then the data set fragments (00H, 02H on the last), all on one presentation
context. The peer's Maximum Length (PS3.8 D.1.1) bounds the PDU-length field, which
counts the 6 bytes of each PDV item header, so a fragment is at most that maximum minus
6, kept even because every fragment but a data set's odd tail must be (PS3.8 E.1).

PDUs are produced lazily as lists of buffers (header, fragment) for scatter-gather
sending: a data set is read chunk by chunk as the iterator advances and never copied.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import BinaryIO, Protocol

from ..errors import DIMSEError
from ..pdu import CONTROL_COMMAND, CONTROL_LAST, PDV_OVERHEAD, pdata_header

UNLIMITED_PDU_CHUNK = 1 << 20
"""PDU-length used when the peer states no maximum (0), and the most ever sent at once:
a larger PDU would gain nothing and would need the whole chunk in memory."""

_MIN_PEER_MAX_PDU_LENGTH = 8  # a PDV header plus a 2-byte fragment
_READ_BLOCK = 1 << 20  # bytes read from a file at a time


class DataSource(Protocol):
    """A data set to send: its length and its bytes, chunk by chunk."""

    length: int

    def chunks(self, size: int) -> Iterator[bytes | memoryview]:
        """Yield pieces of exactly ``size`` bytes (even), the last one possibly shorter."""


class BytesSource:
    """A data set already in memory; chunks are views of it, nothing is copied."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data).cast("B")
        self.length = len(self._view)

    def chunks(self, size: int) -> Iterator[memoryview]:
        for start in range(0, self.length, size):
            yield self._view[start : start + size]


class FileSource:
    """A data set stored in a file (or a byte range of one), read as it is sent.

    The file is opened by ``chunks`` and closed when it is exhausted, when the iterator is
    closed, or by ``close()``. Each chunk is a fresh buffer, so a chunk stays valid for as
    long as the caller holds it (it may still be queued for sending).
    """

    def __init__(self, path: str | os.PathLike[str], offset: int = 0, length: int | None = None):
        size = os.stat(path).st_size
        if not 0 <= offset <= size:
            raise DIMSEError(f"offset {offset} is outside the {size}-byte file {path}")
        if length is None:
            length = size - offset
        if not 0 <= length <= size - offset:
            raise DIMSEError(f"{length} bytes from offset {offset} overrun the file {path}")
        self.path = path
        self.offset = offset
        self.length = length
        self._file: BinaryIO | None = None

    def chunks(self, size: int) -> Generator[memoryview, None, None]:
        # Read about a MiB at a time (one syscall for many fragments) and hand out views;
        # each block is a new buffer, so queued views stay valid.
        block_size = max(size, _READ_BLOCK // size * size)
        try:
            # unbuffered: each read is one syscall into a new bytes object, which (unlike
            # a bytearray to read into) is not zero-filled first
            with open(self.path, "rb", buffering=0) as file:
                self._file = file
                file.seek(self.offset)
                remaining = self.length
                while remaining:
                    wanted = min(block_size, remaining)
                    block = memoryview(file.read(wanted))
                    if len(block) != wanted:
                        raise DIMSEError(f"{self.path} became shorter while it was being sent")
                    remaining -= len(block)
                    for start in range(0, len(block), size):
                        yield block[start : start + size]
        except OSError as exc:  # deleted or unreadable after the message was queued
            raise DIMSEError(
                f"cannot read {self.path} while sending it: {exc.strerror or exc}"
            ) from exc
        finally:
            self._file = None

    def close(self) -> None:
        """Close the file if ``chunks`` left it open (sending stopped halfway)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def max_fragment_size(peer_max_pdu_length: int) -> int:
    """Largest even fragment one PDV may carry to a peer with this Maximum Length.

    0 (no limit stated) and any maximum above ``UNLIMITED_PDU_CHUNK`` are treated as
    ``UNLIMITED_PDU_CHUNK``; a stated maximum below 8 cannot carry any fragment.
    """
    if peer_max_pdu_length == 0 or peer_max_pdu_length > UNLIMITED_PDU_CHUNK:
        peer_max_pdu_length = UNLIMITED_PDU_CHUNK
    if peer_max_pdu_length < _MIN_PEER_MAX_PDU_LENGTH:
        raise DIMSEError(
            f"peer maximum PDU length {peer_max_pdu_length} is too small to carry a PDV"
        )
    return (peer_max_pdu_length - PDV_OVERHEAD) & ~1


def iter_message_pdus(
    context_id: int, command: bytes, data: DataSource | None, peer_max_pdu_length: int
) -> Iterator[list[bytes | memoryview]]:
    """The P-DATA-TF PDUs of one message, each as ``[header, fragment]``, made lazily.

    ``command`` is an encoded command set and ``data`` the data set, or None when the
    command says there is none. Nothing can be put in an empty PDV, so an empty command
    or data set is a ``DIMSEError`` raised here, before any PDU exists; a data source
    that breaks its promises (other than ``length`` bytes, odd chunks before its end)
    raises while iterating.
    """
    size = max_fragment_size(peer_max_pdu_length)
    if not command:
        raise DIMSEError("cannot send an empty command set")
    if data is not None and data.length <= 0:
        raise DIMSEError("cannot send an empty data set (a PDV may not be empty, PS3.8 E.1)")
    return _message_pdus(context_id, memoryview(command), data, size)


def _message_pdus(
    context_id: int, command: memoryview, data: DataSource | None, size: int
) -> Iterator[list[bytes | memoryview]]:
    for start in range(0, len(command), size):
        fragment = command[start : start + size]
        is_last = start + size >= len(command)
        control = CONTROL_COMMAND | (CONTROL_LAST if is_last else 0)
        yield [pdata_header(context_id, control, len(fragment)), fragment]
    if data is not None:
        yield from _data_pdus(context_id, data, size)


def _data_pdus(context_id: int, data: DataSource, size: int) -> Iterator[list[bytes | memoryview]]:
    remaining = data.length
    for chunk in data.chunks(size):
        length = len(chunk)
        if not 0 < length <= min(size, remaining) or (length % 2 and length != remaining):
            raise DIMSEError(
                f"data source yielded a {length}-byte chunk with {remaining} of "
                f"{data.length} bytes left and a {size}-byte fragment size"
            )
        remaining -= length
        control = CONTROL_LAST if remaining == 0 else 0
        yield [pdata_header(context_id, control, length), chunk]
    if remaining:
        raise DIMSEError(f"data source ended {remaining} bytes short of its {data.length}")
