"""Fuzzing the DIMSE layer: the message table (messages.py), reassembly from PDVs
(assembly.py) and data sets (datasets.py).

Round trips of generated valid values, and hostile input that may only ever raise the
library's own DIMSEError, within memory that follows the input.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutations import Edit, allocation_bound, edits, mutate, peak_allocation
from pydicom import Dataset

from dicomnet.config import NetConfig
from dicomnet.dimse.assembly import MessageAssembler
from dicomnet.dimse.commands import decode_command_set, encode_command_set
from dicomnet.dimse.datasets import decode_dataset, encode_dataset
from dicomnet.dimse.messages import MESSAGES, Field, Kind, MessageSpec, check_required
from dicomnet.errors import DIMSEError
from dicomnet.uids import DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE

uids = st.from_regex(r"[1-9][0-9]{0,8}(\.(0|[1-9][0-9]{0,8})){1,5}", fullmatch=True)
u16 = st.integers(0, 0xFFFF)

# -- the message table -------------------------------------------------------------------

_VALUES: dict[Kind, st.SearchStrategy[object]] = {
    Kind.NUMBER: u16,
    Kind.STATUS: u16,
    Kind.PRIORITY: u16,
    Kind.TAGS: st.lists(st.integers(0, 0xFFFFFFFF), max_size=4),
    Kind.COUNT: st.integers(-3, 0xFFFF),
}


def _text(field: Field) -> st.SearchStrategy[object]:
    ae = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=16)
    value = ae if field.element.endswith(("Destination", "EntityTitle")) else uids
    return value if field.required else st.just("") | value


@st.composite
def specs_and_arguments(draw: st.DrawFn) -> tuple[MessageSpec, dict[str, Any]]:
    spec = draw(st.sampled_from(list(MESSAGES.values())))
    arguments: dict[str, Any] = {"message_id": draw(u16)}
    for field in spec.fields:
        strategy = _text(field) if field.kind is Kind.TEXT else _VALUES[field.kind]
        arguments[field.parameter] = draw(strategy)
    return spec, arguments


def _expected(field: Field, arguments: dict[str, Any]) -> object:
    """What the receiver reads back: a value not sent reads as the field's default."""
    value = arguments[field.parameter]
    not_sent = (field.only_with is not None and not arguments[field.only_with]) or (
        field.kind is Kind.COUNT and value < 0
    )
    return field.default if not_sent else value


@given(specs_and_arguments(), st.booleans())
def test_every_message_reads_back_what_was_sent(
    spec_and_arguments: tuple[MessageSpec, dict[str, Any]], has_data_set: bool
) -> None:
    spec, arguments = spec_and_arguments
    received = decode_command_set(encode_command_set(spec.encode(arguments, has_data_set)))
    check_required(received)
    expected = [7, arguments["message_id"], *(_expected(f, arguments) for f in spec.fields)]
    assert spec.arguments(7, received) == expected
    assert (received["CommandDataSetType"] != 0x0101) == has_data_set


_ANY_VALUE = st.one_of(
    st.none(), u16, st.text(max_size=8), st.lists(u16, max_size=3), st.binary(max_size=4)
)


@given(
    st.sampled_from(list(MESSAGES.values())),
    st.dictionaries(
        st.sampled_from(
            sorted(
                {f.element for s in MESSAGES.values() for f in s.fields}
                | {"CommandField", "CommandDataSetType", "MessageID", "MessageIDBeingRespondedTo"}
            )
        ),
        _ANY_VALUE,
    ),
)
def test_any_received_command_gives_arguments_or_names_what_is_missing(
    spec: MessageSpec, command: dict[str, object]
) -> None:
    """Whatever a peer put in the elements: the callback's arguments have their types,
    and the mandatory check passes or raises DIMSEError."""
    arguments = spec.arguments(1, command)
    assert len(arguments) == len(spec.parameters) - spec.data_set
    assert isinstance(arguments[1], int)
    for field, value in zip(spec.fields, arguments[2:], strict=True):
        assert isinstance(
            value, list if field.kind is Kind.TAGS else str if field.kind is Kind.TEXT else int
        )
    with pytest.raises(DIMSEError) if _lacks_required(spec, command) else contextlib.nullcontext():
        check_required({**command, "CommandField": spec.command_field})


def _lacks_required(spec: MessageSpec, command: dict[str, object]) -> bool:
    return any(
        command.get(keyword) in (None, "") for keyword in spec.required if keyword != "CommandField"
    )


# -- reassembly ----------------------------------------------------------------------------

