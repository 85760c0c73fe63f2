"""Tests of Part-10 files on both sides of a C-STORE: spooling received data sets
(dicomnet.dimse.spool) and sending data sets from files (dicomnet.dimse.part10), PS3.10 7.1.

Golden vectors: the C-STORE data sets DCMTK storescu sent (plain and deflated), spooled
and read back by pydicom. Files to send are written by pydicom; pydicom, zlib and
``array`` byte swapping check what comes out independently of the code under test.
"""

from __future__ import annotations

import array
import errno
import gc
import itertools
import os
import random
import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element
from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from dicomnet.dimse import spool
from dicomnet.dimse.commands import decode_command_set
from dicomnet.dimse.fragment import DataSource, FileSource
from dicomnet.dimse.part10 import (
    Part10File,
    part10_source,
    read_part10_header,
    read_part10_start,
)
from dicomnet.dimse.spool import SpooledFile, SpoolSink
from dicomnet.errors import DIMSEError
from dicomnet.pdu import split_pdvs

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pdus"
UNCOMPRESSED = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
]
ROWS = COLUMNS = 32
WORDS = [random.Random(7).randrange(0x10000) for _ in range(ROWS * COLUMNS)]
LARGE_VALUE = 3 * spool.DEFER_SIZE  # bigger than what read_dataset reads eagerly
# A sequence of undefined length whose first "item" is a plain element: pydicom, which
# forgives most damage, cannot read past it.
UNPARSEABLE = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\x08\x00\x16\x00\x00\x00\x00\x00"


# -- helpers ---------------------------------------------------------------------------


def recorded_store(name: str) -> tuple[dict[str, object], list[bytes]]:
    """The C-STORE-RQ command and its data set fragments in a recorded stream."""
    command = bytearray()
    fragments = []
    for line in (FIXTURES / name).read_text().splitlines():
        direction, hex_pdu = line.split()
        pdu = bytes.fromhex(hex_pdu)
        if direction != ">" or pdu[0] != 0x04:
            continue
        for _, control, fragment in split_pdvs(memoryview(pdu)[6:]):
            if control & 0x01:
                command += fragment
            else:
                fragments.append(bytes(fragment))
    return decode_command_set(command), fragments


def spool_fragments(
    directory: Path,
    transfer_syntax: str,
    fragments: list[bytes],
    sop_class: str = CTImageStorage,
    sop_instance: str = "1.2.3",
) -> SpooledFile:
    sink = SpoolSink(str(directory), sop_class, sop_instance, transfer_syntax)
    for fragment in fragments:
        sink.write(memoryview(fragment))
    return sink.close()


def words_bytes(words: list[int], little_endian: bool) -> bytes:
    packed = array.array("H", words)
    if little_endian != (struct.pack("=H", 1) == b"\x01\x00"):
        packed.byteswap()
    return packed.tobytes()


def words_of(dataset: Dataset, little_endian: bool) -> list[int]:
    """Pixel values of a 16-bit image, decoded in the given byte order."""
    return list(struct.unpack(f"{'<>'[not little_endian]}{ROWS * COLUMNS}H", dataset.PixelData))


def ct_image(little_endian: bool = True) -> Dataset:
    """A small CT image whose pixel data holds WORDS in the given byte order."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Spool^Test"
    ds.PatientID = "P1"
    ds.Modality = "CT"
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter = 40
    ds.PixelData = words_bytes(WORDS, little_endian)
    ds["PixelData"].VR = "OW"
    return ds


def write_part10(path: Path, dataset: Dataset, transfer_syntax: str) -> Path:
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    dataset.save_as(path, enforce_file_format=True)
    return path


def explicit_le_element_bytes(dataset: Dataset) -> bytes:
    """Elements of ``dataset`` in Explicit VR Little Endian, without a group length."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    for element in dataset:
        write_data_element(buffer, element)
    return buffer.getvalue()


def source_bytes(source: DataSource) -> bytes:
    return b"".join(bytes(chunk) for chunk in source.chunks(4096))


def parse_sent(data: bytes, transfer_syntax: str) -> Dataset:
    """Parse data set bytes as a peer receiving them in ``transfer_syntax`` would."""
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    return read_dataset(
        BytesIO(data),
        is_implicit_VR=transfer_syntax == ImplicitVRLittleEndian,
        is_little_endian=transfer_syntax != ExplicitVRBigEndian,
    )


# -- SpoolSink: received data sets become Part-10 files ---------------------------------


