"""The one place an image file is opened and decoded.

:func:`measure_file` reads a file once, decodes it once at reduced size (JPEG draft mode, integer
``reduce`` for other formats) and returns one flat row of integrity facts, quality properties and
fingerprints. It never raises for a bad file: the row carries ``error_kind`` and ``error`` instead.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from typing import Any

import numpy as np
import xxhash
from PIL import Image, ImageOps, UnidentifiedImageError

from . import hashing, properties
from .thumbnails import make_preview

#: Bumped whenever the meaning of a cached feature changes, so stale cache rows are recomputed.
FEATURE_VERSION = 8
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
    "megapixels": np.nan, "aspect_ratio": np.nan,
    "exif_orientation": 0, "has_alpha": False, "bit_depth": 8, "jpeg_quality": np.nan, "missing_eoi": False,
    "brightness": np.nan, "contrast": np.nan, "dynamic_range": np.nan, "dark_fraction": np.nan,
    "bright_fraction": np.nan, "entropy": np.nan, "shadows": np.nan, "highlights": np.nan,
    "relative_contrast": np.nan, "sharpness": np.nan, "edge_sharpness": np.nan, "noise": np.nan,
    "channel_spread": np.nan, "background_share": np.nan, "background_level": np.nan, "foreground_shadows": np.nan,
    "phash": 0, "dhash": 0, "tiny": b"", "thumb": b"",
}


def _row(**values: Any) -> dict[str, Any]:
    row = dict(COLUMNS)
    row.update(values)
    return row


def content_hash(data: bytes) -> str:
    """128-bit hex digest of a file's bytes: XXH3-128, ~0.2 us for a 15 KB JPEG against ~8 us for
    SHA-256 (3% of measuring it). It keys the cache and finds byte-identical files; nothing here needs
    a digest that resists a forger."""
    return xxhash.xxh3_128_hexdigest(data)


def _jpeg_has_eoi(data: bytes) -> bool:
    """True if an end-of-image marker follows the first scan's start.

    Entropy-coded data never contains FF D9, so searching from the first SOS finds the real end
    marker and not an EXIF thumbnail's, and still finds it when other data (a motion photo's video,
    a maker trailer) follows the image.
    """
    pos, n = 2, len(data)
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:
            return data.rfind(b"\xff\xd9", pos) != -1  # from the end: the marker is usually last
        if marker == 0xFF or 0xD0 <= marker <= 0xD8 or marker == 0x01:  # fill byte or marker without length
            pos += 1 if marker == 0xFF else 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return b"\xff\xd9" in data[-4096:]  # headers we cannot walk: fall back to looking at the tail


def _has_end_marker(fmt: str | None, data: bytes) -> bool:
    if fmt in ("JPEG", "MPO"):
        return _jpeg_has_eoi(data)
    if fmt == "PNG":
        return b"IEND" in data[-4096:]
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


def _pixels(im: Image.Image) -> np.ndarray:
    """An 8-bit 'L' or 'RGB' image as a read-only (h, w) or (h, w, 3) uint8 array.

    frombuffer(tobytes()) costs a third of np.asarray's array-interface path on 128 px images.
    """
    shape = (im.height, im.width) if im.mode == "L" else (im.height, im.width, len(im.getbands()))
    return np.frombuffer(im.tobytes(), dtype=np.uint8).reshape(shape)


def _gray_and_rgb(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """The (h, w) gray pixels of an 8-bit 'L' or 'RGB' image, and its (h, w, 3) pixels if it is RGB.

    The compiled kernel converts RGB to gray as Pillow's convert("L") does (same bytes), saving that
    call and a second tobytes (~20 us of ~420 per 128 px image).
    """
    if im.mode != "RGB":
        return _pixels(im), None
    rgb = _pixels(im)
    if properties._kernel is not None:
        return np.frombuffer(properties._kernel.luminance(rgb), dtype=np.uint8).reshape(rgb.shape[:2]), rgb
    return _pixels(im.convert("L")), rgb


def draft_size(width: int, height: int, work_size: int = WORK_SIZE) -> tuple[int, int]:
    """The size to ask JPEG draft mode for: long side ``work_size``, the image's aspect kept.

    Draft mode picks the smallest 1/2, 1/4 or 1/8 scale at least this large in both directions;
    asking for a square would make a 640x480 photo decode at 320x240 (short side >= 128) rather
    than 160x120, four times the pixels to decode and measure.

    >>> draft_size(640, 480, 128)
    (128, 96)
    """
    scale = work_size / max(width, height, 1)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def ext_format(path: str) -> str | None:
    """The image format a file's extension promises (None for an unknown extension)."""
    return _EXT_FORMATS.get(os.path.splitext(path)[1].lower())


def read_file(path: str) -> tuple[bytes | None, dict[str, Any] | None]:
    """The file's bytes, or None and an error row saying why it could not be read."""
    try:
        with open(path, "rb", buffering=0) as fh:   # one read of the whole file: no buffer to fill and copy
            return fh.read(), None
    except FileNotFoundError:
        return None, _row(error_kind="missing", error="file not found", ext_format=ext_format(path))
    except OSError as exc:
        return None, _row(error_kind="unreadable", error=f"cannot read file: {exc}", ext_format=ext_format(path))


