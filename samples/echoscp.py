#!/usr/bin/env python3
"""Verification SCP: answers C-ECHO on PORT (options as DCMTK's echoscp/storescp)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    VERIFICATION_ONLY,
    SampleServer,
    add_common_options,
    add_server_options,
    serve,
    setup_logging,
    timeouts_from,
)

from dicomnet import DicomNet  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="echoscp", description=__doc__)
    add_common_options(parser, scu=False)
    add_server_options(parser)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    server = SampleServer(
        args.aet,
        VERIFICATION_ONLY,
        max_pdu=args.pdu,
        timeouts=timeouts_from(args),
        check_called_aet=args.check_called_aet,
    )
    return serve("echoscp", server, args)


if __name__ == "__main__":
    sys.exit(main())
