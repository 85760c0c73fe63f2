#!/usr/bin/env python3
"""Verification SCP: answers C-ECHO on PORT (options as DCMTK's echoscp/storescp)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    VERIFICATION_ONLY,
    SampleServer,
    add_common_options,
    fail,
    setup_logging,
    timeouts_from,
)

from dicomnet import DicomException, DicomNet  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="echoscp", description=__doc__)
    add_common_options(parser, scu=False)
    parser.add_argument("--bind", default="", help="local address to listen on (default: all)")
    parser.add_argument("--check-called-aet", action="store_true",
                        help="reject associations whose called AE title is not -aet")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    server = SampleServer(args.aet, VERIFICATION_ONLY, max_pdu=args.pdu,
                          timeouts=timeouts_from(args), check_called_aet=args.check_called_aet)
    try:
        server.Listen(args.bind, args.port, 64)
    except DicomException as exc:
        DicomNet.Shutdown()
        return fail("echoscp", str(exc))
    print(f"echoscp: {args.aet} listening on port {server.HostPort}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.Close()
    DicomNet.Shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
