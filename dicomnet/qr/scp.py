"""The SCP side of Query/Retrieve (PS3.4 C.4.1 C-FIND, C.4.2 C-MOVE, C.4.3 C-GET) over
a ``QueryIndex``, with C-CANCEL.

``QueryRetrieveServer`` listens; each association is a ``QueryRetrieveConnection``
that answers C-FIND with one pending response per match, and C-GET and C-MOVE by
C-STOREs of the matching instances: for C-GET on the same association, on the contexts
where the requestor took the SCP role; for C-MOVE on a sub-association to the move
destination, known by AE title. A pending response with the counts follows each
sub-operation; the final status is Success, Warning (B000) when some failed or warned,
or Cancel after C-CANCEL, the final identifier listing the failed instances (Failed SOP
Instance UID List). Callbacks must not block, so every request is worked on by one
of the server's request threads (``BackgroundRequests``), not the engine's shared pool,
so that stalled requestors hold up only themselves; C-CANCEL stops a request between
two responses. Identifiers the index cannot answer get
the status ``InvalidQuery`` names, with the reason as Error Comment; SOP class
extended negotiation (relational, combined date-time) reaches the index as
``QueryOptions``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from pydicom import Dataset

from ..associate import (
    MAX_PRESENTATION_CONTEXTS,
    NegotiatedContext,
    negotiated_contexts,
)
from ..dimse.part10 import Part10File
from ..dimse.status import CANNOT_UNDERSTAND, StatusCategory, status_category
from ..enums import DicomCommandPriorityType, DicomCommandStatusType
from ..errors import DicomException, DicomExceptionCode, DIMSEError
from ..net import DicomNet
from ..scu import build_request, open_association, release
from ..server import VERIFICATION_ONLY, AcceptedConnection, AcceptingServer
from ..sopclasses import QUERY_RETRIEVE_FIND, STORAGE_SOP_CLASSES
from ..storage import (
    SendBroken,
    pick_context,
    read_headers,
    send_instance,
    storage_contexts_for,
)
from ..uids import UNCOMPRESSED_TRANSFER_SYNTAXES
from .index import QueryIndex, QueryOptions
from .matching import IDENTIFIER_DOES_NOT_MATCH as IDENTIFIER_DOES_NOT_MATCH  # re-exported
from .matching import InvalidQuery
from .models import LEVELS_OF_MODEL, query_level

log = logging.getLogger("dicomnet.qr")


QUERY_RETRIEVE_SUPPORTED: Mapping[str, Sequence[str]] = {
    **VERIFICATION_ONLY,
    **dict.fromkeys(LEVELS_OF_MODEL, UNCOMPRESSED_TRANSFER_SYNTAXES),
}
"""``supported`` for a Q/R SCP: the Patient and Study Root models, plus Verification."""


# SOP class extended negotiation, byte by byte what this SCP offers: for C-FIND
# (PS3.4 C.5.1.1) relational queries and combined date-time matching, not fuzzy semantic
# matching of person names, timezone adjustment or multi-frame conversion; for C-MOVE and
# C-GET (C.5.2.1, C.5.3.1) relational retrieval, not multi-frame conversion.
_FIND_OFFER = (1, 1)
_RETRIEVE_OFFER = (1,)


def answer_extended_negotiation(sop_class: str, proposed: bytes) -> bytes | None:
    """The reply to a Q/R SCU's SOP class extended negotiation: each proposed byte, 1
    where the SCU asked (1) and this SCP offers it, else 0; None (no reply) for other
    SOP classes."""
    if sop_class not in LEVELS_OF_MODEL:
        return None
    offer = _FIND_OFFER if sop_class in QUERY_RETRIEVE_FIND else _RETRIEVE_OFFER
    return bytes(
        int(position < len(offer) and offer[position] == 1 and value == 1)
        for position, value in enumerate(proposed)
    )


def negotiated_options(model: str, reply: bytes | None) -> QueryOptions:
    """The ``QueryOptions`` of a request on ``model``'s context, from the extended
    negotiation reply the association was accepted with (None: none was sent): byte 1
    relational queries (or retrieval), byte 2 combined date-time matching (C-FIND)."""
    data = reply or b""
    return QueryOptions(
        model=model,
        relational=data[:1] == b"\x01",
        combined_datetime=model in QUERY_RETRIEVE_FIND and data[1:2] == b"\x01",
    )


class RetrieveResponder(Protocol):
    """``SendCGetResponse``/``SendCMoveResponse`` bound to one request."""

    def __call__(
        self,
        status: int,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None: ...


Store = Callable[[Part10File], int]
"""Sends one sub-operation's C-STORE; its response status (raises when it cannot)."""


