"""Run independent DICOM peers for interop tests: DCMTK programs, pynetdicom, our samples.

Everything listens on 127.0.0.1 on an ephemeral port, every wait has a timeout, and every
process or thread started here is stopped when its context manager exits, including when
the test inside it fails. Server output goes to a log file that is printed when the
server stops; pytest shows it only for tests that failed.

These helpers do not decide whether a missing peer skips or fails a test: the fixtures in
``conftest.py`` apply that policy before calling them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pynetdicom is imported when a pynetdicom peer is started
    from pynetdicom.ae import ApplicationEntity
    from pynetdicom.events import Event, EventHandlerType, InterventionEvent

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_ROOT / "samples"
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"

CLIENT_TIMEOUT = 60.0  # seconds a client program may run
STARTUP_TIMEOUT = 15.0  # seconds a server may take to start listening
STOP_TIMEOUT = 5.0  # seconds a server gets to exit after SIGTERM before SIGKILL


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = STARTUP_TIMEOUT, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``.

    Raises TimeoutError after ``timeout`` seconds, or RuntimeError at once when
    ``process`` (the would-be listener) exits first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                message = f"nothing listens on {LOOPBACK}:{port} after {timeout} s"
                raise TimeoutError(message) from error
            time.sleep(0.05)


def dcmtk_env() -> dict[str, str]:
    """The environment for DCMTK programs.

    Debian's DCMTK leaves Nagle's algorithm on unless TCP_NODELAY=1 is set, and with
    delayed ACKs that stalls every request/response round trip by about 40 ms.
    """
    return {**os.environ, "TCP_NODELAY": "1"}


def sample_env() -> dict[str, str]:
    """The environment for sample programs: import dicomnet from this working tree."""
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def sample_command(name: str, *args: str) -> list[str]:
    """The command line that runs ``samples/<name>.py`` with the current interpreter."""
    return [sys.executable, str(SAMPLES_DIR / f"{name}.py"), *args]


def run_client(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float = CLIENT_TIMEOUT,
    cwd: Path | str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client program to completion and print what it did (shown on test failure).

    The result is returned whatever the exit status; on timeout the program is killed
    and subprocess.TimeoutExpired propagates.
    """
    result = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    print(f"$ {' '.join(result.args)}  -> exit {result.returncode}")
    print(result.stdout + result.stderr, end="")
    return result


