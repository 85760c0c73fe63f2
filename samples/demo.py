#!/usr/bin/env python3
"""The dicomnet demo (``./dev demo``): DICOM peers talking on 127.0.0.1, told step by step.

Starts samples/echoscp.py (a Verification SCP, PS3.4 annex A) in the background on a
free loopback port, sends it C-ECHO requests (PS3.7 9.1.5) with samples/echoscu.py and,
when DCMTK is installed, with DCMTK's echoscu, and says in plain words what happened.
The SCP is always stopped at the end. Exit status 0 when every step worked, 1 otherwise.

The demo is a list of ``Step`` objects run in order; a later service (storage, query)
is added by appending steps that use ``Demo.start_server`` and ``Demo.run``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
REPO_ROOT = SAMPLES_DIR.parent
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = 15.0  # seconds a server may take to start listening
CLIENT_TIMEOUT = 60.0  # seconds a client program may run
STOP_TIMEOUT = 5.0  # seconds a server gets to exit after SIGTERM
_LISTENING = re.compile(r"listening on port (\d+)")


@dataclass
class Outcome:
    """What a step achieved: ``ok`` False fails the demo; ``skipped`` steps do not."""

    ok: bool
    summary: str
    skipped: bool = False


@dataclass
class Step:
    """One thing the demo does. ``required`` steps stop the demo when they fail."""

    title: str
    explanation: str
    action: Callable[[Demo], Outcome]
    required: bool = False


@dataclass
class BackgroundServer:
    """A sample server running in the background, its output going to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Demo:
    """Shared state of the steps: settings, the servers started and a scratch folder."""

    repeat: int
    use_dcmtk: bool
    workdir: Path
    servers: dict[str, BackgroundServer] = field(default_factory=dict)

    def start_server(self, sample: str, *args: str) -> BackgroundServer:
        """Start ``samples/<sample>.py *args 0`` and wait until it says which port it got.

        Raises RuntimeError (with the server's output) if it exits or stays silent.
        """
        log_path = self.workdir / f"{sample}.log"
        argv = [sys.executable, str(SAMPLES_DIR / f"{sample}.py"), *args, "0"]
        show_command(argv)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=sample_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = BackgroundServer(sample, process, log_path)
        self.servers[sample] = server
        server.port = wait_for_port_announcement(server)
        return server

    def run(self, argv: Sequence[str], env: dict[str, str] | None = None) -> bool:
        """Run a client program to the end, show its output; True when it exits with 0."""
        show_command(argv)
        try:
            result = subprocess.run(
                list(argv),
                cwd=self.workdir,
                env=env or sample_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=CLIENT_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            say(f"it did not finish within {CLIENT_TIMEOUT:.0f} s and was stopped")
            return False
        show_output(result.stdout)
        say(f"exit status {result.returncode}")
        return result.returncode == 0

    def run_sample(self, sample: str, *args: str) -> bool:
        return self.run([sys.executable, str(SAMPLES_DIR / f"{sample}.py"), *args])

    def stop_servers(self) -> None:
        for server in self.servers.values():
            server.stop()


# -- output -------------------------------------------------------------------------------


def say(text: str) -> None:
    print(textwrap.indent(text, "      "), flush=True)


def show_command(argv: Sequence[str]) -> None:
    shown = [Path(a).name if a == sys.executable else a for a in argv]
    shown = [os.path.relpath(a, REPO_ROOT) if a.startswith(str(REPO_ROOT)) else a for a in shown]
    say("$ " + " ".join(shown))


def show_output(text: str) -> None:
    if text.strip():
        print(textwrap.indent(text.rstrip(), "      | "), flush=True)


# -- helpers --------------------------------------------------------------------------------


def sample_env() -> dict[str, str]:
    """Import dicomnet from this working tree, unbuffered, with Nagle off for DCMTK."""
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONUNBUFFERED": "1",
        "TCP_NODELAY": "1",  # Debian's DCMTK leaves Nagle on without it (40 ms per echo)
    }


