"""``DicomNet``: the LEADTOOLS event-callback API over the selector loop.

One ``DicomNet`` is one TCP connection or one listener, as in LEADTOOLS. Applications
subclass it and override ``On*`` callbacks, or subscribe to the blinker signal of the same
name (``dicomnet.signals``); every default ``On*`` sends that signal. ``Send*`` methods
may be called from any thread; callbacks run on the loop thread, in order per connection,
and must not block (use ``DicomNet.run_in_background`` for slow work, then ``Send*`` the
answer; a sending thread is held back while too many messages wait to be sent).

Dispatch order for each received message, as LEADTOOLS documents it: ``OnReceive`` (raw
PDU), ``OnReceiveData`` (command set and data set), then the typed ``OnReceiveXxx``.

Outside the LEADTOOLS surface, the blocking helpers (``wait_connected``,
``wait_associated``, ``wait_response``, ``wait_released``, ``wait_closed``) let a script
wait for an outcome without an event loop of its own; they raise ``DicomException``
(``AssociationRejected``, ``AssociationAborted``) on reject, abort and timeout, and refuse
to run on the loop thread, where they would deadlock.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from pydicom import Dataset

from . import events as ev
from . import runtime, signals
from .associate import DicomAssociate, negotiated_roles
from .connection import Connection
from .dimse.assembly import BytesSink, DataSink, Message
from .dimse.commands import (
    NO_DATA_SET,
    RESPONSE_BIT,
    command_to_dataset,
    dataset_to_command,
    message_name,
)
from .dimse.datasets import decode_dataset, encode_dataset
from .dimse.fragment import BytesSource, DataSource
from .dimse.messages import check_required
from .dimse.part10 import Part10File, part10_source, read_part10_header
from .dimse.spool import SpooledFile, SpoolSink
from .dimse.status import StatusCategory, status_category
from .enums import (
    DicomAbortReasonType,
    DicomAbortSourceType,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandStatusType,
    DicomCommandType,
    DicomNetIpTypeFlags,
    DicomNetSecurityMode,
    DicomPduType,
)
from .errors import (
    AssociationRejected,
    DicomException,
    DicomExceptionCode,
    DIMSEError,
)
from .loop import ConnectAttempt, ListenerChannel, StreamChannel
from .operations import OutstandingOperations
from .outcome import ConnectionOutcome
from .pdu import AssociateRJ
from .response import Response
from .security import PlainLayer, SecurityLayer
from .services import REQUEST_CALLBACKS, DataSetArgument, DimseServices, dispatch
from .timeouts import Timeouts

log = logging.getLogger("dicomnet.net")

_OK = DicomExceptionCode.Success


def _emit(net: DicomNet, name: str, arguments: Mapping[str, Any]) -> None:
    """Send the signal of callback ``name`` with the callback's own arguments."""
    kwargs = {k: v for k, v in arguments.items() if k != "self"}
    signals.signal_for(name).send(net, **kwargs)


def _as_enum(enum_type: Any, value: int) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        return value


