"""C-STORE between the dicomnet samples (storescu.py, storescp.py) and real peers.

Both roles against DCMTK (storescu, storescp) and pynetdicom, in every uncompressed
transfer syntax, with compressed data passing through untouched, conversion to the only
syntax a peer accepts, more SOP classes than one association can carry, a rejected SOP
class, failure statuses, and transfers aborted halfway. Received instances are compared
with what was sent by pydicom: every element, and the pixel values (byte order aware)
or, for compressed data, the encapsulated pixel bytes.
"""

from __future__ import annotations

import array
import contextlib
import random
import socket
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from polling import wait_until
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from rawpdu import RawPdu, recv_pdu

from dicomnet import (
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomCommandPriorityType,
    DicomNet,
)
from dicomnet.dimse.commands import (
    DATA_SET_PRESENT,
    NO_DATA_SET,
    decode_command_set,
    encode_command_set,
)
from dicomnet.pdu import (
    CONTROL_COMMAND,
    CONTROL_LAST,
    Abort,
    encode_pdu,
    pdata_header,
    split_pdvs,
)
from dicomnet.sopclasses import STORAGE_SOP_CLASSES

LOOPBACK = "127.0.0.1"
WAIT_SERVER = 10.0  # seconds the server gets to act on what a peer did
UNCOMPRESSED = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
]
TS_IDS = ["implicit-le", "explicit-le", "explicit-be", "deflated"]
# DCMTK storescu: propose this syntax (first); DCMTK storescp: prefer/accept it.
DCMTK_STORESCU_OPTION: dict[str, str] = {
    ImplicitVRLittleEndian: "-xi",
    ExplicitVRLittleEndian: "-xe",
    ExplicitVRBigEndian: "-xb",
    DeflatedExplicitVRLittleEndian: "-xd",
}
DCMTK_STORESCP_OPTION: dict[str, str] = {
    ImplicitVRLittleEndian: "+xi",
    ExplicitVRLittleEndian: "+xe",
    ExplicitVRBigEndian: "+xb",
    DeflatedExplicitVRLittleEndian: "+xd",
}
COMPRESSORS = {"dcmcrle": RLELossless, "dcmcjpeg": JPEGLosslessSV1}
# DCMTK storescu proposes a compressed syntax only when asked to.
DCMTK_STORESCU_COMPRESSED_OPTION = {"dcmcrle": "-xr", "dcmcjpeg": "-xs"}
PIXEL_DATA = 0x7FE00010


# -- test data -------------------------------------------------------------------------


def image(sop_class: str = CTImageStorage, rows: int = 64, seed: int = 0) -> Dataset:
    """A 16-bit image with random pixel data (the bytes are words in the file's order)."""
    rng = random.Random(seed)
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = f"Store^Test{seed}"
    ds.PatientID = f"ID{seed}"
    ds.Modality = "OT"
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = rng.randbytes(rows * rows * 2)
    ds["PixelData"].VR = "OW"
    return ds


def save(dataset: Dataset, path: Path, transfer_syntax: str) -> Path:
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def make_images(directory: Path, transfer_syntax: str, count: int, **kwargs: Any) -> list[Path]:
    return [
        save(image(seed=index, **kwargs), directory / f"image{index}.dcm", transfer_syntax)
        for index in range(count)
    ]


def compressed_image(run_dcmtk: Callable[..., Any], tool: str, directory: Path) -> Path:
    """An image compressed losslessly by DCMTK (``dcmcrle`` or ``dcmcjpeg``)."""
    plain = save(image(rows=128, seed=5), directory / "plain.dcm", ExplicitVRLittleEndian)
    packed = directory / f"{tool}.dcm"
    result = run_dcmtk(tool, str(plain), str(packed))
    assert result.returncode == 0, result.stderr
    plain.unlink()
    assert dcmread(packed).file_meta.TransferSyntaxUID == COMPRESSORS[tool]
    return packed


