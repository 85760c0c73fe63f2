#!/usr/bin/env python3
"""Query/Retrieve SCP: a small archive answering C-FIND, C-GET and C-MOVE on PORT
(PS3.4 annex C, Patient Root and Study Root information models), plus C-ECHO and C-STORE
so that a storescu can fill it.

At start it indexes the Part-10 files under --storage-dir (headers only); received
instances are written there as ``<modality>.<SOP instance UID>`` and indexed at once. C-MOVE
destinations are known by AE title from ``--move-destination AE=HOST:PORT``.

The query/retrieve service is ``dicomnet.qr.QueryRetrieveServer``: each request is worked
on off the network loop, sending its responses and C-STORE sub-operations; C-CANCEL stops
it between two of them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from common import (
    add_common_options,
    add_server_options,
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
    DicomNet,
)
from dicomnet.qr import (
    QUERY_RETRIEVE_SUPPORTED,
    MemoryIndex,
    QueryIndex,
    QueryRetrieveConnection,
    QueryRetrieveServer,
)
from dicomnet.server import STORAGE_AND_VERIFICATION
from dicomnet.sopclasses import STORAGE_SOP_CLASSES
from dicomnet.storage import keep_received_file

log = logging.getLogger("samples.qrscp")


class ArchiveConnection(QueryRetrieveConnection):
    """One association with a Q/R SCU; C-STOREs go into the archive."""

    listener: Archive

    def __init__(self, listener: Archive) -> None:
        super().__init__(listener)
        self.parse_received_data = False

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
        received = self.received_file
        if received is None:
            self.SendCStoreResponse(
                presentation_id,
                message_id,
                affected_class,
                instance,
                DicomCommandStatusType.ProcessingFailure,
            )
            return
        try:  # a rename: quick enough for the loop thread, and the spool file is gone after
            path = keep_received_file(received, self.listener.storage_dir, affected_class, instance)
        except OSError as exc:
            log.error("cannot store %s: %s", instance, exc)
            self.SendCStoreResponse(
                presentation_id,
                message_id,
                affected_class,
                instance,
                DicomCommandStatusType.RefusedOutOfResources,
            )
            return
        DicomNet.run_in_background(
            self._index_and_answer, path, presentation_id, message_id, affected_class, instance
        )

    def _index_and_answer(
        self, path: Path, presentation_id: int, message_id: int, sop_class: str, instance: str
    ) -> None:
        """Worker thread: read the stored file's header into the index, then answer."""
        try:
            self.listener.index.add(path)
        except Exception as exc:  # pydicom raises many types for data it cannot read
            log.error("stored %s but cannot index it: %s", path, exc)
            status = CANNOT_UNDERSTAND
        else:
            log.info("stored %s", path)
            status = DicomCommandStatusType.Success
        self.SendCStoreResponse(presentation_id, message_id, sop_class, instance, status)


class Archive(QueryRetrieveServer):
    """The listener: the index, where its files are, and the move destinations."""

    connection_type = ArchiveConnection

    def __init__(self, args: argparse.Namespace, index: QueryIndex) -> None:
        super().__init__(
            args.aet,
            index,
            destinations=dict(args.move_destinations),
            supported={**STORAGE_AND_VERIFICATION, **QUERY_RETRIEVE_SUPPORTED},
            temp_path=str(args.storage_dir),
            accept_any_transfer_syntax_for=STORAGE_SOP_CLASSES,  # archived as it comes
            **server_settings(args),
        )
        self.storage_dir: Path = args.storage_dir


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
    server = Archive(args, index)
    note = f" with {len(index)} instance(s) from {args.storage_dir}"
    return serve("qrscp", server, args, note)


if __name__ == "__main__":
    sys.exit(main())
