"""Baselines on real data: a shortcut planted in COCO128 photos, and MNIST models vs trivial baselines.

property_shortcut: the 128 COCO128 train photos split into two class folders; class ``a`` re-saved at
half size (or darkened) with the original JPEG tables, so only the planted property changes. The
control assigns unmodified photos to the classes at random (10 seeds): measured 0 of 10 flagged
(cross-validated property accuracy 0.445-0.602 against a majority rate of 0.50; the gain's lower 95%
bound at most 0.00, against the 0.10 needed to flag).

model_vs_baseline: 2,000 MNIST digits as PNGs, the first 1,000 in ``train/``, the rest in ``test/``;
a good model (logistic regression, out-of-fold) beats every baseline; a useless one (seeded random
probabilities) is flagged, and as an error because image properties alone do significantly better.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import coco_images, issues_frame, mnist_arrays, run_check
from PIL import Image, ImageEnhance

from visionaudit.checks.baselines import (
    ModelVsBaseline,
    PropertyShortcut,
    property_predictions,
)
from visionaudit.context import Context
from visionaudit.dataset import read_folder
from visionaudit.findings import Severity
from visionaudit.predictors import read_predictions

pytest.importorskip("sklearn")

SIZE_PROPERTIES = {"megapixels", "width", "height", "file_size"}
LIGHT_PROPERTIES = {"brightness", "contrast", "dynamic_range", "bright_fraction", "highlights", "dark_fraction",
                    "shadows"}


def _two_classes(root: Path, seed: int, plant: str | None) -> Path:
    """COCO photos in folders ``a`` and ``b`` (64 each, seeded assignment); ``plant`` alters class ``a``."""
    files = coco_images()
    order = np.random.default_rng(seed).permutation(len(files))
    for j, i in enumerate(order):
        cls = "a" if j < len(files) // 2 else "b"
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        if cls == "a" and plant is not None:
            with Image.open(files[i]) as im:
                tables = im.quantization
                im = im.convert("RGB")
                if plant == "half_size":
                    im = im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
                else:
                    im = ImageEnhance.Brightness(im).enhance(0.5)
                # The source's quantisation tables keep jpeg_quality unchanged: only the planted property moves.
                im.save(folder / files[i].name, qtables=tables)
        else:
            shutil.copyfile(files[i], folder / files[i].name)
    return root


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _shortcut(tmp_path: Path, cache: Path, seed: int, plant: str | None):
    ctx = Context(read_folder(_two_classes(tmp_path / f"{plant}_{seed}", seed, plant)),
                  feature_options={"cache_dir": cache})
    return ctx, run_check(PropertyShortcut(), ctx)


def test_half_size_class_is_a_shortcut_named_by_size(tmp_path, feature_cache):
    ctx, findings = _shortcut(tmp_path, feature_cache, 0, "half_size")
    assert ctx.predictions is None  # needs no model
    (finding,) = findings
    ev = finding.evidence
    assert finding.check == "baselines.property_shortcut" and finding.severity is Severity.WARNING
    assert (ev["judged"], ev["majority_class"], ev["majority_rate"]) == (128, "a", 0.5)
    # Size separates the classes completely: every photo is predicted right out of fold.
    assert ev["accuracy"] == 1.0 and ev["gain"] == 0.5 and ev["gain_low"] >= 0.10
    names = [row["property"] for row in ev["top_properties"]]
    assert names[:4] == ["megapixels", "width", "height", "file_size"]
    assert ev["top_properties"][0]["accuracy_alone"] == 1.0
    assert set(finding.samples) == set(ctx.sample_ids)
    assert "megapixels (1.00 alone)" in finding.message
    # Class medians are the planted sizes, measured independently from the files on disk.
    for cls in ("a", "b"):
        sizes = [_size(p) for p in sorted((tmp_path / "half_size_0" / cls).glob("*.jpg"))]
        assert ev["class_medians"][cls]["megapixels"] == pytest.approx(np.median([w * h / 1e6 for w, h in sizes]))
    assert ev["class_medians"]["a"]["megapixels"] < 0.3 * ev["class_medians"]["b"]["megapixels"]
    issues = issues_frame(ctx)
    assert issues["is_property_shortcut"].sum() == 128
    assert issues["property_shortcut_score"].between(0, 1).all()


def test_darkened_class_is_a_shortcut_named_by_brightness(tmp_path, feature_cache):
    ctx, findings = _shortcut(tmp_path, feature_cache, 0, "dark")
    (finding,) = findings
    ev = finding.evidence
    names = [row["property"] for row in ev["top_properties"]]
    assert "brightness" in names and set(names) <= LIGHT_PROPERTIES
    assert ev["accuracy"] == 123 / 128 and ev["gain_low"] >= 0.10
    assert ev["class_medians"]["a"]["brightness"] < 0.6 * ev["class_medians"]["b"]["brightness"]
    pp = property_predictions(ctx)
    assert sorted(finding.samples) == sorted(pp.sample_ids[pp.correct == 1.0])
    assert len(finding.samples) == 123


def test_random_classes_are_not_a_shortcut(tmp_path, feature_cache):
    flagged, accuracies = 0, []
    for seed in range(10):
        ctx, findings = _shortcut(tmp_path, feature_cache, seed, None)
        flagged += len(findings)
        accuracies.append(property_predictions(ctx).correct.mean())
        issues = issues_frame(ctx)
        assert issues["property_shortcut_score"].notna().sum() == 128 and not issues["is_property_shortcut"].any()
    assert flagged == 0
    assert 0.40 <= min(accuracies) and max(accuracies) <= 0.62


@pytest.fixture(scope="module")
def mnist_models(tmp_path_factory):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    n = 2000
    images, labels = mnist_arrays(n)
    base = tmp_path_factory.mktemp("mnist")
    root = base / "digits"
    ids = []
    for i, (img, label) in enumerate(zip(images, labels)):
        split = "train" if i < n // 2 else "test"
        folder = root / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
        ids.append(f"{split}/{label}/{i:05d}.png")
    with threadpool_limits(1):
        good = cross_val_predict(make_pipeline(PCA(40, random_state=0), LogisticRegression(C=0.1, max_iter=300)),
                                 images.reshape(n, -1) / 255.0, labels,
                                 cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    useless = np.random.default_rng(3).dirichlet(np.ones(10), n)
    dataset = read_folder(root)
    contexts = {}
    for name, probs in (("good", good), ("useless", useless)):
        table = pd.DataFrame(probs, columns=[f"prob_{c}" for c in range(10)])
        table.insert(0, "sample_id", ids)
        csv = base / f"{name}.csv"
        table.to_csv(csv, index=False)
        contexts[name] = Context(dataset, predictions=read_predictions(csv, dataset),
                                 feature_options={"cache_dir": base / "cache"})
    test = np.arange(n) >= n // 2
    return {"contexts": contexts, "labels": labels, "test": test, "good": good, "useless": useless}


def test_good_model_beats_every_baseline(mnist_models):
    ctx = mnist_models["contexts"]["good"]
    assert run_check(ModelVsBaseline(), ctx) == []
    test = mnist_models["test"]
    assert (mnist_models["good"][test].argmax(1) == mnist_models["labels"][test]).mean() > 0.85


def test_useless_model_is_flagged_with_exact_baselines(mnist_models):
    ctx = mnist_models["contexts"]["useless"]
    (finding,) = run_check(ModelVsBaseline(), ctx)
    labels, test = mnist_models["labels"], mnist_models["test"]
    train_counts = np.bincount(labels[~test], minlength=10)
    majority = int(train_counts.argmax())
    ev = finding.evidence
    assert (ev["split"], ev["n"], ev["baseline_source"], ev["majority_class"]) == ("test", 1000, "train", str(majority))
    rows = {row["baseline"]: row for row in ev["baselines"]}
    assert list(rows) == ["majority", "class_prior", "image_properties"]
    assert rows["majority"]["accuracy"] == np.mean(labels[test] == majority)
    prior = train_counts / train_counts.sum()
    assert rows["class_prior"]["accuracy"] == pytest.approx(float(prior @ np.bincount(labels[test], minlength=10)) / 1000,
                                                            abs=1e-12)
    model_accuracy = np.mean(mnist_models["useless"][test].argmax(1) == labels[test])
    assert ev["model_accuracy"] == model_accuracy
    for row in rows.values():
        assert row["model_accuracy"] == model_accuracy and row["n"] == 1000
        assert row["difference"] == pytest.approx(model_accuracy - row["accuracy"], abs=1e-12)
        assert row["low"] <= row["difference"] <= row["high"]
    # Chance-level accuracy: indistinguishable from the majority and prior guesses ...
    assert rows["majority"]["verdict"] == rows["class_prior"]["verdict"] == "not significantly different"
    assert rows["majority"]["p_value"] > 0.05
    # ... and significantly below image properties alone (ink amount tells a 1 from an 8).
    assert rows["image_properties"]["verdict"] == "worse" and rows["image_properties"]["high"] < 0
    assert finding.severity is Severity.ERROR
    assert finding.message.startswith(f"On the test split (1000 samples) the model's accuracy {model_accuracy:.3f} is "
                                      "significantly worse than a baseline: majority ")


def test_settings_checked(tmp_path):
    with pytest.raises(ValueError, match="accepts"):
        PropertyShortcut(min_gian=0.2)
    root = _two_classes(tmp_path / "d", 0, None)
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    ctx = Context(read_folder(root), feature_options={"cache_dir": tmp_path / "c"})
    assert run_check(ModelVsBaseline(), ctx) == []  # no predictions: nothing to compare
    # A corrupt image is left out of the property model (it has no properties), never a crash.
    assert run_check(PropertyShortcut(), ctx) == []
    scores = issues_frame(ctx)["property_shortcut_score"]
    assert scores.isna().sum() == 1 and np.isnan(scores["a/broken.jpg"]) and scores.notna().sum() == 128
    with pytest.raises(ValueError, match="unknown property model 'forest'"):
        run_check(PropertyShortcut(model="forest"), ctx)


def test_without_splits_all_labelled_samples_with_predictions_are_judged(tmp_path, feature_cache):
    root = _two_classes(tmp_path / "nosplit", 4, None)
    dataset = read_folder(root)
    ids = dataset.samples["sample_id"].tolist()
    labels = dataset.samples["label"].tolist()
    rng = np.random.default_rng(5)
    judged = sorted(rng.choice(len(ids), 100, replace=False))  # 28 samples have no prediction
    # Right on a random 55 of the judged samples, wrong on the other 45: accuracy 0.55, not clearly above 0.5.
    right = set(rng.permutation(100)[:55].tolist())
    probs = [[0.9, 0.1] if (labels[i] == "a") == (k in right) else [0.1, 0.9] for k, i in enumerate(judged)]
    table = pd.DataFrame(probs, columns=["prob_a", "prob_b"])
    table.insert(0, "sample_id", [ids[i] for i in judged])
    table.to_csv(tmp_path / "preds.csv", index=False)
    ctx = Context(dataset, predictions=read_predictions(tmp_path / "preds.csv", dataset),
                  feature_options={"cache_dir": feature_cache})
    (finding,) = run_check(ModelVsBaseline(), ctx)
    ev = finding.evidence
    assert (ev["split"], ev["n"], ev["baseline_source"], ev["majority_class"]) == ("all", 100, "all labels", "a")
    assert ev["model_accuracy"] == 0.55
    rows = {row["baseline"]: row for row in ev["baselines"]}
    assert rows["majority"]["accuracy"] == sum(labels[i] == "a" for i in judged) / 100
    # 64 photos per class: a prior guess is right half the time whatever the class.
    assert rows["class_prior"]["accuracy"] == 0.5
    assert rows["image_properties"]["n"] == 100
    assert finding.severity is Severity.WARNING
    assert {row["verdict"] for row in rows.values()} == {"not significantly different"}
    assert rows["image_properties"]["accuracy"] == 0.47
    assert finding.message.startswith("On all labelled samples with predictions (100 samples) the model's accuracy "
                                      "0.550 is not significantly better than a baseline: majority 0.500 (difference +0.050")
