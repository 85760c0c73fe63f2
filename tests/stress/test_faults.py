"""Faults: peers that die, disks that fill, files that break, destinations that go away.

Each case breaks one thing at one point and then asks two questions. Did the server
survive (``faults_health``: it still answers C-ECHO; its descriptors, threads and
temporary files are back to what they were)? Was anything lost (``faults_ledger``: every
instance reported stored is held byte-identical, every other one was reported failed)?

dicomnet plays both roles: the samples (storescp, qrscp, storescu) and an in-process
``DicomNet`` SCU, against scripted peers on the socket (``faults_peer``) that reset the
connection (SO_LINGER 0) or are killed with SIGKILL between two chosen steps.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from faults_health import TIMEOUTS, WAIT, InProcessHealth, ProcessHealth, settle
from faults_ledger import Ledger, held_instances, held_raw, write_instance
from faults_peer import SECONDARY_CAPTURE, RawScu, RawStoreScp
from pydicom import Dataset
from rawpdu import P_DATA_TF, recv_pdu

from dicomnet import (
    DicomCommandPriorityType,
    DicomException,
    DicomNet,
    Response,
    negotiated_contexts,
    read_part10_header,
)
from dicomnet.dimse.datasets import encode_dataset
from dicomnet.scu import build_request, open_association, release
from dicomnet.storage import send_instance, storage_contexts_for
from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
import peers  # noqa: E402

pytestmark = pytest.mark.timeout(120)

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
REFUSED_OUT_OF_RESOURCES = 0xA700
SUBOPERATIONS_FAILED = 0xA702
MOVE_DESTINATION_UNKNOWN = 0xA801
WARNING_SOME_FAILED = 0xB000
UID = "1.2.826.0.1.3680043.8.498.77"
STUDY = "1.2.826.0.1.3680043.8.498.1"  # faults_ledger.write_instance puts every instance in it
SERIES = "1.2.826.0.1.3680043.8.498.2"  # and in this series
MANY_MATCHES = 2000  # more C-FIND responses than are sent before the peer's reset arrives
FAULTS_PEER = Path(__file__).with_name("faults_peer.py")


@pytest.fixture(scope="module", autouse=True)
def loop() -> Iterator[None]:
    DicomNet.Startup()
    try:
        yield
    finally:
        DicomNet.Shutdown()


@contextlib.contextmanager
def storescp(
    *args: str, output: Path | None = None
) -> Iterator[tuple[ProcessHealth, Path, peers.ServerProcess]]:
    """samples/storescp.py, healthy at the start; yields its health, output folder and
    process."""
    extra = ("-od", str(output)) if output is not None else ()
    with peers.sample_server("storescp", "-v", *extra, *args) as (port, server):
        assert server.popen is not None
        folder = output or server.workdir
        health = ProcessHealth(server.popen.pid, port, [folder / ".storescp-incoming"])
        health.baseline()
        yield health, folder, server


@pytest.fixture(scope="module")
def store_scp() -> Iterator[tuple[ProcessHealth, Path]]:
    """One storescp for the peer-death cases: surviving all of them is the point."""
    with storescp() as (health, folder, _):
        yield health, folder


def store_files(port: int, paths: Sequence[Path]) -> dict[str, int | None]:
    """C-STORE ``paths`` from this process on one association: UID -> status (None: the
    request failed without a status, and so did every one after it)."""
    headers = [read_part10_header(path) for path in paths]
    statuses: dict[str, int | None] = {h.sop_instance_uid: None for h in headers}
    net = DicomNet(None, timeouts=TIMEOUTS)
    try:
        request = build_request("FAULTS", "ANY-SCP", 16384, storage_contexts_for(headers))
        accepted = open_association(net, peers.LOOPBACK, port, request)
        contexts = list(negotiated_contexts(request, accepted).values())
        for header in headers:
            statuses[header.sop_instance_uid] = send_instance(net, contexts, header).status
        release(net)
    except DicomException as exc:
        print(f"store_files stopped: {exc}")
    finally:
        net.Close()
    return statuses


def split(statuses: dict[str, int | None]) -> tuple[list[str], list[str]]:
    ok = [uid for uid, status in statuses.items() if status == 0]
    return ok, [uid for uid in statuses if uid not in ok]


# -- dicomnet as SCP: the requestor dies ----------------------------------------------


def data_set_bytes(length: int) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = UID
    ds.PixelData = bytes(length)
    ds["PixelData"].VR = "OB"
    return encode_dataset(ds, EXPLICIT_VR_LE)


def spool_file_appears(health: ProcessHealth) -> None:
    settle(lambda: [] if any(health.temp_dirs[0].iterdir()) else ["no spool file yet"])


def test_scp_survives_a_reset_after_the_associate_request(
    store_scp: tuple[ProcessHealth, Path],
) -> None:
    health, _ = store_scp
    with RawScu(health.port) as scu:
        scu.send_associate_request(SECONDARY_CAPTURE)
        scu.reset()
    health.assert_recovered()


def test_scp_survives_a_reset_inside_a_data_set(store_scp: tuple[ProcessHealth, Path]) -> None:
    health, output = store_scp
    with RawScu(health.port) as scu:
        scu.associate()
        scu.send_store_command(UID)
        scu.send_data(data_set_bytes(1 << 20)[: 512 << 10])
        spool_file_appears(health)  # the SCP is inside the data set
        scu.reset()
    health.assert_recovered()  # including: the partial spool file is gone
    assert not (output / f"SC.{UID}").exists()


def test_scp_survives_a_peer_killed_inside_a_data_set(
    store_scp: tuple[ProcessHealth, Path],
) -> None:
    health, output = store_scp
    argv = [sys.executable, str(FAULTS_PEER), "half-store", str(health.port), str(1 << 20)]
    env = peers.sample_env()  # dicomnet, and the tests' own modules (rawpdu) for the peer
    env["PYTHONPATH"] = os.pathsep.join([str(FAULTS_PEER.parents[1]), env["PYTHONPATH"]])
    peer = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None
        assert peer.stdout.readline().strip() == "sent half"
        spool_file_appears(health)
    finally:
        peer.send_signal(signal.SIGKILL)
        peer.wait(WAIT)
        assert peer.stdout is not None
        peer.stdout.close()
    health.assert_recovered()
    assert not (output / f"SC.{UID}").exists()


def test_scp_survives_a_reset_after_the_release_request(
    store_scp: tuple[ProcessHealth, Path],
) -> None:
    health, _ = store_scp
    with RawScu(health.port) as scu:
        scu.associate()
        scu.send_release_request()
        scu.reset()
    health.assert_recovered()


# -- dicomnet as SCU: the acceptor dies -----------------------------------------------


@pytest.mark.parametrize("stage", ["associate", "data", "release"])
def test_scu_survives_the_scp_resetting(stage: str, tmp_path: Path) -> None:
    """An in-process SCU whose SCP resets the connection: the blocking call that was
    waiting fails with DicomException at once, and nothing stays behind."""
    ledger = Ledger()
    paths = [write_instance(tmp_path / f"{n}.dcm", f"{UID}.{n}", 256 << 10) for n in range(3)]
    for path in paths:
        ledger.add(path)
    health = InProcessHealth()
    scp = RawStoreScp(fault=stage, stores_before_fault=1, bytes_before_fault=64 << 10)
    with scp:
        statuses = store_files(scp.port, paths)
    assert scp.faults_done == 1
    ok, failed = split(statuses)
    expected_ok = {"associate": 0, "data": 1, "release": 3}[stage]
    assert len(ok) == expected_ok, statuses
    ledger.assert_nothing_lost(
        ok, failed, held_raw((r.sop_instance, r.data_set) for r in scp.received)
    )
    health.assert_recovered()


def storescu_report(
    result: subprocess.CompletedProcess[str], ledger: Ledger
) -> tuple[list[str], list[str]]:
    """(stored, failed) UIDs as storescu told them: failed files are listed, the rest
    counted."""
    failed_paths = re.findall(r"^storescu: failed: (.+?): ", result.stderr, re.MULTILINE)
    failed = [ledger.uid_of(Path(path)) for path in failed_paths]
    summary = re.search(r"storescu: (\d+) succeeded, (\d+) warnings, (\d+) failed", result.stdout)
    assert summary, result.stdout
    assert int(summary[3]) == len(failed)
    stored = [uid for uid in ledger.sent if uid not in failed]
    assert int(summary[1]) == len(stored)
    return stored, failed


# -- the disk fills up ------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``directory`` (root only), unmounted afterwards."""
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs to fill up (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        pytest.skip(reason)
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def fill_up(directory: Path) -> Path:
    """A file taking every free byte of ``directory``'s file system."""
    filler = directory / "filler"
    with filler.open("wb") as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 65536)
            file.flush()
    return filler


