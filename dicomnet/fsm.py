"""The DICOM upper-layer state machine (PS3.8 9.2), as data.

States, events and actions are those of PS3.8 Tables 9-1 to 9-9; ``_TABLE`` below is
Table 9-10 written row by row (one entry per event, mapping each state in which the event
is defined to its action). The module is pure: no sockets, no clocks, no I/O. Feeding an
event to :func:`transition` (or :class:`StateMachine`) returns a :class:`Transition` whose
``effects`` list, in order, what the caller (the connection) must do: send a PDU, issue a
primitive to the local user, start or stop the ARTIM timer, close the transport.

Conventions for what the standard leaves open:

* AA-1 sends an A-ABORT with source 0 (service-user), reason 0, as its text says, even when
  it answers an unexpected PDU in Sta2 (``Effect.SEND_ABORT_USER``).
* AA-7 sends an A-ABORT with source 2 (service-provider), reason 2 (unexpected PDU)
  (``Effect.SEND_ABORT_PROVIDER_UNEXPECTED``).
* AA-8 sends an A-ABORT with source 2; the caller picks the reason (2 for an unexpected
  PDU, 1 for an unrecognized one, 6 for an invalid one) and gives the A-P-ABORT
  indication the same reason (``Effect.SEND_ABORT_PROVIDER``).
* AA-3 yields ``Effect.INDICATE_ABORT``: the caller reads the received A-ABORT PDU's source
  and issues an A-ABORT indication (source 0) or an A-P-ABORT indication (source 2).
* ARTIM runs exactly while the machine is in Sta2 or Sta13: every action entering one of
  them starts it and every action leaving them stops it (AA-2's "stop if running" makes
  ``STOP_ARTIM`` a no-op when the timer is idle).

Only the 123 cells of Table 9-10 are defined. DCMTK adds ARTIM-expiry cells (Evt18) for
Sta5 and Sta7; this module does not: Sta5 and Sta7 do not run ARTIM, so a caller that
wants to bound the wait for an A-ASSOCIATE-AC/RJ or A-RELEASE-RP PDU uses its own
timeout and then issues a local A-ABORT (Evt15, AA-1), which the table defines there.
An event in an empty cell raises :class:`InvalidTransition` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import NamedTuple

from dicomnet.errors import DicomException, DicomExceptionCode


class State(IntEnum):
    """Upper-layer states (PS3.8 Tables 9-1 to 9-5)."""

    Sta1 = 1
    Sta2 = 2
    Sta3 = 3
    Sta4 = 4
    Sta5 = 5
    Sta6 = 6
    Sta7 = 7
    Sta8 = 8
    Sta9 = 9
    Sta10 = 10
    Sta11 = 11
    Sta12 = 12
    Sta13 = 13

    @property
    def description(self) -> str:
        return STATE_DESCRIPTIONS[self]


class Event(IntEnum):
    """Upper-layer events, numbered as the rows of PS3.8 Table 9-10."""

    Evt1 = 1
    Evt2 = 2
    Evt3 = 3
    Evt4 = 4
    Evt5 = 5
    Evt6 = 6
    Evt7 = 7
    Evt8 = 8
    Evt9 = 9
    Evt10 = 10
    Evt11 = 11
    Evt12 = 12
    Evt13 = 13
    Evt14 = 14
    Evt15 = 15
    Evt16 = 16
    Evt17 = 17
    Evt18 = 18
    Evt19 = 19

    @property
    def description(self) -> str:
        return EVENT_DESCRIPTIONS[self]


class Action(Enum):
    """Upper-layer actions (PS3.8 Tables 9-6 to 9-9); the value is the standard's name."""

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"


