"""Tests of the DIMSE command set codec, required fields and dumps (dicomnet.dimse.commands).

Oracles: the command sets DCMTK sent in the recorded fixtures, pydicom's data dictionary
and pydicom's own implicit VR little endian writer, and PS3.7's message tables
(transcribed below from the standard, independently of the implementation).
"""

from __future__ import annotations

import contextlib
import logging
import string
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dicomnet.dimse.commands import (
    COMMAND_DICTIONARY,
    DATA_SET_PRESENT,
    NO_DATA_SET,
    RESPONSE_BIT,
    command_to_dataset,
    dataset_to_command,
    decode_command_set,
    describe_command,
    encode_command_set,
    message_name,
)
from dicomnet.dimse.messages import check_required
from dicomnet.errors import DIMSEError
from dicomnet.pdu import split_pdvs
from dicomnet.uids import VERIFICATION

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pdus"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
CT_INSTANCE = "1.2.826.0.1.3680043.8.498.51290118959990362442240691139104342118"


def recorded_command_sets(name: str) -> list[tuple[str, bytes]]:
    """(direction, command set bytes) of every command PDV in a fixture, in order."""
    commands = []
    for line in (FIXTURES / name).read_text().splitlines():
        direction, hex_pdu = line.split()
        pdu = bytes.fromhex(hex_pdu)
        if pdu[0] == 0x04:
            for _, control, fragment in split_pdvs(memoryview(pdu)[6:]):
                if control & 0x01:
                    commands.append((direction, bytes(fragment)))
    return commands


def pydicom_implicit_le(dataset: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = True
    write_dataset(buffer, dataset)
    return buffer.getvalue()


# -- PS3.7 9.3 / 10.3 message tables: command field -> (M and P elements, U/C elements) --
# CommandField and CommandDataSetType (P in every message) are added by `mandatory`.

_RSP = ["MessageIDBeingRespondedTo", "Status"]
_STATUS_EXTRAS = ["OffendingElement", "ErrorComment", "ErrorID"]
_COUNTERS = [
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
]
MESSAGE_TABLES: dict[int, tuple[list[str], list[str]]] = {
    0x0001: (
        ["AffectedSOPClassUID", "MessageID", "Priority", "AffectedSOPInstanceUID"],
        ["MoveOriginatorApplicationEntityTitle", "MoveOriginatorMessageID"],
    ),
    0x8001: (_RSP, ["AffectedSOPClassUID", "AffectedSOPInstanceUID", *_STATUS_EXTRAS]),
    0x0020: (["AffectedSOPClassUID", "MessageID", "Priority"], []),
    0x8020: (_RSP, ["AffectedSOPClassUID", *_STATUS_EXTRAS]),
    0x0010: (["AffectedSOPClassUID", "MessageID", "Priority"], []),
    0x8010: (_RSP, ["AffectedSOPClassUID", *_COUNTERS, *_STATUS_EXTRAS]),
    0x0021: (["AffectedSOPClassUID", "MessageID", "Priority", "MoveDestination"], []),
    0x8021: (_RSP, ["AffectedSOPClassUID", *_COUNTERS, *_STATUS_EXTRAS]),
    0x0FFF: (["MessageIDBeingRespondedTo"], []),
    0x0030: (["AffectedSOPClassUID", "MessageID"], []),
    0x8030: (_RSP, ["AffectedSOPClassUID"]),
    0x0100: (["AffectedSOPClassUID", "MessageID", "AffectedSOPInstanceUID", "EventTypeID"], []),
    0x8100: (_RSP, ["AffectedSOPClassUID", "AffectedSOPInstanceUID", "EventTypeID"]),
    0x0110: (
        ["RequestedSOPClassUID", "MessageID", "RequestedSOPInstanceUID"],
        ["AttributeIdentifierList"],
    ),
    0x8110: (_RSP, ["AffectedSOPClassUID", "AffectedSOPInstanceUID", *_STATUS_EXTRAS]),
    0x0120: (["RequestedSOPClassUID", "MessageID", "RequestedSOPInstanceUID"], []),
    0x8120: (_RSP, ["AffectedSOPClassUID", "AffectedSOPInstanceUID", *_STATUS_EXTRAS]),
    0x0130: (
        ["RequestedSOPClassUID", "MessageID", "RequestedSOPInstanceUID", "ActionTypeID"],
        [],
    ),
    0x8130: (_RSP, ["AffectedSOPClassUID", "AffectedSOPInstanceUID", "ActionTypeID"]),
    0x0140: (["AffectedSOPClassUID", "MessageID"], ["AffectedSOPInstanceUID"]),
    0x8140: (_RSP, ["AffectedSOPClassUID", "AffectedSOPInstanceUID"]),
    0x0150: (["RequestedSOPClassUID", "MessageID", "RequestedSOPInstanceUID"], []),
    0x8150: (_RSP, ["AffectedSOPClassUID", "AffectedSOPInstanceUID"]),
}


def mandatory(command_field: int) -> list[str]:
    return ["CommandField", "CommandDataSetType", *MESSAGE_TABLES[command_field][0]]


# -- strategies -----------------------------------------------------------------------

uids = st.from_regex(r"[1-9][0-9]{0,8}(\.(0|[1-9][0-9]{0,8})){1,6}", fullmatch=True)
_TEXT = string.ascii_letters + string.digits + " _-.^"
texts = st.text(_TEXT, min_size=1, max_size=16).filter(lambda s: s == s.strip() and s != "")
us_values = st.integers(0, 0xFFFF)
tag_lists = st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=6)

