"""Access control (``dicomnet.access``): the allow/deny rules as values, and an
``AcceptingServer`` enforcing them over loopback, including the association limit whose
slots come back however an association ends (release, abort, close, protocol error)."""

from __future__ import annotations

import ipaddress
import queue
import socket
from collections.abc import Callable, Iterator

import pytest

from dicomnet import DicomAssociate, DicomNet, Timeouts
from dicomnet.access import LIMIT_REFUSAL, AccessControl, AssociationSlots
from dicomnet.associate import AcceptPolicy, build_accept
from dicomnet.enums import (
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
)
from dicomnet.errors import AssociationRejected, DicomExceptionCode
from dicomnet.pdu import encode_pdu
from dicomnet.server import VERIFICATION_ONLY, AcceptingServer
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

WAIT = 10.0
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)
CALLING_REFUSED = (1, 1, 3)  # permanent, service-user, calling AE title not recognized
PEER_REFUSED = (1, 1, 1)  # permanent, service-user, no reason given
LIMIT = tuple(int(value) for value in LIMIT_REFUSAL)

# -- the rules as values -----------------------------------------------------------------


def test_access_control_is_off_by_default() -> None:
    access = AccessControl()
    assert not access.enabled
    assert access.refusal("ANY", "192.0.2.1") is None
    assert access.refusal("", "::1") is None


def test_calling_ae_titles_deny_wins_and_padding_is_ignored() -> None:
    access = AccessControl.from_lists(allowed_calling=["A ", "B"], denied_calling=["B"])
    assert access.enabled
    assert access.calling_allowed("A") and access.calling_allowed("  A  ")
    assert not access.calling_allowed("B")  # denied although allowed
    assert not access.calling_allowed("C")  # not on the allow list
    assert not access.calling_allowed("a")  # AE titles are case-sensitive
    refusal = access.refusal("C", "127.0.0.1")
    assert refusal is not None and "'C'" in refusal.description
    assert (refusal.result, refusal.source, refusal.reason) == CALLING_REFUSED
    assert refusal.reason is DicomAssociateRejectReasonType.Calling


def test_peer_networks() -> None:
    access = AccessControl.from_lists(
        allowed_peers=["10.0.0.0/8", "::1"], denied_peers=["10.9.0.0/16"]
    )
    assert access.peer_allowed("10.1.2.3")
    assert not access.peer_allowed("10.9.1.1")
    assert not access.peer_allowed("192.0.2.1")
    assert access.peer_allowed("::1")
    assert access.peer_allowed("::ffff:10.1.2.3")  # an IPv4 peer on a dual-stack socket
    assert not access.peer_allowed("not-an-address")
    refusal = access.refusal("A", "192.0.2.1")
    assert refusal is not None
    assert (refusal.result, refusal.source, refusal.reason) == PEER_REFUSED
    assert AccessControl.from_lists(denied_peers=["10.0.0.0/8"]).peer_allowed("unknown")
    with pytest.raises(ValueError):
        AccessControl.from_lists(allowed_peers=["10.0.0.1/8"])  # host bits set
    assert access.allowed_peers[0] == ipaddress.ip_network("10.0.0.0/8")


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        AccessControl(max_associations=0)


def test_slots_count_owners() -> None:
    slots = AssociationSlots()
    first, second, third = object(), object(), object()
    assert slots.take(first, 2) is None and slots.take(first, 2) is None  # idempotent
    assert slots.take(second, 2) is None and slots.count == 2
    refusal = slots.take(third, 2)
    assert refusal is not None
    assert (refusal.result, refusal.source, refusal.reason) == LIMIT
    assert refusal.result is DicomAssociateRejectResultType.Transient
    assert refusal.source is DicomAssociateRejectSourceType.Provider2
    assert refusal.reason is DicomAssociateRejectReasonType.Limit
    slots.free(first)
    slots.free(first)  # freeing twice is harmless
    assert slots.take(third, 2) is None and slots.count == 2
    assert slots.take(object(), None) is None  # no limit


# -- an AcceptingServer over loopback ------------------------------------------------------


class Server(AcceptingServer):
    """Hands every end of a child connection to the test thread."""

    def __init__(self, access: AccessControl) -> None:
        super().__init__("SCP", VERIFICATION_ONLY, timeouts=TIMEOUTS, access_control=access)
        self.ended: queue.Queue[DicomNet] = queue.Queue()

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        super().OnClose(error, net)
        if net is not self:
            self.ended.put(net)


@pytest.fixture
def serve() -> Iterator[Callable[[AccessControl], Server]]:
    DicomNet.Startup()
    started: list[Server] = []

    def start(access: AccessControl) -> Server:
        server = Server(access)
        server.Listen("127.0.0.1", 0, 8)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.Dispose()
        DicomNet.Shutdown()


def connect(server: DicomNet, calling: str = "SCU") -> DicomNet:
    scu = DicomNet(None, timeouts=TIMEOUTS)
    scu.Connect(None, 0, "127.0.0.1", server.HostPort)
    scu.wait_connected(WAIT)
    request = DicomAssociate(True)
    request.Called, request.Calling = "SCP", calling
    request.AddPresentationContext(1, 0, VERIFICATION)
    request.AddTransfer(1, IMPLICIT_VR_LE)
    scu.SendAssociateRequest(request)
    return scu


