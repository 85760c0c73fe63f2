"""Reading certificates and private keys (PEM, DER, PKCS#12; encrypted keys) with
``cryptography``, and handing them to an ``ssl.SSLContext`` without a clear key on disk.

``ssl`` loads a certificate chain only from files. The key is therefore written
re-encrypted under a one-time random password to a private (0600) temporary file that
is removed as soon as ``load_cert_chain`` has read it.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ..enums import DicomTlsCertificateType
from ..errors import DicomException, DicomExceptionCode

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | dsa.DSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
PasswordSource = Callable[[], str | None]
"""Asked for the key's password when the key is encrypted and none was given."""


@dataclass(frozen=True)
class Credentials:
    """An own certificate chain (leaf first) and its private key."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateKey

    def load_into(self, context: ssl.SSLContext) -> None:
        """Give the chain and key to ``context``; the key never lies on disk in clear."""
        password = secrets.token_urlsafe(32).encode()
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        ) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)
        descriptor, name = tempfile.mkstemp(prefix="dicomnet-tls-", suffix=".pem")  # 0600
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            # The key (first) and then the chain: load_cert_chain finds both in one file.
            context.load_cert_chain(name, name, password)
        finally:
            os.unlink(name)


def _read(path: str, what: str, code: DicomExceptionCode) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DicomException(code, f"cannot read the {what} {path}: {exc.strerror}") from exc


def load_certificates(path: str, file_type: DicomTlsCertificateType) -> list[x509.Certificate]:
    """Every certificate in a PEM file, or the one of a DER file."""
    data = _read(path, "certificate file", DicomExceptionCode.CertificateLoadFailed)
    try:
        if file_type is DicomTlsCertificateType.Asn1:
            return [x509.load_der_x509_certificate(data)]
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise DicomException(
            DicomExceptionCode.CertificateLoadFailed,
            f"{path} is not a {file_type.name} certificate file: {exc}",
        ) from exc
    return certificates


def _load_key(data: bytes, file_type: DicomTlsCertificateType, password: bytes | None) -> object:
    if file_type is DicomTlsCertificateType.Asn1:
        return serialization.load_der_private_key(data, password)
    return serialization.load_pem_private_key(data, password)


def load_private_key(
    path: str, file_type: DicomTlsCertificateType, password: str | None, ask: PasswordSource
) -> PrivateKey:
    """The private key of a PEM or DER file; an encrypted key is opened with
    ``password`` or, without one, with what ``ask`` answers."""
    data = _read(path, "private key file", DicomExceptionCode.PrivateKeyLoadFailed)
    secret = password.encode() if password is not None else None
    try:
        try:
            key = _load_key(data, file_type, secret)
        except TypeError:  # encrypted and no password given (or one given, not needed)
            if secret is not None:
                key = _load_key(data, file_type, None)
            else:
                answer = ask()
                if answer is None:
                    raise DicomException(
                        DicomExceptionCode.PrivateKeyLoadFailed,
                        f"the private key {path} is encrypted and no password was given",
                    ) from None
                key = _load_key(data, file_type, answer.encode())
    except ValueError as exc:
        raise DicomException(
            DicomExceptionCode.PrivateKeyLoadFailed,
            f"cannot read the private key {path} (wrong password or not a "
            f"{file_type.name} key): {exc}",
        ) from exc
    if not isinstance(key, PrivateKey):
        raise DicomException(DicomExceptionCode.PrivateKeyLoadFailed, f"{path}: not a signing key")
    return key


def load_pkcs12(path: str, password: str | None, ask: PasswordSource) -> Credentials:
    """The key, certificate and chain of a PKCS#12 file."""
    data = _read(path, "PKCS#12 file", DicomExceptionCode.CertificateLoadFailed)
    secret = password.encode() if password is not None else None
    try:
        try:
            key, leaf, extra = pkcs12.load_key_and_certificates(data, secret)
        except ValueError:
            if secret is not None:
                raise
            answer = ask()
            if answer is None:
                raise
            key, leaf, extra = pkcs12.load_key_and_certificates(data, answer.encode())
    except ValueError as exc:
        raise DicomException(
            DicomExceptionCode.PrivateKeyLoadFailed,
            f"cannot open the PKCS#12 file {path} (wrong password or damaged): {exc}",
        ) from exc
    if key is None or leaf is None or not isinstance(key, PrivateKey):
        raise DicomException(
            DicomExceptionCode.CertificateLoadFailed,
            f"the PKCS#12 file {path} holds no certificate with its private key",
        )
    return _matched(Credentials((leaf, *extra), key), path)


def load_credentials(
    certificate_file: str,
    certificate_type: DicomTlsCertificateType,
    key_file: str | None,
    password: str | None,
    ask: PasswordSource,
) -> Credentials:
    """What ``SetTlsClientCertificate`` names: a certificate file (PEM: the chain, and
    the key too when ``key_file`` is None) and a key file of the same format, or one
    PKCS#12 file."""
    if certificate_type is DicomTlsCertificateType.Pkcs12:
        return load_pkcs12(certificate_file, password, ask)
    chain = load_certificates(certificate_file, certificate_type)
    key = load_private_key(key_file or certificate_file, certificate_type, password, ask)
    return _matched(Credentials(tuple(chain), key), key_file or certificate_file)


def _matched(credentials: Credentials, key_path: str) -> Credentials:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if credentials.key.public_key().public_bytes(der, public) != credentials.chain[
        0
    ].public_key().public_bytes(der, public):
        raise DicomException(
            DicomExceptionCode.KeysMismatch,
            f"the private key {key_path} does not belong to the certificate "
            f"{credentials.chain[0].subject.rfc4514_string()}",
        )
    return credentials


def trusted_certificates_pem(
    files: tuple[str, ...], directories: tuple[str, ...], file_type: DicomTlsCertificateType
) -> str:
    """The trusted CA certificates of files and directories, as PEM for ``cadata``.
    In a directory every file that holds certificates counts; others are skipped."""
    certificates: list[x509.Certificate] = []
    for path in files:
        certificates += load_certificates(path, file_type)
    for directory in directories:
        try:
            entries = sorted(Path(directory).iterdir())
        except OSError as exc:
            raise DicomException(
                DicomExceptionCode.InvalidCtxCafile,
                f"cannot read the certificate directory {directory}: {exc.strerror}",
            ) from exc
        for entry in entries:
            if not entry.is_file():
                continue
            data = entry.read_bytes()
            try:
                certificates += (
                    x509.load_pem_x509_certificates(data)
                    if b"-----BEGIN" in data
                    else [x509.load_der_x509_certificate(data)]
                )
            except ValueError:
                continue
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def describe(certificate_der: bytes) -> str:
    """A certificate in one line: subject, issuer and validity (for ``OnVerify``)."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    return (
        f"subject={certificate.subject.rfc4514_string()}; "
        f"issuer={certificate.issuer.rfc4514_string()}; "
        f"valid {certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} to "
        f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
    )


def public_key_bits(certificate_der: bytes) -> int:
    """The size of a certificate's public key in bits (0 when it has none that says)."""
    key = x509.load_der_x509_certificate(certificate_der).public_key()
    return int(getattr(key, "key_size", 0))
