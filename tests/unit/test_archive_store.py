"""The archive's store (dicomnet.archive.Archive) on both databases: the layout and the
atomic keep, the duplicate policies, refused data sets with the standard's statuses,
and reconcile after a crash at each step of a store (the crash simulated in-process by
an exception where the process would have died; tests/stress/test_archive_crash.py
kills real processes)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from postgres_cluster import index_url
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

import dicomnet.archive.store as store_module
from dicomnet.archive import (
    Archive,
    ArchiveIndex,
    DuplicatePolicy,
    Received,
    StoreOutcome,
    open_index,
)
from dicomnet.archive.index import JournalEntry
from dicomnet.dimse.status import StatusCategory, status_category
from dicomnet.qr import QueryOptions
from dicomnet.storage import RECEIVED_FILE_MODE


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return index_url(request, request.param, tmp_path)


@pytest.fixture
def index(url: str) -> Iterator[ArchiveIndex]:
    opened = open_index(url)
    yield opened
    opened.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


def data_set(**attributes: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "P1"
    ds.PatientName = "DOE^JOHN"
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.Modality = "CT"
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def spool(directory: Path, ds: Dataset) -> Path:
    """``ds`` as a received, spooled Part-10 file."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", CTImageStorage)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "1.2")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = directory / f"dicomnet-{generate_uid()[-12:]}.part"
    ds.save_as(path, enforce_file_format=True)
    os.chmod(path, 0o600)  # spool files are private
    return path


def store(archive: Archive, directory: Path, ds: Dataset, **command: str) -> StoreOutcome:
    path = spool(directory, ds)
    outcome = archive.store(
        path,
        command.get("sop_class", str(ds.get("SOPClassUID", CTImageStorage))),
        command.get("sop_instance", str(ds.get("SOPInstanceUID", ""))),
    )
    assert not path.exists()  # the spool file is gone, whatever happened
    return outcome


def kept_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_an_instance_is_kept_atomically_in_the_study_series_layout(
    index: ArchiveIndex, root: Path, spool_dir: Path
) -> None:
    archive = Archive(root, index)
    ds = data_set()
    outcome = store(archive, spool_dir, ds)
    assert outcome.status == 0x0000 and outcome.comment == ""
    expected = root / "1.2.3" / "1.2.3.4" / f"CT.{ds.SOPInstanceUID}"
    assert outcome.path == expected and kept_files(root) == [expected]
    assert dcmread(expected).SOPInstanceUID == ds.SOPInstanceUID
    assert expected.stat().st_mode & 0o777 == RECEIVED_FILE_MODE
    assert index.instance(ds.SOPInstanceUID) == str(expected)
    assert index.journal_entries(str(root)) == []
    (match,) = index.find("IMAGE", _query("IMAGE", SOPInstanceUID=""))
    assert match.SOPInstanceUID == ds.SOPInstanceUID


def _query(level: str, **keys: object) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def test_keep_first_answers_a_warning_and_keeps_the_stored_copy(
    index: ArchiveIndex, root: Path, spool_dir: Path
) -> None:
    archive = Archive(root, index, DuplicatePolicy.KEEP_FIRST)
    ds = data_set()
    first = store(archive, spool_dir, ds)
    again = store(archive, spool_dir, data_set(SOPInstanceUID=ds.SOPInstanceUID, PatientName="X^Y"))
    assert again.status == 0xB006
    assert status_category(again.status) is StatusCategory.WARNING
    assert "already stored" in again.comment and again.path == first.path
    assert kept_files(root) == [first.path]
    assert dcmread(first.path).PatientName == "DOE^JOHN"


def test_refuse_answers_a_failure(index: ArchiveIndex, root: Path, spool_dir: Path) -> None:
    archive = Archive(root, index, DuplicatePolicy.REFUSE)
    ds = data_set()
    first = store(archive, spool_dir, ds)
    again = store(archive, spool_dir, data_set(SOPInstanceUID=ds.SOPInstanceUID))
    assert again.status == 0x0111 and again.path is None
    assert status_category(again.status) is StatusCategory.FAILURE and again.comment
    assert kept_files(root) == [first.path]


