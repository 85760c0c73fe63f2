"""The archive: an index of stored instances in a SQL database, and the store that
writes instances and their index rows so that they become visible together.

Index (``open_index``)::

    index = open_index("sqlite:///archive/index.db")       # embedded, the default
    index = open_index("postgresql://archive@db:5432/pacs")  # shared by several SCPs

``ArchiveIndex`` is a ``dicomnet.qr.QueryIndex``: ``add(path)``, ``find(level,
identifier, options=QueryOptions(...))`` and ``files(level, identifier, options=...)``,
plus ``instance(sop_instance_uid)`` (the file of an instance, or None), ``count()`` /
``len()`` and ``close()``. Matching (PS3.4 C.2.2.2) is done by the database: single
value, universal, wildcard, list of UIDs, DA/TM/DT ranges (open ones too), combined
date-time ranges (``QueryOptions.combined_datetime``), relational queries
(``QueryOptions.relational``; otherwise hierarchical, checked against
``QueryOptions.model`` when given), the computed attributes of PS3.4 C.6.1.1
(NumberOfStudyRelatedInstances, ModalitiesInStudy...), person names case-insensitive
unless ``IndexConfig.pn_case_sensitive``. The keys held are those of ``schema.TABLES``
(the unique, required and common optional keys of PS3.4 C.6.1/C.6.2); any other key is
not matched and is returned empty, never an error. A bad identifier (a level the model
lacks, a missing unique key above the level, a malformed date range) raises
``dicomnet.qr.InvalidQuery``, whose ``status`` (A900) and message an SCP answers with.
Safe from several threads (one connection per thread; SQLite in WAL mode).

Store (``Archive``)::

    archive = Archive(Path("archive"), index, DuplicatePolicy.KEEP_FIRST)
    archive.reconcile()                          # once, at start-up
    outcome = archive.store(spooled_file, sop_class, sop_instance)   # a worker thread
    net.SendCStoreResponse(..., outcome.status, **outcome.response_fields())

or, from an SCP's callback, through a ``StoreQueue`` that stores on a thread of its own
what arrives meanwhile in one batch (``Archive.store_many``)::

    stores = StoreQueue(archive)
    stores.submit(Received(held_file, sop_class, sop_instance),
                  lambda outcome: net.SendCStoreResponse(..., outcome.status))

or, for a busy SCP, through a ``StoreProcess`` that stores in a process of its own (it
reconciles the archive at start) and answers on the loop thread, so that storing does
not hold the interpreter lock against the loop that receives (``DicomNet.Startup()``
first; samples/qrscp.py does this)::

    stores = StoreProcess(StoreSettings(root, "sqlite:///archive/index.db"))
    stores.submit(Received(held_file, sop_class, sop_instance), answer)
    ...
    stores.close()                               # stores and answers what it was given

Files are kept as ``<root>/<Study UID>/<Series UID>/<modality>.<SOP Instance UID>``,
written atomically; see ``store.py`` for the duplicate policies, the statuses and the
journal that makes a crash at any moment leave index and files in agreement.
"""

from __future__ import annotations

from ..qr.index import DEFAULT_OPTIONS, QueryOptions
from ..qr.matching import InvalidQuery
from .config import DEFAULT_CONFIG, IndexConfig
from .index import ArchiveIndex, SchemaMismatch
from .process import StoreProcess, StoreProcessFailed, StoreSettings
from .queue import StoreQueue
from .records import UnreadableInstance
from .store import Archive, DuplicatePolicy, Received, ReconcileReport, StoreOutcome
from .url import UnsupportedIndexURL, open_index

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_OPTIONS",
    "Archive",
    "ArchiveIndex",
    "DuplicatePolicy",
    "IndexConfig",
    "InvalidQuery",
    "QueryOptions",
    "Received",
    "ReconcileReport",
    "SchemaMismatch",
    "StoreOutcome",
    "StoreProcess",
    "StoreProcessFailed",
    "StoreQueue",
    "StoreSettings",
    "UnreadableInstance",
    "UnsupportedIndexURL",
    "open_index",
]
