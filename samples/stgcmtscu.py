#!/usr/bin/env python3
"""Storage Commitment SCU (PS3.4 annex J, Push Model): asks the SCP at PEER PORT to
commit the instances of FILE_OR_DIR... and waits for its answer.

Only the meta header of each file is read (directories recursively) for its SOP class
and instance. One N-ACTION Request Storage Commitment with a new Transaction UID names
them all; the result comes as an N-EVENT-REPORT, answered with Success, either on the
same association or, with ``--port``, on an association the SCP opens to this program
(proposing the SCP role by role selection, J.3.3). ``--release-early`` releases the
association right after the N-ACTION response, so the report must come that second way.
``--timeout`` also bounds the wait for the report.

Prints the committed and the failed instances (with their Failure Reason). Exit status
0 when every instance was committed, 1 when some were not, 2 when there is no result
(no file, N-ACTION refused, protocol error, no report in time).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common import (
    NotAccepted,
    add_common_options,
    associate_for,
    fail,
    server_settings,
    setup_logging,
    timeouts_from,
)
from pydicom import Dataset
from pydicom.uid import generate_uid
from storescu import part10_files

from dicomnet import (
    DicomCommandStatusType,
    DicomException,
    DicomNet,
    StatusCategory,
    Timeouts,
)
from dicomnet.commitment import (
    COMMITMENT_TRANSFER_SYNTAXES,
    CommitmentRefused,
    CommitmentResult,
    SopReference,
    check_commitment_report,
    commitment_association,
    request_commitment,
)
from dicomnet.scu import release
from dicomnet.server import VERIFICATION_ONLY, AcceptedConnection, AcceptingServer
from dicomnet.sopclasses import STORAGE_COMMITMENT_PUSH

PROGRAM = "stgcmtscu"
ALL_COMMITTED_EXIT, SOME_FAILED_EXIT, NO_RESULT_EXIT = 0, 1, 2
POLL_INTERVAL = 0.1  # seconds between checks that a report can still come

log = logging.getLogger("samples.stgcmtscu")
Status = DicomCommandStatusType


class NoResult(Exception):
    """The commitment request was refused or its result cannot arrive."""


@dataclass(frozen=True)
class Report:
    """A commitment result and the connection it arrived on."""

    result: CommitmentResult
    receiver: DicomNet


class ReportInbox:
    """The transactions awaiting a result, and the results that came for them.

    Filled on the loop thread (the N-EVENT-REPORT callbacks), read by the main thread.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._expected: set[str] = set()
        self._reports: dict[str, Report] = {}

    def expect(self, transaction_uid: str) -> None:
        with self._changed:
            self._expected.add(transaction_uid)

    def deliver(self, report: Report) -> bool:
        """Keep ``report``; False when its transaction is not awaited (or answered)."""
        transaction_uid = report.result.transaction_uid
        with self._changed:
            if transaction_uid not in self._expected:
                return False
            self._expected.discard(transaction_uid)
            self._reports[transaction_uid] = report
            self._changed.notify_all()
        return True

    def wait(self, transaction_uid: str, timeout: float, hopeless: Callable[[], bool]) -> Report:
        """The report for ``transaction_uid``; raises NoResult after ``timeout`` seconds
        or as soon as ``hopeless()`` says no connection can bring it any more."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while transaction_uid not in self._reports:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NoResult(
                        f"no N-EVENT-REPORT for transaction {transaction_uid} within {timeout:g} s"
                    )
                if hopeless():
                    raise NoResult("the association ended before the N-EVENT-REPORT came")
                self._changed.wait(min(remaining, POLL_INTERVAL))
            return self._reports.pop(transaction_uid)


class ReportReceiver(DicomNet):
    """Takes Storage Commitment N-EVENT-REPORTs: hands each result to the inbox and
    answers it (J.3.3.1.3). Concrete classes set ``inbox``."""

    inbox: ReportInbox

    def OnReceiveNReportRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        dicom_event: int,
        data_set: Dataset | None,
    ) -> None:
        status, comment = self._take_report(affected_class, dicom_event, data_set)
        if comment:
            log.warning("answering N-EVENT-REPORT %d with 0x%04X: %s", message_id, status, comment)
        extra = {"ErrorComment": comment} if comment else {}
        self.SendNReportResponse(
            presentation_id,
            message_id,
            affected_class,
            instance,
            status,
            dicom_event,
            None,
            **extra,
        )

    def _take_report(
        self, sop_class: str, event_type: int, data_set: Dataset | None
    ) -> tuple[int, str]:
        """(status, error comment) of the response."""
        try:
            result = check_commitment_report(sop_class, event_type, data_set)
        except CommitmentRefused as refusal:
            return refusal.status, str(refusal)
        if not self.inbox.deliver(Report(result, self)):
            return Status.InvalidArgumentValue, f"unknown Transaction UID {result.transaction_uid}"
        return Status.Success, ""


class CommitmentRequestor(ReportReceiver):
    """The association that sends the N-ACTION (and may get the report)."""

    def __init__(self, inbox: ReportInbox, timeouts: Timeouts) -> None:
        super().__init__(None, timeouts=timeouts)
        self.inbox = inbox


class ReportChild(AcceptedConnection, ReportReceiver):
    """One association from the SCP."""

    def __init__(self, listener: ReportListener) -> None:
        super().__init__(listener)
        self.inbox = listener.inbox


class ReportListener(AcceptingServer):
    """Listens for the SCP's association bringing the report on ``--port``."""

    connection_type = ReportChild

    def __init__(self, args: argparse.Namespace, inbox: ReportInbox) -> None:
        super().__init__(
            args.aet,
            {**VERIFICATION_ONLY, STORAGE_COMMITMENT_PUSH: COMMITMENT_TRANSFER_SYNTAXES},
            # The SCP is the requestor there and proposes its SCP role (J.3.3.1.3).
            requestor_scp_role={STORAGE_COMMITMENT_PUSH},
            **server_settings(args),
        )
        self.inbox = inbox


