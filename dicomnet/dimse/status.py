"""DIMSE status codes: their class and meaning (PS3.7 annex C, PS3.4 service classes).

``status_category`` implements the class convention of the PS3.7 annex C preamble.
``status_description`` gives the meaning of the general codes (PS3.7 C.1-C.5) and of the
service-class codes of Storage (PS3.4 B.2.3), Query/Retrieve (PS3.4 C.4), Unified
Procedure Step (PS3.4 CC) and the Storage Commitment failure reasons (PS3.3 C.14.1.1).
Several service classes give the same code different meanings (B000 is "coercion" for
C-STORE and "sub-operations failed" for C-MOVE), so the message's command field may be
passed to pick the right one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..errors import DIMSEError


class StatusCategory(Enum):
    """The five status classes of PS3.7 annex C."""

    SUCCESS = "Success"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"
    PENDING = "Pending"


# "Error: cannot understand" of Storage and Query/Retrieve (PS3.4 B.2.3, C.4.1-C.4.3),
# a code LEADTOOLS' DicomCommandStatusType has no member for.
CANNOT_UNDERSTAND = 0xC000

_WARNING_CODES = frozenset({0x0001, 0x0107, 0x0116})
_PENDING_CODES = frozenset({0xFF00, 0xFF01})
_CANCEL = 0xFE00


def status_category(code: int) -> StatusCategory:
    """Class of a status code per the PS3.7 annex C preamble.

    Annex C forbids codes outside its table ("Implementations shall not use Status Codes
    with values not listed"); such a code cannot report success, so it counts as FAILURE.
    """
    _check_range(code)
    if code == 0x0000:
        return StatusCategory.SUCCESS
    if code in _WARNING_CODES or code >> 12 == 0xB:
        return StatusCategory.WARNING
    if code in _PENDING_CODES:
        return StatusCategory.PENDING
    if code == _CANCEL:
        return StatusCategory.CANCEL
    # Axxx, Cxxx, 01xx except the two warnings, 02xx, and every unlisted code.
    return StatusCategory.FAILURE


# PS3.7 annex C general codes (and the Storage Commitment failure reasons, PS3.3
# C.14.1.1, which reuse them plus 0131).
_GENERAL: dict[int, str] = {
    0x0000: "Success",
    0xFE00: "Cancel",
    0xFF00: "Pending",
    0x0001: "Warning",
    0x0107: "Attribute list error",
    0x0116: "Attribute Value out of range",
    0x0105: "No such Attribute",
    0x0106: "Invalid Attribute Value",
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP Instance",
    0x0112: "No such SOP Instance",
    0x0113: "No such Event Type",
    0x0114: "No such argument",
    0x0115: "Invalid argument value",
    0x0117: "Invalid SOP Instance",
    0x0118: "No such SOP Class",
    0x0119: "Class-Instance conflict",
    0x0120: "Missing Attribute",
    0x0121: "Missing Attribute Value",
    0x0122: "Refused: SOP Class not supported",
    0x0123: "No such Action Type",
    0x0124: "Refused: Not authorized",
    0x0131: "Duplicate transaction UID",
    0x0210: "Duplicate invocation",
    0x0211: "Unrecognized operation",
    0x0212: "Mistyped argument",
    0x0213: "Resource limitation",
}


@dataclass(frozen=True)
class _ServiceCodes:
    """Codes one service class defines: exact codes, and ranges keyed by the high byte."""

    name: str
    exact: dict[int, str]
    ranges: dict[int, str] = field(default_factory=dict)  # 0xA7 -> meaning of A7xx

    def meaning(self, code: int) -> str | None:
        return self.exact.get(code) or self.ranges.get(code >> 8)


_CXXX = range(0xC0, 0xD0)
_STORAGE = _ServiceCodes(
    "C-STORE",
    {
        0xB000: "Coercion of Data Elements",
        0xB006: "Elements Discarded",
        0xB007: "Data Set does not match SOP Class",
    },
    {
        0xA7: "Refused: Out of resources",
        0xA9: "Error: Data Set does not match SOP Class",
        **dict.fromkeys(_CXXX, "Error: Cannot understand"),
    },
)
_QR_FAILED = dict.fromkeys(_CXXX, "Failed: Unable to process")
_FIND = _ServiceCodes(
    "C-FIND",
    {
        0x0000: "Matching is complete",
        0xA700: "Refused: Out of resources",
        0xA900: "Error: Data Set does not match SOP Class",
        0xFE00: "Matching terminated due to Cancel request",
        0xFF00: "Matches are continuing, current match supplied",
        0xFF01: "Matches are continuing, one or more Optional Keys were not supported",
    },
    _QR_FAILED,
)
_RETRIEVE = {
    0x0000: "Sub-operations complete, no failures",
    0xA701: "Refused: Out of resources, unable to calculate number of matches",
    0xA702: "Refused: Out of resources, unable to perform sub-operations",
    0xA900: "Error: Data Set does not match SOP Class",
    0xFE00: "Sub-operations terminated due to Cancel indication",
    0xFF00: "Sub-operations are continuing",
}
_MOVE = _ServiceCodes(
    "C-MOVE",
    {
        **_RETRIEVE,
        0xA801: "Refused: Move Destination unknown",
        0xB000: "Sub-operations complete, one or more failures",
    },
    _QR_FAILED,
)
_GET = _ServiceCodes(
    "C-GET",
    {**_RETRIEVE, 0xB000: "Sub-operations complete, one or more failures or warnings"},
    _QR_FAILED,
)
# Unified Procedure Step (PS3.4 CC): the DIMSE-N service class with codes of its own.
_UPS = _ServiceCodes(
    "UPS",
    {
        0xB300: "The UPS was created with modifications",
        0xB301: "Deletion Lock not granted",
        0xB304: "The UPS is already in the requested state of CANCELED",
        0xB305: "Coerced invalid values to valid values",
        0xB306: "The UPS is already in the requested state of COMPLETED",
        0xC300: "The UPS may no longer be updated",
        0xC301: "The correct Transaction UID was not provided",
        0xC302: "The UPS is already IN PROGRESS",
        0xC303: "The UPS may only become SCHEDULED via N-CREATE, not N-SET or N-ACTION",
        0xC304: "The UPS has not met final state requirements for the requested state change",
        0xC307: "Specified SOP Instance UID does not exist or is not a UPS Instance managed "
        "by this SCP",
        0xC308: "Receiving AE-TITLE is unknown to this SCP",
        0xC309: "The provided value of UPS State was not SCHEDULED",
        0xC310: "The UPS is not yet in the IN PROGRESS state",
        0xC311: "The UPS is already COMPLETED",
        0xC312: "The performer cannot be contacted",
        0xC313: "Performer chooses not to cancel",
        0xC314: "Specified action not appropriate for specified instance",
        0xC315: "SCP does not support Event Reports",
    },
)
_SERVICES = (_STORAGE, _FIND, _MOVE, _GET, _UPS)
# Request command field -> the service class whose codes its responses use.
_SERVICE_OF_COMMAND: dict[int, _ServiceCodes] = {
    0x0001: _STORAGE,
    0x0020: _FIND,
    0x0021: _MOVE,
    0x0010: _GET,
    **dict.fromkeys((0x0100, 0x0110, 0x0120, 0x0130, 0x0140, 0x0150), _UPS),
}


def status_description(code: int, command_field: int | None = None) -> str:
    """Meaning of a status code, e.g. ``"Refused: SOP Class not supported"``.

    With ``command_field`` (request or response value) the service class of that message
    decides; without it, a service-class code lists every service's meaning
    ("C-STORE: ...; C-MOVE: ..."). A code nobody defines gives its class and
    "unknown status code".
    """
    _check_range(code)
    if command_field is not None:
        service = _SERVICE_OF_COMMAND.get(command_field & 0x7FFF)
        meaning = service.meaning(code) if service else None
        return meaning or _GENERAL.get(code) or _unknown(code)
    if code in _GENERAL:
        return _GENERAL[code]
    services_by_meaning: dict[str, list[str]] = {}
    for service in _SERVICES:
        meaning = service.meaning(code)
        if meaning:
            services_by_meaning.setdefault(meaning, []).append(service.name)
    if not services_by_meaning:
        return _unknown(code)
    return "; ".join(
        f"{'/'.join(names)}: {meaning}" for meaning, names in services_by_meaning.items()
    )


def _unknown(code: int) -> str:
    return f"{status_category(code).value}: unknown status code"


def _check_range(code: int) -> None:
    if not 0 <= code <= 0xFFFF:
        raise DIMSEError(f"status {code} is not a 16-bit value")
