"""``DicomNet``: the LEADTOOLS event-callback API, a thin adapter over the DIMSE session.

One ``DicomNet`` is one TCP connection or one listener, as in LEADTOOLS. Applications
subclass it and override ``On*`` callbacks, or subscribe to the blinker signal of the same
name (``dicomnet.signals``); every default ``On*`` sends that signal. Callbacks run on the
loop thread, in order per connection, and must not block (use
``DicomNet.run_in_background`` for slow work, then ``Send*`` the answer).

Data flows one way. Received bytes go loop -> session (engine inside) -> events ->
``_drain`` -> ``On*``. ``Send*`` builds its command set and encodes its data set in the
caller's thread, hands the message to the session under the connection's lock (so errors
are raised to the caller, as LEADTOOLS does) and asks the loop to flush the connection;
the loop writes once per iteration, never inside a callback. A sending thread is held
back while too many messages wait to be sent.

Dispatch order for each received message, as LEADTOOLS documents it: ``OnReceive`` (raw
PDU), ``OnReceiveData`` (command set and data set), then the typed ``OnReceiveXxx``.

Outside the LEADTOOLS surface, the blocking helpers (``wait_connected``,
``wait_associated``, ``wait_response``, ``wait_released``, ``wait_closed``) let a script
wait for an outcome without an event loop of its own; they raise ``DicomException``
(``AssociationRejected``, ``AssociationAborted``) on reject, abort and timeout, and refuse
to run on the loop thread, where they would deadlock.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, cast

from . import events as ev
from . import runtime, signals
from .associate import DicomAssociate
from .config import NetConfig
from .dimse.commands import command_to_dataset, dataset_to_command
from .dimse.messages import MessageSpec
from .enums import (
    DicomAbortReasonType,
    DicomAbortSourceType,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomNetIpTypeFlags,
    DicomNetSecurityMode,
    DicomPduType,
    describe_reject,
    enum_member,
)
from .errors import AssociationRejected, DicomException, DicomExceptionCode
from .loop import (
    ConnectAttempt,
    EventLoop,
    ListenerChannel,
    StreamChannel,
    VirtualClock,
    open_connection,
    open_listener,
    resolve,
)
from .outcome import ConnectionOutcome
from .pdu import AssociateRJ
from .response import Response
from .security import PlainLayer, SecurityLayer
from .security.settings import DicomOpenSslContextCreationSettings
from .security.tls_surface import TlsSurface
from .sendqueue import SendQueue
from .services import DimseServices
from .session import (
    AssociationAccepted,
    AssociationRequested,
    DimseReceived,
    DimseSession,
    RequestFailed,
    ResponseTimedOut,
)
from .timeouts import Timeouts

if TYPE_CHECKING:  # annotations only: pydicom loads when a data set is made
    from pydicom import Dataset

log = logging.getLogger("dicomnet.net")

_OK = DicomExceptionCode.Success


class DicomNet(TlsSurface, DimseServices):
    """A DICOM network connection (or listener) with LEADTOOLS' methods and callbacks."""

    # -- process-wide ----------------------------------------------------------------

    @staticmethod
    def Startup(threaded: bool = True, *, clock: VirtualClock | None = None) -> None:
        """Start the network engine once per process (reference counted).

        ``threaded=False`` leaves the loop to the application: call ``DicomNet.pump``.
        With it, ``clock`` puts the loop on a ``VirtualClock``: time jumps to the next
        timer whenever nothing else can happen, so timeouts are tested without waiting.
        """
        runtime.startup(threaded, clock)

    @staticmethod
    def Shutdown() -> None:
        """Pair of ``Startup``; the last call stops the loop."""
        runtime.shutdown()

    @staticmethod
    def run_in_background(function: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run slow work off the loop thread (a callback must not block); the work may
        then ``Send*`` its answer, which is safe from any thread."""
        return runtime.run_in_background(function, *args)

    @staticmethod
    def pump(timeout: float | None = 0.0) -> None:
        """Manual mode: run one loop iteration, waiting at most ``timeout`` for I/O."""
        runtime.pump(timeout)

    # -- construction ----------------------------------------------------------------

    def __init__(
        self,
        temporary_directory: str | None = None,
        security_mode: DicomNetSecurityMode = DicomNetSecurityMode.None_,
        reserved: bool | DicomOpenSslContextCreationSettings = False,
        *,
        timeouts: Timeouts | None = None,
        config: NetConfig | None = None,
    ) -> None:
        # LEADTOOLS' high-level classes take the TLS settings in the third place.
        settings = reserved if isinstance(reserved, DicomOpenSslContextCreationSettings) else None
        self.Initialize(temporary_directory, security_mode, settings)
        config = config or NetConfig()
        self.config = dataclasses.replace(config, timeouts=timeouts) if timeouts else config
        self._session: DimseSession | None = None
        self._loop: EventLoop | None = None  # the loop this connection lives on
        self._lock = threading.Lock()  # the session is driven by the loop and by senders
        self._flush_scheduled = False
        self._throttled = 0  # threads held back by _throttle
        self._channel: StreamChannel | None = None
        self._listener: ListenerChannel | None = None
        self._connecting: ConnectAttempt | None = None
        self._server: DicomNet | None = None
        self._clients: list[DicomNet] = []
        self._pending_sockets: deque[tuple[socket.socket, tuple[str, int]]] = deque()
        self._host: tuple[str, int] = ("", 0)
        self._peer: tuple[str, int] = ("", 0)
        self._ip_type = DicomNetIpTypeFlags.Ipv4
        self._outcome = ConnectionOutcome(self.config.kept_responses)
        self._timed_out = False
        self._received_file: str | None = None
        self._received_file_taken = False
        self._parse_received_data = True

    def Initialize(
        self,
        temporary_directory: str | None,
        mode: DicomNetSecurityMode,
        settings: object | None = None,
    ) -> None:
        """Set the temp folder and security mode (LEADTOOLS ``Initialize``); with
        ``Tls``, ``settings`` is a ``DicomOpenSslContextCreationSettings`` (None: the
        defaults, PS3.15's non-downgrading BCP 195 profile)."""
        self._initialize_security(mode, settings)
        self._temp_path = temporary_directory
        self._security_mode = mode

    def _make_security_layer(self, server_side: bool) -> SecurityLayer:
        if self._tls is None:
            return PlainLayer()
        return self._tls_layer(server_side)

    # -- properties and state --------------------------------------------------------

    @property
    def temp_path(self) -> str | None:
        return self._temp_path

    @property
    def timeouts(self) -> Timeouts:
        return self.config.timeouts

    @property
    def SecurityMode(self) -> DicomNetSecurityMode:
        return self._security_mode

    @property
    def IpType(self) -> DicomNetIpTypeFlags:
        return self._ip_type

    @property
    def Association(self) -> DicomAssociate | None:
        """The association: the request until the accept is sent/received, then the accept
        (with each context's abstract syntax filled in from the request)."""
        return self._session.association if self._session else None

    @property
    def HostAddress(self) -> str:
        return self._host[0]

    @property
    def HostPort(self) -> int:
        return self._host[1]

    @property
    def PeerAddress(self) -> str:
        return self._peer[0]

    @property
    def PeerPort(self) -> int:
        return self._peer[1]

    @property
    def Server(self) -> DicomNet | None:
        """The listener this connection was accepted on, if any."""
        return self._server

    @property
    def parse_received_data(self) -> bool:
        """Received C-STORE data: parsed into a Dataset for ``OnReceiveCStoreRequest``
        (True, the default), or None with the Part-10 spool file at ``received_file``."""
        return self._parse_received_data

    @parse_received_data.setter
    def parse_received_data(self, value: bool) -> None:
        self._parse_received_data = value
        if self._session is not None:
            self._session.parse_received_data = value

    @property
    def received_file(self) -> str | None:
        """During ``OnReceiveCStoreRequest``: the received instance as a Part-10 file.
        Move it (``os.replace``) to keep it; otherwise it is deleted afterwards (see
        ``take_received_file``)."""
        return self._received_file

    def take_received_file(self) -> str | None:
        """During ``OnReceiveCStoreRequest``: ``received_file``, now the caller's to move
        or delete (for a store finished after the callback returns); it is not deleted
        afterwards. None when there is none."""
        self._received_file_taken = self._received_file is not None
        return self._received_file

    @property
    def end_description(self) -> str:
        """Why the connection ended, in words (empty while it is open)."""
        return self._outcome.end_description

    def IsConnected(self) -> bool:
        return self._channel is not None and not self._channel.closed

    def IsAssociated(self) -> bool:
        session = self._session
        return session is not None and session.is_associated and self.IsConnected()

    def IsActivated(self) -> bool:
        """True while listening or connected (or connecting)."""
        return self._listener is not None or self._connecting is not None or self.IsConnected()

    def GetClientCount(self) -> int:
        return len(self._clients)

    def GetClient(self, index: int) -> DicomNet:
        return self._clients[index]

    def next_message_id(self) -> int:
        """A fresh message ID (1..65535, wrapping) for this connection's requests."""
        session = self._require_session()
        with self._lock:
            return session.next_message_id()

    # -- connection management -------------------------------------------------------

    def Listen(
        self,
        host_address: str | None,
        host_port: int,
        max_number_of_peers: int = 32,
        ip_type: DicomNetIpTypeFlags = DicomNetIpTypeFlags.Ipv4,
    ) -> None:
        """Listen for peers. ``host_address`` None, "" or "*" means every local address
        (of IPv4, IPv6 or both, as ``ip_type`` says); port 0 picks a free port (read it
        back from ``HostPort``). ``max_number_of_peers`` is the kernel's backlog of
        connections not yet accepted, at least ``config.listen_backlog``."""
        self._check_idle("Listen")
        self._prepare_tls(server_side=True)
        loop = runtime.get_loop()
        backlog = max(max_number_of_peers, self.config.listen_backlog)
        ipv4, ipv6 = _families(ip_type)

        def start() -> ListenerChannel:
            return open_listener(
                loop,
                host_address,
                host_port,
                backlog,
                ipv4=ipv4,
                ipv6=ipv6,
                on_accept=self._on_socket_accepted,
            )

        try:
            self._listener = runtime.run_on_loop(start)
        except OSError as exc:
            where = f"{host_address or '*'}:{host_port}"
            raise _socket_error(exc, f"cannot listen on {where}") from exc
        self._loop, self._ip_type = loop, ip_type
        self._host = self._listener.address
        log.info("listening on %s:%d", *self._host)

    def Connect(
        self,
        host_address: str | None,
        host_port: int,
        peer_address: str,
        peer_port: int,
        ip_type: DicomNetIpTypeFlags = DicomNetIpTypeFlags.Ipv4,
    ) -> None:
        """Open a connection to a peer; ``OnConnect`` reports the outcome. The peer's name
        is resolved in the caller's thread; the loop creates and connects the socket."""
        self._check_idle("Connect")
        self._prepare_tls(server_side=False)
        loop = runtime.get_loop()
        ipv4, ipv6 = _families(ip_type)
        try:
            endpoints = resolve(peer_address, peer_port, ipv4=ipv4, ipv6=ipv6)
        except OSError as exc:
            raise DicomException(
                DicomExceptionCode.NetHostNotFound, f"cannot resolve {peer_address}: {exc}"
            ) from exc
        self._loop, self._ip_type = loop, ip_type
        self._peer = (peer_address, peer_port)
        self._outcome.set(connect_result=None)

        def start() -> None:
            self._connecting = open_connection(
                loop,
                endpoints,
                local_host=host_address,
                local_port=host_port,
                timeout=self.timeouts.connect,
                on_done=self._on_connected,
            )

        try:
            runtime.run_on_loop(start)
        except OSError as exc:
            raise _socket_error(exc, f"cannot bind {host_address}:{host_port}") from exc

    def Accept(self, net: DicomNet) -> None:
        """Accept the pending connection into ``net`` (call from ``OnAccept``)."""
        if not self._pending_sockets:
            raise DicomException(DicomExceptionCode.NetNoData, "no connection waiting for Accept")
        sock, address = self._pending_sockets.popleft()
        net._borrow_tls(self)
        net._server = self
        self._clients.append(net)
        runtime.run_on_loop(lambda: net._attach(sock, address, is_requestor=False))

    def Close(self) -> None:
        """Close the connection (or stop listening) without any PDU."""
        runtime.run_on_loop(self._close_now)

    def CloseForced(self, forced: bool = True) -> None:
        """Close now; ``OnClose`` is raised as for any close. dicomnet never lingers on a
        close, so ``forced`` changes nothing (kept for LEADTOOLS' signature)."""
        self.Close()

    def Dispose(self) -> None:
        """Close and drop every connection this object owns (LEADTOOLS IDisposable)."""
        self.Close()
        for client in list(self._clients):
            client.Close()

    def __enter__(self) -> DicomNet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.Dispose()

    def _close_now(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._connecting is not None:
            self._connecting.cancel()
        session = self._session
        if session is not None and not session.is_closed:
            with self._lock:
                session.close()
            self._flush_soon()

    def _check_idle(self, what: str) -> None:
        if self.IsActivated():
            raise DicomException(
                DicomExceptionCode.NetSocketAlreadyConnected,
                f"{what}: this DicomNet is already connected or listening",
            )

    # -- association and release -----------------------------------------------------

    def SendAssociateRequest(self, associate: DicomAssociate) -> None:
        self._submit(lambda session, now: session.send_associate_rq(associate, now))

    def SendAssociateAccept(self, associate: DicomAssociate) -> None:
        self._submit(lambda session, now: session.send_associate_ac(associate, now))

    def SendAssociateReject(
        self,
        result: DicomAssociateRejectResultType,
        source: DicomAssociateRejectSourceType,
        reason: DicomAssociateRejectReasonType,
    ) -> None:
        rj = AssociateRJ(int(result), int(source), int(reason))
        self._submit(lambda session, now: session.send_associate_rj(rj, now))

    def SendReleaseRequest(self) -> None:
        self._submit(lambda session, now: session.send_release_rq(now))

    def SendReleaseResponse(self) -> None:
        self._submit(lambda session, now: session.send_release_rp(now))

    def SendAbort(
        self,
        source: DicomAbortSourceType = DicomAbortSourceType.User,
        reason: DicomAbortReasonType = DicomAbortReasonType.Unknown,
    ) -> None:
        self._submit(lambda session, now: session.send_abort(int(source), int(reason), now))

    # -- DIMSE -----------------------------------------------------------------------

    def SendData(
        self, presentation_id: int, command_set: Dataset, data_set: Dataset | None
    ) -> None:
        """Send a caller-built command set (and optional data set bytes via pydicom)."""
        self._send_command(presentation_id, dataset_to_command(command_set), data_set)

    def _send_dimse(self, spec: MessageSpec, arguments: Mapping[str, Any]) -> None:
        data_set = arguments.get("data_set")
        command = spec.encode(arguments, data_set is not None)
        command.update(arguments.get("extra") or {})
        self._send_command(int(arguments["presentation_id"]), command, data_set)

    def _send_command(
        self, presentation_id: int, command: dict[str, object], data_set: Any
    ) -> None:
        """The data set is encoded (or the file's header read) in the caller's thread;
        only the checks and the queueing happen under the connection's lock."""
        session = self._require_session()
        data = session.prepare_data(presentation_id, command, data_set)
        # Large data sets stream from the loop thread alone: spread over two threads,
        # their read buffers would grow two allocator arenas.
        small = data is None or data.length <= self.config.direct_write_limit
        self._submit(
            lambda session, now: session.send(presentation_id, command, data, now),
            write_here=small,
        )

    # -- callbacks (defaults send the signal of the same name) -----------------------

    def _callback(self, name: str, arguments: Mapping[str, Any]) -> None:
        signal = signals.signal_for(name)
        if signal.receivers:  # most callbacks have none: skip building the arguments
            signal.send(self, **{k: v for k, v in arguments.items() if k != "self"})

    def OnAccept(self, error: DicomExceptionCode) -> None:
        self._callback("OnAccept", locals())

    def OnConnect(self, error: DicomExceptionCode) -> None:
        self._callback("OnConnect", locals())

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        self._callback("OnClose", locals())

    def OnReceive(
        self, error: DicomExceptionCode, pdu_type: DicomPduType, buffer: bytes, bytes: int
    ) -> None:
        self._callback("OnReceive", locals())

    def OnSend(self, error: DicomExceptionCode, pdu_type: DicomPduType, length: int) -> None:
        self._callback("OnSend", locals())

    def OnSecureLinkReady(self, error: DicomExceptionCode) -> None:
        self._callback("OnSecureLinkReady", locals())

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self._callback("OnReceiveAssociateRequest", locals())

    def OnReceiveAssociateAccept(self, association: DicomAssociate) -> None:
        self._callback("OnReceiveAssociateAccept", locals())

    def OnReceiveAssociateReject(
        self,
        result: DicomAssociateRejectResultType,
        source: DicomAssociateRejectSourceType,
        reason: DicomAssociateRejectReasonType,
    ) -> None:
        self._callback("OnReceiveAssociateReject", locals())

    def OnReceiveReleaseRequest(self) -> None:
        self._callback("OnReceiveReleaseRequest", locals())

    def OnReceiveReleaseResponse(self) -> None:
        self._callback("OnReceiveReleaseResponse", locals())

    def OnReceiveAbort(self, source: DicomAbortSourceType, reason: DicomAbortReasonType) -> None:
        self._callback("OnReceiveAbort", locals())

    def OnReceiveData(
        self, presentation_id: int, command_set: Dataset, data_set: Dataset | None
    ) -> None:
        self._callback("OnReceiveData", locals())

    def OnReceiveUnknown(
        self, presentation_id: int, command_set: Dataset, data_set: Dataset | None
    ) -> None:
        self._callback("OnReceiveUnknown", locals())

    # -- blocking helpers (not part of LEADTOOLS) ------------------------------------

    def wait_connected(self, timeout: float | None = None) -> None:
        """Block until ``Connect`` finished; raise ``DicomException`` if it failed."""
        outcome = self._outcome
        outcome.wait(lambda: outcome.connect_result is not None, timeout, "the connection")
        if outcome.connect_result is not _OK:
            raise DicomException(
                outcome.connect_result or DicomExceptionCode.NetFailure, outcome.connect_message
            )

    def wait_associated(self, timeout: float | None = None) -> DicomAssociate:
        """Block until the association is accepted; raise on reject, abort or timeout."""
        outcome = self._outcome
        outcome.wait(
            lambda: outcome.reject is not None or outcome.ended or self.IsAssociated(),
            timeout,
            "the association",
        )
        if outcome.reject is not None:
            rj = outcome.reject
            description = describe_reject(rj.result, rj.source, rj.reason)
            raise AssociationRejected(rj.result, rj.source, rj.reason, description)
        association = self.Association
        if not self.IsAssociated() or association is None:
            session = self._session  # its failure says more than "aborted" where it has one
            raise (session.failure if session else None) or outcome.aborted_error("association")
        return association

    def wait_response(self, message_id: int, timeout: float | None = None) -> Response:
        """Block until the final response to request ``message_id`` arrives.

        Pending responses are delivered to the callbacks as they come; this returns the
        final one (status not Pending) as a ``Response``. The timeout (default
        ``timeouts.dimse``) runs while the association is silent: bytes still going out,
        or pending responses coming in, restart it. It is measured by the loop's clock.
        """
        outcome = self._outcome
        limit = self.timeouts.dimse if timeout is None else timeout
        if limit is not None and not outcome.has_response(message_id) and not outcome.ended:
            try:
                # write_here: the loop is only woken when its timer must fire sooner
                self._submit(
                    lambda session, now: session.expect_response(message_id, limit, now),
                    write_here=True,
                )
            except DicomException:  # the connection ended meanwhile: the wait says how
                pass
        outcome.wait(
            lambda: outcome.has_response(message_id) or outcome.ended,
            None,
            f"the response to message {message_id}",
        )
        response = outcome.take_response(message_id)
        if response is None:
            raise outcome.aborted_error(f"response to message {message_id}")
        return response

    def wait_released(self, timeout: float | None = None) -> None:
        """Block until the peer confirmed our release request."""
        outcome = self._outcome
        outcome.wait(lambda: outcome.released or outcome.ended, timeout, "the release response")
        if not outcome.released:
            raise outcome.aborted_error("release")

    def wait_closed(self, timeout: float | None = None) -> None:
        """Block until the connection is closed."""
        outcome = self._outcome
        outcome.wait(lambda: outcome.ended or not self.IsActivated(), timeout, "the close")

    # -- the session and the loop ----------------------------------------------------

    def _require_session(self) -> DimseSession:
        session = self._session
        if session is None or session.is_closed:
            raise DicomException(DicomExceptionCode.NetNotConnected, "not connected")
        return session

    def _submit(
        self, action: Callable[[DimseSession, float], None], *, write_here: bool = False
    ) -> None:
        """Run a user primitive on the session in the caller's thread (errors reach the
        caller), then have the loop flush the connection. With ``write_here`` a thread
        other than the loop's writes the bytes itself when nothing else is waiting: no
        loop wake-up, no thread hand-over per request."""
        session = self._require_session()
        loop = self._event_loop()
        now = loop.time()
        with self._lock:
            queued_before = session.engine.send_queue.backlog
            action(session, now)
        channel = self._channel
        if (
            write_here
            and channel is not None
            and not queued_before
            and not loop.in_loop_thread()
            and not self._wants("OnSend")
            and channel.write_from_any_thread()
        ):
            session.data_sent(loop.time())
            return
        if channel is not None and channel.in_turn and loop.in_loop_thread():
            return  # a callback of this channel's read: the channel writes before it ends
        self._flush_soon()
        self._throttle(session.engine.send_queue)

    def _flush_soon(self) -> None:
        with self._lock:
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self._event_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Loop thread: write what the session queued, then hand its events out."""
        with self._lock:
            self._flush_scheduled = False
        if self._channel is not None:
            self._channel.kick()
        self._drain()

    def _event_loop(self) -> EventLoop:
        return self._loop or runtime.get_loop()

    def _throttle(self, queue: SendQueue) -> None:
        """Backpressure for senders on other threads: block while more than
        ``send_backlog_high`` messages wait to be sent, until the backlog drains to
        ``send_backlog_low`` (a C-FIND worker cannot queue a million matches)."""
        if queue.backlog <= self.config.send_backlog_high:
            return
        if not runtime.is_threaded() or runtime.on_loop_thread():
            return
        low = self.config.send_backlog_low
        session = self._session
        cond = self._outcome.cond
        with cond:
            self._throttled += 1
            try:
                while queue.backlog > low and session is not None and not session.is_closed:
                    cond.wait(1.0)
            finally:
                self._throttled -= 1

    def _wants(self, name: str) -> bool:
        """True when callback ``name`` is overridden or its signal has subscribers for
        this DicomNet (decided now, so a later subscription takes effect)."""
        return _overrides(type(self), name) or signals.has_receivers(name, self)

    def _attach(self, sock: socket.socket, address: tuple[str, int], is_requestor: bool) -> None:
        loop = self._loop = runtime.get_loop()
        self._peer = (address[0], address[1]) if not is_requestor else self._peer
        self._host = sock.getsockname()[:2]
        self._session = DimseSession(
            is_requestor=is_requestor,
            config=self.config,
            temp_path=self._temp_path,
            parse_received_data=self._parse_received_data,
            report_pdus=self._wants("OnReceive"),
            name=f"{'requestor' if is_requestor else 'acceptor'} {self._peer[0]}:{self._peer[1]}",
        )
        secure = self._security_mode is not DicomNetSecurityMode.None_
        try:
            layer = self._make_security_layer(server_side=not is_requestor)
        except DicomException as exc:  # the context could not be made: refuse the peer
            log.error("cannot secure the connection with %s:%d: %s", *self._peer, exc)
            sock.close()
            self._outcome.set(connect_result=exc.Code, connect_message=str(exc), ended=True)
            return
        self._channel = StreamChannel(
            loop,
            sock,
            layer,
            self._session,
            self._drain,
            on_sent=self._on_sent,
            on_secure=self._on_secure if secure else None,
            read_budget=self.config.read_budget,
            lock=self._lock,
            handshake_timeout=self.timeouts.tls_handshake if secure else None,
        )
        self._channel.start(server_side=not is_requestor)

    def _on_socket_accepted(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self._pending_sockets.append((sock, address))
        try:
            self.OnAccept(_OK)
        except Exception:
            log.exception("OnAccept raised")
        while self._pending_sockets and self._pending_sockets[0][0] is sock:
            self._pending_sockets.popleft()
            log.warning("OnAccept did not call Accept: refusing %s:%d", *address)
            sock.close()

    def _on_connected(self, sock: socket.socket | None, error: OSError | None) -> None:
        self._connecting = None
        if error is not None or sock is None:
            code = _error_code(error)
            message = (
                f"cannot connect to {self._peer[0]}:{self._peer[1]}: "
                f"{error.strerror if error else 'unknown error'}"
            )
            self._outcome.set(connect_result=code, connect_message=message)
            self.OnConnect(code)
            return
        self._attach(sock, self._peer, is_requestor=True)
        if self._tls is None:  # with TLS, wait_connected waits for the secure link
            self._outcome.set(connect_result=_OK, connect_message="")
        self.OnConnect(_OK)

    def _on_secure(self, error: Exception | None) -> None:
        code = self._secure_link_result(error)
        if self._session is not None and self._session.is_requestor:
            message = "" if error is None else f"TLS with {self._peer[0]}:{self._peer[1]}: {error}"
            self._outcome.set(connect_result=code, connect_message=message)
        self.OnSecureLinkReady(code)

    def _on_sent(self, finished: list[tuple[int, int]]) -> None:
        session = self._session
        if session is None:
            return
        session.data_sent(self._event_loop().time())
        if self._throttled and session.engine.send_queue.backlog <= self.config.send_backlog_low:
            self._outcome.set()  # wake senders held back by _throttle
        if self._wants("OnSend"):
            for pdu_type, length in finished:
                self.OnSend(_OK, enum_member(DicomPduType, pdu_type), length)

    # -- dispatch (loop thread) ------------------------------------------------------

    def _drain(self) -> None:
        """Turn the session's events into callbacks, in order."""
        session = self._session
        if session is None:
            return
        now = self._event_loop().time()
        with self._lock:
            session.engine.report_pdus = self._wants("OnReceive")
            batch = session.next_events(now)
        for event in batch:
            try:
                self._HANDLERS[type(event)](self, event)
            except DicomException as exc:
                if not session.has_ended:
                    log.exception("callback raised while handling %s", type(event).__name__)
                else:  # a send racing the end of the association: an ordinary outcome
                    log.debug("%s after the association ended: %s", type(event).__name__, exc)
            except Exception:
                log.exception("callback raised while handling %s", type(event).__name__)

    def _on_pdu(self, event: ev.PduReceived) -> None:
        self.OnReceive(_OK, enum_member(DicomPduType, event.pdu_type), event.raw, len(event.raw))

    def _on_association_requested(self, event: AssociationRequested) -> None:
        request = event.request
        log.info(
            "association request from %s to %s (%d presentation contexts)",
            request.Calling,
            request.Called,
            request.PresentationContextCount,
        )
        try:
            self.OnReceiveAssociateRequest(request)
        except Exception as exc:
            session = self._session
            if session is None or not session.awaiting_answer:
                raise
            # An answer that cannot be given (an accept that does not encode, a failing
            # handler) must not leave the peer waiting: reject it.
            log.error("cannot answer the A-ASSOCIATE-RQ (%s): rejecting it", exc)
            rj = AssociateRJ(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Unknown,
            )
            self._submit(lambda session, now: session.send_associate_rj(rj, now))

    def _on_association_accepted(self, event: AssociationAccepted) -> None:
        accept = event.accept
        accepted = sum(
            1
            for index in range(accept.PresentationContextCount)
            if accept.GetResult(accept.GetPresentationContextID(index)) == 0
        )
        log.info(
            "association accepted by %s: %d of %d presentation contexts",
            accept.Called,
            accepted,
            accept.PresentationContextCount,
        )
        self._outcome.set()
        self.OnReceiveAssociateAccept(accept)

    def _on_reject(self, event: ev.AssociateRejectReceived) -> None:
        rj = event.pdu
        log.info("%s", describe_reject(rj.result, rj.source, rj.reason))
        self._outcome.set(reject=rj)
        self.OnReceiveAssociateReject(
            enum_member(DicomAssociateRejectResultType, rj.result),
            enum_member(DicomAssociateRejectSourceType, rj.source),
            _reject_reason(rj),
        )

    def _on_release_requested(self, event: ev.ReleaseRequested) -> None:
        self.OnReceiveReleaseRequest()

    def _on_release_confirmed(self, event: ev.ReleaseConfirmed) -> None:
        self._outcome.set(released=True)
        self.OnReceiveReleaseResponse()

    def _on_abort(self, event: ev.AbortReceived) -> None:
        self._outcome.set(abort_info=(event.source, event.reason))
        self.OnReceiveAbort(
            enum_member(DicomAbortSourceType, event.source),
            enum_member(DicomAbortReasonType, event.reason),
        )

    def _on_provider_abort(self, event: ev.ProviderAborted) -> None:
        log.warning("association aborted: %s", event.description)
        self._outcome.set(
            abort_info=(DicomAbortSourceType.Provider, event.reason),
            end_description=event.description,
        )
        self.OnReceiveAbort(
            DicomAbortSourceType.Provider, enum_member(DicomAbortReasonType, event.reason)
        )

    def _on_response_timeout(self, event: ResponseTimedOut) -> None:
        error = DicomException(DicomExceptionCode.NetTimeout, f"timed out: {event.description}")
        self._outcome.add_failure(event.message_id, error)

    def _on_request_failed(self, event: RequestFailed) -> None:
        """A message of ours could not be sent whole (its file became unreadable): the
        session aborted; the caller hears it from ``OnSend`` and ``wait_response``."""
        if event.message_id is not None:
            error = DicomException(DicomExceptionCode.NetFailure, event.description)
            self._outcome.add_failure(event.message_id, error)
        self.OnSend(DicomExceptionCode.NetFailure, DicomPduType.DataTransfer, 0)

    def _on_dimse(self, event: DimseReceived) -> None:
        """OnReceiveData, then the typed callback (or OnReceiveUnknown). A request nothing
        handles, or whose handler raised, is refused by the session."""
        message, spec, data_set = event.message, event.spec, event.data_set
        session = self._require_session()
        handled = self._wants("OnReceiveData")
        try:
            if handled:
                command_set = command_to_dataset(message.command)
                self.OnReceiveData(message.context_id, command_set, data_set)
            if spec is None:
                handled = handled or self._wants("OnReceiveUnknown")
                command_set = command_to_dataset(message.command)
                self.OnReceiveUnknown(message.context_id, command_set, data_set)
            else:
                handled = handled or self._wants(spec.callback)
                arguments = spec.arguments(message.context_id, message.command)
                if spec.data_set:
                    arguments.append(data_set)
                self._received_file = event.received_file
                getattr(self, spec.callback)(*arguments)
        except Exception as exc:
            log.exception("%s handler raised", spec.name if spec else "DIMSE")
            if event.expects_response:
                error = exc
                self._submit(lambda session, now: session.handler_failed(message, error, now))
        else:
            if not handled and event.expects_response:
                self._submit(lambda session, now: session.refuse_unhandled(message, now))
        finally:
            session.finished(event, self._received_file_taken)
            self._received_file, self._received_file_taken = None, False
            if event.final:  # after the callbacks, so a waiter sees their effects
                self._outcome.add_response(event.response())

    def _on_closed(self, event: ev.TransportClosed) -> None:
        outcome = self._outcome
        failure = self._channel.failure if self._channel is not None else None
        if failure is not None:
            error = failure_code(failure)
        elif event.timed_out:
            error = DicomExceptionCode.NetTimeout
        elif outcome.abort_info and not outcome.released:
            error = DicomExceptionCode.NetConnectionAborted
        else:
            error = _OK
        log.info("connection %s:%d closed: %s", self._peer[0], self._peer[1], event.description)
        outcome.set(ended=True, end_description=outcome.end_description or event.description)
        self.OnClose(error, self)
        server = self._server
        if server is not None:
            if self in server._clients:
                server._clients.remove(self)
            server.OnClose(error, self)

    _HANDLERS: Mapping[type, Callable[[DicomNet, Any], None]] = {
        ev.PduReceived: _on_pdu,
        AssociationRequested: _on_association_requested,
        AssociationAccepted: _on_association_accepted,
        ev.AssociateRejectReceived: _on_reject,
        ev.ReleaseRequested: _on_release_requested,
        ev.ReleaseConfirmed: _on_release_confirmed,
        ev.AbortReceived: _on_abort,
        ev.ProviderAborted: _on_provider_abort,
        ResponseTimedOut: _on_response_timeout,
        RequestFailed: _on_request_failed,
        DimseReceived: _on_dimse,
        ev.TransportClosed: _on_closed,
    }


@functools.cache
def _overrides(cls: type[DicomNet], name: str) -> bool:
    """Whether ``cls`` replaces DicomNet's own callback ``name`` (fixed per class)."""
    return getattr(cls, name) is not getattr(DicomNet, name)


def _families(ip_type: DicomNetIpTypeFlags) -> tuple[bool, bool]:
    """(IPv4, IPv6) allowed by LEADTOOLS' IP type flags; no flag at all means IPv4."""
    ipv6 = bool(ip_type & DicomNetIpTypeFlags.Ipv6)
    return bool(ip_type & DicomNetIpTypeFlags.Ipv4) or not ipv6, ipv6


def _reject_reason(rj: AssociateRJ) -> DicomAssociateRejectReasonType:
    """The member the (source, reason) pair means; an undefined pair stays an int, which
    compares and formats the same way."""
    try:
        return DicomAssociateRejectReasonType.from_wire(rj.source, rj.reason)
    except ValueError:
        return cast(DicomAssociateRejectReasonType, rj.reason)


def failure_code(failure: Exception) -> DicomExceptionCode:
    """The code of what broke a connection: a TLS failure's own, a socket error's."""
    code = getattr(failure, "code", None)
    if isinstance(code, DicomExceptionCode):
        return code
    if isinstance(failure, DicomException):
        return failure.Code
    return _error_code(failure) if isinstance(failure, OSError) else DicomExceptionCode.NetFailure


def _error_code(error: OSError | None) -> DicomExceptionCode:
    if isinstance(error, TimeoutError):
        return DicomExceptionCode.NetTimeout
    codes = {
        errno.ECONNREFUSED: DicomExceptionCode.NetConnectionRefused,
        errno.ETIMEDOUT: DicomExceptionCode.NetTimeout,
        errno.EHOSTUNREACH: DicomExceptionCode.NetHostUnreachable,
        errno.ENETUNREACH: DicomExceptionCode.NetUnReach,
        errno.ECONNRESET: DicomExceptionCode.NetConnectionReset,
        errno.EADDRINUSE: DicomExceptionCode.NetAddressInUse,
        errno.EADDRNOTAVAIL: DicomExceptionCode.NetAddressNotAvailable,
    }
    return codes.get(error.errno if error else None, DicomExceptionCode.NetFailure)  # type: ignore[arg-type]


def _socket_error(exc: OSError, what: str) -> DicomException:
    return DicomException(_error_code(exc), f"{what}: {exc.strerror or exc}")
