"""dicomnet.qr without sockets: key parsing, PS3.4 C.2.2.2 matching, the in-memory
index's levels and responses; and the association helpers of dicomnet.scu and
dicomnet.storage that the query/retrieve SCU and SCP use."""

from __future__ import annotations

import datetime
import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLossless,
    MRImageStorage,
    generate_uid,
)

from dicomnet import DicomRoleSupport, NegotiatedContext, Part10File
from dicomnet.qr import (
    InvalidKey,
    MemoryIndex,
    build_identifier,
    element_matches,
    failed_instances,
    format_identifier,
    parse_key,
    query_level,
    retrieve_request,
)
from dicomnet.scu import build_request
from dicomnet.sopclasses import PATIENT_ROOT_FIND, STUDY_ROOT_GET
from dicomnet.storage import pick_context, storage_contexts_for

# -- -k keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["PatientName=DOE*", "(0010,0010)=DOE*", "0010,0010=DOE*", "(0010,0010)=DOE*"]
)
def test_every_key_form_names_the_same_element(text: str) -> None:
    key = parse_key(text)
    assert key.path == ()
    assert key.element.tag == Tag(0x0010, 0x0010)
    assert key.element.VR == "PN"
    assert str(key.element.value) == "DOE*"


@pytest.mark.parametrize("text", ["PatientID", "PatientID=", "(0010,0020)", "0010,0020="])
def test_a_key_without_value_is_an_empty_return_key(text: str) -> None:
    element = parse_key(text).element
    assert element.tag == Tag(0x0010, 0x0020)
    assert element.is_empty


def test_values_take_the_dictionary_vr() -> None:
    assert parse_key("Rows=512").element.value == 512
    assert list(parse_key("ModalitiesInStudy=CT\\MR").element.value) == ["CT", "MR"]
    assert list(parse_key("StudyInstanceUID=1.2.3\\1.2.4").element.value) == ["1.2.3", "1.2.4"]
    assert parse_key("StudyDate=20240101-20240131").element.value == "20240101-20240131"


def test_sequence_item_keys_build_nested_items() -> None:
    identifier = build_identifier(
        [
            parse_key("ScheduledProcedureStepSequence[0].Modality=MR"),
            parse_key("(0040,0100)[0].ScheduledStationAETitle"),
            parse_key("ScheduledProcedureStepSequence[1].Modality=CT"),
            parse_key("PatientName"),
        ]
    )
    items = identifier.ScheduledProcedureStepSequence
    assert len(items) == 2
    assert items[0].Modality == "MR"
    assert "ScheduledStationAETitle" in items[0] and items[0]["ScheduledStationAETitle"].is_empty
    assert items[1].Modality == "CT"
    assert identifier["PatientName"].is_empty


def test_a_bare_sequence_key_is_an_empty_sequence() -> None:
    element = parse_key("ReferencedStudySequence").element
    assert element.VR == "SQ" and len(element.value) == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("PatientNme=DOE", "not a DICOM keyword"),
        ("(0009,0010)=X", "not in the DICOM dictionary"),
        ("Rows=many", "is not a US value"),
        ("ReferencedStudySequence=1", "a sequence takes keys of its items"),
        ("PatientName[0].PatientID=1", "is not a sequence"),
        ("ReferencedStudySequence[0]", "an item index needs a key after it"),
        ("Patient[Name=X", "cannot read"),
    ],
)
def test_bad_keys_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason.replace("[", r"\[")):
        parse_key(text)


def test_default_level_only_when_none_given_and_the_last_key_wins() -> None:
    assert build_identifier([parse_key("PatientID")], "STUDY").QueryRetrieveLevel == "STUDY"
    given_level = build_identifier([parse_key("QueryRetrieveLevel=SERIES")], "STUDY")
    assert given_level.QueryRetrieveLevel == "SERIES"
    assert "QueryRetrieveLevel" not in build_identifier([parse_key("PatientID")], None)
    later = build_identifier([parse_key("PatientID=A"), parse_key("PatientID=B")])
    assert later.PatientID == "B"


# -- matching ------------------------------------------------------------------------


def key(keyword: str, value: object) -> DataElement:
    element = parse_key(keyword).element
    return DataElement(element.tag, element.VR, value)


def matches(keyword: str, candidate: object, key_value: object) -> bool:
    record = key(keyword, candidate) if candidate is not None else None
    return element_matches(record, key(keyword, key_value))


def test_universal_matching_takes_anything_even_a_missing_value() -> None:
    assert matches("PatientName", "DOE^JOHN", "")
    assert matches("PatientName", None, None)
    assert matches("PatientName", None, "*")  # a lone "*" is universal too
    assert not matches("PatientName", None, "DOE")