class Effect(Enum):
    """One thing an action asks the caller to do; a transition lists them in order."""

    CONNECT_TRANSPORT = "issue TRANSPORT CONNECT request"
    ACCEPT_TRANSPORT = "issue transport connection response"
    SEND_ASSOCIATE_RQ = "send A-ASSOCIATE-RQ PDU"
    SEND_ASSOCIATE_AC = "send A-ASSOCIATE-AC PDU"
    SEND_ASSOCIATE_RJ = "send A-ASSOCIATE-RJ PDU"
    SEND_PDATA = "send P-DATA-TF PDU"
    SEND_RELEASE_RQ = "send A-RELEASE-RQ PDU"
    SEND_RELEASE_RP = "send A-RELEASE-RP PDU"
    SEND_ABORT_USER = "send A-ABORT PDU, source 0, reason 0"
    SEND_ABORT_PROVIDER_UNEXPECTED = "send A-ABORT PDU, source 2, reason 2"
    SEND_ABORT_PROVIDER = "send A-ABORT PDU, source 2, reason chosen by the caller"
    INDICATE_ASSOCIATE_REQUEST = "issue A-ASSOCIATE indication"
    INDICATE_ASSOCIATE_ACCEPT = "issue A-ASSOCIATE confirmation (accept)"
    INDICATE_ASSOCIATE_REJECT = "issue A-ASSOCIATE confirmation (reject)"
    INDICATE_PDATA = "issue P-DATA indication"
    INDICATE_RELEASE_REQUEST = "issue A-RELEASE indication"
    INDICATE_RELEASE_CONFIRM = "issue A-RELEASE confirmation"
    INDICATE_ABORT = "issue A-ABORT or A-P-ABORT indication, per the received PDU's source"
    INDICATE_PROVIDER_ABORT = "issue A-P-ABORT indication"
    START_ARTIM = "start or restart the ARTIM timer"
    STOP_ARTIM = "stop the ARTIM timer if running"
    CLOSE_TRANSPORT = "close the transport connection"
    IGNORE_PDU = "ignore the received PDU"


STATE_DESCRIPTIONS: Mapping[State, str] = MappingProxyType(
    {
        State.Sta1: "Idle",
        State.Sta2: "Transport connection open (awaiting A-ASSOCIATE-RQ PDU)",
        State.Sta3: "Awaiting local A-ASSOCIATE response primitive",
        State.Sta4: "Awaiting transport connection opening to complete",
        State.Sta5: "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
        State.Sta6: "Association established and ready for data transfer",
        State.Sta7: "Awaiting A-RELEASE-RP PDU",
        State.Sta8: "Awaiting local A-RELEASE response primitive",
        State.Sta9: "Release collision requestor side; awaiting A-RELEASE response",
        State.Sta10: "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
        State.Sta11: "Release collision requestor side; awaiting A-RELEASE-RP PDU",
        State.Sta12: "Release collision acceptor side; awaiting A-RELEASE response primitive",
        State.Sta13: "Awaiting transport connection close indication",
    }
)

EVENT_DESCRIPTIONS: Mapping[Event, str] = MappingProxyType(
    {
        Event.Evt1: "A-ASSOCIATE request (local user)",
        Event.Evt2: "Transport connection confirm (local transport service)",
        Event.Evt3: "A-ASSOCIATE-AC PDU received",
        Event.Evt4: "A-ASSOCIATE-RJ PDU received",
        Event.Evt5: "Transport connection indication (local transport service)",
        Event.Evt6: "A-ASSOCIATE-RQ PDU received",
        Event.Evt7: "A-ASSOCIATE response primitive (accept)",
        Event.Evt8: "A-ASSOCIATE response primitive (reject)",
        Event.Evt9: "P-DATA request primitive",
        Event.Evt10: "P-DATA-TF PDU received",
        Event.Evt11: "A-RELEASE request primitive",
        Event.Evt12: "A-RELEASE-RQ PDU received",
        Event.Evt13: "A-RELEASE-RP PDU received",
        Event.Evt14: "A-RELEASE response primitive",
        Event.Evt15: "A-ABORT request primitive",
        Event.Evt16: "A-ABORT PDU received",
        Event.Evt17: "Transport connection closed indication",
        Event.Evt18: "ARTIM timer expired",
        Event.Evt19: "Unrecognized or invalid PDU received",
    }
)

