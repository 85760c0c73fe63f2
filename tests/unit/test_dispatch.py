"""DicomNet's callback surface against the message table, and signals decided per sender.

The first tests hold every ``Send*`` and ``OnReceive*`` method against its
``MessageSpec``: same parameters, same order, one signal each. The others run real
loopback associations inside this process: a subscription for one ``DicomNet`` must not
change what another does, and a subscription made after the association started counts.
"""

from __future__ import annotations

import gc
import inspect
import queue
import socket
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from dicomnet import (
    AcceptPolicy,
    DicomAssociate,
    DicomCommandStatusType,
    DicomNet,
    DicomNetIpTypeFlags,
    DicomPduType,
    Timeouts,
    build_accept,
    signals,
)
from dicomnet.dimse.messages import MESSAGES
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

WAIT = 10.0
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)


def own_parameters(method: Any) -> tuple[str, ...]:
    return tuple(
        name
        for name, parameter in inspect.signature(method).parameters.items()
        if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    )


@pytest.mark.parametrize("spec", MESSAGES.values(), ids=lambda spec: spec.name)
def test_each_callback_takes_what_its_message_table_entry_says(spec: Any) -> None:
    assert own_parameters(getattr(DicomNet, spec.callback)) == spec.parameters
    assert spec.callback in signals.CALLBACK_NAMES


@pytest.mark.parametrize("spec", MESSAGES.values(), ids=lambda spec: spec.name)
def test_each_sender_takes_what_its_message_table_entry_says(spec: Any) -> None:
    sender = getattr(DicomNet, "Send" + spec.callback.removeprefix("OnReceive"))
    parameters = own_parameters(sender)
    if spec.command_field == 0x0110:  # N-GET: LEADTOOLS' array length follows the tags
        assert parameters[-1] == "count"
        parameters = parameters[:-1]
    assert parameters == spec.parameters


def test_every_callback_has_a_signal_and_every_signal_a_callback() -> None:
    callbacks = {name for name in dir(DicomNet) if name.startswith("On")}
    assert callbacks == set(signals.CALLBACK_NAMES)
    for name in callbacks:
        assert signals.signal_for(name) is getattr(signals, name)


# -- signals per sender, over loopback -------------------------------------------------


class AcceptOnly(DicomNet):
    """Accepts Verification and answers release; handles no DIMSE request itself."""

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        policy = AcceptPolicy(supported={VERIFICATION: [IMPLICIT_VR_LE]})
        self.SendAssociateAccept(build_accept(association, policy))

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class Server(DicomNet):
    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.children: queue.Queue[DicomNet] = queue.Queue()
        self.closed: queue.Queue[bool] = queue.Queue()

    def OnAccept(self, error: object) -> None:
        child = AcceptOnly(None, timeouts=TIMEOUTS)
        self.Accept(child)
        self.children.put(child)

    def OnClose(self, error: object, net: DicomNet) -> None:
        if net is not self:
            self.closed.put(net is not None)


@pytest.fixture
def server() -> Iterator[Server]:
    DicomNet.Startup()
    listener = Server()
    listener.Listen("127.0.0.1", 0, 8)
    try:
        yield listener
    finally:
        listener.Dispose()
        DicomNet.Shutdown()


def associated_scu(
    server: Server,
    timeouts: Timeouts = TIMEOUTS,
    peer: str = "127.0.0.1",
    ip_type: DicomNetIpTypeFlags = DicomNetIpTypeFlags.Ipv4,
) -> DicomNet:
    """An SCU associated with ``server`` for Verification (closed again if that fails)."""
    scu = DicomNet(None, timeouts=timeouts)
    try:
        scu.Connect(None, 0, peer, server.HostPort, ip_type)
        scu.wait_connected(WAIT)
        request = DicomAssociate(True)
        request.Called, request.Calling = "SCP", "SCU"
        request.AddPresentationContext(1, 0, VERIFICATION)
        request.AddTransfer(1, IMPLICIT_VR_LE)
        scu.SendAssociateRequest(request)
        scu.wait_associated(WAIT)
    except BaseException:
        scu.Close()
        raise
    return scu


