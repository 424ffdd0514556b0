"""Split leakage: the same picture, or the same subject, on both sides of a train/test boundary.

The duplicate checks' pairs are computed once per run (:func:`~visionaudit.checks.duplicates.
duplicate_index`) and reused here: a duplicate group whose members sit in more than one split
leaks. Rows that list one file in two splits are exact leakage too. Group leakage needs no
pixels: a value of a user-named column (``group_columns``: patient, video, scene, camera...)
found in more than one split.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import Finding, Severity
from .base import Check
from .duplicates import EXACT_DEFAULTS, NEAR_DEFAULTS, describe_group, duplicate_index

_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def _split_list(splits: list[Any]) -> list[str]:
    return sorted({str(s) for s in splits if s is not None}, key=lambda s: (_SPLIT_ORDER.get(s, 3), s))


def _leaking(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups with members in more than one split, each told which splits it spans."""
    out = []
    for g in groups:
        spans = _split_list(g["splits"])
        if len(spans) > 1:
            out.append({**g, "spans": spans})
    return out


def _record(ctx: Context, issue: str, groups: list[dict[str, Any]], scores: dict[str, float]) -> list[str]:
    flagged = list(dict.fromkeys(s for g in groups for s in g["samples"]))
    series = pd.Series(1.0, index=ctx.sample_ids)
    for s in flagged:
        series[s] = scores.get(s, 0.0)
    ctx.add_scores(issue, series, pd.Series(ctx.sample_ids.isin(flagged), index=ctx.sample_ids))
    return flagged


def _pair_counts(groups: list[dict[str, Any]]) -> dict[str, int]:
    """How many groups join each pair of splits ("train/test": 3)."""
    counts: dict[str, int] = {}
    for g in groups:
        spans = g["spans"]
        for a in range(len(spans)):
            for b in range(a + 1, len(spans)):
                key = f"{spans[a]}/{spans[b]}"
                counts[key] = counts.get(key, 0) + 1
    return counts


class ExactSplitLeakage(Check):
    """Exact duplicates (same pixels, or one file listed twice) in more than one split."""

    id = "leakage.exact"
    family = "leakage"
    title = "Identical images in different splits"
    severity = Severity.ERROR
    defaults = dict(EXACT_DEFAULTS)
    why = ("An image that is in both the training and the evaluation split is scored on data the model has "
           "memorised: the reported accuracy is higher than what the model will do on new images.")
    fix = ("Remove the copies from the evaluation split (or from training), then re-split by group so that copies "
           "always land in the same split.")

    def run(self, ctx: Context) -> list[Finding]:
        index = duplicate_index(ctx, exact=self.params)
        groups = [describe_group(ctx, index.ids[g].tolist(), "exact", 1.0) for g in index.exact_groups()]
        # Rows listing one file twice have the same bytes and so are already in one exact group,
        # except where the file could not be decoded; those rows are grouped by path here.
        decoded = set(index.ids)
        samples = ctx.features[["path"]].assign(sample_id=ctx.sample_ids)
        for _, rows in samples[~samples["sample_id"].isin(decoded)].groupby("path", sort=False):
            if len(rows) > 1:
                groups.append(describe_group(ctx, rows["sample_id"].tolist(), "exact", 1.0))
        groups = _leaking(groups)
        flagged = _record(ctx, "exact_split_leakage", groups, {})
        if not groups:
            return []
        pairs = _pair_counts(groups)
        return [self.finding(
            issue="exact_split_leakage", samples=flagged, scores={s: 0.0 for s in flagged}, groups=groups,
            message=(f"{len(groups)} image(s) appear in more than one split "
                     f"({', '.join(f'{k}: {v}' for k, v in pairs.items())})."),
            evidence={"groups": len(groups), "images": len(flagged), "split_pairs": pairs})]


