"""The Asynchronous Operations Window (PS3.7 D.3.3.3, PS3.8 D.3.3.3) between real peers.

Over 127.0.0.1 inside this process, on the threaded runtime (as tests/unit/test_net.py):
a DicomNet requestor and acceptor, a scripted socket peer that writes PDUs by hand, and
pynetdicom as requestor. The acceptor here never answers inside its callbacks: it queues
each request and the test thread answers later, in whatever order it likes, so several
requests really are outstanding at once.

What PS3.7 says and is checked: without the 53H item each side may have one request
outstanding; with it, up to the negotiated "invoked" count; responses are matched by
message ID in any order; the item is only sent when asked for; a peer that exceeds the
window gets Resource Limitation (0213) and the association carries on.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from pydicom import Dataset
from rawpdu import recv_pdu

from dicomnet import (
    AcceptPolicy,
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomCommandStatusType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    DicomPduType,
    Timeouts,
    build_accept,
)
from dicomnet.dimse.commands import decode_command_set, encode_command_set
from dicomnet.pdu import (
    CONTROL_COMMAND,
    CONTROL_LAST,
    AssociateAC,
    AssociateRQ,
    PresentationContextRQ,
    ReleaseRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
    pdata_header,
    split_pdvs,
)
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

LOOPBACK = "127.0.0.1"
WAIT = 10.0  # seconds any single wait may take before the test fails
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)
MPPS = "1.2.840.10008.3.1.2.3.3"
RESOURCE_LIMITATION = DicomCommandStatusType.ResourceLimitation
SUCCESS = DicomCommandStatusType.Success


@dataclass(frozen=True)
class HeldRequest:
    """A request the acceptor queued instead of answering."""

    service: str  # "C-ECHO" or "N-GET"
    presentation_id: int
    message_id: int
    affected_class: str
    instance: str


class HoldingAcceptor(DicomNet):
    """Accepts under the listener's policy, keeps the raw A-ASSOCIATE-RQ, and queues every
    C-ECHO and N-GET request for the test to answer."""

    def __init__(self, policy: AcceptPolicy) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.policy = policy
        self.held: queue.Queue[HeldRequest] = queue.Queue()
        self.raw_request: queue.Queue[bytes] = queue.Queue()

    def OnReceive(
        self, error: DicomExceptionCode, pdu_type: DicomPduType, buffer: bytes, bytes: int
    ) -> None:
        if pdu_type == DicomPduType.AssociateRequest:
            self.raw_request.put(buffer)

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.SendAssociateAccept(build_accept(association, self.policy))

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self.held.put(HeldRequest("C-ECHO", presentation_id, message_id, affected_class, ""))

    def OnReceiveNGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        attributes: list[int],
    ) -> None:
        self.held.put(HeldRequest("N-GET", presentation_id, message_id, affected_class, instance))

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()

    def take(self, count: int) -> list[HeldRequest]:
        return [self.held.get(timeout=WAIT) for _ in range(count)]

    def answer(self, request: HeldRequest) -> None:
        """Success; an N-GET gets a data set naming the request it answers."""
        if request.service == "C-ECHO":
            self.SendCEchoResponse(
                request.presentation_id, request.message_id, request.affected_class, SUCCESS
            )
            return
        reply = Dataset()
        reply.PatientID = f"answer-to-{request.message_id}"
        self.SendNGetResponse(
            request.presentation_id,
            request.message_id,
            request.affected_class,
            request.instance,
            SUCCESS,
            reply,
        )


class Listener(DicomNet):
    def __init__(self, policy: AcceptPolicy) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.policy = policy
        self.children: queue.Queue[HoldingAcceptor] = queue.Queue()

    def OnAccept(self, error: DicomExceptionCode) -> None:
        child = HoldingAcceptor(self.policy)
        self.children.put(child)
        self.Accept(child)


class RecordingRequestor(DicomNet):
    """A requestor that keeps the raw A-ASSOCIATE-AC and the order responses came in."""

    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.raw_accept: queue.Queue[bytes] = queue.Queue()
        self.response_order: queue.Queue[int] = queue.Queue()

    def OnReceive(
        self, error: DicomExceptionCode, pdu_type: DicomPduType, buffer: bytes, bytes: int
    ) -> None:
        if pdu_type == DicomPduType.AssociateAccept:
            self.raw_accept.put(buffer)

    def OnReceiveNGetResponse(self, presentation_id: int, message_id: int, *rest: Any) -> None:
        self.response_order.put(message_id)


def policy(window: tuple[int, int] | None) -> AcceptPolicy:
    return AcceptPolicy(
        supported={VERIFICATION: [IMPLICIT_VR_LE], MPPS: [IMPLICIT_VR_LE]},
        async_ops_window=window,
    )


def association_request(window: tuple[int, int] | None) -> DicomAssociate:
    request = DicomAssociate(True)
    request.Calling, request.Called = "WINDOW-SCU", "WINDOW-SCP"
    for context_id, sop_class in ((1, MPPS), (3, VERIFICATION)):
        request.AddPresentationContext(
            context_id, DicomAssociateAcceptResultType.Success, sop_class
        )
        request.AddTransfer(context_id, IMPLICIT_VR_LE)
    if window is not None:
        request.SetAsynchronousOperations(True, *window)
    return request


@pytest.fixture
def nets() -> Iterator[list[DicomNet]]:
    """The threaded runtime for one test; closes every DicomNet the test lists."""
    DicomNet.Startup()
    made: list[DicomNet] = []
    try:
        yield made
    finally:
        for net in reversed(made):
            net.Close()
        DicomNet.Shutdown()


def listen(made: list[DicomNet], window: tuple[int, int] | None) -> Listener:
    listener = Listener(policy(window))
    made.append(listener)
    listener.Listen(LOOPBACK, 0)
    return listener


def associate(
    made: list[DicomNet],
    proposed: tuple[int, int] | None,
    allowed: tuple[int, int] | None,
) -> tuple[RecordingRequestor, HoldingAcceptor, DicomAssociate]:
    listener = listen(made, allowed)
    scu = RecordingRequestor()
    made.append(scu)
    scu.Connect(None, 0, LOOPBACK, listener.HostPort)
    scu.wait_connected(WAIT)
    scu.SendAssociateRequest(association_request(proposed))
    accept = scu.wait_associated(WAIT)
    scp = listener.children.get(timeout=WAIT)
    made.append(scp)
    return scu, scp, accept


def instance_for(message_id: int) -> str:
    return f"1.2.826.0.1.3680043.9.7133.{message_id}"


def send_n_gets(scu: DicomNet, count: int) -> list[int]:
    message_ids = [scu.next_message_id() for _ in range(count)]
    for message_id in message_ids:
        scu.SendNGetRequest(1, message_id, MPPS, instance_for(message_id), [])
    return message_ids


# -- a negotiated window of 16 --------------------------------------------------------------


def test_sixteen_outstanding_requests_answered_in_reverse_are_matched_by_message_id(
    nets: list[DicomNet],
) -> None:
    scu, scp, accept = associate(nets, proposed=(16, 16), allowed=(16, 16))
    assert (accept.InvokedOperationsCount, accept.PerformedOperationsCount) == (16, 16)

    message_ids = send_n_gets(scu, 16)
    held = scp.take(16)  # every request arrived before any was answered
    assert [request.message_id for request in held] == message_ids
    for request in reversed(held):
        scp.answer(request)

    for message_id in message_ids:
        response = scu.wait_response(message_id, WAIT)
        assert response.status == SUCCESS
        assert response.affected_sop_instance_uid == instance_for(message_id)
        reply = response.dataset
        assert reply is not None
        assert reply.PatientID == f"answer-to-{message_id}"
    order = [scu.response_order.get(timeout=WAIT) for _ in message_ids]
    assert order == list(reversed(message_ids))


def test_a_seventeenth_outstanding_request_raises_until_one_is_answered(
    nets: list[DicomNet],
) -> None:
    scu, scp, _ = associate(nets, proposed=(16, 16), allowed=(16, 16))
    send_n_gets(scu, 16)
    held = scp.take(16)

    extra = scu.next_message_id()
    with pytest.raises(DicomException, match="16 request"):
        scu.SendNGetRequest(1, extra, MPPS, instance_for(extra), [])

    scp.answer(held[5])
    scu.wait_response(held[5].message_id, WAIT)
    scu.SendNGetRequest(1, extra, MPPS, instance_for(extra), [])
    (late,) = scp.take(1)
    assert late.message_id == extra
    for request in [*held[:5], *held[6:], late]:
        scp.answer(request)
    assert scu.wait_response(extra, WAIT).status == SUCCESS


def test_a_message_id_still_outstanding_cannot_be_reused(nets: list[DicomNet]) -> None:
    scu, scp, _ = associate(nets, proposed=(4, 4), allowed=(4, 4))
    (message_id,) = send_n_gets(scu, 1)
    with pytest.raises(DicomException, match="already used"):
        scu.SendNGetRequest(1, message_id, MPPS, instance_for(message_id), [])
    scp.answer(scp.take(1)[0])
    assert scu.wait_response(message_id, WAIT).status == SUCCESS


@pytest.mark.parametrize(
    ("proposed", "allowed"),
    [(None, (16, 16)), ((16, 16), None)],
    ids=["not-proposed", "acceptor-allows-one"],
)
def test_without_a_window_the_second_outstanding_request_raises(
    nets: list[DicomNet], proposed: tuple[int, int] | None, allowed: tuple[int, int] | None
) -> None:
    scu, scp, accept = associate(nets, proposed=proposed, allowed=allowed)
    assert (accept.InvokedOperationsCount, accept.PerformedOperationsCount) == (1, 1)
    (first,) = send_n_gets(scu, 1)
    second = scu.next_message_id()
    with pytest.raises(DicomException, match="outstanding"):
        scu.SendNGetRequest(1, second, MPPS, instance_for(second), [])
    scp.answer(scp.take(1)[0])
    scu.wait_response(first, WAIT)
    scu.SendNGetRequest(1, second, MPPS, instance_for(second), [])
    scp.answer(scp.take(1)[0])
    assert scu.wait_response(second, WAIT).status == SUCCESS


@pytest.mark.parametrize(
    ("proposed", "allowed", "in_request", "in_accept"),
    [
        (None, (16, 16), None, None),
        ((16, 8), (4, 0), (16, 8), (4, 8)),
        ((0, 0), (4, 2), (0, 0), (4, 2)),
        ((3, 3), None, (3, 3), (1, 1)),
    ],
    ids=["not-enabled", "acceptor-limits-invoked", "unlimited-request", "synchronous-acceptor"],
)
def test_the_53h_item_is_sent_only_when_enabled_and_answered_within_the_request(
    nets: list[DicomNet],
    proposed: tuple[int, int] | None,
    allowed: tuple[int, int] | None,
    in_request: tuple[int, int] | None,
    in_accept: tuple[int, int] | None,
) -> None:
    scu, scp, _ = associate(nets, proposed=proposed, allowed=allowed)
    request = decode_pdu(scp.raw_request.get(timeout=WAIT))
    accept = decode_pdu(scu.raw_accept.get(timeout=WAIT))
    assert isinstance(request, AssociateRQ)
    assert isinstance(accept, AssociateAC)
    assert request.user_information.async_ops_window == in_request
    assert accept.user_information.async_ops_window == in_accept


# -- a peer that ignores the window -----------------------------------------------------------


class ScriptedPeer:
    """A requestor written by hand: PDUs built with dicomnet.pdu, no window bookkeeping."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=WAIT)

    def close(self) -> None:
        self.sock.close()

    def associate(self) -> AssociateAC:
        request = AssociateRQ(
            called_ae="WINDOW-SCP",
            calling_ae="SCRIPTED",
            presentation_contexts=[PresentationContextRQ(1, VERIFICATION, [IMPLICIT_VR_LE])],
            user_information=UserInformation(
                max_length=16384, implementation_class_uid="1.2.826.0.1.3680043.9.1"
            ),
        )
        self.sock.sendall(encode_pdu(request))
        accept = decode_pdu(self._read_pdu())
        assert isinstance(accept, AssociateAC)
        return accept

    def send_echo(self, message_id: int) -> None:
        command = encode_command_set(
            {
                "CommandField": 0x0030,
                "MessageID": message_id,
                "AffectedSOPClassUID": VERIFICATION,
                "CommandDataSetType": 0x0101,
            }
        )
        self.sock.sendall(pdata_header(1, CONTROL_COMMAND | CONTROL_LAST, len(command)) + command)

    def read_command(self) -> dict[str, object]:
        pdu = self._read_pdu()
        assert pdu[0] == DicomPduType.DataTransfer
        ((context_id, control, fragment),) = split_pdvs(memoryview(pdu)[6:])
        assert (context_id, control) == (1, CONTROL_COMMAND | CONTROL_LAST)
        return decode_command_set(fragment)

    def release(self) -> int:
        self.sock.sendall(encode_pdu(ReleaseRQ()))
        return self._read_pdu()[0]

    def _read_pdu(self) -> bytes:
        received = recv_pdu(self.sock)
        assert received is not None, "the acceptor closed the connection"
        return received.whole


