"""The executor every parallel pass runs on: :class:`Executor` (the interface, see :mod:`.executor`),
:class:`LocalExecutor` (a local process pool) and :func:`make_executor`, which picks one for a run."""
from __future__ import annotations

from .executor import Executor, WorkFailed, progress_bar, progress_enabled
from .local import LocalExecutor, default_workers

__all__ = ["Executor", "LocalExecutor", "WorkFailed", "default_workers", "make_executor", "progress_bar",
           "progress_enabled"]


def make_executor(workers: int | None = None) -> Executor:
    """The executor a run's passes use, with ``workers`` workers (default: all cores). Today the local
    process pool; a cluster executor (Ray) would be chosen here, so that no caller changes."""
    return LocalExecutor(workers)
