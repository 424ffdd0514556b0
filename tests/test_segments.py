"""Weak segments on real MNIST digits: a planted weak scanner is found, random scanners are not.

2,000 test digits are written as PNGs into a manifest-like dataset with a ``scanner`` column (A-D,
seeded at random). Out-of-fold probabilities come from logistic regression on PCA components
(5-fold ``cross_val_predict``; the PCA is fitted on all images once, without labels, which keeps the
predictions out-of-sample with respect to the labels and the test quick). The planted run swaps the
top two classes of a seeded 15% of scanner C's samples that the model got right, so C's accuracy
falls 15 points; the check must flag exactly ``scanner = C`` among the metadata slices.

Real weak segment measured on this data: the sharpest fifth of the digits (normalised Laplacian
sharpness above its 80th percentile; thin, spiky strokes) is 82.5% accurate vs 87.8% overall
(q = 0.009), so it is flagged in every run that bins image properties. The null runs therefore slice
metadata only (``properties=()``, a setting), and the planted run asserts that one property slice.
Measured null (random scanners, metadata slices only): with the default 5-point minimum drop, 0 flagged
slices in the 20 runs here and in 200 runs (seeds 100-299); on significance alone (``min_drop=0``) 1 of
the 20 runs here and 12 of 200 (6%) flag a slice, in line with BH's 5% bound on the chance of any false
discovery under a global null. Asserted: at most 1 flagged slice in 20 runs with the defaults, and at
most 2 runs with a flagged slice on significance alone (expected <= 1). These tests leave embedding
clusters out (``clusters=False``); the ones below are about them.

Embedding clusters (k-means on builtin embeddings, k = 20 for 2,000 digits): with the real
out-of-fold probabilities one cluster is a real weak segment (measured: 103 digits at 69.9% vs 87.8%,
q = 1.5e-5), so the planted and null cluster runs use predictions whose errors are independent of the
image: each digit right with probability 0.88 (seeded), else a random wrong class. Planted: 150
digits inverted (white background), right with probability 0.6. They fall in clusters of their own
(measured: 73 and 58 digits, and 19 more below min_size), and the flagged slices must be exactly
the inverted clusters that are tested. Null (no plant, random scanners, 20 seeded runs on one set of
clusters): 0 flagged slices; in 200 runs (seeds 1000-1199) 7 runs flag a slice (3.5%) with the
defaults and 8 (4%) on significance alone, within BH's 5%.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import issues_frame, mnist_arrays, run_check
from PIL import Image
from scipy import stats

from visionaudit.checks.segments import WeakSegments, embedding_clusters
from visionaudit.context import Context
from visionaudit.dataset import Dataset, make_samples
from visionaudit.predictors import Predictions, read_predictions

pytest.importorskip("sklearn")

N, PLANT_DROP, NULL_RUNS, MAX_NULL_FLAGS, MAX_NULL_RUNS_SIGNIFICANCE_ONLY = 2000, 0.15, 20, 1, 2
SCANNERS = np.array(list("ABCD"))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    images, labels = mnist_arrays(N)
    base = tmp_path_factory.mktemp("segments")
    rows = []
    for i, (img, label) in enumerate(zip(images, labels)):
        path = base / "images" / f"{i:05d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(img).save(path)
        rows.append({"sample_id": f"d{i:05d}", "path": str(path), "label": str(label), "split": "test"})
    components = PCA(50, random_state=0).fit_transform(images.reshape(N, -1) / 255.0)
    probs = cross_val_predict(LogisticRegression(C=0.1, max_iter=300), components, labels,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    return {"base": base, "rows": rows, "labels": labels.astype(int), "probs": probs,
            "ids": np.array([r["sample_id"] for r in rows])}


def _dataset(digits, seed: int, **extra_columns) -> Dataset:
    scanner = np.random.default_rng(seed).choice(SCANNERS, N)
    rows = [dict(r, scanner=s, **{k: v[i] for k, v in extra_columns.items()})
            for i, (r, s) in enumerate(zip(digits["rows"], scanner))]
    return Dataset(make_samples(rows), source=str(digits["base"]), format="manifest",
                   metadata_columns=["scanner", *extra_columns])


def _context(digits, dataset: Dataset, probs: np.ndarray, name: str, group_columns=()) -> Context:
    # Written as a predictions CSV keyed by sample id (rows shuffled) and read back as a user's file.
    order = np.random.default_rng(1).permutation(N)
    table = pd.DataFrame(probs[order], columns=[str(c) for c in range(10)])
    table.insert(0, "sample_id", digits["ids"][order])
    csv = digits["base"] / f"{name}.csv"
    table.to_csv(csv, index=False, float_format="%.17g")
    return Context(dataset, predictions=read_predictions(csv, dataset), group_columns=group_columns,
                   feature_options={"cache_dir": digits["base"] / "cache"})


def _wilson(k: int, n: int, z: float = stats.norm.ppf(0.975)) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.fixture(scope="module")
def planted(digits):
    dataset = _dataset(digits, seed=0)
    scanner = dataset.samples["scanner"].to_numpy()
    probs = digits["probs"].copy()
    right = probs.argmax(axis=1) == digits["labels"]
    in_c = np.flatnonzero(scanner == "C")
    rng = np.random.default_rng(3)
    spoiled = rng.choice(in_c[right[in_c]], round(PLANT_DROP * len(in_c)), replace=False)
    # The model now confuses these digits with its runner-up class: swap the top two probabilities.
    top2 = np.argsort(probs[spoiled], axis=1)[:, -2:]
    rows = spoiled[:, None]
    probs[rows, top2] = probs[rows, top2[:, ::-1]]
    ctx = _context(digits, dataset, probs, "planted")
    (finding,) = run_check(WeakSegments(clusters=False), ctx)
    return {"ctx": ctx, "finding": finding, "probs": probs, "scanner": scanner, "spoiled": set(digits["ids"][spoiled])}


def test_planted_scanner_is_the_only_weak_metadata_slice(digits, planted):
    finding = planted["finding"]
    flagged = [g["slice"] for g in finding.groups]
    assert [s for s in flagged if s.startswith("scanner")] == ["scanner = C"]
    sharpness = planted["ctx"].features["sharpness"].to_numpy(dtype=float)
    top_fifth = f"sharpness in [{np.quantile(sharpness, 0.8):.3g}, {sharpness.max():.3g}]"
    assert flagged == ["scanner = C", top_fifth]
    table = {row["slice"]: row for row in finding.evidence["slices"]}
    assert [s for s in table if s.startswith("scanner")] == ["scanner = A", "scanner = B", "scanner = C", "scanner = D"]
    assert {s for s, row in table.items() if row["flagged"]} == set(flagged)
    assert not {"label", "split"} & {row["column"] for row in table.values()}


def test_planted_slice_figures_match_a_direct_computation(digits, planted):
    finding, probs, scanner = planted["finding"], planted["probs"], planted["scanner"]
    correct = probs.argmax(axis=1) == digits["labels"]
    in_c = scanner == "C"
    k, n = int(correct[in_c].sum()), int(in_c.sum())
    rest_k, rest_n = int(correct[~in_c].sum()), int((~in_c).sum())
    group = finding.groups[0]
    assert (group["slice"], group["column"], group["kind"], group["size"], group["correct"]) == ("scanner = C", "scanner", "metadata", n, k)
    assert group["accuracy"] == pytest.approx(k / n, abs=1e-12)
    assert group["rest_accuracy"] == pytest.approx(rest_k / rest_n, abs=1e-12)
    assert finding.evidence["overall_accuracy"] == pytest.approx(correct.mean(), abs=1e-12)
    unplanted = (digits["probs"].argmax(axis=1) == digits["labels"])[in_c].mean()
    assert unplanted - group["accuracy"] == pytest.approx(PLANT_DROP, abs=0.002)
    assert group["ci"] == pytest.approx(list(_wilson(k, n)), abs=1e-9)
    fisher_p = stats.fisher_exact([[k, n - k], [rest_k, rest_n - rest_k]], alternative="less").pvalue
    assert group["p"] == pytest.approx(fisher_p, rel=1e-9)
    assert group["p"] < 1e-8 and group["q"] <= 0.05 and group["q"] >= group["p"]
    # Examples: the slice's most confidently wrong predictions (lowest probability of the label) first.
    wrong = np.flatnonzero(in_c & ~correct)
    given_prob = probs[wrong, digits["labels"][wrong]]
    assert group["samples"] == digits["ids"][wrong[np.argsort(given_prob, kind="stable")[:12]]].tolist()
    wrong = set(digits["ids"][wrong])
    assert planted["spoiled"] <= wrong


def test_planted_scores_and_finding_samples(digits, planted):
    finding, ctx = planted["finding"], planted["ctx"]
    in_c = planted["scanner"] == "C"
    sharp = next(g for g in finding.groups if g["kind"] == "property")
    sharpness = ctx.features["sharpness"].to_numpy(dtype=float)
    in_sharp = (sharpness >= sharp["low"]) & (sharpness <= sharp["high"])
    assert in_sharp.sum() == sharp["size"] == 400
    overall = finding.evidence["overall_accuracy"]
    c_ratio, sharp_ratio = finding.groups[0]["accuracy"] / overall, sharp["accuracy"] / overall
    expected = np.where(in_c, c_ratio, 1.0)
    expected = np.where(in_sharp, np.minimum(expected, sharp_ratio), expected)
    issues = issues_frame(ctx)
    np.testing.assert_allclose(issues.loc[digits["ids"], "weak_segments_score"].to_numpy(), expected, atol=1e-12)
    assert set(issues.index[issues["is_weak_segments"]]) == set(digits["ids"][in_c | in_sharp])
    assert finding.samples[: int(in_c.sum())] == [s for s in finding.samples if s in set(digits["ids"][in_c])]
    assert set(finding.samples) == set(digits["ids"][in_c | in_sharp])
    assert finding.message.startswith(f"2 of {len(finding.evidence['slices'])} slices are significantly less accurate "
                                      f"than overall ({overall:.1%}): scanner = C: ")


def test_no_weak_metadata_slice_in_random_scanners(digits):
    tested = flagged = runs_significant = 0
    for seed in range(NULL_RUNS):
        ctx = _context(digits, _dataset(digits, seed=100 + seed), digits["probs"], "null")
        findings = run_check(WeakSegments(properties=(), clusters=False), ctx)
        assert "features" not in ctx.data.__dict__, "metadata-only slicing must not decode images"
        tested += 4
        flagged += len(findings[0].groups) if findings else 0
        runs_significant += bool(run_check(WeakSegments(properties=(), clusters=False, min_drop=0.0), ctx))
    assert tested == 4 * NULL_RUNS
    assert flagged == 0 <= MAX_NULL_FLAGS
    assert runs_significant <= MAX_NULL_RUNS_SIGNIFICANCE_ONLY


def test_candidate_slices_and_skipped_columns(digits):
    rng = np.random.default_rng(5)
    serial = np.array([f"s{i}" for i in range(N)])                      # one value per sample: too many
    site = np.where(rng.random(N) < 0.01, "rare", "main")               # the rare site is below min_size
    dataset = _dataset(digits, seed=0, serial=serial, site=site)
    dataset.samples["patient"] = rng.choice(["p1", "p2"], N)             # sliced because it is a group column
    ctx = _context(digits, dataset, digits["probs"], "candidates", group_columns=["patient", "ward"])
    assert run_check(WeakSegments(min_drop=1.0), ctx) == []
    issues = issues_frame(ctx)
    assert (issues["weak_segments_score"] == 1.0).all() and not issues["is_weak_segments"].any()
    # Every tested slice flagged, so the finding carries the whole table of candidates.
    (finding,) = run_check(WeakSegments(min_drop=-1.0, fdr=1.0), ctx)
    table, skipped = finding.evidence["slices"], finding.evidence["skipped"]
    names = [row["slice"] for row in table]
    columns = {row["column"] for row in table}
    assert columns == {"scanner", "site", "patient", "brightness", "contrast", "sharpness", "entropy",
                       "embedding_cluster"}
    # k = 2000 // 100 = 20 clusters, numbered largest first; those below min_size are skipped.
    clusters = [row for row in table if row["kind"] == "cluster"]
    small = [s for s in skipped if s.get("slice", "").startswith("cluster ")]
    assert sorted(int(r["slice"].split()[1]) for r in clusters + small) == list(range(1, 21))
    assert all(r["slice"].endswith(" of 20") and r["column"] == "embedding_cluster" for r in clusters)
    sizes = [r["size"] for r in sorted(clusters + small, key=lambda r: int(r["slice"].split()[1]))]
    assert sum(sizes) == N and sizes == sorted(sizes, reverse=True)
    assert all(r["size"] >= 30 for r in clusters) and all(r["size"] < 30 for r in small)
    assert "site = rare" not in names and "site = main" in names
    assert {"patient = p1", "patient = p2"} <= set(names)
    reasons = {s.get("column", s.get("slice")): s["reason"] for s in skipped}
    assert reasons["serial"] == "2000 distinct values (more than max_values=50)"
    assert reasons["ward"] == "not a column of the samples table"
    assert reasons["megapixels"] == "constant (0.000784)" and reasons["aspect_ratio"] == "constant (1)"
    assert reasons["site = rare"] == "fewer than min_size=30 samples"
    brightness = ctx.features["brightness"].to_numpy(dtype=float)
    bins = [row for row in table if row["column"] == "brightness"]
    assert [row["size"] for row in bins] == [400] * 5
    edges = np.quantile(brightness, np.linspace(0, 1, 6))
    assert [row["slice"] for row in bins] == [
        f"brightness in [{edges[i]:.3g}, {edges[i + 1]:.3g}{']' if i == 4 else ')'}" for i in range(5)]


def _random_probs(labels: np.ndarray, seed: int, rate: float) -> np.ndarray:
    """Probabilities right with probability ``rate`` per sample (0.7 on the label), else 0.7 on a random
    wrong class: errors independent of the image."""
    rng = np.random.default_rng(seed)
    right = rng.random(len(labels)) < rate
    top = np.where(right, labels, (labels + rng.integers(1, 10, len(labels))) % 10)
    probs = np.full((len(labels), 10), 0.3 / 9)
    probs[np.arange(len(labels)), top] = 0.7
    return probs


def _cluster_members(ctx: Context, digits) -> dict[str, set[str]]:
    clusters = embedding_clusters(ctx, digits["ids"])
    return {f"cluster {c + 1} of {clusters.k}": set(digits["ids"][clusters.labels == c]) for c in range(clusters.k)}


def _check_groups_against_members(finding, members: dict[str, set[str]], correct: dict[str, bool]) -> None:
    """Each flagged cluster's figures equal a direct computation on its members."""
    n, right = len(correct), sum(correct.values())
    for g in finding.groups:
        inside = members[g["slice"]]
        k = sum(correct[s] for s in inside)
        assert (g["size"], g["correct"], g["kind"], g["embedder"]) == (len(inside), k, "cluster", "builtin")
        assert g["accuracy"] == pytest.approx(k / len(inside), abs=1e-12)
        fisher = stats.fisher_exact([[k, len(inside) - k], [right - k, n - len(inside) - right + k]], alternative="less")
        assert g["p"] == pytest.approx(fisher.pvalue, rel=1e-9)
        assert set(g["samples"]) <= inside and set(g["typical"]) <= inside and len(g["typical"]) == 12