VALUE_STRATEGIES: dict[str, st.SearchStrategy[object]] = {
    "AffectedSOPClassUID": uids,
    "RequestedSOPClassUID": uids,
    "AffectedSOPInstanceUID": uids,
    "RequestedSOPInstanceUID": uids,
    "MoveDestination": texts,
    "MoveOriginatorApplicationEntityTitle": texts,
    "ErrorComment": texts,
    "Priority": st.sampled_from([0, 1, 2]),
    "OffendingElement": tag_lists,
    "AttributeIdentifierList": tag_lists,
}


def field_values(keyword: str) -> st.SearchStrategy[object]:
    return VALUE_STRATEGIES.get(keyword, us_values)


@st.composite
def commands(draw: st.DrawFn) -> dict[str, object]:
    command_field = draw(st.sampled_from(sorted(MESSAGE_TABLES)))
    required, optional = MESSAGE_TABLES[command_field]
    fields: dict[str, object] = {
        "CommandField": command_field,
        "CommandDataSetType": draw(st.sampled_from([NO_DATA_SET, DATA_SET_PRESENT, 0x0102])),
    }
    for keyword in required:
        fields[keyword] = draw(field_values(keyword))
    for keyword in optional:
        if draw(st.booleans()):
            fields[keyword] = draw(field_values(keyword))
    return fields


# -- the dictionary -----------------------------------------------------------------


def test_dictionary_matches_pydicoms_group_0000() -> None:
    pydicom_group_0000 = {
        tag: (entry[4], entry[0]) for tag, entry in DicomDictionary.items() if tag >> 16 == 0
    }
    assert pydicom_group_0000 == COMMAND_DICTIONARY


def test_constants() -> None:
    assert (NO_DATA_SET, DATA_SET_PRESENT, RESPONSE_BIT) == (0x0101, 0x0001, 0x8000)


# -- golden vectors -------------------------------------------------------------------


def test_decode_dcmtk_echo() -> None:
    (_, request), (_, response) = recorded_command_sets("dcmtk-echoscu_dcmtk-storescp.pdus")
    assert decode_command_set(request) == {
        "AffectedSOPClassUID": VERIFICATION,
        "CommandField": 0x0030,
        "MessageID": 1,
        "CommandDataSetType": NO_DATA_SET,
    }
    assert decode_command_set(response) == {
        "AffectedSOPClassUID": VERIFICATION,
        "CommandField": 0x8030,
        "MessageIDBeingRespondedTo": 1,
        "CommandDataSetType": NO_DATA_SET,
        "Status": 0x0000,
    }


def test_decode_dcmtk_store() -> None:
    (_, request), (_, response) = recorded_command_sets("dcmtk-storescu_dcmtk-storescp.pdus")
    assert decode_command_set(request) == {
        "AffectedSOPClassUID": CT_IMAGE_STORAGE,
        "CommandField": 0x0001,
        "MessageID": 1,
        "Priority": 0,
        "CommandDataSetType": DATA_SET_PRESENT,
        "AffectedSOPInstanceUID": CT_INSTANCE,
    }
    assert decode_command_set(response) == {
        "AffectedSOPClassUID": CT_IMAGE_STORAGE,
        "CommandField": 0x8001,
        "MessageIDBeingRespondedTo": 1,
        "CommandDataSetType": NO_DATA_SET,
        "Status": 0x0000,
        "AffectedSOPInstanceUID": CT_INSTANCE,
    }