@pytest.mark.parametrize("policy", [DuplicatePolicy.KEEP_FIRST, DuplicatePolicy.REFUSE])
def test_a_duplicate_kept_out_leaves_no_journal_entry_and_no_directory(
    index: ArchiveIndex, root: Path, spool_dir: Path, policy: DuplicatePolicy
) -> None:
    archive = Archive(root, index, policy)
    ds = data_set()
    first = store(archive, spool_dir, ds)
    elsewhere = data_set(
        SOPInstanceUID=ds.SOPInstanceUID, StudyInstanceUID="1.7", SeriesInstanceUID="1.7.1"
    )
    assert store(archive, spool_dir, elsewhere).status != 0
    assert index.journal_entries(str(archive.root)) == []
    assert not (root / "1.7").exists() and kept_files(root) == [first.path]
    assert index.instance(ds.SOPInstanceUID) == str(first.path)


def test_replace_takes_the_new_copy_even_in_another_study(
    index: ArchiveIndex, root: Path, spool_dir: Path
) -> None:
    archive = Archive(root, index, DuplicatePolicy.REPLACE)
    ds = data_set()
    first = store(archive, spool_dir, ds)
    same_place = store(
        archive, spool_dir, data_set(SOPInstanceUID=ds.SOPInstanceUID, PatientName="A^B")
    )
    assert same_place.status == 0 and same_place.path == first.path
    assert dcmread(first.path).PatientName == "A^B"
    moved = store(
        archive,
        spool_dir,
        data_set(
            SOPInstanceUID=ds.SOPInstanceUID, StudyInstanceUID="1.9", SeriesInstanceUID="1.9.1"
        ),
    )
    assert moved.status == 0 and moved.path is not None
    assert kept_files(root) == [moved.path]  # the old file is deleted
    assert index.instance(ds.SOPInstanceUID) == str(moved.path)
    found = index.find("STUDY", _query("STUDY", StudyInstanceUID=""))
    assert [str(m.StudyInstanceUID) for m in found] == ["1.9"]  # the emptied study is gone
    assert index.journal_entries(str(root)) == []


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize(
    ("changes", "command", "status", "reason"),
    [
        ({"SOPInstanceUID": None}, {"sop_instance": "1.2.3.4.5"}, 0xC000, "no SOP Instance UID"),
        ({"SOPClassUID": None}, {"sop_class": CTImageStorage}, 0xC000, "no SOP Class UID"),
        ({}, {"sop_instance": "1.2.3.4.5"}, 0xA900, "SOP Instance UID is not the command's"),
        ({}, {"sop_class": MRImageStorage}, 0xA900, "SOP Class UID is not the command's"),
        ({"StudyInstanceUID": "../../etc"}, {}, 0xA900, "StudyInstanceUID ../../etc is not"),
        ({"SeriesInstanceUID": None}, {}, 0xA900, "SeriesInstanceUID (none) is not"),
    ],
)
def test_a_data_set_that_does_not_fit_is_refused_with_the_standards_status(
    index: ArchiveIndex,
    root: Path,
    spool_dir: Path,
    changes: dict[str, object],
    command: dict[str, str],
    status: int,
    reason: str,
) -> None:
    archive = Archive(root, index)
    outcome = store(archive, spool_dir, data_set(**changes), **command)
    assert (outcome.status, outcome.path) == (status, None)
    assert reason in outcome.comment
    assert outcome.response_fields() == {"ErrorComment": outcome.comment}
    assert kept_files(root) == [] and index.count() == 0


def test_a_file_that_is_not_dicom_cannot_be_understood(
    index: ArchiveIndex, root: Path, spool_dir: Path
) -> None:
    path = spool_dir / "dicomnet-garbage.part"
    path.write_bytes(b"\x00" * 10 + b"not a data set")
    outcome = Archive(root, index).store(path, CTImageStorage, "1.2.3")
    assert outcome.status == 0xC000 and "cannot read" in outcome.comment
    assert not path.exists() and kept_files(root) == []


