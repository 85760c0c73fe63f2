"""Tests of the PDU codec (PS3.8 9.3, PS3.7 D.3.3) against recorded peers and properties."""

from __future__ import annotations

import contextlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomnet.errors import DicomExceptionCode, PDUError
from dicomnet.pdu import (
    PDU,
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    decode_pdu,
    describe_pdu,
    encode_pdu,
    read_pdu_header,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pdus"

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
ALL_FOUR_TRANSFER_SYNTAXES = [
    IMPLICIT_VR_LE,
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
]
ASSOCIATE_FIXED_END = 74  # 6-byte PDU header + 68-byte fixed part of an A-ASSOCIATE-RQ/AC


def _load(name: str) -> list[bytes]:
    lines = (FIXTURES / name).read_text().splitlines()
    return [bytes.fromhex(line.split()[1]) for line in lines if line.strip()]


FIXTURE_PDUS = [
    pytest.param(raw, id=f"{path.stem}[{index}]")
    for path in sorted(FIXTURES.glob("*.pdus"))
    for index, raw in enumerate(_load(path.name))
]
RICH = _load("pynetdicom-rich-negotiation.pdus")
RICH_RQ, RICH_AC = RICH[0], RICH[1]
DCMTK_ECHO = _load("dcmtk-echoscu_dcmtk-storescp.pdus")
DCMTK_ECHO_RQ = DCMTK_ECHO[0]
BARE_RQ = encode_pdu(
    AssociateRQ("SCP", "SCU", [PresentationContextRQ(1, VERIFICATION, [IMPLICIT_VR_LE])])
)


# -- an independent walker over the recorded bytes -----------------------------------


@dataclass
class LengthField:
    """Where a length lives in a PDU, and how many bytes its container leaves for it."""

    offset: int
    size: int
    room: int  # bytes available after the length field inside its container
    label: str  # what the decoder's message must name


def _items(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(offset, type, length) of the items packed in data[start:end]."""
    found, offset = [], start
    while offset < end:
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        found.append((offset, data[offset], length))
        offset += 4 + length
    return found


def _u16_fields(
    data: bytes, offset: int, end: int, label: str, count: int | None = None
) -> list[LengthField]:
    """2-byte-length-prefixed fields from ``offset``: ``count`` of them, or all up to ``end``."""
    fields: list[LengthField] = []
    while len(fields) < count if count is not None else offset < end:
        fields.append(LengthField(offset, 2, end - offset - 2, label))
        offset += 2 + int.from_bytes(data[offset : offset + 2], "big")
    return fields


def _inner_length_fields(data: bytes, offset: int, item_type: int, end: int) -> list[LengthField]:
    label = f"({item_type:02X}H)"
    body = offset + 4
    if item_type in (0x54, 0x56, 0x59):
        return _u16_fields(data, body, end, label, count=1)
    if item_type == 0x57:  # SOP class, service class, related list; then each related UID
        fields = _u16_fields(data, body, end, label, count=3)
        related = fields[-1].offset + 2
        related_end = related + int.from_bytes(data[fields[-1].offset : related], "big")
        return fields + _u16_fields(data, related, related_end, label)
    if item_type == 0x58:  # after the identity type and positive-response bytes
        return _u16_fields(data, body + 2, end, label, count=2)
    return []


SUB_ITEMS_START = {0x20: 8, 0x21: 8, 0x50: 4}  # items that hold sub-items, and where


def length_fields(data: bytes) -> list[LengthField]:
    """Every item, sub-item and inner UID length of an A-ASSOCIATE-RQ/AC."""
    fields = []
    for offset, item_type, length in _items(data, ASSOCIATE_FIXED_END, len(data)):
        end = offset + 4 + length
        fields.append(LengthField(offset + 2, 2, len(data) - offset - 4, f"({item_type:02X}H)"))
        if item_type not in SUB_ITEMS_START:
            continue
        first_sub_item = offset + SUB_ITEMS_START[item_type]
        for sub_offset, sub_type, sub_length in _items(data, first_sub_item, end):
            sub_end = sub_offset + 4 + sub_length
            fields.append(
                LengthField(sub_offset + 2, 2, end - sub_offset - 4, f"({sub_type:02X}H)")
            )
            fields.extend(_inner_length_fields(data, sub_offset, sub_type, sub_end))
    return fields


def _with_pdu_length(body_and_header: bytes) -> bytes:
    """Fix the PDU-length field after the body was edited."""
    return body_and_header[:2] + struct.pack(">L", len(body_and_header) - 6) + body_and_header[6:]


def _user_information_offset(data: bytes) -> int:
    return next(o for o, t, _ in _items(data, ASSOCIATE_FIXED_END, len(data)) if t == 0x50)


def _user_sub_items(data: bytes) -> list[tuple[int, int, int]]:
    offset = _user_information_offset(data)
    return _items(
        data, offset + 4, offset + 4 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    )


def _append_to_item(data: bytes, item_type: int, sub_item: bytes) -> bytes:
    """Append a sub-item to the first item of ``item_type``, fixing its and the PDU's length."""
    offset = next(o for o, t, _ in _items(data, ASSOCIATE_FIXED_END, len(data)) if t == item_type)
    length = int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = offset + 4 + length
    item_header = data[offset : offset + 2] + struct.pack(">H", length + len(sub_item))
    return _with_pdu_length(
        data[:offset] + item_header + data[offset + 4 : end] + sub_item + data[end:]
    )


# -- recorded peers ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", FIXTURE_PDUS)
def test_every_recorded_pdu_decodes_and_survives_reencoding(raw: bytes) -> None:
    pdu = decode_pdu(raw)
    assert decode_pdu(encode_pdu(pdu)) == pdu
    assert read_pdu_header(raw) == (raw[0], len(raw) - 6)


# Where the recorded peer used a freedom the standard leaves, the bytes differ on purpose.
DCMTK_REQUESTS = {  # DCMTK writes FFH into reserved byte 7 (offset 6) of each 20H item
    "dcmtk-echoscu-abort_dcmtk-storescp.pdus": 0,
    "dcmtk-echoscu_dcmtk-storescp.pdus": 0,
    "dcmtk-storescu-deflate_dcmtk-storescp-deflate.pdus": 0,
    "dcmtk-storescu_dcmtk-storescp.pdus": 0,
}
PYNETDICOM_ASSOCIATIONS = {  # pynetdicom orders user-information sub-items 51,52,55,54,53,...
    "pynetdicom-rich-negotiation.pdus": (0, 1),
    "pynetdicom-called-ae-rejected.pdus": (0,),
}


def _byte_exact_fixture_pdus() -> list[object]:
    params: list[object] = []
    for path in sorted(FIXTURES.glob("*.pdus")):
        free = {DCMTK_REQUESTS.get(path.name)} | set(PYNETDICOM_ASSOCIATIONS.get(path.name, ()))
        params.extend(
            pytest.param(raw, id=f"{path.stem}[{index}]")
            for index, raw in enumerate(_load(path.name))
            if index not in free
        )
    return params


@pytest.mark.parametrize("raw", _byte_exact_fixture_pdus())
def test_recorded_pdu_reencodes_byte_for_byte(raw: bytes) -> None:
    assert encode_pdu(decode_pdu(raw)) == raw


@pytest.mark.parametrize("name", sorted(DCMTK_REQUESTS))
def test_dcmtk_request_differs_only_in_the_reserved_context_byte(name: str) -> None:
    raw = _load(name)[DCMTK_REQUESTS[name]]
    expected = bytearray(raw)
    contexts = [o for o, t, _ in _items(raw, ASSOCIATE_FIXED_END, len(raw)) if t == 0x20]
    assert contexts and all(raw[o + 6] == 0xFF for o in contexts)  # what DCMTK sends
    for offset in contexts:
        expected[offset + 6] = 0  # what PS3.8 Table 9-13 says to send
    assert encode_pdu(decode_pdu(raw)) == bytes(expected)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_load(name)[index], id=f"{name}[{index}]")
        for name, indexes in PYNETDICOM_ASSOCIATIONS.items()
        for index in indexes
    ],
)
def test_pynetdicom_association_reencodes_with_sub_items_in_ascending_order(raw: bytes) -> None:
    sub_items = _user_sub_items(raw)
    first = sub_items[0][0]
    assert [t for _, t, _ in sub_items] != sorted(t for _, t, _ in sub_items)  # peer's order
    assert first + sum(4 + length for *_, length in sub_items) == len(raw)  # 50H comes last
    ascending = b"".join(
        raw[o : o + 4 + length] for o, _, length in sorted(sub_items, key=lambda item: item[1])
    )
    assert encode_pdu(decode_pdu(raw)) == raw[:first] + ascending


