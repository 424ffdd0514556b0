"""Fingerprints of decoded pixels: perceptual hashes and a tiny normalised thumbnail.

All work on the 32x32 grayscale thumbnail (an 'L' image, or its float array for the hashes), so
they are cheap next to decoding and robust to resizing and re-encoding. ``phash`` follows the usual DCT construction (as imagehash's ``phash``): the 8x8
lowest frequencies of a 32x32 DCT, thresholded at their median.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from . import properties

HASH_BITS = 64
#: phash: a coefficient this fraction of the largest one above the median, or less, is not "above".
PHASH_TOLERANCE = 1e-9
TINY_SIDE = 16
THUMB_SIDE = 32


def _dct_rows(n: int, keep: int) -> np.ndarray:
    """The first ``keep`` rows of the orthonormal DCT-II matrix of size ``n`` (as scipy's norm="ortho")."""
    k = np.arange(keep)[:, None]
    basis = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))
    basis[0] /= np.sqrt(2.0)
    return basis


def _group_columns(n: int, groups: int) -> np.ndarray:
    """(n, groups) 0/1 matrix summing ``n`` columns in ``groups`` near-equal consecutive groups."""
    edges = np.linspace(0, n, groups + 1).astype(int)
    m = np.zeros((n, groups))
    for g in range(groups):
        m[edges[g]:edges[g + 1], g] = 1.0
    return m


# Two small matrix products are ~10x cheaper per image than a 2-D DCT call plus slicing.
_DCT8 = _dct_rows(32, 8)
_ROWS8 = _group_columns(32, 8).T / 4.0   # 8 x 32: mean of 4 rows
_COLS9 = _group_columns(32, 9)          # 32 x 9: sums of 3 or 4 columns
_COLS9_SIZE = _COLS9.sum(axis=0)
#: _DCT8 as the compiled kernel takes it.
DCT8_BYTES = np.ascontiguousarray(_DCT8, dtype=np.float64).tobytes()


def _bits_to_int(bits: np.ndarray) -> int:
    """Pack 64 booleans (most significant first) into a signed int64 (Parquet has no uint64)."""
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big", signed=True)


def phash(gray32: np.ndarray) -> int:
    """DCT perceptual hash of a 32x32 float grayscale array, as a signed 64-bit int.

    A bit is set where the coefficient exceeds the median by more than :data:`PHASH_TOLERANCE` of the
    largest coefficient: on a flat image every coefficient but the mean is zero up to rounding, and
    without the tolerance its bits would be rounding noise (different for another summation order,
    e.g. the compiled kernel's).
    """
    low = (_DCT8 @ gray32 @ _DCT8.T).ravel()
    middle = np.partition(low, (31, 32))        # the median of 64 values, without np.median's overhead
    return _bits_to_int(low > (middle[31] + middle[32]) * 0.5 + PHASH_TOLERANCE * float(np.abs(low).max()))


def dhash(gray32: np.ndarray) -> int:
    """Difference hash: signs of horizontal gradients on an 8x9 box-downsampled grid."""
    sums = _ROWS8 @ gray32 @ _COLS9             # 8 x 9 cell sums (exact for integer-valued pixels)
    # Compare cell means without dividing, so equal means (flat regions) give 0 bits, not rounding noise.
    return _bits_to_int(sums[:, 1:] * _COLS9_SIZE[:-1] > sums[:, :-1] * _COLS9_SIZE[1:])


def tiny(gray32: Image.Image) -> bytes:
    """A 16x16 uint8 grayscale thumbnail of the 32x32 'L' image: means of 2x2 blocks, rounded half up
    (Pillow's ``reduce`` in C: (sum + 2) >> 2). The input of the builtin embedding."""
    return gray32.reduce(2).tobytes()


def thumbnail(gray: np.ndarray) -> bytes:
    """:func:`thumb` bytes of the 32x32 BOX resize of the (h, w) uint8 gray array ``gray``. The
    compiled kernel's copy of Pillow's resize (the same bytes, ~10 us less at 128 px) does images no
    taller than wide; Pillow does the rest, and everything when the kernel is not built.

    >>> thumbnail(np.tile(np.arange(64, dtype=np.uint8), (64, 1)))[:3]
    b'\\x01\\x03\\x05'
    """
    if properties._kernel is not None and gray.shape[0] <= gray.shape[1]:
        return properties._kernel.box_thumb(gray)
    return thumb(Image.fromarray(gray).resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX))


def dhash_and_tiny(thumb_bytes: bytes) -> tuple[int, bytes]:
    """:func:`dhash` and :func:`tiny` of a 32x32 thumbnail given as its :func:`thumb` bytes: one call
    to the compiled kernel (properties._kernel; integer arithmetic there as here, so the same bits
    and bytes) when it is built, else the functions above.

    >>> dhash_and_tiny(bytes(range(32)) * 32)[1][:4]
    b'\\x01\\x03\\x05\\x07'
    """
    if properties._kernel is not None:
        return properties._kernel.thumb_prints(thumb_bytes)
    gray32 = np.frombuffer(thumb_bytes, dtype=np.uint8).reshape(THUMB_SIDE, THUMB_SIDE).astype(np.float64)
    return dhash(gray32), tiny(Image.frombytes("L", (THUMB_SIDE, THUMB_SIDE), thumb_bytes))


def thumb(gray32: Image.Image) -> bytes:
    """The 32x32 'L' thumbnail's bytes: enough detail to re-crop it when matching near-duplicate
    crops, and to tell apart small images (digits) that agree at 16x16."""
    return gray32.tobytes()


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
