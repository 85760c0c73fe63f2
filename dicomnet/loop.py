"""The selector loop: sockets, timers, a wake-up socket and thread-safe ``call_soon``.

Event driven, no polling and no sleeps. One loop serves every connection of the process
(``DicomNet.Startup`` runs it on a thread) or is pumped by the application itself
(``run_once``). The loop owns every socket; the channels here are its only users:

* ``StreamChannel`` moves bytes between a socket (through its ``SecurityLayer``) and one
  protocol engine (anything shaped like ``ProtocolEngine``): ``recv_into`` straight into
  the engine's buffer, scatter-gather writes of whole queued PDUs, the engine's timer
  armed on the loop.
* ``ListenerChannel`` accepts connections on a listening socket (``open_listener``).
* ``ConnectAttempt`` connects without blocking, address after address
  (``resolve`` then ``open_connection``).

Nothing here knows DICOM beyond the small ``ProtocolEngine`` interface.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from .config import NetConfig
from .security.base import SecurityLayer
from .sendqueue import StreamError

log = logging.getLogger("dicomnet.loop")

# Bytes offered to one sendmsg: a mechanism bound (the kernel takes what fits), not policy.
_WRITE_PEEK = 1 << 20
# Connections accepted per readiness event, so a connection storm cannot starve the loop.
_ACCEPT_BATCH = 64
# accept() errors that end one pending connection only: the next one may succeed.
_ACCEPT_PEER_ERRORS = frozenset(
    {
        errno.ECONNABORTED,
        errno.ECONNRESET,
        errno.EPERM,  # a firewall rule refused this peer
        errno.EPROTO,
        errno.ENOPROTOOPT,
        errno.EOPNOTSUPP,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
    }
)
# Seconds the listener stops accepting after any other accept() error (out of descriptors
# or memory, mostly): the connection stays queued, so the socket stays readable and
# retrying at once would spin the loop until something else frees a descriptor.
_ACCEPT_BACKOFF = 0.1

AcceptCallback = Callable[[socket.socket, tuple[str, int]], None]
ConnectCallback = Callable[[socket.socket | None, OSError | None], None]


class OutgoingBytes(Protocol):
    """The writer's view of an engine's send queue (``sendqueue.SendQueue``)."""

    def __bool__(self) -> bool:
        """True while bytes wait to be written."""

    def peek(self, max_bytes: int) -> list[memoryview]:
        """Buffers at the head, about ``max_bytes`` in all; raises ``StreamError``."""

    def consume(self, written: int) -> list[tuple[int, int]]:
        """``written`` bytes went out; (PDU type, length) of each PDU now finished."""


class ProtocolEngine(Protocol):
    """What a ``StreamChannel`` needs from the protocol it carries.

    ``connection.Connection`` is the DICOM one. Times are the loop's monotonic clock.
    """

    @property
    def close_requested(self) -> bool:
        """True once the engine wants the transport closed (after a last flush)."""

    @property
    def send_queue(self) -> OutgoingBytes:
        """What to write: the channel peeks, writes and consumes."""

    def connection_made(self, now: float) -> None:
        """The transport (and its security layer) is up."""

    def connection_lost(self, now: float, description: str) -> None:
        """The transport closed or failed."""

    def get_buffer(self) -> memoryview:
        """Writable space for the next read. Only the loop thread touches the receive
        buffer, so this may be called without the lock senders take."""

    def buffer_updated(self, nbytes: int, now: float) -> None:
        """``nbytes`` were read into the buffer from ``get_buffer``."""

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must be called next, if ever."""

    def handle_timer(self, now: float) -> None:
        """A deadline from ``get_timer`` has come."""

    def stream_failed(self, failure: StreamError, now: float) -> None:
        """The send queue could not produce a queued stream (``peek`` raised)."""


def _nothing() -> None:
    pass


