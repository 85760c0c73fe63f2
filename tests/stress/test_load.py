"""Load: many associations at once, thousands of idle and stalled connections, dripping
peers and the descriptor limit reached, against ``samples/storescp.py`` as a subprocess.

The senders are in-process ``DicomNet`` SCUs (one thread per association) and raw
sockets. Each test checks what the SCP did (files on disk, PDUs and closes on the wire)
and reads its descriptors, peak memory and CPU time from /proc, then prints one report
line. ``DICOMNET_SOAK=1`` runs the same tests with bigger numbers (README.rst, "Soak
tests").
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from load_peers import (
    CloseWatch,
    DescriptorWatch,
    Instance,
    StoreScp,
    associate_rq,
    data_set_of,
    echo,
    raw_connections,
    write_instances,
)
from polling import wait_until
from pydicom.uid import SecondaryCaptureImageStorage
from rawpdu import A_ABORT, ASSOCIATE_AC, HEADER, P_DATA_TF, recv_pdu

from dicomnet import (
    DicomCommandStatusType,
    DicomException,
    DicomNet,
    NegotiatedContext,
    Timeouts,
    negotiated_contexts,
)
from dicomnet.scu import build_request, open_association, release
from dicomnet.storage import instance_file_name, send_instance, storage_contexts_for

SOAK = os.environ.get("DICOMNET_SOAK", "") not in ("", "0")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600 if SOAK else 120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures through /proc"),
]
TESTS_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Scale:
    associations: int
    instances_per_association: int
    idle_connections: int  # never send a byte
    stalled_connections: int  # send half an A-ASSOCIATE-RQ, then nothing
    artim: float  # the SCP's -to for the idle and stalled connections


SCALE = Scale(500, 200, 5000, 5000, 20.0) if SOAK else Scale(200, 50, 1000, 1000, 5.0)
ECHO_PROMPTLY = 2.0  # seconds a C-ECHO may take while the SCP is under load
SCU_TIMEOUT = 60.0 if SOAK else 30.0
STORE_FAILED = int(DicomCommandStatusType.RefusedOutOfResources)
# What a connection that sent nothing (or half a request) may cost the SCP: its buffers
# must grow with what arrives, not be allocated up front.
MAX_KB_PER_SILENT_CONNECTION = 32


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[load] {line}", flush=True)


@pytest.fixture
def dicomnet_loop() -> Iterator[None]:
    DicomNet.Startup()
    try:
        yield
    finally:
        DicomNet.Shutdown()


@pytest.fixture
def descriptor_room(request: pytest.FixtureRequest) -> Iterator[None]:
    """The soft descriptor limit raised to the hard one (the SCP started afterwards
    inherits it), for the idle and stalled connections; restored afterwards. A hard
    limit too low for them skips the test, or fails it under CI=true."""
    needed = SCALE.idle_connections + SCALE.stalled_connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        suite = request.config.pluginmanager.get_plugin(str(TESTS_DIR / "conftest.py"))
        assert suite is not None, "tests/conftest.py is not loaded"
        reason = (
            f"needs {needed} file descriptors but the hard limit (ulimit -Hn) is {hard}; "
            "raise it to run the load tests"
        )
        if suite.running_in_ci():
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        pytest.skip(reason)
    raised = max(soft, needed) if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def scp_factory(tmp_path: Path) -> Iterator[list[StoreScp]]:
    """Append a started ``StoreScp`` to the list; each is stopped after the test."""
    started: list[StoreScp] = []
    try:
        yield started
    finally:
        for scp in started:
            scp.stop()


def start_scp(started: list[StoreScp], workdir: Path, *options: str) -> StoreScp:
    scp = StoreScp(workdir, *options)
    started.append(scp)
    return scp


# -- many associations storing at once ----------------------------------------------


def storing_association(
    net: DicomNet, port: int, instances: list[Instance]
) -> list[NegotiatedContext]:
    """Associate ``net`` with the SCP for storing ``instances``; the accepted contexts."""
    request = build_request(
        "LOADSCU", "ANY-SCP", 16384, storage_contexts_for(i.file for i in instances)
    )
    accepted = open_association(net, "127.0.0.1", port, request)
    return list(negotiated_contexts(request, accepted).values())


def scu() -> DicomNet:
    return DicomNet(
        None, timeouts=Timeouts(connect=SCU_TIMEOUT, acse=SCU_TIMEOUT, dimse=SCU_TIMEOUT)
    )


def store_batch(
    port: int, batch: list[Instance], everyone_associated: threading.Barrier
) -> dict[str, int | str]:
    """One association storing ``batch`` once every association is up: the status each
    instance got, or why it got none (the exception the sender saw)."""
    outcomes: dict[str, int | str] = {}
    net = scu()
    try:
        try:
            contexts = storing_association(net, port, batch)
        except DicomException:
            everyone_associated.abort()  # the others must not wait for this one
            raise
        everyone_associated.wait(SCU_TIMEOUT)
        for instance in batch:
            uid = instance.file.sop_instance_uid
            try:
                outcomes[uid] = send_instance(
                    net, contexts, instance.file, timeout=SCU_TIMEOUT
                ).status
            except DicomException as exc:
                outcomes[uid] = f"{exc.Code.name}: {exc.message}"
        release(net)
    except (DicomException, threading.BrokenBarrierError) as exc:
        for instance in batch:
            outcomes.setdefault(instance.file.sop_instance_uid, f"association failed: {exc!r}")
    finally:
        net.Close()
    return outcomes


def test_simultaneous_associations_storing_many_instances_lose_nothing(
    tmp_path: Path,
    dicomnet_loop: None,
    scp_factory: list[StoreScp],
    capsys: pytest.CaptureFixture[str],
) -> None:
    count, per = SCALE.associations, SCALE.instances_per_association
    instances = write_instances(tmp_path / "send", count * per)
    batches = [instances[n * per : (n + 1) * per] for n in range(count)]
    scp = start_scp(scp_factory, tmp_path, "-to", str(SCU_TIMEOUT))
    idle_descriptors = scp.descriptors()
    # In each association one instance finds a directory where its file should go: the
    # SCP cannot keep it, must answer a failure (0xA700) and leave nothing behind.
    blocked = {batch[per // 2].file.sop_instance_uid for batch in batches}
    for uid in blocked:
        (scp.output / instance_file_name(SecondaryCaptureImageStorage, uid)).mkdir()

    times: dict[str, float] = {}

    def all_associated() -> None:
        times["associated"] = time.monotonic()

    watch = DescriptorWatch(scp)
    barrier = threading.Barrier(count, action=all_associated)
    times["start"] = time.monotonic()
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="load-scu") as pool:
        futures = [pool.submit(store_batch, scp.port, batch, barrier) for batch in batches]
        outcomes: dict[str, int | str] = {}
        for future in futures:
            outcomes.update(future.result())
    times["done"] = time.monotonic()
    peak_descriptors = watch.stop()

    # Every instance has an outcome at its sender; the failures are exactly the blocked.
    assert len(outcomes) == len(instances)
    failed = {uid: outcome for uid, outcome in outcomes.items() if outcome != 0}
    assert failed == dict.fromkeys(blocked, STORE_FAILED), sorted(failed.items())[:10]
    # What got Success is on disk with its data set byte for byte, and nothing else is.
    stored = {path.name: path for path in scp.output.iterdir() if path.is_file()}
    succeeded = [i for i in instances if outcomes[i.file.sop_instance_uid] == 0]
    names = {
        instance_file_name(i.file.sop_class_uid, i.file.sop_instance_uid): i for i in succeeded
    }
    assert stored.keys() == names.keys()
    mismatched = [name for name, i in names.items() if data_set_of(stored[name]) != i.data_set]
    assert mismatched == []
    leftovers = [p for d in scp.output.iterdir() if d.is_dir() for p in d.iterdir()]
    assert leftovers == [], "a refused instance or a spool file was left behind"
    assert peak_descriptors >= idle_descriptors + count, "the associations were not simultaneous"
    wait_until(lambda: scp.descriptors() <= idle_descriptors, 10.0, "the SCP to close them all")
    assert scp.alive()

    associate_time = times["associated"] - times["start"]
    store_time = times["done"] - times["associated"]
    report(
        capsys,
        f"{count} simultaneous associations x {per} instances: "
        f"{count / associate_time:.0f} associations/s, {len(instances) / store_time:.0f} "
        f"instances/s ({len(succeeded)} stored, {len(failed)} refused as planned); "
        f"storescp peak RSS {scp.peak_rss_kb() / 1024:.0f} MB, descriptors "
        f"{idle_descriptors} idle / {peak_descriptors} at peak",
    )


# -- connections that never get anywhere ------------------------------------------------


def test_idle_and_stalled_connections_do_not_stop_service_and_artim_closes_them(
    tmp_path: Path,
    dicomnet_loop: None,
    descriptor_room: None,
    scp_factory: list[StoreScp],
    capsys: pytest.CaptureFixture[str],
) -> None:
    artim = SCALE.artim
    scp = start_scp(scp_factory, tmp_path, "-to", f"{artim:g}")
    base_descriptors, base_rss = scp.descriptors(), scp.peak_rss_kb()
    rq = associate_rq()
    opened = time.monotonic()
    watch = CloseWatch(
        [
            *raw_connections(scp.port, SCALE.idle_connections),
            *raw_connections(scp.port, SCALE.stalled_connections, rq[: len(rq) // 2]),
        ]
    )
    connected = time.monotonic()
    held = len(watch.received)
    try:
        wait_until(
            lambda: scp.descriptors() >= base_descriptors + held,
            artim,
            "the SCP to accept every connection",
        )
        echo_seconds = echo(scp.port)
        open_meanwhile = scp.descriptors() - base_descriptors
        peak_rss = scp.peak_rss_kb()
        watch.wait(artim + 30.0)
    finally:
        watch.close()

    assert echo_seconds < ECHO_PROMPTLY
    assert open_meanwhile >= held, "connections closed before the C-ECHO was served"
    assert len(watch.ends) == held, f"{held - len(watch.ends)} connections outlived ARTIM"
    # ARTIM closed them, without a PDU (Sta2), no sooner than ARTIM after they opened.
    assert set(watch.received.values()) == {b""}
    first_close, last_close = min(watch.ends.values()), max(watch.ends.values())
    assert first_close - opened >= artim - 0.05
    assert last_close - connected <= artim + 10.0
    wait_until(lambda: scp.descriptors() <= base_descriptors, 10.0, "descriptors to go back")
    assert echo(scp.port) < ECHO_PROMPTLY
    per_connection_kb = (peak_rss - base_rss) / held
    assert per_connection_kb < MAX_KB_PER_SILENT_CONNECTION
    report(
        capsys,
        f"{SCALE.idle_connections} idle + {SCALE.stalled_connections} stalled connections: "
        f"C-ECHO in {echo_seconds * 1000:.0f} ms meanwhile; all closed by ARTIM "
        f"{first_close - opened:.1f}..{last_close - opened:.1f} s after opening; storescp "
        f"descriptors {base_descriptors} -> {base_descriptors + open_meanwhile} -> "
        f"{scp.descriptors()}, peak RSS {base_rss / 1024:.0f} -> {peak_rss / 1024:.0f} MB "
        f"({per_connection_kb:.0f} kB a connection)",
    )


# -- peers dripping bytes ---------------------------------------------------------------


def test_peers_dripping_a_byte_a_second_are_cut_off_without_stalling_others(
    tmp_path: Path,
    dicomnet_loop: None,
    scp_factory: list[StoreScp],
    capsys: pytest.CaptureFixture[str],
) -> None:
    artim, idle = 3.0, 4.0
    scp = start_scp(scp_factory, tmp_path, "-to", f"{artim:g}", "--idle-timeout", f"{idle:g}")
    base_descriptors = scp.descriptors()
    rq = associate_rq()
    # Before association: the A-ASSOCIATE-RQ itself, a byte a second (ARTIM ends it).
    unassociated = socket.create_connection(("127.0.0.1", scp.port), timeout=10)
    started = {unassociated: time.monotonic()}
    # Associated: a P-DATA-TF a byte a second, never a whole PDU (the idle limit ends it).
    associated = socket.create_connection(("127.0.0.1", scp.port), timeout=10)
    associated.sendall(rq)
    answer = recv_pdu(associated)
    assert answer is not None and answer.type == ASSOCIATE_AC
    started[associated] = time.monotonic()
    drips = {
        unassociated: iter(rq),
        associated: iter(HEADER.pack(P_DATA_TF, 4096) + bytes(4096)),
    }
    dripped = dict.fromkeys(drips, 0)
    echo_seconds: list[float] = []
    watch = CloseWatch(list(drips))
    try:
        deadline = time.monotonic() + max(artim, idle) + 10.0
        while watch.open:
            assert time.monotonic() < deadline, "a dripping peer was not cut off"
            for sock in watch.open:
                if sock in watch.first_bytes:
                    continue  # cut off: what it sends now no longer counts
                try:
                    sock.send(bytes([next(drips[sock])]))
                    dripped[sock] += 1
                except OSError:
                    pass  # the SCP closed it: the watch sees that
            echo_seconds.append(echo(scp.port))
            watch.wait(1.0)  # the next byte a second later, or sooner once both are cut off
    finally:
        watch.close()

    # Sta2: ARTIM closes the connection, without a PDU.
    assert watch.received[unassociated] == b""
    lasted = {unassociated: watch.ends[unassociated] - started[unassociated]}
    assert artim - 0.05 <= lasted[unassociated] <= artim + 2.0
    # Sta6: the idle limit sends an A-ABORT; ARTIM then closes if the peer does not.
    assert watch.received[associated][0] == A_ABORT
    lasted[associated] = watch.first_bytes[associated] - started[associated]
    assert idle - 0.05 <= lasted[associated] <= idle + 2.0
    assert watch.ends[associated] - watch.first_bytes[associated] <= artim + 2.0
    assert min(dripped.values()) >= artim - 1, "the peers did not drip while they lasted"
    assert max(echo_seconds) < ECHO_PROMPTLY
    wait_until(lambda: scp.descriptors() <= base_descriptors, 10.0, "descriptors to go back")
    report(
        capsys,
        f"dripping peers cut off after {lasted[unassociated]:.1f} s (ARTIM {artim:g} s, "
        f"{dripped[unassociated]} bytes of an A-ASSOCIATE-RQ) and {lasted[associated]:.1f} s "
        f"(idle limit {idle:g} s, {dripped[associated]} bytes of a P-DATA-TF); "
        f"{len(echo_seconds)} C-ECHOs meanwhile, slowest {max(echo_seconds) * 1000:.0f} ms",
    )


# -- the descriptor limit reached ---------------------------------------------------------

SATURATED = 2.0  # seconds the SCP's CPU time is measured while it cannot accept
MAX_BUSY = 0.2  # the share of those seconds it may spend on the CPU


def test_out_of_descriptors_the_listener_neither_dies_nor_spins_and_serves_again(
    tmp_path: Path,
    dicomnet_loop: None,
    scp_factory: list[StoreScp],
    capsys: pytest.CaptureFixture[str],
) -> None:
    room, extra, kept = 16, 48, 4
    refused, kept_instance = write_instances(tmp_path / "send", 2)
    # ARTIM longer than the test: only the peers' closing frees descriptors here.
    scp = start_scp(scp_factory, tmp_path, "-to", "120")
    base_descriptors = scp.descriptors()
    net = scu()  # associated before the limit is reached, storing while it is
    try:
        contexts = storing_association(net, scp.port, [refused, kept_instance])
        limit = max(scp.descriptor_numbers()) + 1 + room
        scp.limit_descriptors(limit)
        held = list(raw_connections(scp.port, room + extra))
        try:
            wait_until(lambda: scp.descriptors() >= limit, 10.0, "the SCP to run out of fds")
            wait_until(lambda: "accept failed" in scp.log(), 10.0, "the SCP to fail accepting")
            cpu_before, wall_before = scp.cpu_seconds(), time.monotonic()
            time.sleep(SATURATED)  # a measurement window: nothing is waited for
            busy = (scp.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
            assert scp.alive()
            assert busy < MAX_BUSY, f"storescp used {busy:.0%} of a CPU while out of fds"
            # No descriptor for a spool file either: the sender hears of the failure.
            assert send_instance(net, contexts, refused.file, timeout=SCU_TIMEOUT).status == (
                STORE_FAILED
            )
            # Most peers leave (the first few, accepted first, stay): it serves again.
            for sock in held[kept:]:
                sock.close()
            echo_seconds = echo(scp.port, timeout=20.0)
            assert scp.descriptors() >= base_descriptors + kept
            stored = send_instance(net, contexts, kept_instance.file, timeout=SCU_TIMEOUT)
            assert stored.status == 0
            release(net)
        finally:
            for sock in held:
                sock.close()
    finally:
        net.Close()
    wait_until(lambda: scp.descriptors() <= base_descriptors, 10.0, "descriptors to go back")
    assert echo(scp.port) < ECHO_PROMPTLY
    warnings = scp.log().count("accept failed")
    assert warnings <= 10, f"{warnings} accept warnings: one per episode, not per attempt"
    assert echo_seconds < ECHO_PROMPTLY
    name = instance_file_name(kept_instance.file.sop_class_uid, kept_instance.file.sop_instance_uid)
    assert sorted(p.name for p in scp.output.iterdir() if p.is_file()) == [name]
    assert data_set_of(scp.output / name) == kept_instance.data_set
    assert [p for d in scp.output.iterdir() if d.is_dir() for p in d.iterdir()] == []
    report(
        capsys,
        f"out of descriptors (limit {limit}, {len(held)} peers): storescp busy "
        f"{busy:.1%} of a CPU while saturated, {warnings} accept warning(s), a C-STORE "
        f"refused 0x{STORE_FAILED:04X}; C-ECHO in {echo_seconds * 1000:.0f} ms once "
        f"{len(held) - kept} peers left",
    )
