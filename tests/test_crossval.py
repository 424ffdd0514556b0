"""Evaluate without a model: out-of-fold probabilities from cross-validation on image embeddings.

Real MNIST digits written as PNGs in class folders. The label-error case flips 100 of 1,500 labels
(seeded: random digits, each moved to a random other class) and runs ``visionaudit.evaluate`` with
neither predictions nor a model. The fold tests plant a group column and copies of digits and read
the fold assignment directly; the equality test recomputes the probabilities with scikit-learn.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mnist_arrays
from PIL import Image
from typer.testing import CliRunner

import visionaudit
from visionaudit.analyses.duplicate_index import duplicate_index
from visionaudit.cli import app
from visionaudit.context import Context
from visionaudit.dataset import load_dataset, read_folder
from visionaudit.errors import ArgumentError, SourceError
from visionaudit.features.embedders import embeddings
from visionaudit.predictors.crossval import (
    LOGISTIC_C,
    LOGISTIC_MAX_ITER,
    cross_validated_predictions,
    make_folds,
)

pytest.importorskip("sklearn")
pytest.importorskip("cleanlab")

N_DIGITS, N_FLIPPED = 1500, 100


def _write_digits(root: Path, images: np.ndarray, labels: np.ndarray) -> list[str]:
    ids = []
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
        ids.append(f"{label}/{i:05d}.png")
    return ids


@pytest.fixture(scope="module")
def flipped(tmp_path_factory):
    images, truth = mnist_arrays(N_DIGITS)
    rng = np.random.default_rng(0)
    flip = np.sort(rng.choice(N_DIGITS, N_FLIPPED, replace=False))
    given = truth.copy()
    given[flip] = (truth[flip] + rng.integers(1, 10, N_FLIPPED)) % 10
    base = tmp_path_factory.mktemp("crossval")
    ids = _write_digits(base / "digits", images, given)
    result = visionaudit.evaluate(base / "digits", embedder="builtin", cache_dir=base / "cache")
    return {"root": base / "digits", "cache": base / "cache", "ids": np.array(ids), "flipped": set(np.array(ids)[flip]),
            "truth": truth, "given": given, "result": result}


def test_evaluate_without_predictions_finds_flipped_labels(flipped):
    result = flipped["result"]
    info = result.run_info["predictions"]
    assert info["method"] == "cross-validation" and result.run_info["embedder"] == "builtin"
    assert info["source"] == "5-fold cross-validated logistic regression on builtin embeddings"
    assert (info["embedder"], info["folds"], info["with_prediction"], info["without_prediction"]) == ("builtin", 5, 1500, 0)
    assert info["classes"] == [str(d) for d in range(10)]
    # MNIST '1's drawn alike are near duplicates: they stayed in one fold each (and the notes say so).
    assert any("kept in one fold" in note for note in info["notes"])

    scores = result.issues["label_issues_score"].reindex(flipped["ids"])
    assert scores.notna().all()
    flagged_ids = set(flipped["ids"][np.argsort(scores.to_numpy(), kind="stable")[:N_FLIPPED]])
    # Ranking by the out-of-fold probability of the given label: measured 74 of the 100 lowest are
    # flipped (precision = recall at k = 100: 0.74); a model that saw the samples it judges scores far lower.
    at_k = len(flagged_ids & flipped["flipped"]) / N_FLIPPED
    assert at_k >= 0.70
    # cleanlab's flagged set: measured 158 flagged, 79 of them flipped (precision 0.50, recall 0.79).
    finding = result.finding("label_issues")
    flagged = set(finding.samples)
    precision, recall = len(flagged & flipped["flipped"]) / len(flagged), len(flagged & flipped["flipped"]) / N_FLIPPED
    assert precision >= 0.45 and recall >= 0.75

    # Out-of-fold accuracy on the unflipped digits: measured 0.8643 (1,210 of 1,400).
    metrics = result.stats["metrics"]
    overall = float(metrics.query("metric == 'accuracy'")["value"].iloc[0])
    issues = result.issues.reindex(flipped["ids"])
    unflipped = ~np.isin(flipped["ids"], list(flipped["flipped"]))
    ctx = Context(read_folder(flipped["root"]), feature_options={"cache_dir": flipped["cache"]})
    preds = cross_validated_predictions(ctx, "builtin")
    order = pd.Index(preds.sample_ids).get_indexer(flipped["ids"])
    predicted = np.asarray(preds.classes)[preds.probs[order].argmax(axis=1)]
    accuracy = np.mean(predicted[unflipped] == flipped["given"][unflipped].astype(str))
    assert 0.85 <= accuracy <= 0.88
    # The suite judged those same probabilities: its accuracy is the one over all 1,500 given labels.
    assert overall == pytest.approx(np.mean(predicted == flipped["given"].astype(str)), abs=1e-12)
    assert issues["label_issues_score"].between(0, 1).all()


@pytest.fixture(scope="module")
def small(flipped, tmp_path_factory):
    """300 digits (true labels), a class 'x' of 3 digits, a corrupt PNG and an unlabelled image."""
    images, labels = mnist_arrays(300)
    root = tmp_path_factory.mktemp("small") / "digits"
    _write_digits(root, images, labels)
    (root / "x").mkdir()
    for i in range(3):
        Image.fromarray(images[i]).save(root / "x" / f"x{i}.png")
    (root / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    Image.fromarray(images[5]).save(root / "loose.png")
    return Context(read_folder(root), feature_options={"cache_dir": flipped["cache"]})


def test_probabilities_equal_sklearn_cross_val_predict_on_the_same_folds(small):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    preds = cross_validated_predictions(small, "builtin", folds=5, seed=0)
    samples = small.dataset.samples
    assert preds.sample_ids == samples["sample_id"].tolist()
    missing = {sid for sid, has in zip(preds.sample_ids, preds.has) if not has}
    assert missing == {"x/x0.png", "x/x1.png", "x/x2.png", "3/broken.png", "loose.png"}
    assert preds.classes == [str(d) for d in range(10)]
    assert "1 class(es) with fewer than 5 samples (or clusters kept together) to spread over 5 folds are not " \
           "judged: 'x' (3)" in preds.notes
    assert "1 of 305 samples have no label, so no prediction" in preds.notes
    assert "1 labelled samples have no builtin embedding (the image did not decode), so no prediction" in preds.notes

    emb = embeddings(small, "builtin")
    judged = samples["label"].isin([str(d) for d in range(10)]).to_numpy() & preds.has
    ids = samples["sample_id"][judged]
    x = emb.vectors[pd.Index(emb.ids).get_indexer(ids)].astype(np.float64)
    y = samples["label"][judged].astype(str).to_numpy()
    folds = make_folds(small, samples["sample_id"].isin(emb.ids).to_numpy(), folds=5, seed=0)
    assert folds.sample_ids.tolist() == ids.tolist()
    # One thread, as the wrapper fits: lbfgs stops at a tolerance, so threads' rounding would move it by 1e-3.
    with threadpool_limits(1):
        expected = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=LOGISTIC_C,
                                                                                        max_iter=LOGISTIC_MAX_ITER)),
                                     x, y, cv=folds.splits(), method="predict_proba")
    assert np.abs(preds.probs[judged] - expected).max() <= 1e-9
    # Every judged sample is predicted exactly once, by a fold that did not train on it.
    tested = np.concatenate([test for _, test in folds.splits()])
    assert sorted(tested.tolist()) == list(range(len(ids)))
    assert all(np.intersect1d(train, test).size == 0 for train, test in folds.splits())


def _manifest_with_groups(ctx: Context, tmp_path: Path) -> Path:
    """The 300 labelled digits of ``small`` with a 'patient' column: 7 seeded random digits per patient."""
    samples = ctx.dataset.samples
    digits = samples[samples["label"].isin([str(d) for d in range(10)]) & (samples["sample_id"] != "3/broken.png")]
    table = pd.DataFrame({"path": digits["path"], "label": digits["label"]})
    table["patient"] = [f"p{i // 7:02d}" for i in np.random.default_rng(1).permutation(len(table))]
    path = tmp_path / "manifest.csv"
    table.to_csv(path, index=False)
    return path


def test_group_folds_keep_every_group_on_one_side(small, tmp_path):
    dataset = load_dataset(_manifest_with_groups(small, tmp_path))
    cache = small.feature_options
    grouped = Context(dataset, group_columns=["patient"], feature_options=cache)
    folds = make_folds(grouped, grouped.valid.to_numpy(), folds=5, seed=0, duplicates=False)
    patients = dataset.samples["patient"][folds.rows].to_numpy()
    assert len(patients) == 300 and len(set(patients)) == 43
    for train, test in folds.splits():
        assert set(patients[train]).isdisjoint(patients[test])
        # Measured fold sizes 56, 62, 56, 63, 63: groups of 7 still balance the folds.
        assert 50 <= len(test) <= 70 and set(folds.labels[train]) == set(folds.classes)
    assert pd.Series(folds.fold).groupby(patients).nunique().max() == 1
    # The same samples without the group column: plain stratified folds split patients (measured all 43).
    plain = make_folds(Context(dataset, feature_options=cache), np.ones(300, bool), folds=5, seed=0, duplicates=False)
    assert (pd.Series(plain.fold).groupby(patients).nunique() > 1).sum() >= 40
    # The command line passes the group column on: the run's notes say the patients were kept together.
    run = CliRunner().invoke(app, ["evaluate", str(tmp_path / "manifest.csv"), "-g", "patient", "--embedder", "builtin",
                                   "--cache-dir",
                                   str(small.feature_options["cache_dir"]), "-o", str(tmp_path / "out"), "-q",
                                   "--fail-on", "never"])
    assert run.exit_code == 0, run.output
    info = json.loads((tmp_path / "out" / "findings.json").read_text())["run"]["predictions"]
    assert info["with_prediction"] == 300 and info["source"].startswith("5-fold cross-validated")
    assert any("group column 'patient'" in note for note in info["notes"])


def test_duplicate_copies_stay_in_the_fold_of_their_original(small, tmp_path):
    images, labels = mnist_arrays(300)
    root = tmp_path / "copies"
    _write_digits(root, images, labels)
    pairs = []
    for i in range(0, 240, 6):  # 40 planted copies: byte copies and 2x enlargements, in the original's folder
        original = root / str(labels[i]) / f"{i:05d}.png"
        copy = root / str(labels[i]) / f"copy_{i:05d}.png"
        if i % 12 == 0:
            shutil.copyfile(original, copy)
        else:
            Image.fromarray(images[i]).resize((56, 56), Image.Resampling.LANCZOS).save(copy)
        pairs.append((f"{labels[i]}/{i:05d}.png", f"{labels[i]}/copy_{i:05d}.png"))
    ctx = Context(read_folder(root), feature_options=small.feature_options)
    folds = make_folds(ctx, ctx.valid.to_numpy(), folds=5, seed=0)
    fold_of = pd.Series(folds.fold, index=folds.sample_ids)
    assert len(fold_of) == 340
    index = duplicate_index(ctx)
    linked = {tuple(sorted(index.ids[p])) for p in np.concatenate([index.exact_pairs, index.near_pairs])}
    found = [pair for pair in pairs if tuple(sorted(pair)) in linked]
    # All 20 byte copies and 16 of the 20 enlargements are found by the duplicate index (measured).
    assert len(found) >= 36 and all(pair in found for pair in pairs[::2])
    assert all(fold_of[a] == fold_of[b] for a, b in found)
    # Without the duplicate clusters most pairs straddle folds (measured 37 of 40).
    plain = make_folds(ctx, ctx.valid.to_numpy(), folds=5, seed=0, duplicates=False)
    plain_of = pd.Series(plain.fold, index=plain.sample_ids)
    assert sum(plain_of[a] != plain_of[b] for a, b in pairs) >= 30
    assert any("kept in one fold" in note for note in folds.notes)


def test_no_labels_is_a_clear_error_before_any_decode(tmp_path):
    images, _ = mnist_arrays(20)
    root = tmp_path / "flat"
    root.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(root / f"{i:02d}.png")
    with pytest.raises(SourceError, match="no sample has a label: evaluating without predictions cross-validates") as info:
        visionaudit.evaluate(root, cache_dir=tmp_path / "cache")
    assert str(root) in str(info.value) and "--predictions" in str(info.value)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ArgumentError, match="invalid folds=1: expected an integer of at least 2"):
        visionaudit.evaluate(tmp_path, folds=1, cache_dir=tmp_path / "cache")
    run = CliRunner().invoke(app, ["evaluate", str(root), "--cache-dir", str(tmp_path / "cache"), "-o",
                                   str(tmp_path / "out")])
    assert run.exit_code == 2 and "no sample has a label" in run.output


def test_the_run_names_the_embedding_and_cross_validation_stages_and_their_times(flipped):
    """The summary says where the time went (issue 9 §1): not 'decoded 0 images ... in 423 s' with the
    embedding and the folds put on decoding, but each stage with its own time."""
    from visionaudit.report.format import run_time

    run = flipped["result"].run_info
    stages = run["stage_seconds"]
    assert [k for k in stages if k != "predictions"] == ["load", "decode", "embedding", "cross-validation", "checks",
                                                         "stats"]
    assert stages["cross-validation"] > 0 and stages["embedding"] > 0
    assert run["predictions"]["stage_seconds"] == {k: stages[k] for k in ("embedding", "cross-validation")}
    assert run["seconds"] >= sum(stages.values()) - 0.01
    took = run_time(run)
    assert f"cross-validation {stages['cross-validation']:.1f} s" in took
    assert took.index("decode") < took.index("cross-validation") < took.index("checks")


def test_cross_validation_draws_a_bar_of_its_folds_when_asked(small, monkeypatch):
    from visionaudit import engine

    bars, real = [], engine.progress_bar

    def recording(total, description, enabled):
        bars.append((total, description, enabled))
        return real(total, description, False)  # draws nothing under pytest either way

    monkeypatch.setattr(engine, "progress_bar", recording)
    quiet = cross_validated_predictions(small, "builtin", folds=5)
    loud = Context(small.dataset, feature_options={**small.data.feature_options, "progress": True})
    timings: dict[str, float] = {}
    shown = cross_validated_predictions(loud, "builtin", folds=5, timings=timings)
    assert bars == [(5, "cross-validating (5 folds)", False), (5, "cross-validating (5 folds)", True)]
    np.testing.assert_array_equal(quiet.probs, shown.probs)
    assert set(timings) == {"embedding", "cross-validation"} and all(v >= 0 for v in timings.values())
