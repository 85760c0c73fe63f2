"""Test-suite policy for optional peers (DCMTK programs, pynetdicom).

Interop tests need independent DICOM implementations to talk to. On a workstation a
missing peer skips the test with the reason; in continuous integration (``CI=true``) the
same situation is a failure, so a broken CI image can never pass by skipping everything.
``peer_missing`` is the one place that rule lives; the fixtures below apply it.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
from postgres_cluster import postgres_cluster_fixture

from dicomnet import DicomNet
from dicomnet.loop import VirtualClock


def running_in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def peer_missing(reason: str) -> NoReturn:
    """Skip the current test because a peer is missing, or fail it under CI=true."""
    if running_in_ci():
        pytest.fail(f"{reason}; CI=true requires every interop peer", pytrace=False)
    pytest.skip(reason)


def _is_script(path: Path) -> bool:
    # pynetdicom installs Python console scripts named echoscu, storescp, ... next to the
    # interpreter; DCMTK's programs are native binaries, so a "#!" line tells them apart.
    with path.open("rb") as program:
        return program.read(2) == b"#!"


def find_dcmtk(tool: str) -> Path | None:
    """The DCMTK program ``tool`` found on PATH, ignoring same-named Python scripts."""
    scripts_dir = Path(sysconfig.get_path("scripts")).resolve()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or Path(directory).resolve() == scripts_dir:
            continue
        candidate = shutil.which(tool, path=directory)
        if candidate is not None and not _is_script(Path(candidate)):
            return Path(candidate)
    return None


def require_dcmtk_tool(tool: str) -> str:
    """Path of the DCMTK program ``tool``; skips (or fails under CI=true) when absent."""
    path = find_dcmtk(tool)
    if path is None:
        peer_missing(f"DCMTK program {tool!r} is not installed (Debian package 'dcmtk')")
    return str(path)


def require_pynetdicom_module() -> ModuleType:
    """The pynetdicom module; skips (or fails under CI=true) when it is not installed."""
    try:
        import pynetdicom
    except ImportError:
        peer_missing(f"pynetdicom is not installed for {sys.executable} (extra 'test')")
    return pynetdicom


@pytest.fixture(scope="session")
def require_dcmtk() -> Callable[[str], str]:
    """``require_dcmtk("storescp")`` gives the program's path, or skips/fails the test."""
    return require_dcmtk_tool


@pytest.fixture(scope="session")
def require_pynetdicom() -> ModuleType:
    """The pynetdicom module, or a skip/fail of the test when it is not installed."""
    return require_pynetdicom_module()


postgres_cluster = postgres_cluster_fixture(peer_missing)
"""A throwaway PostgreSQL cluster for the session (tests/postgres_cluster.py)."""


@pytest.fixture
def virtual_clock() -> Iterator[VirtualClock]:
    """The engine in manual mode on a ``VirtualClock``: timers fire in deadline order
    and take no wall time (waits pump the loop; time jumps when nothing else can
    happen)."""
    clock = VirtualClock()
    DicomNet.Startup(threaded=False, clock=clock)
    try:
        yield clock
    finally:
        DicomNet.Shutdown()
