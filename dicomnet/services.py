"""The DIMSE-C and DIMSE-N half of the LEADTOOLS ``DicomNet`` API (PS3.7 sections 9, 10).

``DimseServices`` declares every ``Send*`` method and ``OnReceive*`` callback with
LEADTOOLS' names and parameter order, so applications and IDEs see explicit, typed
methods. What each message carries is not written here but in its ``MessageSpec``
(``dicomnet.dimse.messages``): a ``Send*`` method hands its own arguments to
``_send_dimse`` with its spec, and each default ``OnReceive*`` hands its arguments to
``_callback``, which ``DicomNet`` implements by sending the callback's signal. A test holds
every method's parameters against its spec.

Optional status elements (PS3.7 annex C: ``ErrorComment``, ``ErrorID``,
``OffendingElement``, ``AttributeIdentifierList``...) go into any ``Send*`` as keyword
arguments named by their pydicom keywords, e.g.
``SendNSetResponse(..., ErrorComment="already completed", ErrorID=0xA710)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .dimse.commands import RESPONSE_BIT as _R
from .dimse.messages import MESSAGES, MessageSpec
from .enums import DicomCommandPriorityType, DicomCommandStatusType
from .enums import DicomCommandType as _C
from .session import DataSetArgument

if TYPE_CHECKING:  # annotations only: pydicom loads when a data set is made
    from pydicom import Dataset


class DimseServices(ABC):
    """The DIMSE senders and callbacks of ``DicomNet``; an abstract base class whose
    two hooks say how a message is sent and how a callback reaches its subscribers."""

    @abstractmethod
    def _send_dimse(self, spec: MessageSpec, arguments: Mapping[str, Any]) -> None:
        """Send the message ``spec`` describes, built from a ``Send*`` method's arguments
        (``presentation_id``, ``message_id``, its fields, ``data_set``, ``extra``)."""

    @abstractmethod
    def _callback(self, name: str, arguments: Mapping[str, Any]) -> None:
        """What a default ``On*`` callback does with its arguments (emit its signal)."""

    # -- C-ECHO --------------------------------------------------------------

    def SendCEchoRequest(self, presentation_id: int, message_id: int, affected_class: str) -> None:
        self._send_dimse(MESSAGES[_C.CEcho], locals())

    def SendCEchoResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType | int,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.CEcho | _R], locals())

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self._callback("OnReceiveCEchoRequest", locals())

    def OnReceiveCEchoResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
    ) -> None:
        self._callback("OnReceiveCEchoResponse", locals())

    # -- C-STORE -------------------------------------------------------------

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
        self._send_dimse(MESSAGES[_C.CStore], locals())

    def SendCStoreResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.CStore | _R], locals())

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
        self._callback("OnReceiveCStoreRequest", locals())

    def OnReceiveCStoreResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
    ) -> None:
        self._callback("OnReceiveCStoreResponse", locals())

    # -- C-FIND --------------------------------------------------------------

    def SendCFindRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.CFind], locals())

    def SendCFindResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType | int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.CFind | _R], locals())

    def OnReceiveCFindRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveCFindRequest", locals())

    def OnReceiveCFindResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveCFindResponse", locals())

    # -- C-GET ---------------------------------------------------------------

    def SendCGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.CGet], locals())

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
        self._send_dimse(MESSAGES[_C.CGet | _R], locals())

    # -- C-MOVE --------------------------------------------------------------

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
        self._send_dimse(MESSAGES[_C.CMove], locals())

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
        self._send_dimse(MESSAGES[_C.CMove | _R], locals())

    # -- C-GET ---------------------------------------------------------------

    def OnReceiveCGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveCGetRequest", locals())

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
        self._callback("OnReceiveCGetResponse", locals())

    # -- C-MOVE --------------------------------------------------------------

    def OnReceiveCMoveRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveCMoveRequest", locals())

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
        self._callback("OnReceiveCMoveResponse", locals())

    # -- C-CANCEL ------------------------------------------------------------

    def SendCCancelRequest(self, presentation_id: int, message_id: int) -> None:
        """Cancel the C-FIND, C-GET or C-MOVE request ``message_id`` (PS3.7 9.3.2.3)."""
        self._send_dimse(MESSAGES[_C.CCancel], locals())

    def OnReceiveCCancelRequest(self, presentation_id: int, message_id: int) -> None:
        self._callback("OnReceiveCCancelRequest", locals())

    # -- N-EVENT-REPORT ------------------------------------------------------

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
        self._send_dimse(MESSAGES[_C.NReport], locals())

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
        self._send_dimse(MESSAGES[_C.NReport | _R], locals())

    def OnReceiveNReportRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        dicom_event: int,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveNReportRequest", locals())

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
        self._callback("OnReceiveNReportResponse", locals())

    # -- N-GET ---------------------------------------------------------------

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
        attributes = list(attributes)[:count]
        self._send_dimse(MESSAGES[_C.NGet], locals())

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
        self._send_dimse(MESSAGES[_C.NGet | _R], locals())

    def OnReceiveNGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        attributes: list[int],
    ) -> None:
        self._callback("OnReceiveNGetRequest", locals())

    def OnReceiveNGetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveNGetResponse", locals())

    # -- N-SET ---------------------------------------------------------------

    def SendNSetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.NSet], locals())

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
        self._send_dimse(MESSAGES[_C.NSet | _R], locals())

    def OnReceiveNSetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveNSetRequest", locals())

    def OnReceiveNSetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveNSetResponse", locals())

    # -- N-ACTION ------------------------------------------------------------

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
        self._send_dimse(MESSAGES[_C.NAction], locals())

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
        self._send_dimse(MESSAGES[_C.NAction | _R], locals())

    def OnReceiveNActionRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        action: int,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveNActionRequest", locals())

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
        self._callback("OnReceiveNActionResponse", locals())

    # -- N-CREATE ------------------------------------------------------------

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
        self._send_dimse(MESSAGES[_C.NCreate], locals())

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
        self._send_dimse(MESSAGES[_C.NCreate | _R], locals())

    def OnReceiveNCreateRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveNCreateRequest", locals())

    def OnReceiveNCreateResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        self._callback("OnReceiveNCreateResponse", locals())

    # -- N-DELETE ------------------------------------------------------------

    def SendNDeleteRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.NDelete], locals())

    def SendNDeleteResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType | int,
        **extra: Any,
    ) -> None:
        self._send_dimse(MESSAGES[_C.NDelete | _R], locals())

    def OnReceiveNDeleteRequest(
        self, presentation_id: int, message_id: int, affected_class: str, instance: str
    ) -> None:
        self._callback("OnReceiveNDeleteRequest", locals())

    def OnReceiveNDeleteResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        status: DicomCommandStatusType,
    ) -> None:
        self._callback("OnReceiveNDeleteResponse", locals())
