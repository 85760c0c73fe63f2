"""Query/retrieve interop: C-FIND, C-GET, C-MOVE and C-CANCEL in both roles, real peers.

Our SCP role: DCMTK findscu/getscu/movescu and pynetdicom's SCU against samples/qrscp.py.
Our SCU role: samples/findscu.py, getscu.py and movescu.py against DCMTK dcmqrscp and a
pynetdicom Q/R SCP. Move destinations are DCMTK storescp (or movescu's own receiver).

Files that travel unchanged (same transfer syntax at both ends) are compared byte for
byte after their file meta information; files a peer re-encodes are compared as data sets.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from polling import wait_until
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from dicomnet import read_part10_header

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
LOOPBACK = "127.0.0.1"
QRSCP_AE = "QRSCP"

pytestmark = pytest.mark.timeout(120)


# -- test data -----------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    path: Path
    patient_id: str
    patient_name: str
    study_uid: str
    sop_uid: str


def write_ct(
    directory: Path,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    series_uid: str,
    study_date: str,
    *,
    pixels: bool = True,
) -> Instance:
    """A small CT image (random pixels) as an Explicit VR Little Endian Part-10 file."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.Modality = "CT"
    ds.AccessionNumber = f"A{patient_id}"
    if pixels:
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
    return Instance(path, patient_id, patient_name, study_uid, ds.SOPInstanceUID)


# Three patients, one study each (dates Jan/Feb/Mar 2024), two images per study.
PATIENTS = (
    ("PID1", "DOE^JOHN", "20240105"),
    ("PID2", "DOE^JANE", "20240210"),
    ("PID3", "SMITH^ANN", "20240315"),
)


@pytest.fixture
def archive(tmp_path: Path) -> list[Instance]:
    directory = tmp_path / "archive"
    directory.mkdir()
    instances = []
    for patient_id, name, date in PATIENTS:
        study_uid, series_uid = generate_uid(), generate_uid()
        for _ in range(2):
            instances.append(write_ct(directory, patient_id, name, study_uid, series_uid, date))
    return instances


@pytest.fixture
def big_archive(tmp_path: Path) -> list[Instance]:
    """One study of 1000 header-only instances: enough matches to cancel in the middle."""
    directory = tmp_path / "big-archive"
    directory.mkdir()
    study_uid, series_uid = generate_uid(), generate_uid()
    return [
        write_ct(directory, "PID9", "MANY^MATCHES", study_uid, series_uid, "20240101", pixels=False)
        for _ in range(1000)
    ]


@dataclass(frozen=True)
class ReceivedFile:
    """A received Part-10 file, read at once (a server's directory goes when it stops)."""

    content: bytes
    data_offset: int

    @property
    def data_set(self) -> bytes:
        """The data set, after the meta information (which each writer makes its own)."""
        return self.content[self.data_offset :]


def read_received(path: Path) -> ReceivedFile:
    return ReceivedFile(path.read_bytes(), read_part10_header(path).data_offset)


def received_by_uid(directory: Path) -> dict[str, ReceivedFile]:
    return {
        read_part10_header(path).sop_instance_uid: read_received(path)
        for path in directory.iterdir()
        if path.is_file()
    }


def assert_same_files(received: dict[str, ReceivedFile], expected: list[Instance]) -> None:
    assert sorted(received) == sorted(i.sop_uid for i in expected)
    for instance in expected:
        assert received[instance.sop_uid].data_set == read_received(instance.path).data_set


def assert_same_data_sets(received: dict[str, ReceivedFile], expected: list[Instance]) -> None:
    assert sorted(received) == sorted(i.sop_uid for i in expected)
    for instance in expected:
        assert dcmread(BytesIO(received[instance.sop_uid].content)) == dcmread(instance.path)


def of_patient(instances: list[Instance], patient_id: str) -> list[Instance]:
    return [i for i in instances if i.patient_id == patient_id]


def dcmtk_values(output: str, tag: str) -> set[str]:
    """The values DCMTK's verbose output shows in responses for element ``gggg,eeee``."""
    responses = output.partition("Find Response")[2]  # after the request's own dump
    return {v.strip() for v in re.findall(rf"\({tag}\) \w\w \[([^\]]*)\]", responses)}


def match_blocks(stdout: str) -> list[str]:
    """Our findscu's output, one text block per match."""
    return re.split(r"^Match \d+\n", stdout, flags=re.MULTILINE)[1:]


