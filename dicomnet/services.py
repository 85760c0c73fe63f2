"""The DIMSE-C and DIMSE-N half of the ``DicomNet`` API (PS3.7 sections 9 and 10).

Each ``Send*`` method builds the command set its PS3.7 message table prescribes, with
LEADTOOLS' method name and parameter order; each received message is dispatched through
``_HANDLERS`` to the ``OnReceive*`` callback with the same parameters. The mixin leaves
the transport to its host class (``DicomNet``), which supplies ``_send_message``,
``_data_source`` and ``_emit_callback``.

Optional status elements (PS3.7 annex C: ``ErrorComment``, ``ErrorID``,
``OffendingElement``, ``AttributeIdentifierList``...) go into any ``Send*`` as keyword
arguments named by their pydicom keywords, e.g.
``SendNSetResponse(..., ErrorComment="already completed", ErrorID=0xA710)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, cast

from pydicom import Dataset

from .dimse.assembly import Message
from .dimse.commands import DATA_SET_PRESENT, NO_DATA_SET, RESPONSE_BIT
from .dimse.part10 import Part10File
from .enums import DicomCommandPriorityType, DicomCommandStatusType, DicomCommandType

DataSetArgument = Dataset | Part10File | str | os.PathLike[str] | None

C_CANCEL = DicomCommandType.CCancel


def _data_set_type(data_set: object) -> int:
    return NO_DATA_SET if data_set is None else DATA_SET_PRESENT


def _status(value: DicomCommandStatusType | int) -> int:
    return int(value) & 0xFFFF


class DimseServices:
    """DIMSE-C/N senders and callbacks; mixed into ``DicomNet``."""

    # supplied by DicomNet
    def _send_message(  # pragma: no cover - implemented by the host class
        self, presentation_id: int, command: dict[str, Any], data_set: DataSetArgument = None
    ) -> None:
        raise NotImplementedError

    def _emit_callback(self, name: str, arguments: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _send_request(
        self,
        presentation_id: int,
        command: dict[str, Any],
        data_set: DataSetArgument,
        extra: dict[str, Any],
    ) -> None:
        command["CommandDataSetType"] = _data_set_type(data_set)
        command.update(extra)
        self._send_message(presentation_id, command, data_set)

    _send_response = _send_request

    # -- C-ECHO ----------------------------------------------------------------------

    def SendCEchoRequest(self, presentation_id: int, message_id: int, affected_class: str) -> None:
        command = {
            "CommandField": DicomCommandType.CEcho,
            "MessageID": message_id,
            "AffectedSOPClassUID": affected_class,
        }
        self._send_request(presentation_id, command, None, {})

    def SendCEchoResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType | int,
        **extra: Any,
    ) -> None:
        command = {
            "CommandField": DicomCommandType.CEcho | RESPONSE_BIT,
            "MessageIDBeingRespondedTo": message_id,
            "AffectedSOPClassUID": affected_class,
            "Status": _status(status),
        }
        self._send_response(presentation_id, command, None, extra)

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self._emit_callback("OnReceiveCEchoRequest", locals())

    def OnReceiveCEchoResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
    ) -> None:
        self._emit_callback("OnReceiveCEchoResponse", locals())

    # -- C-STORE ---------------------------------------------------------------------

    def SendCStoreRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        move_message_id: int,
        data_set: DataSetArgument,
        **extra: Any,
    ) -> None:
        """Store ``data_set``: a ``Dataset``, or the path of a Part-10 file whose data set
        is sent without decoding when its transfer syntax was accepted."""
        command = {
            "CommandField": DicomCommandType.CStore,
            "MessageID": message_id,
            "AffectedSOPClassUID": affected_class,
            "AffectedSOPInstanceUID": instance,
            "Priority": int(priority),
        }
        if move_ae:
            command["MoveOriginatorApplicationEntityTitle"] = move_ae
            command["MoveOriginatorMessageID"] = move_message_id
        self._send_request(presentation_id, command, data_set, extra)

    def SendCStoreResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        **extra: Any,
    ) -> None:
        command = {
            "CommandField": DicomCommandType.CStore | RESPONSE_BIT,
            "MessageIDBeingRespondedTo": message_id,
            "AffectedSOPClassUID": affected_class,
            "AffectedSOPInstanceUID": instance,
            "Status": _status(status),
        }
        self._send_response(presentation_id, command, None, extra)

    def OnReceiveCStoreRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        move_message_id: int,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveCStoreRequest", locals())

    def OnReceiveCStoreResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
    ) -> None:
        self._emit_callback("OnReceiveCStoreResponse", locals())

    # -- C-FIND ----------------------------------------------------------------------

    def SendCFindRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset,
        **extra: Any,
    ) -> None:
        command = {
            "CommandField": DicomCommandType.CFind,
            "MessageID": message_id,
            "AffectedSOPClassUID": affected_class,
            "Priority": int(priority),
        }
        self._send_request(presentation_id, command, data_set, extra)

    def SendCFindResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType | int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = {
            "CommandField": DicomCommandType.CFind | RESPONSE_BIT,
            "MessageIDBeingRespondedTo": message_id,
            "AffectedSOPClassUID": affected_class,
            "Status": _status(status),
        }
        self._send_response(presentation_id, command, data_set, extra)

    def OnReceiveCFindRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveCFindRequest", locals())

    def OnReceiveCFindResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveCFindResponse", locals())

    # -- C-GET / C-MOVE --------------------------------------------------------------

    def SendCGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset,
        **extra: Any,
    ) -> None:
        command = {
            "CommandField": DicomCommandType.CGet,
            "MessageID": message_id,
            "AffectedSOPClassUID": affected_class,
            "Priority": int(priority),
        }
        self._send_request(presentation_id, command, data_set, extra)

    def SendCGetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType | int,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        self._send_retrieve_response(
            DicomCommandType.CGet,
            presentation_id,
            message_id,
            affected_class,
            status,
            (remaining, completed, failed, warning),
            data_set,
            extra,
        )

    def SendCMoveRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        data_set: Dataset,
        **extra: Any,
    ) -> None:
        command = {
            "CommandField": DicomCommandType.CMove,
            "MessageID": message_id,
            "AffectedSOPClassUID": affected_class,
            "Priority": int(priority),
            "MoveDestination": move_ae,
        }
        self._send_request(presentation_id, command, data_set, extra)

    def SendCMoveResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType | int,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        self._send_retrieve_response(
            DicomCommandType.CMove,
            presentation_id,
            message_id,
            affected_class,
            status,
            (remaining, completed, failed, warning),
            data_set,
            extra,
        )

    def _send_retrieve_response(
        self,
        service: DicomCommandType,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType | int,
        counts: tuple[int, int, int, int],
        data_set: Dataset | None,
        extra: dict[str, Any],
    ) -> None:
        """C-GET/C-MOVE responses: sub-operation counts (PS3.7 9.3.3.2, 9.3.4.2). The
        remaining count is omitted when negative (final responses may leave it out)."""
        remaining, completed, failed, warning = counts
        command: dict[str, Any] = {
            "CommandField": service | RESPONSE_BIT,
            "MessageIDBeingRespondedTo": message_id,
            "AffectedSOPClassUID": affected_class,
            "Status": _status(status),
            "NumberOfRemainingSuboperations": remaining if remaining >= 0 else None,
            "NumberOfCompletedSuboperations": completed,
            "NumberOfFailedSuboperations": failed,
            "NumberOfWarningSuboperations": warning,
        }
        self._send_response(presentation_id, command, data_set, extra)

    def OnReceiveCGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveCGetRequest", locals())

    def OnReceiveCGetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveCGetResponse", locals())

    def OnReceiveCMoveRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveCMoveRequest", locals())

    def OnReceiveCMoveResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveCMoveResponse", locals())

    # -- C-CANCEL --------------------------------------------------------------------

    def SendCCancelRequest(self, presentation_id: int, message_id: int) -> None:
        """Cancel the C-FIND, C-GET or C-MOVE request ``message_id`` (PS3.7 9.3.2.3)."""
        command = {
            "CommandField": C_CANCEL,
            "MessageIDBeingRespondedTo": message_id,
        }
        self._send_request(presentation_id, command, None, {})

    def OnReceiveCCancelRequest(self, presentation_id: int, message_id: int) -> None:
        self._emit_callback("OnReceiveCCancelRequest", locals())

    # -- N-EVENT-REPORT --------------------------------------------------------------

    def SendNReportRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        dicom_event: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = {
            "CommandField": DicomCommandType.NReport,
            "MessageID": message_id,
            "AffectedSOPClassUID": affected_class,
            "AffectedSOPInstanceUID": instance,
            "EventTypeID": dicom_event,
        }
        self._send_request(presentation_id, command, data_set, extra)

    def SendNReportResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        dicom_event: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = {
            **self._n_response_base(
                DicomCommandType.NReport, message_id, affected_class, instance, status
            ),
            "EventTypeID": dicom_event,
        }
        self._send_response(presentation_id, command, data_set, extra)

    def OnReceiveNReportRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        dicom_event: int,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNReportRequest", locals())

    def OnReceiveNReportResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        dicom_event: int,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNReportResponse", locals())

    # -- N-GET -----------------------------------------------------------------------

    def SendNGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        attributes: Sequence[int],
        count: int | None = None,
        **extra: Any,
    ) -> None:
        """Ask for ``attributes`` (tags as 0xGGGGEEEE; empty = all) of ``instance``.
        ``count`` is LEADTOOLS' array length; when given, only that many are sent."""
        tags = list(attributes)[: count if count is not None else None]
        command = {
            **self._n_request_base(DicomCommandType.NGet, message_id, affected_class, instance),
            "AttributeIdentifierList": tags or None,
        }
        self._send_request(presentation_id, command, None, extra)

    def SendNGetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = self._n_response_base(
            DicomCommandType.NGet, message_id, affected_class, instance, status
        )
        self._send_response(presentation_id, command, data_set, extra)

    def OnReceiveNGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        attributes: list[int],
    ) -> None:
        self._emit_callback("OnReceiveNGetRequest", locals())

    def OnReceiveNGetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNGetResponse", locals())

    # -- N-SET -----------------------------------------------------------------------

    def SendNSetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset,
        **extra: Any,
    ) -> None:
        command = self._n_request_base(DicomCommandType.NSet, message_id, affected_class, instance)
        self._send_request(presentation_id, command, data_set, extra)

    def SendNSetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = self._n_response_base(
            DicomCommandType.NSet, message_id, affected_class, instance, status
        )
        self._send_response(presentation_id, command, data_set, extra)

    def OnReceiveNSetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNSetRequest", locals())

    def OnReceiveNSetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNSetResponse", locals())

    # -- N-ACTION --------------------------------------------------------------------

    def SendNActionRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        action: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = {
            **self._n_request_base(DicomCommandType.NAction, message_id, affected_class, instance),
            "ActionTypeID": action,
        }
        self._send_request(presentation_id, command, data_set, extra)

    def SendNActionResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        action: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = {
            **self._n_response_base(
                DicomCommandType.NAction, message_id, affected_class, instance, status
            ),
            "ActionTypeID": action,
        }
        self._send_response(presentation_id, command, data_set, extra)

    def OnReceiveNActionRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        action: int,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNActionRequest", locals())

    def OnReceiveNActionResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        action: int,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNActionResponse", locals())

    # -- N-CREATE --------------------------------------------------------------------

    def SendNCreateRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        """``instance`` may be empty: the SCP then assigns the SOP instance UID."""
        command = {
            "CommandField": DicomCommandType.NCreate,
            "MessageID": message_id,
            "AffectedSOPClassUID": affected_class,
            "AffectedSOPInstanceUID": instance or None,
        }
        self._send_request(presentation_id, command, data_set, extra)

    def SendNCreateResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        command = self._n_response_base(
            DicomCommandType.NCreate, message_id, affected_class, instance, status
        )
        self._send_response(presentation_id, command, data_set, extra)

    def OnReceiveNCreateRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNCreateRequest", locals())

    def OnReceiveNCreateResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._emit_callback("OnReceiveNCreateResponse", locals())

    # -- N-DELETE --------------------------------------------------------------------

    def SendNDeleteRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        **extra: Any,
    ) -> None:
        command = self._n_request_base(
            DicomCommandType.NDelete, message_id, affected_class, instance
        )
        self._send_request(presentation_id, command, None, extra)

    def SendNDeleteResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        **extra: Any,
    ) -> None:
        command = self._n_response_base(
            DicomCommandType.NDelete, message_id, affected_class, instance, status
        )
        self._send_response(presentation_id, command, None, extra)

    def OnReceiveNDeleteRequest(
        self, presentation_id: int, message_id: int, affected_class: str, instance: str
    ) -> None:
        self._emit_callback("OnReceiveNDeleteRequest", locals())

    def OnReceiveNDeleteResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
    ) -> None:
        self._emit_callback("OnReceiveNDeleteResponse", locals())

    # -- shared command shapes -------------------------------------------------------

    @staticmethod
    def _n_request_base(
        service: DicomCommandType, message_id: int, sop_class: str, instance: str
    ) -> dict[str, Any]:
        """N-GET/SET/ACTION/DELETE requests name their target with the Requested UIDs."""
        return {
            "CommandField": service,
            "MessageID": message_id,
            "RequestedSOPClassUID": sop_class,
            "RequestedSOPInstanceUID": instance,
        }

    @staticmethod
    def _n_response_base(
        service: DicomCommandType,
        message_id: int,
        sop_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
    ) -> dict[str, Any]:
        return {
            "CommandField": service | RESPONSE_BIT,
            "MessageIDBeingRespondedTo": message_id,
            "AffectedSOPClassUID": sop_class or None,
            "AffectedSOPInstanceUID": instance or None,
            "Status": _status(status),
        }


