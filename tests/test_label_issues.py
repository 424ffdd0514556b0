"""Label issues on real MNIST digits with a known, seeded 5% of labels flipped by the test.

Out-of-sample probabilities come from a small model (PCA + logistic regression, 5-fold
cross-validation) trained on the noisy labels, written to a predictions CSV keyed by path, read back
with ``read_predictions`` and judged by ``labels.label_issues``; the ranking must put most flipped
digits first, and the flagged set must equal cleanlab's own on the same probabilities. Edited copies
of a few digits filed under other labels (some without predictions) must join the list through the
duplicate index, with the cluster's answer as the suggested label.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import issues_frame, mnist_arrays, run_check
from PIL import Image

from visionaudit.checks.labels import LabelIssues, corrected_candidates
from visionaudit.context import Context
from visionaudit.dataset import read_folder
from visionaudit.predictors import read_predictions

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
    return {"root": root, "csv": csv, "files": _snapshot(base), "cache": tmp_path_factory.mktemp("cache"),
            "ids": np.array(ids), "noisy": noisy, "truth": truth, "flipped": {ids[i] for i in flipped}, "probs": probs}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def judged(noisy_mnist):
    dataset = read_folder(noisy_mnist["root"])
    # read_folder orders samples by path; the test's arrays are in digit order.
    order = np.argsort(noisy_mnist["ids"])
    assert dataset.samples["sample_id"].tolist() == noisy_mnist["ids"][order].tolist()
    ctx = Context(dataset, predictions=read_predictions(noisy_mnist["csv"], dataset),
                  feature_options={"cache_dir": noisy_mnist["cache"]})
    findings = run_check(LabelIssues(), ctx)
    return ctx, findings, order


def test_ranking_puts_flipped_labels_first(noisy_mnist, judged):
    ctx, findings, _ = judged
    scores = issues_frame(ctx)["label_issues_score"]
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
    issues = issues_frame(ctx)
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
    assert finding.message == ("243 of 3000 labelled samples with predictions look mislabelled (8.1%); model accuracy "
                               "0.831 (95% CI 0.818-0.844), above the best baseline (image_properties 0.304, CI up to "
                               "0.320); most common given -> suggested label: " + ", ".join(
                                   f"{p['given_label']} -> {p['suggested_label']} ({p['count']})" for p in top))
    assert ev["model"]["source"] == str(noisy_mnist["csv"]) and ev["model"]["embedder"] is None
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
    assert table.columns.tolist() == ["sample_id", "path", "given_label", "suggested_label", "score", "reason",
                                      "duplicate_cluster", "duplicate_members"]
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
    ctx = Context(dataset, predictions=preds, feature_options={"cache_dir": noisy_mnist["cache"]})
    (finding,) = run_check(LabelIssues(), ctx)
    ids = samples["sample_id"].to_numpy()
    unjudged = set(ids[:100]) | {s for s in ids if s.endswith(("00000.png", "00001.png", "00002.png"))}
    issues = issues_frame(ctx)
    assert set(issues.index[issues["label_issues_score"].isna()]) == unjudged
    assert not set(finding.samples) & unjudged
    assert finding.evidence["judged"] == 3000 - len(unjudged)
    assert finding.evidence["unlabelled"] == 100 and finding.evidence["without_predictions"] == 3


def test_no_predictions_no_finding(noisy_mnist):
    ctx = Context(read_folder(noisy_mnist["root"]))
    assert run_check(LabelIssues(), ctx) == [] and issues_frame(ctx).empty


def test_user_files_untouched(noisy_mnist, judged):
    _, findings, _ = judged
    corrected_candidates(findings[0])
    assert _snapshot(noisy_mnist["root"].parent) == noisy_mnist["files"]


#: Copies planted among the noisy digits, each filed under another label: (case, digit of the
#: original, label the copy is filed under, edit). a: the copy has a prediction; b: only the original
#: has one; c: three copies without predictions, majority 6; d: two copies without predictions, a tie;
#: e: only the original has a prediction, and the model gets it wrong (a 4 it calls something else).
PLANTS = [("a", 2, "7", "r56"), ("b", 3, "8", "q95"), ("c", 6, "6", "q90"), ("c", 6, "0", "q95"), ("d", 9, "4", "q95"),
          ("e", 4, "7", "q95")]


def _edited(image: np.ndarray, edit: str, dest: Path) -> None:
    if edit == "r56":  # enlarged 2x: a near duplicate
        Image.fromarray(image).resize((56, 56), Image.Resampling.BICUBIC).save(dest.with_suffix(".png"))
    else:              # re-encoded as JPEG at q90+ at the same size: an exact duplicate (decode noise only)
        Image.fromarray(image).save(dest.with_suffix(".jpg"), "JPEG", quality=int(edit[1:]))


@pytest.fixture(scope="module")
def relabelled_copies(noisy_mnist, tmp_path_factory):
    """The noisy digits plus edited copies of five of them filed under other labels (PLANTS), with
    a predictions CSV that covers the copy in case a and none of the samples of cases c and d."""
    base = tmp_path_factory.mktemp("copies")
    root = base / "digits"
    shutil.copytree(noisy_mnist["root"], root)
    position = {sid: i for i, sid in enumerate(noisy_mnist["ids"])}
    probs, noisy, truth = noisy_mnist["probs"], noisy_mnist["noisy"], noisy_mnist["truth"]
    # Originals: the first digit of each wanted class whose label is unflipped and that the model gets
    # right (in case e: gets wrong, though it still prefers the true digit to the copy's label).
    right = (noisy == truth) & (probs.argmax(axis=1) == truth)
    wrong = (noisy == truth) & (probs.argmax(axis=1) != truth) & (probs[:, 4] > probs[:, 7])
    originals = {case: int(np.flatnonzero((wrong if case == "e" else right) & (truth == digit))[0])
                 for case, digit, _, _ in PLANTS}
    copies = {}
    for case, _, label, edit in PLANTS:
        i = originals[case]
        dest = root / label / f"copy_{i:05d}_{edit}"
        _edited(mnist_arrays(N)[0][i], edit, dest)
        copies.setdefault(case, []).append(f"{label}/{dest.name}{'.png' if edit == 'r56' else '.jpg'}")
    table = pd.read_csv(noisy_mnist["csv"], dtype={"path": str})
    by_path = table.set_index("path")
    orig_ids = {case: noisy_mnist["ids"][i] for case, i in originals.items()}
    row_a = by_path.loc[f"../digits/{orig_ids['a']}"]
    # The copy in case a is predicted like its original (the same picture); cases c and d have no predictions.
    table = pd.concat([table, pd.DataFrame([{"path": f"../digits/{copies['a'][0]}", **row_a.to_dict()}])])
    table = table[~table["path"].isin([f"../digits/{orig_ids['c']}", f"../digits/{orig_ids['d']}"])]
    (base / "preds").mkdir()
    csv = base / "preds" / "preds.csv"
    table.to_csv(csv, index=False)
    dataset = read_folder(root)
    ctx = Context(dataset, predictions=read_predictions(csv, dataset), feature_options={"cache_dir": base / "cache"})
    (finding,) = run_check(LabelIssues(), ctx)
    return {"ctx": ctx, "finding": finding, "originals": orig_ids, "copies": copies,
            "probs": {case: probs[position[sid]] for case, sid in orig_ids.items()}}


def test_relabelled_copies_join_the_list(relabelled_copies, tmp_path):
    r = relabelled_copies
    finding, ctx, orig, copies, probs = r["finding"], r["ctx"], r["originals"], r["copies"], r["probs"]
    rows = {c["sample_id"]: c for c in finding.evidence["candidates"]}
    joined = {copies["a"][0], copies["b"][0], copies["c"][1], copies["d"][0], orig["d"], copies["e"][0]}
    # Exactly the relabelled copies (and, on the tie, both copies) joined; the model had flagged 243
    # others, and every natural conflict among look-alike '1's was already among them.
    model_only = {s for s, row in rows.items() if row["reason"].startswith("the model predicts")}
    assert set(rows) - model_only == joined
    ev = finding.evidence
    assert (ev["judged"], ev["flagged_by_model"], ev["joined_by_duplicates"], ev["flagged"]) == (2999, 243, 6, 249)
    assert ev["without_predictions"] == 7  # the copies in b and e, the three images of c, the two of d
    assert finding.message.startswith("243 of 2999 labelled samples with predictions look mislabelled (8.1%); model "
                                      "accuracy ")
    assert "); 6 more are duplicates of differently labelled images (9 duplicate cluster(s)" in finding.message
    # Case a: the copy has a prediction (its original's), cleanlab alone did not flag it.
    a = rows[copies["a"][0]]
    assert (a["given_label"], a["suggested_label"]) == ("7", "2")
    assert a["quality"] == pytest.approx(probs["a"][7], abs=1e-12)
    # Case b: no prediction for the copy; the original's prediction answers for the cluster.
    b = rows[copies["b"][0]]
    assert (b["given_label"], b["suggested_label"], b["quality"]) == ("8", "3", pytest.approx(probs["b"][8], abs=1e-12))
    # Case c: no predictions; two of three copies say 6.
    c = rows[copies["c"][1]]
    assert (c["given_label"], c["suggested_label"], c["quality"]) == ("0", "6", pytest.approx(1 / 3))
    assert orig["c"] not in rows and copies["c"][0] not in rows
    # Case d: a tie without predictions: both copies listed, no suggestion.
    assert [(rows[s]["suggested_label"], rows[s]["quality"]) for s in (orig["d"], copies["d"][0])] == [(None, 0.5)] * 2
    # Case e: the model calls the original neither 4 nor 7, but prefers 4 to 7: the copy is told 4.
    e = rows[copies["e"][0]]
    assert int(probs["e"].argmax()) not in (4, 7)
    assert (e["given_label"], e["suggested_label"], e["quality"]) == ("7", "4", pytest.approx(probs["e"][7], abs=1e-12))
    # Its original carries the cluster's answer: listed by the model alone (with the model's suggestion).
    assert rows[orig["e"]]["duplicate_cluster"] is None and rows[orig["e"]]["reason"].startswith("the model predicts")
    assert rows[orig["e"]]["suggested_label"] == str(int(probs["e"].argmax()))
    groups = {frozenset(g["samples"]): g for g in finding.groups}
    expect = {"a": ("near", "2", "model"), "b": ("exact", "3", "model"), "c": ("exact", "6", "majority"),
              "d": ("exact", None, "none"), "e": ("exact", "4", "model")}
    for case, (kind, answer, source) in expect.items():
        g = groups[frozenset([orig[case], *copies[case]])]
        assert (g["kind"], g["suggested_label"], g["suggested_by"]) == (kind, answer, source)
        for sid in set(g["samples"]) & joined:
            assert rows[sid]["duplicate_cluster"] == g["cluster"]
            assert sorted(rows[sid]["duplicate_members"]) == sorted(set(g["samples"]) - {sid})
            assert rows[sid]["reason"].startswith(f"{kind} duplicates carry different labels")
    assert "suggested: the copies' majority label" in c["reason"] and "tie" in rows[orig["d"]]["reason"]
    # The ranking: flags and scores in the issues table, candidates worst first.
    issues = issues_frame(ctx)
    assert issues.loc[sorted(joined), "is_label_issues"].all()
    assert issues.loc[copies["c"][1], "label_issues_score"] == pytest.approx(1 / 3)
    assert np.isnan(issues.loc[copies["c"][0], "label_issues_score"])
    assert finding.samples == [row["sample_id"] for row in ev["candidates"]]
    assert [row["quality"] for row in ev["candidates"]] == sorted(row["quality"] for row in ev["candidates"])
    # The corrected-candidates CSV carries them, with reason, cluster and other members.
    csv = tmp_path / "label_candidates.csv"
    corrected_candidates(finding).to_csv(csv, index=False)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False).set_index("sample_id")
    assert joined <= set(table.index) and len(table) == 249
    assert table.loc[copies["c"][1], ["given_label", "suggested_label", "duplicate_cluster"]].tolist() == [
        "0", "6", groups[frozenset([orig["c"], *copies["c"]])]["cluster"]]
    assert set(table.loc[copies["c"][1], "duplicate_members"].split(";")) == {orig["c"], copies["c"][0]}
    assert table.loc[orig["d"], "suggested_label"] == ""
    plain = [s for s in model_only if rows[s]["duplicate_cluster"] is None]
    assert len(plain) == 243 - 6 and (table.loc[plain, ["duplicate_cluster", "duplicate_members"]] == "").all().all()
    # Flagged by the model and in a conflicting cluster (look-alike '1's): one row with both reasons.
    both = [s for s in model_only if rows[s]["duplicate_cluster"] is not None]
    assert all("; near duplicates carry different labels" in rows[s]["reason"] for s in both)
    # Without the duplicate rule only the model's verdict is left.
    (alone,) = run_check(LabelIssues(duplicates=False), ctx)
    assert set(alone.samples) == model_only and not alone.groups


# --- judged by its model (issue 9 §1) --------------------------------------------------------------
#: 2,000 MNIST digits, the no-model path (5-fold logistic regression on builtin embeddings), three label
#: sets on the same images: 5% flipped (the model is good: a warning), 60% replaced at random (the model
#: beats the baselines but its accuracy is under the 0.6 floor) and all random (no better than the
#: baselines): both "ranking only" info findings that flag nothing on the model's word.
N_JUDGED, JUDGED_SEED = 2000, 11


@pytest.fixture(scope="module")
def digit_runs(tmp_path_factory):
    from visionaudit.analyses import RunData
    from visionaudit.predictors.crossval import cross_validated_predictions

    images, truth = mnist_arrays(N_JUDGED)
    base = tmp_path_factory.mktemp("judged_digits")
    root = base / "digits"
    root.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(root / f"{i:05d}.png")
    rng = np.random.default_rng(JUDGED_SEED)
    flipped = rng.choice(N_JUDGED, N_JUDGED // 20, replace=False)
    noisy = truth.astype(int)
    noisy[flipped] = (noisy[flipped] + rng.integers(1, 10, len(flipped))) % 10
    mostly = truth.astype(int)
    replaced = rng.random(N_JUDGED) < 0.6
    mostly[replaced] = rng.integers(0, 10, int(replaced.sum()))
    runs = {}
    for name, labels in (("flipped", noisy), ("mostly_random", mostly), ("random", rng.integers(0, 10, N_JUDGED))):
        dataset = read_folder(root)
        samples = dataset.samples.copy()
        samples["label"] = [str(labels[int(Path(s).stem)]) for s in samples["sample_id"]]
        dataset.samples = samples
        data = RunData(dataset, feature_options={"cache_dir": base / "cache", "workers": 1})
        preds = cross_validated_predictions(data, "builtin")
        ctx = Context(data, predictions=preds)
        runs[name] = (ctx, run_check(LabelIssues(), ctx))
    ids = np.array([f"{i:05d}.png" for i in range(N_JUDGED)])
    return {"runs": runs, "flipped": set(ids[flipped])}


def test_a_good_model_flags_planted_flips_as_a_warning(digit_runs):
    ctx, (finding,) = digit_runs["runs"]["flipped"]
    model = finding.evidence["model"]
    assert finding.severity.value == "warning" and model["supported"] and not finding.evidence["ranking_only"]
    assert model["embedder"] == "builtin" and model["judged"] == N_JUDGED
    assert model["accuracy"] == pytest.approx(0.829, abs=0.002)
    majority, props = model["baselines"]
    assert majority["baseline"] == "majority" and props["baseline"] == "image_properties"
    assert model["accuracy_low"] > max(majority["high"], props["high"]) and model["accuracy"] >= model["min_accuracy"]
    assert f"accuracy {model['accuracy']:.3f}" in finding.message
    assert model["source"] == "5-fold cross-validated logistic regression on builtin embeddings"
    flagged = set(finding.samples)
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_label_issues"]]) == flagged
    caught = len(flagged & digit_runs["flipped"])
    assert caught / len(digit_runs["flipped"]) >= 0.7 and caught / len(flagged) >= 0.25


@pytest.mark.parametrize("case, reason", [("mostly_random", "below the floor min_accuracy=0.6"),
                                          ("random", "not clearly above the best baseline")])
def test_a_weak_model_gives_a_ranking_only(digit_runs, case, reason):
    ctx, (finding,) = digit_runs["runs"][case]
    model, ev = finding.evidence["model"], finding.evidence
    assert finding.severity.value == "info" and ev["ranking_only"] and not model["supported"]
    assert reason in model["reason"] and finding.message.startswith("Ranking only: ")
    copies = {c["sample_id"] for c in ev["candidates"] if c["duplicate_cluster"]}  # look-alike digits, other labels
    assert len(finding.samples) == 20 + ev["joined_by_duplicates"] and ev["ranked_candidates"] > 20
    issues = issues_frame(ctx)
    # nothing flagged on a weak model's word: only copies of one picture filed under different labels
    assert set(issues.index[issues["is_label_issues"]]) == copies and ev["flagged"] == len(copies)
    assert issues["label_issues_score"].notna().sum() == N_JUDGED  # the full ranking is in the scores table
    # the surest candidates are the lowest scores among those cleanlab would have flagged
    assert [c["quality"] for c in ev["candidates"]] == sorted(c["quality"] for c in ev["candidates"])
    assert ev["candidates"][0]["quality"] == pytest.approx(issues["label_issues_score"].min(), abs=1e-12)
    if case == "random":
        assert model["accuracy_low"] <= max(b["high"] for b in model["baselines"])
    else:
        assert model["accuracy_low"] > max(b["high"] for b in model["baselines"]) and model["accuracy"] < 0.6
