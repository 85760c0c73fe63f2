#!/usr/bin/env python3
"""C-FIND speed of the archive index (dicomnet.archive) on SQLite and PostgreSQL.

The index is filled with generated instances (headers only, no files: 100,000 in
1,000 studies by default; 2 studies per patient, 4 series of 25 images per study), then
a STUDY-level C-FIND is timed by exact PatientID and by wildcard PatientName, each with
the return keys a viewer asks for (names, dates, accession number, ModalitiesInStudy,
NumberOfStudyRelatedInstances...). Each query runs ``--repeat`` times with random
values; the median and 95th percentile of the time to the last response are printed,
SQLite and PostgreSQL side by side, against the 50 ms target.

With ``--qrscp``, the same two queries are also timed end to end: ``samples/qrscp.py``
serving the index, DCMTK's ``findscu`` asking, one process per query; what an
``echoscu`` run just before costs (process start, association, release) is subtracted.

With ``--ingest N``, samples/storescu.py stores N images of 0.5 MB into qrscp.py (each
instance stored and indexed) and, once, into storescp.py (no index): the rates side by
side against the 0.8x target (the median of each round's ratio), with the CPU each
server (with its child processes: qrscp.py's store process) and the sender spent per
instance (on a machine with few cores they compete for them; PostgreSQL's own
processes are not counted, and the sender's figure includes its start-up).

PostgreSQL: ``--postgres URL`` uses an existing (empty) database; without it, a
throwaway cluster is started with Debian's initdb (tests/postgres_cluster.py).

    python bench/archive.py --instances 20000          # quick
    python bench/archive.py                            # 100,000 instances
    python bench/archive.py --backends sqlite --qrscp
    python bench/archive.py --instances 20000 --ingest 1000
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import NamedTuple

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # dicomnet from this checkout
sys.path.insert(1, str(REPO_ROOT / "tests"))  # the throwaway PostgreSQL cluster

from run import choose_temp_dir, cpu_seconds_so_far  # noqa: E402  (bench/run.py, beside this script)

from dicomnet.archive import ArchiveIndex, open_index  # noqa: E402
from dicomnet.archive.records import instance_record  # noqa: E402

TARGET_MS = 50.0
INGEST_TARGET = 0.8  # indexed ingest against storescp.py's rate without an index
INGEST_FILE_BYTES = 530_000
# Debian's DCMTK waits ~40 ms per round trip without it (Nagle and delayed ACKs)
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
SERIES_PER_STUDY = 4
STUDIES_PER_PATIENT = 2
RETURN_KEYS = {
    "PatientName": "",
    "PatientBirthDate": "",
    "StudyInstanceUID": "",
    "StudyDate": "",
    "StudyTime": "",
    "AccessionNumber": "",
    "StudyID": "",
    "StudyDescription": "",
    "ModalitiesInStudy": "",
    "NumberOfStudyRelatedSeries": "",
    "NumberOfStudyRelatedInstances": "",
}


def patient_name(number: int) -> str:
    return f"NAME{number:04d}^GIVEN{number % 97}"


def headers(instances: int, studies: int, root: str = "2.25") -> Iterator[Dataset]:
    """The generated instance headers, study by study, their UIDs under ``root``."""
    per_study = max(1, instances // studies)
    per_series = max(1, per_study // SERIES_PER_STUDY)
    for study in range(studies):
        patient = study // STUDIES_PER_PATIENT
        for image in range(per_study):
            series = image // per_series
            ds = Dataset()
            ds.SOPClassUID = MRImageStorage if series % 2 else CTImageStorage
            ds.SOPInstanceUID = f"{root}.{study}.{series}.{image}"
            ds.PatientID = f"PID{patient:05d}"
            ds.PatientName = patient_name(patient)
            ds.PatientBirthDate = f"19{40 + patient % 60:02d}0101"
            ds.StudyInstanceUID = f"{root}.{study}"
            ds.StudyDate = f"2024{1 + study % 12:02d}{1 + study % 28:02d}"
            ds.StudyTime = f"{8 + study % 10:02d}0000"
            ds.AccessionNumber = f"ACC{study:06d}"
            ds.StudyID = str(study)
            ds.StudyDescription = "BENCH STUDY"
            ds.SeriesInstanceUID = f"{root}.{study}.{series}"
            ds.Modality = "MR" if series % 2 else "CT"
            ds.SeriesNumber = series + 1
            ds.InstanceNumber = image + 1
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            yield ds


def fill(index: ArchiveIndex, instances: int, studies: int, report: Callable[[str], None]) -> None:
    """Index the generated headers, a thousand per transaction (no files read)."""
    started = time.perf_counter()
    batch: list[Dataset] = []

    def flush() -> None:
        with index.backend.transaction() as session:
            for ds in batch:
                record = instance_record(ds, f"/bench/{ds.SOPInstanceUID}", 500_000)
                index.put(session, record)
        batch.clear()

    for count, ds in enumerate(headers(instances, studies), 1):
        batch.append(ds)
        if len(batch) == 1000:
            flush()
        if count % 20000 == 0:
            report(f"  {count} instances indexed ({time.perf_counter() - started:.0f} s)")
    if batch:
        flush()
    report(f"  {index.count()} instances indexed in {time.perf_counter() - started:.1f} s")


def study_query(**keys: str) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    for keyword, value in {**RETURN_KEYS, **keys}.items():
        setattr(identifier, keyword, value)
    return identifier


Timed = Callable[[dict[str, str]], tuple[float, int]]


def time_queries(
    run: Timed, make_keys: Callable[[random.Random], dict[str, str]], repeat: int
) -> tuple[float, float, float]:
    """(median ms, 95th percentile ms, mean answers) of ``repeat`` queries; ``run``
    gives (seconds, answers) of one."""
    chooser = random.Random(1)
    times: list[float] = []
    answers = 0
    for _ in range(repeat):
        seconds, count = run(make_keys(chooser))
        times.append(seconds * 1000)
        answers += count
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], answers / repeat


def query_kinds(patients: int) -> dict[str, Callable[[random.Random], dict[str, str]]]:
    return {
        "exact PatientID": lambda r: {"PatientID": f"PID{r.randrange(patients):05d}"},
        "wildcard PatientName": lambda r: {
            "PatientName": f"NAME{r.randrange(patients // 10):03d}*"
        },
    }


def through_index(index: ArchiveIndex) -> Timed:
    def run(keys: dict[str, str]) -> tuple[float, int]:
        started = time.perf_counter()
        answers = sum(1 for _ in index.find("STUDY", study_query(**keys)))
        return time.perf_counter() - started, answers

    return run


class Served(NamedTuple):
    """A sample server running: its port and process id."""

    port: int
    pid: int


@contextmanager
def sample_serving(sample: str, *args: str) -> Iterator[Served]:
    """``samples/<sample>.py *args PORT`` on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "samples" / f"{sample}.py"), *args, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # poll the port: the server's observable state
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{sample}.py did not start") from None
                time.sleep(0.05)
        yield Served(port, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def qrscp_serving(url: str, storage: Path) -> AbstractContextManager[Served]:
    """samples/qrscp.py answering from (and storing into) the index ``url``."""
    return sample_serving("qrscp", "--storage-dir", str(storage), "--database", url)


def make_ingest_files(directory: Path, count: int, root: str) -> Path:
    """``count`` CT images of 512 x 512 16-bit (about 0.5 MB each), in 10 studies, their
    UIDs under ``root`` (none already indexed)."""
    directory.mkdir()
    pixels = bytes(512 * 512 * 2)
    for number, header in enumerate(headers(count, max(1, count // 100), root)):
        header.Rows = header.Columns = 512
        header.BitsAllocated, header.BitsStored, header.HighBit = 16, 16, 15
        header.PixelRepresentation, header.SamplesPerPixel = 0, 1
        header.PhotometricInterpretation = "MONOCHROME2"
        header.PixelData = pixels
        header.save_as(directory / f"{number:06d}.dcm", enforce_file_format=True)
    return directory


class Ingest(NamedTuple):
    """One ingest: instances per second, and the CPU seconds per instance of the
    receiving server and of the sender (on a small machine the two share the cores)."""

    rate: float
    server_cpu: float
    sender_cpu: float


def server_cpu_seconds(pid: int) -> float:
    """The CPU of the server process ``pid`` and of its child processes (qrscp.py's
    store process), as far as used."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        if int(fields[fields.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(stat.parent.name))
    return cpu_seconds_so_far(pid) + sum(cpu_seconds_so_far(child) for child in children)


def time_ingest(server: Served, files: Path) -> Ingest:
    """samples/storescu.py storing every file of ``files`` into ``server``."""
    count = sum(1 for _ in files.iterdir())
    server_before = server_cpu_seconds(server.pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "samples" / "storescu.py")]
        + ["-aec", "ANY", "127.0.0.1", str(server.port), str(files)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    sender = (children.ru_utime + children.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return Ingest(
        count / elapsed, (server_cpu_seconds(server.pid) - server_before) / count, sender / count
    )


def time_ingests(url: str, work: Path, args: argparse.Namespace) -> tuple[Ingest, Ingest, float]:
    """Medians of ``args.runs`` rounds, each storescp.py then qrscp.py (into the index
    ``url``), so that both ran under the same machine load; new instances each round,
    every file removed after its round. The ratio is the median of the rounds' own
    ratios: a virtual machine's speed can change by half between rounds, and the two
    runs of one round share it."""
    plain: list[Ingest] = []
    indexed: list[Ingest] = []
    for round_number in range(args.runs):
        base = work / str(round_number)
        base.mkdir(parents=True)
        files = make_ingest_files(base / "files", args.ingest, f"2.25.9{round_number}")
        (base / "plain").mkdir()
        with sample_serving("storescp", "-od", str(base / "plain")) as server:
            plain.append(time_ingest(server, files))
        with qrscp_serving(url, base / "archive") as server:
            indexed.append(time_ingest(server, files))
        shutil.rmtree(base)
    ratios = [i.rate / p.rate for p, i in zip(plain, indexed, strict=True)]
    return _median_ingest(plain), _median_ingest(indexed), statistics.median(ratios)


def _median_ingest(ingests: list[Ingest]) -> Ingest:
    return Ingest(*(statistics.median(values) for values in zip(*ingests, strict=True)))


def through_findscu(findscu: str, echoscu: str, port: int) -> Timed:
    """A findscu query, timed minus what an echoscu run just before costs (process start,
    association, release: what findscu spends beside its C-FIND): pairs taken together,
    so that a busy machine slows both alike."""

    def run(keys: dict[str, str]) -> tuple[float, int]:
        started = time.perf_counter()
        subprocess.run(
            [echoscu, "-aec", "QRSCP", "127.0.0.1", str(port)], check=True, env=DCMTK_ENV
        )
        baseline = time.perf_counter() - started
        arguments = [findscu, "-S", "-aec", "QRSCP", "127.0.0.1", str(port)]
        for keyword, value in {"QueryRetrieveLevel": "STUDY", **RETURN_KEYS, **keys}.items():
            arguments += ["-k", f"{keyword}={value}"]
        started = time.perf_counter()
        result = subprocess.run(
            arguments, capture_output=True, text=True, check=True, env=DCMTK_ENV
        )
        elapsed = time.perf_counter() - started - baseline
        return elapsed, (result.stdout + result.stderr).count("(Pending)")

    return run


def main() -> int:
    # as an installed package would have it: no module compiled again in every process
    compileall.compile_dir(REPO_ROOT / "dicomnet", quiet=1)
    compileall.compile_dir(REPO_ROOT / "samples", quiet=1)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=50, help="queries of each kind")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database")
    parser.add_argument("--qrscp", action="store_true", help="also time qrscp.py + findscu")
    parser.add_argument(
        "--ingest",
        type=int,
        default=0,
        metavar="N",
        help="also time storescu.py storing N 0.5 MB images into qrscp.py (indexing) "
        "against storescp.py (no index); target 0.8x",
    )
    parser.add_argument("--runs", type=int, default=3, help="ingest rounds (median)")
    parser.add_argument(
        "--tmp",
        type=Path,
        help="where the files and databases go (default: /dev/shm when it has room, as "
        "bench/run.py: the software is measured, not the disk)",
    )
    args = parser.parse_args()
    ingest: dict[
        str, tuple[Ingest, Ingest, float]
    ] = {}  # backend -> (storescp.py, qrscp.py, ratio)
    temp_root = args.tmp or choose_temp_dir(3 * args.ingest * INGEST_FILE_BYTES)
    patients = max(10, args.studies // STUDIES_PER_PATIENT)
    kinds = query_kinds(patients)
    results: dict[tuple[str, str, str], tuple[float, float, float]] = {}
    with ExitStack() as stack:
        work = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="dicomnet-bench-", dir=temp_root)
            )
        )
        for backend in args.backends.split(","):
            url = f"sqlite:///{work / 'index.db'}" if backend == "sqlite" else args.postgres
            if backend == "postgresql" and url is None:
                from postgres_cluster import _cluster, find_postgres_bin

                bin_dir = find_postgres_bin()
                if bin_dir is None:
                    print("PostgreSQL is not installed: skipped")
                    continue
                cluster = stack.enter_context(contextmanager(_cluster)(bin_dir))
                url = cluster.new_database()
            print(
                f"{backend}: filling the index ({args.instances} instances, {args.studies} studies)"
            )
            index = open_index(url)
            fill(index, args.instances, args.studies, print)
            for kind, make_keys in kinds.items():
                results[(backend, "index API", kind)] = time_queries(
                    through_index(index), make_keys, args.repeat
                )
            index.close()
            findscu, echoscu = shutil.which("findscu"), shutil.which("echoscu")
            if args.qrscp and findscu and echoscu:
                with qrscp_serving(url, work / f"store-{backend}") as server:
                    run = through_findscu(findscu, echoscu, server.port)
                    for kind, make_keys in kinds.items():
                        repeat = max(5, args.repeat // 5)
                        results[(backend, "qrscp+findscu", kind)] = time_queries(
                            run, make_keys, repeat
                        )
            if args.ingest:
                ingest[backend] = time_ingests(url, work / f"ingest-{backend}", args)
    print()
    header = ("backend", "through", "query", "median ms", "p95 ms", "answers")
    print("{:<11} {:<14} {:<21} {:>9} {:>7} {:>7}  target".format(*header))
    for (backend, through, kind), (median, p95, answers) in results.items():
        verdict = "ok" if median < TARGET_MS else "MISSED"
        numbers = f"{median:9.2f} {p95:7.2f} {answers:7.1f}"
        print(f"{backend:<11} {through:<14} {kind:<21} {numbers}  {verdict}")
    ingest_ok = True
    if ingest:
        print(
            f"\ningest of {args.ingest} x 0.5 MB by storescu.py (instances per second; "
            "CPU ms per instance of the server, and of storescu.py; medians of "
            f"{args.runs} round(s), the ratio the median of each round's)"
        )
        for backend, (plain, indexed, ratio) in ingest.items():
            ingest_ok = ingest_ok and ratio >= INGEST_TARGET
            verdict = "ok" if ratio >= INGEST_TARGET else "MISSED"
            figures = (
                f"storescp.py {plain.rate:4.0f} ({_cpu_ms(plain)}), "
                f"qrscp.py {indexed.rate:4.0f} ({_cpu_ms(indexed)}): {ratio:.2f}x"
            )
            print(f"  {backend:<11} {figures}  target {INGEST_TARGET}x {verdict}")
    queries_ok = all(result[0] < TARGET_MS for result in results.values())
    return 0 if queries_ok and ingest_ok else 1


def _cpu_ms(ingest: Ingest) -> str:
    return f"CPU {ingest.server_cpu * 1e3:.2f} + {ingest.sender_cpu * 1e3:.2f} ms"


if __name__ == "__main__":
    sys.exit(main())