def wait_for_port_announcement(server: BackgroundServer) -> int:
    """The port a server started on port 0 prints ("... listening on port N")."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        found = _LISTENING.search(server.log())
        if found:
            return int(found.group(1))
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with status {server.process.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not start listening within {STARTUP_TIMEOUT:.0f} s")


def find_dcmtk(program: str) -> str | None:
    """DCMTK's ``program`` on PATH, ignoring pynetdicom's Python scripts of the same name."""
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or Path(directory).resolve() == scripts:
            continue
        candidate = shutil.which(program, path=directory)
        if candidate is not None and Path(candidate).read_bytes()[:2] != b"#!":
            return candidate
    return None


# -- the steps ------------------------------------------------------------------------------


def start_echo_server(demo: Demo) -> Outcome:
    try:
        server = demo.start_server("echoscp", "-v", "--bind", LOOPBACK)
    except RuntimeError as exc:
        show_output(demo.servers["echoscp"].log())
        return Outcome(False, f"the SCP did not start: {exc}")
    return Outcome(True, f"the SCP listens on {LOOPBACK} port {server.port}")


def echo_with_dicomnet(demo: Demo) -> Outcome:
    port = demo.servers["echoscp"].port
    if demo.run_sample("echoscu", "-v", "-r", str(demo.repeat), LOOPBACK, str(port)):
        return Outcome(True, f"all {demo.repeat} C-ECHO requests were answered with Success")
    return Outcome(False, "dicomnet's echoscu did not get every C-ECHO answered")


def echo_with_dcmtk(demo: Demo) -> Outcome:
    program = find_dcmtk("echoscu") if demo.use_dcmtk else None
    if program is None:
        reason = "not asked for" if not demo.use_dcmtk else "DCMTK is not installed"
        return Outcome(True, reason, skipped=True)
    port = demo.servers["echoscp"].port
    if demo.run([program, "-v", "-aec", "ANY-SCP", LOOPBACK, str(port)], sample_env()):
        return Outcome(
            True, "DCMTK's echoscu got its C-ECHO answered: the two implementations agree"
        )
    return Outcome(False, "DCMTK's echoscu failed against the dicomnet SCP")


def stop_echo_server(demo: Demo) -> Outcome:
    server = demo.servers["echoscp"]
    server.stop()
    show_output(server.log())
    answered = server.log().count("sent C-ECHO-RSP")
    if server.process.returncode not in (0, -15):
        return Outcome(False, f"the SCP ended with status {server.process.returncode}")
    return Outcome(True, f"the SCP answered {answered} C-ECHO requests and stopped cleanly")


STEPS = [
    Step(
        "Start the Verification SCP (samples/echoscp.py)",
        "A DicomNet listener that accepts any calling AE and answers C-ECHO with Success.",
        start_echo_server,
        required=True,
    ),
    Step(
        "C-ECHO from dicomnet's SCU (samples/echoscu.py)",
        "Associate, send C-ECHO requests, release; -v logs each DIMSE message.",
        echo_with_dicomnet,
    ),
    Step(
        "C-ECHO from DCMTK's echoscu",
        "An independent implementation talks to the same SCP.",
        echo_with_dcmtk,
    ),
    Step(
        "Stop the SCP and read its log",
        "What the server saw, from its side of each association.",
        stop_echo_server,
    ),
]


def run_steps(demo: Demo, steps: Sequence[Step]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for number, step in enumerate(steps, 1):
        print(f"\n[{number}/{len(steps)}] {step.title}", flush=True)
        say(step.explanation)
        outcome = step.action(demo)
        outcomes.append(outcome)
        label = "skipped" if outcome.skipped else "ok" if outcome.ok else "FAILED"
        say(f"{label}: {outcome.summary}")
        if step.required and not outcome.ok:
            say("the remaining steps need this one; stopping here")
            break
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--repeat", type=int, default=3, help="C-ECHOs per SCU run")
    parser.add_argument(
        "--no-dcmtk",
        dest="use_dcmtk",
        action="store_false",
        help="do not use DCMTK even when it is installed",
    )
    args = parser.parse_args(argv)

    print("dicomnet demo: DICOM peers on this machine, talking over 127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="dicomnet-demo-") as workdir:
        demo = Demo(repeat=args.repeat, use_dcmtk=args.use_dcmtk, workdir=Path(workdir))
        try:
            outcomes = run_steps(demo, STEPS)
        finally:
            demo.stop_servers()
    failed = len(outcomes) < len(STEPS) or not all(o.ok for o in outcomes)
    skipped = sum(o.skipped for o in outcomes)
    verdict = "something failed (see above)" if failed else "everything worked"
    note = f", {skipped} step(s) skipped" if skipped else ""
    print(f"\ndemo finished: {verdict}{note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
