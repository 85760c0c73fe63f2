#!/usr/bin/env python3
"""Query/Retrieve SCP: an archive on PORT answering C-ECHO, C-STORE, C-FIND, C-GET and
C-MOVE (PS3.4 annexes A, B and C: Patient Root and Study Root information models) and
C-CANCEL, and, with --worklist-dir, Modality Worklist C-FIND (PS3.4 annex K).

Received instances go into the archive under --storage-dir, written atomically in a
study/series/instance layout and indexed in the database --database names
(``sqlite:///PATH``, default ``sqlite:///<storage-dir>/index.db``, or
``postgresql://...`` for an index several archives share). A duplicate SOP Instance UID
follows --duplicates: keep the first (answered with a warning), replace it, or refuse
it. At start the archive reconciles its files with the index (what a crash left half
done); it does not rescan everything, unless --rescan asks it to index the files put
under --storage-dir by other means (where they are). C-MOVE destinations are known by AE title from
``--move-destination AE=HOST:PORT``. Worklist items are the ``*.wl`` files in
--worklist-dir (Part-10 files or plain data sets, as DCMTK's wlmscpfs reads them), read
for every query. SOP class extended negotiation is answered: relational queries and
combined date-time matching for C-FIND, relational retrieval for C-GET and C-MOVE.

Storing, queries and file reads run off the network loop, so one slow client never
stalls another: stores in a process of their own (dicomnet.archive.StoreProcess, which
also reconciles at start), queries and retrievals on worker threads; responses and
sub-operations are sent as they are ready, and C-CANCEL stops a request between two of
them.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
from functools import partial
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
    read_part10_header,
)
from dicomnet.archive import (
    ArchiveIndex,
    DuplicatePolicy,
    IndexConfig,
    Received,
    StoreOutcome,
    StoreProcess,
    StoreProcessFailed,
    StoreSettings,
    UnreadableInstance,
    open_index,
)
from dicomnet.qr import (
    QUERY_RETRIEVE_SUPPORTED,
    InvalidQuery,
    QueryRetrieveConnection,
    QueryRetrieveServer,
)
from dicomnet.qr.models import QUERY_TRANSFER_SYNTAXES
from dicomnet.qr.scp import answer_find, error_comment
from dicomnet.server import STORAGE_AND_VERIFICATION
from dicomnet.sopclasses import MODALITY_WORKLIST_FIND, STORAGE_SOP_CLASSES
from dicomnet.worklist import WorklistFolder

log = logging.getLogger("samples.qrscp")

DUPLICATE_POLICIES = {
    "keep": DuplicatePolicy.KEEP_FIRST,  # answered with a warning (B006)
    "replace": DuplicatePolicy.REPLACE,
    "refuse": DuplicatePolicy.REFUSE,
}
SPOOL_FOLDER = "spool"  # received data in transit, inside the storage folder (one file system)


def _answer(instance: str, respond: partial[None], outcome: StoreOutcome) -> None:
    """The loop thread, once the store process stored it: answer the C-STORE of
    ``instance``."""
    log.info("C-STORE %s: 0x%04X %s", instance, outcome.status, outcome.comment)
    respond(outcome.status, **outcome.response_fields())


class ArchiveConnection(QueryRetrieveConnection):
    """One association: C-STOREs go into the archive, worklist C-FINDs to the folder."""

    listener: ArchiveServer

    def __init__(self, listener: ArchiveServer) -> None:
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
        respond = partial(
            self.SendCStoreResponse, presentation_id, message_id, affected_class, instance
        )
        received = self.take_received_file()  # stored after this callback returns
        if received is None:
            respond(DicomCommandStatusType.ProcessingFailure)
            return
        self.listener.stores.submit(
            Received(received, affected_class, instance), partial(_answer, instance, respond)
        )

    def OnReceiveCFindRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        worklist = self.listener.worklist
        if affected_class != MODALITY_WORKLIST_FIND or worklist is None:
            super().OnReceiveCFindRequest(
                presentation_id, message_id, affected_class, priority, data_set
            )
            return
        respond = partial(self.SendCFindResponse, presentation_id, message_id, affected_class)
        identifier = data_set or Dataset()
        self.requests.start(
            message_id,
            lambda cancel: log.info(
                "worklist C-FIND %d: %d match(es)",
                message_id,
                answer_find(respond, worklist.find(identifier), cancel),
            ),
            lambda exc: respond(_failure_status(exc), None, **error_comment(exc)),
        )


def _failure_status(error: Exception) -> int:
    """A worklist query that cannot be answered: the status ``InvalidQuery`` names, or
    C000 (unable to process) for anything else that broke."""
    return error.status if isinstance(error, InvalidQuery) else CANNOT_UNDERSTAND


class ArchiveServer(QueryRetrieveServer):
    """The listener: the archive and its index, the worklist, the move destinations."""

    connection_type = ArchiveConnection

    def __init__(
        self,
        args: argparse.Namespace,
        stores: StoreProcess,
        index: ArchiveIndex,
        worklist: WorklistFolder | None,
    ) -> None:
        supported = {**STORAGE_AND_VERIFICATION, **QUERY_RETRIEVE_SUPPORTED}
        if worklist is not None:
            supported[MODALITY_WORKLIST_FIND] = QUERY_TRANSFER_SYNTAXES
        super().__init__(
            args.aet,
            index,
            destinations=dict(args.move_destinations),
            supported=supported,
            temp_path=str(args.spool_dir),
            accept_any_transfer_syntax_for=STORAGE_SOP_CLASSES,  # archived as it comes
            **server_settings(args),
        )
        self.stores = stores
        self.worklist = worklist

    def Close(self) -> None:
        """Stop listening; the stores received are finished first."""
        super().Close()
        self.stores.close()


def index_files_in_place(storage: Path, index: ArchiveIndex) -> int:
    """``--rescan``: index every Part-10 file under ``storage`` the index does not hold,
    where it is (a folder filled by other means, or a lost index); how many."""
    added = 0
    for path in sorted(storage.rglob("*")):
        if not path.is_file() or SPOOL_FOLDER in path.relative_to(storage).parts:
            continue
        try:
            uid = read_part10_header(path).sop_instance_uid
            if index.instance(uid) is None:
                index.add(path)
                added += 1
        except (DicomException, OSError, UnreadableInstance) as exc:
            log.info("not indexed: %s: %s", path, exc)
    return added


def own_spool(spool: Path) -> Path:
    """This process's spool folder, ``<spool>/<host>-<pid>``, made empty. The folders
    of processes of this host that are gone go too: what they held in transit was never
    acknowledged. Archives sharing a storage folder keep their transfers apart."""
    host = socket.gethostname()
    spool.mkdir(parents=True, exist_ok=True)
    for folder in spool.iterdir():
        owner, _, pid = folder.name.rpartition("-")
        if owner == host and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    mine = spool / f"{host}-{os.getpid()}"
    shutil.rmtree(mine, ignore_errors=True)  # an earlier life of this process id
    mine.mkdir()
    return mine


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's, alive
        return True
    return True


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
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
        "--database",
        metavar="URL",
        help="the index: sqlite:///PATH or postgresql://... "
        "(default: sqlite:///<storage-dir>/index.db)",
    )
    parser.add_argument(
        "--duplicates",
        choices=sorted(DUPLICATE_POLICIES),
        default="keep",
        help="a SOP Instance UID already archived: keep the first and answer with a "
        "warning (default), replace it, or refuse the new one",
    )
    parser.add_argument(
        "--fsync",
        action="store_true",
        help="make every stored instance survive a power cut before it is answered "
        "(fsync of file, folder and index commit; several times slower on common disks); "
        "without it a stored instance survives the archive being killed",
    )
    parser.add_argument(
        "--rescan",
        action="store_true",
        help="at start, also index the Part-10 files under --storage-dir that the index "
        "does not hold, where they are (slow for a big store: normally start-up only "
        "resolves what a crash left unfinished)",
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
    parser.add_argument(
        "--worklist-dir",
        type=Path,
        metavar="DIR",
        help="serve Modality Worklist C-FIND from the *.wl files in DIR",
    )
    add_server_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args)
    storage: Path = args.storage_dir.resolve()
    args.storage_dir = storage
    url = args.database or f"sqlite:///{storage / 'index.db'}"
    config = IndexConfig(durable_commits=args.fsync)
    try:
        args.spool_dir = own_spool(storage / SPOOL_FOLDER)
        index = open_index(url, config)
    except Exception as exc:  # OSError, or whatever the database driver raises
        return fail("qrscp", f"cannot open the archive ({redacted(url)}): {exc}")
    DicomNet.Startup()
    settings = StoreSettings(
        storage,
        url,
        config,
        DUPLICATE_POLICIES[args.duplicates],
        power_loss_safe=args.fsync,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    try:
        stores = StoreProcess(settings)  # it reconciles the archive first
    except (StoreProcessFailed, OSError) as exc:
        index.close()
        DicomNet.Shutdown()
        return fail("qrscp", f"cannot start storing into the archive: {exc}")
    log.info("start-up: %s", stores.report)
    if args.rescan:
        log.info("rescan: %d file(s) indexed in place", index_files_in_place(storage, index))
    worklist = WorklistFolder(args.worklist_dir) if args.worklist_dir else None
    server = ArchiveServer(args, stores, index, worklist)
    note = f", archive {storage}, index {redacted(url)}"
    if worklist is not None:
        note += f", worklist {args.worklist_dir}"
    try:
        return serve("qrscp", server, args, note)
    finally:
        index.close()


def redacted(url: str) -> str:
    """A database URL without its password, for the log."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}@{host}"


if __name__ == "__main__":
    sys.exit(main())
