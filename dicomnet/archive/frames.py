"""What an archive and its store process (``StoreProcess``) say to each other, over a
stream socket pair: pickled messages, each framed by its length (4 bytes, big-endian).

The archive sends the ``StoreSettings`` first, then a ``Request`` per instance; the
store process answers ``Ready`` once it reconciled (or ``StartFailed``), then a
``Results`` for each batch it stored, the log lines of its work in ``Logged`` before
them. Pickle is safe here: both ends are this package, and no other process holds the
socket pair.
"""

from __future__ import annotations

import pickle
import struct
from typing import NamedTuple

from .store import Received, ReconcileReport, StoreOutcome

_LENGTH = struct.Struct(">I")


class Request(NamedTuple):
    number: int  # the archive's own, to match the result
    received: Received


class Ready(NamedTuple):
    report: ReconcileReport


class StartFailed(NamedTuple):
    reason: str


class Results(NamedTuple):
    outcomes: list[tuple[int, StoreOutcome]]  # (request number, outcome)


class LogLine(NamedTuple):
    logger: str
    level: int
    message: str  # with the traceback, if any


class Logged(NamedTuple):
    lines: list[LogLine]


def frame(message: object) -> bytes:
    """``message`` as one frame."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Bytes in (``feed``), whole messages out (``messages``)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def messages(self) -> list[object]:
        """The messages complete so far, in order; a partial frame stays for later."""
        found: list[object] = []
        start, buffer = 0, self._buffer
        while len(buffer) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, start)
            end = start + _LENGTH.size + length
            if end > len(buffer):
                break
            found.append(pickle.loads(buffer[start + _LENGTH.size : end]))
            start = end
        del buffer[:start]
        return found