class TimerHandle:
    """A scheduled call; ``cancel`` makes it a no-op and lets go of the callback, so a
    cancelled timer still in the heap keeps nothing (a closed connection) alive."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = _nothing


class VirtualClock:
    """A clock for deterministic tests of timeouts over real sockets.

    Its time passes only when the loop it drives has nothing to do but wait for a timer:
    then it jumps to that timer, so a 30 s timeout takes no wall time and events happen
    in the order their deadlines say. Only for a manually pumped loop, where one thread
    does all the work (loopback writes are readable at once, so "nothing to do" is
    known). ``advance`` moves time on by hand; with ``jump=False`` that is the only way.
    """

    def __init__(self, start: float = 1000.0, *, jump: bool = True) -> None:
        self.now = start
        self.jump = jump

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class EventLoop:
    """A selector loop with timers and a thread-safe call queue; ``clock`` gives its
    monotonic time (``time.monotonic``, or a ``VirtualClock`` in tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
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
        self._runner: int | None = None  # the thread that ran the last iteration
        self._stopping = False
        self._closed = False

    def time(self) -> float:
        return self._clock()

    def in_loop_thread(self) -> bool:
        return self._thread_id == threading.get_ident()

    # -- scheduling --------------------------------------------------------------

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop thread soon. Safe from any thread.

        The thread that runs the loop (pumping it, in manual mode, between iterations
        too) needs no wake-up: its next iteration sees the call and does not wait."""
        with self._calls_lock:
            self._calls.append(callback)
        if threading.get_ident() != self._runner:
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
        self._thread_id = self._runner = threading.get_ident()
        try:
            self._iterate(timeout)
        finally:
            self._thread_id = owner

    def _iterate(self, timeout: float | None) -> None:
        timers = self._timers
        while timers and timers[0][2].cancelled:  # so waits are computed from live timers
            heapq.heappop(timers)
        virtual = isinstance(self._clock, VirtualClock)
        if self._calls or (virtual and self._timers):
            timeout = 0
        elif self._timers:
            delay = max(0.0, self._timers[0][0] - self.time())
            timeout = delay if timeout is None else min(timeout, delay)
        ready = self._selector.select(timeout)
        for key, mask in ready:
            if key.data is None:
                self._drain_wake()
            else:
                self._guarded(key.data, mask)
        if virtual and not ready and not self._calls and self._timers:
            assert isinstance(self._clock, VirtualClock)
            if self._clock.jump:
                self._clock.now = max(self._clock.now, self._timers[0][0])
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
    """Moves bytes between one socket and one protocol engine.

    Every call into the engine is made holding ``lock``: threads that send (``Send*``)
    drive the same engine, and a write (peek, send, consume) must not interleave with
    their changes to the send queue. Callbacks (``on_events``, ``on_sent``) run outside
    it. ``read_budget`` bounds the bytes read per readiness event before other
    connections get a turn (``NetConfig.read_budget``).
    """

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        layer: SecurityLayer,
        engine: ProtocolEngine,
        on_events: Callable[[], None],
        on_sent: Callable[[list[tuple[int, int]]], None] | None = None,
        on_secure: Callable[[Exception | None], None] | None = None,
        *,
        read_budget: int = NetConfig.read_budget,
        lock: threading.Lock | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.layer = layer
        self.engine = engine
        self.on_events = on_events
        self.on_sent = on_sent
        self.on_secure = on_secure
        self.read_budget = read_budget
        self._lock = lock or threading.Lock()
        self._secured = False
        self._write_blocked = False  # the last write left bytes the socket would not take
        # True while the channel handles a readiness event: what callbacks queue then is
        # written before the event is done, so nobody else needs to ask for a flush.
        self.in_turn = False
        self._timer: TimerHandle | None = None
        self._interest = 0
        self._closed = False
        self.handshake_timeout = handshake_timeout
        self._handshake_timer: TimerHandle | None = None
        self._read_again: TimerHandle | None = None
        self._peer_name = "the peer"
        self.failure: Exception | None = None
        """What broke the connection, when an exception did (the layer's, the socket's)."""

    def start(self, server_side: bool) -> None:
        """Register with the loop and begin the security handshake. Loop thread only."""
        self.layer.attach(self.sock, server_side)
        if self.on_secure is not None:  # named now: a peer that resets cannot be asked
            self._peer_name = _peer_name(self.sock)
        self._interest = selectors.EVENT_READ
        self.loop.register(self.sock, self._interest, self._on_ready)
        self._advance_handshake()
        if not self._secured and not self._closed and self.handshake_timeout is not None:
            self._handshake_timer = self.loop.call_at(
                self.loop.time() + self.handshake_timeout, self._on_handshake_timeout
            )

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

    def write_from_any_thread(self) -> bool:
        """Write what the engine queued, from the thread that queued it, without waking
        the loop. True when the loop has nothing left to do for it: everything went out,
        no stream failed and the armed timer still serves. ``on_sent`` is not called."""
        if self._closed or not self._secured:
            return False
        finished, failed, error = self._write_queued()
        if failed or error is not None:
            return False
        with self._lock:
            if self.engine.send_queue or self.engine.close_requested:
                return False
            deadline = self.engine.get_timer()
        timer = self._timer
        return deadline is None or (timer is not None and timer.when <= deadline)

    # -- readiness ---------------------------------------------------------------

    def _on_ready(self, mask: int) -> None:
        if self._closed:
            return
        if not self._secured:
            self._advance_handshake()
            return
        self.in_turn = True
        try:
            if mask & selectors.EVENT_READ:
                self._read()
            # What the reads made the engine and the callbacks queue goes out now, in
            # this same turn: no write interest to register and drop again per request.
            if not self._closed:
                self._write()
        finally:
            self.in_turn = False
        self._settle()

    def _advance_handshake(self) -> None:
        try:
            done = self.layer.handshake()
        except (BlockingIOError, InterruptedError):
            done = False
        except Exception as exc:  # a failed handshake ends this connection only
            self._handshake_failed(exc)
            return
        if not done:
            self._want(
                selectors.EVENT_READ | (selectors.EVENT_WRITE if self.layer.wants_write else 0)
            )
            return
        self._secured = True
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        if self.on_secure:
            self.on_secure(None)
        with self._lock:  # from here a sender thread may use the layer too
            self.engine.connection_made(self.loop.time())
            decoded = self.layer.pending()  # bytes that came with the handshake's end
        self.on_events()
        if decoded:
            self._read()
        self._settle()

    def _handshake_failed(self, exc: Exception) -> None:
        log.warning("security handshake with %s failed: %s", self._peer_name, exc)
        self.failure = exc
        if self.on_secure:
            self.on_secure(exc)
        self._lost(f"security handshake failed: {exc}")

    def _on_handshake_timeout(self) -> None:
        self._handshake_timer = None
        if self._closed or self._secured:
            return
        self._handshake_failed(
            TimeoutError(
                errno.ETIMEDOUT,
                f"the security handshake did not finish within {self.handshake_timeout:g} s",
            )
        )

    def _read(self) -> None:
        engine = self.engine
        budget = self.read_budget
        while budget > 0 and not engine.close_requested:
            # The receive buffer is the loop thread's alone; the layer needs the lock a
            # sender holds while it writes unless its two directions are independent.
            if self.layer.independent_directions:
                received = self._receive()
            else:
                with self._lock:
                    received = self._receive()
            if received is None:
                break
            n, space, error = received
            with self._lock:
                if n:
                    engine.buffer_updated(n, self.loop.time())
                more = self.layer.pending()
            if error is not None:
                self.failure = error
                self._lost(f"connection error: {error.strerror or error}")
                return
            if n == 0:
                self._lost("connection closed by peer")
                return
            self.on_events()
            budget -= n
            if n < space and not more:
                break

    def _receive(self) -> tuple[int, int, OSError | None] | None:
        """One read into the engine's buffer: (bytes read, room there was, the error that
        broke the connection); None when the socket has nothing now."""
        buffer = self.engine.get_buffer()
        space = len(buffer)
        try:
            return self.layer.recv_into(buffer), space, None
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return 0, space, exc
        finally:
            buffer.release()

    def _write(self) -> None:
        finished, failed, error = self._write_queued()
        if error is not None:
            self.failure = error
            self._lost(f"connection error while sending: {error.strerror or error}")
            return
        if failed:
            self.on_events()
        if finished and self.on_sent:
            self.on_sent(finished)

    def _write_queued(self) -> tuple[list[tuple[int, int]], bool, OSError | None]:
        """Write until the queue is empty or the socket full: (PDUs finished, whether a
        stream failed, the error that broke the connection)."""
        finished: list[tuple[int, int]] = []
        failed = False
        with self._lock:
            try:
                self.layer.flush()  # what the layer holds goes first
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                return finished, failed, exc
            queue = self.engine.send_queue
            while queue:
                try:
                    buffers = queue.peek(_WRITE_PEEK)
                except StreamError as failure:
                    # The engine decides how the stream ends (it queues what must follow).
                    self.engine.stream_failed(failure, self.loop.time())
                    failed = True
                    continue
                try:
                    n = self.layer.send(buffers)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                    return finished, failed, exc
                finished += queue.consume(n)
                # a partial write means the socket is full: the next send says so (EAGAIN)
            # Write readiness is worth watching only while the socket is full.
            self._write_blocked = bool(queue)
        return finished, failed, None

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
        with self._lock:
            pending = bool(engine.send_queue)
            deadline = engine.get_timer()
            decoded = self._secured and self.layer.pending()
        if decoded and self._read_again is None:
            # Bytes the layer decoded but the read budget left: the socket will not
            # signal them again, so the loop comes back for them itself.
            self._read_again = self.loop.call_at(self.loop.time(), self._on_read_again)
        want = selectors.EVENT_READ
        if (pending and self._write_blocked) or self.layer.wants_write:
            want |= selectors.EVENT_WRITE
        self._want(want)
        self._arm_timer(deadline)

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

    def _on_read_again(self) -> None:
        self._read_again = None
        self._on_ready(selectors.EVENT_READ)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        with self._lock:
            self.engine.handle_timer(self.loop.time())
        self.on_events()
        self.kick()

    def _lost(self, description: str) -> None:
        self._close_socket()
        with self._lock:
            self.engine.connection_lost(self.loop.time(), description)
        self.on_events()

    def _close_socket(self) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in (self._timer, self._handshake_timer, self._read_again):
            if timer is not None:
                timer.cancel()
        self._timer = self._handshake_timer = self._read_again = None
        self.loop.unregister(self.sock)
        try:
            with self._lock:  # a sender may be using the layer
                self.layer.close()
        except OSError:
            pass


# -- listening -------------------------------------------------------------------------


class ListenerChannel:
    """Accepts connections on a listening socket and hands each to ``on_accept``, with
    the peer's (host, port); an IPv4 peer of a dual-stack socket is named by its IPv4
    address.

    When accepting fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM...) the
    listener stops watching its socket for ``_ACCEPT_BACKOFF`` seconds and then tries
    again, until a connection is accepted: the waiting connections stay in the kernel's
    queue, other connections keep being served, and one warning is logged per episode.
    """

    def __init__(self, loop: EventLoop, sock: socket.socket, on_accept: AcceptCallback) -> None:
        self.loop = loop
        self.sock = sock
        self.on_accept = on_accept
        self.address: tuple[str, int] = _host_port(sock.getsockname())
        """The bound (host, port): the port the kernel chose when 0 was asked for."""
        self._resume: TimerHandle | None = None
        self._failing_since: float | None = None
        sock.setblocking(False)
        loop.register(sock, selectors.EVENT_READ, self._on_ready)

    def _on_ready(self, mask: int) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_PEER_ERRORS:
                    log.debug("accept failed for one connection: %s", exc)
                    continue
                self._back_off(exc)
                return
            if self._failing_since is not None:
                log.warning(
                    "accepting connections again after %.1f s",
                    self.loop.time() - self._failing_since,
                )
                self._failing_since = None
            configure_stream_socket(conn)
            self.on_accept(conn, _host_port(address))

    def _back_off(self, exc: OSError) -> None:
        if self._failing_since is None:
            self._failing_since = self.loop.time()
            log.warning(
                "accept failed: %s; retrying every %g s until it succeeds", exc, _ACCEPT_BACKOFF
            )
        self.loop.unregister(self.sock)
        self._resume = self.loop.call_at(self.loop.time() + _ACCEPT_BACKOFF, self._watch_again)

    def _watch_again(self) -> None:
        self._resume = None
        self.loop.register(self.sock, selectors.EVENT_READ, self._on_ready)

    def close(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        self.loop.unregister(self.sock)
        self.sock.close()


def open_listener(
    loop: EventLoop,
    host: str | None,
    port: int,
    backlog: int,
    *,
    ipv4: bool = True,
    ipv6: bool = False,
    on_accept: AcceptCallback,
) -> ListenerChannel:
    """Listen on ``host``:``port`` and accept through ``on_accept``. Loop thread only.

    ``host`` None, "" or "*" means every local address: of IPv4, of IPv6, or with both
    flags one dual-stack IPv6 socket that also takes IPv4 peers (falling back to IPv4
    alone where the system has no IPv6). Otherwise ``host`` is a local address (a name is
    looked up here, so pass a literal, e.g. from ``resolve``, to keep the loop from
    waiting on a resolver). Port 0 lets the kernel choose: read it from ``address``.
    Raises ``OSError`` (address in use, not local, not of an allowed family...).
    """
    family = _family(ipv4, ipv6)
    if host in (None, "", "*"):
        if ipv6:
            try:
                sock = _listening_socket(socket.AF_INET6, ("::", port), backlog, ipv4)
                return ListenerChannel(loop, sock, on_accept)
            except OSError as exc:
                # no IPv6 on this system: IPv4 alone still serves when it is allowed
                if not ipv4 or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                    raise
        sock = _listening_socket(socket.AF_INET, ("0.0.0.0", port), backlog, False)
        return ListenerChannel(loop, sock, on_accept)
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    return ListenerChannel(loop, _listening_socket(family, address, backlog, ipv4), on_accept)


def _listening_socket(
    family: int, address: tuple[Any, ...], backlog: int, dual_stack: bool
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # a restarted server must not wait for the old connections' TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # explicit, as the system default varies: IPv4 peers only when asked for
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind(address)
        sock.listen(max(1, backlog))
    except OSError:
        sock.close()
        raise
    return sock


# -- connecting ------------------------------------------------------------------------


class Endpoint(NamedTuple):
    """One address to connect to: its family and the address as ``connect`` takes it."""

    family: int
    address: tuple[Any, ...]


def resolve(host: str, port: int, *, ipv4: bool = True, ipv6: bool = False) -> list[Endpoint]:
    """The TCP addresses of ``host``:``port`` of the allowed families, best first.

    Blocks while the resolver works (it may ask DNS): call it in the caller's thread,
    not on the loop. Raises ``OSError`` (``socket.gaierror``) when nothing is found.
    """
    endpoints: list[Endpoint] = []
    for family, _, _, _, address in socket.getaddrinfo(
        host, port, _family(ipv4, ipv6), socket.SOCK_STREAM
    ):
        endpoint = Endpoint(family, address)
        if endpoint not in endpoints:
            endpoints.append(endpoint)
    return endpoints


def open_connection(
    loop: EventLoop,
    endpoints: Sequence[Endpoint],
    *,
    local_host: str | None = None,
    local_port: int = 0,
    timeout: float | None,
    on_done: ConnectCallback,
) -> ConnectAttempt:
    """Connect to the first of ``endpoints`` that answers, within ``timeout`` seconds
    in all; ``on_done(sock, None)`` or ``on_done(None, error)`` reports it on the loop.
    Loop thread only.

    With ``local_host`` or ``local_port`` the socket is bound there first. An address
    the local binding cannot serve is skipped; if none can, the first binding error is
    raised here (``OSError``), as is an empty ``endpoints``.
    """
    local = (local_host or "", local_port) if local_host or local_port else None
    remaining = deque(endpoints)
    first_error: OSError | None = None
    while remaining:
        endpoint = remaining.popleft()
        try:
            sock = _client_socket(endpoint.family, local)
        except OSError as exc:
            first_error = first_error or exc
            continue
        return ConnectAttempt(
            loop, sock, endpoint.address, timeout, on_done, fallbacks=remaining, local=local
        )
    raise first_error or OSError(errno.EDESTADDRREQ, "no address to connect to")


def _client_socket(family: int, local: tuple[str, int] | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if local is not None:
            sock.bind(local)
    except OSError:
        sock.close()
        raise
    return sock


class ConnectAttempt:
    """A non-blocking TCP connect with one overall timeout; on a refusal or error it goes
    on with the next of ``fallbacks``. Reports a connected socket or the last error."""

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        address: tuple[Any, ...],
        timeout: float | None,
        on_done: ConnectCallback,
        *,
        fallbacks: Sequence[Endpoint] = (),
        local: tuple[str, int] | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.on_done = on_done
        self._fallbacks = deque(fallbacks)
        self._local = local
        self._finished = False
        self._timer = (
            loop.call_at(loop.time() + timeout, self._on_timeout) if timeout is not None else None
        )
        self._start(address)

    def cancel(self) -> None:
        self._finish(OSError(errno.ECANCELED, "connect cancelled"))

    def _start(self, address: tuple[Any, ...]) -> None:
        configure_stream_socket(self.sock)
        code = self.sock.connect_ex(address)
        if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            self.loop.register(self.sock, selectors.EVENT_WRITE, self._on_ready)
            return
        # Settled at once: report from the loop, never from inside the caller.
        error = OSError(code, os.strerror(code)) if code else None
        sock = self.sock
        self.loop.call_soon(lambda: self._settled(sock, error))

    def _on_ready(self, mask: int) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._settled(self.sock, OSError(code, os.strerror(code)) if code else None)

    def _settled(self, sock: socket.socket, error: OSError | None) -> None:
        if self._finished or sock is not self.sock:
            return
        while error is not None and self._fallbacks:
            endpoint = self._fallbacks.popleft()
            try:
                replacement = _client_socket(endpoint.family, self._local)
            except OSError as exc:
                error = exc
                continue
            self.loop.unregister(self.sock)
            self.sock.close()
            self.sock = replacement
            self._start(endpoint.address)
            return
        self._finish(error)

    def _on_timeout(self) -> None:
        self._timer = None
        self._finish(TimeoutError(errno.ETIMEDOUT, "connection timed out"))

    def _finish(self, error: OSError | None) -> None:
        if self._finished:
            return
        self._finished = True
        self.loop.unregister(self.sock)
        if self._timer is not None:
            self._timer.cancel()
        if error is not None:
            self.sock.close()
            self.on_done(None, error)
        else:
            self.on_done(self.sock, None)


def _family(ipv4: bool, ipv6: bool) -> int:
    if ipv4 and ipv6:
        return socket.AF_UNSPEC
    if ipv6:
        return socket.AF_INET6
    if ipv4:
        return socket.AF_INET
    raise ValueError("at least one of ipv4 and ipv6 must be allowed")


def _peer_name(sock: socket.socket) -> str:
    try:
        host, port = _host_port(sock.getpeername())
    except OSError:
        return "the peer"
    return f"{host}:{port}"


def _host_port(address: tuple[Any, ...]) -> tuple[str, int]:
    """(host, port) of a socket address; an IPv4-mapped IPv6 host as plain IPv4."""
    host, port = address[0], address[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:") :]
    return host, port
