#!/usr/bin/env python3
"""Benchmark peers: minimal storage/verification SCUs and SCPs on dicomnet and pynetdicom.

Each role runs as its own process so that ``bench/run.py`` can measure its CPU time and
peak memory alone. The roles do exactly what the matching DCMTK programs do in the
benchmark (C-STORE of Part-10 files, C-ECHO, a storage SCP that writes each received
instance to a directory) and nothing else: no logging, no progress output.

    peers.py dicomnet-scp OUTDIR PORT      peers.py pynetdicom-scp OUTDIR PORT
    peers.py dicomnet-store INDIR PORT     peers.py pynetdicom-store INDIR PORT
    peers.py dicomnet-echo COUNT PORT      peers.py pynetdicom-echo COUNT PORT

Every role takes ``--pdu`` (the maximum PDU length it announces); the dicomnet roles
also ``--tls KEY CERT CA`` (TLS with mutual authentication, the default profile). SCUs
exit 0 when every
request succeeded; otherwise they print the failure on stderr and exit 1. SCPs run until
they are killed.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The libraries are imported inside each role, so a process loads only the one it uses.
if TYPE_CHECKING:
    from pydicom import Dataset
    from pynetdicom.association import Association
    from pynetdicom.events import Event

    from dicomnet import DicomAssociate, DicomCommandPriorityType, DicomExceptionCode, DicomNet

LOOPBACK = "127.0.0.1"
SCU_AE = "BENCHSCU"
SCP_AE = "BENCHSCP"
SUCCESS = 0x0000


TlsFiles = tuple[str, str, str]
"""Own private key, own certificate, trusted CA certificate (PEM files)."""


def _secure(net: DicomNet, tls: TlsFiles | None) -> None:
    """With ``--tls``: TLS, this side's certificate, the CA it trusts."""
    if tls is None:
        return
    from dicomnet import (
        DicomNetSecurityMode,
        DicomOpenSslContextCreationSettings,
        DicomTlsCertificateType,
    )

    key, certificate, ca = tls
    settings = DicomOpenSslContextCreationSettings(certification_authorities_file_name=ca)
    net.Initialize(net.temp_path, DicomNetSecurityMode.Tls, settings)
    net.SetTlsClientCertificate(certificate, DicomTlsCertificateType.Pem, key)


def input_files(directory: str) -> list[str]:
    """The files to send, in name order (the order every sender uses)."""
    return sorted(str(path) for path in Path(directory).iterdir() if path.is_file())


# -- dicomnet -----------------------------------------------------------------------


def dicomnet_scp(out_dir: str, port: int, pdu: int, tls: TlsFiles | None = None) -> int:
    """Storage SCP: keeps each received spool file by renaming it into ``out_dir``."""
    from dicomnet import AcceptPolicy, DicomCommandStatusType, DicomNet, build_accept
    from dicomnet.sopclasses import STORAGE_SOP_CLASSES
    from dicomnet.uids import UNCOMPRESSED_TRANSFER_SYNTAXES, VERIFICATION

    supported = {
        uid: UNCOMPRESSED_TRANSFER_SYNTAXES for uid in (*STORAGE_SOP_CLASSES, VERIFICATION)
    }
    policy = AcceptPolicy(supported=supported, max_length=pdu)
    spool_dir = f"{out_dir.rstrip(os.sep)}.spool"  # same file system: os.replace renames
    os.makedirs(spool_dir, exist_ok=True)
    success = DicomCommandStatusType.Success

    class Child(DicomNet):
        def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
            self.SendAssociateAccept(build_accept(association, policy))

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
            received = self.take_received_file()  # moved here: not deleted after the callback
            assert received is not None  # parse_received_data is False
            os.replace(received, os.path.join(out_dir, f"{instance}.dcm"))
            self.SendCStoreResponse(presentation_id, message_id, affected_class, instance, success)

        def OnReceiveCEchoRequest(
            self, presentation_id: int, message_id: int, affected_class: str
        ) -> None:
            self.SendCEchoResponse(presentation_id, message_id, affected_class, success)

        def OnReceiveReleaseRequest(self) -> None:
            self.SendReleaseResponse()

    class Server(DicomNet):
        def OnAccept(self, error: DicomExceptionCode) -> None:
            child = Child(spool_dir, self.SecurityMode)  # TLS: the listener's settings
            child.parse_received_data = False
            self.Accept(child)

    DicomNet.Startup()
    server = Server(spool_dir)
    _secure(server, tls)
    server.Listen(LOOPBACK, port, 8)
    threading.Event().wait()  # serve until killed
    return 0


