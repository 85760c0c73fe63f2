"""What the sample programs share on the command line: DCMTK-style options, logging,
AE table entries, and serving until a signal.

The samples are thin on purpose: argument parsing plus ``DicomNet`` subclasses or calls
into dicomnet's building blocks, written the way a ported LEADTOOLS program would be.
Run as ``python samples/<name>.py``, the samples folder is first on ``sys.path``, so
``import common`` finds this module.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from identity_options import (
    access_settings,
    add_access_options,
    add_identity_options,
    apply_identity,
    identity_from,
)
from tls_options import add_tls_options, apply_tls

from dicomnet import MAX_OPERATIONS_WINDOW, DicomAssociate, DicomException, DicomNet, Timeouts
from dicomnet.scu import accepted_context_id, open_association

Net = TypeVar("Net", bound=DicomNet)

DEFAULT_MAX_PDU = 16384  # DCMTK's default receive limit
SERVER_WINDOW = 16  # requests a requestor may have outstanding, when it proposes a window


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
        add_identity_options(parser)
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
        help="TCP connect, ARTIM (waiting for the A-ASSOCIATE-RQ, and for the peer to "
        "close after a release or abort) and DIMSE response timeout in seconds",
    )
    parser.add_argument(
        "-ta",
        "--acse-timeout",
        type=float,
        default=30.0,
        help="timeout for A-ASSOCIATE and A-RELEASE responses (of the peer, or of this "
        "program's handler)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log association and DIMSE summaries"
    )
    parser.add_argument(
        "-d", "--debug", action="store_true", help="log everything, with full PDU dumps"
    )
    add_tls_options(parser, scu=scu)


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


def timeouts_from(args: argparse.Namespace) -> Timeouts:
    idle = vars(args).get("idle_timeout")  # an SCP option: SCUs wait on their own requests
    return Timeouts(
        connect=args.timeout,
        artim=args.timeout,
        acse=args.acse_timeout,
        dimse=args.timeout,
        idle=idle or None,
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


def operations_window(text: str) -> int:
    """A ``--window`` value: 0 (no limit) to the largest count the 53H item holds."""
    if not text.strip().isdigit() or int(text) > MAX_OPERATIONS_WINDOW:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a window of 0 (no limit) to {MAX_OPERATIONS_WINDOW} operations"
        )
    return int(text)


class NotAccepted(Exception):
    """The peer accepted the association but not the context the program needs."""


def associate_for(
    net: DicomNet, args: argparse.Namespace, request: DicomAssociate, sop_class: str, what: str
) -> int:
    """Connect to ``args.peer``:``args.port`` and associate with ``request``; the ID of
    the context accepted for ``sop_class``. Without one, abort and raise NotAccepted.
    The user identity options (-usr, -rsp...) are applied to ``request``."""
    propose_identity(request, args)
    apply_tls(net, args)
    accepted = open_association(net, args.peer, args.port, request)
    presentation_id = accepted_context_id(accepted, sop_class)
    if presentation_id is None:
        net.SendAbort()
        raise NotAccepted(f"the peer did not accept the {what} SOP class {sop_class}")
    return presentation_id


def propose_identity(request: DicomAssociate, args: argparse.Namespace) -> None:
    """Add the identity of the -usr/-pwd/-kt/--saml/--jwt/-rsp options to ``request``
    (parsed again per request: the files are small, the options fixed)."""
    if "user" in vars(args):
        apply_identity(request, identity_from(args), args.pos_response)


def run_scu(program: str, net: Net, work: Callable[[Net], int], *expected: type[Exception]) -> int:
    """``work(net)``'s exit status; a ``DicomException``, ``NotAccepted`` or one of the
    ``expected`` errors is printed and gives 1. The connection is closed and the engine
    shut down (``DicomNet.Startup`` was called by the caller) in every case."""
    caught: tuple[type[Exception], ...] = (DicomException, NotAccepted, *expected)
    try:
        return work(net)
    except caught as exc:
        return fail(program, str(exc))
    finally:
        net.Close()
        DicomNet.Shutdown()


def server_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``AcceptingServer`` keyword arguments the common and server options give."""
    return {
        "max_pdu": args.pdu,
        "timeouts": timeouts_from(args),
        "check_called_aet": vars(args).get("check_called_aet", False),
        "async_ops_window": (args.window, 1) if vars(args).get("window", 1) != 1 else None,
        **(access_settings(args) if "user_file" in vars(args) else {}),
    }


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """What every sample SCP takes besides the common options: where to listen."""
    # here, not at the top: the server's storage classes load pydicom, which SCUs spare
    from dicomnet.server import SCP_IDLE_TIMEOUT

    parser.add_argument("--bind", default="", help="local address to listen on (default: all)")
    parser.add_argument(
        "--window",
        type=operations_window,
        default=SERVER_WINDOW,
        metavar="N",
        help="accept an asynchronous operations window (PS3.7 D.3.3.3) of up to N "
        f"requests outstanding at once from a requestor that proposes one (default "
        f"{SERVER_WINDOW}; 0 = no limit; 1 = one at a time)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=SCP_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="abort an association that receives no complete PDU for this long "
        f"(default {SCP_IDLE_TIMEOUT:g}; 0: never)",
    )
    parser.add_argument(
        "--check-called-aet",
        action="store_true",
        help="reject associations whose called AE title is not -aet",
    )
    add_access_options(parser)
    parser.add_argument("port", type=int, help="port to listen on (0: any free port)")


def serve(program: str, server: DicomNet, args: argparse.Namespace, note: str = "") -> int:
    """Listen as ``args`` say, announce the port, serve until SIGTERM or SIGINT, then
    close and shut the engine down (``DicomNet.Startup`` was called by the caller)."""
    try:
        apply_tls(server, args)
        server.Listen(args.bind, args.port, server.config.listen_backlog)
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
