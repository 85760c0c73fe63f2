"""TLS (PS3.15 annex B) against DCMTK 3.6.7 and pynetdicom, in both roles.

Mutual authentication with certificates made at test time: DCMTK's echoscu, storescu
and storescp with +tls under each profile DCMTK 3.6.7 offers (non-downgrading BCP 195,
BCP 195, extended BCP 195), and pynetdicom with its ``ssl.SSLContext`` arguments;
C-ECHO and C-STORE with the pixel data compared. Refusals (a client without the
certificate a server requires, an untrusted server) end with a clear error while the
server goes on serving.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from test_store_interop import assert_all_stored, make_images, saving_handler
from tls_certificates import PASSWORD, Pki, make_pki

LOOPBACK = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"

# DCMTK 3.6.7's profile options and ours for the same profile.
PROFILES = [
    pytest.param("+py", "--profile-bcp195-nd", id="bcp195-nd"),
    pytest.param("+px", "--profile-bcp195", id="bcp195"),
    pytest.param("+pz", "--profile-bcp195-ex", id="bcp195-ex"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def dcmtk_tls(pki: Pki, who: str = "client") -> list[str]:
    identity = getattr(pki, who)
    return ["+tls", str(identity.key), str(identity.certificate), "+cf", str(pki.ca)]


def sample_tls(pki: Pki, who: str = "server") -> list[str]:
    identity = getattr(pki, who)
    return ["+tls", str(identity.key), str(identity.certificate), "+cf", str(pki.ca)]


def output(result: Any) -> str:
    return str(result.stdout) + str(result.stderr)


# -- DCMTK as SCU, the samples as SCP ------------------------------------------------------


@pytest.mark.parametrize(("dcmtk_profile", "profile"), PROFILES)
def test_dcmtk_echoscu_tls_to_sample_echoscp(
    pki: Pki,
    sample_server: Callable[..., Any],
    run_dcmtk: Callable[..., Any],
    dcmtk_profile: str,
    profile: str,
) -> None:
    with sample_server("echoscp", "-v", profile, *sample_tls(pki)) as (port, server):
        result = run_dcmtk(
            "echoscu", "-v", dcmtk_profile, *dcmtk_tls(pki), "--repeat", "2", LOOPBACK, str(port)
        )
        assert result.returncode == 0, output(result)
        assert output(result).count("Received Echo Response (Success)") == 2
        assert server.log().count("received C-ECHO-RQ") == 2


def test_dcmtk_storescu_tls_to_sample_storescp_with_pixel_data(
    pki: Pki, tmp_path: Path, sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    sent = make_images(tmp_path / "send", ExplicitVRLittleEndian, 3, rows=256)
    received = tmp_path / "received"
    received.mkdir()
    with sample_server("storescp", "-od", str(received), *sample_tls(pki)) as (port, _):
        result = run_dcmtk("storescu", "-xe", *dcmtk_tls(pki), LOOPBACK, str(port), *map(str, sent))
    assert result.returncode == 0, output(result)
    assert_all_stored(sent, received, ExplicitVRLittleEndian)


def test_dcmtk_echoscu_without_a_certificate_is_refused_and_the_server_serves_on(
    pki: Pki, sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with sample_server("echoscp", "-v", *sample_tls(pki)) as (port, server):
        refused = run_dcmtk("echoscu", "+tla", "+cf", str(pki.ca), LOOPBACK, str(port))
        assert refused.returncode != 0
        assert "HandshakeFailure" in server.log()
        accepted = run_dcmtk("echoscu", *dcmtk_tls(pki), LOOPBACK, str(port))
        assert accepted.returncode == 0, output(accepted)
        assert server.returncode is None


def test_sample_echoscp_with_verify_if_present_takes_an_anonymous_dcmtk_client(
    pki: Pki, sample_server: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with sample_server("echoscp", "-vc", *sample_tls(pki)) as (port, _):
        result = run_dcmtk("echoscu", "+tla", "+cf", str(pki.ca), LOOPBACK, str(port))
        assert result.returncode == 0, output(result)


# -- the samples as SCU, DCMTK as SCP ------------------------------------------------------


@pytest.mark.parametrize(("dcmtk_profile", "profile"), PROFILES)
def test_sample_echoscu_tls_to_dcmtk_storescp(
    pki: Pki,
    dcmtk_scp: Callable[..., Any],
    run_sample: Callable[..., Any],
    dcmtk_profile: str,
    profile: str,
) -> None:
    with dcmtk_scp("storescp", dcmtk_profile, *dcmtk_tls(pki, "server")) as (port, _):
        result = run_sample("echoscu", profile, *sample_tls(pki, "client"), LOOPBACK, str(port))
    assert result.returncode == 0, output(result)
    assert "1 of 1 C-ECHO requests" in result.stdout


def test_sample_storescu_tls_with_an_encrypted_key_to_dcmtk_storescp(
    pki: Pki, tmp_path: Path, dcmtk_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    sent = make_images(tmp_path / "send", ExplicitVRLittleEndian, 3, rows=256)
    received = tmp_path / "received"
    received.mkdir()
    tls = ["+tls", str(pki.client_encrypted_key), str(pki.client.certificate), "+pw", PASSWORD]
    with dcmtk_scp("storescp", "-od", str(received), *dcmtk_tls(pki, "server")) as (port, _):
        result = run_sample(
            "storescu", *tls, "+cf", str(pki.ca), LOOPBACK, str(port), str(tmp_path / "send")
        )
    assert result.returncode == 0, output(result)
    assert "3 succeeded, 0 warnings, 0 failed" in result.stdout
    assert_all_stored(sent, received, None)


def test_sample_echoscu_refuses_an_untrusted_dcmtk_server(
    pki: Pki, dcmtk_scp: Callable[..., Any], run_sample: Callable[..., Any]
) -> None:
    with dcmtk_scp("storescp", *dcmtk_tls(pki, "self_signed")) as (port, server):
        refused = run_sample("echoscu", *sample_tls(pki, "client"), LOOPBACK, str(port))
        assert refused.returncode != 0
        assert "DepthZeroSelfSignedCert" in output(refused)
        ignored = run_sample("echoscu", "-ic", *sample_tls(pki, "client"), LOOPBACK, str(port))
        assert ignored.returncode == 0, output(ignored)
        assert server.returncode is None


# -- pynetdicom ------------------------------------------------------------------------------


def client_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    context.check_hostname = False
    context.load_cert_chain(str(pki.client.certificate), str(pki.client.key))
    return context


def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(pki.server.certificate), str(pki.server.key))
    return context


def test_pynetdicom_scu_tls_to_sample_storescp(
    pki: Pki, tmp_path: Path, require_pynetdicom: Any, sample_server: Callable[..., Any]
) -> None:
    from pynetdicom import AE

    sent = make_images(tmp_path / "send", ExplicitVRLittleEndian, 2, rows=256)
    received = tmp_path / "received"
    received.mkdir()
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    with sample_server("storescp", "-od", str(received), *sample_tls(pki)) as (port, _):
        assoc = ae.associate(
            LOOPBACK, port, ae_title="ANY-SCP", tls_args=(client_context(pki), None)
        )
        assert assoc.is_established
        try:
            assert assoc.send_c_echo().Status == 0x0000
            statuses = [assoc.send_c_store(dcmread(path)).Status for path in sent]
        finally:
            assoc.release()
    assert statuses == [0x0000, 0x0000]
    assert_all_stored(sent, received, ExplicitVRLittleEndian)


def test_sample_storescu_tls_to_pynetdicom_scp(
    pki: Pki, tmp_path: Path, require_pynetdicom: Any, run_sample: Callable[..., Any]
) -> None:
    from pynetdicom import AE, evt

    sent = make_images(tmp_path / "send", ExplicitVRLittleEndian, 2, rows=256)
    received = tmp_path / "received"
    ae = AE(ae_title="PYNETDICOM")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian])
    handlers = [(evt.EVT_C_STORE, saving_handler(received))]
    server = ae.start_server(
        (LOOPBACK, 0), block=False, evt_handlers=handlers, ssl_context=server_context(pki)
    )
    assert server is not None
    try:
        port = str(server.server_address[1])
        echoed = run_sample("echoscu", *sample_tls(pki, "client"), LOOPBACK, port)
        assert echoed.returncode == 0, output(echoed)
        stored = run_sample("storescu", *sample_tls(pki, "client"), LOOPBACK, port, *map(str, sent))
        assert stored.returncode == 0, output(stored)
    finally:
        ae.shutdown()
    assert_all_stored(sent, received, ExplicitVRLittleEndian)
