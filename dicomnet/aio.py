"""The DIMSE session over asyncio: an association as coroutines, on the same core.

``AsyncAssociation`` drives a ``DimseSession`` (and so the very engine, state machine and
DIMSE rules ``DicomNet`` uses) from an ``asyncio.BufferedProtocol``: received bytes go
straight into the session's buffer, what the session queues is written to the transport
(pausing while the transport says its buffer is full), the session's timers become
``loop.call_at`` handles, and its events resolve futures. Nothing of the protocol is
implemented twice. It is the requestor side (an SCU); requests the peer sends on the
association are refused as unhandled, as ``DicomNet`` refuses requests nobody handles.

::

    association = await AsyncAssociation.connect("127.0.0.1", 11112, request)
    response = await association.echo()
    await association.release()
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from . import events as ev
from .associate import DicomAssociate
from .config import NetConfig
from .dimse.messages import MESSAGES
from .dimse.part10 import Part10File, read_part10_header
from .enums import (
    DicomAbortReasonType,
    DicomAbortSourceType,
    DicomCommandPriorityType,
    DicomCommandType,
    describe_reject,
)
from .errors import AssociationAborted, AssociationRejected, DicomException, DicomExceptionCode
from .response import Response
from .sendqueue import StreamError
from .session import (
    AssociationAccepted,
    DataSetArgument,
    DimseReceived,
    DimseSession,
    RequestFailed,
    ResponseTimedOut,
)
from .uids import VERIFICATION

_WRITE_CHUNK = 1 << 20  # bytes taken from the send queue per transport write


class _SessionProtocol(asyncio.BufferedProtocol):
    """Moves bytes and time between an asyncio transport and one session."""

    def __init__(self, session: DimseSession, owner: AsyncAssociation) -> None:
        self.session = session
        self.owner = owner
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio's side ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.session.connection_made(self.loop.time())
        self.settle()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.session.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.session.buffer_updated(nbytes, self.loop.time())
        self.settle()

    def eof_received(self) -> bool:
        self.session.connection_lost(self.loop.time(), "connection closed by peer")
        self.settle()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.session.is_closed:
            description = f"connection error: {exc}" if exc else "connection closed by peer"
            self.session.connection_lost(self.loop.time(), description)
        self.transport = None
        self.settle()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self.settle()

    # -- the session's side ------------------------------------------------------------

    def settle(self) -> None:
        """After anything happened: hand out events, write what they and the user
        queued (a failed stream makes more events), re-arm the timer, close."""
        while True:
            events = self.session.next_events(self.loop.time())
            self.owner._dispatch(events)
            self._write()
            if not events:
                break
        self._arm_timer()
        transport = self.transport
        if self.session.close_requested and transport is not None and not transport.is_closing():
            self._write()
            transport.close()

    def _write(self) -> None:
        queue = self.session.engine.send_queue
        transport = self.transport
        while transport is not None and not self._paused and queue:
            try:
                buffers = queue.peek(_WRITE_CHUNK)
            except StreamError as failure:
                self.session.stream_failed(failure, self.loop.time())
                continue
            written = sum(len(buffer) for buffer in buffers)
            transport.writelines(buffers)  # the transport copies or sends at once
            queue.consume(written)
            self.session.data_sent(self.loop.time())

    def _arm_timer(self) -> None:
        deadline = self.session.get_timer()
        if self._timer is not None:
            if deadline is not None and self._timer.when() <= deadline:
                return  # fires early, finds nothing due, and is armed again
            self._timer.cancel()
            self._timer = None
        if deadline is not None and not self.session.is_closed:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.handle_timer(self.loop.time())
        self.settle()


class AsyncAssociation:
    """One association as an SCU, over asyncio. Create it with ``connect``."""

    def __init__(self, session: DimseSession) -> None:
        self.session = session
        self._loop = asyncio.get_running_loop()
        self._protocol: _SessionProtocol | None = None
        self._accepted: asyncio.Future[DicomAssociate] = self._loop.create_future()
        self._released: asyncio.Future[None] = self._loop.create_future()
        self._responses: dict[int, asyncio.Future[Response]] = {}
        self._end: DicomException | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        request: DicomAssociate,
        *,
        config: NetConfig | None = None,
        temp_path: str | None = None,
    ) -> AsyncAssociation:
        """Connect, send ``request`` and wait for the accept; raises
        ``AssociationRejected``, ``AssociationAborted`` or ``DicomException``."""
        config = config or NetConfig()
        session = DimseSession(
            is_requestor=True, config=config, temp_path=temp_path, name=f"async {host}:{port}"
        )
        association = cls(session)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _SessionProtocol(session, association), host, port),
                config.timeouts.connect,
            )
        except (TimeoutError, OSError) as exc:
            raise DicomException(
                DicomExceptionCode.NetConnectionRefused, f"cannot connect to {host}:{port}: {exc}"
            ) from exc
        association._protocol = protocol
        association._act(lambda now: session.send_associate_rq(request, now))
        await association._accepted
        return association

    @property
    def accept(self) -> DicomAssociate | None:
        """The peer's A-ASSOCIATE-AC, once received."""
        return self._accepted.result() if self._accepted.done() else None

    # -- requests ----------------------------------------------------------------------

    async def request(
        self,
        command_field: DicomCommandType,
        presentation_id: int,
        data_set: DataSetArgument = None,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Response:
        """Send one request (its fields named as the ``Send*`` method's parameters) and
        return the final response; ``timeout`` counts silence, as ``wait_response``."""
        session = self.session
        message_id = session.next_message_id()
        arguments: dict[str, Any] = {"message_id": message_id, **fields}
        command = MESSAGES[command_field].encode(arguments, data_set is not None)
        data = session.prepare_data(presentation_id, command, data_set)
        future: asyncio.Future[Response] = self._loop.create_future()
        self._responses[message_id] = future
        try:
            self._act(lambda now: session.send(presentation_id, command, data, now))
            limit = session.config.timeouts.dimse if timeout is None else timeout
            if limit is not None:
                self._act(lambda now: session.expect_response(message_id, limit, now))
            return await future
        finally:
            self._responses.pop(message_id, None)

    async def echo(self, presentation_id: int | None = None) -> Response:
        """C-ECHO on the Verification context (or ``presentation_id``)."""
        context = presentation_id or self._context_for(VERIFICATION)
        return await self.request(DicomCommandType.CEcho, context, affected_class=VERIFICATION)

    async def store(
        self,
        data_set: DataSetArgument,
        presentation_id: int | None = None,
        priority: DicomCommandPriorityType = DicomCommandPriorityType.Medium,
    ) -> Response:
        """C-STORE a Dataset or a Part-10 file (sent as it is on disk where its transfer
        syntax was accepted), on the context of its SOP class unless one is given."""
        if isinstance(data_set, (str, os.PathLike)):
            data_set = read_part10_header(data_set)
        if isinstance(data_set, Part10File):
            sop_class, instance = data_set.sop_class_uid, data_set.sop_instance_uid
        else:
            assert data_set is not None, "store needs a data set"
            sop_class, instance = str(data_set.SOPClassUID), str(data_set.SOPInstanceUID)
        context = presentation_id or self._context_for(sop_class)
        return await self.request(
            DicomCommandType.CStore,
            context,
            data_set,
            affected_class=sop_class,
            instance=instance,
            priority=priority,
            move_ae="",
            move_message_id=0,
        )

    async def release(self) -> None:
        """A-RELEASE; returns once the peer confirmed and the connection closed."""
        self._act(lambda now: self.session.send_release_rq(now))
        await self._released

    def abort(self) -> None:
        """A-ABORT now and close (the A-ABORT is written first); pending requests fail
        with ``AssociationAborted``."""
        if not self.session.is_closed:
            source, reason = DicomAbortSourceType.User, DicomAbortReasonType.Unknown
            self._act(lambda now: self.session.send_abort(source, reason, now))
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    # -- internals ---------------------------------------------------------------------

    def _context_for(self, abstract_syntax: str) -> int:
        for context in self.session.engine.contexts.values():
            if context.abstract_syntax == abstract_syntax:
                return context.context_id
        raise DicomException(
            DicomExceptionCode.Parameter, f"no accepted presentation context for {abstract_syntax}"
        )

    def _act(self, action: Any) -> None:
        if self._end is not None:
            raise self._end
        protocol = self._protocol
        assert protocol is not None
        action(self._loop.time())
        protocol.settle()

    def _dispatch(self, events: list[Any]) -> None:
        for event in events:
            handler = self._HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)

    def _on_accepted(self, event: AssociationAccepted) -> None:
        if not self._accepted.done():
            self._accepted.set_result(event.accept)

    def _on_rejected(self, event: ev.AssociateRejectReceived) -> None:
        rj = event.pdu
        self._finish(
            AssociationRejected(
                rj.result, rj.source, rj.reason, describe_reject(rj.result, rj.source, rj.reason)
            )
        )

    def _on_dimse(self, event: DimseReceived) -> None:
        if event.expects_response:  # the peer asked for something this SCU does not do
            self.session.refuse_unhandled(event.message, self._loop.time())
        self.session.finished(event)
        if event.final:
            message, data_set = event.message, event.data_set
            future = self._responses.get(message.message_id_being_responded_to or 0)
            if future is not None and not future.done():
                future.set_result(
                    Response.of(message.context_id, message.command, lambda: data_set)
                )

    def _on_failure(self, event: ResponseTimedOut | RequestFailed) -> None:
        code = (
            DicomExceptionCode.NetTimeout
            if isinstance(event, ResponseTimedOut)
            else DicomExceptionCode.NetFailure
        )
        future = self._responses.get(event.message_id or 0)
        if future is not None and not future.done():
            future.set_exception(DicomException(code, event.description))

    def _on_release_confirmed(self, event: ev.ReleaseConfirmed) -> None:
        if not self._released.done():
            self._released.set_result(None)

    def _on_aborted(self, event: ev.AbortReceived | ev.ProviderAborted) -> None:
        if isinstance(event, ev.AbortReceived):
            error = AssociationAborted(
                "the peer aborted the association", event.source, event.reason
            )
        else:
            error = AssociationAborted(
                event.description, DicomAbortSourceType.Provider, event.reason
            )
        self._finish(error)

    def _on_closed(self, event: ev.TransportClosed) -> None:
        self._finish(AssociationAborted(f"the association ended: {event.description}"))

    def _finish(self, error: DicomException) -> None:
        """Fail everything still waiting (a release already confirmed stays a success)."""
        self._end = self._end or error
        waiting: list[asyncio.Future[Any]] = [self._accepted, self._released]
        waiting.extend(self._responses.values())
        for future in waiting:
            if not future.done():
                future.set_exception(self._end)
                future.exception()  # retrieved: a future nobody awaits must not warn

    _HANDLERS: Mapping[type, Any] = {
        AssociationAccepted: _on_accepted,
        ev.AssociateRejectReceived: _on_rejected,
        DimseReceived: _on_dimse,
        ResponseTimedOut: _on_failure,
        RequestFailed: _on_failure,
        ev.ReleaseConfirmed: _on_release_confirmed,
        ev.AbortReceived: _on_aborted,
        ev.ProviderAborted: _on_aborted,
        ev.TransportClosed: _on_closed,
    }
