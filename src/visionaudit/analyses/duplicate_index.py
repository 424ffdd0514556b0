"""The duplicate index: the same picture stored more than once, exactly or after edits.

The duplicate checks, the split-leakage checks, the label-issue check and cross-validation read one
:class:`DuplicateIndex`, computed once per run by :func:`duplicate_index` from fingerprints the decode pass already made (``content_hash``,
``phash``, the 16x16 ``tiny`` and 32x32 ``thumb`` grayscale thumbnails), never from files:

1. Candidate pairs, never all pairs: files with the same bytes; pHashes within Hamming distance 7,
   found by banding (8 bands: such pairs always share one; re-encoded, resized and brightened
   copies of COCO128 images differ by at most 6 bits); and the nearest neighbours
   (:func:`~visionaudit.analyses.neighbours.knn`: exact for small collections, approximate for large ones)
   of seven views of each image (whole; 5% and 10% off every side; 10% off one side) among the
   whole views of all images, so a cropped copy meets its original.
2. Exact duplicates: same bytes, or same width and height and 16x16 thumbnails that differ by at
   most ``max_mean_difference`` (6) gray levels on average, ``max_difference`` (40) at any pixel
   and ``max_mean_shift`` (2) in mean level. Why these: the same pixels saved as PNG and as JPEG
   differ by up to 3.9 on average, 25 at a pixel and 1.6 in mean on COCO128, only because JPEGs
   are decoded at reduced size in DCT draft mode and PNGs by pixel averaging; distinct same-size
   photos are 25+ apart on average, and distinct MNIST digits that are close on average (thin '1's)
   differ by 53+ at some pixel. Re-encoding at the same size with JPEG quality >= 30 stays within
   0.6 on average, so pixels alone cannot tell a lossless re-save from a lossy re-encode; the files'
   JPEG qualities can (lossless formats count as 100): a pair further apart than ``max_quality_gap``
   (10) is a re-encode that lost detail, near and not exact (a q70 copy of a q96 photo), while a
   PNG or q100 re-save of a q90+ JPEG stays exact.
   A brightness change of 5% shifts the mean by 1.7 to 11 levels, and is near, not exact, unless
   the image is very dark; changes under about 2% count as exact. Those tolerances would also join
   any two near-black or near-white images, so the edges must agree as well: structural similarity
   (below) of at least ``min_edge_similarity`` (0.9; PNG vs JPEG of one photo: 0.976+, of one
   photo darkened to 8%: 0.936+), unless the thumbnails are equal within 2 levels everywhere.
3. Near duplicates: structural similarity = cosine of the edge vectors
   (:func:`~visionaudit.features.embedders.structure_vectors`) of 16x16 views, maximised over crop
   windows of one image matched against the other whole (centred crops of 1..13% per side, and
   every combination of 0, 5 or 10% on each side). Edges ignore brightness and contrast. On
   COCO128, resized (0.5x, 0.75x), re-encoded (JPEG q30..q100), brightened (x0.7, x1.3) and
   centre-cropped (3..10% per side) copies score at least 0.909; distinct photos at most 0.65.
   A pair is near-duplicate when its similarity is at least ``similarity`` (0.90) and it stands
   out from both images' surroundings: 1 - s <= ``contrast`` (0.33) x (1 - r), where r is the
   image's highest similarity, below ``similarity``, to a candidate other than its partner: a
   duplicate must be three times closer than the nearest image that is not one. In photo
   collections r is about 0.5 and only the 0.90 floor applies; among look-alike images (MNIST
   digits, r up to 0.9) the effective threshold rises to about 0.96. On 2,000 distinct MNIST digits
   that flags 55 images (2.75%, all '1's drawn alike), against 272 with the floor alone
   (``contrast`` 1), while enlarged or re-saved digits are still found (tests/test_duplicates.py).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..features.hashing import THUMB_SIDE, TINY_SIDE, hamming, thumb_matrix, tiny_matrix
from . import RunData
from .neighbours import (
    hash_band_pairs,
    in_threads,
    knn,
    knn_pairs,
    pair_groups,
    single_threaded_blas,
    unique_pairs,
)

#: Crop fractions (top, bottom, left, right) of the views compared when matching two images.
WINDOWS: list[tuple[float, float, float, float]] = list(dict.fromkeys(
    [(f, f, f, f) for f in (round(0.01 * k, 2) for k in range(14))]
    + list(itertools.product((0.0, 0.05, 0.1), repeat=4))))
#: Views of each image used as queries when generating candidates: whole, 5% and 10% centre crops,
#: and 10% off one side.
QUERY_WINDOWS = [(0.0, 0.0, 0.0, 0.0), (0.05, 0.05, 0.05, 0.05), (0.1, 0.1, 0.1, 0.1),
                 (0.1, 0.0, 0.0, 0.0), (0.0, 0.1, 0.0, 0.0), (0.0, 0.0, 0.1, 0.0), (0.0, 0.0, 0.0, 0.1)]
#: Neighbours fetched per query view, and the pHash bands (pairs within Hamming distance 7 share one).
CANDIDATE_NEIGHBOURS = 6
PHASH_BANDS = 8
#: A pHash band value shared by more images than this is skipped: degenerate hashes (MNIST digits
#: share bands by the hundred) would otherwise make banding quadratic; the kNN views still cover them.
MAX_BUCKET = 64
#: Candidate-search vectors are projected on this many principal components (search only).
SEARCH_DIMS = 64
#: The candidate search is exact while query views x images is at most this, beyond
#: :func:`~visionaudit.analyses.neighbours.knn`'s general limit: on 10,000 MNIST digits (70,000 queries) it
#: took 2.0 s of CPU against hnswlib's 2.5 s and found the same near pairs. The exact cost grows with
#: the square of the images, hnswlib's about linearly; with hnswlib's index built on one thread (so
#: that runs agree), 19,984 benchmark images still searched faster exactly (2.9 s against 3.2 s).
EXACT_SEARCH = 7 * 20_000 ** 2
#: Pairs whose similarity over the query views is this far below ``similarity`` are not searched
#: over all windows (a 3-6% crop off some sides scored 0.84 on the query views, 0.98 searched).
REFINE_MARGIN = 0.15
#: Images whose views of all windows are made at once in that search (16-32 fastest on MNIST).
REFINE_IMAGES = 32
_VIEW = TINY_SIDE

NEAR_DEFAULTS = {"similarity": 0.90, "contrast": 0.33}
EXACT_DEFAULTS = {"max_mean_difference": 6.0, "max_difference": 40.0, "max_mean_shift": 2.0,
                  "min_edge_similarity": 0.9, "max_quality_gap": 10.0}


def _area_matrix(lo: float, hi: float, n_in: int = THUMB_SIDE, n_out: int = _VIEW) -> np.ndarray:
    """(n_out, n_in) weights averaging the input over each output pixel's share of [lo, hi)."""
    edges = np.linspace(lo * n_in, hi * n_in, n_out + 1)
    left, right = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    w = np.clip(np.minimum(right, j + 1) - np.maximum(left, j), 0.0, None)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _edge_resamplers(windows: list[tuple[float, float, float, float]]) -> list[tuple[np.ndarray, ...]]:
    """Per distinct (left, right) crop: the column resampling with the horizontal differences
    folded in, the stacked row resamplings (and their vertical differences) of the windows that
    share it, and those windows' positions.

    Resampling and differencing are linear, so a view's edge vector is ``rows @ thumb @ cols`` with
    the differences moved into the small matrices: one product per column crop serves all its
    windows, and the result comes out in the edge vector's layout with no difference pass or
    transpose (0.91 -> 0.65 s for 91 views of 8,012 MNIST digits).
    """
    groups: dict[tuple[float, float], list[tuple[int, float, float]]] = {}
    for k, (top, bottom, left, right) in enumerate(windows):
        groups.setdefault((left, right), []).append((k, top, bottom))
    out = []
    for (left, right), members in groups.items():
        cols = _area_matrix(left, 1.0 - right).T
        rows = [_area_matrix(top, 1.0 - bottom) for _, top, bottom in members]
        out.append((np.concatenate([np.diff(cols, axis=1), cols[:, :-1]], axis=1),
                    np.concatenate([r[:-1] for r in rows]), np.concatenate([np.diff(r, axis=0) for r in rows]),
                    np.array([k for k, _, _ in members])))
    return out


