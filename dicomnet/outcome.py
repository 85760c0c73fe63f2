"""What happened on one connection, recorded on the loop thread, waited for elsewhere.

The blocking helpers of ``DicomNet`` (``wait_connected``, ``wait_response``...) block
here: the loop thread records each outcome under one condition variable and wakes the
waiters; in manual mode the waiting thread pumps the loop itself instead. Waiting on the
loop thread of a threaded runtime would deadlock, so it is refused with a clear error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import runtime
from .dimse.assembly import Message
from .errors import AssociationAborted, DicomException, DicomExceptionCode
from .pdu import AssociateRJ

KEPT_RESPONSES = 4096  # unclaimed final responses kept per connection


class ConnectionOutcome:
    """The record of one connection: how connect, association, release and the final
    responses to our requests ended. Fields are written with ``cond`` held."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.connect_result: DicomExceptionCode | None = None
        self.connect_message = ""
        self.reject: AssociateRJ | None = None
        self.released = False
        self.ended = False
        self.end_description = ""
        self.abort_info: tuple[int, int] | None = None
        self._responses: dict[int, Message] = {}

    def set(self, **fields: object) -> None:
        """Set fields under the lock and wake every waiter (none: just wake them)."""
        with self.cond:
            for name, value in fields.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)
            self.cond.notify_all()

    def add_response(self, message: Message) -> None:
        """Keep a final response for ``wait_response``. Programs that only use callbacks
        never take them, so only the newest ``KEPT_RESPONSES`` are kept."""
        with self.cond:
            self._responses[message.message_id_being_responded_to or 0] = message
            while len(self._responses) > KEPT_RESPONSES:
                del self._responses[next(iter(self._responses))]
            self.cond.notify_all()

    def has_response(self, message_id: int) -> bool:
        return message_id in self._responses

    def take_response(self, message_id: int) -> Message | None:
        with self.cond:
            return self._responses.pop(message_id, None)

    def aborted_error(self, what: str) -> AssociationAborted:
        source, reason = self.abort_info or (None, None)
        description = self.end_description or "connection closed"
        return AssociationAborted(f"{what} failed: {description}", source, reason)

    def wait(
        self,
        done: Callable[[], bool],
        timeout: float | None,
        what: str,
        last_activity: Callable[[], float] | None = None,
    ) -> None:
        """Block until ``done()``; raise ``DicomException`` (NetTimeout) after ``timeout``.

        With ``last_activity`` (a monotonic time) the timeout counts from the later of the
        start and the last activity, so a large data set still being sent does not count
        against the wait for its response."""
        if runtime.is_threaded() and runtime.on_loop_thread():
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"waiting for {what} on the loop thread (inside a callback) would deadlock; "
                "react in the callback instead, or wait from another thread",
            )
        start = time.monotonic()

        def remaining() -> float | None:
            if timeout is None:
                return None
            since = max(start, last_activity()) if last_activity else start
            left = since + timeout - time.monotonic()
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
