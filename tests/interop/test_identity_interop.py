"""User identity negotiation (PS3.7 D.3.3.7) and access control against real peers.

- DCMTK storescu ``-usr/-pwd/--jwt/-rsp`` against our storescp.py ``--user-file``:
  accepted and rejected, with and without a positive response (DCMTK's ``-rsp`` insists
  on the 59H sub-item, so a zero-length one must come for types 1 and 2).
- our echoscu.py/storescu.py ``-usr/-pwd/--jwt/-rsp`` against a pynetdicom SCP with an
  EVT_USER_ID handler (pynetdicom sends no 59H for types 1 and 2: ``-rsp`` must then fail
  clearly), and a pynetdicom requestor with user identity against our echoscp.py.
- access control: DCMTK echoscu against ``--deny-calling``/``--allow-calling``/
  ``--deny-peer``, and ``--max-associations N`` with N pynetdicom associations held open
  and DCMTK echoscu as the one too many; the slot comes back when one ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peers
import pytest
from polling import wait_until
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

VERIFICATION = "1.2.840.10008.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
LOOPBACK = peers.LOOPBACK
USERS = "# test users\nalice:s3cret\nbob\n"


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.txt"
    path.write_text(USERS, encoding="utf-8")
    return path


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Identity^Test"
    ds.PatientID = "ID1"
    ds.Modality = "OT"
    ds.ensure_file_meta()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "send" / "sc.dcm"
    path.parent.mkdir()
    ds.save_as(path, enforce_file_format=True)
    return path


def stored(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_file()]


# -- DCMTK storescu -> storescp.py --user-file --------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        ["-usr", "alice", "-pwd", "s3cret", "-rsp"],
        ["-usr", "alice", "-pwd", "s3cret"],
        ["-usr", "bob", "-rsp"],
    ],
    ids=["passcode with response", "passcode", "name only with response"],
)
def test_dcmtk_storescu_with_a_known_identity_stores(
    tmp_path: Path,
    run_dcmtk: Callable[..., Any],
    sample_server: Any,
    user_file: Path,
    instance: Path,
    options: list[str],
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    with sample_server("storescp", "-od", str(received), "--user-file", str(user_file)) as (
        port,
        _,
    ):
        result = run_dcmtk("storescu", "-v", *options, LOOPBACK, str(port), str(instance))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(stored(received)) == 1


@pytest.mark.parametrize(
    "options",
    [
        ["-usr", "alice", "-pwd", "Tr0ub4dor", "-rsp"],
        ["-usr", "alice"],
        ["-usr", "mallory", "-pwd", "x"],
        [],
    ],
    ids=["wrong passcode", "passcode missing", "unknown user", "no identity"],
)
def test_dcmtk_storescu_with_a_refused_identity_is_rejected(
    tmp_path: Path,
    run_dcmtk: Callable[..., Any],
    sample_server: Any,
    user_file: Path,
    instance: Path,
    options: list[str],
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    with sample_server("storescp", "-v", "-od", str(received), "--user-file", str(user_file)) as (
        port,
        server,
    ):
        result = run_dcmtk("storescu", *options, LOOPBACK, str(port), str(instance))
        log = server.log()
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Rejected Permanent" in output and "Service Provider (ACSE Related)" in output
    assert "rejecting association" in log and "user identity" in log
    assert "Tr0ub4dor" not in log  # the passcode never reaches the log
    assert stored(received) == []


def test_dcmtk_rsp_against_an_acceptor_that_checks_no_identity(
    tmp_path: Path, run_dcmtk: Callable[..., Any], sample_server: Any, instance: Path
) -> None:
    """Without a user file nothing is authenticated, so no 59H is sent: DCMTK's -rsp
    (which checks types 1 and 2 only) then gives up; a JWT is accepted unchecked."""
    token = tmp_path / "token.jwt"
    token.write_text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.\n")
    received = tmp_path / "received"
    received.mkdir()
    with sample_server("storescp", "-od", str(received)) as (port, _):
        jwt = run_dcmtk("storescu", "--jwt", str(token), LOOPBACK, str(port), str(instance))
        insisting = run_dcmtk("storescu", "-usr", "bob", "-rsp", LOOPBACK, str(port), str(instance))
    assert jwt.returncode == 0, jwt.stdout + jwt.stderr
    assert insisting.returncode != 0
    assert "Positive response requested but none received" in insisting.stdout + insisting.stderr
    assert len(stored(received)) == 1


# -- our SCUs -> pynetdicom with EVT_USER_ID ------------------------------------------------


def user_id_handler(event: Any) -> tuple[bool, bytes | None]:
    primary, secondary = event.primary_field, event.secondary_field
    if event.user_id_type == 2:
        return (primary == b"alice" and secondary == b"s3cret"), None
    if event.user_id_type == 5:
        return primary == b"good.jwt.token", b"jwt accepted"
    return False, None


@pytest.fixture
def identity_scp(pynetdicom_scp: Any) -> Iterator[tuple[int, peers.EventLog]]:
    from pynetdicom import evt

    with pynetdicom_scp([VERIFICATION], {evt.EVT_USER_ID: user_id_handler}) as served:
        yield served


def test_echoscu_identity_accepted_by_pynetdicom(
    identity_scp: tuple[int, peers.EventLog], run_sample: Callable[..., Any]
) -> None:
    port, log = identity_scp
    result = run_sample("echoscu", "-usr", "alice", "-pwd", "s3cret", LOOPBACK, str(port))
    assert result.returncode == 0, result.stderr
    [event] = log.wait_for("EVT_USER_ID")
    assert (event.primary_field, event.secondary_field) == (b"alice", b"s3cret")


def test_echoscu_identity_rejected_by_pynetdicom(
    identity_scp: tuple[int, peers.EventLog], run_sample: Callable[..., Any]
) -> None:
    port, _ = identity_scp
    result = run_sample("echoscu", "-usr", "alice", "-pwd", "nope", LOOPBACK, str(port))
    assert result.returncode == 1
    assert "association rejected" in result.stderr
    assert "nope" not in result.stdout + result.stderr


def test_echoscu_requiring_a_response_pynetdicom_does_not_send_fails_clearly(
    identity_scp: tuple[int, peers.EventLog], run_sample: Callable[..., Any]
) -> None:
    port, log = identity_scp
    result = run_sample("echoscu", "-usr", "alice", "-pwd", "s3cret", "-rsp", LOOPBACK, str(port))
    assert result.returncode == 1
    assert "did not confirm the user identity" in result.stderr
    log.wait_for("EVT_ABORTED")  # we aborted the accepted association


def test_storescu_jwt_with_response_from_pynetdicom(
    tmp_path: Path, pynetdicom_scp: Any, run_sample: Callable[..., Any], instance: Path
) -> None:
    from pynetdicom import evt

    token = tmp_path / "token.jwt"
    token.write_text("good.jwt.token\n")
    handlers = {evt.EVT_USER_ID: user_id_handler, evt.EVT_C_STORE: lambda event: 0x0000}
    with pynetdicom_scp([SECONDARY_CAPTURE], handlers) as (port, log):
        good = run_sample(
            "storescu", "--jwt", str(token), "-rsp", LOOPBACK, str(port), str(instance)
        )
        token.write_text("bad.jwt.token\n")
        bad = run_sample(
            "storescu", "--jwt", str(token), "-rsp", LOOPBACK, str(port), str(instance)
        )
        log.wait_for("EVT_C_STORE")
    assert good.returncode == 0, good.stderr
    assert "1 succeeded" in good.stdout
    assert bad.returncode == 1 and "association rejected" in bad.stderr


# -- pynetdicom requestor -> echoscp.py --user-file -----------------------------------------


def pynetdicom_associate(
    port: int, identity: tuple[int, bytes, bytes] | None, positive: bool
) -> Any:
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import UserIdentityNegotiation

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    ae.acse_timeout = ae.network_timeout = 10
    ext_neg = []
    if identity is not None:
        item = UserIdentityNegotiation()
        item.user_identity_type, item.primary_field, item.secondary_field = identity
        item.positive_response_requested = positive
        ext_neg.append(item)
    return ae.associate(LOOPBACK, port, ae_title="ANY-SCP", ext_neg=ext_neg)


def test_pynetdicom_requestor_with_identity_against_echoscp(
    sample_server: Any, user_file: Path, require_pynetdicom: Any
) -> None:
    with sample_server("echoscp", "--user-file", str(user_file)) as (port, _):
        accepted = pynetdicom_associate(port, (2, b"alice", b"s3cret"), positive=True)
        try:
            assert accepted.is_established
            response = accepted.acceptor.user_identity
            assert response is not None and response.server_response == b""
            assert accepted.send_c_echo().Status == 0x0000
        finally:
            accepted.release()
        quiet = pynetdicom_associate(port, (1, b"bob", b""), positive=False)
        assert quiet.is_established and quiet.acceptor.user_identity is None
        quiet.release()
        refused = pynetdicom_associate(port, (2, b"alice", b"wrong"), positive=True)
        assert refused.is_rejected
        nobody = pynetdicom_associate(port, None, positive=False)
        assert nobody.is_rejected


# -- access control --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, allowed",
    [
        (["--deny-calling", "ECHOSCU"], False),
        (["--allow-calling", "OTHER", "--allow-calling", "THIRD"], False),
        (["--allow-calling", "ECHOSCU"], True),
        (["--deny-peer", "127.0.0.0/8"], False),
        (["--allow-peer", "10.0.0.0/8"], False),
        (["--allow-peer", "127.0.0.1", "--deny-calling", "OTHER"], True),
    ],
)
def test_dcmtk_echoscu_against_access_lists(
    run_dcmtk: Callable[..., Any], sample_server: Any, options: list[str], allowed: bool
) -> None:
    with sample_server("echoscp", *options) as (port, _):
        result = run_dcmtk("echoscu", "-aet", "ECHOSCU", LOOPBACK, str(port))
    output = result.stdout + result.stderr
    assert (result.returncode == 0) is allowed, output
    if not allowed:
        assert "Rejected Permanent" in output and "Service User" in output


def closed_count(server: peers.ServerProcess) -> int:
    return server.log().count(" closed: ")


def wait_for_closed(server: peers.ServerProcess, count: int) -> None:
    """Until the server logged ``count`` closed connections: its slots are freed on the
    close, in another process, so its log is what can be waited for."""
    wait_until(lambda: closed_count(server) >= count, 10.0, f"{count} closed connections")


def test_the_association_limit_rejects_one_too_many_and_frees_slots(
    run_dcmtk: Callable[..., Any], sample_server: Any, require_pynetdicom: Any
) -> None:
    with sample_server("echoscp", "-v", "--max-associations", "2") as (port, server):
        held = [pynetdicom_associate(port, None, positive=False) for _ in range(2)]
        try:
            assert all(assoc.is_established for assoc in held)
            refused = run_dcmtk("echoscu", LOOPBACK, str(port))
            output = refused.stdout + refused.stderr
            assert refused.returncode != 0
            assert "Rejected Transient" in output and "Local Limit Exceeded" in output
            closed = closed_count(server)
            held[0].release()  # a released association gives its slot back
            wait_for_closed(server, closed + 1)
            assert run_dcmtk("echoscu", LOOPBACK, str(port)).returncode == 0
            wait_for_closed(server, closed + 2)
            held[1].abort()  # so does an aborted one
            wait_for_closed(server, closed + 3)
            again = [pynetdicom_associate(port, None, positive=False) for _ in range(2)]
            assert all(assoc.is_established for assoc in again)
            assert run_dcmtk("echoscu", LOOPBACK, str(port)).returncode != 0
            for assoc in again:
                assoc.release()
        finally:
            for assoc in held:
                if assoc.is_established:
                    assoc.release()
