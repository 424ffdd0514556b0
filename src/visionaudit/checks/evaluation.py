"""Evaluation checks: honest metrics of the user's predictions, per split, each with a bootstrap CI.

The evaluated samples, the split whose numbers are reported and the metrics with their CIs come from
:mod:`visionaudit.analyses.evaluation_data` (computed once per run, shared with the error-analysis,
hygiene and comparison checks and with evaluate's tables).

- ``evaluation.metrics`` (info): accuracy, balanced accuracy, macro F1, macro ROC-AUC, log-loss and
  top-k per split with CIs, per-class precision/recall/F1 in evidence; records ``misclassified``.
- ``evaluation.small_test_set``: the evaluation split is too small for the CI width the user needs.
- ``evaluation.calibration``: expected calibration error above a threshold (reliability table in evidence,
  and the one-vs-rest ECE and reliability table of every class with ``min_class_samples`` or more samples).
- ``evaluation.overfitting``: train accuracy significantly above the evaluation split's, or both low.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..analyses.evaluation_data import (
    BOOTSTRAP_DEFAULTS,
    HEADLINE,
    class_calibration,
    confidence_bins,
    ece_statistic,
    evaluated,
    evaluation_data,
    evaluation_split,
    metric_rows,
    number_or_none,
    per_class_rows,
    reliability_rows,
    split_metrics,
    with_ci,
)
from ..context import Context
from ..findings import CheckOutput, Finding, Severity
from ..metrics import bootstrap_ci, ci_halfwidth, classification_metrics, samples_needed
from .base import Check


class EvaluationMetrics(Check):
    id = "evaluation.metrics"
    family = "evaluation"
    suites = ("evaluate",)
    title = "Model metrics with confidence intervals"
    severity = Severity.INFO
    defaults = {**BOOTSTRAP_DEFAULTS, "top_k": [1, 5], "n_bins": 15}
    why = ("One number on one split hides how sure it is and what it misses: accuracy on an imbalanced test set "
           "can look fine while rare classes fail, and a 2-point difference between models is noise on a few hundred "
           "images. Each headline metric comes with a 95% bootstrap confidence interval, per split, with per-class "
           "precision, recall and F1.")
    fix = ("Report the evaluation split's metric with its interval; compare models only when intervals (or a paired "
           "test) say the difference is real; look at the per-class table for classes far below the average.")

    def params_for_metrics(self) -> dict[str, Any]:
        p = self.params
        return {"n_resamples": int(p["n_resamples"]), "confidence": float(p["confidence"]), "seed": int(p["seed"]),
                "top_k": tuple(int(k) for k in p["top_k"]), "n_bins": int(p["n_bins"])}

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        by_split = split_metrics(ctx, **self.params_for_metrics())
        if not by_split:
            return output.add(*self._nothing_evaluated(ctx))
        ids = np.concatenate([m.data.ids for m in by_split.values()])
        p_true = np.concatenate([m.data.P[np.arange(m.data.n), m.data.y] for m in by_split.values()])
        wrong = ~np.concatenate([m.data.correct for m in by_split.values()])
        output.score("misclassified", pd.Series(p_true, index=ids), pd.Series(wrong, index=ids))
        main = evaluation_split(evaluated(ctx)) or next(iter(by_split))
        m = by_split[main]
        level = f"{self.params['confidence']:.0%}"
        message = (f"{main} ({m.data.n} samples, {level} CIs): "
                   + ", ".join(with_ci(name, m) for name in HEADLINE if name in m.report.headline()))
        others = [f"{name} accuracy {o.report.accuracy:.3f}" for name, o in by_split.items() if name != main]
        if others:
            message += "; " + ", ".join(others)
        evidence = {
            "evaluation_split": main,
            "confidence": float(self.params["confidence"]),
            "n_resamples": int(self.params["n_resamples"]),
            "classes": list(m.data.classes),
            "splits": {name: {"n": o.data.n, "metrics": metric_rows(o), "per_class": per_class_rows(o),
                              "confusion": o.report.confusion.tolist(), "undefined": dict(o.report.undefined),
                              "ece": number_or_none(o.report.ece), "reliability": reliability_rows(o.report.calibration)}
                       for name, o in by_split.items()},
        }
        return output.add(self.finding(issue="metrics", message=message, evidence=evidence))

    def _nothing_evaluated(self, ctx: Context) -> list[Finding]:
        if ctx.predictions is None:
            return []
        predicted = int(ctx.predictions.has.sum())
        labelled = int(ctx.dataset.samples["label"].notna().sum())
        message = (f"{predicted} samples have a prediction and {labelled} have a label, but none has both: "
                   "no metric can be computed")
        return [self.finding(issue="nothing_evaluated", message=message, severity=Severity.WARNING,
                             title="No sample has both a label and a prediction",
                             evidence={"with_prediction": predicted, "labelled": labelled})]


class SmallTestSet(Check):
    id = "evaluation.small_test_set"
    family = "evaluation"
    suites = ("evaluate",)
    title = "Test set too small for the precision you need"
    severity = Severity.WARNING
    defaults = {"max_ci_halfwidth": 0.02, "confidence": 0.95}
    why = ("On a small test set the accuracy itself is uncertain: with 500 images at 90% accuracy the 95% interval is "
           "about +-2.6 points, so differences between models or releases smaller than that are noise. Even 100 right "
           "out of 100 only bounds the error rate below 3% (95%).")
    fix = ("Label more test images (the finding says how many a CI of the wanted half-width needs), or report the "
           "interval and decide only on differences larger than it.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        d = evaluation_data(ctx)
        if d is None:
            return output
        name = d.split
        accuracy = float(d.correct.mean())
        width, level = float(self.params["max_ci_halfwidth"]), float(self.params["confidence"])
        # Near 0 or 100% accuracy the normal approximation claims a CI of width ~0; the exact one-sided bound
        # (the "rule of three" at 95%) still needs -ln(1 - confidence) / width samples, so that is the floor.
        floor = -math.log(1.0 - level)
        needed = max(samples_needed(width, accuracy, confidence=level), math.ceil(floor / width - 1e-9))
        if d.n >= needed:
            return output
        now = max(ci_halfwidth(d.n, accuracy, confidence=level), floor / d.n)
        message = (f"the {name} split has {d.n} samples with labels and predictions; a {level:.0%} CI of accuracy "
                   f"+-{width:g} at the observed accuracy {accuracy:.3f} needs {needed} (now +-{now:.3f})")
        evidence = {"split": name, "n": d.n, "needed": needed, "accuracy": accuracy, "ci_halfwidth": now}
        return output.add(self.finding(issue="small_test_set", message=message, evidence=evidence))


class Calibration(Check):
    id = "evaluation.calibration"
    family = "evaluation"
    suites = ("evaluate",)
    title = "Predicted probabilities are miscalibrated"
    severity = Severity.WARNING
    #: min_class_samples: a class's one-vs-rest ECE is reported only with this many samples of it; fewer
    #: positives put one or two samples in each occupied bin and the per-class ECE is noise.
    defaults = {"max_ece": 0.05, "n_bins": 15, "min_class_samples": 30, **BOOTSTRAP_DEFAULTS}
    why = ("When a model says 90% it should be right 90% of the time: thresholds, abstention and any decision "
           "that uses the probability rely on it. The expected calibration error (ECE) is the average gap between "
           "confidence and accuracy over confidence bins.")
    fix = ("Fit a temperature (or isotonic) scaling on a held-out validation split and apply it to the outputs; "
           "re-check on the test split. Over-confidence often also signals overfitting.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        d = evaluation_data(ctx)
        if d is None or d.n < 2:
            return output
        name = d.split
        n_bins = int(self.params["n_bins"])
        report = classification_metrics(d.y, d.P, top_k=(1,), n_bins=n_bins)
        if report.ece <= float(self.params["max_ece"]):
            return output
        bins = confidence_bins(d.P, n_bins)
        ci = bootstrap_ci(ece_statistic(n_bins), bins, d.P.max(axis=1), d.correct, vectorized=True,
                          n_resamples=int(self.params["n_resamples"]), confidence=float(self.params["confidence"]),
                          seed=int(self.params["seed"]))
        table = report.calibration
        filled = table[table["count"] > 0]
        over = float((filled["count"] * -filled["gap"].clip(upper=0)).sum() / d.n)
        direction = "over-confident" if over >= report.ece / 2 else "under-confident"
        message = (f"{name} ECE {report.ece:.3f} (CI {ci.low:.3f}-{ci.high:.3f}) above {self.params['max_ece']:g}: "
                   f"mostly {direction} (mean confidence {d.P.max(axis=1).mean():.3f}, accuracy {report.accuracy:.3f})")
        class_ece, class_tables = class_calibration(d.y, d.P, n_bins)
        support = np.bincount(d.y, minlength=len(d.classes))
        enough = support >= int(self.params["min_class_samples"])
        per_class = [{"class": c, "support": int(support[i]), "ece": float(class_ece[i]),
                      "reliability": reliability_rows(class_tables[i])}
                     for i, c in enumerate(d.classes) if enough[i]]
        if per_class:
            worst = max(per_class, key=lambda r: r["ece"])
            message += f"; least calibrated class {worst['class']} (one-vs-rest ECE {worst['ece']:.3f})"
        evidence = {"split": name, "n": d.n, "ece": report.ece, "ece_low": ci.low, "ece_high": ci.high,
                    "reliability": reliability_rows(table), "per_class": per_class,
                    "per_class_skipped": [c for i, c in enumerate(d.classes) if not enough[i]]}
        return output.add(self.finding(issue="miscalibrated", message=message, evidence=evidence))


class Overfitting(Check):
    id = "evaluation.overfitting"
    family = "evaluation"
    suites = ("evaluate",)
    title = "Overfitting or underfitting"
    severity = Severity.WARNING
    defaults = {"max_gap": 0.05, "min_gain_over_majority": 0.10, **BOOTSTRAP_DEFAULTS}
    why = ("A model much more accurate on its training images than on held-out ones has memorised them and will "
           "do worse in production than its training curve suggests; one that is barely better than always "
           "answering the most common class on both has not learnt the task.")
    fix = ("Overfitting: more data or augmentation, regularisation, early stopping on the validation split, a "
           "smaller model. Underfitting: a bigger model, longer training, better features; check the labels first.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        data = evaluated(ctx)
        name = evaluation_split(data)
        if name is None or "train" not in data or name == "train":
            return output
        train, held = data["train"], data[name]
        if train.n < 2 or held.n < 2:
            return output
        correct = np.concatenate([train.correct, held.correct])
        is_train = np.r_[np.ones(train.n, bool), np.zeros(held.n, bool)]
        # Stratified by split, each resample redraws both splits independently at their own sizes.
        gap = bootstrap_ci(_accuracy_gap, correct, is_train, vectorized=True, stratify=is_train,
                           n_resamples=int(self.params["n_resamples"]), confidence=float(self.params["confidence"]),
                           seed=int(self.params["seed"]))
        acc_train, acc_held = float(train.correct.mean()), float(held.correct.mean())
        majority = {s: float(np.bincount(d.y).max() / d.n) for s, d in (("train", train), (name, held))}
        evidence = {"split": name, "train_accuracy": acc_train, f"{name}_accuracy": acc_held, "gap": gap.estimate,
                    "gap_low": gap.low, "gap_high": gap.high, "majority_rate": majority,
                    "n": {"train": train.n, name: held.n}}
        findings = []
        if gap.low > float(self.params["max_gap"]):
            findings.append(self.finding(
                issue="overfitting", evidence=evidence, title="Overfitting: train accuracy well above held-out",
                message=(f"train accuracy {acc_train:.3f} vs {name} {acc_held:.3f}: gap {gap.estimate:.3f} "
                         f"(CI {gap.low:.3f}-{gap.high:.3f}) exceeds {self.params['max_gap']:g}")))
        margin = float(self.params["min_gain_over_majority"])
        if acc_train < majority["train"] + margin and acc_held < majority[name] + margin:
            findings.append(self.finding(
                issue="underfitting", evidence=evidence, title="Underfitting: barely better than the majority class",
                message=(f"train accuracy {acc_train:.3f} and {name} {acc_held:.3f} are both less than {margin:g} "
                         f"above always predicting the most common class ({majority['train']:.3f} / {majority[name]:.3f})")))
        return output.add(*findings)


def _accuracy_gap(correct: np.ndarray, is_train: np.ndarray) -> np.ndarray:
    train = (correct & is_train).sum(axis=-1) / is_train.sum(axis=-1)
    held = (correct & ~is_train).sum(axis=-1) / (~is_train).sum(axis=-1)
    return train - held
