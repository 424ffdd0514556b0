"""The bootstrap: coverage in a seeded simulation, agreement with scipy, paired comparison, McNemar."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from visionaudit.errors import ArgumentError
from visionaudit.metrics import (
    bootstrap_ci,
    ci_halfwidth,
    mcnemar,
    paired_bootstrap,
    samples_needed,
)
from visionaudit.metrics.classification import classification_metrics


def mean_last(c: np.ndarray) -> np.ndarray:
    return c.mean(axis=-1)


def test_percentile_ci_covers_true_accuracy_at_nominal_rate():
    """200 seeded test sets of n=300 from a model with true accuracy 0.8: the 95% CI covers 0.8 in ~95%."""
    rng = np.random.default_rng(2024)
    covered = []
    widths = []
    for rep in range(200):
        correct = rng.random(300) < 0.8
        r = bootstrap_ci(mean_last, correct, vectorized=True, n_resamples=1000, seed=rep)
        covered.append(r.low <= 0.8 <= r.high)
        widths.append(r.high - r.low)
        assert r.estimate == correct.mean()
    rate = float(np.mean(covered))
    assert 0.92 <= rate <= 0.98, rate  # 0.975 here; 0.959 over 2,000 repetitions
    # The width agrees with the normal approximation 2 * 1.96 * sqrt(p(1-p)/n) = 0.0905.
    assert np.mean(widths) == pytest.approx(2 * ci_halfwidth(300, 0.8), rel=0.05)


def test_percentile_equals_scipy_with_the_same_seed_across_batches():
    """Unstratified percentile draws the same index matrix as scipy.stats.bootstrap, even when batched."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=10_000)  # 10,000 samples: resampled in batches of 419 rows
    ours = bootstrap_ci(mean_last, x, vectorized=True, n_resamples=1000, seed=11)
    ref = stats.bootstrap((x,), np.mean, n_resamples=1000, method="percentile", rng=np.random.default_rng(11))
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert ours.standard_error == pytest.approx(ref.standard_error, abs=1e-12)
    assert ours.estimate == pytest.approx(x.mean(), abs=1e-15)


def test_bca_is_scipy_bca():
    rng = np.random.default_rng(5)
    x = rng.exponential(size=200)  # skewed, where BCa and percentile differ
    ours = bootstrap_ci(mean_last, x, vectorized=True, n_resamples=2000, method="bca", seed=3)
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(3))
    assert (ours.low, ours.high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), abs=1e-12)
    pct = bootstrap_ci(mean_last, x, vectorized=True, n_resamples=2000, seed=3)
    assert ours.low != pytest.approx(pct.low, abs=1e-4)  # BCa shifts the interval for skewed data


