"""Tests for dicomnet.enums: LEADTOOLS names with their wire values, and reject reasons
that share a number but not a meaning (PS3.8 9.3.4)."""

from __future__ import annotations

import enum
import pickle

import pytest

from dicomnet import enums
from dicomnet.enums import DicomAssociateRejectReasonType as Reason
from dicomnet.enums import DicomAssociateRejectResultType as Result
from dicomnet.enums import DicomAssociateRejectSourceType as Source
from dicomnet.enums import describe_reject
from dicomnet.pdu import AssociateRJ, decode_pdu, encode_pdu

LEADTOOLS_REASONS = {
    "Unknown": 1,
    "Application": 2,
    "Calling": 3,
    "Called": 7,
    "Version": 2,
    "Congestion": 1,
    "Limit": 2,
}

WIRE_MEANINGS = [
    (Source.User, 1, Reason.Unknown, "no reason given"),
    (Source.User, 2, Reason.Application, "application context name not supported"),
    (Source.User, 3, Reason.Calling, "calling AE title not recognized"),
    (Source.User, 7, Reason.Called, "called AE title not recognized"),
    (Source.Provider1, 1, Reason.Unknown, "no reason given (ACSE)"),
    (Source.Provider1, 2, Reason.Version, "protocol version not supported"),
    (Source.Provider2, 1, Reason.Congestion, "temporary congestion"),
    (Source.Provider2, 2, Reason.Limit, "local limit exceeded"),
]


def test_every_leadtools_reject_reason_is_its_own_member_with_its_wire_value() -> None:
    assert [member.name for member in Reason] == list(LEADTOOLS_REASONS)
    for name, number in LEADTOOLS_REASONS.items():
        member = Reason[name]
        assert getattr(Reason, name) is member and member.name == name
        assert member == number and int(member) == number and member.value == number
        assert repr(member) == f"<DicomAssociateRejectReasonType.{name}: {number}>"
        assert pickle.loads(pickle.dumps(member)) is member


def test_reject_reasons_go_into_pdus_as_their_numbers() -> None:
    rj = AssociateRJ(Result.Transient, Source.Provider2, Reason.Limit)
    assert encode_pdu(rj) == encode_pdu(AssociateRJ(2, 3, 2))
    assert decode_pdu(encode_pdu(rj)) == AssociateRJ(2, 3, 2)


@pytest.mark.parametrize(("source", "reason", "member", "text"), WIRE_MEANINGS)
def test_a_received_pair_reads_as_its_member_and_text(
    source: Source, reason: int, member: Reason, text: str
) -> None:
    assert Reason.from_wire(source, reason) is member
    assert Reason.from_wire(int(source), reason) is member
    assert describe_reject(1, source, reason) == f"association rejected (permanent): {text}"


@pytest.mark.parametrize(("source", "reason"), [(1, 4), (2, 3), (3, 0), (3, 7), (9, 1)])
def test_an_undefined_pair_is_no_member(source: int, reason: int) -> None:
    with pytest.raises(ValueError, match=f"reason {reason} from source {source}"):
        Reason.from_wire(source, reason)


def test_a_number_without_its_source_reads_as_the_service_users_reason() -> None:
    assert [Reason(n) for n in (1, 2, 3, 7)] == [
        Reason.Unknown,
        Reason.Application,
        Reason.Calling,
        Reason.Called,
    ]
    assert Reason(2) is Reason.Application
    for undefined in (0, 4, 9, "2"):
        with pytest.raises(ValueError):
            Reason(undefined)


def test_describe_reject_shows_undefined_values_as_numbers() -> None:
    assert describe_reject(2, 3, 1) == "association rejected (transient): temporary congestion"
    assert describe_reject(5, 1, 9) == "association rejected (result 5): source 1, reason 9"


def test_no_enumeration_hides_a_leadtools_name_behind_another_meaning() -> None:
    aliases = {
        f"{enumeration.__name__}.{name}": member.name
        for enumeration in vars(enums).values()
        if isinstance(enumeration, type) and issubclass(enumeration, enum.Enum)
        for name, member in enumeration.__members__.items()
        if name != member.name
    }
    # The one alias left is a spelling of the same status (LEADTOOLS' and the standard's).
    assert aliases == {"DicomCommandStatusType.ClassInstanceConflict": "ClaseInstanceConflict"}