@pytest.mark.parametrize(
    ("fixture", "transfer_syntax"),
    [
        ("dcmtk-storescu_dcmtk-storescp.pdus", ExplicitVRLittleEndian),
        ("dcmtk-storescu-deflate_dcmtk-storescp-deflate.pdus", DeflatedExplicitVRLittleEndian),
    ],
)
def test_spooled_dcmtk_store_is_a_part10_file_pydicom_reads(
    tmp_path: Path, fixture: str, transfer_syntax: str
) -> None:
    command, fragments = recorded_store(fixture)
    sop_class = str(command["AffectedSOPClassUID"])
    sop_instance = str(command["AffectedSOPInstanceUID"])

    spooled = spool_fragments(tmp_path, transfer_syntax, fragments, sop_class, sop_instance)

    raw = Path(spooled.path).read_bytes()
    assert raw[spooled.data_offset :] == b"".join(fragments)
    assert spooled.length == sum(map(len, fragments))
    assert spooled.transfer_syntax == transfer_syntax
    dataset = dcmread(spooled.path)
    assert dataset.file_meta.TransferSyntaxUID == transfer_syntax
    assert dataset.file_meta.MediaStorageSOPClassUID == sop_class
    assert dataset.file_meta.MediaStorageSOPInstanceUID == sop_instance
    assert dataset.SOPInstanceUID == sop_instance
    assert (dataset.Rows, dataset.Columns, dataset.BitsAllocated) == (512, 512, 16)
    assert len(dataset.PixelData) == 512 * 512 * 2


def test_plain_and_deflated_recordings_spool_to_the_same_data_set(tmp_path: Path) -> None:
    plain = spool_fragments(
        tmp_path,
        ExplicitVRLittleEndian,
        recorded_store("dcmtk-storescu_dcmtk-storescp.pdus")[1],
    )
    deflated = spool_fragments(
        tmp_path,
        DeflatedExplicitVRLittleEndian,
        recorded_store("dcmtk-storescu-deflate_dcmtk-storescp-deflate.pdus")[1],
    )
    assert dcmread(plain.path) == dcmread(deflated.path)


def test_spooled_header_agrees_with_read_part10_header(tmp_path: Path) -> None:
    data = explicit_le_element_bytes(ct_image())
    spooled = spool_fragments(tmp_path, ExplicitVRLittleEndian, [data[:100], data[100:]])
    header = read_part10_header(spooled.path)
    assert (header.data_offset, header.data_length) == (spooled.data_offset, spooled.length)
    assert header.transfer_syntax == ExplicitVRLittleEndian
    assert (header.sop_class_uid, header.sop_instance_uid) == (CTImageStorage, "1.2.3")


def test_discard_removes_the_spool_file_before_and_after_close(tmp_path: Path) -> None:
    open_sink = SpoolSink(str(tmp_path), CTImageStorage, "1.2.3", ExplicitVRLittleEndian)
    open_sink.write(memoryview(b"\x08\x00\x16\x00UI\x02\x001\x00"))
    open_sink.discard()
    closed = spool_fragments(tmp_path, ExplicitVRLittleEndian, [b"\x08\x00\x18\x00UI\x02\x002\x00"])
    assert Path(closed.path).exists()
    closed.discard()
    closed.discard()  # a second discard is harmless
    assert list(tmp_path.iterdir()) == []


def test_a_failing_disk_write_is_a_dimse_error_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = SpoolSink(str(tmp_path), CTImageStorage, "1.2.3", ExplicitVRLittleEndian)

    def disk_full(fd: int, buffers: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool.os, "writev", disk_full)
    sink.write(memoryview(b"\0" * 16))  # held until the receiver flushes
    with pytest.raises(DIMSEError, match="No space left") as raised:
        sink.flush()
    assert list(tmp_path.iterdir()) == []
    # What the log and the refusal say: the OS error first, no meaningless code
    assert str(raised.value).startswith("No space left on device (ENOSPC) writing the spool")
    assert "(Parameter)" not in str(raised.value)
    # What the peer is told (the refusal's Error Comment): the reason, not the local path
    assert raised.value.reason == "No space left on device (ENOSPC)"


def test_a_spooled_deflated_data_set_that_would_inflate_beyond_the_limit_is_refused(
    tmp_path: Path,
) -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = bomb.compress(b"\x00" * (8 << 20)) + bomb.flush()  # 8 MiB of zeros, ~8 KiB
    sink = SpoolSink(str(tmp_path), CTImageStorage, "1.2.3", DeflatedExplicitVRLittleEndian)
    sink.write(memoryview(deflated))
    sink.flush()
    spooled = sink.close()
    with pytest.raises(DIMSEError, match="inflates to more than"):
        spooled.read_dataset(1 << 20)


