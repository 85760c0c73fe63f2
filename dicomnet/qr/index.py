"""The archive index a query/retrieve SCP answers from (PS3.4 C.4.1-C.4.3, C.6).

``QueryIndex`` is what an SCP needs from an index: add an instance, find the records of
a level that match an identifier, and list the files of a retrieve, each query with the
``QueryOptions`` the association negotiated. ``MemoryIndex`` implements it over instance
headers held in memory; ``dicomnet.archive`` implements it over SQLite and PostgreSQL.

Both read files (``add``, and ``MemoryIndex`` reads large header values lazily while
matching): call them from the application's threads or through
``DicomNet.run_in_background``, never from a callback on the loop thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag

from .matching import (
    CombinedRange,
    Lookup,
    identifier_matches,
    overlay,
    split_combined,
)
from .models import UNIQUE_KEY_OF_LEVEL, check_hierarchical, levels_above

_QUERY_RETRIEVE_LEVEL = Tag("QueryRetrieveLevel")
_SPECIFIC_CHARACTER_SET = Tag("SpecificCharacterSet")
# Header values larger than this stay on disk until read (memory stays small).
_HEADER_DEFER_SIZE = 4096
# Spool files of transfers in progress, never indexed.
_SPOOL_SUFFIX = ".part"

# Attributes computed over a record's instances (PS3.4 C.6.1.1): keyword -> (level,
# attribute whose distinct values make it, count them (True) or list them (False)).
_COMPUTED = {
    "NumberOfPatientRelatedStudies": ("PATIENT", "StudyInstanceUID", True),
    "NumberOfPatientRelatedSeries": ("PATIENT", "SeriesInstanceUID", True),
    "NumberOfPatientRelatedInstances": ("PATIENT", "SOPInstanceUID", True),
    "NumberOfStudyRelatedSeries": ("STUDY", "SeriesInstanceUID", True),
    "NumberOfStudyRelatedInstances": ("STUDY", "SOPInstanceUID", True),
    "ModalitiesInStudy": ("STUDY", "Modality", False),
    "SOPClassesInStudy": ("STUDY", "SOPClassUID", False),
    "NumberOfSeriesRelatedInstances": ("SERIES", "SOPInstanceUID", True),
}


@dataclass(frozen=True)
class QueryOptions:
    """How a query is answered, from the request and the association's extended
    negotiation (PS3.4 C.5.1.1, C.5.2.1, C.5.3.1).

    ``model``: the C-FIND/C-GET/C-MOVE SOP class UID; when given, the level must be one
    of its levels and a hierarchical query must hold one value for the unique key of
    each level above (PS3.4 C.4.1.2.1); "" checks neither. ``relational``: relational
    queries were negotiated, so the unique keys above are not required and keys of
    lower levels match too (a record matches when something under it matches).
    ``combined_datetime``: a date key and its time key (StudyDate and StudyTime...) are
    matched as one date-time range (PS3.4 C.2.2.2.5.1) instead of separately.
    """

    model: str = ""
    relational: bool = False
    combined_datetime: bool = False

    def check(self, level: str, identifier: Dataset) -> None:
        """Raise ``InvalidQuery`` (A900) when the query does not fit the model."""
        if self.model:
            levels_above(self.model, level)  # the level itself is checked in any case
            if not self.relational:
                check_hierarchical(self.model, level, identifier)


DEFAULT_OPTIONS = QueryOptions()
"""Hierarchical matching without a model check, dates and times matched separately."""


class QueryIndex(Protocol):
    """What a query/retrieve SCP needs from an archive index.

    ``level`` is one of "PATIENT", "STUDY", "SERIES", "IMAGE" (see ``query_level``);
    ``identifier`` is the request's identifier, QueryRetrieveLevel included. An
    identifier that cannot be answered raises ``InvalidQuery``, whose ``status`` and
    message an SCP answers with.
    """

    def add(self, path: str | os.PathLike[str]) -> None:
        """Index (or re-index) the Part-10 file ``path``; raises when it cannot be read."""
        ...

    def find(
        self, level: str, identifier: Dataset, *, options: QueryOptions = DEFAULT_OPTIONS
    ) -> Iterator[Dataset]:
        """The C-FIND response identifiers of the records of ``level`` that match: the
        identifier's keys with the record's values, QueryRetrieveLevel and, when the
        record has one, SpecificCharacterSet."""
        ...

    def files(
        self, level: str, identifier: Dataset, *, options: QueryOptions = DEFAULT_OPTIONS
    ) -> list[str]:
        """The Part-10 files of every instance under the matching records of ``level``."""
        ...


@dataclass(frozen=True)
class IndexedInstance:
    """One instance of a ``MemoryIndex``: its file and its header (no pixel data)."""

    path: str
    header: Dataset


class MemoryIndex:
    """Instance headers in memory. A record of a level is the set of instances sharing
    that level's unique key; it matches when one of its instances (with the attributes
    computed over the record) matches every key, whatever its level: matching is always
    relational, and any attribute of the headers can be a key. Safe to use from several
    threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, IndexedInstance] = {}

    def __len__(self) -> int:
        return len(self._instances)

    @classmethod
    def scan(
        cls, directory: str | os.PathLike[str], on_error: Callable[[Path, Exception], None]
    ) -> MemoryIndex:
        """Index every Part-10 file under ``directory`` (spool files ``*.part`` skipped);
        ``on_error(path, error)`` hears about the files that cannot be indexed."""
        index = cls()
        for path in sorted(Path(directory).rglob("*")):
            if not path.is_file() or path.suffix == _SPOOL_SUFFIX:
                continue
            try:
                index.add(path)
            except Exception as exc:  # pydicom raises many types for files it cannot read
                on_error(path, exc)
        return index

    def add(self, path: str | os.PathLike[str]) -> None:
        """Index (or re-index) the instance in ``path``, keyed by its SOP Instance UID."""
        header = dcmread(path, stop_before_pixels=True, defer_size=_HEADER_DEFER_SIZE)
        instance_uid = str(header.get("SOPInstanceUID", "")).strip()
        if not instance_uid:
            raise ValueError(f"{path} has no SOP Instance UID")
        with self._lock:
            self._instances[instance_uid] = IndexedInstance(os.fspath(path), header)

    def find(
        self, level: str, identifier: Dataset, *, options: QueryOptions = DEFAULT_OPTIONS
    ) -> Iterator[Dataset]:
        options.check(level, identifier)
        keys = matching_keys(identifier)
        for _, record in self._matching_records(level, keys, options):
            yield response_identifier(level, keys, record)

    def files(
        self, level: str, identifier: Dataset, *, options: QueryOptions = DEFAULT_OPTIONS
    ) -> list[str]:
        options.check(level, identifier)
        keys = matching_keys(identifier)
        return [
            instance.path
            for members, _ in self._matching_records(level, keys, options)
            for instance in members
        ]

    def _records(self, level: str) -> Iterator[list[IndexedInstance]]:
        with self._lock:
            instances = list(self._instances.values())
        unique_key = UNIQUE_KEY_OF_LEVEL[level]
        records: dict[str, list[IndexedInstance]] = {}
        for instance in instances:
            records.setdefault(str(instance.header.get(unique_key, "")), []).append(instance)
        yield from records.values()

    def _matching_records(
        self, level: str, keys: list[DataElement], options: QueryOptions
    ) -> Iterator[tuple[list[IndexedInstance], Lookup]]:
        wanted = {key.tag for key in keys}
        ranges: list[CombinedRange] = []
        if options.combined_datetime:
            keys, ranges = split_combined(keys)
        for members in self._records(level):
            computed = _computed(level, members, wanted)
            for instance in members:
                lookup = overlay(computed, instance.header)
                if identifier_matches(lookup, keys) and all(r.matches(lookup) for r in ranges):
                    yield members, lookup
                    break


