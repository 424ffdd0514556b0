"""Baselines: is the model better than guessing, and do image properties alone give the label away?

``baselines.property_shortcut`` cross-validates a small model (gradient boosting by default) that sees
only per-image properties (size, file size, brightness, sharpness, format...) and never the content.
When it predicts the label clearly better than always guessing the majority class, the label is tied
to how images were taken or stored (one class from another camera, resized or compressed
differently): a shortcut a real model can learn instead of the content. It needs no predictions.

``baselines.model_vs_baseline`` compares the user's model on the evaluation split (test, else val,
else every labelled sample with a prediction) with the majority class, a class-prior random guess and
the property-only model, each with the paired bootstrap of :mod:`visionaudit.metrics`.
scikit-learn (the ``evaluate`` extra) is imported only when a check runs.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import CheckOutput, Severity
from ..metrics import bootstrap_ci, paired_bootstrap
from ..predictors.properties import (  # noqa: F401 - re-exported: they were defined here
    CATEGORICAL_COLUMNS,
    MODELS,
    PROPERTY_COLUMNS,
    PropertyPredictions,
    property_predictions,
    property_table,
)
from .base import Check


def _accuracy(correct: np.ndarray) -> np.ndarray:
    # Vectorised over the bootstrap's leading resample axis.
    return correct.mean(axis=-1)


def _majority(labels: pd.Series) -> str:
    """Most common label; ties go to the first in sorted order so the choice never depends on row order."""
    counts = labels.astype(str).value_counts()
    top = counts.max()
    return min(counts.index[counts == top])


def property_alone_accuracy(pp: PropertyPredictions) -> pd.DataFrame:
    """Cross-validated accuracy of each property on its own (a depth-3 tree, same folds), best first.

    Ranking properties one at a time names the culprit even when several carry the same signal
    (width, height, megapixels and file size all move together when a class is resized), where a
    joint model's permutation importance splits the credit between them and can rank each near zero.
    """
    from sklearn.model_selection import cross_val_predict
    from sklearn.tree import DecisionTreeClassifier

    rows = []
    for column in pp.table.columns:
        x = pp.table[[column]].to_numpy()
        pred = cross_val_predict(DecisionTreeClassifier(max_depth=3, random_state=pp.seed), x, pp.labels, cv=pp.splits)
        rows.append({"property": column, "accuracy_alone": float(np.mean(pred == pp.labels))})
    table = pd.DataFrame(rows, columns=["property", "accuracy_alone"])
    return table.sort_values(["accuracy_alone", "property"], ascending=[False, True], ignore_index=True)


class PropertyShortcut(Check):
    id = "baselines.property_shortcut"
    family = "baselines"
    suites = ("evaluate",)
    title = "Image properties predict the label"
    severity = Severity.WARNING
    defaults = {"model": "boosting", "folds": 5, "min_gain": 0.10, "confidence": 0.95, "n_resamples": 2000,
                "seed": 0, "top": 5}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"model": MODELS}
    why = ("A model that sees only image size, file size, brightness, sharpness or format predicts the label "
           "clearly better than always guessing the most common class. The classes differ in how the images were "
           "taken or stored, not only in what they show: a network can learn that shortcut instead of the "
           "content and then fail on images from other sources. Properties measured from pixels can also follow the "
           "content itself (a handwritten 1 has less ink than an 8), so judge whether the named properties should "
           "differ between your classes.")
    fix = ("Look at the top properties per class and make them match: collect every class with the same cameras "
           "and settings, resize and re-encode all images the same way, or augment the property (random resize, "
           "brightness, JPEG quality) so it no longer tells classes apart. Then re-run: the accuracy should fall "
           "to the majority rate.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        pp = property_predictions(ctx, model=self.params["model"], folds=int(self.params["folds"]),
                                  seed=int(self.params["seed"]))
        if pp is None:
            return output
        correct = pp.correct
        majority = _majority(pd.Series(pp.labels))
        at_majority = (pp.labels == majority).astype(float)
        boot = {"n_resamples": int(self.params["n_resamples"]), "confidence": float(self.params["confidence"]),
                "seed": int(self.params["seed"]), "vectorized": True}
        acc = bootstrap_ci(_accuracy, correct, **boot)
        gain = paired_bootstrap(_accuracy, [correct], [at_majority], **boot)
        given = pp.probs[np.arange(len(pp.labels)), [pp.classes.index(c) for c in pp.labels]]
        flagged = gain.low >= float(self.params["min_gain"])
        scores = pd.Series(1.0 - given, index=pp.sample_ids)
        # The samples the shortcut gives away: the property model gets them right out of fold.
        flags = pd.Series(flagged & (correct == 1.0), index=pp.sample_ids)
        output.score("property_shortcut", scores, flags)
        if not flagged:
            return output
        alone = property_alone_accuracy(pp).head(int(self.params["top"]))
        level = f"{self.params['confidence']:.0%}"
        named = ", ".join(f"{r.property} ({r.accuracy_alone:.2f} alone)" for r in alone.itertuples())
        message = (f"Image properties alone predict the label with cross-validated accuracy {acc.estimate:.3f} "
                   f"({level} CI {acc.low:.3f}-{acc.high:.3f}) vs {gain.estimate_b:.3f} for always '{majority}' "
                   f"(gain {gain.difference:+.3f}, CI {gain.low:+.3f} to {gain.high:+.3f}); top properties: {named}")
        by_class = pp.table.groupby(pp.labels)[alone["property"].tolist()].median()
        evidence: dict[str, Any] = {
            "accuracy": acc.estimate, "accuracy_low": acc.low, "accuracy_high": acc.high,
            "majority_class": majority, "majority_rate": gain.estimate_b,
            "gain": gain.difference, "gain_low": gain.low, "gain_high": gain.high, "p_value": gain.p_value,
            "confidence": float(self.params["confidence"]), "judged": len(pp.labels),
            "model": pp.model, "folds": pp.folds, "properties_used": pp.table.columns.tolist(),
            "top_properties": alone.to_dict("records"),
            "class_medians": {str(c): {k: float(v) for k, v in row.items()} for c, row in by_class.iterrows()},
        }
        ids = pp.sample_ids[flags.to_numpy()].tolist()
        return output.add(self.finding(issue="property_shortcut", message=message, samples=ids, scores=scores,
                             evidence=evidence))


def evaluation_rows(ctx: Context) -> tuple[np.ndarray, str]:
    """Mask of the samples a model is evaluated on and the split's name.

    Labelled samples with a prediction in the test split; if there are none, in val; else all of them
    (named ``"all"``). Needs ``ctx.predictions``.

    >>> rows, split = evaluation_rows(ctx)
    >>> split, int(rows.sum())
    ('test', 46)
    """
    samples = ctx.dataset.samples
    judged = ctx.predictions.label_index(samples["label"]) >= 0
    for split in ("test", "val"):
        rows = judged & (samples["split"] == split).to_numpy()
        if rows.any():
            return rows, split
    return judged, "all"


class ModelVsBaseline(Check):
    id = "baselines.model_vs_baseline"
    family = "baselines"
    suites = ("evaluate",)
    title = "Model not better than a trivial baseline"
    severity = Severity.WARNING
    defaults = {"confidence": 0.95, "n_resamples": 2000, "seed": 0, "property_model": "boosting", "folds": 5}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"property_model": MODELS}
    why = ("A model is only useful if it beats what needs no learning: always answering the most common class, "
           "guessing at the class frequencies, or a model that sees only image size and brightness. When the "
           "model's accuracy is not significantly above such a baseline, its headline numbers say little.")
    fix = ("Check that predictions are aligned with the right images and classes, that the model trained on the "
           "labels it is judged on, and that the test set is large enough to show a difference (see the CI). If the "
           "property baseline is close, the task may be solvable from a shortcut: see baselines.property_shortcut.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        preds = ctx.predictions
        if preds is None:
            return output
        samples = ctx.dataset.samples
        rows, split = evaluation_rows(ctx)
        if rows.sum() < 2:
            return output
        given = samples["label"][rows].astype(str).to_numpy()
        predicted = np.asarray(preds.classes, dtype=object)[preds.probs[rows].argmax(axis=1)]
        model_correct = (predicted == given).astype(float)
        labelled = samples["label"].notna()
        train = labelled & (samples["split"] == "train")
        reference, source = (samples["label"][train], "train") if train.any() else (samples["label"][labelled], "all labels")
        reference = reference.astype(str)
        boot = {"n_resamples": int(self.params["n_resamples"]), "confidence": float(self.params["confidence"]),
                "seed": int(self.params["seed"]), "vectorized": True}

        majority = _majority(reference)
        prior = reference.value_counts(normalize=True)
        expected = float(np.mean([prior.get(g, 0.0) for g in given]))
        arms = [
            ("majority", f"always '{majority}' (most common in {source})", model_correct,
             (given == majority).astype(float), len(given)),
            # A constant arm makes the paired bootstrap a one-sample bootstrap of the model's accuracy minus it.
            ("class_prior", f"random guess at the class frequencies of {source} (expected accuracy)", model_correct,
             np.full(len(given), expected), len(given)),
        ]
        pp = property_predictions(ctx, model=self.params["property_model"], folds=int(self.params["folds"]),
                                  seed=int(self.params["seed"]))
        note = None
        if pp is not None:
            position = pd.Series(np.arange(len(pp.sample_ids)), index=pp.sample_ids)
            ids = samples["sample_id"][rows].astype(str)
            inside = ids.isin(position.index).to_numpy()
            if inside.sum() >= 2:
                at = position[ids[inside]].to_numpy()
                arms.append(("image_properties", f"{pp.model} on image properties only ({pp.folds}-fold out-of-fold)",
                             model_correct[inside], pp.correct[at], int(inside.sum())))
            else:
                note = "the property-only model judged fewer than 2 evaluation samples"
        else:
            note = "no property-only model: fewer than two classes with enough decodable labelled images"

        model_acc = bootstrap_ci(_accuracy, model_correct, **boot)
        table = []
        for name, description, ours, theirs, n in arms:
            r = paired_bootstrap(_accuracy, [ours], [theirs], **boot)
            verdict = "better" if r.low > 0 else "worse" if r.high < 0 else "not significantly different"
            table.append({"baseline": name, "description": description, "n": n, "accuracy": r.estimate_b,
                          "model_accuracy": r.estimate_a, "difference": r.difference, "low": r.low, "high": r.high,
                          "p_value": r.p_value, "verdict": verdict})
        failing = [row for row in table if row["verdict"] != "better"]
        if not failing:
            return output
        worse = any(row["verdict"] == "worse" for row in failing)
        level = f"{self.params['confidence']:.0%}"
        parts = "; ".join(f"{row['baseline']} {row['accuracy']:.3f} (difference {row['difference']:+.3f}, {level} CI "
                          f"{row['low']:+.3f} to {row['high']:+.3f}, p={row['p_value']:.3g}, {row['verdict']})"
                          for row in failing)
        where = "all labelled samples with predictions" if split == "all" else f"the {split} split"
        message = (f"On {where} ({len(given)} samples) the model's accuracy {model_acc.estimate:.3f} is "
                   f"{'significantly worse than' if worse else 'not significantly better than'} a baseline: {parts}")
        evidence: dict[str, Any] = {
            "split": split, "n": len(given), "model_accuracy": model_acc.estimate,
            "model_low": model_acc.low, "model_high": model_acc.high, "confidence": float(self.params["confidence"]),
            "baseline_source": source, "majority_class": majority, "baselines": table,
        }
        if note:
            evidence["note"] = note
        return output.add(self.finding(issue="model_vs_baseline", message=message, evidence=evidence,
                             severity=Severity.ERROR if worse else None))
