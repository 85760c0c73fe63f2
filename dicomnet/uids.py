"""UIDs the networking layer itself needs (PS3.6 annex A, PS3.7 annex A), and the one
check of UID syntax (PS3.5 9.1) that the whole package uses."""

from __future__ import annotations

import re

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"

UNCOMPRESSED_TRANSFER_SYNTAXES = (EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE)

# dicomnet's own implementation identification (PS3.7 D.3.3.2), sent in every association.
# A UUID-derived UID (PS3.5 B.2): unique without a registered root.
IMPLEMENTATION_CLASS_UID = "2.25.151351896214221844083447560951615999093"
IMPLEMENTATION_VERSION_NAME = "DICOMNET_010"

MAX_UID_LENGTH = 64
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def is_valid_uid(value: str, *, strict: bool = True) -> bool:
    """True for a UID as PS3.5 9.1 spells it: digit components joined by single dots, at
    most 64 characters, and (``strict``) no component with a leading zero.

    ``strict=False`` accepts leading zeros, which some devices send: use it for UIDs
    received from a peer (be tolerant in what you accept), never for UIDs you send.
    Either way such a value holds no path separator, no ".." and no space.
    """
    if len(value) > MAX_UID_LENGTH or _UID.fullmatch(value) is None:
        return False
    return not strict or not any(len(part) > 1 and part[0] == "0" for part in value.split("."))
