"""Errors raised by dicomnet.

LEADTOOLS reports every failure as ``DicomException`` carrying a ``DicomExceptionCode``;
dicomnet keeps that shape so ported code can catch the same type and test ``.Code``.
The subclasses below narrow the cause for Python code that wants to (``except PDUError``).
The numeric codes follow the LEADTOOLS C header ``ltdicerrors.h``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import overload


class DicomExceptionCode(IntEnum):
    Success = 0
    SupportLocked = 1
    NoMemory = 2
    Parameter = 9
    BadPDUType = 17
    BadPDULength = 18
    BadPDUID = 19
    NetFailure = 29
    NetAccess = 30
    NetAddressInUse = 31
    NetAddressNotAvailable = 32
    NetAddressNotSupported = 33
    NetConnectionAborted = 34
    NetConnectionRefused = 35
    NetConnectionReset = 36
    NetDestinationRequired = 37
    NetArgumentIncorrect = 38
    NetBlockingOperationInProgress = 39
    NetBlockingCanceled = 40
    NetInvalidSocket = 41
    NetSocketAlreadyConnected = 42
    NetNoMoreFile = 43
    NetMessageSize = 44
    NetDown = 45
    NetReset = 46
    NetUnReach = 47
    NetNoBuffers = 48
    NetNotConnected = 49
    NetNotSocket = 50
    NetOperationNotSupported = 51
    NetProtocolNotSupported = 52
    NetProtocolType = 53
    NetShutdown = 54
    NetSocketNotSupported = 55
    NetTimeout = 56
    NetWouldBlock = 57
    NetHostNotFound = 58
    NetNoData = 59
    NetNoRecovery = 60
    NetNotInitialised = 61
    NetSystemNotReady = 62
    NetTryAgain = 63
    NetVersionNotSupported = 64
    NetSecurityBreach = 65
    TLSInternalError = 66
    SecurityLocked = 67
    TLSLibraryNotLoaded = 68
    BadSecurityMode = 69
    # TLS (ltdicerrors.h 127-196): 128-150 are the TLS alerts, 160-191 X.509 verify results
    CertificateVerifyFailed = 127
    CloseNotify = 128
    UnexpectedMessage = 129
    BadRecordMac = 130
    DecryptFailed = 131
    RecordOverflow = 132
    DecompressionFailure = 133
    HandshakeFailure = 134
    BadCertificate = 135
    UnsupportedCertificate = 136
    CertificateRevoked = 137
    CertificateExpired = 138
    CertificateUnknown = 139
    IllegalParameter = 140
    UnknownCa = 141
    AccessDenied = 142
    DecodeError = 143
    DecryptError = 144
    ExportRestriction = 145
    ProtocolVersion = 146
    InsufficientSecurity = 147
    InternalError = 148
    UserCanceled = 149
    NoRenegotiation = 150
    NoKeepalive = 151
    ClosedControlled = 152
    UnableToGetIssuerCert = 160
    UnableToGetCrl = 161
    UnableToDecryptCertSignature = 162
    UnableToDecryptCrlSignature = 163
    UnableToDecodeIssuerPublicKey = 164
    CertSignatureFailure = 165
    CrlSignatureFailure = 166
    CertNotYetValid = 167
    CertHasExpired = 168
    CrlNotYetValid = 169
    CrlHasExpired = 170
    ErrorInCertNotBeforeField = 171
    ErrorInCertNotAfterField = 172
    ErrorInCrlLastUpdateField = 173
    ErrorInCrlNextUpdateField = 174
    OutOfMem = 175
    DepthZeroSelfSignedCert = 176
    SelfSignedCertInChain = 177
    UnableToGetIssuerCertLocally = 178
    UnableToVerifyLeafSignature = 179
    CertChainTooLong = 180
    CertRevoked = 181
    InvalidCa = 182
    PathLengthExceeded = 183
    InvalidPurpose = 184
    CertUntrusted = 185
    CertRejected = 186
    SubjectIssuerMismatch = 187
    AkidSkidMismatch = 188
    AkidIssuerSerialMismatch = 189
    KeyusageNoCertsign = 190
    ApplicationVerification = 191
    InvalidCtx = 192
    InvalidCtxVerifyDepth = 193
    InvalidCtxVerifyMode = 194
    InvalidCtxCafile = 195
    InvalidCtxOptions = 196
    # loading keys and certificates
    PrivateKeyLoadFailed = 218
    CertificateLoadFailed = 219
    KeysMismatch = 221
    Ipv4Ipv6Conflict = 307
    NetHostUnreachable = 423


# The code of an exception built from a message alone, as LEADTOOLS demos raise it
# ("Invalid Abstract Syntax"): such a raise reports a value the program cannot use, and
# Parameter is LEADTOOLS' code for that (it is also what dicomnet raises for bad arguments).
DEFAULT_CODE = DicomExceptionCode.Parameter


class DicomException(Exception):
    """The one error type of the LEADTOOLS surface; ``Code`` says what went wrong.

    The LEADTOOLS .NET constructors all work, plus dicomnet's own ``(code, message)``:

    - ``DicomException()`` and ``DicomException(message)``: ``Code`` is ``DEFAULT_CODE``
      (``Parameter``);
    - ``DicomException(message, inner)``: the same, ``inner`` becoming ``__cause__``
      (as ``raise DicomException(message) from inner`` does) and ``InnerException``;
    - ``DicomException(code)`` and ``DicomException(code, message)``.

    A missing message reads as the code's name. ``Message`` is the .NET spelling of
    ``message``.
    """

    Code: DicomExceptionCode
    message: str

    @overload
    def __init__(self, code: DicomExceptionCode | int, message: str = "") -> None: ...

    @overload
    def __init__(self, message: str = "", inner: BaseException | None = None, /) -> None: ...

    def __init__(
        self,
        code: DicomExceptionCode | int | str | None = None,
        message: str | BaseException | None = None,
    ) -> None:
        inner: BaseException | None = None
        if code is None or isinstance(code, str):
            text, code = code or "", DEFAULT_CODE
            if isinstance(message, str):
                # DicomException(message=...) without a code, or two messages.
                if text:
                    raise TypeError("DicomException takes one message")
                text = message
            else:
                inner = message
        elif isinstance(code, int):
            if isinstance(message, BaseException):
                raise TypeError("DicomException(code, ...) takes a message, not an exception")
            text = message or ""
        else:
            raise TypeError(
                f"DicomException takes a DicomExceptionCode or a message, not {type(code).__name__}"
            )
        self.Code = DicomExceptionCode(code)
        self.message = text or self.Code.name
        super().__init__(f"{self.message} ({self.Code.name})")
        if inner is not None:
            self.__cause__ = inner

    @property
    def Message(self) -> str:
        return self.message

    @property
    def InnerException(self) -> BaseException | None:
        return self.__cause__


class PDUError(DicomException):
    """A PDU or item that does not follow PS3.8 9.3 (bad type, lying length, truncation)."""

    def __init__(self, message: str, code: DicomExceptionCode = DicomExceptionCode.BadPDULength):
        super().__init__(code, message)


class DIMSEError(DicomException):
    """A DIMSE message that does not follow PS3.7 (bad command set, missing element)."""

    def __init__(self, message: str, code: DicomExceptionCode = DicomExceptionCode.Parameter):
        super().__init__(code, message)


class AssociationRejected(DicomException):
    """Raised by the blocking helpers when the peer sends A-ASSOCIATE-RJ."""

    def __init__(self, result: int, source: int, reason: int, message: str) -> None:
        self.result, self.source, self.reason = result, source, reason
        super().__init__(DicomExceptionCode.NetConnectionAborted, message)


class AssociationAborted(DicomException):
    """Raised by the blocking helpers when the association ends by A-ABORT or a lost link."""

    def __init__(self, message: str, source: int | None = None, reason: int | None = None) -> None:
        self.source, self.reason = source, reason
        super().__init__(DicomExceptionCode.NetConnectionAborted, message)
