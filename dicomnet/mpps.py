"""Modality Performed Procedure Step (PS3.4 annex F.7) building blocks.

The SOP class and its transfer syntaxes, the values of Performed Procedure Step Status
(0040,0252, PS3.3 C.4.14), the attribute lists an SCU sends to create and to complete a
step (Table F.7.2-1), and ``MppsStore``: the SCP's N-CREATE, N-SET and N-GET rules of
F.7.2 over instances kept by SOP Instance UID, each answered as an ``Outcome`` (the
status, instance and data set of the response, plus its optional status elements).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from .enums import DicomCommandStatusType
from .sopclasses import MODALITY_PERFORMED_PROCEDURE_STEP as MPPS_SOP_CLASS
from .uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE, is_valid_uid

MPPS_TRANSFER_SYNTAXES = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)

IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
STEP_STATUSES = frozenset({IN_PROGRESS, COMPLETED, DISCONTINUED})

# Type 1 attributes of the N-CREATE attribute list (PS3.4 Table F.7.2-1) checked here.
REQUIRED_ON_CREATE = (
    "PerformedProcedureStepID",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepStatus",
    "Modality",
)
NOT_UPDATABLE_ERROR_ID = 0xA710  # PS3.4 F.7.2.2.4
NOT_UPDATABLE_COMMENT = "Performed Procedure Step Object may no longer be updated"

Status = DicomCommandStatusType

__all__ = [
    "COMPLETED",
    "DISCONTINUED",
    "IN_PROGRESS",
    "MPPS_SOP_CLASS",
    "MPPS_TRANSFER_SYNTAXES",
    "NOT_UPDATABLE_COMMENT",
    "NOT_UPDATABLE_ERROR_ID",
    "REQUIRED_ON_CREATE",
    "STEP_STATUSES",
    "MppsStore",
    "Outcome",
    "completion_attributes",
    "creation_attributes",
]


def creation_attributes(
    *,
    patient_name: str,
    patient_id: str,
    step_id: str,
    station_ae_title: str,
    modality: str,
    start: datetime.datetime,
) -> Dataset:
    """An N-CREATE attribute list: the Type 1 and 2 attributes of PS3.4 Table F.7.2-1,
    status IN PROGRESS, one scheduled step with a new Study Instance UID."""
    scheduled = Dataset()
    scheduled.StudyInstanceUID = generate_uid()
    scheduled.AccessionNumber = ""
    scheduled.ScheduledProcedureStepID = ""
    scheduled.ScheduledProcedureStepDescription = ""
    scheduled.RequestedProcedureID = ""
    scheduled.RequestedProcedureDescription = ""
    scheduled.ReferencedStudySequence = []
    scheduled.ScheduledProtocolCodeSequence = []
    attributes = Dataset()
    attributes.SpecificCharacterSet = "ISO_IR 100"
    attributes.ScheduledStepAttributesSequence = [scheduled]
    attributes.PatientName = patient_name
    attributes.PatientID = patient_id
    attributes.PatientBirthDate = ""
    attributes.PatientSex = ""
    attributes.ReferencedPatientSequence = []
    attributes.PerformedProcedureStepID = step_id
    attributes.PerformedStationAETitle = station_ae_title
    attributes.PerformedStationName = ""
    attributes.PerformedLocation = ""
    attributes.PerformedProcedureStepStartDate = start.strftime("%Y%m%d")
    attributes.PerformedProcedureStepStartTime = start.strftime("%H%M%S")
    attributes.PerformedProcedureStepStatus = IN_PROGRESS
    attributes.PerformedProcedureStepDescription = ""
    attributes.PerformedProcedureTypeDescription = ""
    attributes.ProcedureCodeSequence = []
    attributes.PerformedProcedureStepEndDate = ""
    attributes.PerformedProcedureStepEndTime = ""
    attributes.Modality = modality
    attributes.StudyID = ""
    attributes.PerformedProtocolCodeSequence = []
    attributes.PerformedSeriesSequence = []
    return attributes


def completion_attributes(end: datetime.datetime, status: str = COMPLETED) -> Dataset:
    """The N-SET modification list that ends a step: its final status (COMPLETED or
    DISCONTINUED) with the end date and time."""
    modifications = Dataset()
    modifications.PerformedProcedureStepStatus = status
    modifications.PerformedProcedureStepEndDate = end.strftime("%Y%m%d")
    modifications.PerformedProcedureStepEndTime = end.strftime("%H%M%S")
    return modifications


@dataclass
class Outcome:
    """What to answer: status, the instance UID, an optional data set and the optional
    status elements (ErrorComment, ErrorID, AttributeIdentifierList) as keyword args."""

    status: int
    instance: str
    data_set: Dataset | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _names(tags: Iterable[int]) -> str:
    return ", ".join(keyword_for_tag(tag) or f"{Tag(tag)}" for tag in tags)


class MppsStore:
    """MPPS instances by SOP Instance UID and the N-CREATE/N-SET/N-GET rules of F.7.2.

    Not locked: use it from one thread, for instance from the callbacks, which all run
    on the one dicomnet loop thread (it does no I/O).
    """

    def __init__(self) -> None:
        self.instances: dict[str, Dataset] = {}

    def create(self, instance: str, attributes: Dataset | None) -> Outcome:
        """N-CREATE (F.7.2.1): keep ``attributes`` under ``instance`` (assigned when
        empty); refused for a bad or duplicate UID, a missing or empty Type 1 attribute,
        or a status other than IN PROGRESS."""
        if instance and not is_valid_uid(instance, strict=False):
            return Outcome(
                Status.InvalidObjectInstance,
                instance,
                extra={"ErrorComment": "the SOP Instance UID is not a valid UID"},
            )
        if instance in self.instances:
            return Outcome(
                Status.DuplicateInstance,
                instance,
                extra={"ErrorComment": "an MPPS with this SOP Instance UID exists"},
            )
        attributes = attributes if attributes is not None else Dataset()
        refusal = _check_create(attributes)
        if refusal is not None:
            refusal.instance = instance  # empty when the SCU left the UID to us
            return refusal
        instance = instance or generate_uid()
        self.instances[instance] = copy.deepcopy(attributes)
        return Outcome(Status.Success, instance)

    def set(self, instance: str, modifications: Dataset | None) -> Outcome:
        """N-SET (F.7.2.2): merge ``modifications`` into an instance still IN PROGRESS."""
        stored = self.instances.get(instance)
        if stored is None:
            return Outcome(Status.NoSuchObjectInstance, instance)
        if stored.get("PerformedProcedureStepStatus") != IN_PROGRESS:
            return Outcome(
                Status.ProcessingFailure,
                instance,
                extra={"ErrorComment": NOT_UPDATABLE_COMMENT, "ErrorID": NOT_UPDATABLE_ERROR_ID},
            )
        if modifications is None or len(modifications) == 0:
            return Outcome(
                Status.ProcessingFailure,
                instance,
                extra={"ErrorComment": "N-SET without a modification list"},
            )
        new_status = modifications.get("PerformedProcedureStepStatus", IN_PROGRESS)
        if new_status not in STEP_STATUSES:
            return _invalid_status(instance, modifications)
        for element in modifications:
            stored[element.tag] = copy.deepcopy(element)
        return Outcome(Status.Success, instance)

    def get(self, instance: str, tags: Sequence[int]) -> Outcome:
        """N-GET: the attributes ``tags`` (all for none); 0107 lists those missing."""
        stored = self.instances.get(instance)
        if stored is None:
            return Outcome(Status.NoSuchObjectInstance, instance)
        if not tags:
            return Outcome(Status.Success, instance, copy.deepcopy(stored))
        answer = Dataset()
        missing = []
        for tag in tags:
            if tag in stored:
                answer[tag] = copy.deepcopy(stored[tag])
            else:
                missing.append(tag)
        if missing:
            return Outcome(
                Status.AttributeListError, instance, answer, {"AttributeIdentifierList": missing}
            )
        return Outcome(Status.Success, instance, answer)


def _check_create(attributes: Dataset) -> Outcome | None:
    """The refusal of an N-CREATE attribute list, or None when it is acceptable."""
    required = [tag_for_keyword(keyword) or 0 for keyword in REQUIRED_ON_CREATE]
    absent = [tag for tag in required if tag not in attributes]
    if absent:
        return Outcome(
            Status.MissingAttribute,
            "",
            extra={"AttributeIdentifierList": absent, "ErrorComment": f"missing {_names(absent)}"},
        )
    empty = [tag for tag in required if attributes[tag].value in (None, "", [])]
    if empty:
        return Outcome(
            Status.MissingAttributeValue,
            "",
            extra={"ErrorComment": f"no value for {_names(empty)}"},
        )
    if attributes.PerformedProcedureStepStatus != IN_PROGRESS:
        return _invalid_status("", attributes)
    return None


def _invalid_status(instance: str, attributes: Dataset) -> Outcome:
    """0106, with the offending value as the attribute list (its related field in PS3.7
    annex C)."""
    offending = Dataset()
    offending.PerformedProcedureStepStatus = attributes.PerformedProcedureStepStatus
    return Outcome(
        Status.InvalidAttributeValue,
        instance,
        offending,
        {
            "ErrorComment": f"Performed Procedure Step Status "
            f"{offending.PerformedProcedureStepStatus!r} is not allowed here"
        },
    )