@pytest.mark.parametrize(
    "fixture", ["dcmtk-echoscu_dcmtk-storescp.pdus", "dcmtk-storescu_dcmtk-storescp.pdus"]
)
def test_dcmtk_command_sets_reencode_byte_exactly(fixture: str) -> None:
    for _, recorded in recorded_command_sets(fixture):
        assert encode_command_set(decode_command_set(recorded)) == recorded


def test_recorded_command_sets_pass_check_required() -> None:
    for fixture in ("dcmtk-echoscu_dcmtk-storescp.pdus", "dcmtk-storescu_dcmtk-storescp.pdus"):
        for _, recorded in recorded_command_sets(fixture):
            check_required(decode_command_set(recorded))


# -- encoding -------------------------------------------------------------------------


@settings(max_examples=300)
@given(commands())
def test_round_trip_every_message_type(fields: dict[str, object]) -> None:
    encoded = encode_command_set(fields)
    assert decode_command_set(encoded) == fields
    assert decode_command_set(memoryview(encoded)) == fields


@settings(max_examples=300)
@given(commands())
def test_encoding_matches_pydicom(fields: dict[str, object]) -> None:
    encoded = encode_command_set(fields)
    body = pydicom_implicit_le(_dataset_of(fields))
    assert encoded[12:] == body
    assert encoded[:12] == struct.pack("<HHLL", 0, 0, 4, len(body))


def _dataset_of(fields: dict[str, object]) -> Dataset:
    """The same elements built with pydicom alone (VRs from pydicom's dictionary)."""
    dataset = Dataset()
    for keyword, value in fields.items():
        setattr(dataset, keyword, value)
    return dataset


def test_elements_are_sent_in_ascending_tag_order_with_padding() -> None:
    encoded = encode_command_set(
        {"Status": 0, "MoveDestination": "ABC", "AffectedSOPClassUID": "1.2.3"}
    )
    assert encoded == (
        struct.pack("<HHLL", 0, 0, 4, 36)
        + struct.pack("<HHL", 0, 0x0002, 6)
        + b"1.2.3\x00"
        + struct.pack("<HHL", 0, 0x0600, 4)
        + b"ABC "
        + struct.pack("<HHLH", 0, 0x0900, 2, 0)
    )


def test_at_values_are_group_then_element() -> None:
    encoded = encode_command_set({"OffendingElement": [0x00100020, 0x7FE00010]})
    assert encoded[12:] == struct.pack("<HHL4H", 0, 0x0901, 8, 0x0010, 0x0020, 0x7FE0, 0x0010)


def test_none_values_are_omitted_and_group_length_is_computed() -> None:
    given_fields = {"CommandGroupLength": 999, "MessageID": 7, "Priority": None}
    assert encode_command_set(given_fields) == encode_command_set({"MessageID": 7})
    assert encode_command_set({"MessageID": 7})[8:12] == struct.pack("<L", 10)


@pytest.mark.parametrize(
    "fields",
    [
        {"NoSuchKeyword": 1},
        {"PatientName": "X"},
        {"MessageID": "1"},
        {"MessageID": 0x10000},
        {"MessageID": -1},
        {"MessageID": [1, 2]},
        {"AffectedSOPClassUID": 1},
        {"ErrorComment": "caf\u00e9"},
        {"OffendingElement": [0x1_0000_0000]},
        {"OffendingElement": ["(0010,0010)"]},
        {"(0000,0110)": b"\x01\x00"},
        {"(0000,0999)": b"odd"},
        {"(0000,0999)": 3},
        {"(0000,099)": b"ab"},
    ],
)
def test_encode_rejects_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(DIMSEError):
        encode_command_set(fields)


def test_unknown_elements_survive_a_round_trip() -> None:
    encoded = encode_command_set({"MessageID": 3}) + struct.pack("<HHL", 0, 0x0999, 2) + b"ab"
    decoded = decode_command_set(encoded)
    assert decoded == {"MessageID": 3, "(0000,0999)": b"ab"}
    assert decode_command_set(encode_command_set(decoded)) == decoded


# -- tolerant decoding ------------------------------------------------------------------


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHL", 0, element, len(value)) + value


def test_elements_in_any_order_and_without_group_length() -> None:
    data = _element(0x0900, b"\x00\xff") + _element(0x0100, b"\x30\x80")
    assert decode_command_set(data) == {"Status": 0xFF00, "CommandField": 0x8030}