def test_fragments_are_written_together_and_partial_writes_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = SpoolSink(str(tmp_path), CTImageStorage, "1.2.3", ExplicitVRLittleEndian)
    real_writev = spool.os.writev
    calls: list[int] = []

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return real_writev(fd, [bytes(buffers[0])[:3]])  # the kernel took 3 bytes only

    monkeypatch.setattr(spool.os, "writev", short_writev)
    fragments = [bytes([n]) * 10 for n in range(5)]
    for fragment in fragments:
        sink.write(memoryview(fragment))
    assert calls == []
    spooled = sink.close()
    assert calls[0] == 6  # the meta header and the five fragments in one writev
    with open(spooled.path, "rb") as f:
        assert f.read(132)[128:] == b"DICM"
        f.seek(spooled.data_offset)
        assert f.read() == b"".join(fragments)


def test_an_unusable_spool_directory_is_a_dimse_error(tmp_path: Path) -> None:
    with pytest.raises(DIMSEError, match="spool"):
        SpoolSink(str(tmp_path / "missing"), CTImageStorage, "1.2.3", ExplicitVRLittleEndian)


def test_spool_files_get_new_names_and_never_open_a_file_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "_spool_numbers", itertools.count(7))
    # what an earlier process with the same number left under the next name
    left_behind = tmp_path / f"dicomnet-{os.getpid()}-7.part"
    left_behind.write_bytes(b"kept")
    sinks = [
        SpoolSink(str(tmp_path), CTImageStorage, f"1.2.{n}", ExplicitVRLittleEndian) for n in (1, 2)
    ]
    paths = [sink.path for sink in sinks]
    assert len(set(paths)) == 2 and str(left_behind) not in paths
    assert left_behind.read_bytes() == b"kept"
    for sink in sinks:
        sink.close()
    assert all(Path(path).read_bytes()[128:132] == b"DICM" for path in paths)
    assert all(Path(path).stat().st_mode & 0o777 == 0o600 for path in paths)


def test_a_spool_file_in_a_relative_directory_has_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "spool").mkdir()
    monkeypatch.chdir(tmp_path)
    sink = SpoolSink("spool", CTImageStorage, "1.2.3", ExplicitVRLittleEndian)
    sink.write(memoryview(b"\x08\x00\x18\x00UI\x06\x001.2.3\x00"))
    monkeypatch.chdir("/")  # the application may change directory before keeping it
    spooled = sink.close()
    assert os.path.isabs(spooled.path) and Path(spooled.path).parent == tmp_path / "spool"
    assert read_part10_header(spooled.path).sop_instance_uid == "1.2.3"


def test_read_dataset_defers_large_values_and_removes_the_file_when_collected(
    tmp_path: Path,
) -> None:
    image = ct_image()
    image.EncapsulatedDocument = b"A" * LARGE_VALUE
    spooled = spool_fragments(tmp_path, ExplicitVRLittleEndian, [explicit_le_element_bytes(image)])
    path = Path(spooled.path)

    dataset = spooled.read_dataset(1 << 20)
    assert dataset.PatientName == "Spool^Test"
    # Overwrite the large value on disk: a deferred value is read from the file only
    # now, so the Dataset sees the new bytes.
    stat = path.stat()
    path.write_bytes(path.read_bytes().replace(b"A" * LARGE_VALUE, b"B" * LARGE_VALUE))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # pydicom checks the mtime
    assert dataset.EncapsulatedDocument == b"B" * LARGE_VALUE
    assert path.exists()

    del dataset
    gc.collect()
    assert not path.exists()


def test_read_dataset_of_garbage_is_a_dimse_error(tmp_path: Path) -> None:
    spooled = spool_fragments(tmp_path, ExplicitVRLittleEndian, [UNPARSEABLE])
    with pytest.raises(DIMSEError, match="does not parse"):
        spooled.read_dataset(1 << 20)


# -- read_part10_header ------------------------------------------------------------------


