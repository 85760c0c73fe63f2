"""A scripted raw-byte peer for the PS3.8 9.2 state-machine conformance suite.

The remote peer is a plain socket on loopback; dicomnet runs in this process on a
manually pumped loop whose ``VirtualClock`` moves only when a script says ``wait``. The
dicomnet side is an SCP (the peer connects to it) or an SCU (it connects to the peer's
listener), a ``Recorder`` that writes down every callback and answers nothing by itself:
its answers are the script's ``local`` steps.

A ``Script`` is an immutable list of steps, built by chaining::

    Script(Role.SCP).connect().send(ASSOCIATE_RQ, "A-ASSOCIATE-RQ").expect_calls(...)

``cause(state, event)`` is the step a test is about: it checks that the dicomnet side is
in ``state``, makes the remote event happen (the PDU that stands for it, a close, the
clock passing a timer) and records the pair; the steps after it verify the action. A
script whose ``cause`` is not followed by an expectation does not run. The pairs of the
scripts that ran to the end are what the coverage table counts.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from dicomnet import (
    DicomAbortReasonType,
    DicomAbortSourceType,
    DicomAssociate,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandStatusType,
    DicomExceptionCode,
    DicomNet,
    Timeouts,
)
from dicomnet.dimse.commands import encode_command_set
from dicomnet.fsm import Event, State
from dicomnet.loop import VirtualClock
from dicomnet.pdu import (
    AssociateAC,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    encode_pdu,
)
from dicomnet.uids import IMPLEMENTATION_CLASS_UID, IMPLICIT_VR_LE, VERIFICATION

ARTIM = 10.0
ACSE = 40.0  # longer than ARTIM, so the two timers are told apart
EPSILON = 0.1
TIMEOUTS = Timeouts(artim=ARTIM, acse=ACSE, idle=None, dimse=None)
PUMP_ROUNDS = 20  # loop iterations after each action: enough for a callback's answer
DELIVERY_TIMEOUT = 5.0  # real seconds for bytes to cross loopback
GRACE = 0.005  # real seconds a quiet peer listens for a PDU still on its way

# -- PDUs the peer sends and expects, as bytes (PS3.8 9.3) -----------------------------

HEADER = struct.Struct(">BxL")
TYPE_ASSOCIATE_RQ, TYPE_ASSOCIATE_AC, TYPE_P_DATA = 0x01, 0x02, 0x04


def fixed_pdu(pdu_type: int, *last_bytes: int) -> bytes:
    """A 10-byte PDU (RJ, release, abort): header, a reserved byte, then three fields
    (the release PDUs' four bytes are all reserved)."""
    return HEADER.pack(pdu_type, 4) + bytes([0, *last_bytes])


def abort(source: int, reason: int) -> bytes:
    return fixed_pdu(0x07, 0, source, reason)


def reject(result: int, source: int, reason: int) -> bytes:
    return fixed_pdu(0x03, result, source, reason)


A_RELEASE_RQ = fixed_pdu(0x05, 0, 0, 0)
A_RELEASE_RP = fixed_pdu(0x06, 0, 0, 0)
# A PDU type PS3.8 does not define, with a well-formed length.
UNRECOGNIZED_PDU = HEADER.pack(0x42, 4) + bytes(4)

_USER_INFORMATION = UserInformation(
    max_length=16384, implementation_class_uid=IMPLEMENTATION_CLASS_UID
)
ASSOCIATE_RQ = encode_pdu(
    AssociateRQ(
        called_ae="UNDERTEST",
        calling_ae="RAWPEER",
        presentation_contexts=[PresentationContextRQ(1, VERIFICATION, [IMPLICIT_VR_LE])],
        user_information=_USER_INFORMATION,
    )
)
ASSOCIATE_AC = encode_pdu(
    AssociateAC(
        called_ae="RAWPEER",
        calling_ae="UNDERTEST",
        presentation_contexts=[PresentationContextAC(1, 0, IMPLICIT_VR_LE)],
        user_information=_USER_INFORMATION,
    )
)


def p_data(command: dict[str, object], context_id: int = 1) -> bytes:
    """One P-DATA-TF PDU carrying a whole command set (control header 03H: command, last)."""
    encoded = encode_command_set(command)
    pdv = struct.pack(">LBB", len(encoded) + 2, context_id, 0x03) + encoded
    return HEADER.pack(TYPE_P_DATA, len(pdv)) + pdv


ECHO_MESSAGE_ID = 7
C_ECHO_RQ = p_data(
    {
        "AffectedSOPClassUID": VERIFICATION,
        "CommandField": 0x0030,
        "MessageID": ECHO_MESSAGE_ID,
        "CommandDataSetType": 0x0101,
    }
)


def c_echo_rsp(message_id: int) -> bytes:
    return p_data(
        {
            "AffectedSOPClassUID": VERIFICATION,
            "CommandField": 0x8030,
            "MessageIDBeingRespondedTo": message_id,
            "CommandDataSetType": 0x0101,
            "Status": 0,
        }
    )


# -- the dicomnet side -------------------------------------------------------------------

Call = tuple[object, ...]


class Recorder(DicomNet):
    """The implementation under test: records its callbacks, answers nothing itself."""

    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.calls: list[Call] = []
        self.request: DicomAssociate | None = None

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.request = association
        self.calls.append(("OnReceiveAssociateRequest",))

    def OnReceiveAssociateAccept(self, association: DicomAssociate) -> None:
        self.calls.append(("OnReceiveAssociateAccept",))

    def OnReceiveAssociateReject(
        self,
        result: DicomAssociateRejectResultType,
        source: DicomAssociateRejectSourceType,
        reason: DicomAssociateRejectReasonType,
    ) -> None:
        self.calls.append(("OnReceiveAssociateReject", int(result), int(source), int(reason)))

    def OnReceiveReleaseRequest(self) -> None:
        self.calls.append(("OnReceiveReleaseRequest",))

    def OnReceiveReleaseResponse(self) -> None:
        self.calls.append(("OnReceiveReleaseResponse",))

    def OnReceiveAbort(self, source: DicomAbortSourceType, reason: DicomAbortReasonType) -> None:
        self.calls.append(("OnReceiveAbort", int(source), int(reason)))

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self.calls.append(("OnReceiveCEchoRequest", message_id))

    def OnReceiveCEchoResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
    ) -> None:
        self.calls.append(("OnReceiveCEchoResponse", message_id, int(status)))

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        if net is self:
            self.calls.append(("OnClose",))