class DicomNet(DimseServices):
    """A DICOM network connection (or listener) with LEADTOOLS' methods and callbacks."""

    # -- process-wide ----------------------------------------------------------------

    @staticmethod
    def Startup(threaded: bool = True) -> None:
        """Start the network engine once per process (reference counted).

        ``threaded=False`` leaves the loop to the application: call ``DicomNet.pump``.
        """
        runtime.startup(threaded)

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
        reserved: bool = False,
        *,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.Initialize(temporary_directory, security_mode)
        self.timeouts = timeouts or Timeouts()
        self._engine: Connection | None = None
        self._channel: StreamChannel | None = None
        self._listener: ListenerChannel | None = None
        self._connecting: ConnectAttempt | None = None
        self._server: DicomNet | None = None
        self._clients: list[DicomNet] = []
        self._pending_sockets: deque[tuple[socket.socket, tuple[str, int]]] = deque()
        self._request: DicomAssociate | None = None
        self._association: DicomAssociate | None = None
        self._host: tuple[str, int] = ("", 0)
        self._peer: tuple[str, int] = ("", 0)
        self._ip_type = DicomNetIpTypeFlags.Ipv4
        self._dispatching = False
        self._message_id = 0
        # what happened, for the blocking helpers
        self._outcome = ConnectionOutcome()
        self._operations = OutstandingOperations()
        self._throttled = 0  # threads blocked in _throttle
        self._last_activity = 0.0  # monotonic time bytes last moved (for wait_response)
        self._report_sends = False
        self._received_file: str | None = None
        # Received C-STORE data: parse into a Dataset for OnReceiveCStoreRequest (True),
        # or pass None and leave the Part-10 spool file at ``received_file`` (False).
        self.parse_received_data = True

    def Initialize(
        self,
        temporary_directory: str | None,
        mode: DicomNetSecurityMode,
        settings: object | None = None,
    ) -> None:
        """Set the temp folder and security mode (LEADTOOLS ``Initialize``)."""
        if mode is not DicomNetSecurityMode.None_:
            raise DicomException(
                DicomExceptionCode.BadSecurityMode,
                f"security mode {mode.name} is not available in this version of dicomnet",
            )
        self._temp_path = temporary_directory
        self._security_mode = mode
        self._security_settings = settings

    def _make_security_layer(self) -> SecurityLayer:
        return PlainLayer()

    # -- properties and state --------------------------------------------------------

    @property
    def temp_path(self) -> str | None:
        return self._temp_path

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
        return self._association

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
    def received_file(self) -> str | None:
        """During ``OnReceiveCStoreRequest``: the received instance as a Part-10 file.
        Move it (``os.replace``) to keep it; otherwise it is deleted afterwards."""
        return self._received_file

    @property
    def end_description(self) -> str:
        """Why the connection ended, in words (empty while it is open)."""
        return self._outcome.end_description

    def IsConnected(self) -> bool:
        return self._channel is not None and not self._channel.closed

    def IsAssociated(self) -> bool:
        return self._engine is not None and self._engine.is_associated and self.IsConnected()

    def IsActivated(self) -> bool:
        """True while listening or connected (or connecting)."""
        return self._listener is not None or self._connecting is not None or self.IsConnected()

    def GetClientCount(self) -> int:
        return len(self._clients)

    def GetClient(self, index: int) -> DicomNet:
        return self._clients[index]

    def next_message_id(self) -> int:
        """A fresh message ID (1..65535, wrapping) for this connection's requests."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    # -- connection management -------------------------------------------------------

    def Listen(
        self,
        host_address: str | None,
        host_port: int,
        max_number_of_peers: int = 32,
        ip_type: DicomNetIpTypeFlags = DicomNetIpTypeFlags.Ipv4,
    ) -> None:
        """Listen for peers. ``host_address`` None, "" or "*" means every local address;
        port 0 picks a free port (read it back from ``HostPort``)."""
        self._check_idle("Listen")
        family = socket.AF_INET6 if ip_type == DicomNetIpTypeFlags.Ipv6 else socket.AF_INET
        any_address = "::" if family == socket.AF_INET6 else "0.0.0.0"
        address = any_address if host_address in (None, "", "*") else host_address
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, host_port))
            sock.listen(max(1, max_number_of_peers))
        except OSError as exc:
            sock.close()
            raise _socket_error(exc, f"cannot listen on {address}:{host_port}") from exc
        self._ip_type = ip_type
        self._host = sock.getsockname()[:2]
        loop = runtime.get_loop()
        self._listener = runtime.run_on_loop(
            lambda: ListenerChannel(loop, sock, self._on_socket_accepted)
        )
        log.info("listening on %s:%d", *self._host)

    def Connect(
        self,
        host_address: str | None,
        host_port: int,
        peer_address: str,
        peer_port: int,
        ip_type: DicomNetIpTypeFlags = DicomNetIpTypeFlags.Ipv4,
    ) -> None:
        """Open a connection to a peer; ``OnConnect`` reports the outcome."""
        self._check_idle("Connect")
        family = socket.AF_INET6 if ip_type == DicomNetIpTypeFlags.Ipv6 else socket.AF_INET
        if ip_type == DicomNetIpTypeFlags.Ipv4OrIpv6:
            family = socket.AF_UNSPEC
        try:
            infos = socket.getaddrinfo(peer_address, peer_port, family, socket.SOCK_STREAM)
        except OSError as exc:
            raise DicomException(
                DicomExceptionCode.NetHostNotFound, f"cannot resolve {peer_address}: {exc}"
            ) from exc
        sock_family, _, _, _, address = infos[0]
        sock = socket.socket(sock_family, socket.SOCK_STREAM)
        if host_address or host_port:
            try:
                sock.bind((host_address or "", host_port))
            except OSError as exc:
                sock.close()
                raise _socket_error(exc, f"cannot bind {host_address}:{host_port}") from exc
        self._ip_type = ip_type
        self._peer = (peer_address, peer_port)
        self._outcome.set(connect_result=None)
        loop = runtime.get_loop()

        def start() -> None:
            self._connecting = ConnectAttempt(
                loop, sock, address, self.timeouts.connect, self._on_connected
            )

        runtime.run_on_loop(start)

    def Accept(self, net: DicomNet) -> None:
        """Accept the pending connection into ``net`` (call from ``OnAccept``)."""
        if not self._pending_sockets:
            raise DicomException(DicomExceptionCode.NetNoData, "no connection waiting for Accept")
        sock, address = self._pending_sockets.popleft()
        net._server = self
        self._clients.append(net)
        runtime.run_on_loop(lambda: net._attach(sock, address, is_requestor=False))

    def Close(self) -> None:
        """Close the connection (or stop listening) without any PDU."""
        runtime.run_on_loop(self._close_now)

    def CloseForced(self, forced: bool = True) -> None:
        """Close now; ``OnClose`` is raised as for any close."""
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
        if self._engine is not None and self._channel is not None:
            self._engine.close()
            self._channel.kick()

    def _check_idle(self, what: str) -> None:
        if self.IsActivated():
            raise DicomException(
                DicomExceptionCode.NetSocketAlreadyConnected,
                f"{what}: this DicomNet is already connected or listening",
            )

    # -- association and release -----------------------------------------------------

    def SendAssociateRequest(self, associate: DicomAssociate) -> None:
        self._request = associate
        self._association = associate
        pdu = associate.to_request_pdu()
        self._operations = OutstandingOperations()
        self._with_engine(lambda engine, now: engine.send_associate_rq(pdu, now))

    def SendAssociateAccept(self, associate: DicomAssociate) -> None:
        pdu = associate.to_accept_pdu()
        request = self._request

        def send(engine: Connection, now: float) -> None:
            engine.send_associate_ac(pdu, now)
            self._association = DicomAssociate.from_pdu(pdu, request)
            self._operations = OutstandingOperations(*_window(associate, is_requestor=False))

        self._with_engine(send)

    def SendAssociateReject(
        self,
        result: DicomAssociateRejectResultType,
        source: DicomAssociateRejectSourceType,
        reason: DicomAssociateRejectReasonType,
    ) -> None:
        rj = AssociateRJ(int(result), int(source), int(reason))
        self._with_engine(lambda engine, now: engine.send_associate_rj(rj, now))

    def SendReleaseRequest(self) -> None:
        self._with_engine(lambda engine, now: engine.send_release_rq(now))

    def SendReleaseResponse(self) -> None:
        self._with_engine(lambda engine, now: engine.send_release_rp(now))

    def SendAbort(
        self,
        source: DicomAbortSourceType = DicomAbortSourceType.User,
        reason: DicomAbortReasonType = DicomAbortReasonType.Unknown,
    ) -> None:
        self._with_engine(lambda engine, now: engine.send_abort(int(source), int(reason), now))

    # -- DIMSE -----------------------------------------------------------------------

    def SendData(
        self, presentation_id: int, command_set: Dataset, data_set: Dataset | None
    ) -> None:
        """Send a caller-built command set (and optional data set bytes via pydicom)."""
        self._send_message(presentation_id, dataset_to_command(command_set), data_set)

    def _send_message(
        self,
        presentation_id: int,
        command: dict[str, Any],
        data_set: DataSetArgument = None,
    ) -> None:
        """Send one DIMSE message: checks, data set encoding, then the engine (loop)."""
        field = int(command["CommandField"])
        is_request = _is_request(field)
        final_response = (
            bool(field & RESPONSE_BIT)
            and status_category(int(command.get("Status", 0))) is not StatusCategory.PENDING
        )

        def send(engine: Connection, now: float) -> None:
            if field == DicomCommandType.CStore:
                self._check_store_role(presentation_id)
            data = self._data_source(presentation_id, data_set, command)
            if is_request:
                self._operations.check_can_invoke(int(command["MessageID"]))
            engine.send_message(presentation_id, command, data, now)
            if is_request:
                self._operations.invoked(int(command["MessageID"]), field)
            elif final_response:
                self._operations.performed(int(command["MessageIDBeingRespondedTo"]))

        self._with_engine(send)

    def _data_source(
        self, presentation_id: int, data_set: DataSetArgument, command: dict[str, Any]
    ) -> DataSource | None:
        if data_set is None:
            return None
        transfer_syntax = self._transfer_syntax(presentation_id)
        if isinstance(data_set, Dataset):
            return BytesSource(encode_dataset(data_set, transfer_syntax))
        part10 = data_set if isinstance(data_set, Part10File) else read_part10_header(data_set)
        for keyword, value in (
            ("AffectedSOPClassUID", part10.sop_class_uid),
            ("AffectedSOPInstanceUID", part10.sop_instance_uid),
        ):
            if keyword in command and not command[keyword]:
                command[keyword] = value
        return part10_source(part10, transfer_syntax)

    def _check_store_role(self, presentation_id: int) -> None:
        """The association acceptor may send C-STORE-RQ (C-GET sub-operations) only where
        the requestor took the SCP role by role selection (PS3.4 C.5.3)."""
        engine = self._require_engine()
        if engine.is_requestor:
            return
        if not self._requestor_roles(presentation_id)[1]:
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"cannot send C-STORE on presentation context {presentation_id}: the "
                "requestor did not take the SCP role for "
                f"{self._abstract_syntax(presentation_id)} (SCP/SCU role selection)",
            )

    def _requestor_roles(self, presentation_id: int) -> tuple[bool, bool]:
        if self._request is None or self._association is None:
            return True, False
        return negotiated_roles(self._request, self._association, presentation_id)

    def _abstract_syntax(self, presentation_id: int) -> str:
        engine = self._require_engine()
        context = engine.contexts.get(presentation_id)
        return context.abstract_syntax if context else "?"

    def _transfer_syntax(self, presentation_id: int) -> str:
        engine = self._require_engine()
        context = engine.contexts.get(presentation_id)
        if context is None:
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"presentation context {presentation_id} was not accepted on this association",
            )
        return context.transfer_syntax

    # -- callbacks (defaults send the signal of the same name) -----------------------

    def _emit_callback(self, name: str, arguments: dict[str, Any]) -> None:
        _emit(self, name, arguments)

    def OnAccept(self, error: DicomExceptionCode) -> None:
        _emit(self, "OnAccept", locals())

    def OnConnect(self, error: DicomExceptionCode) -> None:
        _emit(self, "OnConnect", locals())

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        _emit(self, "OnClose", locals())

    def OnReceive(
        self, error: DicomExceptionCode, pdu_type: DicomPduType, buffer: bytes, bytes: int
    ) -> None:
        _emit(self, "OnReceive", locals())

    def OnSend(self, error: DicomExceptionCode, pdu_type: DicomPduType, length: int) -> None:
        _emit(self, "OnSend", locals())

    def OnSecureLinkReady(self, error: DicomExceptionCode) -> None:
        _emit(self, "OnSecureLinkReady", locals())

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        _emit(self, "OnReceiveAssociateRequest", locals())

    def OnReceiveAssociateAccept(self, association: DicomAssociate) -> None:
        _emit(self, "OnReceiveAssociateAccept", locals())

    def OnReceiveAssociateReject(
        self,
        result: DicomAssociateRejectResultType,
        source: DicomAssociateRejectSourceType,
        reason: DicomAssociateRejectReasonType,
    ) -> None:
        _emit(self, "OnReceiveAssociateReject", locals())

    def OnReceiveReleaseRequest(self) -> None:
        _emit(self, "OnReceiveReleaseRequest", locals())

    def OnReceiveReleaseResponse(self) -> None:
        _emit(self, "OnReceiveReleaseResponse", locals())

    def OnReceiveAbort(self, source: DicomAbortSourceType, reason: DicomAbortReasonType) -> None:
        _emit(self, "OnReceiveAbort", locals())

    def OnReceiveData(
        self, presentation_id: int, command_set: Dataset, data_set: Dataset | None
    ) -> None:
        _emit(self, "OnReceiveData", locals())

    def OnReceiveUnknown(
        self, presentation_id: int, command_set: Dataset, data_set: Dataset | None
    ) -> None:
        _emit(self, "OnReceiveUnknown", locals())

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
            raise AssociationRejected(rj.result, rj.source, rj.reason, _describe_reject(rj))
        if not self.IsAssociated() or self._association is None:
            raise outcome.aborted_error("association")
        return self._association

    def wait_response(self, message_id: int, timeout: float | None = None) -> Response:
        """Block until the final response to request ``message_id`` arrives.

        Pending responses are delivered to the callbacks as they come; this returns the
        last one (status not Pending) as a ``Response``, its data set in ``dataset``. The
        timeout (default ``timeouts.dimse``) runs while the connection is silent: bytes
        still going out, or pending responses coming in, restart it.
        """
        outcome = self._outcome
        outcome.wait(
            lambda: outcome.has_response(message_id) or outcome.ended,
            self.timeouts.dimse if timeout is None else timeout,
            f"the response to message {message_id}",
            last_activity=lambda: self._last_activity,
        )
        message = outcome.take_response(message_id)
        if message is None:
            raise outcome.aborted_error(f"response to message {message_id}")
        return Response.of(message.context_id, message.command, lambda: message.dataset)  # type: ignore[arg-type,return-value]

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

    # -- engine plumbing (loop thread) -----------------------------------------------

    def _require_engine(self) -> Connection:
        if self._engine is None or self._engine.is_closed:
            raise DicomException(DicomExceptionCode.NetNotConnected, "not connected")
        return self._engine

    def _with_engine(self, action: Callable[[Connection, float], None]) -> None:
        """Run a user primitive on the loop thread, then let the channel act on it."""

        def run() -> None:
            engine = self._require_engine()
            action(engine, runtime.get_loop().time())
            if self._channel is not None:
                self._channel.kick()
            self._drain()

        runtime.run_on_loop(run)
        self._throttle()

    def _throttle(self) -> None:
        """Backpressure for senders on other threads: block while more than
        ``SEND_BACKLOG_HIGH`` messages wait to be sent, until the backlog drains to
        ``SEND_BACKLOG_LOW`` (a C-FIND worker cannot queue a million matches)."""
        engine = self._engine
        if engine is None or not runtime.is_threaded() or runtime.on_loop_thread():
            return
        queue = engine.send_queue
        if queue.backlog <= SEND_BACKLOG_HIGH:
            return
        cond = self._outcome.cond
        with cond:
            self._throttled += 1
            try:
                while queue.backlog > SEND_BACKLOG_LOW and not engine.is_closed:
                    cond.wait(1.0)
            finally:
                self._throttled -= 1

    def _wants(self, name: str) -> bool:
        """True when callback ``name`` is overridden or its signal has subscribers."""
        overridden = getattr(type(self), name) is not getattr(DicomNet, name)
        return overridden or bool(signals.signal_for(name).receivers)

    def _attach(self, sock: socket.socket, address: tuple[str, int], is_requestor: bool) -> None:
        loop = runtime.get_loop()
        self._peer = (address[0], address[1]) if not is_requestor else self._peer
        self._host = sock.getsockname()[:2]
        self._engine = Connection(
            is_requestor=is_requestor,
            timeouts=self.timeouts,
            sink_factory=self._make_sink,
            report_pdus=self._wants("OnReceive"),
            name=f"{'requestor' if is_requestor else 'acceptor'} {self._peer[0]}:{self._peer[1]}",
        )
        self._report_sends = self._wants("OnSend")
        layer = self._make_security_layer()
        self._channel = StreamChannel(
            loop,
            sock,
            layer,
            self._engine,
            self._drain,
            on_sent=self._on_sent,
            on_secure=self._on_secure
            if self._security_mode is not DicomNetSecurityMode.None_
            else None,
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
        self._outcome.set(connect_result=_OK, connect_message="")
        self.OnConnect(_OK)

    def _on_secure(self, error: Exception | None) -> None:
        self.OnSecureLinkReady(_OK if error is None else DicomExceptionCode.NetSecurityBreach)

    def _on_sent(self, finished: list[tuple[int, int]]) -> None:
        self._last_activity = time.monotonic()
        engine = self._engine
        if (
            self._throttled
            and engine is not None
            and (engine.send_queue.backlog <= SEND_BACKLOG_LOW)
        ):
            self._outcome.set()
        if self._report_sends:
            for pdu_type, length in finished:
                self.OnSend(_OK, _as_enum(DicomPduType, pdu_type), length)

    def _drain(self) -> None:
        """Turn the engine's events into callbacks. Re-entrant calls return at once: the
        outer call keeps draining, so callbacks stay in order."""
        engine = self._engine
        if engine is None or self._dispatching:
            return
        self._last_activity = time.monotonic()
        self._dispatching = True
        try:
            while True:
                batch = engine.next_events()
                if not batch:
                    break
                for event in batch:
                    try:
                        self._dispatch(event)
                    except Exception:
                        log.exception("callback raised while handling %s", type(event).__name__)
        finally:
            self._dispatching = False

    def _dispatch(self, event: ev.Event) -> None:
        if isinstance(event, ev.MessageReceived):
            self._dispatch_message(event.message)
        elif isinstance(event, ev.PduReceived):
            self.OnReceive(_OK, _as_enum(DicomPduType, event.pdu_type), event.raw, len(event.raw))
        elif isinstance(event, ev.AssociateRequestReceived):
            try:
                self._request = DicomAssociate.from_pdu(event.pdu)
            except DicomException as exc:
                self._abort_for(f"unusable A-ASSOCIATE-RQ: {exc.message}")
                return
            self._association = self._request
            log.info(
                "association request from %s to %s (%d presentation contexts)",
                event.pdu.calling_ae,
                event.pdu.called_ae,
                len(event.pdu.presentation_contexts),
            )
            self.OnReceiveAssociateRequest(self._request)
        elif isinstance(event, ev.AssociateAcceptReceived):
            try:
                self._association = DicomAssociate.from_pdu(event.pdu, self._request)
            except DicomException as exc:
                self._abort_for(f"unusable A-ASSOCIATE-AC: {exc.message}")
                return
            accepted = sum(1 for pc in event.pdu.presentation_contexts if pc.result == 0)
            log.info(
                "association accepted by %s: %d of %d presentation contexts",
                event.pdu.called_ae,
                accepted,
                len(event.pdu.presentation_contexts),
            )
            window = _window(self._association, is_requestor=True)
            self._operations.max_invoked, self._operations.max_performed = window
            self._outcome.set()
            self.OnReceiveAssociateAccept(self._association)
        elif isinstance(event, ev.AssociateRejectReceived):
            rj = event.pdu
            log.info("%s", _describe_reject(rj))
            self._outcome.set(reject=rj)
            self.OnReceiveAssociateReject(
                _as_enum(DicomAssociateRejectResultType, rj.result),
                _as_enum(DicomAssociateRejectSourceType, rj.source),
                _as_enum(DicomAssociateRejectReasonType, rj.reason),
            )
        elif isinstance(event, ev.ReleaseRequested):
            self.OnReceiveReleaseRequest()
        elif isinstance(event, ev.ReleaseConfirmed):
            self._outcome.set(released=True)
            self.OnReceiveReleaseResponse()
        elif isinstance(event, ev.AbortReceived):
            self._outcome.set(abort_info=(event.source, event.reason))
            self.OnReceiveAbort(
                _as_enum(DicomAbortSourceType, event.source),
                _as_enum(DicomAbortReasonType, event.reason),
            )
        elif isinstance(event, ev.ProviderAborted):
            log.warning("association aborted: %s", event.description)
            self._outcome.set(abort_info=(DicomAbortSourceType.Provider, event.reason))
            self.OnReceiveAbort(
                DicomAbortSourceType.Provider, _as_enum(DicomAbortReasonType, event.reason)
            )
        elif isinstance(event, ev.TransportClosed):
            self._on_transport_closed(event.description, event.timed_out)

    def _on_transport_closed(self, description: str, timed_out: bool) -> None:
        if timed_out:
            error = DicomExceptionCode.NetTimeout
        elif self._outcome.abort_info and not self._outcome.released:
            error = DicomExceptionCode.NetConnectionAborted
        else:
            error = _OK
        log.info("connection %s:%d closed: %s", self._peer[0], self._peer[1], description)
        self._outcome.set(ended=True, end_description=description)
        self.OnClose(error, self)
        server = self._server
        if server is not None:
            if self in server._clients:
                server._clients.remove(self)
            server.OnClose(error, self)

    def _dispatch_message(self, message: Message) -> None:
        """Check, decode and hand one received message to its callbacks."""
        try:
            check_required(message.command)
        except DIMSEError as exc:
            self._discard_data(message)
            self._abort_for(str(exc))
            return
        field = message.command_field
        if not field & RESPONSE_BIT:
            self._deliver(message)
            return
        final = status_category(message.status or 0) is not StatusCategory.PENDING
        if not self._operations.responded(message.message_id_being_responded_to or 0, final):
            log.warning(
                "dropping %s for message ID %s: no such request is outstanding",
                message_name(field),
                message.message_id_being_responded_to,
            )
            self._discard_data(message)
            return
        try:
            self._deliver(message)
        finally:
            if final:  # after the callbacks, so a waiter sees their effects
                self._outcome.add_response(message)

    def _deliver(self, message: Message) -> None:
        field = message.command_field
        is_request = _is_request(field)
        if is_request and not self._operations.may_perform(message.message_id or 0):
            self._refuse_over_window(message)
            return
        if field == DicomCommandType.CStore and not self._may_receive_store(message):
            return
        if message.error is not None:
            self._refuse_unstorable(message)
            return
        try:
            data_set = self._received_data_set(message)
        except DIMSEError as exc:
            self._refuse_unreadable(message, str(exc))
            return
        message.dataset = data_set
        try:
            self._call_callbacks(message, data_set)
        except Exception as exc:
            # A failing handler must not leave the peer waiting for ever.
            log.exception("%s handler raised", message_name(field))
            if is_request and self._operations.is_performing(message.message_id or 0):
                status = FAILURE_STATUS.get(field, DicomCommandStatusType.ProcessingFailure)
                self._refuse(message, status, f"{type(exc).__name__}: {exc}")
        finally:
            self._received_file = None
            if data_set is None:
                self._discard_data(message)

    def _call_callbacks(self, message: Message, data_set: Dataset | None) -> None:
        """OnReceiveData, then the typed callback (or OnReceiveUnknown). A request that
        nothing handles is refused with Unrecognized Operation, so the peer never waits
        for an answer no code will give."""
        command = message.command
        handled = self._wants("OnReceiveData")
        if handled:
            self.OnReceiveData(message.context_id, command_to_dataset(command), data_set)
        name = REQUEST_CALLBACKS.get(message.command_field, "OnReceiveUnknown")
        handled = handled or self._wants(name)
        if not dispatch(self, message, data_set):
            self.OnReceiveUnknown(message.context_id, command_to_dataset(command), data_set)
        if not handled and _is_request(message.command_field):
            self._refuse(
                message,
                DicomCommandStatusType.UnrecognizedOperation,
                f"no handler for {message_name(message.command_field)}",
            )

    def _may_receive_store(self, message: Message) -> bool:
        """A requestor takes C-STORE-RQ (C-GET sub-operations) only where it negotiated
        the SCP role; otherwise the request is refused, not silently stored."""
        engine = self._engine
        if engine is None or not engine.is_requestor:
            return True
        if self._requestor_roles(message.context_id)[1]:
            return True
        self._discard_data(message)
        comment = "SCP role for this SOP class was not negotiated (role selection)"
        log.warning("refusing C-STORE-RQ %s: %s", message.message_id, comment)
        self.SendCStoreResponse(
            message.context_id,
            message.message_id or 0,
            message.affected_sop_class_uid or "",
            message.affected_sop_instance_uid or "",
            DicomCommandStatusType.NotAuthorized,
            ErrorComment=comment,
        )
        return False

    def _received_data_set(self, message: Message) -> Dataset | None:
        data = message.data
        if isinstance(data, SpooledFile):
            self._received_file = data.path
            return data.read_dataset() if self.parse_received_data else None
        if data is None:
            return None
        return decode_dataset(data, self._transfer_syntax(message.context_id))  # type: ignore[arg-type]

    def _refuse_unreadable(self, message: Message, reason: str) -> None:
        """A data set that does not parse: refuse the request (0xC000-class / 0x0110)."""
        log.warning("%s: %s", message_name(message.command_field), reason)
        self._discard_data(message)
        if message.command_field & RESPONSE_BIT:
            return
        status = FAILURE_STATUS.get(message.command_field, DicomCommandStatusType.ProcessingFailure)
        self._refuse(message, status, reason)

    def _refuse_unstorable(self, message: Message) -> None:
        """The data set could not be kept (disk full, unwritable temp folder): refuse the
        request with Out of Resources (PS3.4 B.2.3) or Processing Failure."""
        reason = f"cannot keep the data set: {message.error}"
        log.warning("%s %s: %s", message_name(message.command_field), message.message_id, reason)
        if _is_request(message.command_field):
            status = OUT_OF_RESOURCES_STATUS.get(
                message.command_field, DicomCommandStatusType.ProcessingFailure
            )
            self._refuse(message, status, reason)

    def _refuse_over_window(self, message: Message) -> None:
        """The peer exceeded the asynchronous operations window: refuse the request with
        Resource Limitation (PS3.7 C.5) and keep the association."""
        self._discard_data(message)
        limit = self._operations.max_performed
        reason = f"{self._operations.performing} operations in progress; the window is {limit}"
        log.warning(
            "refusing %s %s: %s", message_name(message.command_field), message.message_id, reason
        )
        self._refuse(message, DicomCommandStatusType.ResourceLimitation, reason)

    def _refuse(self, message: Message, status: int, reason: str) -> None:
        cls = message.affected_sop_class_uid or message.requested_sop_class_uid or ""
        instance = message.affected_sop_instance_uid or message.requested_sop_instance_uid or ""
        response = {
            "CommandField": message.command_field | RESPONSE_BIT,
            "MessageIDBeingRespondedTo": message.message_id or 0,
            "AffectedSOPClassUID": cls or None,
            "AffectedSOPInstanceUID": instance or None,
            "Status": int(status),
            "ErrorComment": reason[:64],
            "CommandDataSetType": NO_DATA_SET,
        }
        self._send_message(message.context_id, response)

    @staticmethod
    def _discard_data(message: Message) -> None:
        if isinstance(message.data, SpooledFile):
            message.data.discard()

    def _abort_for(self, reason: str) -> None:
        log.warning("aborting the association: %s", reason)
        self._outcome.set(end_description=reason)
        self.SendAbort(DicomAbortSourceType.Provider, DicomAbortReasonType.InvalidParameterValue)

    def _make_sink(self, context_id: int, command: dict[str, object]) -> DataSink:
        """C-STORE data goes to a Part-10 spool file; everything else stays in memory."""
        if command.get("CommandField") == DicomCommandType.CStore:
            engine = self._require_engine()
            context = engine.contexts[context_id]
            return SpoolSink(
                self._temp_path,
                str(command.get("AffectedSOPClassUID", "")),
                str(command.get("AffectedSOPInstanceUID", "")),
                context.transfer_syntax,
            )
        return BytesSink()


# Backpressure for Send* from other threads: queued messages that make a sender wait,
# and the level at which it resumes.
SEND_BACKLOG_HIGH = 64
SEND_BACKLOG_LOW = 16

# Status for a request whose data set could not be kept.
OUT_OF_RESOURCES_STATUS: dict[int, int] = {
    DicomCommandType.CStore: DicomCommandStatusType.RefusedOutOfResources,
}


def _is_request(command_field: int) -> bool:
    """Requests that expect a response (C-CANCEL expects none)."""
    return not command_field & RESPONSE_BIT and command_field != DicomCommandType.CCancel


# Status for a request that cannot be processed (a data set that does not parse, a
# handler that failed): "cannot understand" where the service defines one, else
# Processing Failure.
FAILURE_STATUS: dict[int, int] = {
    DicomCommandType.CStore: 0xC000,
    DicomCommandType.CFind: 0xC000,
    DicomCommandType.CGet: 0xC000,
    DicomCommandType.CMove: 0xC000,
}


def _window(accept: DicomAssociate | None, is_requestor: bool) -> tuple[int, int]:
    """(requests this side may have outstanding, peer requests it performs at once),
    PS3.7 D.3.3.3: (1, 1) without a window; with one, what the accept allows (0 =
    unlimited). The accept's "invoked" count is what the requestor may invoke and the
    acceptor performs; its "performed" count is what the acceptor may invoke and the
    requestor performs."""
    if accept is None or not accept.IsAsynchronousOperations:
        return 1, 1
    invoked, performed = accept.InvokedOperationsCount, accept.PerformedOperationsCount
    return (invoked, performed) if is_requestor else (performed, invoked)


def _describe_reject(rj: AssociateRJ) -> str:
    result = "permanent" if rj.result == 1 else "transient"
    reasons = {
        (1, 1): "no reason given",
        (1, 2): "application context name not supported",
        (1, 3): "calling AE title not recognized",
        (1, 7): "called AE title not recognized",
        (2, 1): "no reason given (ACSE)",
        (2, 2): "protocol version not supported",
        (3, 1): "temporary congestion",
        (3, 2): "local limit exceeded",
    }
    text = reasons.get((rj.source, rj.reason), f"source {rj.source}, reason {rj.reason}")
    return f"association rejected ({result}): {text}"


def _error_code(error: OSError | None) -> DicomExceptionCode:
    import errno

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
