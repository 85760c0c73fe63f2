#!/usr/bin/env python3
"""Storage SCP: receives C-STORE (PS3.4 annex B) on PORT and keeps each instance as a
Part-10 file in the output directory (options as DCMTK's storescp).

Every storage SOP class is accepted, uncompressed data in Explicit VR LE (preferred),
Implicit VR LE, Explicit VR BE or Deflated, any other proposed transfer syntax as it
comes, so compressed data is stored untouched. Received data is never parsed: the
library spools it to a complete Part-10 file in a spool folder inside the output
directory, and storing it is one atomic ``os.replace`` to ``<abbreviation>.<UID>``.
A failure answers 0xA700 (out of resources) or 0xC000 (cannot understand) and leaves
no file behind.

It is also the SCP of the Storage Commitment Push Model (PS3.4 annex J). An N-ACTION
Request Storage Commitment is answered at once; a worker thread then checks each
referenced instance against the files held in the output directory (indexed at start-up
and as instances arrive: the file must exist with the referenced SOP class) and sends
the result as N-EVENT-REPORT, on the requesting association while it lasts, else on a
new association to the requestor's address from ``--commit-peer``, proposing the SCP
role by role selection (J.3.3).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from common import (
    add_common_options,
    add_server_options,
    fail,
    parse_ae_address,
    serve,
    server_settings,
    setup_logging,
)
from pydicom import Dataset

from dicomnet import (
    CANNOT_UNDERSTAND,
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomException,
    DicomNet,
    negotiated_roles,
    read_part10_header,
)
from dicomnet.commitment import (
    CLASS_INSTANCE_CONFLICT,
    COMMITMENT_TRANSFER_SYNTAXES,
    NO_SUCH_OBJECT_INSTANCE,
    CommitmentRefused,
    CommitmentResult,
    Failure,
    SopReference,
    check_commitment_request,
    commitment_association,
    send_commitment_report,
)
from dicomnet.scu import open_association, release
from dicomnet.server import STORAGE_AND_VERIFICATION, AcceptedConnection, AcceptingServer
from dicomnet.sopclasses import STORAGE_COMMITMENT_PUSH, STORAGE_SOP_CLASSES
from dicomnet.storage import keep_received_file

log = logging.getLogger("samples.storescp")

SPOOL_FOLDER = ".storescp-incoming"  # inside the output directory: same file system
Status = DicomCommandStatusType


class InstanceIndex:
    """SOP Instance UID -> (SOP class, file) of the instances in the output directory.

    Filled on the loop thread as instances are stored, read by commitment workers: hence
    the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, Path]] = {}

    def add(self, sop_class: str, sop_instance: str, path: Path) -> None:
        with self._lock:
            self._held[sop_instance] = (sop_class, path)

    def scan(self, directory: Path) -> int:
        """Index the Part-10 files directly in ``directory`` (meta headers only); other
        files are ignored. Returns how many were indexed."""
        count = 0
        for path in directory.iterdir():
            if not path.is_file():
                continue
            try:
                header = read_part10_header(path)
            except (DicomException, OSError):
                continue
            self.add(header.sop_class_uid, header.sop_instance_uid, path)
            count += 1
        return count

    def failure_reason(self, reference: SopReference) -> int | None:
        """Why ``reference`` cannot be committed (a J.3.3.1.1 Failure Reason), or None
        when its file is here with the referenced SOP class."""
        with self._lock:
            held = self._held.get(reference.sop_instance)
        if held is None or not held[1].is_file():
            return NO_SUCH_OBJECT_INSTANCE
        if held[0] != reference.sop_class:
            return CLASS_INSTANCE_CONFLICT
        return None

    def check(self, transaction_uid: str, references: Sequence[SopReference]) -> CommitmentResult:
        committed, failed = [], []
        for reference in references:
            reason = self.failure_reason(reference)
            if reason is None:
                committed.append(reference)
            else:
                failed.append(Failure(reference, reason))
        return CommitmentResult(transaction_uid, tuple(committed), tuple(failed))


class ReportNotDelivered(Exception):
    """The commitment result could not be reported to the requestor."""


class StoreChild(AcceptedConnection):
    """One association: stores every received instance, answers with its status."""

    listener: StoreServer

    def __init__(self, listener: StoreServer) -> None:
        super().__init__(listener)
        self.parse_received_data = False  # bounded memory: the data set stays on disk

    def OnReceiveCStoreRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        move_message_id: int,
        data_set: Dataset | None,
    ) -> None:
        status, comment = self._store(affected_class, instance)
        extra = {"ErrorComment": comment} if comment else {}
        self.SendCStoreResponse(
            presentation_id, message_id, affected_class, instance, status, **extra
        )

    def OnReceiveNActionRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        action: int,
        data_set: Dataset | None,
    ) -> None:
        """Answer at once (J.3.2.1.3); the commitment itself is checked off the loop."""
        try:
            transaction_uid, references = check_commitment_request(
                affected_class, instance, action, data_set
            )
        except CommitmentRefused as refusal:
            log.warning("refusing N-ACTION %d: %s", message_id, refusal)
            self.SendNActionResponse(
                presentation_id,
                message_id,
                affected_class,
                instance,
                refusal.status,
                action,
                None,
                ErrorComment=str(refusal),
            )
            return
        self.SendNActionResponse(
            presentation_id, message_id, affected_class, instance, Status.Success, action, None
        )
        requestor = self.Association.Calling.strip() if self.Association else ""
        log.info(
            "storage commitment %s from %s: %d instance(s)",
            transaction_uid,
            requestor,
            len(references),
        )
        DicomNet.run_in_background(
            self.listener.commit,
            self,
            presentation_id,
            requestor,
            transaction_uid,
            references,
        )

    def _store(self, sop_class: str, sop_instance: str) -> tuple[int, str]:
        """Keep the received file; (status, error comment). A file not kept is deleted
        by the library after this callback."""
        received = self.received_file
        if received is None or not sop_class or not sop_instance:
            log.warning("C-STORE without data set or SOP class/instance UID: refused")
            return CANNOT_UNDERSTAND, "no data set, or no Affected SOP Class/Instance UID"
        server = self.listener
        try:
            target = keep_received_file(received, server.output_dir, sop_class, sop_instance)
        except OSError as exc:
            log.error("cannot store %s: %s", sop_instance, exc)
            return DicomCommandStatusType.RefusedOutOfResources, f"cannot store: {exc.strerror}"
        server.index.add(sop_class, sop_instance, target)
        if server.report_each:
            calling = self.Association.Calling.strip() if self.Association else "?"
            print(f"storescp: stored {target.name} from {calling}", flush=True)
        return DicomCommandStatusType.Success, ""


