"""The process-wide loop behind ``DicomNet.Startup`` / ``DicomNet.Shutdown``.

Reference counted: the first ``startup`` creates the loop (and, in threaded mode, its
thread); the last ``shutdown`` stops it. In manual mode the application pumps the loop
itself (``pump``), which suits single-threaded programs and deterministic tests.

``run_on_loop`` is how every ``Send*`` reaches the engine: directly when already on the
loop thread (or in manual mode), otherwise through ``call_soon`` with the caller waiting
for the result, so errors are raised in the caller's thread as LEADTOOLS does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import DicomException, DicomExceptionCode
from .loop import EventLoop, VirtualClock

T = TypeVar("T")

_lock = threading.Lock()
_users = 0
_loop: EventLoop | None = None
_thread: threading.Thread | None = None
_workers: ThreadPoolExecutor | None = None
log = logging.getLogger("dicomnet.runtime")


def startup(threaded: bool = True, clock: VirtualClock | None = None) -> None:
    """Count one more user; the first creates the loop. ``clock`` (manual mode only)
    makes the loop's time a ``VirtualClock``, for deterministic tests of timeouts."""
    global _users, _loop, _thread
    if clock is not None and threaded:
        raise ValueError("a VirtualClock needs the manual mode (threaded=False)")
    with _lock:
        _users += 1
        if _loop is not None:
            return
        _loop = EventLoop(clock) if clock is not None else EventLoop()
        if threaded:
            _thread = threading.Thread(target=_loop.run_forever, name="dicomnet-loop", daemon=True)
            _thread.start()


def shutdown() -> None:
    global _users, _loop, _thread, _workers
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users or _loop is None:
            return
        loop, thread, workers = _loop, _thread, _workers
        _loop, _thread, _workers = None, None, None
    if thread is not None:
        loop.stop()
        thread.join(timeout=10)
    loop.close()
    if workers is not None:
        workers.shutdown(wait=False, cancel_futures=True)


def run_in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """Run slow work (a database query, a sub-association) on a worker thread, off the
    loop; an exception it raises is logged as well as kept in the returned future."""
    global _workers
    with _lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(thread_name_prefix="dicomnet-worker")
        future = _workers.submit(function, *args)
    future.add_done_callback(_log_failure)
    return future


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("background work failed", exc_info=future.exception())


def get_loop() -> EventLoop:
    if _loop is None:
        raise DicomException(
            DicomExceptionCode.NetNotInitialised,
            "DicomNet.Startup() must be called before any network operation",
        )
    return _loop


def is_threaded() -> bool:
    return _thread is not None


def on_loop_thread() -> bool:
    return _loop is not None and _loop.in_loop_thread()


def pump(timeout: float | None = 0.0) -> None:
    """Run one loop iteration in the calling thread (manual mode)."""
    if is_threaded():
        raise DicomException(
            DicomExceptionCode.Parameter, "the loop runs on its own thread; do not pump it"
        )
    get_loop().run_once(timeout)


def run_on_loop(function: Callable[[], T]) -> T:
    """Run ``function`` on the loop thread and return its result (or raise its error)."""
    loop = get_loop()
    if not is_threaded() or loop.in_loop_thread():
        return function()
    future: Future[T] = Future()

    def call() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function())
        except BaseException as exc:  # handed to the calling thread
            future.set_exception(exc)

    loop.call_soon(call)
    return future.result()
