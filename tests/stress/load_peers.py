"""What the load tests drive and measure: ``samples/storescp.py`` as a subprocess watched
through /proc, generated instances, raw TCP peers and an in-process C-ECHO SCU.

Every wait has a deadline and ends on something observable (a line in the SCP's log, a
descriptor count, a socket becoming readable); nothing here sleeps to order events.
"""

from __future__ import annotations

import io
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from polling import POLL, wait_until
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from dicomnet import DicomNet, Part10File, Timeouts, read_part10_header
from dicomnet.pdu import AssociateRQ, PresentationContextRQ, UserInformation, encode_pdu
from dicomnet.scu import accepted_context_id, build_request, open_association, release
from dicomnet.uids import IMPLEMENTATION_CLASS_UID, IMPLICIT_VR_LE, VERIFICATION

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
STORESCP = REPO_ROOT / "samples" / "storescp.py"
SCP_AE = "ANY-SCP"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the SCP ------------------------------------------------------------------------------


class StoreScp:
    """``samples/storescp.py`` listening on an ephemeral loopback port, its output going
    to a log file; its descriptors, memory and CPU time read from /proc."""

    def __init__(self, workdir: Path, *options: str) -> None:
        self.output = workdir / "received"
        self.output.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "storescp.log"
        argv = [sys.executable, str(STORESCP), "-od", str(self.output), "--bind", LOOPBACK]
        paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*argv, *options, "0"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.port = int(wait_until(self._announced_port, 20.0, "storescp to listen"))
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _announced_port(self) -> str:
        if self.process.poll() is not None:
            raise AssertionError(f"storescp exited ({self.process.returncode}): {self.log()}")
        match = re.search(r"listening on port (\d+)", self.log())
        return match.group(1) if match else ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descriptor_numbers(self) -> list[int]:
        """The descriptors the SCP has open now."""
        return [int(name) for name in os.listdir(f"/proc/{self.pid}/fd")]

    def descriptors(self) -> int:
        """How many descriptors the SCP has open now."""
        return len(self.descriptor_numbers())

    def peak_rss_kb(self) -> int:
        """The high-water mark of the SCP's resident memory (VmHWM of its own address
        space; a child's ru_maxrss would count the forked test process too)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        assert match, status
        return int(match.group(1))

    def cpu_seconds(self) -> float:
        """User plus system CPU time the SCP has used, all threads."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def limit_descriptors(self, limit: int) -> None:
        """Lower the SCP's descriptor limit (soft and hard) to ``limit``."""
        resource.prlimit(self.pid, resource.RLIMIT_NOFILE, (limit, limit))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit; print the end of its log (pytest
        shows it for a failed test)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        lines = self.log().splitlines()
        print(f"--- storescp (exit {self.process.returncode}), last of {len(lines)} lines ---")
        print("\n".join(lines[-40:]))


class DescriptorWatch:
    """Samples the SCP's descriptor count on a thread, keeping the highest seen."""

    def __init__(self, scp: StoreScp) -> None:
        self._scp = scp
        self.peak = scp.descriptors()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="descriptor-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self.peak = max(self.peak, self._scp.descriptors())
            except FileNotFoundError:  # the SCP exited; the test will say why
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


# -- instances --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """A generated Part-10 file and the data set bytes in it (after the meta header)."""

    file: Part10File
    data_set: bytes


def write_instances(directory: Path, count: int, pixel_bytes: int = 1024) -> list[Instance]:
    """``count`` distinct Secondary Capture instances, each with its own SOP Instance UID
    and random pixel data. pydicom encodes one template; each file is the template with
    its UID (of the same length, so no length field changes) and its own pixel bytes."""
    base = generate_uid(prefix=None)  # 2.25.<at most 39 digits>: room for the index
    first = 10_000_000  # fixed width indices keep every UID the same length
    placeholder = f"{base}.{first + count}".encode()
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = placeholder.decode()
    ds.PatientName = "Load^Test"
    ds.PatientID = "LOAD"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = 1, pixel_bytes
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\0" * pixel_bytes
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    encoded = io.BytesIO()
    ds.save_as(encoded, enforce_file_format=True)
    template = encoded.getvalue()[:-pixel_bytes]  # pixel data is the last element
    assert template.count(placeholder) == 2  # meta header and data set
    directory.mkdir(parents=True, exist_ok=True)
    instances = []
    for index in range(count):
        uid = f"{base}.{first + index}".encode()
        path = directory / f"{index:06d}.dcm"
        path.write_bytes(template.replace(placeholder, uid) + os.urandom(pixel_bytes))
        header = read_part10_header(path)
        instances.append(Instance(header, path.read_bytes()[header.data_offset :]))
    return instances


def data_set_of(path: Path) -> bytes:
    """The bytes of a Part-10 file after its meta header."""
    return path.read_bytes()[read_part10_header(path).data_offset :]


# -- peers ----------------------------------------------------------------------------


def associate_rq(calling: str = "LOADPEER") -> bytes:
    """An A-ASSOCIATE-RQ proposing Verification, as a raw peer sends it."""
    rq = AssociateRQ(
        called_ae=SCP_AE,
        calling_ae=calling,
        presentation_contexts=[PresentationContextRQ(1, VERIFICATION, [IMPLICIT_VR_LE])],
        user_information=UserInformation(
            max_length=16384, implementation_class_uid=IMPLEMENTATION_CLASS_UID
        ),
    )
    return bytes(encode_pdu(rq))


def raw_connections(port: int, count: int, first_bytes: bytes = b"") -> Iterator[socket.socket]:
    """``count`` connections to the SCP, each sending ``first_bytes`` and then nothing."""
    for _ in range(count):
        sock = socket.create_connection((LOOPBACK, port), timeout=30)
        if first_bytes:
            sock.sendall(first_bytes)
        yield sock


def echo(port: int, timeout: float = 10.0) -> float:
    """One association with one C-ECHO, released; the seconds it took. Raises on any
    failure (refused, timed out, a status other than Success)."""
    started = time.monotonic()
    net = DicomNet(None, timeouts=Timeouts(connect=timeout, acse=timeout, dimse=timeout))
    try:
        request = build_request("LOADECHO", SCP_AE, 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
        accepted = open_association(net, LOOPBACK, port, request)
        context = accepted_context_id(accepted, VERIFICATION)
        assert context is not None, "Verification not accepted"
        message_id = net.next_message_id()
        net.SendCEchoRequest(context, message_id, VERIFICATION)
        status = net.wait_response(message_id, timeout).status
        assert status == 0, f"C-ECHO status 0x{status:04X}"
        release(net)
    finally:
        net.Close()
    return time.monotonic() - started


class CloseWatch:
    """Watches sockets for the SCP closing them: when each end of stream (or reset) came
    (``ends``), the bytes that came before it (``received``) and when the first of them
    came (``first_bytes``)."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self.ends: dict[socket.socket, float] = {}
        self.first_bytes: dict[socket.socket, float] = {}
        self.received = dict.fromkeys(socks, b"")
        self._selector = selectors.DefaultSelector()
        for sock in socks:
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)

    @property
    def open(self) -> list[socket.socket]:
        return [sock for sock in self.received if sock not in self.ends]

    def wait(self, timeout: float) -> None:
        """Until every socket is closed or ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while self.open and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in self._selector.select(remaining):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    self.first_bytes.setdefault(sock, time.monotonic())
                    self.received[sock] += data
                    continue
                self.ends[sock] = time.monotonic()
                self._selector.unregister(sock)

    def close(self) -> None:
        """Close the selector and every socket."""
        self._selector.close()
        for sock in self.received:
            sock.close()
