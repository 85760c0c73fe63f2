"""Modality Worklist C-FIND (PS3.4 K.4, K.6.1) from a folder of worklist items, as
DCMTK's wlmscpfs serves them.

A worklist item is a file ``*.wl`` (or ``*.dcm``) in the folder: a Part-10 file or a
plain data set in Implicit VR Little Endian, holding the patient, the requested procedure
and one or more items of the Scheduled Procedure Step Sequence. The folder is read for
every query, so items written (atomically) or removed between queries are seen at once.

Matching is PS3.4 C.2.2.2 (``dicomnet.qr.matching``) on every key of the identifier: the
patient keys, and in the Scheduled Procedure Step Sequence the keys a modality uses
(Modality, Scheduled Station AE Title, Scheduled Procedure Step Start Date and Time
ranges, Scheduled Performing Physician's Name) by sequence matching of the one item
(C.2.2.2.6). A response holds the identifier's keys with the item's values; in a
sequence, the record's items that match, each with the keys asked for (all of them
when the key's item is empty). Keys an item lacks come back empty.

A malformed range raises ``InvalidQuery`` (answered A900 with the reason). Reading
files is slow work: call ``WorklistFolder.find`` off the loop thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

from .qr.matching import RANGE_VRS, identifier_matches, key_values, overlay, range_bounds

log = logging.getLogger("dicomnet.worklist")

WORKLIST_SUFFIXES = (".wl", ".dcm")
"""The names of worklist item files in a worklist folder."""

_SPECIFIC_CHARACTER_SET = Tag("SpecificCharacterSet")
_QUERY_RETRIEVE_LEVEL = Tag("QueryRetrieveLevel")  # not part of the worklist model


def worklist_keys(identifier: Dataset) -> list[DataElement]:
    """The identifier's matching and return keys (the character set steers decoding, a
    Query/Retrieve Level has no meaning in a worklist)."""
    control = (_SPECIFIC_CHARACTER_SET, _QUERY_RETRIEVE_LEVEL)
    return [element for element in identifier if element.tag not in control]


def check_identifier(identifier: Dataset) -> None:
    """Raise ``InvalidQuery`` (A900, with the reason) for a malformed date, time or
    date-time range anywhere in the identifier, sequence items included: a query that
    cannot be answered is refused, not answered with no matches."""
    for key in identifier.iterall():
        if key.VR in RANGE_VRS and not key.is_empty:
            for value in key_values(key):
                range_bounds(value, key.VR)


def item_matches(item: Dataset, identifier: Dataset) -> bool:
    """True when the worklist ``item`` matches every key of ``identifier``."""
    return identifier_matches(overlay(item), worklist_keys(identifier))


def worklist_response(item: Dataset, identifier: Dataset) -> Dataset:
    """The C-FIND response identifier for a matching ``item``."""
    response = Dataset()
    charset = item.get(_SPECIFIC_CHARACTER_SET)
    if charset is not None and not charset.is_empty:
        response.SpecificCharacterSet = charset.value
    _project(item, worklist_keys(identifier), response)
    return response


def _project(record: Dataset, keys: list[DataElement], into: Dataset) -> None:
    for key in keys:
        found = record.get(key.tag)
        if key.VR == "SQ":
            into.add(DataElement(key.tag, "SQ", _sequence_items(found, key)))
        elif found is None:
            into.add(DataElement(key.tag, key.VR, None))
        else:
            into.add(found)


def _sequence_items(found: DataElement | None, key: DataElement) -> DicomSequence:
    """The record's items a sequence key returns: all of them, whole, for a key without
    an item or with an empty one; else the matching ones, with the item's keys."""
    if found is None or found.VR != "SQ":
        return DicomSequence()
    query = key.value[0] if len(key.value) else Dataset()
    if len(query) == 0:
        return DicomSequence(list(found.value))
    sub_keys = list(query)
    items = []
    for record_item in found.value:
        if identifier_matches(overlay(record_item), sub_keys):
            projected = Dataset()
            _project(record_item, sub_keys, projected)
            items.append(projected)
    return DicomSequence(items)


@dataclass(frozen=True)
class WorklistFolder:
    """The worklist items in ``directory`` (its ``*.wl`` and ``*.dcm`` files)."""

    directory: Path

    def items(self) -> Iterator[Dataset]:
        """Every readable item, in file name order; unreadable files are logged and
        left out (a file being written under another name is not seen)."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            log.warning("cannot read the worklist folder %s: %s", self.directory, exc)
            return
        for name in names:
            path = self.directory / name
            if not name.lower().endswith(WORKLIST_SUFFIXES) or not path.is_file():
                continue
            try:
                item = dcmread(path, force=True)
                elements = sum(1 for _ in item.iterall())  # decodes every value now
            except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
                log.warning("worklist item %s left out: %s", path, exc)
                continue
            if elements:
                yield item
            else:
                log.warning("worklist item %s left out: no data set in it", path)

    def find(self, identifier: Dataset) -> Iterator[Dataset]:
        """The response identifiers of the items that match ``identifier``; raises
        ``InvalidQuery`` first when it cannot be answered (``check_identifier``)."""
        check_identifier(identifier)
        for item in self.items():
            if item_matches(item, identifier):
                yield worklist_response(item, identifier)
