"""DIMSE-N request/response pairs between two DicomNet objects (PS3.7 10.1, 10.3).

An SCU and an accepted SCP connection talk over 127.0.0.1 inside this process, on the
threaded runtime, as tests/unit/test_net.py does: what is checked is that every
parameter a ``Send*`` takes reaches the peer's ``OnReceive*`` callback (SOP class and
instance, event and action type IDs, the attribute identifier list, data sets, status
and the optional status elements), that a response matching no outstanding request is
dropped, and that a command field no PS3.7 table defines reaches ``OnReceiveUnknown``.
The callbacks are observed through their blinker signals, connected per object.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from blinker import Signal
from pydicom import Dataset
from pydicom.uid import generate_uid

from dicomnet import (
    AcceptPolicy,
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomCommandStatusType,
    DicomExceptionCode,
    DicomNet,
    Timeouts,
    build_accept,
    signals,
)
from dicomnet.uids import EXPLICIT_VR_LE

LOOPBACK = "127.0.0.1"
WAIT = 10.0  # seconds any single wait may take before the test fails
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)

MPPS = "1.2.840.10008.3.1.2.3.3"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"  # the well-known instance
BASIC_FILM_SESSION = "1.2.840.10008.5.1.1.1"
CONTEXTS = {1: MPPS, 3: STORAGE_COMMITMENT, 5: BASIC_FILM_SESSION}
POLICY = AcceptPolicy(supported={uid: [EXPLICIT_VR_LE] for uid in CONTEXTS.values()})

Status = DicomCommandStatusType


class Acceptor(DicomNet):
    """The SCP end: accepts the N-service contexts and answers release."""

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.SendAssociateAccept(build_accept(association, POLICY))

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class Listener(DicomNet):
    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.children: queue.Queue[Acceptor] = queue.Queue()

    def OnAccept(self, error: DicomExceptionCode) -> None:
        child = Acceptor(None, timeouts=TIMEOUTS)
        self.children.put(child)
        self.Accept(child)


class Calls:
    """Keyword arguments of every call of one callback of one object, in order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []

    def __call__(self, sender: DicomNet, **arguments: Any) -> None:
        self._queue.put(arguments)

    def next(self) -> dict[str, Any]:
        """The next call, waiting for it (callbacks run on the loop thread)."""
        call = self._queue.get(timeout=WAIT)
        self.seen.append(call)
        return call

    def pending(self) -> int:
        return self._queue.qsize()


class Pair:
    """An associated SCU/SCP pair and the signal receivers a test connected."""

    def __init__(self, scu: DicomNet, scp: Acceptor) -> None:
        self.scu = scu
        self.scp = scp
        self._connected: list[tuple[Signal, Callable[..., None], DicomNet]] = []

    def on(self, net: DicomNet, callback: str, receiver: Callable[..., None]) -> None:
        """Run ``receiver(net, **arguments)`` whenever ``net`` raises ``callback``."""
        signal = signals.signal_for(callback)
        signal.connect(receiver, sender=net, weak=False)
        self._connected.append((signal, receiver, net))

    def record(self, net: DicomNet, callback: str) -> Calls:
        calls = Calls()
        self.on(net, callback, calls)
        return calls

    def disconnect_all(self) -> None:
        for signal, receiver, net in self._connected:
            signal.disconnect(receiver, sender=net)


def n_services_request() -> DicomAssociate:
    request = DicomAssociate(True)
    request.Calling, request.Called = "N-SCU", "N-SCP"
    for context_id, sop_class in CONTEXTS.items():
        request.AddPresentationContext(
            context_id, DicomAssociateAcceptResultType.Success, sop_class
        )
        request.AddTransfer(context_id, EXPLICIT_VR_LE)
    return request


@pytest.fixture
def pair() -> Iterator[Pair]:
    DicomNet.Startup()
    listener = Listener()
    scu = DicomNet(None, timeouts=TIMEOUTS)
    made: Pair | None = None
    try:
        listener.Listen(LOOPBACK, 0)
        scu.Connect(None, 0, LOOPBACK, listener.HostPort)
        scu.wait_connected(WAIT)
        scu.SendAssociateRequest(n_services_request())
        scu.wait_associated(WAIT)
        made = Pair(scu, listener.children.get(timeout=WAIT))
        yield made
        scu.SendReleaseRequest()
        scu.wait_released(WAIT)
    finally:
        if made is not None:
            made.disconnect_all()
            made.scp.Close()
        scu.Close()
        listener.Close()
        DicomNet.Shutdown()


