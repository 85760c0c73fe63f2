"""A throwaway PostgreSQL cluster for the tests of the PostgreSQL archive index.

``postgres_cluster`` (session scope) runs Debian's ``initdb`` and ``pg_ctl`` on a data
directory in a private temporary directory, listening on a unix socket there only (no
TCP port, so nothing collides with another run), trust authentication, fsync off. Its
``new_database()`` creates an empty database and gives its URL, so every test starts
clean. PostgreSQL refuses to run as root, so under root the server runs as ``nobody``
(the data directory is made theirs). Without ``initdb`` the tests skip, or fail under
CI=true (``tests/conftest.py`` makes the fixture with its peer policy).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

_PORT = 5432  # only names the socket file in the private socket directory
_SUPERUSER = "archive"


def find_postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL bin directory with initdb and pg_ctl, or the
    directory of an initdb on PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


@dataclass
class PostgresCluster:
    """A running cluster; ``new_database`` makes an empty database for one test."""

    socket_dir: Path
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_SUPERUSER}@/{database}?host={self.socket_dir}&port={_PORT}"

    def new_database(self) -> str:
        import psycopg

        name = f"test_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` run as an unprivileged user when the tests run as root."""
    if os.geteuid() != 0:
        return command
    user = pwd.getpwnam("nobody")
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        "--",
        *command,
    ]


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(
        _as_server_user(command), cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def postgres_cluster_fixture(peer_missing: Callable[[str], NoReturn]) -> Any:
    """The session fixture ``postgres_cluster``, applying the suite's ``peer_missing``
    policy when PostgreSQL cannot be run."""

    @pytest.fixture(scope="session")
    def postgres_cluster() -> Iterator[PostgresCluster]:
        """A throwaway PostgreSQL cluster for the session (see ``postgres_cluster.py``)."""
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            peer_missing("PostgreSQL's initdb is not installed (Debian package 'postgresql')")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            peer_missing("psycopg is not installed (extra 'test': psycopg[binary])")
        if os.geteuid() == 0 and shutil.which("setpriv") is None:
            peer_missing("as root, PostgreSQL is started as nobody through setpriv (util-linux)")
        yield from _cluster(bin_dir)

    return postgres_cluster


def _cluster(bin_dir: Path) -> Iterator[PostgresCluster]:
    top = Path(tempfile.mkdtemp(prefix="dicomnet-pg-"))  # in /tmp, reachable by nobody
    data = top / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        os.chown(top, user.pw_uid, user.pw_gid)
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                _SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            top,
        )
        options = f"-k {top} -p {_PORT} -c listen_addresses='' -c fsync=off"
        _run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(top / "log"), "-o", options]
            + ["-w", "-t", "60", "start"],
            top,
        )
        try:
            yield PostgresCluster(top)
        finally:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def index_url(request: pytest.FixtureRequest, backend: str, directory: Path) -> str:
    """The URL of an empty archive index on ``backend`` ("sqlite": a file in
    ``directory``; "postgresql": a new database of the session's cluster)."""
    if backend == "sqlite":
        return f"sqlite:///{directory / 'index.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()
