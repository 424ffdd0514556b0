"""One object table for every reader (issue 8, acceptance 3): the same COCO128 YOLO-seg objects written
as COCO (with segmentation), YOLO-seg and Pascal VOC load to the same table, in pixels; plus the table's
own rules, the VOC reader, crowd RLE masks, errors that name the file and the element, and the Task."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHARED, coco_images
from PIL import Image, ImageOps

from visionaudit.dataset import Dataset, load_dataset, make_samples
from visionaudit.dataset.coco import read_coco
from visionaudit.dataset.model import OBJECT_COLUMNS, Task, object_table, rle_counts
from visionaudit.dataset.voc import read_voc, voc_layout
from visionaudit.dataset.yolo import displayed_size, read_yolo
from visionaudit.errors import SourceError

SEG = SHARED / "coco128" / "instance_segmentation"
COCO_GT = SHARED / "coco_eval" / "faster_coco_eval_tests" / "cocoapi" / "instances_val2014_100.json"
SEGM_RESULTS = SHARED / "coco_eval" / "cocoapi_results" / "instances_val2014_fakesegm100_results.json"
#: COCO128 train photos of three sizes (landscape 640x480 and 640x426, portrait 481x640, small 381x500).
PICKED = ("000000000009", "000000000025", "000000000036", "000000000049")
#: Re-saved with its pixels turned a quarter turn and EXIF orientation 6, so it displays as before.
ROTATED = "000000000025"
EXIF_ORIENTATION = 0x0112


def _error(fn, *args, **kwargs) -> SourceError:
    with pytest.raises(SourceError) as info:
        fn(*args, **kwargs)
    return info.value


def _shoelace(flat: list[float]) -> float:
    x, y = np.asarray(flat[0::2]), np.asarray(flat[1::2])
    return abs(float(np.sum(x * np.roll(y, -1) - y * np.roll(x, -1)))) / 2


def _voc_xml(file_name: str, size: tuple[int, int], objects: list[dict]) -> str:
    body = "".join(
        f"<object><name>{o['label']}</name><pose>Unspecified</pose><truncated>{o.get('truncated', 0)}</truncated>"
        f"<difficult>{o.get('difficult', 0)}</difficult><bndbox><xmin>{o['xmin']}</xmin><ymin>{o['ymin']}</ymin>"
        f"<xmax>{o['xmax']}</xmax><ymax>{o['ymax']}</ymax></bndbox></object>" for o in objects)
    return (f"<annotation><folder>JPEGImages</folder><filename>{file_name}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{body}</annotation>")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    """COCO128's YOLO-seg polygons of the PICKED photos in pixels, written at full precision as a COCO
    json, a YOLO-seg dataset and a VOC devkit folder (VOC has boxes only, in whole pixels)."""
    if not (SEG / "labels" / "train2017").is_dir():
        pytest.skip("COCO128 instance segmentation labels not found")
    names = yaml.safe_load((SEG / "config.yaml").read_text())["names"]
    tmp = tmp_path_factory.mktemp("written")
    images = tmp / "images"
    images.mkdir()
    objects, sizes = [], {}
    for stem in PICKED:
        source = SHARED / "coco128" / "images" / "train2017" / f"{stem}.jpg"
        with Image.open(source) as im:
            sizes[stem] = width, height = im.size
            if stem == ROTATED:
                exif = Image.Exif()
                exif[EXIF_ORIENTATION] = 6  # "turn 90 degrees clockwise to display": store it turned back
                im.transpose(Image.Transpose.ROTATE_90).save(images / f"{stem}.jpg", quality=95, exif=exif)
            else:
                shutil.copyfile(source, images / f"{stem}.jpg")
        for line in (SEG / "labels" / "train2017" / f"{stem}.txt").read_text().splitlines():
            cls, *values = line.split()
            flat = [float(v) * (width if i % 2 == 0 else height) for i, v in enumerate(values)]
            xs, ys = flat[0::2], flat[1::2]
            objects.append({"stem": stem, "class_id": int(cls), "label": names[int(cls)], "polygon": flat,
                            "box": (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)),
                            "area": _shoelace(flat)})
    with Image.open(images / f"{ROTATED}.jpg") as im:
        assert im.size == sizes[ROTATED][::-1] and ImageOps.exif_transpose(im).size == sizes[ROTATED]

    coco = {"images": [{"id": i, "file_name": f"{stem}.jpg", "width": sizes[stem][0], "height": sizes[stem][1]}
                       for i, stem in enumerate(PICKED, 1)],
            "annotations": [{"id": 100 + k, "image_id": PICKED.index(o["stem"]) + 1, "category_id": o["class_id"],
                             "bbox": list(o["box"]), "segmentation": [o["polygon"]], "area": o["area"], "iscrowd": 0}
                            for k, o in enumerate(objects)],
            "categories": [{"id": k, "name": v} for k, v in names.items()]}
    (tmp / "instances.json").write_text(json.dumps(coco))

    yolo = tmp / "yolo"
    shutil.copytree(images, yolo / "images")
    (yolo / "labels").mkdir()
    for stem in PICKED:
        width, height = sizes[stem]
        lines = [" ".join([str(o["class_id"])] + [repr(v / (width if i % 2 == 0 else height))
                                                   for i, v in enumerate(o["polygon"])])
                 for o in objects if o["stem"] == stem]
        (yolo / "labels" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    # The dataset root is images/, so sample ids are the file names, as in the COCO json and VOC.
    (yolo / "data.yaml").write_text(yaml.safe_dump({"path": "images", "train": ".", "names": names}))

    voc = tmp / "voc"
    shutil.copytree(images, voc / "JPEGImages")
    (voc / "Annotations").mkdir()
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "train.txt").write_text("\n".join(PICKED) + "\n")
    for stem in PICKED:
        mine = [o for o in objects if o["stem"] == stem]
        # 1-based inclusive pixel indices: the smallest whole-pixel box around the continuous one.
        boxes = [{"label": o["label"], "xmin": math.floor(o["box"][0]) + 1, "ymin": math.floor(o["box"][1]) + 1,
                  "xmax": math.ceil(o["box"][0] + o["box"][2]), "ymax": math.ceil(o["box"][1] + o["box"][3]),
                  "difficult": int(k == 1), "truncated": int(o["box"][0] == 0)} for k, o in enumerate(mine)]
        (voc / "Annotations" / f"{stem}.xml").write_text(_voc_xml(f"{stem}.jpg", sizes[stem], boxes))
    return {"objects": objects, "sizes": sizes, "coco": tmp / "instances.json", "images": images,
            "yolo": yolo / "data.yaml", "voc": voc}


def test_coco_yolo_seg_and_voc_load_to_the_same_object_table(written):
    coco = read_coco(written["coco"], images=written["images"])
    yolo = load_dataset(written["yolo"])
    voc = load_dataset(written["voc"])
    assert (coco.format, yolo.format, voc.format) == ("coco", "yolo", "voc")
    objects = written["objects"]
    ids, per_stem = [], {}
    for o in objects:
        ids.append(f"{o['stem']}.jpg#{per_stem.get(o['stem'], 0)}")
        per_stem[o["stem"]] = per_stem.get(o["stem"], 0) + 1
    assert len(objects) == 21 and ids[:2] == ["000000000009.jpg#0", "000000000009.jpg#1"]
    box = np.array([o["box"] for o in objects])
    for ds in (coco, yolo, voc):
        t = ds.objects
        assert list(t.columns[:len(OBJECT_COLUMNS)]) == list(OBJECT_COLUMNS)
        assert t["object_id"].tolist() == ids
        assert t["sample_id"].tolist() == [f"{o['stem']}.jpg" for o in objects]
        assert t["label"].tolist() == [o["label"] for o in objects]
        assert not t["iscrowd"].any() and t["rle"].isna().all()

    # COCO and YOLO-seg keep the polygons, in pixels, and agree to 1e-6 with each other and the source.
    for ds in (coco, yolo):
        t = ds.objects
        assert t["category_id"].tolist() == [o["class_id"] for o in objects]
        np.testing.assert_allclose(t[["x", "y", "w", "h"]].to_numpy(), box, rtol=0, atol=1e-6)
        for got, o in zip(t["polygon"], objects):
            assert len(got) == 1
            np.testing.assert_allclose(got[0], o["polygon"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(t["area"], [o["area"] for o in objects], rtol=1e-9)
        assert ds.task == Task.SEGMENTATION
    pd.testing.assert_frame_equal(coco.objects[list(OBJECT_COLUMNS)].drop(columns="polygon"),
                                  yolo.objects[list(OBJECT_COLUMNS)].drop(columns="polygon"), check_exact=False,
                                  atol=1e-6, rtol=0)

    # VOC: boxes only, to its whole pixels (1-based inclusive indices read as x = xmin - 1, w = xmax - xmin + 1).
    t = voc.objects
    whole = np.column_stack([np.floor(box[:, 0]), np.floor(box[:, 1]), np.ceil(box[:, 0] + box[:, 2]) - np.floor(box[:, 0]),
                             np.ceil(box[:, 1] + box[:, 3]) - np.floor(box[:, 1])])
    assert t[["x", "y", "w", "h"]].to_numpy().tolist() == whole.tolist()
    assert np.abs(t[["x", "y", "w", "h"]].to_numpy() - box).max() < 2
    assert t["polygon"].isna().all() and t["category_id"].isna().all()
    assert t["area"].tolist() == (whole[:, 2] * whole[:, 3]).tolist()
    assert t["difficult"].tolist() == [k == 1 for stem in PICKED for k in range(per_stem[stem])]
    assert t["truncated"].tolist() == [o["box"][0] == 0 for o in objects] and t["truncated"].any()
    assert voc.task == Task.DETECTION and voc.samples["split"].tolist() == ["train"] * 4
    s = voc.samples.set_index("sample_id")
    assert s.loc[f"{ROTATED}.jpg", "declared_width"] == 640 and s.loc[f"{ROTATED}.jpg", "declared_height"] == 426

    # EXIF orientation per sample; the rotated photo is stored 426x640 and its labels scale by 640x426,
    # the displayed size (the boxes above would be off by up to 214 px with the stored one).
    s = yolo.samples.set_index("sample_id")
    assert s["exif_orientation"].to_dict() == {f"{stem}.jpg": 6 if stem == ROTATED else 1 for stem in PICKED}
    assert [(s.loc[f"{stem}.jpg", "image_width"], s.loc[f"{stem}.jpg", "image_height"]) for stem in PICKED] == \
        [written["sizes"][stem] for stem in PICKED] == [(640, 480), (640, 426), (481, 640), (381, 500)]
    rotated = yolo.objects[yolo.objects["sample_id"] == f"{ROTATED}.jpg"]
    assert (rotated["x"] + rotated["w"]).max() > 426


def test_yolo_keeps_the_objects_of_an_image_it_cannot_open(tmp_path: Path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    shutil.copyfile(coco_images("train2017")[0], root / "images" / "good.jpg")
    (root / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for stem in ("good", "broken"):
        (root / "labels" / f"{stem}.txt").write_text("0 0.5 0.5 0.25 0.5\n1 0.1 0.1 0.2 0.1 0.2 0.2\n")
    (root / "data.yaml").write_text("path: .\ntrain: images\nnames: [cat, dog]\n")
    ds = read_yolo(root / "data.yaml")
    o = ds.objects.set_index("object_id")
    assert o.loc["images/good.jpg#0", ["x", "y", "w", "h"]].tolist() == pytest.approx([240, 120, 160, 240])
    broken = o.loc[["images/broken.jpg#0", "images/broken.jpg#1"]]
    assert broken["label"].tolist() == ["cat", "dog"] and broken["shape"].tolist() == ["box", "polygon"]
    assert broken[["x", "y", "w", "h", "area"]].isna().all().all() and broken["polygon"].isna().all()
    s = ds.samples.set_index("sample_id")
    assert pd.isna(s.loc["images/broken.jpg", "image_width"]) and s.loc["images/broken.jpg", "exif_orientation"] == 1
    assert "1 image(s) could not be opened to read their size: their 2 object(s) have no box or polygon (NaN)" in ds.notes
    assert ds.task == Task.SEGMENTATION  # the good image's polygon


def test_displayed_size_turns_only_the_quarter_turns(tmp_path: Path):
    pixels = Image.new("RGB", (40, 30), (200, 10, 10))
    for orientation, expected in ((1, (40, 30)), (3, (40, 30)), (5, (30, 40)), (6, (30, 40)), (8, (30, 40)), (9, (40, 30))):
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        pixels.save(tmp_path / f"o{orientation}.jpg", exif=exif)
        assert displayed_size(str(tmp_path / f"o{orientation}.jpg")) == (*expected, orientation if orientation <= 8 else 1)
    pixels.save(tmp_path / "plain.png")
    assert displayed_size(str(tmp_path / "plain.png")) == (40, 30, 1)
    assert displayed_size(str(tmp_path / "absent.jpg")) is None


# ---------------------------------------------------------------- COCO segmentation, crowd RLE, errors

def _rle_string(counts: list[int]) -> str:
    """COCO's compressed RLE string for run lengths (pycocotools' rleToString), written independently of
    the reader's decoder to check it."""
    out = []
    for i, value in enumerate(counts):
        if i > 2:
            value -= counts[i - 2]
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = not ((value == 0 and not group & 0x10) or (value == -1 and group & 0x10))
            out.append(chr(group + (0x20 if more else 0) + 48))
    return "".join(out)