def error_comment(error: Exception | str) -> dict[str, str]:
    """The ``ErrorComment`` keyword argument of a response (the encoder keeps it to the
    64 characters of its VR)."""
    return {"ErrorComment": str(error)}


def failed_identifier(instance_uids: Sequence[str]) -> Dataset | None:
    """A final C-GET/C-MOVE response's identifier: the Failed SOP Instance UID List
    (0008,0058); None when nothing failed."""
    if not instance_uids:
        return None
    identifier = Dataset()
    identifier.FailedSOPInstanceUIDList = list(instance_uids)
    return identifier


@dataclass
class SubOperations:
    """The counts a C-GET/C-MOVE reports (PS3.4 C.4.2.3.1, C.4.3.3.1)."""

    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    reason: str = ""  # why the first sub-operation that could not be sent was not

    def record(self, instance_uid: str, status: int | None, reason: str = "") -> None:
        """One sub-operation's C-STORE status (None: it could not be sent, ``reason``
        says why)."""
        self.remaining -= 1
        self.reason = self.reason or reason
        category = StatusCategory.FAILURE if status is None else status_category(status)
        if category is StatusCategory.SUCCESS:
            self.completed += 1
        elif category is StatusCategory.WARNING:
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(instance_uid)

    def final_extra(self) -> dict[str, Any]:
        """The final response's Error Comment: the first reason a sub-operation could
        not be sent, if any (the requestor sees why, not only how many)."""
        return error_comment(self.reason) if self.reason else {}

    def counts(self, with_remaining: bool) -> tuple[int, int, int, int]:
        """(remaining, completed, failed, warning); remaining -1 (left out) unless asked."""
        remaining = self.remaining if with_remaining else -1
        return remaining, self.completed, self.failed, self.warning

    @property
    def final_status(self) -> int:
        """Success, or Warning (B000) when some sub-operation failed or warned."""
        if self.failed or self.warning:
            return DicomCommandStatusType.Warning
        return DicomCommandStatusType.Success


def run_suboperations(
    files: Sequence[Part10File],
    store: Store,
    respond: RetrieveResponder,
    cancelled: Callable[[], bool],
    unreadable: int = 0,
) -> SubOperations:
    """C-STORE each file with ``store``, a pending response with the counts after each
    but the last, then the final response; when ``cancelled()`` turns true, stop before
    the next one with a final Cancel (FE00) response. ``unreadable`` files (matched but
    not readable) count as failed from the start. A sub-operation ``store`` cannot send
    (it raises ``DicomException``) fails, and the final response's Error Comment gives
    the first such reason. Returns the counts."""
    progress = SubOperations(remaining=len(files), failed=unreadable)
    for part10 in files:
        if cancelled():
            respond(
                DicomCommandStatusType.Cancel,
                *progress.counts(True),
                failed_identifier(progress.failed_uids),
                **progress.final_extra(),
            )
            return progress
        try:
            progress.record(part10.sop_instance_uid, store(part10))
        except DicomException as exc:
            log.warning("sub-operation for %s failed: %s", part10.path, exc)
            progress.record(part10.sop_instance_uid, None, _reason_for_peer(exc))
        if progress.remaining:
            respond(DicomCommandStatusType.Pending, *progress.counts(True), None)
    respond(
        progress.final_status,
        *progress.counts(False),
        failed_identifier(progress.failed_uids),
        **progress.final_extra(),
    )
    return progress


def _reason_for_peer(error: DicomException) -> str:
    """What a requestor may read about a failed sub-operation: never a local path."""
    if isinstance(error, SendBroken | DIMSEError):
        return "an archived file could not be read whole"
    return error.message


def answer_find(
    respond: Callable[..., None], matches: Iterable[Dataset], cancel: threading.Event
) -> int:
    """Send a pending C-FIND response per match, then Success, or Cancel once ``cancel``
    is set (checked between two matches); the number of matches sent."""
    sent = 0
    for match in matches:
        if cancel.is_set():
            break
        respond(DicomCommandStatusType.Pending, match)
        sent += 1
    final = DicomCommandStatusType.Cancel if cancel.is_set() else DicomCommandStatusType.Success
    respond(final, None)
    return sent