class NearSplitLeakage(Check):
    """Near duplicates (edited copies) in more than one split.

    Severity warning, where exact leakage is an error: a near match is a judgement on 16x16
    fingerprints with a measured false-positive rate on collections of look-alike images (2.75% of
    distinct MNIST digits, all '1's drawn alike; none on COCO128 photos), so it should not fail a
    build on its own. Where matches are trusted, set ``severity: error`` for this check.
    """

    id = "leakage.near"
    family = "leakage"
    title = "Near-duplicate images in different splits"
    severity = Severity.WARNING
    defaults = dict(NEAR_DEFAULTS)
    why = ("A resized, re-compressed or cropped copy of a training image in the test split is still the same "
           "scene: the model is rewarded for recognising it, and test accuracy overstates performance on new data.")
    fix = ("Move each group into a single split (split by group, e.g. by source photo or capture session), or drop "
           "the copies from the evaluation split.")

    def run(self, ctx: Context) -> list[Finding]:
        index = duplicate_index(ctx, near=self.params)
        groups = _leaking([describe_group(ctx, index.ids[g].tolist(), "near", index.weakest_link(g))
                           for g in index.near_groups()])
        scores = {s: 1.0 - g["similarity"] for g in groups for s in g["samples"]}
        flagged = _record(ctx, "near_split_leakage", groups, scores)
        if not groups:
            return []
        pairs = _pair_counts(groups)
        return [self.finding(
            issue="near_split_leakage", samples=flagged, scores=scores, groups=groups,
            message=(f"{len(groups)} group(s) of near-duplicate images span more than one split "
                     f"({', '.join(f'{k}: {v}' for k, v in pairs.items())})."),
            evidence={"groups": len(groups), "images": len(flagged), "split_pairs": pairs})]


class GroupLeakage(Check):
    """Values of a user-named group column (``group_columns``) that occur in more than one split.

    Each group lists the column, the value, the splits it spans and every sample carrying it.
    """

    id = "leakage.group"
    family = "leakage"
    title = "Groups (patient, video, scene...) in more than one split"
    severity = Severity.ERROR
    why = ("Images of one patient, video or scene are correlated: with the same group on both sides of a split, "
           "the model can score by recognising the group (the scanner, the background, the person) and test "
           "accuracy says little about new groups.")
    fix = ("Split by group (e.g. scikit-learn's GroupShuffleSplit or GroupKFold on this column) so every value "
           "stays in one split.")

    def run(self, ctx: Context) -> list[Finding]:
        columns = list(ctx.settings.get("group_columns", []) or [])
        if not columns:
            return []
        samples = ctx.dataset.samples
        ids = samples["sample_id"]
        flagged_mask = np.zeros(len(samples), bool)
        groups: list[dict[str, Any]] = []
        per_column: dict[str, int] = {}
        for column in columns:
            has = samples[column].notna() & samples["split"].notna()
            sub = samples[has]
            spread = sub.groupby(sub[column].astype(str))["split"].nunique()
            leaking = spread[spread > 1].index
            per_column[column] = int(len(leaking))
            for value in leaking:
                rows = sub[sub[column].astype(str) == value]
                flagged_mask |= samples["sample_id"].isin(rows["sample_id"]).to_numpy()
                groups.append({
                    "samples": rows["sample_id"].tolist(), "column": column, "value": value,
                    "spans": _split_list(rows["split"].tolist()), "splits": rows["split"].tolist(),
                    "labels": [None if pd.isna(v) else v for v in rows["label"]],
                })
        ctx.add_scores("group_leakage", pd.Series((~flagged_mask).astype(float), index=ids),
                       pd.Series(flagged_mask, index=ids))
        if not groups:
            return []
        flagged = ids[flagged_mask].tolist()
        detail = ", ".join(f"{c}: {n}" for c, n in per_column.items() if n)
        return [self.finding(
            issue="group_leakage", samples=flagged, scores={s: 0.0 for s in flagged}, groups=groups,
            message=f"{len(groups)} group value(s) appear in more than one split ({detail}).",
            evidence={"columns": per_column, "groups": len(groups), "images": len(flagged)})]
