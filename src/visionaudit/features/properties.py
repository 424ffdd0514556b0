"""Image properties behind the quality checks, computed from one reduced-size decode.

Intensity statistics come from the 256-bin histogram (computed in C by Pillow), sharpness and noise
from 3x3 filters on the grayscale array. All values are in units that do not depend on the image
size where possible (fractions of the 0..255 range, per-pixel averages).
"""
from __future__ import annotations

import numpy as np

_LEVELS = np.arange(256, dtype=np.float64)
# Standard JPEG (Annex K) luminance quantisation table, used to estimate the encoder's quality.
_STD_LUMA_Q = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


def histogram_stats(hist: list[int] | np.ndarray) -> dict[str, float]:
    """Brightness, contrast, clipping and entropy from a 256-bin grayscale histogram."""
    h = np.asarray(hist[:256], dtype=np.float64)
    n = h.sum()
    if n == 0:
        return {"brightness": np.nan, "contrast": np.nan, "dynamic_range": np.nan,
                "dark_fraction": np.nan, "bright_fraction": np.nan, "entropy": np.nan}
    p = h / n
    mean = float(p @ _LEVELS)
    std = float(np.sqrt(max(p @ (_LEVELS - mean) ** 2, 0.0)))
    cdf = np.cumsum(p)
    p01 = int(np.searchsorted(cdf, 0.01))
    p99 = int(np.searchsorted(cdf, 0.99))
    nz = p[p > 0]
    return {
        "brightness": mean / 255.0,
        "contrast": std / 255.0,
        "dynamic_range": (p99 - p01) / 255.0,
        "dark_fraction": float(cdf[24]),
        "bright_fraction": float(1.0 - cdf[231]),
        "entropy": float(-(nz * np.log2(nz)).sum()),
    }


def sharpness_and_noise(gray: np.ndarray) -> dict[str, float]:
    """Laplacian variance (sharpness) and Immerkaer's noise sigma estimate on a float gray array."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return {"sharpness": np.nan, "noise": np.nan}
    c = gray[1:-1, 1:-1]
    up, down, left, right = gray[:-2, 1:-1], gray[2:, 1:-1], gray[1:-1, :-2], gray[1:-1, 2:]
    cross = up + down + left + right
    lap = cross - 4.0 * c
    diag = gray[:-2, :-2] + gray[:-2, 2:] + gray[2:, :-2] + gray[2:, 2:]
    # Immerkaer (1996): the mask [[1,-2,1],[-2,4,-2],[1,-2,1]] cancels image structure up to 2nd order.
    immerkaer = diag - 2.0 * cross + 4.0 * c
    n = c.size
    return {
        "sharpness": float(lap.var()),
        "noise": float(np.sqrt(np.pi / 2.0) * np.abs(immerkaer).sum() / (6.0 * n)),
    }


def channel_spread(rgb: np.ndarray) -> float:
    """Mean absolute difference between colour channels, in 0..255 levels (0 for true grayscale)."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return 0.0
    a = rgb[..., :3].astype(np.int16)
    return float((np.abs(a[..., 0] - a[..., 1]) + np.abs(a[..., 1] - a[..., 2])).mean() / 2.0)


def jpeg_quality(quantization: dict | None) -> float:
    """Estimate the libjpeg quality setting (1-100) from a JPEG's luminance quantisation table."""
    if not quantization:
        return np.nan
    table = np.asarray(quantization.get(0, next(iter(quantization.values()))), dtype=np.float64)
    if table.size != 64:
        return np.nan
    # The ratio of sums does not depend on the order Pillow reports the table in (zig-zag or not).
    scale = float(table.sum() * 100.0 / _STD_LUMA_Q.sum())
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(np.clip(quality, 1.0, 100.0))