# -- receiving: command field -> how to call the callback ----------------------------


def _text(command: dict[str, Any], keyword: str) -> str:
    value = command.get(keyword)
    return value if isinstance(value, str) else ""


def _number(command: dict[str, Any], keyword: str, default: int = 0) -> int:
    value = command.get(keyword)
    return value if isinstance(value, int) else default


def _status_of(command: dict[str, Any]) -> DicomCommandStatusType:
    """The status as an enum member; a code the enum lacks passes as a plain int (any
    16-bit status is legal), which compares and formats the same way."""
    code = _number(command, "Status")
    try:
        return DicomCommandStatusType(code)
    except ValueError:
        return cast(DicomCommandStatusType, code)


def _priority_of(command: dict[str, Any]) -> DicomCommandPriorityType:
    value = _number(command, "Priority")
    try:
        return DicomCommandPriorityType(value)
    except ValueError:
        return cast(DicomCommandPriorityType, value)


def _counts(command: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        _number(command, "NumberOfRemainingSuboperations", -1),
        _number(command, "NumberOfCompletedSuboperations"),
        _number(command, "NumberOfFailedSuboperations"),
        _number(command, "NumberOfWarningSuboperations"),
    )


def _tags(command: dict[str, Any]) -> list[int]:
    value = command.get("AttributeIdentifierList")
    return list(value) if isinstance(value, list) else []