def echo(scu: DicomNet) -> int:
    message_id = scu.next_message_id()
    scu.SendCEchoRequest(1, message_id, VERIFICATION)
    return scu.wait_response(message_id, WAIT).status


def test_a_subscriber_for_one_net_does_not_silence_the_refusals_of_another(
    server: Server,
) -> None:
    bystander = DicomNet(None)

    def answer(net: DicomNet, **arguments: Any) -> None:  # pragma: no cover - not called
        raise AssertionError("the receiver was subscribed for another DicomNet")

    signals.OnReceiveCEchoRequest.connect(answer, sender=bystander)
    scu = associated_scu(server)
    try:
        assert echo(scu) == DicomCommandStatusType.UnrecognizedOperation
    finally:
        signals.OnReceiveCEchoRequest.disconnect(answer, sender=bystander)
        scu.Close()


def test_a_subscriber_for_this_net_handles_its_requests(server: Server) -> None:
    scu = associated_scu(server)
    child = server.children.get(timeout=WAIT)

    def answer(net: DicomNet, presentation_id: int, message_id: int, affected_class: str) -> None:
        net.SendCEchoResponse(
            presentation_id, message_id, affected_class, DicomCommandStatusType.Success
        )

    signals.OnReceiveCEchoRequest.connect(answer, sender=child)
    try:
        assert echo(scu) == DicomCommandStatusType.Success
    finally:
        signals.OnReceiveCEchoRequest.disconnect(answer, sender=child)
        scu.Close()


def test_subscribing_to_raw_pdus_after_the_association_started_takes_effect(
    server: Server,
) -> None:
    scu = associated_scu(server)
    seen: queue.Queue[tuple[str, int]] = queue.Queue()

    def received(net: DicomNet, pdu_type: DicomPduType, **arguments: Any) -> None:
        seen.put(("received", int(pdu_type)))

    def sent(net: DicomNet, pdu_type: DicomPduType, **arguments: Any) -> None:
        seen.put(("sent", int(pdu_type)))

    signals.OnReceive.connect(received, sender=scu)
    signals.OnSend.connect(sent, sender=scu)
    try:
        echo(scu)
        events = {seen.get(timeout=WAIT), seen.get(timeout=WAIT)}
        assert events == {
            ("sent", DicomPduType.DataTransfer),
            ("received", DicomPduType.DataTransfer),
        }
    finally:
        signals.OnReceive.disconnect(received, sender=scu)
        signals.OnSend.disconnect(sent, sender=scu)
        scu.Close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_listening_on_ipv4_or_ipv6_serves_both_families() -> None:
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    DicomNet.Startup()
    listener = Server()
    scus: list[DicomNet] = []
    try:
        listener.Listen(None, 0, 8, DicomNetIpTypeFlags.Ipv4OrIpv6)
        for peer, ip_type in (
            ("127.0.0.1", DicomNetIpTypeFlags.Ipv4),
            ("::1", DicomNetIpTypeFlags.Ipv6),
        ):
            scus.append(associated_scu(listener, peer=peer, ip_type=ip_type))
        peers = {listener.children.get(timeout=WAIT).PeerAddress for _ in scus}
        assert peers == {"127.0.0.1", "::1"}
    finally:
        for scu in scus:
            scu.Close()
        listener.Dispose()
        DicomNet.Shutdown()


def test_a_finished_association_is_not_kept_alive_by_its_cancelled_timers(
    server: Server,
) -> None:
    # A live association whose idle timer is due first keeps the cancelled timers of the
    # finished one inside the loop's heap.
    keeper = associated_scu(server, Timeouts(connect=WAIT, idle=60))
    server.children.get(timeout=WAIT)
    scu = associated_scu(server, Timeouts(connect=WAIT, artim=300, acse=300, dimse=300, idle=300))
    child = weakref.ref(server.children.get(timeout=WAIT))
    scu.SendReleaseRequest()
    scu.wait_released(WAIT)
    scu.wait_closed(WAIT)
    server.closed.get(timeout=WAIT)  # the SCP closed its side too
    gone = weakref.ref(scu)
    del scu
    gc.collect()
    try:
        assert child() is None and gone() is None
    finally:
        keeper.Close()
