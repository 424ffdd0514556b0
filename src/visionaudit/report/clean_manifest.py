"""A cleaned manifest: the user's samples minus those a fix would drop. Never touches the input."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..findings import Result

#: Issues whose samples are dropped: the file is unusable as it is.
DROP_ISSUES = ("missing", "zero_byte", "not_image", "truncated", "unreadable", "too_large")
#: Group issues where all but the first sample of each group are dropped.
DEDUPLICATE_ISSUES = ("exact_duplicates",)


def clean_manifest(result: Result) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, dropped): samples to keep, and the dropped ones with a ``reason`` column."""
    samples = result.features
    keep_cols = [c for c in samples.columns if c in ("sample_id", "path", "label", "split")]
    keep_cols += [c for c in result.dataset_summary.get("metadata_columns", []) if c in samples.columns]
    reasons: dict[str, str] = {}
    for f in result.findings:
        if f.issue in DROP_ISSUES:
            for s in f.samples:
                reasons.setdefault(s, f.issue)
        elif f.issue in DEDUPLICATE_ISSUES:
            for group in f.groups:
                for s in group.get("samples", [])[1:]:
                    reasons.setdefault(s, f"{f.issue} of {group['samples'][0]}")
    dropped_mask = samples["sample_id"].isin(reasons)
    kept = samples.loc[~dropped_mask, keep_cols].reset_index(drop=True)
    dropped = samples.loc[dropped_mask, keep_cols].reset_index(drop=True)
    dropped["reason"] = dropped["sample_id"].map(reasons)
    return kept, dropped


def write_clean_manifest(result: Result, path: str | os.PathLike) -> tuple[Path, int, int]:
    """Write the kept samples as CSV (and ``<name>.dropped.csv`` beside it); returns (path, kept, dropped)."""
    path = Path(path)
    kept, dropped = clean_manifest(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept.to_csv(path, index=False)
    dropped.to_csv(path.with_name(path.stem + ".dropped.csv"), index=False)
    return path, len(kept), len(dropped)
