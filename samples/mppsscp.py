#!/usr/bin/env python3
"""Modality Performed Procedure Step SCP (PS3.4 annex F.7) on PORT, plus Verification.

Keeps MPPS instances in memory, by SOP Instance UID, for as long as it runs:

- N-CREATE (F.7.2.1) takes the instance UID from the request or assigns one, and
  returns it in Affected SOP Instance UID. A duplicate UID fails with 0111, a missing
  Type 1 attribute with 0120 (listed in Attribute Identifier List), an empty one with
  0121, and a Performed Procedure Step Status other than "IN PROGRESS" with 0106.
- N-SET (F.7.2.2) merges the modification list into the instance; an unknown instance
  fails with 0112, an instance already COMPLETED or DISCONTINUED with 0110 and Error ID
  A710, as F.7.2.2.4 prescribes.
- N-GET returns the requested attributes (all of them for an empty list); requested
  attributes the instance lacks are listed in a 0107 warning.

The rules are ``dicomnet.mpps.MppsStore``; this program connects them to the network.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from common import add_common_options, add_server_options, serve, server_settings, setup_logging
from pydicom import Dataset

from dicomnet import DicomCommandStatusType, DicomNet
from dicomnet.mpps import MPPS_SOP_CLASS, MPPS_TRANSFER_SYNTAXES, MppsStore, Outcome
from dicomnet.server import VERIFICATION_ONLY, AcceptedConnection, AcceptingServer

log = logging.getLogger("samples.mppsscp")


class MppsChild(AcceptedConnection):
    """One association: N-CREATE, N-SET and N-GET on the server's MPPS store."""

    listener: MppsServer

    def OnReceiveNCreateRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset | None,
    ) -> None:
        outcome = self._perform(
            "N-CREATE", affected_class, instance, lambda store: store.create(instance, data_set)
        )
        self.SendNCreateResponse(
            presentation_id,
            message_id,
            affected_class,
            outcome.instance,
            outcome.status,
            outcome.data_set,
            **outcome.extra,
        )

    def OnReceiveNSetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        data_set: Dataset | None,
    ) -> None:
        outcome = self._perform(
            "N-SET", affected_class, instance, lambda store: store.set(instance, data_set)
        )
        self.SendNSetResponse(
            presentation_id,
            message_id,
            affected_class,
            outcome.instance,
            outcome.status,
            outcome.data_set,
            **outcome.extra,
        )

    def OnReceiveNGetRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        attributes: list[int],
    ) -> None:
        outcome = self._perform(
            "N-GET", affected_class, instance, lambda store: store.get(instance, attributes)
        )
        self.SendNGetResponse(
            presentation_id,
            message_id,
            affected_class,
            outcome.instance,
            outcome.status,
            outcome.data_set,
            **outcome.extra,
        )

    def _perform(
        self,
        operation: str,
        sop_class: str,
        instance: str,
        action: Callable[[MppsStore], Outcome],
    ) -> Outcome:
        """Run ``action`` on the store, unless the request names another SOP class (an
        N request sent on the Verification context)."""
        if sop_class == MPPS_SOP_CLASS:
            outcome = action(self.listener.store)
        else:
            outcome = Outcome(
                DicomCommandStatusType.NoSuchClass,
                instance,
                extra={"ErrorComment": f"SOP class {sop_class} is not MPPS"},
            )
        log.info(
            "%s %s: status 0x%04X %s",
            operation,
            outcome.instance,
            outcome.status,
            outcome.extra.get("ErrorComment", ""),
        )
        return outcome


class MppsServer(AcceptingServer):
    """Listens for MPPS SCUs; all connections share one store."""

    connection_type = MppsChild

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(
            args.aet,
            {**VERIFICATION_ONLY, MPPS_SOP_CLASS: MPPS_TRANSFER_SYNTAXES},
            **server_settings(args),
        )
        self.store = MppsStore()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mppsscp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser, scu=False)
    add_server_options(parser)
    args = parser.parse_args(argv)
    setup_logging(args)

    DicomNet.Startup()
    server = MppsServer(args)
    return serve("mppsscp", server, args)


if __name__ == "__main__":
    sys.exit(main())
