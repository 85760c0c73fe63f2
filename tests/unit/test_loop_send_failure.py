"""A DicomNet SCU whose Part-10 file breaks while its C-STORE is being sent.

The SCP is a raw socket peer that reads slowly (a tiny receive buffer and nothing read
until the file is cut), so the SCU's loop is still inside the file when it shrinks. PS3.8
annex E allows no way to finish a half-sent message: the SCU must abort (A-ABORT, source
2, reason 0) and send nothing else, and its blocking wait must fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID
from rawpdu import A_ABORT, ASSOCIATE_RQ, P_DATA_TF, RawPdu, pdvs, recv_pdu

from dicomnet import (
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomCommandPriorityType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    DicomPduType,
    Timeouts,
    read_part10_header,
)
from dicomnet.pdu import (
    AssociateAC,
    PresentationContextAC,
    UserInformation,
    decode_pdu,
    encode_pdu,
)
from dicomnet.uids import EXPLICIT_VR_LE, IMPLEMENTATION_CLASS_UID

LOOPBACK = "127.0.0.1"
WAIT = 10.0
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
DATA_LENGTH = 40 << 20
# More than the loop can have read while the peer reads nothing: the kernel's send buffer
# (at most a few MiB), the peer's tiny receive buffer and the one MiB being produced.
READABLE = 8 << 20


class SlowRawScp:
    """Accepts one connection and answers its A-ASSOCIATE-RQ; reads PDUs on request."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        # inherited by the accepted socket: the SCU can get little ahead of our reads
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(1)
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.sock: socket.socket | None = None

    def accept(self) -> None:
        self.sock, _ = self.listener.accept()
        self.sock.settimeout(WAIT)

    def read_pdu(self) -> RawPdu | None:
        assert self.sock is not None
        return recv_pdu(self.sock)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.listener.close()


def write_image(path: Path) -> Path:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = "1.2.3.4.55"
    ds.PixelData = bytes(range(256)) * (DATA_LENGTH // 256)
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    ds.save_as(path, enforce_file_format=True)
    return path


def storage_request() -> DicomAssociate:
    request = DicomAssociate(True)
    request.Called = "RAW-SCP"
    request.Calling = "STORE-SCU"
    request.AddPresentationContext(1, DicomAssociateAcceptResultType.Success, CT_IMAGE_STORAGE)
    request.AddTransfer(1, EXPLICIT_VR_LE)
    return request


class SendWatcher(DicomNet):
    """Records the error codes ``OnSend`` reports."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.send_errors: list[DicomExceptionCode] = []

    def OnSend(self, error: DicomExceptionCode, pdu_type: DicomPduType, length: int) -> None:
        self.send_errors.append(error)


@pytest.fixture
def scp() -> Iterator[SlowRawScp]:
    DicomNet.Startup()
    peer = SlowRawScp()
    try:
        yield peer
    finally:
        peer.close()
        DicomNet.Shutdown()


def test_a_part10_file_truncated_mid_send_aborts_the_association(
    scp: SlowRawScp, tmp_path: Path
) -> None:
    path = write_image(tmp_path / "image.dcm")
    part10 = read_part10_header(path)
    scu = SendWatcher(None, timeouts=Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT))
    try:
        scu.Connect(None, 0, LOOPBACK, scp.port)
        scp.accept()
        scu.wait_connected(WAIT)
        scu.SendAssociateRequest(storage_request())
        rq = scp.read_pdu()
        assert rq is not None and rq[0] == ASSOCIATE_RQ
        ac = AssociateAC(
            called_ae="RAW-SCP",
            calling_ae="STORE-SCU",
            presentation_contexts=[PresentationContextAC(1, 0, EXPLICIT_VR_LE)],
            user_information=UserInformation(
                max_length=16384, implementation_class_uid=IMPLEMENTATION_CLASS_UID
            ),
        )
        assert scp.sock is not None
        scp.sock.sendall(encode_pdu(ac))
        scu.wait_associated(WAIT)

        message_id = scu.next_message_id()
        scu.SendCStoreRequest(
            1,
            message_id,
            part10.sop_class_uid,
            part10.sop_instance_uid,
            DicomCommandPriorityType.Medium,
            "",
            0,
            part10,
        )
        os.truncate(path, part10.data_offset + READABLE)

        received: list[RawPdu] = []
        while (pdu := scp.read_pdu()) is not None:
            received.append(pdu)
            if pdu[0] == A_ABORT:
                break
        assert received[-1][0] == A_ABORT
        abort = decode_pdu(received[-1].whole)
        assert (abort.source, abort.reason) == (2, 0)  # type: ignore[union-attr]
        data = received[:-1]
        assert {pdu_type for pdu_type, _ in data} == {P_DATA_TF}
        controls = [c for _, body in data for _, c, _ in pdvs(body)]
        assert controls[0] == 0x03
        assert set(controls[1:]) == {0x00}  # never a last fragment, never a new message
        assert len(controls) - 1 < DATA_LENGTH // 16000  # it stopped inside the data

        scp.sock.close()  # the peer closes after the A-ABORT, which ends the SCU's wait
        with pytest.raises(DicomException) as raised:
            scu.wait_response(message_id, WAIT)
        assert raised.value.Code == DicomExceptionCode.NetFailure  # the send failed, said so
        assert f"sending message {message_id}" in raised.value.message
        scu.wait_closed(WAIT)
        assert DicomExceptionCode.NetFailure in scu.send_errors  # OnSend heard it too
    finally:
        scu.Close()
