"""Classification metrics against scikit-learn on out-of-fold probabilities of a real classifier."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import label_binarize

from visionaudit.errors import ArgumentError
from visionaudit.metrics import (
    ClassificationMetrics,
    calibration_table,
    classification_metrics,
)

K = 10
TOL = 1e-12


@pytest.fixture(scope="module")
def digits_oof() -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of a weak logistic regression on sklearn's 8x8 digits (1,797 images).

    Weak on purpose (strong regularisation, 3 folds): about 5% errors spread over the classes, and
    under-confident probabilities, so calibration error is large.
    """
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(C=0.1, max_iter=300)
    P = cross_val_predict(model, X / 16.0, y, cv=StratifiedKFold(3, shuffle=True, random_state=0), method="predict_proba")
    return y.astype(np.int64), P


def test_counts_and_rates_match_sklearn(digits_oof):
    y, P = digits_oof
    r = classification_metrics(y, P)
    pred = P.argmax(axis=1)
    labels = list(range(K))
    assert 0.5 < r.accuracy < 0.98  # a model with errors in it, so the comparisons mean something
    assert r.accuracy == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert r.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=TOL)
    np.testing.assert_array_equal(r.confusion, skm.confusion_matrix(y, pred, labels=labels))
    np.testing.assert_allclose(
        r.confusion_normalized, skm.confusion_matrix(y, pred, labels=labels, normalize="true"), atol=TOL
    )
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(r.precision, prec, atol=TOL)
    np.testing.assert_allclose(r.recall, rec, atol=TOL)
    np.testing.assert_allclose(r.f1, f1, atol=TOL)
    np.testing.assert_array_equal(r.support, support)
    for avg in ("macro", "micro"):
        p_, r_, f_, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        assert getattr(r, f"precision_{avg}") == pytest.approx(p_, abs=TOL)
        assert getattr(r, f"recall_{avg}") == pytest.approx(r_, abs=TOL)
        assert getattr(r, f"f1_{avg}") == pytest.approx(f_, abs=TOL)
    assert r.undefined == {}


def test_scores_match_sklearn(digits_oof):
    y, P = digits_oof
    r = classification_metrics(y, P, top_k=(1, 2, 3, 5))
    onehot = label_binarize(y, classes=list(range(K)))
    for c in range(K):
        assert r.roc_auc[c] == pytest.approx(skm.roc_auc_score(onehot[:, c], P[:, c]), abs=TOL)
        assert r.pr_auc[c] == pytest.approx(skm.average_precision_score(onehot[:, c], P[:, c]), abs=TOL)
    assert r.roc_auc_macro == pytest.approx(skm.roc_auc_score(y, P, multi_class="ovr", average="macro"), abs=TOL)
    assert r.pr_auc_macro == pytest.approx(skm.average_precision_score(onehot, P, average="macro"), abs=TOL)
    assert r.log_loss == pytest.approx(skm.log_loss(y, P, labels=list(range(K))), abs=TOL)
    for k in (1, 2, 3, 5):
        assert r.top_k[k] == pytest.approx(skm.top_k_accuracy_score(y, P, k=k, labels=list(range(K))), abs=TOL)
    assert r.top_k[1] == r.accuracy
    assert r.top_k[1] < r.top_k[2] < r.top_k[5]