@pytest.mark.skipif(not COCO_GT.exists(), reason=f"COCO evaluation fixture not found at {COCO_GT}")
def test_coco_keeps_polygons_and_crowd_rle_masks():
    data = json.loads(COCO_GT.read_text())
    ds = read_coco(COCO_GT)
    by_id = ds.objects.set_index("annotation_id")
    crowd = [a for a in data["annotations"] if a["iscrowd"]]
    assert len(crowd) == 9 and by_id["rle"].notna().sum() == 9 and by_id["polygon"].notna().sum() == 830
    for ann in crowd:
        row = by_id.loc[ann["id"]]
        assert row.rle == ann["segmentation"] and row.polygon is None and row.iscrowd
        assert row.area == ann["area"]  # COCO's own area is kept, not the mask's pixel count
    ann = next(a for a in data["annotations"] if not a["iscrowd"] and len(a["segmentation"]) > 1)
    assert by_id.loc[ann["id"], "polygon"] == ann["segmentation"] and by_id.loc[ann["id"], "rle"] is None
    # Object ids count an image's annotations in file order.
    first = data["annotations"][0]
    same_image = [a["id"] for a in data["annotations"] if a["image_id"] == first["image_id"]]
    file_name = next(im["file_name"] for im in data["images"] if im["id"] == first["image_id"])
    assert [by_id.loc[i, "object_id"] for i in same_image] == [f"{file_name}#{k}" for k in range(len(same_image))]
    assert ds.task == Task.SEGMENTATION and ds.summary()["task"] == "segmentation"