def test_wrong_group_length_is_tolerated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    data = _element(0x0000, struct.pack("<L", 1234)) + _element(0x0110, b"\x05\x00")
    with caplog.at_level(logging.DEBUG, logger="dicomnet"):
        assert decode_command_set(data) == {"MessageID": 5}
    assert "1234" in caplog.text


def test_strings_lose_their_padding() -> None:
    data = _element(0x0002, b"1.2\x00\x00\x00") + _element(0x0600, b" AE ")
    data += _element(0x0902, b"oops \x00")
    assert decode_command_set(data) == {
        "AffectedSOPClassUID": "1.2",
        "MoveDestination": "AE",
        "ErrorComment": "oops",
    }


def test_empty_values() -> None:
    data = _element(0x0110, b"") + _element(0x0901, b"") + _element(0x0902, b"")
    assert decode_command_set(data) == {
        "MessageID": None,
        "OffendingElement": [],
        "ErrorComment": "",
    }


# -- strict structure -------------------------------------------------------------------


def _element_boundaries(data: bytes) -> set[int]:
    boundaries, offset = {0}, 0
    while offset < len(data):
        (length,) = struct.unpack_from("<L", data, offset + 4)
        offset += 8 + length
        boundaries.add(offset)
    return boundaries


@pytest.mark.parametrize(
    "fixture", ["dcmtk-echoscu_dcmtk-storescp.pdus", "dcmtk-storescu_dcmtk-storescp.pdus"]
)
def test_truncation_at_every_cut_point(fixture: str) -> None:
    for _, recorded in recorded_command_sets(fixture):
        complete = decode_command_set(recorded)
        boundaries = _element_boundaries(recorded)
        for cut in range(len(recorded)):
            if cut in boundaries and cut > 0:
                # A shorter but well-formed command set: its elements are a prefix.
                partial = decode_command_set(recorded[:cut])
                assert partial == {key: complete[key] for key in list(partial)}
            else:
                with pytest.raises(DIMSEError):
                    decode_command_set(recorded[:cut])


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_element(0x0110, b"\x01\x00")[:-2] + b"", id="value past the end"),
        pytest.param(struct.pack("<HHL", 0, 0x0110, 0xFFFFFFFF) + b"\x01\x00", id="undefined"),
        pytest.param(struct.pack("<HHL", 0, 0x0902, 3) + b"abc", id="odd length"),
        pytest.param(_element(0x0110, b"\x01\x00") + b"\x00\x00", id="trailing bytes"),
        pytest.param(_element(0x0000, b"\x01\x00"), id="2-byte group length"),
        pytest.param(struct.pack("<HHL", 8, 0x0018, 2) + b"12", id="group 0008"),
        pytest.param(_element(0x0110, b"\x01\x00\x02\x00"), id="US with two values"),
        pytest.param(_element(0x0000, b"\x01\x00\x00"), id="UL with 3 bytes"),
        pytest.param(_element(0x0901, b"\x10\x00"), id="AT with 2 bytes"),
        pytest.param(_element(0x0110, b"\x01\x00") * 2, id="duplicate element"),
        pytest.param(b"", id="empty"),
    ],
)
def test_malformed_command_sets(data: bytes) -> None:
    with pytest.raises(DIMSEError):
        decode_command_set(data)


def test_lying_length_in_recorded_command_set() -> None:
    (_, recorded), _ = recorded_command_sets("dcmtk-echoscu_dcmtk-storescp.pdus")
    lying = bytearray(recorded)
    struct.pack_into("<L", lying, 12 + 4, 0x1000)  # Affected SOP Class UID length
    with pytest.raises(DIMSEError, match="past the end"):
        decode_command_set(bytes(lying))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_dimse_error(data: bytes) -> None:
    with contextlib.suppress(DIMSEError):
        decode_command_set(data)


