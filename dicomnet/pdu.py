"""PDU and item codec for the DICOM upper layer (PS3.8 9.3, PS3.7 annex D.3.3).

Pure bytes in, dataclasses out and back: no sockets, threads or clocks. Every length is
checked against the buffer it claims to describe; a lie is a ``PDUError``, never an
IndexError or a large allocation. Unknown items are skipped and unknown user-information
sub-items are kept (PS3.8 9.3.1, D.2 note 2) so they can be logged and passed through.

The P-DATA-TF hot path has its own two functions (``split_pdvs`` and
``pdata_header``) that work on memoryviews and never copy a fragment.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from .enums import DicomPduType, describe_reject
from .errors import DicomExceptionCode, PDUError
from .uids import APPLICATION_CONTEXT, MAX_UID_LENGTH, is_valid_uid

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
    sop_class_common_extended: list[SOPClassCommonExtendedNegotiation] = field(default_factory=list)
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
PDV_HEADER = struct.Struct(">LBB")  # item length, context id, control header
PDV_OVERHEAD = PDV_HEADER.size  # 6 bytes of a PDV item counted in the PDU length

CONTROL_COMMAND = 0x01
CONTROL_LAST = 0x02


def pdata_header(context_id: int, control: int, fragment_length: int) -> bytes:
    """Header of a P-DATA-TF PDU that carries exactly one PDV of ``fragment_length`` bytes.

    Sent before the fragment itself (scatter-gather), so the fragment is never copied.
    """
    return _PDATA_ONE_PDV_HEADER.pack(
        0x04, fragment_length + PDV_OVERHEAD, fragment_length + 2, context_id, control
    )


def split_pdvs(body: memoryview) -> list[tuple[int, int, memoryview]]:
    """``(context_id, control_header, fragment)`` for each PDV of a P-DATA-TF body.

    ``body`` is the PDU's variable field (after the 6-byte PDU header). Fragments are views
    into ``body``; nothing is copied. A list, not a generator: nearly every PDU holds
    one PDV, and this runs once per PDU.
    """
    offset, end = 0, len(body)
    if end == 0:
        raise PDUError("P-DATA-TF PDU without any PDV item", DicomExceptionCode.BadPDULength)
    pdvs = []
    while offset < end:
        if end - offset < PDV_OVERHEAD:
            raise PDUError(f"truncated PDV item header at offset {offset} of P-DATA-TF")
        item_length, context_id, control = PDV_HEADER.unpack_from(body, offset)
        if item_length < 2 or item_length > end - offset - 4:
            raise PDUError(
                f"PDV item length {item_length} at offset {offset} does not fit the "
                f"{end}-byte P-DATA-TF body"
            )
        pdvs.append((context_id, control, body[offset + PDV_OVERHEAD : offset + 4 + item_length]))
        offset += 4 + item_length
    return pdvs


# -- framing ---------------------------------------------------------------------------


def read_pdu_header(data: bytes | memoryview) -> tuple[int, int]:
    """Return ``(pdu_type, pdu_length)`` from the first 6 bytes of ``data`` (PS3.8 9.3.1)."""
    pdu_type, pdu_length = PDU_HEADER.unpack_from(data)
    return pdu_type, pdu_length


# -- layouts and names shared by encoder, decoder and dump -----------------------------

_ITEM_HEADER = struct.Struct(">BxH")  # item type, reserved, item length
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">L")
_ASSOCIATE_FIXED = struct.Struct(">Hxx16s16s32x")  # version, reserved, AE titles, reserved
_CONTEXT_RQ_FIXED = struct.Struct(">Bxxx")  # context id, 3 reserved bytes
_CONTEXT_AC_FIXED = struct.Struct(">BxBx")  # context id, reserved, result/reason, reserved
_RJ_BODY = struct.Struct(">xBBB")  # reserved, result, source, reason
_ABORT_BODY = struct.Struct(">xxBB")  # 2 reserved, source, reason
_ASYNC_WINDOW = struct.Struct(">HH")  # max operations invoked, max operations performed
_ROLES = struct.Struct(">BB")  # SCU role, SCP role
_IDENTITY_FIXED = struct.Struct(">BB")  # user identity type, positive response requested

_FIXED_BODY_LENGTH = 4  # RJ, release and abort PDUs
_MAX_AE_TITLE = 16
_MAX_VERSION_NAME = 16
_MAX_ITEM_LENGTH = 0xFFFF

_ITEM_NAMES = {
    0x10: "application context item (10H)",
    0x20: "presentation context item (20H)",
    0x21: "presentation context item (21H)",
    0x30: "abstract syntax sub-item (30H)",
    0x40: "transfer syntax sub-item (40H)",
    0x50: "user information item (50H)",
    0x51: "maximum length sub-item (51H)",
    0x52: "implementation class UID sub-item (52H)",
    0x53: "asynchronous operations window sub-item (53H)",
    0x54: "SCP/SCU role selection sub-item (54H)",
    0x55: "implementation version name sub-item (55H)",
    0x56: "SOP class extended negotiation sub-item (56H)",
    0x57: "SOP class common extended negotiation sub-item (57H)",
    0x58: "user identity sub-item (58H)",
    0x59: "user identity response sub-item (59H)",
}

_PDU_NAMES = {
    DicomPduType.AssociateRequest: "A-ASSOCIATE-RQ",
    DicomPduType.AssociateAccept: "A-ASSOCIATE-AC",
    DicomPduType.AssociateReject: "A-ASSOCIATE-RJ",
    DicomPduType.DataTransfer: "P-DATA-TF",
    DicomPduType.ReleaseRequest: "A-RELEASE-RQ",
    DicomPduType.ReleaseResponse: "A-RELEASE-RP",
    DicomPduType.Abort: "A-ABORT",
}


def _item_name(item_type: int) -> str:
    return _ITEM_NAMES.get(item_type, f"unknown item ({item_type:02X}H)")


# -- encoding: strict -------------------------------------------------------------------


def encode_pdu(pdu: PDU) -> bytes:
    """The whole PDU, 6-byte header included, as PS3.8 9.3 says to send it.

    AE titles are space padded, UIDs unpadded, user-information sub-items in ascending
    type order and reserved fields zero. A value that cannot be sent is a ``PDUError``.
    """
    try:
        pdu_type, body = _encode_body(pdu)
    except struct.error as exc:  # an integer field out of its range
        raise _bad_value(f"cannot encode {type(pdu).__name__}: {exc}") from None
    return PDU_HEADER.pack(pdu_type, len(body)) + body


def _encode_body(pdu: PDU) -> tuple[int, bytes]:
    match pdu:
        case AssociateRQ():
            contexts = [_encode_context_rq(context) for context in pdu.presentation_contexts]
            return DicomPduType.AssociateRequest, _encode_associate(pdu, contexts)
        case AssociateAC():
            contexts = [_encode_context_ac(context) for context in pdu.presentation_contexts]
            return DicomPduType.AssociateAccept, _encode_associate(pdu, contexts)
        case AssociateRJ():
            return DicomPduType.AssociateReject, _RJ_BODY.pack(pdu.result, pdu.source, pdu.reason)
        case PDataTF():
            return DicomPduType.DataTransfer, _encode_pdata(pdu)
        case ReleaseRQ():
            return DicomPduType.ReleaseRequest, bytes(_FIXED_BODY_LENGTH)
        case ReleaseRP():
            return DicomPduType.ReleaseResponse, bytes(_FIXED_BODY_LENGTH)
        case Abort():
            return DicomPduType.Abort, _ABORT_BODY.pack(pdu.source, pdu.reason)
    raise _bad_value(f"not a PDU: {pdu!r}")


def _bad_value(message: str) -> PDUError:
    return PDUError(message, DicomExceptionCode.Parameter)


def _ascii(text: str, what: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise _bad_value(f"{what} {text!r} is not ASCII") from None


def _encode_ae_title(title: str, what: str) -> bytes:
    """16 bytes, space padded; 16 spaces ("no name") shall not be used (PS3.8 9.3.2)."""
    stripped = title.strip(" ")
    if not stripped:
        raise _bad_value(f"{what} AE title is empty")
    if len(stripped) > _MAX_AE_TITLE:
        raise _bad_value(f"{what} AE title {stripped!r} is longer than {_MAX_AE_TITLE}")
    if not stripped.isprintable():
        raise _bad_value(f"{what} AE title {stripped!r} has control characters")
    return _ascii(stripped, f"{what} AE title").ljust(_MAX_AE_TITLE, b" ")


def _encode_uid(uid: str, what: str) -> bytes:
    """A UID the way PS3.8 annex F wants it in an item: no padding of any kind."""
    if len(uid) > MAX_UID_LENGTH:
        raise _bad_value(f"{what} {uid!r} is longer than {MAX_UID_LENGTH} characters")
    return _ascii(uid, what)


def _encode_version_name(name: str) -> bytes:
    if not 1 <= len(name) <= _MAX_VERSION_NAME:
        raise _bad_value(
            f"implementation version name {name!r} must have 1 to {_MAX_VERSION_NAME} characters"
        )
    return _ascii(name, "implementation version name")


def _item(item_type: int, payload: bytes) -> bytes:
    if len(payload) > _MAX_ITEM_LENGTH:
        raise _bad_value(f"{_item_name(item_type)} would be {len(payload)} bytes long")
    return _ITEM_HEADER.pack(item_type, len(payload)) + payload


def _u16_prefixed(value: bytes) -> bytes:
    if len(value) > _MAX_ITEM_LENGTH:
        raise _bad_value(f"a {len(value)}-byte field does not fit its 2-byte length")
    return _U16.pack(len(value)) + value


def _encode_associate(pdu: AssociateRQ | AssociateAC, contexts: list[bytes]) -> bytes:
    """RQ and AC share one layout; an AC's AE titles echo the request (PS3.8 9.3.3)."""
    fixed = _ASSOCIATE_FIXED.pack(
        pdu.protocol_version,
        _encode_ae_title(pdu.called_ae, "called"),
        _encode_ae_title(pdu.calling_ae, "calling"),
    )
    application_context = _item(
        0x10, _encode_uid(pdu.application_context, "application context name")
    )
    user_information = _encode_user_information(pdu.user_information)
    return b"".join([fixed, application_context, *contexts, user_information])


