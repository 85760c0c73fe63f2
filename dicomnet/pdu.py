"""PDU and item codec for the DICOM upper layer (PS3.8 9.3, PS3.7 annex D.3.3).

Pure bytes in, dataclasses out and back: no sockets, threads or clocks. Every length is
checked against the buffer it claims to describe; a lie is a ``PDUError``, never an
IndexError or a large allocation. Unknown items are skipped and unknown user-information
sub-items are kept (PS3.8 9.3.1, D.2 note 2) so they can be logged and passed through.

The P-DATA-TF hot path has its own two functions (``iter_pdvs`` and
``pdata_header``) that work on memoryviews and never copy a fragment.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import DicomExceptionCode, PDUError
from .uids import APPLICATION_CONTEXT

# -- model ---------------------------------------------------------------------------


@dataclass
class PresentationContextRQ:
    """Presentation context item of an A-ASSOCIATE-RQ (20H)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: list[str] = field(default_factory=list)


@dataclass
class PresentationContextAC:
    """Presentation context item of an A-ASSOCIATE-AC (21H); result 0 = acceptance."""

    context_id: int
    result: int
    transfer_syntax: str = ""


@dataclass
class RoleSelection:
    """SCP/SCU role selection sub-item (54H)."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass
class SOPClassExtendedNegotiation:
    """SOP class extended negotiation sub-item (56H)."""

    sop_class_uid: str
    application_info: bytes


@dataclass
class SOPClassCommonExtendedNegotiation:
    """SOP class common extended negotiation sub-item (57H, request only)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: list[str] = field(default_factory=list)


@dataclass
class UserIdentityRQ:
    """User identity sub-item of the request (58H)."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""


@dataclass
class UserIdentityAC:
    """User identity sub-item of the accept (59H)."""

    server_response: bytes = b""


@dataclass
class UnknownSubItem:
    """A user-information sub-item this codec does not know; kept byte for byte."""

    item_type: int
    data: bytes


@dataclass
class UserInformation:
    """User information item (50H) and its sub-items, in the order they are encoded."""

    max_length: int | None = None
    implementation_class_uid: str = ""
    async_ops_window: tuple[int, int] | None = None  # (max invoked, max performed)
    role_selections: list[RoleSelection] = field(default_factory=list)
    implementation_version_name: str | None = None
    sop_class_extended: list[SOPClassExtendedNegotiation] = field(default_factory=list)
    sop_class_common_extended: list[SOPClassCommonExtendedNegotiation] = field(
        default_factory=list
    )
    user_identity_rq: UserIdentityRQ | None = None
    user_identity_ac: UserIdentityAC | None = None
    unknown: list[UnknownSubItem] = field(default_factory=list)


@dataclass
class AssociateRQ:
    """A-ASSOCIATE-RQ PDU (01H)."""

    called_ae: str
    calling_ae: str
    presentation_contexts: list[PresentationContextRQ] = field(default_factory=list)
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass
class AssociateAC:
    """A-ASSOCIATE-AC PDU (02H). AE titles echo the request (sent, not tested)."""

    called_ae: str
    calling_ae: str
    presentation_contexts: list[PresentationContextAC] = field(default_factory=list)
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass
class AssociateRJ:
    """A-ASSOCIATE-RJ PDU (03H)."""

    result: int
    source: int
    reason: int


@dataclass
class PDV:
    """One presentation data value: a command or data set fragment."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes | memoryview


@dataclass
class PDataTF:
    """P-DATA-TF PDU (04H)."""

    pdvs: list[PDV] = field(default_factory=list)


@dataclass
class ReleaseRQ:
    """A-RELEASE-RQ PDU (05H)."""


@dataclass
class ReleaseRP:
    """A-RELEASE-RP PDU (06H)."""


@dataclass
class Abort:
    """A-ABORT PDU (07H)."""

    source: int = 0
    reason: int = 0


PDU = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort

# -- P-DATA-TF hot path --------------------------------------------------------------

PDU_HEADER = struct.Struct(">BxL")  # type, reserved, length
_PDATA_ONE_PDV_HEADER = struct.Struct(">BxLLBB")  # PDU header + one PDV item header
_PDV_HEADER = struct.Struct(">LBB")  # item length, context id, control header
PDATA_ONE_PDV_OVERHEAD = _PDATA_ONE_PDV_HEADER.size  # 12 bytes before the fragment
PDV_OVERHEAD = _PDV_HEADER.size  # 6 bytes of a PDV item counted in the PDU length

CONTROL_COMMAND = 0x01
CONTROL_LAST = 0x02


def pdata_header(context_id: int, control: int, fragment_length: int) -> bytes:
    """Header of a P-DATA-TF PDU that carries exactly one PDV of ``fragment_length`` bytes.

    Sent before the fragment itself (scatter-gather), so the fragment is never copied.
    """
    return _PDATA_ONE_PDV_HEADER.pack(
        0x04, fragment_length + PDV_OVERHEAD, fragment_length + 2, context_id, control
    )


def iter_pdvs(body: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """Yield ``(context_id, control_header, fragment)`` for each PDV of a P-DATA-TF body.

    ``body`` is the PDU's variable field (after the 6-byte PDU header). Fragments are views
    into ``body``; nothing is copied.
    """
    offset, end = 0, len(body)
    if end == 0:
        raise PDUError("P-DATA-TF PDU without any PDV item", DicomExceptionCode.BadPDULength)
    while offset < end:
        if end - offset < PDV_OVERHEAD:
            raise PDUError(f"truncated PDV item header at offset {offset} of P-DATA-TF")
        item_length, context_id, control = _PDV_HEADER.unpack_from(body, offset)
        if item_length < 2 or item_length > end - offset - 4:
            raise PDUError(
                f"PDV item length {item_length} at offset {offset} does not fit the "
                f"{end}-byte P-DATA-TF body"
            )
        yield context_id, control, body[offset + PDV_OVERHEAD : offset + 4 + item_length]
        offset += 4 + item_length
