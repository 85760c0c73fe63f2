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

from common import (
    add_common_options,
    associate_for,
    fail,
    run_scu,
    setup_logging,
    timeouts_from,
)
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.uid import generate_uid

from dicomnet import DicomNet, Response, StatusCategory
from dicomnet.mpps import (
    COMPLETED,
    MPPS_SOP_CLASS,
    MPPS_TRANSFER_SYNTAXES,
    completion_attributes,
    creation_attributes,
)
from dicomnet.scu import build_request, release

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


class MppsSession:
    """One association with the SCP; each step sends one request and checks its answer."""

    def __init__(self, net: DicomNet, presentation_id: int) -> None:
        self.net = net
        self.presentation_id = presentation_id

    def step(self, name: str, send: Callable[[int], None]) -> Response:
        """Send one request (``send(message_id)``), wait for its final response, print the
        outcome; raise ``StepFailed`` unless it is Success."""
        message_id = self.net.next_message_id()
        send(message_id)
        response = self.net.wait_response(message_id)
        error_id = response.command.get("ErrorID")
        details = "".join(
            [
                f", error ID 0x{error_id:04X}" if isinstance(error_id, int) else "",
                f": {response.error_comment}" if response.error_comment else "",
            ]
        )
        outcome = f"status 0x{response.status:04X} ({response.description}{details})"
        print(f"{PROGRAM}: {name}: {outcome}", flush=True)
        if response.category is not StatusCategory.SUCCESS:
            raise StepFailed(f"{name} failed with {outcome}")
        return response


def associate(args: argparse.Namespace, net: DicomNet) -> MppsSession:
    request = build_request(
        args.aet, args.aec, args.pdu, [(MPPS_SOP_CLASS, MPPS_TRANSFER_SYNTAXES)]
    )
    presentation_id = associate_for(net, args, request, MPPS_SOP_CLASS, "MPPS")
    print(f"{PROGRAM}: associated with {args.aec}@{args.peer}:{args.port}", flush=True)
    return MppsSession(net, presentation_id)


def run_procedure_step(args: argparse.Namespace, session: MppsSession) -> Dataset:
    """The four steps; returns the final state the SCP reported."""
    net, pid = session.net, session.presentation_id
    requested = "" if args.scp_assigns_uid else generate_uid()
    created = session.step(
        "N-CREATE (IN PROGRESS)",
        lambda mid: net.SendNCreateRequest(
            pid,
            mid,
            MPPS_SOP_CLASS,
            requested,
            creation_attributes(
                patient_name=args.patient_name,
                patient_id=args.patient_id,
                step_id=args.step_id,
                station_ae_title=args.aet,
                modality=args.modality,
                start=datetime.datetime.now(),
            ),
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
    return got.dataset or Dataset()


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
            release(net)
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
    return run_scu(PROGRAM, net, lambda net: run(args, net), StepFailed)


if __name__ == "__main__":
    sys.exit(main())