def pump() -> None:
    for _ in range(PUMP_ROUNDS):
        DicomNet.pump(0)


def pump_until(condition: Callable[[], bool], what: str) -> None:
    """Run the loop until ``condition`` holds (bytes crossing loopback), then settle."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {DELIVERY_TIMEOUT} s"
        DicomNet.pump(0.01)
    pump()


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


class Role(Enum):
    """Which side of the association dicomnet plays."""

    SCP = "SCP"  # acceptor: the raw peer connects to it
    SCU = "SCU"  # requestor: it connects to the raw peer


Cell = tuple[State, Event, Role]


class _Listener(DicomNet):
    def __init__(self) -> None:
        super().__init__(None, timeouts=TIMEOUTS)
        self.children: list[Recorder] = []

    def OnAccept(self, error: DicomExceptionCode) -> None:
        child = Recorder()
        self.children.append(child)
        self.Accept(child)


class Side:
    """One running conversation: the raw peer's socket and the dicomnet side."""

    def __init__(self, role: Role, clock: VirtualClock) -> None:
        self.role = role
        self.clock = clock
        self.sock: socket.socket | None = None
        self.inbox: deque[bytes] = deque()  # whole PDUs received and not yet expected
        self.peer_closed = False  # dicomnet closed the connection (EOF or reset seen)
        self.seen = 0  # callbacks already checked
        self.exercised: list[Cell] = []
        self._pending = b""
        self._server: _Listener | None = None
        self._scu: Recorder | None = None
        self._listening: socket.socket | None = None
        if role is Role.SCP:
            self._server = _Listener()
            self._server.Listen("127.0.0.1", 0, 8)
        else:
            self._scu = Recorder()
            self._listening = socket.create_server(("127.0.0.1", 0))

    @property
    def net(self) -> Recorder | None:
        if self._server is not None:
            return self._server.children[-1] if self._server.children else None
        return self._scu

    def state(self) -> State:
        """The state of the dicomnet side's state machine (Sta1 before it exists)."""
        net = self.net
        session = net._session if net is not None else None
        return session.engine.state if session is not None else State.Sta1

    def connect(self) -> None:
        if self._server is not None:
            self.sock = socket.create_connection(("127.0.0.1", self._server.HostPort), 5)
        else:
            assert self._scu is not None and self._listening is not None
            self._scu.Connect(None, 0, "127.0.0.1", self._listening.getsockname()[1])
            listening = self._listening
            pump_until(lambda: _readable(listening), "the SCU's connection")
            self.sock, _ = listening.accept()
        self.sock.setblocking(False)
        pump_until(self._engine_started, "dicomnet's end of the connection")

    def _engine_started(self) -> bool:
        net = self.net
        return net is not None and net._session is not None

    def _dicomnet_socket(self) -> socket.socket | None:
        """dicomnet's end of the connection, while it is open."""
        net = self.net
        channel = net._channel if net is not None else None
        return channel.sock if channel is not None and not channel.closed else None

    def delivered(self) -> None:
        """Wait until what the peer sent is readable at dicomnet's end, then pump.

        Loopback delivery is usually immediate, but not on a loaded machine, and the
        virtual clock makes the loop poll without waiting whenever a timer is armed."""
        sock = self._dicomnet_socket()
        if sock is not None:
            select.select([sock], [], [], DELIVERY_TIMEOUT)
        pump()

    def collect(self, *, wait: bool) -> None:
        """Pump, then take whatever dicomnet sent, cut into PDUs; with ``wait``, until
        a whole PDU or the close arrives (within ``DELIVERY_TIMEOUT``)."""
        pump()
        assert self.sock is not None, "the script never connected"
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while not self.peer_closed:
            if wait and not self.inbox:
                select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                if wait and not self.inbox and time.monotonic() < deadline:
                    continue
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.peer_closed = True
                break
            self._pending += chunk
            self._cut()

    def quiet(self) -> None:
        """Check that dicomnet sent nothing and keeps the connection: it has nothing
        queued and its socket is open, and nothing arrives within ``GRACE``."""
        pump()
        net = self.net
        session = net._session if net is not None else None
        assert session is not None and not session.engine.close_requested, "closing"
        assert not session.engine.send_queue, "dicomnet has PDUs queued"
        assert self.sock is not None
        select.select([self.sock], [], [], GRACE)
        self.collect(wait=False)

    def _cut(self) -> None:
        while len(self._pending) >= HEADER.size:
            _, length = HEADER.unpack_from(self._pending)
            end = HEADER.size + length
            if len(self._pending) < end:
                break
            self.inbox.append(self._pending[:end])
            self._pending = self._pending[end:]

    def new_calls(self) -> list[Call]:
        net = self.net
        calls = net.calls[self.seen :] if net is not None else []
        self.seen += len(calls)
        return calls

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self._listening is not None:
            self._listening.close()
        for net in (self._server, self._scu, *(self._server.children if self._server else ())):
            if net is not None:
                net.Dispose()
        pump()


