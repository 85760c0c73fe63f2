"""Outgoing byte queue of one connection, PDU-aware and lazy.

Holds whole PDUs (lists of buffers for scatter-gather writes) and PDU streams (iterators
that produce PDUs on demand, so a multi-GB data set is read from disk only as fast as the
socket drains). It knows where each PDU ends, so the writer can report completed PDUs
(LEADTOOLS ``OnSend``) and an abort can cut in at a PDU boundary without leaving half a
message interleaved with anything else (PS3.8 annex E). No sockets here.

A stream whose producer fails (a file that became unreadable halfway) is dropped at once
and nothing queued after it is produced; the next ``peek`` raises ``StreamError`` naming
the stream by the label it was pushed with, so the writer can hand the failure to the
protocol engine, which decides how the connection ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

Buffer = bytes | bytearray | memoryview


@dataclass(slots=True)
class _PendingPDU:
    pdu_type: int
    buffers: list[memoryview]
    length: int  # total bytes of the PDU, header included
    remaining: int
    first: int = 0  # index of the first buffer not completely written


@dataclass
class _Stream:
    pdu_type: int
    pdus: Iterator[Sequence[Buffer]]
    label: object


class StreamError(Exception):
    """A queued PDU stream failed to produce its next PDU; ``cause`` says why.

    ``label`` is what the stream was pushed with. PDUs of the stream produced before the
    failure (one of them possibly partly written) are still queued.
    """

    def __init__(self, label: object, cause: Exception) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.label = label
        self.cause = cause
        self.__cause__ = cause


class SendQueue:
    """FIFO of PDUs; ``peek`` gives buffers to write, ``consume`` records what was written."""

    def __init__(self) -> None:
        self._items: deque[_PendingPDU | _Stream] = deque()
        self._ready: deque[_PendingPDU] = deque()  # PDUs materialised from the head
        self._queued_bytes = 0
        self._ready_remaining = 0  # bytes of ``_ready`` not yet written
        self._failure: StreamError | None = None  # raised by the next ``peek``

    def push(self, pdu_type: int, buffers: Sequence[Buffer]) -> None:
        """Queue one whole PDU made of ``buffers``."""
        self._items.append(_make_pdu(pdu_type, buffers))

    def push_stream(
        self, pdu_type: int, pdus: Iterator[Sequence[Buffer]], label: object = None
    ) -> None:
        """Queue PDUs that are produced only when the writer gets to them; ``label``
        names the stream in a ``StreamError``."""
        self._items.append(_Stream(pdu_type, pdus, label))

    def __bool__(self) -> bool:
        # a failure waiting to be reported counts: the writer must come and peek
        if self._ready or self._failure is not None:
            return True
        return bool(self._items) and self._fill(1) > 0 or self._failure is not None

    def peek(self, max_bytes: int) -> list[memoryview]:
        """Buffers at the head of the queue, up to about ``max_bytes`` in total.

        Raises ``StreamError`` (once) if a stream failed while being produced.
        """
        self._fill(max_bytes)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        out: list[memoryview] = []
        total = 0
        for pdu in self._ready:
            out.extend(pdu.buffers[pdu.first :])
            total += pdu.remaining
            if total >= max_bytes:
                break
        return out

    def consume(self, written: int) -> list[tuple[int, int]]:
        """Drop ``written`` bytes from the head; return (type, length) of finished PDUs."""
        if written > self._ready_remaining:
            raise ValueError(f"consume({written}): more than the buffers handed out by peek")
        self._ready_remaining -= written
        finished: list[tuple[int, int]] = []
        while written:
            pdu = self._ready[0]
            if written >= pdu.remaining:  # the whole rest of this PDU went out
                written -= pdu.remaining
                self._ready.popleft()
                self._queued_bytes -= pdu.length
                finished.append((pdu.pdu_type, pdu.length))
                continue
            pdu.remaining -= written
            buffers = pdu.buffers
            while written >= len(buffers[pdu.first]):
                written -= len(buffers[pdu.first])
                pdu.first += 1
            if written:
                buffers[pdu.first] = buffers[pdu.first][written:]
                written = 0
        return finished

    def cancel_pending(self) -> None:
        """Drop everything not yet started; a PDU already partly written stays whole."""
        for item in self._items:
            if isinstance(item, _Stream):
                _close_iterator(item.pdus)
        self._items.clear()
        while len(self._ready) > 1 or (self._ready and not _started(self._ready[-1])):
            dropped = self._ready.pop()
            self._queued_bytes -= dropped.length
            self._ready_remaining -= dropped.remaining

    @property
    def backlog(self) -> int:
        """Messages and PDUs queued whose sending has not started yet."""
        return len(self._items)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of materialised PDUs not yet written (streams count only once produced)."""
        return self._queued_bytes

    def _fill(self, want: int) -> int:
        """Materialise PDUs from the head of ``_items`` until ``want`` bytes are ready;
        stop at a failed stream, so nothing queued after it is ever produced."""
        while self._failure is None and self._queued_bytes < want and self._items:
            head = self._items[0]
            if isinstance(head, _PendingPDU):
                self._items.popleft()
                self._append_ready(head)
                continue
            try:
                buffers = next(head.pdus)
            except StopIteration:
                self._items.popleft()
                continue
            except Exception as exc:  # any producer error ends the stream; peek reports it
                self._items.popleft()
                _close_iterator(head.pdus)
                self._failure = StreamError(head.label, exc)
                break
            self._append_ready(_make_pdu(head.pdu_type, buffers))
        return self._queued_bytes

    def _append_ready(self, pdu: _PendingPDU) -> None:
        self._ready.append(pdu)
        self._queued_bytes += pdu.length
        self._ready_remaining += pdu.remaining


def _make_pdu(pdu_type: int, buffers: Sequence[Buffer]) -> _PendingPDU:
    views = [_byte_view(b) for b in buffers if len(b)]
    length = sum(len(v) for v in views)
    return _PendingPDU(pdu_type, views, length, length)


def _byte_view(buffer: Buffer) -> memoryview:
    view = memoryview(buffer)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _started(pdu: _PendingPDU) -> bool:
    return pdu.remaining != pdu.length


def _close_iterator(iterator: Iterator[Sequence[Buffer]]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
