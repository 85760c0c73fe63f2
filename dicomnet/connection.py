"""The protocol engine of one association: bytes and time in, events and bytes out.

Sans-I/O (the h11 / aioquic shape): it never touches a socket or reads a clock. The I/O
layer calls ``get_buffer``/``buffer_updated`` with received bytes, ``handle_timer`` when
``get_timer`` says so, and the ``send_*`` primitives on behalf of the user; it writes what
``send_queue`` holds and closes the transport when ``close_requested`` turns true. What
happened comes out of ``next_events``.

Inside, the PS3.8 9.2 state machine (``fsm``) decides every transition; this module frames
the byte stream into PDUs (PS3.8 9.3), runs the actions' effects (send a PDU, start ARTIM,
indicate to the user, close), keeps the negotiated presentation contexts and maximum PDU
lengths, and turns P-DATA-TF PDVs into DIMSE messages (PS3.7, PS3.8 annex E).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from . import events as ev
from .dimse.assembly import MessageAssembler, SinkFactory
from .dimse.commands import describe_command, encode_command_set
from .dimse.fragment import DataSource, iter_message_pdus
from .enums import DicomAbortReasonType, DicomAbortSourceType, DicomPduType
from .errors import DicomException, DicomExceptionCode, DIMSEError, PDUError
from .fsm import Effect, Event, InvalidTransition, State, StateMachine, Transition
from .pdu import (
    MAX_SANE_NON_PDATA_LENGTH,
    PDU,
    PDU_HEADER,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    ReleaseRP,
    ReleaseRQ,
    decode_pdu,
    describe_pdu,
    encode_pdu,
    iter_pdvs,
)
from .sendqueue import SendQueue
from .timeouts import Timeouts

log = logging.getLogger("dicomnet.connection")

# Receiving side: PDUs larger than this are refused even when we advertised "no limit" (0),
# so a lying peer cannot make us allocate without bound.
HARD_PDU_LIMIT = 64 << 20
_MIN_FREE_RECEIVE_SPACE = 64 << 10

_PDU_EVENTS = {
    DicomPduType.AssociateRequest: Event.Evt6,
    DicomPduType.AssociateAccept: Event.Evt3,
    DicomPduType.AssociateReject: Event.Evt4,
    DicomPduType.DataTransfer: Event.Evt10,
    DicomPduType.ReleaseRequest: Event.Evt12,
    DicomPduType.ReleaseResponse: Event.Evt13,
    DicomPduType.Abort: Event.Evt16,
}

# States in which the association exists for DIMSE purposes (data may flow).
ASSOCIATED_STATES = frozenset(
    {State.Sta6, State.Sta7, State.Sta8, State.Sta9, State.Sta10, State.Sta11, State.Sta12}
)


@dataclass(frozen=True)
class AcceptedContext:
    """A presentation context the association may use."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


