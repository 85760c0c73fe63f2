"""wait_response's timeout counts silence, not the whole wait (loopback, in-process).

The loop runs in manual mode on a ``VirtualClock``: the SCP's answers are timers on the
same loop, and time jumps from one deadline to the next, so the order of events is fixed
by the clock and no test waits for wall time to pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom import Dataset

from dicomnet import (
    AcceptPolicy,
    DicomAssociate,
    DicomCommandStatusType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    Response,
    build_accept,
    runtime,
)
from dicomnet.loop import VirtualClock
from dicomnet.outcome import ConnectionOutcome
from dicomnet.sopclasses import STUDY_ROOT_FIND
from dicomnet.uids import IMPLICIT_VR_LE


class SlowFindChild(DicomNet):
    """Answers C-FIND with ``pending`` matches ``gap`` seconds apart, then (after another
    gap) the final Success, each answer a timer on the loop."""

    pending = 0
    gap = 0.0

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        policy = AcceptPolicy(supported={STUDY_ROOT_FIND: [IMPLICIT_VR_LE]})
        self.SendAssociateAccept(build_accept(association, policy))

    def OnReceiveCFindRequest(
        self, presentation_id, message_id, affected_class, priority, data_set
    ):  # type: ignore[no-untyped-def]
        loop = runtime.get_loop()

        def answer(number: int) -> None:
            if number < self.pending:
                match = Dataset()
                match.StudyInstanceUID = f"1.2.3.{number}"
                status, data = DicomCommandStatusType.Pending, match
            else:
                status, data = DicomCommandStatusType.Success, None
            self.SendCFindResponse(presentation_id, message_id, affected_class, status, data)

        for number in range(self.pending + 1):
            loop.call_at(loop.time() + self.gap * (number + 1), lambda n=number: answer(n))

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class Server(DicomNet):
    def OnAccept(self, error: object) -> None:
        self.Accept(SlowFindChild(None))


@pytest.fixture
def associated_scu(virtual_clock: VirtualClock) -> Iterator[DicomNet]:
    server = Server(None)
    scu = DicomNet(None)
    try:
        server.Listen("127.0.0.1", 0, 4)
        scu.Connect(None, 0, "127.0.0.1", server.HostPort)
        scu.wait_connected(5)
        request = DicomAssociate(True)
        request.Called, request.Calling = "SLOW", "SCU"
        request.AddPresentationContext(1, 0, STUDY_ROOT_FIND)
        request.AddTransfer(1, IMPLICIT_VR_LE)
        scu.SendAssociateRequest(request)
        scu.wait_associated(5)
        yield scu
    finally:
        scu.Close()
        server.Close()
        for _ in range(10):
            DicomNet.pump(0)


def find(scu: DicomNet) -> int:
    message_id = scu.next_message_id()
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    scu.SendCFindRequest(1, message_id, STUDY_ROOT_FIND, 0, identifier)
    return message_id


def test_pending_responses_keep_the_wait_alive(
    virtual_clock: VirtualClock, associated_scu: DicomNet
) -> None:
    SlowFindChild.pending, SlowFindChild.gap = 6, 0.15  # 1.05 s in all, never 0.5 s silent
    started = virtual_clock()
    response = associated_scu.wait_response(find(associated_scu), timeout=0.5)
    assert response.status == DicomCommandStatusType.Success
    assert virtual_clock() - started == pytest.approx(7 * 0.15)


def test_silence_longer_than_the_timeout_fails_and_keeps_the_association(
    virtual_clock: VirtualClock, associated_scu: DicomNet
) -> None:
    SlowFindChild.pending, SlowFindChild.gap = 0, 1.0
    started = virtual_clock()
    message_id = find(associated_scu)
    with pytest.raises(DicomException) as raised:
        associated_scu.wait_response(message_id, timeout=0.3)
    assert raised.value.Code == DicomExceptionCode.NetTimeout
    assert virtual_clock() - started == pytest.approx(0.3)
    assert associated_scu.IsAssociated()


def test_final_responses_nobody_waits_for_are_not_kept_for_ever() -> None:
    kept = 16
    outcome = ConnectionOutcome(kept_responses=kept)
    for message_id in range(1, kept + 11):
        command = {"CommandField": 0x8030, "MessageIDBeingRespondedTo": message_id, "Status": 0}
        outcome.add_response(Response.of(1, command, lambda: None))
    assert not outcome.has_response(10)
    assert outcome.has_response(11) and outcome.has_response(kept + 10)
    taken = outcome.take_response(kept + 10)
    assert taken is not None and taken.message_id == kept + 10