def test_rich_negotiation_request_values() -> None:
    rq = decode_pdu(RICH_RQ)
    assert isinstance(rq, AssociateRQ)
    assert (rq.called_ae, rq.calling_ae, rq.protocol_version) == ("PYN-SCP", "PYN-SCU", 1)
    assert rq.application_context == "1.2.840.10008.3.1.1.1"
    assert rq.presentation_contexts == [
        PresentationContextRQ(1, VERIFICATION, ALL_FOUR_TRANSFER_SYNTAXES),
        PresentationContextRQ(3, CT_IMAGE_STORAGE, ALL_FOUR_TRANSFER_SYNTAXES),
        PresentationContextRQ(5, PATIENT_ROOT_FIND, ALL_FOUR_TRANSFER_SYNTAXES),
    ]
    assert rq.user_information == UserInformation(
        max_length=16382,
        implementation_class_uid="1.2.826.0.1.3680043.9.3811.3.0.4",
        async_ops_window=(3, 4),
        role_selections=[RoleSelection(CT_IMAGE_STORAGE, scu_role=True, scp_role=True)],
        implementation_version_name="PYNETDICOM_304",
        sop_class_extended=[SOPClassExtendedNegotiation(PATIENT_ROOT_FIND, b"\x01\x01")],
        sop_class_common_extended=[
            SOPClassCommonExtendedNegotiation(
                CT_IMAGE_STORAGE, "1.2.840.10008.4.2", ["1.2.840.10008.5.1.4.1.1.2.1"]
            )
        ],
        user_identity_rq=UserIdentityRQ(2, True, b"alice", b"s3cret"),
    )


