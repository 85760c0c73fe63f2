"""Certificates and keys for the TLS tests, made at test time with ``cryptography``.

``make_pki(directory)`` writes a small PKI: a trusted CA, a second CA nobody trusts,
server and client certificates signed by the CA (RSA, and ECDSA for the extended
profile), and the bad ones the refusal tests need (expired, not yet valid, self-signed,
signed by the wrong CA). Keys are written in the formats the loaders read: PEM, DER,
encrypted PEM and PKCS#12. Nothing here is ever committed: every run makes its own.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASSWORD = "correct horse"
_PEM = serialization.Encoding.PEM
_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8
_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Identity:
    """One certificate and its key on disk (PEM both; ``combined`` holds key and cert)."""

    certificate: Path
    key: Path
    combined: Path


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca: Path  # the trusted CA certificate (PEM)
    ca_der: Path
    server: Identity
    client: Identity
    server_ecdsa: Identity
    expired: Identity
    not_yet_valid: Identity
    self_signed: Identity
    wrong_ca: Identity  # signed by a CA nobody trusts
    client_der_certificate: Path
    client_der_key: Path
    client_encrypted_key: Path  # PEM, encrypted with PASSWORD
    client_encrypted_der_key: Path  # DER (PKCS#8), encrypted with PASSWORD
    client_pkcs12: Path  # with PASSWORD


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dicomnet tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(
    subject: str,
    key: Key,
    issuer: tuple[x509.Name, Key] | None,
    *,
    ca: bool = False,
    not_before: datetime.datetime = _NOW - _DAY,
    not_after: datetime.datetime = _NOW + 30 * _DAY,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        ).add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _identity(directory: Path, stem: str, certificate: x509.Certificate, key: Key) -> Identity:
    key_pem = key.private_bytes(_PEM, _PKCS8, serialization.NoEncryption())
    cert_pem = certificate.public_bytes(_PEM)
    return Identity(
        _write(directory / f"{stem}.crt", cert_pem),
        _write(directory / f"{stem}.key", key_pem),
        _write(directory / f"{stem}.pem", key_pem + cert_pem),
    )


def make_pki(directory: Path) -> Pki:
    ca_key, other_ca_key = _rsa(), _rsa()
    ca_cert = _certificate("dicomnet test CA", ca_key, None, ca=True)
    other_ca = _certificate("untrusted CA", other_ca_key, None, ca=True)
    by_ca = (ca_cert.subject, ca_key)

    def issued(stem: str, key: Key | None = None, **validity: datetime.datetime) -> Identity:
        key = key or _rsa()
        return _identity(directory, stem, _certificate(stem, key, by_ca, **validity), key)

    client_key = _rsa()
    client = _certificate("client", client_key, by_ca)
    self_signed_key = _rsa()
    wrong_key = _rsa()
    encrypted = serialization.BestAvailableEncryption(PASSWORD.encode())
    return Pki(
        directory=directory,
        ca=_write(directory / "ca.crt", ca_cert.public_bytes(_PEM)),
        ca_der=_write(directory / "ca.der", ca_cert.public_bytes(_DER)),
        server=issued("server"),
        client=_identity(directory, "client", client, client_key),
        server_ecdsa=issued("server-ecdsa", ec.generate_private_key(ec.SECP256R1())),
        expired=issued("expired", not_before=_NOW - 60 * _DAY, not_after=_NOW - 30 * _DAY),
        not_yet_valid=issued(
            "not-yet-valid", not_before=_NOW + 30 * _DAY, not_after=_NOW + 60 * _DAY
        ),
        self_signed=_identity(
            directory,
            "self-signed",
            _certificate("self-signed", self_signed_key, None),
            self_signed_key,
        ),
        wrong_ca=_identity(
            directory,
            "wrong-ca",
            _certificate("wrong-ca", wrong_key, (other_ca.subject, other_ca_key)),
            wrong_key,
        ),
        client_der_certificate=_write(directory / "client.der", client.public_bytes(_DER)),
        client_der_key=_write(
            directory / "client-key.der",
            client_key.private_bytes(_DER, _PKCS8, serialization.NoEncryption()),
        ),
        client_encrypted_key=_write(
            directory / "client-encrypted.key", client_key.private_bytes(_PEM, _PKCS8, encrypted)
        ),
        client_encrypted_der_key=_write(
            directory / "client-encrypted-key.der",
            client_key.private_bytes(_DER, _PKCS8, encrypted),
        ),
        client_pkcs12=_write(
            directory / "client.p12",
            pkcs12.serialize_key_and_certificates(
                b"client", client_key, client, [ca_cert], encrypted
            ),
        ),
    )
