"""Pieces the query/retrieve samples share (findscu, getscu, movescu, qrscp).

- ``-k`` keys in DCMTK findscu syntax, turned into a C-FIND/C-GET/C-MOVE identifier;
- attribute matching as PS3.4 C.2.2.2 defines it (single value, wildcard, UID list,
  range, universal and sequence matching);
- ``MemoryIndex``, the in-memory archive index qrscp answers from, grouped by the levels
  of the Patient Root and Study Root information models (PS3.4 C.6.1, C.6.2) behind the
  small ``QueryIndex`` interface;
- association helpers: proposing contexts (with SCP role selection for C-GET), choosing a
  context for a stored file, and waiting for a final response while pending ones arrive.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from pydicom import Dataset, dcmread
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag

from dicomnet import (
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    DicomRoleSupport,
)
from dicomnet.associate import NegotiatedContext
from dicomnet.dimse.assembly import Message
from dicomnet.dimse.part10 import CONVERTIBLE_TRANSFER_SYNTAXES, Part10File
from dicomnet.sopclasses import (
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)
from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE

# -- information models --------------------------------------------------------------

PATIENT_ROOT_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
STUDY_ROOT_LEVELS = ("STUDY", "SERIES", "IMAGE")
LEVELS_OF_MODEL = {
    **dict.fromkeys((PATIENT_ROOT_FIND, PATIENT_ROOT_GET, PATIENT_ROOT_MOVE), PATIENT_ROOT_LEVELS),
    **dict.fromkeys((STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE), STUDY_ROOT_LEVELS),
}
# The unique key of each level: the records of a level are the distinct values of it.
UNIQUE_KEY_OF_LEVEL = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
# SCU side: the SOP classes of each -P/-S/-W model and the level a query gets by default.
FIND_MODELS = {
    "patient": PATIENT_ROOT_FIND,
    "study": STUDY_ROOT_FIND,
    "worklist": MODALITY_WORKLIST_FIND,
}
GET_MODELS = {"patient": PATIENT_ROOT_GET, "study": STUDY_ROOT_GET}
MOVE_MODELS = {"patient": PATIENT_ROOT_MOVE, "study": STUDY_ROOT_MOVE}
DEFAULT_LEVEL = {"patient": "PATIENT", "study": "STUDY"}

QUERY_TRANSFER_SYNTAXES = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)

_QUERY_RETRIEVE_LEVEL = Tag("QueryRetrieveLevel")
_SPECIFIC_CHARACTER_SET = Tag("SpecificCharacterSet")


def query_level(model: str, identifier: Dataset) -> str:
    """The identifier's Query/Retrieve Level, checked against the model's levels.

    Raises ValueError with the reason (an SCP answers A900: identifier does not match
    the SOP class).
    """
    levels = LEVELS_OF_MODEL.get(model)
    if levels is None:
        raise ValueError(f"{model} is not a Patient or Study Root query/retrieve model")
    level = str(identifier.get("QueryRetrieveLevel", "")).strip()
    if level not in levels:
        raise ValueError(f"Query/Retrieve Level {level!r} is not one of {'/'.join(levels)}")
    return level


# -- -k keys -------------------------------------------------------------------------

_TAG_TEXT = re.compile(r"\(?([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)?")
_PATH_COMPONENT = re.compile(r"(?P<name>[^\[\]]+?)(?:\[(?P<index>\d+)\])?")
_INTEGER_VRS = frozenset({"US", "UL", "SS", "SL", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})


@dataclass(frozen=True)
class QueryKey:
    """One ``-k`` key: the sequence items on its way (tag, item index), then the element."""

    path: tuple[tuple[BaseTag, int], ...]
    element: DataElement


def parse_key(text: str) -> QueryKey:
    """Parse ``Keyword=value``, ``(gggg,eeee)=value``, ``gggg,eeee=value`` or a bare key
    (a return key, empty); sequence items as ``SequenceKeyword[0].Keyword=value``.

    Raises argparse.ArgumentTypeError with the reason, so it serves directly as an
    argparse ``type``.
    """
    name, has_value, value = text.partition("=")
    components = name.strip().split(".")
    path: list[tuple[BaseTag, int]] = []
    for component in components[:-1]:
        tag, index = _path_component(component, text)
        if _vr_of(tag) != "SQ":
            raise argparse.ArgumentTypeError(f"{text!r}: {component} is not a sequence")
        path.append((tag, index or 0))
    tag, index = _path_component(components[-1], text)
    if index is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: an item index needs a key after it")
    return QueryKey(tuple(path), _key_element(tag, value if has_value else "", text))


def _path_component(component: str, text: str) -> tuple[BaseTag, int | None]:
    match = _PATH_COMPONENT.fullmatch(component.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: cannot read {component!r}")
    index = match["index"]
    return _tag_of(match["name"], text), None if index is None else int(index)


def _tag_of(name: str, text: str) -> BaseTag:
    numeric = _TAG_TEXT.fullmatch(name)
    if numeric is not None:
        tag = Tag(int(numeric[1], 16), int(numeric[2], 16))
        if not keyword_for_tag(tag):
            raise argparse.ArgumentTypeError(f"{text!r}: {tag} is not in the DICOM dictionary")
        return tag
    number = tag_for_keyword(name)
    if number is None:
        raise argparse.ArgumentTypeError(f"{text!r}: {name!r} is not a DICOM keyword")
    return Tag(number)


def _vr_of(tag: BaseTag) -> str:
    return dictionary_VR(tag).split(" or ")[0]  # "US or SS" -> "US"


def _key_element(tag: BaseTag, value: str, text: str) -> DataElement:
    vr = _vr_of(tag)
    if vr == "SQ":
        if value:
            raise argparse.ArgumentTypeError(
                f"{text!r}: a sequence takes keys of its items, e.g. "
                f"{keyword_for_tag(tag)}[0].Keyword=value"
            )
        return DataElement(tag, vr, DicomSequence())
    if not value:
        return DataElement(tag, vr, None)
    values = value.split("\\")
    try:
        if vr in _INTEGER_VRS:
            converted: list[object] = [int(v) for v in values]
        elif vr in _FLOAT_VRS:
            converted = [float(v) for v in values]
        else:
            converted = list(values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a {vr} value") from exc
    return DataElement(tag, vr, converted[0] if len(converted) == 1 else converted)


def build_identifier(keys: Iterable[QueryKey], default_level: str | None = None) -> Dataset:
    """The identifier the keys describe; a later key for the same element wins. Without a
    QueryRetrieveLevel key, ``default_level`` (if any) is used."""
    identifier = Dataset()
    for key in keys:
        target = identifier
        for tag, index in key.path:
            if tag not in target:
                target.add(DataElement(tag, "SQ", DicomSequence()))
            items = target[tag].value
            while len(items) <= index:
                items.append(Dataset())
            target = items[index]
        target.add(key.element)
    if default_level and _QUERY_RETRIEVE_LEVEL not in identifier:
        identifier.QueryRetrieveLevel = default_level
    return identifier


def add_model_options(parser: argparse.ArgumentParser, *, worklist: bool = False) -> None:
    """-P/-S (and -W) to choose the information model, -k for keys (DCMTK spellings)."""
    models = parser.add_mutually_exclusive_group()
    models.add_argument(
        "-P",
        "--patient",
        dest="model",
        action="store_const",
        const="patient",
        help="use the Patient Root information model",
    )
    models.add_argument(
        "-S",
        "--study",
        dest="model",
        action="store_const",
        const="study",
        help="use the Study Root information model (default)",
    )
    if worklist:
        models.add_argument(
            "-W",
            "--worklist",
            dest="model",
            action="store_const",
            const="worklist",
            help="use the Modality Worklist information model",
        )
    parser.set_defaults(model="study")
    parser.add_argument(
        "-k",
        "--key",
        dest="keys",
        action="append",
        type=parse_key,
        default=[],
        metavar="KEY[=VALUE]",
        help="keyword, (gggg,eeee) or gggg,eeee, with an optional value to "
        "match; Seq[0].Keyword=value for sequence items",
    )


# -- showing identifiers ------------------------------------------------------------


def format_identifier(dataset: Dataset, indent: str = "  ") -> list[str]:
    """One line per element, ``keyword (gggg,eeee) value``; sequence items indented."""
    lines: list[str] = []
    for element in dataset:
        label = (
            f"{indent}{element.keyword or 'Unknown'} ({element.tag.group:04X},"
            f"{element.tag.element:04X})"
        )
        if element.VR == "SQ":
            lines.append(f"{label} {len(element.value)} item(s)")
            for number, item in enumerate(element.value, 1):
                lines.append(f"{indent}  item {number}")
                lines.extend(format_identifier(item, indent + "    "))
        else:
            lines.append(f"{label} {_display(element)}")
    return lines


def _display(element: DataElement) -> str:
    if element.is_empty:
        return "(no value)"
    value = element.value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, MultiValue | list):
        return "\\".join(str(v) for v in value)
    return str(value)


def format_progress(remaining: int, completed: int, failed: int, warning: int) -> str:
    """Sub-operation counts of a C-GET/C-MOVE response; a negative remaining is absent."""
    counts = f"completed {completed}, failed {failed}, warning {warning}"
    return f"remaining {remaining}, {counts}" if remaining >= 0 else counts


# -- matching (PS3.4 C.2.2.2) --------------------------------------------------------

# Wildcards apply to these VRs only (PS3.4 C.2.2.2.4); DA/TM/DT take ranges (C.2.2.2.5).
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
_RANGE_WIDTH = {"DA": 8, "TM": 6, "DT": 14}  # digits before any fraction
# A DT range; a high bound of exactly four digits would be a UTC offset, not a range.
_DT_RANGE = re.compile(
    r"(?P<low>\d[\d.]*(?:[+-]\d{4})?)?-(?P<high>(?!\d{4}$)\d[\d.]*"
    r"(?:[+-]\d{4})?)?"
)
_DT_OFFSET = re.compile(r"[+-]\d{4}$")

Lookup = Callable[[BaseTag], DataElement | None]


def identifier_matches(lookup: Lookup, keys: Iterable[DataElement]) -> bool:
    """True when the record behind ``lookup`` matches every key."""
    return all(element_matches(lookup(key.tag), key) for key in keys)


def element_matches(candidate: DataElement | None, key: DataElement) -> bool:
    """One key against one attribute of a record (None: the record lacks it)."""
    if key.is_empty:
        return True  # universal matching (C.2.2.2.3)
    if key.VR == "SQ":
        return _sequence_matches(candidate, key)
    wanted = _values(key)
    if key.VR in WILDCARD_VRS and wanted == ["*"]:
        return True  # a lone "*" is universal matching, even for an absent value
    if candidate is None or candidate.is_empty:
        return False
    have = _values(candidate)
    return any(_value_matches(value, pattern, key.VR) for value in have for pattern in wanted)


def _values(element: DataElement) -> list[str]:
    """The element's values as text; several key values are alternatives (UID lists)."""
    value = element.value
    values = value if isinstance(value, MultiValue | list) else [value]
    if element.VR == "PN":  # empty trailing components are not part of the name
        return [str(v).rstrip("^= ") for v in values]
    return [str(v).strip() for v in values]


