"""What each ``DicomTlsCipherSuiteType`` is: its OpenSSL name and its algorithms.

``SetTlsCipherSuiteByIndex`` lists suites by enum member; OpenSSL names them by
string; ``GetTls*Algorithm`` describe a suite. One table says all of it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..enums import (
    DicomTlsAuthenticationMethodType as Auth,
)
from ..enums import (
    DicomTlsCipherSuiteType as Suite,
)
from ..enums import (
    DicomTlsEncryptionMethodType as Cipher,
)
from ..enums import (
    DicomTlsExchangeMethodType as Exchange,
)
from ..enums import (
    DicomTlsMacMethodType as Mac,
)


class SuiteInfo(NamedTuple):
    openssl_name: str
    exchange: Exchange
    authentication: Auth
    encryption: Cipher
    key_bits: int
    mac: Mac


SUITES: dict[Suite, SuiteInfo] = {
    Suite.DheRsaWithDesCbcSha: SuiteInfo(
        "EDH-RSA-DES-CBC-SHA", Exchange.RsaSignedDhe, Auth.Rsa, Cipher.Des, 56, Mac.Sha1
    ),
    Suite.DheRsaWith3DesEdeCbcSha: SuiteInfo(
        "EDH-RSA-DES-CBC3-SHA", Exchange.RsaSignedDhe, Auth.Rsa, Cipher.ThreeDes, 168, Mac.Sha1
    ),
    Suite.DheRsaAes256Sha: SuiteInfo(
        "DHE-RSA-AES256-SHA", Exchange.RsaSignedDhe, Auth.Rsa, Cipher.Aes, 256, Mac.Sha1
    ),
    Suite.RsaWith3DesEdeCbcSha: SuiteInfo(
        "DES-CBC3-SHA", Exchange.Rsa, Auth.Rsa, Cipher.ThreeDes, 168, Mac.Sha1
    ),
    Suite.RsaWithAes128CbcSha: SuiteInfo(
        "AES128-SHA", Exchange.Rsa, Auth.Rsa, Cipher.Aes, 128, Mac.Sha1
    ),
    Suite.DheRsaWithAes128GcmSha256: SuiteInfo(
        "DHE-RSA-AES128-GCM-SHA256", Exchange.RsaSignedDhe, Auth.Rsa, Cipher.Aes, 128, Mac.Sha256
    ),
    Suite.DheRsaWithAes256GcmSha384: SuiteInfo(
        "DHE-RSA-AES256-GCM-SHA384", Exchange.RsaSignedDhe, Auth.Rsa, Cipher.Aes, 256, Mac.Sha384
    ),
    Suite.EcdheEcdsaWithAes128GcmSha256: SuiteInfo(
        "ECDHE-ECDSA-AES128-GCM-SHA256", Exchange.Ecdhe, Auth.Ecdsa, Cipher.Aes, 128, Mac.Sha256
    ),
    Suite.EcdheEcdsaWithAes256GcmSha384: SuiteInfo(
        "ECDHE-ECDSA-AES256-GCM-SHA384", Exchange.Ecdhe, Auth.Ecdsa, Cipher.Aes, 256, Mac.Sha384
    ),
    Suite.EcdheRsaWithAes128GcmSha256: SuiteInfo(
        "ECDHE-RSA-AES128-GCM-SHA256", Exchange.Ecdhe, Auth.Rsa, Cipher.Aes, 128, Mac.Sha256
    ),
    Suite.EcdheRsaWithAes256GcmSha384: SuiteInfo(
        "ECDHE-RSA-AES256-GCM-SHA384", Exchange.Ecdhe, Auth.Rsa, Cipher.Aes, 256, Mac.Sha384
    ),
    Suite.EcdheRsaWithChacha20Poly1305Sha256: SuiteInfo(
        "ECDHE-RSA-CHACHA20-POLY1305", Exchange.Ecdhe, Auth.Rsa, Cipher.Chacha20, 256, Mac.Sha256
    ),
    Suite.EcdheEcdsaWithChacha20Poly1305Sha256: SuiteInfo(
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        Exchange.Ecdhe,
        Auth.Ecdsa,
        Cipher.Chacha20,
        256,
        Mac.Sha256,
    ),
    # TLS 1.3 suites name no key exchange or authentication: (EC)DHE and the certificate.
    Suite.Tls13Aes128GcmSha256: SuiteInfo(
        "TLS_AES_128_GCM_SHA256", Exchange.Ecdhe, Auth.None_, Cipher.Aes, 128, Mac.Sha256
    ),
    Suite.Tls13Aes256GcmSha384: SuiteInfo(
        "TLS_AES_256_GCM_SHA384", Exchange.Ecdhe, Auth.None_, Cipher.Aes, 256, Mac.Sha384
    ),
    Suite.Tls13Chacha20Poly1305Sha256: SuiteInfo(
        "TLS_CHACHA20_POLY1305_SHA256", Exchange.Ecdhe, Auth.None_, Cipher.Chacha20, 256, Mac.Sha256
    ),
}

_BY_NAME = {info.openssl_name: suite for suite, info in SUITES.items()}


def suite_named(openssl_name: str) -> Suite:
    """The member for an OpenSSL suite name; ``None_`` for one dicomnet does not list."""
    return _BY_NAME.get(openssl_name, Suite.None_)


def openssl_names(suites: list[Suite]) -> tuple[str, ...]:
    """The OpenSSL names of suites (TLS 1.3 ones are left out: OpenSSL always offers
    them and ``ssl`` cannot narrow them)."""
    return tuple(
        SUITES[suite].openssl_name
        for suite in suites
        if suite in SUITES and not SUITES[suite].openssl_name.startswith("TLS_")
    )
