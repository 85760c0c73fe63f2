"""Query/Retrieve building blocks (PS3.4 annex C): identifiers from keys, PS3.4 C.2.2.2
matching, the archive index interface and an in-memory index, the SCU side of C-GET and
C-MOVE, and an SCP answering C-FIND, C-GET and C-MOVE with sub-operations and C-CANCEL.
"""

from __future__ import annotations

from .index import DEFAULT_OPTIONS, IndexedInstance, MemoryIndex, QueryIndex, QueryOptions
from .keys import InvalidKey, QueryKey, build_identifier, format_identifier, parse_key
from .matching import (
    RANGE_VRS,
    WILDCARD_VRS,
    InvalidQuery,
    Lookup,
    element_matches,
    identifier_matches,
    overlay,
)
from .models import (
    LEVELS_OF_MODEL,
    PATIENT_ROOT_LEVELS,
    QUERY_TRANSFER_SYNTAXES,
    STUDY_ROOT_LEVELS,
    UNIQUE_KEY_OF_LEVEL,
    query_level,
)
from .retrieve import failed_instances, retrieve_request
from .scp import (
    IDENTIFIER_DOES_NOT_MATCH,
    QUERY_RETRIEVE_SUPPORTED,
    BackgroundRequests,
    QueryRetrieveConnection,
    QueryRetrieveServer,
    RetrieveResponder,
    SubOperations,
    error_comment,
    failed_identifier,
    run_suboperations,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "IDENTIFIER_DOES_NOT_MATCH",
    "LEVELS_OF_MODEL",
    "PATIENT_ROOT_LEVELS",
    "QUERY_RETRIEVE_SUPPORTED",
    "QUERY_TRANSFER_SYNTAXES",
    "RANGE_VRS",
    "STUDY_ROOT_LEVELS",
    "UNIQUE_KEY_OF_LEVEL",
    "WILDCARD_VRS",
    "BackgroundRequests",
    "IndexedInstance",
    "InvalidKey",
    "InvalidQuery",
    "Lookup",
    "MemoryIndex",
    "QueryIndex",
    "QueryKey",
    "QueryOptions",
    "QueryRetrieveConnection",
    "QueryRetrieveServer",
    "RetrieveResponder",
    "SubOperations",
    "build_identifier",
    "element_matches",
    "error_comment",
    "failed_identifier",
    "failed_instances",
    "format_identifier",
    "identifier_matches",
    "overlay",
    "parse_key",
    "query_level",
    "retrieve_request",
    "run_suboperations",
]