def _dicomnet_session(
    port: int,
    pdu: int,
    contexts: dict[str, str],
    work: Callable[[DicomNet, dict[str, int]], int],
    tls: TlsFiles | None,
) -> int:
    """Associate with one context per (abstract syntax -> transfer syntax), run ``work``
    with (net, context ids by abstract syntax), release."""
    from dicomnet import DicomAssociate, DicomException, DicomNet

    DicomNet.Startup()
    net = DicomNet(None)
    try:
        _secure(net, tls)
        net.Connect(None, 0, LOOPBACK, port)
        net.wait_connected()
        request = DicomAssociate(True)
        request.Calling, request.Called, request.MaxLength = SCU_AE, SCP_AE, pdu
        for index, (abstract, transfer) in enumerate(contexts.items()):
            context_id = 2 * index + 1
            request.AddPresentationContext(context_id, 0, abstract)
            request.AddTransfer(context_id, transfer)
        net.SendAssociateRequest(request)
        accepted = net.wait_associated()
        ids = {abstract: accepted.FindAbstract(abstract) for abstract in contexts}
        if any(not ids[a] or accepted.GetResult(ids[a]) != 0 for a in contexts):
            net.SendAbort()
            return _fail("the SCP did not accept every presentation context")
        failures = work(net, ids)
        net.SendReleaseRequest()
        net.wait_released()
        return 0 if failures == 0 else _fail(f"{failures} requests failed")
    except DicomException as exc:
        return _fail(str(exc))
    finally:
        net.Close()
        DicomNet.Shutdown()


def dicomnet_store(in_dir: str, port: int, pdu: int, tls: TlsFiles | None = None) -> int:
    """C-STORE every file of ``in_dir`` on one association, one request at a time."""
    from dicomnet import DicomCommandPriorityType
    from dicomnet.dimse.part10 import read_part10_header

    headers = [read_part10_header(path) for path in input_files(in_dir)]
    contexts = {h.sop_class_uid: h.transfer_syntax for h in headers}

    def store_all(net: DicomNet, ids: dict[str, int]) -> int:
        failures = 0
        for header in headers:
            message_id = net.next_message_id()
            net.SendCStoreRequest(
                ids[header.sop_class_uid],
                message_id,
                "",
                "",
                DicomCommandPriorityType.Medium,
                "",
                0,
                header,
            )
            status = int(net.wait_response(message_id).command["Status"])  # type: ignore[call-overload]
            failures += status != SUCCESS
        return failures

    return _dicomnet_session(port, pdu, contexts, store_all, tls)


def dicomnet_echo(count: int, port: int, pdu: int, tls: TlsFiles | None = None) -> int:
    """``count`` C-ECHOs on one association."""
    from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

    def echo_all(net: DicomNet, ids: dict[str, int]) -> int:
        failures = 0
        for _ in range(count):
            message_id = net.next_message_id()
            net.SendCEchoRequest(ids[VERIFICATION], message_id, VERIFICATION)
            response = net.wait_response(message_id)
            failures += int(response.command["Status"]) != SUCCESS  # type: ignore[call-overload]
        return failures

    return _dicomnet_session(port, pdu, {VERIFICATION: IMPLICIT_VR_LE}, echo_all, tls)


# -- pynetdicom ---------------------------------------------------------------------


