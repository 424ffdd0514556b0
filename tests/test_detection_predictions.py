"""The detection form of predictions (issue 8, typed inputs): torchmetrics-style dicts from real COCO
annotations become one table in pixels whatever the box format, masks survive as RLE exactly, and a
box in the wrong format is an error naming the sample and the detection."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED

from visionaudit.errors import ArgumentError, SourceError
from visionaudit.predictors.predictions import DETECTION_COLUMNS, DetectionPredictions

COCO_GT = SHARED / "coco_eval" / "faster_coco_eval_tests" / "cocoapi" / "instances_val2014_100.json"


@pytest.fixture(scope="module")
def coco():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    if not COCO_GT.exists():
        pytest.skip(f"COCO fixture not found at {COCO_GT}")
    gt = COCO(str(COCO_GT))
    img_ids = sorted(gt.getImgIds())[:6]
    outputs, expected = [], []
    for img_id in img_ids:
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[img_id])) if not a["iscrowd"]]
        xywh = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
        outputs.append({"xywh": xywh, "labels": [gt.cats[a["category_id"]]["name"] for a in anns],
                        "scores": np.linspace(0.9, 0.1, len(anns)), "masks": [gt.annToMask(a).astype(bool) for a in anns]})
        expected.append(anns)
    return [f"val2014/{gt.imgs[i]['file_name']}" for i in img_ids], outputs, expected


def _as(fmt: str, xywh: np.ndarray) -> np.ndarray:
    x, y, w, h = xywh.T
    return {"xywh": xywh, "xyxy": np.stack([x, y, x + w, y + h], 1),
            "cxcywh": np.stack([x + w / 2, y + h / 2, w, h], 1)}[fmt]


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_every_box_format_gives_the_coco_boxes_in_pixels(coco, fmt):
    ids, outputs, expected = coco
    dicts = [{"boxes": _as(fmt, o["xywh"]), "scores": o["scores"], "labels": o["labels"]} for o in outputs]
    preds = DetectionPredictions.from_dicts(ids, dicts, source="model", box_format=fmt)
    table = preds.objects
    assert list(table.columns) == list(DETECTION_COLUMNS)
    assert len(table) == sum(len(e) for e in expected) > 20
    want = np.array([a["bbox"] for e in expected for a in e])
    np.testing.assert_allclose(table[["x", "y", "w", "h"]].to_numpy(float), want, rtol=0, atol=1e-9)
    first = table[table["sample_id"] == ids[0]]
    assert first["prediction_id"].tolist() == [f"{ids[0]}#p{k}" for k in range(len(expected[0]))]
    assert first["score"].is_monotonic_decreasing and table["rle"].isna().all()


def test_masks_are_kept_as_rle_that_decodes_to_the_same_pixels(coco):
    from pycocotools import mask as mask_utils

    ids, outputs, expected = coco
    dicts = [{"boxes": _as("xyxy", o["xywh"]), "scores": o["scores"], "labels": o["labels"], "masks": o["masks"]}
             for o in outputs]
    table = DetectionPredictions.from_dicts(ids, dicts, source="model").objects
    masks = [m for o in outputs for m in o["masks"]]
    for rle, mask in zip(table["rle"], masks):
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
        assert decoded.shape == mask.shape and np.array_equal(decoded.astype(bool), mask)
    areas = [mask_utils.area({"size": r["size"], "counts": r["counts"].encode("ascii")}) for r in table["rle"]]
    assert areas == [int(m.sum()) for m in masks]


def test_wrong_boxes_name_the_sample_and_the_detection(coco):
    ids, outputs, _ = coco
    good = [{"boxes": _as("xyxy", o["xywh"]), "scores": o["scores"], "labels": o["labels"]} for o in outputs]
    # xywh boxes read as xyxy: a box whose x2 < x1 is not in that format
    swapped = [dict(d) for d in good]
    swapped[2] = {**good[2], "boxes": outputs[2]["xywh"]}
    with pytest.raises(SourceError, match=rf"{ids[2]}: detection \d+ has a negative size .* not in xyxy format"):
        DetectionPredictions.from_dicts(ids, swapped, source="preds.py")
    short = [dict(d) for d in good]
    short[1] = {**good[1], "scores": good[1]["scores"][:-1]}
    with pytest.raises(SourceError, match=rf"{ids[1]}: \d+ boxes, \d+ scores and \d+ labels"):
        DetectionPredictions.from_dicts(ids, short, source="preds.py")
    nan = [dict(d) for d in good]
    nan[0] = {**good[0], "boxes": np.where(np.arange(4) == 1, np.nan, good[0]["boxes"])}
    with pytest.raises(SourceError, match=rf"{ids[0]}: detection 0 has a box or score that is not finite"):
        DetectionPredictions.from_dicts(ids, nan, source="preds.py")
    with pytest.raises(ArgumentError, match="box_format"):
        DetectionPredictions.from_dicts(ids, good, source="m", box_format="ltrb")
    with pytest.raises(ArgumentError, match="one per sample"):
        DetectionPredictions.from_dicts(ids, good[:-1], source="m")
    table = DetectionPredictions.from_dicts(ids, good, source="m").objects
    with pytest.raises(ValueError, match="not in the dataset"):
        DetectionPredictions(ids[1:], table, source="m")


def test_a_sample_without_detections_has_no_rows(coco):
    ids, outputs, _ = coco
    dicts = [{"boxes": _as("xyxy", o["xywh"]), "scores": o["scores"], "labels": o["labels"]} for o in outputs]
    dicts[3] = {"boxes": np.zeros((0, 4)), "scores": [], "labels": []}
    preds = DetectionPredictions.from_dicts(ids, dicts, source="m")
    assert ids[3] not in set(preds.objects["sample_id"]) and preds.sample_ids == ids