def test_disk_full_refuses_with_a700_and_recovers(tmp_path: Path) -> None:
    sent = tmp_path / "send"
    sent.mkdir()
    big = write_instance(sent / "big.dcm", f"{UID}.1", 3 << 20)  # more than the disk holds
    small = [write_instance(sent / f"small{n}.dcm", f"{UID}.{n}", 16 << 10) for n in (2, 3, 4)]
    ledger = Ledger()
    for path in (big, *small):
        ledger.add(path)
    statuses: dict[str, int | None] = {}
    with (
        small_tmpfs(tmp_path / "archive", "2m") as archive,
        storescp(output=archive) as (health, _, server),
    ):
        statuses |= store_files(health.port, [big, small[0]])
        assert statuses[ledger.uid_of(big)] == REFUSED_OUT_OF_RESOURCES
        assert statuses[ledger.uid_of(small[0])] == 0  # refusing one did not stop it
        health.assert_recovered()

        filler = fill_up(archive)
        statuses |= store_files(health.port, [small[1]])
        assert statuses[ledger.uid_of(small[1])] == REFUSED_OUT_OF_RESOURCES
        health.assert_recovered()

        filler.unlink()  # space returns
        statuses |= store_files(health.port, [small[2]])
        assert statuses[ledger.uid_of(small[2])] == 0
        health.assert_recovered()
        ledger.assert_nothing_lost(*split(statuses), held_instances(archive))
        log = server.log()
    assert "No space left on device" in log
    assert "(Parameter)" not in log


