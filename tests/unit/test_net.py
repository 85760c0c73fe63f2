"""Tests for dicomnet.net.DicomNet: the LEADTOOLS callback API over real loopback sockets.

Unlike the rest of tests/unit these use TCP, on 127.0.0.1 with ephemeral ports, inside
this process: DicomNet's contract is about threads, sockets and callbacks, which only a
real loop shows. Every test pairs ``Startup`` with ``Shutdown`` through a fixture and
closes every ``DicomNet`` it made; every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dicomnet import (
    AcceptPolicy,
    AssociationAborted,
    AssociationRejected,
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandStatusType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    DicomPduType,
    Timeouts,
    build_accept,
    runtime,
    signals,
)
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

LOOPBACK = "127.0.0.1"
WAIT = 10.0  # seconds any single network wait may take before the test fails
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)
POLICY = AcceptPolicy(supported={VERIFICATION: [IMPLICIT_VR_LE]})
SCP_TITLE = "ECHO-SCP"


class Recorder:
    """Things callbacks saw, in order, readable from the test thread with a timeout."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    def add(self, item: Any) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = WAIT) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.items), timeout):
                raise AssertionError(f"not seen within {timeout} s; recorded {self.items}")


class EchoChild(DicomNet):
    """One accepted connection: accepts Verification (checking the called AE title if the
    server asks), answers C-ECHO and release."""

    def __init__(self, server: EchoServer) -> None:
        super().__init__(None, timeouts=server.timeouts)
        self.server = server

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        if self.server.required_called and association.Called != self.server.required_called:
            self.SendAssociateReject(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Called,
            )
            return
        self.SendAssociateAccept(build_accept(association, POLICY))

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self.SendCEchoResponse(
            presentation_id, message_id, affected_class, DicomCommandStatusType.Success
        )

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        self.server.closes.add(("child", self, error, net))


class EchoServer(DicomNet):
    """The listener: every connection goes to a new ``child_type``."""

    def __init__(
        self,
        child_type: type[EchoChild] = EchoChild,
        required_called: str = "",
        timeouts: Timeouts = TIMEOUTS,
    ) -> None:
        super().__init__(None, timeouts=timeouts)
        self.child_type = child_type
        self.required_called = required_called
        self.children: list[EchoChild] = []
        self.closes = Recorder()

    def OnAccept(self, error: DicomExceptionCode) -> None:
        child = self.child_type(self)
        self.children.append(child)
        self.Accept(child)

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        self.closes.add(("server", self, error, net))


class Network:
    """What a test made; closes all of it afterwards."""

    def __init__(self) -> None:
        self.nets: list[DicomNet] = []

    def keep(self, net: DicomNet) -> DicomNet:
        self.nets.append(net)
        return net

    def server(self, **options: Any) -> EchoServer:
        server = EchoServer(**options)
        server.Listen(LOOPBACK, 0)
        self.keep(server)
        return server

    def client(self, port: int, called: str = SCP_TITLE, net: DicomNet | None = None) -> DicomNet:
        """A connected SCU that has sent its A-ASSOCIATE-RQ for Verification."""
        scu = self.keep(net or DicomNet(None, timeouts=TIMEOUTS))
        scu.Connect(None, 0, LOOPBACK, port)
        scu.wait_connected(WAIT)
        scu.SendAssociateRequest(verification_request(called))
        return scu

    def close_all(self) -> None:
        for net in reversed(self.nets):
            net.Close()
            if not isinstance(net, EchoServer):
                net.wait_closed(WAIT)
        for server in (n for n in self.nets if isinstance(n, EchoServer)):
            for child in server.children:
                child.Close()
                child.wait_closed(WAIT)


def verification_request(called: str) -> DicomAssociate:
    request = DicomAssociate(True)
    request.Called = called
    request.Calling = "ECHO-SCU"
    request.AddPresentationContext(1, DicomAssociateAcceptResultType.Success, VERIFICATION)
    request.AddTransfer(1, IMPLICIT_VR_LE)
    return request


def echo(scu: DicomNet) -> int:
    """One C-ECHO through the blocking helpers; returns the response status."""
    message_id = scu.next_message_id()
    scu.SendCEchoRequest(1, message_id, VERIFICATION)
    status = scu.wait_response(message_id, WAIT).status
    assert status is not None
    return status


def release(scu: DicomNet) -> None:
    scu.SendReleaseRequest()
    scu.wait_released(WAIT)
    scu.wait_closed(WAIT)


@pytest.fixture
def network() -> Iterator[Network]:
    """The threaded runtime for one test, and cleanup of everything the test made."""
    DicomNet.Startup()
    made = Network()
    try:
        yield made
    finally:
        try:
            made.close_all()
        finally:
            DicomNet.Shutdown()