def _edge_views(gray: np.ndarray, resample: list[tuple[np.ndarray, ...]], n_windows: int) -> np.ndarray:
    """(len(gray), n_windows, dim) unit edge vectors, laid out as
    :func:`~visionaudit.features.embedders.structure_vectors` lays them out (x differences, then y)."""
    c, e = len(gray), _VIEW - 1
    gray = gray.astype(np.float32, copy=False)
    out = np.empty((c, n_windows, 2, e * e), np.float32)
    for cols, rows_x, rows_y, ks in resample:
        both = gray @ cols
        out[:, ks, 0] = (rows_x @ both[:, :, :e]).reshape(c, len(ks), e * e)
        out[:, ks, 1] = (rows_y @ both[:, :, e:]).reshape(c, len(ks), e * e)
    out = out.reshape(c, n_windows, -1)
    norms = np.sqrt(np.einsum("ckd,ckd->ck", out, out))
    out /= np.where(norms > 0, norms, 1.0)[:, :, None]
    return out


def view_vectors(thumbs: np.ndarray, windows: list[tuple[float, float, float, float]],
                 chunk: int = 128) -> np.ndarray:
    """(n, len(windows), dim) structure vectors of each ``window`` (top, bottom, left, right crop
    fractions) of each (n, 32, 32) thumbnail, resampled to 16x16 by area averaging (the same values
    as :func:`~visionaudit.features.embedders.structure_vectors` of the resampled views); ``chunk``
    thumbnails at a time, so that the intermediate arrays stay in the CPU cache."""
    resample = _edge_resamplers(windows)
    out = np.empty((len(thumbs), len(windows), 2 * (_VIEW - 1) ** 2), np.float32)

    def fill(start: int) -> None:
        out[start:start + chunk] = _edge_views(thumbs[start:start + chunk], resample, len(windows))

    in_threads(fill, range(0, len(thumbs), chunk))
    return out