def _target(command: dict[str, Any]) -> tuple[str, str]:
    """(SOP class, SOP instance) from Affected or, in N requests, Requested UIDs."""
    sop_class = _text(command, "AffectedSOPClassUID") or _text(command, "RequestedSOPClassUID")
    instance = _text(command, "AffectedSOPInstanceUID") or _text(command, "RequestedSOPInstanceUID")
    return sop_class, instance


Handler = Callable[[DimseServices, Message, Any], None]
_R = RESPONSE_BIT


def _mid(c: dict[str, Any]) -> int:
    return _number(c, "MessageID")


def _rid(c: dict[str, Any]) -> int:
    return _number(c, "MessageIDBeingRespondedTo")


_HANDLERS: dict[int, Handler] = {
    DicomCommandType.CEcho: lambda n, m, d: n.OnReceiveCEchoRequest(
        m.context_id, _mid(m.command), _text(m.command, "AffectedSOPClassUID")
    ),
    DicomCommandType.CEcho | _R: lambda n, m, d: n.OnReceiveCEchoResponse(
        m.context_id,
        _rid(m.command),
        _text(m.command, "AffectedSOPClassUID"),
        _status_of(m.command),
    ),
    DicomCommandType.CStore: lambda n, m, d: n.OnReceiveCStoreRequest(
        m.context_id,
        _mid(m.command),
        *_target(m.command),
        _priority_of(m.command),
        _text(m.command, "MoveOriginatorApplicationEntityTitle"),
        _number(m.command, "MoveOriginatorMessageID"),
        d,
    ),
    DicomCommandType.CStore | _R: lambda n, m, d: n.OnReceiveCStoreResponse(
        m.context_id, _rid(m.command), *_target(m.command), _status_of(m.command)
    ),
    DicomCommandType.CFind: lambda n, m, d: n.OnReceiveCFindRequest(
        m.context_id,
        _mid(m.command),
        _text(m.command, "AffectedSOPClassUID"),
        _priority_of(m.command),
        d,
    ),
    DicomCommandType.CFind | _R: lambda n, m, d: n.OnReceiveCFindResponse(
        m.context_id,
        _rid(m.command),
        _text(m.command, "AffectedSOPClassUID"),
        _status_of(m.command),
        d,
    ),
    DicomCommandType.CGet: lambda n, m, d: n.OnReceiveCGetRequest(
        m.context_id,
        _mid(m.command),
        _text(m.command, "AffectedSOPClassUID"),
        _priority_of(m.command),
        d,
    ),
    DicomCommandType.CGet | _R: lambda n, m, d: n.OnReceiveCGetResponse(
        m.context_id,
        _rid(m.command),
        _text(m.command, "AffectedSOPClassUID"),
        _status_of(m.command),
        *_counts(m.command),
        d,
    ),
    DicomCommandType.CMove: lambda n, m, d: n.OnReceiveCMoveRequest(
        m.context_id,
        _mid(m.command),
        _text(m.command, "AffectedSOPClassUID"),
        _priority_of(m.command),
        _text(m.command, "MoveDestination"),
        d,
    ),
    DicomCommandType.CMove | _R: lambda n, m, d: n.OnReceiveCMoveResponse(
        m.context_id,
        _rid(m.command),
        _text(m.command, "AffectedSOPClassUID"),
        _status_of(m.command),
        *_counts(m.command),
        d,
    ),
    C_CANCEL: lambda n, m, d: n.OnReceiveCCancelRequest(m.context_id, _rid(m.command)),
    DicomCommandType.NReport: lambda n, m, d: n.OnReceiveNReportRequest(
        m.context_id, _mid(m.command), *_target(m.command), _number(m.command, "EventTypeID"), d
    ),
    DicomCommandType.NReport | _R: lambda n, m, d: n.OnReceiveNReportResponse(
        m.context_id,
        _rid(m.command),
        *_target(m.command),
        _status_of(m.command),
        _number(m.command, "EventTypeID"),
        d,
    ),
    DicomCommandType.NGet: lambda n, m, d: n.OnReceiveNGetRequest(
        m.context_id, _mid(m.command), *_target(m.command), _tags(m.command)
    ),
    DicomCommandType.NGet | _R: lambda n, m, d: n.OnReceiveNGetResponse(
        m.context_id, _rid(m.command), *_target(m.command), _status_of(m.command), d
    ),
    DicomCommandType.NSet: lambda n, m, d: n.OnReceiveNSetRequest(
        m.context_id, _mid(m.command), *_target(m.command), d
    ),
    DicomCommandType.NSet | _R: lambda n, m, d: n.OnReceiveNSetResponse(
        m.context_id, _rid(m.command), *_target(m.command), _status_of(m.command), d
    ),
    DicomCommandType.NAction: lambda n, m, d: n.OnReceiveNActionRequest(
        m.context_id, _mid(m.command), *_target(m.command), _number(m.command, "ActionTypeID"), d
    ),
    DicomCommandType.NAction | _R: lambda n, m, d: n.OnReceiveNActionResponse(
        m.context_id,
        _rid(m.command),
        *_target(m.command),
        _status_of(m.command),
        _number(m.command, "ActionTypeID"),
        d,
    ),
    DicomCommandType.NCreate: lambda n, m, d: n.OnReceiveNCreateRequest(
        m.context_id, _mid(m.command), *_target(m.command), d
    ),
    DicomCommandType.NCreate | _R: lambda n, m, d: n.OnReceiveNCreateResponse(
        m.context_id, _rid(m.command), *_target(m.command), _status_of(m.command), d
    ),
    DicomCommandType.NDelete: lambda n, m, d: n.OnReceiveNDeleteRequest(
        m.context_id, _mid(m.command), *_target(m.command)
    ),
    DicomCommandType.NDelete | _R: lambda n, m, d: n.OnReceiveNDeleteResponse(
        m.context_id, _rid(m.command), *_target(m.command), _status_of(m.command)
    ),
}


# The callback that handles each request; a request none of them handles is refused.
REQUEST_CALLBACKS: dict[int, str] = {
    DicomCommandType.CEcho: "OnReceiveCEchoRequest",
    DicomCommandType.CStore: "OnReceiveCStoreRequest",
    DicomCommandType.CFind: "OnReceiveCFindRequest",
    DicomCommandType.CGet: "OnReceiveCGetRequest",
    DicomCommandType.CMove: "OnReceiveCMoveRequest",
    DicomCommandType.NReport: "OnReceiveNReportRequest",
    DicomCommandType.NGet: "OnReceiveNGetRequest",
    DicomCommandType.NSet: "OnReceiveNSetRequest",
    DicomCommandType.NAction: "OnReceiveNActionRequest",
    DicomCommandType.NCreate: "OnReceiveNCreateRequest",
    DicomCommandType.NDelete: "OnReceiveNDeleteRequest",
}


def dispatch(net: DimseServices, message: Message, data_set: Dataset | None) -> bool:
    """Call the typed callback of ``message``; False when its command field is unknown
    (the caller then raises ``OnReceiveUnknown``)."""
    handler = _HANDLERS.get(message.command_field)
    if handler is None:
        return False
    handler(net, message, data_set)
    return True
