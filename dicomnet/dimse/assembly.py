"""Reassembling DIMSE messages from received PDVs (PS3.8 annex E, PS3.7 6.3).

A message is its command set fragments, then (unless the command's Command Data Set Type
is 0101H) its data set fragments, all on one presentation context and never interleaved
with another message (PS3.8 E.1). ``MessageAssembler`` checks that order and decodes the
command. Data set fragments are handed straight to a ``DataSink`` (memory by default, a
spool file for large C-STOREs) and never accumulated here, so memory stays bounded
whatever the data set size.

Tolerated: odd-length fragments (logged at DEBUG), empty fragments, several PDVs of one
message in one PDU; bits 2-7 of the message control header are ignored (PS3.8 E.2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

from ..errors import DIMSEError
from ..pdu import CONTROL_COMMAND, CONTROL_LAST, PDV_HEADER, PDV_OVERHEAD
from .commands import NO_DATA_SET, decode_command_set

logger = logging.getLogger("dicomnet.dimse")

# A command set is about ten short elements; this bounds what a hostile peer can make
# us buffer before the last command fragment (an Attribute Identifier List of 250 000
# tags would still fit).
MAX_COMMAND_SET_LENGTH = 1 << 20


class DataSink(Protocol):
    """Where the data set fragments of one received message go."""

    def write(self, fragment: memoryview) -> None:
        """Take the next fragment; the view is only valid during the call."""

    def close(self) -> object:
        """Called after the last fragment; returns the message's data (bytes, a path...)."""

    def discard(self) -> None:
        """The message was abandoned (abort, error): free or delete everything."""