def associated(server: DicomNet, calling: str = "SCU") -> DicomNet:
    scu = connect(server, calling)
    scu.wait_associated(WAIT)
    return scu


def raw_association(server: DicomNet) -> socket.socket:
    """A socket associated by hand (A-ASSOCIATE-RQ out, A-ASSOCIATE-AC in)."""
    request = DicomAssociate(True)
    request.Called, request.Calling = "SCP", "RAW"
    request.AddPresentationContext(1, 0, VERIFICATION)
    request.AddTransfer(1, IMPLICIT_VR_LE)
    sock = socket.create_connection(("127.0.0.1", server.HostPort), timeout=WAIT)
    sock.sendall(encode_pdu(request.to_request_pdu()))
    header = sock.recv(6, socket.MSG_WAITALL)
    assert header[0] == 0x02, f"expected an A-ASSOCIATE-AC, got PDU type {header[0]:02X}H"
    sock.recv(int.from_bytes(header[2:6], "big"), socket.MSG_WAITALL)
    return sock


def rejected(server: DicomNet, calling: str = "SCU") -> tuple[int, int, int]:
    scu = connect(server, calling)
    try:
        with pytest.raises(AssociationRejected) as caught:
            scu.wait_associated(WAIT)
    finally:
        scu.Close()
    return caught.value.result, caught.value.source, caught.value.reason


def test_denied_calling_ae_and_peer_are_rejected(serve: Callable[[AccessControl], Server]) -> None:
    by_title = serve(AccessControl.from_lists(denied_calling=["EVIL"]))
    assert rejected(by_title, "EVIL") == CALLING_REFUSED
    associated(by_title, "GOOD").Close()
    by_peer = serve(AccessControl.from_lists(denied_peers=["127.0.0.0/8"]))
    assert rejected(by_peer) == PEER_REFUSED


def test_the_limit_frees_slots_however_associations_end(
    serve: Callable[[AccessControl], Server],
) -> None:
    server = serve(AccessControl(max_associations=2))
    first, second = associated(server), associated(server)
    assert server.slots.count == 2
    assert rejected(server) == LIMIT  # one too many, transient: calling later may work
    server.ended.get(timeout=WAIT)  # the rejected connection held no slot
    assert server.slots.count == 2

    first.SendReleaseRequest()  # release
    first.wait_released(WAIT)
    server.ended.get(timeout=WAIT)
    third = associated(server)

    second.SendAbort()  # abort
    server.ended.get(timeout=WAIT)
    fourth = associated(server)

    third.Close()  # the transport closed without a PDU
    server.ended.get(timeout=WAIT)
    fifth = associated(server)

    fourth.Close()
    server.ended.get(timeout=WAIT)
    raw = raw_association(server)  # takes the freed slot, then breaks the protocol:
    raw.sendall(b"\x09\x00\x00\x00\x00\x00")  # an unknown PDU type
    assert raw.recv(1) == b"\x07"  # the server aborted the association
    raw.close()  # (the server waits for the transport to close, PS3.8 Sta13)
    server.ended.get(timeout=WAIT)
    broken = associated(server)
    assert server.slots.count == 2
    assert rejected(server) == LIMIT
    server.ended.get(timeout=WAIT)
    for scu in (fifth, broken):
        scu.Close()
        server.ended.get(timeout=WAIT)
    assert server.slots.count == 0


# -- a plain DicomNet using the same values ------------------------------------------------

RULES = AccessControl.from_lists(denied_calling=["EVIL"], max_associations=1)
SLOTS = AssociationSlots()


class PlainChild(DicomNet):
    """A LEADTOOLS-style acceptor applying ``AccessControl`` itself."""

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        refusal = RULES.refusal(association.Calling, self.PeerAddress) or SLOTS.take(
            self, RULES.max_associations
        )
        if refusal is not None:
            self.SendAssociateReject(refusal.result, refusal.source, refusal.reason)
            return
        self.SendAssociateAccept(
            build_accept(association, AcceptPolicy({VERIFICATION: [IMPLICIT_VR_LE]}))
        )

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        SLOTS.free(self)


class PlainServer(DicomNet):
    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.ended: queue.Queue[DicomNet] = queue.Queue()

    def OnAccept(self, error: DicomExceptionCode) -> None:
        self.Accept(PlainChild(None, timeouts=TIMEOUTS))

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        if net is not self:
            self.ended.put(net)


def test_a_plain_dicomnet_applies_the_same_rules() -> None:
    DicomNet.Startup()
    server = PlainServer()
    server.Listen("127.0.0.1", 0, 8)
    try:
        assert rejected(server, "EVIL") == CALLING_REFUSED
        server.ended.get(timeout=WAIT)
        held = associated(server)
        assert rejected(server) == LIMIT
        server.ended.get(timeout=WAIT)
        held.Close()
        server.ended.get(timeout=WAIT)
        associated(server).Close()
        server.ended.get(timeout=WAIT)
        assert SLOTS.count == 0
    finally:
        server.Dispose()
        DicomNet.Shutdown()
