"""Build the benchmark folder: realistic 256x256 JPEGs derived from the real COCO128 photos, with
injected issues whose ground truth is known.

Every image is a distinct random crop of one COCO128 photo (random position, scale and mirror),
resized to 256x256 and saved as JPEG at a random quality. Crops of the same photo overlap by at
most ``MAX_IOU``, and a crop is rejected when its perceptual hash is close to an already accepted
image, so that the "clean" images are not near duplicates of each other. Photos that are grayscale
already are left out, so ``grayscale`` ground truth is exactly the injected images.

Injected issues (each on its own fresh crop, file names do not reveal them):

* ``blurry``: Gaussian blur, radius 3-6 px.
* ``dark``: pixel values scaled by 0.06-0.2.
* ``light``: washed out / overexposed, ``255 - (255 - x) * f`` with f in 0.05-0.2.
* ``low_information``: near-uniform images (a photo crop blurred to a smooth colour field, with
  its variation squeezed into a few grey levels).
* ``grayscale``: half stored as 8-bit grayscale JPEG (mode L), half as RGB JPEG with R = G = B.
* ``odd_size``: tiny (24-48 px square) or huge (1400-1800 px square) images.
* ``odd_aspect_ratio``: 512x128 or 128x512 strips (same area as 256x256, so not an odd size).
* ``exact_duplicates``: byte copies of clean images; ground truth is every member of a group.
* ``near_duplicates``: a clean image plus 1-2 modified copies (downscaled then upscaled back and
  re-encoded, brightened by 8-15%, cropped by 3-6% at the borders, or re-encoded at quality 40-60);
  all copies keep the 256x256 size so they do not also count as an odd size.

Usage::

    python benchmarks/make_bench_data.py --out /tmp/visionaudit-bench --n-images 5000
"""
from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
COCO_DIR = ROOT.parent / "shared" / "data" / "coco128" / "images"
SIDE = 256
MAX_IOU = 0.5
#: Two distinct images closer than this (64-bit phash Hamming distance) are not both kept.
MIN_PHASH_DISTANCE = 12
GENERATOR_VERSION = 1

ISSUES = ["blurry", "dark", "light", "low_information", "grayscale", "odd_size", "odd_aspect_ratio",
          "exact_duplicates", "near_duplicates"]
#: Share of the requested image count given to each injected issue (the rest is clean).
SHARES = {"blurry": 0.05, "dark": 0.04, "light": 0.04, "low_information": 0.02, "grayscale": 0.04,
          "odd_size": 0.02, "odd_aspect_ratio": 0.02}
EXACT_COPY_SHARE = 0.03    # extra files that are byte copies of clean images
NEAR_COPY_SHARE = 0.05     # extra files that are modified copies of clean images
SURPLUS = 0.04             # extra clean crops, to replace those rejected as too similar


@dataclass
class Spec:
    """One image to make: from which photo, which derivative, with which random seed."""

    source: int
    kind: str          # "clean" or one of ISSUES[:7]
    seed: int


def source_photos() -> list[Path]:
    """COCO128 photos usable as sources: colour photos only (grayscale ones would blur the truth)."""
    files = sorted(COCO_DIR.glob("*/*.jpg"))
    if not files:
        sys.exit(f"COCO128 photos not found under {COCO_DIR}")
    keep = []
    for f in files:
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGB").reduce(4), dtype=np.int16)
        spread = np.abs(a[..., 0] - a[..., 1]).mean() + np.abs(a[..., 1] - a[..., 2]).mean()
        if spread >= 3.0:
            keep.append(f)
    return keep


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / float(area(a) + area(b) - inter)


def _crop_box(rng: np.random.Generator, w: int, h: int, taken: list, aspect: float = 1.0) -> tuple[int, int, int, int]:
    """A random crop box of the given aspect (w/h) overlapping earlier ones by at most MAX_IOU."""
    best, best_iou = None, 2.0
    for _ in range(60):
        scale = rng.uniform(0.4, 0.85)
        if aspect >= 1:
            cw = int(min(w, h * aspect) * scale)
            ch = max(8, int(cw / aspect))
        else:
            ch = int(min(h, w / aspect) * scale)
            cw = max(8, int(ch * aspect))
        x = int(rng.integers(0, max(1, w - cw + 1)))
        y = int(rng.integers(0, max(1, h - ch + 1)))
        box = (x, y, x + cw, y + ch)
        worst = max((_iou(box, t) for t in taken), default=0.0)
        if worst <= MAX_IOU:
            return box
        if worst < best_iou:
            best, best_iou = box, worst
    return best


