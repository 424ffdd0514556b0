"""Real layouts load as users keep them (issue 9, section 2), on COCO128's photos and boxes:

- split folders with suffixes (``train2017``, ``val_2017``, ``images/train``) are splits, not classes;
  a class named like a split deeper down stays a class;
- a COCO folder (``annotations/instances_*.json`` beside ``train2017/``, ``val2017/``) loads every split,
  and a val that is a byte copy of train is reported as leakage, not as conflicting labels; several
  ``--coco JSON:IMAGES`` pairs do the same; sample ids are paths relative to the root;
- a COCO json whose images are not where it was told says where it looked and how to point at them;
- predictions files as users write them: ``path`` relative to the dataset, probabilities rounded to a
  few decimals, logits with ``--from-logits``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHARED, coco128_yolo_config, coco_images
from PIL import Image
from scipy.special import softmax
from typer.testing import CliRunner

from visionaudit.cli import app
from visionaudit.dataset import load_dataset, read_folder
from visionaudit.errors import SourceError
from visionaudit.predictors import read_predictions

runner = CliRunner()
DETECTION = SHARED / "coco128" / "object_detection"


def _coco_json(files: list[Path]) -> dict:
    """COCO128's own boxes (its YOLO labels, turned into pixels) for ``files``, as a COCO instances json."""
    names = yaml.safe_load((DETECTION / "config.yaml").read_text())["names"]
    names = names if isinstance(names, dict) else dict(enumerate(names))
    images, annotations = [], []
    for i, f in enumerate(files, 1):
        with Image.open(f) as im:
            w, h = im.size
        images.append({"id": i, "file_name": f.name, "width": w, "height": h})
        labels = DETECTION / "labels" / f.parent.name / f"{f.stem}.txt"
        for line in labels.read_text().splitlines() if labels.exists() else []:
            cls, cx, cy, bw, bh = (float(v) for v in line.split()[:5])
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(cls), "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": int(k), "name": n} for k, n in names.items()]}


def coco_copy(root: Path, n: int = 12) -> Path:
    """A COCO folder as COCO ships it, whose val2017 is a byte copy of train2017 (n COCO128 photos)."""
    files = coco_images("train2017")[:n]
    (root / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (root / split).mkdir()
        for f in files:
            shutil.copyfile(f, root / split / f.name)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(_coco_json(files)))
    return root


# ---------------------------------------------------------------- split folders

def test_split_folders_with_suffixes_are_splits_and_deeper_split_names_stay_classes(tmp_path: Path):
    files = coco_images("train2017")[:8]
    root = tmp_path / "data"
    for split, chunk in (("train2017", files[:4]), ("val_2017", files[4:])):
        for cls, f in zip(["train_station", "test", "train_station", "test"], chunk):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, root / split / cls / f.name)
    ds = load_dataset(root)
    s = ds.samples
    assert ds.splits == ["train", "val"]
    assert set(s["label"]) == {"train_station", "test"}
    assert s.loc[s["split"] == "val", "sample_id"].str.startswith("val_2017/").all()

    # At the top with no split folders beside it, 'train_station' is a class.
    flat = tmp_path / "flat"
    for cls, f in zip(["train_station", "bus"], files[:2]):
        (flat / cls).mkdir(parents=True)
        shutil.copyfile(f, flat / cls / f.name)
    ds = load_dataset(flat)
    assert ds.splits == [] and sorted(ds.samples["label"]) == ["bus", "train_station"]


def test_images_train_under_a_yolo_root_are_splits(tmp_path: Path):
    root = tmp_path / "export"
    for split, chunk in (("train", coco_images("train2017")[:3]), ("val", coco_images("val2017")[:2])):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for f in chunk:
            shutil.copyfile(f, root / "images" / split / f.name)
    ds = read_folder(root)
    assert ds.samples["split"].tolist() == ["train"] * 3 + ["val"] * 2
    assert ds.samples["label"].isna().all() and ds.samples["sample_id"][0].startswith("images/train/")
    # A Roboflow export keeps images/ under each split: unlabelled, not a class named "images".
    rf = tmp_path / "roboflow"
    for split, f in (("train", coco_images()[0]), ("valid", coco_images()[1])):
        (rf / split / "images").mkdir(parents=True)
        shutil.copyfile(f, rf / split / "images" / f.name)
    ds = read_folder(rf)
    assert ds.splits == ["train", "val"] and ds.samples["label"].isna().all()


