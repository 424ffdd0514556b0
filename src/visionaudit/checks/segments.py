"""Weak segments: slices of the data where the model is significantly less accurate than on the rest.

Candidate slices are every value of each metadata column (the dataset's ``metadata_columns`` plus the
run's ``group_columns``), quantile bins of image properties (brightness, sharpness, size...) and
clusters of the image embeddings. The label and split are not slices: a weak class is per-class
recall, reported by the metrics.

Embedding clusters find weak groups nobody wrote down (inverted scans, night shots, one background):
the judged samples' embeddings (``embedder``, default ``builtin``) are split by k-means
(:func:`embedding_clusters`: scikit-learn, seeded k-means++, ``n_init`` initialisations, once per
run) into k clusters, each a slice named ``cluster i of k`` (largest first). The rule for k: one cluster per ``cluster_size`` (100) samples,
at least 2 and at most ``max_clusters`` (20). About 100 per cluster keeps each slice big enough for
the test to see a real drop (at 88% overall accuracy, a 100-sample cluster at 73% has Fisher
p = 2e-5, far below the BH bar of 20 slices) while a small weak group still dominates its own cluster;
more clusters would cut such a group up, fewer would dilute it (150 inverted MNIST digits among
2,000 fall in three clusters of their own, of 73, 58 and 19 digits: tests/test_segments.py). Each
cluster also lists its ``typical`` members (nearest its centre), to show what it holds.

Each slice is judged on the labelled samples that have a prediction (correct = the most probable
class equals the label):

- test: one-sided Fisher exact test that the slice is less accurate than the rest of the samples,
  computed as the hypergeometric tail ``P(X <= correct in slice)`` (identical to
  ``scipy.stats.fisher_exact(..., alternative="less")``, but one vectorised call for all slices);
  exact at every slice size, so no large-sample condition to check;
- multiple testing: Benjamini-Hochberg q-values over all slices tested (``fdr``, default 0.05);
- effect: the slice's accuracy must also be ``min_drop`` (default 5 points) below overall, so a tiny
  but "significant" gap in a huge slice is not reported;
- CI: Wilson score interval of the slice's accuracy (``scipy.stats.binomtest(...).proportion_ci``).
  A slice's accuracy is one binomial proportion; Wilson stays inside [0, 1] and does not collapse to a
  point for small slices with no or all errors, as a percentile bootstrap does.

Slices of one column are mutually exclusive, so their tests are dependent; BH is the customary
correction here and the false-discovery rate measured on real data is in ``tests/test_segments.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..context import Context
from ..dataset.model import SAMPLE_COLUMNS
from ..features.embedders import embeddings
from ..findings import CheckOutput, Severity
from .base import Check

#: Image properties binned into slices by default (columns of ``ctx.features``).
PROPERTIES = ("brightness", "contrast", "sharpness", "noise", "entropy", "megapixels", "aspect_ratio")
#: Sample-table columns that are never metadata slices.
NOT_SLICES = frozenset(SAMPLE_COLUMNS) | {"source_line"}


@dataclass
class _Slice:
    name: str
    column: str
    kind: str
    members: np.ndarray  # bool mask over the judged samples
    low: float | None = None
    high: float | None = None
    typical: list[str] = field(default_factory=list)


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _metadata_slices(values: pd.Series, column: str, max_values: int) -> tuple[list[_Slice], str | None]:
    present = values.dropna().astype(str)
    distinct = present.unique()
    if len(distinct) > max_values:
        return [], f"{len(distinct)} distinct values (more than max_values={max_values})"
    text = values.astype(str).where(values.notna(), None).to_numpy()
    return [_Slice(f"{column} = {v}", column, "metadata", text == v) for v in sorted(distinct)], None


def _property_slices(values: np.ndarray, column: str, bins: int) -> tuple[list[_Slice], str | None]:
    """Quantile bins of one property; each bin is named by its value range."""
    finite = np.isfinite(values)
    if not finite.any():
        return [], "not measured"
    edges = np.unique(np.quantile(values[finite], np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 2:
        return [], f"constant ({_fmt(edges[0])})"
    # Bins are [edge_i, edge_i+1), the last one closed; repeated quantiles (ties) merge into one bin.
    which = np.where(finite, np.searchsorted(edges[1:-1], np.where(finite, values, 0.0), side="right"), -1)
    out = []
    for b in range(len(edges) - 1):
        lo, hi = float(edges[b]), float(edges[b + 1])
        closing = "]" if b == len(edges) - 2 else ")"
        out.append(_Slice(f"{column} in [{_fmt(lo)}, {_fmt(hi)}{closing}", column, "property", which == b, lo, hi))
    return out, None


def cluster_count(n: int, cluster_size: int = 100, max_clusters: int = 20) -> int:
    """k for n embedded samples: one cluster per ``cluster_size`` samples, clipped to [2, max_clusters].

    >>> cluster_count(2000), cluster_count(450), cluster_count(90)
    (20, 4, 2)
    """
    return int(min(max_clusters, max(2, n // cluster_size)))


@dataclass
class EmbeddingClusters:
    """k-means clusters of some samples' embeddings: ``labels[i]`` is the cluster of ``ids[i]`` (0 = the
    largest; -1 where the sample has no embedding), ``typical[c]`` cluster c's members nearest its centre."""

    ids: np.ndarray
    labels: np.ndarray
    k: int
    typical: list[list[str]]