def _encode_context_rq(context: PresentationContextRQ) -> bytes:
    parts = [
        _CONTEXT_RQ_FIXED.pack(context.context_id),
        _item(0x30, _encode_uid(context.abstract_syntax, "abstract syntax")),
    ]
    parts.extend(
        _item(0x40, _encode_uid(uid, "transfer syntax")) for uid in context.transfer_syntaxes
    )
    return _item(0x20, b"".join(parts))


def _encode_context_ac(context: PresentationContextAC) -> bytes:
    fixed = _CONTEXT_AC_FIXED.pack(context.context_id, context.result)
    transfer_syntax = _item(0x40, _encode_uid(context.transfer_syntax, "transfer syntax"))
    return _item(0x21, fixed + transfer_syntax)


def _encode_user_information(info: UserInformation) -> bytes:
    """Sub-items in ascending type order, which some older peers expect (PS3.8 9.3.2.3)."""
    parts: list[bytes] = []
    if info.max_length is not None:
        parts.append(_item(0x51, _U32.pack(info.max_length)))
    if info.implementation_class_uid:
        uid = _encode_uid(info.implementation_class_uid, "implementation class UID")
        parts.append(_item(0x52, uid))
    if info.async_ops_window is not None:
        parts.append(_item(0x53, _ASYNC_WINDOW.pack(*info.async_ops_window)))
    parts.extend(_encode_role_selection(role) for role in info.role_selections)
    if info.implementation_version_name is not None:
        parts.append(_item(0x55, _encode_version_name(info.implementation_version_name)))
    parts.extend(_encode_extended(item) for item in info.sop_class_extended)
    parts.extend(_encode_common_extended(item) for item in info.sop_class_common_extended)
    if info.user_identity_rq is not None:
        parts.append(_encode_user_identity_rq(info.user_identity_rq))
    if info.user_identity_ac is not None:
        parts.append(_item(0x59, _u16_prefixed(bytes(info.user_identity_ac.server_response))))
    parts.extend(_item(item.item_type, bytes(item.data)) for item in info.unknown)
    return _item(0x50, b"".join(parts))