def test_rich_negotiation_accept_values() -> None:
    ac = decode_pdu(RICH_AC)
    assert isinstance(ac, AssociateAC)
    assert (ac.called_ae, ac.calling_ae) == ("PYN-SCP", "PYN-SCU")
    assert ac.presentation_contexts == [
        PresentationContextAC(context_id, 0, IMPLICIT_VR_LE) for context_id in (1, 3, 5)
    ]
    # pynetdicom answers user identity only for types 3-5, so this AC carries no 59H even
    # though a positive response was requested (standard-tables 4.7).
    assert ac.user_information == UserInformation(
        max_length=16382,
        implementation_class_uid="1.2.826.0.1.3680043.9.3811.3.0.4",
        role_selections=[RoleSelection(CT_IMAGE_STORAGE, scu_role=True, scp_role=True)],
        implementation_version_name="PYNETDICOM_304",
    )


def test_user_identity_response_sub_item_is_decoded() -> None:
    sub_item = bytes([0x59, 0, 0, 7, 0, 5]) + b"tick!"
    ac = decode_pdu(_append_to_item(RICH_AC, 0x50, sub_item))
    assert isinstance(ac, AssociateAC)
    assert ac.user_information.user_identity_ac == UserIdentityAC(b"tick!")


def test_reject_and_abort_values() -> None:
    assert decode_pdu(_load("pynetdicom-called-ae-rejected.pdus")[1]) == AssociateRJ(1, 1, 7)
    assert decode_pdu(_load("dcmtk-echoscu-abort_dcmtk-storescp.pdus")[-1]) == Abort(0, 0)
    assert decode_pdu(DCMTK_ECHO[-2]) == ReleaseRQ()
    assert decode_pdu(DCMTK_ECHO[-1]) == ReleaseRP()


def test_pdata_fragments_are_views_into_the_received_bytes() -> None:
    raw = DCMTK_ECHO[2]
    pdu = decode_pdu(raw)
    assert isinstance(pdu, PDataTF)
    [pdv] = pdu.pdvs
    assert (pdv.context_id, pdv.is_command, pdv.is_last) == (1, True, True)
    assert isinstance(pdv.data, memoryview)
    assert pdv.data == raw[12:]


# -- tolerance on receipt ---------------------------------------------------------------


def test_reserved_fields_are_not_tested() -> None:
    noisy = bytearray(DCMTK_ECHO_RQ)
    noisy[1] = 0xAA  # PDU reserved
    noisy[8:10] = b"\xbb\xbb"  # reserved after the protocol version
    noisy[42:74] = b"\xcc" * 32
    assert decode_pdu(bytes(noisy)) == decode_pdu(DCMTK_ECHO_RQ)
    assert decode_pdu(b"\x07\xff\x00\x00\x00\x04\xee\xee\x02\x06") == Abort(2, 6)


