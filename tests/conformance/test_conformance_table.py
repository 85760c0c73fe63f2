"""PS3.8 Table 9-10, cell by cell, for every event a remote peer causes.

Each test brings dicomnet (as SCP, as SCU, or both) into a state with the prefixes of
``reach.py``, makes the remote peer cause one event, and checks the action the standard
prescribes for the cell (PS3.8 9.2.2, Tables 9-6 to 9-9): the PDU sent with its fields,
the callback raised (the indication to the local user), the next state, ARTIM started,
restarted or left alone (by the virtual clock: nothing just before it expires, the
close just after), and the transport closed. The expected actions are written here from
the standard's text, independently of ``dicomnet.fsm``.
"""

from __future__ import annotations

import pytest
from reach import SCP, SCU, echo, reach, release, roles_reaching
from script import (
    A_RELEASE_RP,
    A_RELEASE_RQ,
    ARTIM,
    ASSOCIATE_AC,
    ASSOCIATE_RQ,
    C_ECHO_RQ,
    ECHO_MESSAGE_ID,
    EPSILON,
    HEADER,
    TYPE_P_DATA,
    UNRECOGNIZED_PDU,
    Close,
    Conformance,
    Connect,
    Role,
    Script,
    Send,
    Step,
    Wait,
    abort,
    c_echo_rsp,
    reject,
)

from dicomnet.fsm import Event, State

S, E = State, Event

# The states that exist once an A-ASSOCIATE-RQ went out or came in.
ASSOCIATION_STATES = (S.Sta3, S.Sta5, S.Sta6, S.Sta7, S.Sta8, S.Sta9, S.Sta10, S.Sta11, S.Sta12)

# What the peer sends to cause each PDU event.
REJECT = reject(1, 1, 3)  # permanent, service-user, calling AE title not recognized
STIMULUS: dict[Event, Step] = {
    E.Evt3: Send(ASSOCIATE_AC, "A-ASSOCIATE-AC"),
    E.Evt4: Send(REJECT, "A-ASSOCIATE-RJ (1, 1, 3)"),
    E.Evt6: Send(ASSOCIATE_RQ, "A-ASSOCIATE-RQ"),
    E.Evt10: Send(C_ECHO_RQ, "P-DATA-TF (C-ECHO-RQ)"),
    E.Evt12: Send(A_RELEASE_RQ, "A-RELEASE-RQ"),
    E.Evt13: Send(A_RELEASE_RP, "A-RELEASE-RP"),
    E.Evt16: Send(abort(0, 0), "A-ABORT (0, 0)"),
    E.Evt17: Close(),
    E.Evt19: Send(UNRECOGNIZED_PDU, "a PDU of type 42H"),
}
PDU_EVENTS = (E.Evt3, E.Evt4, E.Evt6, E.Evt10, E.Evt12, E.Evt13, E.Evt19)
# A-ABORT reasons (PS3.8 9.3.8) the provider gives an unexpected or unrecognized PDU.
UNEXPECTED, UNRECOGNIZED = 2, 1


def cases(cells: list[tuple[State, Event]]) -> list[object]:
    """pytest parameters (role, state, event) for every role that reaches the state."""
    return [
        pytest.param(role, state, event, id=f"{role.value}-{state.name}-{event.name}")
        for state, event in cells
        for role, _ in roles_reaching(state)
    ]


def artim_closes(script: Script, remaining: float) -> Script:
    """ARTIM runs with ``remaining`` seconds left: nothing until then, then the close."""
    return (
        script.wait(remaining - EPSILON)
        .expect_nothing()
        .wait(EPSILON)
        .expect_closed()
        .expect_calls(("OnClose",))
    )


def caused(role: Role, state: State, event: Event, how: Step | None = None) -> Script:
    return reach(role, state).cause(state, event, how or STIMULUS[event])


# -- Sta1 and Sta2: before the A-ASSOCIATE-RQ --------------------------------------------


def test_ae5_a_connection_starts_artim(conformance: Conformance) -> None:
    script = Script(SCP).cause(S.Sta1, E.Evt5, Connect()).expect_state(S.Sta2).expect_nothing()
    conformance.run(artim_closes(script, ARTIM))


@pytest.mark.parametrize("version", [b"\x00\x01", b"\x00\x03"], ids=["version-1", "versions-1-2"])
def test_ae6_an_acceptable_request_is_indicated_and_artim_stops(
    conformance: Conformance, version: bytes
) -> None:
    rq = bytearray(ASSOCIATE_RQ)
    rq[6:8] = version  # only bit 0 is tested (PS3.8 9.3.2)
    script = (
        caused(SCP, S.Sta2, E.Evt6, Send(bytes(rq), f"A-ASSOCIATE-RQ, version {version.hex()}"))
        .expect_calls(("OnReceiveAssociateRequest",))
        .expect_state(S.Sta3)
        .wait(ARTIM + EPSILON)
        .expect_nothing()
        .expect_state(S.Sta3)
    )
    conformance.run(script)