def _value_matches(value: str, pattern: str, vr: str) -> bool:
    if vr in RANGE_VRS:
        return _in_range(value, pattern, vr)
    if vr in WILDCARD_VRS and ("*" in pattern or "?" in pattern):
        return _wildcard(pattern).fullmatch(value) is not None
    return value == pattern


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _in_range(value: str, pattern: str, vr: str) -> bool:
    """Range matching; a partial bound covers its whole period, so a single value (a range
    from itself to itself) like TM "1015" matches any time in that minute."""
    low, high = _range_bounds(pattern, vr)
    normalized = _comparable(value, vr, "0")
    return (not low or normalized >= _comparable(low, vr, "0")) and (
        not high or normalized <= _comparable(high, vr, "9")
    )


def _range_bounds(pattern: str, vr: str) -> tuple[str, str]:
    if vr == "DT":
        match = _DT_RANGE.fullmatch(pattern)
        return (match["low"] or "", match["high"] or "") if match else (pattern, pattern)
    low, dash, high = pattern.partition("-")
    return (low, high) if dash else (pattern, pattern)


def _comparable(value: str, vr: str, pad: str) -> str:
    """A date/time as fixed-width text that sorts in time order; missing digits padded."""
    text = value.strip().replace(":", "") if vr == "TM" else value.strip()
    if vr == "DT":
        text = _DT_OFFSET.sub("", text)  # offsets are ignored: values compare as local time
    whole, _, fraction = text.partition(".")
    width = _RANGE_WIDTH[vr]
    digits = whole.ljust(width, pad)[:width]
    return digits if vr == "DA" else f"{digits}.{fraction.ljust(6, pad)[:6]}"


