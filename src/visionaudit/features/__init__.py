"""Per-image features: one decode per image per run, in a worker pool, cached by file content."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..engine import map_chunks
from .cache import FeatureCache, default_cache_dir
from .decode import COLUMNS, DEFAULT_MAX_PIXELS, FEATURE_VERSION, WORK_SIZE, content_hash, ext_format, measure_bytes, read_file

__all__ = ["FeatureRun", "compute_features", "default_cache_dir", "COLUMNS"]

# Set in the parent before the pool starts; inherited by forked workers (or sent via initializer).
_KNOWN_HASHES: set[str] = set()
_SETTINGS: dict[str, int] = {"max_pixels": DEFAULT_MAX_PIXELS, "work_size": WORK_SIZE}


def _init_worker(known: set[str], settings: dict[str, int]) -> None:
    global _KNOWN_HASHES, _SETTINGS
    _KNOWN_HASHES = known
    _SETTINGS = settings


def _measure_chunk(paths: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        data, error_row = read_file(path)
        if data is None:
            row = error_row
        else:
            digest = content_hash(data)
            if digest in _KNOWN_HASHES:
                row = {"content_hash": digest, "_cached": True}
            else:
                row = measure_bytes(data, ext_format=ext_format(path), digest=digest, **_SETTINGS)
        row["path"] = path
        out.append(row)
    return out


@dataclass
class FeatureRun:
    """Per-file features (one row per distinct path) and how they were obtained."""

    table: pd.DataFrame
    decoded: int
    from_cache: int
    cache_dir: str | None


def compute_features(
    paths: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    work_size: int = WORK_SIZE,
) -> FeatureRun:
    """Measure every distinct path once; reuse cached rows for files whose content was seen before.

    Returns a table indexed by path with the columns of :data:`COLUMNS`.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    settings = {"max_pixels": int(max_pixels), "work_size": int(work_size)}
    cache = None
    if use_cache:
        key = f"v{FEATURE_VERSION}-w{work_size}-m{max_pixels}"
        cache = FeatureCache(cache_dir or default_cache_dir(), key)

    resolved: dict[str, str] = {}       # path -> content hash whose row is in the cache
    stats: dict[str, tuple[int, int]] = {}
    if cache is not None:
        index = cache.path_index()
        for p in unique:
            try:
                st = os.stat(p)
            except OSError:
                continue
            stats[p] = (st.st_size, st.st_mtime_ns)
            seen = index.get(p)
            if seen and seen[0] == st.st_size and seen[1] == st.st_mtime_ns:
                resolved[p] = seen[2]
    todo = [p for p in unique if p not in resolved]
    known = cache.known_hashes() if (cache is not None and todo) else set()
    new_rows: list[dict[str, Any]] = []
    for rows in map_chunks(_measure_chunk, todo, workers=workers, chunk_size=32, description="decoding images",
                           progress=progress, initializer=_init_worker, initargs=(known, settings)):
        for row in rows:
            if row.pop("_cached", False):
                resolved[row["path"]] = row["content_hash"]
            else:
                new_rows.append(row)

    new = pd.DataFrame(new_rows, columns=["path", *COLUMNS]) if new_rows else pd.DataFrame(columns=["path", *COLUMNS])
    cached = pd.DataFrame(columns=["path", *COLUMNS])
    if resolved:
        rows = cache.load(set(resolved.values()))
        by_hash = rows.set_index("content_hash")
        have = [p for p, h in resolved.items() if h in by_hash.index]
        cached = by_hash.loc[[resolved[p] for p in have]].reset_index()
        cached["path"] = have
        cached["ext_format"] = [ext_format(p) for p in have]
        lost = [p for p in resolved if p not in set(have)]
        if lost:  # cache rows vanished underneath us: measure them now
            cached_new = [r for chunk in map_chunks(_measure_chunk, lost, workers=1, initializer=_init_worker,
                                                    initargs=(set(), settings)) for r in chunk]
            new = pd.concat([new, pd.DataFrame(cached_new)], ignore_index=True)
    if cache is not None:
        cache.append(new.drop(columns=["path"]))
        entries = {}
        for p, h in list(resolved.items()) + list(zip(new["path"], new["content_hash"])):
            if h is not None and p in stats:
                entries[p] = (*stats[p], h)
        if entries:
            cache.update_path_index(entries)
    table = pd.concat([df for df in (new, cached) if not df.empty], ignore_index=True) if (len(new) or len(cached)) else new
    table = table.set_index("path").reindex(unique)
    return FeatureRun(table=table, decoded=len(new), from_cache=len(cached), cache_dir=str(cache.dir) if cache else None)
