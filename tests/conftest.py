"""Shared fixtures: real images from ../shared/data, copied to temp dirs before any change."""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO128 = SHARED / "coco128" / "images"
MNIST = SHARED / "mnist_test"


def coco_images(split: str = "train2017") -> list[Path]:
    files = sorted((COCO128 / split).glob("*.jpg"))
    if not files:
        pytest.skip(f"COCO128 not found under {COCO128}")
    return files


def mnist_arrays(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test images (n, 28, 28) uint8 and labels, read from the IDX files."""
    img_path, lab_path = MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"
    if not img_path.exists():
        pytest.skip(f"MNIST not found under {MNIST}")
    with gzip.open(img_path, "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(lab_path, "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    if n is not None:
        images, labels = images[:n], labels[:n]
    return images, labels


def coco128_yolo_config(base: Path) -> Path:
    """coco128/object_detection/config.yaml (YOLO labels), read in place when its ``images`` symlink is a real
    one; where the checkout stored the symlink as a plain file, the same layout rebuilt with real links under
    ``base``."""
    config = SHARED / "coco128" / "object_detection" / "config.yaml"
    if not config.exists():
        pytest.skip("COCO128 not found")
    if (config.parent / "images").is_dir():
        return config
    root = base / "coco128"
    if not root.exists():
        (root / "object_detection").mkdir(parents=True)
        os.symlink(SHARED / "coco128" / "images", root / "images")
        os.symlink("../images", root / "object_detection" / "images")
        os.symlink(config.parent / "labels", root / "object_detection" / "labels")
        shutil.copyfile(config, root / "object_detection" / "config.yaml")
    return root / "object_detection" / "config.yaml"


@pytest.fixture(scope="session", autouse=True)
def _no_user_cache(tmp_path_factory):
    """Every test, and every CLI process a test starts, caches features, model outputs and compiled
    templates in a temporary folder, never in the user's ~/.cache/visionaudit (issue 9, section 6):
    a test that passes no cache folder gets ``$VISIONAUDIT_CACHE``."""
    before = os.environ.get("VISIONAUDIT_CACHE")
    os.environ["VISIONAUDIT_CACHE"] = str(tmp_path_factory.mktemp("visionaudit-cache"))
    yield
    if before is None:
        os.environ.pop("VISIONAUDIT_CACHE", None)
    else:
        os.environ["VISIONAUDIT_CACHE"] = before


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def copy_images(files: list[Path], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        target = dest / f.name
        shutil.copyfile(f, target)
        out.append(target)
    return out


_OUTPUTS: dict[int, list] = {}


def run_check(check, ctx) -> list:
    """Run one check on ``ctx`` as the suite does and return its findings; its scores are kept for
    :func:`issues_frame` (the scores table of every check this helper ran on that context)."""
    out = check.run(ctx)
    _OUTPUTS.setdefault(id(ctx), []).append(out)
    return out.findings


def issues_frame(ctx):
    from visionaudit.findings import scores_table

    return scores_table(_OUTPUTS.get(id(ctx), []), ctx.sample_ids)
