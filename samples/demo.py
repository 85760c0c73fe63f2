#!/usr/bin/env python3
"""The dicomnet demo (``./dev demo``): DICOM peers talking on 127.0.0.1, told step by step.

Starts samples/storescp.py (a Storage and Verification SCP, PS3.4 annexes A and B) in
the background on a free loopback port, checks it with C-ECHO (samples/echoscu.py and,
when DCMTK is installed, DCMTK's echoscu), stores a few generated CT images with
samples/storescu.py (and DCMTK's storescu), checks the files that arrived, asks for
storage commitment with samples/stgcmtscu.py, and says in plain words what happened.
The SCP is always stopped at the end. Exit status 0 when every step worked, 1 otherwise.

The demo is a list of ``Step`` objects run in order; a later service (query, retrieve)
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


def make_images(demo: Demo) -> Outcome:
    images = demo.workdir / "images"
    images.mkdir()
    written = [
        write_ct_image(images / f"ct{index}.dcm", index, transfer_syntax)
        for index, transfer_syntax in enumerate(DEMO_TRANSFER_SYNTAXES, 1)
    ]
    say("\n".join(f"{path.name}: {uid}" for path, uid in written))
    return Outcome(True, f"{len(written)} CT images (256x256, 16 bit) in {images.name}/")


def start_storage_server(demo: Demo) -> Outcome:
    received = demo.workdir / "received"
    received.mkdir()
    try:
        server = demo.start_server("storescp", "-v", "--bind", LOOPBACK, "-od", str(received))
    except RuntimeError as exc:
        show_output(demo.servers["storescp"].log())
        return Outcome(False, f"the SCP did not start: {exc}")
    return Outcome(True, f"the SCP listens on {LOOPBACK} port {server.port}")


def echo_with_dicomnet(demo: Demo) -> Outcome:
    port = demo.servers["storescp"].port
    if demo.run_sample("echoscu", "-v", "-r", str(demo.repeat), LOOPBACK, str(port)):
        return Outcome(True, f"all {demo.repeat} C-ECHO requests were answered with Success")
    return Outcome(False, "dicomnet's echoscu did not get every C-ECHO answered")


def echo_with_dcmtk(demo: Demo) -> Outcome:
    program = dcmtk_program(demo, "echoscu")
    if program is None:
        return dcmtk_skipped(demo)
    port = demo.servers["storescp"].port
    if demo.run([program, "-v", "-aec", "ANY-SCP", LOOPBACK, str(port)], sample_env()):
        return Outcome(
            True, "DCMTK's echoscu got its C-ECHO answered: the two implementations agree"
        )
    return Outcome(False, "DCMTK's echoscu failed against the dicomnet SCP")


def store_with_dicomnet(demo: Demo) -> Outcome:
    port = demo.servers["storescp"].port
    images = demo.workdir / "images"
    if not demo.run_sample("storescu", "-v", LOOPBACK, str(port), str(images)):
        return Outcome(False, "dicomnet's storescu did not store every image")
    return check_received(demo, "dicomnet's storescu")


def store_with_dcmtk(demo: Demo) -> Outcome:
    program = dcmtk_program(demo, "storescu")
    if program is None:
        return dcmtk_skipped(demo)
    port = demo.servers["storescp"].port
    images = sorted(str(path) for path in (demo.workdir / "images").iterdir())
    if not demo.run([program, "-v", "-aec", "ANY-SCP", LOOPBACK, str(port), *images]):
        return Outcome(False, "DCMTK's storescu failed against the dicomnet SCP")
    return check_received(demo, "DCMTK's storescu")


def check_received(demo: Demo, sender: str) -> Outcome:
    """Every sent image is on the SCP's disk with the same pixel data."""
    from pydicom import dcmread

    received = {
        path.name.split(".", 1)[1]: path
        for path in (demo.workdir / "received").iterdir()
        if path.is_file()
    }
    for sent in sorted((demo.workdir / "images").iterdir()):
        original = dcmread(sent)
        path = received.get(original.SOPInstanceUID)
        if path is None:
            return Outcome(False, f"{sent.name} did not arrive")
        if dcmread(path).PixelData != original.PixelData:
            return Outcome(False, f"{sent.name} arrived with different pixel data")
    return Outcome(True, f"{sender}: every image arrived, pixel data identical")


def commit_with_dicomnet(demo: Demo) -> Outcome:
    port = demo.servers["storescp"].port
    images = demo.workdir / "images"
    if demo.run_sample("stgcmtscu", "-v", LOOPBACK, str(port), str(images)):
        return Outcome(True, "the SCP confirmed it holds every image (N-EVENT-REPORT)")
    return Outcome(False, "storage commitment was not confirmed for every image")


def stop_storage_server(demo: Demo) -> Outcome:
    server = demo.servers["storescp"]
    server.stop()
    show_output(server.log())
    if server.process.returncode not in (0, -15):
        return Outcome(False, f"the SCP ended with status {server.process.returncode}")
    stored = sum(1 for path in (demo.workdir / "received").iterdir() if path.is_file())
    return Outcome(True, f"the SCP holds {stored} instances and stopped cleanly")


def dcmtk_program(demo: Demo, name: str) -> str | None:
    return find_dcmtk(name) if demo.use_dcmtk else None


def dcmtk_skipped(demo: Demo) -> Outcome:
    reason = "not asked for" if not demo.use_dcmtk else "DCMTK is not installed"
    return Outcome(True, reason, skipped=True)


DEMO_TRANSFER_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


def write_ct_image(path: Path, index: int, transfer_syntax: str) -> tuple[Path, str]:
    """A small synthetic CT image, saved as a Part-10 file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    ct_image_storage = UID("1.2.840.10008.5.1.4.1.1.2")
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    dataset.file_meta.MediaStorageSOPClassUID = ct_image_storage
    dataset.SOPClassUID = ct_image_storage
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.PatientName = "DEMO^PATIENT"
    dataset.PatientID = "DEMO-1"
    dataset.StudyInstanceUID = dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality = "CT"
    dataset.InstanceNumber = index
    dataset.Rows = dataset.Columns = 256
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    dataset.PixelData = os.urandom(256 * 256 * 2)
    dataset.save_as(path, enforce_file_format=True)
    return path, dataset.SOPInstanceUID


STEPS = [
    Step(
        "Make some images",
        "Synthetic CT images written as DICOM Part-10 files with pydicom.",
        make_images,
        required=True,
    ),
    Step(
        "Start the storage SCP (samples/storescp.py)",
        "A DicomNet listener that accepts every storage SOP class and Verification, "
        "writing each received instance atomically into received/.",
        start_storage_server,
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
        "C-STORE from dicomnet's SCU (samples/storescu.py)",
        "Propose the contexts the files need, send each file's data set as it is on disk.",
        store_with_dicomnet,
    ),
    Step(
        "C-STORE from DCMTK's storescu",
        "The same images again, from DCMTK.",
        store_with_dcmtk,
    ),
    Step(
        "Storage commitment from dicomnet's SCU (samples/stgcmtscu.py)",
        "N-ACTION asks the SCP to commit the images; it checks its disk and answers with "
        "an N-EVENT-REPORT on the same association.",
        commit_with_dicomnet,
    ),
    Step(
        "Stop the SCP and read its log",
        "What the server saw, from its side of each association.",
        stop_storage_server,
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
