#!/usr/bin/env python3
"""Modality Performed Procedure Step SCU (PS3.4 annex F.7): runs one procedure step
on the MPPS SCP at PEER PORT.

1. N-CREATE an MPPS instance with status IN PROGRESS,
2. N-SET it with a description and the performed series,
3. N-SET it to COMPLETED with the end date and time,
4. N-GET it and print its final state.

Each step is printed with its status. Exit status 0 when every step succeeded and the
instance ended COMPLETED, 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_common_options, fail, setup_logging, timeouts_from  # noqa: E402
from mppscommon import (  # noqa: E402
    COMPLETED,
    IN_PROGRESS,
    MPPS_SOP_CLASS,
    MPPS_TRANSFER_SYNTAXES,
)
from pydicom import Dataset  # noqa: E402
from pydicom.datadict import tag_for_keyword  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from dicomnet import (  # noqa: E402
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomException,
    DicomNet,
)
from dicomnet.dimse.assembly import Message  # noqa: E402
from dicomnet.dimse.datasets import decode_dataset  # noqa: E402
from dicomnet.dimse.status import StatusCategory, status_category, status_description  # noqa: E402

PROGRAM = "mppsscu"
# What the final N-GET asks for and prints.
SHOWN_ATTRIBUTES = (
    "PatientID",
    "PerformedProcedureStepID",
    "PerformedProcedureStepStatus",
    "PerformedProcedureStepDescription",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepEndDate",
    "PerformedProcedureStepEndTime",
    "PerformedSeriesSequence",
)


class StepFailed(Exception):
    """A DIMSE step did not succeed; the message says which and why."""


def creation_attributes(args: argparse.Namespace, now: datetime.datetime) -> Dataset:
    """The N-CREATE attribute list: Type 1 and 2 attributes of PS3.4 Table F.7.2-1."""
    scheduled = Dataset()
    scheduled.StudyInstanceUID = generate_uid()
    scheduled.AccessionNumber = ""
    scheduled.ScheduledProcedureStepID = ""
    scheduled.ScheduledProcedureStepDescription = ""
    scheduled.RequestedProcedureID = ""
    scheduled.RequestedProcedureDescription = ""
    scheduled.ReferencedStudySequence = []
    scheduled.ScheduledProtocolCodeSequence = []
    attributes = Dataset()
    attributes.SpecificCharacterSet = "ISO_IR 100"
    attributes.ScheduledStepAttributesSequence = [scheduled]
    attributes.PatientName = args.patient_name
    attributes.PatientID = args.patient_id
    attributes.PatientBirthDate = ""
    attributes.PatientSex = ""
    attributes.ReferencedPatientSequence = []
    attributes.PerformedProcedureStepID = args.step_id
    attributes.PerformedStationAETitle = args.aet
    attributes.PerformedStationName = ""
    attributes.PerformedLocation = ""
    attributes.PerformedProcedureStepStartDate = now.strftime("%Y%m%d")
    attributes.PerformedProcedureStepStartTime = now.strftime("%H%M%S")
    attributes.PerformedProcedureStepStatus = IN_PROGRESS
    attributes.PerformedProcedureStepDescription = ""
    attributes.PerformedProcedureTypeDescription = ""
    attributes.ProcedureCodeSequence = []
    attributes.PerformedProcedureStepEndDate = ""
    attributes.PerformedProcedureStepEndTime = ""
    attributes.Modality = args.modality
    attributes.StudyID = ""
    attributes.PerformedProtocolCodeSequence = []
    attributes.PerformedSeriesSequence = []
    return attributes


def progress_attributes(args: argparse.Namespace) -> Dataset:
    """First N-SET: what was done so far (a description and one performed series)."""
    series = Dataset()
    series.PerformingPhysicianName = ""
    series.ProtocolName = args.description
    series.OperatorsName = ""
    series.SeriesInstanceUID = generate_uid()
    series.SeriesDescription = args.description
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = []
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    modifications = Dataset()
    modifications.PerformedProcedureStepDescription = args.description
    modifications.PerformedSeriesSequence = [series]
    return modifications


def completion_attributes(now: datetime.datetime) -> Dataset:
    """Second N-SET: the final state, with the end date and time."""
    modifications = Dataset()
    modifications.PerformedProcedureStepStatus = COMPLETED
    modifications.PerformedProcedureStepEndDate = now.strftime("%Y%m%d")
    modifications.PerformedProcedureStepEndTime = now.strftime("%H%M%S")
    return modifications


class MppsSession:
    """One association with the SCP; each step sends one request and checks its answer."""

    def __init__(self, net: DicomNet, presentation_id: int, transfer_syntax: str) -> None:
        self.net = net
        self.presentation_id = presentation_id
        self.transfer_syntax = transfer_syntax

    def step(self, name: str, send: Callable[[int], None]) -> Message:
        """Send one request (``send(message_id)``), wait for its final response, print the
        outcome; raise ``StepFailed`` unless it is Success."""
        message_id = self.net.next_message_id()
        send(message_id)
        response = self.net.wait_response(message_id)
        status = response.status or 0
        meaning = status_description(status, response.command_field)
        comment = response.command.get("ErrorComment")
        error_id = response.command.get("ErrorID")
        details = "".join(
            [
                f", error ID 0x{error_id:04X}" if isinstance(error_id, int) else "",
                f": {comment}" if comment else "",
            ]
        )
        print(f"{PROGRAM}: {name}: status 0x{status:04X} ({meaning}{details})", flush=True)
        if status_category(status) is not StatusCategory.SUCCESS:
            raise StepFailed(f"{name} failed with status 0x{status:04X} ({meaning}{details})")
        return response

    def data_set(self, response: Message) -> Dataset:
        """The response's data set (received as bytes), or an empty one without it."""
        if not isinstance(response.data, bytes):
            return Dataset()
        return decode_dataset(response.data, self.transfer_syntax)