def attributes(**values: Any) -> Dataset:
    data_set = Dataset()
    for keyword, value in values.items():
        setattr(data_set, keyword, value)
    return data_set


# -- each service, every parameter -----------------------------------------------------


def test_n_get_carries_the_attribute_identifier_list_and_returns_the_attributes(
    pair: Pair,
) -> None:
    instance = generate_uid()
    tags = [0x00400252, 0x00100020, 0x00400340]  # not in ascending order on purpose
    requests = pair.record(pair.scp, "OnReceiveNGetRequest")
    responses = pair.record(pair.scu, "OnReceiveNGetResponse")

    def answer(net: DicomNet, **request: Any) -> None:
        net.SendNGetResponse(
            request["presentation_id"],
            request["message_id"],
            request["affected_class"],
            request["instance"],
            Status.Success,
            attributes(PatientID="P-7", PerformedProcedureStepStatus="COMPLETED"),
        )

    pair.on(pair.scp, "OnReceiveNGetRequest", answer)
    message_id = pair.scu.next_message_id()
    pair.scu.SendNGetRequest(1, message_id, MPPS, instance, tags)

    assert requests.next() == {
        "presentation_id": 1,
        "message_id": message_id,
        "affected_class": MPPS,
        "instance": instance,
        "attributes": tags,
    }
    response = responses.next()
    assert pair.scu.wait_response(message_id, WAIT).status == Status.Success
    assert (response["presentation_id"], response["message_id"]) == (1, message_id)
    assert (response["affected_class"], response["instance"]) == (MPPS, instance)
    assert response["status"] is Status.Success
    assert response["data_set"].PatientID == "P-7"
    assert response["data_set"].PerformedProcedureStepStatus == "COMPLETED"


@pytest.mark.parametrize(
    ("sent", "count", "received"),
    [([0x00100010, 0x00100020, 0x00100030], 2, [0x00100010, 0x00100020]), ([], None, [])],
    ids=["count-truncates", "empty-means-all"],
)
def test_n_get_attribute_list_count_and_empty_list(
    pair: Pair, sent: list[int], count: int | None, received: list[int]
) -> None:
    requests = pair.record(pair.scp, "OnReceiveNGetRequest")
    commands = pair.record(pair.scp, "OnReceiveData")
    pair.on(
        pair.scp,
        "OnReceiveNGetRequest",
        lambda net, **r: net.SendNGetResponse(
            r["presentation_id"],
            r["message_id"],
            r["affected_class"],
            r["instance"],
            Status.Success,
            None,
        ),
    )
    message_id = pair.scu.next_message_id()
    pair.scu.SendNGetRequest(1, message_id, MPPS, generate_uid(), sent, count)
    assert requests.next()["attributes"] == received
    command_set = commands.next()["command_set"]
    assert ("AttributeIdentifierList" in command_set) == bool(received)
    pair.scu.wait_response(message_id, WAIT)


