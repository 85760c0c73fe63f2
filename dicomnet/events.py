"""Events the protocol engine (``connection.py``) hands to its user.

Small frozen dataclasses, one per thing that happened on an association, in the order it
happened. ``DicomNet`` turns each into its LEADTOOLS callback.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dimse.assembly import Message
from .pdu import AssociateAC, AssociateRJ, AssociateRQ


@dataclass(frozen=True)
class PduReceived:
    """A whole PDU arrived (only produced when the user asked for raw PDUs)."""

    pdu_type: int
    raw: bytes


@dataclass(frozen=True)
class AssociateRequestReceived:
    pdu: AssociateRQ


@dataclass(frozen=True)
class AssociateAcceptReceived:
    pdu: AssociateAC


@dataclass(frozen=True)
class AssociateRejectReceived:
    pdu: AssociateRJ


@dataclass(frozen=True)
class MessageReceived:
    message: Message


@dataclass(frozen=True)
class ReleaseRequested:
    """The peer sent A-RELEASE-RQ; the user must answer with a release response."""


@dataclass(frozen=True)
class ReleaseConfirmed:
    """The peer answered our A-RELEASE-RQ."""


@dataclass(frozen=True)
class AbortReceived:
    """The peer sent A-ABORT."""

    source: int
    reason: int


@dataclass(frozen=True)
class SendFailed:
    """A queued DIMSE message could not be produced while it was being sent (its data
    set file was truncated, deleted or unreadable).

    The message never reached the peer whole, so the engine aborts the association
    (PS3.8 annex E leaves no way to finish it): ``ProviderAborted`` follows. ``message_id``
    is the MessageID of a request, or the MessageIDBeingRespondedTo of a response (None
    if the command carries neither); ``command_field`` tells which kind it was.
    """

    context_id: int
    message_id: int | None
    description: str
    command_field: int


@dataclass(frozen=True)
class ProviderAborted:
    """This side ended the association because of a protocol error, timeout or lost link.

    ``reason`` is the A-ABORT reason sent (or that would have been sent), ``description``
    says what happened in words.
    """

    reason: int
    description: str
    timed_out: bool = False


@dataclass(frozen=True)
class TransportClosed:
    """The engine is done with the connection; the transport must be (or was) closed."""

    description: str
    timed_out: bool = False


Event = (
    PduReceived
    | AssociateRequestReceived
    | AssociateAcceptReceived
    | AssociateRejectReceived
    | MessageReceived
    | ReleaseRequested
    | ReleaseConfirmed
    | AbortReceived
    | SendFailed
    | ProviderAborted
    | TransportClosed
)
