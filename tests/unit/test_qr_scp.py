"""The C-GET/C-MOVE sub-operation driver of dicomnet.qr without sockets: counts after
each sub-operation, the final status and Failed SOP Instance UID List, C-CANCEL, and
requests worked on in the background with a final response even when the work fails."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dicomnet import DicomCommandStatusType, DicomException, DicomExceptionCode, Part10File
from dicomnet.qr import (
    BackgroundRequests,
    QueryOptions,
    SubOperations,
    failed_instances,
    run_suboperations,
)
from dicomnet.qr.scp import answer_extended_negotiation, negotiated_options
from dicomnet.sopclasses import STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE

Status = DicomCommandStatusType


def part10(number: int) -> Part10File:
    return Part10File(
        f"{number}.dcm", CTImageStorage, f"1.2.{number}", ExplicitVRLittleEndian, 0, 0
    )


class Responses:
    """Records what a SendCGetResponse bound to one request would send."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, tuple[int, int, int, int], list[str] | None]] = []

    def __call__(
        self,
        status: int,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
        **extra: Any,
    ) -> None:
        failed_uids = None if data_set is None else failed_instances(data_set)
        self.sent.append((int(status), (remaining, completed, failed, warning), failed_uids))


def test_a_pending_response_follows_each_sub_operation_but_the_last() -> None:
    responses = Responses()
    files = [part10(n) for n in range(3)]
    progress = run_suboperations(files, lambda _: Status.Success, responses, lambda: False)
    assert responses.sent == [
        (Status.Pending, (2, 1, 0, 0), None),
        (Status.Pending, (1, 2, 0, 0), None),
        (Status.Success, (-1, 3, 0, 0), None),  # remaining left out of the final one
    ]
    assert progress.completed == 3


def test_failures_and_warnings_end_with_b000_and_the_failed_uids() -> None:
    outcomes = {"1.2.0": Status.Success, "1.2.1": 0xA700, "1.2.2": 0xB007}

    def store(file: Part10File) -> int:
        if file.sop_instance_uid == "1.2.3":
            raise DicomException(DicomExceptionCode.Parameter, "no context for it")
        return outcomes[file.sop_instance_uid]

    responses = Responses()
    run_suboperations([part10(n) for n in range(4)], store, responses, lambda: False, 1)
    assert responses.sent[-1] == (Status.Warning, (-1, 1, 3, 1), ["1.2.1", "1.2.3"])


def test_cancel_stops_before_the_next_sub_operation() -> None:
    responses = Responses()
    stored: list[str] = []

    def store(file: Part10File) -> int:
        stored.append(file.sop_instance_uid)
        return Status.Success if file.sop_instance_uid != "1.2.0" else 0xC000

    files = [part10(n) for n in range(4)]
    run_suboperations(files, store, responses, lambda: len(stored) == 2)
    assert stored == ["1.2.0", "1.2.1"]
    assert responses.sent[-1] == (Status.Cancel, (2, 1, 1, 0), ["1.2.0"])


def test_nothing_to_retrieve_is_a_plain_success() -> None:
    responses = Responses()
    run_suboperations([], lambda _: Status.Success, responses, lambda: False)
    assert responses.sent == [(Status.Success, (-1, 0, 0, 0), None)]


def test_counts_classify_statuses_by_category() -> None:
    counts = SubOperations(remaining=3)
    counts.record("1", Status.Success)
    counts.record("2", 0xB000)
    counts.record("3", None)
    assert counts.counts(True) == (0, 1, 1, 1)
    assert counts.failed_uids == ["3"]
    assert counts.final_status == Status.Warning


def test_c_cancel_reaches_the_running_request() -> None:
    requests = BackgroundRequests()
    started = threading.Event()
    seen: list[bool] = []

    def work(cancel: threading.Event) -> None:
        started.set()
        seen.append(cancel.wait(timeout=10))

    future = requests.start(7, work, lambda exc: None)
    assert started.wait(timeout=10)
    assert not requests.cancel(8)  # another message ID: nothing to cancel
    assert requests.cancel(7)
    future.result(timeout=10)
    assert seen == [True]
    assert not requests.cancel(7)  # finished: forgotten


