"""User identity and access-control options of the samples, spelled as DCMTK spells them.

SCUs: ``-usr NAME`` (with ``-pwd PASSCODE`` or ``-epw``), ``-kt FILE``, ``--saml FILE``,
``--jwt FILE`` and ``-rsp`` (request a positive response and fail without one, as
DCMTK's storescu does). SCPs: ``--user-file FILE`` (one ``name`` or ``name:passcode`` per
line; requests without a matching identity are rejected), ``--allow-calling AET`` /
``--deny-calling AET``, ``--allow-peer NET`` / ``--deny-peer NET`` (repeatable) and
``--max-associations N``.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path
from typing import Any

from dicomnet import DicomAssociate, DicomException, DicomExceptionCode
from dicomnet.access import AccessControl, Network
from dicomnet.identity import IdentityPolicy, UserIdentity, UserTable


def _file_bytes(path: str) -> bytes:
    """An option's file, read when the options are parsed (a missing file is a usage error)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None


def add_identity_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("user identity negotiation")
    kind = group.add_mutually_exclusive_group()
    kind.add_argument("-usr", "--user", metavar="NAME", help="authenticate with user name NAME")
    kind.add_argument(
        "-kt", "--kerberos", type=_file_bytes, metavar="FILE", help="Kerberos ticket file"
    )
    kind.add_argument("--saml", type=_file_bytes, metavar="FILE", help="SAML assertion file")
    kind.add_argument("--jwt", type=_file_bytes, metavar="FILE", help="JSON Web Token file")
    passcode = group.add_mutually_exclusive_group()
    passcode.add_argument("-pwd", "--password", metavar="PASSCODE", help="passcode (with -usr)")
    passcode.add_argument(
        "-epw", "--empty-password", action="store_true", help="send an empty passcode (with -usr)"
    )
    group.add_argument(
        "-rsp",
        "--pos-response",
        action="store_true",
        help="request a positive response and fail when the peer sends none",
    )


def identity_from(args: argparse.Namespace) -> UserIdentity | None:
    """The identity the options propose; DicomException (Parameter) for options that do
    not go together."""
    has_passcode = args.password is not None or args.empty_password
    if args.user is not None:
        if has_passcode:
            return UserIdentity.username_and_passcode(args.user, args.password or "")
        return UserIdentity.username(args.user)
    if has_passcode:
        raise DicomException(DicomExceptionCode.Parameter, "-pwd and -epw need -usr")
    if args.kerberos is not None:
        return UserIdentity.kerberos(args.kerberos)
    if args.saml is not None:
        return UserIdentity.saml(args.saml)
    if args.jwt is not None:
        return UserIdentity.jwt(args.jwt.strip())  # a token file usually ends in a newline
    if args.pos_response:
        raise DicomException(
            DicomExceptionCode.Parameter, "-rsp needs an identity (-usr, -kt, --saml or --jwt)"
        )
    return None


def apply_identity(request: DicomAssociate, identity: UserIdentity | None, required: bool) -> None:
    """Propose ``identity`` in ``request``; ``required``: -rsp."""
    if identity is not None:
        request.propose_user_identity(identity, required, required)


def _user_table(path: str) -> UserTable:
    try:
        return UserTable.from_file(path)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"user file {path}: {exc}") from None


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_access_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("access control")
    group.add_argument(
        "--user-file",
        type=_user_table,
        metavar="FILE",
        help="accept only user identities listed in FILE (name or name:passcode per line)",
    )
    for flag, what in (("allow", "accept only"), ("deny", "reject")):
        group.add_argument(
            f"--{flag}-calling",
            action="append",
            default=[],
            metavar="AET",
            help=f"{what} this calling AE title (repeatable)",
        )
        group.add_argument(
            f"--{flag}-peer",
            action="append",
            type=_network,
            default=[],
            metavar="NET",
            help=f"{what} peers in this address or network, e.g. 10.0.0.0/8 (repeatable)",
        )
    group.add_argument(
        "--max-associations",
        type=int,
        metavar="N",
        help="reject associations beyond N open at once (transient, local limit exceeded)",
    )


def access_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``AcceptingServer`` keyword arguments of the access options."""
    identity = None
    if args.user_file is not None:
        identity = IdentityPolicy(args.user_file, required=True)
    access = AccessControl.from_lists(
        allowed_calling=args.allow_calling,
        denied_calling=args.deny_calling,
        allowed_peers=args.allow_peer,
        denied_peers=args.deny_peer,
        max_associations=args.max_associations,
    )
    return {"access_control": access, "identity": identity}