def pixel_content(dataset: Dataset) -> object:
    """Pixel values of an uncompressed image (byte order resolved), else the raw bytes."""
    syntax = UID(dataset.file_meta.TransferSyntaxUID)
    if syntax.is_compressed:
        return bytes(dataset.PixelData)
    words = array.array("H", dataset.PixelData)
    if (syntax == ExplicitVRBigEndian) == (sys.byteorder == "little"):
        words.byteswap()
    return words.tolist()


def assert_same_instance(sent: Path, received: Path, transfer_syntax: str | None = None) -> None:
    """``received`` holds the instance of ``sent``: same elements, same pixels; and, when
    given, in ``transfer_syntax``."""
    original, copy = dcmread(sent), dcmread(received)
    if transfer_syntax is not None:
        assert copy.file_meta.TransferSyntaxUID == transfer_syntax
    assert copy.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert copy.file_meta.MediaStorageSOPClassUID == original.SOPClassUID
    assert set(copy.keys()) == set(original.keys())
    for element in original:
        if element.tag != PIXEL_DATA:
            assert copy[element.tag].value == element.value, element.keyword
    if PIXEL_DATA in original:
        assert pixel_content(copy) == pixel_content(original)


def stored_by_uid(directory: Path) -> dict[str, Path]:
    """SOP Instance UID -> file, for every DICOM file directly in ``directory``."""
    found = {}
    for path in directory.iterdir():
        if path.is_file():
            found[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    return found


def assert_all_stored(sent: list[Path], directory: Path, transfer_syntax: str | None) -> None:
    stored = stored_by_uid(directory)
    assert len(stored) == len(sent)
    for path in sent:
        uid = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert_same_instance(path, stored[uid], transfer_syntax)


def leftovers(directory: Path) -> list[Path]:
    """Every file under ``directory`` (spool folders included)."""
    return [path for path in directory.rglob("*") if path.is_file()]


def saving_handler(directory: Path) -> Callable[[Any], int]:
    """A pynetdicom C-STORE handler writing what it receives, undecoded, as Part-10."""
    directory.mkdir(parents=True, exist_ok=True)

    def handle(event: Any) -> int:
        uid = event.request.AffectedSOPInstanceUID
        (directory / f"{uid}.dcm").write_bytes(event.encoded_dataset())
        return 0x0000

    return handle


# -- DCMTK storescu -> storescp.py ---------------------------------------------------------


@pytest.mark.parametrize("transfer_syntax", UNCOMPRESSED, ids=TS_IDS)
def test_dcmtk_storescu_to_storescp_sample(
    tmp_path: Path, run_dcmtk: Callable[..., Any], sample_server: Any, transfer_syntax: str
) -> None:
    sent = make_images(tmp_path / "send", transfer_syntax, 3)
    received = tmp_path / "received"
    received.mkdir()
    with sample_server("storescp", "-od", str(received)) as (port, _):
        option = DCMTK_STORESCU_OPTION[transfer_syntax]
        result = run_dcmtk("storescu", option, LOOPBACK, str(port), *map(str, sent))
    assert result.returncode == 0, result.stderr
    assert_all_stored(sent, received, transfer_syntax)
    assert len(leftovers(received)) == len(sent)  # no spool file left behind


# -- storescu.py -> DCMTK storescp and pynetdicom -----------------------------------------


@pytest.mark.parametrize("transfer_syntax", UNCOMPRESSED, ids=TS_IDS)
def test_storescu_sample_to_dcmtk_storescp(
    tmp_path: Path, dcmtk_scp: Any, run_sample: Callable[..., Any], transfer_syntax: str
) -> None:
    sent = make_images(tmp_path / "send", transfer_syntax, 3)
    received = tmp_path / "received"
    received.mkdir()
    option = DCMTK_STORESCP_OPTION[transfer_syntax]
    with dcmtk_scp("storescp", option, "-od", str(received)) as (port, _):
        result = run_sample("storescu", LOOPBACK, str(port), str(tmp_path / "send"))
    assert result.returncode == 0, result.stderr
    assert "3 succeeded, 0 warnings, 0 failed" in result.stdout
    assert_all_stored(sent, received, transfer_syntax)


@pytest.mark.parametrize("transfer_syntax", UNCOMPRESSED, ids=TS_IDS)
def test_storescu_sample_to_pynetdicom(
    tmp_path: Path, pynetdicom_scp: Any, run_sample: Callable[..., Any], transfer_syntax: str
) -> None:
    from pynetdicom import evt

    sent = make_images(tmp_path / "send", transfer_syntax, 3)
    received = tmp_path / "received"
    handlers = {evt.EVT_C_STORE: saving_handler(received)}
    with pynetdicom_scp([CTImageStorage], handlers, transfer_syntaxes=[transfer_syntax]) as (
        port,
        log,
    ):
        result = run_sample("storescu", LOOPBACK, str(port), *map(str, sent))
        log.wait_for("EVT_C_STORE", 3)
    assert result.returncode == 0, result.stderr
    assert_all_stored(sent, received, transfer_syntax)


# -- pynetdicom SCU -> storescp.py -----------------------------------------------------------


@pytest.mark.parametrize("transfer_syntax", UNCOMPRESSED, ids=TS_IDS)
def test_pynetdicom_scu_to_storescp_sample(
    tmp_path: Path, require_pynetdicom: Any, sample_server: Any, transfer_syntax: str
) -> None:
    from pynetdicom import AE

    sent = make_images(tmp_path / "send", transfer_syntax, 2)
    received = tmp_path / "received"
    received.mkdir()
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(CTImageStorage, [transfer_syntax])
    with sample_server("storescp", "-od", str(received)) as (port, _):
        assoc = ae.associate(LOOPBACK, port, ae_title="ANY-SCP")
        assert assoc.is_established
        try:
            statuses = [assoc.send_c_store(dcmread(path)).Status for path in sent]
        finally:
            assoc.release()
    assert statuses == [0x0000, 0x0000]
    assert_all_stored(sent, received, transfer_syntax)


# -- compressed data passes through untouched -----------------------------------------------


@pytest.mark.parametrize("tool", sorted(COMPRESSORS))
def test_compressed_pixel_data_passes_through_every_hop(
    tmp_path: Path,
    tool: str,
    run_dcmtk: Callable[..., Any],
    dcmtk_scp: Any,
    sample_server: Any,
    run_sample: Callable[..., Any],
) -> None:
    """DCMTK storescu -> storescp.py -> (stored file) storescu.py -> DCMTK storescp."""
    original = compressed_image(run_dcmtk, tool, tmp_path / "send")
    first_hop = tmp_path / "first"
    second_hop = tmp_path / "second"
    first_hop.mkdir()
    second_hop.mkdir()
    with sample_server("storescp", "-od", str(first_hop)) as (port, _):
        option = DCMTK_STORESCU_COMPRESSED_OPTION[tool]
        result = run_dcmtk("storescu", option, LOOPBACK, str(port), str(original))
    assert result.returncode == 0, result.stderr
    (stored,) = stored_by_uid(first_hop).values()
    assert_same_instance(original, stored, COMPRESSORS[tool])
    with dcmtk_scp("storescp", "+xa", "-od", str(second_hop)) as (port, _):
        result = run_sample("storescu", LOOPBACK, str(port), str(stored))
    assert result.returncode == 0, result.stderr
    (forwarded,) = stored_by_uid(second_hop).values()
    assert_same_instance(original, forwarded, COMPRESSORS[tool])


def test_compressed_storescu_sample_to_storescp_sample(
    tmp_path: Path, run_dcmtk: Callable[..., Any], sample_server: Any, run_sample: Any
) -> None:
    original = compressed_image(run_dcmtk, "dcmcrle", tmp_path / "send")
    received = tmp_path / "received"
    received.mkdir()
    with sample_server("storescp", "-od", str(received)) as (port, _):
        result = run_sample("storescu", LOOPBACK, str(port), str(original))
    assert result.returncode == 0, result.stderr
    (stored,) = stored_by_uid(received).values()
    assert_same_instance(original, stored, RLELossless)


# -- conversion to what the peer accepts ------------------------------------------------------


@pytest.mark.parametrize(
    "transfer_syntax",
    [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian],
    ids=["explicit-be", "deflated", "explicit-le"],
)
def test_storescu_sample_converts_for_an_implicit_only_peer(
    tmp_path: Path, pynetdicom_scp: Any, run_sample: Callable[..., Any], transfer_syntax: str
) -> None:
    from pynetdicom import evt

    sent = make_images(tmp_path / "send", transfer_syntax, 2)
    received = tmp_path / "received"
    handlers = {evt.EVT_C_STORE: saving_handler(received)}
    with pynetdicom_scp([CTImageStorage], handlers, transfer_syntaxes=[ImplicitVRLittleEndian]) as (
        port,
        log,
    ):
        result = run_sample("storescu", LOOPBACK, str(port), *map(str, sent))
        log.wait_for("EVT_C_STORE", 2)
    assert result.returncode == 0, result.stderr
    assert_all_stored(sent, received, ImplicitVRLittleEndian)


# -- many SOP classes, rejected SOP classes ---------------------------------------------------


def test_more_sop_classes_than_one_association_holds(
    tmp_path: Path, pynetdicom_scp: Any, run_sample: Callable[..., Any]
) -> None:
    classes = list(STORAGE_SOP_CLASSES[:130])
    send = tmp_path / "send"
    sent = [
        save(
            image(sop_class, rows=4, seed=index), send / f"{index:03d}.dcm", ExplicitVRLittleEndian
        )
        for index, sop_class in enumerate(classes)
    ]
    from pynetdicom import evt

    received = tmp_path / "received"
    handlers = {evt.EVT_C_STORE: saving_handler(received)}

    with pynetdicom_scp(classes, handlers, transfer_syntaxes=[ExplicitVRLittleEndian]) as (
        port,
        log,
    ):
        result = run_sample("storescu", LOOPBACK, str(port), str(send), timeout=120)
        log.wait_for("EVT_C_STORE", len(classes))
        log.wait_for("EVT_RELEASED", 2)
    assert result.returncode == 0, result.stderr
    assert f"{len(classes)} succeeded, 0 warnings, 0 failed" in result.stdout
    assert log.names.count("EVT_ACCEPTED") == 2  # 128 contexts, then the last 2
    assert_all_stored(sent, received, ExplicitVRLittleEndian)


def test_rejected_sop_class_is_reported_and_the_others_are_stored(
    tmp_path: Path, pynetdicom_scp: Any, run_sample: Callable[..., Any]
) -> None:
    from pynetdicom import evt

    send = tmp_path / "send"
    ct = save(image(CTImageStorage, seed=1), send / "ct.dcm", ExplicitVRLittleEndian)
    mr = save(image(MRImageStorage, seed=2), send / "mr.dcm", ExplicitVRLittleEndian)
    sc = save(image(SecondaryCaptureImageStorage, seed=3), send / "sc.dcm", ImplicitVRLittleEndian)
    (send / "notes.txt").write_text("not DICOM\n")
    received = tmp_path / "received"
    handlers = {evt.EVT_C_STORE: saving_handler(received)}
    with pynetdicom_scp([CTImageStorage, SecondaryCaptureImageStorage], handlers) as (port, log):
        result = run_sample("storescu", LOOPBACK, str(port), str(send))
        log.wait_for("EVT_C_STORE", 2)
    assert result.returncode == 1
    assert "2 succeeded, 0 warnings, 1 failed" in result.stdout
    assert f"failed: {mr}" in result.stderr
    assert "notes.txt" in result.stderr  # skipped with a warning, not counted
    stored = stored_by_uid(received)
    assert len(stored) == 2
    for path in (ct, sc):
        assert_same_instance(path, stored[str(dcmread(path).SOPInstanceUID)])


def test_storescu_sample_reports_refusing_peer_status(
    tmp_path: Path, pynetdicom_scp: Any, run_sample: Callable[..., Any]
) -> None:
    from pynetdicom import evt

    sent = make_images(tmp_path / "send", ExplicitVRLittleEndian, 2)
    answers = iter([0xA700, 0xB007])
    handlers = {evt.EVT_C_STORE: lambda event: next(answers)}
    with pynetdicom_scp([CTImageStorage], handlers) as (port, log):
        result = run_sample("storescu", LOOPBACK, str(port), *map(str, sent))
        log.wait_for("EVT_C_STORE", 2)
    assert result.returncode == 1
    assert "0 succeeded, 1 warnings, 1 failed" in result.stdout
    assert f"failed: {sent[0]}: status 0xA700" in result.stderr


# -- storescp.py: failures leave nothing behind -------------------------------------------------


def test_storescp_sample_answers_out_of_resources_when_it_cannot_store(
    tmp_path: Path, require_pynetdicom: Any, sample_server: Any
) -> None:
    from pynetdicom import AE

    received = tmp_path / "received"
    received.mkdir()
    blocked, fine = image(seed=1), image(seed=2)
    for dataset in (blocked, fine):
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    with sample_server("storescp", "-od", str(received)) as (port, _):
        assoc = ae.associate(LOOPBACK, port, ae_title="ANY-SCP")
        assert assoc.is_established
        try:
            # Learn the file name storescp uses, then put a directory in its way.
            assert assoc.send_c_store(blocked).Status == 0x0000
            (name,) = [path.name for path in leftovers(received)]
            (received / name).unlink()
            (received / name).mkdir()
            status = assoc.send_c_store(blocked)
            other = assoc.send_c_store(fine).Status
        finally:
            assoc.release()
    assert status.Status == 0xA700
    assert "ErrorComment" in status
    assert other == 0x0000  # the association goes on
    assert not any((received / name).iterdir())
    # Only the instance that could be stored is left: no spool file, no partial copy.
    assert set(stored_by_uid(received)) == {fine.SOPInstanceUID}
    assert len(leftovers(received)) == 1


@contextlib.contextmanager
def dicomnet_scu(port: int, sop_class: str, transfer_syntax: str) -> Iterator[tuple[DicomNet, int]]:
    """An associated dicomnet SCU in this process; yields (net, presentation context ID)."""
    DicomNet.Startup()
    net = DicomNet()
    try:
        net.Connect(None, 0, LOOPBACK, port)
        net.wait_connected()
        request = DicomAssociate(True)
        request.Calling, request.Called = "DICOMNET", "ANY-SCP"
        request.AddPresentationContext(1, DicomAssociateAcceptResultType.Success, sop_class)
        request.AddTransfer(1, transfer_syntax)
        net.SendAssociateRequest(request)
        accepted = net.wait_associated(timeout=10)
        assert accepted.GetResult(1) == DicomAssociateAcceptResultType.Success
        yield net, 1
        net.SendReleaseRequest()
        net.wait_released(timeout=10)
    finally:
        net.Close()
        DicomNet.Shutdown()


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_storescp_sample_never_uses_a_peer_uid_as_a_path(
    tmp_path: Path, sample_server: Any
) -> None:
    received = tmp_path / "box" / "received"
    received.mkdir(parents=True)
    dataset = image(seed=3)
    hostile = "../../escaped"
    dataset.SOPInstanceUID = hostile
    with (
        sample_server("storescp", "-od", str(received)) as (port, _),
        dicomnet_scu(port, CTImageStorage, ExplicitVRLittleEndian) as (net, context_id),
    ):
        message_id = net.next_message_id()
        net.SendCStoreRequest(
            context_id,
            message_id,
            CTImageStorage,
            hostile,
            DicomCommandPriorityType.Medium,
            "",
            0,
            dataset,
        )
        assert net.wait_response(message_id, timeout=10).status == 0x0000
    (stored,) = leftovers(tmp_path)  # nothing escaped the output directory
    assert stored.parent == received
    assert ".." not in stored.name and "escaped" not in stored.name
    assert dcmread(stored).SOPInstanceUID == hostile


def raw_association(port: int) -> socket.socket:
    """A plain socket associated with the SCP on ``port`` (CT Image Storage on context 1,
    Implicit VR LE), for sending what no well-behaved SCU would."""
    request = DicomAssociate(True)
    request.Calling, request.Called = "RAWSCU", "ANY-SCP"
    request.MaxLength = 16384
    request.AddPresentationContext(1, DicomAssociateAcceptResultType.Success, CTImageStorage)
    request.AddTransfer(1, ImplicitVRLittleEndian)
    sock = socket.create_connection((LOOPBACK, port), timeout=10)
    sock.sendall(encode_pdu(request.to_request_pdu()))
    pdu_type, _ = read_pdu(sock)
    assert pdu_type == 0x02, "association not accepted"
    return sock


def send_store_command(sock: socket.socket, data_set_type: int) -> None:
    command = encode_command_set(
        {
            "CommandField": 0x0001,
            "MessageID": 1,
            "Priority": 0,
            "AffectedSOPClassUID": CTImageStorage,
            "AffectedSOPInstanceUID": "1.2.3.4.5",
            "CommandDataSetType": data_set_type,
        }
    )
    sock.sendall(pdata_header(1, CONTROL_COMMAND | CONTROL_LAST, len(command)) + command)


def read_pdu(sock: socket.socket) -> RawPdu:
    received = recv_pdu(sock)
    assert received is not None, "peer closed the connection"
    return received


def test_storescp_sample_refuses_a_store_without_data_set(
    tmp_path: Path, sample_server: Any
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    with sample_server("storescp", "-od", str(received)) as (port, _):
        sock = raw_association(port)
        with sock:
            send_store_command(sock, NO_DATA_SET)
            pdu_type, body = read_pdu(sock)
            sock.sendall(encode_pdu(Abort(0, 0)))
    assert pdu_type == 0x04
    ((_, _, fragment),) = list(split_pdvs(memoryview(body)))
    response = decode_command_set(fragment)
    assert response["CommandField"] == 0x8001
    assert response["Status"] == 0xC000  # Error: cannot understand
    assert leftovers(received) == []


@pytest.mark.parametrize("how", ["a-abort", "connection-drop"])
def test_storescp_sample_leaves_no_file_when_the_scu_aborts_mid_transfer(
    tmp_path: Path, sample_server: Any, how: str
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    data_set = (  # Implicit VR LE: Patient's Name, then 4 MB of pixel data
        b"\x10\x00\x10\x00\x08\x00\x00\x00Halfway^"
        + b"\xe0\x7f\x10\x00"
        + struct.pack("<L", 4_000_000)
        + random.Random(1).randbytes(4_000_000)
    )
    half = len(data_set) // 2
    with sample_server("storescp", "-od", str(received)) as (port, server):
        sock = raw_association(port)
        send_store_command(sock, DATA_SET_PRESENT)
        for start in range(0, half, 16000):
            chunk = data_set[start : min(start + 16000, half)]
            sock.sendall(pdata_header(1, 0, len(chunk)) + chunk)
        # The half sent so far sits in a spool file until the abort.
        wait_until(
            lambda: sum(p.stat().st_size for p in received.rglob("*.part")) >= half,
            WAIT_SERVER,
            "the half data set in a spool file",
        )
        if how == "a-abort":
            sock.sendall(encode_pdu(Abort(0, 0)))
        else:  # linger 0: close() resets the connection, no A-ABORT, no FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        wait_until(lambda: not leftovers(received), WAIT_SERVER, "the spool file to go")
        assert server.returncode is None  # still serving
    assert leftovers(received) == []
