"""Tests of DIMSE status classes and meanings (dicomnet.dimse.status).

Expected classes and texts come from the PS3.7 annex C preamble and the PS3.4 tables.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomnet.dimse.status import StatusCategory, status_category, status_description
from dicomnet.enums import DicomCommandStatusType
from dicomnet.errors import DIMSEError

SUCCESS, WARNING, FAILURE = StatusCategory.SUCCESS, StatusCategory.WARNING, StatusCategory.FAILURE
CANCEL, PENDING = StatusCategory.CANCEL, StatusCategory.PENDING


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (0x0000, SUCCESS),
        (0x0001, WARNING),
        (0x0002, FAILURE),  # not listed in annex C
        (0x00FF, FAILURE),
        (0x0100, FAILURE),
        (0x0106, FAILURE),
        (0x0107, WARNING),
        (0x0108, FAILURE),
        (0x0115, FAILURE),
        (0x0116, WARNING),
        (0x0117, FAILURE),
        (0x01FF, FAILURE),
        (0x0200, FAILURE),
        (0x02FF, FAILURE),
        (0x0300, FAILURE),
        (0x9FFF, FAILURE),
        (0xA000, FAILURE),
        (0xA7FF, FAILURE),
        (0xAFFF, FAILURE),
        (0xB000, WARNING),
        (0xB007, WARNING),
        (0xBFFF, WARNING),
        (0xC000, FAILURE),
        (0xCFFF, FAILURE),
        (0xD000, FAILURE),
        (0xFDFF, FAILURE),
        (0xFE00, CANCEL),
        (0xFE01, FAILURE),
        (0xFEFF, FAILURE),
        (0xFF00, PENDING),
        (0xFF01, PENDING),
        (0xFF02, FAILURE),
        (0xFFFF, FAILURE),
    ],
)
def test_category_at_every_class_boundary(code: int, category: StatusCategory) -> None:
    assert status_category(code) is category


@given(st.integers(0, 0xFFFF))
def test_only_0000_is_success_and_ranges_hold(code: int) -> None:
    category = status_category(code)
    assert (category is SUCCESS) == (code == 0)
    if code >> 12 == 0xB:
        assert category is WARNING
    if code >> 12 in (0xA, 0xC):
        assert category is FAILURE


@pytest.mark.parametrize("code", [-1, 0x10000])
def test_codes_outside_16_bits_are_rejected(code: int) -> None:
    with pytest.raises(DIMSEError):
        status_category(code)
    with pytest.raises(DIMSEError):
        status_description(code)


def test_leadtools_status_enum_classes() -> None:
    assert status_category(DicomCommandStatusType.Success) is SUCCESS
    assert status_category(DicomCommandStatusType.AttributeListError) is WARNING
    assert status_category(DicomCommandStatusType.Warning) is WARNING
    assert status_category(DicomCommandStatusType.Cancel) is CANCEL
    assert status_category(DicomCommandStatusType.PendingWarning) is PENDING
    assert status_category(DicomCommandStatusType.ProcessingFailure) is FAILURE
    assert status_category(DicomCommandStatusType.RefusedMoveDestinationUnknown) is FAILURE


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x0000, "Success"),
        (0xFE00, "Cancel"),
        (0x0107, "Attribute list error"),
        (0x0116, "Attribute Value out of range"),
        (0x0122, "Refused: SOP Class not supported"),
        (0x0119, "Class-Instance conflict"),
        (0x0111, "Duplicate SOP Instance"),
        (0x0210, "Duplicate invocation"),
        (0x0115, "Invalid argument value"),
        (0x0106, "Invalid Attribute Value"),
        (0x0117, "Invalid SOP Instance"),
        (0x0120, "Missing Attribute"),
        (0x0121, "Missing Attribute Value"),
        (0x0212, "Mistyped argument"),
        (0x0114, "No such argument"),
        (0x0105, "No such Attribute"),
        (0x0113, "No such Event Type"),
        (0x0112, "No such SOP Instance"),
        (0x0118, "No such SOP Class"),
        (0x0110, "Processing failure"),
        (0x0213, "Resource limitation"),
        (0x0211, "Unrecognized operation"),
        (0x0123, "No such Action Type"),
        (0x0124, "Refused: Not authorized"),
        (0x0131, "Duplicate transaction UID"),
    ],
)
def test_general_codes(code: int, text: str) -> None:
    assert status_description(code).lower() == text.lower()
    # A general code means the same whatever the message.
    assert status_description(code, 0x8130).lower() == text.lower()


@pytest.mark.parametrize(
    ("code", "command_field", "text"),
    [
        (0xA700, 0x8001, "Refused: Out of resources"),
        (0xA7FF, 0x8001, "Refused: Out of resources"),
        (0xA900, 0x8001, "Error: Data Set does not match SOP Class"),
        (0xA9A9, 0x8001, "Error: Data Set does not match SOP Class"),
        (0xC000, 0x8001, "Error: Cannot understand"),
        (0xCFFF, 0x8001, "Error: Cannot understand"),
        (0xB000, 0x8001, "Coercion of Data Elements"),
        (0xB007, 0x8001, "Data Set does not match SOP Class"),
        (0xB006, 0x8001, "Elements Discarded"),
        (0xA700, 0x8020, "Refused: Out of resources"),
        (0xA900, 0x8020, "Error: Data Set does not match SOP Class"),
        (0xC123, 0x8020, "Failed: Unable to process"),
        (0xFE00, 0x8020, "Matching terminated due to Cancel request"),
        (0xFF01, 0x8020, "one or more Optional Keys were not supported"),
        (0xA701, 0x8021, "unable to calculate number of matches"),
        (0xA702, 0x8010, "unable to perform sub-operations"),
        (0xA801, 0x8021, "Refused: Move Destination unknown"),
        (0xB000, 0x8021, "Sub-operations complete, one or more failures"),
        (0xB000, 0x8010, "one or more failures or warnings"),
        (0xFF00, 0x8021, "Sub-operations are continuing"),
        (0xFE00, 0x8010, "terminated due to Cancel indication"),
        (0xC310, 0x8130, "The UPS is not yet in the IN PROGRESS state"),
        (0xB304, 0x8120, "already in the requested state of CANCELED"),
        (0xA700, 0x0001, "Refused: Out of resources"),  # the request's field works too
    ],
)
def test_service_codes(code: int, command_field: int, text: str) -> None:
    assert text in status_description(code, command_field)


def test_service_code_without_context_lists_every_meaning() -> None:
    text = status_description(0xB000)
    assert "C-STORE: Coercion of Data Elements" in text
    assert "C-MOVE: Sub-operations complete, one or more failures" in text
    assert "C-GET" in text
    assert status_description(0xA801) == "C-MOVE: Refused: Move Destination unknown"


@pytest.mark.parametrize(
    ("code", "command_field", "category"),
    [(0x0300, None, "Failure"), (0xB123, 0x8030, "Warning"), (0xA801, 0x8001, "Failure")],
)
def test_unknown_codes_give_their_class(
    code: int, command_field: int | None, category: str
) -> None:
    assert status_description(code, command_field) == f"{category}: unknown status code"


@given(st.integers(0, 0xFFFF), st.sampled_from([None, 0x8001, 0x8020, 0x8021, 0x8010, 0x8130]))
def test_every_code_has_a_description(code: int, command_field: int | None) -> None:
    assert status_description(code, command_field)