def measure_file(path: str, max_pixels: int = DEFAULT_MAX_PIXELS, work_size: int = WORK_SIZE) -> dict[str, Any]:
    """Read, decode and measure one image file; never raises for a bad file.

    >>> row = measure_file("data/train/beach/beach_0000.jpg")
    >>> row["width"], round(row["brightness"], 3), row["error_kind"]
    (232, 0.551, None)
    >>> row = measure_file("data/val/beach/beach_0011.jpg")       # the example's truncated JPEG
    >>> row["error_kind"], row["error"]
    ('truncated', 'cannot decode pixels: image file is truncated (78 bytes not processed)')
    """
    data, error_row = read_file(path)
    if data is None:
        return error_row
    return measure_bytes(data, ext_format=ext_format(path), max_pixels=max_pixels, work_size=work_size)


def measure_bytes(data: bytes, ext_format: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                  work_size: int = WORK_SIZE, digest: str | None = None, preview: bool = False) -> dict[str, Any]:
    """Measure an encoded image held in memory (see :func:`measure_file`); ``digest`` is its
    :func:`content_hash` when the caller already has it, ``preview`` as in :func:`measure_quietly`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return measure_quietly(data, ext_format, max_pixels, work_size, digest, preview)


def measure_quietly(data: bytes, ext_format: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                    work_size: int = WORK_SIZE, digest: str | None = None, preview: bool = False) -> dict[str, Any]:
    """:func:`measure_bytes` for a caller that already silences Pillow's warnings (a broken EXIF
    block, a large image). With ``preview``, a decoded image's row also has a ``preview``: the small
    JPEG of the pixels it measured that the report's thumbnail is made from
    (:func:`visionaudit.features.thumbnails.make_preview`)."""
    base = {"content_hash": digest or content_hash(data), "file_size": len(data), "ext_format": ext_format}
    if not data:
        return _row(**base, error_kind="zero_byte", error="file is empty (0 bytes)")
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
    header = dict(base, format=fmt, mode=im.mode, width=width, height=height, megapixels=width * height / 1e6,
                  aspect_ratio=max(width, height) / max(min(width, height), 1))
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
        # Pillow reads 16-bit RGB(A) PNGs as 8-bit modes: the IHDR bit depth (byte 24) tells.
        bit_depth=16 if (im.mode.startswith("I;16") or im.mode in ("I", "F")
                         or (fmt == "PNG" and len(data) > 24 and data[24] == 16)) else 8,
        jpeg_quality=properties.jpeg_quality(getattr(im, "quantization", None)) if fmt == "JPEG" else np.nan,
        missing_eoi=not _has_end_marker(fmt, data),
    )
    try:
        if fmt == "JPEG":
            im.draft(im.mode if im.mode in ("RGB", "L") else None, draft_size(width, height, work_size))
        im.load()
    except Exception as exc:  # noqa: BLE001
        msg = str(exc)
        kind = "truncated" if "truncated" in msg or "broken data stream" in msg or header["missing_eoi"] else "unreadable"
        return _row(**header, error_kind=kind, error=f"cannot decode pixels: {msg}")
    if header["missing_eoi"]:  # decoded anyway (e.g. ImageFile.LOAD_TRUNCATED_IMAGES): the end is filler
        return _row(**header, error_kind="truncated",
                    error=f"the {fmt} data ends before its end marker; the missing part decodes as filler")
    factor = max(1, min(im.size) // work_size) if fmt != "JPEG" else max(1, max(im.size) // (2 * work_size))
    im = _to_rgb_or_l(im)  # first: Image.reduce rejects palette and 16-bit modes
    if factor > 1:
        im = im.reduce(factor)
    stats, thumb, phash, dhash, tiny = _measure_pixels(im)
    # The fraction of its own size the image was measured at (1/2, 1/4 or 1/8 from draft mode, 1/factor
    # from reduce): edge sharpness is judged in the image's own pixels down to a quarter of them.
    stats["edge_sharpness"] = properties.in_own_pixels(stats["edge_sharpness"], max(im.size) / max(width, height))
    row = _row(**header, **stats, phash=phash, dhash=dhash, tiny=tiny, thumb=thumb)
    if preview:
        row["preview"] = make_preview(im)
    return row


def _measure_pixels(im: Image.Image) -> tuple[dict[str, float], bytes, int, int, bytes]:
    """(properties.pixel_stats, hashing.thumbnail, phash, dhash, tiny) of an 8-bit 'L' or 'RGB' image.

    The compiled kernel's ``measure`` does all five in one call from the image's bytes when the
    image is no taller than wide (~35 us less per 128 px image than the calls one by one); otherwise
    the functions of properties.py and hashing.py, which give the same values.
    """
    if properties._kernel is not None and im.height <= im.width:
        values, thumb, phash, dhash, tiny = properties._kernel.measure(im.tobytes(), im.height, im.width,
                                                                       len(im.getbands()), hashing.DCT8_BYTES)
        return dict(zip(properties.PIXEL_STATS, values)), thumb, phash, dhash, tiny
    gray, rgb = _gray_and_rgb(im)
    thumb = hashing.thumbnail(gray)
    # float64: the hash bases' type, no cast per product; from the thumbnail's bytes, not a second copy.
    g32 = np.frombuffer(thumb, dtype=np.uint8).reshape(hashing.THUMB_SIDE, hashing.THUMB_SIDE).astype(np.float64)
    return (properties.pixel_stats(gray, rgb), thumb, hashing.phash(g32), *hashing.dhash_and_tiny(thumb))


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