def test_ae6_an_unsupported_protocol_version_is_rejected_and_artim_restarts(
    conformance: Conformance,
) -> None:
    version_2 = bytearray(ASSOCIATE_RQ)
    version_2[6:8] = b"\x00\x02"  # bit 0 (version 1) clear
    script = (
        caused(SCP, S.Sta2, E.Evt6, Send(bytes(version_2), "A-ASSOCIATE-RQ, version 2 only"))
        .expect(reject(1, 2, 2), "A-ASSOCIATE-RJ (permanent, ACSE provider, version)")
        .expect_state(S.Sta13)
    )
    conformance.run(artim_closes(script, ARTIM))


AA1_CELLS = [(S.Sta2, event) for event in (E.Evt3, E.Evt4, E.Evt10, E.Evt12, E.Evt13, E.Evt19)]


@pytest.mark.parametrize(("role", "state", "event"), cases(AA1_CELLS))
def test_aa1_a_pdu_other_than_a_request_in_sta2_is_aborted_by_the_user_source(
    conformance: Conformance, role: Role, state: State, event: Event
) -> None:
    script = caused(role, state, event).expect(abort(0, 0), "A-ABORT (0, 0)")
    conformance.run(artim_closes(script.expect_state(S.Sta13), ARTIM))


def test_aa1_an_undecodable_request_in_sta2_is_aborted_by_the_user_source(
    conformance: Conformance,
) -> None:
    broken = bytearray(ASSOCIATE_RQ)
    broken[76:78] = b"\xff\xff"  # the first item's length runs past the PDU's end
    how = Send(bytes(broken), "an A-ASSOCIATE-RQ whose first item overruns it")
    script = caused(SCP, S.Sta2, E.Evt19, how).expect(abort(0, 0), "A-ABORT (0, 0)")
    conformance.run(artim_closes(script.expect_state(S.Sta13), ARTIM))


@pytest.mark.parametrize("event", [E.Evt16, E.Evt17, E.Evt18], ids=lambda e: e.name)
def test_aa2_aa5_sta2_ends_without_a_pdu_or_an_indication(
    conformance: Conformance, event: Event
) -> None:
    if event is E.Evt18:  # ARTIM was started at the connect, half of it has passed
        script = reach(SCP, S.Sta2).wait(ARTIM / 2 - EPSILON).expect_nothing()
        script = script.cause(S.Sta2, event, Wait(EPSILON))
    else:
        script = caused(SCP, S.Sta2, event)
    if event is not E.Evt17:
        script = script.expect_closed()
    conformance.run(script.expect_calls(("OnClose",)).expect_state(S.Sta1))


# -- the association states: AA-8 for what does not belong ---------------------------

# Cells of Table 9-10 in the PDU rows (and Evt19) that are not AA-8 in these states.
NOT_AA8 = {
    (S.Sta5, E.Evt3),  # AE-3
    (S.Sta5, E.Evt4),  # AE-4
    (S.Sta6, E.Evt10),  # DT-2
    (S.Sta7, E.Evt10),  # AR-6
    (S.Sta6, E.Evt12),  # AR-2
    (S.Sta7, E.Evt12),  # AR-8
    (S.Sta7, E.Evt13),  # AR-3
    (S.Sta10, E.Evt13),  # AR-10
    (S.Sta11, E.Evt13),  # AR-3
}
AA8_CELLS = [
    (state, event)
    for event in PDU_EVENTS
    for state in ASSOCIATION_STATES
    if (state, event) not in NOT_AA8
]


@pytest.mark.parametrize(("role", "state", "event"), cases(AA8_CELLS))
def test_aa8_an_unexpected_or_unrecognized_pdu_is_aborted_by_the_provider(
    conformance: Conformance, role: Role, state: State, event: Event
) -> None:
    reason = UNRECOGNIZED if event is E.Evt19 else UNEXPECTED
    script = (
        caused(role, state, event)
        .expect(abort(2, reason), f"A-ABORT (2, {reason})")
        .expect_calls(("OnReceiveAbort", 2, reason))  # the A-P-ABORT indication
        .expect_state(S.Sta13)
    )
    conformance.run(artim_closes(script, ARTIM))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        pytest.param(
            Send(HEADER.pack(0x05, 2_000_000), "an A-RELEASE-RQ header claiming 2 MB"),
            6,
            id="length-beyond-limit",
        ),
        pytest.param(
            Send(HEADER.pack(0x05, 2) + bytes(2), "an A-RELEASE-RQ 2 bytes long"),
            6,
            id="short-release-rq",
        ),
        pytest.param(
            Send(
                HEADER.pack(TYPE_P_DATA, 6) + b"\x00\x00\x00\x02\x09\x03",
                "a PDV on presentation context 9, never proposed",
            ),
            6,
            id="pdv-on-unknown-context",
        ),
    ],
)
@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_aa8_an_invalid_pdu_in_sta6_is_aborted_with_its_reason(
    conformance: Conformance, role: Role, how: Step, reason: int
) -> None:
    script = (
        caused(role, S.Sta6, E.Evt19, how)
        .expect(abort(2, reason), f"A-ABORT (2, {reason})")
        .expect_calls(("OnReceiveAbort", 2, reason))
        .expect_state(S.Sta13)
    )
    conformance.run(artim_closes(script, ARTIM))