def _encode_role_selection(role: RoleSelection) -> bytes:
    uid = _encode_uid(role.sop_class_uid, "role selection SOP class UID")
    return _item(0x54, _u16_prefixed(uid) + _ROLES.pack(role.scu_role, role.scp_role))


def _encode_extended(item: SOPClassExtendedNegotiation) -> bytes:
    uid = _encode_uid(item.sop_class_uid, "extended negotiation SOP class UID")
    return _item(0x56, _u16_prefixed(uid) + bytes(item.application_info))


def _encode_common_extended(item: SOPClassCommonExtendedNegotiation) -> bytes:
    related = b"".join(
        _u16_prefixed(_encode_uid(uid, "related general SOP class UID"))
        for uid in item.related_general_sop_classes
    )
    payload = (
        _u16_prefixed(_encode_uid(item.sop_class_uid, "common extended SOP class UID"))
        + _u16_prefixed(_encode_uid(item.service_class_uid, "service class UID"))
        + _u16_prefixed(related)
    )
    return _item(0x57, payload)  # the "reserved" header byte is sub-item version 0 here


def _encode_user_identity_rq(identity: UserIdentityRQ) -> bytes:
    payload = (
        _IDENTITY_FIXED.pack(identity.identity_type, identity.positive_response_requested)
        + _u16_prefixed(bytes(identity.primary_field))
        + _u16_prefixed(bytes(identity.secondary_field))
    )
    return _item(0x58, payload)


