#!/usr/bin/env python3
"""Throughput, CPU and memory of dicomnet against pynetdicom and DCMTK on loopback.

Three workloads, each on ONE association (PS3.7 C-STORE and C-ECHO, PS3.8 P-DATA at the
same maximum PDU length for every peer):

  (a) C-STORE of N small instances (CT-like, 512x512 16-bit, Explicit VR LE, ~0.5 MB);
  (b) C-STORE of N large instances (100 frames of 512x512 16-bit, ~50 MB);
  (c) N C-ECHOs.

Every sender and receiver is a separate process (DCMTK's programs, or ``bench/peers.py``
roles for dicomnet and pynetdicom). The wall time runs from the sender's start to its
exit (receiver start-up excluded); the sender's CPU seconds come from the kernel's
resource usage (``os.wait4``), the receiver's likewise minus what it had used when the
sender started (/proc), and the receiver's peak RSS is its VmHWM. The
receiver writes every instance to a directory on the benchmark's temp dir (tmpfs when
there is room), and the file count is checked.

With ``--tls`` the dicomnet and DCMTK pairs also run over TLS (peers named
``dicomnet+tls`` and ``dcmtk+tls``: mutual authentication, each side's default
profile, certificates made for the run), so TLS and plain are measured in the same run.

Tables per workload come first, then the ratios and the verdict on dicomnet's targets.
"""

from __future__ import annotations

import argparse
import compileall
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEERS_SCRIPT = BENCH_DIR / "peers.py"

