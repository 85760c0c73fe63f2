"""User identity negotiation (PS3.7 D.3.3.7): the value objects, the user table, the
requestor's required positive response (sessions joined in memory, no sockets), and an
``AcceptingServer`` deciding identities over loopback (table, callback, signal)."""

from __future__ import annotations

import argparse
import importlib
import logging
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dicomnet import DicomAssociate, DicomNet, Timeouts, signals
from dicomnet import events as ev
from dicomnet.associate import AcceptPolicy, build_accept
from dicomnet.config import NetConfig
from dicomnet.errors import AssociationRejected, DicomException
from dicomnet.identity import (
    IDENTITY_REJECT,
    IdentityDecision,
    IdentityPolicy,
    UserIdentity,
    UserIdentityNotConfirmed,
    UserIdentityType,
    UserTable,
    response_for,
)
from dicomnet.pdu import UserIdentityRQ
from dicomnet.server import VERIFICATION_ONLY, AcceptedConnection, AcceptingServer
from dicomnet.session import AssociationAccepted, AssociationRequested, DimseSession
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

WAIT = 10.0
TIMEOUTS = Timeouts(connect=WAIT, artim=WAIT, acse=WAIT, dimse=WAIT)
REJECT = tuple(int(value) for value in IDENTITY_REJECT)

# -- value objects and the table ---------------------------------------------------------


def test_identity_repr_and_describe_never_show_secrets() -> None:
    identity = UserIdentity.username_and_passcode("alice", "s3cret-pass")
    assert "s3cret" not in repr(identity) and "s3cret" not in identity.describe()
    assert "alice" in repr(identity)
    token = UserIdentity.jwt("eyJhbGciOi.payload.signature")
    assert "eyJ" not in repr(token) and token.name is None
    assert token.describe() == "Jwt (28 bytes)"


def test_identity_round_trips_through_the_sub_item() -> None:
    identity = UserIdentity.username_and_passcode(
        "jürgen", "pässwort", positive_response_requested=True
    )
    item = identity.to_item()
    assert item == UserIdentityRQ(2, True, "jürgen".encode(), "pässwort".encode())
    assert UserIdentity.from_item(item) == identity
    assert (
        UserIdentity.from_item(UserIdentityRQ(3, False, b"ticket")).kind
        is UserIdentityType.Kerberos
    )