def _encode_pdata(pdu: PDataTF) -> bytes:
    """PDV items back to back (PS3.8 9.3.5); empty PDUs and fragments shall not be sent."""
    if not pdu.pdvs:
        raise _bad_value("a P-DATA-TF PDU needs at least one PDV")
    parts: list[bytes | memoryview] = []
    for pdv in pdu.pdvs:
        if not len(pdv.data):
            raise _bad_value(f"empty PDV fragment for presentation context {pdv.context_id}")
        control = (CONTROL_COMMAND if pdv.is_command else 0) | (CONTROL_LAST if pdv.is_last else 0)
        parts.append(PDV_HEADER.pack(len(pdv.data) + 2, pdv.context_id, control))
        parts.append(pdv.data)
    return b"".join(parts)


# -- decoding: tolerant, but every length checked ---------------------------------------


def decode_pdu(data: bytes | memoryview) -> PDU:
    """Decode exactly one whole PDU (header included) as PS3.8 9.3 says to receive it.

    Reserved fields are not tested, unknown items skipped, unknown user-information
    sub-items kept, and items the standard requires are not demanded: the negotiation
    layer decides what is missing. P-DATA-TF fragments are views into ``data``.
    """
    view = memoryview(data)
    if len(view) < PDU_HEADER.size:
        raise PDUError(f"{len(view)}-byte PDU is shorter than the 6-byte PDU header")
    pdu_type, pdu_length = PDU_HEADER.unpack_from(view)
    decoder = _PDU_DECODERS.get(pdu_type)
    if decoder is None:
        raise PDUError(f"unrecognized PDU type {pdu_type:02X}H", DicomExceptionCode.BadPDUType)
    if pdu_length != len(view) - PDU_HEADER.size:
        raise PDUError(
            f"{_PDU_NAMES[DicomPduType(pdu_type)]} PDU-length {pdu_length} does not match "
            f"the {len(view) - PDU_HEADER.size} bytes after its header"
        )
    return decoder(view[PDU_HEADER.size :])


def _decode_text(raw: memoryview) -> str:
    """Latin-1 never fails, so odd bytes from a peer reach the negotiation layer intact."""
    return bytes(raw).decode("latin-1")


def _decode_uid(raw: memoryview) -> str:
    # Some peers pad UIDs to even length with NUL or space, as in data sets.
    return _decode_text(raw).rstrip("\0 ")


def _decode_ae_title(raw: bytes) -> str:
    return raw.decode("latin-1").strip(" ")


