"""Tests for dicomnet.connection, the sans-I/O protocol engine (PS3.8 9.2, annex E).

Two engines are joined in memory: the bytes one queues for sending are handed to the
other's ``receive_data``, and a fake clock (a plain number) drives the timers. The
assertions follow PS3.8 Table 9-10 (states, PDUs sent, indications) rather than the
engine's own bookkeeping. The recorded DCMTK/pynetdicom streams in tests/fixtures/pdus
are replayed into an acceptor as golden input, whole and in arbitrary chunks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawpdu import (
    A_ABORT,
    ASSOCIATE_RJ,
    ASSOCIATE_RQ,
    HEADER,
    P_DATA_TF,
    PDV_HEADER,
    RELEASE_RP,
    RELEASE_RQ,
    pdu,
    pdvs,
    split_pdus,
)

from dicomnet import events as ev
from dicomnet.config import NetConfig
from dicomnet.connection import AcceptedContext, Connection
from dicomnet.dimse.commands import encode_command_set
from dicomnet.dimse.fragment import BytesSource
from dicomnet.dimse.part10 import part10_source, read_part10_header
from dicomnet.errors import DicomException
from dicomnet.fsm import State
from dicomnet.pdu import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
)
from dicomnet.sendqueue import StreamError
from dicomnet.timeouts import Timeouts
from dicomnet.uids import EXPLICIT_VR_LE, IMPLEMENTATION_CLASS_UID, IMPLICIT_VR_LE, VERIFICATION

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pdus"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


# -- helpers -----------------------------------------------------------------------------


def take_output(connection: Connection) -> bytes:
    """Everything the engine has queued for sending, as the writer would send it."""
    data = b"".join(bytes(b) for b in connection.send_queue.peek(1 << 30))
    connection.send_queue.consume(len(data))
    assert not connection.send_queue
    return data


def kinds(events: list[ev.Event]) -> list[type]:
    return [type(event) for event in events]


def make_rq(max_length: int = 16384) -> AssociateRQ:
    return AssociateRQ(
        called_ae="ACCEPTOR",
        calling_ae="REQUESTOR",
        presentation_contexts=[
            PresentationContextRQ(1, VERIFICATION, [IMPLICIT_VR_LE]),
            PresentationContextRQ(3, CT_IMAGE_STORAGE, [EXPLICIT_VR_LE, IMPLICIT_VR_LE]),
            PresentationContextRQ(5, "1.2.3.4.5.6", [IMPLICIT_VR_LE]),
        ],
        user_information=UserInformation(
            max_length=max_length, implementation_class_uid=IMPLEMENTATION_CLASS_UID
        ),
    )


def make_ac(max_length: int = 16384) -> AssociateAC:
    """Accepts contexts 1 and 3 of ``make_rq``; 5 is refused (abstract syntax, result 3)."""
    return AssociateAC(
        called_ae="ACCEPTOR",
        calling_ae="REQUESTOR",
        presentation_contexts=[
            PresentationContextAC(1, 0, IMPLICIT_VR_LE),
            PresentationContextAC(3, 0, EXPLICIT_VR_LE),
            PresentationContextAC(5, 3, IMPLICIT_VR_LE),
        ],
        user_information=UserInformation(
            max_length=max_length, implementation_class_uid=IMPLEMENTATION_CLASS_UID
        ),
    )


def config(timeouts: Timeouts | None = None, **limits: int) -> NetConfig:
    return NetConfig(timeouts=timeouts or Timeouts(), **limits)


class Link:
    """A requestor and an acceptor joined in memory, with a shared fake clock.

    Every PDU that crosses is kept (per direction) so tests can check what was sent.
    """

    def __init__(
        self,
        requestor_timeouts: Timeouts | None = None,
        acceptor_timeouts: Timeouts | None = None,
        acceptor_config: NetConfig | None = None,
    ) -> None:
        self.now = 1000.0
        self.requestor = Connection(is_requestor=True, config=config(requestor_timeouts))
        self.acceptor = Connection(
            is_requestor=False, config=acceptor_config or config(acceptor_timeouts)
        )
        self.wire: dict[Connection, list[tuple[int, bytes]]] = {
            self.requestor: [],
            self.acceptor: [],
        }
        self.requestor.connection_made(self.now)
        self.acceptor.connection_made(self.now)

    def peer(self, connection: Connection) -> Connection:
        return self.acceptor if connection is self.requestor else self.requestor

    def deliver(self, source: Connection) -> list[tuple[int, bytes]]:
        """Hand everything ``source`` queued to its peer; return the PDUs that crossed."""
        data = take_output(source)
        crossed = split_pdus(data)
        self.wire[source] += crossed
        if data:
            self.peer(source).receive_data(data, self.now)
        return crossed

    def associate(self, rq: AssociateRQ | None = None, ac: AssociateAC | None = None) -> None:
        self.requestor.send_associate_rq(rq or make_rq(), self.now)
        self.deliver(self.requestor)
        assert kinds(self.acceptor.next_events()) == [ev.AssociateRequestReceived]
        self.acceptor.send_associate_ac(ac or make_ac(), self.now)
        self.deliver(self.acceptor)
        assert kinds(self.requestor.next_events()) == [ev.AssociateAcceptReceived]

    def close_transport(self) -> None:
        """The side that asked first closes the socket; the other sees the close."""
        closing = self.requestor if self.requestor.close_requested else self.acceptor
        assert closing.close_requested
        self.peer(closing).connection_lost(self.now)


# -- association establishment ----------------------------------------------------------


def test_accept_reaches_data_transfer_on_both_sides() -> None:
    link = Link()
    rq, ac = make_rq(max_length=32768), make_ac(max_length=8192)
    link.requestor.send_associate_rq(rq, link.now)
    assert link.requestor.state is State.Sta5
    (received,) = link.deliver(link.requestor)
    assert received[0] == ASSOCIATE_RQ
    (request,) = link.acceptor.next_events()
    assert request == ev.AssociateRequestReceived(rq)
    assert link.acceptor.state is State.Sta3
    link.acceptor.send_associate_ac(ac, link.now)
    link.deliver(link.acceptor)
    assert link.requestor.next_events() == [ev.AssociateAcceptReceived(ac)]
    for side in (link.requestor, link.acceptor):
        assert side.state is State.Sta6
        assert side.is_associated
        assert side.contexts == {
            1: AcceptedContext(1, VERIFICATION, IMPLICIT_VR_LE),
            3: AcceptedContext(3, CT_IMAGE_STORAGE, EXPLICIT_VR_LE),
        }
    # each side sends no more than the other said it receives
    assert link.requestor.peer_max_pdu == 8192
    assert link.acceptor.peer_max_pdu == 32768
    assert link.requestor.get_timer() is None  # no ACSE wait left, no idle limit set


@pytest.mark.parametrize(
    ("result", "source", "reason"),
    [(1, 1, 7), (2, 3, 1)],  # permanent: called AE unknown; transient: congestion
)
def test_reject_by_the_acceptor_user(result: int, source: int, reason: int) -> None:
    link = Link(acceptor_timeouts=Timeouts(artim=10))
    link.requestor.send_associate_rq(make_rq(), link.now)
    link.deliver(link.requestor)
    link.acceptor.next_events()
    link.acceptor.send_associate_rj(AssociateRJ(result, source, reason), link.now)
    (sent,) = link.deliver(link.acceptor)
    assert sent == (ASSOCIATE_RJ, bytes([0, result, source, reason]))
    # AE-8: the acceptor waits in Sta13 with ARTIM for the requestor to close
    assert link.acceptor.state is State.Sta13
    assert link.acceptor.get_timer() == link.now + 10
    # AE-4: the requestor is told and closes the transport
    assert link.requestor.next_events() == [
        ev.AssociateRejectReceived(AssociateRJ(result, source, reason)),
        ev.TransportClosed(
            f"association rejected (result {result}, source {source}, reason {reason})"
        ),
    ]
    assert link.requestor.state is State.Sta1
    assert link.requestor.close_requested
    link.close_transport()
    assert kinds(link.acceptor.next_events()) == [ev.TransportClosed]
    assert link.acceptor.state is State.Sta1


def test_reject_by_the_provider_for_an_unsupported_protocol_version() -> None:
    link = Link()
    rq = make_rq()
    rq.protocol_version = 2  # bit 0 clear: version 1 not supported by the requestor
    link.requestor.send_associate_rq(rq, link.now)
    link.deliver(link.requestor)
    # AE-6 (not acceptable): no indication to the user, A-ASSOCIATE-RJ from the provider
    assert link.acceptor.next_events() == []
    (sent,) = link.deliver(link.acceptor)
    assert sent == (ASSOCIATE_RJ, bytes([0, 1, 2, 2]))  # permanent, ACSE, protocol version
    assert link.acceptor.state is State.Sta13
    assert kinds(link.requestor.next_events()) == [ev.AssociateRejectReceived, ev.TransportClosed]


def test_send_on_a_context_that_was_not_accepted_is_refused() -> None:
    link = Link()
    link.associate()
    command = {
        "CommandField": 0x0030,
        "MessageID": 1,
        "AffectedSOPClassUID": "1.2.3.4.5.6",
        "CommandDataSetType": 0x0101,
    }
    with pytest.raises(DicomException, match="context 5"):
        link.requestor.send_message(5, command, None, link.now)
    assert not link.requestor.send_queue


def test_primitives_out_of_turn_raise_and_change_nothing() -> None:
    link = Link()
    with pytest.raises(DicomException):
        link.requestor.send_release_rq(link.now)
    with pytest.raises(DicomException):
        link.acceptor.send_associate_ac(make_ac(), link.now)  # no request received yet
    assert link.requestor.state is State.Sta1
    assert link.acceptor.state is State.Sta2


# -- DIMSE messages ----------------------------------------------------------------------


def store_rq(message_id: int) -> dict[str, object]:
    return {
        "CommandField": 0x0001,
        "MessageID": message_id,
        "Priority": 0,
        "AffectedSOPClassUID": CT_IMAGE_STORAGE,
        "AffectedSOPInstanceUID": f"1.2.3.{message_id}",
        "CommandDataSetType": 0x0001,
    }


def echo_rsp(message_id: int) -> dict[str, object]:
    return {
        "CommandField": 0x8030,
        "MessageIDBeingRespondedTo": message_id,
        "AffectedSOPClassUID": VERIFICATION,
        "CommandDataSetType": 0x0101,
        "Status": 0,
    }


def received_messages(connection: Connection) -> list[ev.MessageReceived]:
    events = connection.next_events()
    assert all(isinstance(event, ev.MessageReceived) for event in events), events
    return events  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("requestor_max", "acceptor_max"),
    [(4096, 16384), (16384, 4097), (65536, 4096), (0, 131072), (8192, 0)],
)
def test_messages_cross_both_ways_within_the_receivers_maximum(
    requestor_max: int, acceptor_max: int
) -> None:
    link = Link()
    link.associate(make_rq(max_length=requestor_max), make_ac(max_length=acceptor_max))
    receive_limits = {link.requestor: requestor_max, link.acceptor: acceptor_max}
    data = bytes(range(256)) * 200 + b"\x7f"  # odd length: only the last fragment is odd
    for sender in (link.requestor, link.acceptor):
        receiver = link.peer(sender)
        sender.send_message(3, store_rq(7), BytesSource(data), link.now)
        sender.send_message(1, echo_rsp(8), None, link.now)
        crossed = link.deliver(sender)
        limit = receive_limits[receiver] or 1 << 20  # "no limit" still gets bounded PDUs
        assert all(pdu_type == P_DATA_TF and len(body) <= limit for pdu_type, body in crossed)
        fragments = [pdv for _, body in crossed for pdv in pdvs(body)]
        # all even but the data set's tail (the echo's command set comes after it)
        assert all(len(fragment) % 2 == 0 for *_, fragment in fragments[:-2])
        assert len(fragments[-2][2]) % 2 == 1
        store, echo = received_messages(receiver)
        assert store.message.context_id == 3
        assert store.message.data == data
        assert {k: store.message.command[k] for k in store_rq(7)} == store_rq(7)
        assert echo.message.context_id == 1
        assert echo.message.data is None
        assert {k: echo.message.command[k] for k in echo_rsp(8)} == echo_rsp(8)


def test_a_message_is_cut_into_command_then_data_fragments() -> None:
    link = Link()
    link.associate(make_rq(max_length=4096), make_ac(max_length=4096))
    data = b"\x01\x02" * 5000
    link.requestor.send_message(3, store_rq(1), BytesSource(data), link.now)
    crossed = link.deliver(link.requestor)
    controls = [control for _, body in crossed for _, control, _ in pdvs(body)]
    # PS3.8 E.2: command (bit 0 set) first, last-fragment bit only on each part's end
    assert controls[0] == 0x03
    assert controls[1:-1] == [0x00] * (len(controls) - 2)
    assert controls[-1] == 0x02
    assert sum(len(f) for _, b in crossed for _, c, f in pdvs(b) if not c & 1) == len(data)
    received_messages(link.acceptor)


# -- release ------------------------------------------------------------------------------


def test_release_requested_by_the_requestor() -> None:
    link = Link(acceptor_timeouts=Timeouts(artim=5))
    link.associate()
    link.requestor.send_release_rq(link.now)
    assert link.requestor.state is State.Sta7
    assert link.deliver(link.requestor) == [(RELEASE_RQ, bytes(4))]
    assert link.acceptor.next_events() == [ev.ReleaseRequested()]
    assert link.acceptor.state is State.Sta8
    link.acceptor.send_release_rp(link.now)
    assert link.deliver(link.acceptor) == [(RELEASE_RP, bytes(4))]
    # AR-4: the acceptor waits for the close with ARTIM running
    assert link.acceptor.state is State.Sta13
    assert link.acceptor.get_timer() == link.now + 5
    # AR-3: the requestor is told and closes
    assert link.requestor.next_events() == [
        ev.ReleaseConfirmed(),
        ev.TransportClosed("association ended"),
    ]
    assert link.requestor.state is State.Sta1
    link.close_transport()
    assert link.acceptor.next_events() == [ev.TransportClosed("connection closed by peer")]
    assert link.acceptor.state is State.Sta1
    assert link.acceptor.get_timer() is None


def test_acceptor_closes_when_the_requestor_keeps_the_link_open_after_release() -> None:
    link = Link(acceptor_timeouts=Timeouts(artim=5))
    link.associate()
    link.requestor.send_release_rq(link.now)
    link.deliver(link.requestor)
    link.acceptor.send_release_rp(link.now)
    link.deliver(link.acceptor)
    link.acceptor.next_events()
    link.acceptor.handle_timer(link.now + 4.9)
    assert not link.acceptor.close_requested
    link.acceptor.handle_timer(link.now + 5)
    assert link.acceptor.close_requested
    assert kinds(link.acceptor.next_events()) == [ev.TransportClosed]
    assert link.acceptor.state is State.Sta1


def test_data_still_arrives_while_waiting_for_the_release_response() -> None:
    link = Link()
    link.associate()
    link.requestor.send_release_rq(link.now)
    link.deliver(link.requestor)
    link.acceptor.next_events()
    link.acceptor.send_message(1, echo_rsp(3), None, link.now)  # AR-7: a last response
    link.acceptor.send_release_rp(link.now)
    link.deliver(link.acceptor)
    events = link.requestor.next_events()  # AR-6, then AR-3
    assert kinds(events) == [ev.MessageReceived, ev.ReleaseConfirmed, ev.TransportClosed]


@pytest.mark.parametrize("acceptor_answers_early", [False, True])
def test_release_collision_follows_the_standards_sequence(acceptor_answers_early: bool) -> None:
    """Both users send A-RELEASE-RQ at once (PS3.8 Table 9-10, AR-8 to AR-10)."""
    link = Link()
    link.associate()
    link.requestor.send_release_rq(link.now)
    link.acceptor.send_release_rq(link.now)
    assert (link.requestor.state, link.acceptor.state) == (State.Sta7, State.Sta7)
    link.deliver(link.requestor)
    link.deliver(link.acceptor)
    # AR-8: each side gets the indication; requestor -> Sta9, acceptor -> Sta10
    assert link.requestor.next_events() == [ev.ReleaseRequested()]
    assert link.acceptor.next_events() == [ev.ReleaseRequested()]
    assert (link.requestor.state, link.acceptor.state) == (State.Sta9, State.Sta10)
    if acceptor_answers_early:
        # Sta10 has no Evt14: the answer may be given but must not go out yet
        link.acceptor.send_release_rp(link.now)
        assert link.acceptor.state is State.Sta10
        assert not link.acceptor.send_queue
    link.requestor.send_release_rp(link.now)  # AR-9
    assert link.requestor.state is State.Sta11
    assert link.deliver(link.requestor) == [(RELEASE_RP, bytes(4))]
    assert link.acceptor.next_events() == [ev.ReleaseConfirmed()]  # AR-10 -> Sta12
    if not acceptor_answers_early:
        assert link.acceptor.state is State.Sta12
        assert not link.acceptor.send_queue
        link.acceptor.send_release_rp(link.now)
    assert link.acceptor.state is State.Sta13  # AR-4
    assert link.deliver(link.acceptor) == [(RELEASE_RP, bytes(4))]
    assert link.requestor.next_events() == [  # AR-3
        ev.ReleaseConfirmed(),
        ev.TransportClosed("association ended"),
    ]
    assert link.requestor.state is State.Sta1
    link.close_transport()  # AR-5
    assert kinds(link.acceptor.next_events()) == [ev.TransportClosed]
    assert link.acceptor.state is State.Sta1


# -- abort -------------------------------------------------------------------------------


@pytest.mark.parametrize("aborter_role", ["requestor", "acceptor"])
def test_abort_in_either_direction(aborter_role: str) -> None:
    link = Link()
    link.associate()
    aborter = getattr(link, aborter_role)
    peer = link.peer(aborter)
    aborter.send_abort(0, 0, link.now)
    assert aborter.state is State.Sta13  # AA-1
    assert link.deliver(aborter) == [(A_ABORT, bytes(4))]
    assert peer.next_events() == [  # AA-3, source 0: A-ABORT indication
        ev.AbortReceived(0, 0),
        ev.TransportClosed("peer aborted the association (source 0, reason 0)"),
    ]
    assert peer.state is State.Sta1
    assert peer.close_requested
    aborter.connection_lost(link.now)  # AR-5 analogue for Sta13: the close completes it
    assert kinds(aborter.next_events()) == [ev.TransportClosed]
    assert aborter.state is State.Sta1


def test_abort_cuts_in_after_the_pdu_on_the_wire_and_drops_the_rest() -> None:
    link = Link()
    link.associate(make_rq(max_length=4096), make_ac(max_length=4096))
    link.requestor.send_message(3, store_rq(1), BytesSource(b"\x00\x01" * 20000), link.now)
    first_pdu_part = link.requestor.send_queue.peek(1)
    partial = bytes(first_pdu_part[0])[:3]
    link.requestor.send_queue.consume(len(partial))
    link.requestor.send_abort(0, 0, link.now)
    rest = take_output(link.requestor)
    pdus = split_pdus(partial + rest)
    assert [pdu_type for pdu_type, _ in pdus] == [P_DATA_TF, A_ABORT]
    link.acceptor.receive_data(partial + rest, link.now)
    # the half-sent message is never indicated
    assert kinds(link.acceptor.next_events()) == [ev.AbortReceived, ev.TransportClosed]


def test_lost_connection_while_associated_is_a_provider_abort() -> None:
    link = Link()
    link.associate()
    link.acceptor.connection_lost(link.now, "connection reset")
    assert link.acceptor.next_events() == [  # AA-4
        ev.ProviderAborted(0, "connection reset"),
        ev.TransportClosed("connection reset"),
    ]
    assert link.acceptor.state is State.Sta1


# -- timers ------------------------------------------------------------------------------


def test_artim_closes_a_connection_that_never_sends_an_associate_rq() -> None:
    acceptor = Connection(is_requestor=False, config=config(Timeouts(artim=7)))
    acceptor.connection_made(50.0)
    assert acceptor.state is State.Sta2
    assert acceptor.get_timer() == 57.0
    acceptor.handle_timer(56.9)
    assert not acceptor.close_requested
    acceptor.handle_timer(57.0)
    (closed,) = acceptor.next_events()  # AA-2: close, nothing sent
    assert isinstance(closed, ev.TransportClosed)
    assert closed.timed_out
    assert "ARTIM" in closed.description
    assert acceptor.close_requested
    assert not acceptor.send_queue
    assert acceptor.state is State.Sta1


def test_artim_stops_once_the_associate_rq_arrives() -> None:
    link = Link(acceptor_timeouts=Timeouts(artim=7, acse=None))
    link.requestor.send_associate_rq(make_rq(), link.now)
    link.deliver(link.requestor)
    assert link.acceptor.get_timer() is None  # AE-6 stopped it
    link.acceptor.handle_timer(link.now + 100)
    assert link.acceptor.state is State.Sta3


def test_acse_timeout_without_an_associate_response_aborts() -> None:
    requestor = Connection(is_requestor=True, config=config(Timeouts(acse=5, artim=3)))
    requestor.connection_made(0.0)
    requestor.send_associate_rq(make_rq(), 0.0)
    assert [t for t, _ in split_pdus(take_output(requestor))] == [ASSOCIATE_RQ]
    assert requestor.get_timer() == 5.0
    requestor.handle_timer(4.0)
    assert requestor.next_events() == []
    requestor.handle_timer(5.0)
    (aborted,) = requestor.next_events()
    assert isinstance(aborted, ev.ProviderAborted)
    assert aborted.timed_out
    assert split_pdus(take_output(requestor)) == [(A_ABORT, bytes(4))]
    assert requestor.state is State.Sta13
    # then ARTIM bounds the wait for the peer to close
    assert requestor.get_timer() == 8.0
    requestor.handle_timer(8.0)
    (closed,) = requestor.next_events()
    assert closed == ev.TransportClosed(aborted.description, timed_out=True)


def test_acse_timeout_without_a_release_response_aborts() -> None:
    link = Link(requestor_timeouts=Timeouts(acse=5))
    link.associate()
    link.requestor.send_release_rq(link.now)
    take_output(link.requestor)
    link.requestor.handle_timer(link.now + 5)
    (aborted,) = link.requestor.next_events()
    assert isinstance(aborted, ev.ProviderAborted)
    assert aborted.timed_out
    assert split_pdus(take_output(link.requestor)) == [(A_ABORT, bytes(4))]


@pytest.mark.parametrize("requestor_answers", [False, True], ids=["Sta10", "Sta11"])
def test_acse_timeout_bounds_the_wait_for_the_release_response_after_a_collision(
    requestor_answers: bool,
) -> None:
    """A peer that never sends its A-RELEASE-RP after a release collision (Sta10 on the
    acceptor's side, Sta11 on the requestor's, neither with a timer in PS3.8) is
    aborted like one that never answers in Sta7."""
    link = Link(requestor_timeouts=Timeouts(acse=5), acceptor_timeouts=Timeouts(acse=5))
    link.associate()
    link.requestor.send_release_rq(link.now)
    link.acceptor.send_release_rq(link.now)
    link.deliver(link.requestor)
    link.deliver(link.acceptor)
    link.requestor.next_events()
    link.acceptor.next_events()
    if requestor_answers:
        link.requestor.send_release_rp(link.now)
        take_output(link.requestor)
    waiting = link.requestor if requestor_answers else link.acceptor
    assert waiting.state is (State.Sta11 if requestor_answers else State.Sta10)
    assert waiting.get_timer() == link.now + 5
    waiting.handle_timer(link.now + 5)
    (aborted,) = waiting.next_events()
    assert isinstance(aborted, ev.ProviderAborted)
    assert aborted.timed_out
    assert "A-RELEASE-RP" in aborted.description
    assert split_pdus(take_output(waiting)) == [(A_ABORT, bytes(4))]
    assert waiting.state is State.Sta13


def test_acse_timeout_bounds_an_application_that_never_answers_a_release() -> None:
    """Sta8 (the acceptor's application owes the A-RELEASE response) has no timer in
    PS3.8: an application that never answers must not hold the association for ever."""
    link = Link(acceptor_timeouts=Timeouts(acse=5))
    link.associate()
    link.requestor.send_release_rq(link.now)
    link.deliver(link.requestor)
    assert kinds(link.acceptor.next_events()) == [ev.ReleaseRequested]
    assert link.acceptor.state is State.Sta8
    assert link.acceptor.get_timer() == link.now + 5
    link.acceptor.handle_timer(link.now + 5)
    (aborted,) = link.acceptor.next_events()
    assert isinstance(aborted, ev.ProviderAborted) and aborted.timed_out
    assert "A-RELEASE response from the application" in aborted.description
    assert split_pdus(take_output(link.acceptor)) == [(A_ABORT, bytes(4))]


def test_idle_timeout_counts_from_the_last_received_bytes() -> None:
    link = Link(requestor_timeouts=Timeouts(idle=10))
    link.associate()
    start = link.now
    assert link.requestor.get_timer() == start + 10
    link.now = start + 8
    link.acceptor.send_message(1, echo_rsp(1), None, link.now)
    link.deliver(link.acceptor)
    assert link.requestor.get_timer() == start + 18
    link.requestor.handle_timer(start + 17.9)
    assert kinds(link.requestor.next_events()) == [ev.MessageReceived]
    link.requestor.handle_timer(start + 18)
    (aborted,) = link.requestor.next_events()
    assert isinstance(aborted, ev.ProviderAborted)
    assert aborted.timed_out
    assert split_pdus(take_output(link.requestor)) == [(A_ABORT, bytes(4))]


# -- invalid input -------------------------------------------------------------------------


def abort_sent_for(data: bytes, *, associated: bool) -> tuple[int, bytes] | None:
    """Feed ``data`` to an acceptor (associated or fresh); the PDU it answers with."""
    link = Link()
    if associated:
        link.associate()
    link.acceptor.receive_data(data, link.now)
    sent = split_pdus(take_output(link.acceptor))
    assert len(sent) <= 1
    return sent[0] if sent else None


def test_unrecognized_pdu_before_association_gets_aa1() -> None:
    assert abort_sent_for(b"\x0a\x00\x00\x00\x00\x02\x00\x00", associated=False) == (
        A_ABORT,
        bytes([0, 0, 0, 0]),
    )


def test_unrecognized_pdu_during_association_gets_aa8() -> None:
    sent = abort_sent_for(b"\x0a\x00\x00\x00\x00\x02\x00\x00", associated=True)
    assert sent == (A_ABORT, bytes([0, 0, 2, 1]))  # provider, unrecognized PDU


def test_pdata_longer_than_the_negotiated_maximum_is_aborted_from_its_header() -> None:
    header = b"\x04\x00" + (16385).to_bytes(4, "big")  # make_ac() says 16384
    sent = abort_sent_for(header, associated=True)  # no need to wait for the body
    assert sent == (A_ABORT, bytes([0, 0, 2, 6]))  # provider, invalid parameter value


@pytest.mark.parametrize("pdu_type", [ASSOCIATE_RQ, RELEASE_RQ, 0x0A])
def test_refused_huge_length_leaves_the_receive_buffer_small(pdu_type: int) -> None:
    """The reader asks for a buffer again after the refusal (the link stays open in
    Sta13): the refused header must not size it, or 6 bytes buy any allocation."""
    link = Link()
    link.acceptor.receive_data(HEADER.pack(pdu_type, 200 << 20), link.now)
    assert split_pdus(take_output(link.acceptor))[0][0] == A_ABORT
    assert not link.acceptor.close_requested
    assert len(link.acceptor.get_buffer()) < 16 << 20


def test_pdata_before_association_is_refused_from_its_header() -> None:
    """Evt10 in Sta2 is AA-1 whatever the body holds; waiting for a claimed 60 MB body
    first would let any unassociated peer make the acceptor buffer that much."""
    link = Link()
    link.acceptor.receive_data(HEADER.pack(P_DATA_TF, 60 << 20), link.now)
    assert split_pdus(take_output(link.acceptor)) == [(A_ABORT, bytes(4))]
    assert len(link.acceptor.get_buffer()) < 16 << 20


def test_pdv_on_a_refused_context_is_aborted() -> None:
    fragment = b"\x00" * 8
    pdv = PDV_HEADER.pack(len(fragment) + 2, 5, 0x03) + fragment
    sent = abort_sent_for(HEADER.pack(P_DATA_TF, len(pdv)) + pdv, associated=True)
    assert sent is not None
    assert sent[0] == A_ABORT
    assert sent[1][2] == 2  # service-provider source


@pytest.mark.parametrize("state", [State.Sta3, State.Sta5, State.Sta8])
def test_pdata_out_of_turn_is_an_unexpected_pdu(state: State) -> None:
    """AA-8 for a P-DATA-TF: A-ABORT (provider, reason 2), as for any unexpected PDU,
    and the A-P-ABORT indication gives the same reason."""
    link = Link()
    if state is State.Sta8:
        link.associate()
        link.requestor.send_release_rq(link.now)
        link.deliver(link.requestor)
    else:
        link.requestor.send_associate_rq(make_rq(), link.now)
        link.deliver(link.requestor)
    receiver = link.requestor if state is State.Sta5 else link.acceptor
    receiver.next_events()
    assert receiver.state is state
    echo = encode_command_set({"CommandField": 0x30, "MessageID": 1, "CommandDataSetType": 0x0101})
    pdv = PDV_HEADER.pack(len(echo) + 2, 1, 0x03) + echo
    receiver.receive_data(HEADER.pack(P_DATA_TF, len(pdv)) + pdv, link.now)
    (aborted,) = receiver.next_events()
    assert aborted == ev.ProviderAborted(2, aborted.description)
    assert split_pdus(take_output(receiver)) == [(A_ABORT, bytes([0, 0, 2, 2]))]
    assert receiver.state is State.Sta13


def test_associate_rq_during_association_is_unexpected() -> None:
    link = Link()
    link.associate()
    link.acceptor.receive_data(encode_pdu(make_rq()), link.now)
    (aborted,) = link.acceptor.next_events()
    assert aborted == ev.ProviderAborted(2, aborted.description)  # the reason sent
    assert link.acceptor.state is State.Sta13
    # AA-8 with an unexpected PDU: provider source, reason 2
    assert split_pdus(take_output(link.acceptor)) == [(A_ABORT, bytes([0, 0, 2, 2]))]


# -- recorded streams ----------------------------------------------------------------------


@dataclass
class Recording:
    name: str
    requests: list[bytes]  # requestor -> acceptor PDUs, in order
    answer: bytes  # the acceptor's A-ASSOCIATE-AC or -RJ


def load_recording(path: Path) -> Recording:
    requests: list[bytes] = []
    answers: list[bytes] = []
    for line in path.read_text().splitlines():
        direction, hex_pdu = line.split()
        (requests if direction == ">" else answers).append(bytes.fromhex(hex_pdu))
    return Recording(path.stem, requests, answers[0])


RECORDINGS = [load_recording(path) for path in sorted(FIXTURES.glob("*.pdus"))]


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` in pieces whose sizes cycle through ``sizes``."""
    offset, turn = 0, 0
    while offset < len(data):
        size = sizes[turn % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        turn += 1


def replay(recording: Recording, sizes: list[int] | None) -> list[ev.Event]:
    """Play the requestor's side of ``recording`` into an acceptor that answers as the
    recorded acceptor did; chunk ``sizes`` cut the stream (None: one PDU per read)."""
    acceptor = Connection(is_requestor=False)
    acceptor.connection_made(0.0)

    def feed(data: list[bytes]) -> None:
        pieces = data if sizes is None else chunked(b"".join(data), sizes)
        for piece in pieces:
            acceptor.receive_data(piece, 0.0)

    feed(recording.requests[:1])
    events = acceptor.next_events()
    assert kinds(events) == [ev.AssociateRequestReceived]
    answer = decode_pdu(recording.answer)
    if isinstance(answer, AssociateAC):
        acceptor.send_associate_ac(answer, 0.0)
    else:
        assert isinstance(answer, AssociateRJ)
        acceptor.send_associate_rj(answer, 0.0)
    # the same answer the recorded peer gave (sub-item order may differ from its bytes)
    assert decode_pdu(take_output(acceptor)) == answer
    feed(recording.requests[1:])
    return events + acceptor.next_events()


def recorded_data_set(recording: Recording) -> bytes:
    """The data set fragments of the requestor's P-DATA-TF PDUs, joined (golden value)."""
    return b"".join(
        fragment
        for raw in recording.requests
        if raw[0] == P_DATA_TF
        for _, control, fragment in pdvs(raw[6:])
        if not control & 0x01
    )


def recording(name: str) -> Recording:
    return next(r for r in RECORDINGS if r.name == name)


def test_every_recording_is_replayed() -> None:
    assert len(RECORDINGS) == 6


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda r: r.name)
def test_recorded_stream_gives_the_expected_events(rec: Recording) -> None:
    events = replay(rec, None)
    requested = events[0]
    assert isinstance(requested, ev.AssociateRequestReceived)
    assert requested.pdu == decode_pdu(rec.requests[0])
    messages = [e.message for e in events if isinstance(e, ev.MessageReceived)]
    data = recorded_data_set(rec)
    if data:
        (store,) = messages
        assert store.command_field == 0x0001
        assert store.data == data
    last_pdu = rec.requests[-1][0]
    if last_pdu == RELEASE_RQ:
        assert isinstance(events[-1], ev.ReleaseRequested)
    elif last_pdu == A_ABORT:
        assert kinds(events[-2:]) == [ev.AbortReceived, ev.TransportClosed]
    else:  # rejected: the request was the whole conversation
        assert len(rec.requests) == 1
        assert events == [requested]


def test_recorded_echo_gives_one_c_echo_rq() -> None:
    events = replay(recording("dcmtk-echoscu_dcmtk-storescp"), None)
    assert kinds(events) == [ev.AssociateRequestReceived, ev.MessageReceived, ev.ReleaseRequested]
    message = events[1].message  # type: ignore[union-attr]
    assert message.command_field == 0x0030
    assert message.affected_sop_class_uid == VERIFICATION
    assert message.data is None


SMALL_RECORDINGS = [r for r in RECORDINGS if sum(map(len, r.requests)) < 1 << 16]


@pytest.mark.parametrize("rec", SMALL_RECORDINGS, ids=lambda r: r.name)
def test_recorded_stream_byte_by_byte_gives_the_same_events(rec: Recording) -> None:
    assert replay(rec, [1]) == replay(rec, None)


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda r: r.name)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(min_value=1, max_value=70000), min_size=1, max_size=12))
def test_recorded_stream_in_random_chunks_gives_the_same_events(
    rec: Recording, sizes: list[int]
) -> None:
    assert replay(rec, sizes) == replay(rec, None)


