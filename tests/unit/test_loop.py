"""Tests for dicomnet.loop: the sockets the loop owns, and one engine over a real socket.

The loop is pumped in the test's own thread (``run_once``); each wait is a ``select`` on
the sockets with a deadline, never a sleep. Peers are plain sockets on loopback with
ports the kernel picks.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID

from dicomnet import events as ev
from dicomnet.connection import Connection
from dicomnet.dimse.part10 import part10_source, read_part10_header
from dicomnet.loop import (
    ConnectAttempt,
    Endpoint,
    EventLoop,
    ListenerChannel,
    StreamChannel,
    open_connection,
    open_listener,
    resolve,
)
from dicomnet.pdu import (
    AssociateAC,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    encode_pdu,
)
from dicomnet.security.base import PlainLayer
from dicomnet.uids import EXPLICIT_VR_LE, IMPLEMENTATION_CLASS_UID

LOOPBACK4, LOOPBACK6 = "127.0.0.1", "::1"
DEADLINE = 10.0  # seconds any single wait may take before the test fails
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ASSOCIATE_RQ, P_DATA_TF, A_ABORT = 0x01, 0x04, 0x07
_HEADER = struct.Struct(">BxL")
_PDV_HEADER = struct.Struct(">LBB")


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK6, 0))
    except OSError:
        return False
    return True


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


def pump(
    loop: EventLoop, done: Callable[[], bool], also: Callable[[], None] = lambda: None
) -> None:
    """Run the loop (and ``also``, a peer's step) until ``done()``; fail after DEADLINE."""
    deadline = loop.time() + DEADLINE
    while not done():
        assert loop.time() < deadline, "timed out waiting"
        loop.run_once(0.01)
        also()


class Accepted:
    """Collects what a listener hands over."""

    def __init__(self) -> None:
        self.peers: list[tuple[socket.socket, tuple[str, int]]] = []

    def __call__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.peers.append((sock, address))

    def close(self) -> None:
        for sock, _ in self.peers:
            sock.close()


class Outcome:
    """Collects what a connect attempt reports."""

    def __init__(self) -> None:
        self.reported = False
        self.sock: socket.socket | None = None
        self.error: OSError | None = None

    def __call__(self, sock: socket.socket | None, error: OSError | None) -> None:
        assert not self.reported, "reported twice"
        self.reported, self.sock, self.error = True, sock, error


def client(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex((host, port))
    assert code in (0, errno.EINPROGRESS), os.strerror(code)
    return sock


# -- listening -------------------------------------------------------------------------------


def test_a_wildcard_listener_on_port_zero_reports_the_port_it_got(loop: EventLoop) -> None:
    accepted = Accepted()
    listener = open_listener(loop, None, 0, 4, on_accept=accepted)
    try:
        host, port = listener.address
        assert host == "0.0.0.0"
        assert port > 0
        peer = client(socket.AF_INET, LOOPBACK4, port)
        pump(loop, lambda: len(accepted.peers) == 1)
        sock, (peer_host, peer_port) = accepted.peers[0]
        assert (peer_host, peer_port) == peer.getsockname()
        assert sock.getblocking() is False
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        peer.close()
    finally:
        listener.close()
        accepted.close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_ipv4_and_ipv6_together_is_one_dual_stack_socket_taking_both(loop: EventLoop) -> None:
    accepted = Accepted()
    listener = open_listener(loop, "*", 0, 4, ipv4=True, ipv6=True, on_accept=accepted)
    try:
        assert listener.sock.family == socket.AF_INET6
        assert listener.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        port = listener.address[1]
        peer4 = client(socket.AF_INET, LOOPBACK4, port)
        peer6 = client(socket.AF_INET6, LOOPBACK6, port)
        pump(loop, lambda: len(accepted.peers) == 2)
        # an IPv4 peer is named by its IPv4 address, not the IPv4-mapped IPv6 form
        assert {address[0] for _, address in accepted.peers} == {LOOPBACK4, LOOPBACK6}
        peer4.close()
        peer6.close()
    finally:
        listener.close()
        accepted.close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_ipv6_alone_refuses_ipv4_peers(loop: EventLoop) -> None:
    listener = open_listener(loop, None, 0, 4, ipv4=False, ipv6=True, on_accept=Accepted())
    try:
        assert listener.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK4, listener.address[1]), timeout=DEADLINE)
    finally:
        listener.close()


