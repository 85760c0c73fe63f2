"""Attribute matching as PS3.4 C.2.2.2 defines it, for C-FIND, C-GET and C-MOVE SCPs.

Single value matching, universal matching (an empty key, or a lone "*"), wildcard
matching ("*" and "?", for the VRs C.2.2.2.4 allows), list of UID matching (several key
values are alternatives), range matching of dates and times (C.2.2.2.5) and sequence
matching (C.2.2.2.6), and combined date-time matching of a date and a time attribute
as one range (C.2.2.2.5, when negotiated). A record is seen through a ``Lookup`` (tag ->
its element or None), so an index can match whatever it stores: pydicom data sets, rows
of a table. ``range_bounds`` and ``comparable`` are the one description of date and time
ranges: a database index stores ``comparable`` values and compares them with the bounds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

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
# What a range bound may be (PS3.5 6.2: DA, TM, DT; ACR-NEMA colons in TM tolerated).
_BOUND = {
    "DA": re.compile(r"\d{8}"),
    "TM": re.compile(r"\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d{1,6})?)?)?"),
    "DT": re.compile(
        r"\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})?"
    ),
}
IDENTIFIER_DOES_NOT_MATCH = 0xA900
"""PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4: "Identifier does not match SOP Class"."""


class InvalidQuery(ValueError):
    """An identifier that cannot be answered: a level the model does not have, a missing
    unique key of a higher level, a malformed date or time range. ``status`` is the
    failure an SCP answers with (A900), ``str(error)`` the reason for its Error Comment."""

    def __init__(self, reason: str, status: int = IDENTIFIER_DOES_NOT_MATCH) -> None:
        super().__init__(reason)
        self.status = status


def identifier_matches(lookup: Lookup, keys: Iterable[DataElement]) -> bool:
    """True when the record behind ``lookup`` matches every key."""
    return all(element_matches(lookup(key.tag), key) for key in keys)


def element_matches(candidate: DataElement | None, key: DataElement) -> bool:
    """One key against one attribute of a record (None: the record lacks it)."""
    if key.is_empty:
        return True  # universal matching (C.2.2.2.3)
    if key.VR == "SQ":
        return _sequence_matches(candidate, key)
    wanted = key_values(key)
    if key.VR in WILDCARD_VRS and wanted == ["*"]:
        return True  # a lone "*" is universal matching, even for an absent value
    if candidate is None or candidate.is_empty:
        return False
    have = key_values(candidate)
    return any(_value_matches(value, pattern, key.VR) for value in have for pattern in wanted)


def key_values(element: DataElement) -> list[str]:
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
    low, high = comparable_range(pattern, vr)
    normalized = comparable(value, vr, "0")
    return (low is None or normalized >= low) and (high is None or normalized <= high)


def range_bounds(pattern: str, vr: str) -> tuple[str, str]:
    """The (low, high) bounds of a DA, TM or DT key value ("" for an open end); a single
    value is a range from itself to itself. Raises ``InvalidQuery`` for a malformed one."""
    pattern = pattern.strip()
    if vr == "DT":
        match = _DT_RANGE.fullmatch(pattern)
        low, high = (match["low"] or "", match["high"] or "") if match else (pattern, pattern)
    else:
        low, dash, high = pattern.partition("-")
        low, high = (low, high) if dash else (pattern, pattern)
    if not low and not high:
        raise InvalidQuery(f"{vr} range {pattern!r} has no bound")
    for bound in (low, high):
        if bound and _BOUND[vr].fullmatch(bound) is None:
            raise InvalidQuery(f"{pattern!r} is not a {vr} value or range")
    return low, high


def comparable_range(pattern: str, vr: str) -> tuple[str | None, str | None]:
    """The bounds of ``pattern`` as ``comparable`` text (None for an open end), the low
    one at the start of its period and the high one at its end."""
    low, high = range_bounds(pattern, vr)
    return (
        comparable(low, vr, "0") if low else None,
        comparable(high, vr, "9") if high else None,
    )


def combined_range(date_pattern: str, time_pattern: str) -> tuple[str | None, str | None]:
    """Combined date-time matching (PS3.4 C.2.2.2.5.1): a date key and a time key as one
    DT range, e.g. 20240105-20240107 and 1000-1800 from 5 January 10:00 to 7 January
    18:00; the bounds as ``comparable`` DT text (None for an open end)."""
    date_low, date_high = range_bounds(date_pattern, "DA")
    time_low, time_high = range_bounds(time_pattern, "TM") if time_pattern else ("", "")
    time_low, time_high = time_low.replace(":", ""), time_high.replace(":", "")
    return (
        comparable(date_low + time_low, "DT", "0") if date_low else None,
        comparable(date_high + time_high, "DT", "9") if date_high else None,
    )


DATE_TIME_PAIRS = (
    ("StudyDate", "StudyTime"),
    ("SeriesDate", "SeriesTime"),
    ("AcquisitionDate", "AcquisitionTime"),
    ("ContentDate", "ContentTime"),
    ("PatientBirthDate", "PatientBirthTime"),
    ("PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime"),
    ("ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime"),
)
"""The date and time attributes combined date-time matching reads as one value."""


@dataclass(frozen=True)
class CombinedRange:
    """A date key and a time key matched as one range (bounds as ``comparable`` DT)."""

    date: str
    time: str
    low: str | None
    high: str | None

    def matches(self, lookup: Lookup) -> bool:
        """True when the record's date and time fall in the range."""
        date, time = lookup(Tag(self.date)), lookup(Tag(self.time))
        if date is None or date.is_empty:
            return False
        value = combined_value(str(date.value), "" if time is None else str(time.value or ""))
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def split_combined(
    keys: Sequence[DataElement],
) -> tuple[list[DataElement], list[CombinedRange]]:
    """Combined date-time matching: each pair of ``DATE_TIME_PAIRS`` whose date and time
    keys both have values becomes one range; the other keys are left as they are."""
    by_keyword = {key.keyword: key for key in keys}
    ranges: list[CombinedRange] = []
    paired: set[str] = set()
    for date, time in DATE_TIME_PAIRS:
        date_key, time_key = by_keyword.get(date), by_keyword.get(time)
        if date_key is None or time_key is None or date_key.is_empty or time_key.is_empty:
            continue
        ranges.append(
            CombinedRange(date, time, *combined_range(str(date_key.value), str(time_key.value)))
        )
        paired.update((date, time))
    return [key for key in keys if key.keyword not in paired], ranges


def combined_value(date: str, time: str) -> str:
    """A record's date and time as one ``comparable`` DT value (midnight without time)."""
    return comparable(date.strip() + time.strip().replace(":", ""), "DT", "0")


def comparable(value: str, vr: str, pad: str) -> str:
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