@settings(max_examples=500)
@given(st.data())
def test_mutated_recorded_command_sets_decode_or_raise_dimse_error(data: st.DataObject) -> None:
    recorded = bytearray(
        data.draw(st.sampled_from(recorded_command_sets("dcmtk-storescu_dcmtk-storescp.pdus")))[1]
    )
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(recorded) - 1))
        recorded[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del recorded[data.draw(st.integers(0, len(recorded) - 1)) :]
    try:
        decoded = decode_command_set(bytes(recorded))
    except DIMSEError:
        return
    # Whatever decodes re-encodes (unknown elements included), unless a mutated byte made a
    # string non-ASCII: decoding tolerates that, sending does not.
    try:
        assert decode_command_set(encode_command_set(decoded)) == decoded
    except DIMSEError:
        assert any(isinstance(value, str) and not value.isascii() for value in decoded.values())
    with contextlib.suppress(DIMSEError):
        check_required(decoded)


# -- data set view ----------------------------------------------------------------------


@settings(max_examples=200)
@given(commands())
def test_command_dataset_round_trip(fields: dict[str, object]) -> None:
    dataset = command_to_dataset(fields)
    assert dataset_to_command(dataset) == fields
    # Written by pydicom, the data set is exactly the command set we would send.
    assert pydicom_implicit_le(dataset) == encode_command_set(fields)


def test_command_dataset_has_the_e1_vrs_and_group_length() -> None:
    fields = {"CommandField": 0x8001, "OffendingElement": [0x00100010], "ErrorComment": "x"}
    dataset = command_to_dataset(fields)
    assert dataset[0x00000000].VR == "UL"
    assert dataset.CommandGroupLength == len(encode_command_set(fields)) - 12
    assert dataset[0x00000901].VR == "AT"
    assert dataset[0x00000902].VR == "LO"


def test_dataset_to_command_accepts_pydicom_values() -> None:
    dataset = Dataset()
    dataset.CommandField = 0x0001
    dataset.AffectedSOPClassUID = CT_IMAGE_STORAGE
    dataset.OffendingElement = 0x00100010  # VM 1 as pydicom stores it: a BaseTag
    dataset.MoveDestination = "DEST"
    assert dataset_to_command(dataset) == {
        "CommandField": 0x0001,
        "AffectedSOPClassUID": CT_IMAGE_STORAGE,
        "MoveDestination": "DEST",
        "OffendingElement": [0x00100010],
    }
    assert type(dataset_to_command(dataset)["AffectedSOPClassUID"]) is str


def test_dataset_to_command_rejects_other_groups() -> None:
    dataset = Dataset()
    dataset.CommandField = 1
    dataset.PatientName = "X"
    with pytest.raises(DIMSEError, match="group 0000"):
        dataset_to_command(dataset)


def test_dataset_round_trip_of_recorded_command() -> None:
    (_, recorded), _ = recorded_command_sets("dcmtk-storescu_dcmtk-storescp.pdus")
    dataset = command_to_dataset(decode_command_set(recorded))
    assert pydicom_implicit_le(dataset) == recorded


# -- names, required fields, dumps --------------------------------------------------------


@pytest.mark.parametrize(
    ("command_field", "name"),
    [
        (0x0001, "C-STORE-RQ"),
        (0x8001, "C-STORE-RSP"),
        (0x0010, "C-GET-RQ"),
        (0x8010, "C-GET-RSP"),
        (0x0020, "C-FIND-RQ"),
        (0x8020, "C-FIND-RSP"),
        (0x0021, "C-MOVE-RQ"),
        (0x8021, "C-MOVE-RSP"),
        (0x0030, "C-ECHO-RQ"),
        (0x8030, "C-ECHO-RSP"),
        (0x0FFF, "C-CANCEL-RQ"),
        (0x0100, "N-EVENT-REPORT-RQ"),
        (0x8100, "N-EVENT-REPORT-RSP"),
        (0x0110, "N-GET-RQ"),
        (0x8110, "N-GET-RSP"),
        (0x0120, "N-SET-RQ"),
        (0x8120, "N-SET-RSP"),
        (0x0130, "N-ACTION-RQ"),
        (0x8130, "N-ACTION-RSP"),
        (0x0140, "N-CREATE-RQ"),
        (0x8140, "N-CREATE-RSP"),
        (0x0150, "N-DELETE-RQ"),
        (0x8150, "N-DELETE-RSP"),
        (0x8FFF, "unknown (0x8FFF)"),
        (0x0031, "unknown (0x0031)"),
        (0x0000, "unknown (0x0000)"),
    ],
)
def test_message_name(command_field: int, name: str) -> None:
    assert message_name(command_field) == name


def _complete(command_field: int) -> dict[str, object]:
    fields: dict[str, object] = {"CommandField": command_field, "CommandDataSetType": NO_DATA_SET}
    for keyword in MESSAGE_TABLES[command_field][0]:
        fields[keyword] = "1.2.3" if keyword.endswith("UID") else "DEST"
        if keyword in ("MessageID", "MessageIDBeingRespondedTo", "Status", "Priority"):
            fields[keyword] = 0
        if keyword in ("EventTypeID", "ActionTypeID"):
            fields[keyword] = 1
    return fields


@pytest.mark.parametrize("command_field", sorted(MESSAGE_TABLES), ids=message_name)
def test_check_required_accepts_complete_messages(command_field: int) -> None:
    check_required(_complete(command_field))


@pytest.mark.parametrize(
    ("command_field", "keyword"),
    [(field, keyword) for field in sorted(MESSAGE_TABLES) for keyword in mandatory(field)],
    ids=lambda value: message_name(value) if isinstance(value, int) else value,
)
def test_check_required_names_each_missing_element(command_field: int, keyword: str) -> None:
    fields = _complete(command_field)
    del fields[keyword]
    with pytest.raises(DIMSEError, match=keyword):
        check_required(fields)
    fields[keyword] = None if keyword != "AffectedSOPClassUID" else ""
    with pytest.raises(DIMSEError, match=keyword):
        check_required(fields)


def test_check_required_names_all_missing_elements() -> None:
    with pytest.raises(DIMSEError) as raised:
        check_required({"CommandField": 0x0001, "CommandDataSetType": DATA_SET_PRESENT})
    for keyword in MESSAGE_TABLES[0x0001][0]:
        assert keyword in str(raised.value)
    assert "C-STORE-RQ" in str(raised.value)


def test_check_required_for_unknown_command_field() -> None:
    check_required({"CommandField": 0x0042, "CommandDataSetType": NO_DATA_SET})
    with pytest.raises(DIMSEError, match="CommandDataSetType"):
        check_required({"CommandField": 0x0042})
    with pytest.raises(DIMSEError, match="CommandField"):
        check_required({"CommandDataSetType": NO_DATA_SET})


def test_describe_echo_request() -> None:
    (_, request), (_, response) = recorded_command_sets("dcmtk-echoscu_dcmtk-storescp.pdus")
    text = describe_command(decode_command_set(request))
    lines = text.splitlines()
    assert lines[0] == "C-ECHO-RQ"
    assert any("Message ID" in line and line.endswith(": 1") for line in lines)
    assert any(
        "Affected SOP Class UID" in line and "Verification SOP Class" in line for line in lines
    )
    assert lines[-1].split(":")[0].strip() == "Data Set"
    assert lines[-1].endswith("none")
    response_text = describe_command(decode_command_set(response))
    assert "C-ECHO-RSP" in response_text
    assert "0x0000 Success" in response_text


def test_describe_store_with_failure_and_data() -> None:
    text = describe_command(
        {
            "CommandField": 0x8001,
            "MessageIDBeingRespondedTo": 4,
            "Status": 0xA700,
            "OffendingElement": [0x00100010],
            "(0000,0999)": b"\x01\x02",
            "CommandDataSetType": DATA_SET_PRESENT,
        }
    )
    assert "C-STORE-RSP" in text
    assert "0xA700 Failure: Refused: Out of resources" in text
    assert "(0010,0010)" in text
    assert "(0000,0999)" in text and "0102" in text
    assert text.splitlines()[-1].endswith("present")


def test_describe_without_command_field() -> None:
    text = describe_command({"MessageID": 1, "Priority": 2})
    assert "without Command Field" in text.splitlines()[0]
    assert "LOW" in text
    assert text.splitlines()[-1].endswith("not stated")


def test_a_long_error_comment_is_cut_to_its_64_characters() -> None:
    fields = {
        "CommandField": 0x8001,
        "MessageIDBeingRespondedTo": 1,
        "Status": 0xA700,
        "ErrorComment": "x" * 200,
        "CommandDataSetType": NO_DATA_SET,
    }
    assert decode_command_set(encode_command_set(fields))["ErrorComment"] == "x" * 64


def test_repeated_values_decode_to_independent_results() -> None:
    """Text elements come from a cache; a multi-valued element's list never does, so
    changing one decoded command leaves the next one alone."""
    command = {
        "CommandField": 0x8021,
        "MessageIDBeingRespondedTo": 3,
        "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.2",
        "Status": 0xA701,
        "OffendingElement": [0x00100010, 0x00100020],
        "CommandDataSetType": 0x0101,
    }
    encoded = encode_command_set(command)
    first, second = decode_command_set(encoded), decode_command_set(encoded)
    assert first == second
    assert isinstance(first["OffendingElement"], list)
    first["OffendingElement"].append(0x00080020)
    assert decode_command_set(encoded)["OffendingElement"] == [0x00100010, 0x00100020]
    assert encode_command_set(command) == encoded  # the encoding cache gives the same bytes