# -- steps -----------------------------------------------------------------------------


class Step(Protocol):
    def run(self, side: Side) -> None: ...


@dataclass(frozen=True)
class Connect:
    def run(self, side: Side) -> None:
        side.connect()

    def __str__(self) -> str:
        return "connect"


@dataclass(frozen=True)
class Send:
    data: bytes
    what: str

    def run(self, side: Side) -> None:
        assert side.sock is not None, "the script never connected"
        side.sock.sendall(self.data)
        side.delivered()

    def __str__(self) -> str:
        return f"send {self.what}"


@dataclass(frozen=True)
class Close:
    def run(self, side: Side) -> None:
        assert side.sock is not None, "the script never connected"
        side.sock.close()
        side.sock = None
        side.delivered()

    def __str__(self) -> str:
        return "close the transport"


@dataclass(frozen=True)
class Wait:
    seconds: float

    def run(self, side: Side) -> None:
        side.clock.advance(self.seconds)
        pump()

    def __str__(self) -> str:
        return f"wait {self.seconds:g} s"


@dataclass(frozen=True)
class _Local:
    what: str
    action: Callable[[Recorder], None]

    def run(self, side: Side) -> None:
        assert side.net is not None, "no dicomnet side yet"
        self.action(side.net)
        pump()

    def __str__(self) -> str:
        return f"dicomnet: {self.what}"


@dataclass(frozen=True)
class _Cause:
    state: State
    event: Event
    how: Step

    def run(self, side: Side) -> None:
        assert side.state() is self.state, f"dicomnet is in {side.state().name}"
        self.how.run(side)
        side.exercised.append((self.state, self.event, side.role))

    def __str__(self) -> str:
        return f"cause {self.event.name} in {self.state.name}: {self.how}"


class _Expectation:
    """A step that checks something; every ``cause`` needs at least one after it."""


@dataclass(frozen=True)
class _ExpectPdu(_Expectation):
    pdu: bytes | int  # the exact bytes, or only the PDU type
    what: str

    def run(self, side: Side) -> None:
        side.collect(wait=True)
        assert side.inbox, f"expected {self.what}, received nothing (closed: {side.peer_closed})"
        received = side.inbox.popleft()
        if isinstance(self.pdu, int):
            assert received[0] == self.pdu, f"expected {self.what}, received {received.hex()}"
        else:
            assert received == self.pdu, f"expected {self.what}, received {received.hex()}"

    def __str__(self) -> str:
        return f"expect {self.what}"