# -- limits and the receive buffer ---------------------------------------------------------


def test_a_claimed_length_buys_no_memory_until_its_bytes_arrive() -> None:
    """With "no limit" advertised, a P-DATA-TF may claim up to the hard limit; the buffer
    grows only as the PDU's bytes come, at most doubling what has arrived."""
    link = Link(acceptor_config=config(receive_buffer=4096))
    link.associate(make_rq(), make_ac(max_length=0))
    claimed = 40 << 20
    fragment = bytes(6 << 20)
    pdv_header = PDV_HEADER.pack(claimed - 4, 3, 0x03)
    link.acceptor.receive_data(HEADER.pack(P_DATA_TF, claimed) + pdv_header, link.now)
    assert len(link.acceptor.get_buffer()) <= 4096
    arrived = 12
    for start in range(0, len(fragment), 1 << 20):
        piece = fragment[start : start + (1 << 20)]
        link.acceptor.receive_data(piece, link.now)
        arrived += len(piece)
        free = len(link.acceptor.get_buffer())
        assert arrived + free <= 2 * arrived + 4096
    assert not link.acceptor.close_requested
    assert link.acceptor.next_events() == []  # still waiting for the rest of the PDU


def test_the_hard_pdu_limit_comes_from_the_config() -> None:
    link = Link(acceptor_config=config(hard_pdu_limit=100_000))
    link.associate(make_rq(), make_ac(max_length=0))
    link.acceptor.receive_data(HEADER.pack(P_DATA_TF, 100_001), link.now)
    assert split_pdus(take_output(link.acceptor)) == [(A_ABORT, bytes([0, 0, 2, 6]))]