def test_n_set_names_its_target_with_requested_uids_and_returns_error_comment_and_id(
    pair: Pair,
) -> None:
    instance = generate_uid()
    series = attributes(SeriesInstanceUID=generate_uid(), SeriesDescription="axial")
    requests = pair.record(pair.scp, "OnReceiveNSetRequest")
    commands = pair.record(pair.scp, "OnReceiveData")
    responses = pair.record(pair.scu, "OnReceiveNSetResponse")

    def refuse(net: DicomNet, **request: Any) -> None:
        net.SendNSetResponse(
            request["presentation_id"],
            request["message_id"],
            request["affected_class"],
            request["instance"],
            Status.ProcessingFailure,
            None,
            ErrorComment="may no longer be updated",
            ErrorID=0xA710,
        )

    pair.on(pair.scp, "OnReceiveNSetRequest", refuse)
    message_id = pair.scu.next_message_id()
    modifications = attributes(
        PerformedProcedureStepStatus="COMPLETED", PerformedSeriesSequence=[series]
    )
    pair.scu.SendNSetRequest(1, message_id, MPPS, instance, modifications)

    command_set = commands.next()["command_set"]
    assert command_set.RequestedSOPClassUID == MPPS
    assert command_set.RequestedSOPInstanceUID == instance
    assert "AffectedSOPInstanceUID" not in command_set
    request = requests.next()
    assert (request["affected_class"], request["instance"]) == (MPPS, instance)
    assert request["data_set"].PerformedProcedureStepStatus == "COMPLETED"
    received_series = request["data_set"].PerformedSeriesSequence[0]
    assert received_series.SeriesInstanceUID == series.SeriesInstanceUID
    assert received_series.SeriesDescription == "axial"

    final = pair.scu.wait_response(message_id, WAIT)
    assert final.status == Status.ProcessingFailure
    assert final.command["ErrorComment"] == "may no longer be updated"
    assert final.command["ErrorID"] == 0xA710
    response = responses.next()
    assert response["status"] is Status.ProcessingFailure
    assert (response["affected_class"], response["instance"]) == (MPPS, instance)
    assert response["data_set"] is None


def test_n_action_carries_action_type_and_information_both_ways(pair: Pair) -> None:
    transaction = generate_uid()
    requests = pair.record(pair.scp, "OnReceiveNActionRequest")
    responses = pair.record(pair.scu, "OnReceiveNActionResponse")

    def answer(net: DicomNet, **request: Any) -> None:
        reply = attributes(TransactionUID=request["data_set"].TransactionUID)
        net.SendNActionResponse(
            request["presentation_id"],
            request["message_id"],
            request["affected_class"],
            request["instance"],
            Status.Success,
            request["action"],
            reply,
        )

    pair.on(pair.scp, "OnReceiveNActionRequest", answer)
    reference = attributes(
        ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2", ReferencedSOPInstanceUID=generate_uid()
    )
    information = attributes(TransactionUID=transaction, ReferencedSOPSequence=[reference])
    message_id = pair.scu.next_message_id()
    pair.scu.SendNActionRequest(
        3, message_id, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE, 1, information
    )

    request = requests.next()
    assert (request["presentation_id"], request["message_id"]) == (3, message_id)
    assert request["affected_class"] == STORAGE_COMMITMENT
    assert request["instance"] == STORAGE_COMMITMENT_INSTANCE
    assert request["action"] == 1
    received_reference = request["data_set"].ReferencedSOPSequence[0]
    assert received_reference.ReferencedSOPInstanceUID == reference.ReferencedSOPInstanceUID
    response = responses.next()
    assert response["action"] == 1
    assert response["status"] is Status.Success
    assert response["data_set"].TransactionUID == transaction
    assert pair.scu.wait_response(message_id, WAIT).command["ActionTypeID"] == 1


