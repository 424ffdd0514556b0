"""Evaluation hygiene on real COCO128 photos: test copies of training images, and the de-leaked metrics.

Train: the 128 COCO128 train2017 photos; test: the first 60 val2017 photos plus 6 planted copies of
training photos (a byte copy, a PNG re-save and a JPEG q100 re-encode: exact; a 0.75x resize, a 10%
centre crop and a 1.3x brightening: near), one copy of a test photo inside test (not a leak) and one
copy of a training photo inside train (not a leak). Labels are real: ``person`` when the photo's YOLO
boxes include a person, ``vehicle`` when they include a bicycle..boat, else ``other``. The model is
a 1-nearest-neighbour on normalised 16x16 thumbnails of the training photos (probability 0.8 for its
answer): it remembers the copies, which is how a leak inflates a score. A ``scene`` column gives each
photo its own scene, except 4 test photos that share one with a training photo.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import COCO128, coco_images, issues_frame, run_check
from PIL import Image
from test_duplicates import make_variant

from visionaudit import evaluate
from visionaudit.analyses.evaluation_data import HEADLINE
from visionaudit.checks.hygiene import LeakedTestMetrics
from visionaudit.context import Context
from visionaudit.dataset import load_dataset
from visionaudit.metrics import bootstrap_ci
from visionaudit.predictors import read_predictions
from visionaudit.suites import SUITES

LABELS = COCO128.parent / "object_detection" / "labels"
CLASSES = ["other", "person", "vehicle"]
EXACT = {"copy": 0, "png": 1, "q100": 2}          # variant -> index of the training photo it copies
NEAR = {"r75": 3, "c10": 4, "b13": 5}
SHARED_SCENE = {0: 20, 1: 21, 2: 22, 3: 23}      # test photo -> training photo whose scene it shares
N_TEST = 60


def _label(photo) -> str:
    boxes = LABELS / photo.parent.name / f"{photo.stem}.txt"
    classes = {int(line.split()[0]) for line in boxes.read_text().splitlines() if line.strip()} if boxes.exists() else set()
    return "person" if 0 in classes else "vehicle" if classes & set(range(1, 9)) else "other"


def _thumb(path) -> np.ndarray:
    v = np.asarray(Image.open(path).convert("L").resize((16, 16), Image.Resampling.BILINEAR), float).ravel()
    v -= v.mean()
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    from sklearn.neighbors import KNeighborsClassifier

    root = tmp_path_factory.mktemp("hygiene")
    train, val = coco_images("train2017"), coco_images("val2017")[:N_TEST]
    rows = []
    for photo in train:
        rows.append({"sample_id": f"train/{photo.name}", "source": photo, "split": "train", "label": _label(photo)})
    for photo in val:
        rows.append({"sample_id": f"test/{photo.name}", "source": photo, "split": "test", "label": _label(photo)})
    for kind, i in {**EXACT, **NEAR}.items():
        rows.append({"sample_id": f"test/copy_{kind}", "source": train[i], "variant": kind, "split": "test",
                     "label": _label(train[i])})
    rows.append({"sample_id": "test/copy_of_test", "source": val[10], "variant": "copy", "split": "test",
                 "label": _label(val[10])})
    rows.append({"sample_id": "train/copy_of_train", "source": train[30], "variant": "r50", "split": "train",
                 "label": _label(train[30])})
    for r in rows:
        suffix = ".png" if r.get("variant") == "png" else ".jpg"
        path = root / "images" / (r["sample_id"].replace("/", "_") + ("" if "variant" not in r else suffix))
        make_variant(r["source"], r.get("variant", "copy"), path)
        r["path"] = str(path)
        r["scene"] = f"scene_{r['sample_id']}"
    for t, i in SHARED_SCENE.items():
        next(r for r in rows if r["sample_id"] == f"test/{val[t].name}")["scene"] = f"scene_train/{train[i].name}"
    manifest = root / "manifest.csv"
    pd.DataFrame(rows)[["sample_id", "path", "label", "split", "scene"]].to_csv(manifest, index=False)
    is_train = np.array([r["split"] == "train" for r in rows])
    thumbs = np.stack([_thumb(r["path"]) for r in rows])
    labels = np.array([r["label"] for r in rows])
    knn = KNeighborsClassifier(1).fit(thumbs[is_train], labels[is_train])
    predicted = knn.predict(thumbs[~is_train])
    probs = np.where(np.array(CLASSES)[None, :] == predicted[:, None], 0.8, 0.1)
    preds = pd.DataFrame(probs, columns=CLASSES)
    preds.insert(0, "sample_id", [r["sample_id"] for r in rows if r["split"] == "test"])
    preds.to_csv(root / "preds.csv", index=False)
    test_ids = [r["sample_id"] for r in rows if r["split"] == "test"]
    return {"root": root, "manifest": manifest, "preds": root / "preds.csv", "cache": root / "cache",
            "train": train, "val": val, "test_ids": test_ids,
            "correct": dict(zip(test_ids, predicted == labels[~is_train]))}


def _run(leaky, group_columns=(), **params):
    dataset = load_dataset(leaky["manifest"])
    ctx = Context(dataset, predictions=read_predictions(leaky["preds"], dataset),
                  group_columns=list(group_columns),
                  feature_options={"cache_dir": leaky["cache"], "workers": 2})
    return run_check(LeakedTestMetrics(**params), ctx), ctx


def _accuracy(c):
    return c.mean(axis=-1)


def test_planted_copies_are_exactly_the_flagged_samples(leaky):
    (finding,), ctx = _run(leaky)
    exact = {f"test/copy_{k}" for k in EXACT}
    near = {f"test/copy_{k}" for k in NEAR}
    assert set(finding.samples) == exact | near
    assert finding.samples[:3] == sorted(exact, key=finding.samples.index)      # exact copies listed first
    assert finding.evidence["by_kind"] == {"exact": 3, "near": 3, "group": 0}
    train = leaky["train"]
    sources = {g["samples"][0]: (g["kind"], g["samples"][1:]) for g in finding.groups}
    assert sources == {f"test/copy_{k}": ("exact" if k in EXACT else "near", [f"train/{train[i].name}"])
                       for k, i in {**EXACT, **NEAR}.items()}
    assert all(g["splits"] == ["test", "train"] and g["labels"][0] == g["labels"][1] for g in finding.groups)
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_copied_from_train"]]) == exact | near
    assert issues.loc[leaky["test_ids"], "copied_from_train_score"].notna().all()
    assert issues["copied_from_train_score"].isna().sum() == len(train) + 1     # training samples are not judged


def test_deleaked_metrics_equal_a_direct_computation(leaky):
    from sklearn.metrics import accuracy_score, f1_score

    (finding,), _ = _run(leaky)
    flagged = set(finding.samples)
    ids = leaky["test_ids"]
    correct = np.array([leaky["correct"][s] for s in ids])
    copied = np.array([s in flagged for s in ids])
    m = finding.evidence["metrics"]
    assert m["accuracy"]["original"]["value"] == correct.mean()
    assert m["accuracy"]["deleaked"]["value"] == correct[~copied].mean() == accuracy_score(
        np.ones((~copied).sum()), correct[~copied])
    ci = bootstrap_ci(_accuracy, correct[~copied], vectorized=True, seed=0)
    assert (m["accuracy"]["deleaked"]["low"], m["accuracy"]["deleaked"]["high"]) == (ci.low, ci.high)
    ci_all = bootstrap_ci(_accuracy, correct, vectorized=True, seed=0)
    assert (m["accuracy"]["original"]["low"], m["accuracy"]["original"]["high"]) == (ci_all.low, ci_all.high)
    assert m["accuracy"]["inflation"] == pytest.approx(correct.mean() - correct[~copied].mean(), abs=1e-12)
    # The nearest-neighbour model remembers its training photos: the copies are right, the rest mostly not.
    assert finding.evidence["copies_accuracy"] == correct[copied].mean() == 1.0
    assert finding.evidence["accuracy_inflation"] == pytest.approx(m["accuracy"]["inflation"], abs=1e-12)
    gap = bootstrap_ci(lambda c, k: c.mean(-1) - (c & ~k).sum(-1) / (~k).sum(-1), correct, copied, stratify=copied,
                       vectorized=True, seed=0)
    assert (finding.evidence["accuracy_inflation_low"], finding.evidence["accuracy_inflation_high"]) == (gap.low, gap.high)
    assert gap.low > 0
    dataset = load_dataset(leaky["manifest"])
    truth = dataset.samples.set_index("sample_id").loc[np.array(ids)[~copied], "label"]
    predicted = pd.read_csv(leaky["preds"]).set_index("sample_id").loc[truth.index].idxmax(axis=1)
    assert m["f1_macro"]["deleaked"]["value"] == pytest.approx(
        f1_score(truth, predicted, average="macro", labels=CLASSES, zero_division=0), abs=1e-12)
    assert set(m) >= set(HEADLINE)
    assert finding.message.startswith(
        f"6 of {len(ids)} test samples copy training samples (3 exact, 3 near): accuracy {correct.mean():.3f} "
        f"(95% CI {ci_all.low:.3f}-{ci_all.high:.3f}) on all, {correct[~copied].mean():.3f} "
        f"({ci.low:.3f}-{ci.high:.3f}) on the {(~copied).sum()} without copies; the copies shift it by "
        f"{gap.estimate:+.3f} (CI {gap.low:+.3f} to {gap.high:+.3f}) and are 100.0% right")


def test_group_columns_and_exact_only(leaky):
    (finding,), _ = _run(leaky, group_columns=["scene"])
    val, train = leaky["val"], leaky["train"]
    shared = {f"test/{val[t].name}" for t in SHARED_SCENE}
    copies = {f"test/copy_{k}" for k in {**EXACT, **NEAR}}
    assert set(finding.samples) == copies | shared
    assert finding.evidence["by_kind"] == {"exact": 3, "near": 3, "group": 4}
    groups = {g["samples"][0]: g for g in finding.groups if g["kind"] == "group"}
    for t, i in SHARED_SCENE.items():
        g = groups[f"test/{val[t].name}"]
        assert (g["column"], g["value"], g["samples"][1:]) == ("scene", f"scene_train/{train[i].name}",
                                                               [f"train/{train[i].name}"])
    (finding,), _ = _run(leaky, near_copies=False)
    assert set(finding.samples) == {f"test/copy_{k}" for k in EXACT}
    assert finding.severity.value == "warning" and finding.evidence["accuracy_inflation"] >= 0.005
    # An inflation below min_inflation is reported as info.
    (finding,), _ = _run(leaky, min_inflation=1.0)
    assert finding.severity.value == "info" and finding.count == 6


def test_nothing_to_judge(leaky, tmp_path):
    table = pd.read_csv(leaky["manifest"])
    clean = table[~table["sample_id"].str.startswith("test/copy_")]
    path = tmp_path / "clean.csv"
    clean.to_csv(path, index=False)
    preds = pd.read_csv(leaky["preds"])
    preds[preds["sample_id"].isin(clean["sample_id"])].to_csv(tmp_path / "preds.csv", index=False)
    dataset = load_dataset(path)
    ctx = Context(dataset, predictions=read_predictions(tmp_path / "preds.csv", dataset),
                  feature_options={"cache_dir": leaky["cache"], "workers": 2})
    assert run_check(LeakedTestMetrics(), ctx) == []
    issues = issues_frame(ctx)
    assert not issues["is_copied_from_train"].any() and (issues["copied_from_train_score"].dropna() == 1.0).all()
    # Without a train split there is nothing the model learnt from.
    path = tmp_path / "test_only.csv"
    table[table["split"] == "test"].to_csv(path, index=False)
    dataset = load_dataset(path)
    assert run_check(LeakedTestMetrics(), Context(dataset, predictions=read_predictions(leaky["preds"], dataset))) == []


def test_in_the_evaluate_run(leaky):
    keep = ("evaluation.metrics", "evaluation.leaked_test_metrics")
    config = {"checks": {cid: {"enabled": False} for cid in SUITES["evaluate"] if cid not in keep}}
    result = evaluate(leaky["manifest"], leaky["preds"], config=config, cache_dir=leaky["cache"])
    finding = result.finding("leaked_test_metrics")
    assert finding.severity.value == "warning" and finding.count == 6
    metrics = result.finding("metrics").evidence["splits"]["test"]["metrics"]
    assert finding.evidence["metrics"]["accuracy"]["original"] == metrics["accuracy"]
