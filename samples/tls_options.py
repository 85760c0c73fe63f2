"""DCMTK's TLS options for the samples, and what they make of a ``DicomNet``.

``+tls KEYFILE CERTFILE`` (or ``+tla``: an SCU without a certificate) switches to TLS
(PS3.15 annex B); the other options say how keys are read, whom to trust, which
profile, and what is asked of the peer's certificate, as DCMTK's programs spell them.
"""

from __future__ import annotations

import argparse
import getpass

from dicomnet import (
    DicomNet,
    DicomNetSecurityMode,
    DicomOpenSslContextCreationSettings,
    DicomTlsCertificateType,
    signals,
)
from dicomnet.security import PROFILES, PeerCertificatePolicy, verification_flags_for

_PROFILE_OPTIONS = {profile.option: profile for profile in PROFILES}


def add_tls_options(parser: argparse.ArgumentParser, *, scu: bool) -> None:
    """The TLS options; ``+`` options need '+' among the parser's prefix characters."""
    # DCMTK spells "enable" with '+': let this parser read both prefixes (set before the
    # first '+' option, as argument groups copy it when they are made).
    if "+" not in parser.prefix_chars:
        parser.prefix_chars += "+"
    group = parser.add_argument_group("transport layer security (TLS) options")
    group.add_argument(
        "+tls",
        "--enable-tls",
        dest="tls_files",
        nargs=2,
        metavar=("KEYFILE", "CERTFILE"),
        help="use an authenticated secure TLS connection with this private key and certificate",
    )
    if scu:
        group.add_argument(
            "+tla",
            "--anonymous-tls",
            dest="tls_anonymous",
            action="store_true",
            help="use a secure TLS connection without a certificate",
        )
    password = group.add_mutually_exclusive_group()
    password.add_argument(
        "+ps",
        "--std-passwd",
        dest="tls_password",
        action="store_const",
        const=None,
        help="prompt for the private key password on the terminal (default)",
    )
    password.add_argument(
        "+pw", "--use-passwd", dest="tls_password", metavar="PASSWORD", help="private key password"
    )
    password.add_argument(
        "-pw",
        "--null-passwd",
        dest="tls_password",
        action="store_const",
        const="",
        help="use an empty string as the private key password",
    )
    key_format = group.add_mutually_exclusive_group()
    key_format.add_argument(
        "-pem",
        "--pem-keys",
        dest="tls_format",
        action="store_const",
        const=DicomTlsCertificateType.Pem,
        default=DicomTlsCertificateType.Pem,
        help="read keys and certificates as PEM files (default)",
    )
    key_format.add_argument(
        "-der",
        "--der-keys",
        dest="tls_format",
        action="store_const",
        const=DicomTlsCertificateType.Asn1,
        help="read keys and certificates as DER files",
    )
    group.add_argument(
        "+cf",
        "--add-cert-file",
        dest="tls_ca_files",
        action="append",
        default=[],
        metavar="FILE",
        help="trust the certificates in FILE",
    )
    group.add_argument(
        "+cd",
        "--add-cert-dir",
        dest="tls_ca_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="trust the certificates in the files of DIR",
    )
    profile = group.add_mutually_exclusive_group()
    for option, value in _PROFILE_OPTIONS.items():
        profile.add_argument(
            option,
            dest="tls_profile",
            action="store_const",
            const=value,
            help=value.name + (" (default)" if value is PROFILES[0] else ""),
        )
    peer = group.add_mutually_exclusive_group()
    for flag, long, policy, text in (
        (
            "-rc",
            "--require-peer-cert",
            PeerCertificatePolicy.REQUIRE,
            "verify, fail if absent (default)",
        ),
        ("-vc", "--verify-peer-cert", PeerCertificatePolicy.VERIFY_IF_PRESENT, "verify if present"),
        ("-ic", "--ignore-peer-cert", PeerCertificatePolicy.IGNORE, "do not verify"),
    ):
        peer.add_argument(
            flag,
            long,
            dest="tls_peer",
            action="store_const",
            const=policy,
            help=f"peer certificate: {text}",
        )
    group.add_argument(
        "--dhparam", dest="tls_dhparam", metavar="FILE", help="DH parameters for DHE suites"
    )


def tls_settings(args: argparse.Namespace) -> DicomOpenSslContextCreationSettings | None:
    """The settings the options ask for; None without +tls/+tla (plain TCP)."""
    options = vars(args)
    if not options.get("tls_files") and not options.get("tls_anonymous"):
        return None
    policy = args.tls_peer or PeerCertificatePolicy.REQUIRE
    return DicomOpenSslContextCreationSettings(
        verification_flags=verification_flags_for(policy),
        profile=args.tls_profile or PROFILES[0],
        ca_files=tuple(args.tls_ca_files),
        ca_directories=tuple(args.tls_ca_dirs),
        ca_type=args.tls_format,
        private_key_password=args.tls_password,
        dh_parameters_file=args.tls_dhparam,
    )


def _prompt(net: DicomNet, encryption: bool) -> str:
    return getpass.getpass("private key password: ")


def apply_tls(net: DicomNet, args: argparse.Namespace) -> None:
    """Switch ``net`` to TLS as the options say (nothing without +tls/+tla); call before
    ``Connect`` or ``Listen``. A server's accepted connections use its TLS."""
    settings = tls_settings(args)
    if settings is None:
        return
    net.Initialize(net.temp_path, DicomNetSecurityMode.Tls, settings)
    if args.tls_files:
        key_file, certificate_file = args.tls_files
        net.SetTlsClientCertificate(certificate_file, args.tls_format, key_file)
    if settings.private_key_password is None:  # +ps: ask on the terminal if needed
        signals.OnPrivateKeyPassword.connect(_prompt, sender=net, weak=False)
