"""Identifiers from text keys, and identifiers as text (PS3.4 C.4.1.1.3, C.6).

A key names an attribute as DCMTK's ``-k`` option does: ``Keyword=value``,
``(gggg,eeee)=value`` or ``gggg,eeee=value``; without a value it is a return key (an
empty element, universal matching). Sequence items are reached with
``SequenceKeyword[0].Keyword=value``. Values take the attribute's VR from the DICOM
dictionary; several values are separated by a backslash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag

_TAG_TEXT = re.compile(r"\(?([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)?")
_PATH_COMPONENT = re.compile(r"(?P<name>[^\[\]]+?)(?:\[(?P<index>\d+)\])?")
_INTEGER_VRS = frozenset({"US", "UL", "SS", "SL", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_QUERY_RETRIEVE_LEVEL = Tag("QueryRetrieveLevel")


class InvalidKey(ValueError):
    """A key that names no attribute, or a value its VR cannot hold; says why."""


@dataclass(frozen=True)
class QueryKey:
    """One key: the sequence items on its way (tag, item index), then the element."""

    path: tuple[tuple[BaseTag, int], ...]
    element: DataElement


def parse_key(text: str) -> QueryKey:
    """Parse one key (see the module's description); raises ``InvalidKey``."""
    name, has_value, value = text.partition("=")
    components = name.strip().split(".")
    path: list[tuple[BaseTag, int]] = []
    for component in components[:-1]:
        tag, index = _path_component(component, text)
        if _vr_of(tag) != "SQ":
            raise InvalidKey(f"{text!r}: {component} is not a sequence")
        path.append((tag, index or 0))
    tag, index = _path_component(components[-1], text)
    if index is not None:
        raise InvalidKey(f"{text!r}: an item index needs a key after it")
    return QueryKey(tuple(path), _key_element(tag, value if has_value else "", text))


def _path_component(component: str, text: str) -> tuple[BaseTag, int | None]:
    match = _PATH_COMPONENT.fullmatch(component.strip())
    if match is None:
        raise InvalidKey(f"{text!r}: cannot read {component!r}")
    index = match["index"]
    return _tag_of(match["name"], text), None if index is None else int(index)


def _tag_of(name: str, text: str) -> BaseTag:
    numeric = _TAG_TEXT.fullmatch(name)
    if numeric is not None:
        tag = Tag(int(numeric[1], 16), int(numeric[2], 16))
        if not keyword_for_tag(tag):
            raise InvalidKey(f"{text!r}: {tag} is not in the DICOM dictionary")
        return tag
    number = tag_for_keyword(name)
    if number is None:
        raise InvalidKey(f"{text!r}: {name!r} is not a DICOM keyword")
    return Tag(number)


def _vr_of(tag: BaseTag) -> str:
    return dictionary_VR(tag).split(" or ")[0]  # "US or SS" -> "US"


def _key_element(tag: BaseTag, value: str, text: str) -> DataElement:
    vr = _vr_of(tag)
    if vr == "SQ":
        if value:
            raise InvalidKey(
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
        raise InvalidKey(f"{text!r}: {value!r} is not a {vr} value") from exc
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