@dataclass
class DuplicateIndex:
    """Duplicate pairs among the decoded samples, shared by the duplicate and leakage checks.

    Row numbers index ``ids`` (the decoded samples). ``exact_pairs`` are exact duplicates;
    ``near_pairs`` near duplicates that are not exact (nor in one exact group), with their
    ``near_similarity``; ``best_similarity`` is each sample's highest similarity to any candidate.
    """

    ids: pd.Index
    exact_pairs: np.ndarray
    near_pairs: np.ndarray
    near_similarity: np.ndarray
    best_similarity: np.ndarray
    candidates: int

    def exact_groups(self) -> list[np.ndarray]:
        return pair_groups(len(self.ids), self.exact_pairs)

    def near_groups(self) -> list[np.ndarray]:
        return pair_groups(len(self.ids), self.near_pairs)

    def weakest_link(self, group: np.ndarray) -> float:
        """Lowest similarity among the near pairs inside ``group``."""
        inside = np.isin(self.near_pairs, group).all(axis=1)
        return float(self.near_similarity[inside].min())


def duplicate_index(data: RunData, exact: dict[str, float] | None = None,
                    near: dict[str, float] | None = None) -> DuplicateIndex:
    """The run's :class:`DuplicateIndex` for these thresholds (computed once per distinct setting).

    >>> index = duplicate_index(data)
    >>> [index.ids[g].tolist() for g in index.near_groups()]     # doctest: +NORMALIZE_WHITESPACE
    [['train/city/city_0025.jpg', 'val/city/city_0007.jpg'],
     ['train/forest/forest_0016.jpg', 'train/forest/forest_0038.jpg']]
    """
    exact = {**EXACT_DEFAULTS, **(exact or {})}
    near = {**NEAR_DEFAULTS, **(near or {})}
    key = ("duplicates.index", tuple(sorted(exact.items())), tuple(sorted(near.items())))

    def build() -> DuplicateIndex:
        with single_threaded_blas():   # eigh and the batched products: see single_threaded_blas
            return _build_index(data, exact, near)
    return data.memo(key, build)


def _candidate_pairs(rows: pd.DataFrame, thumbs: np.ndarray, whole: np.ndarray) -> np.ndarray:
    n = len(rows)
    phashes = rows["phash"].to_numpy(np.int64)
    banded = hash_band_pairs(phashes, bands=PHASH_BANDS, max_bucket=MAX_BUCKET)
    found = [banded[hamming(phashes[banded[:, 0]], phashes[banded[:, 1]]) < PHASH_BANDS]]
    codes = pd.factorize(rows["content_hash"])[0]
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    found.append(np.stack([order[:-1][same], order[1:][same]], axis=1))
    if n > 1:
        # Principal components of the whole views: the search needs rank order, not exact values.
        sample = whole[np.random.default_rng(0).permutation(n)[:4096]]
        centred = sample - sample.mean(0)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        basis = vectors[:, ::-1][:, :SEARCH_DIMS]
        index = whole @ basis
        # Queries image by image (all views of an image in a row): the pairs are the same in any order.
        # Views are made and projected a chunk at a time, never all kept (10,000 images: 126 MB).
        queries = np.empty((n, len(QUERY_WINDOWS), basis.shape[1]), np.float32)

        def project(start: int) -> None:
            queries[start:start + 512] = view_vectors(thumbs[start:start + 512], QUERY_WINDOWS) @ basis

        in_threads(project, range(0, n, 512))
        queries = queries.reshape(-1, basis.shape[1])
        nb = knn(index, min(CANDIDATE_NEIGHBOURS, n), queries=queries, metric="cosine",
                 method="exact" if len(queries) * n <= EXACT_SEARCH else "auto")
        found.append(knn_pairs(nb, np.repeat(np.arange(n), len(QUERY_WINDOWS))))
    return unique_pairs(np.concatenate(found), n)