def test_single_value_matching_is_exact_and_case_sensitive() -> None:
    assert matches("PatientID", "PID1", "PID1")
    assert not matches("PatientID", "PID10", "PID1")
    assert not matches("PatientName", "DOE^JOHN", "doe^john")
    assert matches("PatientName", "DOE^JOHN^^", "DOE^JOHN")  # empty components dropped


def test_wildcards_star_and_question_mark() -> None:
    assert matches("PatientName", "DOE^JOHN", "DOE*")
    assert matches("PatientName", "DOE", "DOE*")
    assert matches("PatientName", "DOE^JOHN", "D?E^J*N")
    assert not matches("PatientName", "DOE^JOHN", "?DOE*")
    assert not matches("AccessionNumber", "AXB", "A.B*")  # regex characters are literal
    assert matches("AccessionNumber", "A.B1", "A.B*")


# Peers do send such values; pydicom warns about them, matching must still decide.
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_uids_take_lists_not_wildcards() -> None:
    assert matches("StudyInstanceUID", "1.2.4", ["1.2.3", "1.2.4"])
    assert not matches("StudyInstanceUID", "1.2.5", ["1.2.3", "1.2.4"])
    assert not matches("StudyInstanceUID", "1.2.3", "1.2.*")


def test_date_ranges_are_inclusive_and_open_ended() -> None:
    assert matches("StudyDate", "20240101", "20240101-20240131")
    assert matches("StudyDate", "20240131", "20240101-20240131")
    assert not matches("StudyDate", "20240201", "20240101-20240131")
    assert matches("StudyDate", "20231231", "-20240101")
    assert not matches("StudyDate", "20240102", "-20240101")
    assert matches("StudyDate", "20991231", "20240101-")
    assert not matches("StudyDate", "20240102", "20240101")


@pytest.mark.filterwarnings("ignore:Invalid value for VR TM")
def test_time_ranges_cover_the_whole_period_of_a_partial_bound() -> None:
    assert matches("StudyTime", "101500", "1000-1030")
    assert matches("StudyTime", "103059.999", "1000-1030")  # 10:30 lasts a minute
    assert not matches("StudyTime", "103100", "1000-1030")
    assert matches("StudyTime", "101530.25", "1015")  # a single value is its own range
    assert matches("StudyTime", "10:15:30", "1015")  # ACR-NEMA style colons
    assert not matches("StudyTime", "095959", "10-")


def test_date_time_ranges_and_offsets() -> None:
    assert matches("AcquisitionDateTime", "20240101120000", "20240101-20240102")
    assert not matches("AcquisitionDateTime", "20240103000000", "20240101-20240102")
    assert matches("AcquisitionDateTime", "20240101120000+0100", "202401011200")
    # a trailing "-hhmm" is a UTC offset, not the end of a range
    assert matches("AcquisitionDateTime", "20240101120000", "20240101120000-0500")
    assert not matches("AcquisitionDateTime", "20240101130000", "20240101120000-0500")


def test_any_value_of_a_multi_valued_attribute_matches() -> None:
    assert matches("ModalitiesInStudy", ["CT", "MR"], "MR")
    assert not matches("ModalitiesInStudy", ["CT", "MR"], "US")


def test_sequence_matching_needs_one_item_matching_all_its_keys() -> None:
    def item(modality: str, station: str) -> Dataset:
        ds = Dataset()
        ds.Modality = modality
        ds.ScheduledStationAETitle = station
        return ds

    candidate = DataElement(
        Tag("ScheduledProcedureStepSequence"), "SQ", Sequence([item("CT", "A"), item("MR", "B")])
    )

    def query(**values: str) -> DataElement:
        query_item = Dataset()
        for keyword, value in values.items():
            setattr(query_item, keyword, value)
        return DataElement(candidate.tag, "SQ", Sequence([query_item]))

    assert element_matches(candidate, query(Modality="MR", ScheduledStationAETitle="B"))
    assert not element_matches(candidate, query(Modality="MR", ScheduledStationAETitle="A"))
    assert element_matches(candidate, query())
    assert not element_matches(None, query(Modality="MR"))


SAFE_TEXT = st.text(alphabet="ABCDEFGHIJ^.+()$| 0123", min_size=0, max_size=12)


@given(
    value=SAFE_TEXT.filter(lambda v: v == v.strip()),
    pattern=st.text(alphabet="ABC^.+*?()$|", min_size=1, max_size=8),
)
def test_wildcards_agree_with_fnmatch(value: str, pattern: str) -> None:
    # fnmatch has the same "*" and "?" (no "[" in the alphabet), written independently
    if pattern == "*":
        return
    expected = fnmatch.fnmatchcase(value, pattern) if value else False
    assert matches("AccessionNumber", value or None, pattern) == expected


DATES = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2099, 12, 31))