def test_real_weak_cluster_matches_a_direct_computation(digits):
    ctx = _context(digits, _dataset(digits, seed=0), digits["probs"], "clusters")
    (finding,) = run_check(WeakSegments(properties=()), ctx)
    assert [g["kind"] for g in finding.groups] == ["cluster"]
    members = _cluster_members(ctx, digits)
    correct = dict(zip(digits["ids"], digits["probs"].argmax(axis=1) == digits["labels"]))
    _check_groups_against_members(finding, members, correct)
    assert finding.groups[0]["accuracy"] < finding.evidence["overall_accuracy"] - 0.15
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_weak_segments"]]) == members[finding.groups[0]["slice"]]


@pytest.fixture(scope="module")
def inverted(digits):
    images, _ = mnist_arrays(N)
    chosen = np.sort(np.random.default_rng(7).choice(N, 150, replace=False))
    rows = [dict(r) for r in digits["rows"]]
    for i in chosen:
        path = digits["base"] / "inverted" / f"{i:05d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(255 - images[i]).save(path)
        rows[i]["path"] = str(path)
    scanner = np.random.default_rng(0).choice(SCANNERS, N)
    dataset = Dataset(make_samples([dict(r, scanner=s) for r, s in zip(rows, scanner)]), source=str(digits["base"]),
                      format="manifest", metadata_columns=["scanner"])
    return {"dataset": dataset, "ids": set(digits["ids"][chosen]), "rows": chosen}


