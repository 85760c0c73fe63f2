"""The archive (samples/qrscp.py) with its index against real peers.

DCMTK storescu fills it; DCMTK findscu queries it with each kind of matching (single
value, wildcard, date range, list of UIDs, universal) at each level; DCMTK getscu and
movescu (to DCMTK's storescp and to our storescp.py) retrieve from it; DCMTK findscu -W
queries its worklist. pynetdicom's SCUs do C-STORE, C-FIND, C-GET and C-MOVE, and send
the bad input the archive must answer with the standard's statuses and keep serving:
a level the model does not have, a malformed date range, a C-MOVE to an unknown AE, a
C-GET without the storage SCP role; and SOP class extended negotiation.

What travels unchanged is compared byte for byte after the file meta information.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peers
import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from dicomnet.dimse.part10 import read_part10_header

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
LOOPBACK = peers.LOOPBACK
AE = "ARCHIVE"

pytestmark = pytest.mark.timeout(180)


# -- data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    path: Path
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    sop_uid: str


def write_instance(
    directory: Path,
    patient: tuple[str, str],
    study: tuple[str, str],
    series: tuple[str, str],
) -> Instance:
    """A small CT or MR image (random pixels), Explicit VR Little Endian Part-10."""
    (patient_id, name), (study_uid, date), (series_uid, modality) = patient, study, series
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = name, patient_id
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study_uid, date, "101500"
    ds.AccessionNumber = f"A{date}"
    ds.SeriesInstanceUID, ds.Modality, ds.SeriesNumber = series_uid, modality, 1
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.SamplesPerPixel = 1
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = os.urandom(16 * 16 * 2)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return Instance(path, patient_id, study_uid, series_uid, modality, ds.SOPInstanceUID)


# (patient ID, name, study date, [modality of each series]), two images per series.
PLAN = (
    ("PID1", "DOE^JOHN", "20240105", ["CT", "MR"]),
    ("PID2", "DOE^JANE", "20240210", ["MR"]),
    ("PID3", "SMITH^ANN", "20240315", ["CT"]),
)


def make_instances(directory: Path) -> list[Instance]:
    directory.mkdir()
    instances = []
    for patient_id, name, date, modalities in PLAN:
        study = (generate_uid(), date)
        for modality in modalities:
            series = (generate_uid(), modality)
            for _ in range(2):
                instances.append(write_instance(directory, (patient_id, name), study, series))
    return instances


def write_worklist(directory: Path) -> None:
    """Three worklist items: MR on MR1 on the 1st, CT on CT1 on the 1st, MR on the 2nd."""
    directory.mkdir()
    for number, (modality, date, name) in enumerate(
        [("MR", "20240601", "WL^MR"), ("CT", "20240601", "WL^CT"), ("MR", "20240602", "WL^LATER")]
    ):
        step = Dataset()
        step.Modality = modality
        step.ScheduledStationAETitle = f"{modality}1"
        step.ScheduledProcedureStepStartDate = date
        step.ScheduledProcedureStepStartTime = "090000"
        step.ScheduledPerformingPhysicianName = "HOUSE^GREGORY"
        step.ScheduledProcedureStepID = f"SPS{number}"
        item = Dataset()
        item.SpecificCharacterSet = "ISO_IR 100"
        item.PatientName, item.PatientID = name, f"W{number}"
        item.AccessionNumber = f"WACC{number}"
        item.ScheduledProcedureStepSequence = [step]
        item.file_meta = FileMetaDataset()
        item.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        item.file_meta.MediaStorageSOPClassUID = MODALITY_WORKLIST_FIND
        item.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        item.save_as(directory / f"item{number}.wl", enforce_file_format=True)


def data_sets(directory: Path) -> dict[str, bytes]:
    """SOP Instance UID -> data set bytes (after the meta information) of each file."""
    found = {}
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.endswith((".db", ".db-wal", ".db-shm")):
            header = read_part10_header(path)
            uid = header.sop_instance_uid.rstrip("\x00 ")  # DCMTK pads odd UIDs with NUL
            found[uid] = path.read_bytes()[header.data_offset :]
    return found


def assert_same(directory: Path, expected: list[Instance]) -> None:
    received = data_sets(directory)
    assert sorted(received) == sorted(i.sop_uid for i in expected)
    for instance in expected:
        assert received[instance.sop_uid] == data_sets(instance.path.parent)[instance.sop_uid]


def dcmtk_values(output: str, tag: str) -> list[str]:
    """The values DCMTK's verbose output shows in responses for element ``gggg,eeee``."""
    responses = output.partition("Find Response")[2]  # after the request's own dump
    values = re.findall(rf"\({tag}\) \w\w \[([^\]]*)\]", responses)
    return [v.rstrip("\x00 ") for v in values]  # DCMTK shows a UI's NUL padding


