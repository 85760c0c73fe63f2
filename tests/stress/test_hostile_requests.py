"""Requests an SCP cannot answer, peers that drip, and sends that race an abort.

A storage SCP built from ``dicomnet.server`` runs in this process on a manually pumped
loop with a ``VirtualClock`` that moves only when a test advances it; a raw socket plays
the hostile peer. Every case ends with
an answer the standard allows (A-ASSOCIATE-RJ, A-ABORT), never with a connection left
waiting, and without error tracebacks for outcomes that are ordinary.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from rawpdu import A_ABORT, ASSOCIATE_AC, ASSOCIATE_RJ, HEADER, P_DATA_TF, RawPdu, split_pdus

from dicomnet import DicomNet, Timeouts
from dicomnet.loop import VirtualClock
from dicomnet.pdu import (
    AssociateRQ,
    PresentationContextRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
)
from dicomnet.server import STORAGE_AND_VERIFICATION, AcceptingServer
from dicomnet.sopclasses import STORAGE_SOP_CLASSES
from dicomnet.uids import IMPLEMENTATION_CLASS_UID, IMPLICIT_VR_LE, VERIFICATION

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IDLE = 5.0


@pytest.fixture
def clock() -> Iterator[VirtualClock]:
    clock = VirtualClock(jump=False)
    DicomNet.Startup(threaded=False, clock=clock)
    try:
        yield clock
    finally:
        DicomNet.Shutdown()


@pytest.fixture
def port(clock: VirtualClock) -> Iterator[int]:
    server = AcceptingServer(
        "STORESCP",
        STORAGE_AND_VERIFICATION,
        timeouts=Timeouts(artim=30, acse=30, idle=IDLE),
        accept_any_transfer_syntax_for=STORAGE_SOP_CLASSES,
    )
    server.Listen("127.0.0.1", 0, 8)
    try:
        yield server.HostPort
    finally:
        server.Dispose()
        pump()


def pump(rounds: int = 20) -> None:
    for _ in range(rounds):
        DicomNet.pump(0)


def request(called: str = "STORESCP", transfer_syntax: str = IMPLICIT_VR_LE) -> bytearray:
    rq = AssociateRQ(
        called_ae=called,
        calling_ae="HOSTILE",
        presentation_contexts=[
            PresentationContextRQ(1, VERIFICATION, [IMPLICIT_VR_LE]),
            PresentationContextRQ(3, CT_IMAGE_STORAGE, [transfer_syntax]),
        ],
        user_information=UserInformation(
            max_length=16384, implementation_class_uid=IMPLEMENTATION_CLASS_UID
        ),
    )
    return bytearray(encode_pdu(rq))


def exchange(port: int, data: bytes) -> tuple[socket.socket, list[tuple[int, bytes]]]:
    """Send ``data`` on a new connection, pump, and read the PDUs that came back."""
    peer = socket.create_connection(("127.0.0.1", port))
    peer.setblocking(False)
    peer.sendall(data)
    pump()
    return peer, read_pdus(peer)


def read_pdus(peer: socket.socket) -> list[RawPdu]:
    """The whole PDUs the non-blocking ``peer`` has received so far."""
    received = b""
    while True:
        try:
            chunk = peer.recv(65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        received += chunk
    return split_pdus(received)


def test_a_transfer_syntax_that_cannot_be_echoed_is_turned_down(port: int) -> None:
    data = request(transfer_syntax="1.2.840.10008.1.2.9")
    data[data.index(b"1.2.840.10008.1.2.9") + 4] = 0xE9  # a non-ASCII byte in the UID
    peer, answers = exchange(port, bytes(data))
    with peer:
        [answer] = answers
        assert answer.type == ASSOCIATE_AC
        ac = decode_pdu(answer.whole)
        results = {pc.context_id: pc.result for pc in ac.presentation_contexts}  # type: ignore[union-attr]
        assert results == {1: 0, 3: 4}  # the storage context: transfer syntaxes not supported


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda data: data.__setitem__(10, 0x01), id="control-character-in-called-ae"),
        pytest.param(
            lambda data: data.__setitem__(data.index(b"1.2.840.10008.3.1.1.1") + 3, ord("x")),
            id="application-context-not-a-uid",
        ),
    ],
)
def test_a_request_the_scp_cannot_answer_is_rejected_at_once(
    port: int, corrupt: object, caplog: pytest.LogCaptureFixture
) -> None:
    data = request()
    corrupt(data)  # type: ignore[operator]
    peer, answers = exchange(port, bytes(data))
    with peer:
        assert [pdu_type for pdu_type, _ in answers] == [ASSOCIATE_RJ]
        rj = decode_pdu(answers[0].whole)
        assert (rj.result, rj.source, rj.reason) == (1, 1, 1)  # type: ignore[union-attr]
    assert not [record for record in caplog.records if record.exc_info]


def test_an_application_that_never_answers_is_cut_off_by_the_acse_timeout(
    clock: VirtualClock,
) -> None:
    class Silent(DicomNet):
        def OnReceiveAssociateRequest(self, association: object) -> None:
            pass  # an answer that never comes (a worker that died)

    class Server(DicomNet):
        def OnAccept(self, error: object) -> None:
            self.Accept(Silent(None, timeouts=Timeouts(acse=10)))

    server = Server(None)
    server.Listen("127.0.0.1", 0, 8)
    try:
        peer, answers = exchange(server.HostPort, bytes(request()))
        with peer:
            clock.advance(9.9)
            pump()
            assert answers + read_pdus(peer) == []
            clock.advance(0.1)
            pump()
            assert [pdu_type for pdu_type, _ in read_pdus(peer)] == [A_ABORT]
    finally:
        server.Dispose()
        pump()


def test_a_peer_dripping_bytes_is_cut_off_by_the_idle_limit(clock: VirtualClock, port: int) -> None:
    peer, answers = exchange(port, bytes(request()))
    with peer:
        assert [pdu_type for pdu_type, _ in answers] == [ASSOCIATE_AC]
        started = clock()
        header = HEADER.pack(P_DATA_TF, 4096)
        for byte in header:  # one byte a second, never a whole PDU
            peer.send(bytes([byte]))
            clock.advance(1.0)
            pump()
            answers = read_pdus(peer)
            if answers:
                break
        assert [pdu_type for pdu_type, _ in answers] == [A_ABORT]
        assert clock() - started == pytest.approx(IDLE)


def test_a_request_and_garbage_in_one_segment_log_no_traceback(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    garbage = HEADER.pack(0x42, 3) + b"xyz"  # an unknown PDU type right behind the RQ
    peer, answers = exchange(port, bytes(request()) + garbage)
    with peer:
        assert [pdu_type for pdu_type, _ in answers] == [A_ABORT]
    assert not [record for record in caplog.records if record.exc_info]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