def test_a_listener_on_one_address_binds_only_that_address(loop: EventLoop) -> None:
    listener = open_listener(loop, LOOPBACK4, 0, 4, on_accept=Accepted())
    try:
        assert listener.address[0] == LOOPBACK4
        assert listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    finally:
        listener.close()


def test_listening_on_a_port_in_use_raises_and_leaves_no_socket(loop: EventLoop) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK4, 0))
        taken.listen()
        with pytest.raises(OSError) as raised:
            open_listener(loop, LOOPBACK4, taken.getsockname()[1], 4, on_accept=Accepted())
        assert raised.value.errno == errno.EADDRINUSE


def test_a_listener_needs_an_address_family(loop: EventLoop) -> None:
    with pytest.raises(ValueError):
        open_listener(loop, None, 0, 4, ipv4=False, ipv6=False, on_accept=Accepted())


# -- resolving and connecting ------------------------------------------------------------------


@contextlib.contextmanager
def descriptors_exhausted() -> Iterator[list[int]]:
    """Lower this process's descriptor limit to the highest descriptor open and fill the
    gaps below it, so the next socket or file fails with EMFILE. Yields the fillers (close
    one to make room); everything is restored on exit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    fillers: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
    try:
        while True:
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        yield fillers
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists /proc/self/fd")
def test_out_of_descriptors_the_listener_waits_instead_of_spinning_then_accepts_again(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dicomnet.loop")
    accepted = Accepted()
    listener = open_listener(loop, LOOPBACK4, 0, 8, on_accept=accepted)
    peers = [client(socket.AF_INET, LOOPBACK4, listener.address[1]) for _ in range(2)]
    try:
        with descriptors_exhausted() as fillers:
            iterations, started = 0, time.monotonic()
            while time.monotonic() - started < 0.5:
                loop.run_once(0.5)
                iterations += 1
            assert accepted.peers == []
            # A listener left readable after EMFILE makes every iteration return at once:
            # tens of thousands in half a second. Backing off, a few per back-off period.
            assert iterations < 50, f"{iterations} loop iterations in 0.5 s while out of fds"
            failures = [r for r in caplog.records if r.getMessage().startswith("accept failed")]
            assert len(failures) == 1, "one warning per episode, not one per attempt"
            os.close(fillers.pop())
            pump(loop, lambda: len(accepted.peers) == 1)
        pump(loop, lambda: len(accepted.peers) == 2)
        assert any(r.getMessage().startswith("accepting connections again") for r in caplog.records)
    finally:
        for peer in peers:
            peer.close()
        listener.close()
        accepted.close()


def test_a_listener_closed_while_backing_off_stays_closed(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    accepted = Accepted()
    listener = open_listener(loop, LOOPBACK4, 0, 8, on_accept=accepted)
    peer = client(socket.AF_INET, LOOPBACK4, listener.address[1])
    try:
        with descriptors_exhausted():
            loop.run_once(DEADLINE)  # the accept fails: the listener backs off
        listener.close()
        deadline = loop.time() + 0.3  # past the back-off, when it would watch again
        while loop.time() < deadline:
            loop.run_once(0.05)
        assert accepted.peers == []
        assert listener.sock.fileno() == -1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        peer.close()
        accepted.close()


def test_resolve_gives_endpoints_of_the_allowed_families_only() -> None:
    assert resolve(LOOPBACK4, 104) == [Endpoint(socket.AF_INET, (LOOPBACK4, 104))]
    with pytest.raises(socket.gaierror):
        resolve(LOOPBACK4, 104, ipv4=False, ipv6=True)


def test_connecting_goes_on_to_the_next_address_when_one_refuses(loop: EventLoop) -> None:
    with socket.socket() as closed_port, socket.socket() as server:
        closed_port.bind((LOOPBACK4, 0))  # bound, not listening: connecting is refused
        server.bind((LOOPBACK4, 0))
        server.listen()
        endpoints = [
            Endpoint(socket.AF_INET, closed_port.getsockname()),
            Endpoint(socket.AF_INET, server.getsockname()),
        ]
        outcome = Outcome()
        open_connection(loop, endpoints, timeout=DEADLINE, on_done=outcome)
        pump(loop, lambda: outcome.reported)
        assert outcome.error is None
        assert outcome.sock is not None
        assert outcome.sock.getpeername() == server.getsockname()
        outcome.sock.close()


def test_connecting_reports_the_last_refusal(loop: EventLoop) -> None:
    with socket.socket() as closed_port:
        closed_port.bind((LOOPBACK4, 0))
        outcome = Outcome()
        endpoints = [Endpoint(socket.AF_INET, closed_port.getsockname())]
        open_connection(loop, endpoints, timeout=DEADLINE, on_done=outcome)
        pump(loop, lambda: outcome.reported)
        assert outcome.sock is None
        assert outcome.error is not None
        assert outcome.error.errno == errno.ECONNREFUSED


def test_connecting_binds_the_local_address_first(loop: EventLoop) -> None:
    with socket.socket() as server:
        server.bind((LOOPBACK4, 0))
        server.listen()
        outcome = Outcome()
        open_connection(
            loop,
            resolve(LOOPBACK4, server.getsockname()[1]),
            local_host=LOOPBACK4,
            timeout=DEADLINE,
            on_done=outcome,
        )
        pump(loop, lambda: outcome.reported)
        assert outcome.sock is not None
        assert outcome.sock.getsockname()[0] == LOOPBACK4
        outcome.sock.close()


def test_a_local_address_that_cannot_be_bound_is_raised_at_once(loop: EventLoop) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK4, 0))
        taken.listen()
        with pytest.raises(OSError) as raised:
            open_connection(
                loop,
                [Endpoint(socket.AF_INET, taken.getsockname())],
                local_host=LOOPBACK4,
                local_port=taken.getsockname()[1],
                timeout=DEADLINE,
                on_done=Outcome(),
            )
        assert raised.value.errno == errno.EADDRINUSE


def saturated_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listener that never accepts, with its accept queue full: connects hang."""
    server = socket.socket()
    server.bind((LOOPBACK4, 0))
    server.listen(0)
    fillers = [client(socket.AF_INET, LOOPBACK4, server.getsockname()[1]) for _ in range(4)]
    return server, fillers


