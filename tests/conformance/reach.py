"""How the raw peer brings each dicomnet role into each state of PS3.8 Table 9-10.

Each entry is a script prefix that ends with dicomnet in that state, checked; the local
user's primitives it uses (accepting, releasing) are ``local`` steps. Where ARTIM runs
at the end of a prefix (Sta2, Sta13), half of it has already passed, so a test can tell
a restarted timer from one left running.
"""

from __future__ import annotations

from collections.abc import Mapping

from script import (
    A_RELEASE_RP,
    A_RELEASE_RQ,
    ARTIM,
    ASSOCIATE_AC,
    ASSOCIATE_RQ,
    TYPE_ASSOCIATE_AC,
    TYPE_ASSOCIATE_RQ,
    Recorder,
    Role,
    Script,
)

from dicomnet import AcceptPolicy, DicomAssociate, build_accept
from dicomnet.fsm import State
from dicomnet.uids import IMPLICIT_VR_LE, VERIFICATION

SCP, SCU = Role.SCP, Role.SCU
S = State


def accept(net: Recorder) -> None:
    assert net.request is not None
    policy = AcceptPolicy(supported={VERIFICATION: [IMPLICIT_VR_LE]})
    net.SendAssociateAccept(build_accept(net.request, policy))


def request(net: Recorder) -> None:
    rq = DicomAssociate(True)
    rq.Called, rq.Calling, rq.MaxLength = "RAWPEER", "UNDERTEST", 16384
    rq.AddPresentationContext(1, 0, VERIFICATION)
    rq.AddTransfer(1, IMPLICIT_VR_LE)
    net.SendAssociateRequest(rq)


def release(net: Recorder) -> None:
    net.SendReleaseRequest()


def answer_release(net: Recorder) -> None:
    net.SendReleaseResponse()


def echo(net: Recorder) -> None:
    net.SendCEchoRequest(1, 1, VERIFICATION)


_scp_sta2 = Script(SCP).connect().wait(ARTIM / 2).expect_state(S.Sta2)
_scp_sta3 = (
    _scp_sta2.send(ASSOCIATE_RQ, "A-ASSOCIATE-RQ")
    .expect_calls(("OnReceiveAssociateRequest",))
    .expect_state(S.Sta3)
)
_scp_sta6 = (
    _scp_sta3.local("SendAssociateAccept", accept)
    .expect(TYPE_ASSOCIATE_AC, "A-ASSOCIATE-AC")
    .expect_state(S.Sta6)
)
_scp_sta7 = (
    _scp_sta6.local("SendReleaseRequest", release)
    .expect(A_RELEASE_RQ, "A-RELEASE-RQ")
    .expect_state(S.Sta7)
)
_scp_sta8 = (
    _scp_sta6.send(A_RELEASE_RQ, "A-RELEASE-RQ")
    .expect_calls(("OnReceiveReleaseRequest",))
    .expect_state(S.Sta8)
)
_scp_sta10 = (  # release collision, dicomnet the association-acceptor
    _scp_sta7.send(A_RELEASE_RQ, "A-RELEASE-RQ")
    .expect_calls(("OnReceiveReleaseRequest",))
    .expect_state(S.Sta10)
)
_scp_sta12 = (
    _scp_sta10.send(A_RELEASE_RP, "A-RELEASE-RP")
    .expect_calls(("OnReceiveReleaseResponse",))
    .expect_state(S.Sta12)
)
_scp_sta13 = (
    _scp_sta8.local("SendReleaseResponse", answer_release)
    .expect(A_RELEASE_RP, "A-RELEASE-RP")
    .wait(ARTIM / 2)
    .expect_state(S.Sta13)
)

# A requestor that is connected but has not sent its A-ASSOCIATE-RQ has no place in
# Table 9-10 (its Sta4 ends by sending it); dicomnet's engine is then in Sta1.
_scu_sta1 = Script(SCU).connect().expect_nothing().expect_state(S.Sta1)
_scu_sta5 = (
    _scu_sta1.local("SendAssociateRequest", request)
    .expect(TYPE_ASSOCIATE_RQ, "A-ASSOCIATE-RQ")
    .expect_state(S.Sta5)
)
_scu_sta6 = (
    _scu_sta5.send(ASSOCIATE_AC, "A-ASSOCIATE-AC")
    .expect_calls(("OnReceiveAssociateAccept",))
    .expect_state(S.Sta6)
)
_scu_sta7 = (
    _scu_sta6.local("SendReleaseRequest", release)
    .expect(A_RELEASE_RQ, "A-RELEASE-RQ")
    .expect_state(S.Sta7)
)
_scu_sta8 = (
    _scu_sta6.send(A_RELEASE_RQ, "A-RELEASE-RQ")
    .expect_calls(("OnReceiveReleaseRequest",))
    .expect_state(S.Sta8)
)
_scu_sta9 = (  # release collision, dicomnet the association-requestor
    _scu_sta7.send(A_RELEASE_RQ, "A-RELEASE-RQ")
    .expect_calls(("OnReceiveReleaseRequest",))
    .expect_state(S.Sta9)
)
_scu_sta11 = (
    _scu_sta9.local("SendReleaseResponse", answer_release)
    .expect(A_RELEASE_RP, "A-RELEASE-RP")
    .expect_state(S.Sta11)
)
_scu_sta13 = (
    _scu_sta8.local("SendReleaseResponse", answer_release)
    .expect(A_RELEASE_RP, "A-RELEASE-RP")
    .wait(ARTIM / 2)
    .expect_state(S.Sta13)
)

REACH: Mapping[tuple[Role, State], Script] = {
    (SCP, S.Sta2): _scp_sta2,
    (SCP, S.Sta3): _scp_sta3,
    (SCP, S.Sta6): _scp_sta6,
    (SCP, S.Sta7): _scp_sta7,
    (SCP, S.Sta8): _scp_sta8,
    (SCP, S.Sta10): _scp_sta10,
    (SCP, S.Sta12): _scp_sta12,
    (SCP, S.Sta13): _scp_sta13,
    (SCU, S.Sta1): _scu_sta1,
    (SCU, S.Sta5): _scu_sta5,
    (SCU, S.Sta6): _scu_sta6,
    (SCU, S.Sta7): _scu_sta7,
    (SCU, S.Sta8): _scu_sta8,
    (SCU, S.Sta9): _scu_sta9,
    (SCU, S.Sta11): _scu_sta11,
    (SCU, S.Sta13): _scu_sta13,
}


def reach(role: Role, state: State) -> Script:
    return REACH[role, state]


def roles_reaching(*states: State) -> list[tuple[Role, State]]:
    """Every (role, state) of ``states`` that a prefix above reaches."""
    return [(role, state) for state in states for role in Role if (role, state) in REACH]