def matching_keys(identifier: Dataset) -> list[DataElement]:
    """The identifier's keys, without the elements that steer the query itself."""
    control = (_QUERY_RETRIEVE_LEVEL, _SPECIFIC_CHARACTER_SET)
    return [element for element in identifier if element.tag not in control]


def _computed(level: str, members: list[IndexedInstance], wanted: set[BaseTag]) -> Dataset:
    summary = Dataset()
    for keyword, (at_level, source, counted) in _COMPUTED.items():
        if at_level != level or Tag(keyword) not in wanted:
            continue
        values = sorted({str(m.header.get(source)) for m in members if m.header.get(source)})
        setattr(summary, keyword, str(len(values)) if counted else values)
    return summary


def response_identifier(level: str, keys: list[DataElement], lookup: Lookup) -> Dataset:
    """The requested keys with the record's values (empty when it has none)."""
    response = Dataset()
    charset = lookup(_SPECIFIC_CHARACTER_SET)
    if charset is not None and not charset.is_empty:
        response.SpecificCharacterSet = charset.value
    response.QueryRetrieveLevel = level
    for key in keys:
        found = lookup(key.tag)
        empty = DicomSequence() if key.VR == "SQ" else None
        response.add(found if found is not None else DataElement(key.tag, key.VR, empty))
    return response