@given(value=DATES, low=DATES, high=DATES)
def test_date_range_agrees_with_calendar_order(
    value: datetime.date, low: datetime.date, high: datetime.date
) -> None:
    text = f"{low:%Y%m%d}-{high:%Y%m%d}"
    assert matches("StudyDate", f"{value:%Y%m%d}", text) == (low <= value <= high)


# -- levels and the index ------------------------------------------------------------


def level_of(model: str, level: str | None) -> str:
    identifier = Dataset()
    if level is not None:
        identifier.QueryRetrieveLevel = level
    return query_level(model, identifier)


def test_levels_follow_the_information_model() -> None:
    assert level_of(PATIENT_ROOT_FIND, "PATIENT") == "PATIENT"
    assert level_of(STUDY_ROOT_GET, "IMAGE") == "IMAGE"
    with pytest.raises(ValueError, match="'PATIENT' is not one of STUDY/SERIES/IMAGE"):
        level_of(STUDY_ROOT_GET, "PATIENT")
    with pytest.raises(ValueError, match="'' is not one of"):
        level_of(PATIENT_ROOT_FIND, None)
    with pytest.raises(ValueError, match="not a Patient or Study Root"):
        level_of("1.2.840.10008.5.1.4.31", "STUDY")


def write_instance(directory: Path, **attributes: object) -> Path:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def index(tmp_path: Path) -> MemoryIndex:
    """Patient P1: study S1 (a CT series of 2 images, an MR series of 1); patient P2:
    study S2 (one CT image, Latin-1 name). Plus a file that is not DICOM and a spool file."""
    for series, modality, count in (("1.1.1", "CT", 2), ("1.1.2", "MR", 1)):
        for _ in range(count):
            write_instance(
                tmp_path,
                PatientID="P1",
                PatientName="DOE^JOHN",
                StudyInstanceUID="1.1",
                SeriesInstanceUID=series,
                Modality=modality,
                StudyDate="20240105",
            )
    write_instance(
        tmp_path,
        PatientID="P2",
        PatientName="MÜLLER^ANNA",
        SpecificCharacterSet="ISO_IR 100",
        StudyInstanceUID="1.2",
        SeriesInstanceUID="1.2.1",
        Modality="CT",
        StudyDate="20240301",
    )
    (tmp_path / "notes.txt").write_text("not DICOM")
    (tmp_path / "dicomnet-123.part").write_bytes(b"half a file")
    errors: list[Path] = []
    scanned = MemoryIndex.scan(tmp_path, lambda path, exc: errors.append(path))
    assert errors == [tmp_path / "notes.txt"]  # the spool file is not even tried
    return scanned


def query(level: str, **keys: object) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def test_one_record_per_level_entity(index: MemoryIndex) -> None:
    assert len(index) == 4
    counts = {
        level: len(list(index.find(level, query(level))))
        for level in ("PATIENT", "STUDY", "SERIES", "IMAGE")
    }
    assert counts == {"PATIENT": 2, "STUDY": 2, "SERIES": 3, "IMAGE": 4}


def test_responses_hold_the_requested_keys_only(index: MemoryIndex) -> None:
    (match,) = index.find(
        "STUDY", query("STUDY", PatientID="P1", PatientName="", AccessionNumber="")
    )
    assert [element.keyword for element in match] == [
        "AccessionNumber",
        "QueryRetrieveLevel",
        "PatientName",
        "PatientID",
    ]
    assert match.QueryRetrieveLevel == "STUDY"
    assert match.PatientName == "DOE^JOHN"
    assert match["AccessionNumber"].is_empty  # asked for, not in the files


def test_responses_carry_the_character_set_of_the_match(index: MemoryIndex) -> None:
    (match,) = index.find("PATIENT", query("PATIENT", PatientName="M*"))
    assert match.SpecificCharacterSet == "ISO_IR 100"
    assert match.PatientName == "MÜLLER^ANNA"


def test_computed_study_attributes_are_returned_and_matched(index: MemoryIndex) -> None:
    (study,) = index.find(
        "STUDY",
        query(
            "STUDY",
            ModalitiesInStudy="MR",
            NumberOfStudyRelatedInstances="",
            NumberOfStudyRelatedSeries="",
        ),
    )
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert (study.NumberOfStudyRelatedInstances, study.NumberOfStudyRelatedSeries) == (3, 2)
    (patient,) = index.find(
        "PATIENT", query("PATIENT", PatientID="P2", NumberOfPatientRelatedStudies="")
    )
    assert patient.NumberOfPatientRelatedStudies == 1


def test_retrieve_files_cover_the_whole_matching_record(index: MemoryIndex) -> None:
    # The MR series alone matches, but the study it belongs to is retrieved entire.
    assert len(index.files("STUDY", query("STUDY", ModalitiesInStudy="MR"))) == 3
    assert len(index.files("SERIES", query("SERIES", Modality="MR"))) == 1
    assert index.files("STUDY", query("STUDY", StudyInstanceUID="9.9")) == []
    by_date = index.files("STUDY", query("STUDY", StudyDate="20240201-"))
    assert len(by_date) == 1 and Path(by_date[0]).is_file()


