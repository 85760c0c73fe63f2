"""The archive index (dicomnet.archive) against both databases: every matching kind of
PS3.4 C.2.2.2 done in SQL, hierarchical and relational queries, computed attributes,
the responses, retrieve file lists, and agreement with the in-memory index.

Each test runs on SQLite and on a throwaway PostgreSQL cluster (tests/postgres_cluster.py;
skipped without PostgreSQL, failed under CI=true)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from postgres_cluster import index_url
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from dicomnet.archive import (
    DEFAULT_CONFIG,
    DEFAULT_OPTIONS,
    ArchiveIndex,
    IndexConfig,
    InvalidQuery,
    QueryOptions,
    UnsupportedIndexURL,
    open_index,
)
from dicomnet.qr import UNIQUE_KEY_OF_LEVEL, MemoryIndex
from dicomnet.sopclasses import PATIENT_ROOT_FIND, STUDY_ROOT_FIND

OpenIndex = Callable[..., ArchiveIndex]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_test_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenIndex]:
    """Opens an empty index (again, with ``url=`` the same one) on the parameter's
    database; every index opened is closed after the test."""
    url = index_url(request, request.param, tmp_path)
    opened: list[ArchiveIndex] = []

    def opener(config: IndexConfig = DEFAULT_CONFIG) -> ArchiveIndex:
        index = open_index(url, config)
        opened.append(index)
        return index

    yield opener
    for index in opened:
        index.close()


def write_instance(directory: Path, sop_class: str = CTImageStorage, **attributes: object) -> Path:
    ds = Dataset()
    ds.SOPClassUID = sop_class
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


STUDIES = [
    # patient, name, study, date, time, accession, [(series, modality, images)]
    (
        "P1",
        "DOE^JOHN",
        "1.1",
        "20240105",
        "150000",
        "A_1",
        [("1.1.1", "CT", 2), ("1.1.2", "MR", 1)],
    ),
    ("P1", "DOE^JOHN", "1.3", "20240106", "090000", "A%1", [("1.3.1", "CT", 1)]),
    ("P2", "MÜLLER^ANNA", "1.2", "20240301", "101500", "A[1]", [("1.2.1", "CT", 1)]),
    ("P3", "doe^jane", "1.4", "20231231", "235959.5", "AX1", [("1.4.1", "US", 1)]),
]


@pytest.fixture
def archive_files(tmp_path: Path) -> list[Path]:
    files = []
    store = tmp_path / "files"
    store.mkdir()
    for patient, name, study, date, time, accession, series_list in STUDIES:
        for series, modality, images in series_list:
            for number in range(images):
                extra = {"SpecificCharacterSet": "ISO_IR 100"} if patient == "P2" else {}
                files.append(
                    write_instance(
                        store,
                        MRImageStorage if modality == "MR" else CTImageStorage,
                        PatientID=patient,
                        PatientName=name,
                        StudyInstanceUID=study,
                        StudyDate=date,
                        StudyTime=time,
                        AccessionNumber=accession,
                        SeriesInstanceUID=series,
                        Modality=modality,
                        InstanceNumber=number + 1,
                        AcquisitionDateTime=f"{date}{time[:6]}",
                        **extra,
                    )
                )
    return files


@pytest.fixture
def index(open_test_index: OpenIndex, archive_files: list[Path]) -> ArchiveIndex:
    index = open_test_index()
    for path in archive_files:
        index.add(path)
    return index


def query(level: str, **keys: object) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def studies(
    index: ArchiveIndex, options: QueryOptions = DEFAULT_OPTIONS, **keys: object
) -> list[str]:
    found = index.find("STUDY", query("STUDY", StudyInstanceUID="", **keys), options=options)
    return sorted(str(match.StudyInstanceUID) for match in found)


# -- records and responses -------------------------------------------------------------


def test_one_answer_per_record_of_the_level(index: ArchiveIndex) -> None:
    assert len(index) == index.count() == 6
    counts = {
        level: len(list(index.find(level, query(level))))
        for level in ("PATIENT", "STUDY", "SERIES", "IMAGE")
    }
    assert counts == {"PATIENT": 3, "STUDY": 4, "SERIES": 5, "IMAGE": 6}


def test_responses_hold_the_requested_keys_with_the_records_values(index: ArchiveIndex) -> None:
    (match,) = index.find(
        "STUDY",
        query(
            "STUDY", StudyInstanceUID="1.1", PatientName="", StudyDate="", PatientMotherBirthName=""
        ),
    )
    assert [element.keyword for element in match] == [
        "StudyDate",
        "QueryRetrieveLevel",
        "PatientName",
        "PatientMotherBirthName",
        "StudyInstanceUID",
    ]
    assert (match.PatientName, match.StudyDate, match.StudyInstanceUID) == (
        "DOE^JOHN",
        "20240105",
        "1.1",
    )
    assert match["PatientMotherBirthName"].is_empty  # not held: returned empty, no error


def test_responses_carry_the_character_set_of_the_record(index: ArchiveIndex) -> None:
    (match,) = index.find("PATIENT", query("PATIENT", PatientName="MÜ*"))
    assert match.SpecificCharacterSet == "ISO_IR 100"
    assert match.PatientName == "MÜLLER^ANNA"


def test_computed_attributes_are_returned_and_matched(index: ArchiveIndex) -> None:
    (study,) = index.find(
        "STUDY",
        query(
            "STUDY",
            ModalitiesInStudy="MR",
            NumberOfStudyRelatedInstances="",
            NumberOfStudyRelatedSeries="",
            SOPClassesInStudy="",
        ),
    )
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert (study.NumberOfStudyRelatedInstances, study.NumberOfStudyRelatedSeries) == (3, 2)
    assert sorted(study.SOPClassesInStudy) == sorted([CTImageStorage, MRImageStorage])
    (patient,) = index.find(
        "PATIENT",
        query(
            "PATIENT",
            PatientID="P1",
            NumberOfPatientRelatedStudies="",
            NumberOfPatientRelatedInstances="",
        ),
    )
    assert (patient.NumberOfPatientRelatedStudies, patient.NumberOfPatientRelatedInstances) == (
        2,
        4,
    )
    assert studies(index, ModalitiesInStudy=["US", "MR"]) == ["1.1", "1.4"]
    assert studies(index, NumberOfStudyRelatedSeries="2") == ["1.1"]
    (series,) = index.find(
        "SERIES", query("SERIES", SeriesInstanceUID="1.1.1", NumberOfSeriesRelatedInstances="")
    )
    assert series.NumberOfSeriesRelatedInstances == 2


def test_retrieve_files_cover_the_whole_matching_record(
    index: ArchiveIndex, archive_files: list[Path]
) -> None:
    files = index.files("STUDY", query("STUDY", ModalitiesInStudy="MR"))
    assert len(files) == 3 and all(Path(f).is_file() for f in files)
    assert set(files) <= {str(f) for f in archive_files}
    assert len(index.files("SERIES", query("SERIES", Modality="MR"))) == 1
    assert index.files("STUDY", query("STUDY", StudyInstanceUID="9.9")) == []
    assert len(index.files("PATIENT", query("PATIENT", PatientID="P1"))) == 4


def test_instance_gives_the_file_of_a_known_uid(
    index: ArchiveIndex, archive_files: list[Path]
) -> None:
    uid = archive_files[0].stem
    assert index.instance(uid) == str(archive_files[0])
    assert index.instance("9.9.9") is None


# -- matching kinds ---------------------------------------------------------------------


def test_single_value_matching_is_exact(index: ArchiveIndex) -> None:
    assert studies(index, PatientID="P1") == ["1.1", "1.3"]
    assert studies(index, PatientID="p1") == []  # LO is case-sensitive
    assert studies(index, AccessionNumber="AX1") == ["1.4"]


def test_universal_matching(index: ArchiveIndex) -> None:
    assert studies(index, PatientName="") == ["1.1", "1.2", "1.3", "1.4"]
    assert studies(index, PatientName="*") == ["1.1", "1.2", "1.3", "1.4"]


def test_person_names_match_case_insensitively_by_default(
    open_test_index: OpenIndex, archive_files: list[Path]
) -> None:
    index = open_test_index()
    for path in archive_files:
        index.add(path)
    assert studies(index, PatientName="DOE^J*") == ["1.1", "1.3", "1.4"]
    assert studies(index, PatientName="müller^anna") == ["1.2"]
    sensitive = open_test_index(IndexConfig(pn_case_sensitive=True))
    assert studies(sensitive, PatientName="DOE^J*") == ["1.1", "1.3"]
    assert studies(sensitive, PatientName="müller^anna") == []


def test_wildcards_with_sql_wildcard_characters_taken_literally(index: ArchiveIndex) -> None:
    assert studies(index, AccessionNumber="A?1") == ["1.1", "1.3", "1.4"]
    assert studies(index, AccessionNumber="A_1") == ["1.1"]  # "_" is no SQL wildcard here
    assert studies(index, AccessionNumber="A%*") == ["1.3"]  # nor is "%"
    assert studies(index, AccessionNumber="A[1*") == ["1.2"]  # nor "[" (GLOB)
    assert studies(index, AccessionNumber="*1]") == ["1.2"]
    assert studies(index, PatientName="*ANN?") == ["1.2"]
    assert studies(index, PatientName="D?E^J*N") == ["1.1", "1.3"]


def test_uid_lists_are_alternatives(index: ArchiveIndex) -> None:
    found = index.find("STUDY", query("STUDY", StudyInstanceUID=["1.2", "1.4", "9.9"]))
    assert sorted(str(m.StudyInstanceUID) for m in found) == ["1.2", "1.4"]
    found = index.find("STUDY", query("STUDY", StudyInstanceUID="1.*"))
    assert list(found) == []  # UIDs take no wildcards


def test_date_ranges_inclusive_and_open(index: ArchiveIndex) -> None:
    assert studies(index, StudyDate="20240105-20240106") == ["1.1", "1.3"]
    assert studies(index, StudyDate="-20240105") == ["1.1", "1.4"]
    assert studies(index, StudyDate="20240106-") == ["1.2", "1.3"]
    assert studies(index, StudyDate="20240301") == ["1.2"]


def test_time_ranges_cover_the_period_of_a_partial_bound(index: ArchiveIndex) -> None:
    assert studies(index, StudyTime="1000-1015") == ["1.2"]  # 10:15 lasts a minute
    assert studies(index, StudyTime="2359-") == ["1.4"]
    assert studies(index, StudyTime="-0900") == ["1.3"]


def test_date_time_ranges(index: ArchiveIndex) -> None:
    def images(value: str) -> int:
        return len(list(index.find("IMAGE", query("IMAGE", AcquisitionDateTime=value))))

    assert images("20240105-20240106") == 4
    assert images("202401061000-") == 1
    assert images("20240105150000") == 3


def test_combined_date_time_matching_only_when_negotiated(index: ArchiveIndex) -> None:
    keys = {"StudyDate": "20240105-20240106", "StudyTime": "1000-1200"}
    # separately: no study of those days has a time between 10:00 and 12:00
    assert studies(index, **keys) == []
    # combined: from 5 January 10:00 to 6 January 12:00
    combined = QueryOptions(combined_datetime=True)
    assert studies(index, combined, **keys) == ["1.1", "1.3"]
    assert studies(index, combined, StudyDate="20240106", StudyTime="-0859") == []
    assert studies(index, combined, StudyDate="-20240105", StudyTime="1400") == ["1.4"]


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
@pytest.mark.parametrize("value", ["2024-01-05", "20240105-2024", "-", "2024010a", "tomorrow"])
def test_a_malformed_date_range_is_an_invalid_query(index: ArchiveIndex, value: str) -> None:
    with pytest.raises(InvalidQuery) as raised:
        studies(index, StudyDate=value)
    assert raised.value.status == 0xA900
    assert repr(value) in str(raised.value)


# -- hierarchical and relational ---------------------------------------------------------


def test_hierarchical_queries_need_the_unique_keys_above(index: ArchiveIndex) -> None:
    model = QueryOptions(model=PATIENT_ROOT_FIND)
    with pytest.raises(InvalidQuery, match="needs one PatientID"):
        list(index.find("STUDY", query("STUDY"), options=model))
    with pytest.raises(InvalidQuery, match="needs one PatientID"):
        list(index.find("STUDY", query("STUDY", PatientID="P*"), options=model))
    with pytest.raises(InvalidQuery, match="StudyInstanceUID"):
        list(index.find("SERIES", query("SERIES", PatientID="P1"), options=model))
    assert studies(index, model, PatientID="P1") == ["1.1", "1.3"]
    with pytest.raises(InvalidQuery, match="'PATIENT' is not one of STUDY/SERIES/IMAGE"):
        list(index.find("PATIENT", query("PATIENT"), options=QueryOptions(model=STUDY_ROOT_FIND)))
    # Study Root has nothing above the study level
    assert studies(index, QueryOptions(model=STUDY_ROOT_FIND), PatientName="DOE*") == [
        "1.1",
        "1.3",
        "1.4",
    ]


def test_relational_queries_match_keys_of_lower_levels(index: ArchiveIndex) -> None:
    # hierarchical: a series key at the study level is not matched (and comes back empty)
    assert studies(index, Modality="MR") == ["1.1", "1.2", "1.3", "1.4"]
    relational = QueryOptions(model=PATIENT_ROOT_FIND, relational=True)
    assert studies(index, relational, Modality="MR") == ["1.1"]
    assert studies(index, relational, Modality="CT", InstanceNumber="2") == ["1.1"]
    assert studies(index, relational, Modality="MR", InstanceNumber="2") == []  # one image
    found = index.find("PATIENT", query("PATIENT", PatientID="", Modality="US"), options=relational)
    assert [str(m.PatientID) for m in found] == ["P3"]


# -- writing ----------------------------------------------------------------------------


def test_a_replaced_instance_moves_and_empty_records_go(
    open_test_index: OpenIndex, tmp_path: Path
) -> None:
    index = open_test_index()
    first = write_instance(
        tmp_path, PatientID="P1", StudyInstanceUID="1.1", SeriesInstanceUID="1.1.1"
    )
    index.add(first)
    moved = write_instance(
        tmp_path, PatientID="P2", StudyInstanceUID="1.2", SeriesInstanceUID="1.2.1"
    )
    again = tmp_path / "again.dcm"
    from pydicom import dcmread

    ds = dcmread(moved)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = first.stem
    ds.save_as(again, enforce_file_format=True)
    index.add(again)
    assert index.count() == 1
    assert index.instance(first.stem) == str(again)
    assert [str(m.PatientID) for m in index.find("PATIENT", query("PATIENT", PatientID=""))] == [
        "P2"
    ]
    assert studies(index) == ["1.2"]


def test_instances_of_one_series_keep_its_records_current(
    open_test_index: OpenIndex, tmp_path: Path
) -> None:
    """The patient, study and series rows an index wrote last are not written again for
    the next instance of the series, unless that instance changes them."""
    index = open_test_index()
    same = {"PatientID": "P1", "StudyInstanceUID": "3.1", "SeriesInstanceUID": "3.1.1"}
    for number in range(3):
        index.add(write_instance(tmp_path, InstanceNumber=str(number), **same))
    index.add(write_instance(tmp_path, StudyDescription="given later", **same))
    (study,) = index.find("STUDY", query("STUDY", StudyDescription="", StudyInstanceUID=""))
    assert study.StudyDescription == "given later"
    assert index.count() == 4


def test_records_removed_by_another_process_are_written_again(
    open_test_index: OpenIndex, tmp_path: Path
) -> None:
    """Another index on the same database (another archive process) replaces the only
    instance of a series with one in another study: the series, study and patient this
    index wrote last are gone. Its next instance of that series still gets them."""
    index, other = open_test_index(), open_test_index()
    old = {"PatientID": "P1", "StudyInstanceUID": "4.1", "SeriesInstanceUID": "4.1.1"}
    first = write_instance(tmp_path, **old)
    index.add(first)
    from pydicom import dcmread

    moved = dcmread(
        write_instance(tmp_path, PatientID="P2", StudyInstanceUID="4.2", SeriesInstanceUID="4.2.1")
    )
    moved.SOPInstanceUID = moved.file_meta.MediaStorageSOPInstanceUID = first.stem
    replacement = tmp_path / "replacement.dcm"
    moved.save_as(replacement, enforce_file_format=True)
    other.add(replacement)
    assert studies(index) == ["4.2"]  # 4.1, its series and P1 went with it
    index.add(write_instance(tmp_path, **old))
    assert studies(index) == ["4.1", "4.2"]
    patients = index.find("PATIENT", query("PATIENT", PatientID=""))
    assert sorted(str(p.PatientID) for p in patients) == ["P1", "P2"]
    assert index.count() == 2


def test_several_threads_index_at_once(open_test_index: OpenIndex, tmp_path: Path) -> None:
    index = open_test_index()
    paths = [
        write_instance(
            tmp_path,
            PatientID=f"P{n % 3}",
            StudyInstanceUID=f"2.{n % 5}",
            SeriesInstanceUID=f"2.{n % 5}.1",
        )
        for n in range(40)
    ]
    errors: list[BaseException] = []

    def add(chunk: list[Path]) -> None:
        try:
            for path in chunk:
                index.add(path)
                list(index.find("STUDY", query("STUDY", PatientID="P1")))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(paths[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert index.count() == 40
    assert len(studies(index)) == 5


def test_the_index_survives_reopening(
    open_test_index: OpenIndex, archive_files: list[Path]
) -> None:
    index = open_test_index()
    for path in archive_files:
        index.add(path)
    index.close()
    assert open_test_index().count() == len(archive_files)


def test_index_urls() -> None:
    for url in ("mysql://x/y", "sqlite:///", "sqlite:///:memory:", "/tmp/index.db"):
        with pytest.raises(UnsupportedIndexURL):
            open_index(url)


# -- one meaning of matching ------------------------------------------------------------

AGREEMENT_QUERIES = [
    ("STUDY", {"PatientName": "D*N"}),
    ("STUDY", {"StudyDate": "20240101-", "Modality": "CT"}),
    ("SERIES", {"Modality": ["MR", "US"]}),
    ("IMAGE", {"AcquisitionDateTime": "-20240105235959", "InstanceNumber": "1"}),
    ("PATIENT", {"PatientID": "P?"}),
    ("STUDY", {"AccessionNumber": "A*1*", "StudyTime": "0900-1600"}),
    ("STUDY", {"ModalitiesInStudy": "CT", "NumberOfStudyRelatedInstances": ""}),
]


@pytest.mark.parametrize(("level", "keys"), AGREEMENT_QUERIES)
def test_the_database_agrees_with_the_memory_index(
    index: ArchiveIndex, archive_files: list[Path], level: str, keys: dict[str, object]
) -> None:
    memory = MemoryIndex()
    for path in archive_files:
        memory.add(path)
    # the memory index matches every key of every level, i.e. relationally
    options = QueryOptions(relational=True)
    unique = UNIQUE_KEY_OF_LEVEL[level]
    identifier = query(level, **{unique: "", **keys})
    expected = [str(m[unique].value) for m in memory.find(level, identifier, options=options)]
    found = [str(m[unique].value) for m in index.find(level, identifier, options=options)]
    assert sorted(found) == sorted(expected) and found
    assert sorted(index.files(level, identifier, options=options)) == sorted(
        memory.files(level, identifier, options=options)
    )


def request_item(procedure: str, step: str) -> Dataset:
    item = Dataset()
    item.RequestedProcedureID = procedure
    item.ScheduledProcedureStepID = step
    return item


def test_sequence_matching_needs_one_item_matching_every_item_key(
    open_test_index: OpenIndex, tmp_path: Path
) -> None:
    index = open_test_index()
    for series, items in (
        ("3.1.1", [("RP1", "SPS1"), ("RP2", "SPS2")]),
        ("3.1.2", [("RP3", "SPS3")]),
    ):
        index.add(
            write_instance(
                tmp_path,
                PatientID="P9",
                StudyInstanceUID="3.1",
                SeriesInstanceUID=series,
                RequestAttributesSequence=Sequence([request_item(*item) for item in items]),
            )
        )
    index.add(
        write_instance(tmp_path, PatientID="P9", StudyInstanceUID="3.1", SeriesInstanceUID="3.1.3")
    )

    def series(**item_keys: str) -> list[str]:
        key_item = Dataset()
        for keyword, value in item_keys.items():
            setattr(key_item, keyword, value)
        identifier = query(
            "SERIES", SeriesInstanceUID="", RequestAttributesSequence=Sequence([key_item])
        )
        return sorted(str(m.SeriesInstanceUID) for m in index.find("SERIES", identifier))

    assert series(RequestedProcedureID="RP2", ScheduledProcedureStepID="SPS2") == ["3.1.1"]
    assert series(RequestedProcedureID="RP2", ScheduledProcedureStepID="SPS1") == []  # two items
    assert series(ScheduledProcedureStepID="SPS*") == ["3.1.1", "3.1.2"]
    assert series() == ["3.1.1", "3.1.2", "3.1.3"]  # an empty item: universal
    assert series(RequestedProcedureID="") == ["3.1.1", "3.1.2", "3.1.3"]
    key_item = Dataset()
    key_item.RequestedProcedureID = ""
    identifier = query(
        "SERIES", SeriesInstanceUID="3.1.1", RequestAttributesSequence=Sequence([key_item])
    )
    (match,) = index.find("SERIES", identifier)
    returned = match.RequestAttributesSequence
    assert [str(item.RequestedProcedureID) for item in returned] == ["RP1", "RP2"]
    assert all(list(item.keys()) == [key_item["RequestedProcedureID"].tag] for item in returned)
    # a sequence the index does not hold is returned empty, never an error
    identifier = query("SERIES", SeriesInstanceUID="3.1.3", ReferencedImageSequence=Sequence([]))
    (match,) = index.find("SERIES", identifier)
    assert len(match.ReferencedImageSequence) == 0


def test_commits_wait_for_the_disk_only_with_durable_commits(
    open_test_index: OpenIndex, request: pytest.FixtureRequest
) -> None:
    """Without ``durable_commits`` a commit does not wait for the log on disk (SQLite
    NORMAL, PostgreSQL synchronous_commit off); with it, it does (FULL, on)."""
    sqlite = request.node.callspec.params["open_test_index"] == "sqlite"
    query = "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit"
    settings = []
    for durable in (False, True):
        index = open_test_index(IndexConfig(durable_commits=durable))
        with index.backend.transaction(write=False) as session:
            settings.append(str(session.execute(query)[0][0]))
    assert settings == (["1", "2"] if sqlite else ["off", "on"])
