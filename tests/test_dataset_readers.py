"""Manifest (CSV/TSV/Parquet), COCO and YOLO readers: exact tables from real data, and errors that name
the file and the line or field for every kind of malformed input."""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SHARED, coco128_yolo_config, coco_images

from visionaudit.dataset import load_dataset
from visionaudit.dataset.coco import read_coco
from visionaudit.dataset.manifest import read_manifest, unique_ids
from visionaudit.dataset.model import Task
from visionaudit.dataset.yolo import label_path, read_yolo
from visionaudit.errors import SourceError

COCO_GT = SHARED / "coco_eval" / "faster_coco_eval_tests" / "cocoapi" / "instances_val2014_100.json"
COCO128 = SHARED / "coco128"


def _error(fn, *args, **kwargs) -> SourceError:
    with pytest.raises(SourceError) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- manifests

def make_photo_dir(root: Path) -> Path:
    """Three real COCO photos in ``root``, one under a folder and name with spaces and non-ASCII letters."""
    src = coco_images("train2017")[:3]
    (root / "sub dir").mkdir(parents=True)
    shutil.copyfile(src[0], root / "a.jpg")
    shutil.copyfile(src[1], root / "sub dir" / "ñandú 1.jpg")
    shutil.copyfile(src[2], root / "c.jpg")
    return root


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    return make_photo_dir(tmp_path / "data")


def test_manifest_aliases_splits_ids_lines_and_metadata(photo_dir: Path):
    (photo_dir / "m.csv").write_text(
        "File,Class,Split,ID,patient,width\n"
        "a.jpg,cat,Training,,007,640\n"
        "sub dir/ñandú 1.jpg,dog,valid,n1,008,480\n"
        "\n"
        "gone.jpg,cat,dev,,009,\n"
        "a.jpg,dog,testing,,007,640\n"
        f"{photo_dir / 'c.jpg'},,,,010,1\n",
        encoding="utf-8")
    ds = read_manifest(photo_dir / "m.csv")
    s = ds.samples
    assert s["sample_id"].tolist() == ["a.jpg", "n1", "gone.jpg", "a.jpg@line 6", str(photo_dir / "c.jpg")]
    assert s["path"].tolist() == [str(photo_dir / "a.jpg"), str(photo_dir / "sub dir" / "ñandú 1.jpg"),
                                  str(photo_dir / "gone.jpg"), str(photo_dir / "a.jpg"), str(photo_dir / "c.jpg")]
    assert s["label"].tolist() == ["cat", "dog", "cat", "dog", None]
    assert s["split"].tolist() == ["train", "val", "val", "test", None]
    # The blank line 4 is counted: source lines are the lines a text editor shows.
    assert s["source_line"].tolist() == [2, 3, 5, 6, 7]
    # Metadata stays text ('007' is a patient id, not 7); 'width' would clash with the measured width.
    assert s["patient"].tolist() == ["007", "008", "009", "007", "010"]
    assert ds.metadata_columns == ["patient", "manifest_width"]
    assert s["manifest_width"].tolist()[:2] == ["640", "480"]
    assert "width" not in s.columns and any("manifest_width" in n for n in ds.notes)
    assert ds.format == "manifest" and ds.root == photo_dir


def test_tsv_semicolon_and_crlf_manifests_read_the_same(photo_dir: Path):
    rows = [("path", "label"), ("a.jpg", "x"), ("sub dir/ñandú 1.jpg", "y")]
    (photo_dir / "m.tsv").write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    (photo_dir / "semi.csv").write_bytes(("\r\n".join(";".join(r) for r in rows) + "\r\n").encode("utf-8-sig"))
    for name in ("m.tsv", "semi.csv"):
        ds = load_dataset(photo_dir / name)
        assert ds.samples["sample_id"].tolist() == ["a.jpg", "sub dir/ñandú 1.jpg"]
        assert ds.samples["label"].tolist() == ["x", "y"]
        assert ds.samples["source_line"].tolist() == [2, 3]


def test_parquet_manifest_keeps_types_rows_and_ids(photo_dir: Path):
    table = pa.table({
        "filepath": ["a.jpg", "c.jpg", "a.jpg"],
        "label": pa.array([3, None, 5], type=pa.int64()),
        "sample_id": pa.array([10, 11, None], type=pa.int64()),
        "split": ["validation", "train", None],
        "camera": ["c1", "c2", "c1"],
    })
    pq.write_table(table, photo_dir / "m.parquet")
    ds = load_dataset(photo_dir / "m.parquet")
    s = ds.samples
    # Nullable ints stay ints ('10', not '10.0'); the id-less repeat of a.jpg gets its row number.
    assert s["sample_id"].tolist() == ["10", "11", "a.jpg"]
    assert s["label"].tolist() == ["3", None, "5"]
    assert s["split"].tolist() == ["val", "train", None]
    assert s["source_line"].tolist() == [1, 2, 3]
    assert ds.metadata_columns == ["camera"]


