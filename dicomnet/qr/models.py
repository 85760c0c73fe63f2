"""The Patient Root and Study Root Query/Retrieve information models (PS3.4 C.6.1, C.6.2):
their levels, the unique key of each level, and the level an identifier asks for."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.tag import Tag

from ..sopclasses import (
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)
from ..uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE
from .matching import InvalidQuery

PATIENT_ROOT_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
STUDY_ROOT_LEVELS = ("STUDY", "SERIES", "IMAGE")
LEVELS_OF_MODEL: dict[str, tuple[str, ...]] = {
    **dict.fromkeys((PATIENT_ROOT_FIND, PATIENT_ROOT_GET, PATIENT_ROOT_MOVE), PATIENT_ROOT_LEVELS),
    **dict.fromkeys((STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE), STUDY_ROOT_LEVELS),
}
"""The levels of each C-FIND/C-GET/C-MOVE SOP class of the two models, top down."""

UNIQUE_KEY_OF_LEVEL = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
"""The unique key of each level: the records of a level are the distinct values of it."""

QUERY_TRANSFER_SYNTAXES = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)
"""What to propose for a query/retrieve context (identifiers are small)."""


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


def levels_above(model: str, level: str) -> tuple[str, ...]:
    """The levels of ``model`` above ``level``; raises ``InvalidQuery`` (A900) when the
    model is not a query/retrieve model or does not have the level."""
    levels = LEVELS_OF_MODEL.get(model)
    if levels is None:
        raise InvalidQuery(f"{model} is not a Patient or Study Root query/retrieve model")
    if level not in levels:
        raise InvalidQuery(f"Query/Retrieve Level {level!r} is not one of {'/'.join(levels)}")
    return levels[: levels.index(level)]


def check_hierarchical(model: str, level: str, identifier: Dataset) -> None:
    """A hierarchical query's rule (PS3.4 C.4.1.2.1, C.4.2.2.1): the identifier holds one
    value (no wildcard, no list) for the unique key of each level of ``model`` above
    ``level``. Raises ``InvalidQuery`` (A900) saying which key is missing."""
    for above in levels_above(model, level):
        keyword = UNIQUE_KEY_OF_LEVEL[above]
        element = identifier.get(Tag(keyword))  # .get(keyword) would give the value
        value = "" if element is None or element.is_empty else element.value
        if not isinstance(value, str) or not value.strip() or "*" in value or "?" in value:
            raise InvalidQuery(
                f"a hierarchical {level} query needs one {keyword} value (the unique key "
                f"of the {above} level), got {value!r}"
            )