def _sequence_matches(candidate: DataElement | None, key: DataElement) -> bool:
    """Sequence matching (C.2.2.2.6): some item of the record matches the key's item."""
    query_item = key.value[0]
    if len(query_item) == 0:
        return True
    if candidate is None or candidate.VR != "SQ":
        return False
    return any(identifier_matches(_overlay(item), query_item) for item in candidate.value)


# -- the archive index ---------------------------------------------------------------

# Header values larger than this stay on disk until read (scan memory stays small).
_HEADER_DEFER_SIZE = 4096

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


class QueryIndex(Protocol):
    """What qrscp needs from an archive index."""

    def add(self, path: str | os.PathLike[str]) -> None:
        """Index (or re-index) the Part-10 file ``path``; raises when it cannot be read."""
        ...

    def find(self, level: str, identifier: Dataset) -> Iterator[Dataset]:
        """The C-FIND response identifiers of the records of ``level`` that match."""
        ...

    def files(self, level: str, identifier: Dataset) -> list[str]:
        """The Part-10 files of every instance under the matching records of ``level``."""
        ...


@dataclass(frozen=True)
class IndexedInstance:
    path: str
    header: Dataset


class MemoryIndex:
    """Instance headers in memory. A record of a level is the set of instances sharing
    that level's unique key; it matches when one of its instances (with the attributes
    computed over the record) matches every key. Safe to use from several threads."""

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
            if not path.is_file() or path.suffix == ".part":
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

    def find(self, level: str, identifier: Dataset) -> Iterator[Dataset]:
        keys = _matching_keys(identifier)
        for _, record in self._matching_records(level, keys):
            yield _response(level, keys, record)

    def files(self, level: str, identifier: Dataset) -> list[str]:
        keys = _matching_keys(identifier)
        return [
            instance.path
            for members, _ in self._matching_records(level, keys)
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
        self, level: str, keys: list[DataElement]
    ) -> Iterator[tuple[list[IndexedInstance], Lookup]]:
        wanted = {key.tag for key in keys}
        for members in self._records(level):
            computed = _computed(level, members, wanted)
            for instance in members:
                lookup = _overlay(computed, instance.header)
                if identifier_matches(lookup, keys):
                    yield members, lookup
                    break


