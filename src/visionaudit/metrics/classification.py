"""Classification metrics from integer labels and per-class probabilities.

Everything is computed from ``y`` (n,) integer labels in ``[0, K)`` and ``P`` (n, K) probabilities
(or logits with ``from_logits=True``, turned into probabilities by a softmax). The predicted class is
``P.argmax(axis=1)`` (the lowest index wins a tie); top-k breaks ties the same way, so top-1 accuracy
always equals accuracy (scikit-learn's ``top_k_accuracy_score`` lets the highest index win a tie, so the
two differ only when the true class ties with another score).

Two ways in:

- :func:`classification_metrics` for arrays already in memory;
- :class:`ClassificationMetrics`, an accumulator with ``update`` / ``merge`` / ``compute`` so evaluation
  can stream over batches and combine results from several workers (the torchmetrics habit). Count-based
  metrics (confusion matrix, top-k, log-loss, calibration bins) are sums, so merging is exact; ROC-AUC
  and PR-AUC need every score, so the accumulator keeps ``y`` and ``P`` unless ``keep_scores=False``.

Conventions follow scikit-learn so values agree with it on the same inputs: ``zero_division`` for
precision/recall/F1 of classes never predicted or never present, log-loss clipped to
``[eps, 1 - eps]``, one-vs-rest ROC-AUC and average precision per class. Where a metric is undefined
(a class absent from ``y`` has no ROC-AUC) the value is NaN and :attr:`ClassificationReport.undefined`
says why, instead of raising.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ArgumentError

__all__ = [
    "ClassificationMetrics",
    "ClassificationReport",
    "as_probabilities",
    "average_precision_ovr",
    "calibration_table",
    "classification_metrics",
    "confusion_matrix",
    "roc_auc_ovr",
    "validate_inputs",
]

# Rows of P must sum to 1 within this; float32 softmax over 1000 classes is off by ~1e-5.
_ROW_SUM_ATOL = 1e-4


def as_probabilities(P: Any, *, from_logits: bool = False, name: str = "P") -> np.ndarray:
    """Return ``P`` as a float64 (n, K) probability matrix, checking it on the way.

    With ``from_logits=True`` a row-wise softmax is applied first (numerically stable, via
    ``scipy.special.softmax``). Otherwise entries must lie in [0, 1] and rows sum to 1 (within 1e-4).

    >>> as_probabilities([[2.0, 0.0]], from_logits=True).round(3)
    array([[0.881, 0.119]])
    """
    arr = np.asarray(P)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise ArgumentError(f"{name}.shape", arr.shape, "(n, K) with n >= 1 samples and K >= 2 classes")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ArgumentError(f"{name}.dtype", str(arr.dtype), "a real numeric array")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ArgumentError(f"{name}[{bad}]", arr[bad].tolist()[:5], "finite values (no NaN or inf)")
    if from_logits:
        from scipy.special import softmax as _softmax

        return _softmax(arr, axis=1)
    if arr.min() < 0.0 or arr.max() > 1.0:
        bad = int(np.flatnonzero((arr < 0.0).any(axis=1) | (arr > 1.0).any(axis=1))[0])
        raise ArgumentError(
            f"{name}[{bad}]", arr[bad].tolist()[:5],
            "probabilities in [0, 1] (pass from_logits=True for logits)",
        )
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > _ROW_SUM_ATOL
    if off.any():
        bad = int(np.flatnonzero(off)[0])
        raise ArgumentError(
            f"{name}[{bad}].sum()", float(sums[bad]),
            "rows that sum to 1 (pass from_logits=True for logits or unnormalised scores)",
        )
    return arr


def validate_inputs(
    y: Any, P: Any, *, num_classes: int | None = None, from_logits: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Check labels and probabilities together; return ``(y int64 (n,), P float64 (n, K))``.

    Errors name the argument and the expected shape or values, e.g.
    ``invalid y.shape=(5,): expected (n,) with n = P.shape[0] = 4``.

    >>> y, P = validate_inputs([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    >>> y.dtype, P.shape
    (dtype('int64'), (2, 2))
    """
    prob = as_probabilities(P, from_logits=from_logits)
    n, k = prob.shape
    if num_classes is not None and k != num_classes:
        raise ArgumentError("P.shape", prob.shape, f"(n, {num_classes}): one column per class")
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ArgumentError("y.shape", labels.shape, f"(n,) with n = P.shape[0] = {n}")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
            raise ArgumentError("y", labels[:5].tolist(), "integer class indices")
    elif labels.dtype.kind not in "iub":
        raise ArgumentError("y.dtype", str(labels.dtype), f"integer class indices in [0, {k})")
    labels = labels.astype(np.int64)
    out = (labels < 0) | (labels >= k)
    if out.any():
        bad = int(np.flatnonzero(out)[0])
        raise ArgumentError(f"y[{bad}]", int(labels[bad]), f"a class index in [0, {k}) (P has {k} columns)")
    return labels, prob