def associate(args: argparse.Namespace, net: DicomNet) -> MppsSession:
    net.Connect(None, 0, args.peer, args.port)
    net.wait_connected()
    request = DicomAssociate(True)
    request.Calling = args.aet
    request.Called = args.aec
    request.MaxLength = args.pdu
    request.AddPresentationContext(1, DicomAssociateAcceptResultType.Success, MPPS_SOP_CLASS)
    for proposed in MPPS_TRANSFER_SYNTAXES:
        request.AddTransfer(1, proposed)
    net.SendAssociateRequest(request)
    accepted = net.wait_associated()
    transfer_syntax = accepted.accepted_transfer_syntax(1)
    if transfer_syntax is None:
        net.SendAbort()
        raise StepFailed("the peer did not accept the MPPS SOP class")
    print(f"{PROGRAM}: associated with {args.aec}@{args.peer}:{args.port}", flush=True)
    return MppsSession(net, 1, transfer_syntax)


def run_procedure_step(args: argparse.Namespace, session: MppsSession) -> Dataset:
    """The four steps; returns the final state the SCP reported."""
    net, pid = session.net, session.presentation_id
    requested = "" if args.scp_assigns_uid else generate_uid()
    created = session.step(
        "N-CREATE (IN PROGRESS)",
        lambda mid: net.SendNCreateRequest(
            pid, mid, MPPS_SOP_CLASS, requested, creation_attributes(args, datetime.datetime.now())
        ),
    )
    instance = created.affected_sop_instance_uid or requested
    if not instance:
        raise StepFailed("N-CREATE response lacks the SOP Instance UID the SCP assigned")
    print(f"{PROGRAM}: MPPS instance {instance}", flush=True)
    session.step(
        "N-SET (progress)",
        lambda mid: net.SendNSetRequest(
            pid, mid, MPPS_SOP_CLASS, instance, progress_attributes(args)
        ),
    )
    session.step(
        "N-SET (COMPLETED)",
        lambda mid: net.SendNSetRequest(
            pid, mid, MPPS_SOP_CLASS, instance, completion_attributes(datetime.datetime.now())
        ),
    )
    tags = [tag_for_keyword(keyword) or 0 for keyword in SHOWN_ATTRIBUTES]
    got = session.step(
        "N-GET",
        lambda mid: net.SendNGetRequest(pid, mid, MPPS_SOP_CLASS, instance, tags),
    )
    return session.data_set(got)


def print_state(state: Dataset) -> None:
    for keyword in SHOWN_ATTRIBUTES:
        if keyword == "PerformedSeriesSequence":
            series = state.get(keyword) or []
            uids = ", ".join(str(item.get("SeriesInstanceUID", "?")) for item in series)
            print(f"  {keyword}: {len(series)} series {uids}".rstrip())
        else:
            print(f"  {keyword}: {state.get(keyword, '(absent)')}")


def run(args: argparse.Namespace, net: DicomNet) -> int:
    session = associate(args, net)
    try:
        state = run_procedure_step(args, session)
    finally:
        if net.IsAssociated():
            net.SendReleaseRequest()
            net.wait_released()
    print(f"{PROGRAM}: final state:")
    print_state(state)
    final_status = state.get("PerformedProcedureStepStatus")
    if final_status != COMPLETED:
        return fail(PROGRAM, f"the SCP reports status {final_status!r}, not {COMPLETED}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser, scu=True)
    parser.set_defaults(aet="MPPSSCU")
    parser.add_argument("--patient-id", default="MPPS-TEST", help="Patient ID (0010,0020)")
    parser.add_argument("--patient-name", default="Test^Patient", help="Patient's Name")
    parser.add_argument("--modality", default="OT", help="Modality (0008,0060)")
    parser.add_argument("--step-id", default="PPS1", help="Performed Procedure Step ID")
    parser.add_argument(
        "--description",
        default="dicomnet MPPS sample",
        help="Performed Procedure Step Description set by the first N-SET",
    )
    parser.add_argument(
        "--scp-assigns-uid",
        action="store_true",
        help="send N-CREATE without a SOP Instance UID, for the SCP to assign",
    )
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    net = DicomNet(None, timeouts=timeouts_from(args))
    try:
        return run(args, net)
    except (DicomException, StepFailed) as exc:
        return fail(PROGRAM, str(exc))
    finally:
        net.Close()
        DicomNet.Shutdown()


if __name__ == "__main__":
    sys.exit(main())
