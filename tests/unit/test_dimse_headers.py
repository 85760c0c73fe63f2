"""The Part-10 header reader (dicomnet.dimse.headers) against pydicom's own reader: the
same elements with the same values, for every encoding it handles; ``NotPlain`` for the
files it leaves to pydicom, and for broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from dicomnet.dimse import headers
from dicomnet.dimse.headers import NotPlain, read_header
from dicomnet.dimse.part10 import read_part10_header

PLAIN = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def image(**attributes: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Doe^John"
    ds.PatientID = "PID-1"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = "20240105"
    ds.Rows = ds.Columns = 4
    ds.PixelSpacing = [0.5, 0.5]
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def save(directory: Path, ds: Dataset, transfer_syntax: str, undefined: bool = False) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    if undefined:  # sequences and items of undefined length, as many devices write them
        for element in ds.iterall():
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def assert_same_as_pydicom(path: Path) -> None:
    header = read_header(path)
    fast = header.dataset()
    slow = dcmread(path, stop_before_pixels=True)
    assert [element.tag for element in fast] == [element.tag for element in slow]
    for element in slow:
        assert fast[element.tag].value == element.value, element.keyword
        assert fast[element.tag].VR == element.VR, element.keyword
    assert fast.file_meta.TransferSyntaxUID == slow.file_meta.TransferSyntaxUID
    assert header.transfer_syntax == slow.file_meta.TransferSyntaxUID
    assert list(header.elements) == [element.tag for element in slow]


def with_sequences() -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-A0100", "SRT", "Brain"
    inner = Dataset()
    inner.ReferencedSOPClassUID = CTImageStorage
    inner.ReferencedSOPInstanceUID = generate_uid()
    request = Dataset()
    request.RequestedProcedureID = "RP1"
    request.ScheduledProcedureStepID = "SPS1"
    request.ReferencedStudySequence = Sequence([inner])  # nested
    return image(
        AnatomicRegionSequence=Sequence([code]),
        RequestAttributesSequence=Sequence([request, Dataset()]),  # an empty item too
        ReferencedImageSequence=Sequence([]),  # an empty sequence
    )


@pytest.mark.parametrize("transfer_syntax", PLAIN)
@pytest.mark.parametrize("undefined", [False, True])
def test_sequences_defined_and_undefined_read_as_pydicom_reads_them(
    tmp_path: Path, transfer_syntax: str, undefined: bool
) -> None:
    assert_same_as_pydicom(save(tmp_path, with_sequences(), transfer_syntax, undefined))


@pytest.mark.parametrize("transfer_syntax", PLAIN)
def test_the_header_stops_before_the_pixel_data(tmp_path: Path, transfer_syntax: str) -> None:
    ds = image(BitsAllocated=16, SamplesPerPixel=1, PixelRepresentation=0)
    ds.PixelData = bytes(4 * 4 * 2)
    ds.add_new(0x7FE10010, "OB", b"\0\1")  # after the pixel data: not the header
    header = read_header(save(tmp_path, ds, transfer_syntax))
    assert 0x7FE00010 not in header.elements and 0x7FE10010 not in header.elements
    assert header.dataset().PatientName == "Doe^John"


def test_a_file_without_pixel_data_is_read_to_its_end(tmp_path: Path) -> None:
    path = save(tmp_path, image(ImageComments="last element"), ExplicitVRLittleEndian)
    assert_same_as_pydicom(path)
    assert read_header(path).dataset().ImageComments == "last element"


def long_value_image(length: int) -> Dataset:
    """Fixed UIDs: the offsets before the long value do not depend on its length."""
    ds = image(StudyDescription="after the long value", StudyInstanceUID="1.2.3")
    ds.SOPInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.5", "1.2.3.4"
    ds.add_new(0x00091010, "OB", bytes(length))  # private, before the Study Description
    return ds


def test_a_header_longer_than_one_read_is_read_whole(tmp_path: Path) -> None:
    assert_same_as_pydicom(
        save(tmp_path, long_value_image(3 * headers._READ), ImplicitVRLittleEndian)
    )
    # the first read ending between two elements
    probe = save(tmp_path, long_value_image(2), ExplicitVRLittleEndian)
    value_start = dcmread(probe)[0x00091010].file_tell + 12  # explicit OB: 12-byte header
    data_start = read_part10_header(probe).data_offset
    exact = long_value_image(headers._READ - (value_start - data_start))
    path = save(tmp_path, exact, ExplicitVRLittleEndian)
    assert dcmread(path)[0x00091010].file_tell + 12 + len(exact[0x00091010].value) == (
        data_start + headers._READ
    )
    assert_same_as_pydicom(path)


def test_private_and_unknown_elements_keep_their_bytes(tmp_path: Path) -> None:
    ds = image()
    ds.add_new(0x00091010, "LO", "private text")
    ds.add_new(0x00091011, "UN", b"\x01\x02\x03\x04")
    assert_same_as_pydicom(save(tmp_path, ds, ExplicitVRLittleEndian))
    assert_same_as_pydicom(save(tmp_path, image(), ImplicitVRLittleEndian))


def test_a_compressed_syntax_has_its_data_set_in_explicit_little_endian(tmp_path: Path) -> None:
    assert_same_as_pydicom(save(tmp_path, with_sequences(), JPEGBaseline8Bit))


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_other_encodings_are_left_to_pydicom(tmp_path: Path, transfer_syntax: str) -> None:
    with pytest.raises(NotPlain, match="transfer syntax"):
        read_header(save(tmp_path, image(), transfer_syntax))


def test_a_truncated_file_is_not_plain(tmp_path: Path) -> None:
    path = save(tmp_path, image(ImageComments="x" * 200), ExplicitVRLittleEndian)
    path.write_bytes(path.read_bytes()[:-50])  # cut inside the last value
    with pytest.raises(NotPlain, match="ends inside an element"):
        read_header(path)


def test_a_file_that_is_not_part10_is_not_plain(tmp_path: Path) -> None:
    path = tmp_path / "not.dcm"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(NotPlain):
        read_header(path)


def test_a_header_too_large_to_hold_is_not_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(headers, "MAX_HEADER", 70 << 10)
    path = save(tmp_path, long_value_image(100 << 10), ExplicitVRLittleEndian)
    with pytest.raises(NotPlain, match="larger than"):
        read_header(path)


def test_a_meta_group_longer_than_its_first_read_is_skipped_whole(tmp_path: Path) -> None:
    ds = with_sequences()
    path = save(tmp_path, ds, ExplicitVRLittleEndian)
    meta = dcmread(path).file_meta
    meta.PrivateInformationCreatorUID = "1.2.3.4"
    meta.PrivateInformation = bytes(20 << 10)  # past the 8 KiB the meta group is read in
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    assert read_part10_header(path).data_offset > 20 << 10
    assert_same_as_pydicom(path)
