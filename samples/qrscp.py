#!/usr/bin/env python3
"""Query/Retrieve SCP: a small archive answering C-FIND, C-GET and C-MOVE on PORT
(PS3.4 annex C, Patient Root and Study Root information models), plus C-ECHO and C-STORE
so that a storescu can fill it.

At start it indexes the Part-10 files under --storage-dir (headers only); received
instances are written there as ``<modality>.<SOP instance UID>`` and indexed at once. C-MOVE
destinations are known by AE title from ``--move-destination AE=HOST:PORT``.

Callbacks run on the network loop thread and must not block, so each C-FIND, C-GET and
C-MOVE runs on a worker thread of its own, which sends the responses and the C-STORE
sub-operations and waits for their responses; C-CANCEL stops it between two of them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    STORAGE_AND_VERIFICATION,
    AcceptingChild,
    SampleServer,
    add_common_options,
    add_server_options,
    keep_received_file,
    parse_ae_address,
    serve,
    setup_logging,
    timeouts_from,
)
from pydicom import Dataset  # noqa: E402
from qrcommon import (  # noqa: E402
    LEVELS_OF_MODEL,
    MemoryIndex,
    QueryIndex,
    build_request,
    open_association,
    pick_context,
    query_level,
    release,
    storage_contexts_for,
)

from dicomnet import (  # noqa: E402
    DicomAssociate,
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
)
from dicomnet.associate import NegotiatedContext, negotiated_contexts  # noqa: E402
from dicomnet.dimse.part10 import Part10File, read_part10_header  # noqa: E402
from dicomnet.dimse.status import StatusCategory, status_category  # noqa: E402
from dicomnet.sopclasses import STORAGE_SOP_CLASSES  # noqa: E402
from dicomnet.uids import UNCOMPRESSED_TRANSFER_SYNTAXES  # noqa: E402

log = logging.getLogger("samples.qrscp")

SUPPORTED = {
    **STORAGE_AND_VERIFICATION,
    **{model: list(UNCOMPRESSED_TRANSFER_SYNTAXES) for model in LEVELS_OF_MODEL},
}
IDENTIFIER_DOES_NOT_MATCH = 0xA900  # PS3.4 C.4.1.1.4: identifier does not match SOP class
# Cxxx: "cannot understand" for C-STORE, "unable to process" for C-FIND/GET/MOVE.
UNABLE_TO_PROCESS = 0xC000
MAX_COMMENT = 64  # Error Comment is an LO

# SendCGetResponse / SendCMoveResponse bound to one request: (status, remaining,
# completed, failed, warning, data_set, **optional status elements).
Responder = Callable[..., None]
Store = Callable[[Part10File], int | None]


def _comment(error: Exception) -> str:
    return str(error)[:MAX_COMMENT]


def _failed_identifier(instance_uids: list[str]) -> Dataset | None:
    """The final response's identifier: Failed SOP Instance UID List (0008,0058)."""
    if not instance_uids:
        return None
    identifier = Dataset()
    identifier.FailedSOPInstanceUIDList = instance_uids
    return identifier


@dataclass
class SubOperations:
    """The counts a C-GET/C-MOVE reports (PS3.4 C.4.2.3.1, C.4.3.3.1)."""

    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)

    def record(self, instance_uid: str, status: int | None) -> None:
        """One sub-operation's C-STORE status (None: it could not be sent)."""
        self.remaining -= 1
        category = StatusCategory.FAILURE if status is None else status_category(status)
        if category is StatusCategory.SUCCESS:
            self.completed += 1
        elif category is StatusCategory.WARNING:
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(instance_uid)

    def counts(self, with_remaining: bool) -> tuple[int, int, int, int]:
        remaining = self.remaining if with_remaining else -1
        return remaining, self.completed, self.failed, self.warning

    @property
    def final_status(self) -> int:
        if self.failed or self.warning:
            return DicomCommandStatusType.Warning  # B000: complete, some failed or warned
        return DicomCommandStatusType.Success


