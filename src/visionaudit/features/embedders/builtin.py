"""The weight-free ``builtin`` embedder: computed from fingerprints every scan already has, no decode
of its own, numpy only.

>>> BuiltinEmbedder().name
'builtin'
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ...errors import ArgumentError
from ..hashing import TINY_SIDE, tiny_matrix
from .base import Embedder

#: Image properties in the builtin embedding, with the transform that makes their scale even.
_PROPERTIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "brightness": lambda v: v,
    "contrast": lambda v: v,
    "entropy": lambda v: v,
    "channel_spread": lambda v: v,
    "sharpness": np.log1p,
    "noise": np.log1p,
}
#: Weight of the property block against the two thumbnail blocks, and the clip of its z-scores
#: (so that one absurd value cannot swamp the rest). Chosen on 3 MNIST digits and a checkerboard
#: planted among the 256 COCO128 photos (tests/test_outliers.py): with 0.5 and 30 the plants' outlier
#: z-scores are at least 1.9x the photos' largest; weight 1.0 or a clip of 12 give 1.4x to 1.7x.
_PROPERTY_WEIGHT = 0.5
_Z_CLIP = 30.0


def structure_vectors(gray: np.ndarray) -> np.ndarray:
    """Unit-norm horizontal and vertical intensity differences of (n, h, w) grayscale thumbnails.

    Differences ignore the mean level and the L2 normalisation ignores contrast, so a brightened,
    darkened or re-encoded copy keeps nearly the same vector while flat background adds nothing:
    the cosine of two such vectors measures whether the same edges sit in the same places.
    """
    g = np.asarray(gray, dtype=np.float32)
    n = len(g)
    dx = np.diff(g, axis=2)[:, :-1, :]
    dy = np.diff(g, axis=1)[:, :, :-1]
    dx, dy = dx.reshape(n, int(np.prod(dx.shape[1:]))), dy.reshape(n, int(np.prod(dy.shape[1:])))  # n may be 0
    v = np.concatenate([dx, dy], axis=1)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def intensity_vectors(gray: np.ndarray) -> np.ndarray:
    """(n, h, w) grayscale thumbnails as zero-mean, unit-norm rows (layout of light and dark)."""
    g = np.asarray(gray, dtype=np.float32).reshape(len(gray), int(np.prod(np.shape(gray)[1:])))
    g = g - g.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.where(norms > 0, norms, 1.0)


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 * MAD) per column, falling back to the standard deviation (or 1)
    where the MAD is 0, NaN replaced by 0 (the median), clipped to +-30."""
    v = np.asarray(values, dtype=np.float64)
    z = np.zeros_like(v)
    # A property never measured on these images (colour spread of grayscale digits) is all NaN: it
    # stays 0 instead of going through nanmedian, which would warn about an all-NaN slice.
    seen = ~np.isnan(v).all(axis=0)
    if seen.any():
        w = v[:, seen]
        med = np.nanmedian(w, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(w - med), axis=0)
        std = np.nanstd(w, axis=0)
        scale = np.where(mad > 1e-12, mad, np.where(std > 1e-12, std, 1.0))
        z[:, seen] = (w - med) / scale
    return np.clip(np.nan_to_num(z, nan=0.0), -_Z_CLIP, _Z_CLIP)


class BuiltinEmbedder(Embedder):
    """Weight-free embedding from the 16x16 ``tiny`` thumbnail and the measured image properties.

    Three blocks: the thumbnail's intensity layout (zero-mean, unit-norm) and its edge structure
    (:func:`structure_vectors`), each divided by sqrt(2), and robust z-scores of brightness,
    contrast, entropy, colour, sharpness and noise, divided by 2 x sqrt(number of properties).
    Unrelated photos are then about 1 apart in each block. It sees layout, exposure, colour
    and texture, not semantics: good enough to find images unlike the rest, not to tell cats from
    dogs. The property block is standardised on the rows given, so vectors of different datasets
    are not comparable.
    """

    name = "builtin"

    def embed(self, features: pd.DataFrame, options: dict[str, Any] | None = None) -> np.ndarray:
        tiny = features["tiny"].tolist()
        bad = [i for i, t in zip(features.index, tiny)
               if not isinstance(t, (bytes, bytearray)) or len(t) != TINY_SIDE ** 2]
        if bad:
            raise ArgumentError("features", f"rows without a decoded thumbnail (e.g. {bad[0]!r})",
                                "rows of images that decoded (ctx.valid)")
        gray = tiny_matrix(tiny).reshape(-1, TINY_SIDE, TINY_SIDE)
        blocks = [intensity_vectors(gray) / np.sqrt(2.0), structure_vectors(gray) / np.sqrt(2.0)]
        props = [fn(pd.to_numeric(features[c], errors="coerce").to_numpy(float))
                 for c, fn in _PROPERTIES.items() if c in features.columns]
        if props:
            blocks.append(_PROPERTY_WEIGHT * robust_z(np.stack(props, axis=1)) / np.sqrt(len(props)))
        return np.hstack(blocks).astype(np.float32)