# ---------------------------------------------------------------- COCO folders and pairs

def _findings(out: Path) -> dict[str, dict]:
    return {f["check"]: f for f in json.loads((out / "findings.json").read_text())["findings"]}


def test_scan_of_a_coco_folder_with_a_copied_val_reports_the_leak(tmp_path: Path):
    root = coco_copy(tmp_path / "coco", n=12)
    out = tmp_path / "out"
    res = runner.invoke(app, ["scan", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"])
    assert res.exit_code == 1, res.output
    doc = json.loads((out / "findings.json").read_text())
    assert doc["dataset"]["format"] == "coco" and doc["dataset"]["splits"] == {"train": 12, "val": 12}
    found = _findings(out)
    assert "duplicates.conflicting_labels" not in found
    leak = found["leakage.exact"]
    assert leak["severity"] == "error" and leak["evidence"]["split_pairs"] == {"train/val": 12}
    assert "train2017/000000000009.jpg" in leak["samples"] and "val2017/000000000009.jpg" in leak["samples"]
    # The boxes came with them: 12 photos' objects, once per split.
    ds = load_dataset(root)
    per_split = ds.objects.merge(ds.samples[["sample_id", "split"]]).groupby("split").size()
    assert per_split["train"] == per_split["val"] > 12


def test_several_coco_pairs_on_the_cli_load_as_one_dataset(tmp_path: Path):
    root = coco_copy(tmp_path / "coco", n=6)
    ann = root / "annotations"
    pairs = [f"{ann / 'instances_train2017.json'}:{root / 'train2017'}", f"{ann / 'instances_val2017.json'}"]
    out = tmp_path / "out"
    res = runner.invoke(app, ["scan", "--coco", pairs[0], "--coco", pairs[1], "--out", str(out),
                              "--cache-dir", str(tmp_path / "c"), "--quiet"])
    assert res.exit_code == 1, res.output
    assert _findings(out)["leakage.exact"]["evidence"]["split_pairs"] == {"train/val": 6}
    ds = load_dataset([(ann / "instances_train2017.json", root / "train2017"), (ann / "instances_val2017.json", None)])
    assert ds.samples["sample_id"].tolist() == ([f"train2017/{f.name}" for f in coco_images()[:6]]
                                                + [f"val2017/{f.name}" for f in coco_images()[:6]])
    assert ds.objects["sample_id"].str.startswith("val2017/").sum() == ds.objects["sample_id"].str.startswith("train2017/").sum()
    for bad, words in ((["scan"], "missing SOURCE"), (["scan", str(root), "--coco", pairs[0]], "not both"),
                       (["scan", "--coco", str(root / "train2017")], "expected JSON:IMAGES")):
        res = runner.invoke(app, [*bad, "--out", str(tmp_path / "o2")])
        assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output, res.output


def test_coco_json_without_images_finds_them_or_says_where_it_looked(tmp_path: Path):
    root = coco_copy(tmp_path / "coco", n=4)
    ds = load_dataset(root / "annotations" / "instances_val2017.json")
    assert ds.samples["path"].tolist() == [str(root / "val2017" / f.name) for f in coco_images()[:4]]
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copyfile(root / "annotations" / "instances_val2017.json", lone / "instances_val2017.json")
    with pytest.raises(SourceError) as err:
        load_dataset(lone / "instances_val2017.json")
    message = str(err.value)
    assert str(lone) in message and "none of the 4 image file(s)" in message and "--images FOLDER" in message
    res = runner.invoke(app, ["scan", str(lone / "instances_val2017.json"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--images" in res.output and "Traceback" not in res.output
    # Some missing: the finding says where they were looked for and how to point at the images.
    (root / "val2017" / coco_images()[0].name).unlink()
    res = runner.invoke(app, ["scan", str(root / "annotations" / "instances_val2017.json"), "--out", str(tmp_path / "o"),
                              "--cache-dir", str(tmp_path / "c"), "--quiet"])
    missing = _findings(tmp_path / "o")["integrity.decode_errors"]
    assert missing["message"].startswith(f"1 listed file(s) do not exist (looked for them in {root / 'val2017'}).")
    assert "--images FOLDER" in missing["message"]


def test_coco_files_that_disagree_on_categories_are_an_error(tmp_path: Path):
    root = coco_copy(tmp_path / "coco", n=2)
    val = root / "annotations" / "instances_val2017.json"
    data = json.loads(val.read_text())
    data["categories"][0]["name"] = "not a person"
    val.write_text(json.dumps(data))
    with pytest.raises(SourceError) as err:
        load_dataset(root)
    assert err.value.field == "categories" and "instances_val2017.json" in str(err.value)
    assert "'not a person' here but 'person' in" in str(err.value)


# ---------------------------------------------------------------- predictions files as users write them

@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, list[str]]:
    """12 COCO128 photos in three class folders under train/ and val/."""
    root = tmp_path / "data"
    files = coco_images("train2017")[:12]
    for i, f in enumerate(files):
        folder = root / ("train" if i < 8 else "val") / ["cat", "dog", "bird"][i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, folder / f.name)
    return root, ["bird", "cat", "dog"]


def test_path_column_relative_to_the_dataset_is_matched_as_sample_ids(photos, tmp_path: Path):
    root, classes = photos
    ds = load_dataset(root)
    probs = softmax(np.random.default_rng(0).normal(size=(len(ds), 3)), axis=1)
    frame = pd.DataFrame(probs, columns=classes)
    frame.insert(0, "path", ds.samples["sample_id"])            # 'train/cat/....jpg', relative to data/
    (tmp_path / "model").mkdir()
    path = tmp_path / "model" / "preds.csv"                     # not in the dataset's folder
    frame.to_csv(path, index=False)
    preds = read_predictions(path, ds)
    np.testing.assert_array_equal(preds.probs, probs)
    frame.loc[3, "path"] = "train/cat/nope.jpg"
    frame.to_csv(path, index=False)
    with pytest.raises(SourceError) as err:
        read_predictions(path, ds)
    assert str(err.value).startswith(f"{path}, line 5, field 'path': 1 paths are not in the dataset: 'train/cat/nope.jpg'")
    assert f"relative to the dataset's root {root}" in str(err.value)


def test_rounded_probabilities_are_renormalised_and_off_rows_name_file_and_line(photos, tmp_path: Path):
    root, classes = photos
    ds = load_dataset(root)
    probs = softmax(np.random.default_rng(1).normal(size=(len(ds), 3)) * 2, axis=1)
    path = tmp_path / "preds.csv"
    for places in (3, 4):
        rounded = probs.round(places)
        rounded[0] = [0.3333, 0.3333, 0.3333][:3] if places == 4 else [0.334, 0.334, 0.333]   # 0.9999 and 1.001
        lines = ["sample_id," + ",".join(classes)]
        lines += [",".join([sid, *(f"{v:.{places}f}" for v in row)]) for sid, row in zip(ds.samples["sample_id"], rounded)]
        path.write_text("\n".join(lines) + "\n")
        preds = read_predictions(path, ds)
        np.testing.assert_allclose(preds.probs.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(preds.probs, rounded / rounded.sum(axis=1, keepdims=True), rtol=1e-12)
        assert preds.notes and "renormalised" in preds.notes[0]
    # evaluate takes them: the metrics see rows that sum to 1 (before: "invalid P[0].sum()=1.001").
    res = runner.invoke(app, ["evaluate", str(root), "-p", str(path), "--out", str(tmp_path / "o"),
                              "--cache-dir", str(tmp_path / "c"), "--quiet", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    # Off by more than 3 values rounded to 3 decimals explain (0.0015 < 0.002): the file and line named.
    lines[3] = ",".join([ds.samples["sample_id"][2], "0.500", "0.300", "0.198"])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError) as err:
        read_predictions(path, ds)
    assert str(err.value).startswith(f"{path}, line 4: probabilities sum to 0.998, not 1, by more than rounding to "
                                     f"3 decimal(s) explains (±0.0015)")


def test_from_logits_on_the_cli_softmaxes_the_rows(photos, tmp_path: Path):
    root, classes = photos
    ds = load_dataset(root)
    logits = np.random.default_rng(2).normal(size=(len(ds), 3)) * 3
    logits[:8] = np.abs(logits[:8]) / np.abs(logits[:8]).sum(axis=1, keepdims=True)   # rows that look like probabilities
    frame = pd.DataFrame(logits, columns=classes)
    frame.insert(0, "sample_id", ds.samples["sample_id"])
    path = tmp_path / "logits.csv"
    frame.to_csv(path, index=False)
    args = ["evaluate", str(root), "-p", str(path), "--cache-dir", str(tmp_path / "c"), "--quiet", "--fail-on", "never"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and f"{path}, line 10" in res.output and "--from-logits" in res.output, res.output
    res = runner.invoke(app, [*args, "--from-logits", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "o" / "findings.json").read_text())["run"]["predictions"]
    assert info["notes"] == [] and info["with_prediction"] == len(ds)
    np.testing.assert_allclose(read_predictions(path, ds, from_logits=True).probs, softmax(logits, axis=1), rtol=1e-12)


def test_rows_past_the_first_2000_off_by_rounding_are_judged_by_the_file_s_decimals(tmp_path: Path):
    from visionaudit.dataset import Dataset, make_samples

    n, classes = 2500, ["a", "b", "c"]
    ds = Dataset(samples=make_samples([{"sample_id": f"{i}.jpg", "path": str(tmp_path / f"{i}.jpg"), "label": "a",
                                        "split": None} for i in range(n)]), source="x", format="manifest", classes=classes)
    rows = np.tile([0.33, 0.33, 0.33], (n, 1))            # each off by 0.01: rounding to 2 decimals explains 0.015
    path = tmp_path / "p.csv"
    frame = pd.DataFrame(rows, columns=classes)
    frame.insert(0, "sample_id", ds.samples["sample_id"])
    frame.to_csv(path, index=False, float_format="%.2f")
    np.testing.assert_allclose(read_predictions(path, ds).probs, 1 / 3, rtol=1e-12)
    frame.loc[2300, classes] = [0.30, 0.30, 0.38]          # 0.98: more than 0.015
    frame.to_csv(path, index=False, float_format="%.2f")
    with pytest.raises(SourceError) as err:
        read_predictions(path, ds, from_logits=False)
    assert str(err.value).startswith(f"{path}, line 2302: probabilities sum to 0.98, not 1, by more than rounding to 2")


def test_a_folder_holding_a_yolo_data_yaml_loads_as_yolo(tmp_path: Path):
    """A YOLO export scanned as a folder (Roboflow's and Ultralytics' layout: data.yaml at the top) reads
    its labels: COCO128's object-detection folder, whose only yaml is config.yaml, gives the same
    samples and objects as the yaml itself, and a data.yaml beside another yaml is still found."""
    config = coco128_yolo_config(tmp_path)
    from visionaudit.dataset.yolo import read_yolo, yolo_layout

    folder = load_dataset(config.parent)
    direct = read_yolo(config)
    assert folder.task.value == "detection" and len(folder.samples) == 256 and len(folder.objects) == 1827
    pd.testing.assert_frame_equal(folder.objects, direct.objects)
    assert list(folder.samples.index) == list(direct.samples.index)
    assert yolo_layout(tmp_path) is None                       # no yaml at all: a plain folder
    other = tmp_path / "export"
    other.mkdir()
    (other / "data.yaml").write_text("train: images\nnames: [a]\n")
    (other / "hyp.yaml").write_text("lr0: 0.01\n")
    assert yolo_layout(other) == other / "data.yaml"
