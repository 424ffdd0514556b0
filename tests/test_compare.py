"""Comparing two models on the same real MNIST test digits: significant, not significant, mismatched.

600 test digits (MNIST test images 0-599) are written as PNGs into a manifest. Model A is a logistic
regression on 20 PCA components fitted on MNIST test images 2000-3999 (not in the dataset). Model B
(planted) is A with 30 known digits that A gets wrong put right and 8 known digits that A gets right
put wrong, so McNemar's discordant counts are exactly (8, 30). Model C is the same pipeline with 25
components instead of 20: a small variant that is not significantly different from A on these 600
digits (measured: 7 digits only A gets right, 12 only C, p = 0.36). Fitted on the other digits
4000-5999 instead, the same pipeline is significantly worse (31 vs 12, p = 0.005): training data
matters more than the variant.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from conftest import issues_frame, mnist_arrays, run_check
from PIL import Image
from scipy import stats
from typer.testing import CliRunner

import visionaudit
from visionaudit import ArgumentError, SourceError, evaluate
from visionaudit.analyses.evaluation_data import f1_macro_statistic
from visionaudit.checks.compare import ModelComparison, mcnemar_samples_needed
from visionaudit.cli import app
from visionaudit.context import Context
from visionaudit.dataset import Dataset, make_samples
from visionaudit.metrics import paired_bootstrap
from visionaudit.predictors import Predictions, read_predictions
from visionaudit.suites import SUITES

pytest.importorskip("sklearn")

N = 600
CLASSES = [str(c) for c in range(10)]
IMPROVED, REGRESSED = 30, 8


def _fit(images: np.ndarray, labels: np.ndarray, test: np.ndarray, components: int = 20) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(PCA(components, whiten=True, random_state=0), LogisticRegression(C=0.1, max_iter=500))
    return model.fit(images.reshape(len(images), -1) / 255.0, labels).predict_proba(test.reshape(len(test), -1) / 255.0)


def _write(path, ids, probs, columns=CLASSES):
    table = pd.DataFrame(probs, columns=CLASSES)[columns]
    table.insert(0, "sample_id", ids)
    table.to_csv(path, index=False, float_format="%.17g")
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    images, labels = mnist_arrays(4000)
    labels = labels.astype(int)
    base = tmp_path_factory.mktemp("compare")
    rows = []
    for i in range(N):
        path = base / "images" / f"{i:04d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(images[i]).save(path)
        rows.append({"sample_id": f"t{i:04d}", "path": str(path), "label": str(labels[i]), "split": "test"})
    manifest = base / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    y = labels[:N]
    p_a = _fit(images[2000:4000], labels[2000:4000], images[:N])
    p_c = _fit(images[2000:4000], labels[2000:4000], images[:N], components=25)
    rng = np.random.default_rng(0)
    right = p_a.argmax(axis=1) == y
    improved = np.sort(rng.choice(np.flatnonzero(~right), IMPROVED, replace=False))
    regressed = np.sort(rng.choice(np.flatnonzero(right), REGRESSED, replace=False))
    p_b = p_a.copy()
    # B puts the label on top where A was wrong, and A's runner-up on top where A was right.
    for i in improved:
        p_b[i] = np.eye(10)[y[i]] * 0.9 + 0.01
    for i in regressed:
        runner_up = np.argsort(p_a[i])[-2]
        p_b[i] = np.eye(10)[runner_up] * 0.9 + 0.01
    ids = np.array([r["sample_id"] for r in rows])
    return {"base": base, "manifest": manifest, "ids": ids, "y": y, "p_a": p_a, "p_b": p_b, "p_c": p_c,
            "improved": set(ids[improved]), "regressed": set(ids[regressed]),
            "a_csv": _write(base / "a.csv", ids, p_a),
            # B's columns in another order: read_predictions keys them by name.
            "b_csv": _write(base / "b.csv", ids, p_b, columns=CLASSES[::-1]),
            "c_csv": _write(base / "c.csv", ids, p_c)}


def _dataset(digits) -> Dataset:
    return Dataset(make_samples(pd.read_csv(digits["manifest"], dtype=str).to_dict("records")),
                   source=str(digits["manifest"]), format="manifest")


def _compare(digits, a: str, b: str, **params):
    dataset = _dataset(digits)
    ctx = Context(dataset, predictions=read_predictions(digits[a], dataset),
                  compare=read_predictions(digits[b], dataset))
    findings = run_check(ModelComparison(**params), ctx)
    assert "features" not in ctx.data.__dict__, "comparing predictions must not decode images"
    return findings, ctx


def _accuracy(c):
    return c.mean(axis=-1)


def test_planted_better_model_is_significantly_better(digits):
    (finding,) = _compare(digits, "a_csv", "b_csv")[0]
    y, p_a, p_b = digits["y"], digits["p_a"], digits["p_b"]
    ca, cb = p_a.argmax(axis=1) == y, p_b.argmax(axis=1) == y
    ev = finding.evidence
    assert ev["mcnemar"]["only_a_right"] == REGRESSED and ev["mcnemar"]["only_b_right"] == IMPROVED
    p = stats.binomtest(REGRESSED, REGRESSED + IMPROVED, 0.5).pvalue
    assert ev["mcnemar"]["p_value"] == pytest.approx(p, rel=1e-12) and ev["mcnemar"]["exact"] is True
    assert ev["verdict"] == "better" and ev["significant"] is True and finding.severity.value == "info"
    acc = ev["metrics"]["accuracy"]
    assert (acc["a"], acc["b"]) == (ca.mean(), cb.mean())
    assert acc["difference"] == pytest.approx((IMPROVED - REGRESSED) / N, abs=1e-12)
    boot = paired_bootstrap(_accuracy, [cb], [ca], vectorized=True, seed=0)
    assert (acc["low"], acc["high"]) == (boot.low, boot.high) and acc["low"] > 0
    from sklearn.metrics import f1_score, log_loss
    f1 = ev["metrics"]["f1_macro"]
    assert f1["difference"] == pytest.approx(f1_score(y, p_b.argmax(1), average="macro")
                                             - f1_score(y, p_a.argmax(1), average="macro"), abs=1e-12)
    f1_boot = paired_bootstrap(f1_macro_statistic(10), [y, p_b.argmax(1), cb], [y, p_a.argmax(1), ca], vectorized=True, seed=0)
    assert (f1["low"], f1["high"]) == (f1_boot.low, f1_boot.high)
    assert ev["metrics"]["log_loss"]["difference"] == pytest.approx(log_loss(y, p_b) - log_loss(y, p_a), abs=1e-9)
    assert set(ev["improved"]) == digits["improved"] and set(ev["regressed"]) == digits["regressed"]
    assert set(finding.samples) == digits["regressed"] and ev["n"] == ev["evaluated_a"] == N
    assert finding.message.startswith(
        f"B (b.csv) is significantly better than A (a.csv) on the test split ({N} samples): accuracy {cb.mean():.3f} "
        f"vs {ca.mean():.3f}, difference {acc['difference']:+.3f} (95% CI [{boot.low:+.3f}, {boot.high:+.3f}]), "
        f"McNemar p={p:.3g} ({IMPROVED} samples only B gets right, {REGRESSED} only A)")


def test_swapped_models_are_a_significant_regression(digits):
    (finding,), ctx = _compare(digits, "b_csv", "a_csv")
    assert finding.evidence["verdict"] == "worse" and finding.severity.value == "warning"
    assert finding.message.startswith("B (a.csv) is significantly worse than A (b.csv)")
    assert finding.evidence["metrics"]["accuracy"]["difference"] == pytest.approx(-(IMPROVED - REGRESSED) / N, abs=1e-12)
    # The samples B (here a.csv) gets wrong that A gets right are flagged, scored by B's probability of the label.
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_comparison_regression"]]) == digits["improved"]
    p_true = digits["p_a"][np.arange(N), digits["y"]]
    np.testing.assert_allclose(issues.loc[digits["ids"], "comparison_regression_score"], p_true, atol=1e-12)


def test_two_training_runs_are_not_significantly_different(digits):
    (finding,) = _compare(digits, "a_csv", "c_csv")[0]
    y = digits["y"]
    ca, cc = digits["p_a"].argmax(1) == y, digits["p_c"].argmax(1) == y
    b, c = int((ca & ~cc).sum()), int((~ca & cc).sum())
    assert b != c
    p = stats.binomtest(min(b, c), b + c, 0.5).pvalue
    ev = finding.evidence
    assert (ev["mcnemar"]["only_a_right"], ev["mcnemar"]["only_b_right"]) == (b, c)
    assert ev["mcnemar"]["p_value"] == pytest.approx(p, rel=1e-12) and p > 0.05
    assert ev["verdict"] == "not significant" and not ev["significant"] and finding.severity.value == "info"
    # Connor (1987) for McNemar's test at 80% power, computed here from the discordant shares.
    psi, d = (b + c) / N, (c - b) / N
    needed = math.ceil((1.959963984540054 * math.sqrt(psi) + 0.8416212335729143 * math.sqrt(psi - d * d)) ** 2 / d ** 2)
    assert ev["samples_needed"] == needed == mcnemar_samples_needed(b, c, N) and needed > N
    acc = ev["metrics"]["accuracy"]
    assert acc["low"] < 0 < acc["high"]
    assert finding.message.startswith("The difference between B (c.csv) and A (a.csv) on the test split (600 samples) "
                                      "is not significant: ")
    assert f"McNemar p={p:.3g}" in finding.message
    assert f"to detect a difference this size with 80% power, a test set needs about {needed} samples" in finding.message


def test_identical_discordance_needs_no_sample_size(digits):
    dataset = _dataset(digits)
    y, p_a = digits["y"], digits["p_a"]
    right = np.flatnonzero(p_a.argmax(1) == y)
    wrong = np.flatnonzero(p_a.argmax(1) != y)
    p_b = p_a.copy()
    p_b[wrong[:5]] = np.eye(10)[y[wrong[:5]]]                       # 5 put right
    p_b[right[:5]] = np.roll(np.eye(10)[y[right[:5]]], 1, axis=1)   # 5 put wrong
    ctx = Context(dataset, predictions=read_predictions(digits["a_csv"], dataset),
                  compare=Predictions(CLASSES, p_b, digits["ids"].tolist(), "same.csv"))
    (finding,) = run_check(ModelComparison(), ctx)
    assert finding.evidence["mcnemar"]["p_value"] == 1.0 and finding.evidence["samples_needed"] is None
    assert "they get equally many samples right that the other gets wrong" in finding.message


def test_only_samples_predicted_by_both_are_compared(digits):
    dataset = _dataset(digits)
    p_b = digits["p_b"].copy()
    p_b[:100] = np.nan                                               # B did not predict the first 100 digits
    ctx = Context(dataset, predictions=read_predictions(digits["a_csv"], dataset),
                  compare=Predictions(CLASSES, p_b, digits["ids"].tolist(), "part.csv"))
    (finding,) = run_check(ModelComparison(), ctx)
    y, keep = digits["y"][100:], slice(100, None)
    ca, cb = digits["p_a"][keep].argmax(1) == y, digits["p_b"][keep].argmax(1) == y
    assert finding.evidence["n"] == N - 100 and finding.evidence["evaluated_a"] == N
    assert finding.evidence["mcnemar"]["only_a_right"] == int((ca & ~cb).sum())
    assert finding.evidence["metrics"]["accuracy"]["difference"] == pytest.approx(cb.mean() - ca.mean(), abs=1e-12)


def test_mismatched_or_missing_inputs_are_clear_errors(digits, tmp_path):
    dataset = _dataset(digits)
    preds = read_predictions(digits["a_csv"], dataset)
    other = Predictions(CLASSES[:9] + ["ten"], digits["p_b"], digits["ids"].tolist(), "other.csv")
    with pytest.raises(ValueError, match=r"different classes: only in A \(.*a.csv\): \['9'\], only in B \(other.csv\): \['ten'\]"):
        run_check(ModelComparison(), Context(dataset, predictions=preds, compare=other))
    with pytest.raises(ValueError, match="without the predictions of the model they are compared with"):
        run_check(ModelComparison(), Context(dataset, compare=preds))
    assert run_check(ModelComparison(), Context(dataset, predictions=preds)) == []
    # A B file lacking a class column fails before any image is decoded, naming the file.
    short = _write(tmp_path / "short.csv", digits["ids"], digits["p_b"], columns=CLASSES[:9])
    with pytest.raises(SourceError, match=r"short.csv.*no column for label\(s\) '9'"):
        evaluate(digits["manifest"], digits["a_csv"], compare=short, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ArgumentError, match="compare"):
        evaluate(digits["manifest"], compare=digits["b_csv"], cache_dir=tmp_path / "cache")


def test_cli_compare_writes_the_finding(digits, tmp_path):
    config = tmp_path / "only.json"
    config.write_text(json.dumps({"checks": {cid: {"enabled": False} for cid in SUITES["evaluate"]
                                             if cid not in ("evaluation.metrics", "evaluation.model_comparison")}}))
    out = tmp_path / "report"
    args = ["evaluate", str(digits["manifest"]), "--compare", str(digits["a_csv"]), str(digits["b_csv"]),
            "--config", str(config), "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--quiet"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    found = json.loads((out / "findings.json").read_text())
    schema = json.loads((Path(visionaudit.__file__).parent / "schema" / "findings.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(found)) == []
    (comparison,) = [f for f in found["findings"] if f["issue"] == "model_comparison"]
    assert comparison["evidence"]["verdict"] == "better"
    assert comparison["evidence"]["mcnemar"]["only_b_right"] == IMPROVED
    metrics = next(f for f in found["findings"] if f["issue"] == "metrics")
    assert metrics["evidence"]["splits"]["test"]["metrics"]["accuracy"]["value"] == (
        digits["p_a"].argmax(1) == digits["y"]).mean()                          # the other checks judge A
    assert found["run"]["compare"]["path"].endswith("b.csv")
    both = CliRunner().invoke(app, args + ["--predictions", str(digits["a_csv"])])
    assert both.exit_code == 2 and "not both" in both.output
