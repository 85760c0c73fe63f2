"""Storage Commitment Push Model data sets and checks (PS3.4 annex J).

The association both sides negotiate, the N-ACTION Action Information (Table
J.3-1: Transaction UID, Referenced SOP Sequence) and the N-EVENT-REPORT Event Information
(Table J.3-2: event type 1 when everything was committed, 2 when failures exist, listed
in Failed SOP Sequence with a Failure Reason each), built and parsed; the checks an SCP
makes of an N-ACTION and an SCU of an N-EVENT-REPORT, with the status to answer; and the
two blocking requests (N-ACTION, N-EVENT-REPORT).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydicom import Dataset

from .associate import DicomAssociate
from .dimse.status import status_description
from .enums import DicomCommandStatusType
from .net import DicomNet
from .response import Response
from .scu import build_request
from .sopclasses import STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_PUSH_INSTANCE
from .uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE, is_valid_uid

COMMITMENT_TRANSFER_SYNTAXES = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)
REQUEST_COMMITMENT = 1  # Action Type ID (J.3.2.1.1)
ALL_COMMITTED = 1  # Event Type IDs (J.3.3.1.1)
FAILURES_EXIST = 2

# Failure Reason values (PS3.4 J.3.3.1.1): the DIMSE status codes of the same meaning.
PROCESSING_FAILURE = DicomCommandStatusType.ProcessingFailure
NO_SUCH_OBJECT_INSTANCE = DicomCommandStatusType.NoSuchObjectInstance
RESOURCE_LIMITATION = DicomCommandStatusType.ResourceLimitation
REFERENCED_SOP_CLASS_NOT_SUPPORTED = DicomCommandStatusType.ClassNotSupported
CLASS_INSTANCE_CONFLICT = DicomCommandStatusType.ClassInstanceConflict
DUPLICATE_TRANSACTION_UID = DicomCommandStatusType.DuplicateTransactionUid


class InvalidCommitmentData(ValueError):
    """An Action or Event Information data set that PS3.4 annex J does not allow."""


class CommitmentRefused(Exception):
    """A request to refuse: the status to answer with, and the reason (Error Comment)."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status


@dataclass(frozen=True)
class SopReference:
    """One item of Referenced SOP Sequence: which instance, of which SOP class."""

    sop_class: str
    sop_instance: str


@dataclass(frozen=True)
class Failure:
    """One item of Failed SOP Sequence."""

    reference: SopReference
    reason: int

    def describe(self) -> str:
        return f"0x{self.reason:04X} ({status_description(self.reason)})"


@dataclass(frozen=True)
class CommitmentResult:
    """What an N-EVENT-REPORT of the Storage Commitment Push Model says."""

    transaction_uid: str
    committed: tuple[SopReference, ...]
    failed: tuple[Failure, ...]

    @property
    def event_type(self) -> int:
        return FAILURES_EXIST if self.failed else ALL_COMMITTED


def commitment_association(
    calling: str, called: str, max_pdu: int, *, as_scp: bool
) -> DicomAssociate:
    """An A-ASSOCIATE-RQ proposing Storage Commitment on context 1. ``as_scp``: the
    requestor acts as the SCP (a report on a new association, J.3.3), proposed by role
    selection with the SCU role off, so the commitment SCU accepts it as its peer's SCP
    role."""
    return build_request(
        calling,
        called,
        max_pdu,
        [(STORAGE_COMMITMENT_PUSH, COMMITMENT_TRANSFER_SYNTAXES)],
        scp_role_for=(STORAGE_COMMITMENT_PUSH,) if as_scp else (),
    )


def _reference_item(reference: SopReference) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = reference.sop_class
    item.ReferencedSOPInstanceUID = reference.sop_instance
    return item


def commitment_request(transaction_uid: str, references: Iterable[SopReference]) -> Dataset:
    """The N-ACTION Action Information of a Request Storage Commitment (Table J.3-1)."""
    information = Dataset()
    information.TransactionUID = transaction_uid
    information.ReferencedSOPSequence = [_reference_item(ref) for ref in references]
    return information


def commitment_report(result: CommitmentResult) -> Dataset:
    """The N-EVENT-REPORT Event Information (Table J.3-2). Referenced SOP Sequence is
    left out of a type 2 report when nothing was committed."""
    information = Dataset()
    information.TransactionUID = result.transaction_uid
    if result.committed or not result.failed:
        information.ReferencedSOPSequence = [_reference_item(ref) for ref in result.committed]
    if result.failed:
        failed_items = []
        for failure in result.failed:
            item = _reference_item(failure.reference)
            item.FailureReason = failure.reason
            failed_items.append(item)
        information.FailedSOPSequence = failed_items
    return information


def _transaction_uid(information: Dataset) -> str:
    value = str(information.get("TransactionUID", "") or "")
    if not is_valid_uid(value, strict=False):
        raise InvalidCommitmentData(f"Transaction UID {value!r} is missing or not a UID")
    return value


def _references(items: Sequence[Dataset], what: str) -> list[SopReference]:
    references = []
    for number, item in enumerate(items, start=1):
        sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
        sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "")
        if not (is_valid_uid(sop_class, strict=False) and is_valid_uid(sop_instance, strict=False)):
            raise InvalidCommitmentData(
                f"item {number} of {what} lacks a valid Referenced SOP Class/Instance UID"
            )
        references.append(SopReference(sop_class, sop_instance))
    return references