# -- the basic exchange -----------------------------------------------------------------


def test_echo_scp_by_subclassing_and_scu_with_blocking_helpers(network: Network) -> None:
    server = network.server()
    scu = network.client(server.HostPort)
    accepted = scu.wait_associated(WAIT)
    assert accepted.GetResult(1) == DicomAssociateAcceptResultType.Success
    assert scu.IsAssociated()
    assert [echo(scu) for _ in range(3)] == [DicomCommandStatusType.Success] * 3
    release(scu)
    assert not scu.IsConnected()


def test_echo_scp_by_signal_subscriptions(network: Network) -> None:
    server = network.keep(DicomNet(None, timeouts=TIMEOUTS))
    children: list[DicomNet] = []

    def on_accept(net: DicomNet, error: DicomExceptionCode) -> None:
        if net is server:
            child = DicomNet(None, timeouts=TIMEOUTS)
            children.append(child)
            net.Accept(child)

    def on_request(net: DicomNet, association: DicomAssociate) -> None:
        if net in children:
            net.SendAssociateAccept(build_accept(association, POLICY))

    def on_echo(net: DicomNet, presentation_id: int, message_id: int, affected_class: str) -> None:
        if net in children:
            net.SendCEchoResponse(presentation_id, message_id, affected_class, 0)

    def on_release(net: DicomNet) -> None:
        if net in children:
            net.SendReleaseResponse()

    with contextlib.ExitStack() as subscriptions:
        subscriptions.enter_context(signals.OnAccept.connected_to(on_accept))
        subscriptions.enter_context(signals.OnReceiveAssociateRequest.connected_to(on_request))
        subscriptions.enter_context(signals.OnReceiveCEchoRequest.connected_to(on_echo))
        subscriptions.enter_context(signals.OnReceiveReleaseRequest.connected_to(on_release))
        server.Listen(LOOPBACK, 0)
        scu = network.client(server.HostPort)
        scu.wait_associated(WAIT)
        assert echo(scu) == DicomCommandStatusType.Success
        release(scu)
    assert len(children) == 1
    children[0].wait_closed(WAIT)


def test_an_override_that_calls_the_default_still_sends_the_signal(network: Network) -> None:
    seen = Recorder()

    class CountingServer(EchoServer):
        def OnAccept(self, error: DicomExceptionCode) -> None:
            super().OnAccept(error)  # accept into a child
            DicomNet.OnAccept(self, error)  # the default implementation: send the signal

    def on_accept(net: DicomNet, error: DicomExceptionCode) -> None:
        seen.add((net, error))

    with signals.OnAccept.connected_to(on_accept):
        server = CountingServer()
        network.keep(server)
        server.Listen(LOOPBACK, 0)
        scu = network.client(server.HostPort)
        scu.wait_associated(WAIT)
        seen.wait_for(lambda items: len(items) == 1)
    assert seen.items == [(server, DicomExceptionCode.Success)]
    release(scu)


# -- callbacks and threads ----------------------------------------------------------------


def test_dispatch_order_is_raw_pdu_then_data_then_typed_callback(network: Network) -> None:
    calls = Recorder()

    class RecordingChild(EchoChild):
        def OnReceive(
            self, error: DicomExceptionCode, pdu_type: DicomPduType, buffer: bytes, bytes: int
        ) -> None:
            assert len(buffer) == bytes
            calls.add(("OnReceive", pdu_type))

        def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
            calls.add(("OnReceiveAssociateRequest", association.Called))
            super().OnReceiveAssociateRequest(association)

        def OnReceiveData(self, presentation_id: int, command_set: Any, data_set: Any) -> None:
            calls.add(("OnReceiveData", int(command_set.CommandField), data_set))

        def OnReceiveCEchoRequest(
            self, presentation_id: int, message_id: int, affected_class: str
        ) -> None:
            calls.add(("OnReceiveCEchoRequest", message_id))
            super().OnReceiveCEchoRequest(presentation_id, message_id, affected_class)

        def OnReceiveReleaseRequest(self) -> None:
            calls.add(("OnReceiveReleaseRequest",))
            super().OnReceiveReleaseRequest()

    server = network.server(child_type=RecordingChild)
    scu = network.client(server.HostPort)
    scu.wait_associated(WAIT)
    echo(scu)
    release(scu)
    assert calls.items == [
        ("OnReceive", DicomPduType.AssociateRequest),
        ("OnReceiveAssociateRequest", SCP_TITLE),
        ("OnReceive", DicomPduType.DataTransfer),
        ("OnReceiveData", 0x0030, None),
        ("OnReceiveCEchoRequest", 1),
        ("OnReceive", DicomPduType.ReleaseRequest),
        ("OnReceiveReleaseRequest",),
    ]