def send_instance(
    net: DicomNet,
    contexts: list[NegotiatedContext],
    part10: Part10File,
    move_originator: str = "",
    move_message_id: int = 0,
) -> int | None:
    """C-STORE one file on ``net`` from a worker thread; its response status."""
    context = pick_context(contexts, part10.sop_class_uid, part10.transfer_syntax)
    if context is None:
        raise DicomException(
            DicomExceptionCode.Parameter,
            f"no presentation context for {part10.sop_class_uid} in {part10.transfer_syntax} "
            "(with the needed role) was accepted",
        )
    message_id = net.next_message_id()
    net.SendCStoreRequest(
        context.context_id,
        message_id,
        "",
        "",
        DicomCommandPriorityType.Medium,
        move_originator,
        move_message_id,
        part10,
    )
    return net.wait_response(message_id).status


def read_headers(paths: list[str]) -> tuple[list[Part10File], int]:
    """The files' Part-10 headers, and how many could not be read (gone, corrupt)."""
    headers: list[Part10File] = []
    for path in paths:
        try:
            headers.append(read_part10_header(path))
        except (DicomException, OSError) as exc:
            log.warning("cannot send %s: %s", path, exc)
    return headers, len(paths) - len(headers)


class QRChild(AcceptingChild):
    """One association with a Q/R SCU: stores, queries and retrieves."""

    def __init__(self, temp_path: str | None, server: QRServer) -> None:
        super().__init__(temp_path, server)
        self.archive = server
        self.parse_received_data = False
        self.association_request: DicomAssociate | None = None
        self._cancel_events: dict[int, threading.Event] = {}

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.association_request = association  # its roles decide where C-GET may store
        super().OnReceiveAssociateRequest(association)

    # -- C-STORE into the archive --------------------------------------------------

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
        status = self._archive(affected_class, instance)
        self.SendCStoreResponse(presentation_id, message_id, affected_class, instance, status)

    def _archive(self, sop_class: str, instance: str) -> int:
        received = self.received_file
        if received is None:
            return DicomCommandStatusType.ProcessingFailure
        try:
            path = keep_received_file(received, self.archive.storage_dir, sop_class, instance)
        except OSError as exc:
            log.error("cannot store %s: %s", instance, exc)
            return DicomCommandStatusType.RefusedOutOfResources
        try:
            self.archive.index.add(path)
        except Exception as exc:  # pydicom raises many types for data it cannot read
            log.error("stored %s but cannot index it: %s", path, exc)
            return UNABLE_TO_PROCESS
        log.info("stored %s", path)
        return DicomCommandStatusType.Success

    # -- requests handed to worker threads -----------------------------------------

    def OnReceiveCFindRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        self._in_background(
            message_id,
            partial(self._find, presentation_id, message_id, affected_class, data_set or Dataset()),
            partial(
                self.SendCFindResponse,
                presentation_id,
                message_id,
                affected_class,
                UNABLE_TO_PROCESS,
                None,
            ),
        )

    def OnReceiveCGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        self._in_background(
            message_id,
            partial(self._get, presentation_id, message_id, affected_class, data_set or Dataset()),
            partial(
                self.SendCGetResponse,
                presentation_id,
                message_id,
                affected_class,
                UNABLE_TO_PROCESS,
                -1,
                0,
                0,
                0,
                None,
            ),
        )

    def OnReceiveCMoveRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        data_set: Dataset | None,
    ) -> None:
        self._in_background(
            message_id,
            partial(
                self._move,
                presentation_id,
                message_id,
                affected_class,
                move_ae,
                data_set or Dataset(),
            ),
            partial(
                self.SendCMoveResponse,
                presentation_id,
                message_id,
                affected_class,
                UNABLE_TO_PROCESS,
                -1,
                0,
                0,
                0,
                None,
            ),
        )

    def OnReceiveCCancelRequest(self, presentation_id: int, message_id: int) -> None:
        cancel = self._cancel_events.get(message_id)
        if cancel is not None:
            log.info("C-CANCEL for message %d", message_id)
            cancel.set()

    def _in_background(
        self,
        message_id: int,
        work: Callable[[threading.Event], None],
        respond_failure: Callable[..., None],
    ) -> None:
        """Run ``work(cancel)`` on a worker thread; C-CANCEL of the request sets ``cancel``.
        If the work fails, ``respond_failure(ErrorComment=...)`` sends the final response,
        so the requestor is not left waiting."""
        cancel = threading.Event()
        self._cancel_events[message_id] = cancel

        def run() -> None:
            try:
                work(cancel)
            except Exception as exc:  # whatever broke, the request needs its final response
                log.warning("message %d failed: %s", message_id, exc)
                with contextlib.suppress(DicomException):  # unless the association is gone
                    respond_failure(ErrorComment=_comment(exc))
            finally:
                self._cancel_events.pop(message_id, None)

        threading.Thread(target=run, name=f"qrscp-message-{message_id}", daemon=True).start()

    # -- C-FIND ----------------------------------------------------------------------

    def _find(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        identifier: Dataset,
        cancel: threading.Event,
    ) -> None:
        respond = partial(self.SendCFindResponse, presentation_id, message_id, affected_class)
        try:
            level = query_level(affected_class, identifier)
        except ValueError as exc:
            respond(IDENTIFIER_DOES_NOT_MATCH, None, ErrorComment=_comment(exc))
            return
        matches = 0
        for match in self.archive.index.find(level, identifier):
            if cancel.is_set():
                break
            match.RetrieveAETitle = self.archive.ae_title
            respond(DicomCommandStatusType.Pending, match)
            matches += 1
        cancelled = cancel.is_set()
        log.info(
            "C-FIND %d: %d match(es)%s", message_id, matches, ", cancelled" if cancelled else ""
        )
        respond(
            DicomCommandStatusType.Cancel if cancelled else DicomCommandStatusType.Success, None
        )

    # -- C-GET and C-MOVE ------------------------------------------------------------

    def _get(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        identifier: Dataset,
        cancel: threading.Event,
    ) -> None:
        respond = partial(self.SendCGetResponse, presentation_id, message_id, affected_class)
        files = self._retrieve_files(affected_class, identifier, respond)
        if files is None:
            return
        headers, unreadable = read_headers(files)
        assert self.association_request is not None and self.Association is not None
        # The sub-operations may use only contexts where the requestor took the SCP role.
        contexts = [
            context
            for context in negotiated_contexts(self.association_request, self.Association).values()
            if context.requestor_is_scp
        ]
        store = partial(send_instance, self, contexts)
        self._run_suboperations(headers, unreadable, store, respond, cancel)

    def _move(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        destination: str,
        identifier: Dataset,
        cancel: threading.Event,
    ) -> None:
        respond = partial(self.SendCMoveResponse, presentation_id, message_id, affected_class)
        address = self.archive.destinations.get(destination.strip())
        if address is None:
            respond(
                DicomCommandStatusType.RefusedMoveDestinationUnknown,
                -1,
                0,
                0,
                0,
                None,
                ErrorComment=f"unknown move destination {destination.strip()}"[:MAX_COMMENT],
            )
            return
        files = self._retrieve_files(affected_class, identifier, respond)
        if files is None:
            return
        headers, unreadable = read_headers(files)
        if not headers:
            self._run_suboperations(headers, unreadable, lambda _: None, respond, cancel)
            return
        sub = DicomNet(None, timeouts=self.timeouts)
        try:
            contexts = self._open_sub_association(sub, destination.strip(), address, headers)
        except DicomException as exc:
            log.warning("C-MOVE %d: cannot associate with %s: %s", message_id, destination, exc)
            respond(
                DicomCommandStatusType.RefusedUnableToPerformSuboperations,
                -1,
                0,
                len(files),
                0,
                _failed_identifier([h.sop_instance_uid for h in headers]),
                ErrorComment=_comment(exc),
            )
            sub.Close()
            return
        assert self.association_request is not None
        originator = self.association_request.Calling.strip()
        store = partial(
            send_instance, sub, contexts, move_originator=originator, move_message_id=message_id
        )
        try:
            self._run_suboperations(headers, unreadable, store, respond, cancel)
        finally:
            _end_sub_association(sub)

    def _open_sub_association(
        self,
        sub: DicomNet,
        destination: str,
        address: tuple[str, int],
        headers: list[Part10File],
    ) -> list[NegotiatedContext]:
        request = build_request(
            self.archive.ae_title,
            destination,
            self.archive.policy.max_length,
            storage_contexts_for(headers),
        )
        accepted = open_association(sub, address[0], address[1], request)
        return [c for c in negotiated_contexts(request, accepted).values() if c.requestor_is_scu]

    def _retrieve_files(
        self, affected_class: str, identifier: Dataset, respond: Responder
    ) -> list[str] | None:
        """The files to retrieve, or None after answering an invalid identifier."""
        try:
            level = query_level(affected_class, identifier)
        except ValueError as exc:
            respond(IDENTIFIER_DOES_NOT_MATCH, -1, 0, 0, 0, None, ErrorComment=_comment(exc))
            return None
        return self.archive.index.files(level, identifier)

    def _run_suboperations(
        self,
        headers: list[Part10File],
        unreadable: int,
        store: Store,
        respond: Responder,
        cancel: threading.Event,
    ) -> None:
        """C-STORE each file with ``store``, a pending response after each, then the final
        response; stop with Cancel (FE00) when the request is cancelled."""
        progress = SubOperations(remaining=len(headers), failed=unreadable)
        for part10 in headers:
            if cancel.is_set():
                respond(
                    DicomCommandStatusType.Cancel,
                    *progress.counts(True),
                    _failed_identifier(progress.failed_uids),
                )
                return
            try:
                status = store(part10)
            except DicomException as exc:
                log.warning("sub-operation for %s failed: %s", part10.path, exc)
                status = None
            progress.record(part10.sop_instance_uid, status)
            if progress.remaining:
                respond(DicomCommandStatusType.Pending, *progress.counts(True), None)
        respond(
            progress.final_status, *progress.counts(False), _failed_identifier(progress.failed_uids)
        )