def _iter_items(buffer: memoryview, where: str) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(item_type, payload)`` for each item or sub-item packed in ``buffer``."""
    offset, end = 0, len(buffer)
    while offset < end:
        if end - offset < _ITEM_HEADER.size:
            raise PDUError(f"truncated item header at offset {offset} of {where}")
        item_type, item_length = _ITEM_HEADER.unpack_from(buffer, offset)
        start = offset + _ITEM_HEADER.size
        if item_length > end - start:
            raise PDUError(
                f"{_item_name(item_type)} at offset {offset} of {where} claims "
                f"{item_length} bytes but only {end - start} remain"
            )
        yield item_type, buffer[start : start + item_length]
        offset = start + item_length


def _read_u16_prefixed(
    buffer: memoryview, offset: int, where: str, field_name: str
) -> tuple[memoryview, int]:
    """Read a 2-byte length and the field it announces; return the field and the next offset."""
    if len(buffer) - offset < _U16.size:
        raise PDUError(f"{where}: {field_name} length is missing or truncated")
    (length,) = _U16.unpack_from(buffer, offset)
    start = offset + _U16.size
    if length > len(buffer) - start:
        raise PDUError(
            f"{where}: {field_name} length {length} exceeds the {len(buffer) - start} "
            "bytes left in the sub-item"
        )
    return buffer[start : start + length], start + length


def _expect_end(buffer: memoryview, offset: int, where: str) -> None:
    if offset != len(buffer):
        raise PDUError(
            f"{where}: its length says {len(buffer)} bytes but its fields end at {offset}"
        )


def _expect_length(buffer: memoryview, length: int, where: str) -> None:
    if len(buffer) != length:
        raise PDUError(f"{where} has length {len(buffer)}, expected {length}")


def _check_fixed_body(body: memoryview, pdu_type: DicomPduType) -> None:
    _expect_length(body, _FIXED_BODY_LENGTH, f"{_PDU_NAMES[pdu_type]} PDU")


def _decode_reject(body: memoryview) -> AssociateRJ:
    _check_fixed_body(body, DicomPduType.AssociateReject)
    result, source, reason = _RJ_BODY.unpack_from(body)
    return AssociateRJ(result, source, reason)


def _decode_release_rq(body: memoryview) -> ReleaseRQ:
    _check_fixed_body(body, DicomPduType.ReleaseRequest)
    return ReleaseRQ()


def _decode_release_rp(body: memoryview) -> ReleaseRP:
    _check_fixed_body(body, DicomPduType.ReleaseResponse)
    return ReleaseRP()


def _decode_abort(body: memoryview) -> Abort:
    _check_fixed_body(body, DicomPduType.Abort)
    source, reason = _ABORT_BODY.unpack_from(body)
    return Abort(source, reason)


def _decode_pdata(body: memoryview) -> PDataTF:
    return PDataTF(
        [
            PDV(context_id, bool(control & CONTROL_COMMAND), bool(control & CONTROL_LAST), data)
            for context_id, control, data in split_pdvs(body)
        ]
    )


@dataclass
class _AssociateParts:
    """What an A-ASSOCIATE-RQ and -AC have in common, before the PDU class is chosen."""

    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str
    contexts: list[memoryview]
    user_information: UserInformation


def _decode_associate_parts(body: memoryview, pdu_type: DicomPduType) -> _AssociateParts:
    where = _PDU_NAMES[pdu_type]
    if len(body) < _ASSOCIATE_FIXED.size:
        raise PDUError(f"{where} is shorter than its {_ASSOCIATE_FIXED.size}-byte fixed part")
    version, called, calling = _ASSOCIATE_FIXED.unpack_from(body)
    context_type = 0x20 if pdu_type == DicomPduType.AssociateRequest else 0x21
    application_context: str | None = None
    user_information: UserInformation | None = None
    contexts: list[memoryview] = []
    for item_type, payload in _iter_items(body[_ASSOCIATE_FIXED.size :], where):
        if item_type == context_type:
            contexts.append(payload)
        elif item_type == 0x10:
            _reject_duplicate(application_context, item_type, where)
            application_context = _decode_uid(payload)
        elif item_type == 0x50:
            _reject_duplicate(user_information, item_type, where)
            user_information = _decode_user_information(payload)
        # any other item type is skipped (PS3.8 9.3.1)
    return _AssociateParts(
        version,
        _decode_ae_title(called),
        _decode_ae_title(calling),
        application_context or "",
        contexts,
        user_information or UserInformation(),
    )


def _reject_duplicate(already: object, item_type: int, where: str) -> None:
    if already is not None:
        raise _duplicate(item_type, where)


def _duplicate(item_type: int, where: str) -> PDUError:
    return PDUError(f"more than one {_item_name(item_type)} in {where}")


def _decode_associate_rq(body: memoryview) -> AssociateRQ:
    parts = _decode_associate_parts(body, DicomPduType.AssociateRequest)
    return AssociateRQ(
        parts.called_ae,
        parts.calling_ae,
        [_decode_context_rq(item, index) for index, item in enumerate(parts.contexts, 1)],
        parts.user_information,
        parts.application_context,
        parts.protocol_version,
    )


def _decode_associate_ac(body: memoryview) -> AssociateAC:
    parts = _decode_associate_parts(body, DicomPduType.AssociateAccept)
    return AssociateAC(
        parts.called_ae,
        parts.calling_ae,
        [_decode_context_ac(item, index) for index, item in enumerate(parts.contexts, 1)],
        parts.user_information,
        parts.application_context,
        parts.protocol_version,
    )


def _decode_context_rq(payload: memoryview, index: int) -> PresentationContextRQ:
    where = f"presentation context item (20H) #{index}"
    if len(payload) < _CONTEXT_RQ_FIXED.size:
        raise PDUError(f"{where} is shorter than its {_CONTEXT_RQ_FIXED.size}-byte fixed part")
    (context_id,) = _CONTEXT_RQ_FIXED.unpack_from(payload)
    abstract_syntax: str | None = None
    transfer_syntaxes: list[str] = []
    for item_type, sub_item in _iter_items(payload[_CONTEXT_RQ_FIXED.size :], where):
        if item_type == 0x30:
            _reject_duplicate(abstract_syntax, item_type, where)
            abstract_syntax = _decode_uid(sub_item)
        elif item_type == 0x40:
            transfer_syntaxes.append(_decode_uid(sub_item))
    return PresentationContextRQ(context_id, abstract_syntax or "", transfer_syntaxes)


def _decode_context_ac(payload: memoryview, index: int) -> PresentationContextAC:
    where = f"presentation context item (21H) #{index}"
    if len(payload) < _CONTEXT_AC_FIXED.size:
        raise PDUError(f"{where} is shorter than its {_CONTEXT_AC_FIXED.size}-byte fixed part")
    context_id, result = _CONTEXT_AC_FIXED.unpack_from(payload)
    transfer_syntax: str | None = None
    for item_type, sub_item in _iter_items(payload[_CONTEXT_AC_FIXED.size :], where):
        if item_type == 0x40:
            _reject_duplicate(transfer_syntax, item_type, where)
            transfer_syntax = _decode_uid(sub_item)
    return PresentationContextAC(context_id, result, transfer_syntax or "")


def _decode_user_information(payload: memoryview) -> UserInformation:
    """Sub-items may come in any order (PS3.8 9.3.2.3); unknown ones are kept (D.2)."""
    where = _item_name(0x50)
    info = UserInformation()
    seen: set[int] = set()
    for item_type, sub_item in _iter_items(payload, where):
        decoder = _SUB_ITEM_DECODERS.get(item_type)
        if decoder is None:
            info.unknown.append(UnknownSubItem(item_type, bytes(sub_item)))
            continue
        if item_type in _SINGLE_SUB_ITEMS:
            if item_type in seen:
                raise _duplicate(item_type, where)
            seen.add(item_type)
        decoder(info, sub_item, _item_name(item_type))
    return info


def _decode_max_length(info: UserInformation, sub_item: memoryview, where: str) -> None:
    _expect_length(sub_item, _U32.size, where)
    (info.max_length,) = _U32.unpack_from(sub_item)


def _decode_implementation_uid(info: UserInformation, sub_item: memoryview, where: str) -> None:
    info.implementation_class_uid = _decode_uid(sub_item)


def _decode_async_window(info: UserInformation, sub_item: memoryview, where: str) -> None:
    _expect_length(sub_item, _ASYNC_WINDOW.size, where)
    invoked, performed = _ASYNC_WINDOW.unpack_from(sub_item)
    info.async_ops_window = (invoked, performed)


def _decode_role_selection(info: UserInformation, sub_item: memoryview, where: str) -> None:
    uid, offset = _read_u16_prefixed(sub_item, 0, where, "SOP class UID")
    _expect_end(sub_item, offset + _ROLES.size, where)
    scu_role, scp_role = _ROLES.unpack_from(sub_item, offset)
    info.role_selections.append(RoleSelection(_decode_uid(uid), scu_role != 0, scp_role != 0))


def _decode_version_name(info: UserInformation, sub_item: memoryview, where: str) -> None:
    info.implementation_version_name = _decode_text(sub_item).rstrip("\0 ")


def _decode_extended(info: UserInformation, sub_item: memoryview, where: str) -> None:
    uid, offset = _read_u16_prefixed(sub_item, 0, where, "SOP class UID")
    info.sop_class_extended.append(
        SOPClassExtendedNegotiation(_decode_uid(uid), bytes(sub_item[offset:]))
    )


def _decode_common_extended(info: UserInformation, sub_item: memoryview, where: str) -> None:
    sop_class, offset = _read_u16_prefixed(sub_item, 0, where, "SOP class UID")
    service_class, offset = _read_u16_prefixed(sub_item, offset, where, "service class UID")
    related, _ = _read_u16_prefixed(sub_item, offset, where, "related general SOP classes")
    # Bytes after the related list are reserved for later sub-item versions (D.3.3.6).
    related_uids: list[str] = []
    related_offset = 0
    while related_offset < len(related):
        uid, related_offset = _read_u16_prefixed(
            related, related_offset, where, "related general SOP class UID"
        )
        related_uids.append(_decode_uid(uid))
    info.sop_class_common_extended.append(
        SOPClassCommonExtendedNegotiation(
            _decode_uid(sop_class), _decode_uid(service_class), related_uids
        )
    )


def _decode_user_identity_rq(info: UserInformation, sub_item: memoryview, where: str) -> None:
    if len(sub_item) < _IDENTITY_FIXED.size:
        raise PDUError(f"{where} is shorter than its {_IDENTITY_FIXED.size}-byte fixed part")
    identity_type, positive_response = _IDENTITY_FIXED.unpack_from(sub_item)
    primary, offset = _read_u16_prefixed(sub_item, _IDENTITY_FIXED.size, where, "primary field")
    secondary, offset = _read_u16_prefixed(sub_item, offset, where, "secondary field")
    _expect_end(sub_item, offset, where)
    info.user_identity_rq = UserIdentityRQ(
        identity_type, positive_response != 0, bytes(primary), bytes(secondary)
    )


def _decode_user_identity_ac(info: UserInformation, sub_item: memoryview, where: str) -> None:
    response, offset = _read_u16_prefixed(sub_item, 0, where, "server response")
    _expect_end(sub_item, offset, where)
    info.user_identity_ac = UserIdentityAC(bytes(response))


_SubItemDecoder = Callable[[UserInformation, memoryview, str], None]

_SUB_ITEM_DECODERS: dict[int, _SubItemDecoder] = {
    0x51: _decode_max_length,
    0x52: _decode_implementation_uid,
    0x53: _decode_async_window,
    0x54: _decode_role_selection,
    0x55: _decode_version_name,
    0x56: _decode_extended,
    0x57: _decode_common_extended,
    0x58: _decode_user_identity_rq,
    0x59: _decode_user_identity_ac,
}

# Sub-items the standard allows at most once per PDU (PS3.7 D.3.3, PS3.8 D.1).
_SINGLE_SUB_ITEMS = frozenset({0x51, 0x52, 0x53, 0x55, 0x58, 0x59})

_PDU_DECODERS: dict[int, Callable[[memoryview], PDU]] = {
    DicomPduType.AssociateRequest: _decode_associate_rq,
    DicomPduType.AssociateAccept: _decode_associate_ac,
    DicomPduType.AssociateReject: _decode_reject,
    DicomPduType.DataTransfer: _decode_pdata,
    DicomPduType.ReleaseRequest: _decode_release_rq,
    DicomPduType.ReleaseResponse: _decode_release_rp,
    DicomPduType.Abort: _decode_abort,
}


# -- readable dump for DEBUG logs -------------------------------------------------------

_CONTEXT_RESULTS = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}
_ABORT_SOURCES = {0: "DICOM UL service-user", 2: "DICOM UL service-provider"}
_ABORT_REASONS = {
    0: "reason-not-specified",
    1: "unrecognized-PDU",
    2: "unexpected-PDU",
    4: "unrecognized-PDU parameter",
    5: "unexpected-PDU parameter",
    6: "invalid-PDU-parameter value",
}
_IDENTITY_TYPES = {
    1: "username",
    2: "username and passcode",
    3: "Kerberos service ticket",
    4: "SAML assertion",
    5: "JSON web token",
}
_USERNAME_TYPES = frozenset({1, 2})


def describe_pdu(pdu: PDU) -> str:
    """A multi-line, human-readable dump of ``pdu`` for DEBUG logs (like DCMTK's ``-d``).

    UIDs are followed by their names; P-DATA-TF fragments are summarised, never dumped, and
    user identity secrets (passcodes, tickets, assertions) are shown only by their length.
    """
    match pdu:
        case AssociateRQ() | AssociateAC():
            lines = _describe_associate(pdu)
        case AssociateRJ():
            lines = [
                "A-ASSOCIATE-RJ",
                f"  {describe_reject(pdu.result, pdu.source, pdu.reason)}",
                f"  result {pdu.result}, source {pdu.source}, reason {pdu.reason}",
            ]
        case PDataTF():
            lines = [f"P-DATA-TF with {len(pdu.pdvs)} PDV(s)"]
            lines.extend(_describe_pdv(pdv) for pdv in pdu.pdvs)
        case ReleaseRQ():
            lines = ["A-RELEASE-RQ"]
        case ReleaseRP():
            lines = ["A-RELEASE-RP"]
        case Abort():
            lines = [
                "A-ABORT",
                f"  source: {_named(pdu.source, _ABORT_SOURCES)}",
                f"  reason: {_named(pdu.reason, _ABORT_REASONS)}",
            ]
    return "\n".join(lines)


def _named(value: int, names: Mapping[int, str]) -> str:
    """``value (name)``, or ``value (unknown)`` for values the standard does not define."""
    return f"{value} ({names.get(value, 'unknown')})"


def _describe_uid(uid: str) -> str:
    if not is_valid_uid(uid, strict=False):  # pydicom would warn about it; print it raw
        return repr(uid)
    from pydicom.uid import UID  # its names: for logs and descriptions only

    name = UID(uid).name
    return uid if name == uid else f"{uid} ({name})"


def _describe_pdv(pdv: PDV) -> str:
    kind = "command" if pdv.is_command else "data set"
    last = "last" if pdv.is_last else "more follows"
    return f"  PDV context {pdv.context_id}: {kind}, {last}, {len(pdv.data)} bytes"


def _describe_associate(pdu: AssociateRQ | AssociateAC) -> list[str]:
    is_request = isinstance(pdu, AssociateRQ)
    lines = [
        "A-ASSOCIATE-RQ" if is_request else "A-ASSOCIATE-AC",
        f"  protocol version: {pdu.protocol_version:04X}H",
        f"  called AE title:  {pdu.called_ae!r}",
        f"  calling AE title: {pdu.calling_ae!r}",
        f"  application context: {_describe_uid(pdu.application_context)}",
    ]
    for context in pdu.presentation_contexts:
        lines.extend(_describe_context(context))
    lines.extend(_describe_user_information(pdu.user_information))
    return lines


def _describe_context(context: PresentationContextRQ | PresentationContextAC) -> list[str]:
    if isinstance(context, PresentationContextRQ):
        return [
            f"  presentation context {context.context_id}:",
            f"    abstract syntax: {_describe_uid(context.abstract_syntax)}",
            *(f"    transfer syntax: {_describe_uid(uid)}" for uid in context.transfer_syntaxes),
        ]
    lines = [
        f"  presentation context {context.context_id}:",
        f"    result: {_named(context.result, _CONTEXT_RESULTS)}",
    ]
    if context.result == 0:  # otherwise the transfer syntax is not significant
        lines.append(f"    transfer syntax: {_describe_uid(context.transfer_syntax)}")
    return lines


def _describe_user_information(info: UserInformation) -> list[str]:
    lines = ["  user information:"]
    if info.max_length is not None:
        lines.append(f"    maximum length received: {info.max_length}")
    lines.append(f"    implementation class UID: {_describe_uid(info.implementation_class_uid)}")
    if info.implementation_version_name is not None:
        lines.append(f"    implementation version name: {info.implementation_version_name!r}")
    if info.async_ops_window is not None:
        invoked, performed = info.async_ops_window
        lines.append(
            f"    asynchronous operations window: invoked {invoked}, performed {performed}"
        )
    lines.extend(
        f"    role selection: {_describe_uid(role.sop_class_uid)} "
        f"SCU role {int(role.scu_role)}, SCP role {int(role.scp_role)}"
        for role in info.role_selections
    )
    lines.extend(
        f"    extended negotiation: {_describe_uid(item.sop_class_uid)} "
        f"application info [{bytes(item.application_info).hex(' ')}]"
        for item in info.sop_class_extended
    )
    for common in info.sop_class_common_extended:
        lines.append(f"    common extended negotiation: {_describe_uid(common.sop_class_uid)}")
        lines.append(f"      service class: {_describe_uid(common.service_class_uid)}")
        lines.extend(
            f"      related general SOP class: {_describe_uid(uid)}"
            for uid in common.related_general_sop_classes
        )
    if info.user_identity_rq is not None:
        lines.extend(_describe_user_identity(info.user_identity_rq))
    if info.user_identity_ac is not None:
        size = len(info.user_identity_ac.server_response)
        lines.append(f"    user identity response: {size}-byte server response")
    lines.extend(
        f"    unknown sub-item {item.item_type:02X}H: {len(item.data)} bytes"
        for item in info.unknown
    )
    return lines


def _describe_user_identity(identity: UserIdentityRQ) -> list[str]:
    response = "requested" if identity.positive_response_requested else "not requested"
    lines = [
        f"    user identity: type {_named(identity.identity_type, _IDENTITY_TYPES)}, "
        f"positive response {response}"
    ]
    if identity.identity_type in _USERNAME_TYPES:
        username = bytes(identity.primary_field).decode("utf-8", "replace")
        lines.append(f"      username: {username!r}")
    else:
        lines.append(f"      primary field: {len(identity.primary_field)} bytes")
    if identity.secondary_field:
        lines.append(f"      secondary field: {len(identity.secondary_field)} bytes (not shown)")
    return lines
