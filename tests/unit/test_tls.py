"""TLS (PS3.15 annex B): the layer over a byte stream, DicomNet's TLS surface between
two dicomnet peers, the profiles, key formats, and every refusal the issue lists, each
ending in OnSecureLinkReady(error) and OnClose(error) with a specific code, one log
line, and the server still serving."""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid
from tls_certificates import PASSWORD, Identity, Pki, make_pki

from dicomnet import (
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomException,
    DicomExceptionCode,
    DicomNet,
    DicomNetSecurityMode,
    DicomOpenSslContextCreationSettings,
    DicomOpenSslVerificationFlags,
    DicomSslMethodType,
    DicomTlsAuthenticationMethodType,
    DicomTlsCertificateType,
    DicomTlsCipherSuiteType,
    DicomTlsExchangeMethodType,
    DicomTlsMacMethodType,
    Timeouts,
    signals,
)
from dicomnet.scu import build_request, open_association, release
from dicomnet.security import (
    BCP195_EXTENDED,
    BCP195_NON_DOWNGRADING,
    BCP195_RETIRED,
    BCP195_RFC8996,
    BCP195_RFC8996_MODIFIED,
    TlsLayer,
    TlsProfile,
)
from dicomnet.security.certificates import Credentials, load_credentials
from dicomnet.security.context import build_context
from dicomnet.server import (
    STORAGE_AND_VERIFICATION,
    VERIFICATION_ONLY,
    AcceptedConnection,
    AcceptingServer,
)
from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE, VERIFICATION

LOOPBACK = "127.0.0.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
WAIT = 20.0  # seconds a test waits for an event of its own peers
Code = DicomExceptionCode
Pem = DicomTlsCertificateType.Pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def settings_for(pki: Pki, **changes: Any) -> DicomOpenSslContextCreationSettings:
    return replace(
        DicomOpenSslContextCreationSettings(DicomSslMethodType.SslV23, str(pki.ca)), **changes
    )


# -- the layer over a byte stream --------------------------------------------------------


def _credentials(identity: Identity) -> Credentials:
    return load_credentials(str(identity.certificate), Pem, str(identity.key), None, lambda: None)


def _layers(pki: Pki) -> tuple[TlsLayer, TlsLayer, socket.socket, socket.socket]:
    settings = settings_for(pki)
    server = TlsLayer(
        build_context(settings, server_side=True, credentials=_credentials(pki.server))
    )
    client = TlsLayer(
        build_context(settings, server_side=False, credentials=_credentials(pki.client))
    )
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    server.attach(a, server_side=True)
    client.attach(b, server_side=False)
    for _ in range(20):  # each step moves what the other side wrote
        done = [layer.handshake() for layer in (client, server)]
        if all(done):
            break
    else:
        pytest.fail("the handshake over a socket pair did not finish")
    return server, client, a, b


def test_layer_delivers_decrypted_bytes_without_the_socket_becoming_readable_again(
    pki: Pki,
) -> None:
    server, client, a, b = _layers(pki)
    try:
        payload = os.urandom(200_000)
        sent = 0
        while sent < len(payload):
            sent += client.send([memoryview(payload)[sent:]])
        client.flush()
        received = bytearray()
        buffer = bytearray(1000)
        # One socket read pulls many records into the layer; the rest must be read
        # from pending() alone, with the socket already drained.
        while len(received) < len(payload):
            try:
                n = server.recv_into(memoryview(buffer))
            except BlockingIOError:
                client.flush()
                continue
            received += buffer[:n]
            if server.pending():
                continue
        assert bytes(received) == payload
        assert server.pending() == 0
    finally:
        server.close()
        client.close()


def test_layer_reports_close_notify_as_end_of_stream(pki: Pki) -> None:
    server, client, a, b = _layers(pki)
    client.close()
    buffer = memoryview(bytearray(100))
    assert server.recv_into(buffer) == 0
    server.close()


# -- DicomNet between two dicomnet peers -------------------------------------------------