@pytest.mark.parametrize("transfer_syntax", [*UNCOMPRESSED, RLELossless])
def test_header_of_a_pydicom_file(tmp_path: Path, transfer_syntax: str) -> None:
    image = ct_image(little_endian=transfer_syntax != ExplicitVRBigEndian)
    if transfer_syntax == RLELossless:
        image.PixelData = encapsulate([b"\x01\x02\x03\x04"])
    path = write_part10(tmp_path / "image.dcm", image, transfer_syntax)
    meta = dcmread(path).file_meta

    header = read_part10_header(path)

    assert header.path == str(path)
    assert header.sop_class_uid == meta.MediaStorageSOPClassUID == CTImageStorage
    assert header.sop_instance_uid == meta.MediaStorageSOPInstanceUID == image.SOPInstanceUID
    assert header.transfer_syntax == transfer_syntax
    # preamble, "DICM", the 12-byte group length element, then the group it counts
    assert header.data_offset == 128 + 4 + 12 + meta.FileMetaInformationGroupLength
    assert header.data_length == path.stat().st_size - header.data_offset


def test_header_of_a_file_whose_meta_outgrows_the_first_read(tmp_path: Path) -> None:
    image = ct_image()
    path = write_part10(tmp_path / "big-meta.dcm", image, ExplicitVRLittleEndian)
    with_private = dcmread(path)
    with_private.file_meta.PrivateInformationCreatorUID = "1.2.3.5"
    with_private.file_meta.PrivateInformation = b"\x01" * 20000  # (0002,0102) OB
    with_private.save_as(path, enforce_file_format=True)
    meta = dcmread(path).file_meta

    header = read_part10_header(path)

    assert header.sop_instance_uid == image.SOPInstanceUID
    assert header.data_offset == 128 + 4 + 12 + meta.FileMetaInformationGroupLength
    assert header.data_offset > 20000
    # the data set's start is read after the meta group, from where it begins
    data_set = read_part10_start(path, 64)[1]
    assert data_set == path.read_bytes()[header.data_offset : header.data_offset + 64]


def test_header_of_a_file_without_group_length(tmp_path: Path) -> None:
    meta = Dataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.3.99"
    prefix = b"\0" * 128 + b"DICM" + explicit_le_element_bytes(meta)
    body = explicit_le_element_bytes(ct_image())
    path = tmp_path / "no-group-length.dcm"
    path.write_bytes(prefix + body)

    header = read_part10_header(path)

    assert (header.sop_class_uid, header.sop_instance_uid) == (CTImageStorage, "1.2.3.4")
    assert header.transfer_syntax == ExplicitVRLittleEndian
    assert (header.data_offset, header.data_length) == (len(prefix), len(body))
    assert parse_sent(body, ExplicitVRLittleEndian) == dcmread(path, force=True)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a DICOM file\n", b"\0" * 128 + b"DICX" + b"\0" * 64, b"\0" * 131],
    ids=["empty", "text", "wrong-magic", "preamble-only"],
)
def test_a_non_dicom_file_is_a_dimse_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(DIMSEError, match="not a DICOM Part-10 file"):
        read_part10_header(path)


def test_meta_without_transfer_syntax_is_a_dimse_error(tmp_path: Path) -> None:
    meta = Dataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    path = tmp_path / "no-ts.dcm"
    path.write_bytes(
        b"\0" * 128
        + b"DICM"
        + explicit_le_element_bytes(meta)
        + explicit_le_element_bytes(ct_image())
    )
    with pytest.raises(DIMSEError, match="TransferSyntaxUID"):
        read_part10_header(path)


def part10_bytes(dataset: Dataset, transfer_syntax: str) -> bytes:
    buffer = BytesIO()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


