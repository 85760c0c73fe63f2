"""The store process's side of ``StoreProcess``: ``python -m dicomnet.archive.worker FD``,
FD its end of the socket pair (see ``frames`` for what goes over it).

It opens the index, reconciles what an earlier store process left unfinished, then
stores what arrives, everything that waits together in one ``Archive.store_many``,
until the archive's end of the socket closes: then it stores what it has and exits.
So a store the archive handed over is finished even when the archive is killed (its
requestor gets no answer, as when the archive dies after any commit). Interrupts and
SIGTERM are ignored: they reach the whole process group, and the archive ends this
process by closing the socket once it has handed over the last store.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import traceback

from .frames import FrameReader, Logged, LogLine, Ready, Request, Results, StartFailed, frame
from .process import StoreSettings
from .queue import store_all
from .store import Archive
from .url import open_index

_READ_SIZE = 1 << 16


class _Collector(logging.Handler):
    """Keeps the log lines of this process's work for the archive to log."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[LogLine] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        self.lines.append(LogLine(record.name, record.levelno, message))

    def take(self) -> list[bytes]:
        """The frame of the lines kept since the last call (none when there are none)."""
        lines, self.lines = self.lines, []
        return [frame(Logged(lines))] if lines else []


class _Link:
    """This process's end of the socket pair: messages in, frames out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.incoming: list[object] = []
        self.open = True  # the archive may send more
        self.gone = False  # the archive's end is closed: what is stored stays unanswered
        self._reader = FrameReader()

    def receive(self, wait: bool) -> bool:
        """Read what has arrived (with ``wait``, block until something does); whether
        anything did. At the end of the stream ``open`` turns False."""
        try:  # not waiting is a flag of this read, not a mode switch (two fcntl calls)
            data = self.sock.recv(_READ_SIZE, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.open = False
            return False
        self._reader.feed(data)
        self.incoming.extend(self._reader.messages())
        return True

    def send(self, frames: list[bytes]) -> None:
        if self.gone:
            return
        try:
            self.sock.sendall(b"".join(frames))
        except (BrokenPipeError, ConnectionResetError):
            self.gone = True


def serve(link: _Link) -> None:
    while link.open and not link.incoming:
        link.receive(wait=True)
    if not link.incoming:
        return
    settings = link.incoming.pop(0)
    if not isinstance(settings, StoreSettings):
        raise TypeError(f"a store process starts with its StoreSettings, not {settings!r}")
    collector = _Collector()
    logging.basicConfig(level=settings.log_level, handlers=[collector], force=True)
    try:
        index = open_index(settings.index_url, settings.index_config)
    except Exception as exc:  # whatever the database driver raises
        link.send([*collector.take(), frame(StartFailed(str(exc)))])
        return
    try:
        archive = Archive(settings.root, index, settings.policy, settings.power_loss_safe)
        link.send([*collector.take(), frame(Ready(archive.reconcile()))])
        while link.open or link.incoming:
            if not link.incoming:
                link.receive(wait=True)
                continue
            while link.open and len(link.incoming) < settings.max_batch:
                if not link.receive(wait=False):  # all that waits together, one batch
                    break
            batch = link.incoming[: settings.max_batch]
            del link.incoming[: settings.max_batch]
            requests = [request for request in batch if isinstance(request, Request)]
            outcomes = store_all(archive, [request.received for request in requests])
            results = Results([(r.number, o) for r, o in zip(requests, outcomes, strict=True)])
            link.send([*collector.take(), frame(results)])
    finally:
        index.close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with socket.socket(fileno=int(argv[1])) as sock:
        serve(_Link(sock))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
