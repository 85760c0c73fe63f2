"""User identity negotiation (PS3.7 D.3.3.7): what a requestor proposes, how an acceptor
decides, and the built-in table of users.

``UserIdentity`` is the typed, frozen form of the 58H sub-item (username, username and
passcode, Kerberos service ticket, SAML assertion, JSON Web Token); its ``repr`` never
shows a passcode or token. ``IdentityDecision`` is an acceptor's verdict: accept,
accept with a server response, or reject. ``response_for`` says what the 59H sub-item
of the A-ASSOCIATE-AC holds: nothing unless a positive response was requested; then a
zero-length response for types 1 and 2 and the validator's bytes (a Kerberos server
ticket, a SAML response) for the others. A refused identity is answered with
A-ASSOCIATE-RJ rejected-permanent, source "service provider (ACSE)", reason
no-reason-given (``IDENTITY_REJECT``, D.3.3.7.3): retrying the same identity cannot help.

``UserTable`` is a validator over usernames and passcodes, read from a file of ``name``
or ``name:passcode`` lines; passcodes are compared in constant time and never logged.

No I/O happens here except ``UserTable.from_file``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from .enums import (
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
)
from .errors import AssociationAborted
from .pdu import UserIdentityRQ

if TYPE_CHECKING:
    from .associate import DicomAssociate

__all__ = [
    "IDENTITY_REJECT",
    "IdentityDecision",
    "IdentityPolicy",
    "IdentityValidator",
    "UserIdentity",
    "UserIdentityNotConfirmed",
    "UserIdentityType",
    "UserTable",
    "response_for",
]


class UserIdentityType(IntEnum):
    """User-Identity-Type of the 58H sub-item (PS3.7 Table D.3-14)."""

    Username = 1
    UsernameAndPasscode = 2
    Kerberos = 3
    Saml = 4
    Jwt = 5


_USERNAME_TYPES = (UserIdentityType.Username, UserIdentityType.UsernameAndPasscode)

IDENTITY_REJECT = (
    DicomAssociateRejectResultType.Permanent,
    DicomAssociateRejectSourceType.Provider1,
    # Reason 1 of the ACSE provider ("no reason given"); the enum's member for 1 is
    # named for the service-user, the wire value is the same.
    DicomAssociateRejectReasonType.Unknown,
)
"""(result, source, reason) of the A-ASSOCIATE-RJ for a refused user identity."""


def _utf8(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


@dataclass(frozen=True, repr=False)
class UserIdentity:
    """A proposed user identity. Build one with the class methods::

    UserIdentity.username_and_passcode("alice", "s3cret", positive_response_requested=True)
    """

    kind: UserIdentityType
    primary: bytes
    secondary: bytes = b""
    positive_response_requested: bool = False

    @classmethod
    def username(cls, name: str, *, positive_response_requested: bool = False) -> UserIdentity:
        return cls(UserIdentityType.Username, _utf8(name), b"", positive_response_requested)

    @classmethod
    def username_and_passcode(
        cls, name: str, passcode: str | bytes, *, positive_response_requested: bool = False
    ) -> UserIdentity:
        return cls(
            UserIdentityType.UsernameAndPasscode,
            _utf8(name),
            _utf8(passcode),
            positive_response_requested,
        )

    @classmethod
    def kerberos(cls, ticket: bytes, *, positive_response_requested: bool = False) -> UserIdentity:
        return cls(UserIdentityType.Kerberos, bytes(ticket), b"", positive_response_requested)

    @classmethod
    def saml(
        cls, assertion: bytes | str, *, positive_response_requested: bool = False
    ) -> UserIdentity:
        return cls(UserIdentityType.Saml, _utf8(assertion), b"", positive_response_requested)

    @classmethod
    def jwt(cls, token: bytes | str, *, positive_response_requested: bool = False) -> UserIdentity:
        return cls(UserIdentityType.Jwt, _utf8(token), b"", positive_response_requested)

    @classmethod
    def from_item(cls, item: UserIdentityRQ) -> UserIdentity:
        """The typed form of a received 58H sub-item (its type is one of 1..5: the
        association layer refuses the others)."""
        return cls(
            UserIdentityType(item.identity_type),
            bytes(item.primary_field),
            bytes(item.secondary_field),
            bool(item.positive_response_requested),
        )

    def to_item(self) -> UserIdentityRQ:
        return UserIdentityRQ(
            int(self.kind), self.positive_response_requested, self.primary, self.secondary
        )

    @property
    def name(self) -> str | None:
        """The username of types 1 and 2 (invalid UTF-8 replaced), else None."""
        if self.kind not in _USERNAME_TYPES:
            return None
        return self.primary.decode("utf-8", "replace")

    def describe(self) -> str:
        """For logs: the type and the username, never a passcode, ticket or token."""
        name = self.name
        who = f" {name!r}" if name is not None else f" ({len(self.primary)} bytes)"
        return f"{self.kind.name}{who}"

    def __repr__(self) -> str:
        return (
            f"<UserIdentity {self.describe()} "
            f"positive_response_requested={self.positive_response_requested}>"
        )


@dataclass(frozen=True)
class IdentityDecision:
    """An acceptor's verdict on a user identity. ``server_response`` is sent in the 59H
    sub-item when the requestor asked for a positive response (types 3 to 5); ``reason``
    is logged on rejection (never put a passcode in it)."""

    accepted: bool
    server_response: bytes = b""
    reason: str = ""

    @classmethod
    def accept(cls, server_response: bytes = b"") -> IdentityDecision:
        return cls(True, bytes(server_response))

    @classmethod
    def reject(cls, reason: str) -> IdentityDecision:
        return cls(False, b"", reason)


def response_for(identity: UserIdentity, decision: IdentityDecision) -> bytes | None:
    """The 59H server response answering ``identity`` accepted by ``decision``, or None
    for no 59H sub-item (PS3.7 D.3.3.7.2: only when a positive response was requested;
    zero length for types 1 and 2)."""
    if not decision.accepted or not identity.positive_response_requested:
        return None
    if identity.kind in _USERNAME_TYPES:
        return b""
    return decision.server_response


IdentityValidator = Callable[[UserIdentity, "DicomAssociate"], IdentityDecision]
"""``validator(identity, request)``: the decision on one association's identity."""