# -- a file breaks while storescu sends it ------------------------------------------------


def test_storescu_reports_a_file_that_breaks_and_sends_the_others(tmp_path: Path) -> None:
    """One file is truncated while its data set is on the wire (the association must
    abort), another is deleted after storescu read its header: both are reported
    failed with their reason, and every other file still goes (on a new association)."""
    folder = tmp_path / "send"
    folder.mkdir()
    sizes = {"1": 16 << 10, "2": 16 << 20, "3": 16 << 10, "4": 16 << 10, "5": 16 << 10}
    paths = {
        n: write_instance(folder / f"{n}.dcm", f"{UID}.{n}", size) for n, size in sizes.items()
    }
    ledger = Ledger()
    for path in paths.values():
        ledger.add(path)
    truncated, deleted = paths["2"], paths["4"]
    data_offset = read_part10_header(truncated).data_offset

    def break_files(received: int) -> None:
        # Inside the big file's data set: storescu cannot have read more than its socket
        # buffers and one read block ahead of us, far less than what is left.
        if len(scp.received) == 1 and deleted.exists():
            os.truncate(truncated, data_offset + (8 << 20))
            deleted.unlink()

    scp = RawStoreScp(on_data=break_files, receive_buffer=4096)
    with scp:
        result = peers.run_sample("storescu", peers.LOOPBACK, str(scp.port), str(folder))
    assert result.returncode == 1
    stored, failed = storescu_report(result, ledger)
    assert sorted(failed) == sorted([ledger.uid_of(truncated), ledger.uid_of(deleted)])
    assert f"{truncated}: " in result.stderr and "became shorter" in result.stderr
    assert re.search(
        rf"failed: {re.escape(str(deleted))}: cannot read .*No such file", result.stderr
    )
    assert "Traceback" not in result.stderr
    assert scp.associations == 2  # the files after the broken one went on a new one
    ledger.assert_nothing_lost(
        stored, failed, held_raw((r.sop_instance, r.data_set) for r in scp.received)
    )


# -- C-MOVE: the destination refuses, or dies half-way --------------------------------


@contextlib.contextmanager
def qrscp(storage: Path, *args: str) -> Iterator[tuple[ProcessHealth, peers.ServerProcess]]:
    # --rescan: the tests fill the storage folder with files, not through C-STORE
    qrscp_args = ("-v", "--storage-dir", str(storage), "--rescan", *args)
    with peers.sample_server("qrscp", *qrscp_args) as (port, server):
        assert server.popen is not None
        health = ProcessHealth(server.popen.pid, port, [storage], "QRSCP", pooled=True)
        health.baseline(lambda: assert_a_worker_is_free(port))
        yield health, server


