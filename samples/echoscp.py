#!/usr/bin/env python3
"""Verification SCP: answers C-ECHO on PORT (options as DCMTK's echoscp/storescp)."""

from __future__ import annotations

import argparse
import sys

from common import add_common_options, add_server_options, serve, server_settings, setup_logging

from dicomnet import DicomNet
from dicomnet.server import VERIFICATION_ONLY, AcceptingServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="echoscp", description=__doc__)
    add_common_options(parser, scu=False)
    add_server_options(parser)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    server = AcceptingServer(args.aet, VERIFICATION_ONLY, **server_settings(args))
    return serve("echoscp", server, args)


if __name__ == "__main__":
    sys.exit(main())