LOOPBACK = "127.0.0.1"
SCU_AE = "BENCHSCU"
SCP_AE = "BENCHSCP"
TLS = "+tls"  # a peer name ending so runs over TLS
PEERS = ("dicomnet", "pynetdicom", "dcmtk", "dicomnet" + TLS, "dcmtk" + TLS)
ALL_PAIRS = (
    ("dicomnet", "dicomnet"),
    ("pynetdicom", "pynetdicom"),
    ("dcmtk", "dcmtk"),
    ("dicomnet", "dcmtk"),
    ("dcmtk", "dicomnet"),
    ("pynetdicom", "dicomnet"),
    ("dicomnet", "pynetdicom"),
)
TLS_PAIRS = (
    ("dicomnet" + TLS, "dicomnet" + TLS),
    ("dcmtk" + TLS, "dcmtk" + TLS),
    ("dicomnet" + TLS, "dcmtk" + TLS),
    ("dcmtk" + TLS, "dicomnet" + TLS),
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MULTIFRAME_WORD_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7.3"
IMAGE_SIDE = 512
LARGE_FRAMES = 100  # 100 x 512 x 512 x 2 bytes = 50 MiB of pixel data
INSTANCE_OVERHEAD = 4096  # meta header and attributes, for disk-space estimates
MB = 1e6

STARTUP_TIMEOUT = 30.0  # seconds a receiver may take to listen
SETTLE_TIMEOUT = 10.0  # seconds for the last file to appear after the sender exits
RUN_TIMEOUT = 1800.0  # seconds a sender may run
STOP_TIMEOUT = 5.0  # seconds a receiver gets to exit after SIGTERM
PYTHON_STARTUP_PROBES = {
    "dicomnet": "import dicomnet, dicomnet.sopclasses, dicomnet.dimse.part10",
    "pynetdicom": "import pynetdicom, pynetdicom.sop_class, pydicom.filewriter",
}


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    count: int
    unit: str
    instance_bytes: int = 0  # 0 for C-ECHO
    input_dir: Path | None = None

    @property
    def total_bytes(self) -> int:
        return self.count * self.instance_bytes

    def rate(self, seconds: float) -> float:
        """Throughput in this workload's unit."""
        amount = self.total_bytes / MB if self.unit == "MB/s" else self.count
        return amount / seconds


@dataclass(frozen=True)
class Measurement:
    wall: float
    sender_cpu: float
    receiver_cpu: float
    receiver_rss_mb: float
    received: int
    error: str = ""


@dataclass(frozen=True)
class Summary:
    """The median of several runs of one pair on one workload."""

    wall: float
    throughput: float
    sender_cpu: float
    receiver_cpu: float
    receiver_rss_mb: float
    check: str
    usable: bool  # at least one run succeeded: the figures are its medians
    failed_runs: int

    @property
    def cpu(self) -> float:
        return self.sender_cpu + self.receiver_cpu


# -- test data ----------------------------------------------------------------------


def image_template(sop_class: str, frames: int) -> Dataset:
    """A 16-bit MONOCHROME2 image with random pixel data, Explicit VR LE file meta."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.PatientName = "BENCH^DICOMNET"
    ds.PatientID = "BENCH"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT" if sop_class == CT_IMAGE_STORAGE else "OT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = IMAGE_SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = os.urandom(IMAGE_SIDE * IMAGE_SIDE * 2 * max(frames, 1))
    ds["PixelData"].VR = "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def make_instances(cache_dir: Path, name: str, count: int, sop_class: str, frames: int) -> Path:
    """``count`` Part-10 files of one image with distinct instance UIDs, generated once
    and kept in ``cache_dir`` for later runs."""
    directory = cache_dir / f"{name}-{count}"
    complete = cache_dir / f"{name}-{count}.complete"
    if complete.exists():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    print(f"generating {count} {name} instances in {directory} ...", flush=True)
    ds = image_template(sop_class, frames)
    for index in range(count):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = index + 1
        ds.save_as(directory / f"{index:06d}.dcm", enforce_file_format=True)
    complete.touch()
    return directory


def instance_size(directory: Path) -> int:
    return next(directory.iterdir()).stat().st_size


def make_certificates(base: Path) -> Path:
    """A CA, a server and a client certificate for the TLS pairs (the test suite's
    maker, so the bench and the tests use the same kind of certificates)."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from tls_certificates import make_pki

    directory = base / "pki"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return make_pki(directory).directory


def choose_temp_dir(needed_bytes: int) -> Path:
    """/dev/shm when it exists and has room (the receivers write to tmpfs), else the
    system temp dir."""
    shm = Path("/dev/shm")
    writable = shm.is_dir() and os.access(shm, os.W_OK)
    if writable and shutil.disk_usage(shm).free > needed_bytes * 1.2:
        return shm
    return Path(tempfile.gettempdir())


# -- processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"receiver exited with status {process.returncode} at start")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"receiver not listening on port {port}") from None
            time.sleep(0.05)


def cpu_seconds_so_far(pid: int) -> float:
    """User + system CPU of a running process, from /proc/<pid>/stat (in clock ticks,
    truncated: at most one tick, 10 ms, under the true value)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    user, system = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (user + system) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process. (``ru_maxrss`` from wait4 is no use here: a child
    spawned by vfork inherits this big parent's high-water mark across exec.)"""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError(f"no VmHWM for process {pid}")


def reap(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
    """Wait for ``process`` (killed after ``timeout`` seconds); its exit code and CPU
    seconds, all threads included."""
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        watchdog.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def stop(process: subprocess.Popen[bytes]) -> float:
    """Stop a receiver; its CPU seconds over its whole life (0 when it had already
    exited and been reaped)."""
    if process.poll() is not None:
        return 0.0
    process.send_signal(signal.SIGTERM)
    return reap(process, STOP_TIMEOUT)[1]


def library(peer: str) -> str:
    """The implementation a peer name runs ("dcmtk+tls" -> "dcmtk")."""
    return peer.removesuffix(TLS)


def peer_env(peer: str, pycache: Path) -> dict[str, str]:
    if library(peer) == "dcmtk":
        # Debian's DCMTK keeps Nagle's algorithm on unless told otherwise, which stalls
        # each request/response round trip by the delayed-ACK time (~40 ms).
        return {**os.environ, "TCP_NODELAY": "1"}
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    # Every Python peer uses compiled bytecode, cached outside the source tree, so no
    # library pays for compiling its sources at each start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


@dataclass(frozen=True)
class Setup:
    """What every transfer of one benchmark run shares."""

    pdu: int
    envs: dict[str, dict[str, str]]  # environment per peer
    work_dir: Path  # emptied before each transfer
    pki: Path | None = None  # certificates of the TLS peers: {server,client}.{key,crt}, ca.crt


def tls_arguments(setup: Setup, peer: str, side: str) -> list[str]:
    """The TLS options of ``peer`` as ``side`` ("server" or "client"); none for a plain
    peer."""
    if not peer.endswith(TLS):
        return []
    assert setup.pki is not None
    key, certificate, ca = (
        str(setup.pki / name) for name in (f"{side}.key", f"{side}.crt", "ca.crt")
    )
    if library(peer) == "dcmtk":
        return ["+tls", key, certificate, "+cf", ca]
    return ["--tls", key, certificate, ca]


def receiver_command(setup: Setup, peer: str, out_dir: Path, port: int) -> list[str]:
    pdu, tls = setup.pdu, tls_arguments(setup, peer, "server")
    if library(peer) == "dcmtk":
        return ["storescp", "-aet", SCP_AE, "-pdu", str(pdu), *tls, "-od", str(out_dir), str(port)]
    return [
        sys.executable,
        str(PEERS_SCRIPT),
        f"{library(peer)}-scp",
        str(out_dir),
        str(port),
        f"--pdu={pdu}",
        *tls,
    ]


def sender_command(setup: Setup, peer: str, workload: Workload, port: int) -> list[str]:
    pdu, tls = setup.pdu, tls_arguments(setup, peer, "client")
    if library(peer) == "dcmtk":
        common = ["-aet", SCU_AE, "-aec", SCP_AE, "-pdu", str(pdu), *tls]
        if workload.input_dir is None:
            return ["echoscu", *common, "--repeat", str(workload.count), LOOPBACK, str(port)]
        return ["storescu", *common, "+sd", LOOPBACK, str(port), str(workload.input_dir)]
    role, target = (
        ("echo", str(workload.count))
        if workload.input_dir is None
        else ("store", str(workload.input_dir))
    )
    script = [sys.executable, str(PEERS_SCRIPT), f"{library(peer)}-{role}", target, str(port)]
    return [*script, f"--pdu={pdu}", *tls]


def count_files(directory: Path) -> int:
    return sum(1 for entry in os.scandir(directory) if entry.is_file())


def wait_for_files(directory: Path, expected: int) -> int:
    """The number of files in ``directory`` once it reaches ``expected`` (or time out)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    received = count_files(directory)
    while received < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        received = count_files(directory)
    return received


def run_pair(setup: Setup, pair: tuple[str, str], workload: Workload) -> Measurement:
    """One transfer: start the receiver, time the sender, stop the receiver."""
    sender, receiver = pair
    work_dir = setup.work_dir
    out_dir = work_dir / "received"
    shutil.rmtree(work_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    port = free_port()
    with open(work_dir / "receiver.log", "wb") as receiver_log:
        scp = subprocess.Popen(
            receiver_command(setup, receiver, out_dir, port),
            env=setup.envs[receiver],
            stdin=subprocess.DEVNULL,
            stdout=receiver_log,
            stderr=subprocess.STDOUT,
        )
    scp_cpu_before = 0.0
    try:
        wait_for_port(port, scp)
        time.sleep(0.2)  # let the receiver finish with the probe connection
        scp_cpu_before = cpu_seconds_so_far(scp.pid)
        with open(work_dir / "sender.log", "wb") as sender_log:
            started = time.perf_counter()
            scu = subprocess.Popen(
                sender_command(setup, sender, workload, port),
                env=setup.envs[sender],
                stdin=subprocess.DEVNULL,
                stdout=sender_log,
                stderr=subprocess.STDOUT,
            )
            code, scu_cpu = reap(scu, RUN_TIMEOUT)
            wall = time.perf_counter() - started
        expected = workload.count if workload.input_dir is not None else 0
        received = wait_for_files(out_dir, expected)
        if scp.poll() is not None:
            raise RuntimeError(f"receiver exited with status {scp.returncode} during the run")
        scp_rss = peak_rss_mb(scp.pid)
    finally:
        scp_cpu = stop(scp) - scp_cpu_before
    error = ""
    if code != 0:
        log = (work_dir / "sender.log").read_text(errors="replace").strip().splitlines()
        error = f"sender exit {code}: {log[-1] if log else 'no output'}"
    elif received != expected:
        error = f"received {received} of {expected} files"
    if error:
        error += f" (logs in {keep_logs(work_dir, pair, workload)})"
    return Measurement(wall, scu_cpu, scp_cpu, scp_rss, received, error)


def keep_logs(work_dir: Path, pair: tuple[str, str], workload: Workload) -> Path:
    """Copy a failed transfer's logs out of ``work_dir`` (emptied by the next transfer)."""
    kept = Path(tempfile.mkdtemp(prefix=f"failed-{workload.key}-{'-'.join(pair)}-"))
    for name in ("sender.log", "receiver.log"):
        shutil.copy2(work_dir / name, kept / name)
    return kept


def summarize(workload: Workload, runs: Sequence[Measurement]) -> Summary:
    """Medians over the successful runs (all runs when none succeeded); failed runs are
    counted and the first error shown in the check column."""
    errors = [m.error for m in runs if m.error]
    counted = [m for m in runs if not m.error] or list(runs)

    def median(field: Callable[[Measurement], float]) -> float:
        return statistics.median(field(m) for m in counted)

    wall = median(lambda m: m.wall)
    check = "ok" if workload.input_dir is None else f"{counted[0].received}/{workload.count}"
    if errors:
        check = f"{check}; FAILED {len(errors)} of {len(runs)} runs: {errors[0]}"
    return Summary(
        wall=wall,
        throughput=workload.rate(wall),
        sender_cpu=median(lambda m: m.sender_cpu),
        receiver_cpu=median(lambda m: m.receiver_cpu),
        receiver_rss_mb=max(m.receiver_rss_mb for m in counted),
        check=check,
        usable=len(errors) < len(runs),
        failed_runs=len(errors),
    )


# -- report -------------------------------------------------------------------------

Results = dict[str, dict[tuple[str, str], Summary]]


def pair_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]} -> {pair[1]}"


