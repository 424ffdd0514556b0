"""Evaluation checks: honest metrics of the user's predictions, per split, each with a bootstrap CI.

A sample is evaluated when it has a label and a prediction (``ctx.predictions``); samples are grouped
by split (``"all"`` when the dataset has no splits, ``"unsplit"`` for samples without one). The
*evaluation split* is ``test``, else ``val``, else the only group there is. Every interval comes from
:func:`visionaudit.metrics.bootstrap_ci` (the one bootstrap), seeded so a re-run gives the same numbers.

- ``evaluation.metrics`` (info): accuracy, balanced accuracy, macro F1, macro ROC-AUC, log-loss and
  top-k per split with CIs, per-class precision/recall/F1 in evidence; records ``misclassified``.
- ``evaluation.small_test_set``: the evaluation split is too small for the CI width the user needs.
- ``evaluation.calibration``: expected calibration error above a threshold (reliability table in evidence,
  and the one-vs-rest ECE and reliability table of every class with ``min_class_samples`` or more samples).
- ``evaluation.overfitting``: train accuracy significantly above the evaluation split's, or both low.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import CheckOutput, Finding, Severity
from ..metrics import (BootstrapResult, ClassificationReport, bootstrap_ci, ci_halfwidth, classification_metrics,
                       samples_needed)
from ..metrics.classification import _bin_index, _table_from_sums, _true_class_rank
from .base import Check

#: Split names tried, in order, as the split whose numbers a user reports.
EVALUATION_SPLITS = ("test", "val")
ALL, UNSPLIT = "all", "unsplit"
#: Metrics reported with a bootstrap CI (plus ``top_<k>_accuracy`` for each k > 1 that fits).
HEADLINE = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc_macro", "log_loss")
LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "f1_macro": "macro F1",
          "roc_auc_macro": "macro ROC-AUC", "log_loss": "log-loss"}
BOOTSTRAP_DEFAULTS = {"n_resamples": 1000, "confidence": 0.95, "seed": 0}
CALIBRATION_COLUMNS = ("split", "lower", "upper", "count", "confidence", "accuracy", "gap")
CLASS_CALIBRATION_COLUMNS = ("split", "class", "lower", "upper", "count", "confidence", "accuracy", "gap")


@dataclass
class SplitData:
    """The evaluated samples of one split: ids, integer labels ``y`` and probabilities ``P`` (n, K)."""

    split: str
    ids: np.ndarray
    y: np.ndarray
    P: np.ndarray
    classes: list[str]

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def correct(self) -> np.ndarray:
        return self.P.argmax(axis=1) == self.y


def evaluated(ctx: Context) -> dict[str, SplitData]:
    """Labelled samples with a prediction, by split (train, val, test first); empty without predictions.

    >>> evaluated(ctx)["test"].n                                   # doctest: +SKIP
    500
    """
    return ctx.memo("evaluation.data", lambda: _evaluated(ctx))


def _evaluated(ctx: Context) -> dict[str, SplitData]:
    preds = ctx.predictions
    if preds is None:
        return {}
    samples = ctx.dataset.samples
    index = preds.label_index(samples["label"])
    judged = index >= 0
    if not judged.any():
        return {}
    split = samples["split"]
    groups = pd.Series(ALL, index=samples.index) if split.isna().all() else split.fillna(UNSPLIT).astype(str)
    order = {"train": 0, "val": 1, "test": 2}
    names = sorted(groups[judged].unique(), key=lambda s: (order.get(s, 3), s))
    out = {}
    for name in names:
        rows = judged & (groups == name).to_numpy()
        out[name] = SplitData(name, samples["sample_id"].to_numpy()[rows],
                              index[rows],
                              preds.probs[rows], list(preds.classes))
    return out


def evaluation_split(data: dict[str, SplitData]) -> str | None:
    """``test``, else ``val``, else the only split evaluated (unless it is ``train``)."""
    for name in EVALUATION_SPLITS:
        if name in data:
            return name
    if len(data) == 1 and next(iter(data)) != "train":
        return next(iter(data))
    return None


def evaluation_data(ctx: Context) -> SplitData | None:
    """The evaluated samples of :func:`evaluation_split` (its name is ``.split``), or None."""
    data = evaluated(ctx)
    name = evaluation_split(data)
    return None if name is None else data[name]


# Metrics of many resamples at once: each receives arrays with a leading resample axis (b, n).

def _per_class(labels: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(b, k) per-resample counts of each class in ``labels`` (b, n), optionally weighted."""
    b = labels.shape[0]
    flat = (np.arange(b)[:, None] * k + labels).ravel()
    w = None if weights is None else weights.ravel().astype(np.float64)
    return np.bincount(flat, weights=w, minlength=b * k).reshape(b, k)


