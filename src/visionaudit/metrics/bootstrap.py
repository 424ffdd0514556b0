"""The one bootstrap visionaudit uses for every confidence interval, plus model comparison tests.

- :func:`bootstrap_ci`: point estimate, CI and standard error of any metric of paired per-sample arrays
  (labels, probabilities, correctness...), by resampling sample indices. Resamples are drawn as an index
  matrix in batches, so a metric that accepts a leading batch axis (``vectorized=True``) is evaluated on
  all resamples with a few numpy calls. ``method="percentile"`` (optionally stratified by class) or
  ``method="bca"`` (bias-corrected and accelerated, delegated to ``scipy.stats.bootstrap``).
- :func:`paired_bootstrap`: the difference of a metric between two models on the same samples, with a
  CI and a two-sided p-value, resampling the samples jointly.
- :func:`mcnemar`: McNemar's test on the two models' correctness vectors.
- :func:`samples_needed` / :func:`ci_halfwidth`: how many test samples a CI of a given half-width needs
  (normal approximation), for the "test set too small" warning.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError

__all__ = [
    "BootstrapResult",
    "McNemarResult",
    "PairedBootstrapResult",
    "bootstrap_ci",
    "ci_halfwidth",
    "mcnemar",
    "paired_bootstrap",
    "samples_needed",
]

METHODS = ("percentile", "bca")
# Elements gathered per batch of resamples (per array), to bound memory: 2**22 float64 = 32 MiB.
_BATCH_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class BootstrapResult:
    """A metric's value on the full data with its bootstrap confidence interval.

    ``standard_error`` is the standard deviation (ddof=1) of the bootstrap distribution.
    """

    estimate: float
    low: float
    high: float
    standard_error: float
    confidence: float
    n_resamples: int
    method: str


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Metric of model A, of model B, and of A - B with its CI and two-sided bootstrap p-value."""

    estimate_a: float
    estimate_b: float
    difference: float
    low: float
    high: float
    standard_error: float
    p_value: float
    confidence: float
    n_resamples: int

    @property
    def significant(self) -> bool:
        """True when the CI of the difference excludes 0."""
        return bool(self.low > 0.0 or self.high < 0.0)


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test: ``b`` = A right and B wrong, ``c`` = A wrong and B right."""

    b: int
    c: int
    statistic: float
    p_value: float
    exact: bool


def _check_common(n_resamples: int, confidence: float) -> None:
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ArgumentError("n_resamples", n_resamples, "an integer >= 2")
    if not isinstance(confidence, (float, int)) or not 0.0 < confidence < 1.0:
        raise ArgumentError("confidence", confidence, "a number strictly between 0 and 1")


def _as_arrays(arrays: Sequence[Any], name: str = "arrays") -> tuple[list[np.ndarray], int]:
    if not arrays:
        raise ArgumentError(name, (), "at least one array of per-sample values")
    out = [np.asarray(a) for a in arrays]
    for i, a in enumerate(out):
        if a.ndim == 0:
            raise ArgumentError(f"{name}[{i}].shape", a.shape, "(n, ...) with one row per sample")
    n = out[0].shape[0]
    for i, a in enumerate(out):
        if a.shape[0] != n:
            raise ArgumentError(f"{name}[{i}].shape", a.shape, f"({n}, ...): same number of samples as {name}[0]")
    if n < 2:
        raise ArgumentError(f"{name}[0].shape", out[0].shape, "at least 2 samples to resample")
    return out, n


def _statistic(metric_fn: Callable[..., Any], arrays: list[np.ndarray], vectorized: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Metric of the samples picked by an index array of shape (..., n), one value per leading index."""

    def stat(idx: np.ndarray) -> np.ndarray:
        lead = idx.shape[:-1]
        flat = idx.reshape(-1, idx.shape[-1])
        if vectorized:
            values = np.asarray(metric_fn(*[a[flat] for a in arrays]), dtype=np.float64)
            if values.shape != (flat.shape[0],):
                raise ArgumentError(
                    "metric_fn", f"output shape {values.shape}",
                    f"one value per resample, shape ({flat.shape[0]},), when vectorized=True",
                )
        else:
            values = np.array([float(metric_fn(*[a[row] for a in arrays])) for row in flat])
        return values.reshape(lead)

    return stat