def test_a_failing_request_still_gets_its_final_response() -> None:
    requests = BackgroundRequests()
    answered: list[str] = []

    def work(cancel: threading.Event) -> None:
        raise RuntimeError("index unavailable")

    requests.start(1, work, lambda exc: answered.append(str(exc))).result(timeout=10)
    assert answered == ["index unavailable"]


def test_a_lost_association_does_not_escape_the_worker() -> None:
    requests = BackgroundRequests()

    def respond(exc: Exception) -> None:
        raise DicomException(DicomExceptionCode.NetNotConnected, "not connected")

    def work(cancel: threading.Event) -> None:
        raise RuntimeError("boom")

    assert requests.start(1, work, respond).result(timeout=10) is None


@pytest.mark.parametrize("unreadable", [0, 2])
def test_unreadable_files_count_as_failed_from_the_start(unreadable: int) -> None:
    responses = Responses()
    run_suboperations([part10(0)], lambda _: Status.Success, responses, lambda: False, unreadable)
    assert responses.sent[-1][1] == (-1, 1, unreadable, 0)


@pytest.mark.parametrize(
    ("sop_class", "proposed", "reply"),
    [
        (STUDY_ROOT_FIND, b"\x01", b"\x01"),  # relational queries
        (STUDY_ROOT_FIND, b"\x01\x01", b"\x01\x01"),  # and combined date-time matching
        (STUDY_ROOT_FIND, b"\x00\x01\x01\x01", b"\x00\x01\x00\x00"),  # no fuzzy, no timezone
        (STUDY_ROOT_MOVE, b"\x01\x01", b"\x01\x00"),  # relational retrieval, no conversion
        (STUDY_ROOT_GET, b"\x02", b"\x00"),  # not a defined value
    ],
)
def test_extended_negotiation_accepts_what_is_offered_where_asked(
    sop_class: str, proposed: bytes, reply: bytes
) -> None:
    assert answer_extended_negotiation(sop_class, proposed) == reply


def test_extended_negotiation_ignores_other_sop_classes() -> None:
    assert answer_extended_negotiation(CTImageStorage, b"\x01") is None


@pytest.mark.parametrize(
    ("model", "reply", "relational", "combined"),
    [
        (STUDY_ROOT_FIND, None, False, False),
        (STUDY_ROOT_FIND, b"", False, False),
        (STUDY_ROOT_FIND, b"\x01", True, False),
        (STUDY_ROOT_FIND, b"\x00\x01", False, True),
        (STUDY_ROOT_MOVE, b"\x01\x01", True, False),  # byte 2 of C-MOVE is not date-time
    ],
)
def test_the_query_options_are_read_from_the_reply(
    model: str, reply: bytes | None, relational: bool, combined: bool
) -> None:
    assert negotiated_options(model, reply) == QueryOptions(model, relational, combined)


def test_the_final_response_says_why_a_sub_operation_could_not_be_sent() -> None:
    comments: list[dict[str, Any]] = []

    def respond(status: int, *counts: Any, **extra: Any) -> None:
        comments.append(extra)

    def store(file: Part10File) -> int:
        if file.sop_instance_uid == "1.2.1":
            raise DicomException(DicomExceptionCode.Parameter, "no SCP role context for CT")
        return Status.Success

    run_suboperations([part10(n) for n in range(3)], store, respond, lambda: False)
    assert comments[:-1] == [{}, {}]  # pending responses carry no comment
    assert comments[-1] == {"ErrorComment": "no SCP role context for CT"}
    comments.clear()
    run_suboperations([part10(0)], lambda _: Status.Success, respond, lambda: False)
    assert comments == [{}]