class Recorder:
    """Events of every accepted connection (server side) in arrival order."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def next(self, name: str) -> Any:
        while True:
            event, value = self.events.get(timeout=WAIT)
            if event == name:
                return value


class Recording(AcceptedConnection):
    def OnSecureLinkReady(self, error: DicomExceptionCode) -> None:
        self.listener.recorder.events.put(("secure", error))  # type: ignore[attr-defined]
        super().OnSecureLinkReady(error)

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        self.listener.recorder.events.put(("close", error))  # type: ignore[attr-defined]
        super().OnClose(error, net)


class TlsServer(AcceptingServer):
    connection_type = Recording

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("TLSSCP", VERIFICATION_ONLY, **kwargs)
        self.recorder = Recorder()


class Client(DicomNet):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secure: queue.Queue[DicomExceptionCode] = queue.Queue()
        self.closed: queue.Queue[DicomExceptionCode] = queue.Queue()

    def OnSecureLinkReady(self, error: DicomExceptionCode) -> None:
        self.secure.put(error)

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        self.closed.put(error)


@pytest.fixture
def engine() -> Iterator[None]:
    DicomNet.Startup()
    try:
        yield
    finally:
        DicomNet.Shutdown()


def start_server(
    settings: DicomOpenSslContextCreationSettings | None,
    identity: Identity | None,
    **kwargs: Any,
) -> TlsServer:
    server = TlsServer(**kwargs)
    if settings is not None or identity is not None:
        server.Initialize(None, DicomNetSecurityMode.Tls, settings)
    if identity is not None:
        server.SetTlsClientCertificate(str(identity.certificate), Pem, str(identity.key))
    server.Listen(LOOPBACK, 0)
    return server


def tls_client(settings: DicomOpenSslContextCreationSettings, identity: Identity | None) -> Client:
    client = Client(None, DicomNetSecurityMode.Tls)
    client.Initialize(None, DicomNetSecurityMode.Tls, settings)
    if identity is not None:
        client.SetTlsClientCertificate(str(identity.combined), Pem, None)
    return client


def echo(client: DicomNet, port: int) -> None:
    request = build_request("TLSSCU", "TLSSCP", 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
    open_association(client, LOOPBACK, port, request)
    message_id = client.next_message_id()
    client.SendCEchoRequest(1, message_id, VERIFICATION)
    assert client.wait_response(message_id).status == DicomCommandStatusType.Success
    release(client)
    client.Close()


def assert_still_serving(pki: Pki, server: TlsServer) -> None:
    """A good association right after a refusal: the loop and listener are unaffected."""
    echo(tls_client(settings_for(pki), pki.client), server.HostPort)
    assert server.recorder.next("secure") is Code.Success


def test_tls_echo_with_mutual_authentication(pki: Pki, engine: None) -> None:
    server = start_server(settings_for(pki), pki.server)
    try:
        client = tls_client(settings_for(pki), pki.client)
        request = build_request("TLSSCU", "TLSSCP", 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
        open_association(client, LOOPBACK, server.HostPort, request)
        assert client.secure.get(timeout=WAIT) is Code.Success
        assert client.SecurityMode is DicomNetSecurityMode.Tls
        assert client.GetTlsVersion() == "TLSv1.3"
        assert client.GetTlsCipherSuite() in (
            DicomTlsCipherSuiteType.Tls13Aes256GcmSha384,
            DicomTlsCipherSuiteType.Tls13Aes128GcmSha256,
            DicomTlsCipherSuiteType.Tls13Chacha20Poly1305Sha256,
        )
        assert client.GetTlsMutualAuthenticationKeyLength() == 2048
        message_id = client.next_message_id()
        client.SendCEchoRequest(1, message_id, VERIFICATION)
        assert client.wait_response(message_id).status == DicomCommandStatusType.Success
        release(client)
        client.Close()
        assert server.recorder.next("secure") is Code.Success
        assert server.recorder.next("close") is Code.Success
    finally:
        server.Close()


def test_an_accepted_connection_uses_its_listeners_tls(pki: Pki, engine: None) -> None:
    server = start_server(settings_for(pki), pki.server)
    try:
        assert_still_serving(pki, server)
    finally:
        server.Close()


@pytest.mark.parametrize(
    ("profile", "identity", "version"),
    [
        (BCP195_NON_DOWNGRADING, "server", "TLSv1.3"),
        (BCP195_EXTENDED, "server_ecdsa", "TLSv1.2"),
        (BCP195_EXTENDED, "server", "TLSv1.2"),
        (BCP195_RFC8996, "server", "TLSv1.3"),
        (BCP195_RFC8996_MODIFIED, "server", "TLSv1.3"),
        (BCP195_RETIRED, "server", "TLSv1.3"),
    ],
)
def test_each_profile_between_dicomnet_peers(
    pki: Pki, engine: None, profile: TlsProfile, identity: str, version: str
) -> None:
    server = start_server(settings_for(pki, profile=profile), getattr(pki, identity))
    try:
        client = tls_client(settings_for(pki, profile=profile), pki.client)
        request = build_request("TLSSCU", "TLSSCP", 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
        open_association(client, LOOPBACK, server.HostPort, request)
        assert client.GetTlsVersion() == version
        if version == "TLSv1.2":
            suite = client.GetTlsCipherSuite()
            assert suite is not DicomTlsCipherSuiteType.None_
            expected = "ECDSA" if identity == "server_ecdsa" else "RSA"
            assert expected in ssl_name(client)
            assert client.GetTlsKeyExchangeAlgorithm() is DicomTlsExchangeMethodType.Ecdhe
        release(client)
        client.Close()
    finally:
        server.Close()


def ssl_name(net: DicomNet) -> str:
    layer = net._channel.layer if net._channel else None  # noqa: SLF001
    assert isinstance(layer, TlsLayer) and layer.ssl_object is not None
    cipher = layer.ssl_object.cipher()
    assert cipher is not None
    return cipher[0]


def test_the_cipher_suite_list_picks_the_tls12_suite(pki: Pki, engine: None) -> None:
    server = start_server(settings_for(pki), pki.server)
    try:
        client = tls_client(settings_for(pki, method_type=DicomSslMethodType.TlsV12), pki.client)
        client.SetTlsCipherSuiteByIndex(0, DicomTlsCipherSuiteType.None_)
        client.SetTlsCipherSuiteByIndex(0, DicomTlsCipherSuiteType.EcdheRsaWithAes128GcmSha256)
        client.SetTlsCipherSuiteByIndex(1, DicomTlsCipherSuiteType.DheRsaWithAes256GcmSha384)
        assert (
            client.GetTlsCipherSuiteByIndex(1) is DicomTlsCipherSuiteType.DheRsaWithAes256GcmSha384
        )
        client.SetTlsCipherSuiteByIndex(1, DicomTlsCipherSuiteType.None_)
        assert client.GetTlsCipherSuiteByIndex(1) is DicomTlsCipherSuiteType.None_
        with pytest.raises(DicomException) as raised:
            client.SetTlsCipherSuiteByIndex(5, DicomTlsCipherSuiteType.EcdheRsaWithAes128GcmSha256)
        assert raised.value.Code is Code.Parameter
        request = build_request("TLSSCU", "TLSSCP", 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
        open_association(client, LOOPBACK, server.HostPort, request)
        suite = client.GetTlsCipherSuite()
        assert suite is DicomTlsCipherSuiteType.EcdheRsaWithAes128GcmSha256
        assert client.GetTlsAuthenticationAlgorithm() is DicomTlsAuthenticationMethodType.Rsa
        assert client.GetTlsIntegrityAlgorithm() is DicomTlsMacMethodType.Sha256
        assert client.GetTlsEncryptionKeyLength() == 128
        release(client)
        client.Close()
    finally:
        server.Close()


# -- keys: formats and passwords ---------------------------------------------------------


def test_encrypted_key_through_on_private_key_password(pki: Pki, engine: None) -> None:
    asked: list[bool] = []

    class WithPassword(Client):
        def OnPrivateKeyPassword(self, encryption: bool) -> str:
            asked.append(encryption)
            return PASSWORD

    server = start_server(settings_for(pki), pki.server)
    try:
        client = WithPassword(None, DicomNetSecurityMode.Tls)
        client.Initialize(None, DicomNetSecurityMode.Tls, settings_for(pki))
        client.SetTlsClientCertificate(
            str(pki.client.certificate), Pem, str(pki.client_encrypted_key)
        )
        echo(client, server.HostPort)
        assert asked == [False]
    finally:
        server.Close()


def test_encrypted_key_through_the_signal(pki: Pki, engine: None) -> None:
    client = tls_client(settings_for(pki), None)
    client.SetTlsClientCertificate(str(pki.client.certificate), Pem, str(pki.client_encrypted_key))

    def answer(net: DicomNet, encryption: bool) -> str:
        return PASSWORD

    signals.OnPrivateKeyPassword.connect(answer, sender=client)
    server = start_server(settings_for(pki), pki.server)
    try:
        echo(client, server.HostPort)
    finally:
        server.Close()


@pytest.mark.parametrize(
    ("certificate", "kind", "key", "password"),
    [
        ("client_der_certificate", DicomTlsCertificateType.Asn1, "client_der_key", None),
        (
            "client_der_certificate",
            DicomTlsCertificateType.Asn1,
            "client_encrypted_der_key",
            PASSWORD,
        ),
        ("client_pkcs12", DicomTlsCertificateType.Pkcs12, None, PASSWORD),
    ],
)
def test_der_and_pkcs12_keys(
    pki: Pki,
    engine: None,
    certificate: str,
    kind: DicomTlsCertificateType,
    key: str | None,
    password: str | None,
) -> None:
    server = start_server(settings_for(pki), pki.server)
    try:
        client = tls_client(settings_for(pki, private_key_password=password), None)
        client.SetTlsClientCertificate(
            str(getattr(pki, certificate)), kind, str(getattr(pki, key)) if key else None
        )
        echo(client, server.HostPort)
        assert server.recorder.next("secure") is Code.Success
    finally:
        server.Close()


def test_a_wrong_password_is_refused_when_connecting(pki: Pki, engine: None) -> None:
    client = tls_client(settings_for(pki, private_key_password="wrong"), None)
    client.SetTlsClientCertificate(str(pki.client.certificate), Pem, str(pki.client_encrypted_key))
    with pytest.raises(DicomException) as raised:
        client.Connect(None, 0, LOOPBACK, 1)
    assert raised.value.Code is Code.PrivateKeyLoadFailed


def test_a_key_of_another_certificate_is_refused(pki: Pki, engine: None) -> None:
    client = tls_client(settings_for(pki), None)
    client.SetTlsClientCertificate(str(pki.client.certificate), Pem, str(pki.server.key))
    with pytest.raises(DicomException) as raised:
        client.Connect(None, 0, LOOPBACK, 1)
    assert raised.value.Code is Code.KeysMismatch


def test_a_tls_server_without_a_certificate_is_refused(pki: Pki, engine: None) -> None:
    server = TlsServer()
    server.Initialize(None, DicomNetSecurityMode.Tls, settings_for(pki))
    with pytest.raises(DicomException) as raised:
        server.Listen(LOOPBACK, 0)
    assert raised.value.Code is Code.CertificateLoadFailed


def test_the_settings_may_come_with_the_constructor(pki: Pki) -> None:
    settings = settings_for(pki, profile=BCP195_EXTENDED)
    net = DicomNet(None, DicomNetSecurityMode.Tls, settings)
    assert net.SecurityMode is DicomNetSecurityMode.Tls
    assert net._tls is not None and net._tls.settings is settings  # noqa: SLF001


def test_iscl_is_refused_with_a_specific_error() -> None:
    with pytest.raises(DicomException) as raised:
        DicomNet(None, DicomNetSecurityMode.Iscl)
    assert raised.value.Code is Code.BadSecurityMode
    assert "not public" in raised.value.message


# -- OnVerify --------------------------------------------------------------------------


def test_on_verify_sees_the_chain_root_first_and_may_refuse(pki: Pki, engine: None) -> None:
    seen: list[tuple[int, str]] = []

    class Picky(Client):
        def OnVerify(self, ok: int, certificate_string: str, error: DicomExceptionCode) -> int:
            seen.append((ok, certificate_string))
            return 0 if "CN=server" in certificate_string else 1

    server = start_server(settings_for(pki), pki.server)
    try:
        client = Picky(None, DicomNetSecurityMode.Tls)
        client.Initialize(None, DicomNetSecurityMode.Tls, settings_for(pki))
        client.SetTlsClientCertificate(str(pki.client.combined), Pem, None)
        client.Connect(None, 0, LOOPBACK, server.HostPort)
        with pytest.raises(DicomException) as raised:
            client.wait_connected(WAIT)
        assert raised.value.Code is Code.ApplicationVerification
        assert client.secure.get(timeout=WAIT) is Code.ApplicationVerification
        assert client.closed.get(timeout=WAIT) is Code.ApplicationVerification
        assert [ok for ok, _ in seen] == [1, 1]
        assert "CN=dicomnet test CA" in seen[0][1]
        assert "CN=server" in seen[1][1]
        server.recorder.next("close")
        assert_still_serving(pki, server)
    finally:
        server.Close()


# -- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "code"),
    [
        ("expired", Code.CertHasExpired),
        ("not_yet_valid", Code.CertNotYetValid),
        ("self_signed", Code.DepthZeroSelfSignedCert),
        ("wrong_ca", Code.UnableToGetIssuerCertLocally),
    ],
)
def test_a_bad_server_certificate_is_refused(
    pki: Pki, engine: None, caplog: pytest.LogCaptureFixture, identity: str, code: Code
) -> None:
    server = start_server(settings_for(pki), getattr(pki, identity))
    try:
        client = tls_client(settings_for(pki), pki.client)
        verified: list[tuple[int, DicomExceptionCode]] = []
        signals.OnVerify.connect(
            lambda net, ok, certificate_string, error: verified.append((ok, error)) or ok,
            sender=client,
            weak=False,
        )
        with caplog.at_level(logging.WARNING, logger="dicomnet.loop"):
            client.Connect(None, 0, LOOPBACK, server.HostPort)
            with pytest.raises(DicomException) as raised:
                client.wait_connected(WAIT)
            assert client.closed.get(timeout=WAIT) is code
        assert raised.value.Code is code
        assert client.secure.get(timeout=WAIT) is code
        assert verified == [(0, code)]
        lines = [r.getMessage() for r in caplog.records if "handshake" in r.getMessage()]
        assert any("failed verification" in line and code.name in line for line in lines)
        # the server hears of it as an alert from the client
        assert server.recorder.next("secure") is not Code.Success
        server.Close()
        server = start_server(settings_for(pki), pki.server)
        assert_still_serving(pki, server)
    finally:
        server.Close()


@pytest.mark.parametrize(
    ("identity", "code"),
    [
        ("expired", Code.CertHasExpired),
        ("not_yet_valid", Code.CertNotYetValid),
        ("self_signed", Code.DepthZeroSelfSignedCert),
        ("wrong_ca", Code.UnableToGetIssuerCertLocally),
        (None, Code.HandshakeFailure),
    ],
)
def test_a_bad_or_missing_client_certificate_is_refused(
    pki: Pki, engine: None, identity: str | None, code: Code
) -> None:
    server = start_server(settings_for(pki), pki.server)
    try:
        client = tls_client(settings_for(pki), getattr(pki, identity) if identity else None)
        request = build_request("TLSSCU", "TLSSCP", 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
        with pytest.raises(DicomException):
            # TLS 1.3: the client finishes its handshake first and hears the alert later
            open_association(client, LOOPBACK, server.HostPort, request)
        assert server.recorder.next("secure") is code
        assert server.recorder.next("close") is code
        closed = client.closed.get(timeout=WAIT)
        assert closed is not Code.Success
        assert_still_serving(pki, server)
    finally:
        server.Close()


def test_verify_if_present_accepts_a_client_without_a_certificate(pki: Pki, engine: None) -> None:
    flags = DicomOpenSslVerificationFlags.Peer
    server = start_server(settings_for(pki, verification_flags=flags), pki.server)
    try:
        echo(tls_client(settings_for(pki), None), server.HostPort)
        assert server.recorder.next("secure") is Code.Success
    finally:
        server.Close()


def test_ignore_accepts_an_untrusted_server(pki: Pki, engine: None) -> None:
    server = start_server(settings_for(pki), pki.self_signed)
    try:
        flags = DicomOpenSslVerificationFlags.None_
        echo(tls_client(settings_for(pki, verification_flags=flags), pki.client), server.HostPort)
    finally:
        server.Close()


def _raw_server_case(pki: Pki, act: Callable[[socket.socket, int], None], code: Code) -> None:
    server = start_server(settings_for(pki), pki.server)
    try:
        with socket.create_connection((LOOPBACK, server.HostPort), timeout=WAIT) as raw:
            act(raw, server.HostPort)
            assert server.recorder.next("secure") is code
            assert server.recorder.next("close") is code
        assert_still_serving(pki, server)
    finally:
        server.Close()


def test_plain_dicom_into_a_tls_port(pki: Pki, engine: None) -> None:
    server = start_server(settings_for(pki), pki.server)
    try:
        plain = Client(None)
        request = build_request("PLAIN", "TLSSCP", 16384, [(VERIFICATION, [IMPLICIT_VR_LE])])
        with pytest.raises(DicomException):
            open_association(plain, LOOPBACK, server.HostPort, request)
        assert server.recorder.next("secure") is Code.UnexpectedMessage
        assert server.recorder.next("close") is Code.UnexpectedMessage
        assert_still_serving(pki, server)
    finally:
        server.Close()


def test_tls_into_a_plain_port(pki: Pki, engine: None) -> None:
    server = start_server(None, None)
    try:
        client = tls_client(settings_for(pki), pki.client)
        client.Connect(None, 0, LOOPBACK, server.HostPort)
        with pytest.raises(DicomException) as raised:
            client.wait_connected(WAIT)
        code = client.secure.get(timeout=WAIT)
        assert code is raised.value.Code
        assert code in (Code.UnexpectedMessage, Code.NetConnectionReset)
        assert client.closed.get(timeout=WAIT) is code
        echo(Client(None), server.HostPort)  # the plain server still serves
    finally:
        server.Close()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"\x63\x00\x00\x01\x00", Code.UnexpectedMessage),  # a handshake type TLS has not
        (b"\x01\xff\xff\xff\x00", Code.DecodeError),  # a ClientHello claiming 16 MB
        (b"\x01\x00\x00\x01\x00", Code.DecodeError),  # a ClientHello of one byte
    ],
)
def test_handshake_garbage(pki: Pki, engine: None, message: bytes, code: Code) -> None:
    _raw_server_case(pki, lambda raw, port: raw.sendall(b"\x16\x03\x01\x00\x05" + message), code)


def _client_hello(pki: Pki) -> bytes:
    context = build_context(settings_for(pki), server_side=False, credentials=None)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_a_peer_that_closes_mid_handshake(pki: Pki, engine: None) -> None:
    hello = _client_hello(pki)

    def half_and_close(raw: socket.socket, port: int) -> None:
        raw.sendall(hello[: len(hello) // 2])
        raw.shutdown(socket.SHUT_WR)

    _raw_server_case(pki, half_and_close, Code.NetConnectionReset)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_a_tls10_only_client_against_the_default_profile(pki: Pki, engine: None) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
    server = start_server(settings_for(pki), pki.server)
    try:
        with socket.create_connection((LOOPBACK, server.HostPort), timeout=WAIT) as raw:
            with pytest.raises(ssl.SSLError) as refused:
                context.wrap_socket(raw).close()
            assert "VERSION" in str(refused.value).upper()
        assert server.recorder.next("secure") is Code.ProtocolVersion
        assert server.recorder.next("close") is Code.ProtocolVersion
        assert_still_serving(pki, server)
    finally:
        server.Close()


# -- a stalled handshake, on the virtual clock -------------------------------------------


def test_a_stalled_half_handshake_is_cut_off_by_its_own_timeout(
    pki: Pki, virtual_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(
        settings_for(pki), pki.server, timeouts=Timeouts(tls_handshake=30.0, idle=None)
    )
    hello = _client_hello(pki)
    start = virtual_clock.now
    try:
        with socket.create_connection((LOOPBACK, server.HostPort)) as raw:
            raw.sendall(hello[:40])  # half a ClientHello, then nothing
            with caplog.at_level(logging.WARNING, logger="dicomnet.loop"):
                for _ in range(1000):
                    DicomNet.pump(0.01)
                    if not server.recorder.events.empty():
                        break
                assert server.recorder.events.get_nowait() == ("secure", Code.NetTimeout)
                DicomNet.pump(0)
                assert server.recorder.events.get_nowait() == ("close", Code.NetTimeout)
            assert virtual_clock.now - start == pytest.approx(30.0)
            assert any("did not finish within 30 s" in r.getMessage() for r in caplog.records)
    finally:
        server.Close()


# -- a large transfer, the read budget far below it -------------------------------------


class Storing(Recording):
    def OnReceiveCStoreRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        priority: Any,
        move_ae: str,
        move_message_id: int,
        data_set: Any,
    ) -> None:
        self.listener.recorder.events.put(("stored", data_set))  # type: ignore[attr-defined]
        self.SendCStoreResponse(
            presentation_id, message_id, affected_class, instance, DicomCommandStatusType.Success
        )


class StoringServer(TlsServer):
    connection_type = Storing

    def __init__(self, **kwargs: Any) -> None:
        AcceptingServer.__init__(self, "TLSSCP", STORAGE_AND_VERIFICATION, **kwargs)
        self.recorder = Recorder()


def test_a_large_store_over_tls_with_a_small_read_budget(pki: Pki, engine: None) -> None:
    """Far more decrypted bytes than one turn may read: the channel must come back for
    them although the socket does not signal them again."""
    server = StoringServer()
    # its connections take the listener's configuration
    server.config = replace(server.config, read_budget=64 << 10, max_receive_buffer=256 << 10)
    server.Initialize(None, DicomNetSecurityMode.Tls, settings_for(pki))
    server.SetTlsClientCertificate(str(pki.server.certificate), Pem, str(pki.server.key))
    server.Listen(LOOPBACK, 0)
    try:
        client = tls_client(settings_for(pki), pki.client)
        request = build_request("TLSSCU", "TLSSCP", 131072, [(CT_IMAGE_STORAGE, [EXPLICIT_VR_LE])])
        open_association(client, LOOPBACK, server.HostPort, request)
        data_set = Dataset()
        data_set.SOPClassUID = CT_IMAGE_STORAGE
        data_set.SOPInstanceUID = generate_uid()
        data_set.PatientName = "Tls^Large"
        pixels = os.urandom(8 << 20)
        data_set.PixelData = pixels
        data_set["PixelData"].VR = "OB"
        message_id = client.next_message_id()
        client.SendCStoreRequest(
            1,
            message_id,
            CT_IMAGE_STORAGE,
            data_set.SOPInstanceUID,
            DicomCommandPriorityType.Medium,
            "",
            0,
            data_set,
        )
        assert client.wait_response(message_id, WAIT).status == DicomCommandStatusType.Success
        stored = server.recorder.next("stored")
        assert bytes(stored.PixelData) == pixels
        release(client)
        client.Close()
    finally:
        server.Close()


def test_a_client_whose_server_never_answers_the_handshake_times_out(
    pki: Pki, virtual_clock: Any
) -> None:
    with socket.socket() as silent:  # the kernel accepts; nobody ever answers
        silent.bind((LOOPBACK, 0))
        silent.listen(1)
        client = tls_client(settings_for(pki), pki.client)
        client.config = replace(client.config, timeouts=Timeouts(tls_handshake=12.0))
        start = virtual_clock.now
        client.Connect(None, 0, LOOPBACK, silent.getsockname()[1])
        with pytest.raises(DicomException) as raised:
            client.wait_connected()
        assert raised.value.Code is Code.NetTimeout
        assert "did not finish within 12 s" in raised.value.message
        assert client.secure.get_nowait() is Code.NetTimeout
        DicomNet.pump(0)
        assert client.closed.get_nowait() is Code.NetTimeout
        assert virtual_clock.now - start == pytest.approx(12.0)
