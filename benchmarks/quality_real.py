"""Quality flags on real photos (issue 9, section 4; issue 8's blur target): the share of images each
quality check flags, on clean COCO128 photos and on what a user's dataset holds besides them.

Groups, each scanned together with the 256 clean COCO128 photos (640 px), as they would sit in one
dataset (``visionaudit.scan`` of a folder, empty cache); the groups that carry an issue are made from
every 8th photo (32 images, 11% of their dataset):

- ``clean``: the 256 photos as they are (every flag here is a false positive unless the photo has the
  issue; the report lists them);
- ``on_white`` / ``centred`` / ``product``: each photo's largest instance (COCO128's YOLO-seg polygon,
  at least 3% of the photo) cut out and pasted on white: at its own place, in the middle, or cropped
  to its box with a 10% margin (product shots, clip-art-like images: should be flagged by nothing);
- ``lifted``: levels lifted, black point at 63% grey, the top quarter clipped (overexposed);
- ``gain_clip``: multiplied until 30% of the pixels clip, deep shadows kept (a photo pushed up);
- ``dark``: levels scaled by 0.12 (dark);
- ``blur3`` / ``blur5``: Gaussian blur of radius 3 / 5 px at full size (blurry; issue 8: >= 95%).

Usage::

    python benchmarks/quality_real.py              # ~2 minutes on 2 cores
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_bench_data import COCO_DIR  # noqa: E402

SEG_LABELS = COCO_DIR.parent / "instance_segmentation" / "labels"
ISSUES = ["blurry", "dark", "overexposed", "low_contrast", "low_information", "noisy", "jpeg_artifacts",
          "grayscale_as_rgb", "odd_size", "odd_aspect_ratio"]
#: The issue each group carries (its column is a detection rate, every other a false-positive rate).
EXPECTED = {"lifted": "overexposed", "gain_clip": "overexposed", "dark": "dark", "blur3": "blurry",
            "blur5": "blurry"}


def largest_object(photo: Path, im: Image.Image) -> Image.Image | None:
    """The mask of the photo's largest instance of at least 3% of its area, or None."""
    label = next((p for p in (SEG_LABELS / s / f"{photo.stem}.txt" for s in ("train2017", "val2017"))
                  if p.exists()), None)
    if label is None:
        return None
    best, best_area = None, 0.03 * im.width * im.height
    for line in label.read_text().splitlines():
        values = line.split()
        if len(values) < 7:
            continue
        xy = np.array(values[1:], float).reshape(-1, 2) * im.size
        area = 0.5 * abs(xy[:, 0] @ np.roll(xy[:, 1], 1) - xy[:, 1] @ np.roll(xy[:, 0], 1))
        if area > best_area:
            best, best_area = [tuple(v) for v in xy], area
    if best is None:
        return None
    mask = Image.new("L", im.size, 0)
    ImageDraw.Draw(mask).polygon(best, fill=255)
    return mask


def build(root: Path) -> dict[str, int]:
    photos = sorted(COCO_DIR.glob("*/*.jpg"))
    groups = ["clean", "on_white", "centred", "product", *EXPECTED]
    for g in groups:
        (root / g).mkdir(parents=True)
    for i, photo in enumerate(photos):
        im = Image.open(photo).convert("RGB")
        shutil.copyfile(photo, root / "clean" / photo.name)
        a = np.asarray(im, dtype=np.float32)
        mask = largest_object(photo, im)
        if mask is not None:
            white = Image.new("RGB", im.size, (255, 255, 255))
            white.paste(im, (0, 0), mask)
            white.save(root / "on_white" / photo.name, quality=92)
            box = mask.getbbox()
            w, h = box[2] - box[0], box[3] - box[1]
            centred = Image.new("RGB", im.size, (255, 255, 255))
            centred.paste(im.crop(box), ((im.width - w) // 2, (im.height - h) // 2), mask.crop(box))
            centred.save(root / "centred" / photo.name, quality=92)
            m = int(0.1 * max(w, h))
            white.crop((max(0, box[0] - m), max(0, box[1] - m), min(im.width, box[2] + m),
                        min(im.height, box[3] + m))).save(root / "product" / photo.name, quality=92)
        if i % 8:
            continue   # the issue groups: every 8th photo (32), a minority of their dataset as issues are
        gray = a.mean(axis=2)
        variants = {
            "lifted": 160.0 + 0.5 * a,
            "gain_clip": a * (255.0 / max(float(np.percentile(gray, 70)), 1.0)),
            "dark": a * 0.12,
        }
        for g, v in variants.items():
            Image.fromarray(np.clip(v + 0.5, 0, 255).astype(np.uint8)).save(root / g / photo.name, quality=92)
        for r in (3, 5):
            im.filter(ImageFilter.GaussianBlur(r)).save(root / f"blur{r}" / photo.name, quality=92)
    return {g: len(list((root / g).iterdir())) for g in groups}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    import visionaudit

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        sizes = build(data)
        rates: dict[str, dict[str, float]] = {}
        flagged_clean: dict[str, set[str]] = {}
        start = time.perf_counter()
        for g in sizes:
            if g == "clean":
                continue
            scan_root = Path(tmp) / f"scan_{g}"
            scan_root.mkdir()
            for sub in ("clean", g):
                (scan_root / sub).symlink_to(data / sub)
            result = visionaudit.scan(scan_root, cache_dir=Path(tmp) / "cache", workers=args.workers)
            for group in ("clean", g):
                for issue in ISSUES:
                    hit = {s for s in result.flagged(issue) if s.startswith(f"{group}/")}
                    rates.setdefault(group, {}).setdefault(issue, []).append(len(hit) / sizes[group])
                    if group == "clean":
                        flagged_clean.setdefault(issue, set()).update(hit)
        seconds = time.perf_counter() - start
    groups = list(sizes)
    print(f"quality flags on real photos: COCO128 (256 photos, 640 px) and images made from them, each group "
          f"scanned with the clean photos; {seconds:.0f} s")
    print("share of each group flagged; [x] = the issue the group carries (a detection rate), every other "
          "cell a false-positive rate; clean: the highest over the scans")
    header = f"{'check':<18}" + "".join(f"{g:>11}" for g in groups)
    print(header)
    print("-" * len(header))
    for issue in ISSUES:
        cells = []
        for g in groups:
            value = max(rates[g][issue])
            cell = f"{value:.1%}"
            cells.append(f"[{cell}]" if EXPECTED.get(g) == issue else cell)
        print(f"{issue:<18}" + "".join(f"{c:>11}" for c in cells))
    print("group sizes: " + ", ".join(f"{g} {n}" for g, n in sizes.items()))
    for issue, hit in flagged_clean.items():
        if hit:
            print(f"clean photos flagged {issue}: " + ", ".join(sorted(h.split('/', 1)[1] for h in hit)))


if __name__ == "__main__":
    main()
