"""wait_response's timeout counts silence, not the whole wait (loopback, in-process)."""

from __future__ import annotations

import threading
import time
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
    build_accept,
)
from dicomnet.sopclasses import STUDY_ROOT_FIND
from dicomnet.uids import IMPLICIT_VR_LE


class SlowFindChild(DicomNet):
    """Answers C-FIND with ``pending`` matches spaced ``gap`` seconds apart, then
    (after another gap) the final Success, all from a worker thread."""

    pending = 0
    gap = 0.0

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        policy = AcceptPolicy(supported={STUDY_ROOT_FIND: [IMPLICIT_VR_LE]})
        self.SendAssociateAccept(build_accept(association, policy))

    def OnReceiveCFindRequest(
        self, presentation_id, message_id, affected_class, priority, data_set
    ):  # type: ignore[no-untyped-def]
        def answer() -> None:
            for number in range(self.pending):
                time.sleep(self.gap)
                match = Dataset()
                match.StudyInstanceUID = f"1.2.3.{number}"
                self.SendCFindResponse(
                    presentation_id,
                    message_id,
                    affected_class,
                    DicomCommandStatusType.Pending,
                    match,
                )
            time.sleep(self.gap)
            self.SendCFindResponse(
                presentation_id, message_id, affected_class, DicomCommandStatusType.Success, None
            )

        threading.Thread(target=answer, daemon=True).start()

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class Server(DicomNet):
    def OnAccept(self, error: object) -> None:
        self.Accept(SlowFindChild(None))


@pytest.fixture
def associated_scu() -> Iterator[DicomNet]:
    DicomNet.Startup()
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
        DicomNet.Shutdown()


def find(scu: DicomNet) -> int:
    message_id = scu.next_message_id()
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    scu.SendCFindRequest(1, message_id, STUDY_ROOT_FIND, 0, identifier)
    return message_id


def test_pending_responses_keep_the_wait_alive(associated_scu: DicomNet) -> None:
    SlowFindChild.pending, SlowFindChild.gap = 6, 0.15  # ~1 s in all, never 0.5 s silent
    started = time.monotonic()
    response = associated_scu.wait_response(find(associated_scu), timeout=0.5)
    assert response.status == DicomCommandStatusType.Success
    assert time.monotonic() - started > 0.9


def test_silence_longer_than_the_timeout_fails(associated_scu: DicomNet) -> None:
    SlowFindChild.pending, SlowFindChild.gap = 0, 1.0
    with pytest.raises(DicomException) as raised:
        associated_scu.wait_response(find(associated_scu), timeout=0.3)
    assert raised.value.Code == DicomExceptionCode.NetTimeout


def test_final_responses_nobody_waits_for_are_not_kept_for_ever() -> None:
    from dicomnet.dimse.assembly import Message
    from dicomnet.outcome import KEPT_RESPONSES, ConnectionOutcome

    outcome = ConnectionOutcome()
    for message_id in range(1, KEPT_RESPONSES + 101):
        outcome.add_response(Message(1, {"MessageIDBeingRespondedTo": message_id}, None))
    assert not outcome.has_response(100)
    assert outcome.has_response(101) and outcome.has_response(KEPT_RESPONSES + 100)
    taken = outcome.take_response(KEPT_RESPONSES + 100)
    assert taken is not None and taken.message_id_being_responded_to == KEPT_RESPONSES + 100