Submit = Callable[[Callable[[], None]], "Future[None]"]
"""Runs a request's work off the loop thread (an executor's ``submit``)."""

REQUEST_THREADS = 32
"""Q/R requests a server works on at once (more wait for a thread): each may wait on
its requestor for up to the DIMSE timeout."""


class BackgroundRequests:
    """The requests of one association being worked on off the loop thread, each
    stoppable by the C-CANCEL of its message ID; ``submit`` runs them (by default
    ``DicomNet.run_in_background``)."""

    def __init__(self, submit: Submit = DicomNet.run_in_background) -> None:
        self._submit = submit
        self._lock = threading.Lock()
        self._cancel: dict[int, threading.Event] = {}

    def start(
        self,
        message_id: int,
        work: Callable[[threading.Event], None],
        respond_failure: Callable[[Exception], None],
    ) -> Future[None]:
        """Run ``work(cancel)`` with ``submit``; a C-CANCEL of ``message_id`` sets
        ``cancel``. When the work raises, ``respond_failure(error)`` sends the final
        response, so the requestor is not left waiting."""
        cancel = threading.Event()
        with self._lock:
            self._cancel[message_id] = cancel

        def run() -> None:
            try:
                work(cancel)
            except Exception as exc:  # whatever broke, the request needs its final response
                log.warning("message %d failed: %s", message_id, exc)
                try:
                    respond_failure(exc)
                except DicomException as lost:  # the association is gone
                    log.info("message %d: final response not sent: %s", message_id, lost)
            finally:
                with self._lock:
                    self._cancel.pop(message_id, None)

        return self._submit(run)

    def cancel(self, message_id: int) -> bool:
        """Ask the request ``message_id`` to stop; False when it is not running."""
        with self._lock:
            cancel = self._cancel.get(message_id)
        if cancel is None:
            return False
        cancel.set()
        return True