SAMPLE_FILE = part10_bytes(ct_image(), ExplicitVRLittleEndian)
# preamble, "DICM", the 12-byte group length element, then the group it counts
SAMPLE_DATA_OFFSET = 128 + 4 + 12 + struct.unpack_from("<L", SAMPLE_FILE, 140)[0]


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=SAMPLE_DATA_OFFSET + 40))
def test_a_file_truncated_anywhere_gives_a_header_or_a_dimse_error(
    tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    path = tmp_path_factory.mktemp("cut") / "truncated.dcm"
    path.write_bytes(SAMPLE_FILE[:cut])
    if cut < SAMPLE_DATA_OFFSET + 8:  # not even one data set element header after the meta
        with pytest.raises(DIMSEError):
            read_part10_header(path)
    else:
        header = read_part10_header(path)
        assert (header.data_offset, header.data_length) == (
            SAMPLE_DATA_OFFSET,
            cut - SAMPLE_DATA_OFFSET,
        )


@settings(max_examples=200, deadline=None)
@given(junk=st.binary(max_size=300))
def test_arbitrary_bytes_after_the_prefix_never_raise_anything_but_dimse_error(
    tmp_path_factory: pytest.TempPathFactory, junk: bytes
) -> None:
    path = tmp_path_factory.mktemp("junk") / "junk.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + junk)
    try:
        header = read_part10_header(path)
    except DIMSEError:
        return
    assert 132 <= header.data_offset <= path.stat().st_size


# -- part10_source -------------------------------------------------------------------------


@pytest.mark.parametrize("transfer_syntax", UNCOMPRESSED)
def test_same_transfer_syntax_sends_the_file_bytes_unchanged(
    tmp_path: Path, transfer_syntax: str
) -> None:
    image = ct_image(little_endian=transfer_syntax != ExplicitVRBigEndian)
    path = write_part10(tmp_path / "image.dcm", image, transfer_syntax)
    header = read_part10_header(path)

    source = part10_source(header, transfer_syntax)

    assert isinstance(source, FileSource)
    assert (source.offset, source.length) == (header.data_offset, header.data_length)
    sent = source_bytes(source)
    assert sent == path.read_bytes()[header.data_offset :]
    assert parse_sent(sent, transfer_syntax) == dcmread(path)


@pytest.mark.parametrize(
    ("stored", "accepted"),
    [
        (stored, accepted)
        for stored in UNCOMPRESSED
        for accepted in UNCOMPRESSED
        if stored != accepted
    ],
)
def test_uncompressed_files_are_converted_to_the_accepted_syntax(
    tmp_path: Path, stored: str, accepted: str
) -> None:
    image = ct_image(little_endian=stored != ExplicitVRBigEndian)
    path = write_part10(tmp_path / "image.dcm", image, stored)

    received = parse_sent(source_bytes(part10_source(read_part10_header(path), accepted)), accepted)

    original = dcmread(path)
    for keyword in ("SOPInstanceUID", "PatientName", "Rows", "Columns", "WindowCenter"):
        assert received[keyword].value == original[keyword].value
    assert set(received.keys()) == set(original.keys())
    # Pixel values, not bytes: a Big Endian side must have swapped every word.
    assert words_of(received, accepted != ExplicitVRBigEndian) == WORDS


def test_converting_does_not_change_the_callers_file(tmp_path: Path) -> None:
    path = write_part10(tmp_path / "be.dcm", ct_image(little_endian=False), ExplicitVRBigEndian)
    before = path.read_bytes()
    source_bytes(part10_source(read_part10_header(path), ExplicitVRLittleEndian))
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("stored", "accepted"),
    [(RLELossless, ExplicitVRLittleEndian), (ExplicitVRLittleEndian, RLELossless)],
    ids=["compressed-file", "compressed-context"],
)
def test_compressed_mismatch_is_a_dimse_error(tmp_path: Path, stored: str, accepted: str) -> None:
    image = ct_image()
    if stored == RLELossless:
        image.PixelData = encapsulate([b"\x01\x02\x03\x04"])
    header = read_part10_header(write_part10(tmp_path / "image.dcm", image, stored))
    with pytest.raises(DIMSEError, match="does not transcode"):
        part10_source(header, accepted)


def test_an_unparseable_file_to_convert_is_a_dimse_error(tmp_path: Path) -> None:
    path = write_part10(tmp_path / "image.dcm", ct_image(), ExplicitVRLittleEndian)
    data_offset = read_part10_header(path).data_offset
    path.write_bytes(path.read_bytes()[:data_offset] + UNPARSEABLE)
    header = read_part10_header(path)
    with pytest.raises(DIMSEError, match="does not parse"):
        part10_source(header, ImplicitVRLittleEndian)


def test_a_header_naming_a_shortened_file_is_a_dimse_error(tmp_path: Path) -> None:
    path = write_part10(tmp_path / "image.dcm", ct_image(), ExplicitVRLittleEndian)
    header = read_part10_header(path)
    stale = Part10File(
        str(path),
        header.sop_class_uid,
        header.sop_instance_uid,
        header.transfer_syntax,
        header.data_offset,
        header.data_length + 10,
    )
    with pytest.raises(DIMSEError):
        part10_source(stale, ExplicitVRLittleEndian)


def test_a_header_read_that_fails_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as directory:
        read_part10_header(tmp_path)  # opens, then fails to read
    assert directory.value.filename == str(tmp_path)
    with pytest.raises(FileNotFoundError) as missing:
        read_part10_header(tmp_path / "gone.dcm")
    assert missing.value.filename == str(tmp_path / "gone.dcm")
