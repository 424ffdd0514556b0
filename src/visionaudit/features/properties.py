"""Image properties behind the quality checks, computed from one reduced-size decode.

Intensity statistics come from the 256-bin histogram (computed in C by Pillow), sharpness and noise
from 3x3 filters on the grayscale array. All values are in units that do not depend on the image
size where possible (fractions of the 0..255 range, per-pixel averages).
"""
from __future__ import annotations

import math
import statistics

import numpy as np

_LEVELS = np.arange(256, dtype=np.float64)
_LEVELS_SQ = _LEVELS * _LEVELS
_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)
#: Side of the central window the colour noise is measured in.
_NOISE_WINDOW = 128
# Standard JPEG (Annex K) luminance quantisation table, used to estimate the encoder's quality.
_STD_LUMA_Q = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
_STD_LUMA_Q_SORTED_LIST = sorted(_STD_LUMA_Q.tolist())


def histogram_stats(hist: list[int] | np.ndarray) -> dict[str, float]:
    """Brightness, contrast, clipping, tails and entropy from a 256-bin grayscale histogram.

    ``shadows``/``highlights`` are the mean levels (0..1) of the darkest/brightest 5% of pixels;
    ``relative_contrast`` = (highlights - shadows) / min(highlights + shadows, 2 - highlights - shadows)
    is a Michelson contrast of those tails that scaling toward black (underexposure) or toward white
    (overexposure) leaves unchanged, so only a narrowed tonal range lowers it.

    >>> s = histogram_stats(np.bincount([0, 255] * 50, minlength=256))
    >>> s["shadows"], s["highlights"], s["relative_contrast"]
    (0.0, 1.0, 1.0)
    """
    # Works on counts, not probabilities, to spend a few numpy calls per image rather than a dozen.
    h = np.asarray(hist[:256], dtype=np.float64)
    n = float(h.sum())
    if n == 0:
        return {"brightness": np.nan, "contrast": np.nan, "dynamic_range": np.nan, "dark_fraction": np.nan,
                "bright_fraction": np.nan, "entropy": np.nan, "shadows": np.nan, "highlights": np.nan,
                "relative_contrast": np.nan}
    mean = float(h @ _LEVELS) / n
    var = float(h @ _LEVELS_SQ) / n - mean * mean
    cdf = np.cumsum(h)
    p01, p99 = np.searchsorted(cdf, (0.01 * n, 0.99 * n))
    nz = h[h > 0]
    tail = 0.05 * n
    # Each level's share of the darkest (brightest) 5%: its count, cut off where the 5% are full.
    # (np.minimum/np.maximum: the same as np.clip with an array bound, at a fraction of its call cost)
    shadows = float(np.minimum(np.maximum(tail - (cdf - h), 0.0), h) @ _LEVELS) / (tail * 255.0)
    highlights = float(np.minimum(np.maximum(tail - (n - cdf), 0.0), h) @ _LEVELS) / (tail * 255.0)
    span = min(highlights + shadows, 2.0 - highlights - shadows)
    return {
        "brightness": mean / 255.0,
        "contrast": math.sqrt(max(var, 0.0)) / 255.0,
        "dynamic_range": int(p99 - p01) / 255.0,
        "dark_fraction": float(cdf[24]) / n,
        "bright_fraction": 1.0 - float(cdf[231]) / n,
        "entropy": math.log2(n) - float(nz @ np.log2(nz)) / n,
        "shadows": shadows,
        "highlights": highlights,
        "relative_contrast": (highlights - shadows) / span if span > 0 else 0.0,
    }


def _dxx(a: np.ndarray) -> np.ndarray:
    """Second difference along x over the whole array (float, or int16 without overflow for 8-bit data)."""
    dxx = a[:, :-2] + a[:, 2:]
    dxx -= 2 * a[:, 1:-1]
    return dxx


def _immerkaer_sigma(a: np.ndarray) -> float:
    """Immerkaer's (1996) noise sigma: mean |response| of [[1,-2,1],[-2,4,-2],[1,-2,1]] (d2/dy2 of
    d2/dx2), a mask that cancels image structure up to 2nd order."""
    dxx = _dxx(a)
    r = dxx[:-2] + dxx[2:]
    r -= 2 * dxx[1:-1]
    total = np.abs(r, out=r).sum(dtype=np.int64 if r.dtype.kind == "i" else np.float64)
    return _SQRT_HALF_PI * float(total) / (6.0 * r.size)


