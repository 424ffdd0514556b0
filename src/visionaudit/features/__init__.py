"""Per-image features: one decode per image per run, on the run's executor, cached by file content.

Each file is read, hashed and, unless a cached row has its content, decoded once: the decode yields
its feature row (:mod:`.decode`) and the preview the report's thumbnail is made from
(:mod:`.thumbnails`), which is appended to a pack file beside the cache's parts while the row keeps
its location.
"""
from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..engine import Executor, make_executor, progress_bar
from . import decode, hashing, properties, thumbnails
from .cache import FeatureCache, default_cache_dir
from .decode import (
    COLUMNS,
    DEFAULT_MAX_PIXELS,
    FEATURE_VERSION,
    WORK_SIZE,
    content_hash,
    ext_format,
    measure_bytes,
    read_file,
)
from .thumbnails import LOCATION_COLUMNS, PackWriter, ReportThumbnails, Thumbnails, temporary_pack_folder

__all__ = ["FeatureRun", "ReportThumbnails", "Thumbnails", "compute_features", "default_cache_dir", "COLUMNS"]

#: Newly measured rows are written to the cache every this many rows, so an interrupted scan resumes.
BATCH_ROWS = 4096
#: Files per task sent to a worker, at most: each finished task wakes the main process, whose CPU
#: time the workers then miss (5,000 benchmark JPEGs: main 0.31 s of CPU with 32 files a task, 0.24 s
#: with 64). The executor sends fewer to small runs, so that every worker gets several tasks.
CHUNK_SIZE = 64


def _arrow_type(default: Any) -> pa.DataType:
    if isinstance(default, bool):
        return pa.bool_()
    if isinstance(default, int):
        return pa.int64()
    if isinstance(default, float):
        return pa.float64()
    return pa.binary() if isinstance(default, bytes) else pa.string()


#: Arrow types of a feature row and of its preview's location. Rows go from dicts straight to
#: Arrow (~5 us a row), to the cache and to the table: through a DataFrame first, 5,000 rows cost
#: the main process ~0.2 s more.
SCHEMA = pa.schema([("path", pa.string()), *((name, _arrow_type(v)) for name, v in COLUMNS.items()),
                    (LOCATION_COLUMNS[0], pa.string()), (LOCATION_COLUMNS[1], pa.int64()),
                    (LOCATION_COLUMNS[2], pa.int64())])


@dataclass(frozen=True)
class _Settings:
    """What measuring any file needs (the executor's state, shipped once per worker): the content
    hashes that have a cached row, and the decode settings."""

    known: frozenset[str]
    max_pixels: int
    work_size: int


def _measure_path(settings: _Settings, path: str) -> dict[str, Any] | str:
    """The row of ``path`` (with its ``preview`` when it decodes), or only its content hash when
    a cached row has that content. Rows travel back as dicts: an Arrow batch costs more to build
    and pickle (~0.2 s of CPU per 5,000 images)."""
    data, error_row = read_file(path)
    if data is None:
        row = error_row
    else:
        digest = content_hash(data)
        if digest in settings.known:
            return digest
        row = measure_bytes(data, ext_format(path), settings.max_pixels, settings.work_size, digest, preview=True)
    row["path"] = path
    return row


@dataclass
class FeatureRun:
    """Per-file features (one row per distinct path) and how they were obtained.

    ``decoded`` counts paths measured in this run (a missing or undecodable file included: its row
    says why); ``from_cache`` counts paths whose row came from the cache (unchanged files, and files
    whose content was seen before under any path). ``thumbnails`` gives each decoded path's report
    thumbnail, from the preview the decode that measured it kept (in this run or the one that cached
    the row).
    """

    table: pd.DataFrame
    decoded: int
    from_cache: int
    cache_dir: str | None
    thumbnails: Thumbnails


@functools.cache
def _code_digest() -> str:
    """Digest of the column names and of the code that computes them: editing how a feature is
    measured starts a new cache even if FEATURE_VERSION was not bumped."""
    h = hashlib.blake2b(",".join(COLUMNS).encode(), digest_size=6)
    for module in (decode, properties, hashing, thumbnails):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def _cache_key(work_size: int, max_pixels: int) -> str:
    """Names the cache folder: rows computed by other code or decode settings are never mixed in."""
    return f"v{FEATURE_VERSION}-{_code_digest()}-w{work_size}-m{max_pixels}"


def _frame(table: pa.Table, paths: list[str]) -> pd.DataFrame:
    """The feature table indexed by path: numpy columns of the types the defaults in :data:`COLUMNS`
    have, text and bytes as Python objects with None where missing, whether the rows were measured
    now or read back from the cache (column by column from Arrow: pandas' own conversion made
    Arrow-backed strings that cost ~0.1 s per 5,000 rows to iterate and convert)."""
    index = pd.Index(paths, name="path")
    columns = {}
    for name, default in COLUMNS.items():
        col = table.column(name)
        if default is None or isinstance(default, bytes):
            # dtype=object explicitly: from a bare array pandas 3 would infer its string dtype (NaN for None)
            columns[name] = pd.Series(col.to_numpy(zero_copy_only=False), index=index, dtype=object)
        else:
            columns[name] = pd.Series(pc.fill_null(col, default).to_numpy(zero_copy_only=False), index=index)
    return pd.DataFrame(columns, index=index)