def assert_a_worker_is_free(port: int) -> None:
    """A C-MOVE to an unknown destination is answered from a worker thread."""
    assert move(port, "NOWHERE", STUDY).status == MOVE_DESTINATION_UNKNOWN


def move(port: int, destination: str, study: str) -> Response:
    """A Study Root C-MOVE of ``study`` to ``destination`` from this process; the final
    response."""
    net = DicomNet(None, timeouts=TIMEOUTS)
    try:
        request = build_request("MOVE-SCU", "QRSCP", 16384, [(STUDY_ROOT_MOVE, [IMPLICIT_VR_LE])])
        open_association(net, peers.LOOPBACK, port, request)
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = study
        message_id = net.next_message_id()
        net.SendCMoveRequest(
            1, message_id, STUDY_ROOT_MOVE, DicomCommandPriorityType.Medium, destination, identifier
        )
        response = net.wait_response(message_id, WAIT)
        release(net)
        return response
    finally:
        net.Close()


def archive_of(folder: Path, count: int) -> Ledger:
    folder.mkdir()
    ledger = Ledger()
    for n in range(count):
        ledger.add(write_instance(folder / f"{n}.dcm", f"{UID}.{n}", 64 << 10))
    return ledger


def failed_uids(response: Response) -> list[str]:
    identifier = response.dataset
    if identifier is None or "FailedSOPInstanceUIDList" not in identifier:
        return []
    value = identifier.FailedSOPInstanceUIDList
    return [
        str(uid)
        for uid in (
            value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        )
    ]


@pytest.mark.parametrize("fault", ["reject", "data"])
def test_move_destination_refusing_or_dying_gets_the_counts_right(
    fault: str, tmp_path: Path
) -> None:
    ledger = archive_of(tmp_path / "archive", 6)
    destination = RawStoreScp(fault=fault, stores_before_fault=2, bytes_before_fault=16 << 10)
    with (
        destination,
        qrscp(tmp_path / "archive", "--move-destination", f"DEST=127.0.0.1:{destination.port}") as (
            health,
            _,
        ),
    ):
        response = move(health.port, "DEST", STUDY)
        remaining, completed, failed, warning = response.suboperations
        failed_list = failed_uids(response)
        if fault == "reject":
            assert response.status == SUBOPERATIONS_FAILED
            assert (completed, failed, warning) == (0, 6, 0)
        else:
            assert destination.faults_done == 1
            assert response.status == WARNING_SOME_FAILED
            assert (completed, failed, warning) == (2, 4, 0)
        assert remaining in (-1, 0)
        assert len(failed_list) == failed
        stored = [uid for uid in ledger.sent if uid not in failed_list]
        assert len(stored) == completed
        ledger.assert_nothing_lost(
            stored,
            failed_list,
            held_raw((r.sop_instance, r.data_set) for r in destination.received),
        )
        assert_a_worker_is_free(health.port)
        health.assert_recovered()


# -- C-FIND: the requestor vanishes while the worker answers ------------------------------


def test_find_worker_stops_when_its_peer_vanishes(tmp_path: Path) -> None:
    storage = tmp_path / "archive"
    storage.mkdir()
    for n in range(MANY_MATCHES):
        write_instance(storage / f"{n}.dcm", f"{UID}.{n}", 2)
    with qrscp(storage) as (health, server):
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.StudyInstanceUID = STUDY
        identifier.SeriesInstanceUID = SERIES
        identifier.SOPInstanceUID = ""
        with RawScu(health.port, "QRSCP") as scu:
            scu.associate(STUDY_ROOT_FIND)
            scu.send_find(STUDY_ROOT_FIND, encode_dataset(identifier, EXPLICIT_VR_LE))
            first = recv_pdu(scu.sock)
            assert first is not None and first.type == P_DATA_TF  # the worker is answering
            scu.reset()
        settle(lambda: [] if "message 1 failed" in server.log() else ["the worker goes on"])
        assert f"{MANY_MATCHES} match(es)" not in server.log()  # it stopped, it did not finish
        assert_a_worker_is_free(health.port)
        health.assert_recovered()