def test_parquet_split_of_wrong_type_names_row_and_column(photo_dir: Path):
    pq.write_table(pa.table({"path": ["a.jpg", "c.jpg"], "split": [0, 1]}), photo_dir / "bad.parquet")
    err = _error(read_manifest, photo_dir / "bad.parquet")
    assert "bad.parquet" in str(err) and "row 1" in str(err) and "'split'" in str(err)


def test_manifest_without_path_column_lists_the_columns(tmp_path: Path):
    (tmp_path / "nopath.csv").write_text("name,label\na.jpg,cat\n")
    err = _error(read_manifest, tmp_path / "nopath.csv")
    assert str(err) == (f"{tmp_path / 'nopath.csv'}, line 1: no path column: expected one of path, filepath, file, "
                        "filename, image; found columns: name, label")


def test_unterminated_quote_names_the_line_where_the_record_starts(tmp_path: Path):
    (tmp_path / "quote.csv").write_text('path,label\na.jpg,cat\nb.jpg,dog\n"c.jpg,cat\nd.jpg,dog\n')
    err = _error(read_manifest, tmp_path / "quote.csv")
    assert "quote.csv" in str(err) and err.line == 4 and "line 4" in str(err)
    assert "quote that is never closed" in str(err)


def test_quote_closed_on_a_later_line_is_a_path_with_a_line_break(tmp_path: Path):
    (tmp_path / "late.csv").write_text('path,label\n"a.jpg,cat\nb.jpg",dog\n')
    err = _error(read_manifest, tmp_path / "late.csv")
    assert err.line == 2 and err.field == "path" and "line break" in str(err)


@pytest.mark.parametrize("body, line, field, words", [
    ("path,label\na.jpg,cat\n,dog\n", 3, "path", "empty path value"),
    ("path,id\na.jpg,k1\nb.jpg,k2\nc.jpg,k1\n", 4, "id", "duplicate id 'k1' (first on line 2)"),
    ("path,label\na.jpg,cat\nb,c.jpg,dog\n", 3, None, "expected 2 fields like the header on line 1, got 3"),
    ("path,label\na.jpg\n", 2, None, "expected 2 fields like the header on line 1, got 1"),
    ("path,label,Label\na.jpg,x,y\n", 1, "Label", "appears twice"),
])
def test_malformed_manifest_rows_name_line_and_field(tmp_path: Path, body, line, field, words):
    (tmp_path / "m.csv").write_text(body)
    err = _error(read_manifest, tmp_path / "m.csv")
    assert err.line == line and err.field == field and words in str(err) and "m.csv" in str(err)


def test_non_utf8_and_empty_manifests(tmp_path: Path):
    (tmp_path / "latin.csv").write_bytes("path\na.jpg\nb\xe9.jpg\n".encode("latin-1"))
    err = _error(read_manifest, tmp_path / "latin.csv")
    assert err.line == 3 and "UTF-8" in str(err)
    for body in ("", "\n\n", " , \n,\n"):
        (tmp_path / "empty.csv").write_text(body)
        assert "empty manifest" in str(_error(read_manifest, tmp_path / "empty.csv"))
    (tmp_path / "header.csv").write_text("path,label\n")
    assert "no rows" in str(_error(read_manifest, tmp_path / "header.csv"))


def test_unique_ids_suffix_repeats_without_colliding():
    assert unique_ids(["a", "a", "a@x", "a"], ["x", "y", "z", "x"]) == ["a", "a@y", "a@x", "a@x#2"]


# ---------------------------------------------------------------- COCO

