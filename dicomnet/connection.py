"""The protocol engine of one association: bytes and time in, events and bytes out.

Sans-I/O (the h11 / aioquic shape): it never touches a socket or reads a clock. The I/O
layer calls ``get_buffer``/``buffer_updated`` with received bytes, ``handle_timer`` when
``get_timer`` says so, and the ``send_*`` primitives on behalf of the user; it writes what
``send_queue`` holds (telling ``stream_failed`` when a queued message cannot be produced)
and closes the transport when ``close_requested`` turns true. What happened comes out of
``next_events``.

Inside, the PS3.8 9.2 state machine (``fsm``) decides every transition and
``_EFFECTS`` maps each effect of a transition to one small method: send a PDU, start
ARTIM, indicate to the user, close. The PDU a user primitive sends travels with its
transition into those methods. This module also frames the byte stream into PDUs
(PS3.8 9.3), keeps the negotiated presentation contexts and maximum PDU lengths, and turns
P-DATA-TF PDVs into DIMSE messages (PS3.7, PS3.8 annex E). Its limits come from one
``NetConfig``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from . import events as ev
from .config import NetConfig
from .dimse.assembly import MessageAssembler, SinkFactory
from .dimse.commands import describe_command, encode_command_set
from .dimse.fragment import DataSource, iter_message_pdus
from .enums import (
    DicomAbortReasonType,
    DicomAbortSourceType,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomPduType,
)
from .errors import DicomException, DicomExceptionCode, DIMSEError, PDUError
from .fsm import Effect, Event, InvalidTransition, State, StateMachine, Transition
from .pdu import (
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
    split_pdvs,
)
from .sendqueue import SendQueue, StreamError
from .timeouts import Timeouts, earliest

log = logging.getLogger("dicomnet.connection")

_P_DATA_TF = int(DicomPduType.DataTransfer)  # compared on every PDU: a plain int

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
# The ACSE timer: waiting for an answer to an A-ASSOCIATE or A-RELEASE request, where
# PS3.8 runs no timer: the peer's (Sta5; Sta7, and Sta10 or Sta11 in a release collision)
# or the local application's (Sta3).
_WAITING_FOR = {
    State.Sta3: "A-ASSOCIATE response from the application",
    State.Sta5: "A-ASSOCIATE response",
    State.Sta7: "A-RELEASE-RP",
    State.Sta8: "A-RELEASE response from the application",
    State.Sta9: "A-RELEASE response from the application",
    State.Sta10: "A-RELEASE-RP",
    State.Sta11: "A-RELEASE-RP",
    State.Sta12: "A-RELEASE response from the application",
}
_ACSE_WAIT_STATES = frozenset(_WAITING_FOR)


@dataclass(frozen=True)
class AcceptedContext:
    """A presentation context the association may use."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


class _OutgoingMessage(NamedTuple):  # a tuple: made once per message sent, kept cheap
    """Names a queued DIMSE message, so a failure to produce its PDUs can say which."""

    context_id: int
    message_id: int | None
    command_field: int


class _PDataRequest(NamedTuple):
    """What a P-DATA request primitive (Evt9) sends: one message's PDUs, made lazily."""

    message: _OutgoingMessage
    pdus: Iterator[list[bytes | memoryview]]


# What a user primitive sends, handed with its transition to the SEND_* effect.
_Outgoing = AssociateRQ | AssociateAC | AssociateRJ | Abort | _PDataRequest | None