class StoreServer(AcceptingServer):
    """The listener: knows where instances go and whether to report each one."""

    connection_type = StoreChild

    def __init__(self, args: argparse.Namespace, output_dir: Path) -> None:
        spool_dir = output_dir / SPOOL_FOLDER
        spool_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            args.aet,
            {**STORAGE_AND_VERIFICATION, STORAGE_COMMITMENT_PUSH: COMMITMENT_TRANSFER_SYNTAXES},
            temp_path=str(spool_dir),
            accept_any_transfer_syntax_for=STORAGE_SOP_CLASSES,
            **server_settings(args),
        )
        self.output_dir = output_dir
        self.spool_dir = spool_dir
        self.report_each = args.verbose or args.debug
        self.commit_peers: dict[str, tuple[str, int]] = dict(args.commit_peers)
        self.commit_delay: float = args.commit_delay
        self.index = InstanceIndex()
        log.info("%d instance(s) already in %s", self.index.scan(output_dir), output_dir)

    def commit(
        self,
        child: StoreChild,
        presentation_id: int,
        requestor: str,
        transaction_uid: str,
        references: Sequence[SopReference],
    ) -> None:
        """Worker thread: check the references, then report the result (J.3.3.1.2)."""
        time.sleep(self.commit_delay)
        result = self.index.check(transaction_uid, references)
        try:
            where, status = self._report(child, presentation_id, requestor, result)
        except (DicomException, ReportNotDelivered) as exc:
            log.error(
                "storage commitment %s not reported to %r: %s", transaction_uid, requestor, exc
            )
            return
        print(
            f"storescp: storage commitment {transaction_uid} reported {where}: "
            f"{len(result.committed)} committed, {len(result.failed)} failed, "
            f"N-EVENT-REPORT-RSP status 0x{status:04X}",
            flush=True,
        )

    def _report(
        self, child: StoreChild, presentation_id: int, requestor: str, result: CommitmentResult
    ) -> tuple[str, int]:
        """(where it went, response status): on the requesting association while it is
        open, else on a new one."""
        if child.IsAssociated():
            try:
                status = send_commitment_report(child, presentation_id, result).status
                return "on the requesting association", status
            except DicomException as exc:
                if child.IsAssociated():  # no answer in time: the peer is there but mute
                    raise
                log.warning("cannot report on the requesting association: %s", exc)
        address = self.commit_peers.get(requestor)
        if address is None:
            raise ReportNotDelivered(
                "the association is gone and no --commit-peer gives its address"
            )
        status = self._report_on_new_association(requestor, address, result)
        return f"on a new association to {requestor}@{address[0]}:{address[1]}", status

    def _report_on_new_association(
        self, requestor: str, address: tuple[str, int], result: CommitmentResult
    ) -> int:
        net = DicomNet(None, timeouts=self.timeouts)
        try:
            request = commitment_association(
                self.ae_title, requestor, self.policy.max_length, as_scp=True
            )
            accepted = open_association(net, address[0], address[1], request)
            if accepted.accepted_transfer_syntax(1) is None:
                net.SendAbort()
                raise ReportNotDelivered("the requestor did not accept Storage Commitment")
            if not negotiated_roles(request, accepted, 1)[1]:
                net.SendAbort()
                raise ReportNotDelivered("the requestor did not accept our SCP role")
            status = send_commitment_report(net, 1, result).status
            release(net)
            return status
        finally:
            net.Close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storescp", description=__doc__)
    add_common_options(parser, scu=False)
    parser.add_argument(
        "-od",
        "--output-directory",
        dest="output_dir",
        type=Path,
        default=Path.cwd(),
        help="where received files go (default: .)",
    )
    add_server_options(parser)
    parser.add_argument(
        "--commit-peer",
        dest="commit_peers",
        action="append",
        type=parse_ae_address,
        default=[],
        metavar="AE=HOST:PORT",
        help="where a storage commitment requestor takes reports on a new association "
        "(repeat for more)",
    )
    parser.add_argument(
        "--commit-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before reporting a storage commitment result (default: 0)",
    )
    args = parser.parse_args(argv)
    setup_logging(args)

    if not args.output_dir.is_dir():
        return fail("storescp", f"output directory {args.output_dir} does not exist")
    DicomNet.Startup()
    try:
        server = StoreServer(args, args.output_dir.resolve())
    except OSError as exc:  # the spool folder cannot be made
        DicomNet.Shutdown()
        return fail("storescp", str(exc))
    status = serve("storescp", server, args)
    with contextlib.suppress(OSError):  # left in place while it holds a transfer's file
        server.spool_dir.rmdir()
    return status


if __name__ == "__main__":
    sys.exit(main())