@pytest.mark.skipif(not SEGM_RESULTS.exists(), reason=f"cocoapi results not found at {SEGM_RESULTS}")
def test_compressed_rle_decodes_as_pycocotools_wrote_it(tmp_path: Path):
    # 734 masks pycocotools compressed: every decoded mask covers exactly its height x width pixels.
    results = json.loads(SEGM_RESULTS.read_text())
    for r in results:
        h, w = r["segmentation"]["size"]
        assert sum(rle_counts(r["segmentation"]["counts"])) == h * w
    # A crowd mask from the ground truth, compressed, with no area: the area is its pixel count.
    crowd = next(a for a in json.loads(COCO_GT.read_text())["annotations"] if a["iscrowd"])
    counts = crowd["segmentation"]["counts"]
    assert rle_counts(_rle_string(counts)) == counts
    h, w = crowd["segmentation"]["size"]
    data = {"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "person"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 1,
                             "segmentation": {"size": [h, w], "counts": _rle_string(counts)}}]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    row = read_coco(tmp_path / "a.json").objects.iloc[0]
    assert row.area == sum(counts[1::2]) == 38731 and row.rle["counts"] == _rle_string(counts)


def _mini(tmp_path: Path) -> dict:
    return {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 3]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2],
                             "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]]}]}


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["annotations"][1].update(bbox=[1, 1, -2, 2]), "annotations[1].bbox", "width and height >= 0"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, 4, float("inf")]), "annotations[0].bbox", "expected 4 numbers"),
    (lambda d: d["annotations"][1].update(segmentation=[[1, 1, 3, 1, 3, 3], [1, 2, 3]]),
     "annotations[1].segmentation[1]", "expected a polygon"),
    (lambda d: d["annotations"][1].update(segmentation="abc"), "annotations[1].segmentation", "expected a list of polygons"),
    (lambda d: d["annotations"][1].update(segmentation={"size": [2, 3], "counts": [1, 2, 2]}),
     "annotations[1].segmentation.counts", "the runs cover 5 pixels, but a 2x3 mask has 6"),
    (lambda d: d["annotations"][1].update(segmentation={"size": [2, 3], "counts": "0~"}),
     "annotations[1].segmentation.counts", "broken compressed RLE"),
    (lambda d: d["annotations"][1].update(segmentation={"size": [2], "counts": [6]}),
     "annotations[1].segmentation.size", "expected the mask size [height, width]"),
])
def test_bad_coco_box_or_segmentation_names_the_json_path(tmp_path: Path, mutate, field, words):
    data = _mini(tmp_path)
    mutate(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    err = _error(read_coco, tmp_path / "bad.json")
    assert err.path == str(tmp_path / "bad.json") and err.field == field and words in str(err)


def test_coco_without_segmentation_is_detection_and_area_falls_back(tmp_path: Path):
    data = _mini(tmp_path)
    data["annotations"][1]["segmentation"] = [[1, 1, 3, 1, 3, 3, 1, 3], [10, 10, 11, 10, 11, 12]]
    (tmp_path / "seg.json").write_text(json.dumps(data))
    ds = read_coco(tmp_path / "seg.json")
    # No area given: w*h for a box, the polygons' area (4 + 1) for a segmented object.
    assert ds.objects["area"].tolist() == [12.0, 5.0] and ds.task == Task.SEGMENTATION
    del data["annotations"][1]["segmentation"]
    (tmp_path / "det.json").write_text(json.dumps(data))
    ds = read_coco(tmp_path / "det.json")
    assert ds.task == Task.DETECTION and ds.objects["object_id"].tolist() == ["a.jpg#0", "b.jpg#0"]
    assert "box_units" not in ds.summary() and ds.summary()["objects"] == 2


# ---------------------------------------------------------------- VOC

def _voc_devkit(root: Path, split_lists: dict[str, str] | None = None) -> Path:
    src = coco_images("val2017")[:3]
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    for stem, f in zip(("a", "b", "c"), src):
        shutil.copyfile(f, root / "JPEGImages" / f"{stem}.jpg")
    (root / "Annotations" / "a.xml").write_text(_voc_xml("a.jpg", (640, 426), [
        {"label": "dog", "xmin": 1, "ymin": 1, "xmax": 640, "ymax": 426},
        {"label": "cat", "xmin": 10, "ymin": 20, "xmax": 10, "ymax": 29, "difficult": 1, "truncated": 1}]))
    (root / "Annotations" / "b.xml").write_text(_voc_xml("b.jpg", (586, 640), []))
    (root / "Annotations" / "d.xml").write_text(_voc_xml("elsewhere/d.png", (50, 50), [
        {"label": "dog", "xmin": 5.5, "ymin": 6, "xmax": 7.5, "ymax": 8}]))
    for name, text in (split_lists or {}).items():
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text(text)
    return root


def test_voc_devkit_boxes_splits_flags_and_missing_files(tmp_path: Path):
    root = _voc_devkit(tmp_path / "VOC", {"train": "b\na\n", "val": "d\n", "trainval": "a\nb\nd\n",
                                          "test": "c\na\n"})
    ds = load_dataset(root)
    s = ds.samples
    # Split lists in train, val, test order (trainval is their union, not read), a repeat kept as its own sample.
    assert s["sample_id"].tolist() == ["b.jpg", "a.jpg", "d.png", "c.jpg", "a.jpg@test"]
    assert s["split"].tolist() == ["train", "train", "val", "test", "test"]
    assert s["path"].tolist()[:3] == [str(root / "JPEGImages" / n) for n in ("b.jpg", "a.jpg", "d.png")]
    assert s["annotation_file"].tolist()[2] == str(root / "Annotations" / "d.xml") and pd.isna(s["annotation_file"][3])
    assert s["declared_width"].tolist()[:3] == [586, 640, 50]
    o = ds.objects
    assert o["object_id"].tolist() == ["a.jpg#0", "a.jpg#1", "d.png#0", "a.jpg@test#0", "a.jpg@test#1"]
    # 1-based inclusive indices: xmin=1..xmax=640 is the whole 640-pixel row, a one-column box is 1 wide.
    assert o[["x", "y", "w", "h"]].to_numpy().tolist()[:3] == [[0, 0, 640, 426], [9, 19, 1, 10], [4.5, 5, 3, 3]]
    assert o["difficult"].tolist()[:2] == [False, True] and o["truncated"].tolist()[:2] == [False, True]
    assert o["area"].tolist()[:3] == [640 * 426, 10, 9] and ds.classes == ["cat", "dog"]
    assert ds.task == Task.DETECTION and ds.summary()["objects"] == 5
    assert ds.notes == ["1 image(s) have no annotation file (no objects)"]


def test_voc_trainval_alone_is_the_train_split_and_unlisted_files_are_unsplit(tmp_path: Path):
    ds = read_voc(_voc_devkit(tmp_path / "VOC", {"trainval": "a\n"}))
    assert ds.samples[["sample_id", "split"]].values.tolist() == [["a.jpg", "train"], ["b.jpg", None],
                                                                   ["c.jpg", None], ["d.png", None]]


def test_voc_xml_beside_images_in_split_folders(tmp_path: Path):
    root = tmp_path / "export"
    src = coco_images("train2017")[:3]
    for split, stems in (("train", ["x", "y"]), ("valid", ["z"])):
        (root / split).mkdir(parents=True)
        for stem in stems:
            shutil.copyfile(src[len(list(root.rglob("*.jpg")))], root / split / f"{stem}.jpg")
    (root / "train" / "x.xml").write_text(_voc_xml("x.jpg", (640, 480), [
        {"label": "person", "xmin": 11, "ymin": 21, "xmax": 30, "ymax": 60}]))
    (root / "valid" / "z.xml").write_text(_voc_xml("z.jpg", (640, 428), [
        {"label": "kite", "xmin": 1, "ymin": 1, "xmax": 2, "ymax": 2}]))
    assert voc_layout(root) == "flat"
    ds = load_dataset(root)
    assert ds.format == "voc"
    assert ds.samples[["sample_id", "split"]].values.tolist() == [["train/x.jpg", "train"], ["train/y.jpg", "train"],
                                                                   ["valid/z.jpg", "val"]]
    assert ds.objects[["object_id", "label", "x", "y", "w", "h"]].values.tolist() == [
        ["train/x.jpg#0", "person", 10, 20, 20, 40], ["valid/z.jpg#0", "kite", 0, 0, 2, 2]]


def test_image_folder_with_a_stray_xml_is_still_an_image_folder(tmp_path: Path):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    shutil.copyfile(coco_images("train2017")[0], root / "cat" / "a.jpg")
    (root / "notes.xml").write_text("<notes/>")
    (root / "cat" / "a.xml").write_text("<annotation/>")  # below a class folder: not read
    assert voc_layout(root) is None
    ds = load_dataset(root)
    assert ds.format == "folder" and ds.task == Task.CLASSIFICATION and ds.objects is None


@pytest.mark.parametrize("xml, field, line, words", [
    ("<annotation><object><name>dog</name><bndbox><xmin>1</xmin></bndbox></object>", None, 1, "malformed XML"),
    (("<annotation><object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"
      "</object><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><ymax>5</ymax></bndbox></object>"
      "</annotation>"), "annotation/object[2]/bndbox/xmax", None, "missing <xmax>"),
    (("<annotation><object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"
      "</annotation>"), "annotation/object[1]/name", None, "missing <name>"),
    ("<annotation><object><name>dog</name></object></annotation>", "annotation/object[1]/bndbox", None,
     "missing <bndbox>"),
    (("<annotation><object><name>dog</name><bndbox><xmin>1</xmin><ymin>a</ymin><xmax>5</xmax><ymax>5</ymax>"
      "</bndbox></object></annotation>"), "annotation/object[1]/bndbox/ymin", None, "expected a number, got 'a'"),
    (("<annotation><object><name>dog</name><bndbox><xmin>9</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
      "</bndbox></object></annotation>"), "annotation/object[1]/bndbox/xmax", None, "xmax 5 is less than xmin 9"),
    (("<annotation><object><name>dog</name><difficult>yes</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
      "<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"), "annotation/object[1]/difficult", None,
     "expected 0 or 1, got 'yes'"),
    ("<annotation><size><width>0</width><height>5</height></size></annotation>", "annotation/size/width", None,
     "expected a positive number"),
    ("<annotations/>", "annotations", None, "expected a VOC <annotation> root element"),
])
def test_bad_voc_xml_names_the_file_and_the_element(tmp_path: Path, xml, field, line, words):
    root = _voc_devkit(tmp_path / "VOC")
    bad = root / "Annotations" / "b.xml"
    bad.write_text(xml)
    err = _error(load_dataset, root)
    assert err.path == str(bad) and err.field == field and err.line == line and words in str(err)
    assert str(err).startswith(str(bad))


# ---------------------------------------------------------------- the table and the Task

def test_object_table_fills_defaults_and_rejects_broken_tables():
    t = object_table({"sample_id": ["a", "b", "a"], "label": ["cat", None, "dog"]})
    assert t["object_id"].tolist() == ["a#0", "b#0", "a#1"] and t["label"].tolist() == ["cat", None, "dog"]
    assert t[["x", "y", "w", "h", "area"]].isna().all().all() and not t["iscrowd"].any()
    assert t["polygon"].isna().all() and t["rle"].isna().all() and t["category_id"].isna().all()
    t = object_table({"sample_id": ["a"], "label": ["cat"], "x": [0], "y": [0], "w": [4], "h": [3],
                      "rle": [{"size": [2, 3], "counts": [1, 4, 1]}]})
    assert t["area"].tolist() == [4.0]  # the mask's pixels, not the box
    with pytest.raises(ValueError, match="repeats object_id 'a#0'"):
        object_table({"object_id": ["a#0", "a#0"], "sample_id": ["a", "a"], "label": ["x", "y"]})
    with pytest.raises(ValueError, match="polygon must be a list of flat"):
        object_table({"sample_id": ["a"], "label": ["x"], "polygon": [[[0, 0, 1, 1]]]})
    with pytest.raises(ValueError, match="column 'x' must hold numbers"):
        object_table({"sample_id": ["a"], "label": ["x"], "x": ["left"]})
    with pytest.raises(ValueError, match="lacks columns \\['label'\\]"):
        object_table({"sample_id": ["a"]})
    samples = make_samples([{"sample_id": "a", "path": "/a.jpg"}])
    with pytest.raises(ValueError, match="names sample_id 'z'"):
        Dataset(samples=samples, source="t", format="t", objects=pd.DataFrame({"sample_id": ["z"], "label": ["x"]}))


def test_task_follows_the_annotations():
    samples = make_samples([{"sample_id": "a", "path": "/a.jpg", "label": None},
                            {"sample_id": "b", "path": "/b.jpg", "label": None}])
    assert Dataset(samples=samples, source="t", format="t").task == Task.UNLABELLED
    labelled = samples.assign(label=["cat", None])
    assert Dataset(samples=labelled, source="t", format="t").task == Task.CLASSIFICATION
    empty = pd.DataFrame({"sample_id": [], "label": []})
    assert Dataset(samples=samples, source="t", format="t", objects=empty).task == Task.DETECTION
    boxes = pd.DataFrame({"sample_id": ["a"], "label": ["cat"], "x": [1.0], "y": [1.0], "w": [2.0], "h": [2.0]})
    assert Dataset(samples=samples, source="t", format="t", objects=boxes).task == Task.DETECTION
    masked = boxes.assign(rle=[{"size": [4, 4], "counts": [5, 2, 9]}])
    ds = Dataset(samples=samples, source="t", format="t", objects=masked)
    assert ds.task == Task.SEGMENTATION and str(ds.task) == "segmentation" and ds.task == "segmentation"
