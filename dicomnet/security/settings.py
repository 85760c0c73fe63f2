"""``DicomOpenSslContextCreationSettings``: LEADTOOLS' TLS options, as one frozen value.

The positional fields are LEADTOOLS' constructor, in its order; the keyword-only ones
are dicomnet's (profile, more trusted certificates, a key password, DH parameters).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

from ..enums import (
    DicomOpenSslOptionsFlags,
    DicomOpenSslVerificationFlags,
    DicomSslMethodType,
    DicomTlsCertificateType,
)
from .profiles import BCP195_NON_DOWNGRADING, PeerCertificatePolicy, TlsProfile

DEFAULT_VERIFICATION = (
    DicomOpenSslVerificationFlags.Peer | DicomOpenSslVerificationFlags.FailIfNoPeerCertificate
)
DEFAULT_VERIFICATION_DEPTH = 9  # OpenSSL's own default is 100; DCMTK and LEADTOOLS use 9


@dataclass(frozen=True)
class DicomOpenSslContextCreationSettings:
    """How a TLS connection is set up.

    method_type: ``SslV23`` (the default) negotiates within the profile; ``TlsV1``,
        ``TlsV12`` and ``TlsV13`` pin one version (TLS 1.0 only with the legacy
        profile); SSL 2 and 3 are refused.
    certification_authorities_file_name: a file of trusted CA certificates.
    verification_flags: ``Peer | FailIfNoPeerCertificate`` (the default) requires and
        verifies the peer's certificate, ``Peer`` verifies it if presented, ``None_``
        ignores it.
    maximum_verification_depth: the most intermediate certificates in a peer's chain.
    options: OpenSSL options that further narrow the versions (``NoTlsV1``...).
    profile: the PS3.15 annex B profile (``dicomnet.security.profiles``).
    ca_files / ca_directories: more trusted certificates (every certificate file in a
        directory is read).
    ca_type: the format of the CA files (PEM or DER; a PEM file may hold several).
    private_key_password: the password of an encrypted private key; without it
        ``OnPrivateKeyPassword`` is asked.
    dh_parameters_file: DH parameters (PEM) for a server's DHE suites.
    """

    method_type: DicomSslMethodType = DicomSslMethodType.SslV23
    certification_authorities_file_name: str | None = None
    verification_flags: DicomOpenSslVerificationFlags = DEFAULT_VERIFICATION
    maximum_verification_depth: int = DEFAULT_VERIFICATION_DEPTH
    options: DicomOpenSslOptionsFlags = DicomOpenSslOptionsFlags.None_
    _: KW_ONLY  # the rest are dicomnet's own
    profile: TlsProfile = BCP195_NON_DOWNGRADING
    ca_files: tuple[str, ...] = ()
    ca_directories: tuple[str, ...] = ()
    ca_type: DicomTlsCertificateType = DicomTlsCertificateType.Pem
    private_key_password: str | None = None
    dh_parameters_file: str | None = None

    @property
    def peer_certificate(self) -> PeerCertificatePolicy:
        """The policy the verification flags mean (FailIfNoPeerCertificate alone, like
        OpenSSL, verifies nothing)."""
        flags = self.verification_flags
        if not flags & DicomOpenSslVerificationFlags.Peer:
            return PeerCertificatePolicy.IGNORE
        if flags & DicomOpenSslVerificationFlags.FailIfNoPeerCertificate:
            return PeerCertificatePolicy.REQUIRE
        return PeerCertificatePolicy.VERIFY_IF_PRESENT

    @property
    def trusted_files(self) -> tuple[str, ...]:
        first = self.certification_authorities_file_name
        return (first, *self.ca_files) if first else self.ca_files


def verification_flags_for(policy: PeerCertificatePolicy) -> DicomOpenSslVerificationFlags:
    """The flags of a peer certificate policy (the inverse of ``peer_certificate``)."""
    if policy is PeerCertificatePolicy.IGNORE:
        return DicomOpenSslVerificationFlags.None_
    if policy is PeerCertificatePolicy.VERIFY_IF_PRESENT:
        return DicomOpenSslVerificationFlags.Peer
    return DEFAULT_VERIFICATION