def _white_noise_sigma(a: np.ndarray) -> float:
    """Sigma of the spatially white part of ``a``'s fine-scale residual.

    Averaging 2x2 blocks halves white noise but leaves scene texture (whose energy is spread about
    evenly over octaves) as strong, so sigma_full^2 - sigma_half^2 = 3/4 noise^2 and texture cancels.
    """
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    quad = a[0:h:2, 0:w:2] + a[1:h:2, 0:w:2]  # 4x the 2x2 means: stays integer (and in int16 range)
    quad += a[0:h:2, 1:w:2]
    quad += a[1:h:2, 1:w:2]
    full, coarse = _immerkaer_sigma(a), _immerkaer_sigma(quad) / 4.0
    return math.sqrt(max(full * full - coarse * coarse, 0.0) * 4.0 / 3.0)


def sharpness_and_noise(gray: np.ndarray, rgb: np.ndarray | None = None) -> dict[str, float]:
    """Normalised sharpness of a float gray array, and the white-noise sigma of its 8-bit colour pixels.

    ``sharpness`` is var(Laplacian) / (var(image) + 1): edge energy relative to the image's own
    contrast, so darkening or flattening the tones does not read as blur. ``noise`` (grey levels) is
    measured on the chroma planes (R-G, B-G)/sqrt(2) of ``rgb``: scene texture lives mostly in
    luminance, sensor and added noise is independent per channel. Without colour (``rgb`` None)
    dense fine texture (grass, gravel) and noise cannot be told apart at analysis size, so noise is NaN.

    >>> rng = np.random.default_rng(0)
    >>> rgb = np.clip(128 + rng.normal(0, 10, (64, 64, 3)), 0, 255).astype(np.uint8)
    >>> round(sharpness_and_noise(rgb.mean(axis=2), rgb)["noise"])
    10
    """
    if gray.shape[0] < 6 or gray.shape[1] < 6:
        return {"sharpness": np.nan, "noise": np.nan}
    dxx = _dxx(gray)
    lap = gray[:-2, 1:-1] + gray[2:, 1:-1]
    lap -= 2.0 * gray[1:-1, 1:-1]
    lap += dxx[1:-1]
    noise = np.nan
    if rgb is not None:
        # Noise covers the whole frame: a central window estimates it as well as all pixels, at a
        # fraction of the cost. int16 differences of uint8 channels are exact and faster than float.
        y, x = max(0, (rgb.shape[0] - _NOISE_WINDOW) // 2), max(0, (rgb.shape[1] - _NOISE_WINDOW) // 2)
        window = rgb[y:y + _NOISE_WINDOW, x:x + _NOISE_WINDOW]
        r, g, b = (window[..., i].astype(np.int16) for i in range(3))
        noise = math.sqrt(0.25 * (_white_noise_sigma(r - g) ** 2 + _white_noise_sigma(b - g) ** 2))
    return {"sharpness": float(lap.var(dtype=np.float64)) / (float(gray.var(dtype=np.float64)) + 1.0),
            "noise": noise}


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
    table = quantization.get(0, next(iter(quantization.values())))
    if len(table) != 64:
        return np.nan
    # libjpeg scales the standard table by one factor, rounds and clips to 1..255. Sorting both tables
    # pairs their entries whatever order Pillow reports them in; clipped entries carry no scale.
    # Plain Python on 64 numbers: numpy's per-call overhead would cost more than the arithmetic.
    q = sorted(table)
    ratios = [v * 100.0 / s for v, s in zip(q, _STD_LUMA_Q_SORTED_LIST) if 1 < v < 255]
    if ratios:
        scale = statistics.median(ratios)
    else:  # all 255 (quality <= 2) or all 1 (quality ~100)
        scale = 255.0 * 100.0 / _STD_LUMA_Q_SORTED_LIST[0] if q[0] >= 255 else 0.0
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return min(max(quality, 1.0), 100.0)