def pynetdicom_scp(out_dir: str, port: int, pdu: int) -> int:
    """Storage SCP the way pynetdicom's documentation writes one: the handler writes the
    preamble, the file meta and the received data set bytes to a file."""
    from pydicom.filewriter import write_file_meta_info
    from pynetdicom import AE, StoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    def handle_store(event: Event) -> int:
        request: Any = event.request  # a C_STORE primitive for EVT_C_STORE
        name = os.path.join(out_dir, f"{request.AffectedSOPInstanceUID}.dcm")
        with open(name, "wb") as f:
            f.write(b"\0" * 128 + b"DICM")
            write_file_meta_info(f, event.file_meta, enforce_standard=True)  # type: ignore[arg-type]
            f.write(request.DataSet.getvalue())
        return SUCCESS

    ae = AE(ae_title=SCP_AE)
    ae.maximum_pdu_size = pdu
    ae.supported_contexts = StoragePresentationContexts
    ae.add_supported_context(Verification)
    ae.start_server((LOOPBACK, port), block=True, evt_handlers=[(evt.EVT_C_STORE, handle_store)])
    return 0


def _pynetdicom_association(port: int, pdu: int, contexts: dict[str, str]) -> Association | None:
    from pynetdicom import AE

    ae = AE(ae_title=SCU_AE)
    ae.maximum_pdu_size = pdu
    for abstract, transfer in contexts.items():
        ae.add_requested_context(abstract, transfer)
    assoc = ae.associate(LOOPBACK, port, ae_title=SCP_AE)
    return assoc if assoc.is_established else None


def pynetdicom_store(in_dir: str, port: int, pdu: int) -> int:
    """C-STORE every file of ``in_dir`` on one association (send_c_store with the path)."""
    from pydicom import dcmread

    paths = input_files(in_dir)
    contexts: dict[str, str] = {}
    for path in paths:
        meta = dcmread(path, stop_before_pixels=True).file_meta
        contexts[meta.MediaStorageSOPClassUID] = meta.TransferSyntaxUID
    assoc = _pynetdicom_association(port, pdu, contexts)
    if assoc is None:
        return _fail("association failed")
    failures = 0
    for path in paths:
        status = assoc.send_c_store(path)
        failures += not status or status.Status != SUCCESS
    assoc.release()
    return 0 if failures == 0 else _fail(f"{failures} requests failed")


def pynetdicom_echo(count: int, port: int, pdu: int) -> int:
    from pydicom.uid import ImplicitVRLittleEndian

    assoc = _pynetdicom_association(port, pdu, {"1.2.840.10008.1.1": ImplicitVRLittleEndian})
    if assoc is None:
        return _fail("association failed")
    failures = 0
    for _ in range(count):
        status = assoc.send_c_echo()
        failures += not status or status.Status != SUCCESS
    assoc.release()
    return 0 if failures == 0 else _fail(f"{failures} requests failed")


# -- command line -------------------------------------------------------------------

# dicomnet loads pydicom only for data sets it makes or parses: these roles never do
PYDICOM_FREE_ROLES = frozenset({"dicomnet-store", "dicomnet-echo"})

ROLES: dict[str, Callable[..., int]] = {
    "dicomnet-scp": dicomnet_scp,
    "dicomnet-store": dicomnet_store,
    "dicomnet-echo": dicomnet_echo,
    "pynetdicom-scp": pynetdicom_scp,
    "pynetdicom-store": pynetdicom_store,
    "pynetdicom-echo": pynetdicom_echo,
}


def _fail(message: str) -> int:
    print(f"peers: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("target", help="OUTDIR (scp), INDIR (store) or COUNT (echo)")
    parser.add_argument("port", type=int)
    parser.add_argument("--pdu", type=int, default=16384, help="maximum PDU length")
    parser.add_argument(
        "--tls", nargs=3, metavar=("KEY", "CERT", "CA"), help="TLS (dicomnet roles only)"
    )
    args = parser.parse_args(argv)
    if args.role not in PYDICOM_FREE_ROLES:
        # Imported here, near the top of the stack: imported from inside a role, its
        # dictionary's module code ran at a depth where CPython 3.11 maps and unmaps a
        # frame-stack chunk for each of its thousands of calls (+46 ms start-up).
        import pydicom.datadict  # noqa: F401
    target = int(args.target) if args.role.endswith("-echo") else args.target
    if args.tls is None:
        return ROLES[args.role](target, args.port, args.pdu)
    if not args.role.startswith("dicomnet-"):
        return _fail("--tls is for the dicomnet roles")
    return ROLES[args.role](target, args.port, args.pdu, tuple(args.tls))


if __name__ == "__main__":
    sys.exit(main())
