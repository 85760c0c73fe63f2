"""SOP class UIDs the networking layer negotiates by family (PS3.4, PS3.6 annex A).

The storage list comes from pydicom's UID dictionary (every non-retired Storage SOP
class), so it follows the standard as pydicom does.
"""

from __future__ import annotations

from pydicom._uid_dict import UID_dictionary

from .uids import VERIFICATION as VERIFICATION  # re-exported: one definition

STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_PUSH_INSTANCE = "1.2.840.10008.1.20.1.1"
MODALITY_PERFORMED_PROCEDURE_STEP = "1.2.840.10008.3.1.2.3.3"

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
PATIENT_STUDY_ONLY_FIND = "1.2.840.10008.5.1.4.1.2.3.1"
PATIENT_STUDY_ONLY_MOVE = "1.2.840.10008.5.1.4.1.2.3.2"
PATIENT_STUDY_ONLY_GET = "1.2.840.10008.5.1.4.1.2.3.3"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"

QUERY_RETRIEVE_FIND = (PATIENT_ROOT_FIND, STUDY_ROOT_FIND, PATIENT_STUDY_ONLY_FIND)
QUERY_RETRIEVE_MOVE = (PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE, PATIENT_STUDY_ONLY_MOVE)
QUERY_RETRIEVE_GET = (PATIENT_ROOT_GET, STUDY_ROOT_GET, PATIENT_STUDY_ONLY_GET)

_NOT_STORAGE = ("Commitment", "Media Storage Directory")


def _storage_sop_classes() -> tuple[str, ...]:
    return tuple(
        uid
        for uid, (name, kind, _, retired, _) in UID_dictionary.items()
        if kind == "SOP Class"
        and "Storage" in name
        and not retired
        and not any(word in name for word in _NOT_STORAGE)
    )


STORAGE_SOP_CLASSES: tuple[str, ...] = _storage_sop_classes()