# States that exist only after an A-ASSOCIATE-RQ went out or came in, where a PDU arriving
# out of turn makes the provider abort (AA-8) unless the row says otherwise.
_ASSOCIATION_STATES = (
    State.Sta3,
    State.Sta5,
    State.Sta6,
    State.Sta7,
    State.Sta8,
    State.Sta9,
    State.Sta10,
    State.Sta11,
    State.Sta12,
)


def _each(states: Iterable[State], action: Action) -> dict[State, Action]:
    return dict.fromkeys(states, action)


# PS3.8 Table 9-10, one row per event. In a row, later keys override the `_each` defaults.
_TABLE: Mapping[Event, Mapping[State, Action]] = {
    Event.Evt1: {State.Sta1: Action.AE_1},
    Event.Evt2: {State.Sta4: Action.AE_2},
    Event.Evt3: {
        State.Sta2: Action.AA_1,
        **_each(_ASSOCIATION_STATES, Action.AA_8),
        State.Sta5: Action.AE_3,
        State.Sta13: Action.AA_6,
    },
    Event.Evt4: {
        State.Sta2: Action.AA_1,
        **_each(_ASSOCIATION_STATES, Action.AA_8),
        State.Sta5: Action.AE_4,
        State.Sta13: Action.AA_6,
    },
    Event.Evt5: {State.Sta1: Action.AE_5},
    Event.Evt6: {
        State.Sta2: Action.AE_6,
        **_each(_ASSOCIATION_STATES, Action.AA_8),
        State.Sta13: Action.AA_7,
    },
    Event.Evt7: {State.Sta3: Action.AE_7},
    Event.Evt8: {State.Sta3: Action.AE_8},
    Event.Evt9: {State.Sta6: Action.DT_1, State.Sta8: Action.AR_7},
    Event.Evt10: {
        State.Sta2: Action.AA_1,
        **_each(_ASSOCIATION_STATES, Action.AA_8),
        State.Sta6: Action.DT_2,
        State.Sta7: Action.AR_6,
        State.Sta13: Action.AA_6,
    },
    Event.Evt11: {State.Sta6: Action.AR_1},
    Event.Evt12: {
        State.Sta2: Action.AA_1,
        **_each(_ASSOCIATION_STATES, Action.AA_8),
        State.Sta6: Action.AR_2,
        State.Sta7: Action.AR_8,
        State.Sta13: Action.AA_6,
    },
    Event.Evt13: {
        State.Sta2: Action.AA_1,
        **_each(_ASSOCIATION_STATES, Action.AA_8),
        State.Sta7: Action.AR_3,
        State.Sta10: Action.AR_10,
        State.Sta11: Action.AR_3,
        State.Sta13: Action.AA_6,
    },
    Event.Evt14: {State.Sta8: Action.AR_4, State.Sta9: Action.AR_9, State.Sta12: Action.AR_4},
    Event.Evt15: {**_each(_ASSOCIATION_STATES, Action.AA_1), State.Sta4: Action.AA_2},
    Event.Evt16: {
        State.Sta2: Action.AA_2,
        **_each(_ASSOCIATION_STATES, Action.AA_3),
        State.Sta13: Action.AA_2,
    },
    Event.Evt17: {
        State.Sta2: Action.AA_5,
        **_each(_ASSOCIATION_STATES, Action.AA_4),
        State.Sta4: Action.AA_4,
        State.Sta13: Action.AR_5,
    },
    Event.Evt18: {State.Sta2: Action.AA_2, State.Sta13: Action.AA_2},
    Event.Evt19: {
        State.Sta2: Action.AA_1,
        **_each(_ASSOCIATION_STATES, Action.AA_8),
        State.Sta13: Action.AA_7,
    },
}

