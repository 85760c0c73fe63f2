#!/usr/bin/env python3
"""Verification SCU: sends C-ECHO to PEER PORT (options as DCMTK's echoscu).

Exit status 0 when every echo succeeded, 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import sys

from common import (
    add_common_options,
    associate_for,
    run_scu,
    setup_logging,
    timeouts_from,
)

from dicomnet import DicomCommandStatusType, DicomNet
from dicomnet.scu import build_request, release
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION


def echo(args: argparse.Namespace, net: DicomNet) -> int:
    request = build_request(args.aet, args.aec, args.pdu, [(VERIFICATION, [IMPLICIT_VR_LE])])
    presentation_id = associate_for(net, args, request, VERIFICATION, "Verification")
    failures = 0
    for _ in range(args.repeat):
        message_id = net.next_message_id()
        net.SendCEchoRequest(presentation_id, message_id, VERIFICATION)
        status = net.wait_response(message_id).status
        if status != DicomCommandStatusType.Success:
            failures += 1
            print(f"echoscu: C-ECHO {message_id} status 0x{status:04X}", file=sys.stderr)
    release(net)
    print(
        f"echoscu: {args.repeat - failures} of {args.repeat} C-ECHO requests to "
        f"{args.aec}@{args.peer}:{args.port} succeeded"
    )
    return 0 if failures == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="echoscu", description=__doc__)
    add_common_options(parser, scu=True)
    parser.add_argument("-r", "--repeat", type=int, default=1, help="number of C-ECHOs")
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    net = DicomNet(None, timeouts=timeouts_from(args))
    return run_scu("echoscu", net, lambda net: echo(args, net))


if __name__ == "__main__":
    sys.exit(main())
