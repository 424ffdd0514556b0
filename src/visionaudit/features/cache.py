"""On-disk cache of per-image features, keyed by file content.

Rows live in Parquet parts under ``<cache_dir>/features/<key>/`` where ``key`` names the feature
version and decode settings. A path index (path, size, mtime) -> content hash lets a re-scan skip
even reading unchanged files; a file that moved or was copied is recognised by its content hash
and not decoded again. Parts are compacted when they become many.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

MAX_PARTS = 16


def default_cache_dir() -> Path:
    env = os.environ.get("VISIONAUDIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "visionaudit"


class FeatureCache:
    """Content-keyed store of feature rows (one per distinct file content)."""

    def __init__(self, cache_dir: str | os.PathLike, key: str):
        self.dir = Path(cache_dir) / "features" / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.dir / "paths.parquet"

    def _parts(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet"))

    def known_hashes(self) -> set[str]:
        parts = self._parts()
        if not parts:
            return set()
        table = pads.dataset([str(p) for p in parts], format="parquet").to_table(columns=["content_hash"])
        return set(table.column("content_hash").to_pylist())

    def path_index(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, content_hash) as seen by the last scan."""
        if not self.index_path.exists():
            return {}
        df = pq.read_table(self.index_path).to_pandas()
        return {p: (int(s), int(m), h) for p, s, m, h in zip(df["path"], df["size"], df["mtime_ns"], df["content_hash"])}

    def update_path_index(self, entries: dict[str, tuple[int, int, str]]) -> None:
        merged = self.path_index()
        merged.update(entries)
        df = pd.DataFrame(
            [(p, s, m, h) for p, (s, m, h) in merged.items()], columns=["path", "size", "mtime_ns", "content_hash"]
        )
        tmp = self.index_path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
        os.replace(tmp, self.index_path)

    def load(self, hashes: set[str]) -> pd.DataFrame:
        """Cached rows whose content hash is in ``hashes`` (one row per hash)."""
        parts = self._parts()
        if not parts or not hashes:
            return pd.DataFrame()
        ds = pads.dataset([str(p) for p in parts], format="parquet")
        table = ds.to_table(filter=pads.field("content_hash").isin(pa.array(sorted(hashes))))
        df = table.to_pandas()
        return df.drop_duplicates("content_hash").reset_index(drop=True)

    def append(self, rows: pd.DataFrame) -> None:
        """Store newly computed rows (those with a content hash) as one new part."""
        rows = rows[rows["content_hash"].notna()]
        if rows.empty:
            return
        part = self.dir / f"part-{uuid.uuid4().hex}.parquet"
        tmp = part.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False), tmp)
        os.replace(tmp, part)
        if len(self._parts()) > MAX_PARTS:
            self.compact()

    def compact(self) -> None:
        parts = self._parts()
        if len(parts) < 2:
            return
        df = pads.dataset([str(p) for p in parts], format="parquet").to_table().to_pandas()
        df = df.drop_duplicates("content_hash").reset_index(drop=True)
        merged = self.dir / f"part-{uuid.uuid4().hex}.parquet"
        tmp = merged.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
        os.replace(tmp, merged)
        for p in parts:
            p.unlink(missing_ok=True)