def test_the_largest_other_pdu_comes_from_the_config() -> None:
    acceptor = Connection(is_requestor=False, config=config(max_non_pdata_length=256))
    acceptor.connection_made(0.0)
    rq = encode_pdu(make_rq())
    assert len(rq) - 6 > 256
    acceptor.receive_data(rq[:6], 0.0)  # refused from its header alone
    assert split_pdus(take_output(acceptor)) == [(A_ABORT, bytes(4))]
    assert acceptor.next_events() == []


def test_reads_that_fill_the_buffer_grow_it_up_to_the_busy_size() -> None:
    link = Link(acceptor_config=config(receive_buffer=1024, max_receive_buffer=4096))
    link.associate()
    for message_id in range(200):
        link.requestor.send_message(1, echo_rsp(message_id), None, link.now)
    stream = memoryview(take_output(link.requestor))
    sizes = []
    while stream:  # a peer faster than the reader: every read fills the buffer
        buffer = link.acceptor.get_buffer()
        n = min(len(buffer), len(stream))
        sizes.append(len(buffer))
        buffer[:n] = stream[:n]
        buffer.release()
        stream = stream[n:]
        link.acceptor.buffer_updated(n, link.now)
    # free space offered (a partial PDU may occupy the rest): doubling, then capped
    assert sizes[0] == 1024 < sizes[1] <= 2048 < sizes[2] <= 4096
    assert max(sizes) <= 4096
    assert len(received_messages(link.acceptor)) == 200


