"""The local executor: every item exactly once, in any pool size, and progress only for people."""
from __future__ import annotations

import io
import os
from collections import Counter

import pytest

from visionaudit.engine import local, map_chunks, progress_enabled

_OFFSET = 0


def _set_offset(value: int) -> None:
    global _OFFSET
    _OFFSET = value


def _tag(chunk):
    """(item, item + offset set by the initializer, pid that did it) for each item."""
    return [(x, x + _OFFSET, os.getpid()) for x in chunk]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("n, chunk_size", [(0, 8), (5, 8), (8, 8), (101, 8), (257, 32)])
def test_every_item_exactly_once(workers, n, chunk_size):
    items = list(range(n))
    out = [r for chunk in map_chunks(_tag, items, workers=workers, chunk_size=chunk_size,
                                     initializer=_set_offset, initargs=(1000,)) for r in chunk]
    assert Counter(r[0] for r in out) == Counter(items)
    assert all(r[1] == r[0] + 1000 for r in out)     # the initializer ran wherever the work ran


def test_two_workers_run_in_other_processes_and_one_worker_in_this_one():
    items = list(range(64))
    pooled = {r[2] for chunk in map_chunks(_tag, items, workers=2, chunk_size=4) for r in chunk}
    inline = {r[2] for chunk in map_chunks(_tag, items, workers=1, chunk_size=4) for r in chunk}
    assert os.getpid() not in pooled and 1 <= len(pooled) <= 2
    assert inline == {os.getpid()}
    # Fewer items than one chunk: no pool is started for them.
    small = {r[2] for chunk in map_chunks(_tag, items[:3], workers=2, chunk_size=4) for r in chunk}
    assert small == {os.getpid()}


def test_chunks_keep_their_size():
    sizes = sorted(len(c) for c in map_chunks(_tag, list(range(23)), workers=2, chunk_size=5))
    assert sizes == [3, 5, 5, 5, 5]


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


def test_progress_bar_counts_every_item(monkeypatch):
    advanced = []

    class _Recorder:
        def __init__(self, total, description, enabled):
            assert (total, enabled) == (40, True)

        def __enter__(self):
            return advanced.append

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(local, "_progress", _Recorder)
    out = [r for chunk in map_chunks(_tag, list(range(40)), workers=2, chunk_size=6, progress=True) for r in chunk]
    assert len(out) == 40 and sum(advanced) == 40


def test_worker_errors_reach_the_caller():
    with pytest.raises(ZeroDivisionError):
        for _ in map_chunks(_divide, [1, 0, 2] * 10, workers=2, chunk_size=3):
            pass


def _divide(chunk):
    return [1 / x for x in chunk]
