"""Attribute matching as PS3.4 C.2.2.2 defines it, for C-FIND, C-GET and C-MOVE SCPs.

Single value matching, universal matching (an empty key, or a lone "*"), wildcard
matching ("*" and "?", for the VRs C.2.2.2.4 allows), list of UID matching (several key
values are alternatives), range matching of dates and times (C.2.2.2.5) and sequence
matching (C.2.2.2.6). A record is seen through a ``Lookup`` (tag -> its element or
None), so an index can match whatever it stores: pydicom data sets, rows of a table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

Lookup = Callable[[BaseTag], DataElement | None]
"""A record's attribute by tag; None when the record lacks it."""

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
    return any(identifier_matches(overlay(item), query_item) for item in candidate.value)


def overlay(*datasets: Dataset) -> Lookup:
    """A lookup into ``datasets``, the first that holds a tag giving its element."""

    def lookup(tag: BaseTag) -> DataElement | None:
        for dataset in datasets:
            if tag in dataset:
                return dataset[tag]
        return None

    return lookup