def _mean(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=-1)


def _balanced_accuracy(k: int):
    def metric(y: np.ndarray, correct: np.ndarray) -> np.ndarray:
        support = _per_class(y, k)
        hits = _per_class(y, k, correct)
        present = support > 0
        recall = np.divide(hits, support, out=np.zeros_like(hits), where=present)
        return recall.sum(axis=1) / present.sum(axis=1)
    return metric


def _f1_macro(k: int):
    # zero_division=0 over the classes present or predicted in each resample, as ClassificationReport.f1_macro.
    def metric(y: np.ndarray, pred: np.ndarray, correct: np.ndarray) -> np.ndarray:
        denom = _per_class(y, k) + _per_class(pred, k)
        tp = _per_class(y, k, correct)
        f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        return f1.sum(axis=1) / (denom > 0).sum(axis=1)
    return metric


def _roc_auc_macro(y: np.ndarray, P: np.ndarray):
    """Macro one-vs-rest ROC-AUC of resamples given as index arrays (b, n) into ``y`` and ``P``.

    Ranking every resample anew costs a sort per class and resample; instead each class's scores are
    sorted once, and a resample is its multiplicity per sample: AUC = sum over tied-score groups of
    positives x (negatives below + half the negatives tied), as ``roc_auc_ovr`` (Mann-Whitney) computes it.
    """
    n, k = P.shape
    order = np.argsort(P, axis=0, kind="stable")
    ranked = np.take_along_axis(P, order, axis=0)
    positive = y[order] == np.arange(k)[None, :]
    starts = [np.flatnonzero(np.r_[True, ranked[1:, c] != ranked[:-1, c]]) for c in range(k)]

    def metric(idx: np.ndarray) -> np.ndarray:
        weight = _per_class(idx, n)
        auc = np.full((idx.shape[0], k), np.nan)
        for c in range(k):
            w = weight[:, order[:, c]]
            pos = w * positive[:, c]
            neg = w - pos
            if len(starts[c]) == n:
                # No tied scores (the usual case with float probabilities): every group is one sample,
                # and skipping the two reduceat passes halves the time (same values).
                below = np.cumsum(neg, axis=1)
                below -= neg
                wins = (pos * below).sum(axis=1)
            else:
                neg_tied = np.add.reduceat(neg, starts[c], axis=1)
                pos_tied = np.add.reduceat(pos, starts[c], axis=1)
                below = np.cumsum(neg_tied, axis=1) - neg_tied
                wins = (pos_tied * (below + 0.5 * neg_tied)).sum(axis=1)
            pairs = pos.sum(axis=1) * neg.sum(axis=1)
            np.divide(wins, pairs, out=auc[:, c], where=pairs > 0)
        defined = np.isfinite(auc)
        return np.where(defined, auc, 0.0).sum(axis=1) / defined.sum(axis=1)
    return metric


def _ece(n_bins: int):
    def metric(bins: np.ndarray, conf: np.ndarray, correct: np.ndarray) -> np.ndarray:
        # sum_b count_b/n * |acc_b - conf_b| = sum_b |sum(correct) - sum(conf)| / n over each bin's members.
        gap = _per_class(bins, n_bins, correct) - _per_class(bins, n_bins, conf)
        return np.abs(gap).sum(axis=1) / bins.shape[-1]
    return metric


