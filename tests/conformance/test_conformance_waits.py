"""Where Table 9-10 has no timer: dicomnet's ACSE time limit in the waiting states.

PS3.8 runs ARTIM only in Sta2 and Sta13, so a peer that stops answering could hold any
other state for ever. dicomnet bounds each state that waits for the peer's (or its own
application's) answer to an A-ASSOCIATE or A-RELEASE request by ``Timeouts.acse``:
when it passes, the association is aborted (the local A-ABORT, Evt15: AA-1) and the
application hears it as an abort. These are additions to the table, not cells of it,
so they record no pair.
"""

from __future__ import annotations

import pytest
from reach import SCP, SCU, reach
from script import ACSE, ARTIM, EPSILON, Conformance, Role, abort

from dicomnet.fsm import State

S = State


@pytest.mark.parametrize(
    ("role", "state"),
    [
        pytest.param(SCP, S.Sta3, id="SCP-Sta3-awaiting-the-application"),
        pytest.param(SCU, S.Sta5, id="SCU-Sta5-awaiting-AC-or-RJ"),
        pytest.param(SCP, S.Sta7, id="SCP-Sta7-awaiting-RP"),
        pytest.param(SCU, S.Sta7, id="SCU-Sta7-awaiting-RP"),
        pytest.param(SCP, S.Sta10, id="SCP-Sta10-collision-awaiting-RP"),
        pytest.param(SCU, S.Sta11, id="SCU-Sta11-collision-awaiting-RP"),
    ],
)
def test_a_peer_that_never_answers_is_aborted_after_the_acse_timeout(
    conformance: Conformance, role: Role, state: State
) -> None:
    # The prefixes enter the state without waiting in it: ACSE counts from here.
    script = (
        reach(role, state)
        .wait(ACSE - EPSILON)
        .expect_nothing()
        .expect_state(state)
        .wait(EPSILON)
        .expect(abort(0, 0), "A-ABORT (0, 0)")
        .expect_calls(("OnReceiveAbort", 2, 0))
        .expect_state(S.Sta13)
        .wait(ARTIM)
        .expect_closed()
        .expect_calls(("OnClose",))
    )
    conformance.run(script)
