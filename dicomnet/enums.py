"""LEADTOOLS enumerations, with their names and numeric values.

Member names follow the LEADTOOLS .NET API so ported code reads the same. Python cannot
name a member ``None``; those members are spelled ``None_`` (PEP 8's trailing underscore
for keywords), so ``DicomNetSecurityMode.None`` ports as ``DicomNetSecurityMode.None_``.
Values that are wire values (reject reasons, abort sources, statuses, priorities,
command fields) are the PS3.7/PS3.8 numbers, so an enum member can be written straight to
a PDU or command set.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from enum import property as enum_property
from typing import Any


class DicomNetSecurityMode(IntEnum):
    None_ = 0xABCD0000
    Iscl = 0xABCD0001
    Tls = 0xABCD0002


class DicomNetIpTypeFlags(IntFlag):
    None_ = 0
    Ipv4 = 1
    Ipv6 = 2
    Ipv4OrIpv6 = 3


class DicomAssociateAcceptResultType(IntEnum):
    """Presentation context result/reason (PS3.8 9.3.3.2)."""

    Success = 0
    UserReject = 1
    ProviderReject = 2
    AbstractSyntax = 3
    TransferSyntax = 4


class DicomAssociateRejectResultType(IntEnum):
    Permanent = 1
    Transient = 2


class DicomAssociateRejectSourceType(IntEnum):
    User = 1
    Provider1 = 2  # service provider, ACSE related function
    Provider2 = 3  # service provider, presentation related function


class DicomAssociateRejectReasonType(IntEnum):
    """Reject reasons (PS3.8 9.3.4), one member per LEADTOOLS name.

    The meaning of a reason number depends on the reject source, so wire values overlap:
    2 is ``Application`` from the service-user, ``Version`` from the ACSE provider and
    ``Limit`` from the presentation provider. Each member still has its own ``.name``;
    its int value (``int(member)``, ``.value``, ``==``) is the wire number, so any member
    can be written to a PDU. Members with the same number therefore compare equal: tell
    them apart with ``is``. ``from_wire(source, reason)`` reads a received pair;
    ``DicomAssociateRejectReasonType(n)`` alone gives the service-user meaning of ``n``
    (``Unknown`` or ``Application`` for 1 and 2).
    """

    # The member key is (source, reason), which keeps same-numbered members distinct.
    def __new__(cls, reason: int, source: int) -> DicomAssociateRejectReasonType:
        member = int.__new__(cls, reason)
        member._value_ = (source, reason)  # type: ignore[assignment]
        return member

    Unknown = 1, DicomAssociateRejectSourceType.User  # also the ACSE provider's 1
    Application = 2, DicomAssociateRejectSourceType.User  # application context not supported
    Calling = 3, DicomAssociateRejectSourceType.User  # calling AE title not recognized
    Called = 7, DicomAssociateRejectSourceType.User  # called AE title not recognized
    Version = 2, DicomAssociateRejectSourceType.Provider1  # protocol version not supported
    Congestion = 1, DicomAssociateRejectSourceType.Provider2  # temporary congestion
    Limit = 2, DicomAssociateRejectSourceType.Provider2  # local limit exceeded

    @enum_property
    def value(self) -> int:
        """The wire number (the member key also holds the source)."""
        return int(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {int(self)}>"

    @classmethod
    def _missing_(cls, value: object) -> DicomAssociateRejectReasonType | None:
        # A reason number without its source: the service-user meaning, as before the
        # members were told apart.
        if not isinstance(value, int):
            return None
        entry = _REJECT_REASONS.get((DicomAssociateRejectSourceType.User, value))
        return None if entry is None else entry[0]

    @classmethod
    def from_wire(cls, source: int, reason: int) -> DicomAssociateRejectReasonType:
        """The member a received (source, reason) pair means; ValueError if it has none."""
        try:
            return _REJECT_REASONS[source, reason][0]
        except KeyError:
            raise ValueError(
                f"reason {reason!r} from source {source!r} is not a defined reject reason "
                "(PS3.8 9.3.4)"
            ) from None


_User = DicomAssociateRejectSourceType.User
_Acse = DicomAssociateRejectSourceType.Provider1
_Presentation = DicomAssociateRejectSourceType.Provider2
_Reason = DicomAssociateRejectReasonType

# Every defined (source, reason) pair, its member and how a log says it (PS3.8 9.3.4).
_REJECT_REASONS: dict[tuple[int, int], tuple[DicomAssociateRejectReasonType, str]] = {
    (_User, 1): (_Reason.Unknown, "no reason given"),
    (_User, 2): (_Reason.Application, "application context name not supported"),
    (_User, 3): (_Reason.Calling, "calling AE title not recognized"),
    (_User, 7): (_Reason.Called, "called AE title not recognized"),
    (_Acse, 1): (_Reason.Unknown, "no reason given (ACSE)"),
    (_Acse, 2): (_Reason.Version, "protocol version not supported"),
    (_Presentation, 1): (_Reason.Congestion, "temporary congestion"),
    (_Presentation, 2): (_Reason.Limit, "local limit exceeded"),
}

_REJECT_RESULTS: dict[int, str] = {
    DicomAssociateRejectResultType.Permanent: "permanent",
    DicomAssociateRejectResultType.Transient: "transient",
}


def enum_member(enum_type: Any, value: int) -> Any:
    """The member of ``enum_type`` for ``value``; a value the enum lacks stays a plain
    int (any 16-bit status is legal), which compares and formats the same way. Looked up
    in the enum's value map: calling the enum costs ten times as much, per message."""
    member = enum_type._value2member_map_.get(value)
    return value if member is None else member