def test_planted_inverted_digits_are_the_weak_cluster(digits, inverted):
    probs = _random_probs(digits["labels"], seed=1, rate=0.88)
    probs[inverted["rows"]] = _random_probs(digits["labels"], seed=2, rate=0.6)[inverted["rows"]]
    ctx = Context(inverted["dataset"], predictions=Predictions([str(c) for c in range(10)], probs, digits["ids"].tolist()),
                  feature_options={"cache_dir": digits["base"] / "cache"})
    (finding,) = run_check(WeakSegments(properties=()), ctx)
    members = _cluster_members(ctx, digits)
    # The inverted digits share no cluster with upright ones...
    pure = {name for name, m in members.items() if m <= inverted["ids"]}
    assert set().union(*(members[name] for name in pure)) == inverted["ids"]
    # ... and the flagged slices are exactly the inverted clusters big enough to be tested.
    tested = {name for name in pure if len(members[name]) >= 30}
    assert {g["slice"] for g in finding.groups} == tested and len(tested) >= 1
    flagged = set().union(*(members[name] for name in tested))
    assert len(flagged) >= 120
    correct = dict(zip(digits["ids"], probs.argmax(axis=1) == digits["labels"]))
    _check_groups_against_members(finding, members, correct)
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_weak_segments"]]) == flagged


