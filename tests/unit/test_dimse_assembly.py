"""Tests of message reassembly (dicomnet.dimse.assembly) and fragmentation
(dicomnet.dimse.fragment), PS3.8 annex E.

Golden vectors: the C-STORE that DCMTK storescu sent to storescp, plain and deflated.
pydicom and zlib check the reassembled data sets independently.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

from dicomnet.dimse.assembly import (
    MAX_COMMAND_SET_LENGTH,
    BytesSink,
    Message,
    MessageAssembler,
)
from dicomnet.dimse.commands import DATA_SET_PRESENT, NO_DATA_SET, encode_command_set
from dicomnet.dimse.fragment import (
    UNLIMITED_PDU_CHUNK,
    BytesSource,
    FileSource,
    iter_message_pdus,
    max_fragment_size,
)
from dicomnet.errors import DIMSEError
from dicomnet.pdu import split_pdvs

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pdus"
STORE = "dcmtk-storescu_dcmtk-storescp.pdus"
STORE_DEFLATE = "dcmtk-storescu-deflate_dcmtk-storescp-deflate.pdus"
CT_INSTANCE = "1.2.826.0.1.3680043.8.498.51290118959990362442240691139104342118"

ECHO_RQ = encode_command_set(
    {
        "CommandField": 0x0030,
        "MessageID": 1,
        "AffectedSOPClassUID": "1.2.840.10008.1.1",
        "CommandDataSetType": NO_DATA_SET,
    }
)
STORE_RQ = encode_command_set(
    {
        "CommandField": 0x0001,
        "MessageID": 7,
        "Priority": 0,
        "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
        "AffectedSOPInstanceUID": "1.2.3.4",
        "CommandDataSetType": DATA_SET_PRESENT,
    }
)


def recorded_pdata(name: str, direction: str) -> list[bytes]:
    """The P-DATA-TF PDUs sent in one direction of a fixture, in order."""
    pdus = []
    for line in (FIXTURES / name).read_text().splitlines():
        line_direction, hex_pdu = line.split()
        pdu = bytes.fromhex(hex_pdu)
        if line_direction == direction and pdu[0] == 0x04:
            pdus.append(pdu)
    return pdus


def pdvs_of(pdu: bytes | bytearray) -> list[tuple[int, int, memoryview]]:
    return list(split_pdvs(memoryview(pdu)[6:]))


def pdv(context_id: int, control: int, fragment: bytes) -> bytes:
    """One PDV item as it appears inside a P-DATA-TF body."""
    return struct.pack(">LBB", len(fragment) + 2, context_id, control) + fragment


def assemble(assembler: MessageAssembler, pdus: list[bytes]) -> list[Message]:
    messages = []
    for pdu in pdus:
        for context_id, control, fragment in pdvs_of(pdu):
            message = assembler.feed(context_id, control, fragment)
            if message is not None:
                messages.append(message)
    return messages


def explicit_le(data: bytes) -> Dataset:
    return read_dataset(BytesIO(data), is_implicit_VR=False, is_little_endian=True)


class RecordingSink(BytesSink):
    """A BytesSink that remembers what happened to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.closed = self.discarded = False

    def write(self, fragment: memoryview) -> None:
        self.writes += 1
        super().write(fragment)

    def close(self) -> bytes:
        self.closed = True
        return super().close()

    def discard(self) -> None:
        self.discarded = True
        super().discard()


# -- golden vectors ------------------------------------------------------------------


@pytest.mark.parametrize("fixture", [STORE, STORE_DEFLATE])
def test_reassemble_recorded_c_store(fixture: str) -> None:
    pdus = recorded_pdata(fixture, ">")
    data_fragments = [
        bytes(fragment) for pdu in pdus for _, control, fragment in pdvs_of(pdu) if not control & 1
    ]
    sinks: list[tuple[int, dict[str, object], RecordingSink]] = []

    def factory(context_id: int, command: dict[str, object]) -> RecordingSink:
        sinks.append((context_id, command, RecordingSink()))
        return sinks[-1][2]

    assembler = MessageAssembler(factory)
    (message,) = assemble(assembler, pdus)
    assert not assembler.in_progress
    assert message.context_id == 41
    assert message.command_field == 0x0001
    assert message.message_id == 1
    assert message.priority == 0
    assert message.affected_sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert message.affected_sop_instance_uid == CT_INSTANCE
    assert message.has_data_set
    assert message.data == b"".join(data_fragments)
    # The sink got the command and every fragment, one write each, then was closed.
    ((context_id, command, sink),) = sinks
    assert (context_id, command) == (41, message.command)
    assert sink.writes == len(data_fragments) and sink.closed and not sink.discarded

    data = message.data
    assert isinstance(data, bytes)
    if fixture == STORE_DEFLATE:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    dataset = explicit_le(data)
    assert (dataset.Rows, dataset.Columns, dataset.BitsAllocated) == (512, 512, 16)
    assert len(dataset.PixelData) == 512 * 512 * 2
    assert dataset.SOPInstanceUID == CT_INSTANCE


