"""Evaluation data: the user's predictions against the labels, per split, with metrics and bootstrap CIs.

A sample is evaluated when it has a label and a prediction (``ctx.predictions``); samples are grouped
by split (``"all"`` when the dataset has no splits, ``"unsplit"`` for samples without one). The
*evaluation split* is ``test``, else ``val``, else the only group there is. Every interval comes from
:func:`visionaudit.metrics.bootstrap_ci` (the one bootstrap), seeded so a re-run gives the same numbers.

The checks that read it live in :mod:`visionaudit.checks.evaluation`, :mod:`~visionaudit.checks.errors`,
:mod:`~visionaudit.checks.hygiene` and :mod:`~visionaudit.checks.compare`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from ..metrics import (
    BootstrapResult,
    ClassificationReport,
    bootstrap_ci,
    classification_metrics,
)
from ..metrics.classification import _bin_index, _table_from_sums, _true_class_rank

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..dataset import Dataset
    from ..predictors import Predictions

T = TypeVar("T")


class PredictedRun(Protocol):
    """What the evaluation data is computed from: a dataset, the user's predictions and the run's memo
    (the :class:`~visionaudit.context.Context` of a run is one)."""

    @property
    def dataset(self) -> Dataset: ...

    @property
    def predictions(self) -> Predictions | None: ...

    def memo(self, key: Any, compute: Callable[[], T]) -> T: ...

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


def evaluated(ctx: PredictedRun) -> dict[str, SplitData]:
    """Labelled samples with a prediction, by split (train, val, test first); empty without predictions.

    >>> {split: d.n for split, d in evaluated(ctx).items()}
    {'train': 137, 'val': 35, 'test': 46}
    """
    return ctx.memo("evaluation.data", lambda: _evaluated(ctx))


def _evaluated(ctx: PredictedRun) -> dict[str, SplitData]:
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


def evaluation_data(ctx: PredictedRun) -> SplitData | None:
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


def mean_statistic(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=-1)


def _balanced_accuracy(k: int):
    def metric(y: np.ndarray, correct: np.ndarray) -> np.ndarray:
        support = _per_class(y, k)
        hits = _per_class(y, k, correct)
        present = support > 0
        recall = np.divide(hits, support, out=np.zeros_like(hits), where=present)
        return recall.sum(axis=1) / present.sum(axis=1)
    return metric


def f1_macro_statistic(k: int):
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


def ece_statistic(n_bins: int):
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


def reliability_rows(table: pd.DataFrame) -> list[dict[str, float | None]]:
    return [{k: number_or_none(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


@dataclass
class SplitMetrics:
    """One split's metrics (``report``) and the bootstrap CI of each headline metric (``intervals``)."""

    data: SplitData
    report: ClassificationReport
    intervals: dict[str, BootstrapResult]


def split_metrics(ctx: PredictedRun, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                  top_k: tuple[int, ...] = (1, 5), n_bins: int = 15) -> dict[str, SplitMetrics]:
    """Metrics with CIs for every evaluated split, computed once per run and setting.

    >>> m = split_metrics(ctx)["test"]
    >>> round(m.report.accuracy, 3), round(m.intervals["accuracy"].low, 3), round(m.intervals["accuracy"].high, 3)
    (0.804, 0.674, 0.913)
    """
    key = ("evaluation.metrics", n_resamples, confidence, seed, tuple(top_k), n_bins)
    return ctx.memo(key, lambda: {name: metrics_of(d, n_resamples, confidence, seed, tuple(top_k), n_bins)
                                  for name, d in evaluated(ctx).items()})


def metrics_of(d: SplitData, n_resamples: int, confidence: float, seed: int, top_k: tuple[int, ...],
             n_bins: int) -> SplitMetrics:
    report = classification_metrics(d.y, d.P, top_k=top_k, n_bins=n_bins)
    k = len(d.classes)
    pred = d.P.argmax(axis=1)
    correct = pred == d.y
    eps = np.finfo(np.float64).eps
    nll = -np.log(np.clip(d.P[np.arange(d.n), d.y], eps, 1.0 - eps))
    rank = _true_class_rank(d.y, d.P)
    jobs: dict[str, tuple[Any, tuple[np.ndarray, ...], bool]] = {
        "accuracy": (mean_statistic, (correct,), True),
        "balanced_accuracy": (_balanced_accuracy(k), (d.y, correct), True),
        "f1_macro": (f1_macro_statistic(k), (d.y, pred, correct), True),
        "roc_auc_macro": (_roc_auc_macro(d.y, d.P), (np.arange(d.n),), True),
        "log_loss": (mean_statistic, (nll,), True),
    }
    for kk in report.top_k:
        if kk > 1:
            jobs[f"top_{kk}_accuracy"] = (mean_statistic, (rank < kk,), True)
    intervals = {}
    if d.n >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, (fn, arrays, vectorized) in jobs.items():
                intervals[name] = bootstrap_ci(fn, *arrays, n_resamples=n_resamples, confidence=confidence,
                                               seed=seed, vectorized=vectorized)
    return SplitMetrics(d, report, intervals)