def test_a_peer_exceeding_the_performed_window_gets_resource_limitation(
    nets: list[DicomNet],
) -> None:
    listener = listen(nets, None)
    peer = ScriptedPeer(listener.HostPort)
    try:
        accept = peer.associate()
        assert accept.user_information.async_ops_window is None
        scp = listener.children.get(timeout=WAIT)
        nets.append(scp)

        peer.send_echo(1)
        peer.send_echo(2)  # one more than the (1, 1) default window
        refused = peer.read_command()
        assert refused["CommandField"] == 0x8030
        assert refused["MessageIDBeingRespondedTo"] == 2
        assert refused["Status"] == RESOURCE_LIMITATION
        assert "window" in str(refused["ErrorComment"])

        (first,) = scp.take(1)
        assert first.message_id == 1
        assert scp.held.empty()  # the refused request never reached the application
        scp.answer(first)
        answered = peer.read_command()
        assert (answered["MessageIDBeingRespondedTo"], answered["Status"]) == (1, SUCCESS)

        peer.send_echo(3)  # the association carries on
        scp.answer(scp.take(1)[0])
        assert peer.read_command()["Status"] == SUCCESS
        assert peer.release() == DicomPduType.ReleaseResponse
    finally:
        peer.close()


# -- pynetdicom as requestor, with its own 53H item ---------------------------------------------


