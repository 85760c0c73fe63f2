"""Tests for dicomnet.fsm against PS3.8 9.2 (Tables 9-6 to 9-10).

Table 9-10 is transcribed again below in the standard's own layout (events as rows,
states as columns), so a slip in either transcription shows up as a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.errors import DicomException
from dicomnet.fsm import (
    TRANSITIONS,
    Action,
    Effect,
    Event,
    InvalidTransition,
    State,
    StateMachine,
    Transition,
    transition,
)

# PS3.8 Table 9-10; "." is an empty cell.
TABLE_9_10 = """
       Sta1 Sta2 Sta3 Sta4 Sta5 Sta6 Sta7 Sta8 Sta9 Sta10 Sta11 Sta12 Sta13
Evt1   AE-1 .    .    .    .    .    .    .    .    .     .     .     .
Evt2   .    .    .    AE-2 .    .    .    .    .    .     .     .     .
Evt3   .    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt4   .    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt5   AE-5 .    .    .    .    .    .    .    .    .     .     .     .
Evt6   .    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
Evt7   .    .    AE-7 .    .    .    .    .    .    .     .     .     .
Evt8   .    .    AE-8 .    .    .    .    .    .    .     .     .     .
Evt9   .    .    .    .    .    DT-1 .    AR-7 .    .     .     .     .
Evt10  .    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt11  .    .    .    .    .    AR-1 .    .    .    .     .     .     .
Evt12  .    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt13  .    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3  AA-8  AA-6
Evt14  .    .    .    .    .    .    .    AR-4 AR-9 .     .     AR-4  .
Evt15  .    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1  AA-1  .
Evt16  .    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3  AA-3  AA-2
Evt17  .    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4  AA-4  AR-5
Evt18  .    AA-2 .    .    .    .    .    .    .    .     .     .     AA-2
Evt19  .    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
"""


def parse_grid(text: str) -> dict[tuple[str, str], str]:
    header, *rows = text.strip().splitlines()
    states = header.split()
    cells: dict[tuple[str, str], str] = {}
    for row in rows:
        event, *actions = row.split()
        assert len(actions) == len(states), f"row {event} has {len(actions)} cells"
        cells.update(
            {(state, event): action for state, action in zip(states, actions, strict=True)}
        )
    return cells


GRID = parse_grid(TABLE_9_10)
DEFINED = sorted((State[s], Event[e]) for (s, e), cell in GRID.items() if cell != ".")
EMPTY = sorted((State[s], Event[e]) for (s, e), cell in GRID.items() if cell == ".")

E = Effect

# PS3.8 Tables 9-6 to 9-9: for each action, what it does (in the order of its text) and
# the state it leads to. AE-6 and AR-8 depend on a condition and are tested separately.
ACTION_TEXT: dict[str, tuple[tuple[Effect, ...], str]] = {
    "AE-1": ((E.CONNECT_TRANSPORT,), "Sta4"),
    "AE-2": ((E.SEND_ASSOCIATE_RQ,), "Sta5"),
    "AE-3": ((E.INDICATE_ASSOCIATE_ACCEPT,), "Sta6"),
    "AE-4": ((E.INDICATE_ASSOCIATE_REJECT, E.CLOSE_TRANSPORT), "Sta1"),
    "AE-5": ((E.ACCEPT_TRANSPORT, E.START_ARTIM), "Sta2"),
    "AE-7": ((E.SEND_ASSOCIATE_AC,), "Sta6"),
    "AE-8": ((E.SEND_ASSOCIATE_RJ, E.START_ARTIM), "Sta13"),
    "DT-1": ((E.SEND_PDATA,), "Sta6"),
    "DT-2": ((E.INDICATE_PDATA,), "Sta6"),
    "AR-1": ((E.SEND_RELEASE_RQ,), "Sta7"),
    "AR-2": ((E.INDICATE_RELEASE_REQUEST,), "Sta8"),
    "AR-3": ((E.INDICATE_RELEASE_CONFIRM, E.CLOSE_TRANSPORT), "Sta1"),
    "AR-4": ((E.SEND_RELEASE_RP, E.START_ARTIM), "Sta13"),
    "AR-5": ((E.STOP_ARTIM,), "Sta1"),
    "AR-6": ((E.INDICATE_PDATA,), "Sta7"),
    "AR-7": ((E.SEND_PDATA,), "Sta8"),
    "AR-9": ((E.SEND_RELEASE_RP,), "Sta11"),
    "AR-10": ((E.INDICATE_RELEASE_CONFIRM,), "Sta12"),
    "AA-1": ((E.SEND_ABORT_USER, E.START_ARTIM), "Sta13"),
    "AA-2": ((E.STOP_ARTIM, E.CLOSE_TRANSPORT), "Sta1"),
    "AA-3": ((E.INDICATE_ABORT, E.CLOSE_TRANSPORT), "Sta1"),
    "AA-4": ((E.INDICATE_PROVIDER_ABORT,), "Sta1"),
    "AA-5": ((E.STOP_ARTIM,), "Sta1"),
    "AA-6": ((E.IGNORE_PDU,), "Sta13"),
    "AA-7": ((E.SEND_ABORT_PROVIDER_UNEXPECTED,), "Sta13"),
    "AA-8": ((E.SEND_ABORT_PROVIDER, E.INDICATE_PROVIDER_ABORT, E.START_ARTIM), "Sta13"),
}

# Event sequences from Sta1 to each state (Sta8, Sta10, Sta12 and Sta13 as the acceptor).
REQUESTOR_STA6 = [Event.Evt1, Event.Evt2, Event.Evt3]
ACCEPTOR_STA6 = [Event.Evt5, Event.Evt6, Event.Evt7]
PATHS: dict[State, list[Event]] = {
    State.Sta2: [Event.Evt5],
    State.Sta3: [Event.Evt5, Event.Evt6],
    State.Sta4: [Event.Evt1],
    State.Sta5: [Event.Evt1, Event.Evt2],
    State.Sta6: REQUESTOR_STA6,
    State.Sta7: [*REQUESTOR_STA6, Event.Evt11],
    State.Sta8: [*ACCEPTOR_STA6, Event.Evt12],
    State.Sta9: [*REQUESTOR_STA6, Event.Evt11, Event.Evt12],
    State.Sta10: [*ACCEPTOR_STA6, Event.Evt11, Event.Evt12],
    State.Sta11: [*REQUESTOR_STA6, Event.Evt11, Event.Evt12, Event.Evt14],
    State.Sta12: [*ACCEPTOR_STA6, Event.Evt11, Event.Evt12, Event.Evt13],
    State.Sta13: [Event.Evt5, Event.Evt6, Event.Evt8],
}
# States with an association requested or established: where aborts apply.
ASSOCIATION_STATES = [State.Sta3, *(State(n) for n in range(5, 13))]


def machine_in(state: State) -> StateMachine:
    machine = StateMachine()
    for event in PATHS[state]:
        machine.handle(event)
    assert machine.state is state
    return machine


def walk(machine: StateMachine, steps: Iterable[tuple[Event, State]]) -> list[Transition]:
    """Feed events, checking the state after each; return the transitions taken."""
    taken = []
    for event, expected_state in steps:
        taken.append(machine.handle(event))
        assert machine.state is expected_state, f"after {event.name}"
    return taken


# --- Table 9-10, cell by cell ---------------------------------------------------------


def test_grid_has_the_standards_shape() -> None:
    assert len(GRID) == 19 * 13
    assert len(DEFINED) == 123
    assert {cell for cell in GRID.values() if cell != "."} == {a.value for a in Action}
    assert set(ACTION_TEXT) | {"AE-6", "AR-8"} == {a.value for a in Action}
    assert len(UNCONDITIONAL) == 121  # all but Sta2/Evt6 (AE-6) and Sta7/Evt12 (AR-8)


def test_transitions_has_exactly_the_defined_cells() -> None:
    assert len(TRANSITIONS) == 123
    assert set(TRANSITIONS) == set(DEFINED)


@pytest.mark.parametrize(("state", "event"), DEFINED)
def test_defined_cell_matches_table_9_10(state: State, event: Event) -> None:
    expected = GRID[(state.name, event.name)]
    assert TRANSITIONS[(state, event)].value == expected
    for is_requestor in (False, True):
        for acceptable in (False, True):
            step = transition(
                state, event, is_requestor=is_requestor, request_acceptable=acceptable
            )
            assert (step.state, step.event, step.action.value) == (state, event, expected)


@pytest.mark.parametrize(("state", "event"), EMPTY)
def test_empty_cell_raises_and_keeps_state(state: State, event: Event) -> None:
    with pytest.raises(InvalidTransition) as info:
        transition(state, event)
    assert (info.value.state, info.value.event) == (state, event)

    machine = machine_in(state) if state in PATHS else StateMachine()
    role = machine.is_requestor
    assert not machine.can_handle(event)
    with pytest.raises(InvalidTransition):
        machine.handle(event)
    assert machine.state is state
    assert machine.is_requestor is role


def test_table_agrees_with_pynetdicom() -> None:
    # A third, independent transcription of Table 9-10.
    from pynetdicom.fsm import TRANSITION_TABLE

    ours = {
        (event.name, state.name): action.value for (state, event), action in TRANSITIONS.items()
    }
    assert ours == TRANSITION_TABLE


def test_no_artim_expiry_in_sta5_or_sta7() -> None:
    # DCMTK's extra cells are deliberately absent: the caller aborts with Evt15 instead.
    for state in (State.Sta5, State.Sta7):
        machine = machine_in(state)
        assert not machine.can_handle(Event.Evt18)
        assert machine.handle(Event.Evt15).action is Action.AA_1


# --- actions --------------------------------------------------------------------------


UNCONDITIONAL = [cell for cell in DEFINED if GRID[(cell[0].name, cell[1].name)] in ACTION_TEXT]


@pytest.mark.parametrize(("state", "event"), UNCONDITIONAL)
def test_action_effects_and_next_state(state: State, event: Event) -> None:
    action = GRID[(state.name, event.name)]
    effects, next_state = ACTION_TEXT[action]
    step = transition(state, event)
    assert step.effects == effects
    assert step.next_state.name == next_state


def test_ae_6_acceptable_request_is_indicated() -> None:
    step = transition(State.Sta2, Event.Evt6, request_acceptable=True)
    assert step.action is Action.AE_6
    assert step.effects == (E.STOP_ARTIM, E.INDICATE_ASSOCIATE_REQUEST)
    assert step.next_state is State.Sta3


def test_ae_6_unacceptable_request_is_rejected_and_artim_restarted() -> None:
    step = transition(State.Sta2, Event.Evt6, request_acceptable=False)
    assert step.action is Action.AE_6
    assert step.effects == (E.STOP_ARTIM, E.SEND_ASSOCIATE_RJ, E.START_ARTIM)
    assert step.next_state is State.Sta13


@pytest.mark.parametrize(("is_requestor", "next_state"), [(True, "Sta9"), (False, "Sta10")])
def test_ar_8_release_collision_depends_on_role(is_requestor: bool, next_state: str) -> None:
    step = transition(State.Sta7, Event.Evt12, is_requestor=is_requestor)
    assert step.action is Action.AR_8
    assert step.effects == (E.INDICATE_RELEASE_REQUEST,)
    assert step.next_state.name == next_state


def test_request_acceptable_only_matters_for_ae_6() -> None:
    for state, event in DEFINED:
        if (state, event) != (State.Sta2, Event.Evt6):
            assert transition(state, event, request_acceptable=False) == transition(state, event)


def test_role_only_matters_for_ar_8() -> None:
    for state, event in DEFINED:
        if (state, event) != (State.Sta7, Event.Evt12):
            assert transition(state, event, is_requestor=True) == transition(
                state, event, is_requestor=False
            )


# --- walk-throughs --------------------------------------------------------------------


def test_requestor_association_data_and_release() -> None:
    machine = StateMachine()
    taken = walk(
        machine,
        [
            (Event.Evt1, State.Sta4),
            (Event.Evt2, State.Sta5),
            (Event.Evt3, State.Sta6),
            (Event.Evt9, State.Sta6),
            (Event.Evt10, State.Sta6),
            (Event.Evt11, State.Sta7),
            (Event.Evt10, State.Sta7),  # the peer may still send data before its RP
            (Event.Evt13, State.Sta1),
        ],
    )
    assert machine.is_requestor
    assert [step.effects for step in taken] == [
        (E.CONNECT_TRANSPORT,),
        (E.SEND_ASSOCIATE_RQ,),
        (E.INDICATE_ASSOCIATE_ACCEPT,),
        (E.SEND_PDATA,),
        (E.INDICATE_PDATA,),
        (E.SEND_RELEASE_RQ,),
        (E.INDICATE_PDATA,),
        (E.INDICATE_RELEASE_CONFIRM, E.CLOSE_TRANSPORT),
    ]


def test_acceptor_association_data_and_release() -> None:
    machine = StateMachine(is_requestor=True)
    taken = walk(
        machine,
        [
            (Event.Evt5, State.Sta2),
            (Event.Evt6, State.Sta3),
            (Event.Evt7, State.Sta6),
            (Event.Evt10, State.Sta6),
            (Event.Evt9, State.Sta6),
            (Event.Evt12, State.Sta8),
            (Event.Evt9, State.Sta8),  # the acceptor may still send data before its RP
            (Event.Evt14, State.Sta13),
            (Event.Evt17, State.Sta1),
        ],
    )
    assert not machine.is_requestor
    assert [step.action for step in taken] == [
        Action.AE_5,
        Action.AE_6,
        Action.AE_7,
        Action.DT_2,
        Action.DT_1,
        Action.AR_2,
        Action.AR_7,
        Action.AR_4,
        Action.AR_5,
    ]
    assert taken[-2].effects == (E.SEND_RELEASE_RP, E.START_ARTIM)
    assert taken[-1].effects == (E.STOP_ARTIM,)


def test_requestor_is_rejected() -> None:
    machine = machine_in(State.Sta5)
    step = machine.handle(Event.Evt4)
    assert (step.action, machine.state) == (Action.AE_4, State.Sta1)
    assert step.effects == (E.INDICATE_ASSOCIATE_REJECT, E.CLOSE_TRANSPORT)


def test_acceptor_user_rejects_then_peer_closes() -> None:
    machine = machine_in(State.Sta3)
    reject, closed = walk(machine, [(Event.Evt8, State.Sta13), (Event.Evt17, State.Sta1)])
    assert reject.effects == (E.SEND_ASSOCIATE_RJ, E.START_ARTIM)
    assert closed.action is Action.AR_5


def test_acceptor_provider_rejects_then_artim_expires() -> None:
    machine = machine_in(State.Sta2)
    reject = machine.handle(Event.Evt6, request_acceptable=False)
    assert machine.state is State.Sta13
    assert E.SEND_ASSOCIATE_RJ in reject.effects
    expiry = machine.handle(Event.Evt18)
    assert (expiry.action, machine.state) == (Action.AA_2, State.Sta1)
    assert expiry.effects == (E.STOP_ARTIM, E.CLOSE_TRANSPORT)


@pytest.mark.parametrize("state", ASSOCIATION_STATES)
def test_local_abort_then_artim_expiry(state: State) -> None:
    machine = machine_in(state)
    abort, expiry = walk(machine, [(Event.Evt15, State.Sta13), (Event.Evt18, State.Sta1)])
    assert abort.effects == (E.SEND_ABORT_USER, E.START_ARTIM)
    assert expiry.effects == (E.STOP_ARTIM, E.CLOSE_TRANSPORT)


@pytest.mark.parametrize("state", ASSOCIATION_STATES)
def test_local_abort_then_peer_closes(state: State) -> None:
    machine = machine_in(state)
    walk(machine, [(Event.Evt15, State.Sta13), (Event.Evt10, State.Sta13)])
    assert machine.handle(Event.Evt17).effects == (E.STOP_ARTIM,)
    assert machine.state is State.Sta1


@pytest.mark.parametrize("state", ASSOCIATION_STATES)
def test_peer_abort(state: State) -> None:
    machine = machine_in(state)
    step = machine.handle(Event.Evt16)
    assert (step.action, machine.state) == (Action.AA_3, State.Sta1)
    assert step.effects == (E.INDICATE_ABORT, E.CLOSE_TRANSPORT)


@pytest.mark.parametrize("state", [State.Sta4, *ASSOCIATION_STATES])
def test_transport_lost(state: State) -> None:
    machine = machine_in(state)
    step = machine.handle(Event.Evt17)
    assert (step.action, machine.state) == (Action.AA_4, State.Sta1)
    assert step.effects == (E.INDICATE_PROVIDER_ABORT,)


@pytest.mark.parametrize("state", ASSOCIATION_STATES)
def test_invalid_pdu_provider_abort(state: State) -> None:
    machine = machine_in(state)
    step = machine.handle(Event.Evt19)
    assert (step.action, machine.state) == (Action.AA_8, State.Sta13)
    assert step.effects == (E.SEND_ABORT_PROVIDER, E.INDICATE_PROVIDER_ABORT, E.START_ARTIM)


def test_local_abort_while_connecting_closes_without_a_pdu() -> None:
    machine = machine_in(State.Sta4)
    step = machine.handle(Event.Evt15)
    assert (step.action, machine.state) == (Action.AA_2, State.Sta1)
    assert not any(effect.name.startswith("SEND_") for effect in step.effects)


def test_release_collision_requestor_side() -> None:
    machine = machine_in(State.Sta6)
    assert machine.is_requestor
    taken = walk(
        machine,
        [
            (Event.Evt11, State.Sta7),
            (Event.Evt12, State.Sta9),
            (Event.Evt14, State.Sta11),
            (Event.Evt13, State.Sta1),
        ],
    )
    assert [step.action for step in taken] == [Action.AR_1, Action.AR_8, Action.AR_9, Action.AR_3]
    assert taken[-1].effects == (E.INDICATE_RELEASE_CONFIRM, E.CLOSE_TRANSPORT)


def test_release_collision_acceptor_side() -> None:
    machine = StateMachine()
    for event in ACCEPTOR_STA6:
        machine.handle(event)
    assert not machine.is_requestor
    taken = walk(
        machine,
        [
            (Event.Evt11, State.Sta7),
            (Event.Evt12, State.Sta10),
            (Event.Evt13, State.Sta12),
            (Event.Evt14, State.Sta13),
        ],
    )
    assert [step.action for step in taken] == [Action.AR_1, Action.AR_8, Action.AR_10, Action.AR_4]
    assert taken[-1].effects == (E.SEND_RELEASE_RP, E.START_ARTIM)


def test_artim_expiry_in_sta2() -> None:
    machine = machine_in(State.Sta2)
    step = machine.handle(Event.Evt18)
    assert (step.action, machine.state) == (Action.AA_2, State.Sta1)
    assert step.effects == (E.STOP_ARTIM, E.CLOSE_TRANSPORT)


def test_artim_expiry_in_sta13() -> None:
    machine = machine_in(State.Sta13)
    step = machine.handle(Event.Evt18)
    assert (step.action, machine.state) == (Action.AA_2, State.Sta1)
    assert step.effects == (E.STOP_ARTIM, E.CLOSE_TRANSPORT)


@pytest.mark.parametrize("event", [Event.Evt6, Event.Evt19])
def test_sta13_answers_request_or_invalid_pdu_with_abort(event: Event) -> None:
    machine = machine_in(State.Sta13)
    step = machine.handle(event)
    assert (step.action, machine.state) == (Action.AA_7, State.Sta13)
    assert step.effects == (E.SEND_ABORT_PROVIDER_UNEXPECTED,)


@pytest.mark.parametrize("event", [Event.Evt3, Event.Evt4, Event.Evt10, Event.Evt12, Event.Evt13])
def test_sta13_ignores_other_pdus(event: Event) -> None:
    machine = machine_in(State.Sta13)
    assert machine.handle(event).effects == (E.IGNORE_PDU,)
    assert machine.state is State.Sta13


@pytest.mark.parametrize("event", [Event.Evt3, Event.Evt4, Event.Evt10, Event.Evt12, Event.Evt13])
def test_unexpected_pdu_before_request_gets_user_abort(event: Event) -> None:
    machine = machine_in(State.Sta2)
    step = machine.handle(event)
    assert (step.action, machine.state) == (Action.AA_1, State.Sta13)
    assert step.effects == (E.SEND_ABORT_USER, E.START_ARTIM)


# --- the StateMachine object ----------------------------------------------------------


def test_starts_idle_with_the_given_role() -> None:
    assert StateMachine().state is State.Sta1
    assert StateMachine(is_requestor=True).is_requestor
    assert not StateMachine().is_requestor


def test_starting_an_association_sets_the_role() -> None:
    requestor = StateMachine(is_requestor=False)
    requestor.handle(Event.Evt1)
    assert requestor.is_requestor
    acceptor = StateMachine(is_requestor=True)
    acceptor.handle(Event.Evt5)
    assert not acceptor.is_requestor


def test_role_is_fixed_during_an_association() -> None:
    machine = StateMachine()
    machine.is_requestor = True
    machine.handle(Event.Evt1)
    with pytest.raises(DicomException):
        machine.is_requestor = False
    assert machine.is_requestor
    machine.handle(Event.Evt17)  # connection refused: AA-4 back to Sta1
    machine.is_requestor = False
    assert not machine.is_requestor


def test_invalid_transition_names_state_and_event() -> None:
    machine = StateMachine()
    with pytest.raises(InvalidTransition) as info:
        machine.handle(Event.Evt9)
    assert isinstance(info.value, DicomException)
    assert "Sta1" in str(info.value)
    assert "Evt9" in str(info.value)


def test_every_state_is_reachable_from_idle() -> None:
    reached = {State.Sta1}
    frontier = [State.Sta1]
    while frontier:
        state = frontier.pop()
        for event in Event:
            for role in (False, True):
                for acceptable in (False, True):
                    if (state, event) not in TRANSITIONS:
                        continue
                    step = transition(
                        state, event, is_requestor=role, request_acceptable=acceptable
                    )
                    if step.next_state not in reached:
                        reached.add(step.next_state)
                        frontier.append(step.next_state)
    assert reached == set(State)


# --- properties over random event sequences -------------------------------------------


class FakeCaller:
    """Carries out effects the way a connection would, to check they stay coherent."""

    def __init__(self) -> None:
        self.transport = "closed"  # closed / connecting / open
        self.artim_running = False

    def apply(self, step: Transition) -> None:
        # Events from the transport service change it before any action runs.
        if step.event is Event.Evt2:
            self.transport = "open"
        elif step.event is Event.Evt17:
            self.transport = "closed"
        for effect in step.effects:
            if effect.name.startswith("SEND_"):
                assert self.transport == "open", f"{step.action.value} sends on a dead link"
            if effect is E.CONNECT_TRANSPORT:
                self.transport = "connecting"
            elif effect is E.ACCEPT_TRANSPORT:
                self.transport = "open"
            elif effect is E.CLOSE_TRANSPORT:
                self.transport = "closed"
            elif effect is E.START_ARTIM:
                self.artim_running = True
            elif effect is E.STOP_ARTIM:
                self.artim_running = False

    def check(self, state: State) -> None:
        # ARTIM runs exactly in Sta2 (awaiting the RQ) and Sta13 (awaiting the close).
        assert self.artim_running == (state in (State.Sta2, State.Sta13)), state.name
        expected_transport = {State.Sta1: "closed", State.Sta4: "connecting"}
        assert self.transport == expected_transport.get(state, "open"), state.name


# Walks of up to 80 steps: their wall time on a busy machine is not what is tested.
@settings(deadline=None)
@given(
    st.booleans(),
    st.lists(st.tuples(st.sampled_from(Event), st.booleans()), max_size=80),
)
def test_random_events_raise_or_keep_a_coherent_state(
    initial_role: bool, events: list[tuple[Event, bool]]
) -> None:
    machine = StateMachine(is_requestor=initial_role)
    caller = FakeCaller()
    for event, acceptable in events:
        before = machine.state
        if not machine.can_handle(event):
            with pytest.raises(InvalidTransition):
                machine.handle(event, request_acceptable=acceptable)
            assert machine.state is before
            continue
        step = machine.handle(event, request_acceptable=acceptable)
        assert (step.state, step.event, machine.state) == (before, event, step.next_state)
        assert isinstance(machine.state, State)
        caller.apply(step)
        caller.check(machine.state)


@settings(deadline=None)
@given(st.data())
def test_random_valid_walks_keep_a_coherent_state(data: st.DataObject) -> None:
    # Drawing only defined events reaches the release and collision states far more often.
    machine = StateMachine()
    caller = FakeCaller()
    for _ in range(data.draw(st.integers(1, 60))):
        valid = [event for event in Event if machine.can_handle(event)]
        event = data.draw(st.sampled_from(valid))
        step = machine.handle(event, request_acceptable=data.draw(st.booleans()))
        caller.apply(step)
        caller.check(machine.state)