def print_table(workload: Workload, results: dict[tuple[str, str], Summary]) -> None:
    print(f"\n{workload.title}")
    header = (
        f"{'sender -> receiver':<26}{'wall s':>9}{workload.unit:>10}{'send CPU s':>12}"
        f"{'recv CPU s':>12}{'recv RSS MB':>13}  check"
    )
    print(header)
    print("-" * len(header))
    for pair, s in results.items():
        print(
            f"{pair_name(pair):<26}{s.wall:>9.3f}{s.throughput:>10.1f}{s.sender_cpu:>12.2f}"
            f"{s.receiver_cpu:>12.2f}{s.receiver_rss_mb:>13.1f}  "
            f"{s.check}"
        )


def print_startup(startup: dict[str, float]) -> None:
    if startup:
        costs = ", ".join(f"{peer} {seconds:.2f} s" for peer, seconds in sorted(startup.items()))
        print(
            f"\nPython start-up (interpreter + library import), part of each Python "
            f"sender's wall time: {costs}"
        )


def python_startup_seconds(env: dict[str, str], peer: str) -> float:
    """Interpreter start and imports of a Python peer. The first run also fills the
    bytecode cache, so it is a warm-up and not counted."""
    times = []
    for _ in range(4):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", PYTHON_STARTUP_PROBES[peer]], env=env, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "n/a"


