"""The archive index's connection pool: bounded, shared by threads, never left with
threads that ended."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dicomnet.archive import IndexConfig, open_index
from dicomnet.archive.backend import ConnectionPool, IndexBusy


class Opened:
    """Connections made by a pool under test: numbered, and whether they were closed."""

    def __init__(self) -> None:
        self.made: list[int] = []
        self.closed: list[int] = []
        self.broken: set[int] = set()

    def open(self) -> int:
        self.made.append(len(self.made))
        return self.made[-1]

    def pool(self, size: int, wait: float = 5.0) -> ConnectionPool[int]:
        return ConnectionPool(
            self.open, self.closed.append, lambda c: c not in self.broken, size, wait, "test"
        )


def test_threads_that_end_leave_their_connection_to_the_next() -> None:
    opened = Opened()
    pool = opened.pool(size=4)
    for _ in range(20):  # a thread per request, one after the other
        worker = threading.Thread(target=_use_once, args=(pool,))
        worker.start()
        worker.join()
    assert opened.made == [0]
    assert opened.closed == []


def _use_once(pool: ConnectionPool[int]) -> None:
    with pool.connection():
        pass


def test_no_more_connections_than_the_pool_holds() -> None:
    opened = Opened()
    pool = opened.pool(size=2)
    inside = threading.Barrier(3)
    leave = threading.Event()
    got: list[int] = []

    def hold() -> None:
        with pool.connection() as connection:
            got.append(connection)
            inside.wait()
            leave.wait()

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for holder in holders:
        holder.start()
    inside.wait()  # both connections are in use now
    third: list[int] = []
    waiter = threading.Thread(target=lambda: third.append(_take_one(pool)))
    waiter.start()
    leave.set()
    for thread in (*holders, waiter):
        thread.join()
    assert sorted(got) == [0, 1]
    assert third and third[0] in (0, 1)  # it waited for one of them
    assert opened.made == [0, 1]


def _take_one(pool: ConnectionPool[int]) -> int:
    with pool.connection() as connection:
        return connection


def test_a_wait_longer_than_allowed_is_a_clear_error() -> None:
    opened = Opened()
    pool = opened.pool(size=1, wait=0.05)
    with pool.connection():
        failure: list[BaseException] = []
        worker = threading.Thread(target=lambda: _record(failure, pool))
        worker.start()
        worker.join()
    assert isinstance(failure[0], IndexBusy)
    assert "all 1 connections stayed in use" in str(failure[0])


def _record(failure: list[BaseException], pool: ConnectionPool[int]) -> None:
    try:
        _take_one(pool)
    except BaseException as exc:
        failure.append(exc)


def test_a_dropped_connection_is_replaced_and_close_closes_all() -> None:
    opened = Opened()
    pool = opened.pool(size=2)
    assert _take_one(pool) == 0
    opened.broken.add(0)  # the server dropped it while idle
    assert _take_one(pool) == 1
    assert opened.closed == [0]
    with pool.connection() as in_use:
        pool.close()
        assert opened.closed == [0]  # the one in use is closed when given back
    assert opened.closed == [0, in_use]
    with pytest.raises(RuntimeError, match="closed"):
        _take_one(pool)


def test_an_index_used_by_many_threads_keeps_within_its_pool(tmp_path: Path) -> None:
    index = open_index(f"sqlite:///{tmp_path / 'index.db'}", IndexConfig(max_connections=2))
    counts: list[int] = []
    workers = [threading.Thread(target=lambda: counts.append(index.count())) for _ in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counts == [0] * 16
    pool = index.backend._pool  # type: ignore[attr-defined]
    assert pool._count <= 2
    index.close()
