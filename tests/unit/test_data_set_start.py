"""``OnReceiveCStoreDataStart``: an SCP hears the first bytes of a C-STORE data set
while the rest is still arriving, then ``OnReceiveCStoreRequest`` once it is whole;
an association that ends before that brings no ``OnReceiveCStoreRequest``.

The SCU is a raw socket, so that the test decides when the rest of the data set is sent
(after the SCP heard its start) or that it never is (an A-ABORT instead).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO

import pytest
from pydicom import Dataset, dcmread
from rawpdu import A_ABORT, ASSOCIATE_AC, P_DATA_TF, pdata, pdu, pdvs, recv_pdu

from dicomnet import DicomCommandPriorityType, DicomCommandStatusType, DicomExceptionCode, DicomNet
from dicomnet.dimse.commands import DATA_SET_PRESENT, decode_command_set, encode_command_set
from dicomnet.dimse.datasets import encode_dataset
from dicomnet.pdu import (
    AssociateRQ,
    PresentationContextRQ,
    UserInformation,
    encode_pdu,
)
from dicomnet.server import STORAGE_AND_VERIFICATION, AcceptedConnection, AcceptingServer
from dicomnet.uids import EXPLICIT_VR_LE

WAIT = 10.0
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
INSTANCE = "1.2.3.4.5.6"
START = 16 << 10  # NetConfig.data_set_start_bytes
FRAGMENT = 8000


@dataclass
class Heard:
    starts: list[tuple[int, str, str, bytes, str, bool]] = field(default_factory=list)
    stores: list[tuple[int, str, bytes]] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    stored: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)


class StartRecorder(AcceptedConnection):
    heard: Heard

    def __init__(self, listener: AcceptingServer) -> None:
        super().__init__(listener)
        self.parse_received_data = False

    def OnReceiveCStoreDataStart(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_start: bytes,
        transfer_syntax: str,
    ) -> None:
        received = self.received_file
        exists = received is not None and os.path.isfile(received)
        self.heard.starts.append(
            (message_id, affected_class, instance, data_start, transfer_syntax, exists)
        )
        self.heard.started.set()

    def OnReceiveCStoreRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        move_message_id: int,
        data_set: Dataset | None,
    ) -> None:
        assert self.received_file is not None
        with open(self.received_file, "rb") as file:
            kept = file.read()
        self.heard.stores.append((message_id, instance, kept))
        self.heard.stored.set()
        self.SendCStoreResponse(
            presentation_id, message_id, affected_class, instance, DicomCommandStatusType.Success
        )

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        super().OnClose(error, net)
        self.heard.closed.set()


class StartServer(AcceptingServer):
    connection_type = StartRecorder


@pytest.fixture
def heard(tmp_path: object) -> Iterator[tuple[Heard, int]]:
    DicomNet.Startup()
    recorded = Heard()
    StartRecorder.heard = recorded
    server = StartServer("STORESCP", STORAGE_AND_VERIFICATION)
    try:
        server.Listen("127.0.0.1", 0)
        yield recorded, server.HostPort
    finally:
        server.Close()
        DicomNet.Shutdown()


def explicit_le_bytes(pixels: int) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = INSTANCE
    ds.PatientName = "START^TEST"
    ds.add_new("PixelData", "OB", bytes(range(256)) * (pixels // 256))
    return encode_dataset(ds, EXPLICIT_VR_LE)


def associate(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    rq = AssociateRQ(
        called_ae="STORESCP",
        calling_ae="RAWSCU",
        presentation_contexts=[PresentationContextRQ(1, CT_IMAGE_STORAGE, [EXPLICIT_VR_LE])],
        user_information=UserInformation(max_length=16384),
    )
    sock.sendall(encode_pdu(rq))
    answer = recv_pdu(sock)
    assert answer is not None and answer.type == ASSOCIATE_AC
    return sock


def store_command(message_id: int) -> bytes:
    command = encode_command_set(
        {
            "CommandField": 0x0001,
            "MessageID": message_id,
            "Priority": 0,
            "AffectedSOPClassUID": CT_IMAGE_STORAGE,
            "AffectedSOPInstanceUID": INSTANCE,
            "CommandDataSetType": DATA_SET_PRESENT,
        }
    )
    return pdata(1, 0x03, command)


def data_pdus(data: bytes, start: int, stop: int) -> bytes:
    """P-DATA-TF PDUs carrying ``data[start:stop]``, the last one marked last when
    ``stop`` is the end."""
    pdus = b""
    for offset in range(start, stop, FRAGMENT):
        end = min(offset + FRAGMENT, stop)
        last = end == len(data)
        pdus += pdata(1, 0x02 if last else 0x00, data[offset:end])
    return pdus


def test_the_start_is_heard_before_the_rest_arrives_then_the_whole_store(
    heard: tuple[Heard, int],
) -> None:
    recorded, port = heard
    data = explicit_le_bytes(200_000)
    sock = associate(port)
    try:
        sock.sendall(store_command(9) + data_pdus(data, 0, 3 * FRAGMENT))
        assert recorded.started.wait(WAIT)
        assert not recorded.stored.is_set()  # nothing more was sent yet
        ((message_id, sop_class, instance, start, syntax, exists),) = recorded.starts
        assert (message_id, sop_class, instance, syntax) == (
            9,
            CT_IMAGE_STORAGE,
            INSTANCE,
            EXPLICIT_VR_LE,
        )
        assert start == data[:START] and exists  # the spool file is there, being written
        sock.sendall(data_pdus(data, 3 * FRAGMENT, len(data)))
        response = recv_pdu(sock)
        assert response is not None and response.type == P_DATA_TF
        ((_, _, command),) = list(pdvs(response.body))
        assert decode_command_set(command)["Status"] == 0
        ((_, _, kept),) = recorded.stores
        assert dcmread(BytesIO(kept)).PatientName == "START^TEST"
        assert kept.endswith(data)
        assert len(recorded.starts) == 1  # once per data set
    finally:
        sock.close()


def test_a_data_set_within_the_start_is_only_heard_whole(heard: tuple[Heard, int]) -> None:
    recorded, port = heard
    data = explicit_le_bytes(4096)
    sock = associate(port)
    try:
        sock.sendall(store_command(3) + data_pdus(data, 0, len(data)))
        response = recv_pdu(sock)
        assert response is not None and response.type == P_DATA_TF
        assert recorded.stored.is_set() and recorded.starts == []
    finally:
        sock.close()


def test_an_association_aborted_after_the_start_brings_no_store(heard: tuple[Heard, int]) -> None:
    recorded, port = heard
    data = explicit_le_bytes(200_000)
    sock = associate(port)
    try:
        sock.sendall(store_command(4) + data_pdus(data, 0, 3 * FRAGMENT))
        assert recorded.started.wait(WAIT)
        sock.sendall(pdu(A_ABORT, bytes(4)))
        assert recorded.closed.wait(WAIT)
        assert recorded.stores == []
    finally:
        sock.close()