def test_protocol_version_value_is_kept_for_the_negotiation_layer() -> None:
    raw = DCMTK_ECHO_RQ[:6] + b"\x00\x03" + DCMTK_ECHO_RQ[8:]
    rq = decode_pdu(raw)
    assert isinstance(rq, AssociateRQ) and rq.protocol_version == 3
    assert encode_pdu(rq)[6:8] == b"\x00\x03"


def test_uid_padding_and_ae_title_spaces_are_stripped() -> None:
    # The encoder writes UIDs verbatim, so it can produce the padding some peers send.
    padded_uids = [PresentationContextRQ(1, "1.2.3\0", ["1.2 ", "1.2.4\0\0"])]
    raw = bytearray(encode_pdu(AssociateRQ("SCP", "SCU", padded_uids)))
    raw[10:26] = b"  CENTERED SCP  "
    decoded = decode_pdu(bytes(raw))
    assert isinstance(decoded, AssociateRQ)
    assert decoded.called_ae == "CENTERED SCP"
    assert decoded.presentation_contexts == [PresentationContextRQ(1, "1.2.3", ["1.2", "1.2.4"])]


def test_unknown_items_outside_user_information_are_skipped() -> None:
    unknown = bytes([0x60, 0, 0, 3]) + b"xyz"
    first_context = next(
        o for o, t, _ in _items(DCMTK_ECHO_RQ, ASSOCIATE_FIXED_END, len(DCMTK_ECHO_RQ)) if t == 0x20
    )
    with_item = _with_pdu_length(
        DCMTK_ECHO_RQ[:first_context] + unknown + DCMTK_ECHO_RQ[first_context:]
    )
    assert decode_pdu(with_item) == decode_pdu(DCMTK_ECHO_RQ)


def test_unknown_sub_item_inside_a_presentation_context_is_skipped() -> None:
    stranger = bytes([0x35, 0, 0, 2]) + b"??"
    assert decode_pdu(_append_to_item(BARE_RQ, 0x20, stranger)) == decode_pdu(BARE_RQ)


def test_unknown_user_information_sub_item_is_kept_and_reencoded() -> None:
    stranger = bytes([0x5A, 0, 0, 4]) + b"\x01\x02\x03\x04"
    raw = _append_to_item(DCMTK_ECHO[1], 0x50, stranger)  # DCMTK's AC re-encodes exactly
    ac = decode_pdu(raw)
    assert isinstance(ac, AssociateAC)
    assert ac.user_information.unknown == [UnknownSubItem(0x5A, b"\x01\x02\x03\x04")]
    assert encode_pdu(ac) == raw  # unknown sub-items go last, where it already was


def test_sub_items_in_any_order_decode_the_same() -> None:
    sub_items = _user_sub_items(RICH_RQ)
    reversed_order = b"".join(RICH_RQ[o : o + 4 + length] for o, _, length in reversed(sub_items))
    assert decode_pdu(RICH_RQ[: sub_items[0][0]] + reversed_order) == decode_pdu(RICH_RQ)


def test_missing_required_items_are_left_for_the_negotiation_layer() -> None:
    bare = _with_pdu_length(DCMTK_ECHO_RQ[:ASSOCIATE_FIXED_END])
    rq = decode_pdu(bare)
    assert isinstance(rq, AssociateRQ)
    assert (rq.application_context, rq.presentation_contexts) == ("", [])
    assert rq.user_information == UserInformation()


# -- bad input --------------------------------------------------------------------------


def test_every_truncation_of_a_request_is_a_pdu_error() -> None:
    for cut in range(len(RICH_RQ)):
        with pytest.raises(PDUError):
            decode_pdu(RICH_RQ[:cut])


def test_truncation_with_a_consistent_pdu_length_fails_unless_on_an_item_boundary() -> None:
    boundaries = {ASSOCIATE_FIXED_END} | {
        o + 4 + length for o, _, length in _items(RICH_RQ, ASSOCIATE_FIXED_END, len(RICH_RQ))
    }
    for cut in range(6, len(RICH_RQ)):
        truncated = _with_pdu_length(RICH_RQ[:cut])
        if cut in boundaries:
            assert isinstance(decode_pdu(truncated), AssociateRQ)
        else:
            with pytest.raises(PDUError):
                decode_pdu(truncated)