def run_dcmtk(
    tool: str, *args: str, timeout: float = CLIENT_TIMEOUT, cwd: Path | str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK client (echoscu, storescu, findscu...), stdout and stderr captured."""
    return run_client([tool, *args], env=dcmtk_env(), timeout=timeout, cwd=cwd)


def run_sample(
    name: str, *args: str, timeout: float = CLIENT_TIMEOUT, cwd: Path | str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``samples/<name>.py`` with the current interpreter, stdout and stderr captured."""
    return run_client(sample_command(name, *args), env=sample_env(), timeout=timeout, cwd=cwd)


class ServerProcess:
    """A server program running in the background on a port, in its own work directory.

    The work directory (``workdir``) is the server's current directory, so whatever it
    writes there (received files, for instance) is found there and removed afterwards.
    Its combined stdout/stderr is available from ``log()`` while it runs and after.
    """

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        *,
        env: Mapping[str, str],
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self._env = dict(env)
        self._startup_timeout = startup_timeout
        self._tempdir = tempfile.TemporaryDirectory(prefix="dicomnet-peer-")
        self.workdir = Path(self._tempdir.name) / "work"
        self.workdir.mkdir()
        self._log_path = Path(self._tempdir.name) / "output.log"
        self._final_log: str | None = None
        self.popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the program and wait until it accepts connections on ``port``."""
        with self._log_path.open("ab") as log:
            # A session of its own, so stopping it also stops any children it forked.
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, self._startup_timeout, self.popen)

    def stop(self) -> int | None:
        """Stop the program (SIGTERM, then SIGKILL), print its log, remove its files."""
        if self._final_log is not None:
            return self.returncode
        if self.popen is not None:
            _terminate_session(self.popen)
        self._final_log = self._read_log()
        print(f"--- {' '.join(self.argv)} (exit {self.returncode}) ---")
        print(self._final_log, end="")
        self._tempdir.cleanup()
        return self.returncode

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while the program runs (or if it never started)."""
        return None if self.popen is None else self.popen.poll()

    def log(self) -> str:
        """Everything the program wrote to stdout and stderr so far."""
        return self._final_log if self._final_log is not None else self._read_log()

    def _read_log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""


def _terminate_session(popen: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)
        try:
            popen.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def dcmtk_scp(
    tool: str, *args: str, startup_timeout: float = STARTUP_TIMEOUT
) -> Iterator[tuple[int, ServerProcess]]:
    """Run a DCMTK server (storescp, dcmqrscp, wlmscpfs...) with the port as last argument.

    Yields ``(port, server)``; the server runs in ``server.workdir``.
    """
    port = free_port()
    argv = [tool, *args, str(port)]
    with ServerProcess(argv, port, env=dcmtk_env(), startup_timeout=startup_timeout) as server:
        yield port, server


@contextlib.contextmanager
def sample_server(
    name: str, *args: str, startup_timeout: float = STARTUP_TIMEOUT
) -> Iterator[tuple[int, ServerProcess]]:
    """Run ``samples/<name>.py *args PORT`` in the background; yields ``(port, server)``."""
    port = free_port()
    argv = sample_command(name, *args, str(port))
    with ServerProcess(argv, port, env=sample_env(), startup_timeout=startup_timeout) as server:
        yield port, server


class EventLog:
    """The pynetdicom events an SCP handled, in order; safe to read from the test thread."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._changed = threading.Condition()

    def record(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    @property
    def events(self) -> list[Event]:
        """The ``pynetdicom.events.Event`` objects received so far."""
        with self._changed:
            return list(self._events)

    @property
    def names(self) -> list[str]:
        """The names of the events received so far, e.g. ``["EVT_ACCEPTED", "EVT_C_ECHO"]``."""
        return [event.event.name for event in self.events]

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[Event]:
        """Wait until ``count`` events called ``name`` arrived; returns all of them."""

        def matching() -> list[Event]:
            return [event for event in self._events if event.event.name == name]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                raise TimeoutError(f"{count} x {name} not seen in {timeout} s; got {self.names}")
            return matching()


# Association life-cycle notifications every pynetdicom_scp records.
_LIFECYCLE_EVENTS = ("EVT_ACCEPTED", "EVT_REJECTED", "EVT_RELEASED", "EVT_ABORTED")


@contextlib.contextmanager
def pynetdicom_scp(
    contexts: Iterable[str] = (VERIFICATION_SOP_CLASS,),
    handlers: Mapping[InterventionEvent, Callable[..., Any]] | None = None,
    *,
    transfer_syntaxes: Sequence[str] | None = None,
    ae_title: str = "PYNETDICOM",
    configure: Callable[[ApplicationEntity], None] | None = None,
) -> Iterator[tuple[int, EventLog]]:
    """Run a pynetdicom SCP in background threads on an ephemeral port.

    ``contexts`` are the abstract syntaxes it supports (with ``transfer_syntaxes``, or
    pynetdicom's default ones); ``handlers`` maps intervention events such as
    ``evt.EVT_C_STORE`` to handlers. Without a C-ECHO handler it answers C-ECHO with
    Success. ``configure(ae)`` may adjust the AE (timeouts, limits) before it starts.
    Yields ``(port, log)``: the log records the life-cycle notifications and every
    handled request event, each before its handler runs.
    """
    from pynetdicom import AE, evt

    log = EventLog()

    def recorded(handler: Callable[..., Any]) -> Callable[..., Any]:
        def record_then_handle(event: Event, *args: Any) -> Any:
            log.record(event)
            return handler(event, *args)

        return record_then_handle

    chosen = {evt.EVT_C_ECHO: lambda event: 0x0000, **(handlers or {})}
    evt_handlers: list[EventHandlerType] = [
        (event, recorded(handler)) for event, handler in chosen.items()
    ]
    evt_handlers += [(getattr(evt, name), log.record) for name in _LIFECYCLE_EVENTS]

    ae = AE(ae_title=ae_title)
    for abstract_syntax in contexts:
        ae.add_supported_context(abstract_syntax, transfer_syntaxes)
    if configure is not None:
        configure(ae)
    server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=evt_handlers)
    assert server is not None  # block=False always returns the running server
    try:
        yield int(server.server_address[1]), log
    finally:
        ae.shutdown()