def print_ratios(workloads: Sequence[Workload], results: Results) -> None:
    """dicomnet against each library, both sides swapped, then one side at a time."""
    print(
        "\nRatios dicomnet / other: throughput (higher is better), CPU seconds (lower is "
        "better),\nreceiver peak RSS in MB (dicomnet vs other)"
    )
    print(f"  {'':<68}{'throughput':>11}{'CPU':>8}   recv RSS MB")
    for other in ("pynetdicom", "dcmtk"):
        mine, theirs = ("dicomnet", "dicomnet"), (other, other)
        for w in workloads:
            _print_comparison(w, results, mine, theirs, "both sides", lambda s: s.cpu, True)
        for w in workloads:
            mine = ("dicomnet", other)
            _print_comparison(w, results, mine, theirs, "sender", lambda s: s.sender_cpu, False)
        for w in workloads:
            mine = (other, "dicomnet")
            _print_comparison(w, results, mine, theirs, "receiver", lambda s: s.receiver_cpu, True)


def _print_comparison(
    workload: Workload,
    results: Results,
    mine: tuple[str, str],
    theirs: tuple[str, str],
    side: str,
    cpu: Callable[[Summary], float],
    show_rss: bool,
) -> None:
    """One ratio line; nothing when either pair was not run or failed."""
    a, b = results[workload.key].get(mine), results[workload.key].get(theirs)
    if a is None or b is None or not (a.usable and b.usable):
        return
    label = f"({workload.key}) {side}: {pair_name(mine)} vs {pair_name(theirs)}"
    rss = f"{a.receiver_rss_mb:6.1f} vs {b.receiver_rss_mb:5.1f}" if show_rss else ""
    ratios = f"{ratio(a.throughput, b.throughput):>11}{ratio(cpu(a), cpu(b)):>8}"
    print(f"  {label:<68}{ratios}   {rss}".rstrip())


