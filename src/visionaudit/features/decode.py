"""The one place an image file is opened and decoded.

:func:`measure_file` reads a file once, decodes it once at reduced size (JPEG draft mode, integer
``reduce`` for other formats) and returns one flat row of integrity facts, quality properties and
fingerprints. It never raises for a bad file: the row carries ``error_kind`` and ``error`` instead.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import hashing, properties

#: Bumped whenever the meaning of a cached feature changes, so stale cache rows are recomputed.
FEATURE_VERSION = 2
#: Long side (pixels) the analysis works at; JPEG decoding is asked for at least this size.
WORK_SIZE = 128
#: Images with more pixels than this are not decoded (decompression-bomb guard); Pillow's own limit x2.
DEFAULT_MAX_PIXELS = 2 * 89_478_485

_EXT_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
    ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".ppm": "PPM", ".pgm": "PPM", ".pbm": "PPM",
}
_EXIF_ORIENTATION = 0x0112

#: Columns every row has, with the value used when it could not be measured.
COLUMNS: dict[str, Any] = {
    "content_hash": None, "file_size": -1, "error_kind": None, "error": None,
    "format": None, "ext_format": None, "mode": None, "width": -1, "height": -1,
    "exif_orientation": 0, "has_alpha": False, "bit_depth": 8, "jpeg_quality": np.nan, "missing_eoi": False,
    "brightness": np.nan, "contrast": np.nan, "dynamic_range": np.nan, "dark_fraction": np.nan,
    "bright_fraction": np.nan, "entropy": np.nan, "sharpness": np.nan, "noise": np.nan,
    "channel_spread": np.nan, "phash": 0, "dhash": 0, "tiny": b"", "thumb": b"",
}


def _row(**values: Any) -> dict[str, Any]:
    row = dict(COLUMNS)
    row.update(values)
    return row


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _has_end_marker(fmt: str | None, data: bytes) -> bool:
    tail = data[-4096:]
    if fmt == "JPEG":
        return b"\xff\xd9" in tail
    if fmt == "PNG":
        return b"IEND" in tail
    return True


def _to_rgb_or_l(im: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit 'RGB' or 'L' for measuring (16-bit scaled, alpha dropped)."""
    if im.mode in ("RGB", "L"):
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() if a.size else 1.0
        scale = 255.0 / (65535.0 if hi > 255 else max(hi, 1.0))
        return Image.fromarray(np.clip(a * scale, 0, 255).astype(np.uint8), "L")
    if im.mode in ("1", "LA", "La"):
        return im.convert("L")
    return im.convert("RGB")


def ext_format(path: str) -> str | None:
    """The image format a file's extension promises (None for an unknown extension)."""
    return _EXT_FORMATS.get(os.path.splitext(path)[1].lower())


def read_file(path: str) -> tuple[bytes | None, dict[str, Any] | None]:
    """The file's bytes, or None and an error row saying why it could not be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read(), None
    except FileNotFoundError:
        return None, _row(error_kind="missing", error="file not found", ext_format=ext_format(path))
    except OSError as exc:
        return None, _row(error_kind="unreadable", error=f"cannot read file: {exc}", ext_format=ext_format(path))


def measure_file(path: str, max_pixels: int = DEFAULT_MAX_PIXELS, work_size: int = WORK_SIZE) -> dict[str, Any]:
    """Read, decode and measure one image file; never raises for a bad file.

    >>> row = measure_file("cat.jpg")   # doctest: +SKIP
    >>> row["width"], row["brightness"], row["error_kind"]  # doctest: +SKIP
    (640, 0.43, None)
    """
    data, error_row = read_file(path)
    if data is None:
        return error_row
    return measure_bytes(data, ext_format=ext_format(path), max_pixels=max_pixels, work_size=work_size)


def measure_bytes(data: bytes, ext_format: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                  work_size: int = WORK_SIZE, digest: str | None = None) -> dict[str, Any]:
    """Measure an encoded image held in memory (see :func:`measure_file`); ``digest`` is its
    :func:`content_hash` when the caller already has it."""
    base = {"content_hash": digest or content_hash(data), "file_size": len(data), "ext_format": ext_format}
    if not data:
        return _row(**base, error_kind="zero_byte", error="file is empty (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            return _row(**base, error_kind="too_large", error=f"decompression bomb guard: {exc}")
        except UnidentifiedImageError:
            return _row(**base, error_kind="not_image", error="not a recognised image format")
        except Exception as exc:  # noqa: BLE001 - any parser failure is a finding, not a crash
            return _row(**base, error_kind="unreadable", error=f"cannot parse header: {exc}")
        fmt = im.format
        width, height = im.size
        header = dict(base, format=fmt, mode=im.mode, width=width, height=height)
        if width * height > max_pixels:
            return _row(**header, error_kind="too_large",
                        error=f"{width}x{height} = {width * height:,} pixels exceeds the {max_pixels:,}-pixel decode limit")
        try:
            orientation = int(im.getexif().get(_EXIF_ORIENTATION, 0) or 0)
        except Exception:  # noqa: BLE001 - a broken EXIF block must not hide the pixels
            orientation = 0
        header.update(
            exif_orientation=orientation,
            has_alpha=im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info,
            bit_depth=16 if im.mode.startswith("I;16") or im.mode in ("I", "F") else 8,
            jpeg_quality=properties.jpeg_quality(getattr(im, "quantization", None)) if fmt == "JPEG" else np.nan,
            missing_eoi=not _has_end_marker(fmt, data),
        )
        try:
            if fmt == "JPEG":
                im.draft(im.mode if im.mode in ("RGB", "L") else None, (work_size, work_size))
            im.load()
        except Exception as exc:  # noqa: BLE001
            msg = str(exc)
            kind = "truncated" if "truncated" in msg or "broken data stream" in msg or header["missing_eoi"] else "unreadable"
            return _row(**header, error_kind=kind, error=f"cannot decode pixels: {msg}")
    factor = max(1, min(im.size) // work_size) if fmt != "JPEG" else max(1, max(im.size) // (2 * work_size))
    if factor > 1:
        im = im.reduce(factor)
    im = _to_rgb_or_l(im)
    gray_im = im.convert("L") if im.mode == "RGB" else im
    stats = properties.histogram_stats(gray_im.histogram())
    gray = np.asarray(gray_im, dtype=np.float32)
    stats.update(properties.sharpness_and_noise(gray))
    stats["channel_spread"] = properties.channel_spread(np.asarray(im)) if im.mode == "RGB" else 0.0
    g32 = np.asarray(gray_im.resize((32, 32), Image.Resampling.BOX), dtype=np.float32)
    return _row(**header, **stats, phash=hashing.phash(g32), dhash=hashing.dhash(g32), tiny=hashing.tiny(g32),
                thumb=hashing.thumb(g32))


def open_for_display(path: str, size: int, exif_transpose: bool = False) -> Image.Image | None:
    """Decode an image small, for thumbnails in reports; None when it cannot be decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(path)
            if im.width * im.height > DEFAULT_MAX_PIXELS:
                return None
            if im.format == "JPEG":
                im.draft("RGB" if im.mode in ("RGB", "YCbCr") else None, (size, size))
            im.load()
            if exif_transpose:
                im = ImageOps.exif_transpose(im)
            im = _to_rgb_or_l(im).convert("RGB")
            im.thumbnail((size, size))
            return im
    except Exception:  # noqa: BLE001
        return None