def test_plain_and_vectorized_metric_give_the_same_interval():
    """A metric of (labels, probabilities): per-resample calls and one batched call agree exactly."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 150)
    logits = rng.normal(size=(150, 4)) + 1.2 * np.eye(4)[y]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    def acc(yy, pp):
        return classification_metrics(yy, pp, top_k=()).accuracy

    def acc_batched(yy, pp):
        return (pp.argmax(axis=-1) == yy).mean(axis=-1)

    plain = bootstrap_ci(acc, y, P, n_resamples=200, seed=1)
    fast = bootstrap_ci(acc_batched, y, P, n_resamples=200, seed=1, vectorized=True)
    assert (plain.estimate, plain.low, plain.high) == (fast.estimate, fast.low, fast.high)
    assert plain.standard_error == pytest.approx(fast.standard_error, abs=1e-15)


def test_stratified_resamples_keep_class_sizes():
    y = np.r_[np.zeros(30, int), np.ones(70, int)]
    correct = np.r_[np.ones(15), np.zeros(15), np.ones(70)]  # class 0: 50% right, class 1: 100%
    count0 = bootstrap_ci(lambda yy: (yy == 0).sum(axis=-1), y, vectorized=True, stratify=y, n_resamples=300)
    assert (count0.low, count0.high, count0.standard_error) == (30.0, 30.0, 0.0)
    free = bootstrap_ci(lambda yy: (yy == 0).sum(axis=-1), y, vectorized=True, n_resamples=300)
    assert free.high - free.low > 10  # without strata the class mix varies
    strat = bootstrap_ci(mean_last, correct, vectorized=True, stratify=y, n_resamples=2000, seed=4)
    plain = bootstrap_ci(mean_last, correct, vectorized=True, n_resamples=2000, seed=4)
    # Only class 0's correctness varies: SE = 0.3 * sqrt(0.25 / 30), against sqrt(0.85 * 0.15 / 100).
    assert strat.standard_error == pytest.approx(0.3 * np.sqrt(0.25 / 30), rel=0.08)
    assert plain.standard_error == pytest.approx(np.sqrt(0.85 * 0.15 / 100), rel=0.08)


def test_resamples_where_the_metric_is_undefined_are_left_out():
    """A rare class is missing from some resamples; its ROC-AUC is NaN there and the CI uses the rest."""
    from visionaudit.metrics.classification import roc_auc_ovr

    rng = np.random.default_rng(8)
    y = np.r_[np.zeros(37, int), np.ones(3, int)]
    P1 = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 40), 0.0, 1.0)
    P = np.c_[1.0 - P1, P1]

    def auc1(yy, pp):
        return roc_auc_ovr(yy, pp)[1]

    r = bootstrap_ci(auc1, y, P, n_resamples=300, seed=0)
    draws = np.random.default_rng(0).integers(0, 40, (300, 40))  # the same index matrix
    values = np.array([auc1(y[rows], P[rows]) for rows in draws])
    assert 0.02 < np.isnan(values).mean() < 0.1  # (37/40)^40 = 4.4% of resamples have no class 1
    finite = values[np.isfinite(values)]
    assert (r.low, r.high) == pytest.approx(tuple(np.quantile(finite, [0.025, 0.975])), abs=1e-15)
    assert r.standard_error == pytest.approx(finite.std(ddof=1), abs=1e-15)


def _paired_correctness(n: int, b: int, c: int, both: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of models A and B: b samples only A gets right, c only B, `both` both, rest neither."""
    a = np.zeros(n, bool)
    bb = np.zeros(n, bool)
    a[:b] = True
    bb[b : b + c] = True
    a[b + c : b + c + both] = bb[b + c : b + c + both] = True
    order = np.random.default_rng(n + b + c).permutation(n)
    return a[order], bb[order]


def test_paired_bootstrap_interval_and_p_value():
    a, b = _paired_correctness(2000, b=60, c=35, both=1700)
    r = paired_bootstrap(mean_last, [a.astype(float)], [b.astype(float)], vectorized=True, n_resamples=4000, seed=9)
    assert r.estimate_a == 1760 / 2000 and r.estimate_b == 1735 / 2000
    assert r.difference == pytest.approx(25 / 2000, abs=1e-15)
    # The interval is scipy's percentile bootstrap of the per-sample difference (same index draws).
    d = a.astype(float) - b.astype(float)
    ref = stats.bootstrap((d,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(9))
    assert (r.low, r.high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), abs=1e-12)
    # p agrees with the normal test of the mean difference: z = d / sqrt(var(d) / n) = 2.57, p = 0.0101.
    p_normal = 2 * stats.norm.sf(d.mean() / np.sqrt(d.var() / len(d)))
    assert p_normal == pytest.approx(0.0101, abs=5e-4)
    assert r.p_value == pytest.approx(p_normal, abs=0.004)
    assert r.significant and r.p_value < 0.05
    # Equal discordant counts: no evidence of a difference.
    a0, b0 = _paired_correctness(2000, b=40, c=40, both=1700)
    r0 = paired_bootstrap(mean_last, [a0], [b0], vectorized=True, n_resamples=2000, seed=9)
    assert r0.difference == 0.0 and r0.p_value > 0.8 and not r0.significant