class BytesSink:
    """The default sink: collects the data set in memory; ``close()`` returns bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, fragment: memoryview) -> None:
        self._buffer += fragment

    def close(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer = bytearray()
        return data

    def discard(self) -> None:
        self._buffer = bytearray()


SinkFactory = Callable[[int, dict[str, object]], DataSink]
"""``(context_id, decoded command) -> sink`` for the data set that follows the command."""


@dataclass
class Message:
    """One received DIMSE message."""

    context_id: int
    command: dict[str, object]
    data: object | None  # what the sink's close() returned; None without a data set
    dataset: object | None = None  # the parsed data set, once the receiver decoded it
    error: str | None = None  # why the data set could not be kept (disk full, ...)

    @property
    def command_field(self) -> int:
        return self._int("CommandField") or 0

    @property
    def message_id(self) -> int | None:
        return self._int("MessageID")

    @property
    def message_id_being_responded_to(self) -> int | None:
        return self._int("MessageIDBeingRespondedTo")

    @property
    def status(self) -> int | None:
        return self._int("Status")

    @property
    def priority(self) -> int | None:
        return self._int("Priority")

    @property
    def affected_sop_class_uid(self) -> str | None:
        return self._str("AffectedSOPClassUID")

    @property
    def affected_sop_instance_uid(self) -> str | None:
        return self._str("AffectedSOPInstanceUID")

    @property
    def requested_sop_class_uid(self) -> str | None:
        return self._str("RequestedSOPClassUID")

    @property
    def requested_sop_instance_uid(self) -> str | None:
        return self._str("RequestedSOPInstanceUID")

    @property
    def has_data_set(self) -> bool:
        return self.command.get("CommandDataSetType") != NO_DATA_SET

    def _int(self, keyword: str) -> int | None:
        value = self.command.get(keyword)
        return value if isinstance(value, int) else None

    def _str(self, keyword: str) -> str | None:
        value = self.command.get(keyword)
        return value if isinstance(value, str) else None


def _default_sink(context_id: int, command: dict[str, object]) -> DataSink:
    return BytesSink()


class SinkError(DIMSEError):
    """A sink could not keep the data set; ``reason`` says why in words fit for the peer
    (the refusal's Error Comment: no local paths), the message says it all for the log."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _failure_reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, SinkError) else str(exc)


class _FailedSink:
    """Stands in for a sink that could not be created or written: the rest of the data
    set is read and dropped, so the message stays framed and can be refused with a
    status instead of aborting the association."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def write(self, fragment: memoryview) -> None:
        pass

    def close(self) -> None:
        return None

    def discard(self) -> None:
        pass


class MessageAssembler:
    """Turns the PDVs of one association's P-DATA-TF PDUs into ``Message`` objects.

    Feed every PDV in arrival order; ``feed`` returns the message its last fragment
    completes. Any protocol violation raises ``DIMSEError`` after discarding the message
    in progress, so the assembler is clean again (the caller normally aborts anyway).
    """

    def __init__(self, sink_factory: SinkFactory | None = None) -> None:
        self._sink_factory = sink_factory or _default_sink
        self._context_id: int | None = None  # context of the message in progress
        self._command_fragments = bytearray()
        self._command: dict[str, object] | None = None  # set while the data set arrives
        self._sink: DataSink | None = None
        self._last_had_no_data_set = False  # to explain a stray data fragment

    @property
    def in_progress(self) -> bool:
        """True between the first fragment of a message and its last."""
        return self._context_id is not None

    def feed(self, context_id: int, control: int, fragment: memoryview) -> Message | None:
        """Take one PDV; return the message it completes, if any."""
        if len(fragment) % 2:
            logger.debug("odd-length PDV fragment (%d bytes) accepted", len(fragment))
        if self._context_id is not None and context_id != self._context_id:
            self._fail(
                f"PDV on presentation context {context_id} while a message on context "
                f"{self._context_id} is incomplete (interleaving is forbidden, PS3.8 E.1)"
            )
        is_last = bool(control & CONTROL_LAST)
        if control & CONTROL_COMMAND:
            return self._feed_command(context_id, fragment, is_last)
        return self._feed_data(fragment, is_last)

    def continue_data(self, body: memoryview) -> bool:
        """Take a P-DATA-TF body (after the PDU header) at once when it is the common
        case of a large data set: one even-length PDV continuing, not ending, the data set
        in progress on its context. False, having taken nothing, for anything else: it
        then goes PDV by PDV through ``feed``, which checks everything."""
        sink = self._sink
        if sink is None or len(body) < PDV_OVERHEAD:
            return False
        item_length, context_id, control = PDV_HEADER.unpack_from(body)
        if control or item_length & 1 or item_length != len(body) - 4:
            return False
        if context_id != self._context_id:
            return False
        try:
            sink.write(body[PDV_OVERHEAD:])
        except (DIMSEError, OSError) as exc:
            self._sink_failed(exc)
        return True

    def flush(self) -> None:
        """Let the current sink write out fragments it holds as views of the receive
        buffer (the caller is about to reuse it)."""
        flush = getattr(self._sink, "flush", None)
        if flush is None:
            return
        try:
            flush()
        except (DIMSEError, OSError) as exc:
            self._sink_failed(exc)

    def discard(self) -> None:
        """Abandon the message in progress (association aborted or failed)."""
        if self._sink is not None:
            self._sink.discard()
        self._reset()

    def _feed_command(self, context_id: int, fragment: memoryview, is_last: bool) -> Message | None:
        if self._command is not None:
            self._fail("command fragment received while the data set of a message is expected")
        if len(self._command_fragments) + len(fragment) > MAX_COMMAND_SET_LENGTH:
            self._fail(f"command set longer than {MAX_COMMAND_SET_LENGTH} bytes")
        self._context_id = context_id
        self._last_had_no_data_set = False
        self._command_fragments += fragment
        if not is_last:
            return None
        command = self._decode_command()
        if command["CommandDataSetType"] == NO_DATA_SET:
            self._reset()
            self._last_had_no_data_set = True
            return Message(context_id, command, None)
        try:
            self._sink = self._sink_factory(context_id, command)
        except (DIMSEError, OSError) as exc:
            logger.warning("cannot store the incoming data set: %s", exc)
            self._sink = _FailedSink(_failure_reason(exc))
        self._command = command
        return None

    def _decode_command(self) -> dict[str, object]:
        try:
            command = decode_command_set(self._command_fragments)
        except DIMSEError as exc:
            self._fail(f"undecodable command set: {exc.message}")
        self._command_fragments = bytearray()
        for keyword in ("CommandField", "CommandDataSetType"):
            if not isinstance(command.get(keyword), int):
                self._fail(f"command set without {keyword}: the message cannot be framed")
        return command

    def _feed_data(self, fragment: memoryview, is_last: bool) -> Message | None:
        if self._sink is None or self._command is None or self._context_id is None:
            self._fail(self._stray_data_reason())
        try:
            self._sink.write(fragment)
        except (DIMSEError, OSError) as exc:
            self._sink_failed(exc)
        if not is_last:
            return None
        try:
            data = self._sink.close()
        except (DIMSEError, OSError) as exc:
            self._sink_failed(exc)
            data = None
        sink = self._sink
        error = sink.reason if isinstance(sink, _FailedSink) else None
        message = Message(self._context_id, self._command, data, error=error)
        self._reset()
        return message

    def _sink_failed(self, exc: Exception) -> None:
        """Keep framing the message, but drop its data and remember why."""
        logger.warning("cannot store the incoming data set: %s", exc)
        if self._sink is not None:
            self._sink.discard()
        self._sink = _FailedSink(_failure_reason(exc))

    def _stray_data_reason(self) -> str:
        if self._command_fragments or self._context_id is not None:
            return "data set fragment before the last fragment of its command set"
        if self._last_had_no_data_set:
            return (
                "data set fragment after a command whose Command Data Set Type is 0101H "
                "(no data set)"
            )
        return "data set fragment without a command set before it"

    def _fail(self, reason: str) -> NoReturn:
        self.discard()
        raise DIMSEError(reason)

    def _reset(self) -> None:
        self._context_id = None
        self._command_fragments = bytearray()
        self._command = None
        self._sink = None