def number_or_none(v: Any) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v


def metric_rows(m: SplitMetrics) -> dict[str, dict[str, float | None]]:
    rows = {}
    for name, value in m.report.headline().items():
        ci = m.intervals.get(name)
        rows[name] = {"value": number_or_none(value), "low": number_or_none(ci.low) if ci else None, "high": number_or_none(ci.high) if ci else None}
    return rows


def per_class_rows(m: SplitMetrics) -> list[dict[str, Any]]:
    r = m.report
    return [{"class": c, "support": int(r.support[i]), "predicted": int(r.predicted[i]),
             "precision": number_or_none(r.precision[i]), "recall": number_or_none(r.recall[i]), "f1": number_or_none(r.f1[i]),
             "roc_auc": number_or_none(r.roc_auc[i]), "pr_auc": number_or_none(r.pr_auc[i])} for i, c in enumerate(m.data.classes)]


def with_ci(name: str, m: SplitMetrics) -> str:
    value = m.report.headline()[name]
    ci = m.intervals.get(name)
    label = LABELS.get(name, name.replace("_", " "))
    if ci is None or np.isnan(ci.low):
        return f"{label} {value:.3f}"
    return f"{label} {value:.3f} (CI {ci.low:.3f}-{ci.high:.3f})"


def metrics_tables(ctx: PredictedRun, **params: Any) -> dict[str, Any]:
    """The evaluate job's ``Result.stats``: long tables of metrics, per-class scores and calibration.

    ``metrics`` (split, metric, value, low, high, n), ``per_class`` (split, class, support, predicted,
    precision, recall, f1, roc_auc, pr_auc), ``calibration`` (split + the reliability table),
    ``calibration_per_class`` (split, class + each class's one-vs-rest reliability table) and
    ``confusion`` ({split: DataFrame of counts, true class x predicted class}).

    >>> print(metrics_tables(ctx)["metrics"].query("split == 'test'").head(3).round(3).to_string(index=False))
    split            metric  value   low  high  n
     test          accuracy  0.804 0.674 0.913 46
     test balanced_accuracy  0.789 0.592 0.937 46
     test   precision_macro  0.589   NaN   NaN 46
    """
    by_split = split_metrics(ctx, **params)
    metric_table, class_rows, calibration, class_calibrations, confusion = [], [], [], [], {}
    for name, m in by_split.items():
        for metric, row in metric_rows(m).items():
            metric_table.append({"split": name, "metric": metric, **row, "n": m.data.n})
        class_rows.extend({"split": name, **row} for row in per_class_rows(m))
        calibration.append(m.report.calibration.assign(split=name))
        _, tables = class_calibration(m.data.y, m.data.P, int(params.get("n_bins", 15)))
        class_calibrations.extend(t.assign(split=name, **{"class": c}) for c, t in zip(m.data.classes, tables))
        confusion[name] = pd.DataFrame(m.report.confusion, index=pd.Index(m.data.classes, name="true"),
                                       columns=pd.Index(m.data.classes, name="predicted"))
    return {
        "metrics": pd.DataFrame(metric_table, columns=["split", "metric", "value", "low", "high", "n"]),
        "per_class": pd.DataFrame(class_rows, columns=["split", "class", "support", "predicted", "precision", "recall",
                                                       "f1", "roc_auc", "pr_auc"]),
        "calibration": (pd.concat(calibration, ignore_index=True)[list(CALIBRATION_COLUMNS)]
                        if calibration else pd.DataFrame(columns=list(CALIBRATION_COLUMNS))),
        "calibration_per_class": (pd.concat(class_calibrations, ignore_index=True)[list(CLASS_CALIBRATION_COLUMNS)]
                                  if class_calibrations else pd.DataFrame(columns=list(CLASS_CALIBRATION_COLUMNS))),
        "confusion": confusion,
    }