def test_user_table_reads_names_and_passcodes(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# staff\nalice:s3cret\n\nbob\ncarol:with:colons \n", encoding="utf-8")
    table = UserTable.from_file(path)
    assert len(table) == 3 and "bob" in table and "dave" not in table
    assert "s3cret" not in repr(table)

    def decide(identity: UserIdentity) -> IdentityDecision:
        return table(identity)

    assert decide(UserIdentity.username_and_passcode("alice", "s3cret")).accepted
    assert not decide(UserIdentity.username_and_passcode("alice", "wrong")).accepted
    assert not decide(UserIdentity.username("alice")).accepted  # the passcode is required
    assert decide(UserIdentity.username("bob")).accepted
    assert decide(UserIdentity.username_and_passcode("bob", "anything")).accepted
    assert decide(UserIdentity.username_and_passcode("carol", "with:colons ")).accepted
    assert not decide(UserIdentity.username_and_passcode("carol", "with:colons")).accepted
    refused = decide(UserIdentity.username("dave"))
    assert not refused.accepted and "dave" in refused.reason
    assert not decide(UserIdentity.jwt("a.b.c")).accepted
    wrong = decide(UserIdentity.username_and_passcode("alice", "hunter2"))
    assert "hunter2" not in wrong.reason and "s3cret" not in wrong.reason


@pytest.mark.parametrize(
    "lines, message",
    [(["alice", "alice:x"], "appears twice"), ([":x"], "no user name")],
)
def test_user_table_refuses_bad_lines(lines: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UserTable.from_lines(lines)


def test_the_response_follows_the_request() -> None:
    accepted = IdentityDecision.accept(b"server-ticket")
    asked = {"positive_response_requested": True}
    assert response_for(UserIdentity.username("a"), accepted) is None  # not requested
    assert response_for(UserIdentity.username("a", **asked), accepted) == b""
    assert response_for(UserIdentity.username_and_passcode("a", "p", **asked), accepted) == b""
    assert response_for(UserIdentity.kerberos(b"t", **asked), accepted) == b"server-ticket"
    assert response_for(UserIdentity.saml("x", **asked), IdentityDecision.reject("no")) is None


def test_policy_without_validator_does_not_claim_to_authenticate() -> None:
    request = DicomAssociate(True)
    assert IdentityPolicy().decide(UserIdentity.username("a"), request) is None
    assert IdentityPolicy().decide(None, request) is None
    refused = IdentityPolicy(required=True).decide(None, request)
    assert refused is not None and not refused.accepted


def test_typed_helpers_build_the_sub_item() -> None:
    request = DicomAssociate(True)
    request.set_username("alice", "s3cret", require_positive_response=True)
    assert request.user_identity == UserIdentityRQ(2, True, b"alice", b"s3cret")
    assert request.require_user_identity_response
    assert request.requested_identity == UserIdentity.username_and_passcode(
        "alice", "s3cret", positive_response_requested=True
    )
    request.set_username("bob", positive_response_requested=True)
    assert request.user_identity == UserIdentityRQ(1, True, b"bob", b"")
    assert not request.require_user_identity_response
    request.set_kerberos_ticket(b"\x01\x02")
    assert request.user_identity == UserIdentityRQ(3, False, b"\x01\x02", b"")
    request.set_saml_assertion("<saml/>", positive_response_requested=True)
    assert request.user_identity == UserIdentityRQ(4, True, b"<saml/>", b"")
    request.set_jwt("a.b.c", require_positive_response=True)
    assert request.user_identity == UserIdentityRQ(5, True, b"a.b.c", b"")
    request.user_identity = None
    assert not request.require_user_identity_response and request.requested_identity is None
    with pytest.raises(DicomException):
        DicomAssociate(False).set_username("alice")


# -- the requestor's required response, sessions in memory -------------------------------


def _pump(a: DimseSession, b: DimseSession, now: float) -> None:
    moved = True
    while moved:
        moved = False
        for sender, receiver in ((a, b), (b, a)):
            queue_ = sender.engine.send_queue
            data = b"".join(bytes(chunk) for chunk in queue_.peek(1 << 30))
            queue_.consume(len(data))
            if data and not receiver.is_closed:
                view = memoryview(data)
                while view:
                    buffer = receiver.get_buffer()
                    n = min(len(buffer), len(view))
                    buffer[:n] = view[:n]
                    buffer.release()
                    view = view[n:]
                    receiver.buffer_updated(n, now)
                moved = True


def _negotiate(
    request: DicomAssociate, response: bytes | None
) -> tuple[list[Any], list[Any], DimseSession]:
    scu = DimseSession(is_requestor=True, config=NetConfig())
    scp = DimseSession(is_requestor=False, config=NetConfig())
    now = 10.0
    scu.connection_made(now)
    scp.connection_made(now)
    scu.send_associate_rq(request, now)
    _pump(scu, scp, now)
    [requested] = [e for e in scp.next_events(now) if isinstance(e, AssociationRequested)]
    accept = build_accept(requested.request, AcceptPolicy({VERIFICATION: [IMPLICIT_VR_LE]}))
    accept.user_identity_response = response
    scp.send_associate_ac(accept, now)
    _pump(scu, scp, now)
    scu_events = scu.next_events(now)
    _pump(scu, scp, now)
    return scu_events, scp.next_events(now), scu


def _verification_request() -> DicomAssociate:
    request = DicomAssociate(True)
    request.Called, request.Calling = "SCP", "SCU"
    request.AddPresentationContext(1, 0, VERIFICATION)
    request.AddTransfer(1, IMPLICIT_VR_LE)
    return request


def test_a_required_response_that_does_not_come_aborts(caplog: pytest.LogCaptureFixture) -> None:
    request = _verification_request()
    request.set_username("alice", "s3cret", require_positive_response=True)
    with caplog.at_level(logging.ERROR, "dicomnet.session"):
        scu_events, scp_events, scu = _negotiate(request, None)
    assert not any(isinstance(e, AssociationAccepted) for e in scu_events)
    assert any(isinstance(e, ev.ProviderAborted) for e in scu_events)
    assert isinstance(scu.failure, UserIdentityNotConfirmed)
    assert any(isinstance(e, ev.AbortReceived) for e in scp_events)  # the acceptor hears it
    assert "did not confirm the user identity" in caplog.text and "s3cret" not in caplog.text


@pytest.mark.parametrize("require", [True, False])
def test_a_response_is_read_after_accept(require: bool) -> None:
    request = _verification_request()
    request.set_jwt("a.b.c", positive_response_requested=True, require_positive_response=require)
    scu_events, _, scu = _negotiate(request, b"confirmed")
    [accepted] = [e for e in scu_events if isinstance(e, AssociationAccepted)]
    assert accepted.accept.user_identity_response == b"confirmed"
    assert scu.failure is None


def test_no_response_is_fine_when_only_requested() -> None:
    request = _verification_request()
    request.set_username("alice", positive_response_requested=True)
    scu_events, _, _ = _negotiate(request, None)
    [accepted] = [e for e in scu_events if isinstance(e, AssociationAccepted)]
    assert accepted.accept.user_identity_response is None


# -- an AcceptingServer deciding identities, over loopback -------------------------------


class Recorder(AcceptedConnection):
    """Records the identities its server saw (handed to the test thread)."""

    seen: queue.Queue[UserIdentity] = queue.Queue()

    def OnReceiveUserIdentity(
        self, association: DicomAssociate, identity: UserIdentity
    ) -> IdentityDecision | None:
        self.seen.put(identity)
        if identity.kind is UserIdentityType.Kerberos:
            return IdentityDecision.accept(b"server ticket for " + identity.primary)
        return super().OnReceiveUserIdentity(association, identity)


class RecordingServer(AcceptingServer):
    connection_type = Recorder


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    DicomNet.Startup()
    table = UserTable({"alice": "s3cret", "bob": None})
    listener = RecordingServer(
        "SCP", VERIFICATION_ONLY, timeouts=TIMEOUTS, identity=IdentityPolicy(table, required=True)
    )
    listener.Listen("127.0.0.1", 0, 8)
    try:
        yield listener
    finally:
        listener.Dispose()
        DicomNet.Shutdown()


def associate(server: AcceptingServer, request: DicomAssociate) -> tuple[DicomNet, DicomAssociate]:
    scu = DicomNet(None, timeouts=TIMEOUTS)
    scu.Connect(None, 0, "127.0.0.1", server.HostPort)
    scu.wait_connected(WAIT)
    scu.SendAssociateRequest(request)
    try:
        return scu, scu.wait_associated(WAIT)
    except BaseException:
        scu.Close()
        raise


def rejection(server: AcceptingServer, request: DicomAssociate) -> tuple[int, int, int]:
    with pytest.raises(AssociationRejected) as caught:
        associate(server, request)
    return caught.value.result, caught.value.source, caught.value.reason


def test_the_table_accepts_with_a_zero_length_response(server: RecordingServer) -> None:
    request = _verification_request()
    request.set_username("alice", "s3cret", require_positive_response=True)
    scu, accepted = associate(server, request)
    try:
        assert accepted.user_identity_response == b""
        assert scu.Association is not None and scu.Association.user_identity_response == b""
    finally:
        scu.SendReleaseRequest()
        scu.wait_released(WAIT)
        scu.Close()
    assert Recorder.seen.get(timeout=WAIT).name == "alice"


def test_no_response_unless_requested(server: RecordingServer) -> None:
    request = _verification_request()
    request.set_username("bob")
    scu, accepted = associate(server, request)
    scu.Close()
    assert accepted.user_identity_response is None


@pytest.mark.parametrize(
    "propose",
    [
        lambda r: r.set_username("alice", "wrong", positive_response_requested=True),
        lambda r: r.set_username("alice"),
        lambda r: r.set_username("mallory", "x"),
        lambda r: r.set_jwt("a.b.c"),
        lambda r: None,  # no identity at all, and the server requires one
    ],
    ids=["wrong passcode", "passcode missing", "unknown user", "jwt unchecked", "no identity"],
)
def test_refused_identities_are_rejected_permanently(
    server: RecordingServer, propose: Any, caplog: pytest.LogCaptureFixture
) -> None:
    request = _verification_request()
    propose(request)
    with caplog.at_level(logging.WARNING, "dicomnet.server"):
        assert rejection(server, request) == REJECT
    assert "rejecting association" in caplog.text
    assert "wrong" not in caplog.text.replace("wrong passcode", "")  # the passcode is not logged


def test_the_callback_answers_kerberos_with_its_bytes(server: RecordingServer) -> None:
    request = _verification_request()
    request.set_kerberos_ticket(b"TGS", require_positive_response=True)
    scu, accepted = associate(server, request)
    scu.Close()
    assert accepted.user_identity_response == b"server ticket for TGS"


def test_a_signal_receiver_decides_before_the_table(server: RecordingServer) -> None:
    def jwt_check(net: DicomNet, association: DicomAssociate, identity: UserIdentity) -> Any:
        if identity.kind is UserIdentityType.Jwt:
            ok = identity.primary == b"good.jwt.sig"
            return IdentityDecision.accept(b"ok") if ok else IdentityDecision.reject("bad token")
        return None  # the table decides the others

    signals.OnReceiveUserIdentity.connect(jwt_check)
    try:
        request = _verification_request()
        request.set_jwt("good.jwt.sig", positive_response_requested=True)
        scu, accepted = associate(server, request)
        scu.Close()
        assert accepted.user_identity_response == b"ok"
        request.set_jwt("evil.jwt.sig")
        assert rejection(server, request) == REJECT
        request.set_username("bob", positive_response_requested=True)
        scu, accepted = associate(server, request)
        scu.Close()
        assert accepted.user_identity_response == b""
    finally:
        signals.OnReceiveUserIdentity.disconnect(jwt_check)


def test_requiring_a_response_the_server_does_not_give_fails_clearly() -> None:
    DicomNet.Startup()
    listener = AcceptingServer("SCP", VERIFICATION_ONLY, timeouts=TIMEOUTS)  # no validator
    closed: queue.Queue[object] = queue.Queue()

    def on_close(sender: DicomNet, error: object, net: DicomNet) -> None:
        closed.put(error)

    signals.OnClose.connect(on_close, sender=listener)
    listener.Listen("127.0.0.1", 0, 8)
    try:
        request = _verification_request()
        request.set_username("alice", "s3cret", require_positive_response=True)
        with pytest.raises(UserIdentityNotConfirmed, match="did not confirm the user identity"):
            associate(listener, request)
        closed.get(timeout=WAIT)  # the server's side of the association ended too
        assert listener.GetClientCount() == 0
    finally:
        listener.Dispose()
        DicomNet.Shutdown()


# -- the samples' options -----------------------------------------------------------------


@pytest.fixture
def options(monkeypatch: pytest.MonkeyPatch) -> Any:
    # A sample run as a program has its folder first on sys.path; do the same here.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "samples"))
    return importlib.import_module("identity_options")


def scu_args(options: Any, *argv: str) -> Any:
    parser = argparse.ArgumentParser()
    options.add_identity_options(parser)
    return parser.parse_args(list(argv))


def test_scu_identity_options_parse_like_dcmtk(options: Any, tmp_path: Path) -> None:
    args = scu_args(options, "-usr", "alice", "-pwd", "s3cret", "-rsp")
    assert options.identity_from(args) == UserIdentity.username_and_passcode("alice", "s3cret")
    assert args.pos_response
    assert options.identity_from(scu_args(options, "-usr", "bob")) == UserIdentity.username("bob")
    empty = options.identity_from(scu_args(options, "-usr", "bob", "-epw"))
    assert empty == UserIdentity.username_and_passcode("bob", "")
    token = tmp_path / "token"
    token.write_bytes(b"a.b.c\n")
    assert options.identity_from(scu_args(options, "--jwt", str(token))) == UserIdentity.jwt(
        "a.b.c"
    )
    ticket = tmp_path / "ticket"
    ticket.write_bytes(b"\x00\x01\n")
    kerberos = options.identity_from(scu_args(options, "-kt", str(ticket)))
    assert kerberos == UserIdentity.kerberos(b"\x00\x01\n")  # binary: kept as it is
    assert options.identity_from(scu_args(options)) is None
    for bad in (["-pwd", "x"], ["-rsp"]):
        with pytest.raises(DicomException):
            options.identity_from(scu_args(options, *bad))
    for unusable in (["-usr", "a", "--jwt", str(token)], ["--saml", str(tmp_path / "missing")]):
        with pytest.raises(SystemExit):
            scu_args(options, *unusable)
    request = _verification_request()
    options.apply_identity(request, UserIdentity.username("bob"), True)
    assert request.require_user_identity_response
    assert request.user_identity == UserIdentityRQ(1, True, b"bob", b"")


def test_scp_access_options(options: Any, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:s3cret\n")
    parser = argparse.ArgumentParser()
    options.add_access_options(parser)
    args = parser.parse_args(
        ["--user-file", str(users), "--deny-calling", "EVIL", "--deny-calling", "WORSE"]
        + ["--allow-peer", "10.0.0.0/8", "--max-associations", "3"]
    )
    settings = options.access_settings(args)
    assert settings["identity"].required and "alice" in settings["identity"].validator
    access = settings["access_control"]
    assert access.denied_calling == {"EVIL", "WORSE"} and access.max_associations == 3
    assert access.peer_allowed("10.1.1.1") and not access.peer_allowed("192.0.2.1")
    assert options.access_settings(parser.parse_args([]))["identity"] is None
    users.write_text("alice\nalice\n")
    for bad in (["--user-file", str(users)], ["--allow-peer", "10.0.0.1/8"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
