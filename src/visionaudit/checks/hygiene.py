"""Evaluation hygiene: test metrics measured on images the model was trained on.

``evaluation.leaked_test_metrics`` finds the evaluation split's samples (test, else val) that are
exact or near duplicates of training samples, or share a value of a group column (patient, video...)
with one, using the scan's leakage detection (:func:`visionaudit.analyses.leakage.copies_of`: the one
duplicate index, the same thresholds). A model scores well on what it memorised, so the headline
metrics on the evaluation split are inflated; the finding recomputes them on the de-leaked split
(every headline metric with its bootstrap CI, as ``evaluation.metrics``) next to the original, and
bootstraps the accuracy inflation itself: ``accuracy(all) - accuracy(without copies)``, resampling
copies and clean samples separately at their own counts.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analyses.duplicate_index import EXACT_DEFAULTS, NEAR_DEFAULTS
from ..analyses.evaluation_data import (
    ALL,
    BOOTSTRAP_DEFAULTS,
    HEADLINE,
    LABELS,
    UNSPLIT,
    SplitData,
    evaluation_data,
    metric_rows,
    metrics_of,
    split_metrics,
)
from ..analyses.leakage import copies_of
from ..context import Context
from ..findings import CheckOutput, Severity
from ..metrics import bootstrap_ci
from .base import Check

#: The split the model learnt from.
TRAIN = "train"
#: Training samples listed per copy in the finding's groups (a shared patient may have hundreds).
MAX_SOURCES = 10


def _inflation(correct: np.ndarray, copied: np.ndarray) -> np.ndarray:
    # Vectorised over the bootstrap's resample axis: accuracy on all minus accuracy without the copies.
    clean = ~copied
    return correct.mean(axis=-1) - (correct & clean).sum(axis=-1) / clean.sum(axis=-1)


class LeakedTestMetrics(Check):
    """Evaluation samples that copy training samples, and the metrics without them.

    One finding (a warning; info when accuracy moves by less than ``min_inflation``) listing every copy
    (exact first) with the training samples it copies in ``groups``;
    ``evidence["metrics"]`` holds each headline metric on all evaluation samples and on the
    de-leaked ones (value, low, high) and their difference. Records ``copied_from_train`` for every
    evaluated sample of the split.

    >>> accuracy = LeakedTestMetrics().run(ctx).findings[0].evidence["metrics"]["accuracy"]
    >>> {k: round(v["value"], 3) for k, v in accuracy.items() if k != "inflation"}, round(accuracy["inflation"], 4)
    ({'original': 0.804, 'deleaked': 0.8}, 0.0043)
    """

    id = "evaluation.leaked_test_metrics"
    family = "evaluation"
    suites = ("evaluate",)
    title = "Test metrics inflated by copies of training images"
    severity = Severity.WARNING
    #: near_copies: also remove near duplicates (resized, re-encoded, cropped copies), not only exact ones.
    #: min_inflation: below this accuracy inflation the finding is info, not a warning: on 500 distinct MNIST
    #: test digits, 7 look-alike '1's are near copies of training digits and shift accuracy by +0.002.
    defaults: ClassVar[dict[str, Any]] = {**EXACT_DEFAULTS, **NEAR_DEFAULTS, "near_copies": True, **BOOTSTRAP_DEFAULTS,
                                          "top_k": [1, 5], "min_inflation": 0.005}
    why = ("A test image that is a copy of a training image (or shows the same patient, video or scene) is scored on "
           "what the model memorised: the reported metrics are higher than what the model will do on new images, and "
           "the more copies, the larger the gap.")
    fix = ("Report the de-leaked metrics; remove the copies from the test split (or from training) and re-split by "
           "group so that copies and groups always land in one split (see leakage.exact, leakage.near, leakage.group).")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        d = evaluation_data(ctx)
        split = None if d is None else d.split
        if split in (None, ALL, UNSPLIT, TRAIN) or not (ctx.dataset.samples["split"] == TRAIN).any():
            return output
        copies = copies_of(ctx, split, TRAIN, exact={k: self.params[k] for k in EXACT_DEFAULTS},
                           near={k: self.params[k] for k in NEAR_DEFAULTS}, near_copies=bool(self.params["near_copies"]),
                           columns=list(ctx.group_columns))
        ids = d.ids.astype(str)
        copied = np.array([s in copies for s in ids], bool)
        output.score("copied_from_train", pd.Series(np.where(copied, 0.0, 1.0), index=ids),
                       pd.Series(copied, index=ids))
        if not copied.any():
            return output
        params = {"n_resamples": int(self.params["n_resamples"]), "confidence": float(self.params["confidence"]),
                  "seed": int(self.params["seed"])}
        top_k = tuple(int(k) for k in self.params["top_k"])
        # The same settings as evaluation.metrics share its memoised bootstrap of the whole split.
        original = split_metrics(ctx, **params, top_k=top_k)[split]
        clean = SplitData(split, d.ids[~copied], d.y[~copied], d.P[~copied], d.classes)
        kinds = {kind: [s for s in ids[copied] if copies[s].kind == kind] for kind in ("exact", "near", "group")}
        level = f"{params['confidence']:.0%}"
        acc = original.report.accuracy
        acc_ci = original.intervals.get("accuracy")
        counted = ", ".join(f"{len(v)} {k}" for k, v in kinds.items() if v)
        message = f"{int(copied.sum())} of {d.n} {split} samples copy training samples ({counted}): "
        evidence: dict[str, Any] = {
            "split": split, "n": d.n, "copies": int(copied.sum()), "clean": clean.n,
            "by_kind": {k: len(v) for k, v in kinds.items()}, "confidence": params["confidence"],
            "copies_accuracy": float(d.correct[copied].mean()),
        }
        severity = None
        if clean.n >= 2:
            deleaked = metrics_of(clean, **params, top_k=top_k, n_bins=15)
            before, after = metric_rows(original), metric_rows(deleaked)
            evidence["metrics"] = {name: {"original": before[name], "deleaked": after.get(name),
                                          "inflation": _difference(before[name], after.get(name))}
                                   for name in before}
            gap = bootstrap_ci(_inflation, d.correct, copied, stratify=copied, vectorized=True, **params)
            evidence.update(accuracy_inflation=gap.estimate, accuracy_inflation_low=gap.low,
                            accuracy_inflation_high=gap.high)
            if gap.estimate < float(self.params["min_inflation"]):
                severity = Severity.INFO
            clean_ci = deleaked.intervals["accuracy"]
            message += (f"accuracy {acc:.3f} ({level} CI {acc_ci.low:.3f}-{acc_ci.high:.3f}) on all, "
                        f"{deleaked.report.accuracy:.3f} ({clean_ci.low:.3f}-{clean_ci.high:.3f}) on the {clean.n} "
                        f"without copies; the copies shift it by {gap.estimate:+.3f} (CI {gap.low:+.3f} to "
                        f"{gap.high:+.3f}) and are {evidence['copies_accuracy']:.1%} right")
            others = [f"{LABELS[name]} {before[name]['value']:.3f} -> {after[name]['value']:.3f}"
                      for name in HEADLINE[1:] if name in after and after[name]["value"] is not None
                      and before[name]["value"] is not None]
            if others:
                message += "; " + ", ".join(others)
        else:
            message += f"only {clean.n} evaluated sample(s) are not copies, too few to measure anything without them"
        return output.add(self.finding(issue="leaked_test_metrics", message=message,
                             samples=[str(s) for k in kinds.values() for s in k],
                             groups=self._groups(ctx, split, [s for k in kinds.values() for s in k], copies),
                             evidence=evidence, severity=severity))

    @staticmethod
    def _groups(ctx: Context, split: str, copied: list[str], copies: dict[str, Any]) -> list[dict[str, Any]]:
        """Each copy first, then (up to MAX_SOURCES of) the training samples it copies."""
        label = dict(zip(ctx.dataset.samples["sample_id"], ctx.dataset.samples["label"]))
        groups = []
        for s in copied:
            c = copies[s]
            members = [str(m) for m in (s, *c.sources[:MAX_SOURCES])]
            group = {"samples": members, "kind": c.kind, "splits": [split] + [TRAIN] * (len(members) - 1),
                     "labels": [None if pd.isna(label[m]) else label[m] for m in members], "sources": len(c.sources)}
            if c.kind == "group":
                group.update(column=c.column, value=c.value)
            groups.append(group)
        return groups


def _difference(before: dict[str, float | None], after: dict[str, float | None] | None) -> float | None:
    if after is None or before["value"] is None or after["value"] is None:
        return None
    return before["value"] - after["value"]