def _match(views_of: Callable[[np.ndarray], np.ndarray], whole: np.ndarray, i: np.ndarray, j: np.ndarray,
           block: int = 4096, max_images: int | None = None) -> np.ndarray:
    """max over views v of max(v(i) . whole(j), whole(i) . v(j)) for the pairs (i, j), where
    ``views_of(rows)`` gives the (len(rows), views, dim) views of some image rows when they are
    needed (at most ``max_images`` rows at a time) and ``whole`` (n, dim) the whole images' vectors.

    Each image's views meet the whole views of all its partners in one matrix product, so a
    partner's row is gathered once per direction rather than once per view: on 96,000 candidate
    pairs of 5,000 images with 7 views this is several times faster than gathering a pair's rows
    view by view. Images are taken in order of their number of partners, about ``block`` partner
    rows at a time, so that padding to the widest in a batch wastes little.
    """
    n = len(whole)
    source, target = np.concatenate([i, j]), np.concatenate([j, i])
    order = np.argsort(source, kind="stable")
    target = target[order]
    degree = np.bincount(source, minlength=n)
    first = np.concatenate([[0], np.cumsum(degree)[:-1]])
    images = np.argsort(degree, kind="stable")
    images = images[degree[images] > 0]
    best = np.empty(len(source), np.float32)
    bounds, pos = [], 0
    while pos < len(images):
        width = degree[images[pos:]]
        end = pos + min(max_images or len(width),
                        max(1, int(np.searchsorted(np.arange(1, len(width) + 1) * width, block, side="right"))))
        bounds.append((pos, end))
        pos = end

    def score(bound: tuple[int, int]) -> None:
        batch = images[bound[0]:bound[1]]
        width, slots = degree[batch], np.arange(degree[batch[-1]])
        # Rows with fewer partners repeat their last one; the repeats are not written back.
        edge = first[batch, None] + np.minimum(slots[None, :], width[:, None] - 1)
        scores = np.matmul(views_of(batch), whole[target[edge]].transpose(0, 2, 1)).max(axis=1)
        real = slots[None, :] < width[:, None]
        best[edge[real]] = scores[real]

    in_threads(score, bounds)
    directed = np.empty(len(source), np.float32)
    directed[order] = best
    return np.maximum(directed[:len(i)], directed[len(i):])


def _same_pixels(tiny: np.ndarray, whole: np.ndarray, i: np.ndarray, j: np.ndarray, exact: dict[str, float],
                 chunk: int = 65536) -> np.ndarray:
    """Thumbnails equal within decode noise (see the module docstring) for same-size pairs."""
    # A mean absolute difference is at least the mean absolute difference of 4x4 block means, so
    # 16 numbers per image rule out most pairs before their 256 pixels are compared (on 10,000
    # MNIST digits, all one size: 54,000 pairs in 0.50 s -> 0.04 s).
    side = TINY_SIDE // 4
    blocks = tiny.reshape(len(tiny), 4, side, 4, side).mean(axis=(2, 4)).reshape(len(tiny), 16)
    out = np.zeros(len(i), bool)
    for start in range(0, len(i), chunk):
        a, b = i[start:start + chunk], j[start:start + chunk]
        maybe = np.flatnonzero(np.abs(blocks[a] - blocks[b]).mean(axis=1) <= exact["max_mean_difference"] + 1e-3)
        a, b = a[maybe], b[maybe]
        diff = tiny[a] - tiny[b]
        worst = np.abs(diff).max(axis=1)
        pixels = ((np.abs(diff).mean(axis=1) <= exact["max_mean_difference"])
                  & (worst <= exact["max_difference"])
                  & (np.abs(diff.mean(axis=1)) <= exact["max_mean_shift"]))
        # Absolute tolerances alone would join any two near-black (or near-white) images: their
        # edges must agree too, unless the thumbnails are equal to within rounding.
        edges = worst[pixels] <= 2
        edges[~edges] = (np.einsum("ij,ij->i", whole[a[pixels][~edges]], whole[b[pixels][~edges]])
                         >= exact["min_edge_similarity"])
        pixels[pixels] = edges
        out[start + maybe] = pixels
    return out