class Connection:
    """One association's protocol state; see the module docstring for the contract."""

    def __init__(
        self,
        *,
        is_requestor: bool,
        timeouts: Timeouts | None = None,
        sink_factory: SinkFactory | None = None,
        report_pdus: bool = False,
        name: str = "",
    ) -> None:
        self.fsm = StateMachine(is_requestor)
        self.timeouts = timeouts or Timeouts()
        self.report_pdus = report_pdus
        self.name = name or ("requestor" if is_requestor else "acceptor")
        self.send_queue = SendQueue()
        self.close_requested = False
        self.contexts: dict[int, AcceptedContext] = {}
        self.local_max_pdu = 0  # what we told the peer we receive (0 = no limit)
        self.peer_max_pdu = 0  # what the peer receives (0 = no limit)
        self.associate_rq: AssociateRQ | None = None
        self.associate_ac: AssociateAC | None = None

        self._events: deque[ev.Event] = deque()
        self._assembler = MessageAssembler(sink_factory)
        self._rbuf = bytearray(256 << 10)
        self._rstart = 0
        self._rend = 0
        self._discard_input = False
        self._closed = False
        self._artim_deadline: float | None = None
        self._acse_deadline: float | None = None
        self._idle_deadline: float | None = None
        self._outgoing: dict[str, object] = {}  # what the next SEND_* effect sends
        self._abort_reason = 0
        self._end_description = ""
        self._timed_out = False  # the association ended because a timeout fired
        self._release_response_held = False

    # -- state -----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.fsm.state

    @property
    def is_requestor(self) -> bool:
        return self.fsm.is_requestor

    @property
    def is_associated(self) -> bool:
        return self.fsm.state in ASSOCIATED_STATES

    @property
    def is_closed(self) -> bool:
        return self._closed

    def next_events(self) -> list[ev.Event]:
        """Everything that happened since the last call, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    # -- transport -------------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """The transport is up. An acceptor starts ARTIM and waits for A-ASSOCIATE-RQ."""
        if not self.is_requestor:
            self._apply(self._transition(Event.Evt5), now)

    def connection_lost(self, now: float, description: str = "connection closed by peer") -> None:
        """The transport closed or failed (PS3.8 Evt17)."""
        if self._closed:
            return
        if self.fsm.state is State.Sta1:
            self._finish(description)
            return
        self._end_description = self._end_description or description
        self._apply(self._transition(Event.Evt17), now)
        self._finish(self._end_description)

    def close(self, description: str = "closed by the local user") -> None:
        """Close the transport now, whatever the state (LEADTOOLS ``Close``)."""
        if self._closed:
            return
        self.send_queue.cancel_pending()
        self._assembler.discard()
        self.close_requested = True
        self._finish(description)

    # -- receiving -------------------------------------------------------------------

    def get_buffer(self) -> memoryview:
        """Writable space for the next ``recv_into`` (at least 64 KiB)."""
        if self._discard_input:  # refused input: never size the buffer from its header
            self._rstart = self._rend = 0
        needed = _MIN_FREE_RECEIVE_SPACE
        pending = self._rend - self._rstart
        if pending >= PDU_HEADER.size:
            pdu_type, length = PDU_HEADER.unpack_from(self._rbuf, self._rstart)
            needed = max(needed, PDU_HEADER.size + length - pending)
        if len(self._rbuf) - self._rend < needed:
            self._make_room(pending + needed)
        return memoryview(self._rbuf)[self._rend :]

    def buffer_updated(self, nbytes: int, now: float) -> None:
        """``nbytes`` were written into the buffer from ``get_buffer``; process them."""
        self._rend += nbytes
        if self._idle_deadline is not None and self.timeouts.idle is not None:
            self._idle_deadline = now + self.timeouts.idle
        self._process_input(now)

    def receive_data(self, data: bytes | memoryview, now: float) -> None:
        """Convenience for tests and byte-stream transports: copy ``data`` in and process."""
        view = memoryview(data)
        while view:
            buf = self.get_buffer()
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            buf.release()
            view = view[n:]
            self.buffer_updated(n, now)

    def _make_room(self, capacity: int) -> None:
        pending = self._rend - self._rstart
        if capacity > len(self._rbuf):
            new = bytearray(max(capacity, 2 * len(self._rbuf)))
            new[:pending] = self._rbuf[self._rstart : self._rend]
            self._rbuf = new
        else:
            self._rbuf[:pending] = self._rbuf[self._rstart : self._rend]
        self._rstart, self._rend = 0, pending

    def _process_input(self, now: float) -> None:
        buf = self._rbuf
        while not self._discard_input and self._rend - self._rstart >= PDU_HEADER.size:
            pdu_type, length = PDU_HEADER.unpack_from(buf, self._rstart)
            problem = self._check_pdu_header(pdu_type, length)
            if problem:
                self._discard_input = True
                reason, description = problem
                self._invalid_pdu(reason, description, now)
                break
            end = self._rstart + PDU_HEADER.size + length
            if end > self._rend:
                break
            with memoryview(buf)[self._rstart : end] as view:
                self._rstart = end
                self._handle_pdu(pdu_type, view, now)
        # Data fragments may still point into the receive buffer: write them out before
        # the buffer is reused.
        self._assembler.flush()
        if self._rstart == self._rend:
            self._rstart = self._rend = 0

    def _check_pdu_header(self, pdu_type: int, length: int) -> tuple[int, str] | None:
        if pdu_type not in _PDU_EVENTS:
            return (
                DicomAbortReasonType.Unrecognized,
                f"unrecognized PDU type 0x{pdu_type:02X} (length {length})",
            )
        if pdu_type == DicomPduType.DataTransfer and self.is_associated:
            limit = self.local_max_pdu or HARD_PDU_LIMIT
            if length > limit:
                return (
                    DicomAbortReasonType.InvalidParameterValue,
                    f"P-DATA-TF PDU of {length} bytes exceeds the negotiated maximum {limit}",
                )
        elif length > MAX_SANE_NON_PDATA_LENGTH:
            return (
                DicomAbortReasonType.InvalidParameterValue,
                f"{DicomPduType(pdu_type).name} PDU claims {length} bytes",
            )
        return None

    def _handle_pdu(self, pdu_type: int, view: memoryview, now: float) -> None:
        if self.report_pdus:
            self._events.append(ev.PduReceived(pdu_type, bytes(view)))
        if pdu_type == DicomPduType.DataTransfer:
            self._handle_pdata(view, now)
            return
        try:
            pdu = decode_pdu(view)
        except PDUError as exc:
            self._invalid_pdu(DicomAbortReasonType.InvalidParameterValue, str(exc), now)
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s received:\n%s", self.name, describe_pdu(pdu))
        event = _PDU_EVENTS[DicomPduType(pdu_type)]
        acceptable = True
        if isinstance(pdu, AssociateRQ):
            acceptable = bool(pdu.protocol_version & 1)
            if not acceptable:  # AE-6 rejects: permanent, ACSE provider, protocol version
                self._outgoing["rj"] = AssociateRJ(1, 2, 2)
        try:
            transition = self.fsm.handle(event, request_acceptable=acceptable)
        except InvalidTransition:
            self._unexpected_outside_table(pdu_type, now)
            return
        if isinstance(pdu, Abort):
            self._end_description = (
                f"peer aborted the association (source {pdu.source}, reason {pdu.reason})"
            )
        self._apply(transition, now, pdu)

    def _handle_pdata(self, view: memoryview, now: float) -> None:
        # In Sta6, DT-2 indicates the data and changes nothing else: skip the table on
        # this hot path (one call per PDU); every other state goes through it.
        if self.fsm.state is not State.Sta6:
            try:
                transition = self.fsm.handle(Event.Evt10)
            except InvalidTransition:
                self._unexpected_outside_table(DicomPduType.DataTransfer, now)
                return
            self._apply(transition, now)
            if Effect.INDICATE_PDATA not in transition.effects:
                return
        try:
            for context_id, control, fragment in iter_pdvs(view[PDU_HEADER.size :]):
                if context_id not in self.contexts:
                    raise DIMSEError(f"PDV on presentation context {context_id}, not accepted")
                message = self._assembler.feed(context_id, control, fragment)
                if message is not None:
                    if log.isEnabledFor(logging.INFO):
                        log.info("%s received %s", self.name, describe_command(message.command))
                    self._events.append(ev.MessageReceived(message))
        except (PDUError, DIMSEError) as exc:
            self._invalid_pdu(DicomAbortReasonType.InvalidParameterValue, str(exc), now)

    def _unexpected_outside_table(self, pdu_type: int, now: float) -> None:
        """A PDU arrived where Table 9-10 defines nothing (before the association starts)."""
        self._discard_input = True
        self._end_description = (
            f"unexpected {DicomPduType(pdu_type).name} PDU in state {self.fsm.state.name}"
        )
        self.close_requested = True
        self._finish(self._end_description)

    def _invalid_pdu(self, reason: int, description: str, now: float) -> None:
        """Evt19: an unrecognized or invalid PDU; the table says how to abort."""
        log.warning("%s: %s", self.name, description)
        self._discard_input = True
        self._abort_reason = reason
        self._end_description = description
        try:
            transition = self.fsm.handle(Event.Evt19)
        except InvalidTransition:
            self.close_requested = True
            self._finish(description)
            return
        self._apply(transition, now)

    # -- timers ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline at which ``handle_timer`` must be called, if any."""
        deadlines = [
            d
            for d in (self._artim_deadline, self._acse_deadline, self._idle_deadline)
            if d is not None
        ]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if self._artim_deadline is not None and now >= self._artim_deadline:
            self._artim_deadline = None
            waiting_for_request = self.state is State.Sta2
            if waiting_for_request:
                self._end_description = (
                    f"no A-ASSOCIATE-RQ within {self.timeouts.artim} s (ARTIM timer expired)"
                )
            self._end_description = self._end_description or "ARTIM timer expired"
            self._timed_out = self._timed_out or waiting_for_request
            self._apply(self._transition(Event.Evt18), now)
            self._finish(self._end_description, timed_out=waiting_for_request)
        if self._acse_deadline is not None and now >= self._acse_deadline:
            self._acse_deadline = None
            waiting = "A-ASSOCIATE response" if self.state is State.Sta5 else "A-RELEASE-RP"
            self._local_abort(f"no {waiting} within {self.timeouts.acse} s", now)
        if self._idle_deadline is not None and now >= self._idle_deadline:
            self._idle_deadline = None
            self._local_abort(f"nothing received for {self.timeouts.idle} s", now)

    def _local_abort(self, description: str, now: float) -> None:
        log.warning("%s: %s; aborting", self.name, description)
        self._end_description = description
        self._timed_out = True
        self._events.append(
            ev.ProviderAborted(DicomAbortReasonType.Unknown, description, timed_out=True)
        )
        self.send_abort(DicomAbortSourceType.User, DicomAbortReasonType.Unknown, now)

    # -- user primitives -------------------------------------------------------------

    def send_associate_rq(self, rq: AssociateRQ, now: float) -> None:
        """A-ASSOCIATE request on an already connected transport (Evt1 then Evt2)."""
        self._check_requestor_primitive(Event.Evt1, "send an A-ASSOCIATE-RQ")
        self.associate_rq = rq
        self.local_max_pdu = rq.user_information.max_length or 0
        self._outgoing["rq"] = rq
        self._apply(self._transition(Event.Evt1), now)
        self._apply(self._transition(Event.Evt2), now)

    def send_associate_ac(self, ac: AssociateAC, now: float) -> None:
        self._outgoing["ac"] = ac
        transition = self._user_transition(Event.Evt7, "send an A-ASSOCIATE-AC")
        self.associate_ac = ac
        self.local_max_pdu = ac.user_information.max_length or 0
        self._record_contexts(ac)
        self._apply(transition, now)

    def send_associate_rj(self, rj: AssociateRJ, now: float) -> None:
        self._outgoing["rj"] = rj
        self._apply(self._user_transition(Event.Evt8, "send an A-ASSOCIATE-RJ"), now)

    def send_message(
        self,
        context_id: int,
        command: Mapping[str, object],
        data: DataSource | None,
        now: float,
    ) -> None:
        """Queue one DIMSE message (command set, optional data set) as P-DATA-TF PDUs."""
        if context_id not in self.contexts:
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"presentation context {context_id} was not accepted on this association",
            )
        command_bytes = encode_command_set(command)
        self._outgoing["pdata"] = iter_message_pdus(
            context_id, command_bytes, data, self.peer_max_pdu
        )
        self._apply(self._user_transition(Event.Evt9, "send DIMSE messages"), now)
        if log.isEnabledFor(logging.INFO):
            log.info("%s sent %s", self.name, describe_command(dict(command)))

    def send_release_rq(self, now: float) -> None:
        self._apply(self._user_transition(Event.Evt11, "send an A-RELEASE-RQ"), now)

    def send_release_rp(self, now: float) -> None:
        """A-RELEASE response. In a release collision the acceptor must first receive the
        peer's A-RELEASE-RP (PS3.8 7.2.2.7, Sta10): the response is held until then."""
        if self.fsm.state is State.Sta10:
            self._release_response_held = True
            return
        self._apply(self._user_transition(Event.Evt14, "send an A-RELEASE-RP"), now)

    def send_abort(self, source: int, reason: int, now: float) -> None:
        """A-ABORT request (Evt15). Before an association exists it just closes."""
        if self._closed:
            return
        if self.fsm.state in (State.Sta1, State.Sta2, State.Sta13):
            self.close("aborted by the local user before association")
            return
        self.send_queue.cancel_pending()
        self._outgoing["abort"] = Abort(int(source), int(reason))
        self._end_description = self._end_description or "aborted by the local user"
        self._apply(self._transition(Event.Evt15), now)
        if self.close_requested:
            self._finish(self._end_description)

    # -- internals -------------------------------------------------------------------

    def _transition(self, event: Event) -> Transition:
        return self.fsm.handle(event)

    def _user_transition(self, event: Event, what: str) -> Transition:
        try:
            return self.fsm.handle(event)
        except InvalidTransition:
            raise DicomException(
                DicomExceptionCode.NetNotConnected
                if self.fsm.state in (State.Sta1, State.Sta13)
                else DicomExceptionCode.Parameter,
                f"cannot {what} in state {self.fsm.state.name}",
            ) from None

    def _check_requestor_primitive(self, event: Event, what: str) -> None:
        if self._closed or not self.fsm.can_handle(event):
            raise DicomException(
                DicomExceptionCode.NetNotConnected,
                f"cannot {what} in state {self.fsm.state.name}",
            )

    def _record_contexts(self, ac: AssociateAC) -> None:
        rq = self.associate_rq
        proposed = rq.presentation_contexts if rq else []
        abstract = {pc.context_id: pc.abstract_syntax for pc in proposed}
        self.contexts = {
            pc.context_id: AcceptedContext(
                pc.context_id, abstract.get(pc.context_id, ""), pc.transfer_syntax
            )
            for pc in ac.presentation_contexts
            if pc.result == 0 and pc.context_id in abstract
        }

    def _apply(self, transition: Transition, now: float, pdu: PDU | None = None) -> None:
        for effect in transition.effects:
            self._run_effect(effect, now, pdu)
        self._update_acse_timer(now)

    def _run_effect(self, effect: Effect, now: float, pdu: PDU | None) -> None:
        if effect is Effect.SEND_ASSOCIATE_RQ:
            self._send_pdu(self._outgoing.pop("rq"))  # type: ignore[arg-type]
        elif effect is Effect.SEND_ASSOCIATE_AC:
            self._send_pdu(self._outgoing.pop("ac"))  # type: ignore[arg-type]
        elif effect is Effect.SEND_ASSOCIATE_RJ:
            self._send_pdu(self._outgoing.pop("rj"))  # type: ignore[arg-type]
        elif effect is Effect.SEND_PDATA:
            self.send_queue.push_stream(
                DicomPduType.DataTransfer,
                self._outgoing.pop("pdata"),  # type: ignore[arg-type]
            )
        elif effect is Effect.SEND_RELEASE_RQ:
            self._send_pdu(ReleaseRQ())
        elif effect is Effect.SEND_RELEASE_RP:
            self._send_pdu(ReleaseRP())
        elif effect is Effect.SEND_ABORT_USER:
            abort = self._outgoing.pop("abort", None)
            self._send_pdu(abort if isinstance(abort, Abort) else Abort(0, 0))
        elif effect is Effect.SEND_ABORT_PROVIDER_UNEXPECTED:
            self._send_pdu(Abort(2, DicomAbortReasonType.Unexpected))
        elif effect is Effect.SEND_ABORT_PROVIDER:
            reason = self._abort_reason or (
                DicomAbortReasonType.Unexpected if pdu is not None else 0
            )
            self._send_pdu(Abort(2, reason))
        elif effect is Effect.INDICATE_ASSOCIATE_REQUEST:
            assert isinstance(pdu, AssociateRQ)
            self.associate_rq = pdu
            self.peer_max_pdu = pdu.user_information.max_length or 0
            self._events.append(ev.AssociateRequestReceived(pdu))
        elif effect is Effect.INDICATE_ASSOCIATE_ACCEPT:
            assert isinstance(pdu, AssociateAC)
            self.associate_ac = pdu
            self.peer_max_pdu = pdu.user_information.max_length or 0
            self._record_contexts(pdu)
            self._events.append(ev.AssociateAcceptReceived(pdu))
        elif effect is Effect.INDICATE_ASSOCIATE_REJECT:
            assert isinstance(pdu, AssociateRJ)
            self._end_description = (
                f"association rejected (result {pdu.result}, source {pdu.source}, "
                f"reason {pdu.reason})"
            )
            self._events.append(ev.AssociateRejectReceived(pdu))
        elif effect is Effect.INDICATE_RELEASE_REQUEST:
            self._events.append(ev.ReleaseRequested())
        elif effect is Effect.INDICATE_RELEASE_CONFIRM:
            self._events.append(ev.ReleaseConfirmed())
            if self._release_response_held and self.fsm.state is State.Sta12:
                self._release_response_held = False
                self._apply(self._transition(Event.Evt14), now)
        elif effect is Effect.INDICATE_ABORT:
            assert isinstance(pdu, Abort)
            self._assembler.discard()
            self._events.append(ev.AbortReceived(pdu.source, pdu.reason))
        elif effect is Effect.INDICATE_PROVIDER_ABORT:
            self._assembler.discard()
            description = self._end_description or "association aborted by the provider"
            self._events.append(ev.ProviderAborted(self._abort_reason, description))
        elif effect is Effect.START_ARTIM:
            self._artim_deadline = now + self.timeouts.artim
        elif effect is Effect.STOP_ARTIM:
            self._artim_deadline = None
        elif effect is Effect.CLOSE_TRANSPORT:
            self.close_requested = True
            self._assembler.discard()
        # CONNECT_TRANSPORT, ACCEPT_TRANSPORT, INDICATE_PDATA and IGNORE_PDU need no work
        # here: the transport is already connected/accepted when the engine is created,
        # and P-DATA is indicated message by message in _handle_pdata.

    def _send_pdu(self, pdu: PDU) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s sending:\n%s", self.name, describe_pdu(pdu))
        data = encode_pdu(pdu)
        self.send_queue.push(data[0], [data])

    def _update_acse_timer(self, now: float) -> None:
        state = self.fsm.state
        waiting = state in (State.Sta5, State.Sta7)
        if not waiting:
            self._acse_deadline = None
        elif self._acse_deadline is None and self.timeouts.acse is not None:
            self._acse_deadline = now + self.timeouts.acse
        if state is State.Sta6:
            if self._idle_deadline is None and self.timeouts.idle is not None:
                self._idle_deadline = now + self.timeouts.idle
        else:
            self._idle_deadline = None
        if self.close_requested and not self._closed:
            self._finish(self._end_description or "association ended")

    def _finish(self, description: str, timed_out: bool = False) -> None:
        if self._closed:
            return
        timed_out = timed_out or self._timed_out
        self._closed = True
        self.close_requested = True
        self._artim_deadline = self._acse_deadline = self._idle_deadline = None
        self._assembler.discard()
        self._events.append(ev.TransportClosed(description, timed_out))
