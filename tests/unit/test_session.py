"""Tests for dicomnet.session, the DIMSE service layer of one association (PS3.7).

Two sessions are joined in memory, with no sockets and no threads: what one queues for
sending is fed to the other, and a fake clock (a plain number) drives every timer. The
assertions are the messages that come out and the statuses PS3.7 and PS3.4 prescribe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydicom import Dataset

from dicomnet import events as ev
from dicomnet.associate import AcceptPolicy, DicomAssociate, build_accept
from dicomnet.config import NetConfig
from dicomnet.dimse.commands import DATA_SET_PRESENT, NO_DATA_SET
from dicomnet.dimse.fragment import BytesSource
from dicomnet.dimse.messages import MESSAGES
from dicomnet.enums import DicomCommandStatusType as Status
from dicomnet.enums import DicomCommandType
from dicomnet.errors import DicomException
from dicomnet.session import (
    AssociationAccepted,
    AssociationRequested,
    DimseReceived,
    DimseSession,
    ResponseTimedOut,
    SessionEvent,
)
from dicomnet.timeouts import Timeouts
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
CANNOT_UNDERSTAND = 0xC000


@dataclass
class Pair:
    """A requestor and an acceptor session joined in memory, and a fake clock."""

    scu: DimseSession
    scp: DimseSession
    now: float = 100.0
    events: dict[str, list[SessionEvent]] = field(default_factory=lambda: {"scu": [], "scp": []})

    def exchange(self) -> None:
        """Move queued bytes both ways until both sides are quiet; collect events."""
        moved = True
        while moved:
            moved = False
            for sender, receiver in ((self.scu, self.scp), (self.scp, self.scu)):
                data = drain_output(sender)
                if data and not receiver.is_closed:
                    feed(receiver, data, self.now)
                    moved = True
            self.collect()

    def collect(self) -> None:
        self.events["scu"] += self.scu.next_events(self.now)
        self.events["scp"] += self.scp.next_events(self.now)

    def take(self, side: str, kind: type) -> list[SessionEvent]:
        found = [e for e in self.events[side] if isinstance(e, kind)]
        self.events[side] = [e for e in self.events[side] if not isinstance(e, kind)]
        return found

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for session in (self.scu, self.scp):
            deadline = session.get_timer()
            if deadline is not None and deadline <= self.now:
                session.handle_timer(self.now)
        self.collect()


def drain_output(session: DimseSession) -> bytes:
    queue = session.engine.send_queue
    data = b"".join(bytes(b) for b in queue.peek(1 << 30))
    queue.consume(len(data))
    return data


def feed(session: DimseSession, data: bytes, now: float) -> None:
    view = memoryview(data)
    while view:
        buffer = session.get_buffer()
        n = min(len(buffer), len(view))
        buffer[:n] = view[:n]
        buffer.release()
        view = view[n:]
        session.buffer_updated(n, now)


def associate(
    scu_config: NetConfig | None = None,
    scp_config: NetConfig | None = None,
    *,
    scp_role_for_store: bool = False,
    window: tuple[int, int] | None = None,
) -> Pair:
    pair = Pair(
        DimseSession(is_requestor=True, config=scu_config or NetConfig()),
        DimseSession(is_requestor=False, config=scp_config or NetConfig()),
    )
    pair.scu.connection_made(pair.now)
    pair.scp.connection_made(pair.now)
    request = DicomAssociate(True)
    request.Called, request.Calling = "SCP", "SCU"
    for context_id, abstract in ((1, VERIFICATION), (3, CT_IMAGE_STORAGE), (5, STUDY_ROOT_FIND)):
        request.AddPresentationContext(context_id, 0, abstract)
        request.AddTransfer(context_id, IMPLICIT_VR_LE)
    if scp_role_for_store:
        request.SetRoleSelect(3, True, 1, 1)
    if window is not None:
        request.SetAsynchronousOperations(True, *window)
    pair.scu.send_associate_rq(request, pair.now)
    pair.exchange()
    [requested] = pair.take("scp", AssociationRequested)
    assert isinstance(requested, AssociationRequested)
    policy = AcceptPolicy(
        supported={
            VERIFICATION: [IMPLICIT_VR_LE],
            CT_IMAGE_STORAGE: [IMPLICIT_VR_LE],
            STUDY_ROOT_FIND: [IMPLICIT_VR_LE],
        },
        requestor_scp_role=[CT_IMAGE_STORAGE],
        async_ops_window=window,
    )
    pair.scp.send_associate_ac(build_accept(requested.request, policy), pair.now)
    pair.exchange()
    assert pair.take("scu", AssociationAccepted)
    return pair


def echo_request(message_id: int) -> dict[str, object]:
    arguments = {"message_id": message_id, "affected_class": VERIFICATION}
    return MESSAGES[DicomCommandType.CEcho].encode(arguments, has_data_set=False)


def response_to(request: DimseReceived, status: int, data: bool = False) -> dict[str, object]:
    message = request.message
    return {
        "CommandField": message.command_field | 0x8000,
        "MessageIDBeingRespondedTo": message.message_id,
        "AffectedSOPClassUID": message.affected_sop_class_uid,
        "Status": status,
        "CommandDataSetType": DATA_SET_PRESENT if data else NO_DATA_SET,
    }


def received(pair: Pair, side: str) -> list[DimseReceived]:
    return [e for e in pair.take(side, DimseReceived) if isinstance(e, DimseReceived)]


def final_statuses(pair: Pair) -> list[int]:
    return [int(e.message.status or 0) for e in received(pair, "scu") if e.final]


# -- requests, responses and the refusals ---------------------------------------------


def test_a_request_reaches_the_acceptor_and_its_response_the_requestor() -> None:
    pair = associate()
    pair.scu.send(1, echo_request(7), None, pair.now)
    pair.exchange()
    [request] = received(pair, "scp")
    assert request.spec is MESSAGES[DicomCommandType.CEcho]
    assert request.expects_response and not request.final
    assert request.spec.arguments(1, request.message.command) == [1, 7, VERIFICATION]
    pair.scp.send(1, response_to(request, Status.Success), None, pair.now)
    pair.exchange()
    [response] = received(pair, "scu")
    assert response.final and response.message.status == Status.Success
    assert not len(pair.scu.operations)


def test_a_request_nobody_handles_is_refused_as_unrecognized() -> None:
    pair = associate()
    pair.scu.send(1, echo_request(1), None, pair.now)
    pair.exchange()
    [request] = received(pair, "scp")
    pair.scp.refuse_unhandled(request.message, pair.now)
    pair.exchange()
    [response] = received(pair, "scu")
    assert response.message.status == Status.UnrecognizedOperation
    assert "no handler for C-ECHO-RQ" in str(response.message.command["ErrorComment"])


def test_a_failing_handler_gets_cannot_understand_for_a_query() -> None:
    pair = associate()
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    command = MESSAGES[DicomCommandType.CFind].encode(
        {"message_id": 2, "affected_class": STUDY_ROOT_FIND, "priority": 0}, True
    )
    data = pair.scu.prepare_data(5, command, identifier)
    pair.scu.send(5, command, data, pair.now)
    pair.exchange()
    [request] = received(pair, "scp")
    assert request.data_set is not None and request.data_set.QueryRetrieveLevel == "STUDY"
    pair.scp.handler_failed(request.message, RuntimeError("index offline"), pair.now)
    pair.exchange()
    [response] = received(pair, "scu")
    assert response.message.status == CANNOT_UNDERSTAND
    assert response.message.command["ErrorComment"] == "RuntimeError: index offline"


def test_an_unreadable_data_set_is_refused_without_reaching_the_application() -> None:
    pair = associate()
    command = MESSAGES[DicomCommandType.CFind].encode(
        {"message_id": 3, "affected_class": STUDY_ROOT_FIND, "priority": 0}, True
    )
    # a sequence of undefined length whose item claims more bytes than follow
    broken = b"\x08\x00\x15\x11\xff\xff\xff\xff\xfe\xff\x00\xe0\x10\x00\x00\x00"
    pair.scu.send(5, command, BytesSource(broken), pair.now)
    pair.exchange()
    assert not received(pair, "scp")
    assert final_statuses(pair) == [CANNOT_UNDERSTAND]


def test_an_unknown_command_field_is_handed_on_and_refused_when_unhandled() -> None:
    pair = associate()
    command = {"CommandField": 0x0042, "MessageID": 9, "CommandDataSetType": NO_DATA_SET}
    pair.scu.engine.send_message(1, command, None, pair.now)  # a peer inventing commands
    pair.scu.operations.invoked(9, 0x0042)
    pair.exchange()
    [request] = received(pair, "scp")
    assert request.spec is None and request.expects_response
    pair.scp.refuse_unhandled(request.message, pair.now)
    pair.exchange()
    assert final_statuses(pair) == [Status.UnrecognizedOperation]


def test_a_response_to_no_outstanding_request_is_dropped() -> None:
    pair = associate()
    stray = {
        "CommandField": 0x8030,
        "MessageIDBeingRespondedTo": 77,
        "Status": 0,
        "CommandDataSetType": NO_DATA_SET,
    }
    pair.scp.send(1, stray, None, pair.now)
    pair.exchange()
    assert not received(pair, "scu")
    assert pair.scu.is_associated


def test_a_message_lacking_mandatory_elements_aborts_the_association() -> None:
    pair = associate()
    command = {"CommandField": DicomCommandType.CEcho, "MessageID": 4}
    command["CommandDataSetType"] = NO_DATA_SET
    pair.scu.engine.send_message(1, command, None, pair.now)
    pair.exchange()
    [aborted] = pair.take("scp", ev.ProviderAborted)
    assert isinstance(aborted, ev.ProviderAborted)
    assert "AffectedSOPClassUID" in aborted.description
    assert pair.take("scu", ev.AbortReceived)


# -- the asynchronous operations window (PS3.7 D.3.3.3) -------------------------------


def test_without_a_window_a_second_outstanding_request_raises() -> None:
    pair = associate()
    pair.scu.send(1, echo_request(1), None, pair.now)
    with pytest.raises(DicomException, match="window allows 1"):
        pair.scu.send(1, echo_request(2), None, pair.now)


def test_a_peer_exceeding_the_window_gets_resource_limitation() -> None:
    pair = associate()
    pair.scu.operations.max_invoked = 0  # a misbehaving requestor ignores the window
    pair.scu.send(1, echo_request(1), None, pair.now)
    pair.scu.send(1, echo_request(2), None, pair.now)
    pair.exchange()
    [first] = received(pair, "scp")
    assert first.message.message_id == 1
    assert final_statuses(pair) == [Status.ResourceLimitation]
    pair.scp.send(1, response_to(first, Status.Success), None, pair.now)
    pair.exchange()
    assert final_statuses(pair) == [Status.Success]
    pair.scu.send(1, echo_request(3), None, pair.now)  # the window is free again
    pair.exchange()
    assert [e.message.message_id for e in received(pair, "scp")] == [3]


def test_a_negotiated_window_allows_that_many_requests_both_ways() -> None:
    pair = associate(window=(3, 2))
    for message_id in (1, 2, 3):
        pair.scu.send(1, echo_request(message_id), None, pair.now)
    with pytest.raises(DicomException):
        pair.scu.send(1, echo_request(4), None, pair.now)
    pair.exchange()
    requests = received(pair, "scp")
    assert len(requests) == 3
    for request in reversed(requests):
        pair.scp.send(1, response_to(request, Status.Success), None, pair.now)
    pair.exchange()
    assert final_statuses(pair) == [0, 0, 0]
    assert pair.scp.operations.max_invoked == 2  # the acceptor invokes "performed" many


# -- roles on a C-GET association (PS3.4 C.5.3) ---------------------------------------


def store_request(message_id: int) -> dict[str, object]:
    arguments = {
        "message_id": message_id,
        "affected_class": CT_IMAGE_STORAGE,
        "instance": "1.2.3.4",
        "priority": 0,
        "move_ae": "",
        "move_message_id": 0,
    }
    return MESSAGES[DicomCommandType.CStore].encode(arguments, True)


def tiny_image() -> Dataset:
    image = Dataset()
    image.SOPClassUID = CT_IMAGE_STORAGE
    image.SOPInstanceUID = "1.2.3.4"
    image.PatientName = "Test^Role"
    return image


def test_the_acceptor_may_not_store_without_the_requestor_taking_the_scp_role() -> None:
    pair = associate()
    command = store_request(1)
    data = pair.scp.prepare_data(3, command, tiny_image())
    with pytest.raises(DicomException, match="SCP role"):
        pair.scp.send(3, command, data, pair.now)


def test_a_requestor_refuses_a_store_on_a_context_without_the_scp_role(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pair = associate()
    pair.scu.temp_path = str(tmp_path)
    command = store_request(1)
    data = BytesSource(b"\x10\x00\x10\x00\x0a\x00\x00\x00Test^Role ")
    pair.scp.engine.send_message(3, command, data, pair.now)  # a peer ignoring the rule
    pair.scp.operations.invoked(1, DicomCommandType.CStore)
    pair.exchange()
    assert not received(pair, "scu")
    [response] = received(pair, "scp")
    assert response.message.status == Status.NotAuthorized
    assert list(tmp_path.iterdir()) == []  # the refused data set left no spool file


def test_with_the_scp_role_sub_operation_stores_reach_the_requestor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pair = associate(scp_role_for_store=True)
    pair.scu.temp_path = str(tmp_path)
    command = store_request(1)
    pair.scp.send(3, command, pair.scp.prepare_data(3, command, tiny_image()), pair.now)
    pair.exchange()
    [store] = received(pair, "scu")
    assert store.data_set is not None and store.data_set.PatientName == "Test^Role"
    assert store.received_file is not None and store.received_file.startswith(str(tmp_path))


# -- timers with the fake clock --------------------------------------------------------


def test_the_dimse_timeout_counts_silence_and_aborts() -> None:
    pair = associate(scu_config=NetConfig(timeouts=Timeouts(dimse=5.0)))
    assert pair.scu.get_timer() is None or pair.scu.get_timer() > pair.now + 5  # idle: none
    pair.scu.send(1, echo_request(1), None, pair.now)
    pair.exchange()
    started = pair.now
    assert pair.scu.get_timer() == started + 5.0
    pair.advance(4.0)
    pair.scu.data_sent(pair.now)  # bytes still going out restart the count
    pair.advance(4.0)
    assert pair.scu.is_associated
    pair.advance(1.0)
    [aborted] = pair.take("scu", ev.ProviderAborted)
    assert isinstance(aborted, ev.ProviderAborted) and aborted.timed_out
    assert "C-ECHO-RQ (message ID 1)" in aborted.description
    pair.exchange()
    assert pair.take("scp", ev.AbortReceived)
    pair.scu.connection_lost(pair.now, "the peer closed after the A-ABORT")
    pair.collect()
    [closed] = pair.take("scu", ev.TransportClosed)
    assert isinstance(closed, ev.TransportClosed) and closed.timed_out


def test_no_dimse_timer_runs_while_nothing_is_outstanding() -> None:
    pair = associate(scu_config=NetConfig(timeouts=Timeouts(dimse=5.0)))
    pair.scu.send(1, echo_request(1), None, pair.now)
    pair.exchange()
    [request] = received(pair, "scp")
    pair.scp.send(1, response_to(request, Status.Success), None, pair.now)
    pair.exchange()
    assert pair.scu.get_timer() is None
    pair.advance(60.0)
    assert pair.scu.is_associated


def test_a_response_deadline_reports_and_keeps_the_association() -> None:
    pair = associate()
    pair.scu.send(1, echo_request(1), None, pair.now)
    pair.scu.expect_response(1, 2.0, pair.now)
    pair.exchange()
    pair.advance(1.5)
    assert not pair.take("scu", ResponseTimedOut)
    pair.advance(0.5)
    [timed_out] = pair.take("scu", ResponseTimedOut)
    assert isinstance(timed_out, ResponseTimedOut) and timed_out.message_id == 1
    assert pair.scu.is_associated
    [request] = received(pair, "scp")
    pair.scp.send(1, response_to(request, Status.Success), None, pair.now)
    pair.exchange()
    assert final_statuses(pair) == [0]  # a late response is still delivered


def test_pending_responses_push_the_response_deadline_back() -> None:
    pair = associate()
    command = MESSAGES[DicomCommandType.CFind].encode(
        {"message_id": 1, "affected_class": STUDY_ROOT_FIND, "priority": 0}, True
    )
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    pair.scu.send(5, command, pair.scu.prepare_data(5, command, identifier), pair.now)
    pair.scu.expect_response(1, 2.0, pair.now)
    pair.exchange()
    [request] = received(pair, "scp")
    for _ in range(4):
        pair.advance(1.5)
        match = Dataset()
        match.PatientID = "1"
        rsp = response_to(request, Status.Pending, data=True)
        pair.scp.send(5, rsp, pair.scp.prepare_data(5, rsp, match), pair.now)
        pair.exchange()
    assert not pair.take("scu", ResponseTimedOut)
    assert len(received(pair, "scu")) == 4
    pair.advance(2.0)
    assert pair.take("scu", ResponseTimedOut)


def test_the_dimse_timeout_aborts_once() -> None:
    pair = associate(scu_config=NetConfig(timeouts=Timeouts(dimse=5.0, artim=30.0)))
    pair.scu.send(1, echo_request(1), None, pair.now)
    pair.exchange()
    pair.advance(5.0)
    assert len(pair.take("scu", ev.ProviderAborted)) == 1
    assert pair.scu.get_timer() == pair.now + 30.0  # only ARTIM, waiting for the close
    pair.advance(10.0)
    assert not pair.take("scu", ev.ProviderAborted)
