"""DIMSE command sets: codec, required fields and readable dumps (PS3.7 6.3, 9.3, 10.3, E).

A command set is a handful of group 0000 elements in implicit VR little endian
(PS3.7 6.3.1). It is encoded and decoded here with ``struct`` alone: this runs for every
message, and pydicom's general machinery is far slower than ten fixed-layout elements need.
pydicom is used only to hand command sets to the LEADTOOLS surface as data sets and to
name things in the readable dump.

Commands are plain dicts keyed by pydicom keyword (``{"CommandField": 0x0030,
"MessageID": 1, ...}``): str for UI/AE/LO/SH/CS/LT/IS, int for US/UL, list of ints for
AT and for US with VM 1-n. Decoding is strict on structure and tolerant on content, as
PS3.8/PS3.7 peers in the field need: elements in any order, unknown group 0000 elements
kept as raw bytes under ``"(0000,eeee)"``, a wrong Command Group Length logged and ignored.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..enums import DicomCommandPriorityType, DicomCommandType
from ..errors import DIMSEError
from .status import status_category, status_description

if TYPE_CHECKING:  # pydicom is imported where a data set is made: not for every program
    from pydicom.dataset import Dataset

logger = logging.getLogger("dicomnet.dimse")

NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0001
RESPONSE_BIT = 0x8000

# PS3.7 E.1, then the retired E.2 elements (decoded for tolerance, never needed to send).
COMMAND_DICTIONARY: dict[int, tuple[str, str]] = {
    0x00000000: ("CommandGroupLength", "UL"),
    0x00000002: ("AffectedSOPClassUID", "UI"),
    0x00000003: ("RequestedSOPClassUID", "UI"),
    0x00000100: ("CommandField", "US"),
    0x00000110: ("MessageID", "US"),
    0x00000120: ("MessageIDBeingRespondedTo", "US"),
    0x00000600: ("MoveDestination", "AE"),
    0x00000700: ("Priority", "US"),
    0x00000800: ("CommandDataSetType", "US"),
    0x00000900: ("Status", "US"),
    0x00000901: ("OffendingElement", "AT"),
    0x00000902: ("ErrorComment", "LO"),
    0x00000903: ("ErrorID", "US"),
    0x00001000: ("AffectedSOPInstanceUID", "UI"),
    0x00001001: ("RequestedSOPInstanceUID", "UI"),
    0x00001002: ("EventTypeID", "US"),
    0x00001005: ("AttributeIdentifierList", "AT"),
    0x00001008: ("ActionTypeID", "US"),
    0x00001020: ("NumberOfRemainingSuboperations", "US"),
    0x00001021: ("NumberOfCompletedSuboperations", "US"),
    0x00001022: ("NumberOfFailedSuboperations", "US"),
    0x00001023: ("NumberOfWarningSuboperations", "US"),
    0x00001030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x00001031: ("MoveOriginatorMessageID", "US"),
    # retired
    0x00000001: ("CommandLengthToEnd", "UL"),
    0x00000010: ("CommandRecognitionCode", "SH"),
    0x00000200: ("Initiator", "AE"),
    0x00000300: ("Receiver", "AE"),
    0x00000400: ("FindLocation", "AE"),
    0x00000850: ("NumberOfMatches", "US"),
    0x00000860: ("ResponseSequenceNumber", "US"),
    0x00004000: ("DialogReceiver", "LT"),
    0x00004010: ("TerminalType", "LT"),
    0x00005010: ("MessageSetID", "SH"),
    0x00005020: ("EndMessageID", "SH"),
    0x00005110: ("DisplayFormat", "LT"),
    0x00005120: ("PagePositionID", "LT"),
    0x00005130: ("TextFormatID", "CS"),
    0x00005140: ("NormalReverse", "CS"),
    0x00005150: ("AddGrayScale", "CS"),
    0x00005160: ("Borders", "CS"),
    0x00005170: ("Copies", "IS"),
    0x00005180: ("CommandMagnificationType", "CS"),
    0x00005190: ("Erase", "CS"),
    0x000051A0: ("Print", "CS"),
    0x000051B0: ("Overlays", "US"),
}
_MULTI_VALUED = frozenset({0x00000901, 0x00001005, 0x000051B0})  # VM 1-n
_SINGLE_VALUED_TAGS = frozenset(COMMAND_DICTIONARY) - _MULTI_VALUED
_TAG_OF_KEYWORD = {keyword: tag for tag, (keyword, _) in COMMAND_DICTIONARY.items()}
_SINGLE_US_TAGS = {
    keyword: tag
    for tag, (keyword, vr) in COMMAND_DICTIONARY.items()
    if vr == "US" and tag not in _MULTI_VALUED
}
_SINGLE_US_KEYWORDS = {tag: keyword for keyword, tag in _SINGLE_US_TAGS.items()}
_GROUP_LENGTH = 0x00000000

_ELEMENT_HEADER = struct.Struct("<HHL")  # group, element, value length
_UL = struct.Struct("<L")
# Whole elements packed at once: every message has several single US values.
_US_ELEMENT = struct.Struct("<HHLH")
_US_VALUE = struct.Struct("<H")
_GROUP_LENGTH_ELEMENT = struct.Struct("<HHLL")
_RAW_KEY = re.compile(r"\(0000,([0-9A-Fa-f]{4})\)")  # unknown elements, "(0000,eeee)"
_LO_LENGTH = 64  # PS3.5 6.2: a Long String holds at most 64 characters
_STRING_VRS = frozenset({"UI", "AE", "LO", "SH", "CS", "LT", "IS"})
_VALUE_STRUCTS = {"US": struct.Struct("<H"), "UL": _UL, "AT": struct.Struct("<HH")}


# -- encoding ---------------------------------------------------------------------


def encode_command_set(fields: Mapping[str, object]) -> bytes:
    """Encode a command set: implicit VR LE, ascending tags, Command Group Length first.

    ``None`` values are left out, a given CommandGroupLength is replaced by the computed
    one, and ``"(0000,eeee)"`` keys (as produced by ``decode_command_set`` for elements it
    does not know) are sent with their raw bytes value.
    """
    elements: list[tuple[int, bytes]] = []
    for keyword, value in fields.items():
        if value is None or keyword == "CommandGroupLength":
            continue
        tag = _SINGLE_US_TAGS.get(keyword)
        if tag is not None and type(value) is int and 0 <= value <= 0xFFFF:
            elements.append((tag, _US_ELEMENT.pack(0, tag, 2, value)))  # most elements
        elif type(value) is str:
            elements.append(_encode_text_element(keyword, value))
        else:
            elements.append(_encode_element(keyword, value))
    elements.sort()
    body = b"".join([element for _, element in elements])
    return _GROUP_LENGTH_ELEMENT.pack(0, _GROUP_LENGTH, 4, len(body)) + body


@functools.lru_cache(maxsize=256)
def _encode_text_element(keyword: str, value: str) -> tuple[int, bytes]:
    """``_encode_element`` of a text value, remembered: the same SOP class UIDs and AE
    titles go out in message after message."""
    return _encode_element(keyword, value)


def _encode_element(keyword: str, value: object) -> tuple[int, bytes]:
    """(tag, the whole element) of a value other than one US."""
    tag = _TAG_OF_KEYWORD.get(keyword)
    if tag is None:
        tag = _raw_tag(keyword)
        encoded = _raw_value(keyword, value)
    else:
        vr = COMMAND_DICTIONARY[tag][1]
        if vr in _STRING_VRS:
            encoded = _encode_string(keyword, vr, value)
        else:
            encoded = _encode_numbers(keyword, vr, _as_ints(keyword, value, tag))
    return tag, _ELEMENT_HEADER.pack(0, tag, len(encoded)) + encoded


def _encode_string(keyword: str, vr: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise DIMSEError(f"{keyword} ({vr}) needs a str, got {type(value).__name__}")
    try:
        encoded = value.encode("ascii")
    except UnicodeEncodeError:
        raise DIMSEError(f"{keyword} must use the default character repertoire") from None
    if vr == "LO":  # free text (Error Comment): a long one is cut, never refused
        encoded = encoded[:_LO_LENGTH]
    if len(encoded) % 2:
        encoded += b"\x00" if vr == "UI" else b" "
    return encoded


def _as_ints(keyword: str, value: object, tag: int) -> list[int]:
    """The value as a list of ints: one int, or a sequence of them for VM 1-n elements."""
    if tag in _MULTI_VALUED and isinstance(value, Sequence) and not isinstance(value, str):
        values = list(value)
    else:
        values = [value]
    numbers = [number for number in values if isinstance(number, int)]
    if len(numbers) != len(values):
        raise DIMSEError(f"{keyword} needs integer values, got {value!r}")
    return numbers


def _encode_numbers(keyword: str, vr: str, numbers: list[int]) -> bytes:
    item = _VALUE_STRUCTS[vr]
    try:
        if vr == "AT":  # each 0xGGGGEEEE tag goes as group then element
            return b"".join(item.pack(number >> 16, number & 0xFFFF) for number in numbers)
        return b"".join(item.pack(number) for number in numbers)
    except struct.error:
        raise DIMSEError(f"{keyword} ({vr}) cannot hold {numbers!r}") from None


def _raw_tag(keyword: str) -> int:
    """Tag of a ``"(0000,eeee)"`` key; anything else is an unknown keyword."""
    match = _RAW_KEY.fullmatch(keyword)
    if match is None:
        raise DIMSEError(f"{keyword!r} is not a command element keyword (PS3.7 E.1)")
    tag = int(match[1], 16)
    if tag in COMMAND_DICTIONARY:
        name = COMMAND_DICTIONARY[tag][0]
        raise DIMSEError(f"{keyword} is a known element: use the keyword {name}")
    return tag


def _raw_value(keyword: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise DIMSEError(f"{keyword} is an unknown element: its value must be bytes")
    raw = bytes(value)
    if len(raw) % 2:
        raise DIMSEError(f"{keyword} has an odd length ({len(raw)} bytes)")
    return raw


# -- decoding ---------------------------------------------------------------------


def decode_command_set(data: bytes | bytearray | memoryview) -> dict[str, object]:
    """Decode an implicit VR LE command set into a dict keyed by keyword.

    Raises ``DIMSEError`` for a structure that cannot be read: a truncated element, a
    value length that is odd or runs past the end, a tag outside group 0000, a value whose
    length does not suit its VR, or a duplicated element. The result has no
    CommandGroupLength; a group length that disagrees with the data is only logged.
    """
    view = memoryview(data).cast("B")
    end = len(view)
    if end == 0:
        raise DIMSEError("empty command set")
    fields: dict[str, object] = {}
    offset = 0
    while offset < end:
        if end - offset < _ELEMENT_HEADER.size:
            raise DIMSEError(f"truncated element header at offset {offset} of the command set")
        group, element, length = _ELEMENT_HEADER.unpack_from(view, offset)
        if group != 0:
            raise DIMSEError(
                f"element ({group:04X},{element:04X}) at offset {offset} is outside the "
                "command group 0000"
            )
        start = offset + _ELEMENT_HEADER.size
        if length % 2:
            raise DIMSEError(f"element (0000,{element:04X}) has odd value length {length}")
        if length > end - start:
            raise DIMSEError(
                f"element (0000,{element:04X}) at offset {offset} has value length {length}, "
                f"past the end of the {end}-byte command set"
            )
        offset = start + length
        key = _SINGLE_US_KEYWORDS.get(element)
        if key is not None and length == 2:
            decoded: object = _US_VALUE.unpack_from(view, start)[0]
        elif element == _GROUP_LENGTH:
            _check_group_length(view[start:offset], end - offset)
            continue
        elif element in _SINGLE_VALUED_TAGS:
            key, decoded = _decode_known_element(element, bytes(view[start:offset]))
        else:
            key, decoded = _decode_element(element, view[start:offset])
        if key in fields:
            raise DIMSEError(f"element {key} appears twice in the command set")
        fields[key] = decoded
    return fields


def _check_group_length(value: memoryview, actual: int) -> None:
    if len(value) != 4:
        raise DIMSEError(f"Command Group Length has {len(value)} bytes instead of 4")
    (stated,) = _UL.unpack(value)
    if stated != actual:
        # Some peers get this wrong; the PDV last-fragment bit delimits the command anyway.
        logger.debug("command group length says %d bytes, %d follow: ignored", stated, actual)


@functools.lru_cache(maxsize=256)
def _decode_known_element(tag: int, value: bytes) -> tuple[str, object]:
    """``_decode_element`` of a single-valued element of the dictionary (its value is
    immutable), remembered: the same UIDs and titles arrive in message after message."""
    return _decode_element(tag, memoryview(value))


def _decode_element(tag: int, value: memoryview) -> tuple[str, object]:
    entry = COMMAND_DICTIONARY.get(tag)
    if entry is None:
        key = f"(0000,{tag:04X})"
        logger.debug("unknown command element %s kept as raw bytes", key)
        return key, bytes(value)
    keyword, vr = entry
    if vr in _STRING_VRS:
        # latin-1 never fails: a peer's stray non-ASCII byte must not lose the message.
        return keyword, str(value, "latin-1").strip(" \x00")
    numbers = _decode_numbers(keyword, vr, value)
    if tag in _MULTI_VALUED:
        return keyword, numbers
    if len(numbers) > 1:
        raise DIMSEError(f"{keyword} ({vr}) has {len(value)} bytes: one value expected")
    return keyword, numbers[0] if numbers else None


def _decode_numbers(keyword: str, vr: str, value: memoryview) -> list[int]:
    item = _VALUE_STRUCTS[vr]
    if len(value) % item.size:
        raise DIMSEError(f"{keyword} ({vr}) has {len(value)} bytes, not a multiple of {item.size}")
    if vr == "AT":
        return [group << 16 | element for group, element in item.iter_unpack(value)]
    return [number for (number,) in item.iter_unpack(value)]


# -- data set view (LEADTOOLS OnReceiveData / SendData) --------------------------------

_COMMAND_SET_PREFIX = _ELEMENT_HEADER.size + _UL.size  # the Command Group Length element


def command_to_dataset(fields: Mapping[str, object]) -> Dataset:
    """The command as a pydicom ``Dataset`` (with its Command Group Length), VRs of E.1.

    The fields are validated exactly as ``encode_command_set`` would send them.
    """
    group_length = len(encode_command_set(fields)) - _COMMAND_SET_PREFIX
    from pydicom.dataset import Dataset

    dataset = Dataset()
    dataset.add_new(_GROUP_LENGTH, "UL", group_length)
    for keyword, value in fields.items():
        if value is None or keyword == "CommandGroupLength":
            continue
        tag = _TAG_OF_KEYWORD.get(keyword)
        if tag is None:
            dataset.add_new(_raw_tag(keyword), "UN", _raw_value(keyword, value))
        else:
            dataset.add_new(tag, COMMAND_DICTIONARY[tag][1], value)
    return dataset


def dataset_to_command(dataset: Dataset) -> dict[str, object]:
    """The command dict of a command-set ``Dataset`` (CommandGroupLength left out).

    Elements outside group 0000 are a ``DIMSEError``; unknown group 0000 elements must
    hold bytes and are kept under ``"(0000,eeee)"``.
    """
    fields: dict[str, object] = {}
    for element in dataset:
        tag = int(element.tag)
        if tag >> 16:
            raise DIMSEError(f"{element.tag} is not a command element (group 0000)")
        if tag == _GROUP_LENGTH:
            continue
        entry = COMMAND_DICTIONARY.get(tag)
        if entry is None:
            key = f"(0000,{tag:04X})"
            fields[key] = _raw_value(key, element.value)
            continue
        keyword, vr = entry
        value = _plain_value(keyword, vr, tag, element.value)
        if value is not None:
            fields[keyword] = value
    return fields


def _plain_value(keyword: str, vr: str, tag: int, value: object) -> object:
    """pydicom's UID/MultiValue/BaseTag values as the str/int/list the codec uses."""
    if value is None:
        return None
    if vr in _STRING_VRS:
        return str(value)
    if tag in _MULTI_VALUED:
        return [] if value == "" else [int(number) for number in _as_ints(keyword, value, tag)]
    return int(_as_ints(keyword, value, tag)[0])