def test_a_connect_that_never_completes_times_out(loop: EventLoop) -> None:
    server, fillers = saturated_listener()
    try:
        outcome = Outcome()
        open_connection(
            loop, [Endpoint(socket.AF_INET, server.getsockname())], timeout=0.2, on_done=outcome
        )
        pump(loop, lambda: outcome.reported)
        assert isinstance(outcome.error, TimeoutError)
    finally:
        for sock in [server, *fillers]:
            sock.close()


def test_a_cancelled_connect_reports_once(loop: EventLoop) -> None:
    server, fillers = saturated_listener()
    try:
        outcome = Outcome()
        attempt = open_connection(
            loop, [Endpoint(socket.AF_INET, server.getsockname())], timeout=None, on_done=outcome
        )
        assert isinstance(attempt, ConnectAttempt)
        attempt.cancel()
        attempt.cancel()
        assert outcome.error is not None
        assert outcome.error.errno == errno.ECANCELED
    finally:
        for sock in [server, *fillers]:
            sock.close()


# -- one engine over a real socket: a message whose file breaks while it is sent ---------------


class RawPeer:
    """The far end of a connection as bytes: reads whatever arrives, sends what it is told."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.data = bytearray()
        self.eof = False

    def poll(self) -> None:
        while not self.eof:
            try:
                chunk = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.data += chunk

    def pdus(self) -> list[tuple[int, bytes]]:
        """The complete PDUs received so far."""
        out, offset = [], 0
        while len(self.data) - offset >= _HEADER.size:
            pdu_type, length = _HEADER.unpack_from(self.data, offset)
            end = offset + _HEADER.size + length
            if end > len(self.data):
                break
            out.append((pdu_type, bytes(self.data[offset + _HEADER.size : end])))
            offset = end
        return out


def controls(body: bytes) -> list[int]:
    found, offset = [], 0
    while offset < len(body):
        length, _, control = _PDV_HEADER.unpack_from(body, offset)
        found.append(control)
        offset += 4 + length
    return found


def big_part10_file(path: Path, data_length: int) -> Path:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = "1.2.3.4.77"
    ds.PixelData = bytes(range(256)) * (data_length // 256)
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    ds.save_as(path, enforce_file_format=True)
    return path


def user_information() -> UserInformation:
    return UserInformation(max_length=16384, implementation_class_uid=IMPLEMENTATION_CLASS_UID)


def test_a_file_truncated_mid_send_ends_in_a_provider_abort_on_the_wire(
    loop: EventLoop, tmp_path: Path
) -> None:
    path = big_part10_file(tmp_path / "image.dcm", 3 << 20)
    part10 = read_part10_header(path)
    with socket.socket() as server:
        server.bind((LOOPBACK4, 0))
        server.listen()
        outcome = Outcome()
        open_connection(loop, resolve(*server.getsockname()), timeout=DEADLINE, on_done=outcome)
        pump(loop, lambda: outcome.reported)
        assert outcome.sock is not None
        peer = RawPeer(server.accept()[0])

    events: list[ev.Event] = []
    engine = Connection(is_requestor=True)
    channel = StreamChannel(
        loop, outcome.sock, PlainLayer(), engine, lambda: events.extend(engine.next_events())
    )
    channel.start(server_side=False)
    rq = AssociateRQ(
        called_ae="RAW",
        calling_ae="ENGINE",
        presentation_contexts=[PresentationContextRQ(3, CT_IMAGE_STORAGE, [EXPLICIT_VR_LE])],
        user_information=user_information(),
    )
    engine.send_associate_rq(rq, loop.time())
    channel.kick()
    pump(loop, lambda: len(peer.pdus()) == 1, peer.poll)
    assert peer.pdus()[0][0] == ASSOCIATE_RQ
    ac = AssociateAC(
        called_ae="RAW",
        calling_ae="ENGINE",
        presentation_contexts=[PresentationContextAC(3, 0, EXPLICIT_VR_LE)],
        user_information=user_information(),
    )
    peer.sock.sendall(encode_pdu(ac))
    pump(loop, lambda: engine.is_associated)

    store = {
        "CommandField": 0x0001,
        "MessageID": 5,
        "Priority": 0,
        "AffectedSOPClassUID": CT_IMAGE_STORAGE,
        "AffectedSOPInstanceUID": "1.2.3.4.77",
        "CommandDataSetType": 0x0001,
    }
    engine.send_message(3, store, part10_source(part10, EXPLICIT_VR_LE), loop.time())
    os.truncate(path, part10.data_offset + 1_500_000)  # the first MiB still reads
    channel.kick()
    pump(loop, lambda: any(t == A_ABORT for t, _ in peer.pdus()), peer.poll)

    received = peer.pdus()[1:]
    assert received[-1] == (A_ABORT, bytes([0, 0, 2, 0]))  # service provider, no reason
    data_pdus = received[:-1]
    assert {t for t, _ in data_pdus} == {P_DATA_TF}
    sent_controls = [c for _, body in data_pdus for c in controls(body)]
    assert sent_controls[0] == 0x03  # the command set, whole
    assert set(sent_controls[1:]) == {0x00}  # data fragments, never the last one
    assert kinds(events) == [ev.AssociateAcceptReceived, ev.SendFailed, ev.ProviderAborted]
    failed = events[1]
    assert isinstance(failed, ev.SendFailed)
    assert (failed.context_id, failed.message_id) == (3, 5)

    peer.sock.close()  # the peer closes, as an A-ABORT asks
    pump(loop, lambda: channel.closed)
    assert kinds(events)[-1] is ev.TransportClosed
    assert len(peer.pdus()) == len(received) + 1  # nothing was sent after the A-ABORT


def kinds(events: list[ev.Event]) -> list[type]:
    return [type(event) for event in events]


def test_listener_channel_accepts_a_socket_made_elsewhere(loop: EventLoop) -> None:
    """The constructor the public layer used before open_listener still works."""
    sock = socket.socket()
    sock.bind((LOOPBACK4, 0))
    sock.listen()
    accepted = Accepted()
    listener = ListenerChannel(loop, sock, accepted)
    try:
        assert listener.address == sock.getsockname()
        peer = client(socket.AF_INET, LOOPBACK4, listener.address[1])
        pump(loop, lambda: len(accepted.peers) == 1)
        peer.close()
    finally:
        listener.close()
        accepted.close()