# -- peers ---------------------------------------------------------------------------


@pytest.fixture
def qrscp(sample_server: Callable[..., Any]) -> Callable[..., Any]:
    """``with qrscp(archive_dir, "STORE=127.0.0.1:port", ...) as port:`` our Q/R SCP."""

    @contextlib.contextmanager
    def start(storage: Path, *destinations: str) -> Iterator[int]:
        moves = [arg for dest in destinations for arg in ("--move-destination", dest)]
        # --rescan: the tests fill the storage folder with files, not through C-STORE
        args = ("-aet", QRSCP_AE, "--storage-dir", str(storage), "--rescan", *moves)
        with sample_server("qrscp", *args) as (
            port,
            _,
        ):
            yield port

    return start


@pytest.fixture
def dcmqrscp(
    dcmtk_scp: Callable[..., Any], run_dcmtk: Callable[..., Any], tmp_path: Path
) -> Callable[..., Any]:
    """``with dcmqrscp(instances, {"STORE": port}) as port:`` DCMTK's archive, filled
    with copies of ``instances`` (registered with dcmqridx); AE title DCMQRSCP."""

    @contextlib.contextmanager
    def start(instances: list[Instance], destinations: dict[str, int]) -> Iterator[int]:
        database = tmp_path / "dcmqrscp-db"
        database.mkdir()
        copies = [shutil.copy(i.path, database) for i in instances]
        indexed = run_dcmtk("dcmqridx", str(database), *map(str, copies))
        assert indexed.returncode == 0, indexed.stderr
        hosts = "\n".join(
            f"dest{n} = ({ae}, {LOOPBACK}, {port})"
            for n, (ae, port) in enumerate(destinations.items())
        )
        config = tmp_path / "dcmqrscp.cfg"
        config.write_text(
            "NetworkTCPPort = 104\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
            f"HostTable BEGIN\n{hosts}\nHostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\nDCMQRSCP {database} RW (200, 1024mb) ANY\nAETable END\n"
        )
        with dcmtk_scp("dcmqrscp", "-c", str(config)) as (port, _):
            yield port

    return start


@pytest.fixture
def pynetdicom_ae() -> Iterator[Any]:
    """A pynetdicom SCU application entity, shut down after the test."""
    from pynetdicom import AE

    ae = AE(ae_title="PYSCU")
    yield ae
    ae.shutdown()


def study_query(**values: str) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    for keyword, value in values.items():
        setattr(identifier, keyword, value)
    return identifier


# == our SCP role: qrscp.py with DCMTK and pynetdicom SCUs ===========================


def test_dcmtk_findscu_patient_and_study_root_against_qrscp(
    qrscp: Callable[..., Any], run_dcmtk: Callable[..., Any], archive: list[Instance]
) -> None:
    with qrscp(archive[0].path.parent) as port:
        patients = run_dcmtk(
            "findscu",
            "-v",
            "-P",
            "-aec",
            QRSCP_AE,
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            "PatientName=DOE*",
            "-k",
            "PatientID",
            LOOPBACK,
            str(port),
        )
        studies = run_dcmtk(
            "findscu",
            "-v",
            "-S",
            "-aec",
            QRSCP_AE,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyDate=20240201-",
            "-k",
            "PatientName",
            "-k",
            "StudyInstanceUID",
            "-k",
            "NumberOfStudyRelatedInstances",
            LOOPBACK,
            str(port),
        )
    assert patients.returncode == 0, patients.stderr
    output = patients.stdout + patients.stderr
    assert output.count("(Pending)") == 2
    assert dcmtk_values(output, "0010,0010") == {"DOE^JOHN", "DOE^JANE"}
    assert "Received Final Find Response (Success)" in output

    assert studies.returncode == 0, studies.stderr
    output = studies.stdout + studies.stderr
    assert output.count("(Pending)") == 2
    assert dcmtk_values(output, "0010,0010") == {"DOE^JANE", "SMITH^ANN"}
    assert output.count("(0020,1208) IS [2 ]") == 2  # computed over each study's instances
    for instance in archive[2:]:
        assert instance.study_uid in output