@pytest.mark.skipif(not COCO_GT.exists(), reason=f"COCO evaluation fixture not found at {COCO_GT}")
def test_coco_ground_truth_counts_and_boxes_match_the_json():
    data = json.loads(COCO_GT.read_text())
    ds = read_coco(COCO_GT, split="validation")
    assert (len(ds), len(ds.objects), len(ds.classes)) == (100, 839, 80)
    assert ds.task == Task.SEGMENTATION and ds.format == "coco"
    assert ds.samples["sample_id"].tolist() == [im["file_name"] for im in data["images"]]
    assert set(ds.samples["split"]) == {"val"} and ds.samples["label"].isna().all()
    # No image file ships with this json: every row is kept, pointing where the image would be.
    assert ds.samples["path"].tolist() == [str(COCO_GT.parent / im["file_name"]) for im in data["images"]]
    assert not any(os.path.exists(p) for p in ds.samples["path"])
    names = {c["id"]: c["name"] for c in data["categories"]}
    assert ds.classes == [names[k] for k in sorted(names)]
    assert Counter(ds.objects["label"]) == Counter(names[a["category_id"]] for a in data["annotations"])
    assert ds.objects["label"].nunique() == 70 and int(ds.objects["iscrowd"].sum()) == 9
    by_id = ds.objects.set_index("annotation_id")
    file_of = {im["id"]: im["file_name"] for im in data["images"]}
    for ann in data["annotations"][::97]:
        row = by_id.loc[ann["id"]]
        assert [row.x, row.y, row.w, row.h] == ann["bbox"] and row.area == ann["area"]
        assert row.sample_id == file_of[ann["image_id"]] and row.category_id == ann["category_id"]
    assert ds.summary()["objects"] == 839


def _mini_coco(tmp_path: Path) -> dict:
    images = tmp_path / "imgs"
    images.mkdir()
    src = coco_images("val2017")[:2]
    shutil.copyfile(src[0], images / "one.jpg")
    shutil.copyfile(src[1], images / "two two.jpg")
    return {
        "images": [{"id": 1, "file_name": "one.jpg", "width": 640, "height": 480},
                   {"id": 2, "file_name": "two two.jpg"},
                   {"id": 3, "file_name": "one.jpg"}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 5, "bbox": [1, 2, 30, 40]},
                        {"id": 8, "image_id": 3, "category_id": 9, "bbox": [0, 0, 10.5, 4], "area": 40.0, "iscrowd": 1}],
        "categories": [{"id": 9, "name": "dog"}, {"id": 5, "name": "cat"}],
    }


