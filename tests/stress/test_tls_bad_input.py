"""Hostile bytes against the TLS sample server (samples/echoscp.py +tls), as a process.

Every bad connection is closed with one log line naming what was wrong and its
LEADTOOLS code; no connection disturbs the others, and a good TLS client is served
after each (and during a storm of bad ones).
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
import peers  # noqa: E402
from polling import wait_until  # noqa: E402
from tls_certificates import Pki, make_pki  # noqa: E402

from dicomnet.security.context import build_context  # noqa: E402
from dicomnet.security.settings import DicomOpenSslContextCreationSettings  # noqa: E402

LOOPBACK = "127.0.0.1"
WAIT = 10.0  # no read may hang longer
RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "pdus"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_options(pki: Pki, who: str) -> list[str]:
    identity = getattr(pki, who)
    return ["+tls", str(identity.key), str(identity.certificate), "+cf", str(pki.ca)]


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[peers.ServerProcess]:
    with peers.sample_server("echoscp", "-v", *tls_options(pki, "server")) as (_, process):
        yield process


def assert_still_serving(pki: Pki, server: peers.ServerProcess) -> None:
    result = peers.run_sample(
        "echoscu", *tls_options(pki, "client"), LOOPBACK, str(server.port), timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.returncode is None


def closed_without_data(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data``; what the server answers before it closes (a TLS alert at most)."""
    with socket.create_connection((LOOPBACK, port), timeout=WAIT) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def client_hello(pki: Pki) -> bytes:
    context = build_context(
        DicomOpenSslContextCreationSettings(certification_authorities_file_name=str(pki.ca)),
        server_side=False,
        credentials=None,
    )
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def log_grew_with(server: peers.ServerProcess, before: int, text: str) -> None:
    """The server logged ``text`` since ``before``, once per connection (polled: the
    server is another process)."""
    wait_until(lambda: text in server.log()[before:], WAIT, f"{text!r} in the server log")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_end_in_a_logged_refusal(
    pki: Pki, server: peers.ServerProcess, seed: int
) -> None:
    before = len(server.log())
    noise = random.Random(seed).randbytes(random.Random(seed).randrange(1, 4000))
    closed_without_data(server.port, noise, half_close=True)
    log_grew_with(server, before, "security handshake with")
    assert_still_serving(pki, server)


def test_a_plain_associate_request_into_the_tls_port(pki: Pki, server: peers.ServerProcess) -> None:
    before = len(server.log())
    lines = (RECORDED / "dcmtk-echoscu_dcmtk-storescp.pdus").read_text().splitlines()
    request = next(bytes.fromhex(line[2:]) for line in lines if line.startswith(">"))
    answer = closed_without_data(server.port, request)
    assert not answer.startswith(b"\x02")  # never an A-ASSOCIATE-AC
    log_grew_with(server, before, "(UnexpectedMessage)")
    assert_still_serving(pki, server)


def test_half_a_client_hello_then_close(pki: Pki, server: peers.ServerProcess) -> None:
    before = len(server.log())
    hello = client_hello(pki)
    closed_without_data(server.port, hello[: len(hello) // 2], half_close=True)
    log_grew_with(server, before, "(NetConnectionReset)")
    assert_still_serving(pki, server)


def test_a_tls_handshake_into_a_plain_port_is_refused(pki: Pki) -> None:
    with peers.sample_server("echoscp") as (port, plain):
        with socket.create_connection((LOOPBACK, port), timeout=WAIT) as sock:
            sock.sendall(client_hello(pki))
            answer = sock.recv(6)
        assert answer[:1] == b"\x07"  # A-ABORT: an unrecognized PDU (type 0x16)
        result = peers.run_sample("echoscu", LOOPBACK, str(port), timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        assert plain.returncode is None


def test_a_storm_of_bad_connections_does_not_disturb_a_good_one(
    pki: Pki, server: peers.ServerProcess
) -> None:
    hello = client_hello(pki)
    payloads = [
        os.urandom(100),
        hello[:50],
        hello + os.urandom(200),
        b"\x16\x03\x03\xff\xff" + os.urandom(64),
    ]
    stop = threading.Event()
    failures: list[BaseException] = []

    def storm() -> None:
        try:
            while not stop.is_set():
                for payload in payloads:
                    closed_without_data(server.port, payload, half_close=True)
        except BaseException as exc:  # a hung or refused connection fails the test
            failures.append(exc)

    threads = [threading.Thread(target=storm) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        result = peers.run_sample(
            "echoscu",
            "--repeat",
            "5",
            *tls_options(pki, "client"),
            LOOPBACK,
            str(server.port),
            timeout=60,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(WAIT * 2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 of 5 C-ECHO requests" in result.stdout
    assert not failures, failures
    assert_still_serving(pki, server)
