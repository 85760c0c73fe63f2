"""LEADTOOLS' TLS members of ``DicomNet`` (``SetTlsClientCertificate``, the cipher suite
list and its questions, ``OnPrivateKeyPassword``, ``OnVerify``), kept apart from the
connection machinery in ``net.py``, which mixes them in.

``OnVerify`` runs once per certificate of the peer's chain, root first, as OpenSSL's
verify callback would; Python's ``ssl`` has no such callback during the handshake, so
it runs as soon as the handshake is done, before ``OnSecureLinkReady`` and before any
DICOM byte: answering 0 closes the connection (``ApplicationVerification``). A chain
OpenSSL refused is reported to it once, ``ok`` 0, with the code of the failure. That is
the place for host name or AE title checks and revocation lookups.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import signals
from ..enums import (
    DicomNetSecurityMode,
    DicomTlsAuthenticationMethodType,
    DicomTlsCertificateType,
    DicomTlsCipherSuiteType,
    DicomTlsEncryptionMethodType,
    DicomTlsExchangeMethodType,
    DicomTlsMacMethodType,
)
from ..errors import DicomException, DicomExceptionCode
from .ciphers import SUITES, suite_named
from .endpoint import OwnCertificate, TlsEndpoint
from .settings import DicomOpenSslContextCreationSettings
from .tls import TlsError, TlsLayer

if TYPE_CHECKING:
    from ..loop import StreamChannel

log = logging.getLogger("dicomnet.tls")

_VERIFY_CODES = frozenset(
    {DicomExceptionCode.CertificateVerifyFailed, DicomExceptionCode.ApplicationVerification}
    | {DicomExceptionCode(n) for n in range(160, 191)}
)


@dataclass(frozen=True)
class DicomOpenSslVersion:
    """What ``GetOpenSslVersion`` says: TLS is always available (Python's ``ssl``)."""

    IsAvailable: bool
    DownloadMessage: str
    Version: str
    VersionNumber: int


class TlsSurface:
    """The TLS part of ``DicomNet``'s LEADTOOLS surface."""

    _tls: TlsEndpoint | None
    _channel: StreamChannel | None

    # -- set-up ----------------------------------------------------------------------

    def _initialize_security(self, mode: DicomNetSecurityMode, settings: object | None) -> None:
        if mode is DicomNetSecurityMode.Iscl:
            raise DicomException(
                DicomExceptionCode.BadSecurityMode,
                "ISCL (MEDIS-DC Integrated Secure Communication Layer) is not available: "
                "its protocol specification is not public; use DicomNetSecurityMode.Tls",
            )
        if mode is DicomNetSecurityMode.Tls:
            if settings is not None and not isinstance(
                settings, DicomOpenSslContextCreationSettings
            ):
                raise DicomException(
                    DicomExceptionCode.Parameter,
                    "TLS settings must be a DicomOpenSslContextCreationSettings, "
                    f"not {type(settings).__name__}",
                )
            self._tls = TlsEndpoint(settings)
        elif mode is DicomNetSecurityMode.None_:
            self._tls = None
        else:
            raise DicomException(DicomExceptionCode.BadSecurityMode, f"no security mode {mode!r}")

    def _endpoint(self, what: str) -> TlsEndpoint:
        if self._tls is None:
            raise DicomException(
                DicomExceptionCode.BadSecurityMode, f"{what} needs DicomNetSecurityMode.Tls"
            )
        return self._tls

    def _prepare_tls(self, server_side: bool) -> None:
        """Make the context now, in the caller's thread, so a key that does not open or
        a server without a certificate is the caller's ``DicomException``."""
        if self._tls is not None:
            self._tls.context(server_side, self._ask_password)

    def _borrow_tls(self, listener: TlsSurface) -> None:
        """An accepted TLS connection that set nothing itself uses its listener's TLS."""
        if self._tls is not None and not self._tls.configured and listener._tls is not None:
            self._tls = listener._tls

    def _tls_layer(self, server_side: bool) -> TlsLayer:
        endpoint = self._endpoint("a TLS connection")
        return TlsLayer(endpoint.context(server_side, self._ask_password), self._verify_chain)

    def _ask_password(self) -> str | None:
        return self.OnPrivateKeyPassword(False) or None

    # -- LEADTOOLS methods -----------------------------------------------------------

    def SetTlsClientCertificate(
        self,
        certificate_file: str,
        certificate_type: DicomTlsCertificateType,
        key_file: str | None = None,
    ) -> None:
        """This side's certificate (a server's too, as in LEADTOOLS) and private key:
        PEM (``key_file`` None: the key is in the certificate file), DER (``Asn1``) or
        one PKCS#12 file. Read when the next connection or listener starts."""
        self._endpoint("SetTlsClientCertificate").set_certificate(
            OwnCertificate(certificate_file, DicomTlsCertificateType(certificate_type), key_file)
        )

    def SetTlsCipherSuiteByIndex(self, index: int, cipher: DicomTlsCipherSuiteType) -> None:
        """Edit the TLS 1.2 suites offered, in preference order (``None_`` ends the list
        at ``index``; an empty list means the profile's)."""
        self._endpoint("SetTlsCipherSuiteByIndex").set_suite(index, cipher)

    def GetTlsCipherSuiteByIndex(self, index: int) -> DicomTlsCipherSuiteType:
        return self._endpoint("GetTlsCipherSuiteByIndex").suite(index)

    def _ssl_object(self) -> ssl.SSLObject | None:
        channel = self._channel
        layer = channel.layer if channel is not None else None
        return layer.ssl_object if isinstance(layer, TlsLayer) else None

    def GetTlsCipherSuite(self) -> DicomTlsCipherSuiteType:
        """The suite negotiated (after ``OnSecureLinkReady``); ``None_`` before."""
        tls = self._ssl_object()
        cipher = tls.cipher() if tls is not None else None
        return suite_named(cipher[0]) if cipher else DicomTlsCipherSuiteType.None_

    def GetTlsVersion(self) -> str:
        """The TLS version negotiated ("TLSv1.3"), empty before (dicomnet)."""
        tls = self._ssl_object()
        return (tls.version() or "") if tls is not None else ""

    def _suite(self, cipher: DicomTlsCipherSuiteType | None) -> Any:
        return SUITES.get(self.GetTlsCipherSuite() if cipher is None else cipher)

    def GetTlsAuthenticationAlgorithm(
        self, cipher: DicomTlsCipherSuiteType | None = None
    ) -> DicomTlsAuthenticationMethodType:
        """Of ``cipher``, or of the negotiated suite."""
        info = self._suite(cipher)
        return info.authentication if info else DicomTlsAuthenticationMethodType.None_

    def GetTlsIntegrityAlgorithm(
        self, cipher: DicomTlsCipherSuiteType | None = None
    ) -> DicomTlsMacMethodType:
        info = self._suite(cipher)
        return info.mac if info else DicomTlsMacMethodType.None_

    def GetTlsKeyExchangeAlgorithm(
        self, cipher: DicomTlsCipherSuiteType | None = None
    ) -> DicomTlsExchangeMethodType:
        info = self._suite(cipher)
        return info.exchange if info else DicomTlsExchangeMethodType.None_

    def GetTlsEncryptionAlgorithm(
        self, cipher: DicomTlsCipherSuiteType | None = None
    ) -> DicomTlsEncryptionMethodType:
        info = self._suite(cipher)
        return info.encryption if info else DicomTlsEncryptionMethodType.None_

    def GetTlsEncryptionKeyLength(self, cipher: DicomTlsCipherSuiteType | None = None) -> int:
        """Bits of the bulk encryption key."""
        info = self._suite(cipher)
        return int(info.key_bits) if info else 0

    def GetTlsMutualAuthenticationKeyLength(
        self, cipher: DicomTlsCipherSuiteType | None = None
    ) -> int:
        """Bits of the peer certificate's public key on this connection (0 without one);
        ``cipher`` is accepted for LEADTOOLS' signature and changes nothing."""
        from .certificates import public_key_bits  # cryptography only once TLS runs

        tls = self._ssl_object()
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        return public_key_bits(der) if der else 0

    @staticmethod
    def GetOpenSslVersion() -> DicomOpenSslVersion:
        return DicomOpenSslVersion(True, "", ssl.OPENSSL_VERSION, ssl.OPENSSL_VERSION_NUMBER)

    # -- callbacks ---------------------------------------------------------------------

    def OnPrivateKeyPassword(self, encryption: bool) -> str:
        """The password of an encrypted private key (``encryption`` is False: it is read,
        not written). The default asks the signal's receivers; "" if none answers."""
        for _, answer in signals.signal_for("OnPrivateKeyPassword").send(
            self, encryption=encryption
        ):
            if isinstance(answer, str):
                return answer
        return ""

    def OnVerify(self, ok: int, certificate_string: str, error: DicomExceptionCode) -> int:
        """One certificate of the peer's chain: ``ok`` 1 when OpenSSL accepted it.
        Return 0 to refuse the peer, 1 to go on. The default: ``ok``, unless a signal
        receiver answers 0."""
        answers = signals.signal_for("OnVerify").send(
            self, ok=ok, certificate_string=certificate_string, error=error
        )
        return 0 if any(answer == 0 for _, answer in answers) else ok

    def _wants(self, name: str) -> bool:
        raise NotImplementedError  # DicomNet's

    def _verify_chain(self, tls: ssl.SSLObject) -> None:
        """After the handshake: the depth limit, then ``OnVerify`` per certificate."""
        endpoint = self._endpoint("verification")
        inner = tls._sslobj  # type: ignore[attr-defined]  # public in Python 3.13
        verified = tls.context.verify_mode != ssl.CERT_NONE
        chain = (inner.get_verified_chain() if verified else inner.get_unverified_chain()) or []
        depth = endpoint.settings.maximum_verification_depth
        if verified and len(chain) - 2 > depth:
            raise TlsError(
                DicomExceptionCode.CertChainTooLong,
                f"the peer's certificate chain has {len(chain) - 2} intermediate "
                f"certificates, more than the {depth} allowed",
            )
        if not self._wants("OnVerify"):
            return
        for certificate in reversed(chain):
            der = certificate.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
            from .certificates import describe  # cryptography only once TLS runs

            text = describe(der)
            if not self.OnVerify(1, text, DicomExceptionCode.Success):
                raise TlsError(
                    DicomExceptionCode.ApplicationVerification,
                    f"the application refused the peer's certificate ({text})",
                )

    def _secure_link_result(self, error: Exception | None) -> DicomExceptionCode:
        """The code ``OnSecureLinkReady`` reports; a refused chain also goes to
        ``OnVerify`` (``ok`` 0)."""
        if error is None:
            return DicomExceptionCode.Success
        code = getattr(error, "code", None)
        if not isinstance(code, DicomExceptionCode):
            code = (
                DicomExceptionCode.NetTimeout
                if isinstance(error, TimeoutError)
                else DicomExceptionCode.NetSecurityBreach
            )
        refused_chain = (
            code in _VERIFY_CODES and code is not DicomExceptionCode.ApplicationVerification
        )
        if refused_chain and self._wants("OnVerify"):
            self.OnVerify(0, str(error), code)
        return code