# -- the archive ----------------------------------------------------------------------


@dataclass
class Archive:
    port: int
    server: peers.ServerProcess
    storage: Path
    instances: list[Instance]
    destinations: dict[str, int]


@contextlib.contextmanager
def running_archive(
    storage: Path, *, destinations: dict[str, int] | None = None, extra: tuple[str, ...] = ()
) -> Iterator[tuple[int, peers.ServerProcess]]:
    moves = [
        arg
        for ae, port in (destinations or {}).items()
        for arg in ("--move-destination", f"{ae}={LOOPBACK}:{port}")
    ]
    with peers.sample_server(
        "qrscp", "-v", "-aet", AE, "--storage-dir", str(storage), *moves, *extra
    ) as running:
        yield running


def store_with_our_storescu(port: int, folder: Path) -> None:
    result = peers.run_sample("storescu", "-aec", AE, LOOPBACK, str(port), str(folder))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """One archive for the read-only tests: filled by our storescu, a worklist folder,
    and two move destinations on ports reserved for them (DCMTK's storescp, ours)."""
    root = tmp_path_factory.mktemp("archive")
    instances = make_instances(root / "sent")
    write_worklist(root / "worklist")
    destinations = {"DCMTKSTORE": peers.free_port(), "OURSTORE": peers.free_port()}
    storage = root / "store"
    worklist = ("--worklist-dir", str(root / "worklist"))
    with running_archive(storage, destinations=destinations, extra=worklist) as (port, server):
        store_with_our_storescu(port, root / "sent")
        yield Archive(port, server, storage, instances, destinations)


def studies(archive: Archive, *patient_ids: str) -> set[str]:
    return {i.study_uid for i in archive.instances if i.patient_id in patient_ids}


def of_study(archive: Archive, study_uid: str) -> list[Instance]:
    return [i for i in archive.instances if i.study_uid == study_uid]


# == DCMTK ============================================================================


def dcmtk_find(run_dcmtk: Callable[..., Any], archive: Archive, *args: str) -> str:
    result = run_dcmtk("findscu", "-v", "-aec", AE, *args, LOOPBACK, str(archive.port))
    assert result.returncode == 0, result.stderr
    output: str = result.stdout + result.stderr
    assert "Received Final Find Response (Success)" in output
    return output


@pytest.mark.parametrize(
    ("kind", "keys", "patients"),
    [
        ("single value", ["PatientID=PID2"], ["PID2"]),
        ("wildcard", ["PatientName=DOE*"], ["PID1", "PID2"]),
        ("wildcard ?", ["PatientName=D?E^JAN?"], ["PID2"]),
        ("date range", ["StudyDate=20240201-20240331"], ["PID2", "PID3"]),
        ("open date range", ["StudyDate=-20240131"], ["PID1"]),
        ("universal", ["PatientID"], ["PID1", "PID2", "PID3"]),
    ],
)
def test_dcmtk_findscu_study_level_matching(
    archive: Archive,
    run_dcmtk: Callable[..., Any],
    kind: str,
    keys: list[str],
    patients: list[str],
) -> None:
    args = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID"]
    for key in keys:
        args += ["-k", key]
    output = dcmtk_find(run_dcmtk, archive, *args)
    assert set(dcmtk_values(output, "0020,000d")) == studies(archive, *patients), kind
    assert output.count("(Pending)") == len(patients)  # one answer per study


def test_dcmtk_findscu_uid_list(archive: Archive, run_dcmtk: Callable[..., Any]) -> None:
    wanted = studies(archive, "PID1", "PID3")
    output = dcmtk_find(
        run_dcmtk,
        archive,
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "StudyInstanceUID=" + "\\".join(sorted(wanted)),
        "-k",
        "PatientID",
    )
    assert set(dcmtk_values(output, "0020,000d")) == wanted
    assert sorted(dcmtk_values(output, "0010,0020")) == ["PID1", "PID3"]


def test_dcmtk_findscu_patient_and_series_levels(
    archive: Archive, run_dcmtk: Callable[..., Any]
) -> None:
    patients = dcmtk_find(
        run_dcmtk,
        archive,
        "-P",
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientName=*A*",
        "-k",
        "PatientID",
        "-k",
        "NumberOfPatientRelatedInstances",
    )
    assert sorted(dcmtk_values(patients, "0010,0020")) == ["PID2", "PID3"]
    assert sorted(dcmtk_values(patients, "0020,1204")) == ["2", "2"]
    (study,) = studies(archive, "PID1")
    series = dcmtk_find(
        run_dcmtk,
        archive,
        "-S",
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={study}",
        "-k",
        "SeriesInstanceUID",
        "-k",
        "Modality",
    )
    assert sorted(dcmtk_values(series, "0008,0060")) == ["CT", "MR"]
    assert set(dcmtk_values(series, "0020,000e")) == {
        i.series_uid for i in of_study(archive, study)
    }


