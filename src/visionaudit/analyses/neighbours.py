"""The one nearest-neighbour search, hash banding and pair clustering every check reuses.

- :func:`knn`: k nearest neighbours of each row (or of separate query rows). Exact, by blocked
  matrix products with bounded memory, while queries x indexed rows is at most
  :data:`EXACT_LIMIT` squared (a self-search of up to 20,000 rows); above it an approximate index:
  ``hnswlib`` when installed (the ``ann`` extra), else a random-projection forest written in
  numpy. Same signature, same output.
- :func:`hash_band_pairs`: candidate pairs of 64-bit hashes that agree on at least one band, so
  pairs within a small Hamming distance are found without comparing all pairs.
- :func:`pair_groups`: connected components of a set of pairs (duplicate clusters).
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.local import default_workers
from ..errors import ArgumentError

#: :func:`knn` is exact while queries x indexed rows <= EXACT_LIMIT ** 2: a 20,000-row self-search
#: takes about 5 s on two cores, and the cost grows with the square of the rows.
EXACT_LIMIT = 20_000
#: Memory the forest refinement may use for one block of candidate distances.
BLOCK_BYTES = 64 * 2**20
#: Size of one block of query-to-index distances in the exact search: small enough to stay in the
#: CPU's last-level cache while the k nearest are picked from it, large enough that the threaded
#: matrix products stay few. A 35,000 x 5,000 search on 2 cores: 0.43 s in 64 MiB blocks, 0.34 s
#: in 16 MiB; 4 MiB blocks took 0.26 s on an idle machine but 2.7 s (against 1.0 s for 64 MiB)
#: while other processes used the cores, as each of 168 products waited for its threads.
EXACT_BLOCK_BYTES = 16 * 2**20
#: Side of the square tiles of a self-search (:func:`_exact_self`): 5,000 x 712 took 0.38 s as a
#: full search, 0.32 s in tiles of 2048, 0.28 s in tiles of 1280 or 768 (one thread).
SELF_TILE_ROWS = 1280
METRICS = ("euclidean", "cosine")
METHODS = ("auto", "exact", "hnsw", "forest")


@functools.cache
def _blas_threads():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the BLAS and LAPACK calls inside the block on one thread.

    The searches here run after the decode pool, on a machine whose cores other work may hold. A
    threaded OpenBLAS call then waits for its second thread at every synchronisation point: on a
    busy 2-core machine the ``eigh`` of the duplicate index's 450 x 450 covariance took 3.7 s
    instead of 16 ms, and the whole index 3.7 s instead of 0.93 s. Idle, the second thread saves
    about 0.15 s per 5,000-image search.

    >>> with single_threaded_blas():
    ...     _ = np.ones((3, 3)) @ np.ones((3, 3))
    """
    with _blas_threads().limit(limits=1, user_api="blas"):
        yield


@dataclass
class Neighbours:
    """k nearest neighbours of each query row, nearest first.

    ``indices`` (n_queries, k) holds row numbers of the indexed data (-1 where fewer than k exist),
    ``distances`` the matching distances (euclidean, or 1 - cosine similarity; inf where missing).
    ``method`` says which search produced them ("exact", "hnsw" or "forest").
    """

    indices: np.ndarray
    distances: np.ndarray
    method: str


