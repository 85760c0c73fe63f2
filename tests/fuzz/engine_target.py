"""Coverage-guided fuzz target: byte streams fed to the protocol engine as a remote peer.

One input drives one association. Its first byte picks the side and the layer (the
acceptor or the requestor, the bare ``Connection`` or the ``DimseSession`` above it);
the rest is a list of operations: feed the next bytes as one read, or move the fake
clock and run the timers. A small application answers what the peer asks (accepts the
association, answers C-ECHO, refuses other requests, releases) so the fuzzer reaches
every state a real peer can.

After every operation the invariants hold: nothing but the engine's own events comes
out (no exception escapes), every PDU queued for sending decodes and nothing follows an
A-ABORT, the receive buffer stays within what arrived plus the configured limits, and
at the end every spool file is gone and the transport was closed once.

Run by hand for as long as you like (atheris, when installed)::

    .venv/bin/python -m tests.fuzz.engine_target --seconds 600 CORPUS_DIR

A crash is saved by libFuzzer as ``crash-<sha1>`` in the current directory; replay it
with ``--replay FILE``. Without atheris the same target runs under hypothesis in
``tests/fuzz/test_engine_fuzz.py``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dicomnet import events as ev
from dicomnet.associate import AcceptPolicy, DicomAssociate, build_accept
from dicomnet.config import NetConfig
from dicomnet.connection import Connection
from dicomnet.dimse.commands import NO_DATA_SET, RESPONSE_BIT
from dicomnet.dimse.messages import MESSAGES
from dicomnet.enums import DicomCommandType
from dicomnet.errors import DicomException, DicomExceptionCode, PDUError
from dicomnet.pdu import (
    PDU_HEADER,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    decode_pdu,
    split_pdvs,
)
from dicomnet.session import AssociationAccepted, AssociationRequested, DimseReceived, DimseSession
from dicomnet.timeouts import Timeouts
from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE, VERIFICATION

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SYNTAXES = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"]
ABSTRACT_SYNTAXES = (VERIFICATION, CT_IMAGE_STORAGE, STUDY_ROOT_FIND)

MAX_PDU = 16384  # what the harness receives: the recorded streams' PDUs fit
# Small buffers and short limits, so that growing, compacting and every timer are
# reached by inputs of a few kilobytes.
CONFIG = NetConfig(
    timeouts=Timeouts(artim=30.0, acse=30.0, idle=60.0, dimse=45.0),
    hard_pdu_limit=1 << 16,
    max_non_pdata_length=1 << 14,
    receive_buffer=512,
    max_receive_buffer=4096,
)

# Scenarios, chosen by the low two bits of the first input byte.
ACCEPTOR, REQUESTOR, ACCEPTOR_SESSION, REQUESTOR_SESSION = range(4)

# Operation codes (one byte each, then the bytes to feed for the first two kinds).
SHORT_READ_LIMIT = 0xE0  # op < E0H: feed the next op + 1 bytes
LONG_READ_LIMIT = 0xF0  # E0H <= op < F0H: feed the next (op - DFH) KiB
TIMER_STEP = 10.0  # F0H <= op: advance the clock (op - F0H) * 10 s, run due timers
RUN_TIMERS_NOW = 0xF0  # ...and F0H runs the timers at once, due or not


class InvariantViolation(AssertionError):
    """The engine did something no peer input may make it do."""


def operations(data: bytes) -> Iterator[bytes | float]:
    """The input as reads (bytes) and clock steps (seconds, 0.0 meaning "run now")."""
    offset = 0
    while offset < len(data):
        op = data[offset]
        offset += 1
        if op < LONG_READ_LIMIT:
            size = op + 1 if op < SHORT_READ_LIMIT else (op - SHORT_READ_LIMIT + 1) << 10
            chunk = data[offset : offset + size]
            offset += size
            if chunk:
                yield chunk
        else:
            yield (op - RUN_TIMERS_NOW) * TIMER_STEP


def encode_operations(reads: list[bytes], clock_steps: dict[int, int] | None = None) -> bytes:
    """The input that feeds ``reads`` in order (split as needed); ``clock_steps`` maps a
    read's index to a timer op byte sent before it. Builds the seed corpus."""
    out = bytearray()
    for index, read in enumerate(reads):
        if clock_steps and index in clock_steps:
            out.append(clock_steps[index])
        view = memoryview(read)
        while view:
            size = min(len(view), SHORT_READ_LIMIT)
            out.append(size - 1)
            out += view[:size]
            view = view[size:]
    return bytes(out)


# -- what the harness checks about the engine's output ---------------------------------


