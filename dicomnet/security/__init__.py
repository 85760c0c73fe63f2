"""Security layers that plug between the socket and the protocol engine (PS3.15)."""

from .base import PlainLayer, SecurityLayer
from .profiles import (
    BCP195_EXTENDED,
    BCP195_NON_DOWNGRADING,
    BCP195_RETIRED,
    BCP195_RFC8996,
    BCP195_RFC8996_MODIFIED,
    LEGACY,
    PROFILES,
    PeerCertificatePolicy,
    TlsProfile,
)
from .settings import DicomOpenSslContextCreationSettings, verification_flags_for
from .tls import TlsError, TlsLayer
from .tls_surface import DicomOpenSslVersion

__all__ = [
    "BCP195_EXTENDED",
    "BCP195_NON_DOWNGRADING",
    "BCP195_RETIRED",
    "BCP195_RFC8996",
    "BCP195_RFC8996_MODIFIED",
    "LEGACY",
    "PROFILES",
    "DicomOpenSslContextCreationSettings",
    "DicomOpenSslVersion",
    "PeerCertificatePolicy",
    "PlainLayer",
    "SecurityLayer",
    "TlsError",
    "TlsLayer",
    "TlsProfile",
    "verification_flags_for",
]