@contextlib.contextmanager
def paused_reactor(assoc: Any) -> Iterator[None]:
    """Hold pynetdicom's reactor thread so the test thread reads the DIMSE queue itself,
    exactly as pynetdicom's own send_c_echo does around its send and receive."""
    assoc._reactor_checkpoint.clear()
    deadline = time.monotonic() + WAIT
    while not assoc._is_paused:
        assert time.monotonic() < deadline, "pynetdicom's reactor did not pause"
        time.sleep(0.001)
    try:
        yield
    finally:
        assoc._reactor_checkpoint.set()


def send_echo(assoc: Any, context_id: int, message_id: int) -> None:
    from pynetdicom.dimse_primitives import C_ECHO

    echo = C_ECHO()
    echo.MessageID = message_id
    echo.AffectedSOPClassUID = VERIFICATION
    assoc.dimse.send_msg(echo, context_id)


def next_response(assoc: Any) -> tuple[int, int]:
    """(message ID responded to, status) of the next message pynetdicom received."""
    _, response = assoc.dimse.get_msg(block=True)
    assert response is not None, "no response within the DIMSE timeout"
    return response.MessageIDBeingRespondedTo, response.Status


@dataclass
class PynetdicomRequestor:
    assoc: Any
    context_id: int
    scp: HoldingAcceptor


