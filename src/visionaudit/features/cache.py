"""On-disk cache of per-image features, keyed by file content.

Rows live in Parquet parts under ``<cache_dir>/features/<key>/`` where ``key`` names the feature
version and decode settings. A path index (path, size, mtime, ctime) -> content hash lets a re-scan
skip even reading unchanged files; a file that moved or was copied is recognised by its content
hash and not decoded again. Every write goes to a temporary file renamed into place, so a reader
(or a second scan sharing the cache) never sees half a file; parts are merged when they become many.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

#: More parts than this are merged into one at the end of a run.
MAX_PARTS = 16
_INDEX_COLUMNS = ["path", "size", "mtime_ns", "ctime_ns", "content_hash"]


def default_cache_dir() -> Path:
    """``$VISIONAUDIT_CACHE``, else ``$XDG_CACHE_HOME/visionaudit``, else ``~/.cache/visionaudit``."""
    env = os.environ.get("VISIONAUDIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "visionaudit"


def file_stamp(path: str) -> tuple[int, int, int] | None:
    """(size, mtime_ns, ctime_ns), or None if the file cannot be stat'ed.

    ctime is part of the stamp because a copy that preserves mtime (``cp -p``, rsync, tar) can
    replace a file's content without changing its size or mtime, but always sets a new ctime.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _write_atomic(table: pa.Table, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    # Thumbnails and other bytes barely compress: snappy on them cost ~40 ms per 5,000 rows for nothing.
    pq.write_table(table, tmp, compression={f.name: "none" if pa.types.is_binary(f.type) else "snappy"
                                            for f in table.schema})
    os.replace(tmp, target)


class FeatureCache:
    """Content-keyed store of feature rows (one per distinct file content).

    >>> from visionaudit.features.decode import measure_file
    >>> cache = FeatureCache("cache-demo", "v1-w128")
    >>> row = measure_file("data/train/beach/beach_0000.jpg")
    >>> cache.append(pd.DataFrame([row]))
    >>> cache.load({row["content_hash"]}).columns[:3].tolist(), len(cache.known_hashes())
    (['content_hash', 'file_size', 'error_kind'], 1)
    """

    def __init__(self, cache_dir: str | os.PathLike, key: str, kind: str = "features"):
        # ``kind`` keeps other per-file rows (model outputs: "models") apart from the features.
        self.dir = Path(cache_dir) / kind / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.dir / "paths.parquet"

    def _parts(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet"))

    def _dataset(self, parts: list[Path]) -> pads.Dataset:
        # A column that was all-None in one part was written as type null: unify so it reads as the
        # type the other parts gave it.
        schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
        return pads.dataset([str(p) for p in parts], format="parquet", schema=schema)

    def _read_parts(self, columns: list[str] | None = None, hashes: set[str] | None = None) -> pa.Table | None:
        # A concurrent scan may merge parts between listing and reading them: list again and retry.
        for attempt in range(3):
            parts = self._parts()
            if not parts:
                return None
            try:
                ds = self._dataset(parts)
                flt = pads.field("content_hash").isin(pa.array(sorted(hashes), pa.string())) if hashes is not None else None
                return ds.to_table(columns=columns, filter=flt)
            except FileNotFoundError:
                if attempt == 2:
                    raise
        return None

    def known_hashes(self) -> set[str]:
        """Content hashes that have a cached row."""
        table = self._read_parts(columns=["content_hash"])
        return set() if table is None else set(table.column("content_hash").to_pylist())

    def path_index(self) -> dict[str, tuple[int, int, int, str]]:
        """path -> (size, mtime_ns, ctime_ns, content_hash) as seen by the last scans."""
        if not self.index_path.exists():
            return {}
        table = pq.read_table(self.index_path)
        if table.schema.names != _INDEX_COLUMNS:  # written by an older version: start afresh
            return {}
        cols = [table.column(c).to_pylist() for c in _INDEX_COLUMNS]
        return {p: (s, m, c, h) for p, s, m, c, h in zip(*cols)}

    def unchanged(self, paths: list[str]) -> tuple[dict[str, str], dict[str, tuple[int, int, int]]]:
        """(path -> content hash for paths whose stamp equals the path index's, path -> stamp of every
        path that could be stat'ed): unchanged files need not even be read."""
        index = self.path_index()
        resolved, stamps = {}, {}
        for p in paths:
            stamp = file_stamp(p)
            if stamp is None:
                continue
            stamps[p] = stamp
            seen = index.get(p)
            if seen is not None and seen[:3] == stamp:
                resolved[p] = seen[3]
        return resolved, stamps

    def update_path_index(self, entries: dict[str, tuple[int, int, int, str]]) -> None:
        """Record (size, mtime_ns, ctime_ns, content_hash) for these paths, keeping the others."""
        if not entries:
            return
        merged = self.path_index()
        merged.update(entries)
        paths = list(merged)
        values = list(zip(*merged.values()))
        table = pa.table({"path": pa.array(paths, pa.string()),
                          "size": pa.array(values[0], pa.int64()), "mtime_ns": pa.array(values[1], pa.int64()),
                          "ctime_ns": pa.array(values[2], pa.int64()), "content_hash": pa.array(values[3], pa.string())})
        _write_atomic(table, self.index_path)

    def load(self, hashes: set[str]) -> pd.DataFrame:
        """Cached rows whose content hash is in ``hashes`` (one row per hash)."""
        table = self.load_table(hashes)
        if table is None:
            return pd.DataFrame(columns=["content_hash"])
        return table.to_pandas().drop_duplicates("content_hash").reset_index(drop=True)

    def load_table(self, hashes: set[str]) -> pa.Table | None:
        """Cached rows whose content hash is in ``hashes`` as Arrow (a hash may repeat), or None."""
        return self._read_parts(hashes=hashes) if hashes else None

    def append(self, rows: pd.DataFrame | pa.Table) -> None:
        """Store newly computed rows (those with a content hash) as one new part."""
        if isinstance(rows, pd.DataFrame):
            rows = pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
        rows = rows.filter(pc.is_valid(rows.column("content_hash")))
        if rows.num_rows:
            _write_atomic(rows, self.dir / f"part-{uuid.uuid4().hex}.parquet")

    def compact_if_fragmented(self) -> None:
        """Merge all parts into one when there are more than :data:`MAX_PARTS`."""
        if len(self._parts()) > MAX_PARTS:
            self.compact()

    def compact(self) -> None:
        """Merge all parts into one (one row per content hash)."""
        parts = self._parts()
        if len(parts) < 2:
            return
        df = self._dataset(parts).to_table().to_pandas()
        df = df.drop_duplicates("content_hash").reset_index(drop=True)
        _write_atomic(pa.Table.from_pandas(df, preserve_index=False), self.dir / f"part-{uuid.uuid4().hex}.parquet")
        for p in parts:
            p.unlink(missing_ok=True)