def knn(
    data: np.ndarray,
    k: int,
    *,
    queries: np.ndarray | None = None,
    metric: str = "euclidean",
    method: str = "auto",
    seed: int = 0,
) -> Neighbours:
    """The ``k`` nearest rows of ``data`` to each row of ``queries`` (default: to each row of
    ``data`` itself, excluding the row itself).

    ``method="auto"`` searches exactly while ``len(queries) * len(data) <= EXACT_LIMIT ** 2`` and
    approximately above it (hnswlib if installed, else a random-projection forest); ``"exact"``, ``"hnsw"`` and
    ``"forest"`` force one. ``metric="cosine"`` returns 1 - cosine similarity.

    >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    >>> nb = knn(x, 1)
    >>> nb.indices.ravel().tolist(), [round(float(d), 3) for d in nb.distances.ravel()]
    ([1, 0, 1], [1.0, 1.0, 6.403])
    """
    if metric not in METRICS:
        raise ArgumentError("metric", metric, f"one of {', '.join(METRICS)}")
    if method not in METHODS:
        raise ArgumentError("method", method, f"one of {', '.join(METHODS)}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ArgumentError("k", k, "a positive integer")
    x = _as_matrix(data, "data")
    self_query = queries is None
    q = x if self_query else _as_matrix(queries, "queries")
    if q.shape[1] != x.shape[1]:
        raise ArgumentError("queries", f"{q.shape[1]} columns", f"{x.shape[1]} columns like data")
    if metric == "cosine":
        x = _unit_rows(x)
        q = x if self_query else _unit_rows(q)
    n = len(x)
    k_found = min(int(k), n - 1 if self_query else n)
    if method == "auto":
        small = len(q) * n <= EXACT_LIMIT ** 2
        method = "exact" if small else ("hnsw" if _hnswlib() is not None else "forest")
    with single_threaded_blas():
        if k_found <= 0:
            idx, d2 = np.empty((len(q), 0), np.int64), np.empty((len(q), 0), np.float32)
        elif method == "exact":
            idx, d2 = _exact_self(x, k_found) if self_query else _exact(x, q, k_found)
        elif method == "hnsw":
            idx, d2 = _hnsw(x, q, k_found, self_query, seed)
        else:
            idx, d2 = _forest(x, q, k_found, self_query, np.random.default_rng(seed))
            if self_query:
                idx, d2 = _refine(x, idx, d2)
    dist = np.sqrt(np.maximum(d2, 0.0)) if metric == "euclidean" else np.maximum(d2, 0.0) / 2.0
    if k_found < k:
        pad = int(k) - k_found
        idx = np.hstack([idx, np.full((len(q), pad), -1, np.int64)])
        dist = np.hstack([dist, np.full((len(q), pad), np.inf, np.float32)])
    return Neighbours(indices=idx, distances=dist.astype(np.float32), method=method)


def _as_matrix(a: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(a, dtype=np.float32)
    if m.ndim != 2:
        raise ArgumentError(name, f"array of shape {m.shape}", "a 2-D array (rows x features)")
    if not np.isfinite(m).all():
        raise ArgumentError(name, "an array with NaN or inf", "finite values")
    return np.ascontiguousarray(m)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _top_k(d2: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise k smallest of ``d2`` (overwritten), ties broken by the candidate's row number so
    results are deterministic, with ``cand`` the row numbers behind each column."""
    if d2.shape[1] > k:
        if k <= 16:
            # k passes of argmin are about ten times faster than one argpartition for small k.
            rows = np.arange(len(d2))
            part = np.empty((len(d2), k), np.int64)
            best = np.empty((len(d2), k), d2.dtype)
            for col in range(k):
                pos = d2.argmin(axis=1)
                part[:, col] = pos
                best[:, col] = d2[rows, pos]
                d2[rows, pos] = np.inf
            d2 = best
        else:
            part = np.argpartition(d2, k - 1, axis=1)[:, :k]
            d2 = np.take_along_axis(d2, part, 1)
        cand = np.take_along_axis(cand, part, 1)
    order = np.lexsort((cand, d2), axis=1)
    return np.take_along_axis(cand, order, 1), np.take_along_axis(d2, order, 1)


def in_threads(work: Callable[[Any], None], items: Sequence[Any]) -> None:
    """``work(item)`` for every item, on one Python thread per core (in no set order; a call made
    from inside such a thread runs in that thread, so nested calls never multiply the threads).

    For independent blocks of numpy work: numpy releases the GIL in products and reductions, so
    threads that each run single-threaded BLAS (:func:`single_threaded_blas`) use the cores without
    OpenBLAS's per-call synchronisation, which stalls on a busy machine: they meet once, at the end.

    >>> out = [0] * 4
    >>> in_threads(lambda i: out.__setitem__(i, i * i), range(4))
    >>> out
    [0, 1, 4, 9]
    """
    threads = min(len(items), default_workers()) if threading.current_thread() is threading.main_thread() else 1
    if threads <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(work, items):
            pass


def _exact(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(x)
    x_sq = np.einsum("ij,ij->i", x, x)
    block = max(1, EXACT_BLOCK_BYTES // (4 * max(n, 1)))
    out_i = np.empty((len(q), k), np.int64)
    out_d = np.empty((len(q), k), np.float32)
    cols = np.broadcast_to(np.arange(n, dtype=np.int64), (min(block, len(q)), n))

    def search(start: int) -> None:
        qb = q[start:start + block]
        # |q|^2 is the same along a row, so rank on |x|^2 - 2 q.x and add it to the k kept
        # (scaling q by -2 first is exact, and saves a pass over the block).
        part = (-2.0 * qb) @ x.T
        part += x_sq[None, :]
        idx, d = _top_k(part, cols[:len(qb)], k)
        out_i[start:start + len(qb)] = idx
        out_d[start:start + len(qb)] = d + np.einsum("ij,ij->i", qb, qb)[:, None]

    in_threads(search, range(0, len(q), block))
    return out_i, out_d


def _smallest(d2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the ``k`` smallest entries of each row of ``d2``, by ``k`` argmin
    passes (lowest position first among ties); ``d2`` is left as it was."""
    rows = np.arange(len(d2))
    pos = np.empty((k, len(d2)), np.int64)
    val = np.empty((k, len(d2)), d2.dtype)
    for col in range(k):
        pos[col] = d2.argmin(axis=1)
        val[col] = d2[rows, pos[col]]
        d2[rows, pos[col]] = np.inf
    for col in range(k):
        d2[rows, pos[col]] = val[col]
    return pos.T, val.T


def _exact_self(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_exact` of the rows among themselves, in square tiles of which only those on and
    above the diagonal are computed: a tile's distances give its rows their nearest among its
    columns, and its columns their nearest among its rows, so the products cost half."""
    n = len(x)
    side = max(k + 1, SELF_TILE_ROWS)
    starts = list(range(0, n, side))
    x_sq = np.einsum("ij,ij->i", x, x)
    # Each row keeps the k nearest of every tile of columns; the k nearest of those are the answer.
    cand_i = np.full((n, len(starts) * k), -1, np.int64)
    cand_d = np.full((n, len(starts) * k), np.inf, np.float32)

    def tile(ab: tuple[int, int]) -> None:
        a, b = ab
        ra, cb = starts[a], starts[b]
        rows, cols = slice(ra, min(ra + side, n)), slice(cb, min(cb + side, n))
        d2 = (-2.0 * x[rows]) @ x[cols].T
        d2 += x_sq[rows, None]
        d2 += x_sq[None, cols]
        if a == b:
            np.fill_diagonal(d2, np.inf)
        kr, kc = min(k, d2.shape[1]), min(k, d2.shape[0])
        # Tiles write disjoint slots: rows of a in slot b, rows of b in slot a.
        pos, val = _smallest(d2, kr)
        cand_i[rows, b * k:b * k + kr], cand_d[rows, b * k:b * k + kr] = pos + cb, val
        if a != b:
            # argmin along a row is ~50x faster than down a column: transpose (one copy) first.
            pos, val = _smallest(np.ascontiguousarray(d2.T), kc)
            cand_i[cols, a * k:a * k + kc], cand_d[cols, a * k:a * k + kc] = pos + ra, val

    in_threads(tile, [(a, b) for a in range(len(starts)) for b in range(a, len(starts))])
    cand_d[cand_i < 0] = np.inf
    idx, d2 = _top_k(cand_d, cand_i, k)
    return idx, d2


def _hnswlib():
    try:
        import hnswlib
    except ImportError:
        return None
    return hnswlib


def _hnsw(x: np.ndarray, q: np.ndarray, k: int, self_query: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    hnswlib = _hnswlib()
    if hnswlib is None:
        raise ArgumentError("method", "hnsw", "'auto', 'exact' or 'forest' (hnswlib is not installed: "
                            "pip install 'visionaudit[ann]')")
    index = hnswlib.Index(space="l2", dim=x.shape[1])
    index.init_index(max_elements=len(x), ef_construction=100, M=16, random_seed=seed)
    # One thread to build: threads insert in no fixed order, so the graph, and with it which
    # neighbours are found, changed between runs on the same data (501 of 5,000 queries on 20,000
    # rows). The queries do not change the graph and run on all cores.
    index.add_items(x, np.arange(len(x)), num_threads=1)
    want = k + 1 if self_query else k
    index.set_ef(max(64, 2 * want))
    labels, d2 = index.knn_query(q, k=want)
    labels = labels.astype(np.int64)
    if self_query:
        # Drop the row itself; where an identical vector was returned in its place, drop the last.
        is_self = labels == np.arange(len(q))[:, None]
        drop = np.where(is_self.any(1), is_self.argmax(1), want - 1)
        keep = np.ones_like(labels, bool)
        keep[np.arange(len(q)), drop] = False
        labels = labels[keep].reshape(len(q), k)
        d2 = d2[keep].reshape(len(q), k)
    return labels, d2.astype(np.float32)


#: Random-projection forest: trees, and the most points a leaf holds.
FOREST_TREES = 12
FOREST_LEAF = 128


def _route(points: np.ndarray, directions: list[np.ndarray], thresholds: list[np.ndarray]) -> np.ndarray:
    """Leaf number of each point in one tree (go right where the projection exceeds the split)."""
    node = np.zeros(len(points), np.int64)
    for dirs, thr in zip(directions, thresholds):
        proj = np.einsum("ij,ij->i", points, dirs[node])
        node = 2 * node + (proj > thr[node])
    return node


def _build_tree(x: np.ndarray, depth: int, rng: np.random.Generator):
    """Median splits along random directions; points are split by rank, so leaves stay balanced
    even when many points are identical."""
    n = len(x)
    node = np.zeros(n, np.int64)
    directions, thresholds = [], []
    for level in range(depth):
        nodes = 1 << level
        dirs = rng.standard_normal((nodes, x.shape[1])).astype(np.float32)
        proj = np.einsum("ij,ij->i", x, dirs[node])
        order = np.lexsort((proj, node))
        counts = np.bincount(node, minlength=nodes)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - starts[node[order]]
        right = rank >= counts[node] // 2
        # The split value is the largest projection on the left, so queries route like the data;
        # a node with no left half sends every query right.
        thr = np.full(nodes, -np.inf, np.float32)
        has = counts > 1
        thr[has] = proj[order[starts[has] + counts[has] // 2 - 1]]
        directions.append(dirs)
        thresholds.append(thr)
        node = 2 * node + right
    return directions, thresholds, node


def _merge(best_i, best_d, cand_i, cand_d, k):
    """Keep the k nearest distinct candidates per row."""
    ci = np.hstack([best_i, cand_i])
    cd = np.hstack([best_d, cand_d])
    order = np.argsort(ci, axis=1, kind="stable")
    ci = np.take_along_axis(ci, order, 1)
    cd = np.take_along_axis(cd, order, 1)
    repeat = np.zeros_like(ci, bool)
    repeat[:, 1:] = ci[:, 1:] == ci[:, :-1]
    cd = np.where(repeat | (ci < 0), np.inf, cd)
    return _top_k(cd, ci, k)


def _forest(x: np.ndarray, q: np.ndarray, k: int, self_query: bool, rng: np.random.Generator):
    n, m = len(x), len(q)
    depth = int(np.ceil(np.log2(max(n / FOREST_LEAF, 1.0))))
    best_i = np.full((m, k), -1, np.int64)
    best_d = np.full((m, k), np.inf, np.float32)
    x_sq = np.einsum("ij,ij->i", x, x)
    for _ in range(FOREST_TREES):
        directions, thresholds, leaf_x = _build_tree(x, depth, rng)
        leaf_q = leaf_x if self_query else _route(q, directions, thresholds)
        by_leaf_x = np.argsort(leaf_x, kind="stable")
        x_bounds = np.searchsorted(leaf_x[by_leaf_x], np.arange((1 << depth) + 1))
        by_leaf_q = np.argsort(leaf_q, kind="stable")
        q_bounds = np.searchsorted(leaf_q[by_leaf_q], np.arange((1 << depth) + 1))
        # Each leaf keeps only its k best per query, so merging across trees stays (m, 2k).
        cand_i = np.full((m, k), -1, np.int64)
        cand_d = np.full((m, k), np.inf, np.float32)
        for leaf in range(1 << depth):
            members = by_leaf_x[x_bounds[leaf]:x_bounds[leaf + 1]]
            rows = by_leaf_q[q_bounds[leaf]:q_bounds[leaf + 1]]
            if len(members) == 0 or len(rows) == 0:
                continue
            qb = q[rows]
            d2 = np.einsum("ij,ij->i", qb, qb)[:, None] + x_sq[members][None, :] - 2.0 * (qb @ x[members].T)
            if self_query:
                d2[rows[:, None] == members[None, :]] = np.inf
            kept = min(k, len(members))
            leaf_i, leaf_d = _top_k(d2, np.broadcast_to(members, d2.shape), kept)
            cand_i[rows, :kept] = np.where(np.isinf(leaf_d), -1, leaf_i)    # never the query itself
            cand_d[rows, :kept] = leaf_d
        best_i, best_d = _merge(best_i, best_d, cand_i, cand_d, k)
    return best_i, best_d


def _refine(x: np.ndarray, idx: np.ndarray, d2: np.ndarray):
    """One round of 'neighbours of my neighbours' (as in NN-descent): cheap, and it lifts the
    recall of the forest a lot because near points share neighbours."""
    n, k = idx.shape
    chunk = max(1, BLOCK_BYTES // (4 * k * k * x.shape[1]))
    x_sq = np.einsum("ij,ij->i", x, x)
    out_i, out_d = idx.copy(), d2.copy()
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        nb = idx[rows]
        cand = np.where(nb[:, :, None] >= 0, idx[np.maximum(nb, 0)], -1).reshape(len(rows), k * k)
        valid = (cand >= 0) & (cand != rows[:, None])
        safe = np.where(valid, cand, 0)
        dots = np.einsum("ij,ikj->ik", x[rows], x[safe])
        cd = (x_sq[rows][:, None] + x_sq[safe] - 2.0 * dots).astype(np.float32)
        cd = np.where(valid, cd, np.inf)
        out_i[rows], out_d[rows] = _merge(idx[rows], d2[rows], np.where(valid, cand, -1), cd, k)
    return out_i, out_d


def hash_band_pairs(hashes: np.ndarray, bands: int = 8, max_bucket: int | None = None) -> np.ndarray:
    """Pairs (i < j) of 64-bit hashes that are equal on at least one of ``bands`` equal bit bands.

    Two hashes within Hamming distance ``bands - 1`` always share a band (pigeonhole), so every
    such pair is returned, without comparing all pairs. A band value shared by more than
    ``max_bucket`` items (a degenerate hash, e.g. of blank images) yields no pairs for that band,
    which keeps the work bounded; recall is then guaranteed only for the other bands.

    >>> hash_band_pairs(np.array([0, 1, -1]), bands=4).tolist()
    [[0, 1]]
    """
    if bands not in (1, 2, 4, 8, 16, 32, 64):
        raise ArgumentError("bands", bands, "a divisor of 64 (1, 2, 4, 8, 16, 32 or 64)")
    h = np.asarray(hashes, dtype=np.int64).view(np.uint64)
    n = len(h)
    width = 64 // bands
    mask = np.uint64((1 << width) - 1)
    found = []
    for band in range(bands):
        key = (h >> np.uint64(band * width)) & mask
        order = np.argsort(key, kind="stable")
        sk = key[order]
        run_start = np.concatenate([[True], sk[1:] != sk[:-1]]) if n else np.zeros(0, bool)
        run_id = np.cumsum(run_start) - 1
        sizes = np.bincount(run_id) if n else np.zeros(0, np.int64)
        usable = sizes[run_id] <= (max_bucket if max_bucket is not None else n)
        longest = int(sizes[sizes <= (max_bucket or n)].max(initial=1))
        # Pairs at offset o within a run of equal keys: positions p and p + o with the same run.
        for offset in range(1, longest):
            same = (run_id[offset:] == run_id[:-offset]) & usable[offset:]
            p = np.nonzero(same)[0]
            if len(p):
                found.append(np.stack([order[p], order[p + offset]], axis=1))
    return unique_pairs(np.concatenate(found) if found else np.empty((0, 2), np.int64), n)


def unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """Pairs as (smaller, larger) row numbers, without self-pairs or repeats, sorted."""
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    p = np.sort(p, axis=1)
    p = p[p[:, 0] != p[:, 1]]
    if len(p) == 0:
        return np.empty((0, 2), np.int64)
    key = np.sort(p[:, 0] * np.int64(max(n, 1)) + p[:, 1])      # sorting beats np.unique's hashing here
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.stack([key // max(n, 1), key % max(n, 1)], axis=1)


def knn_pairs(nb: Neighbours, query_rows: np.ndarray | None = None) -> np.ndarray:
    """The (query row, neighbour row) pairs of a :func:`knn` result as unique sorted pairs.

    ``query_rows`` maps each query to a data row (for queries that are views of data rows).
    """
    rows = np.arange(len(nb.indices)) if query_rows is None else np.asarray(query_rows, np.int64)
    a = np.repeat(rows, nb.indices.shape[1])
    b = nb.indices.ravel()
    keep = b >= 0
    n = int(max(a.max(initial=-1), b.max(initial=-1)) + 1)
    return unique_pairs(np.stack([a[keep], b[keep]], axis=1), n)


def _component_roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each of ``n`` items, the smallest item of its connected component under edges (a, b).

    Vectorised union-find (hook and compress, in numpy, so a scan does not import scipy.sparse):
    every root with an edge to a smaller root is hooked under the smallest such root, then pointers
    are jumped until each item points at its root; repeat until no edge joins two roots. Labels only
    decrease, so there are no cycles; the number of rounds grows with the log of the component sizes.
    """
    parent = np.arange(n, dtype=np.int64)
    while True:
        ra, rb = parent[a], parent[b]
        cross = ra != rb
        if not cross.any():
            return parent
        ra, rb = ra[cross], rb[cross]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def pair_groups(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Connected components (size >= 2) of the graph on ``n`` items whose edges are ``pairs``,
    each as sorted row numbers, largest group first (then by first member).

    >>> [g.tolist() for g in pair_groups(5, np.array([[0, 3], [3, 4]]))]
    [[0, 3, 4]]
    """
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if n == 0 or len(p) == 0:
        return []
    labels = _component_roots(n, p[:, 0], p[:, 1])
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [g for g in np.split(order, bounds) if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), int(g[0])))
    return groups
