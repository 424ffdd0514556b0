"""Per-image features: one decode per image per run, in a worker pool, cached by file content."""
from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..engine import map_chunks
from . import decode, hashing, properties
from .cache import FeatureCache, default_cache_dir
from .decode import COLUMNS, DEFAULT_MAX_PIXELS, FEATURE_VERSION, WORK_SIZE, content_hash, ext_format, measure_bytes, read_file

__all__ = ["FeatureRun", "compute_features", "default_cache_dir", "COLUMNS"]

#: Newly measured rows are turned into a table and written to the cache every this many rows, so a
#: long scan holds no per-row Python dicts beyond one batch and an interrupted scan resumes.
BATCH_ROWS = 4096
CHUNK_SIZE = 32

# Set in the parent before the pool starts; inherited by forked workers (or sent via initializer).
_KNOWN_HASHES: frozenset[str] = frozenset()
_SETTINGS: dict[str, int] = {"max_pixels": DEFAULT_MAX_PIXELS, "work_size": WORK_SIZE}


def _init_worker(known: frozenset[str], settings: dict[str, int]) -> None:
    global _KNOWN_HASHES, _SETTINGS
    _KNOWN_HASHES = known
    _SETTINGS = settings


def _measure_chunk(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for ``paths``; a file whose content is already cached comes back as a short stub."""
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
    """Per-file features (one row per distinct path) and how they were obtained.

    ``decoded`` counts paths measured in this run (a missing or undecodable file included: its row
    says why); ``from_cache`` counts paths whose row came from the cache (unchanged files, and files
    whose content was seen before under any path).
    """

    table: pd.DataFrame
    decoded: int
    from_cache: int
    cache_dir: str | None


@functools.cache
def _code_digest() -> str:
    """Digest of the column names and of the code that computes them: editing how a feature is
    measured starts a new cache even if FEATURE_VERSION was not bumped."""
    h = hashlib.blake2b(",".join(COLUMNS).encode(), digest_size=6)
    for module in (decode, properties, hashing):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def _cache_key(work_size: int, max_pixels: int) -> str:
    """Names the cache folder: rows computed by other code or decode settings are never mixed in."""
    return f"v{FEATURE_VERSION}-{_code_digest()}-w{work_size}-m{max_pixels}"


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["path", *COLUMNS])


def _with_column_types(table: pd.DataFrame) -> pd.DataFrame:
    """Give every column the type its default in :data:`COLUMNS` has, with None for a missing text.

    Rows built from Python values and rows read back from Parquet otherwise differ in type (object
    vs string, int vs float after a missing value), so a cached run would not equal a fresh one.
    """
    types = {}
    for name, default in COLUMNS.items():
        if isinstance(default, bool):
            types[name] = table[name].astype(bool)
        elif isinstance(default, int):
            types[name] = table[name].astype("int64")
        elif isinstance(default, float):
            types[name] = table[name].astype("float64")
        else:
            col = table[name].astype(object)
            types[name] = col.where(col.notna(), None)
    return pd.DataFrame(types, index=table.index)


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

    Unchanged files (same path, size, mtime and ctime as last time) are not even read; other files
    are read and hashed, and decoded only if no cached row has their content hash.

    >>> run = compute_features(["a.jpg", "b.png"], cache_dir="/tmp/va-cache")   # doctest: +SKIP
    >>> run.decoded, run.from_cache, run.table.loc["a.jpg", "brightness"]       # doctest: +SKIP
    (2, 0, 0.41)

    Returns a table indexed by path with the columns of :data:`COLUMNS`.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    settings = {"max_pixels": int(max_pixels), "work_size": int(work_size)}
    cache = FeatureCache(cache_dir or default_cache_dir(), _cache_key(work_size, max_pixels)) if use_cache else None

    # path -> content hash whose row is in the cache; path -> (size, mtime, ctime)
    resolved, stamps = cache.unchanged(unique) if cache is not None else ({}, {})
    todo = [p for p in unique if p not in resolved]
    known = frozenset(cache.known_hashes()) if (cache is not None and todo) else frozenset()

    batches: list[pd.DataFrame] = []
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        batch = _table(pending)
        pending.clear()
        if cache is not None:
            cache.append(batch.drop(columns=["path"]))
        batches.append(batch)

    for rows in map_chunks(_measure_chunk, todo, workers=workers, chunk_size=CHUNK_SIZE, description="decoding images",
                           progress=progress, initializer=_init_worker, initargs=(known, settings)):
        for row in rows:
            if row.pop("_cached", False):
                resolved[row["path"]] = row["content_hash"]
            else:
                pending.append(row)
        if len(pending) >= BATCH_ROWS:
            flush()
    _init_worker(frozenset(), settings)  # workers=1 ran in this process: drop its copy of the known hashes

    cached = _table([])
    if resolved:
        by_hash = cache.load(set(resolved.values())).set_index("content_hash")
        have = [p for p, h in resolved.items() if h in by_hash.index]
        if have:
            cached = by_hash.loc[[resolved[p] for p in have]].reset_index()
            cached["path"] = have
            cached["ext_format"] = [ext_format(p) for p in have]   # same content may sit under another extension
        if len(have) < len(resolved):  # rows vanished from the cache (deleted underneath us): measure now
            have_set = set(have)
            lost = [p for p in resolved if p not in have_set]
            pending.extend(_measure_chunk(lost))
            for p in lost:
                del resolved[p]
    if pending:
        flush()
    new = pd.concat(batches, ignore_index=True) if batches else _table([])
    if cache is not None:
        entries = {p: (*stamps[p], h) for p, h in resolved.items() if p in stamps}
        entries.update((p, (*stamps[p], h)) for p, h in zip(new["path"], new["content_hash"])
                       if isinstance(h, str) and p in stamps)
        cache.update_path_index(entries)
        cache.compact_if_fragmented()
    parts = [df for df in (new, cached[["path", *COLUMNS]]) if len(df)]
    table = pd.concat(parts, ignore_index=True) if parts else _table([])
    table = _with_column_types(table.set_index("path").reindex(unique))
    return FeatureRun(table=table, decoded=len(new), from_cache=len(cached), cache_dir=str(cache.dir) if cache else None)