def describe_reject(result: int, source: int, reason: int) -> str:
    """The log line for an A-ASSOCIATE-RJ: ``association rejected (permanent): called AE
    title not recognized``. Undefined values are shown as numbers."""
    outcome = _REJECT_RESULTS.get(result, f"result {result}")
    entry = _REJECT_REASONS.get((source, reason))
    text = entry[1] if entry is not None else f"source {source}, reason {reason}"
    return f"association rejected ({outcome}): {text}"


class DicomAbortSourceType(IntEnum):
    User = 0
    Provider = 2


class DicomAbortReasonType(IntEnum):
    Unknown = 0
    Unrecognized = 1
    Unexpected = 2
    UnrecognizedParameter = 4
    UnexpectedParameter = 5
    InvalidParameterValue = 6


class DicomPduType(IntEnum):
    Unknown = 0
    AssociateRequest = 1
    AssociateAccept = 2
    AssociateReject = 3
    DataTransfer = 4
    ReleaseRequest = 5
    ReleaseResponse = 6
    Abort = 7


class DicomCommandPriorityType(IntEnum):
    Medium = 0
    High = 1
    Low = 2


class DicomCommandType(IntEnum):
    """Request command field values (PS3.7 E.1); a response is the value | 0x8000."""

    Undefined = 0
    CStore = 0x0001
    CGet = 0x0010
    CFind = 0x0020
    CMove = 0x0021
    CEcho = 0x0030
    CCancel = 0x0FFF
    NReport = 0x0100
    NGet = 0x0110
    NSet = 0x0120
    NAction = 0x0130
    NCreate = 0x0140
    NDelete = 0x0150


class DicomCommandStatusType(IntEnum):
    """DIMSE status codes. Any 16-bit status is accepted where a status is expected."""

    Success = 0x0000
    Cancel = 0xFE00
    AttributeListError = 0x0107
    AttributeOutOfRange = 0x0116
    ClassNotSupported = 0x0122
    ClaseInstanceConflict = 0x0119  # LEADTOOLS' .NET spelling, kept for porting
    DuplicateInstance = 0x0111
    DuplicateInvocation = 0x0210
    InvalidArgumentValue = 0x0115
    InvalidAttributeValue = 0x0106
    InvalidObjectInstance = 0x0117
    MissingAttribute = 0x0120
    MissingAttributeValue = 0x0121
    MistypedArgument = 0x0212
    NoSuchArgument = 0x0114
    NoSuchAttribute = 0x0105
    NoSuchEventType = 0x0113
    NoSuchObjectInstance = 0x0112
    NoSuchClass = 0x0118
    ProcessingFailure = 0x0110
    ResourceLimitation = 0x0213
    UnrecognizedOperation = 0x0211
    NoSuchActionType = 0x0123
    NotAuthorized = 0x0124
    DuplicateTransactionUid = 0x0131
    RefusedOutOfResources = 0xA700
    RefusedUnableToCalculateMatches = 0xA701
    RefusedUnableToPerformSuboperations = 0xA702
    RefusedMoveDestinationUnknown = 0xA801
    Failure = 0xC001
    Reserved2 = 0xC002
    Reserved3 = 0xC003
    Reserved4 = 0xC004
    Warning = 0xB000
    Pending = 0xFF00
    PendingWarning = 0xFF01
    ClassInstanceConflict = 0x0119  # the standard's spelling, an alias of the above


class DicomRoleSupport(IntEnum):
    Unsupported = 0
    Supported = 1


