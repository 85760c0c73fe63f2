"""Certificates for the demo's TLS exchange: a CA of its own, and a server and a client
certificate it issued (RSA 2048, SHA-256, valid for a day), written as PEM files.

For a demonstration only: real deployments use certificates from their own PKI.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    key: Path
    certificate: Path


@dataclass(frozen=True)
class DemoPki:
    ca_certificate: Path
    server: KeyPair
    client: KeyPair


def make_demo_pki(directory: Path) -> DemoPki:
    """Make the CA, the server's and the client's key and certificate in ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _signed(
        _builder("dicomnet demo CA", ca_key, now, ca=True), ca_key, _name("dicomnet demo CA")
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(stem: str) -> KeyPair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certificate = _signed(_builder(stem, key, now, ca=False), ca_key, ca.subject)
        key_path, certificate_path = directory / f"{stem}.key", directory / f"{stem}.crt"
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return KeyPair(key_path, certificate_path)

    return DemoPki(ca_path, issue("server"), issue("client"))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, key: rsa.RSAPrivateKey, now: datetime.datetime, *, ca: bool
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        return builder.add_extension(usage, critical=True)
    purposes = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    return builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)


def _signed(
    builder: x509.CertificateBuilder, issuer_key: rsa.RSAPrivateKey, issuer: x509.Name
) -> x509.Certificate:
    return builder.issuer_name(issuer).sign(issuer_key, hashes.SHA256())
