"""An instance's rows (dicomnet.archive.records): the values of a header read from its
raw elements are those pydicom's conversion gives, in every transfer syntax and
character set, and the schema's text forms of them (person names, several values,
binary numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from dicomnet.archive.records import InstanceRecord, instance_record, read_header

TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


def write(directory: Path, transfer_syntax: str, **attributes: object) -> Path:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.4"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def record(path: Path) -> InstanceRecord:
    return instance_record(read_header(path), path, 1)


def converted_record(path: Path) -> InstanceRecord:
    """The record of ``path`` with every element converted by pydicom first."""
    header = read_header(path)

    def convert(dataset: Dataset) -> None:
        for element in dataset:  # iterating converts each raw element
            if element.VR == "SQ":
                for item in element.value:
                    convert(item)

    convert(header.dataset())
    return instance_record(header, path, 1)


EVERY_KIND = {
    "PatientID": "  PID 1 ",
    "PatientName": "Doe^John^^^",
    "OtherPatientNames": ["Roe^Jane^", "Poe^Ed"],
    "OtherPatientIDs": ["A1", "", "B2 "],
    "PatientBirthDate": "19400101",
    "PatientBirthTime": "0830",
    "PatientSex": "M",
    "PatientComments": "one \\ two ",
    "PatientSize": " 1.80",
    "PatientWeight": "75.5",
    "PatientAge": "084Y",
    "StudyDate": "20240105",
    "StudyTime": "150000.25",
    "AccessionNumber": "A\\B",  # a single-valued key: its first value
    "ReferringPhysicianName": "",
    "NameOfPhysiciansReadingStudy": ["Who^Doctor", "House^Greg^^Dr"],
    "SeriesNumber": " 12",
    "InstanceNumber": "7",
    "AcquisitionDateTime": "20240105150000.123456+0100",
    "Rows": 512,
    "Columns": 256,
    "NumberOfFrames": "3",
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
    "RequestAttributesSequence": Sequence(
        [
            Dataset(),
            Dataset(),
        ]
    ),
}
EVERY_KIND["RequestAttributesSequence"][0].RequestedProcedureID = "RP1"
EVERY_KIND["RequestAttributesSequence"][1].ScheduledProcedureStepID = "SPS 2 "


@pytest.mark.parametrize("transfer_syntax", TRANSFER_SYNTAXES)
def test_raw_values_are_those_of_pydicoms_conversion(tmp_path: Path, transfer_syntax: str) -> None:
    path = write(tmp_path, transfer_syntax, **EVERY_KIND)
    assert record(path) == converted_record(path)


@pytest.mark.parametrize("transfer_syntax", TRANSFER_SYNTAXES)
def test_the_schemas_text_forms(tmp_path: Path, transfer_syntax: str) -> None:
    rows = record(write(tmp_path, transfer_syntax, **EVERY_KIND)).rows
    patient, study, instance = rows["patient"], rows["study"], rows["instance"]
    assert patient["patient_id"] == "PID 1"
    assert patient["patient_name"] == "Doe^John"
    assert patient["patient_name_fold"] == "doe^john"
    assert patient["other_patient_names"] == "Roe^Jane\\Poe^Ed"
    assert patient["other_patient_i_ds"] == "A1\\\\B2"
    assert patient["patient_comments"] == "one \\ two"
    assert study["accession_number"] == "A"
    assert study["referring_physician_name"] is None
    assert study["patient_size"] == "1.80"
    assert study["name_of_physicians_reading_study"] == "Who^Doctor\\House^Greg^^Dr"
    assert rows["series"]["series_number"] == "12"
    assert (instance["rows"], instance["columns"]) == ("512", "256")
    assert instance["image_type"] == "ORIGINAL\\PRIMARY\\AXIAL"
    assert instance["transfer_syntax_uid"] == transfer_syntax


@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("ISO_IR 100", "Müller^Hans^^^"),
        ("ISO_IR 192", "山田^太郎=やまだ^たろう"),
        ("GB18030", "王^小东"),
        ("ISO_IR 144", "Люкceмбypг^Иван"),
        # code extensions (escape sequences in the value)
        ("\\ISO 2022 IR 87", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"),
        ("\\ISO 2022 IR 149", "Hong^Gildong=洪^吉洞=홍^길동"),
    ],
)
@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_text_in_the_specific_character_set(
    tmp_path: Path, transfer_syntax: str, charset: str, name: str
) -> None:
    if charset == "\\ISO 2022 IR 87":  # half-width katakana need ISO 2022 IR 13 too
        charset = "ISO 2022 IR 13\\ISO 2022 IR 87"
    item = Dataset()
    item.RequestedProcedureID = name.split("^")[0][:16]
    path = write(
        tmp_path,
        transfer_syntax,
        SpecificCharacterSet=charset.split("\\"),
        PatientName=name,
        OtherPatientNames=[name, "Plain^Name"],
        StudyDescription=name.replace("^", " "),
        PatientComments=name,
        RequestAttributesSequence=Sequence([item]),
    )
    found = record(path)
    assert found == converted_record(path)
    patient = found.rows["patient"]
    assert patient["patient_name"] == name.rstrip("^")
    assert patient["other_patient_names"] == f"{name.rstrip('^')}\\Plain^Name"
    assert patient["patient_comments"] == name
    assert patient["specific_character_set"] == charset
    assert found.rows["study"]["study_description"] == name.replace("^", " ").strip()
    items = found.items["series_request"]
    assert items is not None
    assert items[0]["requested_procedure_id"] == name.split("^")[0][:16]


def test_an_item_with_its_own_character_set(tmp_path: Path) -> None:
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 192"
    item.RequestedProcedureID = "Prüfung"
    path = write(
        tmp_path,
        ExplicitVRLittleEndian,
        SpecificCharacterSet="ISO_IR 100",
        PatientName="Müller",
        RequestAttributesSequence=Sequence([item]),
    )
    found = record(path)
    assert found == converted_record(path)
    items = found.items["series_request"]
    assert items is not None and items[0]["requested_procedure_id"] == "Prüfung"
    assert found.rows["patient"]["patient_name"] == "Müller"
