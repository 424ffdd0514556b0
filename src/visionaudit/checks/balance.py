"""Balance and representativeness: how the classes are spread over the dataset and its splits.

All balance checks read one shared table of class counts per split
(:func:`visionaudit.analyses.class_table.class_table`). For an
image-classification dataset the unit is the labelled image; for a detection dataset (no image labels,
but ``Dataset.objects``) it is the annotated object, counted in the split of its image. Samples without
a split are counted under ``"unassigned"`` (or ``"all"`` when the dataset has no splits at all); they
count towards the overall totals but are not a split of their own. Unlabelled datasets get no balance
findings.

Per-sample scores are recorded only where a score says something about an image: ``rare_classes``
(how rare the image's rarest class is) and ``missing_class_in_split`` (does the image's class miss from
some split). Class imbalance and label shift are properties of whole distributions, so those checks
record no per-sample scores.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..analyses.class_table import class_table, natural_key, per_sample_min
from ..context import Context
from ..findings import CheckOutput, Severity
from .base import Check

#: Scope name of the whole dataset in ``rare_classes`` evidence (next to split names).
OVERALL = "overall"


def _first_few(parts: list[str], most: int = 5) -> str:
    """Join the first ``most`` parts of a message; the evidence keeps the full list."""
    shown = "; ".join(parts[:most])
    return shown + (f"; and {len(parts) - most} more" if len(parts) > most else "")


class ClassCounts(Check):
    """Class counts per split, as an info finding whose evidence feeds the report's bar chart.

    Evidence: ``counts`` ``{split: {class: count}}`` (zeros included), ``totals`` ``{split: count}``
    and ``unit`` (``"images"``, or ``"objects"`` for detection datasets). No per-sample scores.
    """

    id = "balance.class_counts"
    family = "balance"
    title = "Class counts per split"
    severity = Severity.INFO
    why = ("How many examples each class has in each split bounds what a model can learn about it and how "
           "precisely its accuracy can be measured.")
    fix = "Nothing to fix by itself; read it with the imbalance, rare-class and missing-class findings."

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        table = class_table(ctx)
        if table is None:
            return output
        totals = table.counts.sum(axis=0)
        per_split = ", ".join(f"{s} {int(n)}" for s, n in totals.items())
        return output.add(self.finding(
            issue="class_counts",
            message=f"{len(table.counts)} class(es), {int(totals.sum())} labelled {table.unit} ({per_split}).",
            evidence={"counts": table.as_nested(), "totals": {str(s): int(n) for s, n in totals.items()},
                      "unit": table.unit},
        ))


class ClassImbalance(Check):
    """The largest class outnumbers the smallest by more than ``max_ratio`` (default 10:1) overall.

    Evidence: ``ratio``, ``largest``/``smallest`` ({class, count}), ``minority_classes`` (classes with
    fewer than largest / max_ratio examples), ``split_ratios`` (the same ratio within each split, over
    the classes present there) and ``unit``. Imbalance is a property of the distribution, not of an
    image, so no per-sample scores; the images of very small classes are scored by ``rare_classes``.
    """

    id = "balance.class_imbalance"
    family = "balance"
    title = "Class imbalance"
    severity = Severity.WARNING
    defaults = {"max_ratio": 10.0}
    why = ("A model trained on heavily imbalanced classes learns to favour the large ones; overall accuracy "
           "then hides poor recall on the small classes, which are often the ones that matter.")
    fix = ("Collect more examples of the minority classes, or compensate in training (class-weighted loss, "
           "balanced sampling) and report per-class metrics (recall, F1) instead of plain accuracy.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        table = class_table(ctx)
        if table is None or len(table.counts) < 2:
            return output
        totals = table.totals
        largest, smallest = totals.idxmax(), totals.idxmin()
        ratio = float(totals[largest] / totals[smallest])
        max_ratio = float(self.params["max_ratio"])
        if ratio <= max_ratio:
            return output
        minority = [str(c) for c, n in totals.items() if n * max_ratio < totals[largest]]
        split_ratios = {}
        for split in table.splits:
            present = table.counts[split][table.counts[split] > 0]
            if len(present) >= 2:
                split_ratios[split] = round(float(present.max() / present.min()), 4)
        return output.add(self.finding(
            issue="class_imbalance",
            message=(f"Class {largest!r} has {int(totals[largest])} {table.unit}, {ratio:.1f}x as many as class "
                     f"{smallest!r} ({int(totals[smallest])}); {len(minority)} class(es) have under 1/{max_ratio:g} "
                     f"of the largest."),
            evidence={"ratio": round(ratio, 4),
                      "largest": {"class": str(largest), "count": int(totals[largest])},
                      "smallest": {"class": str(smallest), "count": int(totals[smallest])},
                      "minority_classes": minority, "split_ratios": split_ratios, "unit": table.unit},
        ))


class RareClasses(Check):
    """Classes with too few examples overall or within a split.

    A class is rare in a scope (the whole dataset, or one split) when it has at least one example there
    but fewer than ``max(min_count, median_fraction * median)``, the median taken over the classes present
    in that scope (defaults: 5 examples, 10% of the median class). A class absent from a split is
    ``missing_class_in_split``'s business, not this one's.

    Per-sample score (every labelled image): ``count / threshold`` of its class in the scopes that contain
    it (overall and its own split), the smallest of them, capped at 1; for detection datasets the
    smallest over the image's object classes. Flagged: score < 1, i.e. the images of a class that is
    rare overall, or rare in the image's own split. Evidence ``rare``: one entry per (class, scope)
    with its ``count`` and ``threshold``, scope being ``"overall"`` or a split name; ``thresholds`` per scope;
    ``class_of``: each flagged image's rare class (the one that gave its score).
    """

    id = "balance.rare_classes"
    family = "balance"
    title = "Rare classes"
    severity = Severity.WARNING
    defaults = {"min_count": 5, "median_fraction": 0.1}
    why = ("A class with a handful of examples is barely learned, and its accuracy on a split with a handful "
           "of examples is too noisy to trust (2 test images give 0%, 50% or 100%).")
    fix = ("Collect or label more examples of the rare classes, merge them into a broader class, or move them "
           "to an explicit 'other' class; make sure each split has enough of every class to measure it.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        table = class_table(ctx)
        if table is None:
            return output
        scopes = {OVERALL: table.totals, **{s: table.counts[s] for s in table.splits}}
        thresholds = {}
        rare = []
        for scope, counts in scopes.items():
            present = counts[counts > 0]
            threshold = max(float(self.params["min_count"]),
                            float(self.params["median_fraction"]) * float(present.median()))
            thresholds[scope] = threshold
            for cls, n in present[present < threshold].items():
                rare.append({"class": str(cls), "scope": scope, "count": int(n), "threshold": round(threshold, 4)})
        rows = table.rows
        overall = rows["label"].map(scopes[OVERALL] / thresholds[OVERALL])
        in_split = pd.Series(np.inf, index=rows.index)
        for split in table.splits:
            mine = rows["split"] == split
            in_split[mine] = rows.loc[mine, "label"].map(scopes[split] / thresholds[split])
        row_scores = np.minimum(overall, in_split).clip(upper=1.0)
        scores = per_sample_min(ctx, rows, row_scores)
        flags = scores < 1.0
        output.score("rare_classes", scores, flags)
        if not rare:
            return output
        flagged = list(scores.index[flags.to_numpy()])
        # the class each flagged image stands for: the one that gave its score (its rarest, for detection)
        rarest = row_scores.groupby(rows["sample_id"].to_numpy()).idxmin()
        class_of = {s: str(rows.at[rarest[s], "label"]) for s in flagged}
        names = sorted({r["class"] for r in rare}, key=natural_key)
        where = _first_few([f"{r['class']!r} has {r['count']} "
                            f"{'overall' if r['scope'] == OVERALL else 'in ' + r['scope']} (< {r['threshold']:g})"
                            for r in rare])
        return output.add(self.finding(
            issue="rare_classes",
            message=f"{len(names)} class(es) have too few {table.unit}: {where}.",
            samples=flagged, scores=scores.dropna(),
            evidence={"rare": rare, "rare_classes": names, "unit": table.unit, "class_of": class_of,
                      "thresholds": {k: round(v, 4) for k, v in thresholds.items()}},
        ))


class MissingClassInSplit(Check):
    """A class that some splits have and others lack.

    Error when a class of val/test (any split) is absent from the training split ``train_split``: the
    model cannot learn it, yet it is evaluated on it. Warning otherwise (a training class absent from
    val/test cannot be evaluated). The finding's severity is the worse of the cases found, unless the
    user set the severity explicitly. Samples without a split are ignored.

    Per-sample score (every labelled image in a split): 0 when the image (or one of its objects, for
    detection) has a class that is absent from another split, else 1. Evidence ``missing``: one entry
    per (class, split it is missing from) with ``present_in`` ({split: count}) and ``severity``.
    """

    id = "balance.missing_class_in_split"
    family = "balance"
    title = "Class missing from a split"
    severity = Severity.WARNING
    defaults = {"train_split": "train"}
    why = ("A class missing from the training split can never be predicted, so every test example of it is an "
           "error; a class missing from a validation or test split is never measured, so its failures go unseen.")
    fix = ("Re-split with stratification by class (e.g. scikit-learn's StratifiedShuffleSplit or "
           "StratifiedGroupKFold), or collect examples of the class for the split that lacks it.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        table = class_table(ctx)
        if table is None or len(table.splits) < 2:
            return output
        counts = table.counts[table.splits]
        train = self.params["train_split"]
        missing = []
        for cls, row in counts.iterrows():
            present = {s: int(n) for s, n in row.items() if n > 0}
            if not present:
                continue
            for split in row.index[row == 0]:
                missing.append({"class": str(cls), "missing_from": str(split), "present_in": present,
                                "severity": (Severity.ERROR if split == train else Severity.WARNING).value})
        rows = table.rows[table.rows["split"].isin(table.splits)]
        affected = rows["label"].isin({m["class"] for m in missing})
        scores = per_sample_min(ctx, rows, (~affected).astype(float))
        flags = scores == 0.0
        output.score("missing_class_in_split", scores, flags)
        if not missing:
            return output
        errors = [m for m in missing if m["severity"] == Severity.ERROR.value]
        severity = Severity.ERROR if errors else Severity.WARNING
        parts = [f"class {m['class']!r} is in {', '.join(m['present_in'])} but not in {m['missing_from']}"
                 for m in missing]
        return output.add(self.finding(
            issue="missing_class_in_split", severity=severity,
            message=(f"{len(missing)} class/split gap(s)"
                     + (f", {len(errors)} of them in the training split" if errors else "")
                     + ": " + _first_few(parts) + "."),
            samples=list(scores.index[flags.to_numpy()]), scores=scores.dropna(),
            evidence={"missing": missing, "unit": table.unit},
        ))


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two count vectors' distributions: half the L1 distance, in [0, 1].

    >>> total_variation(np.array([5, 5]), np.array([9, 1]))
    0.4
    """
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


