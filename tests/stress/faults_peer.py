"""Peers that fail on purpose, written against the socket, for the fault tests.

``RawStoreScp`` is a storage SCP in a thread: it accepts associations one after the
other (every proposed context, in its first transfer syntax), answers each C-STORE with
Success and keeps the data set bytes it received; told to, it rejects every association
or resets the connection (SO_LINGER 0, so the peer sees ECONNRESET as from a crashed
host) at a chosen point: after the A-ASSOCIATE-RQ, inside the data set of a chosen
C-STORE, or after the A-RELEASE-RQ. ``RawScu`` plays the requestor's side step by step.

Run as a program (``python faults_peer.py half-store PORT``) it is an SCU in a process
of its own that associates, sends a C-STORE command and half of its data set, says so
on stdout and then blocks, to be killed with SIGKILL.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rawpdu import (
    ASSOCIATE_AC,
    ASSOCIATE_RQ,
    P_DATA_TF,
    RELEASE_RP,
    RELEASE_RQ,
    pdata,
    pdu,
    recv_pdu,
)

from dicomnet.dimse.commands import decode_command_set, encode_command_set
from dicomnet.pdu import (
    CONTROL_COMMAND,
    CONTROL_LAST,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
    split_pdvs,
)
from dicomnet.uids import EXPLICIT_VR_LE, IMPLEMENTATION_CLASS_UID

LOOPBACK = "127.0.0.1"
WAIT = 15.0
C_STORE_RQ, C_STORE_RSP, C_ECHO_RQ, C_FIND_RQ = 0x0001, 0x8001, 0x0030, 0x0020
NO_DATA_SET, DATA_SET_PRESENT = 0x0101, 0x0000
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MAX_PDU = 16384


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN, as a crashed peer's kernel would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def command_pdata(context_id: int, fields: dict[str, object]) -> bytes:
    return pdata(context_id, CONTROL_COMMAND | CONTROL_LAST, encode_command_set(fields))


@dataclass
class Received:
    """One C-STORE a ``RawStoreScp`` received whole: its data set bytes."""

    sop_class: str
    sop_instance: str
    data_set: bytes


@dataclass
class RawStoreScp:
    """A storage SCP on the socket that can reject, or reset at a chosen point.

    ``fault``: None (behave), "reject" (A-ASSOCIATE-RJ, permanent, no reason given),
    "associate" (reset after reading the RQ), "data" (reset inside the data set of the
    C-STORE after ``stores_before_fault`` good ones, once ``bytes_before_fault`` of it
    arrived), "release" (reset after reading the A-RELEASE-RQ). ``on_data(received)``
    runs for every data fragment with the bytes of the current data set so far.
    ``receive_buffer`` shrinks the socket's receive buffer, so the sender cannot get
    far ahead of what this peer has read.
    """

    fault: str | None = None
    stores_before_fault: int = 0
    bytes_before_fault: int = 1
    on_data: Callable[[int], None] | None = None
    receive_buffer: int | None = None
    received: list[Received] = field(default_factory=list)
    faults_done: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.socket()
        if self.receive_buffer is not None:  # inherited by accepted sockets
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(8)
        self.port: int = self.listener.getsockname()[1]
        self.associations = 0
        self._thread = threading.Thread(target=self._serve, name="raw-store-scp", daemon=True)

    def __enter__(self) -> RawStoreScp:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # shutdown() wakes the blocked accept(); close() alone would not
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the raw SCP thread did not stop"

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.settimeout(WAIT)
            try:
                self._associate(sock)
            except OSError:  # the SCU went away: next association
                pass
            finally:
                sock.close()

    def _associate(self, sock: socket.socket) -> None:
        rq_pdu = recv_pdu(sock, may_break_off=True)
        if rq_pdu is None or rq_pdu.type != ASSOCIATE_RQ:
            return
        self.associations += 1
        rq = decode_pdu(rq_pdu.whole)
        assert isinstance(rq, AssociateRQ)
        if self.fault == "reject":
            sock.sendall(encode_pdu(AssociateRJ(1, 1, 1)))
            return
        if self.fault == "associate":
            self._reset(sock)
            return
        contexts = [
            PresentationContextAC(c.context_id, 0, c.transfer_syntaxes[0])
            for c in rq.presentation_contexts
        ]
        ac = AssociateAC(
            rq.called_ae,
            rq.calling_ae,
            contexts,
            UserInformation(max_length=MAX_PDU, implementation_class_uid=IMPLEMENTATION_CLASS_UID),
        )
        sock.sendall(encode_pdu(ac))
        self._serve_association(sock)

    def _serve_association(self, sock: socket.socket) -> None:
        command_bytes = bytearray()
        command: dict[str, object] | None = None
        data = bytearray()
        while (received := recv_pdu(sock, may_break_off=True)) is not None:
            pdu_type, body = received
            if pdu_type == RELEASE_RQ:
                if self.fault == "release":
                    self._reset(sock)
                    return
                sock.sendall(pdu(RELEASE_RP, bytes(4)))
                return
            if pdu_type != P_DATA_TF:
                return  # A-ABORT, or anything this peer does not play
            for context_id, control, fragment in split_pdvs(memoryview(body)):
                if control & CONTROL_COMMAND:
                    command_bytes += fragment
                    if control & CONTROL_LAST:
                        command = decode_command_set(command_bytes)
                        command_bytes = bytearray()
                        if command["CommandDataSetType"] == NO_DATA_SET:
                            self._answer(sock, context_id, command)
                    continue
                data += fragment
                if self.on_data is not None:
                    self.on_data(len(data))
                if (
                    self.fault == "data"
                    and len(self.received) == self.stores_before_fault
                    and len(data) >= self.bytes_before_fault
                ):
                    self._reset(sock)
                    return
                if control & CONTROL_LAST:
                    assert command is not None
                    self.received.append(
                        Received(
                            str(command["AffectedSOPClassUID"]),
                            str(command["AffectedSOPInstanceUID"]),
                            bytes(data),
                        )
                    )
                    data = bytearray()
                    self._answer(sock, context_id, command)

    def _answer(self, sock: socket.socket, context_id: int, command: dict[str, object]) -> None:
        field = int(command["CommandField"])  # type: ignore[call-overload]
        fields: dict[str, object] = {
            "AffectedSOPClassUID": command.get("AffectedSOPClassUID"),
            "CommandField": field | 0x8000,
            "MessageIDBeingRespondedTo": command["MessageID"],
            "CommandDataSetType": NO_DATA_SET,
            "Status": 0x0000,
            "AffectedSOPInstanceUID": command.get("AffectedSOPInstanceUID"),
        }
        sock.sendall(command_pdata(context_id, fields))

    def _reset(self, sock: socket.socket) -> None:
        self.faults_done += 1
        reset(sock)


class RawScu:
    """The requestor's side, one step at a time, to stop (reset) between any two."""

    def __init__(self, port: int, called: str = "ANY-SCP") -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=WAIT)
        self.called = called

    def __enter__(self) -> RawScu:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send_associate_request(self, abstract_syntax: str, context_id: int = 1) -> None:
        rq = AssociateRQ(
            called_ae=self.called,
            calling_ae="FAULTY-SCU",
            presentation_contexts=[
                PresentationContextRQ(context_id, abstract_syntax, [EXPLICIT_VR_LE])
            ],
            user_information=UserInformation(
                max_length=MAX_PDU, implementation_class_uid=IMPLEMENTATION_CLASS_UID
            ),
        )
        self.sock.sendall(encode_pdu(rq))

    def associate(self, abstract_syntax: str = SECONDARY_CAPTURE) -> None:
        self.send_associate_request(abstract_syntax)
        reply = recv_pdu(self.sock)
        assert reply is not None and reply.type == ASSOCIATE_AC, reply

    def send_store_command(self, sop_instance: str, message_id: int = 1) -> None:
        fields: dict[str, object] = {
            "AffectedSOPClassUID": SECONDARY_CAPTURE,
            "CommandField": C_STORE_RQ,
            "MessageID": message_id,
            "Priority": 0,
            "CommandDataSetType": DATA_SET_PRESENT,
            "AffectedSOPInstanceUID": sop_instance,
        }
        self.sock.sendall(command_pdata(1, fields))

    def send_data(self, data: bytes, last: bool = False) -> None:
        """``data`` in fragments that fit the SCP's maximum PDU length."""
        step = MAX_PDU - 12
        for start in range(0, len(data), step):
            end = start + step
            is_last = last and end >= len(data)
            self.sock.sendall(pdata(1, CONTROL_LAST if is_last else 0, data[start:end]))

    def send_find(self, sop_class: str, identifier: bytes, message_id: int = 1) -> None:
        fields: dict[str, object] = {
            "AffectedSOPClassUID": sop_class,
            "CommandField": C_FIND_RQ,
            "MessageID": message_id,
            "Priority": 0,
            "CommandDataSetType": DATA_SET_PRESENT,
        }
        self.sock.sendall(command_pdata(1, fields))
        self.sock.sendall(pdata(1, CONTROL_LAST, identifier))

    def send_release_request(self) -> None:
        self.sock.sendall(pdu(RELEASE_RQ, bytes(4)))

    def reset(self) -> None:
        reset(self.sock)


def half_store(port: int, length: int) -> None:
    """Associate, send a C-STORE and half of a ``length``-byte data set, then block."""
    scu = RawScu(port)
    scu.associate()
    scu.send_store_command("1.2.826.0.1.3680043.8.498.1")
    scu.send_data(bytes(length // 2))
    print("sent half", flush=True)
    scu.sock.settimeout(None)
    scu.sock.recv(1)  # until killed


if __name__ == "__main__":
    assert sys.argv[1] == "half-store", sys.argv
    half_store(int(sys.argv[2]), int(sys.argv[3]))