def embedding_clusters(ctx: Context, ids: np.ndarray, *, embedder: str = "builtin", cluster_size: int = 100,
                       max_clusters: int = 20, seed: int = 0, n_init: int = 1, typical: int = 12) -> EmbeddingClusters:
    """Cluster the ``embedder`` embeddings of the samples ``ids`` with k-means (k from :func:`cluster_count`),
    computed once per run and setting.

    >>> clusters = embedding_clusters(ctx, ctx.sample_ids.to_numpy())      # 216 embeddings: k = 2
    >>> clusters.k, np.bincount(clusters.labels[clusters.labels >= 0])
    (2, array([151,  65]))
    """
    ids = np.asarray(ids).astype(str)
    key = ("segments.clusters", embedder, cluster_size, max_clusters, seed, n_init, typical, tuple(ids))

    def compute() -> EmbeddingClusters:
        from sklearn.cluster import KMeans

        emb = embeddings(ctx, embedder)
        at = emb.ids.astype(str).get_indexer(ids)
        rows = np.flatnonzero(at >= 0)
        k = cluster_count(len(rows), cluster_size, max_clusters)
        labels = np.full(len(ids), -1, np.int64)
        if len(rows) < k:
            return EmbeddingClusters(ids, labels, 0, [])
        vectors = emb.vectors[at[rows]].astype(np.float64)
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(vectors)
        # Renumbered by size, largest first, so names do not depend on k-means' arbitrary order.
        rank = np.empty(k, np.int64)
        rank[np.argsort(-np.bincount(km.labels_, minlength=k), kind="stable")] = np.arange(k)
        labels[rows] = rank[km.labels_]
        distance = np.linalg.norm(vectors - km.cluster_centers_[km.labels_], axis=1)
        nearest = [[] for _ in range(k)]
        for r in rows[np.argsort(distance, kind="stable")]:
            if len(nearest[labels[r]]) < typical:
                nearest[labels[r]].append(str(ids[r]))
        return EmbeddingClusters(ids, labels, k, nearest)

    return ctx.memo(key, compute)