def test_no_weak_cluster_when_errors_do_not_depend_on_the_image(digits):
    ctx = _context(digits, _dataset(digits, seed=0), digits["probs"], "clusters_null")
    flagged = runs_significant = 0
    for seed in range(NULL_RUNS):
        # One set of clusters (computed once per run) judged against 20 independent error patterns.
        ctx = Context(ctx.data, predictions=Predictions([str(c) for c in range(10)],
                                                        _random_probs(digits["labels"], 1000 + seed, 0.88),
                                                        digits["ids"].tolist()))
        findings = run_check(WeakSegments(properties=()), ctx)
        flagged += len(findings[0].groups) if findings else 0
        runs_significant += bool(run_check(WeakSegments(properties=(), min_drop=0.0), ctx))
    assert flagged == 0 <= MAX_NULL_FLAGS
    assert runs_significant <= MAX_NULL_RUNS_SIGNIFICANCE_ONLY
    assert sum(key[0] == "segments.clusters" for key in ctx.data._memo) == 1


def test_without_predictions_or_labels_nothing_is_judged(digits):
    dataset = _dataset(digits, seed=0)
    assert run_check(WeakSegments(), Context(dataset)) == []
    unlabelled = Dataset(dataset.samples.assign(label=None), source="x", format="manifest", metadata_columns=["scanner"])
    preds = Predictions([str(c) for c in range(10)], digits["probs"], digits["ids"].tolist())
    assert run_check(WeakSegments(), Context(unlabelled, predictions=preds)) == []