def test_dcmtk_getscu_gets_a_study_byte_for_byte(
    archive: Archive, run_dcmtk: Callable[..., Any], tmp_path: Path
) -> None:
    (study,) = studies(archive, "PID2")
    result = run_dcmtk(
        "getscu",
        "-S",
        "-aec",
        AE,
        "-od",
        str(tmp_path),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        LOOPBACK,
        str(archive.port),
    )
    assert result.returncode == 0, result.stderr
    assert_same(tmp_path, of_study(archive, study))


@contextlib.contextmanager
def destination(
    archive: Archive, ae: str, run_dcmtk_tool: Callable[[str], str]
) -> Iterator[peers.ServerProcess]:
    """The move destination ``ae`` on the port the archive knows it by."""
    port = archive.destinations[ae]
    if ae == "DCMTKSTORE":
        argv = [run_dcmtk_tool("storescp"), "-aet", ae, str(port)]
        env = peers.dcmtk_env()
    else:
        argv = peers.sample_command("storescp", "-aet", ae, "-od", ".", str(port))
        env = peers.sample_env()
    with peers.ServerProcess(argv, port, env=env) as server:
        yield server


@pytest.mark.parametrize("ae", ["DCMTKSTORE", "OURSTORE"])
def test_dcmtk_movescu_moves_a_study_byte_for_byte(
    archive: Archive,
    run_dcmtk: Callable[..., Any],
    require_dcmtk: Callable[[str], str],
    ae: str,
) -> None:
    (study,) = studies(archive, "PID3")
    with destination(archive, ae, require_dcmtk) as store:
        result = run_dcmtk(
            "movescu",
            "-v",
            "-S",
            "-aec",
            AE,
            "-aem",
            ae,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study}",
            LOOPBACK,
            str(archive.port),
        )
        assert_same(store.workdir, of_study(archive, study))
    assert result.returncode == 0, result.stderr
    assert "Received Final Move Response (Success)" in result.stdout + result.stderr


def test_dcmtk_findscu_worklist(archive: Archive, run_dcmtk: Callable[..., Any]) -> None:
    output = dcmtk_find(
        run_dcmtk,
        archive,
        "-W",
        "-k",
        "PatientName",
        "-k",
        "ScheduledProcedureStepSequence[0].Modality=MR",
        "-k",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240601-20240601",
        "-k",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        "-k",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
    )
    assert dcmtk_values(output, "0010,0010") == ["WL^MR"]
    assert dcmtk_values(output, "0040,0001") == ["MR1"]
    assert dcmtk_values(output, "0040,0009") == ["SPS0"]


def test_dcmtk_storescu_fills_an_archive_whose_index_survives_a_restart(
    run_dcmtk: Callable[..., Any], tmp_path: Path
) -> None:
    instances = make_instances(tmp_path / "sent")
    storage = tmp_path / "store"
    with running_archive(storage) as (port, _):
        stored = run_dcmtk(
            "storescu", "-aec", AE, LOOPBACK, str(port), *(str(i.path) for i in instances)
        )
        assert stored.returncode == 0, stored.stderr
    assert_same(storage, instances)
    with running_archive(storage) as (port, server):
        result = run_dcmtk(
            "findscu",
            "-v",
            "-S",
            "-aec",
            AE,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID",
            "-k",
            "NumberOfStudyRelatedInstances",
            LOOPBACK,
            str(port),
        )
    output = result.stdout + result.stderr
    assert set(dcmtk_values(output, "0020,000d")) == {i.study_uid for i in instances}
    assert sum(map(int, dcmtk_values(output, "0020,1208"))) == len(instances)


# == pynetdicom =======================================================================


@pytest.fixture
def pynetdicom_ae(require_pynetdicom: Any) -> Iterator[Any]:
    from pynetdicom import AE as PynetdicomAE

    ae = PynetdicomAE(ae_title="PYSCU")
    yield ae
    ae.shutdown()


def query(level: str, **values: object) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in values.items():
        setattr(identifier, keyword, value)
    return identifier


