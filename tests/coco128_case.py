"""A scan of COCO128 as Ultralytics ships it (object_detection/config.yaml with YOLO labels, 128 train and 128
val photos), shared by the report tests of detection datasets (issue 9, section 5).

:func:`coco128_scan` runs once per pytest session (cached on the base folder); :func:`label_classes` reads the
label files directly, the reference the report is compared with.
"""
from __future__ import annotations

import functools
from pathlib import Path

import yaml
from conftest import SHARED, coco128_yolo_config

import visionaudit
from visionaudit.findings import Result

COCO128 = SHARED / "coco128"


@functools.cache
def coco128_scan(base: Path) -> Result:
    base.mkdir(parents=True, exist_ok=True)
    return visionaudit.scan(coco128_yolo_config(base), cache_dir=base / "cache", workers=1)


def label_classes() -> dict[str, set[str]]:
    """Sample id (``images/<split folder>/<file>``) -> the class names of its objects, from the label files."""
    config = COCO128 / "object_detection" / "config.yaml"
    names = {int(k): str(v) for k, v in yaml.safe_load(config.read_text())["names"].items()}
    out: dict[str, set[str]] = {}
    for label_file in sorted((COCO128 / "object_detection" / "labels").glob("*/*.txt")):
        ids = {int(line.split()[0]) for line in label_file.read_text().splitlines() if line.strip()}
        out[f"images/{label_file.parent.name}/{label_file.stem}.jpg"] = {names[i] for i in ids}
    return out
