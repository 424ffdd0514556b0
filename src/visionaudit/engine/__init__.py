"""Executors that map one function over many items; the local one uses a process pool."""
from .local import map_chunks, progress_enabled

__all__ = ["map_chunks", "progress_enabled"]
