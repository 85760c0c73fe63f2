"""PDU bytes by hand, for tests that play a peer over a socket or feed an engine directly.

Built on the PS3.8 9.3.1 framing alone (type, reserved byte, 4-byte length), not on
``dicomnet.pdu``'s decoder, so a test reading what dicomnet sent does not trust the code
it checks. One description of that framing for every raw peer in the suite.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, RELEASE_RQ, RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07
HEADER = struct.Struct(">BxL")
PDV_HEADER = struct.Struct(">LBB")


class RawPdu(NamedTuple):
    """One PDU as it came: its type and its body (the bytes after the 6-byte header)."""

    type: int
    body: bytes

    @property
    def whole(self) -> bytes:
        """The PDU with its header, as it went over the wire."""
        return pdu(self.type, self.body)


def pdu(pdu_type: int, body: bytes) -> bytes:
    """A PDU of ``pdu_type`` around ``body``, its length field telling the truth."""
    return HEADER.pack(pdu_type, len(body)) + body


def pdata(context_id: int, control: int, fragment: bytes) -> bytes:
    """A P-DATA-TF PDU carrying one PDV (PS3.8 9.3.5)."""
    return pdu(P_DATA_TF, PDV_HEADER.pack(len(fragment) + 2, context_id, control) + fragment)


def pdvs(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(context ID, message control header, fragment) of each PDV in a P-DATA-TF body."""
    offset = 0
    while offset < len(body):
        length, context_id, control = PDV_HEADER.unpack_from(body, offset)
        yield context_id, control, body[offset + PDV_HEADER.size : offset + 4 + length]
        offset += 4 + length


def split_pdus(data: bytes) -> list[RawPdu]:
    """Cut a byte stream made of whole PDUs into them; fails when it ends inside one."""
    pdus = []
    offset = 0
    while offset < len(data):
        pdu_type, length = HEADER.unpack_from(data, offset)
        body = data[offset + HEADER.size : offset + HEADER.size + length]
        assert len(body) == length, "stream ends inside a PDU"
        pdus.append(RawPdu(pdu_type, body))
        offset += HEADER.size + length
    return pdus


def recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes from ``sock``, or None when the peer closed (or reset) before."""
    data = bytearray()
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def recv_pdu(
    sock: socket.socket, max_length: int = 1 << 30, *, may_break_off: bool = False
) -> RawPdu | None:
    """The next PDU from ``sock``, or None when the peer closed between two PDUs.

    A header claiming more than ``max_length`` bytes fails the test, and so does a peer
    closing inside a PDU (not a way for dicomnet to end a connection) unless
    ``may_break_off``: a peer killed on purpose, whose PDU then reads as None too.
    """
    header = recv_exactly(sock, HEADER.size)
    if header is None:
        return None
    pdu_type, length = HEADER.unpack(header)
    assert length <= max_length, f"the peer sent a PDU header claiming {length} bytes"
    body = recv_exactly(sock, length)
    if body is None:
        assert may_break_off, "the peer closed the connection inside a PDU"
        return None
    return RawPdu(pdu_type, body)