def test_coco_with_images_folder_duplicate_files_and_defaults(tmp_path: Path):
    (tmp_path / "ann.json").write_text(json.dumps(_mini_coco(tmp_path)))
    ds = load_dataset(tmp_path / "ann.json", images=tmp_path / "imgs")
    s = ds.samples
    assert s["sample_id"].tolist() == ["one.jpg", "two two.jpg", "one.jpg@id 3"]
    assert s["path"].tolist() == [str(tmp_path / "imgs" / n) for n in ("one.jpg", "two two.jpg", "one.jpg")]
    assert s["image_id"].tolist() == [1, 2, 3] and s["split"].isna().all()
    assert s["declared_width"].tolist()[0] == 640
    o = ds.objects
    assert o["sample_id"].tolist() == ["one.jpg", "one.jpg@id 3"]
    assert o["label"].tolist() == ["cat", "dog"]
    assert o["area"].tolist() == [1200.0, 40.0] and o["iscrowd"].tolist() == [False, True]
    assert ds.classes == ["cat", "dog"]


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["annotations"][1].update(bbox=[0, 0, 10]), "annotations[1].bbox",
     "expected 4 numbers [x, y, width, height], got [0, 0, 10]"),
    (lambda d: d["annotations"][0].update(bbox=[0, "1", 2, 3]), "annotations[0].bbox", "expected 4 numbers"),
    (lambda d: d["annotations"][1].update(image_id=99), "annotations[1].image_id", "unknown image id 99"),
    (lambda d: d["annotations"][0].update(category_id=1), "annotations[0].category_id", "unknown category id 1"),
    (lambda d: d["images"][2].update(id=1), "images[2].id", "duplicate image id 1 (also images[0])"),
    (lambda d: d["images"][1].pop("file_name"), "images[1].file_name", "missing 'file_name'"),
    (lambda d: d["categories"][1].update(id=9), "categories[1].id", "duplicate category id 9"),
    (lambda d: d.pop("images"), "images", "missing 'images'"),
    (lambda d: d["annotations"][0].update(iscrowd=2), "annotations[0].iscrowd", "expected 0 or 1"),
])
def test_bad_coco_fields_are_named_by_json_path(tmp_path: Path, mutate, field, words):
    data = _mini_coco(tmp_path)
    mutate(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    err = _error(read_coco, tmp_path / "bad.json")
    assert err.field == field and words in str(err) and "bad.json" in str(err)


def test_truncated_coco_json_names_line_and_column(tmp_path: Path):
    text = json.dumps(_mini_coco(tmp_path), indent=1)
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    err = _error(read_coco, tmp_path / "cut.json")
    with pytest.raises(json.JSONDecodeError) as ref:
        json.loads(text[: len(text) // 2])
    assert err.line == ref.value.lineno and f"line {ref.value.lineno}" in str(err)
    assert f"column {ref.value.colno}" in str(err) and "cut.json" in str(err)


# ---------------------------------------------------------------- YOLO

@pytest.fixture
def coco128_yolo(tmp_path: Path) -> Path:
    """coco128/object_detection/config.yaml (see :func:`conftest.coco128_yolo_config`)."""
    return coco128_yolo_config(tmp_path)


def test_yolo_coco128_counts_and_boxes(coco128_yolo: Path):
    ds = load_dataset(coco128_yolo)
    assert ds.format == "yolo" and ds.task == Task.DETECTION and len(ds.classes) == 80
    assert ds.samples["split"].value_counts().to_dict() == {"train": 128, "val": 128}
    labels_dir = COCO128 / "object_detection" / "labels"
    expected: Counter = Counter()
    first = {}
    for split in ("train2017", "val2017"):
        for image in sorted((COCO128 / "images" / split).glob("*.jpg")):
            label_file = labels_dir / split / f"{image.stem}.txt"
            if label_file.exists():
                lines = [ln.split() for ln in label_file.read_text().splitlines() if ln.strip()]
                expected[f"images/{split}/{image.name}"] = len(lines)
                first.setdefault(f"images/{split}/{image.name}", lines[0] if lines else None)
    assert len(ds.objects) == sum(expected.values()) == 1827
    assert Counter(ds.objects["sample_id"]) == +expected
    # Two photos have no label file; they are samples without objects.
    assert ds.samples["label_file"].isna().sum() == 2
    sid = "images/train2017/000000000009.jpg"
    cls, cx, cy, w, h = (float(v) for v in first[sid])
    row = ds.objects[ds.objects["sample_id"] == sid].iloc[0]
    assert (row.object_id, row.category_id, row.label, row.line) == (f"{sid}#0", int(cls), ds.classes[int(cls)], 1)
    # Pixels of the 640x480 photo, read from its header; COCO128's photos carry no EXIF orientation.
    sample = ds.samples.set_index("sample_id").loc[sid]
    assert (sample.image_width, sample.image_height) == (640, 480) and set(ds.samples["exif_orientation"]) == {1}
    assert (row.x, row.y, row.w, row.h) == pytest.approx(((cx - w / 2) * 640, (cy - h / 2) * 480, w * 640, h * 480),
                                                         abs=1e-9)


def _yolo_tree(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    src = coco_images("train2017")[:3]
    for split, names in (("train", ["a", "b"]), ("val", ["c"])):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for name, f in zip(names, src if split == "train" else src[2:]):
            shutil.copyfile(f, root / "images" / split / f"{name}.jpg")
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n\n2 0.1 0.2 0.3 0.2 0.2 0.6\n")
    (root / "labels" / "train" / "b.txt").write_text("1 1.2 0.5 0.2 0.2\n")
    (root / "labels" / "val" / "c.txt").write_text("")
    return root


def test_yolo_polygons_lists_and_out_of_image_boxes(tmp_path: Path):
    root = _yolo_tree(tmp_path)
    (root / "val_list.txt").write_text("./images/val/c.jpg\nimages/train/a.jpg\nimages/missing.jpg\n")
    (root / "data.yaml").write_text("path: .\ntrain: [images/train]\nval: val_list.txt\n"
                                    "names: {0: cat, 1: dog, 2: bird}\n")
    ds = read_yolo(root / "data.yaml")
    s = ds.samples
    assert s["sample_id"].tolist() == ["images/train/a.jpg", "images/train/b.jpg", "images/val/c.jpg",
                                       "images/train/a.jpg@val", "images/missing.jpg"]
    assert s["split"].tolist() == ["train", "train", "val", "val", "val"]
    assert s["label_file"].tolist()[:4] == [str(root / "labels/train/a.txt"), str(root / "labels/train/b.txt"),
                                            str(root / "labels/val/c.txt"), str(root / "labels/train/a.txt")]
    assert pd.isna(s["label_file"].iloc[4])
    o = ds.objects
    assert o["sample_id"].tolist() == ["images/train/a.jpg"] * 2 + ["images/train/b.jpg"] + ["images/train/a.jpg@val"] * 2
    assert o["label"].tolist() == ["cat", "bird", "dog", "cat", "bird"]
    assert o["object_id"].tolist() == ["images/train/a.jpg#0", "images/train/a.jpg#1", "images/train/b.jpg#0",
                                       "images/train/a.jpg@val#0", "images/train/a.jpg@val#1"]
    assert o["shape"].tolist()[:3] == ["box", "polygon", "box"] and o["line"].tolist()[:3] == [1, 3, 1]
    # a.jpg is 640x480: the polygon (0.1, 0.2) (0.3, 0.2) (0.2, 0.6) in pixels, its box its bounds.
    assert o.iloc[1][["x", "y", "w", "h"]].tolist() == pytest.approx([64, 96, 128, 192])
    assert o.iloc[1]["polygon"] == [pytest.approx([64, 96, 192, 96, 128, 288])] and o.iloc[0]["polygon"] is None
    assert o["area"].tolist()[:2] == pytest.approx([128 * 192, 128 * 192 / 2])
    # A box reaching past the right edge of the 640x426 b.jpg is kept as written: judging it is a
    # detection check's job.
    assert o.iloc[2][["x", "y", "w", "h"]].tolist() == pytest.approx([704, 170.4, 128, 85.2])
    assert ds.task == Task.SEGMENTATION
    assert ds.classes == ["cat", "dog", "bird"]


def test_yolo_keypoint_rows_use_the_box(tmp_path: Path):
    root = _yolo_tree(tmp_path)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4 0.1 0.1 0.2 0.2\n")
    (root / "labels" / "train" / "b.txt").write_text("0 0.5 0.5 0.2 0.4 0.1 0.1 0.2\n")
    (root / "data.yaml").write_text("train: images/train\nkpt_shape: [2, 2]\nnames: [person]\n")
    err = _error(read_yolo, root / "data.yaml")
    assert err.path == str(root / "labels/train/b.txt") and err.line == 1 and "expected 9 values" in str(err)
    (root / "labels" / "train" / "b.txt").write_text("")
    ds = read_yolo(root / "data.yaml")
    assert len(ds.objects) == 1
    assert ds.objects.iloc[0][["x", "y", "w", "h"]].tolist() == pytest.approx([256, 144, 128, 192])


@pytest.mark.parametrize("content, words", [
    ("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n", "expected 5 values (class cx cy w h) or a polygon"),
    ("0 0.5 0.5 0.2 0.2\n\n1 0.5 abc 0.2 0.2\n", "'abc' is not a number"),
    ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n", "class id 3 is not one of the data.yaml names' ids (0-2)"),
    ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n1.5 0.5 0.5 0.2 0.2\n", "class id 1.5"),
    ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n", "not a finite number"),
])
def test_malformed_label_line_names_file_and_line(tmp_path: Path, content, words):
    root = _yolo_tree(tmp_path)
    bad = root / "labels" / "train" / "b.txt"
    bad.write_text(content)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog, bird]\n")
    err = _error(read_yolo, root / "data.yaml")
    assert str(err).startswith(f"{bad}, line 3: ") and words in str(err)


@pytest.mark.parametrize("yaml_text, field, words", [
    ("train: images/nope\nnames: [a]\n", "train", "'images/nope' does not exist"),
    ("train: images/train\nnames: 5\n", "names", "expected a list or a mapping"),
    ("train: images/train\nnames: [a, b]\nnc: 3\n", "nc", "nc is 3 but 'names' lists 2 classes"),
    ("names: [a]\n", None, "none of 'train', 'val', 'test' is set"),
    ("train: {a: 1}\nnames: [a]\n", "train", "expected a folder, a .txt list"),
])
def test_bad_data_yaml_names_the_field(tmp_path: Path, yaml_text, field, words):
    root = _yolo_tree(tmp_path)
    (root / "data.yaml").write_text(yaml_text)
    err = _error(read_yolo, root / "data.yaml")
    assert err.field == field and words in str(err) and "data.yaml" in str(err)


def test_invalid_yaml_names_the_line(tmp_path: Path):
    root = _yolo_tree(tmp_path)
    (root / "data.yaml").write_text("train: images/train\nnames: [a, b\nval: x\n")
    err = _error(read_yolo, root / "data.yaml")
    assert err.line == 3 and "invalid YAML" in str(err)


def test_symlink_stored_as_plain_file_is_named(tmp_path: Path):
    root = _yolo_tree(tmp_path)
    (root / "link").write_text("images")
    (root / "data.yaml").write_text("train: link/train\nnames: [a]\n")
    err = _error(read_yolo, root / "data.yaml")
    assert f"{root / 'link'} is a file, not a folder" in str(err)


def test_label_path_follows_ultralytics():
    assert label_path("/d/images/x/images/train/a.b.jpg") == "/d/images/x/labels/train/a.b.txt"
    assert label_path("/d/pics/a.png") == "/d/pics/a.txt"
