"""dicomnet.worklist without sockets: which worklist items a modality's query matches
(patient keys, and the Scheduled Procedure Step Sequence keys by sequence matching of the
one item), what a response holds, and how a folder of items is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet.qr import InvalidQuery, build_identifier, parse_key
from dicomnet.worklist import WorklistFolder, item_matches, worklist_response

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


def step(modality: str, station: str, date: str, time: str, physician: str) -> Dataset:
    item = Dataset()
    item.Modality = modality
    item.ScheduledStationAETitle = station
    item.ScheduledProcedureStepStartDate = date
    item.ScheduledProcedureStepStartTime = time
    item.ScheduledPerformingPhysicianName = physician
    item.ScheduledProcedureStepID = f"SPS-{modality}-{date}"
    item.ScheduledProcedureStepDescription = f"{modality} exam"
    return item


def worklist_item(patient_id: str, name: str, *steps: Dataset) -> Dataset:
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.PatientName = name
    item.PatientID = patient_id
    item.PatientBirthDate = "19700101"
    item.AccessionNumber = f"ACC-{patient_id}"
    item.RequestedProcedureID = f"RP-{patient_id}"
    item.StudyInstanceUID = generate_uid()
    item.ScheduledProcedureStepSequence = list(steps)
    return item


MR_MORNING = step("MR", "MR1", "20240105", "083000", "HOUSE^GREGORY")
CT_AFTERNOON = step("CT", "CT1", "20240105", "143000", "GREY^MEREDITH")
CT_NEXT_DAY = step("CT", "CT1", "20240106", "090000", "HOUSE^GREGORY")
DOE = worklist_item("P1", "DOE^JOHN", MR_MORNING, CT_AFTERNOON)
ROE = worklist_item("P2", "ROE^JANE", CT_NEXT_DAY)


def query(*keys: str) -> Dataset:
    return build_identifier([parse_key(key) for key in keys])


SPS = "ScheduledProcedureStepSequence[0]"


@pytest.mark.parametrize(
    ("keys", "matching"),
    [
        ((f"{SPS}.Modality=MR",), {"P1"}),
        ((f"{SPS}.Modality=CT",), {"P1", "P2"}),
        ((f"{SPS}.Modality=US",), set()),
        ((f"{SPS}.ScheduledStationAETitle=CT1",), {"P1", "P2"}),
        ((f"{SPS}.ScheduledStationAETitle=CT*",), {"P1", "P2"}),
        ((f"{SPS}.ScheduledProcedureStepStartDate=20240106",), {"P2"}),
        ((f"{SPS}.ScheduledProcedureStepStartDate=20240101-20240105",), {"P1"}),
        ((f"{SPS}.ScheduledProcedureStepStartDate=20240106-",), {"P2"}),
        ((f"{SPS}.ScheduledProcedureStepStartDate=-20240105",), {"P1"}),
        ((f"{SPS}.ScheduledProcedureStepStartTime=1200-1800",), {"P1"}),
        ((f"{SPS}.ScheduledPerformingPhysicianName=HOUSE*",), {"P1", "P2"}),
        ((f"{SPS}.ScheduledPerformingPhysicianName=GREY^MEREDITH",), {"P1"}),
        (("PatientName=DOE*",), {"P1"}),
        (("PatientID=P2",), {"P2"}),
        (("PatientName=?OE^JANE",), {"P2"}),
        (("PatientName", "PatientID", f"{SPS}.Modality"), {"P1", "P2"}),  # return keys only
        ((), {"P1", "P2"}),
    ],
)
def test_the_keys_a_modality_uses_select_the_items(
    keys: tuple[str, ...], matching: set[str]
) -> None:
    identifier = query(*keys)
    assert {item.PatientID for item in (DOE, ROE) if item_matches(item, identifier)} == matching


def test_the_keys_of_the_one_item_match_together_within_one_step() -> None:
    # DOE has an MR step at MR1 and a CT step at CT1, but no MR step at CT1.
    assert not item_matches(DOE, query(f"{SPS}.Modality=MR", f"{SPS}.ScheduledStationAETitle=CT1"))
    assert item_matches(DOE, query(f"{SPS}.Modality=CT", f"{SPS}.ScheduledStationAETitle=CT1"))
    today_after_noon = query(
        f"{SPS}.ScheduledProcedureStepStartDate=20240105",
        f"{SPS}.ScheduledProcedureStepStartTime=1200-",
    )
    assert item_matches(DOE, today_after_noon)
    assert not item_matches(ROE, today_after_noon)


def test_a_response_holds_the_keys_with_the_item_values_and_the_matching_steps() -> None:
    identifier = query(
        "PatientName",
        "PatientID",
        "AccessionNumber",
        "ReferringPhysicianName",  # the item has none: returned empty
        f"{SPS}.Modality=CT",
        f"{SPS}.ScheduledProcedureStepStartDate",
        f"{SPS}.ScheduledProcedureStepID",
    )
    response = worklist_response(DOE, identifier)
    assert response.SpecificCharacterSet == "ISO_IR 100"
    assert (response.PatientName, response.PatientID) == ("DOE^JOHN", "P1")
    assert response.AccessionNumber == "ACC-P1"
    assert response["ReferringPhysicianName"].is_empty
    assert "PatientBirthDate" not in response  # not asked for
    (returned,) = response.ScheduledProcedureStepSequence  # the CT step only
    assert set(returned.dir()) == {
        "Modality",
        "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepID",
    }
    assert (returned.Modality, returned.ScheduledProcedureStepID) == ("CT", "SPS-CT-20240105")


def test_a_sequence_key_without_keys_in_its_item_returns_every_step_whole() -> None:
    response = worklist_response(DOE, query("ScheduledProcedureStepSequence"))
    assert list(response.ScheduledProcedureStepSequence) == [MR_MORNING, CT_AFTERNOON]


def test_a_query_level_is_no_key_of_a_worklist() -> None:
    identifier = query("QueryRetrieveLevel=STUDY", "PatientID")
    assert item_matches(DOE, identifier)
    assert "QueryRetrieveLevel" not in worklist_response(DOE, identifier)


def write_part10(path: Path, item: Dataset) -> None:
    copy = Dataset(item)
    copy.file_meta = FileMetaDataset()
    copy.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    copy.file_meta.MediaStorageSOPClassUID = MODALITY_WORKLIST_FIND
    copy.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    copy.save_as(path, enforce_file_format=True)


def test_a_folder_serves_part10_and_plain_items_and_skips_the_rest(tmp_path: Path) -> None:
    write_part10(tmp_path / "doe.wl", DOE)
    dcmwrite(tmp_path / "roe.wl", ROE, implicit_vr=True, little_endian=True)  # no meta
    (tmp_path / "broken.wl").write_bytes(b"\x00" * 7)
    (tmp_path / "notes.txt").write_text("not a worklist item")
    write_part10(tmp_path / "doe.wl.tmp", DOE)  # being written: not a worklist name
    (tmp_path / "sub.wl").mkdir()
    folder = WorklistFolder(tmp_path)
    assert [item.PatientID for item in folder.items()] == ["P1", "P2"]
    ct = list(folder.find(query("PatientID", f"{SPS}.Modality=CT")))
    assert [(r.PatientID, len(r.ScheduledProcedureStepSequence)) for r in ct] == [
        ("P1", 1),
        ("P2", 1),
    ]


def test_a_missing_folder_has_no_items(tmp_path: Path) -> None:
    assert list(WorklistFolder(tmp_path / "absent").find(query("PatientID"))) == []


@pytest.mark.parametrize(
    "key",
    [
        f"{SPS}.ScheduledProcedureStepStartDate=2024-06-01",
        f"{SPS}.ScheduledProcedureStepStartTime=9am",
        "PatientBirthDate=-",
    ],
)
def test_a_malformed_range_is_refused_before_any_item_is_read(tmp_path: Path, key: str) -> None:
    folder = WorklistFolder(tmp_path)  # empty: nothing would match anyway
    with pytest.raises(InvalidQuery) as refused:
        list(folder.find(query("PatientID", key)))
    assert refused.value.status == 0xA900
    assert str(refused.value)
