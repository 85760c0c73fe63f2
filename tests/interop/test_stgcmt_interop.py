"""Storage Commitment Push Model (PS3.4 annex J): DIMSE-N in both directions.

- samples/storescp.py commits what storescu.py (or DCMTK's storescu) stored: the
  N-EVENT-REPORT from samples/stgcmtscu.py's request comes on the requesting association,
  or, when the SCU released early, on a new association the SCP opens with the SCP role
  proposed by role selection (J.3.3). Instances never stored, deleted since, or referenced
  with another SOP class fail with Failure Reason 0112 / 0119.
- pynetdicom as commitment SCU against storescp.py: the report on its own association,
  and on a new association to a pynetdicom acceptor that grants the SCP role.
- stgcmtscu.py against a pynetdicom SCP that reports on the same association, or on a new
  association to stgcmtscu's ``--port`` listener.

DCMTK ships no storage commitment tool, so it only stores the instances here.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import peers
import pytest
from polling import wait_until
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

LOOPBACK = "127.0.0.1"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
WAIT = 15.0
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
SCU_AE = "STGCMTSCU"
SCP_AE = "COMMIT-SCP"

Runner = Callable[..., Any]
ServerFactory = Callable[..., Any]


# -- test data -------------------------------------------------------------------------------


def write_instance(
    directory: Path, name: str, sop_class: str = CTImageStorage, sop_instance: str = ""
) -> Path:
    """A small image of ``sop_class`` saved as Part-10 (Explicit VR LE)."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance or generate_uid()
    ds.PatientID = "STGCMT"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT" if sop_class == CTImageStorage else "MR"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(128))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = directory / name
    ds.save_as(path, enforce_file_format=True)
    return path


def write_instances(directory: Path, count: int, prefix: str = "img") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [write_instance(directory, f"{prefix}{index}.dcm") for index in range(count)]


