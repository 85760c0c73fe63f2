#!/usr/bin/env python3
"""The dicomnet demo (``./dev demo``): a small DICOM archive on 127.0.0.1, told step by step.

Starts samples/qrscp.py (the archive: storage, query/retrieve and Modality Worklist,
PS3.4 annexes A, B, C and K) with a temporary store and its SQLite index (or the
PostgreSQL database --database names), and samples/storescp.py as a C-MOVE
destination. It generates instances (several patients, studies and series, CT and MR,
small pixel data) and stores them with samples/storescu.py; queries them back with
samples/findscu.py at patient, study and series level (a wildcard name, a date range);
retrieves one study with samples/getscu.py and moves another with samples/movescu.py,
checking that the data sets that came back are byte for byte the ones sent; queries the
worklist (findscu.py -W); repeats a store and a query with DCMTK's storescu and findscu
when they are installed; restarts the archive and shows that its index survived. Then
one storage SCP with TLS and a table of users: a store over TLS with mutual
authentication and a confirmed user identity, and the same refused for a wrong passcode
(certificates made for the run, samples/demo_pki.py). Every server is stopped at the
end. Exit status 0 when every check passed, 1 otherwise.

The demo is a list of ``Step`` objects run in order, each using ``Demo.start_server``
and ``Demo.run``.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
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

from demo_pki import DemoPki, make_demo_pki

SAMPLES_DIR = Path(__file__).resolve().parent
REPO_ROOT = SAMPLES_DIR.parent
LOOPBACK = "127.0.0.1"
ARCHIVE_AE = "ARCHIVE"
STORE_AE = "STORE"
SECURE_AE = "SECURE"
STARTUP_TIMEOUT = 15.0  # seconds a server may take to start listening
CLIENT_TIMEOUT = 60.0  # seconds a client program may run
STOP_TIMEOUT = 5.0  # seconds a server gets to exit after SIGTERM
_LISTENING = re.compile(r"listening on port (\d+)")
_MATCH = re.compile(r"^Match \d+$", re.MULTILINE)
_STUDY_INSTANCES = re.compile(r"NumberOfStudyRelatedInstances \(0020,1208\) (\d+)")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


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

    def stop(self) -> int:
        """SIGTERM (then SIGKILL); the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass(frozen=True)
class Ran:
    """A client program's exit and output."""

    ok: bool
    output: str


@dataclass(frozen=True)
class Instance:
    """A generated instance: its file and where it belongs."""

    path: Path
    patient_id: str
    study_uid: str
    study_date: str
    series_uid: str
    sop_uid: str