class QueryRetrieveConnection(AcceptedConnection):
    """One association with a Q/R SCU: C-FIND, C-GET and C-MOVE on the server's index,
    plus C-ECHO. Subclasses may add services (C-STORE into the archive...)."""

    listener: QueryRetrieveServer

    def __init__(self, listener: QueryRetrieveServer) -> None:
        super().__init__(listener)
        self.requests = BackgroundRequests(listener.request_workers.submit)

    # -- callbacks (loop thread): hand each request to a worker -------------------------

    def OnReceiveCFindRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        respond = partial(self.SendCFindResponse, presentation_id, message_id, affected_class)
        options = self.query_options(presentation_id, affected_class)
        self.requests.start(
            message_id,
            partial(self.find, respond, message_id, options, data_set or Dataset()),
            lambda exc: respond(CANNOT_UNDERSTAND, None, **error_comment(exc)),
        )

    def OnReceiveCGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        data_set: Dataset | None,
    ) -> None:
        respond = partial(self.SendCGetResponse, presentation_id, message_id, affected_class)
        options = self.query_options(presentation_id, affected_class)
        self.requests.start(
            message_id,
            partial(self.get, respond, options, data_set or Dataset()),
            partial(_respond_unable, respond),
        )

    def OnReceiveCMoveRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        data_set: Dataset | None,
    ) -> None:
        respond = partial(self.SendCMoveResponse, presentation_id, message_id, affected_class)
        options = self.query_options(presentation_id, affected_class)
        self.requests.start(
            message_id,
            partial(
                self.move,
                respond,
                message_id,
                options,
                move_ae.strip(),
                data_set or Dataset(),
            ),
            partial(_respond_unable, respond),
        )

    def OnReceiveCCancelRequest(self, presentation_id: int, message_id: int) -> None:
        if self.requests.cancel(message_id):
            log.info("C-CANCEL for message %d", message_id)

    # -- the work (worker threads) -------------------------------------------------------

    def find(
        self,
        respond: Callable[..., None],
        message_id: int,
        options: QueryOptions,
        identifier: Dataset,
        cancel: threading.Event,
    ) -> None:
        """Answer a C-FIND: a pending response per match, then Success or Cancel; an
        identifier the index cannot answer gets the failure ``InvalidQuery`` names."""
        try:
            level = _query_level(options.model, identifier)
            matches = self.listener.index.find(level, identifier, options=options)
            sent = answer_find(respond, self._with_retrieve_ae(matches), cancel)
        except InvalidQuery as exc:
            log.info("C-FIND %d refused: %s", message_id, exc)
            respond(exc.status, None, **error_comment(exc))
            return
        cancelled = ", cancelled" if cancel.is_set() else ""
        log.info("C-FIND %d: %d match(es)%s", message_id, sent, cancelled)

    def _with_retrieve_ae(self, matches: Iterable[Dataset]) -> Iterator[Dataset]:
        for match in matches:
            match.RetrieveAETitle = self.listener.ae_title
            yield match

    def get(
        self,
        respond: RetrieveResponder,
        options: QueryOptions,
        identifier: Dataset,
        cancel: threading.Event,
    ) -> None:
        """Answer a C-GET: C-STOREs on this association, where the requestor is SCP."""
        headers, unreadable = self._retrieve_headers(options, identifier, respond)
        if headers is None:
            return
        contexts = [context for context in self._negotiated() if context.requestor_is_scp]
        store = partial(_get_store_status, self, contexts)
        run_suboperations(headers, store, respond, cancel.is_set, unreadable)

    def move(
        self,
        respond: RetrieveResponder,
        message_id: int,
        options: QueryOptions,
        destination: str,
        identifier: Dataset,
        cancel: threading.Event,
    ) -> None:
        """Answer a C-MOVE: C-STOREs on a sub-association to ``destination``."""
        address = self.listener.destinations.get(destination)
        if address is None:
            respond(
                DicomCommandStatusType.RefusedMoveDestinationUnknown,
                -1,
                0,
                0,
                0,
                None,
                **error_comment(f"unknown move destination {destination}"),
            )
            return
        headers, unreadable = self._retrieve_headers(options, identifier, respond)
        if headers is None:
            return
        if not headers:  # nothing to send, so no sub-association: the final response only
            nothing = SubOperations(remaining=0, failed=unreadable)
            respond(nothing.final_status, *nothing.counts(False), None)
            return
        request = self.association_request
        sub = SubAssociation(
            self.listener,
            destination,
            address,
            headers,
            originator=request.Calling.strip() if request is not None else "",
            message_id=message_id,
        )
        try:
            sub.open()
        except DicomException as exc:
            log.warning("C-MOVE %d: cannot associate with %s: %s", message_id, destination, exc)
            respond(
                DicomCommandStatusType.RefusedUnableToPerformSuboperations,
                -1,
                0,
                len(headers) + unreadable,
                0,
                failed_identifier([h.sop_instance_uid for h in headers]),
                **error_comment(exc),
            )
            return
        try:
            run_suboperations(headers, sub.store, respond, cancel.is_set, unreadable)
        finally:
            sub.close()

    def query_options(self, presentation_id: int, model: str) -> QueryOptions:
        """How the index answers a request on ``model`` on this context: what extended
        negotiation agreed on (hierarchical, separate dates and times, by default)."""
        accept = self.Association
        reply = accept.GetExtendedData(presentation_id) if accept is not None else None
        return negotiated_options(model, reply)

    def _negotiated(self) -> list[NegotiatedContext]:
        request, accept = self.association_request, self.Association
        if request is None or accept is None:
            return []
        return list(negotiated_contexts(request, accept).values())

    def _retrieve_headers(
        self, options: QueryOptions, identifier: Dataset, respond: RetrieveResponder
    ) -> tuple[list[Part10File] | None, int]:
        """(headers of the files to retrieve, how many matched files cannot be read);
        (None, 0) after answering an identifier the index cannot answer."""
        try:
            level = _query_level(options.model, identifier)
            files = self.listener.index.files(level, identifier, options=options)
        except InvalidQuery as exc:
            log.info("retrieve refused: %s", exc)
            respond(exc.status, -1, 0, 0, 0, None, **error_comment(exc))
            return None, 0
        headers = read_headers(
            files, lambda path, exc: log.warning("cannot send %s: %s", path, exc)
        )
        return headers, len(files) - len(headers)