def test_pynetdicom_store_find_get_and_move(
    pynetdicom_ae: Any, require_dcmtk: Callable[[str], str], tmp_path: Path
) -> None:
    from pydicom import dcmread
    from pynetdicom import build_role, evt

    instances = make_instances(tmp_path / "sent")
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0x0000

    ae = pynetdicom_ae
    for sop_class in (STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE):
        ae.add_requested_context(sop_class)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    with (
        peers.dcmtk_scp(require_dcmtk("storescp"), "-aet", "STORE") as (store_port, store),
        running_archive(tmp_path / "store", destinations={"STORE": store_port}) as (port, _),
    ):
        assoc = ae.associate(
            LOOPBACK,
            port,
            ae_title=AE,
            ext_neg=[build_role(CTImageStorage, scu_role=True, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, on_store)],
        )
        assert assoc.is_established
        stored = [assoc.send_c_store(dcmread(i.path)).Status for i in instances]
        found = list(assoc.send_c_find(query("STUDY", PatientID="", StudyDate=""), STUDY_ROOT_FIND))
        (pid3_study,) = {i.study_uid for i in instances if i.patient_id == "PID3"}
        got = list(assoc.send_c_get(query("STUDY", StudyInstanceUID=pid3_study), STUDY_ROOT_GET))
        moved = list(assoc.send_c_move(query("STUDY", PatientID="PID2"), "STORE", STUDY_ROOT_MOVE))
        wrong_level = list(
            assoc.send_c_move(query("PATIENT", PatientID="PID1"), "STORE", STUDY_ROOT_MOVE)
        )
        assoc.release()
        arrived = data_sets(store.workdir)

    assert stored == [0x0000] * len(instances)
    assert [status.Status for status, _ in found] == [0xFF00] * 3 + [0x0000]
    assert sorted(match.PatientID for _, match in found[:-1]) == ["PID1", "PID2", "PID3"]
    assert got[-1][0].Status == 0x0000
    assert sorted(ds.SOPInstanceUID for ds in received) == sorted(
        i.sop_uid for i in instances if i.patient_id == "PID3"
    )
    assert moved[-1][0].Status == 0x0000
    expected = [i for i in instances if i.patient_id == "PID2"]
    assert sorted(arrived) == sorted(i.sop_uid for i in expected)
    for instance in expected:
        assert arrived[instance.sop_uid] == data_sets(instance.path.parent)[instance.sop_uid]
    # PATIENT is no level of Study Root: refused, and nothing more moved
    assert wrong_level[-1][0].Status == 0xA900


def associate(ae: Any, port: int, *contexts: str, **options: Any) -> Any:
    for context in contexts:
        ae.add_requested_context(context)
    assoc = ae.associate(LOOPBACK, port, ae_title=AE, **options)
    assert assoc.is_established
    return assoc


def test_bad_queries_get_failure_statuses_with_comments_and_the_archive_keeps_serving(
    archive: Archive, pynetdicom_ae: Any
) -> None:
    assoc = associate(pynetdicom_ae, archive.port, STUDY_ROOT_FIND)
    bad = {
        "level not in the model": query("PATIENT", PatientID=""),
        "no such level": query("FRAME", PatientID=""),
        "malformed date range": query("STUDY", StudyDate="2024-01-01--"),
        "malformed time range": query("STUDY", StudyTime="10-11-12"),
    }
    answers = {
        name: list(assoc.send_c_find(identifier, STUDY_ROOT_FIND))
        for name, identifier in bad.items()
    }
    good = list(assoc.send_c_find(query("STUDY", PatientID="PID1"), STUDY_ROOT_FIND))
    assoc.release()
    for name, responses in answers.items():
        ((status, identifier),) = responses
        assert status.Status == 0xA900 or 0xC000 <= status.Status <= 0xCFFF, name
        assert status.ErrorComment, name
        assert identifier is None, name
    assert [status.Status for status, _ in good] == [0xFF00, 0x0000]


def test_c_move_to_an_unknown_ae_is_a801_with_a_comment(
    archive: Archive, pynetdicom_ae: Any
) -> None:
    assoc = associate(pynetdicom_ae, archive.port, STUDY_ROOT_MOVE)
    ((status, _),) = list(
        assoc.send_c_move(query("STUDY", PatientID="PID1"), "NOWHERE", STUDY_ROOT_MOVE)
    )
    assoc.release()
    assert status.Status == 0xA801
    assert "NOWHERE" in status.ErrorComment


