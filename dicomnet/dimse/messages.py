"""One description of every DIMSE message (PS3.7 9.3 and 10.3).

Each ``MessageSpec`` says, once, everything dicomnet knows about a message: its command
field, the command elements it carries and which of them are mandatory, and the LEADTOOLS
callback that receives it with that callback's parameters in order. From it come the
command set a ``Send*`` method builds (``encode``), the arguments an ``OnReceive*``
callback gets (``arguments``), the check of the mandatory elements of a received message
(``check_required``) and, in ``dicomnet.signals``, the signal of each callback.

Every callback takes ``presentation_id`` and ``message_id`` first (for a response and for
C-CANCEL, the ID of the request it refers to), then the message's own fields, then
``data_set`` where the message may carry one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any

from ..enums import (
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomCommandType,
    enum_member,
)
from ..errors import DIMSEError
from .commands import (
    DATA_SET_PRESENT,
    NO_DATA_SET,
    RESPONSE_BIT,
    command_title,
    element_tag,
    message_name,
)

Command = dict[str, object]


class Kind(Enum):
    """How a callback parameter maps to its command element."""

    TEXT = "text"  # UI/AE strings; "" when absent
    NUMBER = "number"  # US; ``default`` when absent
    STATUS = "status"  # US status; a DicomCommandStatusType where the enum has it
    PRIORITY = "priority"  # US priority; a DicomCommandPriorityType where it has it
    TAGS = "tags"  # AT list; [] when absent, left out when empty
    COUNT = "count"  # US sub-operation count; left out when negative


@dataclass(frozen=True)
class Field:
    """One callback parameter and the command element that carries it.

    ``fallback`` is read when ``element`` is absent (peers that put the Affected UIDs
    where Requested ones belong, or the other way round); ``only_with`` names the
    parameter without which this one is not sent (the move originator's message ID).
    """

    parameter: str
    element: str
    kind: Kind = Kind.TEXT
    required: bool = True
    fallback: str | None = None
    only_with: str | None = None
    default: int = 0

    def read(self, command: Mapping[str, object]) -> object:
        value = command.get(self.element)
        if value is None and self.fallback is not None:
            value = command.get(self.fallback)
        kind = self.kind
        if kind is Kind.TEXT:
            return value if isinstance(value, str) and value else self._text_fallback(command)
        if kind is Kind.TAGS:
            return list(value) if isinstance(value, list) else []
        number = value if isinstance(value, int) else self.default
        if kind is Kind.STATUS:
            return enum_member(DicomCommandStatusType, number)
        if kind is Kind.PRIORITY:
            return enum_member(DicomCommandPriorityType, number)
        return number

    def _text_fallback(self, command: Mapping[str, object]) -> str:
        value = command.get(self.fallback) if self.fallback else None
        return value if isinstance(value, str) else ""

    def write(self, command: Command, arguments: Mapping[str, Any]) -> None:
        value = arguments[self.parameter]
        if self.only_with is not None and not arguments[self.only_with]:
            return
        kind = self.kind
        if kind is Kind.TEXT:
            if value or self.required:
                command[self.element] = value
        elif kind is Kind.TAGS:
            if value:
                command[self.element] = list(value)
        elif kind is Kind.COUNT:
            if value is not None and value >= 0:
                command[self.element] = int(value)
        elif kind is Kind.STATUS:
            command[self.element] = int(value) & 0xFFFF
        elif value is not None:
            command[self.element] = int(value)


@dataclass(frozen=True)
class MessageSpec:
    """A DIMSE message: command field, fields and the callback that receives it.

    What is derived from the fields is computed once (``cached_property``): it is read
    for every message sent and received."""

    command_field: int
    callback: str
    fields: tuple[Field, ...]
    data_set: bool  # the message may carry a data set (its callbacks take ``data_set``)

    @cached_property
    def name(self) -> str:
        return message_name(self.command_field)

    @cached_property
    def is_response(self) -> bool:
        return bool(self.command_field & RESPONSE_BIT)

    @cached_property
    def expects_response(self) -> bool:
        """Requests are answered; responses and C-CANCEL are not."""
        return not self.is_response and self.command_field != DicomCommandType.CCancel

    @cached_property
    def message_id_element(self) -> str:
        """Where ``message_id`` goes: a request's own ID, else the ID it refers to."""
        return "MessageID" if self.expects_response else "MessageIDBeingRespondedTo"

    @cached_property
    def parameters(self) -> tuple[str, ...]:
        """The callback's parameter names, in order."""
        names = ("presentation_id", "message_id", *(f.parameter for f in self.fields))
        return (*names, "data_set") if self.data_set else names

    @cached_property
    def required(self) -> tuple[str, ...]:
        """Mandatory and protocol-required elements (PS3.7 9.3, 10.3: M and P)."""
        own = (f.element for f in self.fields if f.required)
        return ("CommandField", "CommandDataSetType", self.message_id_element, *own)

    def encode(self, arguments: Mapping[str, Any], has_data_set: bool) -> Command:
        """The command set for ``arguments`` (the ``Send*`` method's own parameters)."""
        command: Command = {
            "CommandField": self.command_field,
            self.message_id_element: int(arguments["message_id"]),
        }
        for field in self.fields:
            field.write(command, arguments)
        command["CommandDataSetType"] = DATA_SET_PRESENT if has_data_set else NO_DATA_SET
        return command

    def arguments(self, presentation_id: int, command: Mapping[str, object]) -> list[object]:
        """The callback's positional arguments up to, not including, ``data_set``."""
        message_id = command.get(self.message_id_element)
        return [
            presentation_id,
            message_id if isinstance(message_id, int) else 0,
            *(f.read(command) for f in self.fields),
        ]


# -- the fields messages share --------------------------------------------------------

_CLASS = Field("affected_class", "AffectedSOPClassUID")
_INSTANCE = Field("instance", "AffectedSOPInstanceUID")
_PRIORITY = Field("priority", "Priority", Kind.PRIORITY)
_STATUS = Field("status", "Status", Kind.STATUS)
# Responses name their SOP class and instance optionally (PS3.7: U / C in responses).
_RSP_CLASS = Field("affected_class", "AffectedSOPClassUID", required=False)
_RSP_INSTANCE = Field("instance", "AffectedSOPInstanceUID", required=False)
# N-GET/SET/ACTION/DELETE requests name their target with the Requested UIDs.
_REQUESTED_CLASS = Field("affected_class", "RequestedSOPClassUID", fallback="AffectedSOPClassUID")
_REQUESTED_INSTANCE = Field(
    "instance", "RequestedSOPInstanceUID", fallback="AffectedSOPInstanceUID"
)
_N_RSP_CLASS = Field(
    "affected_class", "AffectedSOPClassUID", required=False, fallback="RequestedSOPClassUID"
)
_N_RSP_INSTANCE = Field(
    "instance", "AffectedSOPInstanceUID", required=False, fallback="RequestedSOPInstanceUID"
)
_COUNTS = (
    Field("remaining", "NumberOfRemainingSuboperations", Kind.COUNT, False, default=-1),
    Field("completed", "NumberOfCompletedSuboperations", Kind.COUNT, False),
    Field("failed", "NumberOfFailedSuboperations", Kind.COUNT, False),
    Field("warning", "NumberOfWarningSuboperations", Kind.COUNT, False),
)
_EVENT = Field("dicom_event", "EventTypeID", Kind.NUMBER)
_RSP_EVENT = Field("dicom_event", "EventTypeID", Kind.NUMBER, required=False)
_ACTION = Field("action", "ActionTypeID", Kind.NUMBER)
_RSP_ACTION = Field("action", "ActionTypeID", Kind.NUMBER, required=False)

_R = RESPONSE_BIT
_C = DicomCommandType

_SPECS = (
    MessageSpec(_C.CEcho, "OnReceiveCEchoRequest", (_CLASS,), False),
    MessageSpec(_C.CEcho | _R, "OnReceiveCEchoResponse", (_RSP_CLASS, _STATUS), False),
    MessageSpec(
        _C.CStore,
        "OnReceiveCStoreRequest",
        (
            _CLASS,
            _INSTANCE,
            _PRIORITY,
            Field("move_ae", "MoveOriginatorApplicationEntityTitle", required=False),
            Field(
                "move_message_id",
                "MoveOriginatorMessageID",
                Kind.NUMBER,
                required=False,
                only_with="move_ae",
            ),
        ),
        True,
    ),
    MessageSpec(
        _C.CStore | _R, "OnReceiveCStoreResponse", (_RSP_CLASS, _RSP_INSTANCE, _STATUS), False
    ),
    MessageSpec(_C.CFind, "OnReceiveCFindRequest", (_CLASS, _PRIORITY), True),
    MessageSpec(_C.CFind | _R, "OnReceiveCFindResponse", (_RSP_CLASS, _STATUS), True),
    MessageSpec(_C.CGet, "OnReceiveCGetRequest", (_CLASS, _PRIORITY), True),
    MessageSpec(_C.CGet | _R, "OnReceiveCGetResponse", (_RSP_CLASS, _STATUS, *_COUNTS), True),
    MessageSpec(
        _C.CMove,
        "OnReceiveCMoveRequest",
        (_CLASS, _PRIORITY, Field("move_ae", "MoveDestination")),
        True,
    ),
    MessageSpec(_C.CMove | _R, "OnReceiveCMoveResponse", (_RSP_CLASS, _STATUS, *_COUNTS), True),
    MessageSpec(_C.CCancel, "OnReceiveCCancelRequest", (), False),
    MessageSpec(_C.NReport, "OnReceiveNReportRequest", (_CLASS, _INSTANCE, _EVENT), True),
    MessageSpec(
        _C.NReport | _R,
        "OnReceiveNReportResponse",
        (_N_RSP_CLASS, _N_RSP_INSTANCE, _STATUS, _RSP_EVENT),
        True,
    ),
    MessageSpec(
        _C.NGet,
        "OnReceiveNGetRequest",
        (
            _REQUESTED_CLASS,
            _REQUESTED_INSTANCE,
            Field("attributes", "AttributeIdentifierList", Kind.TAGS, required=False),
        ),
        False,
    ),
    MessageSpec(
        _C.NGet | _R, "OnReceiveNGetResponse", (_N_RSP_CLASS, _N_RSP_INSTANCE, _STATUS), True
    ),
    MessageSpec(_C.NSet, "OnReceiveNSetRequest", (_REQUESTED_CLASS, _REQUESTED_INSTANCE), True),
    MessageSpec(
        _C.NSet | _R, "OnReceiveNSetResponse", (_N_RSP_CLASS, _N_RSP_INSTANCE, _STATUS), True
    ),
    MessageSpec(
        _C.NAction,
        "OnReceiveNActionRequest",
        (_REQUESTED_CLASS, _REQUESTED_INSTANCE, _ACTION),
        True,
    ),
    MessageSpec(
        _C.NAction | _R,
        "OnReceiveNActionResponse",
        (_N_RSP_CLASS, _N_RSP_INSTANCE, _STATUS, _RSP_ACTION),
        True,
    ),
    MessageSpec(
        _C.NCreate,
        "OnReceiveNCreateRequest",
        (_CLASS, Field("instance", "AffectedSOPInstanceUID", required=False)),
        True,
    ),
    MessageSpec(
        _C.NCreate | _R,
        "OnReceiveNCreateResponse",
        (_N_RSP_CLASS, _N_RSP_INSTANCE, _STATUS),
        True,
    ),
    MessageSpec(
        _C.NDelete, "OnReceiveNDeleteRequest", (_REQUESTED_CLASS, _REQUESTED_INSTANCE), False
    ),
    MessageSpec(
        _C.NDelete | _R, "OnReceiveNDeleteResponse", (_N_RSP_CLASS, _N_RSP_INSTANCE, _STATUS), False
    ),
)

MESSAGES: Mapping[int, MessageSpec] = {spec.command_field: spec for spec in _SPECS}
"""Every DIMSE message by command field."""

MESSAGE_BY_CALLBACK: Mapping[str, MessageSpec] = {spec.callback: spec for spec in _SPECS}

_PROTOCOL = ("CommandField", "CommandDataSetType")


def expects_response(command_field: int) -> bool:
    """Whether a message with this command field is answered: requests are, responses and
    C-CANCEL are not; an unknown request-looking field is treated as a request."""
    spec = MESSAGES.get(command_field)
    return spec.expects_response if spec is not None else not command_field & RESPONSE_BIT


def required_elements(command_field: int) -> tuple[str, ...]:
    """The elements a message must carry; only the protocol ones for an unknown field."""
    spec = MESSAGES.get(command_field)
    return _PROTOCOL if spec is None else spec.required


def check_required(fields: Mapping[str, object]) -> None:
    """Raise ``DIMSEError`` naming every mandatory element the message lacks.

    An empty value counts as missing. A command field no PS3.7 table defines only needs
    the protocol elements, so the caller can still hand it on as an unknown message.
    """
    command_field = fields.get("CommandField")
    required = required_elements(command_field) if isinstance(command_field, int) else _PROTOCOL
    missing = [keyword for keyword in required if fields.get(keyword) in (None, "")]
    if missing:
        names = ", ".join(
            f"{keyword} (0000,{element_tag(keyword) & 0xFFFF:04X})"
            for keyword in sorted(missing, key=element_tag)
        )
        raise DIMSEError(f"{command_title(command_field)} lacks mandatory {names}")
