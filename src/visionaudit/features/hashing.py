"""Fingerprints of decoded pixels: perceptual hashes and a tiny normalised thumbnail.

All work on a small grayscale array, so they are cheap next to decoding and robust to resizing and
re-encoding. ``phash`` follows the usual DCT construction (as imagehash's ``phash``): the 8x8
lowest frequencies of a 32x32 DCT, thresholded at their median.
"""
from __future__ import annotations

import numpy as np
from scipy.fft import dctn

HASH_BITS = 64
TINY_SIDE = 16
THUMB_SIDE = 32
_BIT_WEIGHTS = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _bits_to_int(bits: np.ndarray) -> int:
    """Pack 64 booleans (most significant first) into a signed int64 (Parquet has no uint64)."""
    value = int(np.bitwise_or.reduce(_BIT_WEIGHTS[bits.ravel()], initial=np.uint64(0)))
    return value - (1 << 64) if value >= (1 << 63) else value


def phash(gray32: np.ndarray) -> int:
    """DCT perceptual hash of a 32x32 float grayscale array, as a signed 64-bit int."""
    low = dctn(gray32, type=2, norm="ortho")[:8, :8]
    return _bits_to_int(low > np.median(low))


def dhash(gray32: np.ndarray) -> int:
    """Difference hash: signs of horizontal gradients on an 8x9 box-downsampled grid."""
    rows = gray32.reshape(8, 4, 32).mean(axis=1)          # 8 x 32
    cols = np.add.reduceat(rows, np.linspace(0, 32, 10, dtype=int)[:-1], axis=1)  # 8 x 9 sums
    return _bits_to_int(cols[:, 1:] > cols[:, :-1])


def tiny(gray32: np.ndarray) -> bytes:
    """A 16x16 uint8 grayscale thumbnail (box-downsampled): the input of the builtin embedding."""
    t = gray32.reshape(TINY_SIDE, 2, TINY_SIDE, 2).mean(axis=(1, 3))
    return np.clip(t + 0.5, 0, 255).astype(np.uint8).tobytes()


def thumb(gray32: np.ndarray) -> bytes:
    """The 32x32 uint8 grayscale thumbnail itself: enough detail to re-crop it when matching
    near-duplicate crops, and to tell apart small images (digits) that agree at 16x16."""
    return (gray32 + 0.5).astype(np.uint8).tobytes()


def thumb_matrix(thumbs: list[bytes]) -> np.ndarray:
    """Stack ``thumb`` byte strings into an (n, 32, 32) uint8 array."""
    return np.frombuffer(b"".join(thumbs), dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)


def tiny_matrix(tinies: list[bytes] | np.ndarray) -> np.ndarray:
    """Stack ``tiny`` byte strings into an (n, 256) uint8 matrix."""
    if isinstance(tinies, np.ndarray) and tinies.dtype == np.uint8:
        return tinies
    buf = b"".join(tinies)
    return np.frombuffer(buf, dtype=np.uint8).reshape(-1, TINY_SIDE * TINY_SIDE)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between int64 hash arrays (broadcasting)."""
    x = np.bitwise_xor(a.astype(np.int64), b.astype(np.int64)).view(np.uint64)
    return np.bitwise_count(x).astype(np.int32) if hasattr(np, "bitwise_count") else _popcount(x)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, dtype=np.int32)
    for shift in range(0, 64, 8):
        count += _POP8[((x >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.intp)]
    return count


_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)