# -- TLS (PS3.15 annex B) ---------------------------------------------------------------
# Where LEADTOOLS' numbering is known it is kept; members marked "dicomnet" are this
# library's own additions for what LEADTOOLS' published lists predate (TLS 1.2+, ECDHE).


class DicomTlsCertificateType(IntEnum):
    """How ``SetTlsClientCertificate`` reads its files."""

    Pem = 1
    Asn1 = 2  # DER
    Pkcs12 = 3  # dicomnet: certificate (and chain) with its key in one PKCS#12 file


class DicomSslMethodType(IntEnum):
    """The protocol method of ``DicomOpenSslContextCreationSettings``. ``SslV23`` means
    "negotiate": the versions come from the security profile. SSL 2 and 3 are refused."""

    SslV2 = 1
    SslV3 = 2
    TlsV1 = 3  # TLS 1.0 only: the legacy opt-in
    SslV23 = 4
    TlsV12 = 5  # dicomnet: TLS 1.2 only
    TlsV13 = 6  # dicomnet: TLS 1.3 only


class DicomOpenSslVerificationFlags(IntFlag):
    """Peer certificate checks, as OpenSSL's SSL_VERIFY_* flags."""

    None_ = 0
    Peer = 1
    FailIfNoPeerCertificate = 2
    ClientOnce = 4
    All = 7


class DicomOpenSslOptionsFlags(IntFlag):
    """OpenSSL SSL_OP_* options the settings may add (each only narrows what is allowed)."""

    None_ = 0
    AllBugWorkarounds = 0x00000FFF
    NoSslV2 = 0x01000000
    NoSslV3 = 0x02000000
    NoTlsV1 = 0x04000000
    NoTlsV12 = 0x08000000  # dicomnet (OpenSSL's value)
    NoTlsV11 = 0x10000000  # dicomnet (OpenSSL's value)
    NoTlsV13 = 0x20000000  # dicomnet (OpenSSL's value)


class DicomTlsCipherSuiteType(IntEnum):
    """Cipher suites. The first four are LEADTOOLS' own numbers; LEADTOOLS' numbers for
    its later members are not published, so those (and dicomnet's additions) carry the
    IANA code point of the suite."""

    None_ = 0
    DheRsaWithDesCbcSha = 0x12
    DheRsaWith3DesEdeCbcSha = 0x13
    DheRsaAes256Sha = 0x14
    RsaWith3DesEdeCbcSha = 0x000A
    RsaWithAes128CbcSha = 0x002F
    DheRsaWithAes128GcmSha256 = 0x009E
    DheRsaWithAes256GcmSha384 = 0x009F
    EcdheEcdsaWithAes128GcmSha256 = 0xC02B  # dicomnet
    EcdheEcdsaWithAes256GcmSha384 = 0xC02C  # dicomnet
    EcdheRsaWithAes128GcmSha256 = 0xC02F
    EcdheRsaWithAes256GcmSha384 = 0xC030
    EcdheRsaWithChacha20Poly1305Sha256 = 0xCCA8  # dicomnet
    EcdheEcdsaWithChacha20Poly1305Sha256 = 0xCCA9  # dicomnet
    Tls13Aes128GcmSha256 = 0x1301  # dicomnet: TLS 1.3
    Tls13Aes256GcmSha384 = 0x1302  # dicomnet: TLS 1.3
    Tls13Chacha20Poly1305Sha256 = 0x1303  # dicomnet: TLS 1.3


class DicomTlsEncryptionMethodType(IntEnum):
    None_ = 0
    Des = 1
    ThreeDes = 2
    Rc4 = 3
    Rc2 = 4
    Idea = 5
    Fortezza = 6
    Aes = 7
    Chacha20 = 8  # dicomnet


class DicomTlsMacMethodType(IntEnum):
    """The integrity algorithm: the HMAC of a CBC suite, the PRF hash of an AEAD one."""

    None_ = 0
    Sha1 = 0x10
    Md5 = 0x11
    Sha256 = 0x12  # dicomnet
    Sha384 = 0x13  # dicomnet


class DicomTlsAuthenticationMethodType(IntEnum):
    None_ = 0  # also TLS 1.3, whose suites leave authentication to the certificate
    Rsa = 0x20
    Dss = 0x21
    Dh = 0x22
    Ecdsa = 0x23  # dicomnet


class DicomTlsExchangeMethodType(IntEnum):
    None_ = 0
    RsaSignedDhe = 0x40
    Rsa = 0x41
    Dh = 0x42
    Dss = 0x43
    Fortezza = 0x44
    Ecdhe = 0x45  # dicomnet: ephemeral elliptic-curve Diffie-Hellman (TLS 1.3 too)
