"""One ``DicomNet``'s TLS configuration: settings, own certificate, cipher suite list,
and the ``ssl.SSLContext`` made from them (once per side, shared by every connection
that uses it: an accepted connection that sets nothing itself uses its listener's)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

from ..enums import DicomTlsCertificateType, DicomTlsCipherSuiteType
from ..errors import DicomException, DicomExceptionCode
from .ciphers import openssl_names
from .context import build_context
from .settings import DicomOpenSslContextCreationSettings


@dataclass(frozen=True)
class OwnCertificate:
    """What ``SetTlsClientCertificate`` named."""

    certificate_file: str
    certificate_type: DicomTlsCertificateType
    key_file: str | None


class TlsEndpoint:
    """The TLS side of one ``DicomNet``. ``configured`` is False until the application
    changes anything (then an accepted connection stops borrowing its listener's)."""

    def __init__(self, settings: DicomOpenSslContextCreationSettings | None) -> None:
        self.settings = settings or DicomOpenSslContextCreationSettings()
        self.configured = settings is not None
        self.certificate: OwnCertificate | None = None
        self.suites: list[DicomTlsCipherSuiteType] = []
        self._contexts: dict[bool, ssl.SSLContext] = {}

    def set_certificate(self, certificate: OwnCertificate) -> None:
        self.certificate = certificate
        self._changed()

    def set_suite(self, index: int, suite: DicomTlsCipherSuiteType) -> None:
        """LEADTOOLS' list editing: ``None_`` at an index ends the list there; an index
        one past the end appends."""
        if not 0 <= index <= len(self.suites):
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"cipher suite index {index} is beyond the list ({len(self.suites)} suites)",
            )
        if suite is DicomTlsCipherSuiteType.None_:
            del self.suites[index:]
        elif index == len(self.suites):
            self.suites.append(suite)
        else:
            self.suites[index] = suite
        self._changed()

    def suite(self, index: int) -> DicomTlsCipherSuiteType:
        if 0 <= index < len(self.suites):
            return self.suites[index]
        return DicomTlsCipherSuiteType.None_

    def _changed(self) -> None:
        self.configured = True
        self._contexts.clear()

    def context(self, server_side: bool, ask_password: Callable[[], str | None]) -> ssl.SSLContext:
        """The context of one side, made on first use; ``DicomException`` if it cannot
        be (a key that does not open, a server without a certificate...)."""
        context = self._contexts.get(server_side)
        if context is not None:
            return context
        own = self.certificate
        if own is None and server_side:
            raise DicomException(
                DicomExceptionCode.CertificateLoadFailed,
                "a TLS server needs a certificate and its key: call SetTlsClientCertificate",
            )
        from .certificates import load_credentials  # cryptography only once TLS runs

        credentials = (
            load_credentials(
                own.certificate_file,
                own.certificate_type,
                own.key_file,
                self.settings.private_key_password,
                ask_password,
            )
            if own is not None
            else None
        )
        context = build_context(
            self.settings,
            server_side=server_side,
            credentials=credentials,
            cipher_suites=openssl_names(self.suites),
        )
        self._contexts[server_side] = context
        return context