@dataclass(frozen=True)
class _ExpectNothing(_Expectation):
    def run(self, side: Side) -> None:
        side.quiet()
        assert not side.inbox, f"unexpected PDU {side.inbox[0].hex()}"
        assert not side.peer_closed, "the connection was closed"
        assert side.new_calls() == []

    def __str__(self) -> str:
        return "expect nothing (no PDU, no callback, still connected)"


@dataclass(frozen=True)
class _ExpectClosed(_Expectation):
    def run(self, side: Side) -> None:
        side.collect(wait=True)
        assert not side.inbox, f"unexpected PDU {side.inbox[0].hex()} before the close"
        assert side.peer_closed, "the connection is still open"

    def __str__(self) -> str:
        return "expect the transport closed, nothing sent"


@dataclass(frozen=True)
class _ExpectCalls(_Expectation):
    calls: tuple[Call, ...]

    def run(self, side: Side) -> None:
        pump()
        assert side.new_calls() == list(self.calls)

    def __str__(self) -> str:
        return f"expect callbacks {[call[0] for call in self.calls]}"


@dataclass(frozen=True)
class _ExpectState(_Expectation):
    state: State

    def run(self, side: Side) -> None:
        assert side.state() is self.state, f"dicomnet is in {side.state().name}"

    def __str__(self) -> str:
        return f"expect {self.state.name}"


# -- scripts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """What the raw peer does and expects, in order, against one dicomnet role."""

    role: Role
    steps: tuple[Step, ...] = ()

    def _then(self, step: Step) -> Script:
        return Script(self.role, (*self.steps, step))

    def connect(self) -> Script:
        """The peer connects to the SCP, or accepts the SCU's connection."""
        return self._then(Connect())

    def send(self, data: bytes, what: str) -> Script:
        return self._then(Send(data, what))

    def close(self) -> Script:
        return self._then(Close())

    def wait(self, seconds: float) -> Script:
        """Move the virtual clock on (then let dicomnet run its timers)."""
        return self._then(Wait(seconds))

    def local(self, what: str, action: Callable[[Recorder], None]) -> Script:
        """A primitive of dicomnet's own user (``Send*``), to reach a state."""
        return self._then(_Local(what, action))

    def cause(self, state: State, event: Event, how: Step) -> Script:
        """Make ``event`` happen in ``state`` by ``how`` (a ``Send``, ``Close``, ``Wait``
        or ``Connect``), after checking that dicomnet is in ``state``."""
        return self._then(_Cause(state, event, how))

    def expect(self, pdu: bytes | int, what: str) -> Script:
        """The next PDU received: exactly these bytes, or (an int) of this type."""
        return self._then(_ExpectPdu(pdu, what))

    def expect_nothing(self) -> Script:
        return self._then(_ExpectNothing())

    def expect_closed(self) -> Script:
        return self._then(_ExpectClosed())

    def expect_calls(self, *calls: Call) -> Script:
        """Exactly these callbacks were raised since the last check, in this order."""
        return self._then(_ExpectCalls(calls))

    def expect_state(self, state: State) -> Script:
        return self._then(_ExpectState(state))

    def __add__(self, other: Script) -> Script:
        assert other.role is self.role
        return Script(self.role, self.steps + other.steps)

    def __str__(self) -> str:
        return "\n".join(f"{n:3}. {step}" for n, step in enumerate(self.steps, 1))

    def run(self, clock: VirtualClock) -> list[Cell]:
        """Play the script; the (state, event) pairs it caused, once all steps passed."""
        self._check_verified()
        side = Side(self.role, clock)
        try:
            for number, step in enumerate(self.steps, 1):
                try:
                    step.run(side)
                except AssertionError as exc:
                    raise AssertionError(
                        f"{self.role.value} script, step {number} ({step}): {exc}\n{self}"
                    ) from None
        finally:
            side.close()
        return side.exercised

    def _check_verified(self) -> None:
        unverified: _Cause | None = None
        for step in (*self.steps, None):
            if isinstance(step, _Expectation):
                unverified = None
                continue
            assert unverified is None, f"'{unverified}' is not followed by an expectation"
            if isinstance(step, _Cause):
                unverified = step


@dataclass
class Conformance:
    """Runs scripts on the test's loop and keeps the pairs they drove (the
    ``conformance`` fixture)."""

    clock: VirtualClock
    exercised: list[Cell] = field(default_factory=list)

    def run(self, script: Script) -> None:
        self.exercised += script.run(self.clock)
