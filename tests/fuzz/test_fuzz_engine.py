"""The engine fuzz target (engine_target.py) inside the test suite: a short run.

Hypothesis plays the recorded streams mutated, and random inputs, through every
scenario; then atheris, where it is installed, fuzzes with coverage guidance for a few
seconds. ``DICOMNET_FUZZ_SECONDS`` makes that run longer (README.rst, "Fuzzing").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import engine_target
import pytest
from engine_target import seed_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import Edit, edits, mutate

from dicomnet.pdu import Abort, ReleaseRQ, encode_pdu

SEEDS = seed_corpus()
ROOT = Path(__file__).resolve().parents[2]
FUZZ_SECONDS = int(os.environ.get("DICOMNET_FUZZ_SECONDS", "5"))


def test_every_recorded_stream_plays_in_every_scenario() -> None:
    for seed in SEEDS:
        engine_target.run_one(seed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(0, 3), edits)
def test_mutated_recorded_streams(seed: bytes, scenario: int, changes: list[Edit]) -> None:
    engine_target.run_one(bytes([scenario]) + mutate(seed[1:], changes))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3), st.binary(max_size=2000))
def test_random_streams(scenario: int, stream: bytes) -> None:
    engine_target.run_one(bytes([scenario]) + stream)


def test_the_checker_catches_a_pdu_after_an_abort() -> None:
    """The invariants can fail: anything but another A-ABORT after an A-ABORT is caught."""
    checker = engine_target.OutputChecker()
    checker.feed(encode_pdu(Abort()) + encode_pdu(Abort()))
    with pytest.raises(engine_target.InvariantViolation, match="after an A-ABORT"):
        checker.feed(encode_pdu(ReleaseRQ()))


@pytest.mark.timeout(FUZZ_SECONDS + 120)
def test_coverage_guided_run(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seconds = FUZZ_SECONDS
    command = [sys.executable, "-m", "tests.fuzz.engine_target", "--seconds", str(seconds)]
    result = subprocess.run(
        [*command, f"-artifact_prefix={tmp_path}/", str(tmp_path / "corpus")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr
