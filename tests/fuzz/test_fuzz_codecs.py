"""Fuzzing the wire codecs: PDUs and their items (pdu.py), command sets (commands.py).

tests/unit/test_pdu.py and test_dimse_commands.py hold the round trips and byte
substitutions in recorded PDUs. These add what reaches deeper: items and sub-items of
any type and content inside PDUs whose enclosing lengths are all consistent (so every
item decoder sees hostile payloads), insertions, deletions, truncations, extensions and
length fields that lie, and a bound on the memory a decode takes.
"""

from __future__ import annotations

import contextlib
import struct

from engine_target import recorded_streams
from hypothesis import given, settings
from hypothesis import strategies as st
from mutations import Edit, allocation_bound, edits, mutate, peak_allocation

from dicomnet.dimse.commands import COMMAND_DICTIONARY, decode_command_set, encode_command_set
from dicomnet.errors import DIMSEError, PDUError
from dicomnet.pdu import decode_pdu, describe_pdu, encode_pdu, split_pdvs

RECORDED = [
    pdu for requestor, acceptor in recorded_streams().values() for pdu in requestor + acceptor
]
ASSOCIATION_PDUS = [pdu for pdu in RECORDED if pdu[0] in (0x01, 0x02)]
COMMAND_SETS = [
    bytes(fragment)
    for pdu in RECORDED
    if pdu[0] == 0x04
    for _, control, fragment in split_pdvs(memoryview(pdu)[6:])
    if control & 0x01 and control & 0x02
]

ITEM_TYPES = st.sampled_from([0x10, 0x20, 0x21, 0x30, 0x40, 0x50, *range(0x51, 0x5A)])
SUB_ITEM_TYPES = st.sampled_from(list(range(0x51, 0x5A))) | st.integers(0, 255)


def _item(item_type: int, payload: bytes) -> bytes:
    return struct.pack(">BxH", item_type, len(payload)) + payload


def _associate(pdu_type: int, items: list[bytes]) -> bytes:
    body = struct.pack(">Hxx16s16s32x", 1, b"CALLED".ljust(16), b"CALLING".ljust(16))
    body += b"".join(items)
    return struct.pack(">BxL", pdu_type, len(body)) + body


def _with_pdu_length(raw: bytes) -> bytes:
    return raw[:2] + struct.pack(">L", max(len(raw) - 6, 0)) + raw[6:] if len(raw) >= 6 else raw


def decodes_or_pdu_error(raw: bytes) -> None:
    """Decoding gives a PDU or a PDUError; what it gives can be described and, unless a
    value cannot be sent, re-encoded to something that decodes to the same PDU."""
    try:
        pdu = decode_pdu(raw)
    except PDUError:
        return
    describe_pdu(pdu)
    with contextlib.suppress(PDUError):
        assert decode_pdu(encode_pdu(pdu)) == pdu


# -- PDUs ------------------------------------------------------------------------------


@given(
    st.sampled_from([0x01, 0x02]),
    st.lists(st.tuples(SUB_ITEM_TYPES, st.binary(max_size=80)), max_size=8),
)
def test_any_user_information_sub_items(pdu_type: int, sub_items: list[tuple[int, bytes]]) -> None:
    user_information = b"".join(_item(item_type, payload) for item_type, payload in sub_items)
    decodes_or_pdu_error(
        _associate(pdu_type, [_item(0x10, b"1.2.840.10008.3.1.1.1"), _item(0x50, user_information)])
    )


@given(
    st.sampled_from([0x01, 0x02]),
    st.lists(
        st.tuples(
            ITEM_TYPES,
            st.binary(max_size=4),
            st.lists(st.tuples(ITEM_TYPES, st.binary(max_size=70)), max_size=4),
        ),
        max_size=6,
    ),
)
def test_any_items_with_any_sub_items(
    pdu_type: int, items: list[tuple[int, bytes, list[tuple[int, bytes]]]]
) -> None:
    encoded = [
        _item(item_type, fixed + b"".join(_item(t, payload) for t, payload in sub_items))
        for item_type, fixed, sub_items in items
    ]
    decodes_or_pdu_error(_associate(pdu_type, encoded))


@settings(max_examples=300)
@given(st.sampled_from(RECORDED), edits, st.booleans())
def test_inserted_deleted_truncated_extended_and_lying_bytes(
    raw: bytes, changes: list[Edit], fix_length: bool
) -> None:
    mutated = mutate(raw, changes)
    decodes_or_pdu_error(_with_pdu_length(mutated) if fix_length else mutated)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ASSOCIATION_PDUS), edits)
def test_decoding_allocates_with_the_input_not_with_its_length_fields(
    raw: bytes, changes: list[Edit]
) -> None:
    mutated = _with_pdu_length(mutate(raw, changes))
    peak = peak_allocation(lambda: decode_pdu(mutated), PDUError)
    assert peak <= allocation_bound(len(mutated))


def test_pdu_claiming_four_gigabytes_allocates_nothing_of_it() -> None:
    raw = struct.pack(">BxL", 0x04, 0xFFFFFFFF) + struct.pack(">LBB", 0xFFFFFFFE, 1, 3)
    assert peak_allocation(lambda: decode_pdu(raw), PDUError) < 64 << 10


# -- command sets ------------------------------------------------------------------------

ELEMENTS = st.sampled_from(sorted(COMMAND_DICTIONARY)) | st.integers(0, 0xFFFF)


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHL", 0, element, len(value)) + value


@given(st.lists(st.tuples(ELEMENTS, st.binary(max_size=24)), min_size=1, max_size=10))
def test_any_group_0000_elements(elements: list[tuple[int, bytes]]) -> None:
    """Any tags and values in a well-framed command set: decoded or a DIMSEError; what is
    decoded and can be sent again decodes to the same command."""
    raw = b"".join(
        _element(element, value + b"\0" * (len(value) % 2)) for element, value in elements
    )
    try:
        command = decode_command_set(raw)
    except DIMSEError:
        return
    try:
        again = encode_command_set(command)
    except DIMSEError:  # a latin-1 character, say, that only ASCII may carry out
        return
    sent = {key: value for key, value in command.items() if value is not None}
    assert decode_command_set(again) == sent


@settings(max_examples=200)
@given(st.sampled_from(COMMAND_SETS), edits)
def test_mutated_command_sets(raw: bytes, changes: list[Edit]) -> None:
    mutated = mutate(raw, changes)
    peak = peak_allocation(lambda: decode_command_set(mutated), DIMSEError)
    assert peak <= allocation_bound(len(mutated))
