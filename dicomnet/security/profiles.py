"""The TLS secure transport connection profiles of PS3.15 annex B, one value each.

A profile says which TLS versions and which TLS 1.2 cipher suites a connection may
use; ``TlsProfile`` holds that as data and the context builder (``context.py``) turns
it into an ``ssl.SSLContext``. A server applies its own order of preference. TLS 1.3
suites are OpenSSL's (all AEAD: AES-GCM and ChaCha20-Poly1305); the ``ssl`` module
cannot narrow them, and no profile needs it to.

``PeerCertificatePolicy`` is DCMTK's -rc/-vc/-ic choice for the peer's certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import Enum

_ECDHE_RSA_GCM = ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384")
_DHE_RSA_GCM = ("DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384")
_ECDHE_ECDSA_GCM = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384")
_ECDHE_CHACHA = ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305")


@dataclass(frozen=True)
class TlsProfile:
    """One secure transport connection profile.

    name: the profile's name in PS3.15 (and in log lines).
    option: the command-line option that selects it in DCMTK-style programs.
    minimum / maximum: the TLS versions allowed.
    tls12_ciphers: the TLS 1.2 (and older) suites, OpenSSL names, in preference order.
    security_level: OpenSSL's security level (``@SECLEVEL``): 2 keeps RSA and DH keys
        at 2048 bits or more; 0 lets TLS 1.0 and SHA-1 through (legacy only).
    ecdh_curve: the one elliptic curve offered for ECDHE, when the profile bounds it.
    warning: logged whenever a context with this profile is made (retired, legacy).
    """

    name: str
    option: str
    minimum: ssl.TLSVersion
    maximum: ssl.TLSVersion
    tls12_ciphers: tuple[str, ...]
    security_level: int = 2
    ecdh_curve: str | None = None
    warning: str = ""

    def cipher_string(self, suites: tuple[str, ...] = ()) -> str:
        """The OpenSSL cipher list: ``suites`` (an application's own choice) or the
        profile's, with its security level."""
        return ":".join((*(suites or self.tls12_ciphers), f"@SECLEVEL={self.security_level}"))


BCP195_NON_DOWNGRADING = TlsProfile(
    name="Non-downgrading BCP 195 TLS Secure Transport Connection Profile",
    option="--profile-bcp195-nd",
    minimum=ssl.TLSVersion.TLSv1_2,
    maximum=ssl.TLSVersion.TLSv1_3,
    tls12_ciphers=(*_ECDHE_RSA_GCM, *_DHE_RSA_GCM),
)
"""The default: TLS 1.2 and 1.3, never older; ECDHE/DHE with RSA and AES-GCM."""

BCP195_EXTENDED = TlsProfile(
    name="Extended BCP 195 TLS Secure Transport Connection Profile",
    option="--profile-bcp195-ex",
    minimum=ssl.TLSVersion.TLSv1_2,
    maximum=ssl.TLSVersion.TLSv1_2,
    tls12_ciphers=(*_ECDHE_ECDSA_GCM, *_ECDHE_RSA_GCM, *_DHE_RSA_GCM),
    ecdh_curve="prime256v1",
)
"""TLS 1.2 only; adds ECDHE-ECDSA; DHE groups of 2048 bits or more, ECDHE on P-256."""

BCP195_RFC8996 = TlsProfile(
    name="BCP 195 RFC 8996 TLS Secure Transport Connection Profile",
    option="--profile-8996",
    minimum=ssl.TLSVersion.TLSv1_2,
    maximum=ssl.TLSVersion.TLSv1_3,
    tls12_ciphers=(*_ECDHE_ECDSA_GCM, *_ECDHE_RSA_GCM, *_ECDHE_CHACHA),
)
"""TLS 1.2 and 1.3 (RFC 8996, RFC 9325), ephemeral ECDH only, AEAD suites."""

BCP195_RFC8996_MODIFIED = TlsProfile(
    name="Modified BCP 195 RFC 8996 TLS Secure Transport Connection Profile",
    option="--profile-8996-mod",
    minimum=ssl.TLSVersion.TLSv1_2,
    maximum=ssl.TLSVersion.TLSv1_3,
    tls12_ciphers=(*_ECDHE_ECDSA_GCM, *_ECDHE_RSA_GCM),
)
"""As ``BCP195_RFC8996`` with AES-GCM suites only for TLS 1.2."""

BCP195_RETIRED = TlsProfile(
    name="BCP 195 TLS Secure Transport Connection Profile (retired)",
    option="--profile-bcp195",
    minimum=ssl.TLSVersion.TLSv1,
    maximum=ssl.TLSVersion.TLSv1_3,
    tls12_ciphers=(
        *_ECDHE_RSA_GCM,
        *_DHE_RSA_GCM,
        "ECDHE-RSA-AES128-SHA",
        "DHE-RSA-AES128-SHA",
    ),
    warning="the retired BCP 195 profile lets a peer downgrade to TLS 1.0 or 1.1",
)
"""RFC 7525's profile: TLS 1.2 preferred, a fallback to TLS 1.0/1.1 permitted (where
OpenSSL's security level still allows those versions)."""

LEGACY = TlsProfile(
    name="legacy TLS (no PS3.15 profile)",
    option="--profile-legacy",
    minimum=ssl.TLSVersion.TLSv1,
    maximum=ssl.TLSVersion.TLSv1_3,
    tls12_ciphers=(
        *_ECDHE_RSA_GCM,
        *_DHE_RSA_GCM,
        "ECDHE-RSA-AES128-SHA",
        "DHE-RSA-AES128-SHA",
        "AES128-SHA",
        "DES-CBC3-SHA",
    ),
    security_level=0,
    warning="LEGACY TLS: TLS 1.0/1.1, RSA key exchange and 3DES are allowed; "
    "use this only to reach a peer that cannot do better",
)
"""An explicit opt-in for old peers (TLS 1.0, RSA key exchange, 3DES): logged loudly."""

PROFILES: tuple[TlsProfile, ...] = (
    BCP195_NON_DOWNGRADING,
    BCP195_RETIRED,
    BCP195_EXTENDED,
    BCP195_RFC8996,
    BCP195_RFC8996_MODIFIED,
    LEGACY,
)
"""Every profile, the default first."""


class PeerCertificatePolicy(Enum):
    """What is asked of the peer's certificate (DCMTK's -rc, -vc, -ic)."""

    REQUIRE = "require"  # verify it, fail if there is none (the default)
    VERIFY_IF_PRESENT = "verify"  # verify it when the peer sends one
    IGNORE = "ignore"  # do not verify
