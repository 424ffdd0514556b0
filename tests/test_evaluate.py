"""The evaluate job on real MNIST digits with predictions made by the test itself.

2,000 digits are written as PNG files into ``train/<digit>/`` (1,500) and ``test/<digit>/`` (500).
Out-of-sample probabilities come from scikit-learn (PCA + logistic regression): 5-fold
cross_val_predict on train, fit-on-train for test; a 1-NN's in-sample train predictions stand in for
a model that memorised its training set. Every metric is checked against scikit-learn on the same
probabilities, and every CI against the one bootstrap called directly.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from conftest import mnist_arrays
from PIL import Image
from typer.testing import CliRunner

import visionaudit
from visionaudit import evaluate
from visionaudit.analyses.evaluation_data import (
    _roc_auc_macro,
    confidence_bins,
    ece_statistic,
)
from visionaudit.cli import app
from visionaudit.metrics import bootstrap_ci, samples_needed
from visionaudit.suites import SUITES

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("cleanlab")

N_TRAIN, N_TEST, N_SMALL = 1500, 500, 100
CLASSES = [str(c) for c in range(10)]


def _write_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray, offset: int) -> list[str]:
    ids = []
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = root / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{offset + i:05d}.png"
        Image.fromarray(img).save(folder / name)
        ids.append(f"{split}/{label}/{name}")
    return ids


def _only(*checks: str, **settings: dict) -> dict:
    """A config running only ``checks`` of the evaluate suite (each repeated run stays quick)."""
    return {"checks": {**{cid: {"enabled": False} for cid in SUITES["evaluate"] if cid not in checks}, **settings}}


def _write_predictions(path: Path, ids: list[str], probs: np.ndarray) -> Path:
    table = pd.DataFrame(probs, columns=[f"prob_{c}" for c in CLASSES])
    table.insert(0, "sample_id", ids)
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    images, labels = mnist_arrays(N_TRAIN + N_TEST)
    labels = labels.astype(int)
    base = tmp_path_factory.mktemp("evaluate")
    root = base / "digits"
    train_ids = _write_split(root, "train", images[:N_TRAIN], labels[:N_TRAIN], 0)
    test_ids = _write_split(root, "test", images[N_TRAIN:], labels[N_TRAIN:], N_TRAIN)
    X = images.reshape(len(images), -1) / 255.0
    Xtr, ytr, Xte, yte = X[:N_TRAIN], labels[:N_TRAIN], X[N_TRAIN:], labels[N_TRAIN:]
    # Whitened components make the logistic regression converge in a few dozen iterations.
    model = make_pipeline(PCA(30, whiten=True, svd_solver="covariance_eigh"), LogisticRegression(C=0.1, max_iter=500))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    oof = cross_val_predict(model, Xtr, ytr, cv=folds, method="predict_proba")
    test_probs = model.fit(Xtr, ytr).predict_proba(Xte)
    knn = KNeighborsClassifier(1).fit(Xtr, ytr)
    preds = base / "preds"
    preds.mkdir()
    # A second dataset: the same train files (hard links, no copy) and only the first 100 test digits.
    small = base / "small"
    for sid in train_ids + test_ids[:N_SMALL]:
        (small / sid).parent.mkdir(parents=True, exist_ok=True)
        os.link(root / sid, small / sid)
    return {
        "root": root, "small": small, "cache": base / "cache",
        "train_ids": train_ids, "test_ids": test_ids, "ytr": ytr, "yte": yte, "oof": oof, "test_probs": test_probs,
        "csv": _write_predictions(preds / "oof.csv", train_ids + test_ids, np.vstack([oof, test_probs])),
        "knn_csv": _write_predictions(preds / "knn.csv", train_ids + test_ids,
                                      np.vstack([knn.predict_proba(Xtr), knn.predict_proba(Xte)])),
        "small_csv": _write_predictions(preds / "small.csv", train_ids + test_ids[:N_SMALL],
                                        np.vstack([oof, test_probs[:N_SMALL]])),
    }


@pytest.fixture(scope="module")
def result(digits):
    return evaluate(digits["root"], predictions=digits["csv"], cache_dir=digits["cache"])


def test_evaluate_suite_holds_the_evaluation_checks():
    assert {"evaluation.metrics", "evaluation.small_test_set", "evaluation.calibration",
            "evaluation.overfitting", "labels.label_issues"} <= set(SUITES["evaluate"])
    assert not any(cid.startswith("evaluation.") for cid in SUITES["scan"])


def test_metrics_equal_sklearn_and_cis_come_from_the_one_bootstrap(digits, result):
    from sklearn import metrics as skm

    finding = result.finding("metrics")
    assert finding.severity.value == "info" and finding.evidence["evaluation_split"] == "test"
    for split, y, probs in (("test", digits["yte"], digits["test_probs"]), ("train", digits["ytr"], digits["oof"])):
        got = finding.evidence["splits"][split]
        pred = probs.argmax(axis=1)
        assert got["n"] == len(y)
        m = {name: row["value"] for name, row in got["metrics"].items()}
        assert m["accuracy"] == skm.accuracy_score(y, pred)
        assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
        assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
        assert m["roc_auc_macro"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"), abs=1e-12)
        assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs), abs=1e-12)
        assert m["top_5_accuracy"] == skm.top_k_accuracy_score(y, probs, k=5)
        per_class = pd.DataFrame(got["per_class"])
        assert per_class["class"].tolist() == CLASSES
        np.testing.assert_allclose(per_class["precision"], skm.precision_score(y, pred, average=None), atol=1e-12)
        np.testing.assert_allclose(per_class["recall"], skm.recall_score(y, pred, average=None), atol=1e-12)
        np.testing.assert_allclose(per_class["f1"], skm.f1_score(y, pred, average=None), atol=1e-12)
        assert got["confusion"] == skm.confusion_matrix(y, pred).tolist()
        for name, row in got["metrics"].items():
            if name in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc_macro", "log_loss", "top_5_accuracy"):
                assert row["low"] <= row["value"] <= row["high"], (split, name, row)
        # Seeded: the accuracy CI is exactly the one bootstrap's on the correctness vector (in dataset order,
        # which read_folder sorts by path).
        order = np.argsort(digits[f"{split}_ids"])
        ci = bootstrap_ci(lambda c: c.mean(axis=-1), (pred == y)[order], vectorized=True, seed=0)
        assert (got["metrics"]["accuracy"]["low"], got["metrics"]["accuracy"]["high"]) == (ci.low, ci.high)
    acc = skm.accuracy_score(digits["yte"], digits["test_probs"].argmax(axis=1))
    test = finding.evidence["splits"]["test"]["metrics"]["accuracy"]
    assert finding.message.startswith(
        f"test (500 samples, 95% CIs): accuracy {acc:.3f} (CI {test['low']:.3f}-{test['high']:.3f}), balanced accuracy")
    table = result.stats["metrics"].set_index(["split", "metric"])
    assert table.loc[("test", "accuracy"), "value"] == acc and table.loc[("test", "accuracy"), "n"] == N_TEST
    assert result.stats["confusion"]["test"].to_numpy().sum() == N_TEST
    wrong = {sid for sid, y, p in zip(digits["train_ids"] + digits["test_ids"],
                                      np.r_[digits["ytr"], digits["yte"]],
                                      np.vstack([digits["oof"], digits["test_probs"]]).argmax(axis=1)) if y != p}
    issues = result.issues
    assert set(issues.index[issues["is_misclassified"]]) == wrong
    assert result.run_info["predictions"]["path"] == str(digits["csv"])
    assert result.run_info["job"] == "evaluate"


def test_small_test_set_warning_follows_the_ci_width(digits, result):
    acc = float((digits["test_probs"].argmax(axis=1) == digits["yte"]).mean())
    # Default +-0.02 needs several hundred more test digits than 500 at this accuracy.
    default = result.finding("small_test_set")
    assert default is not None and default.severity.value == "warning"
    assert default.evidence["n"] == N_TEST and default.evidence["needed"] == samples_needed(0.02, acc) > N_TEST
    loose = _only("evaluation.small_test_set", **{"evaluation.small_test_set": {"max_ci_halfwidth": 0.05}})
    wide = evaluate(digits["root"], predictions=digits["csv"], config=loose, cache_dir=digits["cache"])
    assert samples_needed(0.05, acc) <= N_TEST and wide.finding("small_test_set") is None
    small = evaluate(digits["small"], predictions=digits["small_csv"], config=loose, cache_dir=digits["cache"])
    acc_small = float((digits["test_probs"][:N_SMALL].argmax(axis=1) == digits["yte"][:N_SMALL]).mean())
    found = small.finding("small_test_set")
    assert found.evidence["n"] == N_SMALL and found.evidence["needed"] == samples_needed(0.05, acc_small) > N_SMALL


def test_small_test_set_at_perfect_accuracy_uses_the_exact_bound(digits, tmp_path):
    # 100 of 100 right: the normal approximation would call any test set big enough; the exact 95% bound
    # on the error rate is -ln(0.05)/n (rule of three), so +-0.05 needs 60 samples and +-0.02 needs 150.
    perfect = np.eye(10)[np.r_[digits["ytr"], digits["yte"][:N_SMALL]]]
    csv = _write_predictions(tmp_path / "perfect.csv", digits["train_ids"] + digits["test_ids"][:N_SMALL], perfect)
    for width, needed in ((0.05, None), (0.02, 150)):
        config = _only("evaluation.small_test_set", **{"evaluation.small_test_set": {"max_ci_halfwidth": width}})
        res = evaluate(digits["small"], predictions=csv, config=config, cache_dir=digits["cache"])
        found = res.finding("small_test_set")
        assert (found.evidence["needed"] if found else None) == needed
    assert found.evidence["ci_halfwidth"] == pytest.approx(-np.log(0.05) / N_SMALL)


def test_overfitting_flagged_for_memorised_train_predictions_only(digits, result):
    assert result.finding("overfitting") is None and result.finding("underfitting") is None
    memorised = evaluate(digits["root"], predictions=digits["knn_csv"], cache_dir=digits["cache"],
                         config=_only("evaluation.metrics", "evaluation.overfitting"))
    finding = memorised.finding("overfitting")
    assert finding is not None
    ev = finding.evidence
    acc_test = memorised.finding("metrics").evidence["splits"]["test"]["metrics"]["accuracy"]["value"]
    assert ev["train_accuracy"] == 1.0 and ev["test_accuracy"] == acc_test
    assert ev["gap"] == pytest.approx(1.0 - acc_test, abs=1e-12) and 0.05 < ev["gap_low"] < ev["gap"] < ev["gap_high"]
    assert finding.message.startswith(f"train accuracy 1.000 vs test {acc_test:.3f}: gap {ev['gap']:.3f}")


def test_underfitting_when_predictions_are_the_class_prior(digits, tmp_path):
    prior = np.bincount(digits["ytr"], minlength=10) / N_TRAIN
    csv = _write_predictions(tmp_path / "prior.csv", digits["train_ids"] + digits["test_ids"],
                             np.tile(prior, (N_TRAIN + N_TEST, 1)))
    res = evaluate(digits["root"], predictions=csv, cache_dir=digits["cache"],
                   config=_only("evaluation.overfitting"))
    finding = res.finding("underfitting")
    majority = int(prior.argmax())
    assert finding.evidence["train_accuracy"] == prior.max()
    assert finding.evidence["test_accuracy"] == float((digits["yte"] == majority).mean())
    assert res.finding("overfitting") is None


def test_cli_writes_report_findings_and_label_candidates(digits, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["evaluate", str(digits["root"]), "--predictions", str(digits["csv"]), "--out", str(out),
            "--cache-dir", str(digits["cache"]), "--quiet"]
    res = runner.invoke(app, args + ["--fail-on", "warning"])
    assert res.exit_code == 1, res.output
    assert {p.name for p in out.iterdir()} == {"report.html", "findings.json", "label_candidates.csv", "scores.parquet",
                                               "features.parquet", "thumbnails.parquet"}
    doc = json.loads((out / "findings.json").read_text())
    schema = json.loads((Path(visionaudit.__file__).parent / "schema" / "findings.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc)) == []
    by_issue = {f["issue"]: f for f in doc["findings"]}
    assert {"metrics", "small_test_set", "label_issues"} <= set(by_issue)
    assert doc["run"]["predictions"]["path"] == str(digits["csv"])
    table = pd.read_csv(out / "label_candidates.csv", dtype={"given_label": str, "suggested_label": str})
    assert table["sample_id"].tolist() == by_issue["label_issues"]["samples"]
    assert (table["given_label"] != table["suggested_label"]).all()
    html = (out / "report.html").read_text()
    assert "Model metrics with confidence intervals" in html and "Test set too small" in html
    # The metrics table: one row per metric, one column per split, value and CI from the finding.
    acc = by_issue["metrics"]["evidence"]["splits"]["test"]["metrics"]["accuracy"]
    assert "Model metrics per split" in html and "Per class on test" in html
    assert f'{acc["value"]:.3f} <span class="ci">[{acc["low"]:.3f}, {acc["high"]:.3f}]</span>' in html
    # The confusion matrix picture: K x K cells whose counts are the finding's matrix, row by row.
    confusion = by_issue["metrics"]["evidence"]["splits"]["test"]["confusion"]
    table_html = html[html.index('<table class="confusion">'):]
    table_html = table_html[:table_html.index("</table>")]
    cells = [int(c.replace(",", "")) for c in re.findall(r'<td title="[^"]*" style="[^"]*">([\d,]+)</td>', table_html)]
    assert cells == [c for row in confusion for c in row]
    assert runner.invoke(app, args + ["--fail-on", "error"]).exit_code == 0


def test_cli_bad_predictions_row_exits_2_naming_the_line(digits, tmp_path):
    lines = digits["csv"].read_text().splitlines()
    cells = lines[37].split(",")
    cells[3] = "abc"
    lines[37] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(app, ["evaluate", str(digits["root"]), "--predictions", str(bad), "--out",
                                   str(tmp_path / "out"), "--cache-dir", str(digits["cache"]), "--quiet"])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert f"{bad}, line 38, field 'prob_2': not a finite number: 'abc'" in text.replace("\n", "")
    assert not (tmp_path / "out").exists()


def test_resampled_roc_auc_equals_ranking_each_resample():
    from visionaudit.metrics.classification import roc_auc_ovr

    _, labels = mnist_arrays(300)
    rng = np.random.default_rng(3)
    raw = rng.dirichlet(np.ones(10), len(labels))
    y = labels.astype(int)
    # Scores rounded to 2 decimals: many ties, which the sort-once shortcut must count as halves; and
    # the raw floats: no ties, which take the path without tie groups.
    for probs in (np.round(raw, 2), raw):
        fast = bootstrap_ci(_roc_auc_macro(y, probs), np.arange(len(y)), vectorized=True, n_resamples=200, seed=5)
        slow = bootstrap_ci(lambda yy, pp: np.nanmean(roc_auc_ovr(yy, pp)), y, probs, n_resamples=200, seed=5)
        assert fast.estimate == pytest.approx(slow.estimate, abs=1e-12)
        assert (fast.low, fast.high, fast.standard_error) == pytest.approx(
            (slow.low, slow.high, slow.standard_error), abs=1e-12)


def _tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    sharp = probs ** (1.0 / temperature)
    return sharp / sharp.sum(axis=1, keepdims=True)


def test_calibration_flags_ece_above_threshold_and_says_which_way(digits, result, tmp_path):
    from visionaudit.metrics import calibration_table, classification_metrics

    yte, probs = digits["yte"], digits["test_probs"]
    # The regularised logistic regression is under-confident on these digits: ECE 0.095.
    finding = result.finding("miscalibrated")
    expected = classification_metrics(yte, probs).ece
    assert finding.evidence["ece"] == pytest.approx(expected, abs=1e-12) and expected > 0.05
    assert "mostly under-confident" in finding.message
    # The CI resamples the per-sample (bin, confidence, correct) rows: same draws as recomputing the table.
    order = np.argsort(digits["test_ids"])
    y, p = yte[order], probs[order]

    def ece(yy, pp):
        t = calibration_table(yy, pp)
        return float((t["count"] * t["gap"].abs()).sum() / len(yy))

    slow = bootstrap_ci(ece, y, p, n_resamples=200)
    fast = bootstrap_ci(ece_statistic(15), confidence_bins(p, 15), p.max(axis=1), p.argmax(axis=1) == y, vectorized=True,
                        n_resamples=200)
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high), abs=1e-12)
    table = pd.DataFrame(finding.evidence["reliability"])
    assert table["count"].sum() == N_TEST
    runs = {}
    for temperature in (0.6, 0.25):
        csv = _write_predictions(tmp_path / f"t{temperature}.csv", digits["train_ids"] + digits["test_ids"],
                                 np.vstack([digits["oof"], _tempered(probs, temperature)]))
        runs[temperature] = evaluate(digits["root"], predictions=csv, config=_only("evaluation.calibration"),
                                     cache_dir=digits["cache"])
    # Sharpened by 1/0.6 the ECE falls to 0.036; by 1/0.25 the model turns over-confident (0.113).
    assert runs[0.6].finding("miscalibrated") is None
    sharp = runs[0.25].finding("miscalibrated")
    assert sharp.evidence["ece"] == pytest.approx(classification_metrics(yte, _tempered(probs, 0.25)).ece, abs=1e-12)
    assert "mostly over-confident" in sharp.message


def test_predictions_only_for_unlabelled_images_say_nothing_was_evaluated(digits, tmp_path):
    # Labelled train digits and an unlabelled test folder (images directly under test/), predicted only there.
    root = tmp_path / "mixed"
    labelled = [sid for c in CLASSES for sid in [s for s in digits["train_ids"] if s.split("/")[1] == c][:5]]
    for sid in labelled:
        (root / sid).parent.mkdir(parents=True, exist_ok=True)
        os.link(digits["root"] / sid, root / sid)
    (root / "test").mkdir()
    unlabelled = [f"test/{Path(sid).name}" for sid in digits["test_ids"][:20]]
    for src, sid in zip(digits["test_ids"], unlabelled):
        os.link(digits["root"] / src, root / sid)
    csv = _write_predictions(tmp_path / "unlabelled.csv", unlabelled, digits["test_probs"][:20])
    res = evaluate(root, predictions=csv, cache_dir=digits["cache"], config=_only("evaluation.metrics"))
    (finding,) = res.findings
    assert finding.issue == "nothing_evaluated" and finding.severity.value == "warning"
    assert finding.message.startswith("20 samples have a prediction and 50 have a label, but none has both")
    assert res.stats["metrics"].empty
