"""DIMSE-N services (PS3.7 10) against pynetdicom, in both roles.

- samples/mppsscu.py runs a whole Modality Performed Procedure Step (PS3.4 F.7) on a
  pynetdicom MPPS SCP; pynetdicom as MPPS SCU drives samples/mppsscp.py through create,
  update, completion, the refused update after completion (0110, Error ID A710), get, and
  the failure statuses of F.7.2 and PS3.7 C.
- N-ACTION, N-EVENT-REPORT and N-DELETE, which MPPS does not use, run between an
  in-process DicomNet and pynetdicom on Storage Commitment Push Model (PS3.4 J) and
  Basic Film Session (PS3.4 H): our SCU against a pynetdicom SCP, and pynetdicom's SCU
  against our SCP, which also sends N-EVENT-REPORT on the SCU's own association, the
  Storage Commitment pattern, while the SCU sends one the other way.

DCMTK has no general DIMSE-N tools, so it is not a peer here.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid

from dicomnet import (
    AcceptPolicy,
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomCommandStatusType,
    DicomExceptionCode,
    DicomNet,
    Response,
    Timeouts,
    build_accept,
)
from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE

LOOPBACK = "127.0.0.1"
WAIT = 15.0
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)
MPPS = "1.2.840.10008.3.1.2.3.3"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
BASIC_FILM_SESSION = "1.2.840.10008.5.1.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
TRANSFER_SYNTAXES = [EXPLICIT_VR_LE, IMPLICIT_VR_LE]

Status = DicomCommandStatusType


def data_set(**values: Any) -> Dataset:
    result = Dataset()
    for keyword, value in values.items():
        setattr(result, keyword, value)
    return result


def tag_list(value: Any) -> list[int]:
    """An AT element's value as a list, whatever its multiplicity (pydicom gives VM 1 as
    a single tag)."""
    return [int(tag) for tag in (value if isinstance(value, list | tuple) else [value])]


def mpps_creation(status: str = "IN PROGRESS", **overrides: Any) -> Dataset:
    """An N-CREATE attribute list with the Type 1 attributes mppsscp checks."""
    attributes = data_set(
        PatientID="INTEROP-1",
        PatientName="Interop^Test",
        PerformedProcedureStepID="PPS-7",
        PerformedStationAETitle="PYNETDICOM",
        PerformedProcedureStepStartDate="20240102",
        PerformedProcedureStepStartTime="101500",
        PerformedProcedureStepStatus=status,
        Modality="CT",
        PerformedSeriesSequence=[],
    )
    for keyword, value in overrides.items():
        if value is None:
            delattr(attributes, keyword)
        else:
            setattr(attributes, keyword, value)
    return attributes


# -- samples/mppsscu.py -> pynetdicom MPPS SCP --------------------------------------------


class PynetdicomMppsStore:
    """pynetdicom EVT_N_CREATE/N_SET/N_GET handlers over a dict of instances."""

    def __init__(self) -> None:
        self.instances: dict[str, Dataset] = {}
        self.create_requested_uid: list[str | None] = []
        self.get_requested_tags: list[list[int]] = []

    def handlers(self) -> dict[Any, Callable[..., Any]]:
        from pynetdicom import evt

        return {evt.EVT_N_CREATE: self.create, evt.EVT_N_SET: self.set, evt.EVT_N_GET: self.get}

    def create(self, event: Any) -> tuple[int, Dataset]:
        requested = event.request.AffectedSOPInstanceUID
        self.create_requested_uid.append(requested)
        instance = str(requested or generate_uid())
        attributes = event.attribute_list
        self.instances[instance] = attributes
        reply = Dataset()
        if requested is None:
            reply.AffectedSOPInstanceUID = instance  # pynetdicom moves it to the command
        return 0x0000, reply

    def set(self, event: Any) -> tuple[int, Dataset | None]:
        stored = self.instances.get(str(event.request.RequestedSOPInstanceUID))
        if stored is None:
            return 0x0112, None
        for element in event.modification_list:
            stored[element.tag] = element
        return 0x0000, event.modification_list

    def get(self, event: Any) -> tuple[int, Dataset | None]:
        stored = self.instances.get(str(event.request.RequestedSOPInstanceUID))
        if stored is None:
            return 0x0112, None
        requested = event.request.AttributeIdentifierList
        tags = tag_list(requested) if requested else []
        self.get_requested_tags.append(tags)
        reply = Dataset()
        for tag in tags or [int(element.tag) for element in stored]:
            if tag in stored:
                reply[tag] = stored[tag]
        return 0x0000, reply


@pytest.mark.parametrize("scp_assigns_uid", [False, True], ids=["scu-uid", "scp-assigns-uid"])
def test_mppsscu_runs_a_procedure_step_on_a_pynetdicom_mpps_scp(
    pynetdicom_scp: Callable[..., Any], run_sample: Callable[..., Any], scp_assigns_uid: bool
) -> None:
    store = PynetdicomMppsStore()
    options = ["--scp-assigns-uid"] if scp_assigns_uid else []
    with pynetdicom_scp([MPPS], store.handlers()) as (port, log):
        result = run_sample(
            "mppsscu",
            "-aec",
            "PYNETDICOM",
            "--patient-id",
            "PID-42",
            "--description",
            "interop step",
            *options,
            "127.0.0.1",
            str(port),
        )
        assert result.returncode == 0, result.stderr
        log.wait_for("EVT_RELEASED")
    requested = [name for name in log.names if name.startswith("EVT_N_")]
    assert requested == ["EVT_N_CREATE", "EVT_N_SET", "EVT_N_SET", "EVT_N_GET"]
    (instance,) = store.instances
    final = store.instances[instance]
    assert final.PatientID == "PID-42"
    assert final.PerformedProcedureStepStatus == "COMPLETED"
    assert final.PerformedProcedureStepDescription == "interop step"
    assert final.PerformedProcedureStepEndDate
    assert len(final.PerformedSeriesSequence) == 1
    assert (store.create_requested_uid[0] is None) == scp_assigns_uid
    assert 0x00400252 in store.get_requested_tags[0]  # Performed Procedure Step Status
    for step in ("N-CREATE (IN PROGRESS)", "N-SET (progress)", "N-SET (COMPLETED)", "N-GET"):
        assert f"{step}: status 0x0000" in result.stdout
    assert f"MPPS instance {instance}" in result.stdout
    assert "PerformedProcedureStepStatus: COMPLETED" in result.stdout


def test_mppsscu_fails_when_the_scp_refuses_the_update(
    pynetdicom_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    from pynetdicom import evt

    store = PynetdicomMppsStore()
    handlers = {**store.handlers(), evt.EVT_N_SET: lambda event: (0x0110, None)}
    with pynetdicom_scp([MPPS], handlers) as (port, log):
        result = run_sample("mppsscu", "-aec", "PYNETDICOM", "127.0.0.1", str(port))
        log.wait_for("EVT_RELEASED")
    assert result.returncode == 1
    assert "N-SET (progress) failed with status 0x0110" in result.stderr
    assert "EVT_N_GET" not in log.names


# -- pynetdicom MPPS SCU -> samples/mppsscp.py ---------------------------------------------


class PynetdicomScu:
    """pynetdicom associated with an SCP, keeping the command set of every response."""

    def __init__(
        self, port: int, ae_title: str, contexts: list[str], handlers: list[Any] | None = None
    ) -> None:
        from pynetdicom import AE, evt

        self.commands: list[Dataset] = []
        self.ae = AE(ae_title="PYNETDICOM")
        self.ae.dimse_timeout = WAIT
        self.ae.acse_timeout = WAIT
        for sop_class in contexts:
            self.ae.add_requested_context(sop_class, TRANSFER_SYNTAXES)
        received = (evt.EVT_DIMSE_RECV, self._keep_command)
        # Any: pynetdicom's stubs type N-GET tags as BaseTag and replies as Optional
        self.assoc: Any = self.ae.associate(
            LOOPBACK, port, ae_title=ae_title, evt_handlers=[received, *(handlers or [])]
        )
        assert self.assoc.is_established

    def _keep_command(self, event: Any) -> None:
        self.commands.append(event.message.command_set)

    @property
    def last_command(self) -> Dataset:
        return self.commands[-1]

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()
        self.ae.shutdown()


@pytest.fixture
def mpps_scu(sample_server: Callable[..., Any], require_pynetdicom: Any) -> Iterator[PynetdicomScu]:
    with sample_server("mppsscp", "-v", "-aet", "MPPS-SCP") as (port, _server):
        scu = PynetdicomScu(port, "MPPS-SCP", [MPPS])
        try:
            yield scu
        finally:
            scu.close()


def test_pynetdicom_scu_runs_a_procedure_step_on_mppsscp(mpps_scu: PynetdicomScu) -> None:
    assoc = mpps_scu.assoc
    instance = generate_uid()
    status, _ = assoc.send_n_create(mpps_creation(), MPPS, instance)
    assert status.Status == Status.Success
    assert mpps_scu.last_command.AffectedSOPInstanceUID == instance

    series = data_set(SeriesInstanceUID=generate_uid(), SeriesDescription="axial")
    progress = data_set(
        PerformedProcedureStepDescription="head CT", PerformedSeriesSequence=[series]
    )
    status, _ = assoc.send_n_set(progress, MPPS, instance)
    assert status.Status == Status.Success

    status, got = assoc.send_n_get([0x00400252, 0x00400254, 0x00100020], MPPS, instance)
    assert status.Status == Status.Success
    assert got.PerformedProcedureStepStatus == "IN PROGRESS"
    assert got.PerformedProcedureStepDescription == "head CT"
    assert got.PatientID == "INTEROP-1"
    assert "Modality" not in got  # only what was asked for

    completion = data_set(
        PerformedProcedureStepStatus="COMPLETED",
        PerformedProcedureStepEndDate="20240102",
        PerformedProcedureStepEndTime="103000",
    )
    status, _ = assoc.send_n_set(completion, MPPS, instance)
    assert status.Status == Status.Success

    status, _ = assoc.send_n_set(
        data_set(PerformedProcedureStepDescription="too late"), MPPS, instance
    )
    assert status.Status == Status.ProcessingFailure
    assert status.ErrorID == 0xA710
    assert "may no longer be updated" in status.ErrorComment

    status, everything = assoc.send_n_get([], MPPS, instance)
    assert status.Status == Status.Success
    assert everything.PerformedProcedureStepStatus == "COMPLETED"
    assert everything.PerformedProcedureStepDescription == "head CT"
    assert everything.PerformedSeriesSequence[0].SeriesInstanceUID == series.SeriesInstanceUID
    assert everything.Modality == "CT"


def test_mppsscp_assigns_the_instance_uid_when_the_request_has_none(
    mpps_scu: PynetdicomScu,
) -> None:
    status, _ = mpps_scu.assoc.send_n_create(mpps_creation(), MPPS, None)
    assert status.Status == Status.Success
    assigned = str(mpps_scu.last_command.AffectedSOPInstanceUID)
    assert assigned
    status, got = mpps_scu.assoc.send_n_get([0x00400252], MPPS, assigned)
    assert (status.Status, got.PerformedProcedureStepStatus) == (Status.Success, "IN PROGRESS")


def test_mppsscp_refuses_what_f_7_2_forbids(mpps_scu: PynetdicomScu) -> None:
    assoc = mpps_scu.assoc
    instance = generate_uid()
    assert assoc.send_n_create(mpps_creation(), MPPS, instance)[0].Status == Status.Success

    status, _ = assoc.send_n_create(mpps_creation(), MPPS, instance)
    assert status.Status == Status.DuplicateInstance

    status, _ = assoc.send_n_create(
        mpps_creation(PerformedProcedureStepStartDate=None), MPPS, generate_uid()
    )
    assert status.Status == Status.MissingAttribute
    assert tag_list(mpps_scu.last_command.AttributeIdentifierList) == [0x00400244]

    status, _ = assoc.send_n_create(mpps_creation(Modality=""), MPPS, generate_uid())
    assert status.Status == Status.MissingAttributeValue

    status, _ = assoc.send_n_create(mpps_creation("COMPLETED"), MPPS, generate_uid())
    assert status.Status == Status.InvalidAttributeValue

    status, _ = assoc.send_n_set(data_set(PerformedProcedureStepStatus="FINISHED"), MPPS, instance)
    assert status.Status == Status.InvalidAttributeValue

    unknown = generate_uid()
    status, _ = assoc.send_n_set(data_set(PerformedProcedureStepDescription="x"), MPPS, unknown)
    assert status.Status == Status.NoSuchObjectInstance
    status, _ = assoc.send_n_get([], MPPS, unknown)
    assert status.Status == Status.NoSuchObjectInstance

    status, got = assoc.send_n_get([0x00400252, 0x00400250], MPPS, instance)
    assert status.Status == Status.AttributeListError  # no end date was ever set
    assert tag_list(mpps_scu.last_command.AttributeIdentifierList) == [0x00400250]
    assert got.PerformedProcedureStepStatus == "IN PROGRESS"
    # every refusal left the instance as it was, and DISCONTINUED is final too
    status, _ = assoc.send_n_set(
        data_set(PerformedProcedureStepStatus="DISCONTINUED"), MPPS, instance
    )
    assert status.Status == Status.Success
    status, _ = assoc.send_n_set(
        data_set(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, instance
    )
    assert (status.Status, status.ErrorID) == (Status.ProcessingFailure, 0xA710)

    # a refused creation without a requested UID assigns none
    status, _ = assoc.send_n_create(mpps_creation(Modality=None), MPPS, None)
    assert status.Status == Status.MissingAttribute
    assert "AffectedSOPInstanceUID" not in mpps_scu.last_command


# -- N-ACTION, N-EVENT-REPORT, N-DELETE: DicomNet SCU -> pynetdicom SCP ---------------------


@pytest.fixture
def dicomnet_runtime() -> Iterator[None]:
    DicomNet.Startup()
    try:
        yield
    finally:
        DicomNet.Shutdown()


def commitment_request() -> Dataset:
    reference = data_set(
        ReferencedSOPClassUID=CT_IMAGE_STORAGE, ReferencedSOPInstanceUID=generate_uid()
    )
    return data_set(TransactionUID=generate_uid(), ReferencedSOPSequence=[reference])


def reply_data(response: Response) -> Dataset:
    reply = response.dataset
    assert reply is not None
    return reply


def test_dicomnet_scu_sends_n_action_n_event_report_and_n_delete_to_pynetdicom(
    pynetdicom_scp: Callable[..., Any], dicomnet_runtime: None
) -> None:
    from pynetdicom import evt

    def action(event: Any) -> tuple[int, Dataset]:
        return 0x0000, data_set(TransactionUID=event.action_information.TransactionUID)

    def report(event: Any) -> tuple[int, Dataset]:
        return 0x0000, data_set(EventTypeID=event.event_type)

    handlers = {
        evt.EVT_N_ACTION: action,
        evt.EVT_N_EVENT_REPORT: report,
        evt.EVT_N_DELETE: lambda event: 0x0112,
    }
    with pynetdicom_scp([STORAGE_COMMITMENT, BASIC_FILM_SESSION], handlers) as (port, log):
        scu = DicomNet(None, timeouts=TIMEOUTS)
        try:
            scu.Connect(None, 0, LOOPBACK, port)
            scu.wait_connected(WAIT)
            request = DicomAssociate(True)
            request.Calling, request.Called = "DICOMNET", "PYNETDICOM"
            for context_id, sop_class in ((1, STORAGE_COMMITMENT), (3, BASIC_FILM_SESSION)):
                request.AddPresentationContext(
                    context_id, DicomAssociateAcceptResultType.Success, sop_class
                )
                request.AddTransfer(context_id, EXPLICIT_VR_LE)
            scu.SendAssociateRequest(request)
            scu.wait_associated(WAIT)

            information = commitment_request()
            message_id = scu.next_message_id()
            scu.SendNActionRequest(
                1, message_id, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE, 1, information
            )
            response = scu.wait_response(message_id, WAIT)
            assert response.status == Status.Success
            assert response.command["ActionTypeID"] == 1
            assert reply_data(response).TransactionUID == information.TransactionUID

            message_id = scu.next_message_id()
            scu.SendNReportRequest(
                1, message_id, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE, 2, information
            )
            response = scu.wait_response(message_id, WAIT)
            assert (response.status, response.command["EventTypeID"]) == (Status.Success, 2)
            assert reply_data(response).EventTypeID == 2

            film_session = generate_uid()
            message_id = scu.next_message_id()
            scu.SendNDeleteRequest(3, message_id, BASIC_FILM_SESSION, film_session)
            response = scu.wait_response(message_id, WAIT)
            assert response.status == Status.NoSuchObjectInstance

            scu.SendReleaseRequest()
            scu.wait_released(WAIT)
        finally:
            scu.Close()
        (acted,) = log.wait_for("EVT_N_ACTION")
        (reported,) = log.wait_for("EVT_N_EVENT_REPORT")
        (deleted,) = log.wait_for("EVT_N_DELETE")
    assert acted.action_type == 1
    assert acted.request.RequestedSOPInstanceUID == STORAGE_COMMITMENT_INSTANCE
    sent_reference = information.ReferencedSOPSequence[0]
    received_reference = acted.action_information.ReferencedSOPSequence[0]
    assert received_reference.ReferencedSOPInstanceUID == sent_reference.ReferencedSOPInstanceUID
    assert reported.event_type == 2
    assert reported.request.AffectedSOPInstanceUID == STORAGE_COMMITMENT_INSTANCE
    assert reported.event_information.TransactionUID == information.TransactionUID
    assert deleted.request.RequestedSOPClassUID == BASIC_FILM_SESSION
    assert deleted.request.RequestedSOPInstanceUID == film_session


# -- pynetdicom SCU -> DicomNet SCP, N-EVENT-REPORT both ways on one association -------------


class CommitmentScp(DicomNet):
    """Storage Commitment and Basic Film Session SCP: answers N-ACTION, then reports the
    commitment result with N-EVENT-REPORT on the same association (PS3.4 J.3.3); takes
    N-EVENT-REPORTs; refuses N-DELETE of any film session (no such instance)."""

    POLICY = AcceptPolicy(
        supported={STORAGE_COMMITMENT: TRANSFER_SYNTAXES, BASIC_FILM_SESSION: TRANSFER_SYNTAXES}
    )

    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.reports_sent: queue.Queue[int] = queue.Queue()
        self.received: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.SendAssociateAccept(build_accept(association, self.POLICY))

    def OnReceiveNActionRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        action: int,
        data_set: Dataset | None,
    ) -> None:
        self.received.put(
            ("N-ACTION", {"action": action, "data_set": data_set, "instance": instance})
        )
        self.SendNActionResponse(
            presentation_id, message_id, affected_class, instance, Status.Success, action, None
        )
        # Every referenced instance is committed: the report repeats the request.
        report_id = self.next_message_id()
        self.SendNReportRequest(presentation_id, report_id, affected_class, instance, 1, data_set)
        self.reports_sent.put(report_id)

    def OnReceiveNReportRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        dicom_event: int,
        data_set: Dataset | None,
    ) -> None:
        self.received.put(("N-EVENT-REPORT", {"event": dicom_event, "data_set": data_set}))
        self.SendNReportResponse(
            presentation_id, message_id, affected_class, instance, Status.Success, dicom_event, None
        )

    def OnReceiveNDeleteRequest(
        self, presentation_id: int, message_id: int, affected_class: str, instance: str
    ) -> None:
        self.received.put(("N-DELETE", {"instance": instance}))
        self.SendNDeleteResponse(
            presentation_id,
            message_id,
            affected_class,
            instance,
            Status.NoSuchObjectInstance,
            ErrorComment="no such film session",
            ErrorID=0x0001,
        )

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class CommitmentListener(DicomNet):
    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.children: queue.Queue[CommitmentScp] = queue.Queue()

    def OnAccept(self, error: DicomExceptionCode) -> None:
        child = CommitmentScp()
        self.children.put(child)
        self.Accept(child)


def test_pynetdicom_scu_and_dicomnet_scp_exchange_n_event_reports_on_one_association(
    require_pynetdicom: Any, dicomnet_runtime: None
) -> None:
    from pynetdicom import evt

    reports_at_scu: queue.Queue[Any] = queue.Queue()

    def on_report(event: Any) -> tuple[int, None]:
        reports_at_scu.put(event)
        return 0x0000, None

    listener = CommitmentListener()
    listener.Listen(LOOPBACK, 0)
    scu: PynetdicomScu | None = None
    try:
        scu = PynetdicomScu(
            listener.HostPort,
            "COMMIT-SCP",
            [STORAGE_COMMITMENT, BASIC_FILM_SESSION],
            handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
        )
        scp = listener.children.get(timeout=WAIT)
        information = commitment_request()
        status, _ = scu.assoc.send_n_action(
            information, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
        )
        assert status.Status == Status.Success
        kind, action = scp.received.get(timeout=WAIT)
        assert (kind, action["action"], action["instance"]) == (
            "N-ACTION",
            1,
            STORAGE_COMMITMENT_INSTANCE,
        )

        # our SCP -> pynetdicom SCU, on the SCU's association
        report = reports_at_scu.get(timeout=WAIT)
        assert report.event_type == 1
        assert report.request.AffectedSOPInstanceUID == STORAGE_COMMITMENT_INSTANCE
        assert report.event_information.TransactionUID == information.TransactionUID
        report_id = scp.reports_sent.get(timeout=WAIT)
        assert scp.wait_response(report_id, WAIT).status == Status.Success

        # pynetdicom SCU -> our SCP, same association
        status, _ = scu.assoc.send_n_event_report(
            information, 5, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
        )
        assert status.Status == Status.Success
        kind, event = scp.received.get(timeout=WAIT)
        assert (kind, event["event"]) == ("N-EVENT-REPORT", 5)
        assert event["data_set"].TransactionUID == information.TransactionUID

        film_session = generate_uid()
        status = scu.assoc.send_n_delete(BASIC_FILM_SESSION, film_session)
        assert status.Status == Status.NoSuchObjectInstance
        assert status.ErrorComment == "no such film session"
        assert scp.received.get(timeout=WAIT) == ("N-DELETE", {"instance": film_session})
        assert scu.assoc.is_established
    finally:
        if scu is not None:
            scu.close()
        listener.Close()
