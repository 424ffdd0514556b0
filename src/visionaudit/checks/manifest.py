"""Manifest integrity: the same file listed on more than one row."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..context import Context
from ..findings import CheckOutput, Severity
from .base import Check


def _plain(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


class DuplicatePaths(Check):
    """Rows (samples) of a manifest, COCO or YOLO list that point at one file.

    Every such row is flagged with score 0 (others 1); each group lists the rows sharing one path in
    source order, with their labels and splits, so a disagreement shows at once.

    >>> from visionaudit import scan
    >>> group = scan("manifest.csv").finding("duplicate_manifest_path").groups[0]
    >>> group["samples"], group["labels"], group["splits"]     # doctest: +NORMALIZE_WHITESPACE
    (['data/train/beach/beach_0014.jpg', 'data/train/beach/beach_0014.jpg@line 220'], ['beach', 'city'],
     ['train', 'test'])
    """

    id = "integrity.duplicate_paths"
    family = "integrity"
    title = "Files listed more than once"
    severity = Severity.WARNING
    why = ("A file listed twice is seen twice per epoch and weighs double in metrics; listed with different "
           "labels it teaches the model two answers for one image, and listed in two splits it leaks the "
           "test image into training.")
    fix = ("Keep one row per file: drop the repeats, or merge them after deciding the right label and split "
           "(the groups show each row's label and split).")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        samples = ctx.dataset.samples
        repeated = samples["path"].duplicated(keep=False)
        ids = samples["sample_id"]
        output.score("duplicate_manifest_path", pd.Series((~repeated).astype(float).to_numpy(), index=ids),
                       pd.Series(repeated.to_numpy(), index=ids))
        if not repeated.any():
            return output
        groups = []
        conflicting_labels = conflicting_splits = 0
        for path, rows in samples[repeated].groupby("path", sort=False):
            labels = [_plain(v) for v in rows["label"]]
            splits = [_plain(v) for v in rows["split"]]
            conflicting_labels += len(set(labels)) > 1
            conflicting_splits += len(set(splits)) > 1
            groups.append({"samples": rows["sample_id"].tolist(), "path": path, "labels": labels, "splits": splits})
        flagged = ids[repeated].tolist()
        message = f"{len(flagged)} rows list {len(groups)} file(s) more than once"
        extras = []
        if conflicting_labels:
            extras.append(f"{conflicting_labels} with different labels")
        if conflicting_splits:
            extras.append(f"{conflicting_splits} in more than one split")
        if extras:
            message += f" ({'; '.join(extras)})"
        return output.add(self.finding(
            issue="duplicate_manifest_path", message=message + ".", samples=flagged,
            scores={s: 0.0 for s in flagged}, groups=groups,
            evidence={"rows": len(flagged), "files": len(groups), "conflicting_labels": conflicting_labels,
                      "conflicting_splits": conflicting_splits},
        ))
