"""Pieces the sample programs share: DCMTK-style options, logging, an accepting SCP.

The samples are thin on purpose: argument parsing plus ``DicomNet`` subclasses, written
the way a ported LEADTOOLS program would be.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence

from dicomnet import (
    AcceptPolicy,
    DicomAssociate,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandStatusType,
    DicomNet,
    Timeouts,
    build_accept,
)
from dicomnet.uids import UNCOMPRESSED_TRANSFER_SYNTAXES, VERIFICATION

DEFAULT_MAX_PDU = 16384  # DCMTK's default receive limit


def add_common_options(parser: argparse.ArgumentParser, *, scu: bool) -> None:
    """Options every sample takes, spelled as DCMTK spells them."""
    parser.add_argument("-aet", "--aetitle", dest="aet", default="ECHOSCU" if scu else "ANY-SCP",
                        help="own AE title")
    if scu:
        parser.add_argument("-aec", "--call", dest="aec", default="ANY-SCP",
                            help="called AE title of the peer")
    parser.add_argument("-pdu", "--max-pdu", dest="pdu", type=int, default=DEFAULT_MAX_PDU,
                        help="maximum receive PDU length (4096..131072, 0 = no limit)")
    parser.add_argument("-to", "--timeout", type=float, default=30.0,
                        help="connection, ARTIM and response timeout in seconds")
    parser.add_argument("-ta", "--acse-timeout", type=float, default=30.0,
                        help="timeout for A-ASSOCIATE and A-RELEASE responses")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log association and DIMSE summaries")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="log everything, with full PDU dumps")


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
                association.Called, settings.ae_title,
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
    ) -> None:
        super().__init__(temp_path, timeouts=timeouts)
        self.ae_title = ae_title
        self.check_called_aet = check_called_aet
        self.policy = AcceptPolicy(supported=dict(supported), max_length=max_pdu)

    def OnAccept(self, error: int) -> None:
        self.Accept(self.child_type(self.temp_path, self))


VERIFICATION_ONLY = {VERIFICATION: list(UNCOMPRESSED_TRANSFER_SYNTAXES)}