TRANSITIONS: Mapping[tuple[State, Event], Action] = MappingProxyType(
    {(state, event): action for event, row in _TABLE.items() for state, action in row.items()}
)


class _Outcome(NamedTuple):
    effects: tuple[Effect, ...]
    next_state: State


_E = Effect

# What each action does (PS3.8 Tables 9-6 to 9-9), in the order the action text gives.
# AE-6 and AR-8 have two outcomes each and are resolved in `_outcome`.
_ACTIONS: Mapping[Action, _Outcome] = {
    Action.AE_1: _Outcome((_E.CONNECT_TRANSPORT,), State.Sta4),
    Action.AE_2: _Outcome((_E.SEND_ASSOCIATE_RQ,), State.Sta5),
    Action.AE_3: _Outcome((_E.INDICATE_ASSOCIATE_ACCEPT,), State.Sta6),
    Action.AE_4: _Outcome((_E.INDICATE_ASSOCIATE_REJECT, _E.CLOSE_TRANSPORT), State.Sta1),
    Action.AE_5: _Outcome((_E.ACCEPT_TRANSPORT, _E.START_ARTIM), State.Sta2),
    Action.AE_7: _Outcome((_E.SEND_ASSOCIATE_AC,), State.Sta6),
    Action.AE_8: _Outcome((_E.SEND_ASSOCIATE_RJ, _E.START_ARTIM), State.Sta13),
    Action.DT_1: _Outcome((_E.SEND_PDATA,), State.Sta6),
    Action.DT_2: _Outcome((_E.INDICATE_PDATA,), State.Sta6),
    Action.AR_1: _Outcome((_E.SEND_RELEASE_RQ,), State.Sta7),
    Action.AR_2: _Outcome((_E.INDICATE_RELEASE_REQUEST,), State.Sta8),
    Action.AR_3: _Outcome((_E.INDICATE_RELEASE_CONFIRM, _E.CLOSE_TRANSPORT), State.Sta1),
    Action.AR_4: _Outcome((_E.SEND_RELEASE_RP, _E.START_ARTIM), State.Sta13),
    Action.AR_5: _Outcome((_E.STOP_ARTIM,), State.Sta1),
    Action.AR_6: _Outcome((_E.INDICATE_PDATA,), State.Sta7),
    Action.AR_7: _Outcome((_E.SEND_PDATA,), State.Sta8),
    Action.AR_9: _Outcome((_E.SEND_RELEASE_RP,), State.Sta11),
    Action.AR_10: _Outcome((_E.INDICATE_RELEASE_CONFIRM,), State.Sta12),
    Action.AA_1: _Outcome((_E.SEND_ABORT_USER, _E.START_ARTIM), State.Sta13),
    Action.AA_2: _Outcome((_E.STOP_ARTIM, _E.CLOSE_TRANSPORT), State.Sta1),
    Action.AA_3: _Outcome((_E.INDICATE_ABORT, _E.CLOSE_TRANSPORT), State.Sta1),
    Action.AA_4: _Outcome((_E.INDICATE_PROVIDER_ABORT,), State.Sta1),
    Action.AA_5: _Outcome((_E.STOP_ARTIM,), State.Sta1),
    Action.AA_6: _Outcome((_E.IGNORE_PDU,), State.Sta13),
    Action.AA_7: _Outcome((_E.SEND_ABORT_PROVIDER_UNEXPECTED,), State.Sta13),
    Action.AA_8: _Outcome(
        (_E.SEND_ABORT_PROVIDER, _E.INDICATE_PROVIDER_ABORT, _E.START_ARTIM), State.Sta13
    ),
}

