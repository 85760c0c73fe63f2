"""LEADTOOLS demo code run as written, over loopback sockets in this process.

Each test is code a port takes straight from the LEADTOOLS demos and documentation
(docs/porting.rst); it must work without dicomnet-specific changes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dicomnet import (
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandStatusType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    Timeouts,
)
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

LOOPBACK = "127.0.0.1"
WAIT = 10.0  # seconds any single network wait may take before the test fails
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)


class ResettingScp(DicomNet):
    """An SCP written like the LEADTOOLS server demo: it answers the request by turning
    the received ``DicomAssociate`` into its accept with ``Reset(False)``."""

    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.received: DicomAssociate | None = None
        self.errors: list[BaseException] = []
        self.answered = threading.Event()

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.received = association
        try:
            association.Reset(False)
            for index in range(association.PresentationContextCount):
                id = association.GetPresentationContextID(index)
                if association.GetAbstract(id) == VERIFICATION:
                    association.SetResult(id, DicomAssociateAcceptResultType.Success)
                    association.AddTransfer(id, IMPLICIT_VR_LE)
                else:
                    association.SetResult(id, DicomAssociateAcceptResultType.AbstractSyntax)
            self.SendAssociateAccept(association)
        except Exception as exc:  # the defect raised out of SendAssociateAccept
            self.errors.append(exc)
        finally:
            self.answered.set()

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self.SendCEchoResponse(
            presentation_id, message_id, affected_class, DicomCommandStatusType.Success
        )

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class Listener(DicomNet):
    """Hands every connection to a new ``child`` (made by ``make_child``)."""

    def __init__(self, make_child: type[DicomNet]) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.make_child = make_child
        self.children: list[DicomNet] = []
        self.accepted = threading.Event()

    def OnAccept(self, error: DicomExceptionCode) -> None:
        child = self.make_child()
        self.children.append(child)
        self.Accept(child)
        self.accepted.set()


class RejectingScp(DicomNet):
    """Turns every association down as a busy presentation provider would."""

    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.SendAssociateReject(
            DicomAssociateRejectResultType.Transient,
            DicomAssociateRejectSourceType.Provider2,
            DicomAssociateRejectReasonType.Limit,
        )


class RejectWatcher(DicomNet):
    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.rejects: list[tuple[object, object, object]] = []

    def OnReceiveAssociateReject(
        self,
        result: DicomAssociateRejectResultType,
        source: DicomAssociateRejectSourceType,
        reason: DicomAssociateRejectReasonType,
    ) -> None:
        self.rejects.append((result, source, reason))


@pytest.fixture
def nets() -> Iterator[list[DicomNet]]:
    """The threaded runtime for one test; every DicomNet the test appends is closed after."""
    DicomNet.Startup()
    made: list[DicomNet] = []
    try:
        yield made
    finally:
        try:
            for net in reversed(made):
                for child in getattr(net, "children", []):
                    child.Close()
                net.Close()
        finally:
            DicomNet.Shutdown()


def associate(nets: list[DicomNet], make_child: type[DicomNet], scu: DicomNet) -> Listener:
    """Listen with ``make_child`` answering, connect ``scu`` and send a Verification request
    that also proposes a context the SCP will not take."""
    listener = Listener(make_child)
    nets += [listener, scu]
    listener.Listen(LOOPBACK, 0)
    scu.Connect(None, 0, LOOPBACK, listener.HostPort)
    scu.wait_connected(WAIT)
    request = DicomAssociate(True)
    request.Called, request.Calling = "RESET-SCP", "RESET-SCU"
    request.AddPresentationContext(1, DicomAssociateAcceptResultType.Success, VERIFICATION)
    request.AddTransfer(1, IMPLICIT_VR_LE)
    request.AddPresentationContext(3, DicomAssociateAcceptResultType.Success, "1.2.3.4")
    request.AddTransfer(3, IMPLICIT_VR_LE)
    scu.SendAssociateRequest(request)
    return listener


def test_reset_false_on_the_received_request_then_send_associate_accept(
    nets: list[DicomNet],
) -> None:
    scu = DicomNet(None, timeouts=TIMEOUTS)
    listener = associate(nets, ResettingScp, scu)
    accepted = scu.wait_associated(WAIT)
    assert listener.accepted.wait(WAIT)
    [scp] = listener.children
    assert isinstance(scp, ResettingScp) and scp.answered.wait(WAIT)
    assert scp.errors == []
    # the requestor got the answers the SCP set
    assert accepted.GetResult(1) == DicomAssociateAcceptResultType.Success
    assert accepted.GetResult(3) == DicomAssociateAcceptResultType.AbstractSyntax
    # the acceptor's Association is now the accept as sent, abstract syntaxes filled in
    association = scp.Association
    assert association is not None and association is not scp.received
    assert not association.IsRequest
    assert (association.Called, association.Calling) == ("RESET-SCP", "RESET-SCU")
    assert [association.GetAbstract(id) for id in (1, 3)] == [VERIFICATION, "1.2.3.4"]
    assert association.accepted_transfer_syntax(1) == IMPLICIT_VR_LE
    assert association.accepted_transfer_syntax(3) is None
    # and the association works
    message_id = scu.next_message_id()
    scu.SendCEchoRequest(1, message_id, VERIFICATION)
    assert scu.wait_response(message_id, WAIT).status == DicomCommandStatusType.Success
    scu.SendReleaseRequest()
    scu.wait_released(WAIT)


def test_a_message_only_exception_from_demo_code_is_a_dicom_exception() -> None:
    def check_abstract(association: DicomAssociate) -> None:
        if association.FindAbstract(VERIFICATION) == 0:
            raise DicomException("Invalid Abstract Syntax")

    with pytest.raises(DicomException) as raised:
        check_abstract(DicomAssociate(True))
    assert raised.value.Code is DicomExceptionCode.Parameter
    assert raised.value.Message == "Invalid Abstract Syntax"


def test_a_reject_reason_reaches_the_requestor_under_its_own_name(
    nets: list[DicomNet],
) -> None:
    scu = RejectWatcher()
    associate(nets, RejectingScp, scu)
    with pytest.raises(DicomException):
        scu.wait_associated(WAIT)
    [(result, source, reason)] = scu.rejects
    assert result is DicomAssociateRejectResultType.Transient
    assert source is DicomAssociateRejectSourceType.Provider2
    assert reason is DicomAssociateRejectReasonType.Limit