def test_c_get_without_the_storage_scp_role_fails_each_sub_operation_and_says_why(
    archive: Archive, pynetdicom_ae: Any
) -> None:
    # CT proposed without role selection: the requestor stays SCU only, and MR not at all
    assoc = associate(pynetdicom_ae, archive.port, STUDY_ROOT_GET, CTImageStorage)
    (study,) = studies(archive, "PID1")
    responses = list(assoc.send_c_get(query("STUDY", StudyInstanceUID=study), STUDY_ROOT_GET))
    assoc.release()
    final, identifier = responses[-1]
    assert final.Status == 0xB000
    assert (final.NumberOfFailedSuboperations, final.NumberOfCompletedSuboperations) == (4, 0)
    assert sorted(identifier.FailedSOPInstanceUIDList) == sorted(
        i.sop_uid for i in of_study(archive, study)
    )
    assert "SCP role" in final.ErrorComment


def test_extended_negotiation_for_relational_queries_and_combined_datetime(
    archive: Archive, pynetdicom_ae: Any
) -> None:
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    asked = SOPClassExtendedNegotiation()
    asked.sop_class_uid = STUDY_ROOT_FIND
    asked.service_class_application_information = b"\x01\x01\x01"  # + fuzzy PN matching
    assoc = associate(pynetdicom_ae, archive.port, STUDY_ROOT_FIND, ext_neg=[asked])
    reply = assoc.acceptor.sop_class_extended.get(STUDY_ROOT_FIND)
    # relational: a SERIES query without the unique key of the study above it
    series = list(
        assoc.send_c_find(query("SERIES", Modality="MR", SeriesInstanceUID=""), STUDY_ROOT_FIND)
    )
    assoc.release()
    assert reply == b"\x01\x01\x00"  # fuzzy semantic matching is not offered
    assert series[-1][0].Status == 0x0000
    assert {match.SeriesInstanceUID for _, match in series[:-1]} == {
        i.series_uid for i in archive.instances if i.modality == "MR"
    }


PATIENT9 = ("PID9", "BIG^FILES")