def parse_commitment_request(information: Dataset | None) -> tuple[str, list[SopReference]]:
    """(Transaction UID, references) of an N-ACTION; raises InvalidCommitmentData."""
    if information is None:
        raise InvalidCommitmentData("N-ACTION without Action Information")
    transaction_uid = _transaction_uid(information)
    items = information.get("ReferencedSOPSequence") or []
    if not items:
        raise InvalidCommitmentData("Referenced SOP Sequence is missing or empty")
    return transaction_uid, _references(items, "Referenced SOP Sequence")


def parse_commitment_report(event_type: int, information: Dataset | None) -> CommitmentResult:
    """The result an N-EVENT-REPORT carries; raises InvalidCommitmentData when the event
    type is not 1 or 2 or the data set contradicts it."""
    if event_type not in (ALL_COMMITTED, FAILURES_EXIST):
        raise InvalidCommitmentData(f"Event Type ID {event_type} is not 1 or 2")
    if information is None:
        raise InvalidCommitmentData("N-EVENT-REPORT without Event Information")
    transaction_uid = _transaction_uid(information)
    committed = _references(
        information.get("ReferencedSOPSequence") or [], "Referenced SOP Sequence"
    )
    failed_items = information.get("FailedSOPSequence") or []
    failed_references = _references(failed_items, "Failed SOP Sequence")
    if any(item.get("FailureReason") is None for item in failed_items):
        raise InvalidCommitmentData("an item of Failed SOP Sequence lacks its Failure Reason")
    failed = [
        Failure(reference, int(item.FailureReason))
        for reference, item in zip(failed_references, failed_items, strict=True)
    ]
    result = CommitmentResult(transaction_uid, tuple(committed), tuple(failed))
    if result.event_type != event_type:
        raise InvalidCommitmentData(
            f"Event Type ID {event_type} with {len(failed)} failed instance(s)"
        )
    return result


def check_commitment_request(
    sop_class: str, instance: str, action: int, information: Dataset | None
) -> tuple[str, list[SopReference]]:
    """What an SCP checks of an N-ACTION (J.3.2.1.2): (Transaction UID, references) of
    a valid Request Storage Commitment; raises ``CommitmentRefused`` with the status."""
    if sop_class != STORAGE_COMMITMENT_PUSH:
        raise CommitmentRefused(
            DicomCommandStatusType.NoSuchClass, f"no N-ACTION for SOP class {sop_class}"
        )
    if instance != STORAGE_COMMITMENT_PUSH_INSTANCE:
        raise CommitmentRefused(
            DicomCommandStatusType.NoSuchObjectInstance,
            "not the well-known Storage Commitment instance",
        )
    if action != REQUEST_COMMITMENT:
        raise CommitmentRefused(
            DicomCommandStatusType.NoSuchActionType, f"no Action Type ID {action}"
        )
    try:
        return parse_commitment_request(information)
    except InvalidCommitmentData as exc:
        raise CommitmentRefused(DicomCommandStatusType.InvalidArgumentValue, str(exc)) from exc


def check_commitment_report(
    sop_class: str, event_type: int, information: Dataset | None
) -> CommitmentResult:
    """What an SCU checks of an N-EVENT-REPORT (J.3.3.1.3): its result; raises
    ``CommitmentRefused`` with the status to answer."""
    if sop_class != STORAGE_COMMITMENT_PUSH:
        raise CommitmentRefused(
            DicomCommandStatusType.NoSuchClass, f"no N-EVENT-REPORT for SOP class {sop_class}"
        )
    try:
        return parse_commitment_report(event_type, information)
    except InvalidCommitmentData as exc:
        known = event_type in (ALL_COMMITTED, FAILURES_EXIST)
        status = (
            DicomCommandStatusType.InvalidArgumentValue
            if known
            else DicomCommandStatusType.NoSuchEventType
        )
        raise CommitmentRefused(status, str(exc)) from exc


def request_commitment(
    net: DicomNet,
    presentation_id: int,
    transaction_uid: str,
    references: Iterable[SopReference],
    timeout: float | None = None,
) -> Response:
    """Send the N-ACTION Request Storage Commitment and wait for its response."""
    message_id = net.next_message_id()
    net.SendNActionRequest(
        presentation_id,
        message_id,
        STORAGE_COMMITMENT_PUSH,
        STORAGE_COMMITMENT_PUSH_INSTANCE,
        REQUEST_COMMITMENT,
        commitment_request(transaction_uid, references),
    )
    return net.wait_response(message_id, timeout)


def send_commitment_report(
    net: DicomNet, presentation_id: int, result: CommitmentResult, timeout: float | None = None
) -> Response:
    """Send the N-EVENT-REPORT of ``result`` and wait for its response."""
    message_id = net.next_message_id()
    net.SendNReportRequest(
        presentation_id,
        message_id,
        STORAGE_COMMITMENT_PUSH,
        STORAGE_COMMITMENT_PUSH_INSTANCE,
        result.event_type,
        commitment_report(result),
    )
    return net.wait_response(message_id, timeout)