def test_dcmtk_getscu_against_qrscp_gets_byte_identical_files(
    qrscp: Callable[..., Any],
    run_dcmtk: Callable[..., Any],
    archive: list[Instance],
    tmp_path: Path,
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    with qrscp(archive[0].path.parent) as port:
        result = run_dcmtk(
            "getscu",
            "-S",
            "-aec",
            QRSCP_AE,
            "-od",
            str(received),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PID2",
            LOOPBACK,
            str(port),
        )
    assert result.returncode == 0, result.stderr
    assert_same_files(received_by_uid(received), of_patient(archive, "PID2"))


def test_dcmtk_movescu_against_qrscp_to_dcmtk_storescp(
    qrscp: Callable[..., Any],
    dcmtk_scp: Callable[..., Any],
    run_dcmtk: Callable[..., Any],
    archive: list[Instance],
) -> None:
    with (
        dcmtk_scp("storescp", "-aet", "STORE") as (store_port, store),
        qrscp(archive[0].path.parent, f"STORE={LOOPBACK}:{store_port}") as port,
    ):
        result = run_dcmtk(
            "movescu",
            "-v",
            "-S",
            "-aec",
            QRSCP_AE,
            "-aem",
            "STORE",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PID1",
            LOOPBACK,
            str(port),
        )
        arrived = received_by_uid(store.workdir)
        assert_same_files(arrived, of_patient(archive, "PID1"))
    assert result.returncode == 0, result.stderr
    assert "Received Final Move Response (Success)" in result.stdout + result.stderr


def test_dcmtk_movescu_with_its_own_receiver_against_qrscp(
    qrscp: Callable[..., Any],
    run_dcmtk: Callable[..., Any],
    archive: list[Instance],
    tmp_path: Path,
    closed_port: int,
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    with qrscp(archive[0].path.parent, f"MOVESCU={LOOPBACK}:{closed_port}") as port:
        result = run_dcmtk(
            "movescu",
            "-S",
            "-aet",
            "MOVESCU",
            "-aec",
            QRSCP_AE,
            "--port",
            str(closed_port),
            "-od",
            str(received),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientName=SMITH*",
            LOOPBACK,
            str(port),
        )
    assert result.returncode == 0, result.stderr
    assert_same_files(received_by_uid(received), of_patient(archive, "PID3"))


def test_dcmtk_movescu_to_an_unknown_destination_gets_a801(
    qrscp: Callable[..., Any],
    run_dcmtk: Callable[..., Any],
    archive: list[Instance],
) -> None:
    with qrscp(archive[0].path.parent) as port:
        result = run_dcmtk(
            "movescu",
            "-v",
            "-S",
            "-aec",
            QRSCP_AE,
            "-aem",
            "NOWHERE",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PID1",
            LOOPBACK,
            str(port),
        )
    assert (
        "Received Final Move Response (Refused: MoveDestinationUnknown)"
        in result.stdout + result.stderr
    )


def test_pynetdicom_find_get_and_move_against_qrscp(
    qrscp: Callable[..., Any],
    dcmtk_scp: Callable[..., Any],
    archive: list[Instance],
    pynetdicom_ae: Any,
) -> None:
    from pynetdicom import build_role, evt

    stored: list[Dataset] = []

    def on_store(event: Any) -> int:
        stored.append(event.dataset)
        return 0x0000

    ae = pynetdicom_ae
    for sop_class in (STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE, CTImageStorage):
        ae.add_requested_context(sop_class)
    with (
        dcmtk_scp("storescp", "-aet", "STORE") as (store_port, store),
        qrscp(archive[0].path.parent, f"STORE={LOOPBACK}:{store_port}") as port,
    ):
        assoc = ae.associate(
            LOOPBACK,
            port,
            ae_title=QRSCP_AE,
            ext_neg=[build_role(CTImageStorage, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, on_store)],
        )
        assert assoc.is_established
        found = list(
            assoc.send_c_find(study_query(PatientName="DOE^J?HN", PatientID=""), STUDY_ROOT_FIND)
        )
        got = list(assoc.send_c_get(study_query(PatientID="PID2"), STUDY_ROOT_GET))
        moved = list(assoc.send_c_move(study_query(PatientID="PID3"), "STORE", STUDY_ROOT_MOVE))
        patient_level = study_query()
        patient_level.QueryRetrieveLevel = "PATIENT"  # no such level in Study Root
        refused = list(assoc.send_c_find(patient_level, STUDY_ROOT_FIND))
        assoc.release()
        arrived = received_by_uid(store.workdir)

    statuses = [status.Status for status, _ in found]
    assert statuses == [0xFF00, 0x0000]
    match = found[0][1]
    assert (match.PatientID, match.QueryRetrieveLevel, match.RetrieveAETitle) == (
        "PID1",
        "STUDY",
        QRSCP_AE,
    )
    assert got[-1][0].Status == 0x0000 and got[-1][0].NumberOfCompletedSuboperations == 2
    assert sorted(ds.SOPInstanceUID for ds in stored) == sorted(
        i.sop_uid for i in of_patient(archive, "PID2")
    )
    assert moved[-1][0].Status == 0x0000 and moved[-1][0].NumberOfCompletedSuboperations == 2
    assert_same_files(arrived, of_patient(archive, "PID3"))
    ((status, identifier),) = refused
    assert status.Status == 0xA900 and identifier is None
    assert "PATIENT" in status.ErrorComment


def test_qrscp_reports_c_get_sub_operations_failed_without_the_scp_role(
    qrscp: Callable[..., Any],
    archive: list[Instance],
    pynetdicom_ae: Any,
) -> None:
    ae = pynetdicom_ae
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CTImageStorage)  # no role selection: we stay SCU only
    with qrscp(archive[0].path.parent) as port:
        assoc = ae.associate(LOOPBACK, port, ae_title=QRSCP_AE)
        responses = list(assoc.send_c_get(study_query(PatientID="PID1"), STUDY_ROOT_GET))
        assoc.release()
    final, identifier = responses[-1]
    assert final.Status == 0xB000
    assert (final.NumberOfFailedSuboperations, final.NumberOfCompletedSuboperations) == (2, 0)
    assert sorted(identifier.FailedSOPInstanceUIDList) == sorted(
        i.sop_uid for i in of_patient(archive, "PID1")
    )


def test_pynetdicom_cancels_a_c_find_with_many_matches_on_qrscp(
    qrscp: Callable[..., Any],
    big_archive: list[Instance],
    pynetdicom_ae: Any,
) -> None:
    ae = pynetdicom_ae
    ae.add_requested_context(STUDY_ROOT_FIND)
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = ""
    above = dcmread(big_archive[0].path, stop_before_pixels=True)  # a hierarchical query
    query.StudyInstanceUID, query.SeriesInstanceUID = (
        above.StudyInstanceUID,
        above.SeriesInstanceUID,
    )
    with qrscp(big_archive[0].path.parent) as port:
        assoc = ae.associate(LOOPBACK, port, ae_title=QRSCP_AE)
        statuses = []
        for status, _ in assoc.send_c_find(query, STUDY_ROOT_FIND, msg_id=7):
            statuses.append(status.Status)
            if len(statuses) == 3:
                assoc.send_c_cancel(7, query_model=STUDY_ROOT_FIND)
        assoc.release()
    assert statuses[-1] == 0xFE00
    assert 3 <= statuses.count(0xFF00) < len(big_archive)


def test_pynetdicom_cancels_a_c_get_on_qrscp(
    qrscp: Callable[..., Any],
    tmp_path: Path,
    pynetdicom_ae: Any,
) -> None:
    from pynetdicom import build_role, evt

    directory = tmp_path / "ten"
    directory.mkdir()
    study_uid, series_uid = generate_uid(), generate_uid()
    for _ in range(10):
        write_ct(directory, "PID5", "TEN^IMAGES", study_uid, series_uid, "20240101")
    ae = pynetdicom_ae
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CTImageStorage)
    with qrscp(directory) as port:
        assoc = ae.associate(
            LOOPBACK,
            port,
            ae_title=QRSCP_AE,
            ext_neg=[build_role(CTImageStorage, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)],
        )
        responses = []
        for status, _ in assoc.send_c_get(
            study_query(StudyInstanceUID=study_uid), STUDY_ROOT_GET, msg_id=9
        ):
            responses.append(status)
            if len(responses) == 1:
                assoc.send_c_cancel(9, query_model=STUDY_ROOT_GET)
        assoc.release()
    final = responses[-1]
    assert final.Status == 0xFE00
    assert final.NumberOfRemainingSuboperations > 0
    assert final.NumberOfCompletedSuboperations + final.NumberOfRemainingSuboperations == 10