def test_paired_bootstrap_of_a_classification_metric_on_probabilities():
    """Macro-F1 of two models with the same labels; resampling picks the same rows for both."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    good = rng.normal(size=(300, 3)) + 2.5 * np.eye(3)[y]
    bad = rng.normal(size=(300, 3)) + 0.3 * np.eye(3)[y]
    Pg = np.exp(good) / np.exp(good).sum(axis=1, keepdims=True)
    Pb = np.exp(bad) / np.exp(bad).sum(axis=1, keepdims=True)

    def f1(yy, pp):
        return classification_metrics(yy, pp, top_k=()).f1_macro

    r = paired_bootstrap(f1, [y, Pg], [y, Pb], n_resamples=200, seed=2)
    assert r.estimate_a == f1(y, Pg) and r.estimate_b == f1(y, Pb)
    assert r.difference > 0.3 and r.low > 0.2 and r.p_value == pytest.approx(2 / 201, abs=1e-12)


def test_mcnemar_exact_and_chi_square_against_scipy():
    a, b = _paired_correctness(100, b=3, c=12, both=70)
    r = mcnemar(a, b)
    assert (r.b, r.c, r.exact) == (3, 12, True)
    assert r.p_value == pytest.approx(stats.binomtest(3, 15, 0.5).pvalue, abs=1e-15)
    assert r.p_value == pytest.approx(0.03515625, abs=1e-12)  # 2 * P(X <= 3), X ~ Bin(15, 1/2) = 2 * 576 / 32768
    # Large discordant counts: chi-square with continuity correction, (|121 - 59| - 1)^2 / 180 = 20.672.
    a, b = _paired_correctness(1000, b=121, c=59, both=700)
    r = mcnemar(a, b)
    assert not r.exact and r.statistic == pytest.approx(61**2 / 180, abs=1e-12)
    assert r.p_value == pytest.approx(stats.chi2.sf(61**2 / 180, 1), abs=1e-15)
    assert r.p_value < 1e-5
    forced = mcnemar(a, b, exact=True)
    assert forced.p_value == pytest.approx(stats.binomtest(59, 180, 0.5).pvalue, abs=1e-15)
    same = mcnemar(*_paired_correctness(200, b=30, c=30, both=100))
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    none = mcnemar(np.ones(5, bool), np.ones(5, bool))
    assert (none.b, none.c, none.p_value) == (0, 0, 1.0)


def test_samples_needed_for_a_ci_halfwidth():
    assert samples_needed(0.01, 0.9) == 3458  # 1.96^2 * 0.09 / 0.0001 = 3457.3
    assert samples_needed(0.05) == 385  # worst case p = 0.5: the classic 384.1
    assert samples_needed(0.01, 0.9, confidence=0.99) == 5972  # 2.5758^2 * 0.09 / 0.0001 = 5971.3
    for w, p in ((0.02, 0.95), (0.005, 0.7)):
        n = samples_needed(w, p)
        assert ci_halfwidth(n, p) <= w < ci_halfwidth(n - 1, p)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bootstrap_ci(mean_last, np.ones(10), method="bootstrap-t"), r"invalid method='bootstrap-t'"),
        (lambda: bootstrap_ci(mean_last, np.ones(10), confidence=95), r"invalid confidence=95"),
        (lambda: bootstrap_ci(mean_last, np.ones(10), n_resamples=1), r"invalid n_resamples=1"),
        (lambda: bootstrap_ci(mean_last, np.ones(10), np.ones(9)), r"invalid arrays\[1\]\.shape=\(9,\): expected \(10, \.\.\.\)"),
        (lambda: bootstrap_ci(mean_last), r"invalid arrays=\(\)"),
        (lambda: bootstrap_ci(mean_last, np.ones(10), stratify=np.ones(3)), r"invalid stratify\.shape=\(3,\)"),
        (lambda: bootstrap_ci(mean_last, np.ones(10), stratify=np.ones(10), method="bca"), r"invalid stratify"),
        (lambda: bootstrap_ci(lambda c: 1.0, np.ones(10), vectorized=True), r"invalid metric_fn=.*one value per resample"),
        (lambda: paired_bootstrap(mean_last, [np.ones(10)], [np.ones(8)]), r"invalid arrays_b\[0\]\.shape=\(8,\)"),
        (lambda: mcnemar([1, 0, 2], [1, 1, 1]), r"invalid correct_a=\[1, 0, 2\]"),
        (lambda: mcnemar([1, 0], [1, 1, 1]), r"invalid correct_b\.shape=\(3,\)"),
        (lambda: samples_needed(0.0), r"invalid halfwidth=0\.0"),
        (lambda: samples_needed(0.01, 1.2), r"invalid accuracy=1\.2"),
        (lambda: ci_halfwidth(0, 0.5), r"invalid n=0"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ArgumentError, match=match):
        call()