def _full_accept() -> bytes:
    """An A-ASSOCIATE-AC with every sub-item an AC can carry, including 59H."""
    info = UserInformation(
        max_length=0,
        implementation_class_uid="1.2.3.4",
        async_ops_window=(1, 1),
        role_selections=[RoleSelection(CT_IMAGE_STORAGE, False, True)],
        implementation_version_name="V1",
        sop_class_extended=[SOPClassExtendedNegotiation(PATIENT_ROOT_FIND, b"\x01")],
        user_identity_ac=UserIdentityAC(b"ticket"),
        unknown=[UnknownSubItem(0x70, b"ab")],
    )
    contexts = [PresentationContextAC(1, 0, IMPLICIT_VR_LE), PresentationContextAC(3, 3, "")]
    return encode_pdu(AssociateAC("SCP", "SCU", contexts, info))


LYING_TARGETS = {"rich A-ASSOCIATE-RQ": RICH_RQ, "A-ASSOCIATE-AC with 59H": _full_accept()}


@pytest.mark.parametrize("raw", LYING_TARGETS.values(), ids=LYING_TARGETS.keys())
def test_every_length_field_that_lies_is_a_pdu_error_naming_the_item(raw: bytes) -> None:
    fields = length_fields(raw)
    for field in fields:
        for lie in (field.room + 1, 0xFFFF):
            lying = raw[: field.offset] + lie.to_bytes(field.size, "big") + raw[field.offset + 2 :]
            with pytest.raises(PDUError, match=re.escape(field.label)):
                decode_pdu(lying)


def test_full_accept_has_every_accept_length_field() -> None:
    labels = {field.label for field in length_fields(_full_accept())}
    expected = (0x10, 0x21, 0x40, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x59, 0x70)
    assert labels == {f"({t:02X}H)" for t in expected}


def test_rich_request_has_every_request_length_field() -> None:
    labels = {field.label for field in length_fields(RICH_RQ)}
    assert labels == {f"({t:02X}H)" for t in (0x10, 0x20, 0x30, 0x40, *range(0x50, 0x59))}
    # 57H: its own length, SOP class, service class, related list, one related UID
    assert sum(field.label == "(57H)" for field in length_fields(RICH_RQ)) == 5


@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_pdu_length_that_lies_is_a_pdu_error(delta: int) -> None:
    for raw in (RICH_RQ, DCMTK_ECHO[2], DCMTK_ECHO[-1]):
        lying = raw[:2] + struct.pack(">L", len(raw) - 6 + delta) + raw[6:]
        with pytest.raises(PDUError, match="PDU-length"):
            decode_pdu(lying)


