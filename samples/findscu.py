#!/usr/bin/env python3
"""Query SCU: sends one C-FIND to PEER PORT and prints every match (options as DCMTK's
findscu; PS3.4 C.4.1 Query/Retrieve FIND, K.4 Modality Worklist FIND).

Keys: ``-k PatientName=DOE*``, ``-k (0010,0020)``, ``-k 0008,0052=STUDY``; a key without a
value asks for that attribute back. Without a QueryRetrieveLevel key, -P queries at
PATIENT and -S at STUDY level. ``--cancel-after N`` sends C-CANCEL after N matches.

Exit status 0 when the query completed (or was cancelled as asked), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from common import (
    add_common_options,
    associate_for,
    fail,
    run_scu,
    setup_logging,
    timeouts_from,
)
from pydicom import Dataset
from qrcommon import DEFAULT_LEVEL, FIND_MODELS, add_model_options

from dicomnet import (
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomNet,
    Timeouts,
)
from dicomnet.qr import QUERY_TRANSFER_SYNTAXES, build_identifier, format_identifier
from dicomnet.scu import build_request, release, wait_final_response

PENDING = (DicomCommandStatusType.Pending, DicomCommandStatusType.PendingWarning)


class FindSCU(DicomNet):
    """Prints each pending C-FIND response as it arrives (on the loop thread)."""

    def __init__(self, cancel_after: int | None, timeouts: Timeouts) -> None:
        super().__init__(None, timeouts=timeouts)
        self.cancel_after = cancel_after
        self.matches = 0
        self.cancel_sent = False

    def OnReceiveCFindResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
        data_set: Dataset | None,
    ) -> None:
        if status not in PENDING:
            return
        self.matches += 1
        lines = format_identifier(data_set if data_set is not None else Dataset())
        print(f"Match {self.matches}", *lines, sep="\n", flush=True)
        if (
            self.cancel_after is not None
            and self.matches >= self.cancel_after
            and not self.cancel_sent
        ):
            self.cancel_sent = True
            self.SendCCancelRequest(presentation_id, message_id)


def find(args: argparse.Namespace, net: FindSCU) -> int:
    sop_class = FIND_MODELS[args.model]
    request = build_request(args.aet, args.aec, args.pdu, [(sop_class, QUERY_TRANSFER_SYNTAXES)])
    presentation_id = associate_for(net, args, request, sop_class, "C-FIND")
    identifier = build_identifier(args.keys, DEFAULT_LEVEL.get(args.model))
    message_id = net.next_message_id()
    net.SendCFindRequest(
        presentation_id, message_id, sop_class, DicomCommandPriorityType.Medium, identifier
    )
    final = wait_final_response(net, message_id, args.timeout, lambda: net.matches)
    release(net)
    status = final.status
    print(f"findscu: final status 0x{status:04X} ({final.description}), {net.matches} match(es)")
    if status == DicomCommandStatusType.Success:
        return 0
    if status == DicomCommandStatusType.Cancel and net.cancel_sent:
        return 0
    return fail("findscu", f"C-FIND ended with status 0x{status:04X}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="findscu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser, scu=True)
    parser.set_defaults(aet="FINDSCU")
    add_model_options(parser, worklist=True)
    parser.add_argument(
        "--cancel-after", type=int, metavar="N", help="send C-CANCEL after N matches"
    )
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    net = FindSCU(args.cancel_after, timeouts_from(args))
    return run_scu("findscu", net, lambda net: find(args, net))


if __name__ == "__main__":
    sys.exit(main())
