"""The DIMSE session of one association: PS3.7's service rules over the protocol engine.

Sans-I/O like the engine it drives (``connection.Connection``): no sockets, threads or
clocks; ``now`` is passed in and ``get_timer``/``handle_timer`` expose its deadlines. The
I/O layer feeds it bytes exactly as it would feed the engine (``get_buffer``,
``buffer_updated``...), and takes events out of ``next_events``. On top of the engine it
keeps:

* the association as ``DicomAssociate`` objects (the request, then the accept), and the
  request as it went over the wire, which negotiation reads;
* message IDs and the outstanding operations both ways, with the asynchronous operations
  window (PS3.7 D.3.3.3);
* the role rules of C-STORE on a C-GET association (PS3.4 C.5.3, PS3.7 D.3.3.4);
* matching responses to requests, and dropping those that match nothing;
* the refusals the standard prescribes when a request cannot be served (window exceeded,
  role not negotiated, data set not kept or not readable, no handler, a failing handler);
* where received data sets go (a Part-10 spool file for C-STORE, memory otherwise);
* the DIMSE timeout (``Timeouts.dimse``: silence while a request of ours is outstanding
  aborts the association) and per-request response deadlines for waiting callers;
* a requestor's required user identity response (PS3.7 D.3.3.7): an accept without one
  is aborted, and ``failure`` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from . import events as ev
from .associate import DicomAssociate, negotiated_roles
from .config import NetConfig
from .connection import AcceptedContext, Connection
from .dimse.assembly import BytesSink, DataSink, Message
from .dimse.commands import NO_DATA_SET, RESPONSE_BIT, command_title, message_name
from .dimse.datasets import decode_dataset, encode_dataset
from .dimse.fragment import BytesSource, DataSource
from .dimse.messages import MESSAGES, MessageSpec, check_required, expects_response
from .dimse.part10 import Part10File, part10_source, read_part10_header
from .dimse.spool import SpooledFile, SpoolSink
from .dimse.status import CANNOT_UNDERSTAND, StatusCategory, status_category
from .enums import (
    DicomAbortReasonType,
    DicomAbortSourceType,
    DicomCommandStatusType,
    DicomCommandType,
)
from .errors import DicomException, DicomExceptionCode, DIMSEError
from .fsm import State
from .identity import UserIdentityNotConfirmed
from .operations import OutstandingOperations
from .pdu import AssociateRJ
from .response import Response
from .sendqueue import SendQueue, StreamError
from .timeouts import earliest

if TYPE_CHECKING:  # annotations only: pydicom loads when a data set is made
    import os

    from pydicom import Dataset


log = logging.getLogger("dicomnet.session")

DataSetArgument: TypeAlias = "Dataset | Part10File | str | os.PathLike[str] | None"
"""What ``Send*`` takes as a data set: a Dataset, a Part-10 file (or its path), or none."""

Status = DicomCommandStatusType

# A request whose data set cannot be processed (unreadable, or its handler failed):
# "cannot understand" where the service defines one (PS3.4 B.2.3, C.4), else
# Processing Failure (PS3.7 C.4).
_CANNOT_UNDERSTAND: Mapping[int, int] = {
    DicomCommandType.CStore: CANNOT_UNDERSTAND,
    DicomCommandType.CFind: CANNOT_UNDERSTAND,
    DicomCommandType.CGet: CANNOT_UNDERSTAND,
    DicomCommandType.CMove: CANNOT_UNDERSTAND,
}
# A request whose data set could not be kept (disk full): Out of Resources for C-STORE
# (PS3.4 B.2.3), else Processing Failure.
_OUT_OF_RESOURCES: Mapping[int, int] = {
    DicomCommandType.CStore: Status.RefusedOutOfResources,
}


# -- events (besides the engine's, which pass through) ------------------------------


@dataclass(frozen=True)
class AssociationRequested:
    """An A-ASSOCIATE-RQ arrived; answer with an accept or a reject."""

    request: DicomAssociate


@dataclass(frozen=True)
class AssociationAccepted:
    """The peer accepted our A-ASSOCIATE-RQ."""

    accept: DicomAssociate


@dataclass(frozen=True)
class DimseReceived:
    """A DIMSE message to hand to the application.

    ``spec`` is None for a command field PS3.7 does not define. ``data_set`` is the
    decoded data set (None without one, or for C-STORE when the session does not parse
    received data: then ``received_file`` is the spooled Part-10 file). ``final`` marks
    the final response to one of our requests.
    """

    message: Message
    spec: MessageSpec | None
    data_set: Dataset | None
    received_file: str | None
    final: bool

    def response(self) -> Response:
        """This message as the public record of a response."""
        data_set = self.data_set
        return Response.of(self.message.context_id, self.message.command, lambda: data_set)

    @property
    def expects_response(self) -> bool:
        return expects_response(self.message.command_field)


@dataclass(frozen=True)
class ResponseTimedOut:
    """Nothing arrived for the deadline set with ``expect_response``."""

    message_id: int
    description: str


@dataclass(frozen=True)
class RequestFailed:
    """A request of ours could not be sent whole; the association was aborted."""

    message_id: int | None
    description: str


SessionEvent = (
    ev.Event
    | AssociationRequested
    | AssociationAccepted
    | DimseReceived
    | ResponseTimedOut
    | RequestFailed
)


@dataclass
class _Watch:
    timeout: float
    since: float


class DimseSession:
    """One association's DIMSE service layer; see the module docstring."""

    def __init__(
        self,
        *,
        is_requestor: bool,
        config: NetConfig,
        temp_path: str | None = None,
        parse_received_data: bool = True,
        report_pdus: bool = False,
        name: str = "",
    ) -> None:
        self.config = config
        self.temp_path = temp_path
        self.parse_received_data = parse_received_data
        self.engine = Connection(
            is_requestor=is_requestor,
            config=config,
            sink_factory=self._make_sink,
            report_pdus=report_pdus,
            name=name,
        )
        # The request until the accept is sent or received, then the accept.
        self.association: DicomAssociate | None = None
        # The request as it went over the wire, for negotiation: the application's
        # object may change (``Reset(False)`` turns it into its accept).
        self._proposal: DicomAssociate | None = None
        self.operations = OutstandingOperations()
        self._message_id = 0
        self._events: list[SessionEvent] = []
        self._last_activity = 0.0
        self._watches: dict[int, _Watch] = {}
        self._dimse_timed_out = False
        self._identity_response_required = False
        # Why the association failed on this side before it began, when a plain
        # abort does not say enough (``UserIdentityNotConfirmed``).
        self.failure: DicomException | None = None

    # -- state -----------------------------------------------------------------------

    @property
    def is_requestor(self) -> bool:
        return self.engine.is_requestor

    @property
    def is_associated(self) -> bool:
        return self.engine.is_associated

    @property
    def is_closed(self) -> bool:
        return self.engine.is_closed

    @property
    def has_ended(self) -> bool:
        """The association is over (aborted, released, rejected), or never began."""
        return self.engine.is_closed or self.engine.state in (State.Sta1, State.Sta13)

    @property
    def awaiting_answer(self) -> bool:
        """An A-ASSOCIATE-RQ arrived and the application has not answered it (Sta3)."""
        return self.engine.state is State.Sta3

    def next_message_id(self) -> int:
        """A fresh message ID (1..65535, wrapping) for this association's requests."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def context(self, presentation_id: int) -> AcceptedContext:
        """An accepted presentation context, or ``DicomException`` (Parameter)."""
        context = self.engine.contexts.get(presentation_id)
        if context is None:
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"presentation context {presentation_id} was not accepted on this association",
            )
        return context

    # -- the transport side (what the I/O layer drives) ------------------------------

    @property
    def close_requested(self) -> bool:
        return self.engine.close_requested

    @property
    def send_queue(self) -> SendQueue:
        return self.engine.send_queue

    def connection_made(self, now: float) -> None:
        self._last_activity = now
        self.engine.connection_made(now)

    def connection_lost(self, now: float, description: str = "connection closed by peer") -> None:
        self.engine.connection_lost(now, description)

    def get_buffer(self) -> memoryview:
        return self.engine.get_buffer()

    def buffer_updated(self, nbytes: int, now: float) -> None:
        self._last_activity = now
        self.engine.buffer_updated(nbytes, now)

    def stream_failed(self, failure: StreamError, now: float) -> None:
        self.engine.stream_failed(failure, now)

    def data_sent(self, now: float) -> None:
        """Bytes went out: a wait for a response counts silence, not slow sending."""
        self._last_activity = now

    def get_timer(self) -> float | None:
        deadline = earliest(self.engine.get_timer(), self._dimse_deadline())
        for watch in self._watches.values():
            deadline = earliest(deadline, self._watch_deadline(watch))
        return deadline

    def handle_timer(self, now: float) -> None:
        self.engine.handle_timer(now)
        deadline = self._dimse_deadline()
        if deadline is not None and now >= deadline:
            self._dimse_timeout(now)
        for message_id, watch in list(self._watches.items()):
            if now >= self._watch_deadline(watch):
                del self._watches[message_id]
                self._events.append(
                    ResponseTimedOut(
                        message_id,
                        f"no response to message {message_id} within {watch.timeout} s",
                    )
                )

    def _watch_deadline(self, watch: _Watch) -> float:
        return max(watch.since, self._last_activity) + watch.timeout

    def _dimse_deadline(self) -> float | None:
        timeout = self.config.timeouts.dimse
        if timeout is None or not len(self.operations) or self._dimse_timed_out:
            return None
        return self._last_activity + timeout

    def _dimse_timeout(self, now: float) -> None:
        waiting = ", ".join(
            f"{message_name(field)} (message ID {message_id})"
            for message_id, field in self.operations.outstanding()
        )
        description = f"no response to {waiting} within {self.config.timeouts.dimse} s"
        log.warning("%s: %s; aborting", self.engine.name, description)
        self._dimse_timed_out = True
        self._events.append(ev.ProviderAborted(DicomAbortReasonType.Unknown, description, True))
        self.engine.send_abort(DicomAbortSourceType.User, DicomAbortReasonType.Unknown, now)

    def expect_response(self, message_id: int, timeout: float, now: float) -> None:
        """Report ``ResponseTimedOut`` when nothing arrives for ``timeout`` seconds (the
        association stays) unless the final response to ``message_id`` came first."""
        self._watches[message_id] = _Watch(timeout, now)

    # -- association primitives ------------------------------------------------------

    def send_associate_rq(self, request: DicomAssociate, now: float) -> None:
        pdu = request.to_request_pdu()
        self.engine.send_associate_rq(pdu, now)
        self.association = request
        self._proposal = DicomAssociate.from_pdu(pdu)
        self._identity_response_required = request.require_user_identity_response
        self.operations = OutstandingOperations()

    def send_associate_ac(self, accept: DicomAssociate, now: float) -> None:
        pdu = accept.to_accept_pdu()
        association = DicomAssociate.from_pdu(pdu, self._proposal)
        self.engine.send_associate_ac(pdu, now)
        self.association = association
        self.operations = OutstandingOperations(*operations_window(accept, is_requestor=False))

    def send_associate_rj(self, rj: AssociateRJ, now: float) -> None:
        self.engine.send_associate_rj(rj, now)

    def send_release_rq(self, now: float) -> None:
        self.engine.send_release_rq(now)

    def send_release_rp(self, now: float) -> None:
        self.engine.send_release_rp(now)

    def send_abort(self, source: int, reason: int, now: float) -> None:
        self.engine.send_abort(source, reason, now)

    def close(self) -> None:
        self.engine.close()

    # -- sending DIMSE messages ------------------------------------------------------

    def prepare_data(
        self, presentation_id: int, command: dict[str, object], data_set: DataSetArgument
    ) -> DataSource | None:
        """Encode a data set for its context (or open a Part-10 file's). Pure work that
        needs no lock: the caller's thread does it before ``send``."""
        if data_set is None:
            return None
        transfer_syntax = self.context(presentation_id).transfer_syntax
        from pydicom import Dataset  # loaded by the first data set sent, not by import

        if isinstance(data_set, Dataset):
            return BytesSource(encode_dataset(data_set, transfer_syntax))
        part10 = data_set if isinstance(data_set, Part10File) else read_part10_header(data_set)
        for keyword, value in (
            ("AffectedSOPClassUID", part10.sop_class_uid),
            ("AffectedSOPInstanceUID", part10.sop_instance_uid),
        ):
            if keyword in command and not command[keyword]:
                command[keyword] = value
        return part10_source(part10, transfer_syntax)

    def send(
        self, presentation_id: int, command: dict[str, object], data: DataSource | None, now: float
    ) -> None:
        """Queue one DIMSE message after the checks the standard asks for."""
        field = int(command["CommandField"])  # type: ignore[call-overload]
        if field == DicomCommandType.CStore:
            self._check_store_role(presentation_id)
        answered = expects_response(field)
        if answered:
            message_id = int(command["MessageID"])  # type: ignore[call-overload]
            self.operations.check_can_invoke(message_id)
        self.engine.send_message(presentation_id, command, data, now)
        if answered:
            self.operations.invoked(message_id, field)
            self._last_activity = max(self._last_activity, now)
        elif field & RESPONSE_BIT and not _is_pending(command):
            self.operations.performed(_int(command, "MessageIDBeingRespondedTo"))

    def _check_store_role(self, presentation_id: int) -> None:
        """The acceptor may send C-STORE-RQ (C-GET sub-operations) only where the
        requestor took the SCP role by role selection (PS3.4 C.5.3)."""
        if self.is_requestor:
            return
        if not self._requestor_roles(presentation_id)[1]:
            abstract = self.context(presentation_id).abstract_syntax
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"cannot send C-STORE on presentation context {presentation_id}: the "
                f"requestor did not take the SCP role for {abstract} (SCP/SCU role selection)",
            )

    def _requestor_roles(self, presentation_id: int) -> tuple[bool, bool]:
        if self._proposal is None or self.association is None:
            return True, False
        return negotiated_roles(self._proposal, self.association, presentation_id)

    # -- after the application saw a request -----------------------------------------

    def refuse_unhandled(self, message: Message, now: float) -> None:
        """No code handles this request: Unrecognized Operation, so the peer never waits
        for an answer nobody will give."""
        name = message_name(message.command_field)
        self._refuse(message, Status.UnrecognizedOperation, f"no handler for {name}", now)

    def handler_failed(self, message: Message, error: Exception, now: float) -> None:
        """The request's handler raised before answering: a failure status for it."""
        if self.operations.is_performing(message.message_id or 0):
            status = _CANNOT_UNDERSTAND.get(message.command_field, Status.ProcessingFailure)
            self._refuse(message, status, f"{type(error).__name__}: {error}", now)

    @staticmethod
    def finished(event: DimseReceived, file_taken: bool = False) -> None:
        """The application is done with a message: a spool file nobody kept goes (a
        parsed data set keeps its file until the Dataset is garbage collected). With
        ``file_taken`` the application took the file: it stays, collected data set or not."""
        data = event.message.data
        if file_taken and isinstance(data, SpooledFile):
            data.keep()
        elif event.data_set is None:
            _discard(event.message)

    # -- events ----------------------------------------------------------------------

    def next_events(self, now: float) -> list[SessionEvent]:
        """Everything that happened since the last call, oldest first."""
        for event in self.engine.next_events():
            handler = self._ENGINE_EVENTS.get(type(event))
            if handler is None:
                self._events.append(event)
            else:
                handler(self, event, now)
        events, self._events = self._events, []
        return events

    def _on_associate_rq(self, event: ev.AssociateRequestReceived, now: float) -> None:
        try:
            self._proposal = DicomAssociate.from_pdu(event.pdu)
            request = DicomAssociate.from_pdu(event.pdu)
        except DicomException as exc:
            self._abort_for(f"unusable A-ASSOCIATE-RQ: {exc.message}", now)
            return
        self.association = request
        self._events.append(AssociationRequested(request))

    def _on_associate_ac(self, event: ev.AssociateAcceptReceived, now: float) -> None:
        try:
            self.association = DicomAssociate.from_pdu(event.pdu, self._proposal)
        except DicomException as exc:
            self._abort_for(f"unusable A-ASSOCIATE-AC: {exc.message}", now)
            return
        if self._identity_response_required and self.association.user_identity_response is None:
            self._identity_not_confirmed(now)
            return
        window = operations_window(self.association, is_requestor=True)
        self.operations.max_invoked, self.operations.max_performed = window
        self._events.append(AssociationAccepted(self.association))

    def _identity_not_confirmed(self, now: float) -> None:
        """PS3.7 D.3.3.7: a requestor that needs the acceptor's confirmation of its
        identity decides itself not to proceed without one: A-ABORT (service-user)."""
        description = (
            "the acceptor did not confirm the user identity (no User Identity sub-item "
            "in the A-ASSOCIATE-AC) and a positive response was required"
        )
        log.error("%s: %s; aborting", self.engine.name, description)
        self.failure = UserIdentityNotConfirmed(
            f"association failed: {description}",
            DicomAbortSourceType.User,
            DicomAbortReasonType.Unknown,
        )
        self._events.append(ev.ProviderAborted(DicomAbortReasonType.Unknown, description))
        self.engine.send_abort(DicomAbortSourceType.User, DicomAbortReasonType.Unknown, now)

    def _on_closed(self, event: ev.TransportClosed, now: float) -> None:
        self._watches.clear()
        timed_out = event.timed_out or self._dimse_timed_out
        self._events.append(ev.TransportClosed(event.description, timed_out))

    def _on_send_failed(self, event: ev.SendFailed, now: float) -> None:
        self._events.append(RequestFailed(event.message_id, event.description))

    def _on_message(self, event: ev.MessageReceived, now: float) -> None:
        message = event.message
        try:
            check_required(message.command)
        except DIMSEError as exc:
            _discard(message)
            self._abort_for(str(exc), now)
            return
        field = message.command_field
        spec = MESSAGES.get(field)
        if field & RESPONSE_BIT:
            self._on_response(message, spec)
        else:
            self._on_request(message, spec, now)

    def _on_response(self, message: Message, spec: MessageSpec | None) -> None:
        message_id = message.message_id_being_responded_to or 0
        final = not _is_pending(message.command)
        if not self.operations.responded(message_id, final):
            log.warning(
                "dropping %s for message ID %s: no such request is outstanding",
                message_name(message.command_field),
                message_id,
            )
            _discard(message)
            return
        if final:
            self._watches.pop(message_id, None)
        try:
            data_set = self._data_set(message)
        except DIMSEError as exc:
            log.warning("%s: %s", message_name(message.command_field), exc)
            data_set = None
        self._events.append(DimseReceived(message, spec, data_set, None, final))

    def _on_request(self, message: Message, spec: MessageSpec | None, now: float) -> None:
        field = message.command_field
        if expects_response(field) and not self.operations.may_perform(message.message_id or 0):
            limit = self.operations.max_performed
            reason = f"{self.operations.performing} operations in progress; the window is {limit}"
            self._refuse(message, Status.ResourceLimitation, reason, now)
            return
        if field == DicomCommandType.CStore and not self._may_receive_store(message):
            comment = "SCP role for this SOP class was not negotiated (role selection)"
            self._refuse(message, Status.NotAuthorized, comment, now)
            return
        if message.error is not None:
            status = _OUT_OF_RESOURCES.get(field, Status.ProcessingFailure)
            self._refuse(message, status, f"cannot keep the data set: {message.error}", now)
            return
        try:
            data_set = self._data_set(message)
        except DIMSEError as exc:
            status = _CANNOT_UNDERSTAND.get(field, Status.ProcessingFailure)
            self._refuse(message, status, str(exc), now)
            return
        received_file = message.data.path if isinstance(message.data, SpooledFile) else None
        self._events.append(DimseReceived(message, spec, data_set, received_file, False))

    def _may_receive_store(self, message: Message) -> bool:
        """A requestor takes C-STORE-RQ (C-GET sub-operations) only where it negotiated
        the SCP role; otherwise the request is refused, not silently stored."""
        return not self.is_requestor or self._requestor_roles(message.context_id)[1]

    def _data_set(self, message: Message) -> Dataset | None:
        data = message.data
        if isinstance(data, SpooledFile):
            if not self.parse_received_data:
                return None
            return data.read_dataset(self.config.max_inflated_data_set)
        if not isinstance(data, bytes):
            return None
        transfer_syntax = self.context(message.context_id).transfer_syntax
        return decode_dataset(data, transfer_syntax, self.config.max_inflated_data_set)

    def _refuse(self, message: Message, status: int, reason: str, now: float) -> None:
        """Answer a request we cannot serve with ``status`` and ``reason`` as comment."""
        log.warning(
            "refusing %s %s: %s", command_title(message.command_field), message.message_id, reason
        )
        _discard(message)
        if not expects_response(message.command_field):
            return  # responses and C-CANCEL are never answered
        response: dict[str, object] = {
            "CommandField": message.command_field | RESPONSE_BIT,
            "MessageIDBeingRespondedTo": message.message_id or 0,
            "Status": int(status),
            "ErrorComment": reason,
            "CommandDataSetType": NO_DATA_SET,
        }
        sop_class = message.affected_sop_class_uid or message.requested_sop_class_uid
        instance = message.affected_sop_instance_uid or message.requested_sop_instance_uid
        if sop_class:
            response["AffectedSOPClassUID"] = sop_class
        if instance:
            response["AffectedSOPInstanceUID"] = instance
        try:
            self.send(message.context_id, response, None, now)
        except DicomException as exc:  # the association ended meanwhile
            log.debug("refusal not sent: %s", exc)

    def _abort_for(self, reason: str, now: float) -> None:
        log.warning("%s: aborting the association: %s", self.engine.name, reason)
        self._events.append(ev.ProviderAborted(DicomAbortReasonType.InvalidParameterValue, reason))
        self.engine.send_abort(
            DicomAbortSourceType.Provider, DicomAbortReasonType.InvalidParameterValue, now
        )

    def _make_sink(self, context_id: int, command: dict[str, object]) -> DataSink:
        """C-STORE data goes to a Part-10 spool file; everything else stays in memory."""
        if command.get("CommandField") == DicomCommandType.CStore:
            return SpoolSink(
                self.temp_path,
                str(command.get("AffectedSOPClassUID", "")),
                str(command.get("AffectedSOPInstanceUID", "")),
                self.context(context_id).transfer_syntax,
            )
        return BytesSink()

    _ENGINE_EVENTS: Mapping[type, Callable[[DimseSession, object, float], None]] = {
        ev.AssociateRequestReceived: _on_associate_rq,  # type: ignore[dict-item]
        ev.AssociateAcceptReceived: _on_associate_ac,  # type: ignore[dict-item]
        ev.MessageReceived: _on_message,  # type: ignore[dict-item]
        ev.TransportClosed: _on_closed,  # type: ignore[dict-item]
        ev.SendFailed: _on_send_failed,  # type: ignore[dict-item]
    }


def _discard(message: Message) -> None:
    if isinstance(message.data, SpooledFile):
        message.data.discard()


def _int(command: Mapping[str, object], keyword: str) -> int:
    value = command.get(keyword)
    return value if isinstance(value, int) else 0


def _is_pending(command: Mapping[str, object]) -> bool:
    return status_category(_int(command, "Status")) is StatusCategory.PENDING


def operations_window(accept: DicomAssociate | None, is_requestor: bool) -> tuple[int, int]:
    """(requests this side may have outstanding, peer requests it performs at once),
    PS3.7 D.3.3.3: (1, 1) without a window; with one, what the accept allows (0 =
    unlimited). The accept's "invoked" count is what the requestor may invoke and the
    acceptor performs; its "performed" count is what the acceptor may invoke and the
    requestor performs."""
    if accept is None or not accept.IsAsynchronousOperations:
        return 1, 1
    invoked, performed = accept.InvokedOperationsCount, accept.PerformedOperationsCount
    return (invoked, performed) if is_requestor else (performed, invoked)