def test_pdv_item_length_that_lies_is_a_pdu_error() -> None:
    two_pdvs = encode_pdu(PDataTF([PDV(1, True, False, b"ab"), PDV(1, True, True, b"cd")]))
    for lie in (1, 5, 9, 0xFFFFFFFF):  # too short for the header, or past the PDU
        lying = two_pdvs[:6] + struct.pack(">L", lie) + two_pdvs[10:]
        with pytest.raises(PDUError, match="PDV item"):
            decode_pdu(lying)


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x10, 0xFF])
def test_unknown_pdu_type(pdu_type: int) -> None:
    with pytest.raises(PDUError) as caught:
        decode_pdu(bytes([pdu_type, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
    assert caught.value.Code == DicomExceptionCode.BadPDUType


@pytest.mark.parametrize("pdu_type", [3, 5, 6, 7])
@pytest.mark.parametrize("body_length", [0, 3, 5, 64])
def test_fixed_size_pdu_with_another_length(pdu_type: int, body_length: int) -> None:
    with pytest.raises(PDUError, match="expected 4"):
        decode_pdu(bytes([pdu_type, 0]) + struct.pack(">L", body_length) + bytes(body_length))


@pytest.mark.parametrize(
    ("sub_item", "message"),
    [
        (bytes([0x51, 0, 0, 3, 0, 0, 1]), r"\(51H\) has length 3, expected 4"),
        (bytes([0x53, 0, 0, 5, 0, 1, 0, 1, 0]), r"\(53H\) has length 5, expected 4"),
        (bytes([0x54, 0, 0, 6, 0, 1]) + b"1" + b"\x01\x01\x01", r"\(54H\).*fields end"),
        (bytes([0x54, 0, 0, 4, 0, 1]) + b"1" + b"\x01", r"\(54H\).*fields end"),
        (bytes([0x58, 0, 0, 1, 1]), r"\(58H\) is shorter"),
        (bytes([0x58, 0, 0, 8, 1, 0, 0, 1]) + b"a" + b"\x00\x00!", r"\(58H\).*fields end"),
        (bytes([0x59, 0, 0, 3, 0, 0, 9]), r"\(59H\).*fields end"),
        (bytes([0x57, 0, 0, 4, 0, 1]) + b"1" + b"\x00", r"\(57H\): service class UID length"),
        (
            bytes([0x57, 0, 0, 9, 0, 1]) + b"1" + b"\x00\x01" + b"2" + b"\x00\x01" + b"\x00",
            r"\(57H\): related general SOP class UID length",
        ),
        (bytes([0x51, 0, 0, 4, 0, 0, 0, 1]) * 2, r"more than one maximum length"),
    ],
)
def test_malformed_user_information_sub_items(sub_item: bytes, message: str) -> None:
    with pytest.raises(PDUError, match=message):
        decode_pdu(_append_to_item(BARE_RQ, 0x50, sub_item))


def test_duplicate_and_short_items() -> None:
    second_application_context = bytes([0x10, 0, 0, 3]) + b"1.2"
    with pytest.raises(PDUError, match="more than one application context"):
        decode_pdu(_with_pdu_length(DCMTK_ECHO_RQ + second_application_context))
    with pytest.raises(PDUError, match=r"\(20H\) #2 is shorter"):
        decode_pdu(_with_pdu_length(DCMTK_ECHO_RQ + bytes([0x20, 0, 0, 2, 1, 0])))
    with pytest.raises(PDUError, match=r"more than one abstract syntax .* \(20H\) #1"):
        decode_pdu(_append_to_item(BARE_RQ, 0x20, bytes([0x30, 0, 0, 3]) + b"1.2"))
    accept = encode_pdu(AssociateAC("SCP", "SCU", [PresentationContextAC(1, 0, IMPLICIT_VR_LE)]))
    with pytest.raises(PDUError, match=r"more than one transfer syntax .* \(21H\) #1"):
        decode_pdu(_append_to_item(accept, 0x21, bytes([0x40, 0, 0, 3]) + b"1.2"))
    with pytest.raises(PDUError, match="shorter than its 68-byte fixed part"):
        decode_pdu(_with_pdu_length(DCMTK_ECHO_RQ[:40]))
    with pytest.raises(PDUError, match="without any PDV"):
        decode_pdu(bytes([4, 0, 0, 0, 0, 0]))


# -- strict sending ---------------------------------------------------------------------


def test_request_is_sent_the_strict_way() -> None:
    rq = AssociateRQ(
        "STORESCP",
        "ME",
        [PresentationContextRQ(7, "1.2.345", ["1.2.840.10008.1.2.1"])],
        UserInformation(
            max_length=1,
            implementation_class_uid="1.2.3",
            async_ops_window=(0, 0),
            role_selections=[RoleSelection("1.2", True, False)],
            implementation_version_name="X",
            sop_class_extended=[SOPClassExtendedNegotiation("1.2", b"\x01")],
            sop_class_common_extended=[SOPClassCommonExtendedNegotiation("1.2", "1.3")],
            user_identity_rq=UserIdentityRQ(1, False, b"bob"),
            user_identity_ac=UserIdentityAC(b""),
            unknown=[UnknownSubItem(0x5C, b""), UnknownSubItem(0x5B, b"")],
        ),
    )
    raw = encode_pdu(rq)
    assert raw[:2] == b"\x01\x00" and raw[6:10] == b"\x00\x01\x00\x00"
    assert raw[10:42] == b"STORESCP        ME              "
    assert raw[42:74] == bytes(32)
    context = next(o for o, t, _ in _items(raw, ASSOCIATE_FIXED_END, len(raw)) if t == 0x20)
    assert raw[context : context + 19] == (
        b"\x20\x00\x00\x26\x07\x00\x00\x00\x30\x00\x00\x071.2.345"
    )
    sub_items = _user_sub_items(raw)
    order = [t for _, t, _ in sub_items]
    assert order == [0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5C, 0x5B]
    implementation_uid = sub_items[1][0]
    assert raw[implementation_uid : implementation_uid + 9] == b"\x52\x00\x00\x051.2.3"


def test_accept_echoes_the_request_ae_titles() -> None:
    ac = AssociateAC("CALLED", "CALLING", [PresentationContextAC(1, 0, IMPLICIT_VR_LE)])
    raw = encode_pdu(ac)
    assert raw[0] == 0x02
    assert raw[10:26] == b"CALLED".ljust(16) and raw[26:42] == b"CALLING".ljust(16)
    assert raw[42:74] == bytes(32)


@pytest.mark.parametrize(
    "pdu",
    [
        AssociateRQ("", "SCU"),
        AssociateRQ("                ", "SCU"),
        AssociateRQ("SCP", "SEVENTEEN-CHARS-X"),
        AssociateRQ("SCP", "CAFÉ"),
        AssociateRQ("SCP", "TAB\tAE"),
        AssociateAC("SCP", ""),
        AssociateRQ("SCP", "SCU", [PresentationContextRQ(257, VERIFICATION, [IMPLICIT_VR_LE])]),
        AssociateRQ("SCP", "SCU", [PresentationContextRQ(1, "1." * 40 + "1", [IMPLICIT_VR_LE])]),
        AssociateRQ("SCP", "SCU", user_information=UserInformation(max_length=-1)),
        AssociateRQ("SCP", "SCU", user_information=UserInformation(max_length=1 << 32)),
        AssociateRQ("SCP", "SCU", user_information=UserInformation(implementation_version_name="")),
        AssociateRQ(
            "SCP", "SCU", user_information=UserInformation(implementation_version_name="X" * 17)
        ),
        AssociateRQ(  # a user information item longer than its 2-byte length allows
            "SCP",
            "SCU",
            user_information=UserInformation(
                role_selections=[
                    RoleSelection(f"{CT_IMAGE_STORAGE}.{n}", True, True) for n in range(2000)
                ]
            ),
        ),
        AssociateRJ(1, 1, 256),
        Abort(-1, 0),
        PDataTF([]),
        PDataTF([PDV(1, True, True, b"")]),
        PDataTF([PDV(300, True, True, b"\x00\x00")]),
    ],
)
def test_values_that_cannot_be_sent_are_pdu_errors(pdu: PDU) -> None:
    with pytest.raises(PDUError):
        encode_pdu(pdu)


def test_pdata_encoding_matches_the_one_pdv_header() -> None:
    pdu = PDataTF([PDV(3, False, True, b"\x01\x02"), PDV(3, True, False, memoryview(b"abcd"))])
    assert encode_pdu(pdu) == (
        b"\x04\x00\x00\x00\x00\x12"
        + b"\x00\x00\x00\x04\x03\x02\x01\x02"
        + b"\x00\x00\x00\x06\x03\x01abcd"
    )


# -- debug dump -------------------------------------------------------------------------


def test_describe_request_names_uids_and_hides_secrets() -> None:
    text = describe_pdu(decode_pdu(RICH_RQ))
    for expected in (
        "A-ASSOCIATE-RQ",
        "'PYN-SCP'",
        "CT Image Storage",
        "Patient Root Query/Retrieve Information Model - FIND",
        "Implicit VR Little Endian",
        "invoked 3, performed 4",
        "SCU role 1, SCP role 1",
        "'alice'",
        "1.2.840.10008.4.2 (Storage Service Class)",
    ):
        assert expected in text
    assert "s3cret" not in text


def test_describe_accept_reject_abort_and_release() -> None:
    assert "result: 0 (acceptance)" in describe_pdu(decode_pdu(RICH_AC))
    rejected = describe_pdu(decode_pdu(_load("pynetdicom-called-ae-rejected.pdus")[1]))
    assert "rejected (permanent): called AE title not recognized" in rejected
    assert "service-user" in describe_pdu(Abort(0, 0))
    assert "unexpected-PDU" in describe_pdu(Abort(2, 2))
    assert describe_pdu(ReleaseRP()) == "A-RELEASE-RP"


def test_describe_pdata_summarises_each_pdv_without_its_bytes() -> None:
    secret = b"PATIENT^SECRET"
    lines = describe_pdu(PDataTF([PDV(1, True, False, secret), PDV(1, False, True, secret)]))
    assert "SECRET" not in lines and secret.hex() not in lines
    header, first, second = lines.splitlines()
    assert "P-DATA-TF" in header
    assert all(word in first for word in ("context 1", "command", "more follows", "14 bytes"))
    assert all(word in second for word in ("context 1", "data set", "last", "14 bytes"))


# -- properties -------------------------------------------------------------------------

uids = st.from_regex(r"[1-9][0-9]{0,5}(\.(0|[1-9][0-9]{0,5})){1,8}", fullmatch=True)
ae_titles = (
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=16)
    .map(str.strip)
    .filter(bool)
)
u8, u16, u32 = (st.integers(0, 2**bits - 1) for bits in (8, 16, 32))
small_bytes = st.binary(max_size=40)

user_informations = st.builds(
    UserInformation,
    max_length=st.none() | u32,
    implementation_class_uid=st.just("") | uids,
    async_ops_window=st.none() | st.tuples(u16, u16),
    role_selections=st.lists(
        st.builds(RoleSelection, uids, st.booleans(), st.booleans()), max_size=3
    ),
    implementation_version_name=st.none()
    | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16),
    sop_class_extended=st.lists(
        st.builds(SOPClassExtendedNegotiation, uids, small_bytes), max_size=3
    ),
    sop_class_common_extended=st.lists(
        st.builds(SOPClassCommonExtendedNegotiation, uids, uids, st.lists(uids, max_size=3)),
        max_size=2,
    ),
    user_identity_rq=st.none()
    | st.builds(UserIdentityRQ, u8, st.booleans(), small_bytes, small_bytes),
    user_identity_ac=st.none() | st.builds(UserIdentityAC, small_bytes),
    unknown=st.lists(
        st.builds(
            UnknownSubItem,
            st.integers(0, 255).filter(lambda t: not 0x51 <= t <= 0x59),
            small_bytes,
        ),
        max_size=3,
    ),
)
associate_rqs = st.builds(
    AssociateRQ,
    ae_titles,
    ae_titles,
    st.lists(
        st.builds(PresentationContextRQ, u8, uids, st.lists(uids, min_size=1, max_size=4)),
        max_size=5,
    ),
    user_informations,
    uids,
    u16,
)
associate_acs = st.builds(
    AssociateAC,
    ae_titles,
    ae_titles,
    st.lists(st.builds(PresentationContextAC, u8, u8, st.just("") | uids), max_size=5),
    user_informations,
    uids,
    u16,
)
pdata_tfs = st.builds(
    PDataTF,
    st.lists(
        st.builds(PDV, u8, st.booleans(), st.booleans(), st.binary(min_size=1, max_size=64)),
        min_size=1,
        max_size=4,
    ),
)
any_pdu = st.one_of(
    associate_rqs,
    associate_acs,
    st.builds(AssociateRJ, u8, u8, u8),
    pdata_tfs,
    st.just(ReleaseRQ()),
    st.just(ReleaseRP()),
    st.builds(Abort, u8, u8),
)


@given(any_pdu)
def test_decode_inverts_encode(pdu: PDU) -> None:
    raw = encode_pdu(pdu)
    assert read_pdu_header(raw) == (raw[0], len(raw) - 6)
    assert decode_pdu(raw) == pdu
    assert encode_pdu(decode_pdu(raw)) == raw
    describe_pdu(pdu)


def _decode_only_pdu_errors(raw: bytes) -> None:
    """Decode may succeed or raise PDUError, and so may re-encoding what it decoded."""
    try:
        pdu = decode_pdu(raw)
    except PDUError:
        return
    describe_pdu(pdu)
    with contextlib.suppress(PDUError):
        encode_pdu(pdu)


@given(u8, st.binary(max_size=300), st.booleans())
def test_random_bytes_give_a_pdu_or_a_pdu_error(pdu_type: int, body: bytes, honest: bool) -> None:
    length = len(body) if honest else len(body) ^ 1
    _decode_only_pdu_errors(bytes([pdu_type, 0]) + struct.pack(">L", length) + body)


MUTATION_SOURCES = [RICH_RQ, RICH_AC, DCMTK_ECHO_RQ, DCMTK_ECHO[1], DCMTK_ECHO[2], _full_accept()]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(MUTATION_SOURCES),
    st.lists(st.tuples(st.integers(0, 10_000), u8), min_size=1, max_size=6),
    st.booleans(),
)
def test_mutated_real_pdus_give_a_pdu_or_a_pdu_error(
    raw: bytes, edits: list[tuple[int, int]], fix_length: bool
) -> None:
    mutated = bytearray(raw)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    data = bytes(mutated)
    _decode_only_pdu_errors(_with_pdu_length(data) if fix_length else data)
