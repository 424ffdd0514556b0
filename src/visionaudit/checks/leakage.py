"""Split leakage: the same picture, or the same subject, on both sides of a train/test boundary.

The duplicate checks' pairs are computed once per run (:func:`~visionaudit.checks.duplicates.
duplicate_index`) and reused here: a duplicate group whose members sit in more than one split
leaks. Rows that list one file in two splits are exact leakage too. Group leakage needs no
pixels: a value of a user-named column (``group_columns``: patient, video, scene, camera...)
found in more than one split.

:func:`exact_groups`, :func:`near_groups` and :func:`group_value_groups` build those groups for the
checks here and for :func:`copies_of`, which says which samples of one split copy (or share a
group with) samples of another: what ``evaluation.leaked_test_metrics`` removes from the test set.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import CheckOutput, Severity
from ..neighbours import pair_groups
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


def _record(ctx: Context, output: CheckOutput, issue: str, groups: list[dict[str, Any]], scores: dict[str, float]) -> list[str]:
    flagged = list(dict.fromkeys(s for g in groups for s in g["samples"]))
    series = pd.Series(1.0, index=ctx.sample_ids)
    for s in flagged:
        series[s] = scores.get(s, 0.0)
    output.score(issue, series, pd.Series(ctx.sample_ids.isin(flagged), index=ctx.sample_ids))
    return flagged


def exact_groups(ctx: Context, exact: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Every group of exact duplicates (described, see :func:`describe_group`), in any splits."""
    index = duplicate_index(ctx, exact=exact)
    groups = [describe_group(ctx, index.ids[g].tolist(), "exact", 1.0) for g in index.exact_groups()]
    # Rows listing one file twice have the same bytes and so are already in one exact group,
    # except where the file could not be decoded; those rows are grouped by path here.
    decoded = set(index.ids)
    samples = ctx.features[["path"]].assign(sample_id=ctx.sample_ids)
    for _, rows in samples[~samples["sample_id"].isin(decoded)].groupby("path", sort=False):
        if len(rows) > 1:
            groups.append(describe_group(ctx, rows["sample_id"].tolist(), "exact", 1.0))
    return groups


def near_groups(ctx: Context, near: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Every group of near duplicates, one member per exact group, with its weakest similarity."""
    index = duplicate_index(ctx, near=near)
    return [describe_group(ctx, index.ids[g].tolist(), "near", index.weakest_link(g)) for g in index.near_groups()]


def group_value_groups(ctx: Context, columns: list[str]) -> list[dict[str, Any]]:
    """Values of the ``columns`` found in more than one split: column, value, spans and every sample."""
    samples = ctx.dataset.samples
    groups: list[dict[str, Any]] = []
    for column in columns:
        sub = samples[samples[column].notna() & samples["split"].notna()]
        spread = sub.groupby(sub[column].astype(str))["split"].nunique()
        for value in spread[spread > 1].index:
            rows = sub[sub[column].astype(str) == value]
            groups.append({
                "samples": rows["sample_id"].tolist(), "column": column, "value": value,
                "spans": _split_list(rows["split"].tolist()), "splits": rows["split"].tolist(),
                "labels": [None if pd.isna(v) else v for v in rows["label"]],
            })
    return groups


@dataclass
class Copy:
    """How a sample copies samples of another split: ``kind`` exact, near or group (a shared value of
    ``column``), and the ``sources``: the other split's samples in its duplicate group or with its value."""

    kind: str
    sources: list[str] = field(default_factory=list)
    column: str | None = None
    value: str | None = None


def copies_of(ctx: Context, split: str, source: str = "train", *, exact: dict[str, float] | None = None,
              near: dict[str, float] | None = None, near_copies: bool = True,
              columns: Sequence[str] = ()) -> dict[str, Copy]:
    """Samples of ``split`` that are exact or near duplicates of ``source`` samples, or share a value of
    a group column with one, by sample id (the first reason found in that order).

    Near groups hold one member per exact group, so an image joins a ``source`` sample through any chain of
    exact and near links (a test copy of a training image's exact twin is found). A near copy's sources are
    the ``source`` members of that chain; an exact copy's, those of its exact group.

    >>> copies_of(ctx, "test")["test/p2_resaved.png"]                 # doctest: +SKIP
    Copy(kind='exact', sources=['train/000000000025.jpg'], column=None, value=None)
    """
    split_of = dict(zip(ctx.dataset.samples["sample_id"], ctx.dataset.samples["split"]))
    out: dict[str, Copy] = {}
    exact_found = exact_groups(ctx, exact)
    for g in exact_found:
        sources = [s for s in g["samples"] if split_of[s] == source]
        if sources:
            out.update({s: Copy("exact", sources) for s in g["samples"] if split_of[s] == split})
    if near_copies:
        linked = exact_found + near_groups(ctx, near)
        ids = list(dict.fromkeys(s for g in linked for s in g["samples"]))
        position = {s: i for i, s in enumerate(ids)}
        pairs = [(position[g["samples"][0]], position[m]) for g in linked for m in g["samples"][1:]]
        for chain in pair_groups(len(ids), np.array(pairs, np.int64)):
            members = [ids[i] for i in chain]
            sources = [s for s in members if split_of[s] == source]
            if sources:
                for s in members:
                    if split_of[s] == split and s not in out:
                        out[s] = Copy("near", sources)
    for g in group_value_groups(ctx, list(columns)):
        sources = [s for s, sp in zip(g["samples"], g["splits"]) if sp == source]
        if sources:
            for s, sp in zip(g["samples"], g["splits"]):
                if sp == split and s not in out:
                    out[s] = Copy("group", sources, g["column"], g["value"])
    return out


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
        groups = _leaking(exact_groups(ctx, self.params))
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
        groups = _leaking(near_groups(ctx, self.params))
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
        columns = list(ctx.settings.get("group_columns", []) or [])
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