def _wilson(correct: int, size: int, confidence: float) -> tuple[float, float]:
    from scipy import stats

    ci = stats.binomtest(int(correct), int(size)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


class WeakSegments(Check):
    """Slices (metadata values, property bins, embedding clusters) significantly less accurate than the
    rest of the samples.

    One finding lists every flagged slice as a group (worst accuracy first) with its size, accuracy,
    Wilson CI, p and q values and example ids (most confidently wrong first), and for a cluster its
    ``embedder`` and ``typical`` members (nearest its centre); ``evidence["slices"]``
    is the table of all slices tested and ``evidence["skipped"]`` says which were not, and why.

    >>> manifest = load_dataset("manifest.csv")     # a camera column; the model of preds.csv is worse on camera C
    >>> ctx = Context(manifest, predictions=read_predictions("preds.csv", manifest))
    >>> [(g["slice"], g["size"], round(g["accuracy"], 3)) for g in WeakSegments(properties=()).run(ctx).findings[0].groups]
    [('camera = C', 72, 0.472), ('cluster 2 of 2', 67, 0.612)]
    """

    id = "segments.weak_segments"
    family = "segments"
    suites = ("evaluate",)
    title = "Weak segments: slices where the model is less accurate"
    severity = Severity.WARNING
    defaults: ClassVar[dict[str, Any]] = {
        "min_size": 30,          # slices smaller than this are not tested
        "max_values": 50,        # metadata columns with more distinct values are not sliced
        "bins": 5,               # quantile bins per image property
        "properties": PROPERTIES,  # feature columns to bin; empty = metadata slices only (no image decode)
        "fdr": 0.05,             # Benjamini-Hochberg false-discovery rate
        "min_drop": 0.05,        # least accuracy drop below overall worth reporting
        "confidence": 0.95,      # Wilson CI level
        "examples": 12,          # example sample ids per slice, wrong ones first
        "clusters": True,        # slice by k-means clusters of the image embeddings
        "embedder": "builtin",   # embeddings clustered (features.embedders)
        "cluster_size": 100,     # k = judged samples with an embedding // cluster_size ...
        "max_clusters": 20,      # ... clipped to [2, max_clusters]
        "n_init": 1,             # k-means++ initialisations (the best inertia is kept)
        "seed": 0,               # k-means seed
    }
    why = ("An overall accuracy can hide a group where the model fails: one camera, scanner, site or lighting "
           "condition, or dark or blurry images. Users from that group get a worse model than the headline "
           "number promises, and the gap often points at missing training data or a shortcut.")
    fix = ("Look at the example images of each slice. Collect or re-weight training data for the slice, check "
           "its labels and preprocessing (a different scanner may need its own normalisation), and report "
           "accuracy per slice next to the overall figure.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        preds = ctx.predictions
        if preds is None:
            return output
        samples = ctx.dataset.samples
        index = preds.label_index(samples["label"])
        judged = index >= 0
        if not judged.any():
            return output
        probs = preds.probs[judged]
        label_index = index[judged]
        correct = probs.argmax(axis=1) == label_index
        # Most confidently wrong first: the lower the probability of the given label, the worse.
        given_prob = probs[np.arange(len(label_index)), label_index]
        ids = samples["sample_id"][judged].astype(str).to_numpy()

        slices, skipped = self._slices(ctx, judged)
        table, tested = self._test(slices, correct, skipped)
        overall = float(correct.mean())
        overall_ci = _wilson(int(correct.sum()), len(correct), self.params["confidence"])
        flagged = [(s, row) for s, row in zip(tested, table) if row["flagged"]]
        flagged.sort(key=lambda pair: (pair[1]["accuracy"], pair[1]["q"]))

        scores = pd.Series(1.0, index=ids)
        flags = pd.Series(False, index=ids)
        ordered: list[str] = []
        groups = []
        for s, row in flagged:
            members = np.flatnonzero(s.members)
            members = members[np.lexsort((given_prob[members], correct[members]))]
            member_ids = ids[members]
            ratio = row["accuracy"] / overall
            scores.loc[member_ids] = np.minimum(scores.loc[member_ids].to_numpy(), ratio)
            flags.loc[member_ids] = True
            ordered.extend(member_ids.tolist())
            group = {"samples": member_ids[: self.params["examples"]].tolist(),
                     **{k: row[k] for k in ("slice", "column", "kind", "size", "correct", "accuracy", "ci",
                                             "rest_accuracy", "drop", "p", "q")}}
            if s.kind == "property":
                group.update(property=s.column, low=s.low, high=s.high)
            if s.kind == "cluster":
                group.update(embedder=str(self.params["embedder"]), typical=s.typical[: self.params["examples"]])
            groups.append(group)
        output.score("weak_segments", scores, flags)

        evidence = {
            "judged": len(ids),
            "overall_accuracy": overall,
            "overall_ci": list(overall_ci),
            "test": "one-sided Fisher exact (slice vs rest)",
            "correction": "benjamini-hochberg",
            "ci_method": "wilson",
            "slices": table,
            "skipped": skipped,
        }
        if not groups:
            return output
        samples_out = list(dict.fromkeys(ordered))
        shown = "; ".join(f"{g['slice']}: {g['accuracy']:.1%} [{g['ci'][0]:.1%}, {g['ci'][1]:.1%}] "
                          f"(n={g['size']}, q={g['q']:.2g})" for g in groups[:3])
        more = f"; and {len(groups) - 3} more" if len(groups) > 3 else ""
        message = (f"{len(groups)} of {len(table)} slices are significantly less accurate than overall "
                   f"({overall:.1%}): {shown}{more}")
        return output.add(self.finding(issue="weak_segments", message=message, samples=samples_out, scores=scores,
                             groups=groups, evidence=evidence))

    def _slices(self, ctx: Context, judged: np.ndarray) -> tuple[list[_Slice], list[dict[str, Any]]]:
        samples = ctx.dataset.samples
        columns = list(dict.fromkeys(list(ctx.dataset.metadata_columns)
                                     + list(ctx.group_columns)))
        slices: list[_Slice] = []
        skipped: list[dict[str, Any]] = []
        for column in columns:
            if column in NOT_SLICES:
                continue
            if column not in samples.columns:
                skipped.append({"column": column, "reason": "not a column of the samples table"})
                continue
            found, reason = _metadata_slices(samples[column][judged].reset_index(drop=True), column,
                                             int(self.params["max_values"]))
            if reason:
                skipped.append({"column": column, "reason": reason})
            slices.extend(found)
        properties = list(self.params["properties"] or [])
        if properties:
            features = ctx.features
            for column in properties:
                if column not in features.columns:
                    raise ValueError(f"check {self.id!r}: property {column!r} is not a feature column; "
                                     f"known numeric features include {', '.join(PROPERTIES)}")
                values = pd.to_numeric(features[column], errors="coerce").to_numpy(dtype=float)[judged]
                values = np.where(ctx.valid.to_numpy()[judged], values, np.nan)
                found, reason = _property_slices(values, column, int(self.params["bins"]))
                if reason:
                    skipped.append({"column": column, "reason": reason})
                slices.extend(found)
        if self.params["clusters"]:
            found, reason = self._clusters(ctx, judged)
            if reason:
                skipped.append({"column": "embedding_cluster", "reason": reason})
            slices.extend(found)
        return slices, skipped

    def _clusters(self, ctx: Context, judged: np.ndarray) -> tuple[list[_Slice], str | None]:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return [], "scikit-learn is not installed (pip install 'visionaudit[evaluate]')"
        ids = ctx.dataset.samples["sample_id"][judged].astype(str).to_numpy()
        embedded = int(embeddings(ctx, str(self.params["embedder"])).ids.astype(str).isin(ids).sum())
        if embedded < 2 * int(self.params["min_size"]):
            return [], (f"{embedded} judged samples with an embedding: too few for two clusters of "
                        f"min_size={self.params['min_size']}")
        clusters = embedding_clusters(ctx, ids, embedder=str(self.params["embedder"]),
                                      cluster_size=int(self.params["cluster_size"]),
                                      max_clusters=int(self.params["max_clusters"]), seed=int(self.params["seed"]),
                                      n_init=int(self.params["n_init"]), typical=int(self.params["examples"]))
        return [_Slice(f"cluster {c + 1} of {clusters.k}", "embedding_cluster", "cluster", clusters.labels == c,
                       typical=clusters.typical[c]) for c in range(clusters.k)], None

    def _test(self, slices: list[_Slice], correct: np.ndarray,
              skipped: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[_Slice]]:
        n, right = len(correct), int(correct.sum())
        tested = []
        for s in slices:
            size = int(s.members.sum())
            if size < self.params["min_size"]:
                skipped.append({"slice": s.name, "size": size, "reason": f"fewer than min_size={self.params['min_size']} samples"})
            elif size == n:
                skipped.append({"slice": s.name, "size": size, "reason": "holds every judged sample"})
            else:
                tested.append(s)
        if not tested:
            return [], []
        sizes = np.array([s.members.sum() for s in tested])
        hits = np.array([correct[s.members].sum() for s in tested])
        # Fisher's one-sided p: chance of this few correct in a slice of this size drawn from all samples.
        from scipy import stats

        p = stats.hypergeom.cdf(hits, n, right, sizes)
        q = stats.false_discovery_control(p, method="bh")
        overall = right / n
        table = []
        for s, size, k, pv, qv in zip(tested, sizes, hits, p, q):
            acc = k / size
            rest = (right - k) / (n - size)
            drop = overall - acc
            table.append({
                "slice": s.name, "column": s.column, "kind": s.kind, "size": int(size), "correct": int(k),
                "accuracy": float(acc), "ci": list(_wilson(k, size, self.params["confidence"])),
                "rest_accuracy": float(rest), "drop": float(drop), "p": float(pv), "q": float(qv),
                "flagged": bool(qv <= self.params["fdr"] and drop >= self.params["min_drop"]),
            })
        return table, tested