def test_timeouts_come_from_the_config() -> None:
    acceptor = Connection(is_requestor=False, config=config(Timeouts(artim=3)))
    acceptor.connection_made(10.0)
    assert acceptor.timeouts.artim == 3
    assert acceptor.get_timer() == 13.0


# -- a message that cannot be produced while it is sent ---------------------------------


def write_part10_file(path: Path, data_length: int) -> Path:
    """A CT image Part-10 file (explicit VR little endian) of about ``data_length``
    bytes of data set."""
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = "1.2.3.4.99"
    ds.PixelData = bytes(range(256)) * (data_length // 256)
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    ds.save_as(path, enforce_file_format=True)
    return path


def drain_like_the_loop(connection: Connection, write_limit: int = 1 << 30) -> bytes:
    """Write the send queue as ``StreamChannel._write`` does, handing a failed stream
    to the engine; at most ``write_limit`` bytes."""
    written = bytearray()
    queue = connection.send_queue
    while queue and len(written) < write_limit:
        try:
            buffers = queue.peek(1 << 20)
        except StreamError as failure:
            connection.stream_failed(failure, 0.0)
            continue
        data = b"".join(bytes(b) for b in buffers)[: write_limit - len(written)]
        queue.consume(len(data))
        written += data
    return bytes(written)


def store_of_truncated_file(tmp_path: Path, keep: int) -> tuple[Link, int]:
    """Queue a C-STORE of a 3 MiB Part-10 file, then cut its data set to ``keep`` bytes."""
    path = write_part10_file(tmp_path / "image.dcm", 3 << 20)
    part10 = read_part10_header(path)
    link = Link()
    link.associate(make_rq(max_length=16384), make_ac(max_length=16384))
    link.requestor.send_message(3, store_rq(41), part10_source(part10, EXPLICIT_VR_LE), link.now)
    os.truncate(path, part10.data_offset + keep)
    return link, part10.data_length


@pytest.mark.parametrize("keep", [0, 1_500_000])
def test_a_file_truncated_while_queued_aborts_after_the_pdus_already_made(
    tmp_path: Path, keep: int
) -> None:
    link, _ = store_of_truncated_file(tmp_path, keep)
    link.requestor.send_message(1, echo_rsp(7), None, link.now)  # queued behind: never sent
    pdus = split_pdus(drain_like_the_loop(link.requestor))
    assert [t for t, _ in pdus[:-1]] == [P_DATA_TF] * (len(pdus) - 1)
    assert pdus[-1] == (A_ABORT, bytes([0, 0, 2, 0]))  # service provider, not specified
    controls = [c for _, body in pdus[:-1] for _, c, _ in pdvs(body)]
    if keep == 0:  # the failure came before any PDU was written: the abort goes alone
        assert controls == []
    else:  # the whole command, then data never marked last, then nothing but the abort
        assert controls[0] == 0x03
        assert set(controls[1:]) == {0x00}
        sent_data = sum(len(f) for _, body in pdus[:-1] for _, c, f in pdvs(body) if c == 0)
        assert 0 < sent_data <= keep
    events = link.requestor.next_events()
    assert kinds(events) == [ev.SendFailed, ev.ProviderAborted]
    failed = events[0]
    assert isinstance(failed, ev.SendFailed)
    assert (failed.context_id, failed.message_id, failed.command_field) == (3, 41, 0x0001)
    assert "shorter" in failed.description
    assert events[1] == ev.ProviderAborted(0, failed.description)
    assert link.requestor.state is State.Sta13  # AA-1: waits for the peer to close
    assert not link.requestor.send_queue
    link.acceptor.receive_data(b"".join(pdu(t, b) for t, b in pdus), link.now)
    assert kinds(link.acceptor.next_events()) == [ev.AbortReceived, ev.TransportClosed]
    link.requestor.connection_lost(link.now)
    assert link.requestor.next_events() == [ev.TransportClosed(failed.description, timed_out=False)]


def test_a_failure_with_a_pdu_half_written_finishes_that_pdu_then_aborts(
    tmp_path: Path,
) -> None:
    link, _ = store_of_truncated_file(tmp_path, 1_500_000)
    queue = link.requestor.send_queue
    # the writer got part way into a data PDU made from the first, readable, MiB
    head = drain_like_the_loop(link.requestor, write_limit=(1 << 20) - 5000)
    assert link.requestor.next_events() == []
    rest = drain_like_the_loop(link.requestor)
    pdus = split_pdus(head + rest)  # whole PDUs: the half one was finished
    assert pdus[-1] == (A_ABORT, bytes([0, 0, 2, 0]))
    assert all(t == P_DATA_TF for t, _ in pdus[:-1])
    assert kinds(link.requestor.next_events()) == [ev.SendFailed, ev.ProviderAborted]
    assert not queue


def test_a_deleted_file_fails_its_response_message_by_the_id_it_answers(
    tmp_path: Path,
) -> None:
    path = write_part10_file(tmp_path / "gone.dcm", 4096)
    link = Link()
    link.associate()
    response = {
        "CommandField": 0x8010,  # a C-GET response carrying a data set
        "MessageIDBeingRespondedTo": 9,
        "AffectedSOPClassUID": CT_IMAGE_STORAGE,
        "CommandDataSetType": 0x0001,
        "Status": 0xFF00,
    }
    source = part10_source(read_part10_header(path), EXPLICIT_VR_LE)
    link.acceptor.send_message(3, response, source, link.now)
    path.unlink()
    drain_like_the_loop(link.acceptor)
    failed, aborted = link.acceptor.next_events()
    assert isinstance(failed, ev.SendFailed)
    assert (failed.message_id, failed.command_field) == (9, 0x8010)
    assert "cannot read" in failed.description
    assert isinstance(aborted, ev.ProviderAborted)


def test_a_peer_abort_drops_what_was_still_queued() -> None:
    link = Link()
    link.associate()
    link.acceptor.send_message(3, store_rq(1), BytesSource(bytes(100_000)), link.now)
    link.requestor.send_abort(0, 0, link.now)
    link.deliver(link.requestor)
    assert kinds(link.acceptor.next_events()) == [ev.AbortReceived, ev.TransportClosed]
    assert link.acceptor.close_requested
    assert not link.acceptor.send_queue  # AA-3 closes: nothing more goes out
