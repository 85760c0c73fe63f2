"""dicomnet.mpps: the SCP rules of PS3.4 F.7.2 (N-CREATE, N-SET, N-GET) on MppsStore, and
the attribute lists an SCU creates and completes a step with."""

from __future__ import annotations

import datetime

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword

from dicomnet import DicomCommandStatusType
from dicomnet.mpps import (
    COMPLETED,
    IN_PROGRESS,
    NOT_UPDATABLE_ERROR_ID,
    MppsStore,
    completion_attributes,
    creation_attributes,
)

Status = DicomCommandStatusType
START = datetime.datetime(2024, 1, 5, 10, 15, 30)


def created() -> Dataset:
    return creation_attributes(
        patient_name="DOE^JOHN",
        patient_id="P1",
        step_id="PPS1",
        station_ae_title="MODALITY",
        modality="CT",
        start=START,
    )


def test_a_step_is_created_set_completed_and_read_back() -> None:
    store = MppsStore()
    outcome = store.create("", created())
    assert outcome.status == Status.Success and outcome.instance  # the SCP assigned a UID
    uid = outcome.instance
    assert store.instances[uid].PerformedProcedureStepStartTime == "101530"
    assert store.set(uid, completion_attributes(START)).status == Status.Success
    tags = [tag_for_keyword("PerformedProcedureStepStatus") or 0]
    got = store.get(uid, tags)
    assert got.status == Status.Success and got.data_set is not None
    assert got.data_set.PerformedProcedureStepStatus == COMPLETED


def test_creation_refusals() -> None:
    store = MppsStore()
    assert store.create("1.2.3", created()).status == Status.Success
    assert store.create("1.2.3", created()).status == Status.DuplicateInstance
    assert store.create("x/../1", created()).status == Status.InvalidObjectInstance
    missing = created()
    del missing.Modality
    refused = store.create("1.2.4", missing)
    assert refused.status == Status.MissingAttribute
    assert refused.extra["AttributeIdentifierList"] == [tag_for_keyword("Modality")]
    empty = created()
    empty.Modality = ""
    assert store.create("1.2.5", empty).status == Status.MissingAttributeValue
    wrong = created()
    wrong.PerformedProcedureStepStatus = COMPLETED
    assert store.create("1.2.6", wrong).status == Status.InvalidAttributeValue


def test_a_finished_step_may_no_longer_be_updated() -> None:
    store = MppsStore()
    store.create("1.2.3", created())
    store.set("1.2.3", completion_attributes(START))
    again = Dataset()
    again.PerformedProcedureStepStatus = IN_PROGRESS
    refused = store.set("1.2.3", again)
    assert refused.status == Status.ProcessingFailure
    assert refused.extra["ErrorID"] == NOT_UPDATABLE_ERROR_ID
    assert store.set("9.9", again).status == Status.NoSuchObjectInstance


def test_n_get_lists_the_attributes_it_lacks() -> None:
    store = MppsStore()
    store.create("1.2.3", created())
    absent = tag_for_keyword("PerformingPhysicianName") or 0
    got = store.get("1.2.3", [tag_for_keyword("PatientID") or 0, absent])
    assert got.status == Status.AttributeListError
    assert got.extra["AttributeIdentifierList"] == [absent]
    assert got.data_set is not None and got.data_set.PatientID == "P1"