# -- names, required fields and the readable dump ------------------------------------

_SERVICE_NAMES = {
    0x0001: "C-STORE",
    0x0010: "C-GET",
    0x0020: "C-FIND",
    0x0021: "C-MOVE",
    0x0030: "C-ECHO",
    0x0100: "N-EVENT-REPORT",
    0x0110: "N-GET",
    0x0120: "N-SET",
    0x0130: "N-ACTION",
    0x0140: "N-CREATE",
    0x0150: "N-DELETE",
}


def element_tag(keyword: str) -> int:
    """The tag of a command element named by its keyword (``"MessageID"`` -> 0x00000110)."""
    return _TAG_OF_KEYWORD[keyword]


def message_name(command_field: int) -> str:
    """``"C-STORE-RQ"``, ``"N-EVENT-REPORT-RSP"``, ``"C-CANCEL-RQ"``, or ``"unknown (0x....)"``."""
    if command_field == DicomCommandType.CCancel:
        return "C-CANCEL-RQ"
    service = _SERVICE_NAMES.get(command_field & ~RESPONSE_BIT)
    if service is None:
        return f"unknown (0x{command_field:04X})"
    return f"{service}-{'RSP' if command_field & RESPONSE_BIT else 'RQ'}"


def describe_command(fields: Mapping[str, object]) -> str:
    """A readable multi-line summary of a command, like DCMTK's DIMSE dump."""
    command_field = fields.get("CommandField")
    service_field = command_field if isinstance(command_field, int) else None
    lines = [command_title(command_field)]
    for key in sorted(fields, key=lambda key: (_TAG_OF_KEYWORD.get(key, 0x10000), key)):
        if key not in ("CommandField", "CommandDataSetType", "CommandGroupLength"):
            value = _describe_value(key, fields[key], service_field)
            lines.append(f"  {_label(key):<38}: {value}")
    data_set_type = fields.get("CommandDataSetType")
    if data_set_type is None:
        lines.append(f"  {'Data Set':<38}: not stated")
    else:
        lines.append(f"  {'Data Set':<38}: {'none' if data_set_type == NO_DATA_SET else 'present'}")
    return "\n".join(lines)