def _point(metric_fn: Callable[..., Any], arrays: list[np.ndarray], vectorized: bool) -> float:
    if vectorized:
        return float(np.asarray(metric_fn(*[a[None] for a in arrays])).reshape(-1)[0])
    return float(metric_fn(*arrays))


def _index_batches(
    n: int, n_resamples: int, rng: np.random.Generator, strata: list[np.ndarray] | None, row_elements: int
):
    """Yield index matrices (b, n) of resampled rows, b chosen to bound memory."""
    batch = max(1, _BATCH_ELEMENTS // max(1, row_elements))
    done = 0
    while done < n_resamples:
        b = min(batch, n_resamples - done)
        if strata is None:
            yield rng.integers(0, n, (b, n))
        else:
            # Each stratum keeps its size; rows are resampled within it.
            yield np.concatenate([members[rng.integers(0, len(members), (b, len(members)))] for members in strata], axis=1)
        done += b


def _strata(stratify: Any, n: int) -> list[np.ndarray]:
    groups = np.asarray(stratify)
    if groups.shape != (n,):
        raise ArgumentError("stratify.shape", groups.shape, f"({n},): one group label per sample")
    _, inverse = np.unique(groups, return_inverse=True)
    return [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]


def _distribution(
    stat: Callable[[np.ndarray], np.ndarray],
    arrays: list[np.ndarray],
    n: int,
    n_resamples: int,
    rng: np.random.Generator,
    strata: list[np.ndarray] | None,
) -> np.ndarray:
    row_elements = n * max(int(np.prod(a.shape[1:], dtype=np.int64)) for a in arrays)
    return np.concatenate([stat(idx) for idx in _index_batches(n, n_resamples, rng, strata, row_elements)])


def _interval(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    finite = dist[np.isfinite(dist)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    metric_fn: Callable[..., Any],
    *arrays: Any,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    method: str = "percentile",
    seed: int | np.random.Generator | None = 0,
    stratify: Any = None,
    vectorized: bool = False,
) -> BootstrapResult:
    """Bootstrap confidence interval of ``metric_fn(*arrays)``, resampling samples (rows) jointly.

    Args:
        metric_fn: returns a number from arrays that all have one row per sample. With
            ``vectorized=True`` it instead receives arrays with a leading resample axis (b, n, ...) and
            returns b values; that is much faster (e.g. ``lambda c: c.mean(axis=-1)`` for accuracy
            from a correctness vector).
        arrays: per-sample arrays of equal length n (labels, probabilities, correctness...).
        n_resamples: bootstrap resamples.
        confidence: CI level, e.g. 0.95.
        method: ``"percentile"`` or ``"bca"`` (scipy.stats.bootstrap's BCa; no stratification).
        seed: seed or ``numpy.random.Generator``; the same seed gives the same interval.
        stratify: optional group label per sample (e.g. the class); each group keeps its size in every
            resample, which removes the class-mix noise of small test sets.
        vectorized: see ``metric_fn``.

    Resamples where the metric is NaN (e.g. a class drawn zero times) are left out of the interval.
    Unstratified percentile draws the same indices as ``scipy.stats.bootstrap`` with the same seed.

    >>> correct = np.r_[np.ones(80), np.zeros(20)]
    >>> r = bootstrap_ci(lambda c: c.mean(axis=-1), correct, vectorized=True, seed=0)
    >>> r.estimate, r.low < 0.8 < r.high
    (0.8, True)
    """
    _check_common(n_resamples, confidence)
    if method not in METHODS:
        raise ArgumentError("method", method, f"one of {', '.join(METHODS)}")
    data, n = _as_arrays(arrays)
    rng = np.random.default_rng(seed)
    stat = _statistic(metric_fn, data, vectorized)
    estimate = _point(metric_fn, data, vectorized)
    if method == "bca":
        if stratify is not None:
            raise ArgumentError("stratify", "given", "None with method='bca' (use method='percentile')")
        from scipy import stats  # here, not at import: scipy.stats costs ~0.7 s to import

        row_elements = n * max(int(np.prod(a.shape[1:], dtype=np.int64)) for a in data)
        res = stats.bootstrap(
            (np.arange(n),),
            lambda idx, axis: stat(np.moveaxis(idx, axis, -1)),
            n_resamples=int(n_resamples),
            batch=max(1, _BATCH_ELEMENTS // max(1, row_elements)),
            vectorized=True,
            confidence_level=confidence,
            method="BCa",
            rng=rng,
        )
        dist = res.bootstrap_distribution
        return BootstrapResult(
            estimate, float(res.confidence_interval.low), float(res.confidence_interval.high),
            float(np.std(dist, ddof=1)), float(confidence), int(n_resamples), method,
        )
    strata = None if stratify is None else _strata(stratify, n)
    dist = _distribution(stat, data, n, int(n_resamples), rng, strata)
    low, high = _interval(dist, confidence)
    finite = dist[np.isfinite(dist)]
    se = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
    return BootstrapResult(estimate, low, high, se, float(confidence), int(n_resamples), method)


def paired_bootstrap(
    metric_fn: Callable[..., Any],
    arrays_a: Sequence[Any],
    arrays_b: Sequence[Any],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    stratify: Any = None,
    vectorized: bool = False,
) -> PairedBootstrapResult:
    """Compare one metric between models A and B evaluated on the same n samples.

    Every resample picks the same rows for both models, so the CI of ``metric(A) - metric(B)`` accounts
    for the correlation between them (far narrower than two independent CIs). The two-sided p-value
    inverts the percentile interval: ``2 * min(P*(d <= 0), P*(d >= 0))`` over the bootstrap
    differences, each fraction counted as ``(hits + 1) / (n_resamples + 1)`` so it is never 0 (a
    bootstrap cannot resolve p below 1/n_resamples); p < 1 - confidence when the CI excludes 0.

    Args:
        metric_fn, n_resamples, confidence, seed, stratify, vectorized: as in :func:`bootstrap_ci`.
        arrays_a: model A's arguments to ``metric_fn`` (e.g. ``(y, P_a)``).
        arrays_b: model B's arguments (e.g. ``(y, P_b)``), same number of rows.

    >>> right_a, right_b = np.ones(100), np.r_[np.ones(70), np.zeros(30)]
    >>> r = paired_bootstrap(lambda c: c.mean(axis=-1), [right_a], [right_b], vectorized=True)
    >>> round(r.difference, 2), r.significant
    (0.3, True)
    """
    _check_common(n_resamples, confidence)
    data_a, n_a = _as_arrays(list(arrays_a), "arrays_a")
    data_b, n_b = _as_arrays(list(arrays_b), "arrays_b")
    if n_a != n_b:
        raise ArgumentError("arrays_b[0].shape", data_b[0].shape, f"({n_a}, ...): the same samples as arrays_a")
    n = n_a
    rng = np.random.default_rng(seed)
    stat_a = _statistic(metric_fn, data_a, vectorized)
    stat_b = _statistic(metric_fn, data_b, vectorized)
    est_a = _point(metric_fn, data_a, vectorized)
    est_b = _point(metric_fn, data_b, vectorized)
    strata = None if stratify is None else _strata(stratify, n)
    row_elements = n * max(int(np.prod(a.shape[1:], dtype=np.int64)) for a in data_a + data_b)
    diffs = np.concatenate(
        [stat_a(idx) - stat_b(idx) for idx in _index_batches(n, int(n_resamples), rng, strata, row_elements)]
    )
    low, high = _interval(diffs, confidence)
    finite = diffs[np.isfinite(diffs)]
    if finite.size < 2:
        se = p = float("nan")
    else:
        se = float(np.std(finite, ddof=1))
        m = finite.size
        p_le = (np.count_nonzero(finite <= 0.0) + 1) / (m + 1)
        p_ge = (np.count_nonzero(finite >= 0.0) + 1) / (m + 1)
        p = float(min(1.0, 2.0 * min(p_le, p_ge)))
    return PairedBootstrapResult(
        est_a, est_b, est_a - est_b, low, high, se, p, float(confidence), int(n_resamples)
    )


def mcnemar(correct_a: Any, correct_b: Any, *, exact: bool | None = None) -> McNemarResult:
    """McNemar's test of whether models A and B have the same error rate on the same samples.

    Only discordant samples count: ``b`` (A right, B wrong) and ``c`` (A wrong, B right). With
    ``exact=None`` the exact binomial test is used when ``b + c < 25`` and the chi-square test with
    continuity correction otherwise. Exact: two-sided binomial p of ``min(b, c)`` in ``b + c`` trials at
    1/2 (= ``scipy.stats.binomtest``), statistic ``min(b, c)``. Chi-square: statistic
    ``max(|b - c| - 1, 0)^2 / (b + c)`` with 1 degree of freedom (statsmodels' formula, except that
    ``b == c`` gives statistic 0 and p = 1 instead of a small positive statistic).

    >>> a = np.r_[np.ones(30, bool), np.zeros(5, bool)]
    >>> b = np.r_[np.ones(12, bool), np.zeros(18, bool), np.ones(5, bool)]
    >>> r = mcnemar(a, b)
    >>> (r.b, r.c, r.exact, round(r.p_value, 4))
    (18, 5, True, 0.0106)
    """
    ca, cb = np.asarray(correct_a), np.asarray(correct_b)
    for name, arr in (("correct_a", ca), ("correct_b", cb)):
        if arr.ndim != 1 or arr.size == 0:
            raise ArgumentError(f"{name}.shape", arr.shape, "(n,) with n >= 1: one right/wrong flag per sample")
        if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
            raise ArgumentError(name, arr[:5].tolist(), "booleans or 0/1 (was the sample predicted right?)")
    if ca.shape != cb.shape:
        raise ArgumentError("correct_b.shape", cb.shape, f"{ca.shape}: the same samples as correct_a")
    ca, cb = ca.astype(bool), cb.astype(bool)
    b = int(np.count_nonzero(ca & ~cb))
    c = int(np.count_nonzero(~ca & cb))
    use_exact = (b + c < 25) if exact is None else bool(exact)
    if b + c == 0:
        return McNemarResult(b, c, 0.0, 1.0, use_exact)
    from scipy import stats

    if use_exact:
        p = stats.binomtest(min(b, c), b + c, 0.5).pvalue
        return McNemarResult(b, c, float(min(b, c)), float(p), True)
    statistic = max(abs(b - c) - 1.0, 0.0) ** 2 / (b + c)
    return McNemarResult(b, c, float(statistic), float(stats.chi2.sf(statistic, 1)), False)


def _z(confidence: float) -> float:
    if not isinstance(confidence, (float, int)) or not 0.0 < confidence < 1.0:
        raise ArgumentError("confidence", confidence, "a number strictly between 0 and 1")
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2.0))


def samples_needed(halfwidth: float, accuracy: float = 0.5, *, confidence: float = 0.95) -> int:
    """Test samples needed so the CI of an accuracy near ``accuracy`` has half-width ``halfwidth``.

    Normal approximation: ``n = z^2 p (1 - p) / w^2`` rounded up. ``accuracy=0.5`` is the worst case.

    >>> samples_needed(0.01, 0.9)
    3458
    """
    if not isinstance(halfwidth, (float, int)) or not 0.0 < halfwidth < 1.0:
        raise ArgumentError("halfwidth", halfwidth, "a number strictly between 0 and 1")
    if not isinstance(accuracy, (float, int)) or not 0.0 <= accuracy <= 1.0:
        raise ArgumentError("accuracy", accuracy, "a number in [0, 1]")
    z = _z(confidence)
    # The tiny tolerance keeps exact products like 1.96^2 * 0.09 / 1e-4 from rounding up by float noise.
    return max(1, math.ceil(z * z * accuracy * (1.0 - accuracy) / halfwidth**2 - 1e-9))


def ci_halfwidth(n: int, accuracy: float, *, confidence: float = 0.95) -> float:
    """Half-width of the normal-approximation CI of an accuracy ``accuracy`` measured on n samples.

    >>> round(ci_halfwidth(1000, 0.9), 4)
    0.0186
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ArgumentError("n", n, "a positive integer")
    if not isinstance(accuracy, (float, int)) or not 0.0 <= accuracy <= 1.0:
        raise ArgumentError("accuracy", accuracy, "a number in [0, 1]")
    return _z(confidence) * math.sqrt(accuracy * (1.0 - accuracy) / n)
