"""Weak segments: slices of the data where the model is significantly less accurate than on the rest.

Candidate slices are every value of each metadata column (the dataset's ``metadata_columns`` plus the
run's ``group_columns``) and quantile bins of image properties (brightness, sharpness, size...). The
label and split are not slices: a weak class is per-class recall, reported by the metrics.

Each slice is judged on the labelled samples that have a prediction (correct = the most probable
class equals the label):

- test: one-sided Fisher exact test that the slice is less accurate than the rest of the samples,
  computed as the hypergeometric tail ``P(X <= correct in slice)`` (identical to
  ``scipy.stats.fisher_exact(..., alternative="less")``, but one vectorised call for all slices);
  exact at every slice size, so no large-sample condition to check;
- multiple testing: Benjamini-Hochberg q-values over all slices tested (``fdr``, default 0.05);
- effect: the slice's accuracy must also be ``min_drop`` (default 5 points) below overall, so a tiny
  but "significant" gap in a huge slice is not reported;
- CI: Wilson score interval of the slice's accuracy (``scipy.stats.binomtest(...).proportion_ci``).
  A slice's accuracy is one binomial proportion; Wilson stays inside [0, 1] and does not collapse to a
  point for small slices with no or all errors, as a percentile bootstrap does.

Slices of one column are mutually exclusive, so their tests are dependent; BH is the customary
correction here and the false-discovery rate measured on real data is in ``tests/test_segments.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from ..context import Context
from ..dataset.model import SAMPLE_COLUMNS
from ..findings import Finding, Severity
from .base import Check

#: Image properties binned into slices by default (columns of ``ctx.features``).
PROPERTIES = ("brightness", "contrast", "sharpness", "noise", "entropy", "megapixels", "aspect_ratio")
#: Sample-table columns that are never metadata slices.
NOT_SLICES = frozenset(SAMPLE_COLUMNS) | {"source_line"}


@dataclass
class _Slice:
    name: str
    column: str
    kind: str
    members: np.ndarray  # bool mask over the judged samples
    low: float | None = None
    high: float | None = None


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _metadata_slices(values: pd.Series, column: str, max_values: int) -> tuple[list[_Slice], str | None]:
    present = values.dropna().astype(str)
    distinct = present.unique()
    if len(distinct) > max_values:
        return [], f"{len(distinct)} distinct values (more than max_values={max_values})"
    text = values.astype(str).where(values.notna(), None).to_numpy()
    return [_Slice(f"{column} = {v}", column, "metadata", text == v) for v in sorted(distinct)], None


def _property_slices(values: np.ndarray, column: str, bins: int) -> tuple[list[_Slice], str | None]:
    """Quantile bins of one property; each bin is named by its value range."""
    finite = np.isfinite(values)
    if not finite.any():
        return [], "not measured"
    edges = np.unique(np.quantile(values[finite], np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 2:
        return [], f"constant ({_fmt(edges[0])})"
    # Bins are [edge_i, edge_i+1), the last one closed; repeated quantiles (ties) merge into one bin.
    which = np.where(finite, np.searchsorted(edges[1:-1], np.where(finite, values, 0.0), side="right"), -1)
    out = []
    for b in range(len(edges) - 1):
        lo, hi = float(edges[b]), float(edges[b + 1])
        closing = "]" if b == len(edges) - 2 else ")"
        out.append(_Slice(f"{column} in [{_fmt(lo)}, {_fmt(hi)}{closing}", column, "property", which == b, lo, hi))
    return out, None


def _wilson(correct: int, size: int, confidence: float) -> tuple[float, float]:
    ci = stats.binomtest(int(correct), int(size)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


class WeakSegments(Check):
    """Slices (metadata values, property bins) significantly less accurate than the rest of the samples.

    One finding lists every flagged slice as a group (worst accuracy first) with its size, accuracy,
    Wilson CI, p and q values and example ids (most confidently wrong first); ``evidence["slices"]``
    is the table of all slices tested and ``evidence["skipped"]`` says which were not, and why.

    >>> ctx = Context(dataset, predictions=read_predictions("preds.csv", dataset))  # doctest: +SKIP
    >>> [g["slice"] for g in WeakSegments(properties=()).run(ctx)[0].groups]        # doctest: +SKIP
    ['scanner = C']
    """

    id = "segments.weak_segments"
    family = "segments"
    title = "Weak segments: slices where the model is less accurate"
    severity = Severity.WARNING
    defaults: ClassVar[dict[str, Any]] = {
        "min_size": 30,          # slices smaller than this are not tested
        "max_values": 50,        # metadata columns with more distinct values are not sliced
        "bins": 5,               # quantile bins per image property
        "properties": PROPERTIES,  # feature columns to bin; empty = metadata slices only (no image decode)
        "fdr": 0.05,             # Benjamini-Hochberg false-discovery rate
        "min_drop": 0.05,        # least accuracy drop below overall worth reporting
        "confidence": 0.95,      # Wilson CI level
        "examples": 12,          # example sample ids per slice, wrong ones first
    }
    why = ("An overall accuracy can hide a group where the model fails: one camera, scanner, site or lighting "
           "condition, or dark or blurry images. Users from that group get a worse model than the headline "
           "number promises, and the gap often points at missing training data or a shortcut.")
    fix = ("Look at the example images of each slice. Collect or re-weight training data for the slice, check "
           "its labels and preprocessing (a different scanner may need its own normalisation), and report "
           "accuracy per slice next to the overall figure.")

    def run(self, ctx: Context) -> list[Finding]:
        preds = ctx.predictions
        if preds is None:
            return []
        samples = ctx.dataset.samples
        index = preds.label_index(samples["label"])
        judged = index >= 0
        if not judged.any():
            return []
        probs = preds.probs[judged]
        label_index = index[judged]
        correct = probs.argmax(axis=1) == label_index
        # Most confidently wrong first: the lower the probability of the given label, the worse.
        given_prob = probs[np.arange(len(label_index)), label_index]
        ids = samples["sample_id"][judged].astype(str).to_numpy()

        slices, skipped = self._slices(ctx, judged)
        table, tested = self._test(slices, correct, skipped)
        overall = float(correct.mean())
        overall_ci = _wilson(int(correct.sum()), len(correct), self.params["confidence"])
        flagged = [(s, row) for s, row in zip(tested, table) if row["flagged"]]
        flagged.sort(key=lambda pair: (pair[1]["accuracy"], pair[1]["q"]))

        scores = pd.Series(1.0, index=ids)
        flags = pd.Series(False, index=ids)
        ordered: list[str] = []
        groups = []
        for s, row in flagged:
            members = np.flatnonzero(s.members)
            members = members[np.lexsort((given_prob[members], correct[members]))]
            member_ids = ids[members]
            ratio = row["accuracy"] / overall
            scores.loc[member_ids] = np.minimum(scores.loc[member_ids].to_numpy(), ratio)
            flags.loc[member_ids] = True
            ordered.extend(member_ids.tolist())
            group = {"samples": member_ids[: self.params["examples"]].tolist(),
                     **{k: row[k] for k in ("slice", "column", "kind", "size", "correct", "accuracy", "ci",
                                             "rest_accuracy", "drop", "p", "q")}}
            if s.kind == "property":
                group.update(property=s.column, low=s.low, high=s.high)
            groups.append(group)
        ctx.add_scores("weak_segments", scores, flags)

        evidence = {
            "judged": len(ids),
            "overall_accuracy": overall,
            "overall_ci": list(overall_ci),
            "test": "one-sided Fisher exact (slice vs rest)",
            "correction": "benjamini-hochberg",
            "ci_method": "wilson",
            "slices": table,
            "skipped": skipped,
        }
        if not groups:
            return []
        samples_out = list(dict.fromkeys(ordered))
        shown = "; ".join(f"{g['slice']}: {g['accuracy']:.1%} [{g['ci'][0]:.1%}, {g['ci'][1]:.1%}] "
                          f"(n={g['size']}, q={g['q']:.2g})" for g in groups[:3])
        more = f"; and {len(groups) - 3} more" if len(groups) > 3 else ""
        message = (f"{len(groups)} of {len(table)} slices are significantly less accurate than overall "
                   f"({overall:.1%}): {shown}{more}")
        return [self.finding(issue="weak_segments", message=message, samples=samples_out, scores=scores,
                             groups=groups, evidence=evidence)]

    def _slices(self, ctx: Context, judged: np.ndarray) -> tuple[list[_Slice], list[dict[str, Any]]]:
        samples = ctx.dataset.samples
        columns = list(dict.fromkeys(list(ctx.dataset.metadata_columns)
                                     + list(ctx.settings.get("group_columns", []) or [])))
        slices: list[_Slice] = []
        skipped: list[dict[str, Any]] = []
        for column in columns:
            if column in NOT_SLICES:
                continue
            if column not in samples.columns:
                skipped.append({"column": column, "reason": "not a column of the samples table"})
                continue
            found, reason = _metadata_slices(samples[column][judged].reset_index(drop=True), column,
                                             int(self.params["max_values"]))
            if reason:
                skipped.append({"column": column, "reason": reason})
            slices.extend(found)
        properties = list(self.params["properties"] or [])
        if properties:
            features = ctx.features
            for column in properties:
                if column not in features.columns:
                    raise ValueError(f"check {self.id!r}: property {column!r} is not a feature column; "
                                     f"known numeric features include {', '.join(PROPERTIES)}")
                values = pd.to_numeric(features[column], errors="coerce").to_numpy(dtype=float)[judged]
                values = np.where(ctx.valid.to_numpy()[judged], values, np.nan)
                found, reason = _property_slices(values, column, int(self.params["bins"]))
                if reason:
                    skipped.append({"column": column, "reason": reason})
                slices.extend(found)
        return slices, skipped

    def _test(self, slices: list[_Slice], correct: np.ndarray,
              skipped: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[_Slice]]:
        n, right = len(correct), int(correct.sum())
        tested = []
        for s in slices:
            size = int(s.members.sum())
            if size < self.params["min_size"]:
                skipped.append({"slice": s.name, "size": size, "reason": f"fewer than min_size={self.params['min_size']} samples"})
            elif size == n:
                skipped.append({"slice": s.name, "size": size, "reason": "holds every judged sample"})
            else:
                tested.append(s)
        if not tested:
            return [], []
        sizes = np.array([s.members.sum() for s in tested])
        hits = np.array([correct[s.members].sum() for s in tested])
        # Fisher's one-sided p: chance of this few correct in a slice of this size drawn from all samples.
        p = stats.hypergeom.cdf(hits, n, right, sizes)
        q = stats.false_discovery_control(p, method="bh")
        overall = right / n
        table = []
        for s, size, k, pv, qv in zip(tested, sizes, hits, p, q):
            acc = k / size
            rest = (right - k) / (n - size)
            drop = overall - acc
            table.append({
                "slice": s.name, "column": s.column, "kind": s.kind, "size": int(size), "correct": int(k),
                "accuracy": float(acc), "ci": list(_wilson(k, size, self.params["confidence"])),
                "rest_accuracy": float(rest), "drop": float(drop), "p": float(pv), "q": float(qv),
                "flagged": bool(qv <= self.params["fdr"] and drop >= self.params["min_drop"]),
            })
        return table, tested
