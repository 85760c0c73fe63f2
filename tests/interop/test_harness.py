"""The interop harness itself, proven with real peers only (DCMTK and pynetdicom).

If these fail, the interop tests of dicomnet cannot be trusted either way: a peer that
does not start, a port that is not free, or a process left behind would show up here
first, without any dicomnet code involved.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"


def test_dcmtk_echoscu_against_dcmtk_storescp(
    dcmtk_scp: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with dcmtk_scp("storescp", "--verbose") as (port, server):
        result = run_dcmtk("echoscu", "--verbose", "127.0.0.1", str(port))
        assert result.returncode == 0, result.stderr
        assert "Received Echo Response (Success)" in result.stdout + result.stderr
        # storescp runs on: its side of the exchange is in its log already.
        assert "Received Echo Request" in server.log()
        assert server.returncode is None


def test_dcmtk_echoscu_against_pynetdicom_scp(
    pynetdicom_scp: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    with pynetdicom_scp() as (port, log):
        result = run_dcmtk("echoscu", "-aec", "PYNETDICOM", "127.0.0.1", str(port))
        assert result.returncode == 0, result.stderr
        (echo,) = log.wait_for("EVT_C_ECHO")
        log.wait_for("EVT_RELEASED")
    assert echo.request.AffectedSOPClassUID == VERIFICATION_SOP_CLASS
    assert log.names[0] == "EVT_ACCEPTED"


def test_pynetdicom_scp_runs_the_given_handler(
    pynetdicom_scp: Callable[..., Any], run_dcmtk: Callable[..., Any]
) -> None:
    from pynetdicom import evt  # the fixture made sure it is installed

    refused_status = 0x0211  # any non-Success status will do
    handlers = {evt.EVT_C_ECHO: lambda event: refused_status}
    with pynetdicom_scp(handlers=handlers) as (port, log):
        result = run_dcmtk("echoscu", "--verbose", "127.0.0.1", str(port))
        log.wait_for("EVT_C_ECHO")
    assert "Received Echo Response (Unknown Status: 0x211)" in result.stderr + result.stdout


def test_echoscu_against_a_closed_port_fails(
    run_dcmtk: Callable[..., Any], closed_port: int
) -> None:
    result = run_dcmtk("echoscu", "127.0.0.1", str(closed_port), timeout=30)
    assert result.returncode != 0
    assert "Connection refused" in result.stderr + result.stdout


def test_server_is_stopped_and_cleaned_up_when_the_test_body_fails(
    dcmtk_scp: Callable[..., Any],
) -> None:
    with pytest.raises(AssertionError), dcmtk_scp("storescp") as (_, server):
        workdir = server.workdir
        raise AssertionError("the test body fails")
    assert server.returncode is not None
    assert not workdir.exists()


def test_server_that_cannot_start_is_reported_with_its_output(
    dcmtk_scp: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError, match="exited"), dcmtk_scp("storescp", "--no-such-option"):
        pass
    assert "--no-such-option" in capsys.readouterr().out


def test_missing_peer_skips_outside_ci(
    require_dcmtk: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-dcmtk-tool"):
        require_dcmtk("no-such-dcmtk-tool")


def test_missing_peer_fails_in_ci(
    require_dcmtk: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_dcmtk("no-such-dcmtk-tool")


def test_python_scripts_named_like_dcmtk_programs_are_ignored(
    require_dcmtk: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    impostor = tmp_path / "storescp"  # pynetdicom installs such console scripts
    impostor.write_text("#!/bin/sh\nexit 0\n")
    impostor.chmod(impostor.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    found = Path(require_dcmtk("storescp"))
    assert found != impostor
    assert found.read_bytes()[:4] == b"\x7fELF"