@dataclass
class OutputChecker:
    """Frames and decodes every byte the engine queued for the peer."""

    pending: bytearray = field(default_factory=bytearray)
    aborted: bool = False
    pdu_types: list[int] = field(default_factory=list)

    def take(self, connection: Connection) -> None:
        """Write out everything the engine queued, as the loop would."""
        queue = connection.send_queue
        while queue:
            buffers = queue.peek(1 << 20)
            for buffer in buffers:
                self.feed(buffer)
            queue.consume(sum(len(buffer) for buffer in buffers))

    def feed(self, data: bytes | memoryview) -> None:
        """Check the PDUs ``data`` completes."""
        self.pending += data
        while len(self.pending) >= PDU_HEADER.size:
            pdu_type, length = PDU_HEADER.unpack_from(self.pending)
            end = PDU_HEADER.size + length
            if len(self.pending) < end:
                return
            raw = bytes(self.pending[:end])
            del self.pending[:end]
            # Only another A-ABORT may follow one (AA-7 answers an invalid PDU in Sta13).
            if self.aborted and pdu_type != 0x07:
                raise InvariantViolation(f"PDU type {pdu_type:02X}H queued after an A-ABORT")
            try:
                pdu = decode_pdu(raw)
                if pdu_type == 0x04:
                    list(split_pdvs(memoryview(raw)[PDU_HEADER.size :]))
            except PDUError as exc:
                raise InvariantViolation(f"queued PDU does not decode: {exc}") from exc
            self.aborted = self.aborted or isinstance(pdu, Abort)
            self.pdu_types.append(pdu_type)

    def finish(self) -> None:
        if self.pending:
            raise InvariantViolation(f"{len(self.pending)} bytes queued that end mid-PDU")


# -- the small application on top ------------------------------------------------------


def _request_pdu() -> AssociateRQ:
    # Every odd context ID, so the recorded accepts find their IDs proposed.
    contexts = [
        PresentationContextRQ(context_id, ABSTRACT_SYNTAXES[index % 3], SYNTAXES[:2])
        for index, context_id in enumerate(range(1, 256, 2))
    ]
    info = UserInformation(max_length=MAX_PDU, implementation_class_uid="1.2.3.4")
    return AssociateRQ("FUZZ-SCP", "FUZZ-SCU", contexts, info)


def _accept_pdu(rq: AssociateRQ) -> AssociateAC:
    """Accept every context with its first proposed transfer syntax (4 = none given)."""
    contexts = [
        PresentationContextAC(pc.context_id, 0, pc.transfer_syntaxes[0])
        if pc.transfer_syntaxes
        else PresentationContextAC(pc.context_id, 4, "")
        for pc in rq.presentation_contexts
    ]
    info = UserInformation(max_length=MAX_PDU, implementation_class_uid="1.2.3.4")
    return AssociateAC(rq.called_ae, rq.calling_ae, contexts, info, rq.application_context)


_REJECT = AssociateRJ(1, 1, 1)  # permanent, service user, no reason given
_POLICY = AcceptPolicy(
    supported={abstract: SYNTAXES for abstract in ABSTRACT_SYNTAXES},
    requestor_scp_role=[CT_IMAGE_STORAGE],
    max_length=MAX_PDU,
    async_ops_window=(2, 2),
)


def _echo_command(message_id: int) -> dict[str, object]:
    arguments = {"message_id": message_id, "affected_class": VERIFICATION}
    return MESSAGES[DicomCommandType.CEcho].encode(arguments, has_data_set=False)


def _echo_response(message_id: int) -> dict[str, object]:
    return {
        "CommandField": DicomCommandType.CEcho | RESPONSE_BIT,
        "MessageIDBeingRespondedTo": message_id,
        "AffectedSOPClassUID": VERIFICATION,
        "Status": 0,
        "CommandDataSetType": NO_DATA_SET,
    }


def _answer(action: Callable[[], None]) -> None:
    """Run an application answer. The association may be gone already (the read that
    asked also ended it): that, and only that, is an ordinary DicomException."""
    try:
        action()
    except DicomException as exc:
        if exc.Code != DicomExceptionCode.NetNotConnected:
            raise


def _verification_context(connection: Connection) -> int | None:
    contexts = connection.contexts.values()
    found = [c.context_id for c in contexts if c.abstract_syntax == VERIFICATION]
    return min(found) if found else None


