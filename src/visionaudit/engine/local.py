"""The local executor: a process pool over this machine's cores (see :mod:`.executor` for the contract).

The pool's initializer installs ``(fn, state)`` in each worker once; a task is then only
``(offset, chunk)``. With the fork start method (Linux) workers inherit ``state`` without it being
pickled at all; with spawn (macOS, Windows) it is pickled once per worker. One worker, or no more
items than one chunk, runs in this process without a pool.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .executor import WorkFunction, run_chunk

#: Chunks in flight per worker: one running, one queued so a worker never waits for the next.
IN_FLIGHT_PER_WORKER = 2
#: Each worker gets at least this many chunks when there are enough items, so one slow chunk at
#: the end does not leave the other workers idle.
CHUNKS_PER_WORKER = 4

# What the pool's initializer installed in this worker process: (fn, state).
_installed: tuple[WorkFunction, Any] | None = None


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _install(fn: WorkFunction, state: Any) -> None:
    global _installed
    _installed = (fn, state)


def _run_installed(offset: int, chunk: Sequence[Any]) -> tuple[int, list[Any]]:
    fn, state = _installed
    return run_chunk(fn, state, offset, chunk)


def _chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


class LocalExecutor:
    """:class:`~visionaudit.engine.executor.Executor` on a local process pool of ``workers`` processes
    (default: every core this process may use).

    >>> list(LocalExecutor(workers=1).map(pow, [1, 2, 3], 2))    # pow(state, item) = 2 ** item
    [(0, 2), (1, 4), (2, 8)]
    """

    def __init__(self, workers: int | None = None, *, start_method: str | None = None):
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"invalid workers={workers!r}: expected a positive integer")
        self.workers = workers or default_workers()
        self.start_method = start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], state: Any, *, chunk_size: int = 64,
            progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
        """See :meth:`visionaudit.engine.executor.Executor.map`."""
        advance = progress or (lambda n: None)
        if self.workers == 1 or len(items) <= chunk_size:
            for offset, chunk in _chunks(items, chunk_size):
                _, results = run_chunk(fn, state, offset, chunk)
                advance(len(chunk))
                yield from enumerate(results, offset)
            return
        size = max(1, min(chunk_size, len(items) // (CHUNKS_PER_WORKER * self.workers)))
        chunks = _chunks(items, size)
        pending: dict[Future, tuple[int, int]] = {}
        with ProcessPoolExecutor(self.workers, mp_context=mp.get_context(self.start_method), initializer=_install,
                                 initargs=(fn, state)) as pool:

            def submit() -> None:
                task = next(chunks, None)
                if task is not None:
                    pending[pool.submit(_run_installed, *task)] = (task[0], len(task[1]))

            try:
                for _ in range(IN_FLIGHT_PER_WORKER * self.workers):
                    submit()
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        try:
                            _, results = future.result()
                        except BrokenProcessPool as exc:
                            spans = ", ".join(f"{o} to {o + n - 1}" for o, n in sorted(pending.values()))
                            raise RuntimeError(f"a worker process died (killed, out of memory or crashed) while "
                                               f"items {spans} were in flight") from exc
                        offset, n = pending.pop(future)
                        advance(n)
                        yield from enumerate(results, offset)
                        submit()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
