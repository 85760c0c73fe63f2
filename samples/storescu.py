#!/usr/bin/env python3
"""Storage SCU: sends Part-10 files to PEER PORT with C-STORE (PS3.4 annex B), options
as DCMTK's storescu.

Directories are scanned recursively; only each file's meta header is read, and files
that are not DICOM Part-10 are skipped with a warning. One presentation context is
proposed per (SOP class, transfer syntax) of the files, in the file's transfer syntax
plus Explicit and Implicit VR LE when it is uncompressed (so the library can convert);
more than 128 such pairs take several associations, one after the other. Each file's
data set is sent from disk as it is when its transfer syntax was accepted.

Where the peer accepts an asynchronous operations window (``--window``), that many
C-STOREs are outstanding at once, so the peer stores one while the next arrives; a peer
that accepts none (DCMTK's storescp, for one) gets them one at a time.

A file that breaks while it is being sent (deleted, truncated, unreadable) is reported
failed; the association is aborted then, as nothing may follow half a message, and the
files not stored (sent without an answer, or not sent) go on a new association.

Prints a summary; exit status 0 when every file was stored (warnings count as stored,
as with DCMTK), 1 otherwise, listing each failed file with its status or reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from common import (
    add_common_options,
    fail,
    operations_window,
    propose_identity,
    setup_logging,
    timeouts_from,
)
from tls_options import apply_tls
from tqdm import tqdm

from dicomnet import (
    MAX_PRESENTATION_CONTEXTS,
    DicomCommandType,
    DicomException,
    DicomNet,
    DIMSEError,
    NegotiatedContext,
    Part10File,
    StatusCategory,
    negotiated_contexts,
    status_category,
    status_description,
)
from dicomnet.scu import (
    ContextSpec,
    build_request,
    open_association,
    outstanding_limit,
    release,
)
from dicomnet.storage import (
    SendBroken,
    iter_files,
    pick_context,
    read_headers,
    send_store_request,
    storage_contexts_for,
    store_response,
)

log = logging.getLogger("samples.storescu")

# wait_response counts from the request being queued, so the wait for a response must
# also cover sending the data set; allow for a link as slow as this (bytes per second).
SLOWEST_LINK = 1 << 20
# C-STOREs outstanding at once when the peer accepts an asynchronous operations window
DEFAULT_WINDOW = 16


@dataclass
class Tally:
    """What happened to each file, for the summary and the exit status."""

    succeeded: int = 0
    warnings: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    def record_status(self, path: str, status: int, comment: str) -> None:
        category = status_category(status)
        if category is StatusCategory.SUCCESS:
            self.succeeded += 1
            return
        meaning = status_description(status, DicomCommandType.CStore)
        if category is StatusCategory.WARNING:
            self.warnings += 1
            log.warning("%s stored with warning 0x%04X (%s)", path, status, meaning)
            return
        detail = f": {comment}" if comment else ""
        self.failed.append((path, f"status 0x{status:04X} ({meaning}){detail}"))

    def record_failure(self, path: str, reason: str) -> None:
        self.failed.append((path, reason))


def _skipping(path: str, error: DicomException | OSError) -> None:
    if isinstance(error, DicomException):
        log.warning("skipping %s", error.message)
    else:
        log.warning("skipping %s: %s", path, error.strerror)


def part10_files(arguments: Iterable[str]) -> list[Part10File]:
    """The meta headers of the DICOM files named or under the directories named; the
    other files are skipped with a warning."""
    return read_headers(iter_files(arguments), _skipping)


def plan_associations(
    files: Sequence[Part10File],
) -> list[tuple[list[ContextSpec], list[Part10File]]]:
    """Split the files into associations of at most 128 presentation contexts."""
    contexts = storage_contexts_for(files)
    plan = []
    for start in range(0, len(contexts), MAX_PRESENTATION_CONTEXTS):
        chunk = contexts[start : start + MAX_PRESENTATION_CONTEXTS]
        wanted = {(sop_class, syntaxes[0]) for sop_class, syntaxes in chunk}
        plan.append((chunk, [f for f in files if (f.sop_class_uid, f.transfer_syntax) in wanted]))
    return plan


def store_batch(
    args: argparse.Namespace,
    contexts: Sequence[ContextSpec],
    files: Sequence[Part10File],
    tally: Tally,
    progress: tqdm,
) -> None:
    """Send ``files``, on as many associations as files that break while being sent
    take (each aborts its association)."""
    pending = list(files)
    while pending:
        pending = store_on_one_association(args, contexts, pending, tally, progress)


@dataclass
class Outstanding:
    """A C-STORE sent and not answered yet."""

    file: Part10File
    message_id: int


def store_on_one_association(
    args: argparse.Namespace,
    contexts: Sequence[ContextSpec],
    files: Sequence[Part10File],
    tally: Tally,
    progress: tqdm,
) -> list[Part10File]:
    """One association: send ``files``, as many at once as the negotiated asynchronous
    operations window allows (one without it). Returns the files still to send after
    one broke while being sent (the association was aborted: the files sent without an
    answer and those not sent yet), else none. On a connection, association or abort
    error the files without an outcome are reported failed with that reason."""
    net = DicomNet(None, timeouts=timeouts_from(args))
    unsent = deque(files)
    outstanding: deque[Outstanding] = deque()
    try:
        request = build_request(args.aet, args.aec, args.pdu, contexts)
        if args.window != 1:
            request.SetAsynchronousOperations(True, args.window, 1)
        propose_identity(request, args)
        apply_tls(net, args)
        accepted = open_association(net, args.peer, args.port, request)
        negotiated = list(negotiated_contexts(request, accepted).values())
        window = outstanding_limit(accepted) or args.window or len(files)
        while unsent or outstanding:
            if unsent and len(outstanding) < window:
                send_next(net, negotiated, unsent.popleft(), outstanding, tally, progress)
            else:
                answer_oldest(net, outstanding, tally, progress, args.timeout)
        release(net)
    except SendBroken:  # the file that broke is recorded, the others go on a new one
        log.warning("association aborted; the files not stored go on a new one")
        return [o.file for o in outstanding] + list(unsent)
    except DicomException as exc:
        for file in [o.file for o in outstanding] + list(unsent):
            tally.record_failure(file.path, exc.message)
            progress.update()
    finally:
        net.Close()
    return []


def send_next(
    net: DicomNet,
    negotiated: Sequence[NegotiatedContext],
    file: Part10File,
    outstanding: deque[Outstanding],
    tally: Tally,
    progress: tqdm,
) -> None:
    """Send ``file`` (now outstanding), or record why it cannot be sent."""
    if pick_context(negotiated, file.sop_class_uid, file.transfer_syntax) is None:
        reason = (
            f"the peer accepted neither SOP class {file.sop_class_uid} in "
            f"{file.transfer_syntax} nor a syntax it can be converted to"
        )
    else:
        try:
            outstanding.append(Outstanding(file, send_store_request(net, negotiated, file)))
            return
        except DIMSEError as exc:  # this file cannot be sent (unreadable, conversion)
            reason = exc.message
    tally.record_failure(file.path, reason)
    progress.update()


def answer_oldest(
    net: DicomNet,
    outstanding: deque[Outstanding],
    tally: Tally,
    progress: tqdm,
    timeout: float,
) -> None:
    """Wait for the response to the oldest outstanding C-STORE and record it. Raises
    ``SendBroken`` (recorded) when a file broke while being sent, ``DicomException``
    when the association ended otherwise."""
    oldest = outstanding[0]
    try:
        # the wait counts from the request being queued: allow for sending its data too
        limit = timeout + oldest.file.data_length / SLOWEST_LINK
        response = store_response(net, oldest.message_id, limit)
    except SendBroken as exc:
        outstanding.popleft()
        tally.record_failure(oldest.file.path, exc.message)
        progress.update()
        raise
    except DicomException:
        # the association ended: when a later file broke, that is why, and the others
        # (this one too) can go on a new association
        for later in list(outstanding)[1:]:
            try:
                store_response(net, later.message_id, 0)
            except SendBroken as exc:
                outstanding.remove(later)
                tally.record_failure(later.file.path, exc.message)
                progress.update()
                raise
            except DicomException:
                continue
        raise
    outstanding.popleft()
    tally.record_status(oldest.file.path, response.status, response.error_comment)
    progress.update()


def print_summary(tally: Tally) -> None:
    print(
        f"storescu: {tally.succeeded} succeeded, {tally.warnings} warnings, "
        f"{len(tally.failed)} failed"
    )
    for path, reason in tally.failed:
        print(f"storescu: failed: {path}: {reason}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storescu", description=__doc__)
    add_common_options(parser, scu=True)
    parser.set_defaults(aet="STORESCU")
    parser.add_argument(
        "--window",
        type=operations_window,
        default=DEFAULT_WINDOW,
        metavar="N",
        help="propose an asynchronous operations window (PS3.7 D.3.3.3) of N C-STOREs "
        f"outstanding at once (default {DEFAULT_WINDOW}; 0 = no limit; 1 = one at a "
        "time, proposing none, as DCMTK's storescu); a peer that accepts none gets one "
        "at a time",
    )
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    parser.add_argument("files", nargs="+", metavar="FILE_OR_DIR")
    args = parser.parse_args(argv)
    setup_logging(args)

    files = part10_files(args.files)
    if not files:
        return fail("storescu", "no DICOM Part-10 files to send")
    tally = Tally()
    DicomNet.Startup()
    try:
        with tqdm(
            total=len(files), unit="file", disable=not sys.stdout.isatty(), file=sys.stdout
        ) as progress:
            for contexts, batch in plan_associations(files):
                store_batch(args, contexts, batch, tally, progress)
    finally:
        DicomNet.Shutdown()
    print_summary(tally)
    return 0 if not tally.failed else 1


if __name__ == "__main__":
    sys.exit(main())
