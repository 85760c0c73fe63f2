"""The idle timeout over real sockets: traffic keeps an association, silence ends it.

Manual mode on a ``VirtualClock``: the test moves time on between echoes, and while it
waits for the SCP to give up, time jumps straight to the SCP's idle deadline.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dicomnet import (
    AcceptPolicy,
    AssociationAborted,
    DicomAssociate,
    DicomCommandStatusType,
    DicomExceptionCode,
    DicomNet,
    Timeouts,
    build_accept,
)
from dicomnet.loop import VirtualClock
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

IDLE = 0.5


class EchoChild(DicomNet):
    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        policy = AcceptPolicy(supported={VERIFICATION: [IMPLICIT_VR_LE]})
        self.SendAssociateAccept(build_accept(association, policy))

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self.SendCEchoResponse(
            presentation_id, message_id, affected_class, DicomCommandStatusType.Success
        )


class Server(DicomNet):
    closed: list[DicomExceptionCode] = []

    def OnAccept(self, error: object) -> None:
        self.Accept(EchoChild(None, timeouts=Timeouts(idle=IDLE)))

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        Server.closed.append(error)


@pytest.fixture
def scu(virtual_clock: VirtualClock) -> Iterator[DicomNet]:
    Server.closed = []
    server = Server(None)
    client = DicomNet(None)
    try:
        server.Listen("127.0.0.1", 0, 4)
        client.Connect(None, 0, "127.0.0.1", server.HostPort)
        client.wait_connected(5)
        request = DicomAssociate(True)
        request.Called, request.Calling = "IDLE", "SCU"
        request.AddPresentationContext(1, 0, VERIFICATION)
        request.AddTransfer(1, IMPLICIT_VR_LE)
        client.SendAssociateRequest(request)
        client.wait_associated(5)
        yield client
    finally:
        client.Close()
        server.Close()
        for _ in range(10):
            DicomNet.pump(0)


def test_traffic_keeps_the_association_and_silence_ends_it(
    virtual_clock: VirtualClock, scu: DicomNet
) -> None:
    started = virtual_clock()
    while virtual_clock() - started < 3 * IDLE:  # well past IDLE, never IDLE silent
        message_id = scu.next_message_id()
        scu.SendCEchoRequest(1, message_id, VERIFICATION)
        assert scu.wait_response(message_id, 5).status == 0
        virtual_clock.advance(IDLE / 5)
    assert scu.IsAssociated()
    silent_since = virtual_clock() - IDLE / 5
    with pytest.raises(AssociationAborted):
        scu.wait_released(5)  # nothing to release: waits until the SCP aborts
    assert virtual_clock() - silent_since == pytest.approx(IDLE)
    scu.wait_closed(5)
    for _ in range(100):  # the SCP closes once it reads the SCU's close
        if Server.closed:
            break
        DicomNet.pump(0.1)
    assert Server.closed == [DicomExceptionCode.NetTimeout]
