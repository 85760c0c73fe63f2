"""Turning TLS settings, a profile and own credentials into an ``ssl.SSLContext``."""

from __future__ import annotations

import logging
import ssl
import warnings
from typing import TYPE_CHECKING

from ..enums import DicomOpenSslOptionsFlags, DicomSslMethodType
from ..errors import DicomException, DicomExceptionCode
from .profiles import PeerCertificatePolicy
from .settings import DicomOpenSslContextCreationSettings

if TYPE_CHECKING:
    from .certificates import Credentials

log = logging.getLogger("dicomnet.tls")

_OPTIONS = {
    DicomOpenSslOptionsFlags.NoTlsV1: ssl.OP_NO_TLSv1,
    DicomOpenSslOptionsFlags.NoTlsV11: ssl.OP_NO_TLSv1_1,
    DicomOpenSslOptionsFlags.NoTlsV12: ssl.OP_NO_TLSv1_2,
    DicomOpenSslOptionsFlags.NoTlsV13: ssl.OP_NO_TLSv1_3,
}
_PINNED = {
    DicomSslMethodType.TlsV1: ssl.TLSVersion.TLSv1,
    DicomSslMethodType.TlsV12: ssl.TLSVersion.TLSv1_2,
    DicomSslMethodType.TlsV13: ssl.TLSVersion.TLSv1_3,
}
_VERIFY_MODES = {
    PeerCertificatePolicy.REQUIRE: ssl.CERT_REQUIRED,
    PeerCertificatePolicy.VERIFY_IF_PRESENT: ssl.CERT_OPTIONAL,
    PeerCertificatePolicy.IGNORE: ssl.CERT_NONE,
}


def _invalid(code: DicomExceptionCode, message: str) -> DicomException:
    return DicomException(code, f"TLS settings: {message}")


def _versions(
    settings: DicomOpenSslContextCreationSettings,
) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    profile = settings.profile
    low, high = profile.minimum, profile.maximum
    method = settings.method_type
    if method in (DicomSslMethodType.SslV2, DicomSslMethodType.SslV3):
        raise _invalid(DicomExceptionCode.InvalidCtx, f"{method.name} is broken and not offered")
    pinned = _PINNED.get(method)
    if pinned is not None:
        if not low <= pinned <= high:
            raise _invalid(
                DicomExceptionCode.InvalidCtx,
                f"{method.name} is outside the {profile.name} ({low.name}..{high.name})",
            )
        low = high = pinned
    return low, high


def build_context(
    settings: DicomOpenSslContextCreationSettings,
    *,
    server_side: bool,
    credentials: Credentials | None,
    cipher_suites: tuple[str, ...] = (),
) -> ssl.SSLContext:
    """A context for one side of a connection. Hostname and AE title checks are left to
    the application (``OnVerify``): DICOM peers are named by AE title, not host name.
    Raises ``DicomException`` with a specific code when something cannot be used."""
    profile = settings.profile
    if profile.warning:
        log.warning("TLS profile %s: %s", profile.name, profile.warning)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    with warnings.catch_warnings():  # TLS 1.0 is deprecated: the profile says so in the log
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version, context.maximum_version = _versions(settings)
    for flag, option in _OPTIONS.items():
        if settings.options & flag:
            context.options |= option
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.set_ciphers(profile.cipher_string(cipher_suites))
        if profile.ecdh_curve:
            context.set_ecdh_curve(profile.ecdh_curve)
    except (ssl.SSLError, ValueError) as exc:
        raise _invalid(DicomExceptionCode.InvalidCtx, f"no usable cipher suite: {exc}") from exc
    policy = settings.peer_certificate
    context.verify_mode = _VERIFY_MODES[policy]
    from .certificates import trusted_certificates_pem  # cryptography only once TLS runs

    trusted = trusted_certificates_pem(
        settings.trusted_files, settings.ca_directories, settings.ca_type
    )
    if trusted:
        try:
            context.load_verify_locations(cadata=trusted)
        except ssl.SSLError as exc:
            raise _invalid(DicomExceptionCode.InvalidCtxCafile, str(exc)) from exc
    elif policy is not PeerCertificatePolicy.IGNORE:
        log.info("no trusted CA certificates: every peer certificate will fail verification")
    if credentials is not None:
        try:
            credentials.load_into(context)
        except ssl.SSLError as exc:
            raise DicomException(
                DicomExceptionCode.CertificateLoadFailed, f"OpenSSL refused the certificate: {exc}"
            ) from exc
    if settings.dh_parameters_file:
        try:
            context.load_dh_params(settings.dh_parameters_file)
        except (OSError, ssl.SSLError) as exc:
            raise _invalid(
                DicomExceptionCode.InvalidCtx,
                f"cannot load DH parameters {settings.dh_parameters_file}: {exc}",
            ) from exc
    return context
