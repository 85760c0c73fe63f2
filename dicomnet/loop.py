"""The selector loop: sockets, timers, a wake-up socket and thread-safe ``call_soon``.

Event driven, no polling and no sleeps. One loop serves every connection of the process
(``DicomNet.Startup`` runs it on a thread) or is pumped by the application itself
(``run_once``). Two channel types live here:

* ``StreamChannel`` moves bytes between a socket (through its ``SecurityLayer``) and one
  protocol engine (``connection.Connection``): ``recv_into`` straight into the engine's
  buffer, scatter-gather writes of whole queued PDUs, the engine's timer armed on the loop.
* ``ListenerChannel`` accepts connections on a listening socket.

Nothing here knows DICOM beyond the engine's small interface.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .connection import Connection
from .security.base import SecurityLayer

log = logging.getLogger("dicomnet.loop")

_READ_BUDGET = 8 << 20  # bytes read per readiness event before giving others a turn
_WRITE_PEEK = 1 << 20  # bytes offered to one sendmsg


class TimerHandle:
    """A scheduled call; ``cancel`` makes it a no-op."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class EventLoop:
    """A selector loop with timers and a thread-safe call queue."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: deque[Callable[[], None]] = deque()
        self._calls_lock = threading.Lock()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._thread_id: int | None = None
        self._stopping = False
        self._closed = False

    @staticmethod
    def time() -> float:
        return time.monotonic()

    def in_loop_thread(self) -> bool:
        return self._thread_id == threading.get_ident()

    @property
    def is_running(self) -> bool:
        return self._thread_id is not None

    # -- scheduling --------------------------------------------------------------

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop thread soon. Safe from any thread."""
        with self._calls_lock:
            self._calls.append(callback)
        if not self.in_loop_thread():
            self._wake()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` at monotonic time ``when``. Loop thread only."""
        handle = TimerHandle(when, callback)
        heapq.heappush(self._timers, (when, next(self._timer_seq), handle))
        return handle

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken (buffer full) or closing

    # -- registration ------------------------------------------------------------

    def register(self, sock: socket.socket, events: int, handler: Callable[[int], None]) -> None:
        self._selector.register(sock, events, handler)

    def modify(self, sock: socket.socket, events: int, handler: Callable[[int], None]) -> None:
        self._selector.modify(sock, events, handler)

    def unregister(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    # -- running -----------------------------------------------------------------

    def run_forever(self) -> None:
        self._stopping = False
        while not self._stopping:
            self.run_once(None)

    def stop(self) -> None:
        """Make ``run_forever`` return after the current iteration. Safe from any thread."""

        def _stop() -> None:
            self._stopping = True

        self.call_soon(_stop)

    def run_once(self, timeout: float | None = None) -> None:
        """One iteration: wait for I/O (at most ``timeout``), then run what is due."""
        owner = self._thread_id
        self._thread_id = threading.get_ident()
        try:
            self._iterate(timeout)
        finally:
            self._thread_id = owner

    def _iterate(self, timeout: float | None) -> None:
        if self._calls:
            timeout = 0
        elif self._timers:
            delay = max(0.0, self._timers[0][0] - self.time())
            timeout = delay if timeout is None else min(timeout, delay)
        for key, mask in self._selector.select(timeout):
            if key.data is None:
                self._drain_wake()
            else:
                self._guarded(key.data, mask)
        now = self.time()
        while self._timers and self._timers[0][0] <= now:
            _, _, handle = heapq.heappop(self._timers)
            if not handle.cancelled:
                self._guarded(handle.callback)
        while self._calls:
            with self._calls_lock:
                batch = list(self._calls)
                self._calls.clear()
            for callback in batch:
                self._guarded(callback)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    @staticmethod
    def _guarded(callback: Callable[..., None], *args: Any) -> None:
        """Run a callback; a bug in one connection's code must not stop the loop."""
        try:
            callback(*args)
        except Exception:
            log.exception("unhandled error in loop callback %r", callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def configure_stream_socket(sock: socket.socket) -> None:
    """Non-blocking with Nagle off: DICOM is request/response, small PDUs must not wait."""
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StreamChannel:
    """Moves bytes between one socket and one protocol engine."""

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        layer: SecurityLayer,
        engine: Connection,
        on_events: Callable[[], None],
        on_sent: Callable[[list[tuple[int, int]]], None] | None = None,
        on_secure: Callable[[Exception | None], None] | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.layer = layer
        self.engine = engine
        self.on_events = on_events
        self.on_sent = on_sent
        self.on_secure = on_secure
        self._secured = False
        self._timer: TimerHandle | None = None
        self._interest = 0
        self._closed = False

    def start(self, server_side: bool) -> None:
        """Register with the loop and begin the security handshake. Loop thread only."""
        self.layer.attach(self.sock, server_side)
        self._interest = selectors.EVENT_READ
        self.loop.register(self.sock, self._interest, self._on_ready)
        self._advance_handshake()

    @property
    def closed(self) -> bool:
        return self._closed

    def kick(self) -> None:
        """The engine may have new output, timers or a close request: act on them."""
        if self._closed:
            return
        if self._secured:
            self._write()
        self._settle()

    # -- readiness ---------------------------------------------------------------

    def _on_ready(self, mask: int) -> None:
        if self._closed:
            return
        if not self._secured:
            self._advance_handshake()
            return
        if mask & selectors.EVENT_READ:
            self._read()
        if mask & selectors.EVENT_WRITE and not self._closed:
            self._write()
        self._settle()

    def _advance_handshake(self) -> None:
        try:
            done = self.layer.handshake()
        except (BlockingIOError, InterruptedError):
            done = False
        except Exception as exc:  # a failed handshake ends this connection only
            log.warning("security handshake failed: %s", exc)
            if self.on_secure:
                self.on_secure(exc)
            self._lost(f"security handshake failed: {exc}")
            return
        if not done:
            self._want(
                selectors.EVENT_READ | (selectors.EVENT_WRITE if self.layer.wants_write else 0)
            )
            return
        self._secured = True
        if self.on_secure:
            self.on_secure(None)
        self.engine.connection_made(self.loop.time())
        self.on_events()
        if self.layer.pending():
            self._read()
        self._settle()

    def _read(self) -> None:
        engine = self.engine
        budget = _READ_BUDGET
        while budget > 0 and not engine.close_requested:
            buffer = engine.get_buffer()
            space = len(buffer)
            try:
                n = self.layer.recv_into(buffer)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._lost(f"connection error: {exc.strerror or exc}")
                return
            finally:
                buffer.release()
            if n == 0:
                self._lost("connection closed by peer")
                return
            engine.buffer_updated(n, self.loop.time())
            self.on_events()
            budget -= n
            if n < space and not self.layer.pending():
                break

    def _write(self) -> None:
        queue = self.engine.send_queue
        while queue:
            buffers = queue.peek(_WRITE_PEEK)
            try:
                n = self.layer.send(buffers)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                self._lost(f"connection error while sending: {exc.strerror or exc}")
                return
            finished = queue.consume(n)
            if finished and self.on_sent:
                self.on_sent(finished)
            # a partial write means the socket is full: the next send says so (EAGAIN)

    def _settle(self) -> None:
        """After any activity: close if asked, else fix interest and the engine's timer."""
        if self._closed:
            return
        engine = self.engine
        if engine.close_requested:
            if self._secured:
                self._write()  # best effort: a final A-ABORT or A-RELEASE-RP
            self._close_socket()
            self.on_events()
            return
        want = selectors.EVENT_READ
        if engine.send_queue or self.layer.wants_write:
            want |= selectors.EVENT_WRITE
        self._want(want)
        self._arm_timer(engine.get_timer())

    def _want(self, interest: int) -> None:
        if interest != self._interest and not self._closed:
            self._interest = interest
            self.loop.modify(self.sock, interest, self._on_ready)

    def _arm_timer(self, deadline: float | None) -> None:
        if self._timer is not None:
            # A timer due no later than the new deadline stays: when it fires early the
            # engine finds nothing due and the timer is armed again. So an idle timeout
            # pushed back on every receive does not fill the heap with cancelled timers.
            if deadline is not None and self._timer.when <= deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        self.engine.handle_timer(self.loop.time())
        self.on_events()
        self.kick()

    def _lost(self, description: str) -> None:
        self._close_socket()
        self.engine.connection_lost(self.loop.time(), description)
        self.on_events()

    def _close_socket(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.loop.unregister(self.sock)
        try:
            self.layer.close()
        except OSError:
            pass


class ListenerChannel:
    """Accepts connections on a listening socket and hands each to ``on_accept``."""

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        on_accept: Callable[[socket.socket, tuple[str, int]], None],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.on_accept = on_accept
        sock.setblocking(False)
        loop.register(sock, selectors.EVENT_READ, self._on_ready)

    def _on_ready(self, mask: int) -> None:
        for _ in range(64):  # bounded, so a connection storm cannot starve the loop
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            configure_stream_socket(conn)
            self.on_accept(conn, address[:2])

    def close(self) -> None:
        self.loop.unregister(self.sock)
        self.sock.close()


class ConnectAttempt:
    """A non-blocking TCP connect with a timeout; reports a socket or an error."""

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        address: tuple[Any, ...],
        timeout: float | None,
        on_done: Callable[[socket.socket | None, OSError | None], None],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.on_done = on_done
        self._finished = False
        configure_stream_socket(sock)
        code = sock.connect_ex(address)
        if code == 0:
            loop.call_soon(lambda: self._finish(None))
            return
        if code not in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            loop.call_soon(lambda: self._finish(OSError(code, _strerror(code))))
            return
        loop.register(sock, selectors.EVENT_WRITE, self._on_ready)
        self._timer = (
            loop.call_at(loop.time() + timeout, self._on_timeout) if timeout is not None else None
        )

    def _on_ready(self, mask: int) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._finish(OSError(code, _strerror(code)) if code else None)

    def _on_timeout(self) -> None:
        self._finish(TimeoutError(errno.ETIMEDOUT, "connection timed out"))

    def cancel(self) -> None:
        self._finish(OSError(errno.ECANCELED, "connect cancelled"))

    def _finish(self, error: OSError | None) -> None:
        if self._finished:
            return
        self._finished = True
        self.loop.unregister(self.sock)
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
        if error is not None:
            self.sock.close()
            self.on_done(None, error)
        else:
            self.on_done(self.sock, None)


def _strerror(code: int) -> str:
    import os

    return os.strerror(code)