def test_n_event_report_travels_in_both_directions_on_one_association(pair: Pair) -> None:
    """The SCP (association acceptor) invokes N-EVENT-REPORT too, as Storage Commitment
    does on the SCU's association (PS3.4 J.3.3)."""
    scp_requests = pair.record(pair.scp, "OnReceiveNReportRequest")
    scu_requests = pair.record(pair.scu, "OnReceiveNReportRequest")
    scp_responses = pair.record(pair.scp, "OnReceiveNReportResponse")
    scu_responses = pair.record(pair.scu, "OnReceiveNReportResponse")

    def answer(net: DicomNet, **request: Any) -> None:
        net.SendNReportResponse(
            request["presentation_id"],
            request["message_id"],
            request["affected_class"],
            request["instance"],
            Status.Success,
            request["dicom_event"],
            attributes(EventTypeID=request["dicom_event"]),
        )

    pair.on(pair.scp, "OnReceiveNReportRequest", answer)
    pair.on(pair.scu, "OnReceiveNReportRequest", answer)

    to_scp = pair.scu.next_message_id()
    pair.scu.SendNReportRequest(
        3,
        to_scp,
        STORAGE_COMMITMENT,
        STORAGE_COMMITMENT_INSTANCE,
        7,
        attributes(TransactionUID="1.2.3.4"),
    )
    request = scp_requests.next()
    assert (request["message_id"], request["dicom_event"]) == (to_scp, 7)
    assert (request["affected_class"], request["instance"]) == (
        STORAGE_COMMITMENT,
        STORAGE_COMMITMENT_INSTANCE,
    )
    assert request["data_set"].TransactionUID == "1.2.3.4"
    assert pair.scu.wait_response(to_scp, WAIT).command["EventTypeID"] == 7
    assert scu_responses.next()["data_set"].EventTypeID == 7

    to_scu = pair.scp.next_message_id()
    pair.scp.SendNReportRequest(
        3,
        to_scu,
        STORAGE_COMMITMENT,
        STORAGE_COMMITMENT_INSTANCE,
        2,
        attributes(TransactionUID="1.2.3.5"),
    )
    request = scu_requests.next()
    assert (request["message_id"], request["dicom_event"]) == (to_scu, 2)
    assert request["data_set"].TransactionUID == "1.2.3.5"
    final = pair.scp.wait_response(to_scu, WAIT)
    assert (final.status, final.command["EventTypeID"]) == (Status.Success, 2)
    response = scp_responses.next()
    assert (response["message_id"], response["dicom_event"]) == (to_scu, 2)
    assert response["instance"] == STORAGE_COMMITMENT_INSTANCE


@pytest.mark.parametrize("scu_chooses_uid", [True, False], ids=["scu-uid", "scp-assigns"])
def test_n_create_with_or_without_an_instance_uid(pair: Pair, scu_chooses_uid: bool) -> None:
    chosen = generate_uid() if scu_chooses_uid else ""
    assigned = chosen or generate_uid()
    requests = pair.record(pair.scp, "OnReceiveNCreateRequest")
    commands = pair.record(pair.scp, "OnReceiveData")
    responses = pair.record(pair.scu, "OnReceiveNCreateResponse")

    def answer(net: DicomNet, **request: Any) -> None:
        net.SendNCreateResponse(
            request["presentation_id"],
            request["message_id"],
            request["affected_class"],
            request["instance"] or assigned,
            Status.Success,
            request["data_set"],
        )

    pair.on(pair.scp, "OnReceiveNCreateRequest", answer)
    message_id = pair.scu.next_message_id()
    pair.scu.SendNCreateRequest(
        1, message_id, MPPS, chosen, attributes(PerformedProcedureStepStatus="IN PROGRESS")
    )

    assert ("AffectedSOPInstanceUID" in commands.next()["command_set"]) == scu_chooses_uid
    request = requests.next()
    assert (request["affected_class"], request["instance"]) == (MPPS, chosen)
    assert request["data_set"].PerformedProcedureStepStatus == "IN PROGRESS"
    assert pair.scu.wait_response(message_id, WAIT).affected_sop_instance_uid == assigned
    response = responses.next()
    assert response["instance"] == assigned
    assert response["data_set"].PerformedProcedureStepStatus == "IN PROGRESS"


def test_n_delete_names_its_instance_and_gets_a_failure_status(pair: Pair) -> None:
    instance = generate_uid()
    requests = pair.record(pair.scp, "OnReceiveNDeleteRequest")
    responses = pair.record(pair.scu, "OnReceiveNDeleteResponse")
    pair.on(
        pair.scp,
        "OnReceiveNDeleteRequest",
        lambda net, **r: net.SendNDeleteResponse(
            r["presentation_id"],
            r["message_id"],
            r["affected_class"],
            r["instance"],
            Status.NoSuchObjectInstance,
            ErrorComment="no such film session",
        ),
    )
    message_id = pair.scu.next_message_id()
    pair.scu.SendNDeleteRequest(5, message_id, BASIC_FILM_SESSION, instance)

    assert requests.next() == {
        "presentation_id": 5,
        "message_id": message_id,
        "affected_class": BASIC_FILM_SESSION,
        "instance": instance,
    }
    response = responses.next()
    assert response["status"] is Status.NoSuchObjectInstance
    assert (response["affected_class"], response["instance"]) == (BASIC_FILM_SESSION, instance)
    final = pair.scu.wait_response(message_id, WAIT)
    assert final.command["ErrorComment"] == "no such film session"
    assert final.status == Status.NoSuchObjectInstance