def _end_sub_association(sub: DicomNet) -> None:
    try:
        if sub.IsAssociated():
            release(sub)
    except DicomException as exc:
        log.warning("releasing the C-MOVE sub-association: %s", exc)
    finally:
        sub.Close()


class QRServer(SampleServer):
    """The listener: the archive's index, storage directory and move destinations."""

    child_type = QRChild

    def __init__(self, args: argparse.Namespace, index: QueryIndex) -> None:
        super().__init__(
            args.aet,
            SUPPORTED,
            max_pdu=args.pdu,
            timeouts=timeouts_from(args),
            check_called_aet=args.check_called_aet,
            temp_path=str(args.storage_dir),
            accept_any_transfer_syntax_for=STORAGE_SOP_CLASSES,  # archived as it comes
        )
        # For C-GET the requestor takes the SCP role of the storage classes.
        self.policy = replace(self.policy, requestor_scp_role=STORAGE_SOP_CLASSES)
        self.storage_dir: Path = args.storage_dir
        self.index = index
        self.destinations: dict[str, tuple[str, int]] = dict(args.move_destinations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qrscp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser, scu=False)
    parser.set_defaults(aet="QRSCP")
    parser.add_argument(
        "--storage-dir",
        type=Path,
        default=Path("."),
        help="where the archive's files are (default: .)",
    )
    parser.add_argument(
        "--move-destination",
        dest="move_destinations",
        action="append",
        type=parse_ae_address,
        default=[],
        metavar="AE=HOST:PORT",
        help="a C-MOVE destination (repeat for more)",
    )
    add_server_options(parser)
    args = parser.parse_args(argv)
    setup_logging(args)
    args.storage_dir.mkdir(parents=True, exist_ok=True)
    index = MemoryIndex.scan(
        args.storage_dir, lambda path, exc: log.warning("not indexed: %s: %s", path, exc)
    )

    DicomNet.Startup()
    server = QRServer(args, index)
    note = f" with {len(index)} instance(s) from {args.storage_dir}"
    return serve("qrscp", server, args, note)


if __name__ == "__main__":
    sys.exit(main())
