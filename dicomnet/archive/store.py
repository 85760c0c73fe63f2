"""The archive's store: received instances written atomically under a study / series
/ instance layout, indexed so that file and rows become visible together (PS3.4 B.2).

A C-STORE's data arrives spooled to a complete Part-10 file. ``Archive.store`` checks
it, then:

1. fsyncs the spool file (with ``power_loss_safe``), so that its content is on disk
   before its name moves;
2. commits a journal entry (``store_journal``): the file's final path, the spool path,
   the old file a replacement makes obsolete; in the transaction that looks the SOP
   Instance UID up, so that a duplicate the policy keeps out ends the store here;
3. renames the spool file to its final path, in directories made when missing (and
   fsyncs the directory);
4. in one transaction, writes the instance's rows and removes the journal entry;
5. deletes an obsolete file (a replacement moved to another study or series), then the
   entry kept for it;

and answers Success only after step 4 committed. ``store_many`` takes a batch through
the same steps, steps 2 and 4 each one transaction for the whole batch. A kill -9 at
any moment leaves either no journal entry (nothing happened, or all of it) or one
that ``reconcile`` resolves at the next start-up from the journal alone, without
rescanning the storage: a file in place is indexed, a store whose file never moved is
forgotten (its spool file deleted), an obsolete file is deleted. So an indexed instance
always has its file, and after ``reconcile`` every kept file is indexed.

A killed process loses nothing the kernel already has, so the steps' order alone makes
the store safe against kill -9. Surviving a power cut or a kernel crash too needs every
step on disk before the next (``power_loss_safe=True``, and ``IndexConfig.durable_commits``
for the index): several fsyncs per instance, which cost several times the store itself on
common disks, so it is the archive's choice, not the default (plain storage SCPs such as
DCMTK's storescp do not fsync either).

Names come from UIDs checked to be well-formed (PS3.5 9.1): digits and dots only, never
a path a peer chose. Statuses (PS3.4 B.2.3, PS3.7 C):

- Success 0000;
- a duplicate SOP Instance UID under ``DuplicatePolicy.KEEP_FIRST``: B006 "Elements
  Discarded". The standard names no status for a duplicate; B006 says what happened,
  the received data set was not kept (everything in it was discarded in favour of the
  copy already stored), while B000 would claim stored values were coerced and B007
  that the data set does not match its SOP class, neither of which is true;
- under ``REFUSE``: 0111 "Duplicate SOP Instance" (PS3.7 C.5), a failure;
- a data set without SOP Class or SOP Instance UID, or that cannot be read: C000
  "Cannot understand" (as DCMTK's storescp answers);
- one whose SOP Class or SOP Instance UID differs from the command's, or that lacks a
  well-formed Study or Series Instance UID: A900 "Data Set does not match SOP Class";
- the file system or the database failing: A700 "Refused: Out of resources".

Each failure and warning carries an Error Comment saying why.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from ..dimse.headers import Header
from ..dimse.status import CANNOT_UNDERSTAND
from ..enums import DicomCommandStatusType
from ..storage import RECEIVED_FILE_MODE, instance_file_name
from ..uids import is_valid_uid
from .index import ArchiveIndex, JournalEntry
from .records import (
    InstanceRecord,
    UnreadableInstance,
    header_value,
    instance_record,
    read_header,
)

log = logging.getLogger("dicomnet.archive")

DUPLICATE_KEPT = 0xB006
"""Warning: the instance was already stored; the copy received was discarded."""
DATA_SET_DOES_NOT_MATCH = 0xA900
"""Error: Data Set does not match SOP Class (PS3.4 B.2.3)."""


class DuplicatePolicy(enum.Enum):
    """What a C-STORE of a SOP Instance UID already stored does."""

    KEEP_FIRST = "keep-first"  # keep the stored one, answer a warning (B006)
    REPLACE = "replace"  # the new one replaces it (file and index rows)
    REFUSE = "refuse"  # keep the stored one, answer a failure (0111)


@dataclass(frozen=True)
class StoreOutcome:
    """What a C-STORE response says: ``status``, the Error Comment (empty on success),
    and the file the instance is kept in (None when nothing was kept)."""

    status: int
    comment: str = ""
    path: Path | None = None

    def response_fields(self) -> dict[str, str]:
        """The keyword arguments of ``SendCStoreResponse`` beyond the status."""
        return {"ErrorComment": self.comment} if self.comment else {}


@dataclass
class ReconcileReport:
    """What ``reconcile`` did: files found in place and indexed, stores forgotten
    (their file never moved), obsolete files deleted, entries left to their owner
    (another process, still running) and entries it could not resolve (with why)."""

    indexed: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.indexed)} indexed, {len(self.forgotten)} unfinished store(s) "
            f"forgotten, {len(self.deleted)} obsolete file(s) deleted, "
            f"{len(self.skipped)} left to running processes, {len(self.failed)} failed"
        )


class Received(NamedTuple):
    """A received instance to store: its spooled file and the command's Affected SOP
    Class and Instance UIDs."""

    spooled_file: str | os.PathLike[str]
    sop_class: str
    sop_instance: str


@dataclass(frozen=True)
class _Checked:
    """A received instance whose header passed the checks: where it goes, its rows."""

    number: int  # its place in the batch
    spool: Path
    uid: str
    final: Path
    record: InstanceRecord


class _Refused(Exception):
    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.outcome = StoreOutcome(status, comment)


class Archive:
    """Stored instances under ``root`` and their ``index``. ``store`` may be called from
    several threads at once (not from the network loop: it reads, writes and fsyncs),
    and from several processes sharing one index; call ``reconcile`` once at start-up,
    before the first ``store``. Two stores of one SOP Instance UID in this process run
    one after the other, so the duplicate policy sees the first; two processes storing
    the same instance at the same moment both succeed, the later commit winning.
    Journal entries are owned by host name and process id: give each archive process a
    stable host name."""

    def __init__(
        self,
        root: Path,
        index: ArchiveIndex,
        policy: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST,
        power_loss_safe: bool = False,
    ) -> None:
        self.root = Path(root).absolute()
        self.index = index
        self.policy = policy
        self._sync = power_loss_safe
        self._host = socket.gethostname()
        self._owner = f"{self._host}:{os.getpid()}"
        self._busy: set[str] = set()  # SOP Instance UIDs being stored by this process
        self._idle = threading.Condition()
        self.root.mkdir(parents=True, exist_ok=True)

    # -- storing -------------------------------------------------------------------------

    def store(
        self, spooled_file: str | os.PathLike[str], sop_class: str, sop_instance: str
    ) -> StoreOutcome:
        """Keep the received instance ``spooled_file`` (moved away or deleted: it is
        gone on return), ``sop_class`` and ``sop_instance`` being the command's Affected
        SOP Class and Instance UIDs. See the module for the statuses."""
        return self.store_many([Received(spooled_file, sop_class, sop_instance)])[0]

    def store_many(self, received: Sequence[Received]) -> list[StoreOutcome]:
        """``store`` each of ``received``, their journal entries and their rows each in
        one transaction for all: what a busy archive does with the instances that
        arrived while it stored the last ones. The outcomes, in order."""
        outcomes: dict[int, StoreOutcome] = {}
        waiting = [
            (number, Received(item.spooled_file, item.sop_class.strip(), item.sop_instance.strip()))
            for number, item in enumerate(received)
        ]
        while waiting:  # one store of a SOP Instance UID at a time: a repeat goes next
            batch: dict[str, tuple[int, Received]] = {}
            later: list[tuple[int, Received]] = []
            for number, item in waiting:
                if item.sop_instance in batch:
                    later.append((number, item))
                else:
                    batch[item.sop_instance] = (number, item)
            outcomes.update(self._store_batch(list(batch.values())))
            waiting = later
        return [outcomes[number] for number in range(len(received))]

    def _store_batch(self, batch: list[tuple[int, Received]]) -> dict[int, StoreOutcome]:
        """Store instances of distinct SOP Instance UIDs, their UIDs stripped (see the
        module for the steps)."""
        outcomes: dict[int, StoreOutcome] = {}
        checked: list[_Checked] = []
        for number, item in batch:
            spool, sop_class, uid = Path(item.spooled_file), item.sop_class, item.sop_instance
            try:
                header, study, series = _checked_header(spool, sop_class, uid)
                final = self.root / study / series / instance_file_name(sop_class, uid)
                record = instance_record(header, final, spool.stat().st_size)
            except _Refused as refused:
                log.warning("C-STORE of %s refused: %s", uid, refused)
                outcomes[number] = refused.outcome
                continue
            except OSError as exc:
                outcomes[number] = _write_failed(uid, exc)
                continue
            checked.append(_Checked(number, spool, uid, final, record))
        with self._storing([c.uid for c in checked]):
            outcomes.update(self._keep(checked))
        stored = {n for n, o in outcomes.items() if o.status == DicomCommandStatusType.Success}
        for number, item in batch:
            # not in a "finally": a process dying mid-store leaves the spool file to reconcile
            if number not in stored:  # a stored one's spool file is its file now
                unlink_or_log(Path(item.spooled_file))
        return outcomes

    def _keep(self, checked: list[_Checked]) -> dict[int, StoreOutcome]:
        """Journal, move into place and index the checked instances."""
        outcomes: dict[int, StoreOutcome] = {}
        ready: list[_Checked] = []
        for item in checked:
            try:
                os.chmod(item.spool, RECEIVED_FILE_MODE)
                if self._sync:
                    _fsync_file(item.spool)
            except OSError as exc:
                outcomes[item.number] = _write_failed(item.uid, exc)
                continue
            ready.append(item)
        entries = [
            JournalEntry(c.uid, str(c.final), str(c.spool), None, str(self.root), self._owner)
            for c in ready
        ]
        try:
            added = self.index.journal_add(
                entries, only_new=self.policy is not DuplicatePolicy.REPLACE
            )
        except Exception as exc:  # the database failed (each driver has its own errors)
            return outcomes | {c.number: _index_failed(c.uid, exc) for c in ready}
        moved: list[tuple[_Checked, JournalEntry]] = []
        for item, entry in zip(ready, added, strict=True):
            if not isinstance(entry, JournalEntry):  # a duplicate the policy keeps out
                outcomes[item.number] = self._duplicate(entry)
                continue
            try:
                _make_directories(item.final.parent, self._sync)
                os.replace(item.spool, item.final)
                if self._sync:
                    _fsync_directory(item.final.parent)
            except OSError as exc:
                outcomes[item.number] = _write_failed(item.uid, exc)
                continue
            moved.append((item, entry))
        try:
            obsoletes = self.index.journal_commit([(e, c.record) for c, e in moved])
            for (_item, entry), obsolete in zip(moved, obsoletes, strict=True):
                if obsolete is not None:
                    Path(obsolete).unlink(missing_ok=True)
                    self.index.journal_done(entry)
        except OSError as exc:
            return outcomes | {c.number: _write_failed(c.uid, exc) for c, _ in moved}
        except Exception as exc:  # the database failed: reconcile indexes the moved files
            return outcomes | {c.number: _index_failed(c.uid, exc) for c, _ in moved}
        for item, _entry in moved:
            log.info("stored %s", item.final)
            outcomes[item.number] = StoreOutcome(DicomCommandStatusType.Success, "", item.final)
        return outcomes

    def _duplicate(self, existing: str) -> StoreOutcome:
        """The outcome of a store the duplicate policy kept out."""
        if self.policy is DuplicatePolicy.KEEP_FIRST:
            return StoreOutcome(
                DUPLICATE_KEPT,
                "SOP Instance already stored; the copy received was discarded",
                Path(existing),
            )
        return StoreOutcome(
            DicomCommandStatusType.DuplicateInstance,
            "SOP Instance already stored; refused (duplicates are not accepted)",
        )

    @contextmanager
    def _storing(self, uids: list[str]) -> Iterator[None]:
        """The stores of ``uids`` (distinct), each the only one of its SOP Instance UID
        in this process, so that the duplicate policy sees the first one finished."""
        with self._idle:
            while self._busy.intersection(uids):
                self._idle.wait()
            self._busy.update(uids)
        try:
            yield
        finally:
            with self._idle:
                self._busy.difference_update(uids)
                self._idle.notify_all()

    # -- start-up ------------------------------------------------------------------------

    def reconcile(self) -> ReconcileReport:
        """Resolve the stores a crash interrupted, from the journal (see the module).
        Entries of another process still running on this host, or of another host, are
        left to their owner."""
        report = ReconcileReport()
        for entry in self.index.journal_entries(str(self.root)):
            if not self._orphaned(entry):
                report.skipped.append(entry.final_path)
                continue
            try:
                self._resolve(entry, report)
            except Exception as exc:  # one bad entry must not stop the others
                log.error("cannot resolve the store of %s: %s", entry.final_path, exc)
                report.failed.append(f"{entry.final_path}: {exc}")
        log.info("reconciled %s: %s", self.root, report)
        return report

    def _orphaned(self, entry: JournalEntry) -> bool:
        host, _, pid = entry.owner.rpartition(":")
        if host != self._host or not pid.isdigit():
            return False
        if int(pid) == os.getpid():
            return True  # an earlier life of this process id (this one has not stored yet)
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False

    def _resolve(self, entry: JournalEntry, report: ReconcileReport) -> None:
        final = Path(entry.final_path)
        if entry.state == "committed":
            self._delete_obsolete(entry, report)
        elif final.is_file():
            try:
                record = instance_record(read_header(final), final, final.stat().st_size)
            except UnreadableInstance as exc:
                report.failed.append(f"{final}: {exc}")
                return
            if record.sop_instance_uid != entry.sop_instance_uid:
                report.failed.append(f"{final}: holds {record.sop_instance_uid}")
                return
            (obsolete,) = self.index.journal_commit([(entry, record)])
            report.indexed.append(str(final))
            if obsolete is not None:
                self._delete_obsolete(replace(entry, obsolete_path=obsolete), report)
        else:
            self.index.journal_done(entry)
            report.forgotten.append(str(final))
        Path(entry.spool_path).unlink(missing_ok=True)

    def _delete_obsolete(self, entry: JournalEntry, report: ReconcileReport) -> None:
        obsolete = entry.obsolete_path
        if obsolete and self.index.instance(entry.sop_instance_uid) != obsolete:
            Path(obsolete).unlink(missing_ok=True)
            report.deleted.append(obsolete)
        self.index.journal_done(entry)


def _checked_header(spool: Path, sop_class: str, sop_instance: str) -> tuple[Header, str, str]:
    """The spooled data set's header, checked against the command (see the module), and
    its Study and Series Instance UIDs."""
    try:
        header = read_header(spool)
    except UnreadableInstance as exc:
        raise _Refused(CANNOT_UNDERSTAND, f"cannot read the data set: {exc.__cause__}") from exc
    data_class = header_value(header, "SOPClassUID")
    data_instance = header_value(header, "SOPInstanceUID")
    if not data_class or not data_instance:
        missing = "SOP Class UID" if not data_class else "SOP Instance UID"
        raise _Refused(CANNOT_UNDERSTAND, f"the data set has no {missing}")
    if data_instance != sop_instance:
        raise _Refused(
            DATA_SET_DOES_NOT_MATCH,
            f"the data set's SOP Instance UID is not the command's: {data_instance}",
        )
    if data_class != sop_class:
        raise _Refused(
            DATA_SET_DOES_NOT_MATCH,
            f"the data set's SOP Class UID is not the command's: {data_class}",
        )
    study = header_value(header, "StudyInstanceUID")
    series = header_value(header, "SeriesInstanceUID")
    for keyword, value in (
        ("SOPInstanceUID", data_instance),
        ("StudyInstanceUID", study),
        ("SeriesInstanceUID", series),
    ):
        if not value or not is_valid_uid(value, strict=False):
            raise _Refused(
                DATA_SET_DOES_NOT_MATCH, f"{keyword} {value or '(none)'} is not a valid UID"
            )
    return header, str(study), str(series)


def _write_failed(uid: str, exc: OSError) -> StoreOutcome:
    log.error("cannot store %s: %s", uid, exc)
    return StoreOutcome(
        DicomCommandStatusType.RefusedOutOfResources,
        f"cannot write the instance: {exc.strerror or exc}",
    )


def _index_failed(uid: str, exc: Exception) -> StoreOutcome:
    log.error("cannot index %s: %s", uid, exc)
    return StoreOutcome(DicomCommandStatusType.RefusedOutOfResources, "the archive index failed")


def unlink_or_log(path: Path) -> None:
    """Delete ``path`` if it is there; a failure is only logged."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # the outcome stands; a stale spool file is only litter
        log.warning("cannot remove %s: %s", path, exc)


def _fsync_file(path: Path) -> None:
    """Write the file's content to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename into it) durable."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _make_directories(path: Path, sync: bool) -> None:
    """Create ``path`` and its missing parents (with ``sync``, each made durable in its
    parent)."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:  # another thread or process made it first
            continue
        if sync:
            _fsync_directory(directory.parent)
