"""Hostile and broken peers against samples/echoscp.py, over raw sockets.

A scripted peer sends what no conforming implementation would: random bytes, lying PDU
lengths, unknown PDU types, a request cut short, PDUs out of turn, oversized or
misaddressed P-DATA, undecodable command sets. The assertions are on the bytes the
server sends back, per PS3.8 Table 9-10: before an association (Sta2) an invalid PDU
gets AA-1 (A-ABORT, source 0, service-user); during one (Sta6) AA-8 (A-ABORT, source 2,
service-provider); ARTIM closes a connection that stays silent. After each case the same
server must still answer a normal C-ECHO from samples/echoscu.py.

Valid traffic is taken from a recorded DCMTK echoscu session (tests/fixtures/pdus).
"""

from __future__ import annotations

import random
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The interop helpers start and stop the sample server and run the sample SCU.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
import peers  # noqa: E402
from rawpdu import (  # noqa: E402
    A_ABORT,
    ASSOCIATE_AC,
    ASSOCIATE_RQ,
    HEADER,
    P_DATA_TF,
    RELEASE_RP,
    RawPdu,
    pdata,
    pdu,
    recv_pdu,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pdus"
LOOPBACK = "127.0.0.1"
ARTIM = 1.0  # the server runs with "-to 1"
WAIT = 10.0  # socket timeout: no read may hang longer

SERVICE_USER, SERVICE_PROVIDER = 0, 2
UNRECOGNIZED_PDU, UNEXPECTED_PDU, INVALID_PARAMETER_VALUE = 1, 2, 6


def recorded_requests() -> list[bytes]:
    lines = (FIXTURE / "dcmtk-echoscu_dcmtk-storescp.pdus").read_text().splitlines()
    return [bytes.fromhex(line[2:]) for line in lines if line.startswith(">")]


ECHO_RQ_ASSOCIATE, ECHO_RQ_PDATA, ECHO_RELEASE_RQ = recorded_requests()


class RawPeer:
    """A TCP peer that sends exactly the bytes it is given and reads whole PDUs."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=WAIT)

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_pdu(self) -> RawPdu | None:
        """The next PDU the server sent, or None once it closed the connection."""
        return recv_pdu(self.sock, max_length=1 << 20)

    def read_until_closed(self) -> list[tuple[int, bytes]]:
        """Every PDU until the server closes (a socket timeout fails the test)."""
        replies = []
        while (reply := self.read_pdu()) is not None:
            replies.append(reply)
        return replies

    def associate(self) -> bytes:
        """Send the recorded A-ASSOCIATE-RQ; return the A-ASSOCIATE-AC body."""
        self.send(ECHO_RQ_ASSOCIATE)
        reply = self.read_pdu()
        assert reply is not None
        assert reply[0] == ASSOCIATE_AC, reply
        return reply[1]


def abort_fields(reply: tuple[int, bytes] | None) -> tuple[int, int]:
    """(source, reason) of an A-ABORT PDU (PS3.8 9.3.8); fails on anything else."""
    assert reply is not None, "the server closed without sending A-ABORT"
    pdu_type, body = reply
    assert pdu_type == A_ABORT, f"expected A-ABORT, got PDU type {pdu_type:#04x}"
    assert len(body) == 4
    return body[2], body[3]


def max_length_of(ac_body: bytes) -> int:
    """The Maximum Length sub-item (51H) of an A-ASSOCIATE-AC body."""
    at = ac_body.index(b"\x51\x00\x00\x04")
    return int.from_bytes(ac_body[at + 4 : at + 8], "big")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """One echoscp for every case of this module: surviving them all is the point."""
    with peers.sample_server("echoscp", "-v", "-to", str(ARTIM)) as (server_port, server):
        yield server_port
        assert server.returncode is None, "the server died"


def assert_still_serving(port: int) -> None:
    result = peers.run_sample("echoscu", "-to", "5", LOOPBACK, str(port), timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def closes_without_reply(peer: RawPeer) -> float:
    """Seconds until the server closed; fails if it sent anything first."""
    start = time.monotonic()
    assert peer.read_until_closed() == []
    return time.monotonic() - start


# -- before the association (Sta2) ---------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes(port: int, seed: int) -> None:
    noise = random.Random(seed).randbytes(300)
    with RawPeer(port) as peer:
        peer.send(noise)
        replies = peer.read_until_closed()
    # AA-1 if the bytes make an invalid PDU, AA-2/ARTIM close if they make an A-ABORT or
    # promise more bytes than came: one A-ABORT from the service-user side at most
    assert len(replies) <= 1
    if replies:
        assert abort_fields(replies[0])[0] == SERVICE_USER
    assert_still_serving(port)


@pytest.mark.parametrize("pdu_type", [0x00, ASSOCIATE_RQ, ASSOCIATE_AC, P_DATA_TF, A_ABORT, 0xFF])
def test_garbage_body_of_every_kind_gets_aa1(port: int, pdu_type: int) -> None:
    body = random.Random(pdu_type).randbytes(58)
    with RawPeer(port) as peer:
        peer.send(pdu(pdu_type, body))
        assert abort_fields(peer.read_pdu())[0] == SERVICE_USER
    assert_still_serving(port)


def echo_round_trip(port: int) -> float:
    """Seconds a whole recorded association (request, C-ECHO, release) takes."""
    start = time.monotonic()
    with RawPeer(port) as peer:
        peer.associate()
        peer.send(ECHO_RQ_PDATA)
        response = peer.read_pdu()
        assert response is not None
        assert response[0] == P_DATA_TF
        peer.send(ECHO_RELEASE_RQ)
        assert peer.read_pdu() == (RELEASE_RP, bytes(4))
    return time.monotonic() - start


def test_huge_lying_length_is_refused_at_once(port: int) -> None:
    with RawPeer(port) as peer:
        start = time.monotonic()
        peer.send(HEADER.pack(ASSOCIATE_RQ, 0xFFFFFFF0) + ECHO_RQ_ASSOCIATE[6:])
        assert abort_fields(peer.read_pdu())[0] == SERVICE_USER
        assert time.monotonic() - start < ARTIM  # refused from the header, not timed out
        # more bytes make the server read again: the refused claim must not size its
        # buffer (4 GB), so the loop stays responsive for everybody else
        peer.send(bytes(64))
        assert echo_round_trip(port) < 3.0
    assert_still_serving(port)


def test_length_longer_than_sent_then_close(port: int) -> None:
    body = ECHO_RQ_ASSOCIATE[6:]
    with RawPeer(port) as peer:
        peer.send(HEADER.pack(ASSOCIATE_RQ, len(body) + 100) + body)
        peer.sock.shutdown(socket.SHUT_WR)  # AA-5: the transport closed in Sta2
        assert closes_without_reply(peer) < ARTIM
    assert_still_serving(port)


def test_unknown_pdu_type_gets_aa1(port: int) -> None:
    with RawPeer(port) as peer:
        peer.send(pdu(0x0A, bytes(4)))
        assert abort_fields(peer.read_pdu())[0] == SERVICE_USER
        assert peer.read_until_closed() == []  # and then ARTIM (or we) close it
    assert_still_serving(port)


def test_truncated_request_then_silence_is_closed_by_artim(port: int) -> None:
    with RawPeer(port) as peer:
        peer.send(ECHO_RQ_ASSOCIATE[:40])
        waited = closes_without_reply(peer)
    assert ARTIM * 0.8 <= waited < ARTIM + 5
    assert_still_serving(port)


def test_silent_connection_is_closed_by_artim(port: int) -> None:
    with RawPeer(port) as peer:
        waited = closes_without_reply(peer)
    assert ARTIM * 0.8 <= waited < ARTIM + 5
    assert_still_serving(port)


def test_pdu_of_the_wrong_side_before_association_gets_aa1(port: int) -> None:
    with RawPeer(port) as peer:
        peer.send(ECHO_RELEASE_RQ)  # Evt12 in Sta2
        assert abort_fields(peer.read_pdu())[0] == SERVICE_USER
    assert_still_serving(port)


# -- during the association (Sta6) ---------------------------------------------------------


def test_recorded_session_works_over_the_raw_peer(port: int) -> None:
    """The control case: the valid bytes the other cases start from are answered."""
    assert echo_round_trip(port) < WAIT


def test_second_associate_request_gets_aa8(port: int) -> None:
    with RawPeer(port) as peer:
        peer.associate()
        peer.send(ECHO_RQ_ASSOCIATE)
        assert abort_fields(peer.read_pdu()) == (SERVICE_PROVIDER, UNEXPECTED_PDU)
    assert_still_serving(port)


def test_unknown_pdu_type_during_association_gets_aa8(port: int) -> None:
    with RawPeer(port) as peer:
        peer.associate()
        peer.send(pdu(0x0A, bytes(4)))
        assert abort_fields(peer.read_pdu()) == (SERVICE_PROVIDER, UNRECOGNIZED_PDU)
    assert_still_serving(port)


def test_pdata_longer_than_the_negotiated_maximum_gets_aa8(port: int) -> None:
    with RawPeer(port) as peer:
        limit = max_length_of(peer.associate())
        fragment = bytes(limit)  # + 6 bytes of PDV header: over the limit
        peer.send(pdata(1, 0x03, fragment))
        assert abort_fields(peer.read_pdu()) == (SERVICE_PROVIDER, INVALID_PARAMETER_VALUE)
    assert_still_serving(port)


def test_pdata_on_a_context_that_was_not_accepted_gets_aa8(port: int) -> None:
    misaddressed = bytearray(ECHO_RQ_PDATA)
    misaddressed[10] = 3  # the PDV's presentation context ID; only 1 was proposed
    with RawPeer(port) as peer:
        peer.associate()
        peer.send(bytes(misaddressed))
        assert abort_fields(peer.read_pdu())[0] == SERVICE_PROVIDER
    assert_still_serving(port)


BROKEN_COMMAND_SETS = {
    "garbage": b"\xff" * 10,
    "element overruns the set": struct.pack("<HHL", 0x0000, 0x0100, 400) + b"\x30\x00",
    "no command field": struct.pack("<HHLH", 0x0000, 0x0800, 2, 0x0101),
    # a C-ECHO-RQ without its Message ID (PS3.7 9.3.5 requires it)
    "no message id": (
        struct.pack("<HHLH", 0x0000, 0x0100, 2, 0x0030)
        + struct.pack("<HHLH", 0x0000, 0x0800, 2, 0x0101)
    ),
}


@pytest.mark.parametrize("command_set", BROKEN_COMMAND_SETS.values(), ids=BROKEN_COMMAND_SETS)
def test_malformed_command_set_gets_an_abort(port: int, command_set: bytes) -> None:
    with RawPeer(port) as peer:
        peer.associate()
        peer.send(pdata(1, 0x03, command_set))
        assert abort_fields(peer.read_pdu())[0] == SERVICE_PROVIDER
    assert_still_serving(port)


def test_data_fragment_without_a_command_gets_aa8(port: int) -> None:
    with RawPeer(port) as peer:
        peer.associate()
        peer.send(pdata(1, 0x02, b"\x08\x00\x05\x00CS\x00\x00"))
        assert abort_fields(peer.read_pdu())[0] == SERVICE_PROVIDER
    assert_still_serving(port)


def test_abort_from_the_peer_is_taken_quietly(port: int) -> None:
    with RawPeer(port) as peer:
        peer.associate()
        peer.send(pdu(A_ABORT, bytes(4)))
        assert closes_without_reply(peer) < ARTIM  # AA-3: close, nothing sent
    assert_still_serving(port)


# -- several peers at once -----------------------------------------------------------------


@pytest.mark.slow
def test_misbehaving_peers_do_not_disturb_the_others(port: int) -> None:
    results: list[Any] = []

    def run_echoscu() -> None:
        results.append(peers.run_sample("echoscu", "-r", "3", LOOPBACK, str(port), timeout=30))

    with RawPeer(port) as silent, RawPeer(port) as garbled, RawPeer(port) as good:
        silent.send(ECHO_RQ_ASSOCIATE[:20])  # holds a connection open until ARTIM
        garbled.associate()
        good.associate()
        clients = [threading.Thread(target=run_echoscu) for _ in range(3)]
        for client in clients:
            client.start()
        garbled.send(pdata(1, 0x03, b"\xff" * 10))
        assert abort_fields(garbled.read_pdu())[0] == SERVICE_PROVIDER
        good.send(ECHO_RQ_PDATA)
        response = good.read_pdu()
        assert response is not None
        assert response[0] == P_DATA_TF
        for client in clients:
            client.join(WAIT * 3)
        good.send(ECHO_RELEASE_RQ)
        assert good.read_pdu() == (RELEASE_RP, bytes(4))
        assert silent.read_until_closed() == []
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert_still_serving(port)
