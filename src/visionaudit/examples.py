"""A small, generated, labelled image dataset with one of every problem visionaudit looks for.

``visionaudit example-data DIR`` (and the README's first command) writes it, so the scan has something
to show without downloading anything. Scenes are drawn with numpy and Pillow only: sky gradients,
horizons, sun, buildings with windows, trees, flowers, sensor noise, then JPEG encoding. Each class
has its own layout and palette; positions, sizes and colours vary per image, so clean images are
neither duplicates nor outliers of one another.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .errors import ArgumentError

Rng = np.random.Generator
#: Images per split and class, before the planted extras. ``meadow`` is the planted rare class (none in
#: test, so it is also a class missing from a split) and the test mix leans to ``beach`` (label shift).
LAYOUT: dict[str, dict[str, int]] = {
    "train": {"beach": 40, "city": 40, "forest": 40, "meadow": 3},
    "val": {"beach": 10, "city": 10, "forest": 10, "meadow": 1},
    "test": {"beach": 32, "city": 8, "forest": 5},
}
_EXIF_ORIENTATION = 0x0112


def _gradient(h: int, w: int, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()


def _jitter(rng: Rng, colour: tuple[float, float, float], spread: float = 18.0) -> np.ndarray:
    """``colour`` shifted in brightness by about ``spread`` and in hue by a third of that."""
    shift = rng.normal(0, spread) + rng.normal(0, spread / 3, 3)
    return np.clip(np.asarray(colour, dtype=float) + shift, 0, 255)


def _texture(rng: Rng, h: int, w: int, scale: int) -> np.ndarray:
    """Smooth random field, about [-1, 1]: coarse noise upsampled bicubically (grass, sand, water)."""
    coarse = rng.uniform(-1, 1, (max(2, h // scale), max(2, w // scale))).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.Resampling.BICUBIC))[..., None]


def _sun(rng: Rng, img: np.ndarray, horizon: int) -> None:
    h, w, _ = img.shape
    cy, cx = rng.uniform(0.08, 0.7) * horizon, rng.uniform(0.1, 0.9) * w
    r = rng.uniform(0.04, 0.09) * w
    # The glow fades to nothing at 3.5 radii: only that box is touched.
    y0, y1 = max(0, int(cy - 3.5 * r)), min(h, int(cy + 3.5 * r) + 1)
    x0, x1 = max(0, int(cx - 3.5 * r)), min(w, int(cx + 3.5 * r) + 1)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    glow = np.clip(1.4 - d / r * 0.4, 0, 1)[..., None] * np.where(d <= r, 1.0, 0.45)[..., None]
    box = img[y0:y1, x0:x1]
    box += glow * (_jitter(rng, (255, 236, 170), 8) - box) * 0.9


def _beach(rng: Rng, h: int, w: int) -> np.ndarray:
    horizon = int(h * rng.uniform(0.3, 0.55))
    shore = horizon + int(h * rng.uniform(0.12, 0.3))
    img = _gradient(h, w, _jitter(rng, (70, 130, 205)), _jitter(rng, (185, 215, 240)))
    _sun(rng, img, horizon)
    sea = _gradient(shore - horizon, w, _jitter(rng, (20, 80, 130)), _jitter(rng, (40, 150, 170)))
    rows = np.arange(shore - horizon)[:, None]
    waves = np.sin(rows * rng.uniform(0.5, 1.2) + _texture(rng, shore - horizon, w, 24)[..., 0] * 3)
    img[horizon:shore] = sea + waves[..., None] * 14 + _texture(rng, shore - horizon, w, 2) * 12
    sand = _jitter(rng, (215, 190, 145))
    img[shore:] = sand + _texture(rng, h - shore, w, 2) * 28 + _texture(rng, h - shore, w, 6) * 22 \
        + _texture(rng, h - shore, w, 40) * 18
    return img


_FACADES = [(150, 80, 60), (150, 150, 145), (190, 170, 130), (90, 110, 130), (110, 100, 95)]


def _city(rng: Rng, h: int, w: int) -> np.ndarray:
    img = _gradient(h, w, _jitter(rng, (120, 145, 180)), _jitter(rng, (230, 190, 150)))
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    ground = int(h * rng.uniform(0.8, 0.92))
    x = int(-rng.uniform(0, 30))
    while x < w:
        bw = int(rng.uniform(0.1, 0.24) * w)
        top = int(h * rng.uniform(0.12, 0.6))
        facade = _FACADES[int(rng.integers(len(_FACADES)))]
        shade = tuple(int(v) for v in _jitter(rng, facade, 20))
        draw.rectangle([x, top, x + bw, ground], fill=shade)
        win = tuple(int(min(255, v + rng.uniform(40, 90))) for v in shade)
        step_x, step_y = int(rng.integers(9, 15)), int(rng.integers(11, 18))
        for wy in range(top + 6, ground - 8, step_y):
            for wx in range(x + 4, x + bw - 6, step_x):
                if rng.random() < 0.8:
                    draw.rectangle([wx, wy, wx + step_x // 2, wy + step_y // 2], fill=win)
        x += bw + int(rng.integers(0, 12))
    draw.rectangle([0, ground, w, h], fill=tuple(int(v) for v in _jitter(rng, (70, 70, 75), 10)))
    return np.asarray(im, dtype=float)


def _forest(rng: Rng, h: int, w: int) -> np.ndarray:
    treeline = int(h * rng.uniform(0.15, 0.4))
    img = _gradient(h, w, _jitter(rng, (150, 185, 215)), _jitter(rng, (205, 220, 225)))
    img[treeline:] = _jitter(rng, (60, 95, 45)) + _texture(rng, h - treeline, w, 2) * 28 \
        + _texture(rng, h - treeline, w, 8) * 20
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(14, 30))):
        base = int(rng.uniform(treeline + 10, h + 20))
        cx, th = rng.uniform(0, w), rng.uniform(0.25, 0.6) * h * (0.5 + base / h / 2)
        half = th * rng.uniform(0.2, 0.35)
        draw.rectangle([cx - half * 0.12, base - th * 0.2, cx + half * 0.12, base], fill=(80, 55, 35))
        green = tuple(int(v) for v in _jitter(rng, (30, 85, 40), 15))
        draw.polygon([(cx, base - th), (cx - half, base - th * 0.15), (cx + half, base - th * 0.15)], fill=green)
    return np.asarray(im, dtype=float)


def _meadow(rng: Rng, h: int, w: int) -> np.ndarray:
    horizon = int(h * rng.uniform(0.25, 0.5))
    img = _gradient(h, w, _jitter(rng, (90, 150, 220)), _jitter(rng, (200, 225, 245)))
    _sun(rng, img, horizon)
    img[horizon:] = _gradient(h - horizon, w, _jitter(rng, (120, 170, 70)), _jitter(rng, (70, 130, 40))) \
        + _texture(rng, h - horizon, w, 2) * 28 + _texture(rng, h - horizon, w, 5) * 25
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    palette = [(220, 40, 50), (245, 210, 40), (150, 80, 190), (250, 250, 245)]
    for _ in range(int(rng.integers(80, 200))):
        y = rng.uniform(horizon + 4, h)
        r = 1 + 5 * (y - horizon) / (h - horizon)
        x = rng.uniform(0, w)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=palette[int(rng.integers(len(palette)))])
    return np.asarray(im, dtype=float)


SCENES: dict[str, Callable[[Rng, int, int], np.ndarray]] = {
    "beach": _beach, "city": _city, "forest": _forest, "meadow": _meadow,
}


def make_scene(rng: Rng, label: str, size: tuple[int, int] | None = None) -> Image.Image:
    """One natural-looking RGB scene of class ``label`` (sizes 200-320 px unless given as (w, h)).

    >>> make_scene(np.random.default_rng(0), "beach").mode
    'RGB'
    """
    w, h = size or (int(rng.integers(200, 321)), int(rng.integers(200, 321)))
    # Uneven light (cloud shadows, vignetting) varies the large-scale layout that perceptual hashes see.
    light = 1.0 + 0.35 * _texture(rng, h, w, max(h, w) // 6)
    sensor_noise = rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(2.0, 4.0)
    pixels = SCENES[label](rng, h, w) * light + sensor_noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _jpeg(im: Image.Image, rng: Rng, **options: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(88, 96)), **options)
    return buf.getvalue()


def _check_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ArgumentError("target", str(target), "a folder that does not exist yet or is empty")


def make_example_dataset(target: str | os.PathLike, seed: int = 0) -> dict[str, Any]:
    """Write a labelled ImageFolder tree ``target/{train,val,test}/{class}/*.jpg`` with planted problems.

    About 200 JPEGs of four scene classes (beach, city, forest, and a rare meadow class). Planted: an
    exact duplicate, a resized near duplicate, a train image copied into test, a resized and brightened
    train image in val, a copy filed under another class, a blurred, a dark and an overexposed image,
    a truncated JPEG, a zero-byte file, a PNG named .jpg, a JPEG with an EXIF rotation tag, a tiny
    image, a thin strip, a noisy, a hazy (low-contrast) and a blank image, a heavily compressed JPEG,
    a grayscale photo stored as RGB, a rare class (hence class imbalance), a class missing from test
    and a test split whose label mix leans to one class.
    Same ``seed``, same bytes. Refuses a ``target`` that exists and is not an empty folder.

    Returns ``{"images": n, "planted": [problem, ...], "planted_files": {problem: [sample id, ...]}}``
    where sample ids are paths relative to ``target`` (as ``visionaudit.scan`` names them); for
    duplicates and copies the original comes first; problems of the class counts list no files.

    >>> info = make_example_dataset("example")
    >>> info["images"], info["planted"][:2], info["planted_files"]["blurry"]
    (218, ['exact_duplicate', 'near_duplicate'], ['train/beach/beach_0010.jpg'])
    >>> make_example_dataset("example")                    # doctest: +ELLIPSIS
    Traceback (most recent call last):
    visionaudit.errors.ArgumentError: invalid target='example': expected a folder that does not exist yet or is empty...
    """
    target = Path(target)
    _check_target(target)
    rng = np.random.default_rng(seed)
    folders: dict[str, list[bytes]] = {}   # "split/class" -> file contents; named after shuffling

    def add(folder: str, data: bytes) -> tuple[str, int]:
        folders.setdefault(folder, []).append(data)
        return folder, len(folders[folder]) - 1

    for split, classes in LAYOUT.items():
        for label, n in classes.items():
            for _ in range(n):
                add(f"{split}/{label}", _jpeg(make_scene(rng, label), rng))

    plants: dict[str, list[tuple[str, int]]] = {}
    src = ("train/city", 3)
    plants["exact_duplicate"] = [src, add("train/city", folders[src[0]][src[1]])]
    src = ("train/forest", 5)
    original = Image.open(io.BytesIO(folders[src[0]][src[1]]))
    smaller = original.resize((original.width * 2 // 3, original.height * 2 // 3), Image.Resampling.LANCZOS)
    plants["near_duplicate"] = [src, add("train/forest", _jpeg(smaller, rng))]
    src = ("train/city", 9)
    original = Image.open(io.BytesIO(folders[src[0]][src[1]]))
    edited = original.resize((original.width * 4 // 5, original.height * 4 // 5), Image.Resampling.LANCZOS)
    edited = Image.fromarray(np.clip(np.asarray(edited, dtype=float) * 1.1, 0, 255).astype(np.uint8))
    plants["near_split_copy"] = [src, add("val/city", _jpeg(edited, rng))]
    src = ("train/beach", 7)
    plants["cross_split_copy"] = [src, add("test/beach", folders[src[0]][src[1]])]
    plants["blurry"] = [add("train/beach", _jpeg(make_scene(rng, "beach").filter(ImageFilter.GaussianBlur(8)), rng))]
    dark = np.asarray(make_scene(rng, "city"), dtype=float) * 0.1
    plants["dark"] = [add("train/city", _jpeg(Image.fromarray(dark.astype(np.uint8)), rng))]
    bright = np.asarray(make_scene(rng, "beach"), dtype=float) * 1.4 + 110
    plants["overexposed"] = [add("val/beach", _jpeg(Image.fromarray(np.clip(bright, 0, 255).astype(np.uint8)), rng))]
    whole = _jpeg(make_scene(rng, "beach"), rng)
    plants["truncated"] = [add("val/beach", whole[: len(whole) * 11 // 20])]
    plants["zero_byte"] = [add("train/city", b"")]
    png = io.BytesIO()
    make_scene(rng, "forest").save(png, "PNG")
    plants["wrong_extension"] = [add("train/forest", png.getvalue())]
    exif = Image.Exif()
    exif[_EXIF_ORIENTATION] = 6  # "rotate 90 degrees clockwise to display", as phone cameras write
    plants["exif_orientation"] = [add("train/beach", _jpeg(make_scene(rng, "beach"), rng, exif=exif))]
    plants["odd_size"] = [add("train/city", _jpeg(make_scene(rng, "city", size=(36, 24)), rng))]
    plants["odd_aspect_ratio"] = [add("train/beach", _jpeg(make_scene(rng, "beach", size=(320, 72)), rng))]
    grainy = np.asarray(make_scene(rng, "city"), dtype=float)
    grainy += rng.normal(0, 40, grainy.shape)  # independent per pixel and channel, like high-ISO sensor noise
    # Full-resolution colour (4:4:4): 4:2:0 would average the colour noise over 2x2 pixels.
    noisy = _jpeg(Image.fromarray(np.clip(grainy, 0, 255).astype(np.uint8)), rng, subsampling=0)
    plants["noisy"] = [add("train/city", noisy)]
    flat = np.asarray(make_scene(rng, "forest"), dtype=float)
    flat = flat.mean(axis=(0, 1)) + (flat - flat.mean(axis=(0, 1))) * 0.12  # haze: a tenth of the tonal range
    plants["low_contrast"] = [add("train/forest", _jpeg(Image.fromarray(flat.astype(np.uint8)), rng))]
    blank = np.full((240, 280, 3), _jitter(rng, (110, 115, 120), 10)) + rng.normal(0, 1.0, (240, 280, 1))
    plants["low_information"] = [add("val/city", _jpeg(Image.fromarray(np.clip(blank, 0, 255).astype(np.uint8)), rng))]
    buf = io.BytesIO()
    make_scene(rng, "beach").save(buf, "JPEG", quality=8)
    plants["jpeg_artifacts"] = [add("train/beach", buf.getvalue())]
    plants["grayscale_as_rgb"] = [add("train/city", _jpeg(make_scene(rng, "city").convert("L").convert("RGB"), rng))]
    src = ("train/beach", 11)
    plants["conflicting_labels"] = [src, add("train/forest", folders[src[0]][src[1]])]

    # Shuffle within each folder so planted files are not simply the last ones, then name and write.
    names: dict[tuple[str, int], str] = {}
    for folder, blobs in folders.items():
        label = folder.split("/")[1]
        for k, i in enumerate(rng.permutation(len(blobs))):
            names[(folder, int(i))] = f"{folder}/{label}_{k:04d}.jpg"
    for (folder, i), rel in names.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(folders[folder][i])

    planted_files = {name: [names[w] for w in where] for name, where in plants.items()}
    planted_files["rare_class"] = sorted(n for n in names.values() if "/meadow/" in n)
    planted_files["class_imbalance"] = []           # properties of the class counts, not of files
    planted_files["class_missing_from_split"] = []
    planted_files["split_label_shift"] = []
    return {"images": len(names), "planted": list(planted_files), "planted_files": planted_files}