def references_of(arguments: Sequence[str]) -> list[SopReference]:
    """The SOP class and instance of every DICOM file named (or under a directory named),
    each instance once."""
    headers = part10_files(arguments)
    return list(dict.fromkeys(SopReference(h.sop_class_uid, h.sop_instance_uid) for h in headers))


def ask_commitment(
    args: argparse.Namespace,
    net: DicomNet,
    transaction_uid: str,
    references: Sequence[SopReference],
) -> None:
    """Associate and send the N-ACTION; raises NoResult unless the SCP took it."""
    request = commitment_association(args.aet, args.aec, args.pdu, as_scp=False)
    presentation_id = associate_for(
        net, args, request, STORAGE_COMMITMENT_PUSH, "Storage Commitment Push Model"
    )
    response = request_commitment(net, presentation_id, transaction_uid, references)
    if response.category is not StatusCategory.SUCCESS:
        detail = f": {response.error_comment}" if response.error_comment else ""
        raise NoResult(
            f"N-ACTION refused with status 0x{response.status:04X} ({response.description}){detail}"
        )
    print(
        f"{PROGRAM}: storage commitment of {len(references)} instance(s) requested from "
        f"{args.aec}@{args.peer}:{args.port}, transaction {transaction_uid}",
        flush=True,
    )


def print_result(report: Report, net: DicomNet, references: Sequence[SopReference]) -> int:
    """Print what was committed and what was not; the exit status."""
    result = report.result
    where = "the requesting association" if report.receiver is net else "a new association"
    failures = {failure.reference: failure.describe() for failure in result.failed}
    committed = set(result.committed) - set(failures)
    for stranger in sorted({*result.committed, *failures} - set(references), key=str):
        log.warning("the report names %s, which was not in the request", stranger)
    for reference in references:
        if reference in committed:
            print(f"{PROGRAM}: committed {reference.sop_instance}")
        else:
            reason = failures.get(reference, "not in the report")
            print(f"{PROGRAM}: failed {reference.sop_instance}: {reason}")
    done = sum(1 for reference in references if reference in committed)
    print(
        f"{PROGRAM}: {done} of {len(references)} instance(s) committed "
        f"(event type {result.event_type}, reported on {where})",
        flush=True,
    )
    return ALL_COMMITTED_EXIT if done == len(references) else SOME_FAILED_EXIT


def run(args: argparse.Namespace, net: DicomNet, inbox: ReportInbox, listening: bool) -> int:
    references = references_of(args.files)
    if not references:
        raise NoResult("no DICOM Part-10 files to ask commitment for")
    transaction_uid = generate_uid()
    inbox.expect(transaction_uid)
    ask_commitment(args, net, transaction_uid, references)
    if args.release_early:
        release(net)
    report = inbox.wait(
        transaction_uid, args.timeout, lambda: not listening and not net.IsAssociated()
    )
    if net.IsAssociated():
        release(net)
    if report.receiver is not net:  # let the SCP release its association first
        with contextlib.suppress(DicomException):
            report.receiver.wait_closed(args.timeout)
    return print_result(report, net, references)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser, scu=True)
    parser.set_defaults(aet="STGCMTSCU")
    parser.add_argument(
        "-b",
        "--port",
        dest="listen_port",
        type=int,
        help="also listen on this port for the report on a new association",
    )
    parser.add_argument(
        "--release-early",
        action="store_true",
        help="release after the N-ACTION response; the report comes on --port",
    )
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    parser.add_argument("files", nargs="+", metavar="FILE_OR_DIR")
    args = parser.parse_args(argv)
    if args.release_early and args.listen_port is None:
        parser.error("--release-early needs --port for the report")
    setup_logging(args)

    inbox = ReportInbox()
    DicomNet.Startup()
    listener = ReportListener(args, inbox) if args.listen_port is not None else None
    net = CommitmentRequestor(inbox, timeouts_from(args))
    try:
        if listener is not None:
            listener.Listen("", args.listen_port, 8)
        return run(args, net, inbox, listening=listener is not None)
    except (DicomException, NoResult, NotAccepted) as exc:
        fail(PROGRAM, str(exc))
        return NO_RESULT_EXIT
    finally:
        net.Close()
        if listener is not None:
            listener.Dispose()
        DicomNet.Shutdown()


if __name__ == "__main__":
    sys.exit(main())
