"""Fixtures of the conformance suite, and the coverage table it prints at the end.

``conformance.run(script)`` plays a script on a fresh manually pumped loop and keeps the
(state, event, role) triples its ``cause`` steps drove; a test that passes hands them
to the table. The table has one row per event a remote peer causes and one column per
state: which roles covered the pair, why it cannot be reached from a remote peer, or
that it is missing. Nothing in it is written by hand but the reasons.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

pytest.register_assert_rewrite("script")

from script import Cell, Conformance, Role  # noqa: E402

from dicomnet import DicomNet  # noqa: E402
from dicomnet.fsm import TRANSITIONS, Event, State  # noqa: E402
from dicomnet.loop import VirtualClock  # noqa: E402

# Events a remote peer causes: its connect (Evt5) or accepting ours (Evt2), its PDUs,
# its close, and ARTIM running out while dicomnet waits for it.
REMOTE_EVENTS = (
    Event.Evt2,
    Event.Evt3,
    Event.Evt4,
    Event.Evt5,
    Event.Evt6,
    Event.Evt10,
    Event.Evt12,
    Event.Evt13,
    Event.Evt16,
    Event.Evt17,
    Event.Evt18,
    Event.Evt19,
)

_STA4 = (
    "Sta4 lasts only while dicomnet's own TCP connect is in progress, inside the loop: "
    "the engine is made on a connected socket and SendAssociateRequest applies Evt1 and "
    "Evt2 together (AE-1, AE-2); a connect that fails is reported by OnConnect"
)
UNREACHABLE: dict[tuple[State, Event], str] = {
    (State.Sta4, Event.Evt2): _STA4,
    (State.Sta4, Event.Evt17): _STA4,
}

_CELLS = pytest.StashKey[list[Cell]]()
_COVERED = pytest.StashKey[list[Cell]]()


@pytest.fixture
def conformance(request: pytest.FixtureRequest) -> Iterator[Conformance]:
    clock = VirtualClock(jump=False)
    DicomNet.Startup(threaded=False, clock=clock)
    try:
        runner = Conformance(clock)
        request.node.stash[_CELLS] = runner.exercised
        yield runner
    finally:
        DicomNet.Shutdown()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cells = item.stash.get(_CELLS, None)
    if report.when == "call" and report.passed and cells:
        item.config.stash.setdefault(_COVERED, []).extend(cells)
    return report


def _cell_text(
    state: State, event: Event, roles: set[Role], footnotes: dict[str, str]
) -> tuple[str, str]:
    """(text of the cell, its status)."""
    defined = (state, event) in TRANSITIONS
    if roles:
        text = "+".join(role.value for role in Role if role in roles)
        return (text, "covered") if defined else (f"{text}*", "outside")
    if not defined:
        return "·", "undefined"
    reason = UNREACHABLE.get((state, event))
    if reason is not None:
        mark = footnotes.setdefault(reason, f"n{len(footnotes) + 1}")
        return mark, "unreachable"
    return "MISSING", "missing"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reporter = terminalreporter
    covered = reporter.config.stash.get(_COVERED, [])
    if not covered:
        return
    roles: dict[tuple[State, Event], set[Role]] = {}
    for state, event, role in covered:
        roles.setdefault((state, event), set()).add(role)
    footnotes: dict[str, str] = {}
    counts: dict[str, int] = {}
    missing: list[str] = []
    rows = []
    for event in REMOTE_EVENTS:
        cells = []
        for state in State:
            text, status = _cell_text(state, event, roles.get((state, event), set()), footnotes)
            counts[status] = counts.get(status, 0) + 1
            if status == "missing":
                missing.append(f"{state.name}/{event.name}")
            cells.append(text)
        rows.append([event.name, *cells])
    header = ["", *(state.name for state in State)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    write = reporter.write_line
    reporter.write_sep("=", "PS3.8 Table 9-10 conformance: events a remote peer causes")
    for row in [header, *rows]:
        write("  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)))
    write(
        "SCP/SCU: covered with dicomnet as acceptor/requestor; *: outside Table 9-10 (an "
        "empty cell dicomnet can be in), covered; ·: an empty cell of Table 9-10"
    )
    for reason, mark in footnotes.items():
        write(f"{mark}: not reachable from a remote peer: {reason}")
    defined = counts.get("covered", 0) + counts.get("unreachable", 0) + counts.get("missing", 0)
    write(
        f"defined pairs: {defined}; covered {counts.get('covered', 0)}, not reachable "
        f"{counts.get('unreachable', 0)}, missing {counts.get('missing', 0)}"
        + (f" ({', '.join(missing)})" if missing else "")
        + f"; outside the table, covered: {counts.get('outside', 0)}"
    )
