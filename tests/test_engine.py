"""The executor: every item exactly once with its index, state shipped once per worker, bounded work in
flight, failures that name their item, and progress only for people. The contract tests run against
every implementation in IMPLEMENTATIONS (an executor added to engine/ is added there)."""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import time
from collections import Counter

import pytest

from visionaudit.engine import LocalExecutor, WorkFailed, make_executor, progress_bar, progress_enabled

#: Every Executor implementation, built with a number of workers.
IMPLEMENTATIONS = [LocalExecutor]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda c: c.__name__)
def executor_class(request):
    return request.param


def _tag(state, item):
    """(item + offset, pid that did it, id of the state object it was given)."""
    return item + state["offset"], os.getpid(), id(state)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("n, chunk_size", [(0, 8), (5, 8), (8, 8), (101, 8), (257, 32)])
def test_every_item_exactly_once_with_its_index(executor_class, workers, n, chunk_size):
    items = list(range(100, 100 + n))
    out = list(executor_class(workers).map(_tag, items, {"offset": 1000}, chunk_size=chunk_size))
    assert Counter(i for i, _ in out) == Counter(range(n))
    assert all(r[0] == items[i] + 1000 for i, r in out)


class _Shipped:
    """A state that counts, per process, how many times it was unpickled."""

    unpickled = 0

    def __init__(self, offset: int):
        self.offset = offset

    def __setstate__(self, values: dict) -> None:
        self.__dict__.update(values)
        type(self).unpickled += 1


def _unpickled(state, item):
    return os.getpid(), type(state).unpickled, item + state.offset


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_state_is_shipped_once_per_worker_not_per_chunk(method):
    out = list(LocalExecutor(2, start_method=method).map(_unpickled, list(range(400)), _Shipped(7), chunk_size=5))
    assert sorted(r[2] for _, r in out) == list(range(7, 407))
    assert os.getpid() not in {pid for _, (pid, _, _) in out}
    # 80 chunks, and no worker unpickled the state more than once: fork inherits it, spawn sends it once.
    assert {n for _, (_, n, _) in out} == ({0} if method == "fork" else {1})


def test_one_worker_or_one_chunk_runs_in_this_process():
    state = {"offset": 0}
    inline = list(LocalExecutor(1).map(_tag, list(range(64)), state, chunk_size=4))
    assert {(pid, sid) for _, (_, pid, sid) in inline} == {(os.getpid(), id(state))}
    small = list(LocalExecutor(2).map(_tag, list(range(3)), state, chunk_size=4))
    assert {pid for _, (_, pid, _) in small} == {os.getpid()}


def _count(state, item):
    with state.get_lock():
        state.value += 1
    return item


def test_work_in_flight_is_bounded_by_what_the_caller_takes(executor_class):
    started = mp.get_context("fork").Value("i", 0)
    results = executor_class(2).map(_count, list(range(400)), started, chunk_size=4)
    next(results)
    time.sleep(1.0)
    # Two chunks per worker in flight: 4 chunks of 4 items run while the caller holds the first result.
    assert 4 <= started.value <= 16
    assert len(list(results)) == 399 and started.value == 400


def _divide(state, item):
    return state / item


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_names_its_item(executor_class, workers):
    items = [5, 4, 3, 2, 1] * 20
    items[57] = 0
    with pytest.raises(WorkFailed, match=r"item 57 \(0\) failed: ZeroDivisionError: float division by zero") as info:
        list(executor_class(workers).map(_divide, items, 1.0, chunk_size=6))
    assert (info.value.item, info.value.index) == (0, 57)
    assert "ZeroDivisionError" in repr(info.value.__cause__)   # the original error, or its traceback from the worker


def _die(state, item):
    if item == state:
        os._exit(3)
    return item


def test_a_worker_that_dies_is_an_error_not_a_hang(executor_class):
    with pytest.raises(RuntimeError, match="worker process died"):
        list(executor_class(2).map(_die, list(range(200)), 150, chunk_size=4))


def test_progress_counts_every_item(executor_class):
    advanced = []
    out = list(executor_class(2).map(_tag, list(range(40)), {"offset": 0}, chunk_size=6, progress=advanced.append))
    assert len(out) == 40 and sum(advanced) == 40
    assert isinstance(make_executor(2), IMPLEMENTATIONS[0])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_at_a_terminal_outside_ci(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    monkeypatch.delenv("CI", raising=False)
    assert progress_enabled() is True
    assert progress_enabled(quiet=True) is False
    monkeypatch.setenv("CI", "true")
    assert progress_enabled() is False
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stderr", io.StringIO())       # piped: not a terminal
    assert progress_enabled() is False
    with progress_bar(10, "x", enabled=False) as advance:
        advance(10)


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers=0"):
        LocalExecutor(0)