# -- crashes: each step of a store, then a restart --------------------------------------


class Crash(BaseException):
    """The process dies here (nothing after it runs, no except clause catches it)."""


STEPS = [
    "fsync_spool",
    "journal_add",
    "replace",
    "fsync_directory",
    "journal_commit",
    "obsolete_unlink",
]


def crash_at(monkeypatch: pytest.MonkeyPatch, archive: Archive, step: str) -> None:
    """Make the store die just after ``step`` (its effect done, nothing after it)."""

    def after(function: Callable[..., object]) -> Callable[..., object]:
        def dying(*args: object, **kwargs: object) -> object:
            function(*args, **kwargs)
            raise Crash(step)

        return dying

    if step == "fsync_spool":
        monkeypatch.setattr(store_module, "_fsync_file", after(store_module._fsync_file))
    elif step == "journal_add":
        monkeypatch.setattr(archive.index, "journal_add", after(archive.index.journal_add))
    elif step == "replace":
        monkeypatch.setattr(store_module.os, "replace", after(os.replace))
    elif step == "fsync_directory":  # the one after the rename (not those of new directories)
        renamed: list[object] = []
        real_replace = os.replace

        def replace(source: Path, target: Path) -> None:
            real_replace(source, target)
            renamed.append(target)

        def fsync_directory(path: Path) -> None:
            fsync(path)
            if renamed:
                raise Crash(step)

        fsync = store_module._fsync_directory
        monkeypatch.setattr(store_module.os, "replace", replace)
        monkeypatch.setattr(store_module, "_fsync_directory", fsync_directory)
    elif step == "journal_commit":
        monkeypatch.setattr(archive.index, "journal_commit", after(archive.index.journal_commit))
    else:
        monkeypatch.setattr(archive.index, "journal_done", after(archive.index.journal_done))


