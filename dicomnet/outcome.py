"""What happened on one connection, recorded on the loop thread, waited for elsewhere.

The blocking helpers of ``DicomNet`` (``wait_connected``, ``wait_response``...) block
here: the loop thread records each outcome under one condition variable and wakes the
waiters; in manual mode the waiting thread pumps the loop itself instead. Waiting on the
loop thread of a threaded runtime would deadlock, so it is refused with a clear error.
Time limits on DIMSE responses are not measured here: the session's timers (driven by the
loop's clock) report them as outcomes like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import runtime
from .errors import AssociationAborted, DicomException, DicomExceptionCode
from .pdu import AssociateRJ
from .response import Response


class ConnectionOutcome:
    """The record of one connection: how connect, association, release and our requests
    ended. Fields are written with ``cond`` held."""

    def __init__(self, kept_responses: int) -> None:
        self.cond = threading.Condition()
        self.kept_responses = kept_responses
        self.connect_result: DicomExceptionCode | None = None
        self.connect_message = ""
        self.reject: AssociateRJ | None = None
        self.released = False
        self.ended = False
        self.end_description = ""
        self.abort_info: tuple[int, int] | None = None
        self._responses: dict[int, Response] = {}
        self._failures: dict[int, DicomException] = {}

    def set(self, **fields: object) -> None:
        """Set fields under the lock and wake every waiter (none: just wake them)."""
        with self.cond:
            for name, value in fields.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)
            self.cond.notify_all()

    def add_response(self, response: Response) -> None:
        """Keep a final response for ``wait_response``. Programs that only use callbacks
        never take them, so only the newest ``kept_responses`` are kept."""
        with self.cond:
            self._responses[response.message_id] = response
            while len(self._responses) > self.kept_responses:
                del self._responses[next(iter(self._responses))]
            self.cond.notify_all()

    def add_failure(self, message_id: int, error: DicomException) -> None:
        """The wait for the response to ``message_id`` is over without one."""
        with self.cond:
            self._failures[message_id] = error
            while len(self._failures) > self.kept_responses:
                del self._failures[next(iter(self._failures))]
            self.cond.notify_all()

    def has_response(self, message_id: int) -> bool:
        return message_id in self._responses or message_id in self._failures

    def take_response(self, message_id: int) -> Response | None:
        """The response, or None when the connection ended first; raises the recorded
        failure (a response timeout, a request that could not be sent)."""
        with self.cond:
            failure = self._failures.pop(message_id, None)
            if failure is not None:
                raise failure
            return self._responses.pop(message_id, None)

    def aborted_error(self, what: str) -> AssociationAborted:
        source, reason = self.abort_info or (None, None)
        description = self.end_description or "connection closed"
        return AssociationAborted(f"{what} failed: {description}", source, reason)

    def wait(self, done: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Block until ``done()``; raise ``DicomException`` (NetTimeout) after ``timeout``."""
        if runtime.is_threaded() and runtime.on_loop_thread():
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"waiting for {what} on the loop thread (inside a callback) would deadlock; "
                "react in the callback instead, or wait from another thread",
            )
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> float | None:
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise DicomException(DicomExceptionCode.NetTimeout, f"timed out waiting for {what}")
            return left

        if runtime.is_threaded():
            with self.cond:
                while not done():
                    self.cond.wait(remaining())
            return
        while not done():
            runtime.pump(remaining())
