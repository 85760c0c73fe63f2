#!/usr/bin/env python3
"""Move SCU: sends one C-MOVE to PEER PORT asking it to store the matching instances at
the AE ``-aem`` (options as DCMTK's movescu; PS3.4 C.4.2 Query/Retrieve MOVE).

Unlike DCMTK's movescu it has no built-in storage receiver: the destination is another
AE (a storescp, say) that the peer knows by its AE title. Progress comes from the pending
C-MOVE responses.

Exit status 0 only when every sub-operation succeeded, 1 otherwise.
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
from qrcommon import (
    DEFAULT_LEVEL,
    MOVE_MODELS,
    add_model_options,
    format_progress,
    print_retrieve_response,
)

from dicomnet import (
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomNet,
    Timeouts,
)
from dicomnet.qr import build_identifier, retrieve_request
from dicomnet.scu import release, wait_final_response


class MoveSCU(DicomNet):
    """Prints the progress each pending C-MOVE response reports."""

    def __init__(self, timeouts: Timeouts) -> None:
        super().__init__(None, timeouts=timeouts)
        self.responses = 0

    def OnReceiveCMoveResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
    ) -> None:
        self.responses += 1
        print_retrieve_response(
            "movescu", status, (remaining, completed, failed, warning), data_set
        )


def move(args: argparse.Namespace, net: MoveSCU) -> int:
    sop_class = MOVE_MODELS[args.model]
    request = retrieve_request(args.aet, args.aec, args.pdu, sop_class)
    presentation_id = associate_for(net, args, request, sop_class, "C-MOVE")
    identifier = build_identifier(args.keys, DEFAULT_LEVEL[args.model])
    message_id = net.next_message_id()
    net.SendCMoveRequest(
        presentation_id,
        message_id,
        sop_class,
        DicomCommandPriorityType.Medium,
        args.move_destination,
        identifier,
    )
    final = wait_final_response(net, message_id, args.timeout, lambda: net.responses)
    release(net)
    status = final.status
    _, completed, failed, warning = final.suboperations
    print(
        f"movescu: final status 0x{status:04X} ({final.description}): "
        f"{format_progress(-1, completed, failed, warning)}"
    )
    if status == DicomCommandStatusType.Success and failed <= 0 and warning <= 0:
        return 0
    return fail(
        "movescu",
        f"C-MOVE to {args.move_destination} ended with status "
        f"0x{status:04X}, {failed} failed, {warning} warning sub-operation(s)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="movescu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser, scu=True)
    parser.set_defaults(aet="MOVESCU")
    add_model_options(parser)
    parser.add_argument(
        "-aem",
        "--move",
        dest="move_destination",
        required=True,
        metavar="AETITLE",
        help="AE title of the move destination",
    )
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    net = MoveSCU(timeouts_from(args))
    return run_scu("movescu", net, lambda net: move(args, net))


if __name__ == "__main__":
    sys.exit(main())
