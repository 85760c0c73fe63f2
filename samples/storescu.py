#!/usr/bin/env python3
"""Storage SCU: sends Part-10 files to PEER PORT with C-STORE (PS3.4 annex B), options
as DCMTK's storescu.

Directories are scanned recursively; only each file's meta header is read, and files
that are not DICOM Part-10 are skipped with a warning. One presentation context is
proposed per (SOP class, transfer syntax) of the files, in the file's transfer syntax
plus Explicit and Implicit VR LE when it is uncompressed (so the library can convert);
more than 128 such pairs take several associations, one after the other. Each file's
data set is sent from disk as it is when its transfer syntax was accepted.

Prints a summary; exit status 0 when every file was stored (warnings count as stored,
as with DCMTK), 1 otherwise, listing each failed file with its status or reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_common_options, fail, setup_logging, timeouts_from  # noqa: E402

from dicomnet import (  # noqa: E402
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomCommandPriorityType,
    DicomCommandType,
    DicomException,
    DicomNet,
    DIMSEError,
)
from dicomnet.dimse.part10 import (  # noqa: E402
    CONVERTIBLE_TRANSFER_SYNTAXES,
    Part10File,
    read_part10_header,
)
from dicomnet.dimse.status import (  # noqa: E402
    StatusCategory,
    status_category,
    status_description,
)
from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE  # noqa: E402

log = logging.getLogger("samples.storescu")

MAX_CONTEXTS = 128  # odd presentation context IDs 1..255 (PS3.8 9.3.2.2)
# wait_response counts from the request being queued, so the wait for a response must
# also cover sending the data set; allow for a link as slow as this (bytes per second).
SLOWEST_LINK = 1 << 20

Pair = tuple[str, str]  # (SOP class UID, transfer syntax UID)


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


def scan(arguments: Iterable[str]) -> Iterator[Path]:
    """Every file named, and every file under every directory named (sorted)."""
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            yield from sorted(child for child in path.rglob("*") if child.is_file())
        else:
            yield path


def read_headers(paths: Iterable[Path]) -> list[Part10File]:
    """The meta headers of the DICOM files among ``paths``; the others are skipped."""
    headers = []
    for path in paths:
        try:
            headers.append(read_part10_header(path))
        except DIMSEError as exc:
            log.warning("skipping %s", exc.message)
        except OSError as exc:
            log.warning("skipping %s: %s", path, exc.strerror)
    return headers


def proposed_transfer_syntaxes(transfer_syntax: str) -> list[str]:
    """The file's own syntax first, then the ones the library can convert it to."""
    if transfer_syntax not in CONVERTIBLE_TRANSFER_SYNTAXES:
        return [transfer_syntax]
    fallbacks = [ts for ts in (EXPLICIT_VR_LE, IMPLICIT_VR_LE) if ts != transfer_syntax]
    return [transfer_syntax, *fallbacks]


def plan_associations(files: Sequence[Part10File]) -> list[tuple[list[Pair], list[Part10File]]]:
    """Split the files into associations of at most MAX_CONTEXTS distinct pairs."""
    pairs = list(dict.fromkeys((f.sop_class_uid, f.transfer_syntax) for f in files))
    plan = []
    for start in range(0, len(pairs), MAX_CONTEXTS):
        chunk = pairs[start : start + MAX_CONTEXTS]
        wanted = set(chunk)
        plan.append((chunk, [f for f in files if (f.sop_class_uid, f.transfer_syntax) in wanted]))
    return plan


def association_request(args: argparse.Namespace, pairs: Sequence[Pair]) -> DicomAssociate:
    request = DicomAssociate(True)
    request.Calling = args.aet
    request.Called = args.aec
    request.MaxLength = args.pdu
    for index, (sop_class, transfer_syntax) in enumerate(pairs):
        context_id = 2 * index + 1
        request.AddPresentationContext(
            context_id, DicomAssociateAcceptResultType.Success, sop_class
        )
        for proposed in proposed_transfer_syntaxes(transfer_syntax):
            request.AddTransfer(context_id, proposed)
    return request