def compute_features(
    paths: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    work_size: int = WORK_SIZE,
    executor: Executor | None = None,
) -> FeatureRun:
    """Measure every distinct path once; reuse cached rows for files whose content was seen before.

    Unchanged files (same path, size, mtime and ctime as last time) are not even read; other files
    are read and hashed, and decoded only if no cached row has their content hash. The work runs on
    ``executor`` (default: :func:`~visionaudit.engine.make_executor` with ``workers``).

    >>> paths = ["data/train/beach/beach_0000.jpg", "data/val/beach/beach_0011.jpg"]
    >>> run = compute_features(paths, cache_dir="features-demo")
    >>> run.decoded, run.from_cache, round(float(run.table.loc[paths[0], "brightness"]), 3), run.table["error_kind"].tolist()
    (2, 0, 0.551, [None, 'truncated'])
    >>> compute_features(paths, cache_dir="features-demo").from_cache     # unchanged files: not even read
    2

    Returns a table indexed by path with the columns of :data:`COLUMNS`, and the report thumbnails.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    cache = FeatureCache(cache_dir or default_cache_dir(), _cache_key(work_size, max_pixels)) if use_cache else None

    # path -> content hash whose row is in the cache; path -> (size, mtime, ctime)
    resolved, stamps = cache.unchanged(unique) if cache is not None else ({}, {})
    todo = [p for p in unique if p not in resolved]
    known = frozenset(cache.known_hashes()) if (cache is not None and todo) else frozenset()
    settings = _Settings(known, int(max_pixels), int(work_size))
    # Previews go beside the cache's parts, or for a run without a cache to a folder of its own.
    owned = None if cache is not None else temporary_pack_folder()
    pack_dir = cache.dir if cache is not None else Path(owned)
    packs = PackWriter(pack_dir)

    measured: list[pa.RecordBatch] = []
    unwritten: list[dict[str, Any]] = []
    # Cache parts are written on a thread (Parquet writing releases the GIL) while rows keep coming.
    writer = ThreadPoolExecutor(1, thread_name_prefix="visionaudit-cache") if cache is not None else None
    writes: list[Future] = []

    def flush() -> None:
        if unwritten:
            packs.flush()   # before any part records where in the pack its previews are
            batch = pa.RecordBatch.from_pylist(unwritten, schema=SCHEMA)
            measured.append(batch)
            if writer is not None:
                writes.append(writer.submit(cache.append, pa.Table.from_batches([batch]).drop(["path"])))
        unwritten.clear()

    def take(row: dict[str, Any]) -> None:
        jpeg = row.pop("preview", None)
        if jpeg is None:
            row.update(preview_pack=None, preview_offset=0, preview_length=0)
        else:
            row.update(preview_pack=packs.name, preview_offset=packs.add(jpeg), preview_length=len(jpeg))
        unwritten.append(row)
        if len(unwritten) >= BATCH_ROWS:
            flush()

    try:
        with progress_bar(len(todo), "decoding images", progress) as advance:
            for i, out in (executor or make_executor(workers)).map(_measure_path, todo, settings,
                                                                   chunk_size=CHUNK_SIZE, progress=advance):
                if isinstance(out, str):
                    resolved[todo[i]] = out
                else:
                    take(out)

        if resolved:
            stored = cache.load_table(set(resolved.values()))
            stored_hashes = set() if stored is None else set(stored.column("content_hash").to_pylist())
            lost = [p for p, h in resolved.items() if h not in stored_hashes]
            if lost:  # rows vanished from the cache (deleted underneath us): measure now
                anew = replace(settings, known=frozenset())
                for p in lost:
                    del resolved[p]
                    take(_measure_path(anew, p))
        flush()
    finally:
        packs.close()
        if writer is not None:
            writer.shutdown(wait=True)
    for done in writes:
        done.result()   # a failed cache write is an error of the run, as it was when written inline

    new = pa.Table.from_batches(measured, schema=SCHEMA)
    parts = [new]
    if resolved:
        # Each resolved path gets the stored row of its content, under its own path and extension
        # (the same content may sit under another name).
        stored = stored.cast(pa.schema([SCHEMA.field(n) for n in stored.column_names]))
        first = pc.index_in(pa.array(list(resolved.values()), pa.string()), stored.column("content_hash"))
        reused = stored.take(first).select(SCHEMA.names[1:])
        have = list(resolved)
        reused = reused.set_column(reused.column_names.index("ext_format"), "ext_format",
                                   pa.array([ext_format(p) for p in have], pa.string()))
        parts.append(reused.add_column(0, "path", pa.array(have, pa.string())))
    if cache is not None:
        new_paths, new_hashes = new.column("path").to_pylist(), new.column("content_hash").to_pylist()
        entries = {p: (*stamps[p], h) for p, h in resolved.items() if p in stamps}
        entries.update((p, (*stamps[p], h)) for p, h in zip(new_paths, new_hashes) if h is not None and p in stamps)
        cache.update_path_index(entries)
        cache.compact_if_fragmented()
    table = pa.concat_tables(parts)
    table = table.take(pc.index_in(pa.array(unique, pa.string()), table.column("path")))
    frame = _frame(table, unique)
    return FeatureRun(table=frame, decoded=new.num_rows, from_cache=len(resolved),
                      cache_dir=str(cache.dir) if cache else None, thumbnails=_thumbnails(table, frame.index, pack_dir, owned))


def _thumbnails(table: pa.Table, paths: pd.Index, pack_dir: Path, owned: str | None) -> Thumbnails:
    """The :class:`Thumbnails` of ``table``'s rows (aligned with ``paths``), from their location columns."""
    pack, offset, length = (table.column(c).combine_chunks() for c in LOCATION_COLUMNS)
    encoded = pc.dictionary_encode(pack)
    return Thumbnails(pack_dir, paths, pc.fill_null(encoded.indices, -1).to_numpy(), encoded.dictionary.to_pylist(),
                      offset.to_numpy(zero_copy_only=False), length.to_numpy(zero_copy_only=False), owned=owned)
