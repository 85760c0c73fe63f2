"""Pieces the sample programs share: DCMTK-style options, logging, an accepting SCP.

The samples are thin on purpose: argument parsing plus ``DicomNet`` subclasses, written
the way a ported LEADTOOLS program would be.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from pydicom.uid import UID

from dicomnet import (
    AcceptPolicy,
    DicomAssociate,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandStatusType,
    DicomException,
    DicomNet,
    Timeouts,
    build_accept,
)
from dicomnet.sopclasses import STORAGE_SOP_CLASSES
from dicomnet.uids import (
    DEFLATED_EXPLICIT_VR_LE,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    VERIFICATION,
)

DEFAULT_MAX_PDU = 16384  # DCMTK's default receive limit


def add_common_options(parser: argparse.ArgumentParser, *, scu: bool) -> None:
    """Options every sample takes, spelled as DCMTK spells them."""
    parser.add_argument(
        "-aet",
        "--aetitle",
        dest="aet",
        default="ECHOSCU" if scu else "ANY-SCP",
        help="own AE title",
    )
    if scu:
        parser.add_argument(
            "-aec", "--call", dest="aec", default="ANY-SCP", help="called AE title of the peer"
        )
    parser.add_argument(
        "-pdu",
        "--max-pdu",
        dest="pdu",
        type=int,
        default=DEFAULT_MAX_PDU,
        help="maximum receive PDU length (4096..131072, 0 = no limit)",
    )
    parser.add_argument(
        "-to",
        "--timeout",
        type=float,
        default=30.0,
        help="connection, ARTIM and response timeout in seconds",
    )
    parser.add_argument(
        "-ta",
        "--acse-timeout",
        type=float,
        default=30.0,
        help="timeout for A-ASSOCIATE and A-RELEASE responses",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log association and DIMSE summaries"
    )
    parser.add_argument(
        "-d", "--debug", action="store_true", help="log everything, with full PDU dumps"
    )


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


def timeouts_from(args: argparse.Namespace) -> Timeouts:
    return Timeouts(
        connect=args.timeout, artim=args.timeout, acse=args.acse_timeout, dimse=args.timeout
    )


def fail(program: str, message: str) -> int:
    print(f"{program}: {message}", file=sys.stderr)
    return 1


def parse_ae_address(text: str) -> tuple[str, tuple[str, int]]:
    """An AE table entry ``AE=HOST:PORT`` -> (AE title, (host, port)), for argparse."""
    title, equals, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    title = title.strip()
    if not (equals and colon and title and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not AE=HOST:PORT")
    if len(title) > 16 or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: AE title over 16 characters or bad port")
    return title, (host, int(port))


class AcceptingChild(DicomNet):
    """One accepted connection of a sample SCP: negotiates by policy, answers C-ECHO and
    release. Subclasses add the services they provide."""

    def __init__(self, temp_path: str | None, server: SampleServer) -> None:
        super().__init__(temp_path, server.SecurityMode, timeouts=server.timeouts)
        self.settings = server

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        settings = self.settings
        if settings.check_called_aet and association.Called.strip() != settings.ae_title:
            logging.getLogger("samples").warning(
                "rejecting association: called AE title %r is not %r",
                association.Called,
                settings.ae_title,
            )
            self.SendAssociateReject(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Called,
            )
            return
        accept = build_accept(association, settings.policy)
        if not any(
            accept.GetResult(accept.GetPresentationContextID(i)) == 0
            for i in range(accept.PresentationContextCount)
        ):
            logging.getLogger("samples").warning(
                "rejecting association from %s: no acceptable presentation contexts",
                association.Calling,
            )
            self.SendAssociateReject(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Unknown,
            )
            return
        self.SendAssociateAccept(accept)

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self.SendCEchoResponse(
            presentation_id, message_id, affected_class, DicomCommandStatusType.Success
        )

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class SampleServer(DicomNet):
    """The listening side of a sample SCP: accepts every connection into a child."""

    child_type: type[AcceptingChild] = AcceptingChild

    def __init__(
        self,
        ae_title: str,
        supported: Mapping[str, Sequence[str]],
        *,
        max_pdu: int,
        timeouts: Timeouts,
        check_called_aet: bool = False,
        temp_path: str | None = None,
        accept_any_transfer_syntax_for: Collection[str] = (),
    ) -> None:
        super().__init__(temp_path, timeouts=timeouts)
        self.ae_title = ae_title
        self.check_called_aet = check_called_aet
        self.policy = AcceptPolicy(
            supported=dict(supported),
            max_length=max_pdu,
            accept_any_transfer_syntax_for=accept_any_transfer_syntax_for,
        )

    def OnAccept(self, error: int) -> None:
        self.Accept(self.child_type(self.temp_path, self))


VERIFICATION_ONLY = {VERIFICATION: list(UNCOMPRESSED_TRANSFER_SYNTAXES)}

# What a storage SCP takes without any transcoding, in order of preference.
STORAGE_TRANSFER_SYNTAXES = (*UNCOMPRESSED_TRANSFER_SYNTAXES, DEFLATED_EXPLICIT_VR_LE)
STORAGE_AND_VERIFICATION = {
    VERIFICATION: list(UNCOMPRESSED_TRANSFER_SYNTAXES),
    **{sop_class: list(STORAGE_TRANSFER_SYNTAXES) for sop_class in STORAGE_SOP_CLASSES},
}

_UID_PATTERN = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_MAX_UID_LENGTH = 64
_NOT_IN_ABBREVIATION = {"Image", "Storage"}


def is_valid_uid(value: str) -> bool:
    """True for a UID as PS3.5 9.1 spells it (digits and dots, at most 64 characters)."""
    return len(value) <= _MAX_UID_LENGTH and _UID_PATTERN.fullmatch(value) is not None


def sop_class_abbreviation(sop_class: str) -> str:
    """A short modality-like prefix for file names ("CT", "MR", "SC", "DX"...).

    The first acronym of the SOP class name ("Enhanced CT Image Storage" -> "CT"), else
    the initials of its words ("Secondary Capture Image Storage" -> "SC"); "UNKNOWN" for
    a UID pydicom does not know.
    """
    name = UID(sop_class).name.split(" - ")[0]
    words = [word for word in name.split() if word not in _NOT_IN_ABBREVIATION]
    for word in words:
        if len(word) >= 2 and word.isascii() and word.isalnum() and word.isupper():
            return word
    initials = "".join(word[0] for word in words if word[0].isascii() and word[0].isalpha())
    return initials.upper()[:8] or "UNKNOWN"


def instance_file_name(sop_class: str, sop_instance: str) -> str:
    """``<abbreviation>.<SOP Instance UID>``, as DCMTK's storescp names received files.

    The instance UID comes from the network: anything but a well-formed UID is replaced
    by a random name, so a peer can never choose a path (no separators, no "..").
    """
    if is_valid_uid(sop_instance):
        return f"{sop_class_abbreviation(sop_class)}.{sop_instance}"
    return f"{sop_class_abbreviation(sop_class)}.invalid-uid-{uuid.uuid4().hex}"


def _default_file_mode() -> int:
    # The umask can only be read by setting it; done once, at import, before any thread.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


# Spool files are private (mkstemp); a kept instance gets the usual permissions.
RECEIVED_FILE_MODE = _default_file_mode()


def keep_received_file(
    received_file: str, directory: Path, sop_class: str, sop_instance: str
) -> Path:
    """Move a received (spooled, complete) Part-10 file to its final name in ``directory``.

    ``os.replace`` is atomic within one file system, so the file appears complete or not
    at all; the spool directory must therefore be on the same file system. Raises
    ``OSError`` when the move fails.
    """
    target = directory / instance_file_name(sop_class, sop_instance)
    os.chmod(received_file, RECEIVED_FILE_MODE)
    os.replace(received_file, target)
    return target


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """What every sample SCP takes besides the common options: where to listen."""
    parser.add_argument("--bind", default="", help="local address to listen on (default: all)")
    parser.add_argument(
        "--check-called-aet",
        action="store_true",
        help="reject associations whose called AE title is not -aet",
    )
    parser.add_argument("port", type=int, help="port to listen on (0: any free port)")


def serve(program: str, server: DicomNet, args: argparse.Namespace, note: str = "") -> int:
    """Listen as ``args`` say, announce the port, serve until SIGTERM or SIGINT, then
    close and shut the engine down (``DicomNet.Startup`` was called by the caller)."""
    try:
        server.Listen(args.bind, args.port, 64)
    except DicomException as exc:
        DicomNet.Shutdown()
        return fail(program, str(exc))
    print(f"{program}: {args.aet} listening on port {server.HostPort}{note}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.Close()
    DicomNet.Shutdown()
    return 0
