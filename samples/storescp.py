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
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    STORAGE_AND_VERIFICATION,
    AcceptingChild,
    SampleServer,
    add_common_options,
    fail,
    keep_received_file,
    setup_logging,
    timeouts_from,
)
from pydicom import Dataset  # noqa: E402

from dicomnet import (  # noqa: E402
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomException,
    DicomNet,
)
from dicomnet.sopclasses import STORAGE_SOP_CLASSES  # noqa: E402

log = logging.getLogger("samples.storescp")

SPOOL_FOLDER = ".storescp-incoming"  # inside the output directory: same file system
CANNOT_UNDERSTAND = 0xC000  # PS3.4 B.2.3 "Error: Cannot understand"


class StoreChild(AcceptingChild):
    """One association: stores every received instance, answers with its status."""

    def __init__(self, temp_path: str | None, server: StoreServer) -> None:
        super().__init__(temp_path, server)
        self.store_server = server
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
        extra = {"ErrorComment": comment[:64]} if comment else {}
        self.SendCStoreResponse(
            presentation_id, message_id, affected_class, instance, status, **extra
        )

    def _store(self, sop_class: str, sop_instance: str) -> tuple[int, str]:
        """Keep the received file; (status, error comment). A file not kept is deleted
        by the library after this callback."""
        received = self.received_file
        if received is None or not sop_class or not sop_instance:
            log.warning("C-STORE without data set or SOP class/instance UID: refused")
            return CANNOT_UNDERSTAND, "no data set, or no Affected SOP Class/Instance UID"
        server = self.store_server
        try:
            target = keep_received_file(received, server.output_dir, sop_class, sop_instance)
        except OSError as exc:
            log.error("cannot store %s: %s", sop_instance, exc)
            return DicomCommandStatusType.RefusedOutOfResources, f"cannot store: {exc.strerror}"
        if server.report_each:
            calling = self.Association.Calling.strip() if self.Association else "?"
            print(f"storescp: stored {target.name} from {calling}", flush=True)
        return DicomCommandStatusType.Success, ""


class StoreServer(SampleServer):
    """The listener: knows where instances go and whether to report each one."""

    child_type = StoreChild

    def __init__(self, args: argparse.Namespace, output_dir: Path) -> None:
        spool_dir = output_dir / SPOOL_FOLDER
        spool_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            args.aet,
            STORAGE_AND_VERIFICATION,
            max_pdu=args.pdu,
            timeouts=timeouts_from(args),
            check_called_aet=args.check_called_aet,
            temp_path=str(spool_dir),
            accept_any_transfer_syntax_for=STORAGE_SOP_CLASSES,
        )
        self.output_dir = output_dir
        self.spool_dir = spool_dir
        self.report_each = args.verbose or args.debug


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
    parser.add_argument("--bind", default="", help="local address to listen on (default: all)")
    parser.add_argument(
        "--check-called-aet",
        action="store_true",
        help="reject associations whose called AE title is not -aet",
    )
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    setup_logging(args)

    if not args.output_dir.is_dir():
        return fail("storescp", f"output directory {args.output_dir} does not exist")
    DicomNet.Startup()
    try:
        server = StoreServer(args, args.output_dir.resolve())
        server.Listen(args.bind, args.port, 64)
    except (DicomException, OSError) as exc:
        DicomNet.Shutdown()
        return fail("storescp", str(exc))
    print(f"storescp: {args.aet} listening on port {server.HostPort}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.Close()
    DicomNet.Shutdown()
    with contextlib.suppress(OSError):  # left in place while it holds a transfer's file
        server.spool_dir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