@contextlib.contextmanager
def pynetdicom_requestor(
    made: list[DicomNet], allowed: tuple[int, int] | None
) -> Iterator[PynetdicomRequestor]:
    """pynetdicom associated with a HoldingAcceptor, having proposed a (8, 4) window; its
    reactor is held so the test reads the DIMSE queue itself."""
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import AsynchronousOperationsWindowNegotiation

    listener = listen(made, allowed)
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 8
    window.maximum_number_operations_performed = 4
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION, IMPLICIT_VR_LE)
    ae.dimse_timeout = WAIT
    assoc = ae.associate(LOOPBACK, listener.HostPort, ae_title="WINDOW-SCP", ext_neg=[window])
    try:
        assert assoc.is_established
        scp = listener.children.get(timeout=WAIT)
        made.append(scp)
        context_id = assoc.accepted_contexts[0].context_id
        assert context_id is not None
        with paused_reactor(assoc):
            yield PynetdicomRequestor(assoc, context_id, scp)
    finally:
        assoc.release()
        ae.shutdown()


def test_pynetdicom_requestor_within_a_granted_window(
    nets: list[DicomNet], require_pynetdicom: ModuleType
) -> None:
    """pynetdicom proposes (8, 4); the acceptor allows (16, 16) and grants (8, 4). Two
    echoes sent back to back are both performed, answered here in reverse order."""
    with pynetdicom_requestor(nets, (16, 16)) as peer:
        assert peer.assoc.acceptor.asynchronous_operations == (8, 4)
        send_echo(peer.assoc, peer.context_id, 1)
        send_echo(peer.assoc, peer.context_id, 2)
        held = peer.scp.take(2)
        assert [request.message_id for request in held] == [1, 2]
        for request in reversed(held):
            peer.scp.answer(request)
        assert [next_response(peer.assoc) for _ in held] == [(2, SUCCESS), (1, SUCCESS)]


def test_pynetdicom_requestor_exceeding_a_refused_window(
    nets: list[DicomNet], require_pynetdicom: ModuleType
) -> None:
    """A synchronous acceptor answers pynetdicom's (8, 4) with (1, 1); pynetdicom does not
    enforce it, so its second outstanding echo gets 0213 at once, the first is answered
    normally and the association carries on."""
    with pynetdicom_requestor(nets, None) as peer:
        assert peer.assoc.acceptor.asynchronous_operations == (1, 1)
        send_echo(peer.assoc, peer.context_id, 1)
        send_echo(peer.assoc, peer.context_id, 2)
        assert next_response(peer.assoc) == (2, RESOURCE_LIMITATION)
        (first,) = peer.scp.take(1)
        assert first.message_id == 1
        peer.scp.answer(first)
        assert next_response(peer.assoc) == (1, SUCCESS)
        send_echo(peer.assoc, peer.context_id, 3)
        peer.scp.answer(peer.scp.take(1)[0])
        assert next_response(peer.assoc) == (3, SUCCESS)
