"""Verification (C-ECHO) against independent implementations, in both roles.

Ground truth for the association and DIMSE layers: DCMTK's echoscu/storescp and
pynetdicom talk to samples/echoscu.py and samples/echoscp.py, including rejection,
abort, a peer without the Verification SOP class and several maximum PDU sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
LOOPBACK = "127.0.0.1"
PEER_TIMEOUT = 10  # seconds pynetdicom waits for anything


def output(result: Any) -> str:
    return str(result.stdout) + str(result.stderr)


# -- DCMTK and pynetdicom as SCU, samples/echoscp.py as SCP --------------------------------


def test_dcmtk_echoscu_against_sample_echoscp(
    sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with sample_server("echoscp", "-v") as (port, server):
        result = run_dcmtk("echoscu", "-v", "--repeat", "2", LOOPBACK, str(port))
        assert result.returncode == 0, output(result)
        assert output(result).count("Received Echo Response (Success)") == 2
        assert server.log().count("received C-ECHO-RQ") == 2
        assert server.returncode is None


def test_dcmtk_echoscu_with_a_wrong_called_ae_is_rejected(
    sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with sample_server("echoscp", "--check-called-aet", "-aet", "RIGHT") as (port, server):
        result = run_dcmtk("echoscu", "-v", "-aec", "WRONG", LOOPBACK, str(port))
        assert result.returncode != 0
        assert "Association Rejected" in output(result)
        assert "Called AE Title Not Recognized" in output(result)
        assert "Rejected Permanent, Source: Service User" in output(result)
        assert "rejecting association" in server.log()
        accepted = run_dcmtk("echoscu", "-aec", "RIGHT", LOOPBACK, str(port))
        assert accepted.returncode == 0, output(accepted)


def test_dcmtk_echoscu_abort_leaves_the_server_serving(
    sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with sample_server("echoscp", "-v") as (port, server):
        aborted = run_dcmtk("echoscu", "-v", "--abort", LOOPBACK, str(port))
        assert aborted.returncode == 0, output(aborted)
        assert "Aborting Association" in output(aborted)
        normal = run_dcmtk("echoscu", "-v", LOOPBACK, str(port))
        assert normal.returncode == 0, output(normal)
        assert "peer aborted the association (source 0, reason 0)" in server.log()
        assert server.returncode is None


@pytest.mark.parametrize("scp_pdu", [4096, 131072])
def test_dcmtk_echoscu_learns_the_sample_servers_maximum_pdu(
    sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any], scp_pdu: int
) -> None:
    with sample_server("echoscp", "-pdu", str(scp_pdu)) as (port, _):
        result = run_dcmtk("echoscu", "-v", "--max-pdu", "4096", LOOPBACK, str(port))
    assert result.returncode == 0, output(result)
    # a PDV item may carry the maximum minus its 6-byte header and the PDU's own 6 bytes
    assert f"Max Send PDV: {scp_pdu - 12}" in output(result)


def test_dcmtk_echoscu_against_an_unlimited_sample_server(
    sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with sample_server("echoscp", "-pdu", "0") as (port, _):
        result = run_dcmtk("echoscu", "--max-pdu", "131072", LOOPBACK, str(port))
    assert result.returncode == 0, output(result)


def pynetdicom_scu(require_pynetdicom: Any, max_pdu: int = 16384) -> Any:
    ae = require_pynetdicom.AE(ae_title="PYN-SCU")
    ae.add_requested_context(VERIFICATION)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = PEER_TIMEOUT
    ae.maximum_pdu_size = max_pdu
    return ae


@pytest.mark.parametrize("scu_pdu", [4096, 0])
def test_pynetdicom_scu_echo_and_release(
    sample_server: Callable[..., Any], require_pynetdicom: Any, scu_pdu: int
) -> None:
    ae = pynetdicom_scu(require_pynetdicom, scu_pdu)
    with sample_server("echoscp", "-v") as (port, server):
        assoc = ae.associate(LOOPBACK, port, ae_title="ANY-SCP")
        assert assoc.is_established
        (context,) = assoc.accepted_contexts
        assert context.abstract_syntax == VERIFICATION
        for _ in range(2):
            status = assoc.send_c_echo()
            assert status.Status == 0x0000
        assoc.release()
        assert assoc.is_released
        assert server.log().count("received C-ECHO-RQ") == 2


def test_pynetdicom_scu_abort_then_a_new_association(
    sample_server: Callable[..., Any], require_pynetdicom: Any
) -> None:
    ae = pynetdicom_scu(require_pynetdicom)
    with sample_server("echoscp", "-v") as (port, server):
        first = ae.associate(LOOPBACK, port, ae_title="ANY-SCP")
        assert first.is_established
        assert first.send_c_echo().Status == 0x0000
        first.abort()
        assert first.is_aborted
        second = ae.associate(LOOPBACK, port, ae_title="ANY-SCP")
        assert second.is_established
        assert second.send_c_echo().Status == 0x0000
        second.release()
        assert second.is_released
        assert "peer aborted the association" in server.log()


def test_pynetdicom_scu_proposing_only_an_unsupported_class_is_rejected(
    sample_server: Callable[..., Any], require_pynetdicom: Any
) -> None:
    ae = require_pynetdicom.AE(ae_title="PYN-SCU")
    ae.add_requested_context(CT_IMAGE_STORAGE)
    ae.acse_timeout = ae.network_timeout = PEER_TIMEOUT
    with sample_server("echoscp") as (port, server):
        assoc = ae.associate(LOOPBACK, port, ae_title="ANY-SCP")
        assert assoc.is_rejected
        assert "no acceptable presentation contexts" in server.log()


# -- samples/echoscu.py as SCU, DCMTK and pynetdicom as SCP -------------------------------


def test_sample_echoscu_against_dcmtk_storescp(
    dcmtk_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    with dcmtk_scp("storescp", "-v") as (port, server):
        result = run_sample("echoscu", "-v", "--repeat", "3", LOOPBACK, str(port))
        assert result.returncode == 0, output(result)
        assert "3 of 3 C-ECHO requests" in output(result)
        assert server.log().count("Received Echo Request") == 3
        assert server.returncode is None


@pytest.mark.parametrize(("scu_pdu", "scp_pdu"), [(4096, 131072), (131072, 4096), (0, 16384)])
def test_sample_echoscu_pdu_sizes_against_dcmtk_storescp(
    dcmtk_scp: Callable[..., Any], run_sample: Callable[..., Any], scu_pdu: int, scp_pdu: int
) -> None:
    with dcmtk_scp("storescp", "-v", "--max-pdu", str(scp_pdu)) as (port, _):
        result = run_sample("echoscu", "-pdu", str(scu_pdu), "-r", "2", LOOPBACK, str(port))
    assert result.returncode == 0, output(result)


def test_sample_echoscu_against_pynetdicom(
    pynetdicom_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    with pynetdicom_scp() as (port, log):
        result = run_sample(
            "echoscu", "-v", "--repeat", "3", "-aec", "PYNETDICOM", LOOPBACK, str(port)
        )
        assert result.returncode == 0, output(result)
        echoes = log.wait_for("EVT_C_ECHO", count=3)
        log.wait_for("EVT_RELEASED")
    assert [e.request.MessageID for e in echoes] == [1, 2, 3]
    assert all(e.request.AffectedSOPClassUID == VERIFICATION for e in echoes)
    assert log.names[0] == "EVT_ACCEPTED"
    assert echoes[0].assoc.requestor.ae_title == "ECHOSCU"


def test_sample_echoscu_against_a_peer_without_verification(
    pynetdicom_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    with pynetdicom_scp(contexts=[CT_IMAGE_STORAGE]) as (port, log):
        result = run_sample("echoscu", "-aec", "PYNETDICOM", LOOPBACK, str(port))
        assert result.returncode != 0
        log.wait_for("EVT_ABORTED")  # the SCU gives up on the association it cannot use
    assert "did not accept the Verification SOP class" in result.stderr
    assert "Traceback" not in output(result)


def test_sample_echoscu_with_a_called_ae_the_peer_refuses(
    pynetdicom_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    def require_called_aet(ae: Any) -> None:
        ae.require_called_aet = True

    with pynetdicom_scp(configure=require_called_aet) as (port, log):
        result = run_sample("echoscu", "-aec", "WRONG", LOOPBACK, str(port))
        assert result.returncode != 0
        log.wait_for("EVT_REJECTED")
    assert "association rejected (permanent): called AE title not recognized" in result.stderr
    assert "Traceback" not in output(result)


def test_sample_echoscu_against_a_closed_port(
    run_sample: Callable[..., Any], closed_port: int
) -> None:
    result = run_sample("echoscu", "-to", "5", LOOPBACK, str(closed_port))
    assert result.returncode != 0
    assert "refused" in result.stderr.lower()
    assert "Traceback" not in output(result)


# -- both samples ----------------------------------------------------------------------


@pytest.mark.parametrize(("scu_pdu", "scp_pdu"), [(4096, 0), (0, 4096)])
def test_sample_echoscu_against_sample_echoscp(
    sample_server: Callable[..., Any],
    run_sample: Callable[..., Any],
    scu_pdu: int,
    scp_pdu: int,
) -> None:
    with sample_server("echoscp", "-pdu", str(scp_pdu)) as (port, _):
        result = run_sample("echoscu", "-pdu", str(scu_pdu), "-r", "3", LOOPBACK, str(port))
    assert result.returncode == 0, output(result)
    assert "3 of 3 C-ECHO requests" in output(result)