def test_send_from_a_worker_thread_answers_the_peer(network: Network) -> None:
    threads = Recorder()

    class SlowChild(EchoChild):
        def OnReceiveCEchoRequest(
            self, presentation_id: int, message_id: int, affected_class: str
        ) -> None:
            threads.add(("callback", threading.get_ident()))

            def answer_later() -> None:
                threads.add(("worker", threading.get_ident()))
                self.SendCEchoResponse(presentation_id, message_id, affected_class, 0)

            threading.Thread(target=answer_later, daemon=True).start()

    server = network.server(child_type=SlowChild)
    scu = network.client(server.HostPort)
    scu.wait_associated(WAIT)
    assert echo(scu) == DicomCommandStatusType.Success
    release(scu)
    callback_thread, worker_thread = (ident for _, ident in threads.items)
    assert len({callback_thread, worker_thread, threading.get_ident()}) == 3


def test_blocking_wait_inside_a_callback_raises_instead_of_deadlocking(
    network: Network,
) -> None:
    errors = Recorder()

    class ImpatientChild(EchoChild):
        def OnReceiveCEchoRequest(
            self, presentation_id: int, message_id: int, affected_class: str
        ) -> None:
            try:
                self.wait_released(timeout=WAIT)
            except DicomException as exc:
                errors.add(exc)
            super().OnReceiveCEchoRequest(presentation_id, message_id, affected_class)

    server = network.server(child_type=ImpatientChild)
    scu = network.client(server.HostPort)
    scu.wait_associated(WAIT)
    assert echo(scu) == DicomCommandStatusType.Success  # answered at once, not after WAIT
    release(scu)
    (error,) = errors.items
    assert error.Code is not DicomExceptionCode.NetTimeout
    assert "deadlock" in str(error)


def test_manual_pump_mode_runs_everything_in_one_thread() -> None:
    DicomNet.Startup(threaded=False)
    made = Network()
    try:
        assert not runtime.is_threaded(), "another test left the threaded runtime running"
        callback_threads = Recorder()

        class PumpedChild(EchoChild):
            def OnReceiveCEchoRequest(
                self, presentation_id: int, message_id: int, affected_class: str
            ) -> None:
                callback_threads.add(threading.get_ident())
                super().OnReceiveCEchoRequest(presentation_id, message_id, affected_class)

        server = made.server(child_type=PumpedChild)
        scu = made.client(server.HostPort)  # wait_connected pumps the loop itself
        scu.wait_associated(WAIT)
        assert echo(scu) == DicomCommandStatusType.Success
        release(scu)
        assert callback_threads.items == [threading.get_ident()]
        made.close_all()
    finally:
        DicomNet.Shutdown()


def test_pump_is_refused_when_the_loop_has_its_own_thread(network: Network) -> None:
    with pytest.raises(DicomException):
        DicomNet.pump(0)


# -- failures -----------------------------------------------------------------------------


def test_reject_raises_association_rejected_with_its_fields(network: Network) -> None:
    server = network.server(required_called="RIGHT")
    scu = network.client(server.HostPort, called="WRONG")
    with pytest.raises(AssociationRejected) as raised:
        scu.wait_associated(WAIT)
    assert (raised.value.result, raised.value.source, raised.value.reason) == (1, 1, 7)
    assert "called AE title" in str(raised.value)
    scu.wait_closed(WAIT)


def test_reject_reaches_the_callback_too(network: Network) -> None:
    rejects = Recorder()

    class RejectWatcher(DicomNet):
        def OnReceiveAssociateReject(self, result: Any, source: Any, reason: Any) -> None:
            rejects.add((result, source, reason))

    server = network.server(required_called="RIGHT")
    scu = network.client(server.HostPort, called="WRONG", net=RejectWatcher(None))
    with pytest.raises(AssociationRejected):
        scu.wait_associated(WAIT)
    assert rejects.items == [
        (
            DicomAssociateRejectResultType.Permanent,
            DicomAssociateRejectSourceType.User,
            DicomAssociateRejectReasonType.Called,
        )
    ]


def test_peer_abort_raises_association_aborted(network: Network) -> None:
    class AbortingChild(EchoChild):
        def OnReceiveCEchoRequest(
            self, presentation_id: int, message_id: int, affected_class: str
        ) -> None:
            self.SendAbort()

    server = network.server(child_type=AbortingChild)
    scu = network.client(server.HostPort)
    scu.wait_associated(WAIT)
    message_id = scu.next_message_id()
    scu.SendCEchoRequest(1, message_id, VERIFICATION)
    with pytest.raises(AssociationAborted) as raised:
        scu.wait_response(message_id, WAIT)
    assert (raised.value.source, raised.value.reason) == (0, 0)  # service user, no reason
    scu.wait_closed(WAIT)
    assert not scu.IsConnected()