# -- responses that match nothing, commands nobody defines --------------------------------


def answer_n_get_twice(net: DicomNet, **request: Any) -> None:
    for patient in ("first", "second"):
        net.SendNGetResponse(
            request["presentation_id"],
            request["message_id"],
            request["affected_class"],
            request["instance"],
            Status.Success,
            attributes(PatientID=patient),
        )


def test_a_response_to_no_outstanding_request_is_dropped(pair: Pair) -> None:
    stray = pair.record(pair.scu, "OnReceiveNSetResponse")
    data = pair.record(pair.scu, "OnReceiveData")
    pair.scp.SendNSetResponse(1, 4242, MPPS, generate_uid(), Status.Success, None)
    pair.on(pair.scp, "OnReceiveNGetRequest", answer_n_get_twice)
    responses = pair.record(pair.scu, "OnReceiveNGetResponse")

    message_id = pair.scu.next_message_id()
    pair.scu.SendNGetRequest(1, message_id, MPPS, generate_uid(), [])
    assert responses.next()["data_set"].PatientID == "first"
    # A later exchange on the same connection proves the stray and the duplicate were
    # processed (in order) and dropped before any callback.
    follow_up = pair.scu.next_message_id()
    pair.scu.SendNGetRequest(1, follow_up, MPPS, generate_uid(), [])
    assert responses.next()["data_set"].PatientID == "first"
    pair.scu.wait_response(follow_up, WAIT)
    assert stray.pending() == 0
    seen = [data.next()["command_set"] for _ in range(2)]
    assert [command.MessageIDBeingRespondedTo for command in seen] == [message_id, follow_up]
    assert data.pending() == 0
    assert responses.pending() == 0
    assert pair.scu.IsAssociated()


def test_an_unknown_command_field_reaches_on_receive_unknown_on_both_sides(pair: Pair) -> None:
    unknown_at_scp = pair.record(pair.scp, "OnReceiveUnknown")
    unknown_at_scu = pair.record(pair.scu, "OnReceiveUnknown")

    def answer(
        net: DicomNet, presentation_id: int, command_set: Dataset, data_set: Dataset | None
    ) -> None:
        response = Dataset()
        response.CommandField = command_set.CommandField | 0x8000
        response.MessageIDBeingRespondedTo = command_set.MessageID
        response.CommandDataSetType = 0x0101
        response.Status = 0x0000
        net.SendData(presentation_id, response, None)

    pair.on(pair.scp, "OnReceiveUnknown", answer)
    message_id = pair.scu.next_message_id()
    command = Dataset()
    command.CommandField = 0x0FF0
    command.MessageID = message_id
    command.AffectedSOPClassUID = MPPS
    command.CommandDataSetType = 0x0001
    pair.scu.SendData(1, command, attributes(PatientID="odd"))

    received = unknown_at_scp.next()
    assert received["presentation_id"] == 1
    assert received["command_set"].CommandField == 0x0FF0
    assert received["command_set"].MessageID == message_id
    assert received["command_set"].AffectedSOPClassUID == MPPS
    assert received["data_set"].PatientID == "odd"
    final = pair.scu.wait_response(message_id, WAIT)
    assert (final.command_field, final.status) == (0x8FF0, 0x0000)
    answered = unknown_at_scu.next()
    assert answered["command_set"].MessageIDBeingRespondedTo == message_id
    assert answered["data_set"] is None

    # Both windows are free again: a known service works on the same association.
    pair.on(
        pair.scp,
        "OnReceiveNGetRequest",
        lambda net, **r: net.SendNGetResponse(
            r["presentation_id"],
            r["message_id"],
            r["affected_class"],
            r["instance"],
            Status.Success,
            None,
        ),
    )
    follow_up = pair.scu.next_message_id()
    pair.scu.SendNGetRequest(1, follow_up, MPPS, generate_uid(), [])
    assert pair.scu.wait_response(follow_up, WAIT).status == Status.Success