class SplitLabelShift(Check):
    """The label distribution differs between splits, significantly and materially.

    Over the real splits, a chi-square test of homogeneity (``scipy.stats.chi2_contingency`` on the
    splits x classes table of counts, with scipy's default Yates correction when it has one degree of
    freedom) must give ``p < alpha``; and at least one pair of splits must differ by a total variation
    distance of at least ``min_tvd`` with its own pairwise chi-square p-value below ``alpha / pairs``
    (Bonferroni). The first condition keeps the false-positive rate on random splits at most ``alpha``;
    the second keeps a huge dataset from being flagged for a shift too small to matter. Defaults:
    alpha 0.01, min_tvd 0.1 (a tenth of the label mass would have to move).

    For detection datasets the counts are objects, which are not independent draws (objects in one image
    come together), so p-values are optimistic there; the effect-size condition still applies.
    No per-sample scores: a shift is a property of the splits. Evidence: ``p_value``, ``chi2``, ``dof``,
    ``pairs`` (each with ``splits``, ``tvd``, ``p_value``, ``shifted``), ``distributions``
    ({split: {class: fraction}}) and ``unit``.
    """

    id = "balance.split_label_shift"
    family = "balance"
    title = "Label distribution differs between splits"
    severity = Severity.WARNING
    defaults = {"alpha": 0.01, "min_tvd": 0.1}
    why = ("When splits have different class proportions, validation and test scores measure a different "
           "problem than the one trained on: accuracy moves with the class mix, not with the model.")
    fix = ("Re-split with stratification by class, or, if the shift is real (a newer test period), report "
           "per-class metrics and reweight or recalibrate for the target class prior.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        table = class_table(ctx)
        if table is None or len(table.splits) < 2:
            return output
        counts = table.counts[table.splits]
        counts = counts.loc[counts.sum(axis=1) > 0]
        if len(counts) < 2:
            return output
        from scipy.stats import chi2_contingency  # here: scipy.stats costs ~0.7 s to import

        alpha, min_tvd = float(self.params["alpha"]), float(self.params["min_tvd"])
        test = chi2_contingency(counts.to_numpy().T)
        pair_names = list(combinations(counts.columns, 2))
        pairs = []
        for a, b in pair_names:
            sub = counts[[a, b]]
            sub = sub.loc[sub.sum(axis=1) > 0]
            tvd = total_variation(sub[a].to_numpy(), sub[b].to_numpy())
            p = float(chi2_contingency(sub.to_numpy().T).pvalue) if len(sub) >= 2 else 1.0
            pairs.append({"splits": [a, b], "tvd": round(tvd, 6), "p_value": p,
                          "shifted": bool(p < alpha / len(pair_names) and tvd >= min_tvd)})
        shifted = [p for p in pairs if p["shifted"]]
        if not (float(test.pvalue) < alpha and shifted):
            return output
        worst = max(shifted, key=lambda p: p["tvd"])
        dist = counts / counts.sum(axis=0)
        return output.add(self.finding(
            issue="split_label_shift",
            message=(f"Label distributions differ between splits (chi-square p = {float(test.pvalue):.2g}); "
                     f"{worst['splits'][0]} vs {worst['splits'][1]} differ by a total variation distance of "
                     f"{worst['tvd']:.3f}."),
            evidence={"p_value": float(test.pvalue), "chi2": float(test.statistic), "dof": int(test.dof),
                      "pairs": pairs,
                      "distributions": {str(s): {str(c): round(float(v), 6) for c, v in dist[s].items()}
                                        for s in dist.columns},
                      "unit": table.unit},
        ))