@dataclass(frozen=True)
class IdentityPolicy:
    """How an acceptor treats user identity. ``validator`` decides on a proposed identity
    (None: every identity is accepted, as by an acceptor without user identity support,
    and no response is sent); ``required`` rejects requests that propose none."""

    validator: IdentityValidator | None = None
    required: bool = False

    def decide(
        self, identity: UserIdentity | None, request: DicomAssociate
    ) -> IdentityDecision | None:
        """The decision, or None when nothing checks identities (then the accept
        carries no response: the acceptor does not claim to have authenticated)."""
        if identity is None:
            if self.required:
                return IdentityDecision.reject("no user identity proposed; one is required")
            return None
        if self.validator is None:
            return None
        return self.validator(identity, request)


class UserTable:
    """The users an acceptor knows: username -> passcode, or None where the username
    alone identifies the user. A validator (``table(identity, request)``):

    - a ``name`` entry accepts that username, alone or with any passcode;
    - a ``name:passcode`` entry accepts that username with that passcode only;
    - everything else is refused, Kerberos, SAML and JWT included (they need a validator
      that understands them).
    """

    def __init__(self, users: Mapping[str, str | bytes | None]) -> None:
        self._users: dict[str, bytes | None] = {}
        for name, passcode in users.items():
            if not name or ":" in name or name != name.strip():
                raise ValueError(f"user name {name!r} is empty, has a colon or outer spaces")
            self._users[name] = None if passcode is None else _utf8(passcode)

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "user table") -> UserTable:
        """One ``name`` or ``name:passcode`` per line; blank lines and ``#`` comments are
        skipped. The passcode is everything after the first colon."""
        users: dict[str, str | None] = {}
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, colon, passcode = line.partition(":")
            name = name.strip()
            if not name:
                raise ValueError(f"{source} line {number}: no user name")
            if name in users:
                raise ValueError(f"{source} line {number}: user {name!r} appears twice")
            users[name] = passcode if colon else None
        return cls(users)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> UserTable:
        """``from_lines`` of a UTF-8 file; OSError and ValueError say what is wrong."""
        with open(path, encoding="utf-8") as file:
            return cls.from_lines(file, os.fspath(path))

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, name: object) -> bool:
        return name in self._users

    def __repr__(self) -> str:
        return f"<UserTable of {len(self._users)} user(s)>"

    def __call__(
        self, identity: UserIdentity, request: DicomAssociate | None = None
    ) -> IdentityDecision:
        name = identity.name
        if name is None:
            return IdentityDecision.reject(f"{identity.kind.name} identities are not checked here")
        if name not in self._users:
            return IdentityDecision.reject(f"unknown user {name!r}")
        expected = self._users[name]
        if expected is None:
            return IdentityDecision.accept()
        if identity.kind is not UserIdentityType.UsernameAndPasscode:
            return IdentityDecision.reject(f"user {name!r} needs a passcode")
        if not hmac.compare_digest(identity.secondary, expected):
            return IdentityDecision.reject(f"wrong passcode for user {name!r}")
        return IdentityDecision.accept()


class UserIdentityNotConfirmed(AssociationAborted):
    """The requestor required a positive user identity response and the A-ASSOCIATE-AC
    carried none: the requestor aborted the association."""