def test_a_stored_instance_replaces_the_one_with_its_uid(tmp_path: Path) -> None:
    index = MemoryIndex()
    first = write_instance(tmp_path, PatientID="P1", StudyInstanceUID="1.1")
    index.add(first)
    replacement = tmp_path / "again.dcm"
    replacement.write_bytes(first.read_bytes())
    index.add(replacement)
    assert index.files("IMAGE", query("IMAGE")) == [str(replacement)]


# -- associations ----------------------------------------------------------------


def negotiated(context_id: int, sop_class: str, transfer_syntax: str) -> NegotiatedContext:
    return NegotiatedContext(context_id, sop_class, transfer_syntax, True, False)


def test_pick_context_prefers_the_files_own_transfer_syntax() -> None:
    contexts = [
        negotiated(1, MRImageStorage, ExplicitVRLittleEndian),
        negotiated(3, CTImageStorage, ImplicitVRLittleEndian),
        negotiated(5, CTImageStorage, JPEGLossless),
    ]
    assert pick_context(contexts, CTImageStorage, JPEGLossless) == contexts[2]
    assert pick_context(contexts, CTImageStorage, ExplicitVRLittleEndian) == contexts[1]
    assert pick_context(contexts[:2], CTImageStorage, JPEGLossless) is None
    assert pick_context(contexts, "1.2.3", ExplicitVRLittleEndian) is None


def part10(sop_class: str, transfer_syntax: str) -> Part10File:
    return Part10File("x.dcm", sop_class, generate_uid(), transfer_syntax, 0, 0)


def test_storage_contexts_one_per_class_and_transfer_syntax() -> None:
    files = [
        part10(CTImageStorage, ImplicitVRLittleEndian),
        part10(CTImageStorage, ImplicitVRLittleEndian),
        part10(CTImageStorage, JPEGLossless),
    ]
    assert storage_contexts_for(files) == [
        (CTImageStorage, [ImplicitVRLittleEndian, ExplicitVRLittleEndian]),
        (CTImageStorage, [JPEGLossless]),
    ]


def test_requests_propose_the_scp_role_for_storage_only() -> None:
    request = build_request(
        "ME",
        "YOU",
        16384,
        [
            (STUDY_ROOT_GET, [ExplicitVRLittleEndian]),
            (CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]),
        ],
        scp_role_for=[CTImageStorage],
    )
    assert [request.GetPresentationContextID(i) for i in range(2)] == [1, 3]
    assert not request.IsRoleSelect(1)
    assert request.IsRoleSelect(3)
    assert request.GetUserRole(3) == DicomRoleSupport.Unsupported
    assert request.GetProviderRole(3) == DicomRoleSupport.Supported
    assert request.GetTransferCount(3) == 2


def test_identifiers_print_one_line_per_element() -> None:
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = ""
    ds.ModalitiesInStudy = ["CT", "MR"]
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    ds.ReferencedStudySequence = [item]
    assert format_identifier(ds) == [
        "  ModalitiesInStudy (0008,0061) CT\\MR",
        "  ReferencedStudySequence (0008,1110) 1 item(s)",
        "    item 1",
        "      ReferencedSOPInstanceUID (0008,1155) 1.2.3",
        "  PatientName (0010,0010) DOE^JOHN",
        "  PatientID (0010,0020) (no value)",
    ]


def test_a_get_request_takes_the_scp_role_for_the_storage_classes() -> None:
    request = retrieve_request("ME", "YOU", 16384, STUDY_ROOT_GET, [CTImageStorage, MRImageStorage])
    assert [request.GetAbstract(request.GetPresentationContextID(i)) for i in range(3)] == [
        STUDY_ROOT_GET,
        CTImageStorage,
        MRImageStorage,
    ]
    assert not request.IsRoleSelect(1)
    assert request.IsRoleSelect(3) and request.IsRoleSelect(5)
    assert request.GetProviderRole(5) == DicomRoleSupport.Supported
    with pytest.raises(ValueError, match="128 storage SOP classes do not fit in 127"):
        retrieve_request("ME", "YOU", 16384, STUDY_ROOT_GET, [f"1.2.3.{n}" for n in range(128)])


def test_failed_instances_read_one_or_several_uids() -> None:
    identifier = Dataset()
    assert failed_instances(None) == [] and failed_instances(identifier) == []
    identifier.FailedSOPInstanceUIDList = "1.2.3"
    assert failed_instances(identifier) == ["1.2.3"]
    identifier.FailedSOPInstanceUIDList = ["1.2.3", "1.2.4"]
    assert failed_instances(identifier) == ["1.2.3", "1.2.4"]
