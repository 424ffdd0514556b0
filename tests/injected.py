"""A COCO128 folder (all 256 train+val photos, copied) plus one injected file per known problem.

Used by the integrity and quality tests: each test asserts the exact set of files a check flags.
Sources are fixed COCO images picked by name so the injected copies are reproducible.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from conftest import coco_images
from PIL import Image, ImageEnhance, ImageFilter

# A plain, sharp, well-exposed colour photo used as the source of most injections.
SOURCE = "000000000136.jpg"

QUALITY_INJECTED = {
    "blurry": {"inj_blur_r3.jpg", "inj_blur_r6.jpg"},
    "dark": {"inj_dark.jpg"},
    "overexposed": {"inj_overexposed.jpg"},
    "low_contrast": {"inj_low_contrast.jpg"},
    "low_information": {"inj_near_uniform.png"},
    "noisy": {"inj_noise_s25.jpg", "inj_noise_s40.jpg"},
    "jpeg_artifacts": {"inj_jpeg_q5.jpg", "inj_jpeg_q10.jpg"},
    "grayscale_as_rgb": {"inj_gray_as_rgb.jpg"},
    "odd_size": {"inj_tiny_40.jpg"},
    "odd_aspect_ratio": {"inj_panorama.jpg"},
}
INTEGRITY_INJECTED = {
    "wrong_extension": {"inj_png_named.jpg"},
    "exif_rotation": {"inj_exif_rot6.jpg"},
    "cmyk_images": {"inj_cmyk.jpg"},
    "high_bit_depth": {"inj_16bit.png"},
    "palette_images": {"inj_palette.png"},
    "alpha_channel": {"inj_rgba.png"},
}


def _save_jpeg(im: Image.Image, path: Path, quality: int = 95, **kw) -> None:
    im.save(path, "JPEG", quality=quality, **kw)


def build_injected_coco(root: Path) -> Path:
    """Copy the 256 COCO128 photos to ``root`` and add the injected files listed above."""
    root.mkdir(parents=True, exist_ok=True)
    files = coco_images("train2017") + coco_images("val2017")
    for f in files:
        shutil.copyfile(f, root / f.name)
    src = Image.open(root / SOURCE).convert("RGB")
    arr = np.asarray(src, dtype=np.float64)
    rng = np.random.default_rng(0)

    _save_jpeg(src.filter(ImageFilter.GaussianBlur(3)), root / "inj_blur_r3.jpg")
    _save_jpeg(src.filter(ImageFilter.GaussianBlur(6)), root / "inj_blur_r6.jpg")
    _save_jpeg(Image.fromarray(np.round(arr * 0.15).astype(np.uint8)), root / "inj_dark.jpg")
    _save_jpeg(Image.fromarray(np.clip(arr + 150, 0, 255).astype(np.uint8)), root / "inj_overexposed.jpg")
    _save_jpeg(ImageEnhance.Contrast(src).enhance(0.15), root / "inj_low_contrast.jpg")
    # A blank frame (lens cap, empty conveyor): one flat colour with faint sensor noise.
    flat = np.clip(np.array([118.0, 126.0, 110.0]) + rng.normal(0, 1.5, arr.shape), 0, 255)
    Image.fromarray(np.round(flat).astype(np.uint8)).save(root / "inj_near_uniform.png")
    for sigma in (25, 40):
        noisy = np.clip(arr + rng.normal(0, sigma, arr.shape), 0, 255)
        _save_jpeg(Image.fromarray(np.round(noisy).astype(np.uint8)), root / f"inj_noise_s{sigma}.jpg")
    for q in (5, 10):
        _save_jpeg(src, root / f"inj_jpeg_q{q}.jpg", quality=q)
    _save_jpeg(src.convert("L").convert("RGB"), root / "inj_gray_as_rgb.jpg")
    _save_jpeg(src.resize((40, 40), Image.Resampling.LANCZOS), root / "inj_tiny_40.jpg")
    w, h = src.size
    _save_jpeg(src.crop((0, h // 2 - w // 20, w, h // 2 + w // 20)).resize((1000, 100)), root / "inj_panorama.jpg")

    # Integrity injections, from a second photo so they are not all near-copies of one image.
    other = Image.open(root / "000000000025.jpg").convert("RGB")
    buf = io.BytesIO()
    other.save(buf, "PNG")
    (root / "inj_png_named.jpg").write_bytes(buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6
    _save_jpeg(other, root / "inj_exif_rot6.jpg", exif=exif)
    _save_jpeg(other.convert("CMYK"), root / "inj_cmyk.jpg")
    gray16 = (np.asarray(other.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(root / "inj_16bit.png")
    other.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(root / "inj_palette.png")
    rgba = other.copy()
    rgba.putalpha(Image.fromarray(np.full((other.height, other.width), 200, np.uint8)))
    rgba.save(root / "inj_rgba.png")
    return root