def accepted_contexts(accepted: DicomAssociate) -> dict[str, list[tuple[int, str]]]:
    """SOP class -> [(context ID, accepted transfer syntax)] of the accepted contexts."""
    contexts: dict[str, list[tuple[int, str]]] = {}
    for index in range(accepted.PresentationContextCount):
        context_id = accepted.GetPresentationContextID(index)
        if accepted.GetResult(context_id) != DicomAssociateAcceptResultType.Success:
            continue
        contexts.setdefault(accepted.GetAbstract(context_id), []).append(
            (context_id, accepted.GetTransfer(context_id, 0))
        )
    return contexts


def context_for(contexts: dict[str, list[tuple[int, str]]], file: Part10File) -> int | None:
    """The context to send ``file`` on: one in its own transfer syntax if accepted, else
    one the library can convert it to, else None."""
    candidates = contexts.get(file.sop_class_uid, [])
    for context_id, transfer_syntax in candidates:
        if transfer_syntax == file.transfer_syntax:
            return context_id
    if file.transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
        for context_id, transfer_syntax in candidates:
            if transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
                return context_id
    return None


def store_file(
    net: DicomNet, context_id: int, file: Part10File, tally: Tally, timeout: float
) -> None:
    message_id = net.next_message_id()
    try:
        net.SendCStoreRequest(
            context_id,
            message_id,
            file.sop_class_uid,
            file.sop_instance_uid,
            DicomCommandPriorityType.Medium,
            "",
            0,
            file,
        )
    except DIMSEError as exc:  # this file cannot be sent (conversion); the others can
        tally.record_failure(file.path, exc.message)
        return
    response = net.wait_response(message_id, timeout + file.data_length / SLOWEST_LINK)
    comment = response.command.get("ErrorComment")
    tally.record_status(file.path, response.status or 0, str(comment) if comment else "")


def store_batch(
    args: argparse.Namespace,
    pairs: Sequence[Pair],
    files: Sequence[Part10File],
    tally: Tally,
    progress: tqdm,
) -> None:
    """One association: send ``files``; on a connection, association or abort error the
    files not yet sent are reported failed with that reason."""
    net = DicomNet(None, timeouts=timeouts_from(args))
    done = 0
    try:
        net.Connect(None, 0, args.peer, args.port)
        net.wait_connected()
        net.SendAssociateRequest(association_request(args, pairs))
        contexts = accepted_contexts(net.wait_associated())
        for file in files:
            context_id = context_for(contexts, file)
            if context_id is None:
                tally.record_failure(
                    file.path,
                    f"the peer accepted neither SOP class {file.sop_class_uid} in "
                    f"{file.transfer_syntax} nor a syntax it can be converted to",
                )
            else:
                store_file(net, context_id, file, tally, args.timeout)
            done += 1
            progress.update()
        net.SendReleaseRequest()
        net.wait_released()
    except DicomException as exc:
        for file in files[done:]:
            tally.record_failure(file.path, exc.message)
            progress.update()
    finally:
        net.Close()


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
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    parser.add_argument("files", nargs="+", metavar="FILE_OR_DIR")
    args = parser.parse_args(argv)
    setup_logging(args)

    files = read_headers(scan(args.files))
    if not files:
        return fail("storescu", "no DICOM Part-10 files to send")
    tally = Tally()
    DicomNet.Startup()
    try:
        with tqdm(
            total=len(files), unit="file", disable=not sys.stdout.isatty(), file=sys.stdout
        ) as progress:
            for pairs, batch in plan_associations(files):
                store_batch(args, pairs, batch, tally, progress)
    finally:
        DicomNet.Shutdown()
    print_summary(tally)
    return 0 if not tally.failed else 1


if __name__ == "__main__":
    sys.exit(main())