@pytest.mark.parametrize(
    ("role", "state", "event"), cases([(state, E.Evt16) for state in ASSOCIATION_STATES])
)
def test_aa3_a_peer_abort_is_indicated_and_closes(
    conformance: Conformance, role: Role, state: State, event: Event
) -> None:
    script = (
        caused(role, state, event)
        .expect_closed()
        .expect_calls(("OnReceiveAbort", 0, 0), ("OnClose",))
        .expect_state(S.Sta1)
    )
    conformance.run(script)


@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_aa3_a_provider_abort_from_the_peer_keeps_its_source_and_reason(
    conformance: Conformance, role: Role
) -> None:
    script = (
        caused(role, S.Sta6, E.Evt16, Send(abort(2, 6), "A-ABORT (2, 6)"))
        .expect_closed()
        .expect_calls(("OnReceiveAbort", 2, 6), ("OnClose",))
    )
    conformance.run(script)


@pytest.mark.parametrize(
    ("role", "state", "event"), cases([(state, E.Evt17) for state in ASSOCIATION_STATES])
)
def test_aa4_a_lost_transport_is_a_provider_abort(
    conformance: Conformance, role: Role, state: State, event: Event
) -> None:
    script = (
        caused(role, state, event)
        .expect_calls(("OnReceiveAbort", 2, 0), ("OnClose",))
        .expect_state(S.Sta1)
    )
    conformance.run(script)


# -- establishment, data transfer and release ------------------------------------------


def test_ae3_an_accept_establishes_the_association(conformance: Conformance) -> None:
    script = (
        caused(SCU, S.Sta5, E.Evt3)
        .expect_calls(("OnReceiveAssociateAccept",))
        .expect_state(S.Sta6)
        .expect_nothing()
    )
    conformance.run(script)


def test_ae4_a_reject_is_indicated_and_closes(conformance: Conformance) -> None:
    script = (
        caused(SCU, S.Sta5, E.Evt4)
        .expect_closed()
        .expect_calls(("OnReceiveAssociateReject", 1, 1, 3), ("OnClose",))
        .expect_state(S.Sta1)
    )
    conformance.run(script)


@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_dt2_data_is_indicated(conformance: Conformance, role: Role) -> None:
    script = (
        caused(role, S.Sta6, E.Evt10)
        .expect_calls(("OnReceiveCEchoRequest", ECHO_MESSAGE_ID))
        .expect_state(S.Sta6)
        .expect_nothing()
    )
    conformance.run(script)


@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_ar6_data_is_indicated_while_awaiting_the_release_response(
    conformance: Conformance, role: Role
) -> None:
    script = (
        reach(role, S.Sta6)
        .local("SendCEchoRequest (message 1)", echo)
        .expect(TYPE_P_DATA, "P-DATA-TF (C-ECHO-RQ)")
        .local("SendReleaseRequest", release)
        .expect(A_RELEASE_RQ, "A-RELEASE-RQ")
        .cause(S.Sta7, E.Evt10, Send(c_echo_rsp(1), "P-DATA-TF (C-ECHO-RSP)"))
        .expect_calls(("OnReceiveCEchoResponse", 1, 0))
        .expect_state(S.Sta7)
        .expect_nothing()
    )
    conformance.run(script)


# Reserved fields are not tested on receipt (PS3.8 9.3.1).
RELEASE_RQ_RESERVED_SET = A_RELEASE_RQ[:1] + b"\xff" + A_RELEASE_RQ[2:6] + b"\xff" * 4


@pytest.mark.parametrize(
    "how",
    [
        STIMULUS[E.Evt12],
        Send(RELEASE_RQ_RESERVED_SET, "A-RELEASE-RQ with its reserved bytes set"),
    ],
    ids=["plain", "reserved-bytes-set"],
)
@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_ar2_a_release_request_is_indicated_and_ar4_answers_it(
    conformance: Conformance, role: Role, how: Step
) -> None:
    script = (
        caused(role, S.Sta6, E.Evt12, how)
        .expect_calls(("OnReceiveReleaseRequest",))
        .expect_state(S.Sta8)
        .expect_nothing()
        .local("SendReleaseResponse", lambda net: net.SendReleaseResponse())
        .expect(A_RELEASE_RP, "A-RELEASE-RP")
        .expect_state(S.Sta13)
    )
    conformance.run(artim_closes(script, ARTIM))


