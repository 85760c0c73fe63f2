"""Access control for an acceptor: who may associate, and how many at once.

``AccessControl`` is a frozen value: allow and deny lists of calling AE titles and of
peer addresses (``ipaddress`` networks), and the most simultaneous associations. The
default allows everything (access control is off until configured). ``refusal`` gives
the A-ASSOCIATE-RJ for a request it turns down (PS3.8 9.3.4):

- a denied (or not allowed) calling AE title: rejected-permanent, service-user,
  calling-AE-title-not-recognized;
- a denied (or not allowed) peer address: rejected-permanent, service-user,
  no-reason-given;
- no free slot: rejected-transient, service-provider (presentation),
  local-limit-exceeded (``LIMIT_REFUSAL``), since calling later may succeed.

``AssociationSlots`` counts the live associations of one server: a slot is taken when an
association is accepted and freed when its connection ends, however it ends. It is
thread safe, and usable from a plain ``DicomNet``'s ``OnReceiveAssociateRequest`` and
``OnClose`` as well as by ``AcceptingServer``.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from .enums import (
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
)

__all__ = ["LIMIT_REFUSAL", "AccessControl", "AssociationSlots", "Network", "Refusal"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Refusal:
    """An A-ASSOCIATE-RJ to send, and why (for the log)."""

    result: DicomAssociateRejectResultType
    source: DicomAssociateRejectSourceType
    reason: DicomAssociateRejectReasonType
    description: str


LIMIT_REFUSAL = (
    DicomAssociateRejectResultType.Transient,
    DicomAssociateRejectSourceType.Provider2,
    DicomAssociateRejectReasonType.Limit,
)
"""(result, source, reason) when every association slot is taken."""


def _networks(values: Iterable[str | Network]) -> tuple[Network, ...]:
    # "10.0.0.0/8", "192.168.1.7", "::1" or a network object; host bits are an error
    return tuple(ipaddress.ip_network(value) for value in values)


def _titles(values: Iterable[str]) -> frozenset[str]:
    return frozenset(value.strip() for value in values)


@dataclass(frozen=True)
class AccessControl:
    """Who may associate. Empty allow lists allow everyone; a deny list wins over an
    allow list. AE titles are compared without their padding spaces, case-sensitively
    (PS3.8 does not fold case). ``max_associations`` None: no limit."""

    allowed_calling: frozenset[str] = frozenset()
    denied_calling: frozenset[str] = frozenset()
    allowed_peers: tuple[Network, ...] = ()
    denied_peers: tuple[Network, ...] = ()
    max_associations: int | None = None

    def __post_init__(self) -> None:
        setter = object.__setattr__  # normalise while the object is being built
        setter(self, "allowed_calling", _titles(self.allowed_calling))
        setter(self, "denied_calling", _titles(self.denied_calling))
        setter(self, "allowed_peers", _networks(self.allowed_peers))
        setter(self, "denied_peers", _networks(self.denied_peers))
        if self.max_associations is not None and self.max_associations < 1:
            raise ValueError("max_associations must be at least 1 (None: no limit)")

    @classmethod
    def from_lists(
        cls,
        *,
        allowed_calling: Iterable[str] = (),
        denied_calling: Iterable[str] = (),
        allowed_peers: Iterable[str | Network] = (),
        denied_peers: Iterable[str | Network] = (),
        max_associations: int | None = None,
    ) -> AccessControl:
        """From plain lists: AE titles, and addresses or networks as text
        ("192.168.1.0/24", "10.1.2.3", "::1"). A network with host bits set is a
        ValueError."""
        return cls(
            _titles(allowed_calling),
            _titles(denied_calling),
            _networks(allowed_peers),
            _networks(denied_peers),
            max_associations,
        )

    @property
    def enabled(self) -> bool:
        return self != AccessControl()

    def peer_allowed(self, address: str) -> bool:
        try:
            peer = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return not self.allowed_peers  # a name we cannot place: only if nobody is singled out
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped
        if any(peer in network for network in self.denied_peers):
            return False
        return not self.allowed_peers or any(peer in network for network in self.allowed_peers)

    def calling_allowed(self, calling: str) -> bool:
        title = calling.strip()
        if title in self.denied_calling:
            return False
        return not self.allowed_calling or title in self.allowed_calling

    def refusal(self, calling: str, peer_address: str) -> Refusal | None:
        """The reject for a request from ``calling`` at ``peer_address``, or None."""
        if not self.peer_allowed(peer_address):
            return Refusal(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Unknown,
                f"peer address {peer_address} is not allowed",
            )
        if not self.calling_allowed(calling):
            return Refusal(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Calling,
                f"calling AE title {calling.strip()!r} is not allowed",
            )
        return None


@dataclass
class AssociationSlots:
    """Live associations. Owners are the objects holding a slot (one per owner; taking
    twice is a no-op)."""

    _owners: set[object] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        return len(self._owners)

    def take(self, owner: object, limit: int | None) -> Refusal | None:
        """Take a slot for ``owner`` if fewer than ``limit`` (None: no limit) are taken;
        else the refusal to send."""
        with self._lock:
            if owner in self._owners:
                return None
            if limit is not None and len(self._owners) >= limit:
                return Refusal(
                    *LIMIT_REFUSAL,
                    f"{len(self._owners)} associations are open; the limit is {limit}",
                )
            self._owners.add(owner)
            return None

    def free(self, owner: object) -> None:
        """Give ``owner``'s slot back (nothing happens if it holds none)."""
        with self._lock:
            self._owners.discard(owner)