_COMMANDS = [
    encode_command_set(
        MESSAGES[0x0030].encode({"message_id": 1, "affected_class": "1.2.840.10008.1.1"}, False)
    ),
    encode_command_set(
        MESSAGES[0x0001].encode(
            {
                "message_id": 2,
                "affected_class": "1.2",
                "instance": "1.2.3",
                "priority": 0,
                "move_ae": "",
                "move_message_id": 0,
            },
            True,
        )
    ),
]


@st.composite
def pdv_streams(draw: st.DrawFn) -> list[tuple[int, int, bytes]]:
    """PDVs as a peer might send them: real command sets cut anywhere, data, garbage."""
    pdvs: list[tuple[int, int, bytes]] = []
    for _ in range(draw(st.integers(1, 8))):
        context_id = draw(st.sampled_from([1, 1, 1, 3]))
        kind = draw(st.sampled_from(["command", "data", "garbage"]))
        if kind == "command":
            command = draw(st.sampled_from(_COMMANDS))
            cut = draw(st.integers(0, len(command)))
            if cut:
                pdvs.append((context_id, 0x01, command[:cut]))
            pdvs.append((context_id, 0x03, command[cut:]))
        elif kind == "data":
            pdvs.append(
                (context_id, draw(st.sampled_from([0x00, 0x02])), draw(st.binary(max_size=40)))
            )
        else:
            pdvs.append((context_id, draw(st.integers(0, 255)), draw(st.binary(max_size=40))))
    return pdvs


@given(pdv_streams())
def test_any_pdv_sequence_gives_messages_or_a_dimse_error(
    pdvs: list[tuple[int, int, bytes]],
) -> None:
    assembler = MessageAssembler()
    for context_id, control, fragment in pdvs:
        try:
            message = assembler.feed(context_id, control, memoryview(fragment))
        except DIMSEError:
            assert not assembler.in_progress  # clean again after an error
            return
        if message is not None:
            assert message.context_id == context_id
            assert isinstance(message.command["CommandField"], int)
            assert not assembler.in_progress


# -- data sets ---------------------------------------------------------------------------

LIMIT = NetConfig().max_inflated_data_set
TRANSFER_SYNTAXES = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]


def _sample_dataset() -> Dataset:
    dataset = Dataset()
    dataset.PatientName = "Doe^Jane"
    dataset.PatientID = "12345"
    dataset.Rows = 2
    dataset.PixelSpacing = [0.5, 0.5]
    item = Dataset()
    item.CodeValue = "121"
    dataset.ReferencedStudySequence = [item]
    dataset.add_new(0x00091010, "OB", b"\x01\x02")
    return dataset


_ENCODED = {ts: encode_dataset(_sample_dataset(), ts) for ts in TRANSFER_SYNTAXES}


@given(st.sampled_from(TRANSFER_SYNTAXES))
def test_data_sets_round_trip_in_every_transfer_syntax(transfer_syntax: str) -> None:
    encoded = _ENCODED[transfer_syntax]
    assert (
        encode_dataset(decode_dataset(encoded, transfer_syntax, LIMIT), transfer_syntax) == encoded
    )


@settings(max_examples=300)
@given(st.sampled_from(TRANSFER_SYNTAXES), st.sampled_from(TRANSFER_SYNTAXES), edits)
def test_mutated_data_sets_parse_whole_or_raise_dimse_error(
    encoded_in: str, read_as: str, changes: list[Edit]
) -> None:
    """Every value of what decode_dataset returns can be read: a malformed element is a
    DIMSEError there, not an exception of pydicom's later, in the application."""
    mutated = mutate(_ENCODED[encoded_in], changes)
    try:
        dataset = decode_dataset(mutated, read_as, LIMIT)
    except DIMSEError:
        return
    for element in dataset.iterall():
        str(element.value)


def test_malformed_value_is_a_dimse_error_of_decode_not_of_a_later_read() -> None:
    """Regression: pydicom converts values lazily, so a UL of 2 bytes used to come out as
    a Dataset whose first read raised pydicom's BytesLengthException."""
    raw = struct.pack("<HHL", 0x0008, 0x0000, 2) + b"\x01\x02"
    with pytest.raises(DIMSEError, match="cannot parse"):
        decode_dataset(raw, IMPLICIT_VR_LE, LIMIT)


def test_deflated_data_set_inflating_beyond_the_limit_is_a_dimse_error() -> None:
    """A deflate bomb: 64 KiB that inflate to 64 MiB must not be inflated whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = compressor.compress(bytes(64 << 20)) + compressor.flush()
    assert len(bomb) < 128 << 10

    def decode() -> None:
        decode_dataset(bomb, DEFLATED_EXPLICIT_VR_LE, max_length=1 << 20)

    with pytest.raises(DIMSEError, match="inflates to more than"):
        decode()
    assert peak_allocation(decode, DIMSEError) <= allocation_bound(len(bomb)) + (2 << 20)