@dataclass
class Demo:
    """Shared state of the steps: settings, the servers started and a scratch folder."""

    use_dcmtk: bool
    workdir: Path
    database: str | None
    tag: str  # in every patient ID, so a shared database's older rows do not match
    servers: dict[str, BackgroundServer] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)
    pki: DemoPki | None = None  # made by the TLS step

    def start_server(self, name: str, sample: str, *args: str) -> BackgroundServer:
        """Start ``samples/<sample>.py *args 0`` as ``name`` and wait until it says
        which port it got. Raises RuntimeError (with the server's output shown) if it
        exits or stays silent."""
        log_path = self.workdir / f"{name}.log"
        argv = [sys.executable, str(SAMPLES_DIR / f"{sample}.py"), *args, "0"]
        show_command(argv)
        with log_path.open("wb") as log:  # a restart starts a new log
            process = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=sample_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = BackgroundServer(name, process, log_path)
        self.servers[name] = server
        try:
            server.port = wait_for_port_announcement(server)
        except RuntimeError:
            show_output(server.log())
            raise
        return server

    def port(self, name: str) -> str:
        return str(self.servers[name].port)

    def run(self, argv: Sequence[str], *, quiet: bool = False) -> Ran:
        """Run a client program to the end and show its output (only the last lines
        when ``quiet``)."""
        show_command(argv)
        try:
            result = subprocess.run(
                list(argv),
                cwd=self.workdir,
                env=sample_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=CLIENT_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            say(f"it did not finish within {CLIENT_TIMEOUT:.0f} s and was stopped")
            return Ran(False, "")
        lines = result.stdout.rstrip().splitlines()
        show_output("\n".join(lines[-4:] if quiet else lines))
        if result.returncode:
            say(f"exit status {result.returncode}")
        return Ran(result.returncode == 0, result.stdout)

    def run_sample(self, sample: str, *args: str, quiet: bool = False) -> Ran:
        return self.run([sys.executable, str(SAMPLES_DIR / f"{sample}.py"), *args], quiet=quiet)

    def find(self, *args: str) -> tuple[Ran, list[str]]:
        """findscu.py against the archive; the text block of each match."""
        ran = self.run_sample("findscu", "-aec", ARCHIVE_AE, *args, LOOPBACK, self.port("archive"))
        return ran, _MATCH.split(ran.output)[1:]

    def archive_args(self) -> list[str]:
        store = self.workdir / "archive"
        args = ["-aet", ARCHIVE_AE, "--bind", LOOPBACK, "--storage-dir", str(store)]
        if self.database:
            args += ["--database", self.database]
        args += ["--move-destination", f"{STORE_AE}={LOOPBACK}:{self.port('storescp')}"]
        return [*args, "--worklist-dir", str(self.workdir / "worklist")]

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
        time.sleep(0.05)  # polling another process's output, not ordering our own events
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


def dcmtk_program(demo: Demo, name: str) -> str | None:
    return find_dcmtk(name) if demo.use_dcmtk else None


def dcmtk_skipped(demo: Demo) -> Outcome:
    reason = "not asked for" if not demo.use_dcmtk else "DCMTK is not installed"
    return Outcome(True, reason, skipped=True)


def data_set_bytes(path: Path) -> tuple[str, bytes]:
    """(SOP Instance UID, the data set's bytes after the file meta information): what
    must travel unchanged (each writer makes the meta information its own)."""
    from dicomnet import read_part10_header

    header = read_part10_header(path)
    return header.sop_instance_uid, path.read_bytes()[header.data_offset :]


def compare_received(demo: Demo, folder: Path, expected: Sequence[Instance]) -> Outcome | None:
    """None when ``folder`` holds exactly ``expected``, data sets byte for byte; else
    the failure."""
    received = dict(data_set_bytes(p) for p in sorted(folder.iterdir()) if p.is_file())
    if sorted(received) != sorted(i.sop_uid for i in expected):
        return Outcome(False, f"{len(received)} instance(s) arrived, {len(expected)} expected")
    for instance in expected:
        if received[instance.sop_uid] != data_set_bytes(instance.path)[1]:
            return Outcome(False, f"{instance.path.name} came back different")
    return None


# -- the data -------------------------------------------------------------------------------

# (patient, name, [(study date, [(modality, instances)...])...]): 3 patients, 4 studies,
# 6 series, CT and MR.
PLAN = (
    ("1", "DOE^JOHN", [("20240105", [("CT", 2), ("MR", 2)]), ("20240312", [("MR", 2)])]),
    ("2", "DOE^JANE", [("20240210", [("CT", 3)])]),
    ("3", "SMITH^ANN", [("20240415", [("MR", 1), ("MR", 1)])]),
)
SIDE = 32  # pixels: small images, the data is not the point


def write_instance(
    path: Path,
    patient: tuple[str, str],
    study: tuple[str, str],
    series: tuple[str, str, int],
    number: int,
) -> Instance:
    """A small synthetic CT or MR image, saved as a Part-10 file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    (patient_id, name), (study_uid, date), (series_uid, modality, series_number) = (
        patient,
        study,
        series,
    )
    sop_class = UID(CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = name, patient_id
    ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study_uid, date, "101500"
    ds.StudyID, ds.AccessionNumber = f"S{date}", f"A{date}"
    ds.SeriesInstanceUID, ds.Modality, ds.SeriesNumber = series_uid, modality, series_number
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = SIDE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = os.urandom(SIDE * SIDE * 2)
    ds.save_as(path, enforce_file_format=True)
    return Instance(path, patient_id, study_uid, date, series_uid, ds.SOPInstanceUID)


def write_worklist_item(path: Path, patient: tuple[str, str], modality: str, date: str) -> None:
    """A worklist item as DCMTK's wlmscpfs reads them: one scheduled procedure step."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = f"{modality}SCANNER"
    step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime = date, "090000"
    step.ScheduledPerformingPhysicianName = "HOUSE^GREGORY"
    step.ScheduledProcedureStepDescription = f"{modality} of the head"
    step.ScheduledProcedureStepID = f"SPS-{path.stem}"
    item = Dataset()
    item.file_meta = FileMetaDataset()
    item.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    item.file_meta.MediaStorageSOPClassUID = UID(MODALITY_WORKLIST_FIND)
    item.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.PatientID, item.PatientName = patient
    item.AccessionNumber, item.RequestedProcedureID = f"W{path.stem}", f"RP-{path.stem}"
    item.StudyInstanceUID = generate_uid()
    item.ScheduledProcedureStepSequence = [step]
    item.save_as(path, enforce_file_format=True)


# -- the steps ------------------------------------------------------------------------------


def make_data(demo: Demo) -> Outcome:
    from pydicom.uid import generate_uid

    images = demo.workdir / "images"
    images.mkdir()
    for number, name, studies in PLAN:
        patient = (f"DEMO-{demo.tag}-{number}", name)
        for date, series_list in studies:
            study = (generate_uid(), date)
            for series_number, (modality, count) in enumerate(series_list, 1):
                series = (generate_uid(), modality, series_number)
                for index in range(1, count + 1):
                    path = images / f"{len(demo.instances) + 1:02d}-{modality}.dcm"
                    demo.instances.append(write_instance(path, patient, study, series, index))
    worklist = demo.workdir / "worklist"
    worklist.mkdir()
    for number, (modality, date) in enumerate([("MR", "20240601"), ("CT", "20240601")], 1):
        patient = (f"DEMO-{demo.tag}-W{number}", f"WAITING^{modality}")
        write_worklist_item(worklist / f"item{number}.wl", patient, modality, date)
    write_worklist_item(
        worklist / "item3.wl", (f"DEMO-{demo.tag}-W3", "WAITING^LATER"), "MR", "20240602"
    )
    studies = len({i.study_uid for i in demo.instances})
    series = len({i.series_uid for i in demo.instances})
    return Outcome(
        True,
        f"{len(demo.instances)} images of {len(PLAN)} patients, {studies} studies, "
        f"{series} series (CT and MR) in images/; 3 worklist items in worklist/",
    )


def start_servers(demo: Demo) -> Outcome:
    moved = demo.workdir / "moved"
    moved.mkdir()
    try:
        demo.start_server(
            "storescp", "storescp", "-aet", STORE_AE, "--bind", LOOPBACK, "-od", str(moved)
        )
        demo.start_server("archive", "qrscp", *demo.archive_args())
    except RuntimeError as exc:
        return Outcome(False, f"a server did not start: {exc}")
    index = "the PostgreSQL database given" if demo.database else "SQLite, archive/index.db"
    return Outcome(
        True,
        f"the archive listens on port {demo.port('archive')} (index: {index}), the move "
        f"destination {STORE_AE} on port {demo.port('storescp')}",
    )


def echo(demo: Demo) -> Outcome:
    if demo.run_sample("echoscu", "-aec", ARCHIVE_AE, LOOPBACK, demo.port("archive")).ok:
        return Outcome(True, "the archive answers C-ECHO")
    return Outcome(False, "no C-ECHO answer")


def store(demo: Demo) -> Outcome:
    images = str(demo.workdir / "images")
    ran = demo.run_sample(
        "storescu", "-aec", ARCHIVE_AE, LOOPBACK, demo.port("archive"), images, quiet=True
    )
    if not ran.ok:
        return Outcome(False, "not every image was stored")
    return Outcome(True, f"all {len(demo.instances)} images stored and indexed")


def expect_matches(ran: Ran, blocks: list[str], wanted: set[str], what: str) -> Outcome:
    """The matches name exactly the ``wanted`` values (one per match)."""
    if not ran.ok:
        return Outcome(False, f"the query for {what} failed")
    found = [{value for value in wanted if value in block} for block in blocks]
    if len(blocks) != len(wanted) or set().union(*found) != wanted:
        return Outcome(False, f"the query for {what} found {len(blocks)} match(es), not {wanted}")
    return Outcome(True, f"{what}: {len(blocks)} match(es), as stored")


def query_patients(demo: Demo) -> Outcome:
    ran, blocks = demo.find(
        "-P",
        "-k",
        "PatientName=DOE*",
        "-k",
        f"PatientID=DEMO-{demo.tag}-*",
        "-k",
        "NumberOfPatientRelatedStudies",
    )
    return expect_matches(ran, blocks, {"DOE^JOHN", "DOE^JANE"}, "patients named DOE*")


def query_studies(demo: Demo) -> Outcome:
    ran, blocks = demo.find(
        "-S",
        "-k",
        "StudyDate=20240201-20240331",
        "-k",
        f"PatientID=DEMO-{demo.tag}-*",
        "-k",
        "PatientName",
        "-k",
        "StudyInstanceUID",
        "-k",
        "ModalitiesInStudy",
    )
    wanted = {i.study_uid for i in demo.instances if "20240201" <= i.study_date <= "20240331"}
    return expect_matches(ran, blocks, wanted, "studies of February and March 2024")


def query_series(demo: Demo) -> Outcome:
    first = demo.instances[0]
    ran, blocks = demo.find(
        "-S",
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={first.study_uid}",
        "-k",
        "SeriesInstanceUID",
        "-k",
        "Modality",
        "-k",
        "NumberOfSeriesRelatedInstances",
    )
    wanted = {i.series_uid for i in demo.instances if i.study_uid == first.study_uid}
    return expect_matches(ran, blocks, wanted, "series of the first study (CT and MR)")


def get_study(demo: Demo) -> Outcome:
    target = demo.workdir / "got"
    target.mkdir()
    study = demo.instances[-1].study_uid
    ran = demo.run_sample(
        "getscu",
        "-aec",
        ARCHIVE_AE,
        "-od",
        str(target),
        "-k",
        f"StudyInstanceUID={study}",
        LOOPBACK,
        demo.port("archive"),
        quiet=True,
    )
    if not ran.ok:
        return Outcome(False, "the C-GET failed")
    expected = [i for i in demo.instances if i.study_uid == study]
    mismatch = compare_received(demo, target, expected)
    return mismatch or Outcome(
        True, f"{len(expected)} image(s) came back on the same association, byte for byte"
    )


def move_study(demo: Demo) -> Outcome:
    study = demo.instances[0].study_uid
    ran = demo.run_sample(
        "movescu",
        "-aec",
        ARCHIVE_AE,
        "-aem",
        STORE_AE,
        "-k",
        f"StudyInstanceUID={study}",
        LOOPBACK,
        demo.port("archive"),
        quiet=True,
    )
    if not ran.ok:
        return Outcome(False, "the C-MOVE failed")
    expected = [i for i in demo.instances if i.study_uid == study]
    mismatch = compare_received(demo, demo.workdir / "moved", expected)
    return mismatch or Outcome(
        True, f"{len(expected)} image(s) arrived at {STORE_AE} (storescp.py), byte for byte"
    )


def query_worklist(demo: Demo) -> Outcome:
    step = "ScheduledProcedureStepSequence[0]"
    ran, blocks = demo.find(
        "-W",
        "-k",
        "PatientName",
        "-k",
        f"PatientID=DEMO-{demo.tag}-W*",
        "-k",
        f"{step}.Modality=MR",
        "-k",
        f"{step}.ScheduledProcedureStepStartDate=20240601",
        "-k",
        f"{step}.ScheduledStationAETitle",
        "-k",
        f"{step}.ScheduledProcedureStepID",
    )
    return expect_matches(ran, blocks, {"WAITING^MR"}, "MR steps scheduled for 2024-06-01")


def store_and_find_with_dcmtk(demo: Demo) -> Outcome:
    storescu, findscu = dcmtk_program(demo, "storescu"), dcmtk_program(demo, "findscu")
    if storescu is None or findscu is None:
        return dcmtk_skipped(demo)
    from pydicom.uid import generate_uid

    extra = demo.workdir / "dcmtk"
    extra.mkdir()
    patient = (f"DEMO-{demo.tag}-4", "DCMTK^SENT")
    study = (generate_uid(), "20240501")
    series = (generate_uid(), "CT", 1)
    sent = [write_instance(extra / f"{n}.dcm", patient, study, series, n) for n in (1, 2)]
    port = demo.port("archive")
    if not demo.run(
        [storescu, "-aec", ARCHIVE_AE, LOOPBACK, port, *map(str, (i.path for i in sent))]
    ).ok:
        return Outcome(False, "DCMTK's storescu failed against the archive")
    demo.instances += sent
    ran = demo.run(
        [
            findscu,
            "-S",
            "-aec",
            ARCHIVE_AE,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"PatientID={patient[0]}",
            "-k",
            "NumberOfStudyRelatedInstances",
            LOOPBACK,
            port,
        ],
        quiet=True,
    )
    dump = ran.output
    if not ran.ok or "(0020,1208) IS [2 ]" not in dump and "(0020,1208) IS [2]" not in dump:
        return Outcome(False, "DCMTK's findscu did not find the study it stored")
    return Outcome(True, "DCMTK stored 2 images and found their study: the tools agree")


def restart_archive(demo: Demo) -> Outcome:
    archive = demo.servers["archive"]
    status = archive.stop()
    show_output(archive.log())
    if status not in (0, -15):
        return Outcome(False, f"the archive ended with status {status}")
    try:
        demo.start_server("archive", "qrscp", *demo.archive_args())
    except RuntimeError as exc:
        return Outcome(False, f"the archive did not start again: {exc}")
    ran, blocks = demo.find(
        "-S",
        "-k",
        f"PatientID=DEMO-{demo.tag}-*",
        "-k",
        "StudyInstanceUID",
        "-k",
        "NumberOfStudyRelatedInstances",
    )
    studies = {i.study_uid for i in demo.instances}
    outcome = expect_matches(ran, blocks, studies, "every study after the restart")
    if not outcome.ok:
        return outcome
    counted = sum(int(n) for n in _STUDY_INSTANCES.findall(ran.output))
    if counted != len(demo.instances):
        return Outcome(False, f"the studies hold {counted} instances, not {len(demo.instances)}")
    return Outcome(
        True,
        f"the index survived the restart: all {len(studies)} studies and "
        f"{counted} instances found again",
    )


def stop_servers(demo: Demo) -> Outcome:
    statuses = {name: server.stop() for name, server in demo.servers.items()}
    show_output(demo.servers["archive"].log())
    bad = {name: status for name, status in statuses.items() if status not in (0, -15)}
    if bad:
        return Outcome(False, f"servers ended badly: {bad}")
    return Outcome(True, "the archive and the move destination stopped cleanly")


# -- secure transport and user identity (PS3.15 TLS, PS3.7 D.3.3.7) -----------------------

DEMO_USER, DEMO_PASSCODE = "demo", secrets.token_hex(8)


def start_secure_server(demo: Demo) -> Outcome:
    pki_dir = demo.workdir / "pki"
    pki_dir.mkdir()
    demo.pki = make_demo_pki(pki_dir)
    users = demo.workdir / "users.txt"
    users.write_text(f"# name:passcode, one a line\n{DEMO_USER}:{DEMO_PASSCODE}\n")
    received = demo.workdir / "secure"
    received.mkdir()
    server = demo.pki.server
    try:
        demo.start_server(
            "secure",
            "storescp",
            *("-aet", SECURE_AE, "--bind", LOOPBACK, "-od", str(received)),
            *("+tls", str(server.key), str(server.certificate)),
            *("+cf", str(demo.pki.ca_certificate)),
            *("--user-file", str(users)),
        )
    except RuntimeError as exc:
        return Outcome(False, f"the TLS storage SCP did not start: {exc}")
    return Outcome(
        True,
        f"storescp.py listens with TLS (BCP 195 non-downgrading, client certificates "
        f"required) on port {demo.port('secure')}, and accepts only user {DEMO_USER!r}",
    )


def secure_store(demo: Demo, passcode: str) -> Ran:
    assert demo.pki is not None, "start_secure_server makes the certificates first"
    client = demo.pki.client
    image = str(demo.instances[0].path)
    return demo.run_sample(
        "storescu",
        *("-aec", SECURE_AE),
        *("+tls", str(client.key), str(client.certificate), "+cf", str(demo.pki.ca_certificate)),
        *("-usr", DEMO_USER, "-pwd", passcode, "-rsp"),
        *(LOOPBACK, demo.port("secure"), image),
    )


def store_over_tls(demo: Demo) -> Outcome:
    if not secure_store(demo, DEMO_PASSCODE).ok:
        return Outcome(False, "the store over TLS with the right passcode failed")
    wrong = compare_received(demo, demo.workdir / "secure", demo.instances[:1])
    if wrong is not None:
        return wrong
    return Outcome(
        True,
        "one image stored over TLS with mutual authentication, the user identity confirmed "
        "by the SCP's positive response, the data set identical",
    )


def wrong_passcode_refused(demo: Demo) -> Outcome:
    ran = secure_store(demo, DEMO_PASSCODE + "x")
    if ran.ok:
        return Outcome(False, "a wrong passcode was accepted")
    if "association rejected" not in ran.output:
        return Outcome(False, "the store failed, but not by a rejected association")
    still = compare_received(demo, demo.workdir / "secure", demo.instances[:1])
    if still is not None:
        return still
    return Outcome(True, "a wrong passcode gets A-ASSOCIATE-RJ, and nothing is stored")


SECURITY_STEPS = [
    Step(
        "Start a storage SCP with TLS and a table of users (samples/storescp.py)",
        "Certificates made for the run: a CA, the server's and the client's.",
        start_secure_server,
    ),
    Step(
        "Store over TLS as a known user (storescu.py +tls ... -usr -pwd -rsp)",
        "TLS 1.2/1.3 with both certificates checked; the passcode travels encrypted.",
        store_over_tls,
    ),
    Step(
        "The same with a wrong passcode",
        "The SCP's user table refuses the association before any data set is sent.",
        wrong_passcode_refused,
    ),
]

STEPS = [
    Step(
        "Make the data",
        "Synthetic CT and MR images (Part-10 files, pydicom) and worklist items.",
        make_data,
        required=True,
    ),
    Step(
        "Start the archive (samples/qrscp.py) and a move destination (samples/storescp.py)",
        "A temporary store with its index; storescp.py is the AE the archive sends C-MOVEs to.",
        start_servers,
        required=True,
    ),
    Step("C-ECHO (samples/echoscu.py)", "Is the archive there?", echo),
    Step(
        "C-STORE every image (samples/storescu.py)",
        "The archive writes each one atomically (study/series/instance) and indexes it.",
        store,
        required=True,
    ),
    Step(
        "C-FIND at PATIENT level, wildcard name (findscu.py -P)",
        "Patient Root: PatientName=DOE* matches two of the three patients.",
        query_patients,
    ),
    Step(
        "C-FIND at STUDY level, date range (findscu.py -S)",
        "Study Root: StudyDate=20240201-20240331, matched by the index's database.",
        query_studies,
    ),
    Step(
        "C-FIND at SERIES level (findscu.py -S, QueryRetrieveLevel=SERIES)",
        "The series of one study: one CT, one MR.",
        query_series,
    ),
    Step(
        "C-GET one study (samples/getscu.py)",
        "The images come back on the same association (the SCU takes the storage SCP role).",
        get_study,
    ),
    Step(
        "C-MOVE another study to storescp.py (samples/movescu.py)",
        "The archive opens its own association to the destination and sends the images.",
        move_study,
    ),
    Step(
        "Modality Worklist C-FIND (findscu.py -W)",
        "What a modality asks: its MR steps scheduled for one day.",
        query_worklist,
    ),
    Step(
        "C-STORE and C-FIND with DCMTK's storescu and findscu",
        "An independent implementation stores a new study and finds it.",
        store_and_find_with_dcmtk,
    ),
    Step(
        "Restart the archive and query again",
        "Start-up reconciles the files with the index instead of rescanning them.",
        restart_archive,
    ),
    *SECURITY_STEPS,
    Step("Stop the servers", "What the archive saw, from its side.", stop_servers),
]


def run_steps(demo: Demo, steps: Sequence[Step]) -> list[tuple[Step, Outcome]]:
    done: list[tuple[Step, Outcome]] = []
    for number, step in enumerate(steps, 1):
        print(f"\n[{number}/{len(steps)}] {step.title}", flush=True)
        say(step.explanation)
        outcome = step.action(demo)
        done.append((step, outcome))
        say(f"{label(outcome)}: {outcome.summary}")
        if step.required and not outcome.ok:
            say("the remaining steps need this one; stopping here")
            break
    return done


def label(outcome: Outcome) -> str:
    return "skipped" if outcome.skipped else "ok" if outcome.ok else "FAILED"


def report(done: Sequence[tuple[Step, Outcome]], total: int, seconds: float) -> bool:
    """Print one line per step; True when every step ran and none failed."""
    print("\nreport")
    for step, outcome in done:
        print(f"  {label(outcome):7} {step.title}")
    passed = len(done) == total and all(outcome.ok for _, outcome in done)
    verdict = "every check passed" if passed else "something failed (see above)"
    print(f"\ndemo finished in {seconds:.1f} s: {verdict}")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        metavar="URL",
        help="the archive's index, e.g. postgresql://user@host/db (default: SQLite in "
        "the temporary store)",
    )
    parser.add_argument(
        "--no-dcmtk",
        dest="use_dcmtk",
        action="store_false",
        help="do not use DCMTK even when it is installed",
    )
    args = parser.parse_args(argv)

    print("dicomnet demo: a DICOM archive on this machine, talking over 127.0.0.1")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dicomnet-demo-") as workdir:
        demo = Demo(args.use_dcmtk, Path(workdir), args.database, secrets.token_hex(3))
        try:
            done = run_steps(demo, STEPS)
        finally:
            demo.stop_servers()
    return 0 if report(done, len(STEPS), time.monotonic() - started) else 1


if __name__ == "__main__":
    sys.exit(main())