def confidence_bins(P: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin (lower, upper] of each row's top probability, as ClassificationReport.calibration."""
    return np.clip(np.ceil(P.max(axis=1) * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def class_calibration(y: np.ndarray, P: np.ndarray, n_bins: int) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """One-vs-rest (classwise) calibration: each class's ECE (K,) and reliability table.

    For class k the confidence is ``P[:, k]`` of every sample and a bin's accuracy is the fraction of
    its samples whose label is k; bins and columns as :func:`visionaudit.metrics.calibration_table`,
    ECE = sum over bins of count / n * |accuracy - confidence|. A class can be calibrated on average
    and not on its own (a rare class whose 0.9s are right half the time), which this shows.

    >>> ece, tables = class_calibration(np.array([0, 1]), np.array([[0.9, 0.1], [0.3, 0.7]]), 10)
    >>> ece.round(3).tolist(), int(tables[0]["count"].sum())
    ([0.2, 0.2], 2)
    """
    n, k = P.shape
    flat = (_bin_index(P, n_bins) + np.arange(k) * n_bins).ravel()

    def sums(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(flat, weights=weights, minlength=k * n_bins).reshape(k, n_bins)

    count = sums(None).astype(np.int64)
    conf = sums(P.ravel())
    positive = sums((y[:, None] == np.arange(k)[None, :]).ravel().astype(np.float64))
    ece = np.abs(positive - conf).sum(axis=1) / n
    return ece, [_table_from_sums(count[c], conf[c], positive[c]) for c in range(k)]


def _reliability_rows(table: pd.DataFrame) -> list[dict[str, float | None]]:
    return [{k: _num(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


@dataclass
class SplitMetrics:
    """One split's metrics (``report``) and the bootstrap CI of each headline metric (``intervals``)."""

    data: SplitData
    report: ClassificationReport
    intervals: dict[str, BootstrapResult]


def split_metrics(ctx: Context, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                  top_k: tuple[int, ...] = (1, 5), n_bins: int = 15) -> dict[str, SplitMetrics]:
    """Metrics with CIs for every evaluated split, computed once per run and setting.

    >>> m = split_metrics(ctx)["test"]                             # doctest: +SKIP
    >>> m.report.accuracy, m.intervals["accuracy"].low             # doctest: +SKIP
    (0.884, 0.856)
    """
    key = ("evaluation.metrics", n_resamples, confidence, seed, tuple(top_k), n_bins)
    return ctx.memo(key, lambda: {name: _metrics(d, n_resamples, confidence, seed, tuple(top_k), n_bins)
                                  for name, d in evaluated(ctx).items()})


def _metrics(d: SplitData, n_resamples: int, confidence: float, seed: int, top_k: tuple[int, ...],
             n_bins: int) -> SplitMetrics:
    report = classification_metrics(d.y, d.P, top_k=top_k, n_bins=n_bins)
    k = len(d.classes)
    pred = d.P.argmax(axis=1)
    correct = pred == d.y
    eps = np.finfo(np.float64).eps
    nll = -np.log(np.clip(d.P[np.arange(d.n), d.y], eps, 1.0 - eps))
    rank = _true_class_rank(d.y, d.P)
    jobs: dict[str, tuple[Any, tuple[np.ndarray, ...], bool]] = {
        "accuracy": (_mean, (correct,), True),
        "balanced_accuracy": (_balanced_accuracy(k), (d.y, correct), True),
        "f1_macro": (_f1_macro(k), (d.y, pred, correct), True),
        "roc_auc_macro": (_roc_auc_macro(d.y, d.P), (np.arange(d.n),), True),
        "log_loss": (_mean, (nll,), True),
    }
    for kk in report.top_k:
        if kk > 1:
            jobs[f"top_{kk}_accuracy"] = (_mean, (rank < kk,), True)
    intervals = {}
    if d.n >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, (fn, arrays, vectorized) in jobs.items():
                intervals[name] = bootstrap_ci(fn, *arrays, n_resamples=n_resamples, confidence=confidence,
                                               seed=seed, vectorized=vectorized)
    return SplitMetrics(d, report, intervals)


def _num(v: Any) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v


def _metric_rows(m: SplitMetrics) -> dict[str, dict[str, float | None]]:
    rows = {}
    for name, value in m.report.headline().items():
        ci = m.intervals.get(name)
        rows[name] = {"value": _num(value), "low": _num(ci.low) if ci else None, "high": _num(ci.high) if ci else None}
    return rows


def _per_class_rows(m: SplitMetrics) -> list[dict[str, Any]]:
    r = m.report
    return [{"class": c, "support": int(r.support[i]), "predicted": int(r.predicted[i]),
             "precision": _num(r.precision[i]), "recall": _num(r.recall[i]), "f1": _num(r.f1[i]),
             "roc_auc": _num(r.roc_auc[i]), "pr_auc": _num(r.pr_auc[i])} for i, c in enumerate(m.data.classes)]


def _with_ci(name: str, m: SplitMetrics) -> str:
    value = m.report.headline()[name]
    ci = m.intervals.get(name)
    label = LABELS.get(name, name.replace("_", " "))
    if ci is None or np.isnan(ci.low):
        return f"{label} {value:.3f}"
    return f"{label} {value:.3f} (CI {ci.low:.3f}-{ci.high:.3f})"


def metrics_tables(ctx: Context, **params: Any) -> dict[str, Any]:
    """The evaluate job's ``Result.stats``: long tables of metrics, per-class scores and calibration.

    ``metrics`` (split, metric, value, low, high, n), ``per_class`` (split, class, support, predicted,
    precision, recall, f1, roc_auc, pr_auc), ``calibration`` (split + the reliability table),
    ``calibration_per_class`` (split, class + each class's one-vs-rest reliability table) and
    ``confusion`` ({split: DataFrame of counts, true class x predicted class}).

    >>> metrics_tables(ctx)["metrics"].query("split == 'test'")   # doctest: +SKIP
    """
    by_split = split_metrics(ctx, **params)
    metric_rows, class_rows, calibration, class_calibrations, confusion = [], [], [], [], {}
    for name, m in by_split.items():
        for metric, row in _metric_rows(m).items():
            metric_rows.append({"split": name, "metric": metric, **row, "n": m.data.n})
        class_rows.extend({"split": name, **row} for row in _per_class_rows(m))
        calibration.append(m.report.calibration.assign(split=name))
        _, tables = class_calibration(m.data.y, m.data.P, int(params.get("n_bins", 15)))
        class_calibrations.extend(t.assign(split=name, **{"class": c}) for c, t in zip(m.data.classes, tables))
        confusion[name] = pd.DataFrame(m.report.confusion, index=pd.Index(m.data.classes, name="true"),
                                       columns=pd.Index(m.data.classes, name="predicted"))
    return {
        "metrics": pd.DataFrame(metric_rows, columns=["split", "metric", "value", "low", "high", "n"]),
        "per_class": pd.DataFrame(class_rows, columns=["split", "class", "support", "predicted", "precision", "recall",
                                                       "f1", "roc_auc", "pr_auc"]),
        "calibration": (pd.concat(calibration, ignore_index=True)[list(CALIBRATION_COLUMNS)]
                        if calibration else pd.DataFrame(columns=list(CALIBRATION_COLUMNS))),
        "calibration_per_class": (pd.concat(class_calibrations, ignore_index=True)[list(CLASS_CALIBRATION_COLUMNS)]
                                  if class_calibrations else pd.DataFrame(columns=list(CLASS_CALIBRATION_COLUMNS))),
        "confusion": confusion,
    }


class EvaluationMetrics(Check):
    id = "evaluation.metrics"
    family = "evaluation"
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
                   + ", ".join(_with_ci(name, m) for name in HEADLINE if name in m.report.headline()))
        others = [f"{name} accuracy {o.report.accuracy:.3f}" for name, o in by_split.items() if name != main]
        if others:
            message += "; " + ", ".join(others)
        evidence = {
            "evaluation_split": main,
            "confidence": float(self.params["confidence"]),
            "n_resamples": int(self.params["n_resamples"]),
            "classes": list(m.data.classes),
            "splits": {name: {"n": o.data.n, "metrics": _metric_rows(o), "per_class": _per_class_rows(o),
                              "confusion": o.report.confusion.tolist(), "undefined": dict(o.report.undefined),
                              "ece": _num(o.report.ece), "reliability": _reliability_rows(o.report.calibration)}
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
        ci = bootstrap_ci(_ece(n_bins), bins, d.P.max(axis=1), d.correct, vectorized=True,
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
                      "reliability": _reliability_rows(class_tables[i])}
                     for i, c in enumerate(d.classes) if enough[i]]
        if per_class:
            worst = max(per_class, key=lambda r: r["ece"])
            message += f"; least calibrated class {worst['class']} (one-vs-rest ECE {worst['ece']:.3f})"
        evidence = {"split": name, "n": d.n, "ece": report.ece, "ece_low": ci.low, "ece_high": ci.high,
                    "reliability": _reliability_rows(table), "per_class": per_class,
                    "per_class_skipped": [c for i, c in enumerate(d.classes) if not enough[i]]}
        return output.add(self.finding(issue="miscalibrated", message=message, evidence=evidence))


class Overfitting(Check):
    id = "evaluation.overfitting"
    family = "evaluation"
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
