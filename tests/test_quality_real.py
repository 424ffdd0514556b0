"""Quality flags that hold on real photos (issue 9, section 4): an object on a plain white background
(a product shot, clip-art) is neither overexposed nor low-information; a real photo whose levels are
lifted until its highlights clip is overexposed; a blank frame is low-information.

The objects are COCO128's own: each photo's largest instance (YOLO-seg polygon, at least 3% of the
photo), cut out along its polygon and pasted, at its own size, in the middle of a white canvas the
size of the photo. They are scanned together with the 256 clean COCO128 photos, as they would sit in
a user's dataset.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, coco_images
from PIL import Image, ImageDraw

import visionaudit

SEG_LABELS = SHARED / "coco128" / "instance_segmentation" / "labels"


def _largest_polygon(photo: Path, width: int, height: int) -> list[tuple[float, float]] | None:
    label = next((p for p in (SEG_LABELS / s / f"{photo.stem}.txt" for s in ("train2017", "val2017")) if p.exists()),
                 None)
    if label is None:
        return None
    best, best_area = None, 0.03 * width * height
    for line in label.read_text().splitlines():
        values = line.split()
        if len(values) < 7:
            continue
        xy = np.array(values[1:], float).reshape(-1, 2) * (width, height)
        area = 0.5 * abs(xy[:, 0] @ np.roll(xy[:, 1], 1) - xy[:, 1] @ np.roll(xy[:, 0], 1))
        if area > best_area:
            best, best_area = [tuple(v) for v in xy], area
    return best


def _on_white(photo: Path) -> Image.Image | None:
    im = Image.open(photo).convert("RGB")
    polygon = _largest_polygon(photo, *im.size)
    if polygon is None:
        return None
    mask = Image.new("L", im.size, 0)
    ImageDraw.Draw(mask).polygon(polygon, fill=255)
    box = mask.getbbox()
    canvas = Image.new("RGB", im.size, (255, 255, 255))
    w, h = box[2] - box[0], box[3] - box[1]
    canvas.paste(im.crop(box), ((im.width - w) // 2, (im.height - h) // 2), mask.crop(box))
    return canvas


def _lifted(photo: Path) -> Image.Image:
    """Levels lifted: black point at 63% grey, everything above 75% of the original range clipped."""
    a = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32)
    return Image.fromarray(np.clip(160.0 + 0.5 * a, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def real_scan(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality_real") / "data"
    photos = coco_images("train2017") + coco_images("val2017")
    for sub in ("clean", "on_white", "lifted"):
        (root / sub).mkdir(parents=True)
    pasted = 0
    for photo in photos:
        Image.open(photo).save(root / "clean" / photo.name, quality=92)
        white = _on_white(photo)
        if white is not None:
            white.save(root / "on_white" / photo.name, quality=92)
            pasted += 1
    for photo in photos[::8]:
        _lifted(photo).save(root / "lifted" / photo.name, quality=92)
    Image.new("RGB", (640, 480), (128, 128, 128)).save(root / "clean" / "blank_frame.jpg", quality=92)
    result = visionaudit.scan(root, cache_dir=tmp_path_factory.mktemp("cache"), workers=2)
    return result, pasted


def _flagged(result, issue: str, group: str) -> set[str]:
    return {s for s in result.flagged(issue) if s.startswith(f"{group}/")}


def test_objects_on_white_are_neither_overexposed_nor_low_information(real_scan):
    result, pasted = real_scan
    assert pasted == 170
    assert _flagged(result, "overexposed", "on_white") == set()
    assert _flagged(result, "low_information", "on_white") == set()


def test_lifted_photos_are_overexposed_and_a_blank_frame_is_low_information(real_scan):
    result, _ = real_scan
    assert len(_flagged(result, "overexposed", "lifted")) == 32
    assert _flagged(result, "low_information", "clean") == {"clean/blank_frame.jpg"}
    assert _flagged(result, "overexposed", "clean") == set()