def test_send_after_the_association_ended_raises(network: Network) -> None:
    server = network.server()
    scu = network.client(server.HostPort)
    scu.wait_associated(WAIT)
    release(scu)
    with pytest.raises(DicomException) as raised:
        scu.SendCEchoRequest(1, 2, VERIFICATION)
    assert raised.value.Code is DicomExceptionCode.NetNotConnected


def test_connect_to_a_closed_port_is_refused(network: Network) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    scu = network.keep(DicomNet(None, timeouts=TIMEOUTS))
    scu.Connect(None, 0, LOOPBACK, port)
    with pytest.raises(DicomException) as raised:
        scu.wait_connected(WAIT)
    assert raised.value.Code is DicomExceptionCode.NetConnectionRefused


def test_listen_on_a_busy_port_says_so(network: Network) -> None:
    server = network.server()
    other = network.keep(DicomNet(None))
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        with pytest.raises(DicomException) as raised:
            other.Listen(LOOPBACK, taken.getsockname()[1])
    assert raised.value.Code is DicomExceptionCode.NetAddressInUse
    assert server.IsActivated()


# -- connection bookkeeping ---------------------------------------------------------------


def test_listen_on_port_zero_reports_the_chosen_port(network: Network) -> None:
    server = network.server()
    assert server.HostAddress == LOOPBACK
    assert 0 < server.HostPort < 65536
    with socket.create_connection((LOOPBACK, server.HostPort), timeout=WAIT):
        pass  # something really listens there


def test_close_reaches_the_child_and_its_listener(network: Network) -> None:
    server = network.server()
    scu = network.client(server.HostPort)
    scu.wait_associated(WAIT)
    (child,) = server.children
    assert child.Server is server
    release(scu)
    server.closes.wait_for(lambda items: len(items) == 2)
    assert sorted(server.closes.items, key=lambda item: item[0]) == [
        ("child", child, DicomExceptionCode.Success, child),
        ("server", server, DicomExceptionCode.Success, child),
    ]


def test_silent_peer_is_closed_by_artim_with_a_timeout_error(network: Network) -> None:
    server = network.server(timeouts=Timeouts(artim=0.3))
    with socket.create_connection((LOOPBACK, server.HostPort), timeout=WAIT) as silent:
        assert silent.recv(16) == b""  # closed by the server, nothing sent (AA-2)
    server.closes.wait_for(lambda items: len(items) == 2)
    assert {(who, error) for who, _, error, _ in server.closes.items} == {
        ("child", DicomExceptionCode.NetTimeout),
        ("server", DicomExceptionCode.NetTimeout),
    }


def test_client_count_follows_connections(network: Network) -> None:
    server = network.server()
    assert server.GetClientCount() == 0
    first = network.client(server.HostPort)
    first.wait_associated(WAIT)
    assert server.GetClientCount() == 1
    second = network.client(server.HostPort)
    second.wait_associated(WAIT)
    assert server.GetClientCount() == 2
    assert {server.GetClient(0), server.GetClient(1)} == set(server.children)
    release(first)
    server.closes.wait_for(lambda items: sum(item[0] == "server" for item in items) == 1)
    assert server.GetClientCount() == 1
    second.SendAbort()
    second.wait_closed(WAIT)
    server.closes.wait_for(lambda items: sum(item[0] == "server" for item in items) == 2)
    assert server.GetClientCount() == 0


def test_peers_addresses_are_reported(network: Network) -> None:
    server = network.server()
    scu = network.client(server.HostPort)
    scu.wait_associated(WAIT)
    (child,) = server.children
    assert (scu.PeerAddress, scu.PeerPort) == (LOOPBACK, server.HostPort)
    assert (child.PeerAddress, child.PeerPort) == (scu.HostAddress, scu.HostPort)
    release(scu)


# -- process-wide start and stop ------------------------------------------------------------


def test_startup_and_shutdown_are_reference_counted() -> None:
    DicomNet.Startup()
    DicomNet.Startup()
    DicomNet.Shutdown()
    net = DicomNet(None)
    net.Listen(LOOPBACK, 0)  # one Startup is still in force
    assert net.HostPort
    net.Close()
    DicomNet.Shutdown()
    with pytest.raises(DicomException) as raised:
        DicomNet(None).Listen(LOOPBACK, 0)
    assert raised.value.Code is DicomExceptionCode.NetNotInitialised
    DicomNet.Shutdown()  # one too many does no harm
    DicomNet.Startup()  # and the runtime can start again afterwards
    try:
        again = DicomNet(None)
        again.Listen(LOOPBACK, 0)
        again.Close()
    finally:
        DicomNet.Shutdown()
