"""Error analysis (confused pairs, confidently wrong samples) on real MNIST digits with planted predictions.

400 digits (100 train, 300 test) are written as PNGs into a manifest-like dataset. Every prediction is
right (0.9 on the label) except planted mistakes, each with a chosen probability for the wrong class:

- test: 4 -> 9 six times (0.95 ... 0.60, assigned in reverse id order so confidence order != id order),
  7 -> 1 and 3 -> 5 three times each (a tie in count broken by the share of the true class),
  2 -> 8 once (the surest mistake of all, but a single one is not a pair at min_count=2);
- train: 0 -> 6 five times, which must not count: the evaluation split is test.

The same digits also test the calibration check's per-class (one-vs-rest) ECE against a direct computation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import issues_frame, mnist_arrays, run_check
from PIL import Image

from visionaudit.checks.errors import ConfidentErrors, ConfusedPairs
from visionaudit.context import Context
from visionaudit.dataset import Dataset, make_samples
from visionaudit.predictors import read_predictions

N_TRAIN, N_TEST = 100, 300
#: (split, true, predicted, probabilities of the predicted class in the order the samples are taken).
PLANTS = [
    ("test", 4, 9, [0.60, 0.70, 0.80, 0.85, 0.90, 0.95]),
    ("test", 7, 1, [0.55, 0.75, 0.65]),
    ("test", 3, 5, [0.40, 0.45, 0.48]),
    ("test", 2, 8, [0.99]),
    ("train", 0, 6, [0.97, 0.96, 0.95, 0.94, 0.93]),
]


def _row(true: int, pred: int, q: float) -> np.ndarray:
    """A probability row with q on ``pred``, 60% of the rest on ``true`` and the remainder spread evenly."""
    row = np.full(10, (1.0 - q) * 0.4 / 8)
    row[true], row[pred] = (1.0 - q) * 0.6, q
    return row


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    images, labels = mnist_arrays(N_TRAIN + N_TEST)
    labels = labels.astype(int)
    base = tmp_path_factory.mktemp("errors")
    rows = []
    for i, (img, label) in enumerate(zip(images, labels)):
        split = "train" if i < N_TRAIN else "test"
        path = base / "images" / f"{i:05d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(img).save(path)
        rows.append({"sample_id": f"{split}-{i:05d}", "path": str(path), "label": str(label), "split": split})
    ids = np.array([r["sample_id"] for r in rows])
    split = np.array([r["split"] for r in rows])
    probs = np.full((len(rows), 10), 0.1 / 9)
    probs[np.arange(len(rows)), labels] = 0.9
    planted = {}
    for where, true, pred, qs in PLANTS:
        # The last samples of the class in the split, so the confidence order runs against the id order.
        chosen = np.flatnonzero((split == where) & (labels == true))[-len(qs):][::-1]
        for i, q in zip(chosen, qs):
            probs[i] = _row(true, pred, q)
        planted[(where, true, pred)] = dict(zip(ids[chosen].tolist(), qs))
    dataset = Dataset(make_samples(rows), source=str(base), format="manifest")
    table = pd.DataFrame(probs, columns=[str(c) for c in range(10)])
    table.insert(0, "sample_id", ids)
    csv = base / "preds.csv"
    table.to_csv(csv, index=False, float_format="%.17g")
    ctx = Context(dataset, predictions=read_predictions(csv, dataset), feature_options={"cache_dir": base / "cache"})
    support = pd.Series(labels[split == "test"]).value_counts()
    return {"ctx": ctx, "planted": planted, "support": support, "ids": ids, "split": split, "labels": labels,
            "dataset": dataset, "base": base}


def _by_confidence(ids_to_q: dict[str, float]) -> list[str]:
    return sorted(ids_to_q, key=lambda s: (-ids_to_q[s], s))


def test_confused_pairs_exact_pairs_counts_shares_and_examples(case):
    (finding,) = run_check(ConfusedPairs(), case["ctx"])
    support, planted = case["support"], case["planted"]
    # 7 and 3 both have 3 mistakes: the one with the larger share of its true class comes first.
    tie = sorted([(7, 1), (3, 5)], key=lambda tp: -3 / support[tp[0]])
    expected = [(4, 9)] + tie
    got = [(g["true"], g["predicted"], g["count"], g["support"]) for g in finding.groups]
    assert got == [(str(t), str(p), len(planted[("test", t, p)]), int(support[t])) for t, p in expected]
    for g, (t, p) in zip(finding.groups, expected):
        assert g["share"] == pytest.approx(len(planted[("test", t, p)]) / support[t], abs=1e-12)
        assert g["samples"] == _by_confidence(planted[("test", t, p)])
        assert g["confidence"] == pytest.approx(sorted(planted[("test", t, p)].values(), reverse=True), abs=1e-9)
        assert g["reverse"] == 0
    assert finding.severity.value == "info" and finding.evidence["split"] == "test"
    assert finding.evidence["misclassified"] == 13 and finding.evidence["pairs_with_errors"] == 4
    listed = {s for t, p in expected for s in planted[("test", t, p)]}
    assert set(finding.samples) == listed
    # Scores: 1 - share of the pair for its members, 1 for right ones; flags = members of listed pairs.
    issues = issues_frame(case["ctx"])
    assert set(issues.index[issues["is_confused_pairs"]]) == listed
    lone = next(iter(planted[("test", 2, 8)]))
    assert issues.at[lone, "confused_pairs_score"] == pytest.approx(1 - 1 / support[2], abs=1e-12)
    member = next(iter(planted[("test", 4, 9)]))
    assert issues.at[member, "confused_pairs_score"] == pytest.approx(1 - 6 / support[4], abs=1e-12)
    train = case["ids"][case["split"] == "train"]
    assert issues.loc[train, "confused_pairs_score"].isna().all()
    right = [s for s in case["ids"][case["split"] == "test"]
             if not any(s in planted[k] for k in planted)]
    assert (issues.loc[right, "confused_pairs_score"] == 1.0).all()
    assert finding.message.startswith("test: 13 of 300 samples are misclassified; 3 pair(s) of true -> predicted "
                                      "class with 2+ samples, most confused: 4 -> 9 (6, ")


def test_confused_pairs_settings(case):
    (one,) = run_check(ConfusedPairs(min_count=1, top=2, examples=2), case["ctx"])
    assert [(g["true"], g["predicted"]) for g in one.groups][0] == ("4", "9")
    assert len(one.groups) == 2 and all(len(g["samples"]) == 2 for g in one.groups)
    (every,) = run_check(ConfusedPairs(min_count=1), case["ctx"])
    assert ("2", "8", 1) in {(g["true"], g["predicted"], g["count"]) for g in every.groups}
    assert run_check(ConfusedPairs(min_count=7), case["ctx"]) == []


def test_confident_errors_worst_first_with_given_and_predicted_labels(case):
    (finding,) = run_check(ConfidentErrors(), case["ctx"])
    planted = case["planted"]
    wrong = {}
    for (where, true, pred), members in planted.items():
        if where == "test":
            wrong.update({s: (q, str(true), str(pred)) for s, q in members.items() if q >= 0.5})
    order = sorted(wrong, key=lambda s: (-wrong[s][0], s))
    assert finding.samples == order and len(order) == 10
    assert [(r["sample_id"], r["given_label"], r["predicted_label"]) for r in finding.evidence["worst"]] == [
        (s, wrong[s][1], wrong[s][2]) for s in order]
    first = finding.evidence["worst"][0]
    assert first["probability"] == pytest.approx(0.99) and first["given_probability"] == pytest.approx(0.006)
    assert finding.evidence["flagged"] == 10 and finding.evidence["misclassified"] == 13
    issues = issues_frame(case["ctx"])
    assert set(issues.index[issues["is_confident_errors"]]) == set(order)
    assert issues.at[order[0], "confident_errors_score"] == pytest.approx(0.01, abs=1e-9)
    # The 3 -> 5 mistakes at 0.40-0.48 are wrong but not confident: scored, not flagged.
    for s, q in planted[("test", 3, 5)].items():
        assert issues.at[s, "confident_errors_score"] == pytest.approx(1 - q, abs=1e-9)
    assert finding.message == (f"test: 10 of 13 wrong predictions have probability >= 0.5 for the wrong class; "
                               f"the surest: {order[0]} given '2', predicted '8' (0.990)")
    (strict,) = run_check(ConfidentErrors(min_confidence=0.84, top=3), case["ctx"])
    assert strict.samples == order[:4] and len(strict.evidence["worst"]) == 3


def test_nothing_without_predictions_or_without_mistakes(case):
    bare = Context(case["dataset"])
    assert run_check(ConfusedPairs(), bare) == [] and run_check(ConfidentErrors(), bare) == []
    labels = case["labels"]
    perfect = np.full((len(labels), 10), 0.05 / 9)
    perfect[np.arange(len(labels)), labels] = 0.95
    table = pd.DataFrame(perfect, columns=[str(c) for c in range(10)])
    table.insert(0, "sample_id", case["ids"])
    csv = case["base"] / "perfect.csv"
    table.to_csv(csv, index=False)
    ctx = Context(case["dataset"], predictions=read_predictions(csv, case["dataset"]))
    assert run_check(ConfusedPairs(), ctx) == [] and run_check(ConfidentErrors(), ctx) == []
    assert issues_frame(ctx)["is_confident_errors"].sum() == 0


def test_calibration_reports_each_class_one_vs_rest_with_enough_samples(case):
    """Per-class calibration (evaluation.calibration): 15 test digits that are not 9s get 0.6 on class 9,
    so class 9's one-vs-rest reliability has a bin of 15 at confidence 0.6 with no 9 in it."""
    from visionaudit.analyses.evaluation_data import metrics_tables
    from visionaudit.checks.evaluation import Calibration

    labels, split, ids = case["labels"], case["split"], case["ids"]
    test = split == "test"
    probs = np.full((len(labels), 10), 0.1 / 9)
    probs[np.arange(len(labels)), labels] = 0.9
    decoys = np.flatnonzero(test & (labels != 9))[:15]
    probs[decoys] = 0.4 / 9
    probs[decoys, 9] = 0.6
    table = pd.DataFrame(probs, columns=[str(c) for c in range(10)])
    table.insert(0, "sample_id", ids)
    csv = case["base"] / "decoys.csv"
    table.to_csv(csv, index=False, float_format="%.17g")
    ctx = Context(case["dataset"], predictions=read_predictions(csv, case["dataset"]))
    (finding,) = run_check(Calibration(max_ece=0.0, min_class_samples=30), ctx)
    y, P = labels[test], probs[test]
    support = np.bincount(y, minlength=10)
    assert [r["class"] for r in finding.evidence["per_class"]] == [str(c) for c in range(10) if support[c] >= 30]
    assert finding.evidence["per_class_skipped"] == [str(c) for c in range(10) if support[c] < 30]
    assert 9 in np.flatnonzero(support >= 30)

    def ovr_ece(k: int) -> float:
        p, pos = P[:, k], (y == k).astype(float)
        b = np.clip(np.ceil(p * 15).astype(int) - 1, 0, 14)
        return sum(abs(pos[b == i].sum() - p[b == i].sum()) for i in range(15)) / len(y)

    for row in finding.evidence["per_class"]:
        k = int(row["class"])
        assert row["support"] == support[k] and row["ece"] == pytest.approx(ovr_ece(k), abs=1e-12)
        assert sum(r["count"] for r in row["reliability"]) == len(y)
    nine = next(r for r in finding.evidence["per_class"] if r["class"] == "9")
    at_06 = next(r for r in nine["reliability"] if r["lower"] < 0.6 <= r["upper"])
    assert (at_06["count"], at_06["accuracy"], at_06["confidence"]) == (15, 0.0, pytest.approx(0.6))
    assert finding.message.endswith(f"; least calibrated class 9 (one-vs-rest ECE {ovr_ece(9):.3f})")
    stats = metrics_tables(ctx)["calibration_per_class"]
    mine = stats[(stats["split"] == "test") & (stats["class"] == "9")]
    assert mine["count"].tolist() == [r["count"] for r in nine["reliability"]]
    assert set(stats["class"]) == {str(c) for c in range(10)} and set(stats["split"]) == {"train", "test"}