def uid_of(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def reported(stdout: str) -> tuple[set[str], dict[str, str]]:
    """(committed instance UIDs, failed instance UID -> reason) as stgcmtscu prints them."""
    committed = set(re.findall(r"^stgcmtscu: committed (\S+)$", stdout, re.MULTILINE))
    failed = dict(re.findall(r"^stgcmtscu: failed (\S+): (.+)$", stdout, re.MULTILINE))
    return committed, failed


def store_with_storescu_py(run_sample: Runner, port: int, files: list[Path]) -> None:
    result = run_sample("storescu", "-aec", SCP_AE, LOOPBACK, str(port), *map(str, files))
    assert result.returncode == 0, result.stderr


def wait_for_log(server: peers.ServerProcess, text: str, timeout: float = WAIT) -> str:
    wait_until(lambda: text in server.log(), timeout, f"{text!r} in the server log")
    return server.log()


@pytest.fixture
def commitment_scp(sample_server: ServerFactory) -> Callable[..., Any]:
    """``with commitment_scp(*options) as (port, server):`` storescp.py as commitment SCP."""

    def start(*options: str) -> Any:
        return sample_server("storescp", "-v", "-aet", SCP_AE, *options)

    return start


# -- stgcmtscu.py -> storescp.py -----------------------------------------------------------


@pytest.mark.parametrize("storer", ["storescu.py", "dcmtk-storescu"])
def test_stgcmtscu_gets_every_stored_instance_committed(
    storer: str,
    commitment_scp: Callable[..., Any],
    run_sample: Runner,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    files = write_instances(tmp_path / "in", 3)
    with commitment_scp() as (port, server):
        if storer == "storescu.py":
            store_with_storescu_py(run_sample, port, files)
        else:
            run_dcmtk = request.getfixturevalue("run_dcmtk")
            stored = run_dcmtk("storescu", "-aec", SCP_AE, LOOPBACK, str(port), *map(str, files))
            assert stored.returncode == 0, stored.stderr
        result = run_sample("stgcmtscu", "-aec", SCP_AE, LOOPBACK, str(port), str(tmp_path / "in"))
        log = wait_for_log(server, "reported on the requesting association")
    assert result.returncode == 0, result.stderr
    committed, failed = reported(result.stdout)
    assert committed == {uid_of(path) for path in files}
    assert failed == {}
    assert "3 committed, 0 failed, N-EVENT-REPORT-RSP status 0x0000" in log


def test_stgcmtscu_lists_an_instance_never_stored_as_failed(
    commitment_scp: Callable[..., Any], run_sample: Runner, tmp_path: Path
) -> None:
    stored = write_instances(tmp_path / "stored", 3)
    missing = write_instance(tmp_path, "missing.dcm")
    with commitment_scp() as (port, server):
        store_with_storescu_py(run_sample, port, stored)
        result = run_sample(
            "stgcmtscu", "-aec", SCP_AE, LOOPBACK, str(port), *map(str, [*stored, missing])
        )
        log = wait_for_log(server, "N-EVENT-REPORT-RSP status")
    assert result.returncode == 1, result.stderr
    committed, failed = reported(result.stdout)
    assert committed == {uid_of(path) for path in stored}
    assert list(failed) == [uid_of(missing)]
    assert failed[uid_of(missing)].startswith("0x0112")
    assert "event type 2" in result.stdout
    assert "3 committed, 1 failed" in log


def test_storescp_commits_only_files_it_still_holds_with_their_sop_class(
    commitment_scp: Callable[..., Any], run_sample: Runner, tmp_path: Path
) -> None:
    """A file deleted after storing is no longer committed (0112); the same instance UID
    referenced with another SOP class is a class-instance conflict (0119)."""
    kept, deleted = write_instances(tmp_path / "stored", 2)
    mistyped = write_instance(tmp_path, "as-mr.dcm", MRImageStorage, uid_of(kept))
    with commitment_scp() as (port, server):
        store_with_storescu_py(run_sample, port, [kept, deleted])
        (server.workdir / f"CT.{uid_of(deleted)}").unlink()
        result = run_sample(
            "stgcmtscu", "-aec", SCP_AE, LOOPBACK, str(port), *map(str, [kept, deleted, mistyped])
        )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert f"stgcmtscu: committed {uid_of(kept)}" in lines
    assert any(
        line.startswith(f"stgcmtscu: failed {uid_of(deleted)}: 0x{NO_SUCH_OBJECT_INSTANCE:04X}")
        for line in lines
    )
    assert any(
        line.startswith(f"stgcmtscu: failed {uid_of(kept)}: 0x{CLASS_INSTANCE_CONFLICT:04X}")
        for line in lines
    )


def test_storescp_commits_what_it_found_in_its_output_directory_at_start(
    sample_server: ServerFactory, run_sample: Runner, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    files = write_instances(tmp_path / "in", 2)
    (archive / "notes.txt").write_text("not DICOM")
    options = ("-aet", SCP_AE, "-od", str(archive))
    with sample_server("storescp", *options) as (port, _server):
        store_with_storescu_py(run_sample, port, files)
    with sample_server("storescp", *options) as (port, _server):
        result = run_sample("stgcmtscu", "-aec", SCP_AE, LOOPBACK, str(port), *map(str, files))
    assert result.returncode == 0, result.stderr
    assert reported(result.stdout)[0] == {uid_of(path) for path in files}


def test_release_early_gets_the_report_on_a_new_association(
    commitment_scp: Callable[..., Any], run_sample: Runner, tmp_path: Path
) -> None:
    files = write_instances(tmp_path / "in", 3)
    report_port = peers.free_port()
    peer = f"{SCU_AE}={LOOPBACK}:{report_port}"
    with commitment_scp("--commit-peer", peer, "--commit-delay", "1") as (port, server):
        store_with_storescu_py(run_sample, port, files)
        started = time.monotonic()
        result = run_sample(
            "stgcmtscu",
            "-aec",
            SCP_AE,
            "--release-early",
            "--port",
            str(report_port),
            LOOPBACK,
            str(port),
            *map(str, files),
        )
        elapsed = time.monotonic() - started
        log = wait_for_log(server, "N-EVENT-REPORT-RSP status")
    assert result.returncode == 0, result.stderr
    assert "reported on a new association" in result.stdout
    assert reported(result.stdout)[0] == {uid_of(path) for path in files}
    assert elapsed >= 1.0  # the report waited for --commit-delay
    assert f"reported on a new association to {SCU_AE}@{LOOPBACK}:{report_port}" in log
    assert "3 committed, 0 failed, N-EVENT-REPORT-RSP status 0x0000" in log


def test_release_early_without_a_known_peer_gets_no_report(
    commitment_scp: Callable[..., Any], run_sample: Runner, tmp_path: Path
) -> None:
    files = write_instances(tmp_path / "in", 1)
    with commitment_scp("--commit-delay", "0.5") as (port, server):
        store_with_storescu_py(run_sample, port, files)
        result = run_sample(
            "stgcmtscu",
            "-aec",
            SCP_AE,
            "--timeout",
            "3",
            "--release-early",
            "--port",
            str(peers.free_port()),
            LOOPBACK,
            str(port),
            *map(str, files),
        )
        log = wait_for_log(server, "not reported")
    assert result.returncode == 2
    assert "no N-EVENT-REPORT" in result.stderr
    assert "no --commit-peer" in log


# -- pynetdicom SCU -> storescp.py ----------------------------------------------------------------


def commitment_request(transaction_uid: str, references: Sequence[tuple[str, str]]) -> Dataset:
    information = Dataset()
    information.TransactionUID = transaction_uid
    information.ReferencedSOPSequence = []
    for sop_class, sop_instance in references:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        information.ReferencedSOPSequence.append(item)
    return information


def pynetdicom_ae(*requested: str) -> Any:
    from pynetdicom import AE

    ae = AE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = WAIT
    for sop_class in requested:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    return ae


@pytest.fixture
def pynetdicom_commitment_scu(
    require_pynetdicom: Any, commitment_scp: Callable[..., Any], tmp_path: Path
) -> Iterator[tuple[Any, queue.Queue[Any], list[Path]]]:
    """pynetdicom associated with storescp.py, having stored two CT images over that
    association; yields (association, N-EVENT-REPORT events received, stored files)."""
    from pynetdicom import evt

    reports: queue.Queue[Any] = queue.Queue()

    def on_report(event: Any) -> tuple[int, None]:
        reports.put(event)
        return 0x0000, None

    files = write_instances(tmp_path / "in", 2)
    with commitment_scp() as (port, _server):
        ae = pynetdicom_ae(STORAGE_COMMITMENT, CTImageStorage)
        assoc = ae.associate(
            LOOPBACK, port, ae_title=SCP_AE, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
        )
        try:
            assert assoc.is_established
            for path in files:
                assert assoc.send_c_store(dcmread(path)).Status == 0x0000
            yield assoc, reports, files
        finally:
            if assoc.is_established:
                assoc.release()
            ae.shutdown()


def test_pynetdicom_scu_gets_the_report_on_its_association(
    pynetdicom_commitment_scu: tuple[Any, queue.Queue[Any], list[Path]],
) -> None:
    assoc, reports, files = pynetdicom_commitment_scu
    transaction_uid = generate_uid()
    stored = [(CTImageStorage, uid_of(path)) for path in files]
    missing = (CTImageStorage, generate_uid())
    status, reply = assoc.send_n_action(
        commitment_request(transaction_uid, [*stored, missing]),
        1,
        STORAGE_COMMITMENT,
        STORAGE_COMMITMENT_INSTANCE,
    )
    assert status.Status == 0x0000
    assert not reply  # no Action Reply
    report = reports.get(timeout=WAIT)
    assert report.event_type == 2
    assert report.request.AffectedSOPClassUID == STORAGE_COMMITMENT
    assert report.request.AffectedSOPInstanceUID == STORAGE_COMMITMENT_INSTANCE
    information = report.event_information
    assert information.TransactionUID == transaction_uid
    assert [
        (item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID)
        for item in information.ReferencedSOPSequence
    ] == stored
    (failure,) = information.FailedSOPSequence
    assert (failure.ReferencedSOPClassUID, failure.ReferencedSOPInstanceUID) == missing
    assert failure.FailureReason == NO_SUCH_OBJECT_INSTANCE

    # a second transaction on the same association: everything committed, event type 1
    second = generate_uid()
    status, _ = assoc.send_n_action(
        commitment_request(second, stored), 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
    )
    assert status.Status == 0x0000
    report = reports.get(timeout=WAIT)
    assert report.event_type == 1
    assert report.event_information.TransactionUID == second
    assert "FailedSOPSequence" not in report.event_information


def without_transaction_uid() -> Dataset:
    information = commitment_request(generate_uid(), [(CTImageStorage, generate_uid())])
    del information.TransactionUID
    return information


@pytest.mark.parametrize(
    ("action", "make_information", "status"),
    [
        (1, without_transaction_uid, 0x0115),
        (1, lambda: commitment_request(generate_uid(), []), 0x0115),
        (2, lambda: commitment_request(generate_uid(), [(CTImageStorage, "1.2.3")]), 0x0123),
    ],
    ids=["no-transaction-uid", "no-references", "unknown-action"],
)
def test_storescp_refuses_a_malformed_commitment_request(
    pynetdicom_commitment_scu: tuple[Any, queue.Queue[Any], list[Path]],
    action: int,
    make_information: Callable[[], Dataset],
    status: int,
) -> None:
    assoc, reports, _files = pynetdicom_commitment_scu
    reply_status, _ = assoc.send_n_action(
        make_information(), action, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
    )
    assert reply_status.Status == status
    assert reply_status.ErrorComment
    with pytest.raises(queue.Empty):
        reports.get(timeout=0.5)


def test_storescp_reports_to_a_pynetdicom_scu_on_a_new_association(
    require_pynetdicom: Any, commitment_scp: Callable[..., Any], run_sample: Runner, tmp_path: Path
) -> None:
    """The SCU releases after the N-ACTION response; storescp.py associates with the
    SCU's pynetdicom acceptor, proposing the SCP role, which the acceptor grants."""
    from pynetdicom import AE, evt

    reports: queue.Queue[Any] = queue.Queue()

    def on_report(event: Any) -> tuple[int, None]:
        reports.put(event)
        return 0x0000, None

    files = write_instances(tmp_path / "in", 2)
    acceptor = AE(ae_title="PYNETDICOM")
    acceptor.add_supported_context(
        STORAGE_COMMITMENT, [ExplicitVRLittleEndian], scu_role=False, scp_role=True
    )
    server = acceptor.start_server(
        (LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
    )
    assert server is not None  # block=False returns the running server
    report_port = int(server.server_address[1])
    try:
        peer = f"PYNETDICOM={LOOPBACK}:{report_port}"
        with commitment_scp("--commit-peer", peer, "--commit-delay", "0.5") as (port, log):
            store_with_storescu_py(run_sample, port, files)
            ae = pynetdicom_ae(STORAGE_COMMITMENT)
            assoc = ae.associate(LOOPBACK, port, ae_title=SCP_AE)
            transaction_uid = generate_uid()
            references = [(CTImageStorage, uid_of(path)) for path in files]
            status, _ = assoc.send_n_action(
                commitment_request(transaction_uid, references),
                1,
                STORAGE_COMMITMENT,
                STORAGE_COMMITMENT_INSTANCE,
            )
            assoc.release()
            ae.shutdown()
            assert status.Status == 0x0000
            report = reports.get(timeout=WAIT)
            wait_for_log(log, "N-EVENT-REPORT-RSP status 0x0000")
    finally:
        acceptor.shutdown()
    assert report.event_type == 1
    assert report.event_information.TransactionUID == transaction_uid
    assert report.assoc.requestor.ae_title == SCP_AE
    (context,) = report.assoc.accepted_contexts
    assert (context.as_scu, context.as_scp) == (True, False)  # the acceptor is the SCU


# -- stgcmtscu.py -> pynetdicom SCP -----------------------------------------------------------


class PynetdicomCommitmentScp:
    """EVT_N_ACTION handler of a pynetdicom SCP holding ``held`` instance UIDs. The report
    goes from a thread after the handler returned (pynetdicom sends the N-ACTION response
    only then): on the same association, or on a new one to ``report_port`` proposing
    the SCP role."""

    def __init__(self, held: set[str], report_port: int | None = None) -> None:
        self.held = held
        self.report_port = report_port
        self.report_statuses: queue.Queue[int] = queue.Queue()
        self.errors: queue.Queue[BaseException] = queue.Queue()
        self.action_answered = threading.Event()

    def handlers(self) -> dict[Any, Any]:
        from pynetdicom import evt

        return {evt.EVT_N_ACTION: self.on_action, evt.EVT_DIMSE_SENT: self.on_sent}

    def on_sent(self, event: Any) -> None:
        """EVT_DIMSE_SENT: the report waits until the N-ACTION response has gone out."""
        if type(event.message).__name__ == "N_ACTION_RSP":
            self.action_answered.set()

    def on_action(self, event: Any) -> tuple[int, None]:
        information = event.action_information
        threading.Thread(target=self._report, args=(event.assoc, information), daemon=True).start()
        return 0x0000, None

    def result(self, information: Dataset) -> tuple[int, Dataset]:
        report = Dataset()
        report.TransactionUID = information.TransactionUID
        committed, failed = [], []
        for item in information.ReferencedSOPSequence:
            if item.ReferencedSOPInstanceUID in self.held:
                committed.append(item)
            else:
                item.FailureReason = NO_SUCH_OBJECT_INSTANCE
                failed.append(item)
        report.ReferencedSOPSequence = committed
        if failed:
            report.FailedSOPSequence = failed
        return (2 if failed else 1), report

    def _report(self, assoc: Any, information: Dataset) -> None:
        try:
            assert self.action_answered.wait(WAIT), "the N-ACTION response was not sent"
            event_type, report = self.result(information)
            if self.report_port is None:
                status, _ = assoc.send_n_event_report(
                    report, event_type, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
                )
            else:
                status = self._report_on_new_association(event_type, report)
            self.report_statuses.put(int(status.Status))
        except BaseException as exc:  # surfaced by the test through ``errors``
            self.errors.put(exc)

    def _report_on_new_association(self, event_type: int, report: Dataset) -> Any:
        from pynetdicom import build_role

        ae = pynetdicom_ae(STORAGE_COMMITMENT)
        assoc = ae.associate(
            LOOPBACK,
            self.report_port,
            ae_title=SCU_AE,
            ext_neg=[build_role(STORAGE_COMMITMENT, scp_role=True)],
        )
        try:
            assert assoc.is_established, "stgcmtscu did not accept the report association"
            status, _ = assoc.send_n_event_report(
                report, event_type, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
            )
            assoc.release()
            return status
        finally:
            ae.shutdown()

    def status(self) -> int:
        try:
            return self.report_statuses.get(timeout=WAIT)
        except queue.Empty:
            raise self.errors.get_nowait() from None


@pytest.mark.parametrize("held", [3, 2], ids=["all-held", "one-missing"])
def test_stgcmtscu_against_a_pynetdicom_scp_reporting_on_the_same_association(
    held: int, pynetdicom_scp: ServerFactory, run_sample: Runner, tmp_path: Path
) -> None:

    files = write_instances(tmp_path / "in", 3)
    uids = [uid_of(path) for path in files]
    scp = PynetdicomCommitmentScp(set(uids[:held]))
    with pynetdicom_scp([STORAGE_COMMITMENT], scp.handlers()) as (port, log):
        result = run_sample("stgcmtscu", LOOPBACK, str(port), *map(str, files))
        (action,) = log.wait_for("EVT_N_ACTION")
    assert scp.status() == 0x0000  # stgcmtscu answered the N-EVENT-REPORT with Success
    assert action.request.RequestedSOPInstanceUID == STORAGE_COMMITMENT_INSTANCE
    assert action.action_type == 1
    sent = action.action_information
    assert [item.ReferencedSOPInstanceUID for item in sent.ReferencedSOPSequence] == uids
    assert {item.ReferencedSOPClassUID for item in sent.ReferencedSOPSequence} == {CTImageStorage}
    committed, failed = reported(result.stdout)
    assert committed == set(uids[:held])
    assert set(failed) == set(uids[held:])
    assert all(reason.startswith("0x0112") for reason in failed.values())
    assert result.returncode == (0 if held == 3 else 1), result.stderr
    assert "reported on the requesting association" in result.stdout


def test_stgcmtscu_takes_a_pynetdicom_report_on_its_listener_after_releasing(
    pynetdicom_scp: ServerFactory, run_sample: Runner, tmp_path: Path
) -> None:

    files = write_instances(tmp_path / "in", 2)
    report_port = peers.free_port()
    scp = PynetdicomCommitmentScp({uid_of(path) for path in files}, report_port)
    with pynetdicom_scp([STORAGE_COMMITMENT], scp.handlers()) as (port, log):
        result = run_sample(
            "stgcmtscu",
            "--release-early",
            "--port",
            str(report_port),
            LOOPBACK,
            str(port),
            *map(str, files),
        )
        log.wait_for("EVT_RELEASED")
    assert scp.status() == 0x0000
    assert result.returncode == 0, result.stderr
    assert "reported on a new association" in result.stdout
    assert reported(result.stdout)[0] == {uid_of(path) for path in files}
