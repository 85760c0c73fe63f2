"""Tests for dicomnet.sendqueue: the PDU-aware, lazy outgoing byte queue.

A fake writer drains the queue the way the selector loop does (``peek``, write some,
``consume`` what was written) so partial writes can be placed at every byte offset.
Streams that fail while producing a PDU are reported by ``peek`` as ``StreamError``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomnet.sendqueue import Buffer, SendQueue, StreamError

PDATA, RELEASE_RP, ABORT = 0x04, 0x06, 0x07


def pdu_bytes(pdu_type: int, body: bytes) -> bytes:
    """A PDU of ``pdu_type`` around ``body`` (PS3.8 9.3.1 header: type, reserved, length)."""
    return bytes([pdu_type, 0]) + len(body).to_bytes(4, "big") + body


def split(data: bytes, *cuts: int) -> list[Buffer]:
    """``data`` cut into buffers at the given offsets (scatter-gather pieces of one PDU)."""
    points = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


class RecordingStream:
    """PDUs produced on demand; records how many were pulled and whether it was closed."""

    def __init__(self, pdus: list[bytes]) -> None:
        self.pdus = pdus
        self.pulled = 0
        self.closed = False

    def __iter__(self) -> Iterator[list[Buffer]]:
        try:
            for pdu in self.pdus:
                self.pulled += 1
                yield split(pdu, 6)  # header and body as separate buffers
        finally:
            self.closed = True


def drain(queue: SendQueue, write_sizes: list[int]) -> tuple[bytes, list[tuple[int, int]]]:
    """Write the whole queue, each write taking at most the next of ``write_sizes``
    (cycled) bytes; return the bytes written and the finished PDUs, in order."""
    written = bytearray()
    finished: list[tuple[int, int]] = []
    turn = 0
    while queue:
        offered = b"".join(queue.peek(1 << 16))
        n = min(len(offered), write_sizes[turn % len(write_sizes)])
        turn += 1
        written += offered[:n]
        finished += queue.consume(n)
    return bytes(written), finished


PDU_A = pdu_bytes(PDATA, bytes(range(40)))
PDU_B = pdu_bytes(RELEASE_RP, b"\x00" * 4)
PDU_C = pdu_bytes(PDATA, b"\xab" * 17)


def three_pdus() -> SendQueue:
    queue = SendQueue()
    queue.push(PDATA, split(PDU_A, 6, 12, 30))
    queue.push(RELEASE_RP, [PDU_B])
    queue.push(PDATA, split(PDU_C, 6))
    return queue


def test_empty_queue_is_false_and_offers_nothing() -> None:
    queue = SendQueue()
    assert not queue
    assert queue.peek(100) == []
    assert queue.consume(0) == []
    assert queue.buffered_bytes == 0


def test_partial_write_at_every_offset_keeps_bytes_and_reports_pdus_once() -> None:
    stream = PDU_A + PDU_B + PDU_C
    ends = {len(PDU_A): (PDATA, len(PDU_A)), len(PDU_A) + len(PDU_B): (RELEASE_RP, len(PDU_B))}
    ends[len(stream)] = (PDATA, len(PDU_C))
    for offset in range(len(stream) + 1):
        queue = three_pdus()
        first = b"".join(queue.peek(1 << 16))[:offset]
        finished_first = queue.consume(offset)
        assert finished_first == [pdu for end, pdu in ends.items() if end <= offset], offset
        rest, finished_rest = drain(queue, [1 << 16])
        assert first + rest == stream, offset
        assert finished_first + finished_rest == list(ends.values()), offset


@given(st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=20))
def test_any_sequence_of_short_writes_delivers_the_stream(write_sizes: list[int]) -> None:
    written, finished = drain(three_pdus(), write_sizes)
    assert written == PDU_A + PDU_B + PDU_C
    assert finished == [(PDATA, len(PDU_A)), (RELEASE_RP, len(PDU_B)), (PDATA, len(PDU_C))]


def test_peek_after_a_partial_write_starts_where_the_write_stopped() -> None:
    queue = SendQueue()
    queue.push(PDATA, [PDU_A])
    queue.peek(1 << 16)
    queue.consume(10)
    assert b"".join(queue.peek(1 << 16)) == PDU_A[10:]
    assert queue.buffered_bytes == len(PDU_A)  # a PDU counts until it is fully written


def test_streams_are_not_pulled_when_pushed() -> None:
    source = RecordingStream([pdu_bytes(PDATA, bytes([i]) * 100) for i in range(5)])
    queue = SendQueue()
    queue.push_stream(PDATA, iter(source))
    assert source.pulled == 0


def test_streams_are_pulled_only_as_far_as_the_writer_asks() -> None:
    pdus = [pdu_bytes(PDATA, bytes([i]) * 100) for i in range(5)]  # 106 bytes each
    source = RecordingStream(pdus)
    queue = SendQueue()
    queue.push_stream(PDATA, iter(source))
    assert queue  # knowing the queue is not empty needs one PDU, no more
    assert source.pulled == 1
    assert b"".join(queue.peek(150)) == pdus[0] + pdus[1]
    assert source.pulled == 2
    assert queue.consume(106) == [(PDATA, 106)]
    queue.peek(1)
    assert source.pulled == 2  # the second PDU is still ready; nothing new was needed
    written, finished = drain(queue, [1 << 16])
    assert written == b"".join(pdus[1:])
    assert finished == [(PDATA, 106)] * 4
    assert source.pulled == 5


def test_whole_pdus_and_streams_keep_their_order() -> None:
    middle = [pdu_bytes(PDATA, b"m" * 8), pdu_bytes(PDATA, b"n" * 8)]
    queue = SendQueue()
    queue.push(PDATA, [PDU_A])
    queue.push_stream(PDATA, iter(RecordingStream(middle)))
    queue.push(RELEASE_RP, [PDU_B])
    written, finished = drain(queue, [7])
    assert written == PDU_A + b"".join(middle) + PDU_B
    assert [pdu_type for pdu_type, _ in finished] == [PDATA, PDATA, PDATA, RELEASE_RP]


def test_empty_stream_is_skipped() -> None:
    queue = SendQueue()
    queue.push_stream(PDATA, iter(RecordingStream([])))
    assert not queue
    queue.push(RELEASE_RP, [PDU_B])
    assert drain(queue, [100]) == (PDU_B, [(RELEASE_RP, len(PDU_B))])


def test_cancel_pending_keeps_a_partly_written_pdu_whole() -> None:
    source = RecordingStream([pdu_bytes(PDATA, bytes([i]) * 50) for i in range(4)])
    queue = SendQueue()
    queue.push(PDATA, [PDU_A])
    queue.push_stream(PDATA, iter(source))
    queue.peek(1 << 16)  # materialise some of the stream, as a writer would
    queue.consume(5)  # PDU_A is on the wire, partly
    queue.cancel_pending()
    assert source.closed  # the stream's resources are released at once
    queue.push(ABORT, [pdu_bytes(ABORT, b"\x00\x00\x02\x00")])
    written, finished = drain(queue, [3])
    # the rest of PDU_A, then the abort: no half PDU on the wire, nothing else after
    assert written == PDU_A[5:] + pdu_bytes(ABORT, b"\x00\x00\x02\x00")
    assert finished == [(PDATA, len(PDU_A)), (ABORT, 10)]


def test_cancel_pending_drops_everything_when_nothing_was_started() -> None:
    source = RecordingStream([pdu_bytes(PDATA, b"x" * 10)])
    queue = three_pdus()
    queue.push_stream(PDATA, iter(source))
    queue.peek(1 << 16)
    queue.cancel_pending()
    assert not queue
    assert queue.buffered_bytes == 0
    assert source.closed


def test_cancel_pending_after_a_finished_pdu_keeps_nothing_of_it() -> None:
    queue = three_pdus()
    queue.peek(1 << 16)
    assert queue.consume(len(PDU_A)) == [(PDATA, len(PDU_A))]
    queue.cancel_pending()  # PDU_B was ready but not started
    assert not queue


def test_buffered_bytes_counts_materialised_pdus_until_written() -> None:
    queue = three_pdus()
    queue.peek(1)
    assert queue.buffered_bytes == len(PDU_A)
    queue.peek(1 << 16)
    assert queue.buffered_bytes == len(PDU_A) + len(PDU_B) + len(PDU_C)
    queue.consume(len(PDU_A) + 2)
    assert queue.buffered_bytes == len(PDU_B) + len(PDU_C)


def test_empty_buffers_are_ignored() -> None:
    queue = SendQueue()
    queue.push(RELEASE_RP, [b"", PDU_B[:3], b"", PDU_B[3:]])
    assert drain(queue, [2]) == (PDU_B, [(RELEASE_RP, len(PDU_B))])


class BrokenStream:
    """Produces ``good`` PDUs, then fails as an unreadable file would."""

    def __init__(self, good: list[bytes]) -> None:
        self.good = good
        self.pulled = 0

    def __iter__(self) -> Iterator[list[Buffer]]:
        for pdu in self.good:
            self.pulled += 1
            yield [pdu]
        raise OSError(5, "Input/output error")


def test_a_failing_stream_is_reported_once_by_peek_with_its_label_and_cause() -> None:
    good = [pdu_bytes(PDATA, b"g" * 20)]
    queue = SendQueue()
    queue.push_stream(PDATA, iter(BrokenStream(good)), label="message 7")
    queue.push(RELEASE_RP, [PDU_B])
    with pytest.raises(StreamError) as raised:
        queue.peek(1 << 16)
    assert raised.value.label == "message 7"
    assert isinstance(raised.value.cause, OSError)
    assert raised.value.__cause__ is raised.value.cause
    # the PDU made before the failure is still there, then what was queued after it
    written, finished = drain(queue, [1 << 16])
    assert written == good[0] + PDU_B
    assert finished == [(PDATA, len(good[0])), (RELEASE_RP, len(PDU_B))]


def test_nothing_queued_after_a_failed_stream_is_made_before_the_failure_is_seen() -> None:
    after = RecordingStream([pdu_bytes(PDATA, b"a" * 10)])
    queue = SendQueue()
    queue.push_stream(PDATA, iter(BrokenStream([])))
    queue.push_stream(PDATA, iter(after))
    assert queue  # the pending failure makes the queue worth a peek
    assert after.pulled == 0
    with pytest.raises(StreamError):
        queue.peek(1 << 16)
    assert after.pulled == 0
    queue.cancel_pending()  # what an engine does before its A-ABORT
    assert not queue
    assert after.pulled == 0  # dropped without ever being produced


def test_a_failure_keeps_the_partly_written_pdu_whole_for_what_follows() -> None:
    first = pdu_bytes(PDATA, b"p" * 30)
    queue = SendQueue()
    queue.push_stream(PDATA, iter(BrokenStream([first])))
    head = b"".join(queue.peek(1))[:8]
    queue.consume(8)
    with pytest.raises(StreamError):
        queue.peek(1 << 16)
    queue.cancel_pending()
    queue.push(ABORT, [pdu_bytes(ABORT, b"\x00\x00\x02\x00")])
    written, finished = drain(queue, [5])
    assert head + written == first + pdu_bytes(ABORT, b"\x00\x00\x02\x00")
    assert finished == [(PDATA, len(first)), (ABORT, 10)]