class EngineApplication:
    """Drives a bare ``Connection`` the way ``DimseSession`` would, minus DIMSE rules."""

    def __init__(self, is_requestor: bool) -> None:
        self.connection = Connection(is_requestor=is_requestor, config=CONFIG)

    def start(self, now: float) -> None:
        self.connection.connection_made(now)
        if self.connection.is_requestor:
            self.connection.send_associate_rq(_request_pdu(), now)

    def feed(self, data: bytes, now: float) -> None:
        _feed(self.connection.get_buffer, self.connection.buffer_updated, data, now)

    def get_timer(self) -> float | None:
        return self.connection.get_timer()

    def handle_timer(self, now: float) -> None:
        self.connection.handle_timer(now)

    def lost(self, now: float) -> None:
        self.connection.connection_lost(now)

    def react(self, now: float) -> list[object]:
        """Take the events and answer them; return them."""
        connection = self.connection
        events: list[object] = []
        while batch := connection.next_events():
            events += batch
            for event in batch:
                self._react_to(event, now)
        return events

    def _react_to(self, event: object, now: float) -> None:
        connection = self.connection
        if isinstance(event, ev.AssociateRequestReceived):
            _answer(lambda: self._accept_or_reject(event.pdu, now))
        elif isinstance(event, ev.AssociateAcceptReceived):
            context_id = _verification_context(connection)
            if context_id is not None:
                _answer(lambda: connection.send_message(context_id, _echo_command(1), None, now))
        elif isinstance(event, ev.MessageReceived):
            message = event.message
            if message.command_field == DicomCommandType.CEcho:
                response = _echo_response(message.message_id or 0)
                _answer(lambda: connection.send_message(message.context_id, response, None, now))
            elif message.command_field == DicomCommandType.CEcho | RESPONSE_BIT:
                _answer(lambda: connection.send_release_rq(now))
        elif isinstance(event, ev.ReleaseRequested):
            _answer(lambda: connection.send_release_rp(now))

    def _accept_or_reject(self, rq: AssociateRQ, now: float) -> None:
        try:
            self.connection.send_associate_ac(_accept_pdu(rq), now)
        except PDUError:  # the request's values cannot be echoed in an accept
            self.connection.send_associate_rj(_REJECT, now)


class SessionApplication(EngineApplication):
    """Drives a ``DimseSession``: accepts by policy, answers C-ECHO, refuses the rest."""

    def __init__(self, is_requestor: bool, spool: str) -> None:
        self.session = DimseSession(
            is_requestor=is_requestor, config=CONFIG, temp_path=spool, parse_received_data=False
        )
        self.connection = self.session.engine

    def start(self, now: float) -> None:
        session = self.session
        session.connection_made(now)
        if session.is_requestor:
            session.send_associate_rq(DicomAssociate.from_pdu(_request_pdu()), now)

    def feed(self, data: bytes, now: float) -> None:
        _feed(self.session.get_buffer, self.session.buffer_updated, data, now)

    def get_timer(self) -> float | None:
        return self.session.get_timer()

    def handle_timer(self, now: float) -> None:
        self.session.handle_timer(now)

    def lost(self, now: float) -> None:
        self.session.connection_lost(now)

    def react(self, now: float) -> list[object]:
        events: list[object] = []
        while batch := self.session.next_events(now):
            events += batch
            for event in batch:
                self._react_to(event, now)
        return events

    def _react_to(self, event: object, now: float) -> None:
        session = self.session
        if isinstance(event, AssociationRequested):
            _answer(lambda: self._accept_or_reject_request(event.request, now))
        elif isinstance(event, AssociationAccepted):
            context_id = _verification_context(self.connection)
            if context_id is not None:
                message_id = session.next_message_id()
                command = _echo_command(message_id)
                _answer(lambda: session.send(context_id, command, None, now))
                session.expect_response(message_id, 20.0, now)
        elif isinstance(event, DimseReceived):
            try:
                self._serve(event, now)
            finally:
                session.finished(event)
        elif isinstance(event, ev.ReleaseRequested):
            _answer(lambda: session.send_release_rp(now))

    def _serve(self, event: DimseReceived, now: float) -> None:
        session = self.session
        message = event.message
        if event.final:  # the answer to our C-ECHO: done
            _answer(lambda: session.send_release_rq(now))
        if not event.expects_response:
            return
        if message.command_field == DicomCommandType.CEcho:
            response = _echo_response(message.message_id or 0)
            _answer(lambda: session.send(message.context_id, response, None, now))
        else:
            _answer(lambda: session.refuse_unhandled(message, now))

    def _accept_or_reject_request(self, request: DicomAssociate, now: float) -> None:
        try:
            self.session.send_associate_ac(build_accept(request, _POLICY), now)
        except DicomException:  # nothing of the request can be echoed in an accept
            self.session.send_associate_rj(_REJECT, now)


def _feed(
    get_buffer: Callable[[], memoryview],
    buffer_updated: Callable[[int, float], None],
    data: bytes,
    now: float,
) -> None:
    """One read of ``data``, as the loop does it: into the engine's own buffer."""
    view = memoryview(data)
    while view:
        buffer = get_buffer()
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        buffer.release()
        view = view[size:]
        buffer_updated(size, now)


# -- one input -------------------------------------------------------------------------


