"""Image properties behind the quality checks, computed from one reduced-size decode.

Intensity statistics come from the 256-bin histogram, sharpness and edge sharpness from a 3x3
Laplacian and the first differences of the grayscale array, colour statistics and noise from the R-G
and B-G planes. All values are in units
that do not depend on the image size where possible (fractions of the 0..255 range, per-pixel averages).

:func:`pixel_stats` computes all of them in one compiled pass (``_pixelstats.c``, built by
``pip install``) when that extension is available, and with the numpy functions of this module
otherwise or when the environment variable ``VISIONAUDIT_NO_EXTENSION`` is set to a non-empty value.
The two give the same values (to ~1e-16 relative; tests compare them on real images).
"""
from __future__ import annotations

import functools
import math
import os
import statistics
import warnings

import numpy as np

#: The _pixelstats.c this code calls (its KERNEL_VERSION).
KERNEL_VERSION = 4

try:
    from . import _pixelstats as _kernel
except ImportError:  # built without a C compiler: the numpy path below
    _kernel = None
if _kernel is not None and getattr(_kernel, "VERSION", 0) != KERNEL_VERSION:
    warnings.warn("visionaudit's compiled kernel was built from an older _pixelstats.c; using the slower numpy "
                  "code (same values) until it is rebuilt with `pip install -e .`", RuntimeWarning, stacklevel=2)
    _kernel = None
if os.environ.get("VISIONAUDIT_NO_EXTENSION"):
    _kernel = None

#: Pillow modes with one intensity channel (plus alpha); everything else but CMYK is colour.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})

#: The values :func:`pixel_stats` returns, in the compiled kernel's order.
PIXEL_STATS = ("brightness", "contrast", "dynamic_range", "dark_fraction", "bright_fraction", "entropy",
               "shadows", "highlights", "relative_contrast", "sharpness", "channel_spread", "noise",
               "edge_sharpness", "background_share", "background_level", "foreground_shadows")
#: The analysis scale (analysis size / image size) at and below which ``edge_sharpness`` is taken as
#: measured; images analysed at a larger fraction of their size are brought to it (:func:`in_own_pixels`).
EDGE_REFERENCE_SCALE = 0.25

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


def pixel_stats(gray: np.ndarray, rgb: np.ndarray | None = None) -> dict[str, float]:
    """Every property in :data:`PIXEL_STATS` of one decoded image.

    ``gray`` is its (h, w) uint8 grayscale array; ``rgb`` the same image as an (h, w, 3) uint8 array
    for colour images (None for gray ones: channel_spread 0, noise NaN). Both C-contiguous.

    >>> g = np.zeros((8, 8), dtype=np.uint8); g[:, 4:] = 255
    >>> s = pixel_stats(g)
    >>> s["brightness"], round(s["sharpness"], 3), round(s["edge_sharpness"], 3), s["channel_spread"]
    (0.5, 1.333, 2.333, 0.0)
    """
    if _kernel is not None:
        return dict(zip(PIXEL_STATS, _kernel.pixel_stats(gray, rgb)))
    stats = histogram_stats(np.bincount(gray.ravel(), minlength=256))
    stats["sharpness"], edge = _sharpness_pair(gray, (stats["contrast"] * 255.0) ** 2)
    stats["channel_spread"], stats["noise"] = 0.0, np.nan
    if rgb is not None:
        chroma = chroma_planes(rgb)
        stats["channel_spread"] = channel_spread(chroma)
        if stats["channel_spread"] > 0:
            stats["noise"] = colour_noise(chroma)
    stats["edge_sharpness"] = edge
    stats.update(background_stats(gray, np.bincount(gray.ravel(), minlength=256), stats["shadows"]))
    return stats