def confusion_matrix(y: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples with true class ``i`` predicted as ``j`` (int64, K x K).

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)
    array([[1, 0],
           [1, 1]])
    """
    flat = np.bincount(y * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def _true_class_rank(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Rank of the true class in each row (0 = top), ties broken towards the lower index like argmax."""
    p_true = P[np.arange(len(y)), y][:, None]
    cols = np.arange(P.shape[1])[None, :]
    return ((P > p_true) | ((P == p_true) & (cols < y[:, None]))).sum(axis=1)


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    # Bins are (i/B, (i+1)/B]; a confidence of exactly 0 joins the first bin.
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def calibration_table(y: Any, P: Any, *, n_bins: int = 15, from_logits: bool = False) -> pd.DataFrame:
    """Per-bin reliability table of the top-class confidence (equal-width bins over [0, 1]).

    Columns: ``lower``, ``upper`` (bin edges, bin = (lower, upper]), ``count``, ``confidence`` (mean
    max-probability in the bin), ``accuracy`` (fraction whose argmax is right), ``gap`` =
    accuracy - confidence (negative = over-confident). Empty bins have NaN confidence/accuracy.
    ECE is ``sum(count / n * |gap|)`` over non-empty bins.

    >>> t = calibration_table([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=10)
    >>> t.loc[t["count"] > 0, ["count", "confidence", "accuracy"]].values.tolist()
    [[1.0, 0.7, 0.0], [1.0, 0.9, 1.0]]
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ArgumentError("n_bins", n_bins, "a positive integer")
    labels, prob = validate_inputs(y, P, from_logits=from_logits)
    conf = prob.max(axis=1)
    correct = prob.argmax(axis=1) == labels
    idx = _bin_index(conf, n_bins)
    return _table_from_sums(
        np.bincount(idx, minlength=n_bins).astype(np.int64),
        np.bincount(idx, weights=conf, minlength=n_bins),
        np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins),
    )


def _table_from_sums(count: np.ndarray, conf_sum: np.ndarray, correct_sum: np.ndarray) -> pd.DataFrame:
    n_bins = len(count)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(count > 0, conf_sum / count, np.nan)
        accuracy = np.where(count > 0, correct_sum / count, np.nan)
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count,
            "confidence": confidence,
            "accuracy": accuracy,
            "gap": accuracy - confidence,
        }
    )


def roc_auc_ovr(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC-AUC per class (K,), NaN for a class with no positives or no negatives in ``y``.

    Computed as the Mann-Whitney statistic from average ranks, which equals the trapezoidal area under
    the ROC curve with ties counted as one half (scikit-learn's ``roc_auc_score``).

    >>> roc_auc_ovr(np.array([0, 0, 1]), np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7]]))
    array([1., 1.])
    """
    n, k = P.shape
    onehot = y[:, None] == np.arange(k)[None, :]
    n_pos = onehot.sum(axis=0)
    n_neg = n - n_pos
    from scipy.stats import rankdata

    ranks = rankdata(P, axis=0)
    rank_sum = (ranks * onehot).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def average_precision_ovr(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """One-vs-rest average precision (PR-AUC) per class (K,), NaN for a class absent from ``y``.

    AP = sum over distinct score thresholds of (R_t - R_{t-1}) * P_t, the step-wise area used by
    scikit-learn's ``average_precision_score`` (no interpolation).

    >>> average_precision_ovr(np.array([0, 1, 1]), np.array([[0.6, 0.4], [0.7, 0.3], [0.1, 0.9]]))
    array([0.5       , 0.83333333])
    """
    n, k = P.shape
    out = np.full(k, np.nan)
    for c in range(k):
        pos = y == c
        n_pos = int(pos.sum())
        if n_pos == 0:
            continue
        order = np.argsort(-P[:, c], kind="mergesort")
        scores = P[order, c]
        tp = np.cumsum(pos[order])
        # The curve has one point per distinct threshold: the last position of each run of equal scores.
        last = np.r_[np.flatnonzero(np.diff(scores) != 0), n - 1]
        tps = tp[last].astype(np.float64)
        precision = tps / (last + 1)
        recall = tps / n_pos
        out[c] = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    return out


@dataclass
class ClassificationReport:
    """All classification metrics for one set of predictions.

    Per-class arrays have length ``num_classes``. ``undefined`` maps a metric name (``"roc_auc[3]"``,
    ``"precision[2]"``, ``"roc_auc_macro"``...) to the reason its value is NaN or was set to
    ``zero_division``. Macro averages are the NaN-ignoring mean of the per-class values (as scikit-learn
    does with ``zero_division=np.nan``) over the classes present in ``y`` or predicted (scikit-learn's
    default labels); micro precision, recall and F1 equal accuracy for single-label
    multiclass data.
    """

    n: int
    num_classes: int
    accuracy: float
    balanced_accuracy: float
    support: np.ndarray
    predicted: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_micro: float
    recall_micro: float
    f1_micro: float
    roc_auc: np.ndarray
    roc_auc_macro: float
    pr_auc: np.ndarray
    pr_auc_macro: float
    log_loss: float
    top_k: dict[int, float]
    confusion: np.ndarray
    confusion_normalized: np.ndarray
    ece: float
    calibration: pd.DataFrame
    undefined: dict[str, str] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """Scalar metrics by name (the ones a report lists and bootstraps)."""
        out = {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "precision_macro": self.precision_macro,
            "recall_macro": self.recall_macro,
            "f1_macro": self.f1_macro,
            "f1_micro": self.f1_micro,
            "roc_auc_macro": self.roc_auc_macro,
            "pr_auc_macro": self.pr_auc_macro,
            "log_loss": self.log_loss,
            "ece": self.ece,
        }
        out.update({f"top_{k}_accuracy": v for k, v in self.top_k.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: arrays become lists, NaN becomes None."""

        def clean(v: Any) -> Any:
            if isinstance(v, pd.DataFrame):
                return [{k: clean(x) for k, x in row.items()} for row in v.to_dict(orient="records")]
            if isinstance(v, np.ndarray):
                return [clean(x) for x in v.tolist()]
            if isinstance(v, list):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, (float, np.floating)):
                return None if np.isnan(v) else float(v)
            if isinstance(v, np.integer):
                return int(v)
            return v

        return {name: clean(getattr(self, name)) for name in self.__dataclass_fields__}


def _check_top_k(top_k: Iterable[int], num_classes: int) -> tuple[int, ...]:
    ks = tuple(top_k)
    for k in ks:
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError("top_k", ks, "positive integers")
    return tuple(sorted({int(k) for k in ks if k <= num_classes}))


class ClassificationMetrics:
    """Streaming accumulator: ``update`` per batch, ``merge`` across workers, ``compute`` at the end.

    Args:
        num_classes: K, the number of columns of every ``P``.
        top_k: the k values for top-k accuracy (k > K is dropped; it would always be 1).
        n_bins: equal-width confidence bins for ECE and the reliability table.
        zero_division: value for precision/recall/F1 when the denominator is 0 (scikit-learn's
            parameter; ``np.nan`` leaves such classes out of macro averages).
        keep_scores: keep ``y`` and ``P`` for ROC-AUC and PR-AUC (needs O(n K) memory). With False those
            metrics are NaN with a reason.

    >>> m = ClassificationMetrics(num_classes=2)
    >>> m.update([0, 1], [[0.9, 0.1], [0.4, 0.6]])
    >>> other = ClassificationMetrics(num_classes=2)
    >>> other.update([1], [[0.7, 0.3]])
    >>> round(m.merge(other).compute().accuracy, 4)
    0.6667
    """

    def __init__(
        self,
        num_classes: int,
        *,
        top_k: Iterable[int] = (1, 5),
        n_bins: int = 15,
        zero_division: float = 0.0,
        keep_scores: bool = True,
    ) -> None:
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ArgumentError("num_classes", num_classes, "an integer >= 2")
        if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise ArgumentError("n_bins", n_bins, "a positive integer")
        if not isinstance(zero_division, (int, float)) or not (
            np.isnan(zero_division) or 0.0 <= zero_division <= 1.0
        ):
            raise ArgumentError("zero_division", zero_division, "a value in [0, 1] or nan")
        self.num_classes = int(num_classes)
        self.top_k = _check_top_k(top_k, self.num_classes)
        self.n_bins = int(n_bins)
        self.zero_division = float(zero_division)
        self.keep_scores = bool(keep_scores)
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.top_k_hits = np.zeros(len(self.top_k), dtype=np.int64)
        self.log_loss_sum = 0.0
        self.bin_count = np.zeros(self.n_bins, dtype=np.int64)
        self.bin_conf_sum = np.zeros(self.n_bins)
        self.bin_correct_sum = np.zeros(self.n_bins)
        self._y: list[np.ndarray] = []
        self._P: list[np.ndarray] = []

    @property
    def n(self) -> int:
        """Samples seen so far."""
        return int(self.confusion.sum())

    def update(self, y: Any, P: Any, *, from_logits: bool = False) -> None:
        """Add a batch: labels ``y`` (n,) and probabilities (or logits) ``P`` (n, K)."""
        labels, prob = validate_inputs(y, P, num_classes=self.num_classes, from_logits=from_logits)
        pred = prob.argmax(axis=1)
        self.confusion += confusion_matrix(labels, pred, self.num_classes)
        if self.top_k:
            rank = _true_class_rank(labels, prob)
            self.top_k_hits += np.array([(rank < k).sum() for k in self.top_k], dtype=np.int64)
        eps = np.finfo(np.float64).eps
        p_true = np.clip(prob[np.arange(len(labels)), labels], eps, 1.0 - eps)
        self.log_loss_sum += float(-np.log(p_true).sum())
        conf = prob.max(axis=1)
        idx = _bin_index(conf, self.n_bins)
        self.bin_count += np.bincount(idx, minlength=self.n_bins)
        self.bin_conf_sum += np.bincount(idx, weights=conf, minlength=self.n_bins)
        self.bin_correct_sum += np.bincount(idx, weights=(pred == labels).astype(np.float64), minlength=self.n_bins)
        if self.keep_scores:
            self._y.append(labels)
            self._P.append(prob)

    def merge(self, other: ClassificationMetrics) -> ClassificationMetrics:
        """Add another accumulator's counts (same configuration) into this one; returns self."""
        if not isinstance(other, ClassificationMetrics):
            raise ArgumentError("other", type(other).__name__, "a ClassificationMetrics")
        mine = (self.num_classes, self.top_k, self.n_bins, self.keep_scores)
        theirs = (other.num_classes, other.top_k, other.n_bins, other.keep_scores)
        if mine != theirs:
            raise ArgumentError(
                "other (num_classes, top_k, n_bins, keep_scores)", theirs, f"the same as this one's {mine}"
            )
        self.confusion += other.confusion
        self.top_k_hits += other.top_k_hits
        self.log_loss_sum += other.log_loss_sum
        self.bin_count += other.bin_count
        self.bin_conf_sum += other.bin_conf_sum
        self.bin_correct_sum += other.bin_correct_sum
        self._y.extend(other._y)
        self._P.extend(other._P)
        return self

    def compute(self) -> ClassificationReport:
        """All metrics over everything seen so far."""
        n = self.n
        if n == 0:
            raise ArgumentError("update() calls", 0, "at least one batch before compute()")
        k = self.num_classes
        undefined: dict[str, str] = {}
        cm = self.confusion
        tp = np.diag(cm).astype(np.float64)
        support = cm.sum(axis=1)
        predicted = cm.sum(axis=0)
        zd = self.zero_division

        precision = np.full(k, zd)
        recall = np.full(k, zd)
        np.divide(tp, predicted, out=precision, where=predicted > 0)
        np.divide(tp, support, out=recall, where=support > 0)
        f_denom = (support + predicted).astype(np.float64)
        f1 = np.full(k, zd)
        np.divide(2.0 * tp, f_denom, out=f1, where=f_denom > 0)
        for c in range(k):
            if predicted[c] == 0:
                undefined[f"precision[{c}]"] = f"class {c} is never predicted; set to zero_division={zd}"
            if support[c] == 0:
                undefined[f"recall[{c}]"] = f"class {c} has no samples in y; set to zero_division={zd}"
            if f_denom[c] == 0:
                undefined[f"f1[{c}]"] = f"class {c} is neither present nor predicted; set to zero_division={zd}"

        accuracy = float(tp.sum() / n)
        present = support > 0
        balanced = float(np.mean(tp[present] / support[present]))

        with np.errstate(invalid="ignore", divide="ignore"):
            normalized = cm / support[:, None].astype(np.float64)
        normalized[~present] = np.nan

        if self.keep_scores:
            y_all = np.concatenate(self._y)
            P_all = np.concatenate(self._P)
            roc_auc = roc_auc_ovr(y_all, P_all)
            pr_auc = average_precision_ovr(y_all, P_all)
            for c in range(k):
                if support[c] == 0:
                    undefined[f"roc_auc[{c}]"] = f"class {c} has no samples in y (no positives)"
                    undefined[f"pr_auc[{c}]"] = f"class {c} has no samples in y (no positives)"
                elif support[c] == n:
                    undefined[f"roc_auc[{c}]"] = f"every sample is class {c} (no negatives)"
        else:
            roc_auc = np.full(k, np.nan)
            pr_auc = np.full(k, np.nan)
            undefined["roc_auc"] = undefined["pr_auc"] = "scores not kept (keep_scores=False)"

        table = _table_from_sums(self.bin_count, self.bin_conf_sum, self.bin_correct_sum)
        filled = table["count"].to_numpy() > 0
        ece = float(np.sum(table["count"].to_numpy()[filled] / n * np.abs(table["gap"].to_numpy()[filled])))

        # Like scikit-learn's default labels: a class neither in ``y`` nor predicted (a 1000-class model
        # judged on 9 of its classes) does not enter macro averages, or it would pull them to zero_division.
        counted = f_denom > 0

        def macro(values: np.ndarray, name: str) -> float:
            values = values[counted]
            if np.isnan(values).all():
                undefined[f"{name}_macro"] = f"no class has a defined {name}"
                return float("nan")
            return float(np.nanmean(values))

        return ClassificationReport(
            n=n,
            num_classes=k,
            accuracy=accuracy,
            balanced_accuracy=balanced,
            support=support,
            predicted=predicted,
            precision=precision,
            recall=recall,
            f1=f1,
            precision_macro=macro(precision, "precision"),
            recall_macro=macro(recall, "recall"),
            f1_macro=macro(f1, "f1"),
            precision_micro=accuracy,
            recall_micro=accuracy,
            f1_micro=accuracy,
            roc_auc=roc_auc,
            roc_auc_macro=macro(roc_auc, "roc_auc"),
            pr_auc=pr_auc,
            pr_auc_macro=macro(pr_auc, "pr_auc"),
            log_loss=self.log_loss_sum / n,
            top_k={kk: float(h / n) for kk, h in zip(self.top_k, self.top_k_hits)},
            confusion=cm.copy(),
            confusion_normalized=normalized,
            ece=ece,
            calibration=table,
            undefined=undefined,
        )


def classification_metrics(
    y: Any,
    P: Any,
    *,
    from_logits: bool = False,
    top_k: Iterable[int] = (1, 5),
    n_bins: int = 15,
    zero_division: float = 0.0,
) -> ClassificationReport:
    """All classification metrics for labels ``y`` (n,) and probabilities ``P`` (n, K) in one call.

    Same as one :meth:`ClassificationMetrics.update` followed by ``compute``.

    >>> r = classification_metrics([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> round(r.accuracy, 4), r.confusion.tolist()
    (0.6667, [[1, 0], [1, 1]])
    """
    prob = as_probabilities(P, from_logits=from_logits)
    acc = ClassificationMetrics(prob.shape[1], top_k=top_k, n_bins=n_bins, zero_division=zero_division)
    acc.update(y, prob)
    return acc.compute()
