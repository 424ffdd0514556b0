"""The shared kNN, hash banding and pair grouping, checked against brute force on real data."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import mnist_arrays
from scipy.spatial.distance import cdist

from visionaudit.analyses import neighbours
from visionaudit.analyses.neighbours import (
    hash_band_pairs,
    knn,
    knn_pairs,
    pair_groups,
    unique_pairs,
)
from visionaudit.errors import ArgumentError
from visionaudit.features.hashing import hamming, phash


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """2,000 MNIST digits as 784-d float vectors (real data with many close neighbours)."""
    images, labels = mnist_arrays(2000)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels


def _brute(data: np.ndarray, queries: np.ndarray, k: int, metric: str, self_query: bool):
    d = cdist(queries.astype(np.float64), data.astype(np.float64), "sqeuclidean" if metric == "euclidean" else "cosine")
    if self_query:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    dist = np.take_along_axis(d, idx, 1)
    return idx, (np.sqrt(dist) if metric == "euclidean" else dist)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_knn_equals_brute_force_across_blocks(digits, metric, monkeypatch):
    x = digits[0][:600]
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 4 * 600 * 37)   # 37 query rows per block: 17 blocks
    nb = knn(x, 7, metric=metric)
    idx, dist = _brute(x, x, 7, metric, self_query=True)
    assert nb.method == "exact"
    np.testing.assert_allclose(nb.distances, dist, rtol=1e-4, atol=1e-4)
    # Neighbour ids agree wherever the distance is not tied with the next one.
    clear = np.abs(np.diff(dist, axis=1, append=np.inf)) > 1e-4
    assert (nb.indices[clear] == idx[clear]).all()
    assert (nb.indices != np.arange(len(x))[:, None]).all()       # never the row itself


def test_exact_knn_with_separate_queries(digits):
    x, q = digits[0][:500], digits[0][500:620]
    nb = knn(x, 3, queries=q)
    idx, dist = _brute(x, q, 3, "euclidean", self_query=False)
    np.testing.assert_allclose(nb.distances, dist, rtol=1e-4, atol=1e-4)
    assert (nb.indices[:, 0] == idx[:, 0]).all()


def test_knn_pads_when_fewer_rows_than_k():
    nb = knn(np.array([[0.0, 0.0], [3.0, 4.0]]), 3)
    assert nb.indices.tolist() == [[1, -1, -1], [0, -1, -1]]
    assert nb.distances[:, 0].tolist() == [5.0, 5.0] and np.isinf(nb.distances[:, 1:]).all()


def test_forest_recall_on_mnist(digits):
    """The numpy fallback, forced on 2,000 MNIST digits: recall@10 against exact search."""
    x = digits[0]
    exact = knn(x, 10, method="exact")
    approx = knn(x, 10, method="forest")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.indices, approx.indices)])
    assert approx.method == "forest"
    assert recall >= 0.98, recall
    # Distances reported by the approximate search are true distances of the rows it returns.
    true = np.linalg.norm(x[:50, None, :] - x[approx.indices[:50]], axis=2)
    np.testing.assert_allclose(approx.distances[:50], true, rtol=1e-4, atol=1e-4)


def test_forest_with_separate_queries(digits):
    x, q = digits[0][:1500], digits[0][1500:]
    exact = knn(x, 5, queries=q, method="exact")
    approx = knn(x, 5, queries=q, method="forest")
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(exact.indices, approx.indices)])
    assert recall >= 0.93, recall


def test_auto_switches_to_approximate_above_the_limit(digits, monkeypatch):
    monkeypatch.setattr(neighbours, "EXACT_LIMIT", 100)
    nb = knn(digits[0][:300], 5)
    assert nb.method in ("hnsw", "forest")
    monkeypatch.setattr(neighbours, "EXACT_LIMIT", 300)
    assert knn(digits[0][:300], 5).method == "exact"


def test_hnsw_recall_when_installed(digits):
    pytest.importorskip("hnswlib")
    x = digits[0]
    exact = knn(x, 10, method="exact")
    approx = knn(x, 10, method="hnsw")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.indices, approx.indices)])
    assert recall >= 0.97, recall
    assert (approx.indices != np.arange(len(x))[:, None]).all()


def test_hnsw_gives_the_same_neighbours_every_run():
    # A scan must not change its findings between runs on the same data: the index is built on one
    # thread (built on several, 501 of 5,000 queries against 20,000 rows came back different).
    pytest.importorskip("hnswlib")
    images, _ = mnist_arrays(10000)
    # 10,000 digits on 32 random directions: enough rows for the build threads to interleave.
    x = images.reshape(len(images), -1).astype(np.float32) @ np.random.default_rng(0).standard_normal((784, 32)).astype(np.float32)
    queries = x[::4] + np.random.default_rng(1).standard_normal(x[::4].shape).astype(np.float32)
    first = knn(x, 8, queries=queries, method="hnsw")
    for _ in range(2):
        again = knn(x, 8, queries=queries, method="hnsw")
        np.testing.assert_array_equal(again.indices, first.indices)
        np.testing.assert_array_equal(again.distances, first.distances)


def test_bad_arguments_name_the_argument():
    x = np.zeros((4, 2))
    with pytest.raises(ArgumentError, match="metric"):
        knn(x, 2, metric="manhattan")
    with pytest.raises(ArgumentError, match="invalid k=0"):
        knn(x, 0)
    with pytest.raises(ArgumentError, match="finite"):
        knn(np.array([[np.nan, 0.0], [0.0, 0.0]]), 1)
    with pytest.raises(ArgumentError, match="columns"):
        knn(x, 1, queries=np.zeros((2, 3)))
    with pytest.raises(ArgumentError, match="bands"):
        hash_band_pairs(np.zeros(3, np.int64), bands=7)


def _brute_hamming_pairs(h: np.ndarray, below: int) -> set[tuple[int, int]]:
    d = hamming(h[:, None], h[None, :])
    i, j = np.nonzero(np.triu(d < below, 1))
    return set(zip(i.tolist(), j.tolist()))


def _shares_a_band(h: np.ndarray, pairs: np.ndarray, bands: int = 8) -> np.ndarray:
    x = (h[pairs[:, 0]] ^ h[pairs[:, 1]]).view(np.uint64)
    width = 64 // bands
    shares = np.zeros(len(pairs), bool)
    for band in range(bands):
        shares |= ((x >> np.uint64(width * band)) & np.uint64((1 << width) - 1)) == 0
    return shares


def test_banding_finds_every_pair_below_the_band_count_on_real_hashes():
    """pHashes of 2,000 MNIST digits (many near-equal hashes): 8 bands return every one of the
    1,681 pairs within Hamming distance 7 that brute force finds. MNIST pHashes are degenerate
    (dark digits on black share low frequencies), so uncapped banding returns 545,747 candidates,
    27% of all pairs; ``max_bucket`` bounds that (the duplicate search backs it with kNN)."""
    from PIL import Image
    images, _ = mnist_arrays(2000)
    h = np.array([phash(np.asarray(Image.fromarray(a).resize((32, 32), Image.Resampling.BOX), np.float32))
                  for a in images], dtype=np.int64)
    truth = _brute_hamming_pairs(h, 8)
    pairs = hash_band_pairs(h, bands=8)
    found = {tuple(p) for p in pairs.tolist()}
    assert len(truth) == 1681 and truth <= found
    assert len(found) == 545_747
    assert _shares_a_band(h, pairs).all()
    capped = hash_band_pairs(h, bands=8, max_bucket=64)
    assert len(capped) == 107_363 and {tuple(p) for p in capped.tolist()} <= found


def test_banding_is_sparse_on_photos():
    """On the 256 COCO128 photos no two pHashes are within 7 bits (the closest pair is 14 apart),
    and banding proposes about 1,300 candidate pairs out of 32,640 (1,292 to 1,305 as the decoder's
    reduced-size path changed)."""
    from conftest import coco_images

    from visionaudit.features.decode import measure_file
    h = np.array([measure_file(str(f))["phash"] for f in coco_images("train2017") + coco_images("val2017")],
                 dtype=np.int64)
    pairs = hash_band_pairs(h, bands=8)
    assert 1000 < len(pairs) < 1600
    assert _brute_hamming_pairs(h, 8) == set()
    assert int(hamming(h[:, None], h[None, :])[np.triu_indices(len(h), 1)].min()) >= 12
    assert _shares_a_band(h, pairs).all()


def test_banding_with_planted_flips_and_bucket_cap():
    rng = np.random.default_rng(1)
    base = rng.integers(-2**63, 2**63 - 1, size=200, dtype=np.int64)
    flipped = []
    for r, h in enumerate(base[:64]):
        bits = rng.choice(64, size=r % 8, replace=False)        # 0..7 flipped bits
        mask = np.uint64(sum(1 << int(b) for b in bits))
        flipped.append((np.array([h]).view(np.uint64) ^ mask).view(np.int64)[0])
    h = np.concatenate([base, np.array(flipped, np.int64)])
    found = {tuple(p) for p in hash_band_pairs(h, bands=8).tolist()}
    assert {(i, 200 + i) for i in range(64)} <= found
    assert _brute_hamming_pairs(h, 8) <= found
    # 300 identical hashes form one huge bucket in every band: capped, they give no pairs at all.
    same = np.full(300, 12345, np.int64)
    assert len(hash_band_pairs(same, bands=8, max_bucket=256)) == 0
    assert len(hash_band_pairs(same, bands=8)) == 300 * 299 // 2


def test_pair_groups_and_unique_pairs():
    pairs = np.array([[5, 2], [2, 5], [7, 7], [0, 1], [1, 3], [8, 9]])
    assert unique_pairs(pairs, 10).tolist() == [[0, 1], [1, 3], [2, 5], [8, 9]]
    groups = [g.tolist() for g in pair_groups(10, pairs)]
    assert groups == [[0, 1, 3], [2, 5], [8, 9]]
    assert pair_groups(4, np.empty((0, 2))) == []


def test_knn_pairs_maps_query_views_to_rows():
    nb = neighbours.Neighbours(indices=np.array([[1, -1], [0, 2], [0, 1], [2, 0]]),
                               distances=np.zeros((4, 2), np.float32), method="exact")
    # Queries 2 and 3 are second views of rows 0 and 1.
    assert knn_pairs(nb, np.array([0, 1, 0, 1])).tolist() == [[0, 1], [1, 2]]