def print_targets(workloads: Sequence[Workload], results: Results) -> None:
    dn, pyn, dcmtk = ("dicomnet",) * 2, ("pynetdicom",) * 2, ("dcmtk",) * 2
    by_key = {w.key: results[w.key] for w in workloads}

    def throughput_ratio(
        key: str, other: tuple[str, str], mine: tuple[str, str] = dn
    ) -> float | None:
        table = by_key.get(key, {})
        a, b = table.get(mine), table.get(other)
        if a is None or b is None or not (a.usable and b.usable):
            return None
        return a.throughput / b.throughput

    verdicts: list[tuple[str, float | None, Callable[[float], bool], str]] = [
        ("dicomnet >= 5x pynetdicom on (a)", throughput_ratio("a", pyn), lambda r: r >= 5, "x"),
        ("dicomnet >= 5x pynetdicom on (b)", throughput_ratio("b", pyn), lambda r: r >= 5, "x"),
        ("dicomnet >= DCMTK on (b)", throughput_ratio("b", dcmtk), lambda r: r >= 1, "x"),
    ]
    dn_tls, dcmtk_tls = ("dicomnet" + TLS,) * 2, ("dcmtk" + TLS,) * 2
    for key in "ab":
        verdicts += [
            (
                f"dicomnet TLS >= 0.7x dicomnet plain on ({key})",
                throughput_ratio(key, dn, dn_tls),
                lambda r: r >= 0.7,
                "x",
            ),
            (
                f"dicomnet TLS >= DCMTK TLS on ({key})",
                throughput_ratio(key, dcmtk_tls, dn_tls),
                lambda r: r >= 1,
                "x",
            ),
        ]
    receivers = [
        s.receiver_rss_mb
        for (_, r), s in by_key.get("b", {}).items()
        if r == "dicomnet" and s.usable
    ]
    verdicts.append(
        (
            "dicomnet receiver peak RSS < 100 MB on (b)",
            max(receivers) if receivers else None,
            lambda mb: mb < 100,
            " MB",
        )
    )
    print("\nTargets:")
    for label, value, holds, unit in verdicts:
        if value is None:
            print(f"  {label:<46} n/a (pair or workload not run, or failed)")
        else:
            print(f"  {label:<46} {value:.2f}{unit:<4} {'PASS' if holds(value) else 'FAIL'}")


# -- main ---------------------------------------------------------------------------