def run_one(data: bytes) -> None:
    """Play ``data`` against a fresh engine; raise ``InvariantViolation`` (or whatever
    escaped the engine) if anything goes wrong."""
    if not data:
        return
    with tempfile.TemporaryDirectory(prefix="dicomnet-fuzz-") as spool:
        _play(data, spool)
        leftovers = sorted(path.name for path in Path(spool).iterdir())
        if leftovers:
            raise InvariantViolation(f"spool files left behind: {leftovers}")


def _play(data: bytes, spool: str) -> None:
    scenario = data[0] & 3
    app = (
        SessionApplication(scenario == REQUESTOR_SESSION, spool)
        if scenario in (ACCEPTOR_SESSION, REQUESTOR_SESSION)
        else EngineApplication(scenario == REQUESTOR)
    )
    connection = app.connection
    output = OutputChecker()
    now = 1000.0
    arrived = closed = 0
    app.start(now)
    for operation in operations(data[1:]):
        if connection.is_closed:
            break
        if isinstance(operation, bytes):
            arrived += len(operation)
            app.feed(operation, now)
        else:
            now += operation
            deadline = app.get_timer()
            if operation == 0.0 or (deadline is not None and deadline <= now):
                app.handle_timer(now)
        closed += _count_closes(app.react(now))
        output.take(connection)
        _check_buffer(connection, arrived)
    if not connection.is_closed:
        app.lost(now)
        closed += _count_closes(app.react(now))
        output.take(connection)
    output.finish()
    if closed != 1:
        raise InvariantViolation(f"TransportClosed reported {closed} times")


def _count_closes(events: list[object]) -> int:
    return sum(isinstance(event, ev.TransportClosed) for event in events)


def _check_buffer(connection: Connection, arrived: int) -> None:
    # The buffer may double what arrived of a PDU, or reach the busy-connection limit;
    # never what a length field claims.
    size = len(connection._rbuf)
    limit = max(CONFIG.max_receive_buffer, 2 * arrived + PDU_HEADER.size)
    if size > limit:
        raise InvariantViolation(f"receive buffer of {size} bytes after {arrived} arrived")


# -- seeds -------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pdus"


def recorded_streams() -> dict[str, tuple[list[bytes], list[bytes]]]:
    """Each recorded connection as (requestor's PDUs, acceptor's PDUs)."""
    streams: dict[str, tuple[list[bytes], list[bytes]]] = {}
    for path in sorted(FIXTURES.glob("*.pdus")):
        sent: tuple[list[bytes], list[bytes]] = ([], [])
        for line in path.read_text().splitlines():
            direction, _, hex_pdu = line.partition(" ")
            sent[0 if direction == ">" else 1].append(bytes.fromhex(hex_pdu))
        streams[path.stem] = sent
    return streams


def seed_corpus() -> list[bytes]:
    """Every recorded stream, played at every scenario, plus one with clock steps."""
    seeds = []
    for requestor_pdus, acceptor_pdus in recorded_streams().values():
        for scenario in range(4):
            peer = acceptor_pdus if scenario in (REQUESTOR, REQUESTOR_SESSION) else requestor_pdus
            seeds.append(bytes([scenario]) + encode_operations(peer))
            steps = {index: 0xF2 for index in range(len(peer))}  # 20 s before each PDU
            seeds.append(bytes([scenario]) + encode_operations(peer, steps))
    return seeds


# -- command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="time budget (default 60)")
    parser.add_argument("--replay", type=Path, help="run one saved input and exit")
    parser.add_argument("corpus", nargs="?", type=Path, help="corpus directory, kept between runs")
    args, libfuzzer_args = parser.parse_known_args(argv)
    if args.replay is not None:
        run_one(args.replay.read_bytes())
        print(f"{args.replay}: no failure")
        return 0
    if args.corpus is None:
        parser.error("a corpus directory is needed (it is created and seeded if new)")
    import atheris

    logging.disable(logging.CRITICAL)  # a warning per bad input would bury the report
    args.corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(seed_corpus()):
        (args.corpus / f"seed-{index:03d}").write_bytes(seed)
    _instrument_dicomnet(atheris.instrument_func)
    fuzzer_argv = [sys.argv[0], f"-max_total_time={args.seconds}", *libfuzzer_args]
    atheris.Setup([*fuzzer_argv, str(args.corpus)], run_one)
    atheris.Fuzz()  # runs until the budget is spent, then ends the process
    return 0


def _instrument_dicomnet(instrument: Callable[[types.FunctionType], object]) -> None:
    """Coverage feedback from dicomnet's own code only: instrumenting pydicom and the
    standard library too would slow every run for branches that are not ours."""
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith("dicomnet"):
            instrument(obj)


if __name__ == "__main__":
    sys.exit(main())
