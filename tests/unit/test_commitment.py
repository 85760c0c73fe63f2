"""dicomnet.commitment: the Storage Commitment data sets (PS3.4 J.3) round-trip, and what
SCP and SCU refuse, with the status each refusal answers."""

from __future__ import annotations

import pytest
from pydicom import Dataset

from dicomnet import DicomCommandStatusType, DicomRoleSupport
from dicomnet.commitment import (
    CommitmentRefused,
    CommitmentResult,
    Failure,
    InvalidCommitmentData,
    SopReference,
    check_commitment_report,
    check_commitment_request,
    commitment_association,
    commitment_report,
    commitment_request,
    parse_commitment_report,
    parse_commitment_request,
)
from dicomnet.sopclasses import STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_PUSH_INSTANCE

CT = "1.2.840.10008.5.1.4.1.1.2"
A, B = SopReference(CT, "1.2.3.1"), SopReference(CT, "1.2.3.2")


def test_a_request_round_trips() -> None:
    information = commitment_request("1.2.9", [A, B])
    assert parse_commitment_request(information) == ("1.2.9", [A, B])


@pytest.mark.parametrize(
    ("result", "event_type"),
    [
        (CommitmentResult("1.2.9", (A, B), ()), 1),
        (CommitmentResult("1.2.9", (A,), (Failure(B, 0x0112),)), 2),
        (CommitmentResult("1.2.9", (), (Failure(A, 0x0119),)), 2),
    ],
)
def test_a_report_round_trips(result: CommitmentResult, event_type: int) -> None:
    assert result.event_type == event_type
    information = commitment_report(result)
    assert ("ReferencedSOPSequence" in information) == bool(result.committed or not result.failed)
    assert parse_commitment_report(event_type, information) == result


def test_a_report_contradicting_its_event_type_is_invalid() -> None:
    information = commitment_report(CommitmentResult("1.2.9", (A,), (Failure(B, 0x0112),)))
    with pytest.raises(InvalidCommitmentData, match="Event Type ID 1 with 1 failed"):
        parse_commitment_report(1, information)


# Peers do send such values; pydicom warns about them, the checks must still decide.
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_received_uids_with_leading_zeros_are_tolerated_bad_ones_not() -> None:
    assert parse_commitment_request(commitment_request("1.02.9", [A]))[0] == "1.02.9"
    with pytest.raises(InvalidCommitmentData, match="Transaction UID"):
        parse_commitment_request(commitment_request("../x", [A]))
    with pytest.raises(InvalidCommitmentData, match="item 1 of Referenced SOP Sequence"):
        parse_commitment_request(commitment_request("1.2", [SopReference(CT, "")]))


@pytest.mark.parametrize(
    ("sop_class", "instance", "action", "information", "status"),
    [
        ("1.2.3", STORAGE_COMMITMENT_PUSH_INSTANCE, 1, None, DicomCommandStatusType.NoSuchClass),
        (STORAGE_COMMITMENT_PUSH, "1.2.3", 1, None, DicomCommandStatusType.NoSuchObjectInstance),
        (
            STORAGE_COMMITMENT_PUSH,
            STORAGE_COMMITMENT_PUSH_INSTANCE,
            2,
            None,
            DicomCommandStatusType.NoSuchActionType,
        ),
        (
            STORAGE_COMMITMENT_PUSH,
            STORAGE_COMMITMENT_PUSH_INSTANCE,
            1,
            Dataset(),
            DicomCommandStatusType.InvalidArgumentValue,
        ),
    ],
)
def test_an_scp_refuses_what_it_cannot_commit(
    sop_class: str, instance: str, action: int, information: Dataset | None, status: int
) -> None:
    with pytest.raises(CommitmentRefused) as refused:
        check_commitment_request(sop_class, instance, action, information)
    assert refused.value.status == status


def test_an_scu_refuses_unknown_event_types_and_classes() -> None:
    report = commitment_report(CommitmentResult("1.2.9", (A,), ()))
    assert check_commitment_report(STORAGE_COMMITMENT_PUSH, 1, report).committed == (A,)
    with pytest.raises(CommitmentRefused) as refused:
        check_commitment_report(STORAGE_COMMITMENT_PUSH, 3, report)
    assert refused.value.status == DicomCommandStatusType.NoSuchEventType
    with pytest.raises(CommitmentRefused) as refused:
        check_commitment_report("1.2.3", 1, report)
    assert refused.value.status == DicomCommandStatusType.NoSuchClass


def test_a_report_association_proposes_the_scp_role_only_when_asked() -> None:
    as_scu = commitment_association("ME", "YOU", 16384, as_scp=False)
    assert as_scu.GetAbstract(1) == STORAGE_COMMITMENT_PUSH and not as_scu.IsRoleSelect(1)
    as_scp = commitment_association("ME", "YOU", 16384, as_scp=True)
    assert as_scp.IsRoleSelect(1)
    assert as_scp.GetUserRole(1) == DicomRoleSupport.Unsupported
    assert as_scp.GetProviderRole(1) == DicomRoleSupport.Supported
