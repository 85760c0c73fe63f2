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
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    VERIFICATION_ONLY,
    AcceptingChild,
    SampleServer,
    add_common_options,
    add_server_options,
    is_valid_uid,
    serve,
    setup_logging,
    timeouts_from,
)
from mppscommon import (  # noqa: E402
    IN_PROGRESS,
    MPPS_SOP_CLASS,
    MPPS_TRANSFER_SYNTAXES,
    STEP_STATUSES,
)
from pydicom import Dataset  # noqa: E402
from pydicom.datadict import keyword_for_tag, tag_for_keyword  # noqa: E402
from pydicom.tag import Tag  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from dicomnet import DicomCommandStatusType, DicomNet, Timeouts  # noqa: E402

log = logging.getLogger("samples.mppsscp")

Status = DicomCommandStatusType

# Type 1 attributes of the N-CREATE attribute list (PS3.4 Table F.7.2-1) checked here.
REQUIRED_ON_CREATE = (
    "PerformedProcedureStepID",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepStatus",
    "Modality",
)
NOT_UPDATABLE_ERROR_ID = 0xA710  # PS3.4 F.7.2.2.4
NOT_UPDATABLE_COMMENT = "Performed Procedure Step Object may no longer be updated"


@dataclass
class Outcome:
    """What to answer: status, the instance UID, an optional data set and the optional
    status elements (ErrorComment, ErrorID, AttributeIdentifierList) as keyword args."""

    status: int
    instance: str
    data_set: Dataset | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _comment(text: str) -> dict[str, Any]:
    return {"ErrorComment": text[:64]}  # Error Comment is LO: at most 64 characters


def _names(tags: Iterable[int]) -> str:
    return ", ".join(keyword_for_tag(tag) or f"{Tag(tag)}" for tag in tags)


class MppsStore:
    """MPPS instances by SOP Instance UID and the N-CREATE/N-SET/N-GET rules of F.7.2.

    Every callback of every connection runs on the one dicomnet loop thread, so the
    store is never used from two threads at once and needs no lock.
    """

    def __init__(self) -> None:
        self.instances: dict[str, Dataset] = {}

    def create(self, instance: str, attributes: Dataset | None) -> Outcome:
        if instance and not is_valid_uid(instance):
            return Outcome(
                Status.InvalidObjectInstance,
                instance,
                extra=_comment("the SOP Instance UID is not a valid UID"),
            )
        if instance in self.instances:
            return Outcome(
                Status.DuplicateInstance,
                instance,
                extra=_comment("an MPPS with this SOP Instance UID exists"),
            )
        attributes = attributes if attributes is not None else Dataset()
        refusal = _check_create(attributes)
        if refusal is not None:
            refusal.instance = instance  # empty when the SCU left the UID to us
            return refusal
        instance = instance or generate_uid()
        self.instances[instance] = copy.deepcopy(attributes)
        return Outcome(Status.Success, instance)

    def set(self, instance: str, modifications: Dataset | None) -> Outcome:
        stored = self.instances.get(instance)
        if stored is None:
            return Outcome(Status.NoSuchObjectInstance, instance)
        if stored.get("PerformedProcedureStepStatus") != IN_PROGRESS:
            return Outcome(
                Status.ProcessingFailure,
                instance,
                extra={**_comment(NOT_UPDATABLE_COMMENT), "ErrorID": NOT_UPDATABLE_ERROR_ID},
            )
        if modifications is None or len(modifications) == 0:
            return Outcome(
                Status.ProcessingFailure,
                instance,
                extra=_comment("N-SET without a modification list"),
            )
        new_status = modifications.get("PerformedProcedureStepStatus", IN_PROGRESS)
        if new_status not in STEP_STATUSES:
            return _invalid_status(instance, modifications)
        for element in modifications:
            stored[element.tag] = copy.deepcopy(element)
        return Outcome(Status.Success, instance)

    def get(self, instance: str, tags: Sequence[int]) -> Outcome:
        stored = self.instances.get(instance)
        if stored is None:
            return Outcome(Status.NoSuchObjectInstance, instance)
        if not tags:
            return Outcome(Status.Success, instance, copy.deepcopy(stored))
        answer = Dataset()
        missing = []
        for tag in tags:
            if tag in stored:
                answer[tag] = copy.deepcopy(stored[tag])
            else:
                missing.append(tag)
        if missing:
            return Outcome(
                Status.AttributeListError, instance, answer, {"AttributeIdentifierList": missing}
            )
        return Outcome(Status.Success, instance, answer)


def _check_create(attributes: Dataset) -> Outcome | None:
    """The refusal of an N-CREATE attribute list, or None when it is acceptable."""
    required = [tag_for_keyword(keyword) or 0 for keyword in REQUIRED_ON_CREATE]
    absent = [tag for tag in required if tag not in attributes]
    if absent:
        return Outcome(
            Status.MissingAttribute,
            "",
            extra={"AttributeIdentifierList": absent, **_comment(f"missing {_names(absent)}")},
        )
    empty = [tag for tag in required if attributes[tag].value in (None, "", [])]
    if empty:
        return Outcome(
            Status.MissingAttributeValue, "", extra=_comment(f"no value for {_names(empty)}")
        )
    if attributes.PerformedProcedureStepStatus != IN_PROGRESS:
        return _invalid_status("", attributes)
    return None


def _invalid_status(instance: str, attributes: Dataset) -> Outcome:
    """0106, with the offending value as the attribute list (its related field in PS3.7
    annex C)."""
    offending = Dataset()
    offending.PerformedProcedureStepStatus = attributes.PerformedProcedureStepStatus
    return Outcome(
        Status.InvalidAttributeValue,
        instance,
        offending,
        _comment(
            f"Performed Procedure Step Status {offending.PerformedProcedureStepStatus!r} "
            "is not allowed here"
        ),
    )


class MppsChild(AcceptingChild):
    """One association: N-CREATE, N-SET and N-GET on the server's MPPS store."""

    settings: MppsServer

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
            outcome = action(self.settings.store)
        else:
            outcome = Outcome(
                Status.NoSuchClass, instance, extra=_comment(f"SOP class {sop_class} is not MPPS")
            )
        log.info(
            "%s %s: status 0x%04X %s",
            operation,
            outcome.instance,
            outcome.status,
            outcome.extra.get("ErrorComment", ""),
        )
        return outcome


class MppsServer(SampleServer):
    """Listens for MPPS SCUs; all connections share one store."""

    child_type = MppsChild

    def __init__(
        self, ae_title: str, *, max_pdu: int, timeouts: Timeouts, check_called_aet: bool
    ) -> None:
        supported: Mapping[str, Sequence[str]] = {
            **VERIFICATION_ONLY,
            MPPS_SOP_CLASS: list(MPPS_TRANSFER_SYNTAXES),
        }
        super().__init__(
            ae_title,
            supported,
            max_pdu=max_pdu,
            timeouts=timeouts,
            check_called_aet=check_called_aet,
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
    server = MppsServer(
        args.aet,
        max_pdu=args.pdu,
        timeouts=timeouts_from(args),
        check_called_aet=args.check_called_aet,
    )
    return serve("mppsscp", server, args)


if __name__ == "__main__":
    sys.exit(main())
