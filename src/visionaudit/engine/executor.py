"""The executor interface: the one way visionaudit runs a function over many items in parallel.

A caller writes its per-item work as a module-level function ``fn(state, item) -> result`` and hands
it, with the items and the ``state`` every call shares (decode settings, the content hashes already
cached, a model's preprocessing), to :meth:`Executor.map`. The executor

- ships ``state`` to each worker once, never once per item or per chunk (a set of a million cached
  hashes is sent, or inherited, once per worker process);
- sends the items in chunks and yields ``(index, result)`` pairs, ``index`` being the item's
  position in ``items``, in the order chunks finish (callers that keep order put results by index);
- keeps a bounded number of chunks in flight: a new chunk starts only when the caller has taken a
  finished one, so a slow consumer (a model running on batches of decoded images) never lets
  decoded results pile up in memory;
- reports progress by calling ``progress(n)`` with the number of items of each chunk taken;
- raises :class:`WorkFailed`, naming the item and its index, when ``fn`` raises (the original
  exception's traceback is kept as its cause).

:class:`~visionaudit.engine.local.LocalExecutor` runs the chunks in a local process pool (or in this
process for one worker or a run of one chunk). :func:`visionaudit.engine.make_executor` picks the
executor for a run; callers never name an implementation.

A Ray executor implements the same :meth:`Executor.map` without any caller changing: put ``state``
in the object store once (``ray.put``), start ``workers`` actors that each take that reference in
their constructor (so each deserialises it once, as the local pool's initializer does), and submit
``(offset, chunk)`` tasks through ``ray.util.ActorPool.map_unordered`` (or Ray Data's
``map_batches`` with ``fn_constructor_args``) with at most a bounded number pending; each actor runs
:func:`run_chunk`, whose :class:`WorkFailed` pickles, so the executor re-raises it unwrapped from
Ray's ``RayTaskError``. ``fn`` and ``state`` must already be importable / picklable for that, which
the local pool's spawn start method requires too.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

#: What a caller's work function looks like: ``fn(state, item) -> result``.
WorkFunction = Callable[[Any, Any], Any]


class WorkFailed(RuntimeError):
    """``fn`` raised on one item: which item (its ``index`` in the items given to :meth:`Executor.map`
    and its repr) and what it raised. Picklable, so it crosses process (and Ray) boundaries whole.

    >>> str(WorkFailed("a.jpg", 3, ZeroDivisionError("division by zero")))
    "item 3 ('a.jpg') failed: ZeroDivisionError: division by zero"
    """

    def __init__(self, item: Any, index: int, error: BaseException | str):
        self.item = item
        self.index = index
        self.error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        super().__init__(f"item {index} ({item!r}) failed: {self.error}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.item, self.index, self.error)


def run_chunk(fn: WorkFunction, state: Any, offset: int, chunk: Sequence[Any]) -> tuple[int, list[Any]]:
    """``(offset, [fn(state, item) for item in chunk])``: one task of any executor, where it runs."""
    results = []
    for i, item in enumerate(chunk):
        try:
            results.append(fn(state, item))
        except Exception as exc:  # noqa: BLE001 - any failure is reported with the item that caused it
            raise WorkFailed(item, offset + i, exc) from exc
    return offset, results


class Executor(Protocol):
    """Runs ``fn(state, item)`` over ``items`` (see the module docstring for the contract)."""

    workers: int

    def map(self, fn: Callable[[S, T], R], items: Sequence[T], state: S, *, chunk_size: int = 64,
            progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, R]]:
        """Yield ``(index, fn(state, items[index]))`` for every item, each exactly once.

        ``chunk_size`` is the most items sent to a worker at a time (fewer when there are few items,
        so that every worker gets several chunks); ``fn`` must be a module-level function.
        """
        ...


def progress_enabled(quiet: bool = False) -> bool:
    """Progress bars only for a person at a terminal: not with --quiet, not in CI, not when piped."""
    return not quiet and not os.environ.get("CI") and sys.stderr.isatty()


@contextmanager
def progress_bar(total: int, description: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A ``progress(n)`` callback for :meth:`Executor.map` drawing a bar on stderr (or doing nothing)."""
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