def _needed(sim: np.ndarray, i: np.ndarray, j: np.ndarray, n: int, near: dict[str, float]) -> np.ndarray:
    """The similarity each pair (i, j) needs: r, i's highest similarity below ``similarity`` to an
    image other than j (and likewise for j), sets how far a duplicate must stand out:
    1 - s <= contrast * (1 - r). Where no such neighbour is known, r = ``similarity``."""
    below = np.where(sim < near["similarity"], sim, -1.0).astype(np.float32)
    image, partner, value = np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([below, below])
    order = np.lexsort((-value, image))
    image, partner, value = image[order], partner[order], value[order]
    first = np.ones(len(image), bool)
    first[1:] = image[1:] != image[:-1]
    second = np.zeros(len(image), bool)
    second[1:] = first[:-1] & ~first[1:]
    top_value, top_partner, next_value = np.full(n, -1.0, np.float32), np.full(n, -1), np.full(n, -1.0, np.float32)
    top_value[image[first]], top_partner[image[first]] = value[first], partner[first]
    next_value[image[second]] = value[second]

    def other(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r = np.where(top_partner[a] == b, next_value[a], top_value[a])
        return np.where(r < 0, near["similarity"], r)

    r = np.maximum(other(i, j), other(j, i))
    return np.maximum(near["similarity"], 1.0 - near["contrast"] * (1.0 - r))


def _build_index(data: RunData, exact: dict[str, float], near: dict[str, float]) -> DuplicateIndex:
    rows = data.features[data.valid.to_numpy()]
    n = len(rows)
    # Thumbnails stay 8-bit (a quarter of the memory) and become floats a batch at a time.
    thumbs = thumb_matrix(rows["thumb"].tolist()) if n else np.zeros((0, THUMB_SIDE, THUMB_SIDE), np.uint8)
    whole = view_vectors(thumbs, QUERY_WINDOWS[:1])[:, 0]
    # The candidates do not depend on the thresholds: one search serves every setting of a run.
    pairs = (data.memo("duplicates.candidates", lambda: _candidate_pairs(rows, thumbs, whole)) if n > 1
             else np.empty((0, 2), np.int64))
    i, j = pairs[:, 0], pairs[:, 1]

    width, height = rows["width"].to_numpy(), rows["height"].to_numpy()
    is_exact = rows["content_hash"].to_numpy()[i] == rows["content_hash"].to_numpy()[j]
    tiny = tiny_matrix(rows["tiny"].tolist()).astype(np.float32) if n else np.zeros((0, TINY_SIDE ** 2), np.float32)
    level = tiny.mean(axis=1)
    # A lossy re-encode is a near duplicate, not the same pixels: files stored at JPEG qualities
    # further apart than ``max_quality_gap`` (lossless formats count as 100) never pass as exact.
    quality = np.where(rows["format"].to_numpy() == "JPEG",
                       pd.to_numeric(rows["jpeg_quality"], errors="coerce").fillna(100.0).to_numpy(float), 100.0)
    maybe = np.flatnonzero(~is_exact & (width[i] == width[j]) & (height[i] == height[j])
                           & (np.abs(level[i] - level[j]) <= exact["max_mean_shift"])
                           & (np.abs(quality[i] - quality[j]) <= exact["max_quality_gap"]))
    is_exact[maybe] = _same_pixels(tiny, whole, i[maybe], j[maybe], exact)
    exact_pairs = pairs[is_exact]

    # Near: similarity over the query views first, the full window search only where it can matter.
    # Views are made for a batch of images when it is matched (as for the candidates: 0.25 s of CPU
    # for 10,000 images, against 126 MB to keep them).
    query = _edge_resamplers(QUERY_WINDOWS)
    sim = _match(lambda batch: _edge_views(thumbs[batch], query, len(QUERY_WINDOWS)), whole, i, j, max_images=512)
    refine = (~is_exact) & (sim >= near["similarity"] - REFINE_MARGIN)
    if refine.any():
        # Each image's views of every window are made when its batch is matched, and dropped after:
        # on 10,000 MNIST digits (54,000 pairs among 8,012 digits refined) a few MB at a time
        # instead of 700 MB of views, and each view made once.
        resample = _edge_resamplers(WINDOWS[1:])
        refined = _match(lambda batch: _edge_views(thumbs[batch], resample, len(WINDOWS) - 1), whole,
                         i[refine], j[refine], max_images=REFINE_IMAGES)
        sim[refine] = np.maximum(sim[refine], refined)
    sim = np.clip(sim, 0.0, 1.0)
    is_near = (~is_exact) & (sim >= _needed(sim, i, j, n, near))

    # Near pairs link exact groups through their first member, so a near group holds one image per
    # exact group and repeats nothing the exact finding already says.
    rep = np.arange(n)
    for g in pair_groups(n, exact_pairs):
        rep[g] = g[np.lexsort((g, -rows["file_size"].to_numpy(float)[g],
                               -(width[g].astype(float) * height[g].astype(float))))[0]]
    near_pairs = np.sort(np.stack([rep[i[is_near]], rep[j[is_near]]], axis=1), axis=1)
    near_sim = sim[is_near]
    keep = near_pairs[:, 0] != near_pairs[:, 1]
    near_pairs, near_sim = near_pairs[keep], near_sim[keep]
    order = np.lexsort((-near_sim, near_pairs[:, 1], near_pairs[:, 0]))
    near_pairs, near_sim = near_pairs[order], near_sim[order]
    first = np.ones(len(near_pairs), bool)
    first[1:] = (near_pairs[1:] != near_pairs[:-1]).any(axis=1)

    best = np.zeros(n, np.float32)
    linked = ~is_exact
    np.maximum.at(best, i[linked], sim[linked])
    np.maximum.at(best, j[linked], sim[linked])
    return DuplicateIndex(ids=rows.index, exact_pairs=exact_pairs, near_pairs=near_pairs[first],
                          near_similarity=near_sim[first], best_similarity=best, candidates=len(pairs))


def _plain(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


@dataclass
class _SampleFacts:
    """Per-sample columns as plain arrays, for describing many groups quickly."""

    position: dict[Any, int]
    order_key: np.ndarray
    ids: list[Any]
    paths: list[Any]
    labels: list[Any]
    splits: list[Any]


def _facts(data: RunData) -> _SampleFacts:
    def compute() -> _SampleFacts:
        f = data.features
        pixels = pd.to_numeric(f["width"], errors="coerce") * pd.to_numeric(f["height"], errors="coerce")
        size = pd.to_numeric(f["file_size"], errors="coerce")
        # Sort key of "likely original first": most pixels, then largest file, then dataset order.
        key = np.lexsort((np.arange(len(f)), -size.fillna(-1).to_numpy(), -pixels.fillna(-1).to_numpy()))
        rank = np.empty(len(f), np.int64)
        rank[key] = np.arange(len(f))
        # Plain lists and a dict: groups are described one by one, and a pandas lookup per group
        # cost more than building the duplicate index's pairs.
        return _SampleFacts(position={s: p for p, s in enumerate(f.index)}, order_key=rank, ids=f.index.tolist(),
                            paths=[_plain(v) for v in f["path"]], labels=[_plain(v) for v in f["label"]],
                            splits=[_plain(v) for v in f["split"]])
    return data.memo("duplicates.sample_facts", compute)


def describe_group(data: RunData, ids: list[str], kind: str, similarity: float) -> dict[str, Any]:
    """A finding group: members with the likely original first (most pixels, then largest file,
    then dataset order), with their labels and splits."""
    facts = _facts(data)
    pos = np.array([facts.position[s] for s in ids], np.int64)
    pos = pos[np.argsort(facts.order_key[pos], kind="stable")]
    return {"samples": [facts.ids[p] for p in pos], "kind": kind, "similarity": round(float(similarity), 4),
            "labels": [facts.labels[p] for p in pos], "splits": [facts.splits[p] for p in pos]}


def duplicate_groups(data: RunData, index: DuplicateIndex) -> list[dict[str, Any]]:
    """Exact groups then near groups, described (see :func:`describe_group`)."""
    out = [describe_group(data, index.ids[g].tolist(), "exact", 1.0) for g in index.exact_groups()]
    out += [describe_group(data, index.ids[g].tolist(), "near", index.weakest_link(g)) for g in index.near_groups()]
    return out


def one_file(data: RunData, ids: list[str]) -> bool:
    facts = _facts(data)
    return len({facts.paths[facts.position[s]] for s in ids} - {None}) == 1