def test_reassemble_recorded_c_store_response() -> None:
    assembler = MessageAssembler()
    (message,) = assemble(assembler, recorded_pdata(STORE, "<"))
    assert message.command_field == 0x8001
    assert message.message_id_being_responded_to == 1
    assert message.status == 0x0000
    assert message.data is None and not message.has_data_set


def test_fragmenting_like_dcmtk_reproduces_its_pdus() -> None:
    """DCMTK keeps whole PDUs within 16384 bytes, i.e. a PDU-length of 16378."""
    recorded = recorded_pdata(STORE, ">")
    (message,) = assemble(MessageAssembler(), recorded)
    command = bytes(pdvs_of(recorded[0])[0][2])
    assert isinstance(message.data, bytes)
    produced = [
        b"".join(buffers)
        for buffers in iter_message_pdus(41, command, BytesSource(message.data), 16378)
    ]
    assert produced == recorded


# -- fragment -> assemble round trip ----------------------------------------------------


peer_maxima = st.one_of(
    st.integers(8, 400), st.sampled_from([0, 4096, 16384, 16385, UNLIMITED_PDU_CHUNK + 10])
)


@settings(max_examples=300, deadline=None)
@given(peer_max=peer_maxima, data_size=st.integers(0, 5000), seed=st.binary(min_size=1))
def test_fragment_assemble_round_trip(peer_max: int, data_size: int, seed: bytes) -> None:
    data = (seed * (data_size // len(seed) + 1))[:data_size]
    command = STORE_RQ if data else ECHO_RQ
    source = BytesSource(data) if data else None
    assembler = MessageAssembler()
    messages = []
    for buffers in iter_message_pdus(3, command, source, peer_max):
        pdu = b"".join(buffers)
        (pdu_length,) = struct.unpack_from(">L", pdu, 2)
        assert pdu[0] == 0x04 and pdu_length == len(pdu) - 6
        assert pdu_length <= (peer_max or UNLIMITED_PDU_CHUNK)
        ((context_id, control, fragment),) = pdvs_of(pdu)  # one PDV per PDU
        assert context_id == 3 and len(fragment) > 0
        message = assembler.feed(context_id, control, fragment)
        if message is not None:
            messages.append(message)
    (message,) = messages
    assert message.data == (data or None)
    assert message.command["CommandField"] == (0x0001 if data else 0x0030)


def test_control_headers_in_order() -> None:
    controls = [
        pdvs_of(b"".join(buffers))[0][1]
        for buffers in iter_message_pdus(1, STORE_RQ, BytesSource(bytes(100)), 6 + 40)
    ]
    command_pdus = -(-len(STORE_RQ) // 40)
    assert controls == [0x01] * (command_pdus - 1) + [0x03] + [0x00, 0x00] + [0x02]


def test_several_pdvs_of_one_message_in_one_pdu() -> None:
    body = pdv(5, 0x01, STORE_RQ[:20]) + pdv(5, 0x03, STORE_RQ[20:])
    body += pdv(5, 0x00, b"ab") + pdv(5, 0x00, b"") + pdv(5, 0x02, b"cd")
    pdu = struct.pack(">BxL", 4, len(body)) + body
    (message,) = assemble(MessageAssembler(), [pdu])
    assert message.message_id == 7 and message.data == b"abcd"


def test_several_messages_in_a_row() -> None:
    assembler = MessageAssembler()
    pdus = [
        b"".join(buffers)
        for command, data in [(ECHO_RQ, None), (STORE_RQ, BytesSource(b"xy" * 10)), (ECHO_RQ, None)]
        for buffers in iter_message_pdus(1, command, data, 30)
    ]
    messages = assemble(assembler, pdus)
    assert [m.command_field for m in messages] == [0x0030, 0x0001, 0x0030]
    assert messages[1].data == b"xy" * 10


def test_lazy_reading_of_the_data_source() -> None:
    class CountingSource:
        length = 30
        pulled = 0

        def chunks(self, size: int) -> Iterator[bytes]:
            for start in range(0, self.length, size):
                self.pulled += 1
                yield bytes(min(size, self.length - start))

    source = CountingSource()
    pdus = iter_message_pdus(1, ECHO_RQ, source, 16)
    assert source.pulled == 0
    for _ in range(-(-len(ECHO_RQ) // 10) + 1):
        next(pdus)
    assert source.pulled == 1


def test_continuing_data_is_taken_whole_and_everything_else_declined() -> None:
    assembler = MessageAssembler()
    assert not assembler.continue_data(memoryview(pdv(1, 0x00, b"ab")))  # no message yet
    assembler.feed(1, 0x03, memoryview(STORE_RQ))
    declined = [
        pdv(1, 0x02, b"ab"),  # the last fragment: the message must be finished
        pdv(1, 0x01, b"ab"),  # a command fragment: an error only feed explains
        pdv(3, 0x00, b"ab"),  # another context: interleaving, an error
        pdv(1, 0x00, b"abc"),  # odd length: logged by feed
        pdv(1, 0x00, b"ab") + pdv(1, 0x00, b"cd"),  # several PDVs
        pdv(1, 0x00, b"ab")[:5],  # shorter than a PDV header
    ]
    for body in declined:
        assert not assembler.continue_data(memoryview(body))
    assert assembler.continue_data(memoryview(pdv(1, 0x00, b"ab")))
    assert assembler.continue_data(memoryview(pdv(1, 0x00, b"")))
    message = assembler.feed(1, 0x02, memoryview(b"cd"))
    assert message is not None and message.data == b"abcd"


# -- tolerance ---------------------------------------------------------------------------


def test_odd_fragments_are_accepted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    assembler = MessageAssembler()
    with caplog.at_level(logging.DEBUG, logger="dicomnet"):
        assembler.feed(1, 0x01, memoryview(STORE_RQ[:13]))
        assembler.feed(1, 0x03, memoryview(STORE_RQ[13:]))
        assembler.feed(1, 0x00, memoryview(b"abc"))
        message = assembler.feed(1, 0x02, memoryview(b"de"))
    assert message is not None and message.data == b"abcde"
    assert "odd" in caplog.text


def test_control_bits_2_to_7_are_ignored() -> None:
    assembler = MessageAssembler()
    assert assembler.feed(1, 0xFC | 0x03, memoryview(STORE_RQ)) is None
    message = assembler.feed(1, 0xFC | 0x02, memoryview(b"ok"))
    assert message is not None and message.data == b"ok"


def test_empty_fragments_are_accepted() -> None:
    assembler = MessageAssembler()
    assert assembler.feed(1, 0x01, memoryview(b"")) is None
    assert assembler.in_progress
    assert assembler.feed(1, 0x03, memoryview(STORE_RQ)) is None
    message = assembler.feed(1, 0x02, memoryview(b""))
    assert message is not None and message.data == b""


# -- protocol errors ---------------------------------------------------------------------


def recording_assembler() -> tuple[MessageAssembler, list[RecordingSink]]:
    sinks: list[RecordingSink] = []

    def factory(context_id: int, command: dict[str, object]) -> RecordingSink:
        sinks.append(RecordingSink())
        return sinks[-1]

    return MessageAssembler(factory), sinks


def _feeds(*pdvs: tuple[int, int, bytes]) -> tuple[MessageAssembler, list[RecordingSink]]:
    assembler, sinks = recording_assembler()
    for context_id, control, fragment in pdvs:
        assembler.feed(context_id, control, memoryview(fragment))
    return assembler, sinks


@pytest.mark.parametrize(
    ("pdvs", "reason"),
    [
        pytest.param([(1, 0x02, b"ab")], "without a command", id="data first"),
        pytest.param(
            [(1, 0x01, STORE_RQ[:10]), (1, 0x00, b"ab")], "before the last", id="data mid-command"
        ),
        pytest.param(
            [(1, 0x03, STORE_RQ), (1, 0x03, STORE_RQ)],
            "data set of a message is expected",
            id="command instead of data",
        ),
        pytest.param(
            [(1, 0x01, STORE_RQ[:10]), (3, 0x03, STORE_RQ[10:])],
            "interleaving",
            id="other context in command",
        ),
        pytest.param(
            [(1, 0x03, STORE_RQ), (1, 0x00, b"ab"), (3, 0x02, b"cd")],
            "interleaving",
            id="other context in data",
        ),
        pytest.param([(1, 0x03, STORE_RQ[:-2])], "undecodable", id="truncated command"),
        pytest.param([(1, 0x03, b"")], "undecodable", id="empty command"),
        pytest.param(
            [(1, 0x03, encode_command_set({"CommandField": 1, "MessageID": 1}))],
            "CommandDataSetType",
            id="no data set type",
        ),
        pytest.param(
            [(1, 0x03, ECHO_RQ), (1, 0x02, b"ab")], "0101H", id="data after no-data command"
        ),
    ],
)
def test_protocol_errors(pdvs: list[tuple[int, int, bytes]], reason: str) -> None:
    with pytest.raises(DIMSEError, match=reason):
        _feeds(*pdvs)


def test_error_discards_the_message_in_progress() -> None:
    assembler, sinks = recording_assembler()
    assembler.feed(1, 0x03, memoryview(STORE_RQ))
    assembler.feed(1, 0x00, memoryview(b"ab"))
    with pytest.raises(DIMSEError):
        assembler.feed(3, 0x02, memoryview(b"cd"))
    assert sinks[0].discarded and not sinks[0].closed
    assert not assembler.in_progress
    # Clean again: the next message assembles normally.
    assert assembler.feed(3, 0x03, memoryview(ECHO_RQ)) is not None


def test_discard_on_abort() -> None:
    assembler, sinks = _feeds((1, 0x03, STORE_RQ), (1, 0x00, b"ab"))
    assert assembler.in_progress
    assembler.discard()
    assert sinks[0].discarded and not assembler.in_progress
    assembler.discard()  # nothing in progress: harmless


def test_failing_sink_factory_gives_a_framed_message_with_its_error() -> None:
    def factory(context_id: int, command: dict[str, object]) -> BytesSink:
        raise OSError("no space left for the spool file")

    assembler = MessageAssembler(factory)
    assert assembler.feed(1, 0x03, memoryview(STORE_RQ)) is None
    assert assembler.feed(1, 0x00, memoryview(b"ab" * 8)) is None
    message = assembler.feed(1, 0x02, memoryview(b"cd" * 8))
    assert message is not None and message.data is None
    assert message.error is not None and "no space left" in message.error
    assert not assembler.in_progress
    assert assembler.feed(1, 0x03, memoryview(ECHO_RQ)) is not None


class _SinkThatFillsUp(BytesSink):
    def __init__(self) -> None:
        super().__init__()
        self.discarded = False

    def write(self, fragment: memoryview) -> None:
        raise OSError(28, "No space left on device")

    def discard(self) -> None:
        self.discarded = True


def test_sink_write_failure_drops_the_rest_and_reports_it() -> None:
    sinks: list[_SinkThatFillsUp] = []

    def factory(context_id: int, command: dict[str, object]) -> BytesSink:
        sinks.append(_SinkThatFillsUp())
        return sinks[-1]

    assembler = MessageAssembler(factory)
    assembler.feed(1, 0x03, memoryview(STORE_RQ))
    assert assembler.feed(1, 0x00, memoryview(b"ab" * 8)) is None
    message = assembler.feed(1, 0x02, memoryview(b"cd" * 8))
    assert message is not None and message.data is None
    assert message.error is not None and "No space left" in message.error
    assert sinks[0].discarded


def test_command_set_size_is_bounded() -> None:
    assembler = MessageAssembler()
    chunk = memoryview(bytes(64 * 1024))
    with pytest.raises(DIMSEError, match="longer than"):
        for _ in range(MAX_COMMAND_SET_LENGTH // len(chunk) + 1):
            assembler.feed(1, 0x01, chunk)
    assert not assembler.in_progress


def test_bytes_sink() -> None:
    sink = BytesSink()
    sink.write(memoryview(b"ab"))
    sink.write(memoryview(b"cd"))
    assert sink.close() == b"abcd"
    sink.write(memoryview(b"x"))
    sink.discard()
    assert sink.close() == b""


# -- fragment.py specifics ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer_max", "fragment"),
    [
        (16384, 16378),
        (16385, 16378),
        (16378, 16372),
        (8, 2),
        (9, 2),
        (10, 4),
        (0, UNLIMITED_PDU_CHUNK - 6),
        (UNLIMITED_PDU_CHUNK, UNLIMITED_PDU_CHUNK - 6),
        (0xFFFFFFFF, UNLIMITED_PDU_CHUNK - 6),
    ],
)
def test_max_fragment_size(peer_max: int, fragment: int) -> None:
    assert max_fragment_size(peer_max) == fragment


@pytest.mark.parametrize("peer_max", [1, 6, 7, -1])
def test_absurd_peer_maxima_are_rejected(peer_max: int) -> None:
    with pytest.raises(DIMSEError):
        max_fragment_size(peer_max)


def test_nothing_empty_is_sent() -> None:
    # Refused at the call, before a single PDU of the message exists.
    with pytest.raises(DIMSEError):
        iter_message_pdus(1, b"", None, 0)
    with pytest.raises(DIMSEError):
        iter_message_pdus(1, STORE_RQ, BytesSource(b""), 0)
    with pytest.raises(DIMSEError):
        iter_message_pdus(1, STORE_RQ, None, 7)


@pytest.mark.parametrize(
    "yielded",
    [[b"abcd", b""], [b"abcde"], [b"abc"], [b"abcd", b"ef"], [b"abc", b"d"], [b"a" * 12]],
)
def test_data_source_that_breaks_its_promises_is_an_error(yielded: list[bytes]) -> None:
    class LyingSource:
        length = 4

        def chunks(self, size: int) -> Iterator[bytes]:
            yield from yielded

    with pytest.raises(DIMSEError):
        list(iter_message_pdus(1, ECHO_RQ, LyingSource(), 100))


def test_bytes_source_yields_views_without_copying() -> None:
    data = bytearray(b"0123456789")
    chunks = list(BytesSource(data).chunks(4))
    assert [bytes(chunk) for chunk in chunks] == [b"0123", b"4567", b"89"]
    data[0:1] = b"X"
    assert bytes(chunks[0]) == b"X123"


def test_file_source(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)) * 4)
    source = FileSource(path, offset=10, length=1000)
    assert source.length == 1000
    chunks = list(source.chunks(256))
    assert [len(chunk) for chunk in chunks] == [256, 256, 256, 232]
    assert b"".join(chunks) == path.read_bytes()[10:1010]
    assert FileSource(path, offset=24).length == 1000
    # Each chunk stays valid after the next one was read.
    assert bytes(chunks[0][:2]) == bytes([10, 11])


def test_file_source_sends_through_the_assembler(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"DICM" * 5000)
    pdus = [b"".join(buffers) for buffers in iter_message_pdus(7, STORE_RQ, FileSource(path), 4096)]
    (message,) = assemble(MessageAssembler(), pdus)
    assert message.data == path.read_bytes()


def test_file_source_closes_when_abandoned(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(bytes(100))
    source = FileSource(path)
    chunks = source.chunks(10)
    next(chunks)
    assert source._file is not None and not source._file.closed
    opened = source._file
    source.close()
    assert opened.closed
    chunks.close()


def test_file_source_that_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(bytes(100))
    source = FileSource(path)
    path.write_bytes(bytes(50))
    with pytest.raises(DIMSEError, match="shorter"):
        list(source.chunks(30))


@pytest.mark.parametrize(("offset", "length"), [(101, None), (-1, None), (50, 51), (0, -1)])
def test_file_source_range_must_fit(tmp_path: Path, offset: int, length: int | None) -> None:
    path = tmp_path / "data"
    path.write_bytes(bytes(100))
    with pytest.raises(DIMSEError):
        FileSource(path, offset, length)