# AE-6: ARTIM is stopped first in both branches; a rejection restarts it for Sta13.
_AE_6_ACCEPTABLE = _Outcome((_E.STOP_ARTIM, _E.INDICATE_ASSOCIATE_REQUEST), State.Sta3)
_AE_6_REJECTED = _Outcome((_E.STOP_ARTIM, _E.SEND_ASSOCIATE_RJ, _E.START_ARTIM), State.Sta13)
# AR-8 (release collision): the association-requestor answers first (Sta9), the acceptor
# waits for the A-RELEASE-RP (Sta10).
_AR_8_REQUESTOR = _Outcome((_E.INDICATE_RELEASE_REQUEST,), State.Sta9)
_AR_8_ACCEPTOR = _Outcome((_E.INDICATE_RELEASE_REQUEST,), State.Sta10)


def _outcome(action: Action, *, is_requestor: bool, request_acceptable: bool) -> _Outcome:
    if action is Action.AE_6:
        return _AE_6_ACCEPTABLE if request_acceptable else _AE_6_REJECTED
    if action is Action.AR_8:
        return _AR_8_REQUESTOR if is_requestor else _AR_8_ACCEPTOR
    return _ACTIONS[action]


@dataclass(frozen=True)
class Transition:
    """One step of the machine: the action taken, where it leads and what the caller does."""

    state: State
    event: Event
    action: Action
    next_state: State
    effects: tuple[Effect, ...]


class InvalidTransition(DicomException):
    """An event arrived in a state where Table 9-10 defines nothing for it."""

    def __init__(self, state: State, event: Event) -> None:
        self.state = state
        self.event = event
        super().__init__(
            DicomExceptionCode.Parameter,
            f"{event.name} ({event.description}) is not valid in "
            f"{state.name} ({state.description})",
        )


def transition(
    state: State, event: Event, *, is_requestor: bool = False, request_acceptable: bool = True
) -> Transition:
    """Look up Table 9-10 for ``event`` in ``state``.

    ``is_requestor`` resolves AR-8 (Sta9 for the association-requestor, Sta10 otherwise);
    ``request_acceptable`` resolves AE-6 (indicate the request, or reject it with an
    A-ASSOCIATE-RJ PDU). Raises :class:`InvalidTransition` for an empty cell.
    """
    action = TRANSITIONS.get((state, event))
    if action is None:
        raise InvalidTransition(state, event)
    outcome = _outcome(action, is_requestor=is_requestor, request_acceptable=request_acceptable)
    return Transition(state, event, action, outcome.next_state, outcome.effects)


class StateMachine:
    """The state of one association, advanced one event at a time."""

    def __init__(self, is_requestor: bool = False) -> None:
        self.state = State.Sta1
        self._is_requestor = is_requestor

    @property
    def is_requestor(self) -> bool:
        """Whether this side asked for the association (decides AR-8)."""
        return self._is_requestor

    @is_requestor.setter
    def is_requestor(self, value: bool) -> None:
        # AR-8 depends on the role, so it is fixed once the machine leaves Sta1.
        if self.state is not State.Sta1:
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"cannot change the association role in {self.state.name}",
            )
        self._is_requestor = value

    def can_handle(self, event: Event) -> bool:
        """Whether Table 9-10 defines ``event`` in the current state."""
        return (self.state, event) in TRANSITIONS

    def handle(self, event: Event, *, request_acceptable: bool = True) -> Transition:
        """Apply ``event``; on an empty cell raise :class:`InvalidTransition`, state unchanged."""
        step = transition(
            self.state,
            event,
            is_requestor=self._is_requestor,
            request_acceptable=request_acceptable,
        )
        # Starting an association decides the role: Evt1 locally, Evt5 from a peer.
        if event is Event.Evt1:
            self._is_requestor = True
        elif event is Event.Evt5:
            self._is_requestor = False
        self.state = step.next_state
        return step

    def __repr__(self) -> str:
        role = "requestor" if self._is_requestor else "acceptor"
        return f"<StateMachine {self.state.name} {role}>"