# == our SCU role: findscu/getscu/movescu.py with dcmqrscp and pynetdicom ============


def test_findscu_against_dcmqrscp_patient_and_study_root(
    dcmqrscp: Callable[..., Any], run_sample: Callable[..., Any], archive: list[Instance]
) -> None:
    with dcmqrscp(archive, {}) as port:
        patients = run_sample(
            "findscu",
            "-P",
            "-aec",
            "DCMQRSCP",
            "-k",
            "PatientName=DOE*",
            "-k",
            "(0010,0020)",
            LOOPBACK,
            str(port),
        )
        studies = run_sample(
            "findscu",
            "-S",
            "-aec",
            "DCMQRSCP",
            "-k",
            "0010,0020=PID3",
            "-k",
            "StudyInstanceUID",
            "-k",
            "StudyDate",
            LOOPBACK,
            str(port),
        )
    assert patients.returncode == 0, patients.stderr
    blocks = match_blocks(patients.stdout)
    assert sorted(re.findall(r"PatientID \(0010,0020\) (\S+)", patients.stdout)) == [
        "PID1",
        "PID2",
    ]
    assert len(blocks) == 2
    assert all("QueryRetrieveLevel (0008,0052) PATIENT" in b for b in blocks)
    assert "final status 0x0000" in patients.stdout

    assert studies.returncode == 0, studies.stderr
    (block,) = match_blocks(studies.stdout)
    assert f"StudyInstanceUID (0020,000D) {archive[4].study_uid}" in block
    assert "StudyDate (0008,0020) 20240315" in block


