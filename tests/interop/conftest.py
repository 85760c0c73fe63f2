"""Fixtures for interop tests against DCMTK, pynetdicom and the dicomnet samples.

Every test collected under this directory is marked ``interop``. The fixtures hand out
the helpers of ``peers.py`` with the peer policy of ``tests/conftest.py`` applied (a
missing DCMTK program or pynetdicom skips the test, or fails it when CI=true)::

    def test_echo(dcmtk_scp, run_sample):
        with dcmtk_scp("storescp") as (port, server):
            result = run_sample("echoscu", "127.0.0.1", str(port))
        assert result.returncode == 0, result.stderr

    def test_store(pynetdicom_scp, run_dcmtk):
        from pynetdicom import evt
        handlers = {evt.EVT_C_STORE: lambda event: 0x0000}
        with pynetdicom_scp([CT_IMAGE_STORAGE], handlers) as (port, log):
            run_dcmtk("storescu", "127.0.0.1", str(port), "ct.dcm")
        log.wait_for("EVT_C_STORE")
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import peers
import pytest

INTEROP_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``interop`` (before ``-m`` selects on marks)."""
    for item in items:
        if item.path.resolve().is_relative_to(INTEROP_DIR):
            item.add_marker(pytest.mark.interop)


@pytest.fixture
def run_dcmtk(
    require_dcmtk: Callable[[str], str],
) -> Callable[..., Any]:
    """``run_dcmtk("echoscu", *args, timeout=60, cwd=None)`` -> CompletedProcess."""

    def run(tool: str, *args: str, **options: Any) -> Any:
        return peers.run_dcmtk(require_dcmtk(tool), *args, **options)

    return run


@pytest.fixture
def dcmtk_scp(
    require_dcmtk: Callable[[str], str],
) -> Callable[..., contextlib.AbstractContextManager[tuple[int, peers.ServerProcess]]]:
    """``with dcmtk_scp("storescp", *args) as (port, server):`` a DCMTK server."""

    def start(
        tool: str, *args: str, **options: Any
    ) -> contextlib.AbstractContextManager[tuple[int, peers.ServerProcess]]:
        return peers.dcmtk_scp(require_dcmtk(tool), *args, **options)

    return start


@pytest.fixture
def pynetdicom_scp(
    require_pynetdicom: ModuleType,
) -> Callable[..., contextlib.AbstractContextManager[tuple[int, peers.EventLog]]]:
    """``with pynetdicom_scp(contexts, handlers) as (port, log):`` a pynetdicom SCP."""
    return peers.pynetdicom_scp


@pytest.fixture
def run_sample() -> Callable[..., Any]:
    """``run_sample("echoscu", *args, timeout=60, cwd=None)`` -> CompletedProcess."""
    return peers.run_sample


@pytest.fixture
def sample_server() -> Callable[
    ..., contextlib.AbstractContextManager[tuple[int, peers.ServerProcess]]
]:
    """``with sample_server("echoscp", *args) as (port, server):`` port appended last."""
    return peers.sample_server


@pytest.fixture
def closed_port() -> int:
    """An ephemeral 127.0.0.1 port nothing listens on (for connection-refused cases)."""
    return peers.free_port()