def _matching_keys(identifier: Dataset) -> list[DataElement]:
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


def _overlay(*datasets: Dataset) -> Lookup:
    def lookup(tag: BaseTag) -> DataElement | None:
        for dataset in datasets:
            if tag in dataset:
                return dataset[tag]
        return None

    return lookup


def _response(level: str, keys: list[DataElement], lookup: Lookup) -> Dataset:
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


# -- associations --------------------------------------------------------------------

ContextSpec = tuple[str, Sequence[str]]  # abstract syntax, transfer syntaxes


def build_request(
    calling: str,
    called: str,
    max_pdu: int,
    contexts: Sequence[ContextSpec],
    scp_role_for: Collection[str] = (),
) -> DicomAssociate:
    """An A-ASSOCIATE-RQ with one context per spec (IDs 1, 3, 5...); for the abstract
    syntaxes in ``scp_role_for`` the requestor proposes to be SCP only (C-GET storage)."""
    request = DicomAssociate(True)
    request.Calling, request.Called, request.MaxLength = calling, called, max_pdu
    for number, (abstract_syntax, transfer_syntaxes) in enumerate(contexts):
        context_id = 2 * number + 1
        request.AddPresentationContext(
            context_id, DicomAssociateAcceptResultType.Success, abstract_syntax
        )
        for transfer_syntax in transfer_syntaxes:
            request.AddTransfer(context_id, transfer_syntax)
        if abstract_syntax in scp_role_for:
            request.SetRoleSelect(
                context_id, True, DicomRoleSupport.Unsupported, DicomRoleSupport.Supported
            )
    return request


