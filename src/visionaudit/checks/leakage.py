"""Split leakage: the same picture, or the same subject, on both sides of a train/test boundary.

The duplicate index's groups (:mod:`visionaudit.analyses.duplicate_index`) are reused here: a
duplicate group whose members sit in more than one split leaks. Rows that list one file in two
splits are exact leakage too. Group leakage needs no pixels: a value of a user-named column
(``group_columns``: patient, video, scene, camera...) found in more than one split. The groups come
from :mod:`visionaudit.analyses.leakage`.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..analyses.duplicate_index import EXACT_DEFAULTS, NEAR_DEFAULTS
from ..analyses.leakage import exact_groups, group_value_groups, leaking, near_groups
from ..context import Context
from ..findings import CheckOutput, Severity
from .base import Check


def _record(ctx: Context, output: CheckOutput, issue: str, groups: list[dict[str, Any]], scores: dict[str, float]) -> list[str]:
    flagged = list(dict.fromkeys(s for g in groups for s in g["samples"]))
    series = pd.Series(1.0, index=ctx.sample_ids)
    for s in flagged:
        series[s] = scores.get(s, 0.0)
    output.score(issue, series, pd.Series(ctx.sample_ids.isin(flagged), index=ctx.sample_ids))
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

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        groups = leaking(exact_groups(ctx, self.params))
        flagged = _record(ctx, output, "exact_split_leakage", groups, {})
        if not groups:
            return output
        pairs = _pair_counts(groups)
        return output.add(self.finding(
            issue="exact_split_leakage", samples=flagged, scores={s: 0.0 for s in flagged}, groups=groups,
            message=(f"{len(groups)} image(s) appear in more than one split "
                     f"({', '.join(f'{k}: {v}' for k, v in pairs.items())})."),
            evidence={"groups": len(groups), "images": len(flagged), "split_pairs": pairs}))


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

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        groups = leaking(near_groups(ctx, self.params))
        scores = {s: 1.0 - g["similarity"] for g in groups for s in g["samples"]}
        flagged = _record(ctx, output, "near_split_leakage", groups, scores)
        if not groups:
            return output
        pairs = _pair_counts(groups)
        return output.add(self.finding(
            issue="near_split_leakage", samples=flagged, scores=scores, groups=groups,
            message=(f"{len(groups)} group(s) of near-duplicate images span more than one split "
                     f"({', '.join(f'{k}: {v}' for k, v in pairs.items())})."),
            evidence={"groups": len(groups), "images": len(flagged), "split_pairs": pairs}))


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

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        columns = list(ctx.group_columns)
        if not columns:
            return output
        ids = ctx.dataset.samples["sample_id"]
        groups = group_value_groups(ctx, columns)
        flagged_mask = ids.isin({s for g in groups for s in g["samples"]}).to_numpy()
        per_column = {column: sum(g["column"] == column for g in groups) for column in columns}
        output.score("group_leakage", pd.Series((~flagged_mask).astype(float), index=ids),
                       pd.Series(flagged_mask, index=ids))
        if not groups:
            return output
        flagged = ids[flagged_mask].tolist()
        detail = ", ".join(f"{c}: {n}" for c, n in per_column.items() if n)
        return output.add(self.finding(
            issue="group_leakage", samples=flagged, scores={s: 0.0 for s in flagged}, groups=groups,
            message=f"{len(groups)} group value(s) appear in more than one split ({detail}).",
            evidence={"columns": per_column, "groups": len(groups), "images": len(flagged)}))