def _jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def _phash(im: Image.Image) -> int:
    from scipy.fft import dct
    g = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dct(dct(g, axis=0), axis=1)[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def _make(photo: Image.Image, spec: Spec, taken: list) -> tuple[bytes, Image.Image]:
    """Encode one derivative of ``photo``; returns the JPEG bytes and the image it encodes."""
    rng = np.random.default_rng(spec.seed)
    w, h = photo.size
    kind = spec.kind
    if kind == "odd_aspect_ratio":
        wide = rng.random() < 0.5
        box = _crop_box(rng, w, h, taken, aspect=4.0 if wide else 0.25)
        size = (512, 128) if wide else (128, 512)
    else:
        box = _crop_box(rng, w, h, taken)
        size = (SIDE, SIDE)
    taken.append(box)
    im = photo.crop(box)
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    im = im.resize(size, Image.Resampling.LANCZOS)
    quality = int(rng.integers(80, 96))
    if kind == "blurry":
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(3.0, 6.0))))
    elif kind == "dark":
        a = np.asarray(im, dtype=np.float32) * rng.uniform(0.06, 0.2)
        im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    elif kind == "light":
        a = 255.0 - (255.0 - np.asarray(im, dtype=np.float32)) * rng.uniform(0.05, 0.2)
        im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    elif kind == "low_information":
        smooth = np.asarray(im.resize((4, 4), Image.Resampling.BOX).resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
        mean = smooth.mean(axis=(0, 1), keepdims=True)
        a = mean + (smooth - mean) * rng.uniform(0.02, 0.06)
        im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    elif kind == "grayscale":
        im = im.convert("L")
        if rng.random() < 0.5:
            im = im.convert("RGB")
    elif kind == "odd_size":
        side = int(rng.integers(24, 49)) if rng.random() < 0.5 else int(rng.integers(1400, 1801))
        im = im.resize((side, side), Image.Resampling.BICUBIC)
    return _jpeg(im, quality), im


def _near_copy(original: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A modified copy of a clean image that a person would call the same picture."""
    how = int(rng.integers(0, 4))
    if how == 0:
        small = int(rng.integers(110, 180))
        return original.resize((small, small), Image.Resampling.BILINEAR).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    if how == 1:
        return ImageEnhance.Brightness(original).enhance(float(rng.uniform(1.08, 1.15)))
    if how == 2:
        m = int(SIDE * rng.uniform(0.03, 0.06))
        return original.crop((m, m, SIDE - m, SIDE - m)).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    return original   # re-encoded below at a low quality


def _work(task: tuple[str, list[Spec]]) -> list[tuple[Spec, bytes, int]]:
    path, specs = task
    with Image.open(path) as photo:
        photo = photo.convert("RGB")
    taken: list = []
    out = []
    for spec in specs:
        data, im = _make(photo, spec, taken)
        out.append((spec, data, _phash(Image.open(io.BytesIO(data)))))
    return out


def _hamming(a: int, b: np.ndarray) -> np.ndarray:
    x = np.bitwise_xor(b, np.uint64(a))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def build(out_dir: str | os.PathLike, n_images: int = 5000, seed: int = 0, workers: int | None = None,
          verbose: bool = True) -> dict:
    """Make (or reuse) the benchmark folder under ``out_dir``; returns its description.

    The images go to ``<out_dir>/data-n<N>-s<seed>/images/`` and the ground truth (issue -> list of
    file names) to ``ground_truth.json`` beside them. An existing complete folder is reused.
    """
    target = Path(out_dir) / f"data-n{n_images}-s{seed}"
    gt_path = target / "ground_truth.json"
    if gt_path.exists():
        info = json.loads(gt_path.read_text())
        if info.get("generator_version") == GENERATOR_VERSION:
            return info
    if target.exists():
        shutil.rmtree(target)
    started = time.perf_counter()
    images = target / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    photos = source_photos()

    counts = {k: max(1, round(n_images * s)) for k, s in SHARES.items()}
    n_exact = round(n_images * EXACT_COPY_SHARE)
    n_near = round(n_images * NEAR_COPY_SHARE)
    n_clean = n_images - sum(counts.values()) - n_exact - n_near
    kinds = ["clean"] * int(n_clean * (1 + SURPLUS)) + [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(kinds)
    per_source: dict[int, list[Spec]] = {}
    for i, kind in enumerate(kinds):
        src = i % len(photos)
        per_source.setdefault(src, []).append(Spec(src, kind, int(rng.integers(0, 2**31))))
    tasks = [(str(photos[s]), specs) for s, specs in sorted(per_source.items())]
    with mp.get_context("fork").Pool(workers or os.cpu_count()) as pool:
        made = [item for chunk in pool.imap(_work, tasks) for item in chunk]

    # Keep distinct images only: drop any image whose phash is close to one already kept.
    kept: list[tuple[Spec, bytes, int]] = []
    hashes = np.zeros(len(made), dtype=np.uint64)
    order = sorted(range(len(made)), key=lambda i: made[i][0].kind == "clean")  # issues first: keep them all
    rejected = 0
    for i in order:
        spec, data, h = made[i]
        if kept and _hamming(h, hashes[:len(kept)]).min() < MIN_PHASH_DISTANCE:
            rejected += 1
            continue
        hashes[len(kept)] = np.uint64(h)
        kept.append(made[i])
    clean = [k for k in kept if k[0].kind == "clean"]
    issues = [k for k in kept if k[0].kind != "clean"]
    if len(clean) < n_clean:
        raise RuntimeError(f"only {len(clean)} distinct clean crops for {n_clean} wanted; raise SURPLUS")
    clean = clean[:n_clean]

    files: list[bytes] = []
    truth: dict[str, list[int]] = {k: [] for k in ISSUES}

    def add(data: bytes, *issue_names: str) -> int:
        files.append(data)
        idx = len(files) - 1
        for name in issue_names:
            truth[name].append(idx)
        return idx

    for spec, data, _ in issues:
        add(data, spec.kind)
    # Duplicates are made from clean images: the first n_exact_groups get byte copies, the next
    # ones get modified copies; every member of a group is ground truth for that issue.
    exact_groups, near_groups = [], []
    pick = iter(range(len(clean)))
    while n_exact > 0:
        i = next(pick)
        copies = min(n_exact, 2 if rng.random() < 0.2 else 1)
        n_exact -= copies
        exact_groups.append((i, copies))
    while n_near > 0:
        i = next(pick)
        copies = min(n_near, 2 if rng.random() < 0.3 else 1)
        n_near -= copies
        near_groups.append((i, copies))
    exact_of = {i: c for i, c in exact_groups}
    near_of = {i: c for i, c in near_groups}
    groups: dict[str, list[list[int]]] = {"exact_duplicates": [], "near_duplicates": []}
    for i, (spec, data, _) in enumerate(clean):
        if i in exact_of:
            members = [add(data, "exact_duplicates") for _ in range(exact_of[i] + 1)]
            groups["exact_duplicates"].append(members)
        elif i in near_of:
            members = [add(data, "near_duplicates")]
            original = Image.open(io.BytesIO(data)).convert("RGB")
            copy_rng = np.random.default_rng(spec.seed + 1)
            for _ in range(near_of[i]):
                modified = _near_copy(original, copy_rng)
                quality = int(copy_rng.integers(40, 61)) if modified is original else int(copy_rng.integers(70, 91))
                members.append(add(_jpeg(modified, quality), "near_duplicates"))
            groups["near_duplicates"].append(members)
        else:
            add(data)

    # Neutral, shuffled names so no tool can learn anything from them.
    names = [f"img_{j:05d}.jpg" for j in rng.permutation(len(files))]
    for name, data in zip(names, files):
        (images / name).write_bytes(data)
    info = {
        "generator_version": GENERATOR_VERSION,
        "images_dir": str(images),
        "n_images": len(files),
        "seed": seed,
        "sources": len(photos),
        "rejected_similar_crops": rejected,
        "truth": {k: sorted(names[i] for i in v) for k, v in truth.items()},
        "groups": {k: [[names[i] for i in g] for g in v] for k, v in groups.items()},
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    gt_path.write_text(json.dumps(info, indent=1))
    if verbose:
        print(f"built {len(files)} images in {info['build_seconds']} s under {images} "
              f"({rejected} similar crops rejected)", file=sys.stderr)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/visionaudit-bench")
    ap.add_argument("--n-images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    info = build(args.out, args.n_images, args.seed, args.workers)
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in info["truth"].items()}, indent=1))


if __name__ == "__main__":
    main()