class Connection:
    """One association's protocol state; see the module docstring for the contract.

    ``config`` gives the limits and ``config.timeouts`` the timers.
    """

    def __init__(
        self,
        *,
        is_requestor: bool,
        config: NetConfig | None = None,
        sink_factory: SinkFactory | None = None,
        report_pdus: bool = False,
        name: str = "",
    ) -> None:
        self.config = config = config or NetConfig()
        self.fsm = StateMachine(is_requestor)
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
        # Read on every PDU or read: kept as plain attributes.
        self._timeouts = config.timeouts
        self._hard_pdu_limit = config.hard_pdu_limit
        self._max_non_pdata_length = config.max_non_pdata_length
        self._rbuf = bytearray(config.receive_buffer)
        self._rstart = 0
        self._rend = 0
        self._max_busy_buffer = config.max_receive_buffer
        self._filled = False  # the last read filled the whole buffer
        self._discard_input = False
        self._closed = False
        self._artim_deadline: float | None = None
        self._acse_deadline: float | None = None
        self._idle_deadline: float | None = None
        self._abort_reason = 0  # reason of the provider A-ABORT to send (AA-8)
        self._end_description = ""
        self._timed_out = False  # the association ended because a timeout fired
        self._release_response_held = False

    # -- state -----------------------------------------------------------------------

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts

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
        """Writable space for the next ``recv_into``.

        The buffer starts at ``config.receive_buffer`` bytes and grows only with what
        arrives: for a PDU larger than it, by at most the bytes already received of that
        PDU (so a header alone buys no memory), and up to ``config.max_receive_buffer``
        while reads keep filling it.
        """
        if self._discard_input:  # refused input: its bytes are never kept
            self._rstart = self._rend = 0
        rbuf = self._rbuf
        pending = self._rend - self._rstart
        # a read gets at least a quarter of the buffer: compact rather than read in slivers
        needed = max(PDU_HEADER.size, len(rbuf) >> 2)
        if pending >= PDU_HEADER.size:
            _, length = PDU_HEADER.unpack_from(rbuf, self._rstart)
            needed = max(needed, min(PDU_HEADER.size + length - pending, pending))
        capacity = pending + needed
        if self._filled:
            self._filled = False
            capacity = max(capacity, min(2 * len(rbuf), self._max_busy_buffer))
        if capacity > len(rbuf):
            self._grow(capacity)
        elif len(rbuf) - self._rend < needed:
            self._compact()
        return memoryview(self._rbuf)[self._rend :]

    def buffer_updated(self, nbytes: int, now: float) -> None:
        """``nbytes`` were written into the buffer from ``get_buffer``; process them."""
        self._rend += nbytes
        self._filled = self._rend == len(self._rbuf)
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

    def _grow(self, capacity: int) -> None:
        pending = self._rend - self._rstart
        new = bytearray(capacity)
        new[:pending] = self._rbuf[self._rstart : self._rend]
        self._rbuf = new
        self._rstart, self._rend = 0, pending

    def _compact(self) -> None:
        pending = self._rend - self._rstart
        with memoryview(self._rbuf) as whole:  # a view: one copy, no temporary bytes
            whole[:pending] = whole[self._rstart : self._rend]
        self._rstart, self._rend = 0, pending

    def _process_input(self, now: float) -> None:
        buf = self._rbuf
        with memoryview(buf) as whole:
            while not self._discard_input and self._rend - self._rstart >= PDU_HEADER.size:
                start = self._rstart
                pdu_type, length = PDU_HEADER.unpack_from(buf, start)
                end = start + PDU_HEADER.size + length
                # The hot path: data within the limit in Sta6, where DT-2 indicates it and
                # changes nothing else; every other PDU is checked and goes by the table.
                hot = (
                    pdu_type == _P_DATA_TF
                    and self.fsm.state is State.Sta6
                    and length <= (self.local_max_pdu or self._hard_pdu_limit)
                    and not self.report_pdus
                )
                if not hot:
                    problem = self._check_pdu_header(pdu_type, length)
                    if problem:
                        self._discard_input = True
                        reason, description = problem
                        self._invalid_pdu(reason, description, now)
                        break
                if end > self._rend:
                    break
                self._rstart = end
                if hot:
                    body = whole[start + PDU_HEADER.size : end]
                    if not self._assembler.continue_data(body):
                        self._receive_pdvs(body, now)
                else:
                    self._handle_pdu(pdu_type, whole[start:end], now)
                # The idle limit counts whole PDUs: a peer dripping bytes does not keep it.
                idle = self._timeouts.idle
                if self._idle_deadline is not None and idle is not None:
                    self._idle_deadline = now + idle
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
            limit = self.local_max_pdu or self._hard_pdu_limit
            if length > limit:
                return (
                    DicomAbortReasonType.InvalidParameterValue,
                    f"P-DATA-TF PDU of {length} bytes exceeds the negotiated maximum {limit}",
                )
        elif length > self._max_non_pdata_length:
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
        outgoing: _Outgoing = None
        if isinstance(pdu, AssociateRQ):
            acceptable = bool(pdu.protocol_version & 1)
            if not acceptable:  # AE-6 rejects: permanent, ACSE provider, protocol version
                outgoing = AssociateRJ(
                    DicomAssociateRejectResultType.Permanent,
                    DicomAssociateRejectSourceType.Provider1,
                    DicomAssociateRejectReasonType.Version,
                )
        try:
            transition = self.fsm.handle(event, request_acceptable=acceptable)
        except InvalidTransition:
            self._unexpected_outside_table(pdu_type, now)
            return
        if isinstance(pdu, Abort):
            self._end_description = (
                f"peer aborted the association (source {pdu.source}, reason {pdu.reason})"
            )
        self._apply(transition, now, pdu, outgoing)

    def _handle_pdata(self, view: memoryview, now: float) -> None:
        """A P-DATA-TF outside the hot path: the state table decides (Sta6 included, for
        a PDU kept for ``report_pdus``)."""
        if self.fsm.state is not State.Sta6:
            try:
                transition = self.fsm.handle(Event.Evt10)
            except InvalidTransition:
                self._unexpected_outside_table(DicomPduType.DataTransfer, now)
                return
            self._apply(transition, now)
            if Effect.INDICATE_PDATA not in transition.effects:
                return
        self._receive_pdvs(view[PDU_HEADER.size :], now)

    def _receive_pdvs(self, body: memoryview, now: float) -> None:
        """The PDVs of one P-DATA-TF body, in order, into the message assembler."""
        try:
            for context_id, control, fragment in split_pdvs(body):
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
        """Evt19: an unrecognized or invalid PDU; the table says how to abort.

        Nothing after it is read: the stream's framing can no longer be trusted, so in
        the Sta13 that follows a PDU from the peer (an A-ABORT included) goes unseen and
        the peer's close or ARTIM ends the connection."""
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

    # -- sending ---------------------------------------------------------------------

    def stream_failed(self, failure: StreamError, now: float) -> None:
        """The send queue could not produce the PDUs of a queued message (its data set
        file was truncated, deleted or became unreadable).

        The message can never be finished and nothing may follow part of it (PS3.8
        annex E), so ``SendFailed`` says which message failed and the association is
        aborted: ``ProviderAborted``, then A-ABORT (service provider, reason not
        specified) after whatever PDU is partly written.
        """
        message = failure.label
        assert isinstance(message, _OutgoingMessage)  # the engine queues only these
        description = (
            f"sending message {message.message_id} (command 0x{message.command_field:04X}) "
            f"on presentation context {message.context_id} failed: {failure}"
        )
        log.error("%s: %s", self.name, description)
        self._events.append(
            ev.SendFailed(
                message.context_id, message.message_id, description, message.command_field
            )
        )
        if self._closed or not self.fsm.can_handle(Event.Evt15):
            return  # already ending: nothing more will be sent
        self._end_description = description
        self._events.append(ev.ProviderAborted(DicomAbortReasonType.Unknown, description))
        self._abort(Abort(DicomAbortSourceType.Provider, DicomAbortReasonType.Unknown), now)

    # -- timers ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline at which ``handle_timer`` must be called, if any."""
        return earliest(earliest(self._artim_deadline, self._acse_deadline), self._idle_deadline)

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now``: ARTIM, the ACSE wait, the idle limit."""
        if self._artim_deadline is not None and now >= self._artim_deadline:
            self._artim_expired(now)
        if self._acse_deadline is not None and now >= self._acse_deadline:
            self._acse_deadline = None
            waiting = _WAITING_FOR[self.state]
            self._local_abort(f"no {waiting} within {self._timeouts.acse} s", now)
        if self._idle_deadline is not None and now >= self._idle_deadline:
            self._idle_deadline = None
            self._local_abort(f"no complete PDU received for {self._timeouts.idle} s", now)

    def _artim_expired(self, now: float) -> None:
        """Evt18: no A-ASSOCIATE-RQ came (Sta2), or the peer did not close (Sta13)."""
        self._artim_deadline = None
        waiting_for_request = self.state is State.Sta2
        if waiting_for_request:
            self._end_description = (
                f"no A-ASSOCIATE-RQ within {self._timeouts.artim} s (ARTIM timer expired)"
            )
        self._end_description = self._end_description or "ARTIM timer expired"
        self._timed_out = self._timed_out or waiting_for_request
        self._apply(self._transition(Event.Evt18), now)
        self._finish(self._end_description, timed_out=waiting_for_request)

    def _local_abort(self, description: str, now: float) -> None:
        """A time limit of this implementation passed: abort (Evt15)."""
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
        encode_pdu(rq)  # what cannot be encoded raises here, before any state changes
        self.associate_rq = rq
        self.local_max_pdu = rq.user_information.max_length or 0
        self._apply(self._transition(Event.Evt1), now)
        self._apply(self._transition(Event.Evt2), now, outgoing=rq)

    def send_associate_ac(self, ac: AssociateAC, now: float) -> None:
        encode_pdu(ac)  # what cannot be encoded raises here, before any state changes
        transition = self._user_transition(Event.Evt7, "send an A-ASSOCIATE-AC")
        self.associate_ac = ac
        self.local_max_pdu = ac.user_information.max_length or 0
        self._record_contexts(ac)
        self._apply(transition, now, outgoing=ac)

    def send_associate_rj(self, rj: AssociateRJ, now: float) -> None:
        encode_pdu(rj)
        self._apply(self._user_transition(Event.Evt8, "send an A-ASSOCIATE-RJ"), now, outgoing=rj)

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
        pdus = iter_message_pdus(context_id, encode_command_set(command), data, self.peer_max_pdu)
        request = _PDataRequest(_describe_outgoing(context_id, command), pdus)
        self._apply(self._user_transition(Event.Evt9, "send DIMSE messages"), now, outgoing=request)
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
        self._end_description = self._end_description or "aborted by the local user"
        self._abort(Abort(int(source), int(reason)), now)

    # -- transitions -----------------------------------------------------------------

    def _abort(self, abort: Abort, now: float) -> None:
        # The A-ABORT cuts in after the PDU on the wire; nothing queued after it is sent.
        self.send_queue.cancel_pending()
        self._apply(self._transition(Event.Evt15), now, outgoing=abort)

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

    def _apply(
        self,
        transition: Transition,
        now: float,
        received: PDU | None = None,
        outgoing: _Outgoing = None,
    ) -> None:
        """Run a transition's effects in order, then bring the timers and the close in
        line with the state it reached. ``received`` is the PDU that caused it,
        ``outgoing`` what the user primitive that caused it sends."""
        for effect in transition.effects:
            _EFFECTS[effect](self, now, received, outgoing)
        self._arm_acse_timer(now)
        self._arm_idle_timer(now)
        if self.close_requested:
            self._finish(self._end_description or "association ended")

    def _arm_acse_timer(self, now: float) -> None:
        if self.fsm.state not in _ACSE_WAIT_STATES:
            self._acse_deadline = None
        elif self._acse_deadline is None and self._timeouts.acse is not None:
            self._acse_deadline = now + self._timeouts.acse

    def _arm_idle_timer(self, now: float) -> None:
        # Runs while the association is established; each read pushes it back.
        if self.fsm.state is not State.Sta6:
            self._idle_deadline = None
        elif self._idle_deadline is None and self._timeouts.idle is not None:
            self._idle_deadline = now + self._timeouts.idle

    def _finish(self, description: str, timed_out: bool = False) -> None:
        if self._closed:
            return
        timed_out = timed_out or self._timed_out
        self._closed = True
        self.close_requested = True
        self._artim_deadline = self._acse_deadline = self._idle_deadline = None
        self._assembler.discard()
        self._events.append(ev.TransportClosed(description, timed_out))

    # -- effects (one method per fsm.Effect, called through _EFFECTS) ----------------

    def _send_pdu(self, pdu: PDU) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s sending:\n%s", self.name, describe_pdu(pdu))
        data = encode_pdu(pdu)
        self.send_queue.push(data[0], [data])

    def _send_associate_rq(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        assert isinstance(outgoing, AssociateRQ)
        self._send_pdu(outgoing)

    def _send_associate_ac(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        assert isinstance(outgoing, AssociateAC)
        self._send_pdu(outgoing)

    def _send_associate_rj(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        assert isinstance(outgoing, AssociateRJ)
        self._send_pdu(outgoing)

    def _send_pdata(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        assert isinstance(outgoing, _PDataRequest)
        self.send_queue.push_stream(DicomPduType.DataTransfer, outgoing.pdus, outgoing.message)

    def _send_release_rq(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        self._send_pdu(ReleaseRQ())

    def _send_release_rp(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        self._send_pdu(ReleaseRP())

    def _send_user_abort(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        # AA-1: the A-ABORT the local user (or this engine, on its behalf) asked for;
        # answering an unexpected PDU in Sta2 it is source 0, reason 0.
        self._send_pdu(outgoing if isinstance(outgoing, Abort) else Abort())

    def _send_unexpected_pdu_abort(
        self, now: float, received: PDU | None, outgoing: _Outgoing
    ) -> None:
        self._send_pdu(Abort(DicomAbortSourceType.Provider, DicomAbortReasonType.Unexpected))

    def _send_provider_abort(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        # AA-8 always answers a received PDU: one found invalid (Evt19) gave its reason,
        # any other (a P-DATA-TF included) was unexpected. The A-P-ABORT indication that
        # follows reports the same reason.
        self._abort_reason = self._abort_reason or DicomAbortReasonType.Unexpected
        self._send_pdu(Abort(DicomAbortSourceType.Provider, self._abort_reason))

    def _indicate_associate_request(
        self, now: float, received: PDU | None, outgoing: _Outgoing
    ) -> None:
        assert isinstance(received, AssociateRQ)
        self.associate_rq = received
        self.peer_max_pdu = received.user_information.max_length or 0
        self._events.append(ev.AssociateRequestReceived(received))

    def _indicate_associate_accept(
        self, now: float, received: PDU | None, outgoing: _Outgoing
    ) -> None:
        assert isinstance(received, AssociateAC)
        self.associate_ac = received
        self.peer_max_pdu = received.user_information.max_length or 0
        self._record_contexts(received)
        self._events.append(ev.AssociateAcceptReceived(received))

    def _indicate_associate_reject(
        self, now: float, received: PDU | None, outgoing: _Outgoing
    ) -> None:
        assert isinstance(received, AssociateRJ)
        self._end_description = (
            f"association rejected (result {received.result}, source {received.source}, "
            f"reason {received.reason})"
        )
        self._events.append(ev.AssociateRejectReceived(received))

    def _indicate_release_request(
        self, now: float, received: PDU | None, outgoing: _Outgoing
    ) -> None:
        self._events.append(ev.ReleaseRequested())

    def _indicate_release_confirm(
        self, now: float, received: PDU | None, outgoing: _Outgoing
    ) -> None:
        self._events.append(ev.ReleaseConfirmed())
        if self._release_response_held and self.fsm.state is State.Sta12:
            # the response given early in the collision (Sta10) may go out now
            self._release_response_held = False
            self._apply(self._transition(Event.Evt14), now)

    def _indicate_abort(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        assert isinstance(received, Abort)
        self._assembler.discard()
        self._events.append(ev.AbortReceived(received.source, received.reason))

    def _indicate_provider_abort(
        self, now: float, received: PDU | None, outgoing: _Outgoing
    ) -> None:
        self._assembler.discard()
        description = self._end_description or "association aborted by the provider"
        self._events.append(ev.ProviderAborted(self._abort_reason, description))

    def _start_artim(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        self._artim_deadline = now + self._timeouts.artim

    def _stop_artim(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        self._artim_deadline = None

    def _close_transport(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        # Nothing more goes out once the transport is to close: drop what waits.
        self.send_queue.cancel_pending()
        self.close_requested = True
        self._assembler.discard()

    def _no_effect(self, now: float, received: PDU | None, outgoing: _Outgoing) -> None:
        """The transport is already connected/accepted when the engine is created, P-DATA
        is indicated message by message in ``_handle_pdata``, an ignored PDU is ignored."""


def _describe_outgoing(context_id: int, command: Mapping[str, object]) -> _OutgoingMessage:
    """Which message this is, for a ``SendFailed`` event."""
    message_id = command.get("MessageID", command.get("MessageIDBeingRespondedTo"))
    field = command.get("CommandField")
    return _OutgoingMessage(
        context_id,
        message_id if isinstance(message_id, int) else None,
        field if isinstance(field, int) else 0,
    )


_EffectMethod = Callable[[Connection, float, PDU | None, _Outgoing], None]

_EFFECTS: Mapping[Effect, _EffectMethod] = {
    Effect.CONNECT_TRANSPORT: Connection._no_effect,
    Effect.ACCEPT_TRANSPORT: Connection._no_effect,
    Effect.SEND_ASSOCIATE_RQ: Connection._send_associate_rq,
    Effect.SEND_ASSOCIATE_AC: Connection._send_associate_ac,
    Effect.SEND_ASSOCIATE_RJ: Connection._send_associate_rj,
    Effect.SEND_PDATA: Connection._send_pdata,
    Effect.SEND_RELEASE_RQ: Connection._send_release_rq,
    Effect.SEND_RELEASE_RP: Connection._send_release_rp,
    Effect.SEND_ABORT_USER: Connection._send_user_abort,
    Effect.SEND_ABORT_PROVIDER_UNEXPECTED: Connection._send_unexpected_pdu_abort,
    Effect.SEND_ABORT_PROVIDER: Connection._send_provider_abort,
    Effect.INDICATE_ASSOCIATE_REQUEST: Connection._indicate_associate_request,
    Effect.INDICATE_ASSOCIATE_ACCEPT: Connection._indicate_associate_accept,
    Effect.INDICATE_ASSOCIATE_REJECT: Connection._indicate_associate_reject,
    Effect.INDICATE_PDATA: Connection._no_effect,
    Effect.INDICATE_RELEASE_REQUEST: Connection._indicate_release_request,
    Effect.INDICATE_RELEASE_CONFIRM: Connection._indicate_release_confirm,
    Effect.INDICATE_ABORT: Connection._indicate_abort,
    Effect.INDICATE_PROVIDER_ABORT: Connection._indicate_provider_abort,
    Effect.START_ARTIM: Connection._start_artim,
    Effect.STOP_ARTIM: Connection._stop_artim,
    Effect.CLOSE_TRANSPORT: Connection._close_transport,
    Effect.IGNORE_PDU: Connection._no_effect,
}
