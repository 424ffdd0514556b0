"""Label issues on real MNIST digits with a known, seeded 5% of labels flipped by the test.

Out-of-sample probabilities come from a small model (PCA + logistic regression, 5-fold
cross-validation) trained on the noisy labels, written to a predictions CSV keyed by path, read back
with ``read_predictions`` and judged by ``labels.label_issues``; the ranking must put most flipped
digits first, and the flagged set must equal cleanlab's own on the same probabilities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import mnist_arrays
from visionaudit.checks import REGISTRY
from visionaudit.checks.labels import LabelIssues, corrected_candidates
from visionaudit.context import Context
from visionaudit.dataset import read_folder
from visionaudit.dataset.predictions import read_predictions
from visionaudit.suites import SUITES, build_checks

cleanlab_filter = pytest.importorskip("cleanlab.filter")
cleanlab_rank = pytest.importorskip("cleanlab.rank")
pytest.importorskip("sklearn")

N, FLIP_FRACTION, SEED = 3000, 0.05, 7
#: Measured on this data (seed 7): precision = recall at k = 150 flipped is 0.78 (117 of the 150 lowest
#: scores are flipped digits); cleanlab flags 243 samples, 129 of them flipped (precision 0.53, recall 0.86:
#: a weak model on 3,000 digits also doubts genuinely ambiguous ones).
MIN_AT_K = 0.75
MIN_FLAGGED_PRECISION, MIN_FLAGGED_RECALL = 0.50, 0.80


@pytest.fixture(scope="module")
def noisy_mnist(tmp_path_factory):
    """Digits as PNG files in class folders named by their noisy label, plus CV probabilities."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    images, truth = mnist_arrays(N)
    rng = np.random.default_rng(SEED)
    flipped = rng.choice(N, int(N * FLIP_FRACTION), replace=False)
    noisy = truth.astype(int)
    noisy[flipped] = (noisy[flipped] + rng.integers(1, 10, len(flipped))) % 10
    base = tmp_path_factory.mktemp("noisy_mnist")
    root = base / "digits"
    ids = []
    for i, (img, label) in enumerate(zip(images, noisy)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
        ids.append(f"{label}/{i:05d}.png")
    model = make_pipeline(PCA(50, random_state=0), LogisticRegression(C=0.1, max_iter=300))
    probs = cross_val_predict(model, images.reshape(N, -1) / 255.0, noisy,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    # Keyed by path relative to the CSV's folder, rows shuffled: alignment is by key, not by order.
    preds_dir = base / "preds"
    preds_dir.mkdir()
    order = rng.permutation(N)
    table = pd.DataFrame(probs[order], columns=[str(c) for c in range(10)])
    table.insert(0, "path", [f"../digits/{ids[i]}" for i in order])
    csv = preds_dir / "preds.csv"
    table.to_csv(csv, index=False)
    return {"root": root, "csv": csv, "files": _snapshot(base), "ids": np.array(ids), "noisy": noisy, "truth": truth,
            "flipped": {ids[i] for i in flipped}, "probs": probs}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def judged(noisy_mnist):
    dataset = read_folder(noisy_mnist["root"])
    # read_folder orders samples by path; the test's arrays are in digit order.
    order = np.argsort(noisy_mnist["ids"])
    assert dataset.samples["sample_id"].tolist() == noisy_mnist["ids"][order].tolist()
    ctx = Context(dataset, predictions=read_predictions(noisy_mnist["csv"], dataset))
    findings = LabelIssues().run(ctx)
    return ctx, findings, order


def test_ranking_puts_flipped_labels_first(noisy_mnist, judged):
    ctx, findings, _ = judged
    scores = ctx.issues_frame()["label_issues_score"]
    assert scores.notna().all() and scores.between(0, 1).all()
    k = len(noisy_mnist["flipped"])
    top = set(scores.sort_values(kind="stable").index[:k])
    hits = len(top & noisy_mnist["flipped"])
    precision_at_k, recall_at_k = hits / k, hits / len(noisy_mnist["flipped"])
    assert hits == 117
    assert precision_at_k >= MIN_AT_K and recall_at_k >= MIN_AT_K
    (finding,) = findings
    flagged = set(finding.samples)
    caught = len(flagged & noisy_mnist["flipped"])
    assert (len(flagged), caught) == (243, 129)
    assert caught / len(flagged) >= MIN_FLAGGED_PRECISION
    assert caught / len(noisy_mnist["flipped"]) >= MIN_FLAGGED_RECALL


def test_agrees_with_cleanlab_on_the_same_probabilities(noisy_mnist, judged):
    ctx, findings, order = judged
    probs, labels = noisy_mnist["probs"][order], noisy_mnist["noisy"][order]
    ids = noisy_mnist["ids"][order]
    theirs = cleanlab_filter.find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    (finding,) = findings
    assert set(finding.samples) == set(ids[theirs])
    assert finding.samples == [ids[i] for i in theirs]
    issues = ctx.issues_frame()
    assert set(issues.index[issues["is_label_issues"]]) == set(ids[theirs])
    quality = cleanlab_rank.get_label_quality_scores(labels, probs)
    np.testing.assert_allclose(issues.loc[ids, "label_issues_score"].to_numpy(), quality, rtol=0, atol=1e-12)


def test_finding_evidence_and_candidates(noisy_mnist, judged):
    ctx, findings, order = judged
    (finding,) = findings
    assert finding.check == "labels.label_issues" and finding.severity.value == "warning"
    ev = finding.evidence
    assert (ev["judged"], ev["flagged"], ev["unlabelled"], ev["without_predictions"]) == (3000, 243, 0, 0)
    top = ev["pairs"][:3]
    assert finding.message == ("243 of 3000 labelled samples with predictions look mislabelled (8.1%); most common "
                               "given -> suggested label: " + ", ".join(
                                   f"{p['given_label']} -> {p['suggested_label']} ({p['count']})" for p in top))
    assert [p["count"] for p in top] == [9, 9, 7]
    position = {sid: i for i, sid in enumerate(noisy_mnist["ids"])}
    worst = ev["candidates"][0]
    i = position[worst["sample_id"]]
    assert worst["given_label"] == str(noisy_mnist["noisy"][i])
    assert worst["suggested_label"] == str(int(noisy_mnist["probs"][i].argmax()))
    assert worst["quality"] == pytest.approx(noisy_mnist["probs"][i][noisy_mnist["noisy"][i]], abs=1e-12)
    assert [c["quality"] for c in ev["candidates"]] == sorted(c["quality"] for c in ev["candidates"])
    assert sum(p["count"] for p in ev["pairs"]) == 243
    table = corrected_candidates(finding)
    assert table.columns.tolist() == ["sample_id", "path", "given_label", "suggested_label", "score"]
    assert table["sample_id"].tolist() == finding.samples
    assert table["path"].tolist() == [str(noisy_mnist["root"] / s) for s in finding.samples]
    # Among flagged flipped digits, the suggestion is mostly the true digit.
    flipped_rows = table[table["sample_id"].isin(noisy_mnist["flipped"])]
    truth = [str(noisy_mnist["truth"][position[s]]) for s in flipped_rows["sample_id"]]
    assert (flipped_rows["suggested_label"].to_numpy() == np.array(truth)).mean() >= 0.9


def test_samples_without_predictions_or_labels_are_not_judged(noisy_mnist, tmp_path):
    dataset = read_folder(noisy_mnist["root"])
    samples = dataset.samples.copy()
    samples.loc[:99, "label"] = None  # first 100 samples unlabelled
    dataset.samples = samples
    table = pd.read_csv(noisy_mnist["csv"], dtype={"path": str})
    keep = ~table["path"].str.endswith(("00000.png", "00001.png", "00002.png"))
    # Absolute paths this time, in a CSV that lives elsewhere.
    table["path"] = [str((noisy_mnist["csv"].parent / p).resolve()) for p in table["path"]]
    csv = tmp_path / "partial.csv"
    table[keep].to_csv(csv, index=False)
    preds = read_predictions(csv, dataset)
    assert preds.missing == 3 and preds.notes == ["3 of 3000 samples have no prediction in partial.csv"]
    ctx = Context(dataset, predictions=preds)
    (finding,) = LabelIssues().run(ctx)
    ids = samples["sample_id"].to_numpy()
    unjudged = set(ids[:100]) | {s for s in ids if s.endswith(("00000.png", "00001.png", "00002.png"))}
    issues = ctx.issues_frame()
    assert set(issues.index[issues["label_issues_score"].isna()]) == unjudged
    assert not set(finding.samples) & unjudged
    assert finding.evidence["judged"] == 3000 - len(unjudged)
    assert finding.evidence["unlabelled"] == 100 and finding.evidence["without_predictions"] == 3


def test_no_predictions_no_finding_and_only_the_evaluate_suite_runs_it(noisy_mnist):
    ctx = Context(read_folder(noisy_mnist["root"]))
    assert LabelIssues().run(ctx) == [] and ctx.issues_frame().empty
    assert REGISTRY["labels.label_issues"] is LabelIssues
    assert "labels.label_issues" not in SUITES["scan"]
    assert LabelIssues in [type(c) for c in build_checks("evaluate")]


def test_user_files_untouched(noisy_mnist, judged):
    _, findings, _ = judged
    corrected_candidates(findings[0])
    assert _snapshot(noisy_mnist["root"].parent) == noisy_mnist["files"]