def run_workload(
    setup: Setup, workload: Workload, pairs: Sequence[tuple[str, str]], runs: int
) -> dict[tuple[str, str], Summary]:
    """Every pair ``runs`` times, the pairs interleaved so that a slow spell of the
    machine does not hit one pair only."""
    measured: dict[tuple[str, str], list[Measurement]] = {pair: [] for pair in pairs}
    for run in range(runs):
        for pair in pairs:
            print(f"  {workload.key} run {run + 1}: {pair_name(pair)} ...", end="", flush=True)
            try:
                m = run_pair(setup, pair, workload)
            except RuntimeError as exc:  # the receiver did not start or died
                m = Measurement(math.inf, 0.0, 0.0, 0.0, 0, str(exc))
            measured[pair].append(m)
            print(f" {m.wall:.3f} s{' ' + m.error if m.error else ''}", flush=True)
    return {pair: summarize(workload, ms) for pair, ms in measured.items()}


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """'dicomnet:dcmtk,dcmtk:dicomnet' (also 'a-b' or 'a->b') -> pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        for separator in ("->", ":", "-"):
            if separator in item:
                sender, receiver = (side.strip() for side in item.split(separator, 1))
                break
        else:
            raise argparse.ArgumentTypeError(f"pair {item!r}: write SENDER:RECEIVER")
        if sender not in PEERS or receiver not in PEERS:
            raise argparse.ArgumentTypeError(f"pair {item!r}: peers are {', '.join(PEERS)}")
        pairs.append((sender, receiver))
    return pairs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts: 200 small, 4 large, 500 echoes"
    )
    parser.add_argument("--small", type=int, help="small instances (default 1000)")
    parser.add_argument("--large", type=int, help="large instances (default 20)")
    parser.add_argument("--echo", type=int, help="C-ECHOs (default 2000)")
    parser.add_argument("--runs", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument(
        "--pairs",
        type=parse_pairs,
        default=list(ALL_PAIRS),
        help="comma-separated SENDER:RECEIVER pairs among "
        f"{', '.join(PEERS)} (default: the 7 standard pairs)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also run the TLS pairs (dicomnet and DCMTK, both ways) after the others",
    )
    parser.add_argument(
        "--workloads",
        default="abc",
        help="which of a (small), b (large), c (echo) to run (default abc)",
    )
    parser.add_argument(
        "--pdu",
        type=int,
        default=16384,
        help="maximum PDU length of every peer (4096..131072, default 16384)",
    )
    parser.add_argument(
        "--tmp",
        type=Path,
        help="temp dir for test data and received files (default: /dev/shm "
        "if it has room, else the system temp dir)",
    )
    args = parser.parse_args(argv)
    if not 4096 <= args.pdu <= 131072:
        parser.error("--pdu must be within 4096..131072 (DCMTK's range)")
    quick = {"small": 200, "large": 4, "echo": 500}
    full = {"small": 1000, "large": 20, "echo": 2000}
    for name in full:
        if getattr(args, name) is None:
            setattr(args, name, (quick if args.quick else full)[name])
    if set(args.workloads) - set("abc"):
        parser.error("--workloads takes letters among a, b, c")
    if args.tls:
        args.pairs += [pair for pair in TLS_PAIRS if pair not in args.pairs]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # An installed package has its bytecode; a checkout run with PYTHONDONTWRITEBYTECODE
    # would compile every module in every peer process and time that instead.
    compileall.compile_dir(REPO_ROOT / "dicomnet", quiet=1)
    small_bytes = IMAGE_SIDE * IMAGE_SIDE * 2 + INSTANCE_OVERHEAD
    large_bytes = small_bytes * LARGE_FRAMES
    data = args.small * small_bytes * ("a" in args.workloads)
    data += args.large * large_bytes * ("b" in args.workloads)
    base = (args.tmp or choose_temp_dir(2 * data)) / "dicomnet-bench"
    cache = base / "cache"
    workloads: list[Workload] = []
    if "a" in args.workloads:
        directory = make_instances(cache, "small", args.small, CT_IMAGE_STORAGE, 1)
        size = instance_size(directory)
        workloads.append(
            Workload(
                "a",
                f"(a) C-STORE {args.small} x {size / MB:.2f} MB (CT 512x512"
                " 16-bit, Explicit VR LE)",
                args.small,
                "inst/s",
                size,
                directory,
            )
        )
    if "b" in args.workloads:
        directory = make_instances(
            cache, "large", args.large, MULTIFRAME_WORD_SC_STORAGE, LARGE_FRAMES
        )
        size = instance_size(directory)
        workloads.append(
            Workload(
                "b",
                f"(b) C-STORE {args.large} x {size / MB:.1f} MB "
                f"({LARGE_FRAMES} frames 512x512 16-bit, Explicit VR LE)",
                args.large,
                "MB/s",
                size,
                directory,
            )
        )
    if "c" in args.workloads:
        workloads.append(Workload("c", f"(c) {args.echo} C-ECHO", args.echo, "echo/s"))

    work_root = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    envs = {peer: peer_env(peer, base / "pycache") for peer in PEERS}
    tls = any(peer.endswith(TLS) for pair in args.pairs for peer in pair)
    setup = Setup(args.pdu, envs, work_root / "transfer", make_certificates(base) if tls else None)
    print(
        f"temp dir {base}, max PDU {args.pdu}, {args.runs} run(s) per pair (median), "
        "one association per transfer",
        flush=True,
    )
    python_peers = {library(peer) for pair in args.pairs for peer in pair} - {"dcmtk"}
    startup = {peer: python_startup_seconds(envs[peer], peer) for peer in python_peers}
    try:
        results = {w.key: run_workload(setup, w, args.pairs, args.runs) for w in workloads}
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    print(
        f"\nmax PDU {args.pdu}; wall = sender start to exit (includes its start-up); "
        f"CPU = user+system seconds; RSS = peak resident set; median of {args.runs} run(s)"
    )
    for w in workloads:
        print_table(w, results[w.key])
    print_startup(startup)
    print_ratios(workloads, results)
    print_targets(workloads, results)
    failures = sum(s.failed_runs for table in results.values() for s in table.values())
    if failures:
        print(f"\n{failures} run(s) failed: see the check column")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
