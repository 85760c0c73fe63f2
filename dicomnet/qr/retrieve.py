"""The SCU side of C-GET and C-MOVE (PS3.4 C.4.2, C.4.3): the association to propose,
and what a final response says about the sub-operations.

A C-GET's sub-operations come back on the same association, so each storage SOP class to
receive is proposed with SCP/SCU role selection, the requestor taking the SCP role
(PS3.7 D.3.3.4); a C-MOVE needs only its own context. Wait for the final response with
``dicomnet.scu.wait_final_response``; ``Response.suboperations`` gives the counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom import Dataset

from ..associate import MAX_PRESENTATION_CONTEXTS, DicomAssociate
from ..scu import ContextSpec, build_request
from .models import QUERY_TRANSFER_SYNTAXES


def retrieve_request(
    calling: str,
    called: str,
    max_pdu: int,
    sop_class: str,
    storage_classes: Sequence[str] = (),
    transfer_syntaxes: Sequence[str] = QUERY_TRANSFER_SYNTAXES,
) -> DicomAssociate:
    """The A-ASSOCIATE-RQ of a retrieve with ``sop_class`` (a C-GET or C-MOVE model) on
    context 1, then one context per storage class to receive, each proposing the SCP
    role only (give them for a C-GET, none for a C-MOVE). Raises ValueError when they
    do not fit in the 128 presentation contexts an association can have."""
    if len(storage_classes) + 1 > MAX_PRESENTATION_CONTEXTS:
        raise ValueError(
            f"{len(storage_classes)} storage SOP classes do not fit in "
            f"{MAX_PRESENTATION_CONTEXTS - 1} presentation contexts"
        )
    contexts: list[ContextSpec] = [
        (sop_class, transfer_syntaxes),
        *((storage_class, transfer_syntaxes) for storage_class in storage_classes),
    ]
    return build_request(calling, called, max_pdu, contexts, scp_role_for=storage_classes)


def failed_instances(data_set: Dataset | None) -> list[str]:
    """The Failed SOP Instance UID List (0008,0058) of a C-GET/C-MOVE response's
    identifier (``Response.dataset``); empty without one."""
    if data_set is None or "FailedSOPInstanceUIDList" not in data_set:
        return []
    value = data_set.FailedSOPInstanceUIDList
    return [value] if isinstance(value, str) else [str(uid) for uid in value]
