"""Waiting for another process's observable state: a port, a log line, a file, a count.

What another process does can only be looked at, not subscribed to, so these helpers look
again every ``POLL`` seconds until a deadline. Events inside the test process are waited
for with the engine's events or the fake clock instead, never with these.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL = 0.02  # seconds between two looks


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """The first true value of ``check()``; fails after ``timeout`` seconds, naming
    ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)  # the outcome is in another process: look again shortly