def test_ties_in_scores_match_sklearn_auc():
    """Rounded scores create many ties; ROC-AUC counts them as 1/2 and AP groups them, as sklearn does."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + 1.5 * np.eye(3)[y]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    P = np.round(P, 1)
    P[:, 2] = 1.0 - P[:, 0] - P[:, 1]
    P = np.clip(P, 0.0, 1.0)
    P /= P.sum(axis=1, keepdims=True)
    r = classification_metrics(y, P)
    onehot = label_binarize(y, classes=[0, 1, 2])
    for c in range(3):
        assert r.roc_auc[c] == pytest.approx(skm.roc_auc_score(onehot[:, c], P[:, c]), abs=TOL)
        assert r.pr_auc[c] == pytest.approx(skm.average_precision_score(onehot[:, c], P[:, c]), abs=TOL)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_absent_class_is_nan_with_reason_not_a_crash(digits_oof):
    y, P = digits_oof
    keep = y != 9
    ys, Ps = y[keep], P[keep]
    r = classification_metrics(ys, Ps, zero_division=np.nan)
    assert np.isnan(r.roc_auc[9]) and np.isnan(r.pr_auc[9])
    assert r.undefined["roc_auc[9]"] == "class 9 has no samples in y (no positives)"
    assert "recall[9]" in r.undefined and r.support[9] == 0
    onehot = label_binarize(ys, classes=list(range(K)))
    expected_auc = np.mean([skm.roc_auc_score(onehot[:, c], Ps[:, c]) for c in range(9)])
    assert r.roc_auc_macro == pytest.approx(expected_auc, abs=TOL)
    pred = Ps.argmax(axis=1)
    assert r.predicted[9] > 0  # class 9 is still predicted for some 4s and 7s
    for zd in (0.0, np.nan):
        rz = classification_metrics(ys, Ps, zero_division=zd)
        prec, rec, f1, _ = skm.precision_recall_fscore_support(ys, pred, labels=list(range(K)), zero_division=zd)
        np.testing.assert_allclose(rz.recall, rec, atol=TOL)
        np.testing.assert_allclose(rz.precision, prec, atol=TOL)
        np.testing.assert_allclose(rz.f1, f1, atol=TOL)
        p_, r_, f_, _ = skm.precision_recall_fscore_support(
            ys, pred, labels=list(range(K)), average="macro", zero_division=zd
        )
        assert (rz.precision_macro, rz.recall_macro, rz.f1_macro) == pytest.approx((p_, r_, f_), abs=TOL)
    assert r.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(ys, pred), abs=TOL)
    assert np.isnan(r.confusion_normalized[9]).all()
    # A single class in y: no negatives for it, no positives for the rest.
    only = classification_metrics(np.zeros(5, int), np.tile([0.6, 0.4], (5, 1)))
    assert np.isnan(only.roc_auc).all() and np.isnan(only.roc_auc_macro)
    assert only.undefined["roc_auc[0]"] == "every sample is class 0 (no negatives)"
    assert only.undefined["roc_auc_macro"] == "no class has a defined roc_auc"


def test_ece_and_reliability_table_match_hand_computation(digits_oof):
    y, P = digits_oof
    n_bins = 10
    conf = P.max(axis=1)
    right = P.argmax(axis=1) == y
    ece = 0.0
    rows = []
    for i in range(n_bins):
        lo, hi = i / n_bins, (i + 1) / n_bins
        in_bin = [j for j in range(len(y)) if lo < conf[j] <= hi]
        if in_bin:
            acc = sum(right[j] for j in in_bin) / len(in_bin)
            cmean = sum(conf[j] for j in in_bin) / len(in_bin)
            ece += len(in_bin) / len(y) * abs(acc - cmean)
            rows.append((i, len(in_bin), cmean, acc))
    r = classification_metrics(y, P, n_bins=n_bins)
    assert r.ece == pytest.approx(ece, abs=1e-12)
    table = r.calibration
    # The heavy regularisation makes the model under-confident: accuracy above confidence on average.
    assert r.ece > 0.1 and float((table["gap"] * table["count"]).sum()) / len(y) == pytest.approx(ece, abs=1e-12)
    assert list(table.columns) == ["lower", "upper", "count", "confidence", "accuracy", "gap"]
    assert int(table["count"].sum()) == len(y)
    for i, count, cmean, acc in rows:
        assert table.loc[i, "count"] == count
        assert table.loc[i, "confidence"] == pytest.approx(cmean, abs=1e-12)
        assert table.loc[i, "accuracy"] == pytest.approx(acc, abs=1e-12)
    empty = set(range(n_bins)) - {row[0] for row in rows}
    assert all(np.isnan(table.loc[i, "accuracy"]) for i in empty)
    same = calibration_table(y, P, n_bins=n_bins)
    np.testing.assert_allclose(same.to_numpy(), table.to_numpy(), atol=1e-15, equal_nan=True)


def test_streaming_batches_and_merge_equal_one_shot(digits_oof):
    y, P = digits_oof
    whole = classification_metrics(y, P, top_k=(1, 3))
    cuts = [0, 1, 250, 700, 701, 1200, len(y)]
    workers = [ClassificationMetrics(K, top_k=(1, 3)) for _ in range(2)]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        workers[i % 2].update(y[a:b], P[a:b])
    merged = workers[0].merge(workers[1]).compute()
    assert merged.n == len(y)
    np.testing.assert_array_equal(merged.confusion, whole.confusion)
    for name, value in whole.headline().items():
        assert merged.headline()[name] == pytest.approx(value, abs=1e-12), name
    np.testing.assert_allclose(merged.roc_auc, whole.roc_auc, atol=1e-12)
    np.testing.assert_allclose(merged.calibration.to_numpy(), whole.calibration.to_numpy(), atol=1e-12, equal_nan=True)
    lean = ClassificationMetrics(K, keep_scores=False)
    lean.update(y, P)
    slim = lean.compute()
    assert slim.accuracy == whole.accuracy and slim.log_loss == pytest.approx(whole.log_loss, abs=1e-12)
    assert np.isnan(slim.roc_auc_macro) and slim.undefined["roc_auc"] == "scores not kept (keep_scores=False)"
    with pytest.raises(ArgumentError, match="other"):
        ClassificationMetrics(K, n_bins=5).merge(ClassificationMetrics(K))


def test_logits_give_the_same_metrics(digits_oof):
    y, P = digits_oof
    logits = np.log(np.clip(P, 1e-300, None)) + 7.0  # a per-row shift does not change a softmax
    a = classification_metrics(y, P).headline()
    b = classification_metrics(y, logits, from_logits=True).headline()
    for name in a:
        assert b[name] == pytest.approx(a[name], abs=1e-9), name


def test_report_is_json_ready(digits_oof):
    y, P = digits_oof
    keep = y != 9
    d = classification_metrics(y[keep], P[keep]).to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["roc_auc"][9] is None and back["num_classes"] == 10
    assert len(back["calibration"]) == 15 and back["top_k"]["5"] >= back["top_k"]["1"]


@pytest.mark.parametrize(
    ("y", "P", "kwargs", "match"),
    [
        ([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]], {}, r"invalid y\.shape=\(3,\): expected \(n,\) with n = P\.shape\[0\] = 2"),
        ([0, 1], [0.5, 0.5], {}, r"invalid P\.shape=\(2,\): expected \(n, K\)"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], {}, r"invalid y\[1\]=2: expected a class index in \[0, 2\)"),
        ([0, 1], [[0.5, 0.6], [0.5, 0.5]], {}, r"invalid P\[0\]\.sum\(\)=1\.1.*from_logits=True"),
        ([0, 1], [[1.5, -0.5], [0.5, 0.5]], {}, r"invalid P\[0\]=.*probabilities in \[0, 1\]"),
        ([0, 1], [[np.nan, 0.5], [0.5, 0.5]], {}, r"invalid P\[0\]=.*finite"),
        ([0.5, 1], [[0.5, 0.5], [0.5, 0.5]], {}, r"invalid y=.*integer class indices"),
        (["a", "b"], [[0.5, 0.5], [0.5, 0.5]], {}, r"invalid y\.dtype="),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], {"n_bins": 0}, r"invalid n_bins=0"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], {"top_k": (0,)}, r"invalid top_k="),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], {"zero_division": "warn"}, r"invalid zero_division='warn'"),
    ],
)
def test_bad_inputs_name_the_argument(y, P, kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        classification_metrics(y, P, **kwargs)


def test_accumulator_rejects_wrong_class_count_and_empty_compute():
    m = ClassificationMetrics(3)
    with pytest.raises(ArgumentError, match=r"invalid P\.shape=\(1, 2\): expected \(n, 3\)"):
        m.update([0], [[0.5, 0.5]])
    with pytest.raises(ArgumentError, match="before compute"):
        m.compute()
    with pytest.raises(ArgumentError, match="num_classes"):
        ClassificationMetrics(1)


def test_macro_averages_leave_out_classes_neither_present_nor_predicted(digits_oof):
    """A model with more outputs than the dataset's classes (ImageNet logits on 10 digits): the extra
    columns are never the label and never the argmax, so macro P/R/F1 must equal scikit-learn's default
    (labels present in y or predicted), not an average dragged to 0 by 990 empty classes."""
    y, P = digits_oof
    wide = np.hstack([P, np.full((len(P), 990), 1e-9)])
    wide /= wide.sum(axis=1, keepdims=True)
    r = classification_metrics(y, wide)
    pred = wide.argmax(axis=1)
    p_, r_, f_, _ = skm.precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (r.precision_macro, r.recall_macro, r.f1_macro) == pytest.approx((p_, r_, f_), abs=TOL)
    assert r.f1_macro > 0.5  # averaged over all 1000 columns it would be below 0.01
    assert r.num_classes == 1000 and r.f1[500] == 0.0
    # The evaluate suite's bootstrap of macro F1 (vectorised over resamples) uses the same classes.
    from visionaudit.analyses.evaluation_data import f1_macro_statistic
    boot = f1_macro_statistic(1000)(y[None], pred[None], (pred == y)[None])
    assert boot[0] == pytest.approx(f_, abs=TOL)