class SubAssociation:
    """The C-MOVE sub-association to one destination. ``store`` opens it when there is
    none: a file that breaks while being sent (``SendBroken``) aborts it, and the
    sub-operations after it go on a new one. When opening fails again, the remaining
    sub-operations fail at once with that reason instead of each trying anew."""

    def __init__(
        self,
        listener: QueryRetrieveServer,
        destination: str,
        address: tuple[str, int],
        headers: Sequence[Part10File],
        *,
        originator: str,
        message_id: int,
    ) -> None:
        self._request_contexts = storage_contexts_for(headers)[:MAX_PRESENTATION_CONTEXTS]
        self._listener = listener
        self._destination = destination
        self._address = address
        self._originator = originator
        self._message_id = message_id
        self._net: DicomNet | None = None
        self._contexts: list[NegotiatedContext] = []
        self._unreachable: DicomException | None = None

    def open(self) -> None:
        """Associate with the destination; raises ``DicomException`` when it cannot."""
        listener = self._listener
        request = build_request(
            listener.ae_title,
            self._destination,
            listener.policy.max_length,
            self._request_contexts,
        )
        net = DicomNet(None, timeouts=listener.timeouts)
        try:
            accepted = open_association(net, self._address[0], self._address[1], request)
        except DicomException:
            net.Close()
            raise
        self._net = net
        self._contexts = [
            c for c in negotiated_contexts(request, accepted).values() if c.requestor_is_scu
        ]

    def store(self, part10: Part10File) -> int:
        """One sub-operation's C-STORE on the sub-association; its response status."""
        if self._unreachable is not None:
            raise self._unreachable
        if self._net is None:
            try:
                self.open()
            except DicomException as exc:
                self._unreachable = exc
                raise
        assert self._net is not None
        try:
            return send_instance(
                self._net,
                self._contexts,
                part10,
                move_originator=self._originator,
                move_message_id=self._message_id,
            ).status
        except SendBroken:
            log.warning("%s broke while being sent; going on on a new association", part10.path)
            self._net.Close()
            self._net = None
            raise

    def close(self) -> None:
        """Release the sub-association (if one is open) and close it."""
        net, self._net = self._net, None
        if net is None:
            return
        try:
            if net.IsAssociated():
                release(net)
        except DicomException as exc:
            log.warning("releasing the C-MOVE sub-association: %s", exc)
        finally:
            net.Close()


def _get_store_status(
    net: DicomNet, contexts: Sequence[NegotiatedContext], part10: Part10File
) -> int:
    """A C-GET sub-operation on the requestor's own association."""
    if pick_context(contexts, part10.sop_class_uid, part10.transfer_syntax) is None:
        raise DicomException(
            DicomExceptionCode.Parameter,
            f"no SCP role context for {part10.sop_class_uid}",
        )
    return send_instance(net, contexts, part10).status


def _query_level(model: str, identifier: Dataset) -> str:
    """``query_level``, a level the model does not have raising ``InvalidQuery`` (A900)."""
    try:
        return query_level(model, identifier)
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from exc


def _respond_unable(respond: RetrieveResponder, error: Exception) -> None:
    respond(CANNOT_UNDERSTAND, -1, 0, 0, 0, None, **error_comment(error))


class QueryRetrieveServer(AcceptingServer):
    """The listener of a Q/R SCP: the index, and the C-MOVE destinations by AE title.

    Requestors may take the SCP role of every storage class (C-GET). ``supported``
    defaults to ``QUERY_RETRIEVE_SUPPORTED``; add the storage classes to take C-STOREs
    too (then override ``OnReceiveCStoreRequest`` in ``connection_type``). The other
    keyword ``options`` (``max_pdu``, ``timeouts``, ``temp_path``...) are
    ``AcceptingServer``'s.

    Requests are worked on by ``request_threads`` threads of the server's own, not the
    engine's shared pool (``DicomNet.run_in_background``): a request may wait on its
    requestor (a C-GET for each C-STORE response, any request while the requestor does
    not read) for up to the DIMSE timeout, and a few stalled requestors holding every
    thread of the shared pool would stall every other client and the archive's stores.
    A bounded pool also bounds the index's connections (one per thread).
    """

    connection_type: type[AcceptedConnection] = QueryRetrieveConnection

    def __init__(
        self,
        ae_title: str,
        index: QueryIndex,
        *,
        destinations: Mapping[str, tuple[str, int]] | None = None,
        supported: Mapping[str, Sequence[str]] = QUERY_RETRIEVE_SUPPORTED,
        request_threads: int = REQUEST_THREADS,
        **options: Any,
    ) -> None:
        super().__init__(ae_title, supported, requestor_scp_role=STORAGE_SOP_CLASSES, **options)
        self.request_workers = ThreadPoolExecutor(request_threads, "dicomnet-qr")
        self.index = index
        self.destinations = dict(destinations or {})
        self.policy.extended_negotiation = answer_extended_negotiation

    def Close(self) -> None:
        """Stop listening; requests not started yet are dropped."""
        super().Close()
        self.request_workers.shutdown(wait=False, cancel_futures=True)
