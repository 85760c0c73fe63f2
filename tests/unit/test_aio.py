"""The DIMSE session driven from asyncio against the selector-loop SCP (loopback).

The SCP is a threaded ``DicomNet`` server in this process; the SCU is ``AsyncAssociation``
on an asyncio loop: the same session core under two transports.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet import (
    AssociationAborted,
    AssociationRejected,
    DicomAssociate,
    DicomCommandStatusType,
    DicomCommandType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    NetConfig,
    Timeouts,
)
from dicomnet.aio import AsyncAssociation
from dicomnet.server import STORAGE_AND_VERIFICATION, AcceptedConnection, AcceptingServer
from dicomnet.storage import keep_received_file
from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE, VERIFICATION

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
WAIT = 10.0
CONFIG = NetConfig(timeouts=Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT))


class Store(AcceptedConnection):
    """Keeps each received instance in the server's ``out`` directory; C-STOREs whose
    patient is "Hold^Answer" get no response (for the timeout tests)."""

    listener: StoreServer

    def OnReceiveCStoreRequest(  # type: ignore[override]
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        priority: Any,
        move_ae: str,
        move_message_id: int,
        data_set: Dataset | None,
    ) -> None:
        received = self.received_file
        assert received is not None
        patient = data_set.get("PatientName") if data_set is not None else None
        if patient == "Hold^Answer":
            return
        if patient == "Take^File":  # left in the spool folder, the test's to look at
            self.listener.taken.append(self.take_received_file())
        elif patient != "Leave^File":
            keep_received_file(received, self.Server.out, affected_class, instance)  # type: ignore[union-attr]
        self.SendCStoreResponse(
            presentation_id, message_id, affected_class, instance, DicomCommandStatusType.Success
        )


class StoreServer(AcceptingServer):
    connection_type = Store

    def __init__(self, spool: Path, out: Path) -> None:
        super().__init__(
            "STORESCP", STORAGE_AND_VERIFICATION, temp_path=str(spool), check_called_aet=True
        )
        self.out = out
        self.spool = spool
        self.taken: list[str | None] = []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StoreServer]:
    DicomNet.Startup()
    (tmp_path / "spool").mkdir()
    (tmp_path / "out").mkdir()
    listener = StoreServer(tmp_path / "spool", tmp_path / "out")
    listener.Listen("127.0.0.1", 0, 8)
    try:
        yield listener
    finally:
        listener.Dispose()
        DicomNet.Shutdown()


def request(called: str = "STORESCP") -> DicomAssociate:
    associate = DicomAssociate(True)
    associate.Called, associate.Calling = called, "ASYNCSCU"
    associate.AddPresentationContext(1, 0, VERIFICATION)
    associate.AddTransfer(1, IMPLICIT_VR_LE)
    associate.AddPresentationContext(3, 0, CT_IMAGE_STORAGE)
    associate.AddTransfer(3, EXPLICIT_VR_LE)
    return associate


def image(patient: str = "Async^Test") -> Dataset:
    data = Dataset()
    data.SOPClassUID = CT_IMAGE_STORAGE
    data.SOPInstanceUID = generate_uid()
    data.PatientName = patient
    data.Rows = data.Columns = 64
    data.BitsAllocated = data.BitsStored = 16
    data.HighBit = 15
    data.PixelRepresentation = 0
    data.SamplesPerPixel = 1
    data.PhotometricInterpretation = "MONOCHROME2"
    data.PixelData = os.urandom(64 * 64 * 2)
    return data


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 2 * WAIT))


def test_echo_and_release(server: StoreServer) -> None:
    async def scenario() -> int:
        association = await AsyncAssociation.connect(
            "127.0.0.1", server.HostPort, request(), config=CONFIG
        )
        response = await association.echo()
        await association.release()
        return response.status

    assert run(scenario()) == DicomCommandStatusType.Success


def test_store_a_data_set_and_a_part10_file(server: StoreServer, tmp_path: Path) -> None:
    by_path = image("From^File")
    by_path.file_meta = FileMetaDataset()
    by_path.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    by_path.file_meta.MediaStorageSOPClassUID = by_path.SOPClassUID
    by_path.file_meta.MediaStorageSOPInstanceUID = by_path.SOPInstanceUID
    path = tmp_path / "file.dcm"
    by_path.save_as(path, enforce_file_format=True)
    in_memory = image()

    async def scenario() -> list[int]:
        association = await AsyncAssociation.connect(
            "127.0.0.1", server.HostPort, request(), config=CONFIG
        )
        statuses = [(await association.store(in_memory)).status]
        statuses.append((await association.store(str(path))).status)
        await association.release()
        return statuses

    assert run(scenario()) == [0, 0]
    for sent in (in_memory, by_path):
        [kept] = server.out.glob(f"*{sent.SOPInstanceUID}")
        received = dcmread(kept)
        assert received.PixelData == sent.PixelData
        assert received.PatientName == sent.PatientName


def test_a_taken_spool_file_stays_and_one_left_is_deleted(server: StoreServer) -> None:
    taken, left = image("Take^File"), image("Leave^File")

    async def scenario() -> list[int]:
        association = await AsyncAssociation.connect(
            "127.0.0.1", server.HostPort, request(), config=CONFIG
        )
        statuses = [(await association.store(data)).status for data in (taken, left)]
        await association.release()
        return statuses

    assert run(scenario()) == [0, 0]
    gc.collect()  # the parsed data sets are gone: a file not taken went with its own
    [path] = server.taken
    assert path is not None and dcmread(path).SOPInstanceUID == taken.SOPInstanceUID
    assert [p.name for p in server.spool.iterdir()] == [Path(path).name]


def test_a_reject_raises(server: StoreServer) -> None:
    async def scenario() -> None:
        await AsyncAssociation.connect(
            "127.0.0.1", server.HostPort, request(called="SOMEONE-ELSE"), config=CONFIG
        )

    with pytest.raises(AssociationRejected, match="called AE title"):
        run(scenario())


def test_silence_fails_the_request_and_the_association_stays(server: StoreServer) -> None:
    async def scenario() -> int:
        association = await AsyncAssociation.connect(
            "127.0.0.1", server.HostPort, request(), config=CONFIG
        )
        with pytest.raises(DicomException) as raised:
            await association.request(
                DicomCommandType.CStore,
                3,
                image("Hold^Answer"),
                timeout=0.2,
                affected_class=CT_IMAGE_STORAGE,
                instance="1.2.3",
                priority=0,
                move_ae="",
                move_message_id=0,
            )
        assert raised.value.Code == DicomExceptionCode.NetTimeout
        association.abort()
        return 0

    assert run(scenario()) == 0


def test_an_abort_fails_what_is_waiting(server: StoreServer) -> None:
    async def scenario() -> None:
        association = await AsyncAssociation.connect(
            "127.0.0.1", server.HostPort, request(), config=CONFIG
        )
        pending = asyncio.ensure_future(association.store(image("Hold^Answer")))
        server_side = server.GetClient(0)
        server_side.SendAbort()
        await pending

    with pytest.raises(AssociationAborted):
        run(scenario())