@pytest.mark.parametrize("step", STEPS)
def test_reconcile_after_a_crash_at_each_step_leaves_index_and_files_in_agreement(
    url: str, root: Path, spool_dir: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    index = open_index(url)
    # every step, the fsyncs for power-loss safety included (without them the steps are
    # the same minus the two fsync ones)
    archive = Archive(root, index, DuplicatePolicy.REPLACE, power_loss_safe=True)
    ds = data_set()
    assert store(archive, spool_dir, ds).status == 0
    # a replacement into another study, so that the last step has an old file to delete
    replacement = data_set(
        SOPInstanceUID=ds.SOPInstanceUID, StudyInstanceUID="1.7", SeriesInstanceUID="1.7.1"
    )
    crash_at(monkeypatch, archive, step)
    spooled = spool(spool_dir, replacement)
    with pytest.raises(Crash):
        archive.store(spooled, CTImageStorage, ds.SOPInstanceUID)
    monkeypatch.undo()
    index.close()

    restarted = open_index(url)
    try:
        report = Archive(root, restarted, DuplicatePolicy.REPLACE).reconcile()
        indexed = restarted.instance(ds.SOPInstanceUID)
        assert indexed is not None and Path(indexed).is_file()
        assert kept_files(root) == [Path(indexed)]  # no file the index does not know
        assert restarted.journal_entries(str(root)) == []
        # before the journal entry the spool file is the spool directory's litter, as
        # after a crash during the transfer; after it, reconcile deletes it
        assert spooled.exists() == (step == "fsync_spool")
        moved = step not in ("fsync_spool", "journal_add")  # the rename happened
        assert ("1.7" in indexed) == moved
        assert report.failed == [] and report.skipped == []
        if step in ("replace", "fsync_directory"):
            assert report.indexed == [indexed]
        if step == "journal_add":
            assert len(report.forgotten) == 1
        studies = restarted.find("STUDY", _query("STUDY", StudyInstanceUID=""))
        assert [str(m.StudyInstanceUID) for m in studies] == (["1.7"] if moved else ["1.2.3"])
    finally:
        restarted.close()


def test_reconcile_leaves_the_stores_of_a_running_process_alone(
    index: ArchiveIndex, root: Path, spool_dir: Path
) -> None:
    archive = Archive(root, index)
    running = f"{socket.gethostname()}:{os.getppid()}"  # our parent: alive, not us
    other_host = "elsewhere.example:1"
    for owner in (running, other_host):
        index.journal_add(
            [
                JournalEntry(
                    "1.2.3.9",
                    str(root / "x"),
                    str(spool_dir / "s.part"),
                    None,
                    str(archive.root),
                    owner,
                )
            ]
        )
    report = archive.reconcile()
    assert len(report.skipped) == 2 and report.forgotten == []
    assert len(index.journal_entries(str(archive.root))) == 2


def test_stores_from_several_threads(index: ArchiveIndex, root: Path, spool_dir: Path) -> None:
    import concurrent.futures

    archive = Archive(root, index)
    datasets = [
        data_set(StudyInstanceUID=f"1.5.{n % 3}", SeriesInstanceUID=f"1.5.{n % 3}.1")
        for n in range(24)
    ]
    paths = [spool(spool_dir, ds) for ds in datasets]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outcomes = list(
            pool.map(
                lambda pair: archive.store(pair[0], CTImageStorage, pair[1].SOPInstanceUID),
                zip(paths, datasets, strict=True),
            )
        )
    assert [o.status for o in outcomes] == [0] * 24
    assert index.count() == 24 and len(kept_files(root)) == 24
    found = index.find(
        "STUDY", _query("STUDY", NumberOfStudyRelatedInstances=""), options=QueryOptions()
    )
    assert sorted(int(m.NumberOfStudyRelatedInstances) for m in found) == [8, 8, 8]


# -- batches -----------------------------------------------------------------------------


def test_a_batch_stores_each_instance_with_its_own_outcome_in_order(
    index: ArchiveIndex, root: Path, spool_dir: Path
) -> None:
    archive = Archive(root, index)
    good, repeated = data_set(), data_set()
    no_uid = data_set(SOPInstanceUID=None)
    items = [
        Received(spool(spool_dir, good), CTImageStorage, good.SOPInstanceUID),
        Received(spool(spool_dir, repeated), CTImageStorage, repeated.SOPInstanceUID),
        Received(spool(spool_dir, no_uid), CTImageStorage, "1.2.77"),
        # the same instance again in the same batch: stored after the first, so the
        # duplicate policy sees it
        Received(spool(spool_dir, repeated), CTImageStorage, repeated.SOPInstanceUID),
    ]
    outcomes = archive.store_many(items)
    assert [o.status for o in outcomes] == [0x0000, 0x0000, 0xC000, 0xB006]
    assert outcomes[2].comment and outcomes[3].path == outcomes[1].path
    assert index.count() == 2 and sorted(kept_files(root)) == sorted(
        [outcomes[0].path, outcomes[1].path]
    )
    assert index.journal_entries(str(archive.root)) == []
    assert not any(Path(item.spooled_file).exists() for item in items)


def test_a_batch_whose_index_fails_answers_a700_for_each_and_reconcile_indexes_them(
    url: str, root: Path, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = open_index(url)
    archive = Archive(root, index)
    datasets = [data_set(), data_set()]
    items = [Received(spool(spool_dir, ds), CTImageStorage, ds.SOPInstanceUID) for ds in datasets]

    def failing(stores: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(index, "journal_commit", failing)
    outcomes = archive.store_many(items)
    assert [o.status for o in outcomes] == [0xA700, 0xA700]
    assert all(o.comment == "the archive index failed" for o in outcomes)
    monkeypatch.undo()
    index.close()
    restarted = open_index(url)
    try:
        report = Archive(root, restarted).reconcile()
        assert len(report.indexed) == 2 and restarted.count() == 2
    finally:
        restarted.close()
