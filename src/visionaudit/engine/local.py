"""Local executor: a process pool over all cores, streaming results back in chunks."""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def progress_enabled(quiet: bool = False) -> bool:
    """Progress bars only for a person at a terminal: not with --quiet, not in CI, not when piped."""
    return not quiet and not os.environ.get("CI") and sys.stderr.isatty()


@contextmanager
def _progress(total: int, description: str, enabled: bool):
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def map_chunks(
    func: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    *,
    workers: int | None = None,
    chunk_size: int = 64,
    description: str = "working",
    progress: bool = False,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple = (),
) -> Iterator[list[R]]:
    """Apply ``func`` to consecutive chunks of ``items`` in worker processes, yielding each chunk's
    results as it completes (order not kept). Only one chunk's results per worker are in flight, so
    memory stays bounded however many items there are.

    ``func`` must be a module-level function. With ``workers=1`` everything runs in this process,
    which is also what happens for fewer items than one chunk.
    """
    workers = workers or default_workers()
    with _progress(len(items), description, progress) as advance:
        if workers == 1 or len(items) <= chunk_size:
            if initializer:
                initializer(*initargs)
            for chunk in _chunks(items, chunk_size):
                out = func(chunk)
                advance(len(chunk))
                yield out
            return
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        with ctx.Pool(workers, initializer=initializer, initargs=initargs) as pool:
            for out in pool.imap_unordered(func, _chunks(items, chunk_size)):
                advance(len(out))
                yield out