def test_getscu_against_dcmqrscp_receives_byte_identical_files(
    dcmqrscp: Callable[..., Any],
    run_sample: Callable[..., Any],
    archive: list[Instance],
    tmp_path: Path,
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    with dcmqrscp(archive, {}) as port:
        result = run_sample(
            "getscu",
            "-S",
            "-aec",
            "DCMQRSCP",
            "-od",
            str(received),
            "-k",
            "PatientID=PID1",
            LOOPBACK,
            str(port),
        )
    assert result.returncode == 0, result.stderr
    assert "completed 2, failed 0, warning 0" in result.stdout
    assert_same_files(received_by_uid(received), of_patient(archive, "PID1"))
    assert not list(received.glob("*.part"))  # no spool file left behind


def test_movescu_against_dcmqrscp_to_dcmtk_storescp(
    dcmqrscp: Callable[..., Any],
    dcmtk_scp: Callable[..., Any],
    run_sample: Callable[..., Any],
    archive: list[Instance],
) -> None:
    with (
        dcmtk_scp("storescp", "-aet", "STORE") as (store_port, store),
        dcmqrscp(archive, {"STORE": store_port}) as port,
    ):
        result = run_sample(
            "movescu",
            "-S",
            "-aec",
            "DCMQRSCP",
            "-aem",
            "STORE",
            "-k",
            "PatientID=PID2",
            LOOPBACK,
            str(port),
        )
        arrived = received_by_uid(store.workdir)
    assert result.returncode == 0, result.stderr
    assert "pending: remaining 1, completed 1" in result.stdout
    assert_same_files(arrived, of_patient(archive, "PID2"))


def pynetdicom_qr_scp(
    pynetdicom_scp: Callable[..., Any], matches: Sequence[Dataset], move_to: int = 0
) -> Any:
    """A pynetdicom Q/R SCP answering every C-FIND, C-GET and C-MOVE with ``matches``
    (C-MOVE to 127.0.0.1:``move_to``); C-GET may store CT images on the requestor."""
    from pynetdicom import evt

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        for number, match in enumerate(matches):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            if number == 10:  # an archive still working when the requestor cancels
                # (pynetdicom's is_cancelled takes the C-CANCEL it reports)
                wait_until(lambda: event.is_cancelled, 30, "the C-CANCEL")
                yield 0xFE00, None
                return
            yield 0xFF00, match

    def on_get(event: Any) -> Iterator[Any]:
        yield len(matches)
        for match in matches:
            yield 0xFF00, match

    def on_move(event: Any) -> Iterator[Any]:
        yield LOOPBACK, move_to
        yield len(matches)
        for match in matches:
            yield 0xFF00, match

    def configure(ae: Any) -> None:
        ae.add_supported_context(CTImageStorage, scu_role=False, scp_role=True)
        ae.add_requested_context(CTImageStorage)

    handlers = {evt.EVT_C_FIND: on_find, evt.EVT_C_GET: on_get, evt.EVT_C_MOVE: on_move}
    contexts = [
        STUDY_ROOT_FIND,
        PATIENT_ROOT_FIND,
        MODALITY_WORKLIST_FIND,
        STUDY_ROOT_GET,
        STUDY_ROOT_MOVE,
    ]
    return pynetdicom_scp(contexts, handlers, configure=configure)


def test_findscu_against_pynetdicom_sends_the_keys_and_prints_matches(
    pynetdicom_scp: Callable[..., Any],
    run_sample: Callable[..., Any],
    archive: list[Instance],
) -> None:
    matches = [dcmread(i.path, stop_before_pixels=True) for i in archive[:2]]
    with pynetdicom_qr_scp(pynetdicom_scp, matches) as (port, log):
        result = run_sample(
            "findscu",
            "-aec",
            "PYNETDICOM",
            "-k",
            "PatientName=DOE*",
            "-k",
            "PatientID",
            "-k",
            "StudyDate=20240101-20241231",
            "-k",
            "ModalitiesInStudy=CT\\MR",
            LOOPBACK,
            str(port),
        )
        (find,) = log.wait_for("EVT_C_FIND")
    assert result.returncode == 0, result.stderr
    identifier = find.identifier
    assert identifier.QueryRetrieveLevel == "STUDY"
    assert identifier.PatientName == "DOE*"
    assert identifier.PatientID == ""
    assert identifier.StudyDate == "20240101-20241231"
    assert list(identifier.ModalitiesInStudy) == ["CT", "MR"]
    blocks = match_blocks(result.stdout)
    assert len(blocks) == 2
    assert f"SOPInstanceUID (0008,0018) {archive[1].sop_uid}" in blocks[1]


def test_findscu_worklist_query_with_sequence_keys_against_pynetdicom(
    pynetdicom_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    item = Dataset()
    item.Modality = "MR"
    item.ScheduledStationAETitle = "SCANNER1"
    worklist_entry = Dataset()
    worklist_entry.PatientName = "DOE^JOHN"
    worklist_entry.ScheduledProcedureStepSequence = [item]
    with pynetdicom_qr_scp(pynetdicom_scp, [worklist_entry]) as (port, log):
        result = run_sample(
            "findscu",
            "-W",
            "-aec",
            "PYNETDICOM",
            "-k",
            "PatientName",
            "-k",
            "ScheduledProcedureStepSequence[0].Modality=MR",
            "-k",
            "(0040,0100)[0].ScheduledStationAETitle",
            LOOPBACK,
            str(port),
        )
        (find,) = log.wait_for("EVT_C_FIND")
    assert result.returncode == 0, result.stderr
    assert find.request.AffectedSOPClassUID == MODALITY_WORKLIST_FIND
    identifier = find.identifier
    assert "QueryRetrieveLevel" not in identifier  # worklists have no levels
    (step,) = identifier.ScheduledProcedureStepSequence
    assert step.Modality == "MR" and step.ScheduledStationAETitle == ""
    (block,) = match_blocks(result.stdout)
    assert "ScheduledStationAETitle (0040,0001) SCANNER1" in block


def test_getscu_against_pynetdicom_takes_the_scp_role_and_stores(
    pynetdicom_scp: Callable[..., Any],
    run_sample: Callable[..., Any],
    archive: list[Instance],
    tmp_path: Path,
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    expected = of_patient(archive, "PID3")
    with pynetdicom_qr_scp(pynetdicom_scp, [dcmread(i.path) for i in expected]) as (port, log):
        result = run_sample(
            "getscu",
            "-aec",
            "PYNETDICOM",
            "-od",
            str(received),
            "-k",
            "PatientID=PID3",
            LOOPBACK,
            str(port),
        )
        log.wait_for("EVT_C_GET")
    assert result.returncode == 0, result.stderr
    assert "final status 0x0000" in result.stdout
    assert_same_data_sets(received_by_uid(received), expected)


def test_movescu_against_pynetdicom_to_dcmtk_storescp(
    pynetdicom_scp: Callable[..., Any],
    dcmtk_scp: Callable[..., Any],
    run_sample: Callable[..., Any],
    archive: list[Instance],
) -> None:
    expected = of_patient(archive, "PID1")
    datasets = [dcmread(i.path) for i in expected]
    with (
        dcmtk_scp("storescp", "-aet", "STORE") as (store_port, store),
        pynetdicom_qr_scp(pynetdicom_scp, datasets, move_to=store_port) as (port, log),
    ):
        result = run_sample(
            "movescu",
            "-aec",
            "PYNETDICOM",
            "-aem",
            "STORE",
            "-k",
            "PatientID=PID1",
            LOOPBACK,
            str(port),
        )
        (move,) = log.wait_for("EVT_C_MOVE")
        arrived = received_by_uid(store.workdir)
    assert result.returncode == 0, result.stderr
    assert move.move_destination == "STORE"
    assert_same_data_sets(arrived, expected)


def test_findscu_cancel_after_against_pynetdicom(
    pynetdicom_scp: Callable[..., Any],
    run_sample: Callable[..., Any],
) -> None:
    matches = []
    for number in range(1000):
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.StudyInstanceUID = f"1.2.3.{number}"
        matches.append(match)
    with pynetdicom_qr_scp(pynetdicom_scp, matches) as (port, log):
        result = run_sample(
            "findscu",
            "-aec",
            "PYNETDICOM",
            "--cancel-after",
            "5",
            "-k",
            "StudyInstanceUID",
            LOOPBACK,
            str(port),
        )
        log.wait_for("EVT_RELEASED")
    assert result.returncode == 0, result.stderr
    assert "final status 0xFE00" in result.stdout
    assert 5 <= len(match_blocks(result.stdout)) < len(matches)


def test_findscu_cancel_after_against_qrscp(
    qrscp: Callable[..., Any],
    run_sample: Callable[..., Any],
    big_archive: list[Instance],
) -> None:
    with qrscp(big_archive[0].path.parent) as port:
        result = run_sample(
            "findscu",
            "-aec",
            QRSCP_AE,
            "--cancel-after",
            "2",
            "-k",
            "QueryRetrieveLevel=IMAGE",
            "-k",
            "SOPInstanceUID",
            "-k",  # a hierarchical query names the study and series above
            f"StudyInstanceUID={big_archive[0].study_uid}",
            "-k",
            f"SeriesInstanceUID={dcmread(big_archive[0].path).SeriesInstanceUID}",
            LOOPBACK,
            str(port),
        )
    assert result.returncode == 0, result.stderr
    assert "final status 0xFE00" in result.stdout
    assert 2 <= len(match_blocks(result.stdout)) < len(big_archive)


# == our SCU against our SCP =========================================================


def test_getscu_cancel_after_against_qrscp(
    qrscp: Callable[..., Any],
    run_sample: Callable[..., Any],
    tmp_path: Path,
) -> None:
    directory, received = tmp_path / "ten", tmp_path / "received"
    directory.mkdir()
    received.mkdir()
    study_uid, series_uid = generate_uid(), generate_uid()
    for _ in range(10):
        write_ct(directory, "PID5", "TEN^IMAGES", study_uid, series_uid, "20240101")
    with qrscp(directory) as port:
        result = run_sample(
            "getscu",
            "-aec",
            QRSCP_AE,
            "-od",
            str(received),
            "--cancel-after",
            "2",
            "-k",
            f"StudyInstanceUID={study_uid}",
            LOOPBACK,
            str(port),
        )
    assert result.returncode == 0, result.stderr
    assert "final status 0xFE00" in result.stdout
    assert 2 <= len(list(received.iterdir())) < 10


def test_storescu_fills_qrscp_then_movescu_sends_to_storescp(
    qrscp: Callable[..., Any],
    dcmtk_scp: Callable[..., Any],
    run_dcmtk: Callable[..., Any],
    run_sample: Callable[..., Any],
    archive: list[Instance],
    tmp_path: Path,
) -> None:
    storage = tmp_path / "empty-archive"
    with (
        dcmtk_scp("storescp", "-aet", "STORE") as (store_port, store),
        qrscp(storage, f"STORE={LOOPBACK}:{store_port}") as port,
    ):
        stored = run_dcmtk(
            "storescu", "-aec", QRSCP_AE, LOOPBACK, str(port), *(str(i.path) for i in archive)
        )
        assert stored.returncode == 0, stored.stderr
        result = run_sample(
            "movescu",
            "-P",
            "-aec",
            QRSCP_AE,
            "-aem",
            "STORE",
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            "PatientID=PID2",
            LOOPBACK,
            str(port),
        )
        arrived = received_by_uid(store.workdir)
    assert result.returncode == 0, result.stderr
    archived = {
        read_part10_header(path).sop_instance_uid: read_received(path)
        for path in storage.rglob("*")  # <study>/<series>/<modality>.<SOP Instance UID>
        if path.is_file() and len(path.relative_to(storage).parts) == 3
    }
    assert_same_files(archived, archive)
    assert_same_files(arrived, of_patient(archive, "PID2"))