def command_title(command_field: object) -> str:
    """The message's name, or what is wrong with its Command Field."""
    if isinstance(command_field, int):
        return message_name(command_field)
    return "command set without Command Field"


def _label(key: str) -> str:
    tag = _TAG_OF_KEYWORD.get(key)
    from pydicom.datadict import dictionary_description

    return key if tag is None else dictionary_description(tag)


def _describe_value(key: str, value: object, command_field: int | None) -> str:
    tag = _TAG_OF_KEYWORD.get(key)
    vr = COMMAND_DICTIONARY[tag][1] if tag is not None else None
    if key == "Status" and isinstance(value, int) and 0 <= value <= 0xFFFF:
        meaning = status_description(value, command_field)
        return f"0x{value:04X} {status_category(value).value}: {meaning}"
    if key == "Priority" and isinstance(value, int) and value in set(DicomCommandPriorityType):
        return f"{value} ({DicomCommandPriorityType(value).name.upper()})"
    if vr == "UI" and isinstance(value, str):
        from pydicom.uid import UID

        name = UID(value).name
        return value if name == value else f"{value} ({name})"
    if vr == "AT" and isinstance(value, list):
        return ", ".join(f"({tag >> 16:04X},{tag & 0xFFFF:04X})" for tag in value)
    if isinstance(value, bytes):
        return f"{len(value)} bytes: {value.hex()}"
    return str(value)