def background_stats(gray: np.ndarray, counts: np.ndarray, shadows: float) -> dict[str, float]:
    """A plain background and the tones of what is on it, from an 8-bit gray image, its 256-bin
    histogram ``counts`` and its ``shadows`` (:func:`histogram_stats`).

    - ``background_level``: the median level (0..1) of the image's border pixels (the lower median);
    - ``background_share``: the share of the border within :data:`BACKGROUND_TOLERANCE` levels of it:
      near 1 for a product shot, clip-art or a scan on a plain sheet, low for a photograph;
    - ``foreground_shadows``: where the border is flat (share >= 0.5), the mean level of the darkest 5%
      of the pixels outside that background band (NaN when they are under 1% of the image): the
      darkest tones of the object itself; otherwise ``shadows``.

    >>> g = np.full((40, 40), 255, np.uint8); g[10:30, 10:30] = 200; g[18:22, 18:22] = 60
    >>> s = background_stats(g, np.bincount(g.ravel(), minlength=256), 0.9)
    >>> s["background_share"], s["background_level"], round(s["foreground_shadows"], 3)
    (1.0, 1.0, 0.345)
    """
    h, w = gray.shape
    if h < 2 or w < 2:
        border = gray.ravel()
    else:
        border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    bc = np.bincount(border, minlength=256)
    level = int(np.searchsorted(np.cumsum(bc), (len(border) + 1) // 2))
    lo, hi = max(0, level - BACKGROUND_TOLERANCE), min(255, level + BACKGROUND_TOLERANCE)
    share = float(bc[lo:hi + 1].sum()) / len(border)
    out = {"background_share": share, "background_level": level / 255.0, "foreground_shadows": shadows}
    if share >= 0.5:
        foreground = np.asarray(counts[:256], dtype=np.int64).copy()
        total = int(foreground.sum())
        foreground[lo:hi + 1] = 0
        count = int(foreground.sum())
        # the shadows of the histogram without the background band
        out["foreground_shadows"] = (histogram_stats(foreground)["shadows"] if count > 0 and count >= 0.01 * total
                                     else math.nan)
    return out


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
    # Works on counts, not probabilities, and turns the tails into a few scalar lookups, to spend
    # about ten numpy calls per image rather than twenty.
    h = np.asarray(hist[:256], dtype=np.float64)
    cdf = np.cumsum(h)
    n = float(cdf[-1])
    if n == 0:
        return {"brightness": np.nan, "contrast": np.nan, "dynamic_range": np.nan, "dark_fraction": np.nan,
                "bright_fraction": np.nan, "entropy": np.nan, "shadows": np.nan, "highlights": np.nan,
                "relative_contrast": np.nan}
    level_sums = np.cumsum(h * _LEVELS)          # sum of level x count over levels <= l
    total = float(level_sums[-1])
    mean = total / n
    var = float(h @ _LEVELS_SQ) / n - mean * mean
    tail = 0.05 * n
    # p01, p99, and the levels k where the darkest 5% fill up (first cdf >= tail) and j where the
    # brightest 5% begin (first cdf >= n - tail): levels below k (above j) count whole, k and j in part.
    p01, p99, k, j = np.searchsorted(cdf, (0.01 * n, 0.99 * n, tail, n - tail)).tolist()
    below_k = (float(cdf[k - 1]), float(level_sums[k - 1])) if k > 0 else (0.0, 0.0)
    shadows = (below_k[1] + (tail - below_k[0]) * k) / (tail * 255.0)
    highlights = ((total - float(level_sums[j])) + (tail - (n - float(cdf[j]))) * j) / (tail * 255.0)
    nz = h[h > 0]
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


def _immerkaer_sigmas(a: np.ndarray) -> list[float]:
    """Immerkaer's (1996) noise sigma of each plane of an int16 stack ``a`` (planes, h, w) of at most
    _NOISE_WINDOW^2 pixels: the mean |response| of [[1,-2,1],[-2,4,-2],[1,-2,1]] (d2/dy2 of d2/dx2),
    a mask that cancels image structure up to 2nd order. Integer throughout: the response of 8-bit
    differences or their 2x2 sums fits int16 (|r| <= 16 * 1020), its sum over a window int32."""
    d = a[:, :, 1:] - a[:, :, :-1]          # second differences as two first ones: 2 passes, not 3
    d = d[:, :, 1:] - d[:, :, :-1]
    d = d[:, 1:] - d[:, :-1]
    r = d[:, 1:] - d[:, :-1]
    totals = np.abs(r, out=r).reshape(len(r), -1).sum(axis=1, dtype=np.int32).tolist()
    scale = _SQRT_HALF_PI / (6.0 * r[0].size)
    return [total * scale for total in totals]


def _white_noise_sigmas(a: np.ndarray) -> list[float]:
    """Sigma of the spatially white part of the fine-scale residual of each plane of ``a``.

    Averaging 2x2 blocks halves white noise but leaves scene texture (whose energy is spread about
    evenly over octaves) as strong, so sigma_full^2 - sigma_half^2 = 3/4 noise^2 and texture cancels.
    """
    h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
    # 4x the 2x2 means: stays integer (and in int16 range). Row pairs first, on whole rows: two
    # additions, one of them strided, instead of three strided ones.
    pairs = a[:, 0:h:2, :w] + a[:, 1:h:2, :w]
    quad = pairs[:, :, 0::2] + pairs[:, :, 1::2]
    # Python floats for the per-plane arithmetic: numpy calls on 2-element arrays cost more than it.
    return [math.sqrt(max(full * full - (quad_sigma / 4.0) ** 2, 0.0) * 4.0 / 3.0)
            for full, quad_sigma in zip(_immerkaer_sigmas(a), _immerkaer_sigmas(quad))]


def chroma_planes(rgb: np.ndarray) -> np.ndarray:
    """The (2, h, w) int16 stack of R-G and B-G of an (h, w, 3) uint8 array: the input of
    :func:`channel_spread` and :func:`colour_noise`, made once (int16 differences of uint8 are exact)."""
    a = rgb.astype(np.int16)
    planes = np.empty((2, *rgb.shape[:2]), dtype=np.int16)
    np.subtract(a[..., 0], a[..., 1], out=planes[0])
    np.subtract(a[..., 2], a[..., 1], out=planes[1])
    return planes


def sharpness(gray: np.ndarray, variance: float) -> float:
    """Normalised sharpness of an 8-bit gray array whose variance is ``variance`` (from its histogram).

    var(Laplacian) / (var(image) + 1): edge energy relative to the image's own contrast, so darkening
    or flattening the tones does not read as blur. NaN below 6x6 pixels.

    >>> g = np.zeros((8, 8), dtype=np.uint8); g[:, 4:] = 255
    >>> round(sharpness(g, float(g.var())), 3)
    1.333
    """
    return _sharpness_pair(gray, variance)[0]


def _laplacian_sums(a: np.ndarray) -> tuple[int, int]:
    """Sum and sum of squares of the 3x3 Laplacian of the interior of an int32 array ``a``: exact
    integers (|values| <= 1020, so int32 squares need no second cast; no BLAS call)."""
    lap = a[:-2, 1:-1] + a[2:, 1:-1]
    lap += a[1:-1, :-2]
    lap += a[1:-1, 2:]
    lap -= 4 * a[1:-1, 1:-1]
    total = int(lap.sum(dtype=np.int64))
    return total, int(np.square(lap, out=lap).sum(dtype=np.int64))


def _sharpness_pair(gray: np.ndarray, variance: float) -> tuple[float, float]:
    """(:func:`sharpness`, :func:`edge_sharpness`) of ``gray`` from one Laplacian."""
    if gray.shape[0] < 6 or gray.shape[1] < 6:
        return np.nan, np.nan
    h, w = gray.shape
    a = gray.astype(np.int32)
    total, squares = _laplacian_sums(a)
    n = (h - 2) * (w - 2)
    lap_var = (squares - total * total / n) / n
    # First differences across and down, squared and summed as exact integers (|values| <= 255).
    d = a[:, 1:] - a[:, :-1]
    across = int(np.square(d, out=d).sum(dtype=np.int64))
    d = a[1:] - a[:-1]
    down = int(np.square(d, out=d).sum(dtype=np.int64))
    edge = 0.0 if across == 0 and down == 0 else (squares / n) / (across / (h * (w - 1)) + down / ((h - 1) * w))
    return lap_var / (variance + 1.0), edge


def edge_sharpness(gray: np.ndarray) -> float:
    """How sharp the edges of an 8-bit gray array are, whatever their number and contrast: the mean
    squared 3x3 Laplacian over the mean squared gradient (first differences across and down).

    A squared spatial frequency, averaged over the gradient's energy: 2-5 for sharp edges and fine
    texture (white noise gives 5, a checkerboard 8), about 0.6 / sigma for a Gaussian blur of sigma
    pixels (0.25-1.5). Scaling or shifting the tones leaves it unchanged, so dark, flat or low-contrast
    images do not read as blurred; a blurred image also loses little of its coarse gradient, so what it
    measures is the blur and not how much detail the scene has (var(Laplacian) / var(image), the
    ``sharpness`` column, spreads 4x wider over clean COCO photos). 0 for a uniform array, NaN
    below 6x6 pixels.

    >>> g = np.zeros((8, 8), dtype=np.uint8); g[:, 4:] = 255
    >>> round(edge_sharpness(g), 4)   # 12 Laplacians of +-255 over 36 pixels, 8 steps of 255 over 56 differences
    2.3333
    """
    return _sharpness_pair(gray, 0.0)[1]


def in_own_pixels(value: float, scale: float) -> float:
    """:func:`edge_sharpness` measured at ``scale`` (analysis size / image size), as the blurry check
    judges it: multiplied by ``scale / EDGE_REFERENCE_SCALE`` when that is above 1.

    Edge sharpness falls about as 1 / blur width, so for an image analysed at more than a quarter of
    its size this puts the blur in the image's own pixels, in the units of a quarter-size analysis: a
    3 px blur reads alike in a 256 px and in a 640 px photo (analysed at 1/2 and 1/4 of their size,
    measured on COCO128). At a quarter or less (photos above ~1,000 px) the value is kept as measured:
    a blur a few of a large photo's own pixels wide is not visible at any viewing size, and multiplying
    would make sharp photos read as blurred.

    >>> in_own_pixels(1.0, 0.5), in_own_pixels(1.0, 0.125)
    (2.0, 1.0)
    """
    return value * (scale / EDGE_REFERENCE_SCALE) if scale > EDGE_REFERENCE_SCALE else value


def colour_noise(chroma: np.ndarray) -> float:
    """White-noise sigma (grey levels) of the colour pixels, from :func:`chroma_planes`.

    Measured on the chroma planes (R-G, B-G)/sqrt(2): scene texture lives mostly in luminance, sensor
    and added noise is independent per channel. (Without colour, dense fine texture and noise cannot
    be told apart at analysis size, so gray images get no noise value.) NaN below 6x6 pixels.

    >>> rng = np.random.default_rng(0)
    >>> rgb = np.clip(128 + rng.normal(0, 10, (64, 64, 3)), 0, 255).astype(np.uint8)
    >>> round(colour_noise(chroma_planes(rgb)))
    10
    """
    if chroma.shape[1] < 6 or chroma.shape[2] < 6:
        return np.nan
    # Noise covers the whole frame: a central window estimates it as well as all pixels, at a
    # fraction of the cost.
    y, x = max(0, (chroma.shape[1] - _NOISE_WINDOW) // 2), max(0, (chroma.shape[2] - _NOISE_WINDOW) // 2)
    rg, bg = _white_noise_sigmas(chroma[:, y:y + _NOISE_WINDOW, x:x + _NOISE_WINDOW])
    return math.sqrt(0.25 * (rg * rg + bg * bg))


def channel_spread(chroma: np.ndarray) -> float:
    """Mean absolute difference between colour channels, (|R-G| + |G-B|) / 2 in 0..255 levels (0 for
    true grayscale), from :func:`chroma_planes`."""
    return float(np.abs(chroma).sum(dtype=np.int64)) / (2 * chroma[0].size)


def jpeg_quality(quantization: dict | None) -> float:
    """Estimate the libjpeg quality setting (1-100) from a JPEG's luminance quantisation table."""
    if not quantization:
        return np.nan
    table = quantization.get(0, next(iter(quantization.values())))
    if len(table) != 64:
        return np.nan
    return _quality_of_table(tuple(table))


@functools.lru_cache(maxsize=256)
def _quality_of_table(table: tuple[int, ...]) -> float:
    """:func:`jpeg_quality` of one 64-entry table; cached, as most files of a dataset share a few tables."""
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


#: A border pixel is part of a flat background when it is within this many grey levels of the
#: border's median (:func:`background_stats`).
BACKGROUND_TOLERANCE = 6
#: A 4x4 block of the 32x32 thumbnail shows structure when its pixels span more than this many levels.
STRUCTURE_LEVELS = 8


def thumbnail_structure(thumbs: np.ndarray) -> np.ndarray:
    """How much of each image shows any structure (edges, texture), from its (n, 32, 32) uint8 grey
    thumbnails (the feature table's ``thumb``): the share of the 64 blocks of 4x4 thumbnail pixels
    (each 1/64 of the image) whose levels span more than :data:`STRUCTURE_LEVELS`. 0 for a blank or
    near-uniform frame; clip-art, a sketch or an object on a plain background have few grey levels
    (a low entropy) but structure where they are.

    >>> thumbs = np.full((2, 32, 32), 255, np.uint8)
    >>> thumbs[1, 6:22, 6:22] = 40                     # a dark square on white: its edges cross 16 blocks
    >>> thumbnail_structure(thumbs).tolist()
    [0.0, 0.25]
    """
    th = np.asarray(thumbs, dtype=np.int16).reshape(-1, 32, 32)
    blocks = th.reshape(len(th), 8, 4, 8, 4).transpose(0, 1, 3, 2, 4).reshape(len(th), 64, 16)
    return ((blocks.max(axis=2) - blocks.min(axis=2)) > STRUCTURE_LEVELS).mean(axis=1)
