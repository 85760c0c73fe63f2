#!/usr/bin/env python3
"""Verification SCU: sends C-ECHO to PEER PORT (options as DCMTK's echoscu).

Exit status 0 when every echo succeeded, 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_common_options, fail, setup_logging, timeouts_from  # noqa: E402

from dicomnet import (  # noqa: E402
    DicomAssociate,
    DicomAssociateAcceptResultType,
    DicomCommandStatusType,
    DicomException,
    DicomNet,
)
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION  # noqa: E402


def echo(args: argparse.Namespace, net: DicomNet) -> int:
    net.Connect(None, 0, args.peer, args.port)
    net.wait_connected()
    request = DicomAssociate(True)
    request.Calling = args.aet
    request.Called = args.aec
    request.MaxLength = args.pdu
    request.AddPresentationContext(1, DicomAssociateAcceptResultType.Success, VERIFICATION)
    request.AddTransfer(1, IMPLICIT_VR_LE)
    net.SendAssociateRequest(request)
    accepted = net.wait_associated()
    presentation_id = accepted.FindAbstract(VERIFICATION)
    if not presentation_id or accepted.GetResult(presentation_id) != 0:
        net.SendAbort()
        return fail("echoscu", "the peer did not accept the Verification SOP class")
    failures = 0
    for _ in range(args.repeat):
        message_id = net.next_message_id()
        net.SendCEchoRequest(presentation_id, message_id, VERIFICATION)
        status = int(net.wait_response(message_id).command["Status"])  # type: ignore[call-overload]
        if status != DicomCommandStatusType.Success:
            failures += 1
            print(f"echoscu: C-ECHO {message_id} status 0x{status:04X}", file=sys.stderr)
    net.SendReleaseRequest()
    net.wait_released()
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
    try:
        return echo(args, net)
    except DicomException as exc:
        return fail("echoscu", str(exc))
    finally:
        net.Close()
        DicomNet.Shutdown()


if __name__ == "__main__":
    sys.exit(main())