def open_association(
    net: DicomNet, peer: str, port: int, request: DicomAssociate
) -> DicomAssociate:
    """Connect and associate; raises DicomException on refusal, reject or abort."""
    net.Connect(None, 0, peer, port)
    net.wait_connected()
    net.SendAssociateRequest(request)
    return net.wait_associated()


def release(net: DicomNet) -> None:
    net.SendReleaseRequest()
    net.wait_released()


def accepted_context_id(accepted: DicomAssociate, abstract_syntax: str) -> int | None:
    presentation_id = accepted.FindAbstract(abstract_syntax)
    if not presentation_id or accepted.GetResult(presentation_id) != 0:
        return None
    return presentation_id


def wait_final_response(
    net: DicomNet, message_id: int, timeout: float | None, progress: Callable[[], int]
) -> Message:
    """The final response to ``message_id``. The timeout counts from the last progress
    (``progress()`` changes with every pending response or sub-operation), so a long
    retrieve that keeps moving is not cut off."""
    while True:
        seen = progress()
        try:
            return net.wait_response(message_id, timeout)
        except DicomException as exc:
            if exc.Code != DicomExceptionCode.NetTimeout or progress() == seen:
                raise


def counts_of(response: Message) -> tuple[int, int, int, int]:
    """(remaining, completed, failed, warning) of a C-GET/C-MOVE response (-1 if absent)."""
    command = response.command

    def number(keyword: str) -> int:
        value = command.get(keyword)
        return value if isinstance(value, int) else -1

    return (
        number("NumberOfRemainingSuboperations"),
        number("NumberOfCompletedSuboperations"),
        number("NumberOfFailedSuboperations"),
        number("NumberOfWarningSuboperations"),
    )


def failed_instances(data_set: Dataset | None) -> list[str]:
    """The Failed SOP Instance UID List (0008,0058) of a final C-GET/C-MOVE response."""
    if data_set is None or "FailedSOPInstanceUIDList" not in data_set:
        return []
    value = data_set.FailedSOPInstanceUIDList
    return [value] if isinstance(value, str) else list(value)


def pick_context(
    contexts: Iterable[NegotiatedContext], sop_class: str, transfer_syntax: str
) -> NegotiatedContext | None:
    """The context to send a file of ``sop_class`` in ``transfer_syntax`` on: one with the
    file's own transfer syntax (sent as it is), else, for uncompressed files, one with
    another uncompressed transfer syntax (re-encoded); None when there is neither."""
    candidates = [c for c in contexts if c.abstract_syntax == sop_class]
    for context in candidates:
        if context.transfer_syntax == transfer_syntax:
            return context
    if transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
        for context in candidates:
            if context.transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
                return context
    return None


def storage_contexts_for(files: Iterable[Part10File], limit: int = 128) -> list[ContextSpec]:
    """One context per (SOP class, transfer syntax) of ``files``: the file's own transfer
    syntax first, plus the uncompressed ones an uncompressed file converts to."""
    pairs = dict.fromkeys((f.sop_class_uid, f.transfer_syntax) for f in files)
    contexts: list[ContextSpec] = []
    for sop_class, transfer_syntax in list(pairs)[:limit]:
        syntaxes = [transfer_syntax]
        if transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
            syntaxes += [s for s in QUERY_TRANSFER_SYNTAXES if s != transfer_syntax]
        contexts.append((sop_class, syntaxes))
    return contexts