@pytest.mark.parametrize(
    ("role", "next_state"),
    [pytest.param(SCU, S.Sta9, id="SCU-requestor"), pytest.param(SCP, S.Sta10, id="SCP")],
)
def test_ar8_a_release_collision_is_indicated(
    conformance: Conformance, role: Role, next_state: State
) -> None:
    script = (
        caused(role, S.Sta7, E.Evt12)
        .expect_calls(("OnReceiveReleaseRequest",))
        .expect_state(next_state)
        .expect_nothing()
    )
    conformance.run(script)


@pytest.mark.parametrize(("role", "state"), [(SCP, S.Sta7), (SCU, S.Sta7), (SCU, S.Sta11)], ids=str)
def test_ar3_the_release_response_is_confirmed_and_closes(
    conformance: Conformance, role: Role, state: State
) -> None:
    script = (
        caused(role, state, E.Evt13)
        .expect_closed()
        .expect_calls(("OnReceiveReleaseResponse",), ("OnClose",))
        .expect_state(S.Sta1)
    )
    conformance.run(script)


def test_ar10_the_collision_acceptor_confirms_then_answers(conformance: Conformance) -> None:
    script = (
        caused(SCP, S.Sta10, E.Evt13)
        .expect_calls(("OnReceiveReleaseResponse",))
        .expect_state(S.Sta12)
        .expect_nothing()
        .local("SendReleaseResponse", lambda net: net.SendReleaseResponse())
        .expect(A_RELEASE_RP, "A-RELEASE-RP")
        .expect_state(S.Sta13)
    )
    conformance.run(artim_closes(script, ARTIM))


# -- Sta13: waiting for the peer to close -------------------------------------------------

# Half of ARTIM has passed when the prefixes reach Sta13.
STA13_ARTIM_LEFT = ARTIM / 2


@pytest.mark.parametrize(
    ("role", "state", "event"),
    cases([(S.Sta13, event) for event in (E.Evt3, E.Evt4, E.Evt10, E.Evt12, E.Evt13)]),
)
def test_aa6_a_pdu_in_sta13_is_ignored_and_artim_runs_on(
    conformance: Conformance, role: Role, state: State, event: Event
) -> None:
    script = caused(role, state, event).expect_nothing().expect_state(S.Sta13)
    conformance.run(artim_closes(script, STA13_ARTIM_LEFT))


@pytest.mark.parametrize(("role", "state", "event"), cases([(S.Sta13, E.Evt6), (S.Sta13, E.Evt19)]))
def test_aa7_a_request_or_an_unrecognized_pdu_in_sta13_is_aborted(
    conformance: Conformance, role: Role, state: State, event: Event
) -> None:
    script = (
        caused(role, state, event)
        .expect(abort(2, UNEXPECTED), "A-ABORT (2, 2)")
        .expect_nothing()
        .expect_state(S.Sta13)
    )
    conformance.run(artim_closes(script, STA13_ARTIM_LEFT))


@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_aa2_a_peer_abort_in_sta13_closes(conformance: Conformance, role: Role) -> None:
    script = (
        caused(role, S.Sta13, E.Evt16)
        .expect_closed()
        .expect_calls(("OnClose",))
        .expect_state(S.Sta1)
    )
    conformance.run(script)


@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_ar5_the_peer_closing_in_sta13_ends_quietly(conformance: Conformance, role: Role) -> None:
    script = caused(role, S.Sta13, E.Evt17).expect_calls(("OnClose",)).expect_state(S.Sta1)
    conformance.run(script)


@pytest.mark.parametrize("role", [SCP, SCU], ids=lambda r: r.value)
def test_aa2_artim_expiring_in_sta13_closes(conformance: Conformance, role: Role) -> None:
    script = (
        reach(role, S.Sta13)
        .wait(STA13_ARTIM_LEFT - EPSILON)
        .expect_nothing()
        .cause(S.Sta13, E.Evt18, Wait(EPSILON))
        .expect_closed()
        .expect_calls(("OnClose",))
        .expect_state(S.Sta1)
    )
    conformance.run(script)


# -- outside the table: a requestor connected, its A-ASSOCIATE-RQ not yet sent -----------


@pytest.mark.parametrize("event", [*PDU_EVENTS, E.Evt16, E.Evt17], ids=lambda e: e.name)
def test_a_peer_speaking_before_the_request_is_closed_without_a_pdu(
    conformance: Conformance, event: Event
) -> None:
    script = caused(SCU, S.Sta1, event)
    if event is not E.Evt17:
        script = script.expect_closed()
    conformance.run(script.expect_calls(("OnClose",)).expect_state(S.Sta1))