def write_big_instance(directory: Path, study: str, series: str, megabytes: int) -> Instance:
    """An image of ``megabytes`` MiB of pixel data, in ``study``."""
    instance = write_instance(directory, ("PID9", "BIG^FILES"), (study, "20240101"), (series, "CT"))
    ds = dcmread(instance.path)
    side = 1024
    ds.Rows, ds.Columns = side, side * megabytes // 2
    ds.PixelData = os.urandom(side * side * megabytes // 2 * 2)
    ds.save_as(instance.path, enforce_file_format=True)
    return instance


def test_c_move_goes_on_on_a_new_sub_association_after_a_file_breaks_mid_send(
    pynetdicom_scp: Callable[..., Any], tmp_path: Path
) -> None:
    """The archived file of one big instance is cut short while the archive sends it:
    that sub-operation fails (the sub-association is aborted, nothing may follow half a
    message) and every other one still goes, on a new sub-association."""
    from pynetdicom import evt

    study = generate_uid()
    sent = tmp_path / "sent"
    sent.mkdir()
    series = generate_uid()
    big = [write_big_instance(sent, study, series, 32) for _ in range(2)]
    small = [
        write_instance(sent, ("PID9", "BIG^FILES"), (study, "20240101"), (series, "CT"))
        for _ in range(2)
    ]
    storage = tmp_path / "store"
    cut: list[str] = []
    big_uids = {i.sop_uid.encode(): i.sop_uid for i in big}
    archived: dict[str, Path] = {}

    def on_data(event: Any) -> None:
        # The C-STORE command names its instance: cut the first big one short as soon as
        # its command arrives (the archive cannot have read far into its data set yet).
        uid = next((uid for encoded, uid in big_uids.items() if encoded in event.data), None)
        if uid is not None and not cut:
            path = archived[uid]
            os.truncate(path, read_part10_header(path).data_offset + (16 << 20))
            cut.append(uid)

    stored: list[str] = []

    def on_store(event: Any) -> int:
        stored.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    handlers = {evt.EVT_C_STORE: on_store, evt.EVT_DATA_RECV: on_data}
    # Explicit VR LE only, the file's own: streamed from disk as it goes, not converted
    destination = pynetdicom_scp(
        [CTImageStorage], handlers, ae_title="DEST", transfer_syntaxes=[ExplicitVRLittleEndian]
    )
    with destination as (dest_port, log):
        with running_archive(storage, destinations={"DEST": dest_port}) as (port, _):
            store_with_our_storescu(port, sent)
            archived.update(
                (read_part10_header(p).sop_instance_uid, p)
                for p in storage.rglob("*")
                if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm")
            )
            ae_port = port
            from pynetdicom import AE as PynetdicomAE

            scu = PynetdicomAE(ae_title="PYSCU")
            scu.add_requested_context(STUDY_ROOT_MOVE)
            try:
                assoc = scu.associate(LOOPBACK, ae_port, ae_title=AE)
                responses = list(
                    assoc.send_c_move(
                        query("STUDY", StudyInstanceUID=study), "DEST", STUDY_ROOT_MOVE
                    )
                )
                assoc.release()
            finally:
                scu.shutdown()
        accepted = log.names.count("EVT_ACCEPTED")
    final, identifier = responses[-1]
    assert len(cut) == 1
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (3, 1)
    assert identifier.FailedSOPInstanceUIDList == cut[0]
    assert final.ErrorComment == "an archived file could not be read whole"  # not its path
    assert sorted(stored) == sorted(i.sop_uid for i in [*big, *small] if i.sop_uid not in cut)
    assert accepted == 2  # the sub-operations after the broken one went on a new one


STALLED = 8  # more than the engine's pool of worker threads on a small machine


def test_stalled_c_get_requestors_do_not_stall_other_clients(
    archive: Archive, pynetdicom_ae: Any, run_dcmtk: Callable[..., Any]
) -> None:
    """Requestors that stop answering their C-GET sub-operations hold their own requests
    only: meanwhile another client queries and stores."""
    import threading

    from pynetdicom import build_role, evt

    stalled, release_stores = threading.Semaphore(0), threading.Event()

    def on_store(event: Any) -> int:
        stalled.release()
        release_stores.wait(60)
        return 0x0000

    ae = pynetdicom_ae
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    roles = [build_role(c, scu_role=True, scp_role=True) for c in (CTImageStorage, MRImageStorage)]
    (study,) = studies(archive, "PID1")
    results: list[list[Any]] = []
    getters = []
    associations = []
    try:
        for _ in range(STALLED):
            assoc = ae.associate(
                LOOPBACK,
                archive.port,
                ae_title=AE,
                ext_neg=roles,
                evt_handlers=[(evt.EVT_C_STORE, on_store)],
            )
            assert assoc.is_established
            associations.append(assoc)
            responses: list[Any] = []
            results.append(responses)
            getter = threading.Thread(
                target=lambda a=assoc, r=responses: r.extend(
                    a.send_c_get(query("STUDY", StudyInstanceUID=study), STUDY_ROOT_GET)
                )
            )
            getter.start()
            getters.append(getter)
        for _ in range(STALLED):
            # every one of them is stuck in a C-STORE at once (well before the archive's
            # 30 s DIMSE timeout would free some)
            assert stalled.acquire(timeout=10)
        output = dcmtk_find(
            run_dcmtk, archive, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=PID2"
        )
        assert dcmtk_values(output, "0010,0020") == ["PID2"]
        again = of_study(archive, study)[0].path  # already archived: a warning, not stored
        stored = run_dcmtk("storescu", "-v", "-aec", AE, LOOPBACK, str(archive.port), str(again))
        assert "Received Store Response (Warning: ElementsDiscarded)" in stored.stderr
    finally:
        release_stores.set()
        for getter in getters:
            getter.join(60)
        for assoc in associations:
            assoc.release()
    assert [responses[-1][0].Status for responses in results] == [0x0000] * STALLED


def test_pynetdicom_worklist_query_and_a_malformed_range(
    archive: Archive, pynetdicom_ae: Any
) -> None:
    assoc = associate(pynetdicom_ae, archive.port, MODALITY_WORKLIST_FIND)

    def worklist_query(date: str) -> list[Any]:
        step = Dataset()
        step.Modality = "MR"
        step.ScheduledProcedureStepStartDate = date
        step.ScheduledStationAETitle = ""
        identifier = Dataset()
        identifier.PatientName = ""
        identifier.ScheduledProcedureStepSequence = [step]
        return list(assoc.send_c_find(identifier, MODALITY_WORKLIST_FIND))

    both_days = worklist_query("20240601-20240602")
    malformed = worklist_query("2024-06-01")
    after = worklist_query("20240602")
    assoc.release()
    assert sorted(str(match.PatientName) for _, match in both_days[:-1]) == ["WL^LATER", "WL^MR"]
    assert both_days[-1][0].Status == 0x0000
    ((status, identifier),) = malformed
    assert status.Status == 0xA900 and "2024-06-01" in status.ErrorComment
    assert [str(match.PatientName) for _, match in after[:-1]] == ["WL^LATER"]


@pytest.mark.parametrize(
    ("policy", "second_status"),
    [("keep", 0xB006), ("refuse", 0x0111), ("replace", 0x0000)],
)
def test_a_duplicate_sop_instance_follows_the_policy(
    pynetdicom_ae: Any, tmp_path: Path, policy: str, second_status: int
) -> None:
    (first, *_) = make_instances(tmp_path / "sent")
    changed = dcmread(first.path)
    changed.AccessionNumber = "CHANGED"
    storage = tmp_path / "store"
    with running_archive(storage, extra=("--duplicates", policy)) as (port, _):
        assoc = associate(pynetdicom_ae, port, STUDY_ROOT_FIND, CTImageStorage, MRImageStorage)
        statuses = [assoc.send_c_store(dcmread(first.path)), assoc.send_c_store(changed)]
        identifier = query("STUDY", StudyInstanceUID=first.study_uid, AccessionNumber="")
        (match,) = [m for _, m in assoc.send_c_find(identifier, STUDY_ROOT_FIND) if m]
        assoc.release()
    assert [s.Status for s in statuses] == [0x0000, second_status]
    if second_status:
        assert statuses[1].ErrorComment
    kept = dcmread(next(p for p in storage.rglob("*") if first.sop_uid in p.name))
    assert kept.AccessionNumber == ("CHANGED" if policy == "replace" else first_accession(first))
    assert match.AccessionNumber == kept.AccessionNumber


def first_accession(instance: Instance) -> str:
    return str(dcmread(instance.path, stop_before_pixels=True).AccessionNumber)


def test_two_archives_share_one_postgresql_index(
    postgres_cluster: Any, run_dcmtk: Callable[..., Any], tmp_path: Path
) -> None:
    """Two archive processes on one PostgreSQL database: each stores what it receives in
    its own folder, and each answers queries and retrieves for everything."""
    instances = make_instances(tmp_path / "sent")
    halves = {"a": tmp_path / "half-a", "b": tmp_path / "half-b"}
    for number, instance in enumerate(instances):
        target = halves["a" if number % 2 else "b"]
        target.mkdir(exist_ok=True)
        instance.path.rename(target / instance.path.name)
    instances = [
        Instance(halves["a" if n % 2 else "b"] / i.path.name, *dataclasses.astuple(i)[1:])
        for n, i in enumerate(instances)
    ]
    database = ("--database", postgres_cluster.new_database())
    with (
        running_archive(tmp_path / "store-a", extra=database) as (port_a, _),
        running_archive(tmp_path / "store-b", extra=database) as (port_b, _),
    ):
        store_with_our_storescu(port_a, halves["a"])
        store_with_our_storescu(port_b, halves["b"])
        outputs = [
            run_dcmtk(
                "findscu",
                "-v",
                "-S",
                "-aec",
                AE,
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                "StudyInstanceUID",
                "-k",
                "NumberOfStudyRelatedInstances",
                LOOPBACK,
                str(port),
            )
            for port in (port_a, port_b)
        ]
        got = tmp_path / "got"
        got.mkdir()
        (study,) = {i.study_uid for i in instances if i.patient_id == "PID1"}
        retrieved = run_dcmtk(
            "getscu",
            "-S",
            "-aec",
            AE,
            "-od",
            str(got),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study}",
            LOOPBACK,
            str(port_b),
        )
    for result in outputs:
        output = result.stdout + result.stderr
        assert set(dcmtk_values(output, "0020,000d")) == {i.study_uid for i in instances}
        assert sum(map(int, dcmtk_values(output, "0020,1208"))) == len(instances)
    assert retrieved.returncode == 0, retrieved.stderr
    assert_same(got, [i for i in instances if i.study_uid == study])  # from both folders


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_demo_passes_every_check_and_leaves_no_process(
    backend: str, request: pytest.FixtureRequest, require_dcmtk: Callable[[str], str]
) -> None:
    require_dcmtk("storescu")  # the demo runs its DCMTK steps when DCMTK is there
    args = []
    if backend == "postgresql":
        args = ["--database", request.getfixturevalue("postgres_cluster").new_database()]
    result = peers.run_client(
        [sys.executable, str(peers.SAMPLES_DIR / "demo.py"), *args], env=peers.sample_env()
    )
    assert result.returncode == 0, result.stdout
    assert "every check passed" in result.stdout
    assert "skipped" not in result.stdout.partition("\nreport\n")[2]
    assert "FAILED" not in result.stdout
    workdir = re.search(r"--storage-dir (\S+)/archive", result.stdout)
    assert workdir is not None
    leftovers = subprocess.run(
        ["pgrep", "-f", re.escape(workdir[1])], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == "", "the demo left servers running"


@pytest.mark.parametrize(("negotiated", "patients"), [(False, []), (True, ["PID2"])])
def test_combined_date_time_matching_when_negotiated(
    archive: Archive, pynetdicom_ae: Any, negotiated: bool, patients: list[str]
) -> None:
    """StudyDate 20240105-20240210 with StudyTime 120000-: separately no study is after
    noon; as one date-time range (PS3.4 C.2.2.2.5.1) from 5 January noon to the end of 10
    February, PID2's study of 10 February at 10:15 matches (PID1's of 5 January at 10:15
    does not)."""
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    asked = SOPClassExtendedNegotiation()
    asked.sop_class_uid = STUDY_ROOT_FIND
    asked.service_class_application_information = b"\x00\x01"
    options = {"ext_neg": [asked]} if negotiated else {}
    assoc = associate(pynetdicom_ae, archive.port, STUDY_ROOT_FIND, **options)
    identifier = query("STUDY", StudyDate="20240105-20240210", StudyTime="120000-", PatientID="")
    responses = list(assoc.send_c_find(identifier, STUDY_ROOT_FIND))
    assoc.release()
    assert responses[-1][0].Status == 0x0000
    assert [match.PatientID for _, match in responses[:-1]] == patients


@pytest.mark.parametrize("negotiated", [False, True])
def test_relational_retrieval_when_negotiated(
    archive: Archive, pynetdicom_ae: Any, negotiated: bool
) -> None:
    """A SERIES-level C-GET naming only the series: hierarchical retrieval needs the
    study's unique key too (A900, saying so); relational retrieval does not."""
    from pynetdicom import build_role, evt
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    asked = SOPClassExtendedNegotiation()
    asked.sop_class_uid = STUDY_ROOT_GET
    asked.service_class_application_information = b"\x01"
    roles = [build_role(c, scp_role=True) for c in (CTImageStorage, MRImageStorage)]
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    assoc = associate(
        pynetdicom_ae,
        archive.port,
        STUDY_ROOT_GET,
        CTImageStorage,
        MRImageStorage,
        ext_neg=[*roles, asked] if negotiated else roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    series = next(i.series_uid for i in archive.instances if i.modality == "MR")
    responses = list(assoc.send_c_get(query("SERIES", SeriesInstanceUID=series), STUDY_ROOT_GET))
    assoc.release()
    final = responses[-1][0]
    if negotiated:
        assert final.Status == 0x0000
        assert sorted(received) == sorted(
            i.sop_uid for i in archive.instances if i.series_uid == series
        )
    else:
        assert final.Status == 0xA900 and "StudyInstanceUID" in final.ErrorComment
        assert received == []


@pytest.mark.parametrize(
    ("model", "keys"),
    [
        ("-S", ["QueryRetrieveLevel=PATIENT", "PatientID"]),  # no such level in Study Root
        ("-S", ["QueryRetrieveLevel=STUDY", "StudyDate=2024-01-01"]),  # malformed range
        ("-P", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID"]),  # no PatientID above
    ],
)
def test_dcmtk_findscu_bad_queries_get_a900_with_a_comment(
    archive: Archive, run_dcmtk: Callable[..., Any], model: str, keys: list[str]
) -> None:
    args = [arg for key in keys for arg in ("-k", key)]
    result = run_dcmtk("findscu", "-d", model, "-aec", AE, *args, LOOPBACK, str(archive.port))
    output = result.stdout + result.stderr
    assert re.search(r"DIMSE Status\s*: 0xa900", output)  # the final response (-d)
    assert re.search(r"\(0000,0902\) LO \[[^\]]+\]", output)  # with an Error Comment
    dcmtk_find(run_dcmtk, archive, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID")


def test_our_storescu_keeps_a_window_of_stores_outstanding_where_the_peer_accepts_one(
    dcmtk_scp: Callable[..., Any], tmp_path: Path
) -> None:
    """qrscp.py accepts storescu.py's asynchronous operations window (16 outstanding),
    so it stores one instance while the next ones arrive, in batches; DCMTK's storescp
    accepts none, and gets them one at a time. Both keep every instance as sent."""
    instances = make_instances(tmp_path / "sent")
    storage = tmp_path / "store"
    with running_archive(storage) as (port, _):
        result = peers.run_sample(
            "storescu", "-d", "-aec", AE, LOOPBACK, str(port), str(tmp_path / "sent")
        )
        assert result.returncode == 0, result.stderr
    accept = result.stderr[result.stderr.index("A-ASSOCIATE-AC") :]
    assert "asynchronous operations window: invoked 16, performed 1" in accept
    assert_same(storage, instances)
    received = tmp_path / "dcmtk"
    received.mkdir()
    with dcmtk_scp("storescp", "-od", str(received)) as (port, _):
        result = peers.run_sample(
            "storescu", "-d", "-aec", "ANY-SCP", LOOPBACK, str(port), str(tmp_path / "sent")
        )
        assert result.returncode == 0, result.stderr
    accept = result.stderr[result.stderr.index("A-ASSOCIATE-AC") :]
    assert "asynchronous operations window" not in accept
    assert_same(received, instances)
