"""Balance checks on real labels: MNIST digits (classification) and COCO128 boxes (detection).

The MNIST images are written once as PNGs and decoded once; every planted situation is a different
Dataset over the same files (labels and splits change, pixels do not), sharing that one feature run.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHARED, issues_frame, mnist_arrays, run_check
from PIL import Image
from scipy.stats import chi2_contingency

from visionaudit.analyses import RunData
from visionaudit.checks.balance import (
    ClassCounts,
    ClassImbalance,
    MissingClassInSplit,
    RareClasses,
    SplitLabelShift,
    total_variation,
)
from visionaudit.context import Context
from visionaudit.dataset import Dataset, make_samples
from visionaudit.findings import Severity, apply_conditions

N = 3000
BALANCE_CHECKS = (ClassCounts, ClassImbalance, RareClasses, MissingClassInSplit, SplitLabelShift)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """(paths, labels, shared FeatureRun) for the first N MNIST test digits written as PNGs."""
    images, labels = mnist_arrays(N)
    root = tmp_path_factory.mktemp("mnist")
    paths = []
    for i, img in enumerate(images):
        p = root / f"{i:05d}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    ds = _dataset(paths, labels, ["train"] * N)
    run = Context(ds, feature_options={"cache_dir": root / "cache", "workers": 2}).feature_run
    assert run.table["error_kind"].isna().all()
    return paths, labels.astype(int), run


def _dataset(paths, labels, splits, keep=None) -> Dataset:
    idx = range(len(paths)) if keep is None else np.flatnonzero(keep)
    rows = [{"sample_id": f"{splits[i] or 'none'}/{i:05d}", "path": paths[i],
             "label": None if labels is None else str(labels[i]), "split": splits[i]} for i in idx]
    return Dataset(samples=make_samples(rows), source="mnist", format="test")


def _ctx(mnist, labels, splits, keep=None) -> Context:
    paths, _, run = mnist
    # Same files, already decoded: share the run instead of re-reading the cache.
    return Context(RunData(_dataset(paths, labels, splits, keep), feature_run=run))


def _run(ctx, **params) -> dict[str, object]:
    """{issue: finding} over the balance checks (params go to the checks that accept them)."""
    out = {}
    for cls in BALANCE_CHECKS:
        check = cls(**{k: v for k, v in params.items() if k in cls.defaults})
        for f in run_check(check, ctx):
            assert f.issue not in out
            out[f.issue] = f
    return out


def _random_split(seed: int, n: int = N) -> np.ndarray:
    draw = np.random.default_rng(seed).random(n)
    return np.where(draw < 0.7, "train", np.where(draw < 0.85, "val", "test"))


def _table(labels, splits, keep=None) -> pd.DataFrame:
    """classes x [train, val, test] counts, computed directly from the arrays."""
    keep = np.ones(len(labels), bool) if keep is None else keep
    return pd.DataFrame({s: np.bincount(labels[keep & (splits == s)], minlength=10)
                         for s in ("train", "val", "test")}, index=[str(c) for c in range(10)])


def test_random_split_control_flags_nothing_and_counts_are_exact(mnist):
    _, labels, _ = mnist
    splits = _random_split(0)
    ctx = _ctx(mnist, labels, splits)
    found = _run(ctx)
    assert set(found) == {"class_counts"}
    counts = found["class_counts"]
    assert counts.severity is Severity.INFO
    expected = _table(labels, splits)
    assert counts.evidence["counts"] == {s: {c: int(expected.loc[c, s]) for c in expected.index} for s in expected.columns}
    assert list(counts.evidence["counts"]) == ["train", "val", "test"]
    assert counts.evidence["totals"] == {s: int((splits == s).sum()) for s in ("train", "val", "test")}
    assert counts.evidence["unit"] == "images"
    issues = issues_frame(ctx)
    assert not issues["is_rare_classes"].any() and (issues["rare_classes_score"] == 1.0).all()
    assert not issues["is_missing_class_in_split"].any()
    assert "split_label_shift_score" not in issues  # a shift is about splits, not images


def test_class_dropped_from_test_is_a_warning_naming_class_and_images(mnist):
    _, labels, _ = mnist
    splits = _random_split(1)
    keep = ~((splits == "test") & (labels == 7))
    ctx = _ctx(mnist, labels, splits, keep)
    found = _run(ctx)
    f = found["missing_class_in_split"]
    assert f.severity is Severity.WARNING
    n_train, n_val = int(((splits == "train") & (labels == 7)).sum()), int(((splits == "val") & (labels == 7)).sum())
    assert f.evidence["missing"] == [{"class": "7", "missing_from": "test", "present_in": {"train": n_train, "val": n_val},
                                      "severity": "warning"}]
    expected_ids = {f"{splits[i]}/{i:05d}" for i in np.flatnonzero(keep & (labels == 7))}
    assert set(f.samples) == expected_ids and len(expected_ids) == n_train + n_val
    assert set(f.scores.values()) == {0.0}
    assert "rare_classes" not in found and "class_imbalance" not in found


def test_class_missing_from_train_is_an_error(mnist):
    _, labels, _ = mnist
    splits = _random_split(2)
    keep = ~((splits == "train") & (labels == 3))
    f = _run(_ctx(mnist, labels, splits, keep))["missing_class_in_split"]
    assert f.severity is Severity.ERROR
    assert [(m["class"], m["missing_from"], m["severity"]) for m in f.evidence["missing"]] == [("3", "train", "error")]
    assert set(f.samples) == {f"{splits[i]}/{i:05d}" for i in np.flatnonzero(keep & (labels == 3))}
    # A severity the user configured wins over the per-case one (a condition applied after the run).
    (judged,) = apply_conditions([f], {"balance.missing_class_in_split": {"severity": "info"}})
    assert judged.severity is Severity.INFO and judged.check_severity is Severity.ERROR and f.severity is Severity.ERROR


def test_class_subsampled_to_one_percent_is_rare_and_imbalanced(mnist):
    _, labels, _ = mnist
    splits = _random_split(3)
    fives = np.flatnonzero(labels == 5)
    kept_fives = fives[: int(np.ceil(0.01 * len(fives)))]
    keep = labels != 5
    keep[kept_fives] = True
    ctx = _ctx(mnist, labels, splits, keep)
    found = _run(ctx)

    totals = np.bincount(labels[keep], minlength=10)
    assert totals[5] == len(kept_fives) == 3
    imb = found["class_imbalance"]
    assert imb.evidence["smallest"] == {"class": "5", "count": 3}
    assert imb.evidence["largest"] == {"class": str(int(totals.argmax())), "count": int(totals.max())}
    assert imb.evidence["ratio"] == pytest.approx(totals.max() / 3)
    assert imb.evidence["minority_classes"] == ["5"]
    assert imb.samples == []

    rare = found["rare_classes"]
    assert rare.evidence["rare_classes"] == ["5"]
    threshold = max(5.0, 0.1 * float(np.median(totals)))
    overall = [r for r in rare.evidence["rare"] if r["scope"] == "overall"]
    assert overall == [{"class": "5", "scope": "overall", "count": 3, "threshold": round(threshold, 4)}]
    ids = {f"{splits[i]}/{i:05d}" for i in kept_fives}
    assert set(rare.samples) == ids
    # Score: count / threshold in the rarest scope containing the image (overall, or its own split).
    for i in kept_fives:
        in_split = int((splits[kept_fives] == splits[i]).sum())
        split_counts = np.bincount(labels[keep & (splits == splits[i])], minlength=10)
        split_threshold = max(5.0, 0.1 * float(np.median(split_counts[split_counts > 0])))
        assert rare.scores[f"{splits[i]}/{i:05d}"] == pytest.approx(min(3 / threshold, in_split / split_threshold))
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_rare_classes"]]) == ids
    assert (issues.loc[~issues["is_rare_classes"], "rare_classes_score"] == 1.0).all()
    assert "split_label_shift" not in found  # 3 images move no label mass


def test_rare_only_within_a_split_flags_only_that_splits_images(mnist):
    _, labels, _ = mnist
    splits = _random_split(4)
    test_twos = np.flatnonzero((splits == "test") & (labels == 2))
    keep = np.ones(N, bool)
    keep[test_twos[2:]] = False
    rare = _run(_ctx(mnist, labels, splits, keep))["rare_classes"]
    assert [(r["class"], r["scope"], r["count"]) for r in rare.evidence["rare"]] == [("2", "test", 2)]
    assert set(rare.samples) == {f"test/{i:05d}" for i in test_twos[:2]}


def test_label_shift_p_value_and_tvd_match_scipy(mnist):
    _, labels, _ = mnist
    splits = _random_split(5)
    # The test split keeps only 30% of digits 5-9: its label mix leans to 0-4.
    drop = (splits == "test") & (labels >= 5) & (np.random.default_rng(0).random(N) > 0.3)
    keep = ~drop
    f = _run(_ctx(mnist, labels, splits, keep))["split_label_shift"]
    table = _table(labels, splits, keep)
    ref = chi2_contingency(table.to_numpy().T)
    assert f.evidence["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert f.evidence["chi2"] == pytest.approx(ref.statistic, rel=1e-9)
    assert f.evidence["dof"] == 18
    pairs = {tuple(p["splits"]): p for p in f.evidence["pairs"]}
    assert list(pairs) == [("train", "val"), ("train", "test"), ("val", "test")]
    for (a, b), p in pairs.items():
        tvd = 0.5 * np.abs(table[a] / table[a].sum() - table[b] / table[b].sum()).sum()
        assert p["tvd"] == pytest.approx(tvd, abs=1e-6)
        assert p["p_value"] == pytest.approx(chi2_contingency(table[[a, b]].to_numpy().T).pvalue, rel=1e-9)
    assert not pairs[("train", "val")]["shifted"]
    assert pairs[("train", "test")]["shifted"] and pairs[("val", "test")]["shifted"]
    assert pairs[("train", "test")]["tvd"] > 0.2
    assert f.evidence["distributions"]["test"]["0"] == pytest.approx(table.loc["0", "test"] / table["test"].sum(), abs=1e-6)


def test_significant_but_small_shift_is_not_flagged_on_default_effect_size(mnist):
    _, labels, _ = mnist
    splits = np.where(np.random.default_rng(6).random(N) < 0.5, "train", "test")
    ones = np.flatnonzero((splits == "test") & (labels == 1))
    keep = np.ones(N, bool)
    keep[ones[: len(ones) // 2]] = False  # half of the test 1s remain
    table = _table(labels, splits, keep)[["train", "test"]]
    assert chi2_contingency(table.to_numpy().T).pvalue < 0.001
    assert total_variation(table["train"].to_numpy(), table["test"].to_numpy()) < 0.1
    ctx = _ctx(mnist, labels, splits, keep)
    assert run_check(SplitLabelShift(), ctx) == []
    found = run_check(SplitLabelShift(min_tvd=0.05), ctx)
    assert [f.issue for f in found] == ["split_label_shift"]


def test_false_positive_rate_on_random_splits(mnist):
    """50 seeded random 70/15/15 splits: none flagged with the defaults; with the effect-size gate off
    and alpha = 0.05, at most 6 of 50 (Binomial(50, 0.05) exceeds 6 with probability 1.2%)."""
    _, labels, _ = mnist
    default_flags = loose_flags = 0
    for seed in range(100, 150):
        ctx = _ctx(mnist, labels, _random_split(seed))
        default_flags += len(run_check(SplitLabelShift(), ctx))
        loose_flags += len(run_check(SplitLabelShift(alpha=0.05, min_tvd=0.0), ctx))
    assert default_flags == 0
    assert loose_flags <= 6


def test_unlabelled_dataset_gets_no_balance_findings(mnist):
    ctx = _ctx(mnist, None, _random_split(7))
    assert _run(ctx) == {}


def test_dataset_without_splits_counts_under_all_and_skips_split_checks(mnist):
    _, labels, _ = mnist
    keep = labels != 4
    keep[np.flatnonzero(labels == 4)[:2]] = True
    found = _run(_ctx(mnist, labels, [None] * N, keep))
    assert set(found) == {"class_counts", "class_imbalance", "rare_classes"}
    assert list(found["class_counts"].evidence["counts"]) == ["all"]
    assert found["class_counts"].evidence["counts"]["all"]["4"] == 2
    assert set(found["rare_classes"].samples) == {f"none/{i:05d}" for i in np.flatnonzero(labels == 4)[:2]}


def _coco_detection() -> tuple[Dataset, dict[str, Counter]]:
    root = SHARED / "coco128" / "object_detection"
    if not (root / "labels").is_dir():
        pytest.skip(f"COCO128 labels not found under {root}")
    names = yaml.safe_load((root / "config.yaml").read_text())["names"]
    samples, objects, expected = [], [], {}
    for folder, split in (("train2017", "train"), ("val2017", "val")):
        expected[split] = Counter()
        for lab in sorted((root / "labels" / folder).glob("*.txt")):
            sid = f"{split}/{lab.stem}"
            samples.append({"sample_id": sid, "path": str(SHARED / "coco128" / "images" / folder / f"{lab.stem}.jpg"),
                            "split": split})
            for line in lab.read_text().splitlines():
                if line.strip():
                    name = names[int(line.split()[0])]
                    objects.append({"sample_id": sid, "label": name})
                    expected[split][name] += 1
    ds = Dataset(samples=make_samples(samples), source=str(root), format="test", objects=pd.DataFrame(objects))
    return ds, expected


def test_detection_dataset_counts_objects_per_split(tmp_path):
    ds, expected = _coco_detection()
    ctx = Context(ds, feature_options={"cache_dir": tmp_path / "cache", "workers": 2})
    found = _run(ctx)
    counts = found["class_counts"].evidence
    assert counts["unit"] == "objects"
    assert counts["totals"] == {"train": 941, "val": 898}
    assert counts["counts"]["train"]["person"] == 261 and counts["counts"]["val"]["person"] == 350
    for split in ("train", "val"):
        assert {c: n for c, n in counts["counts"][split].items() if n} == dict(expected[split])

    missing = found["missing_class_in_split"]
    assert missing.severity is Severity.ERROR
    gaps = {(m["class"], m["missing_from"]) for m in missing.evidence["missing"]}
    assert gaps == {(c, "train") for c in ("apple", "fire hydrant", "keyboard", "sheep", "surfboard")} | \
                   {(c, "val") for c in ("giraffe", "snowboard", "toothbrush")}
    gap_classes = {c for c, _ in gaps}
    with_gap = set(ds.objects.loc[ds.objects["label"].isin(gap_classes), "sample_id"])
    assert set(missing.samples) == with_gap

    # Rare: images holding an object of a class that is rare overall or in the image's split.
    rare = found["rare_classes"]
    total = expected["train"] + expected["val"]
    rare_all = {c for c, n in total.items() if n < max(5, 0.1 * np.median(list(total.values())))}
    rare_in = {s: {c for c, n in expected[s].items() if n < max(5, 0.1 * np.median(list(expected[s].values())))}
               for s in expected}
    assert set(rare.evidence["rare_classes"]) == rare_all | rare_in["train"] | rare_in["val"]
    split_of = ds.samples.set_index("sample_id")["split"]
    hit = {o.sample_id for o in ds.objects.itertuples() if o.label in rare_all or o.label in rare_in[split_of[o.sample_id]]}
    assert set(rare.samples) == hit and 0 < len(hit) < len(ds)
    assert "rare_classes_score" in issues_frame(ctx) and issues_frame(ctx).loc[sorted(hit), "is_rare_classes"].all()


def test_unlabelled_split_is_not_a_split_missing_classes(mnist):
    _, labels, _ = mnist
    splits = _random_split(8)
    ctx = _ctx(mnist, labels, splits)
    ctx.dataset.samples.loc[ctx.dataset.samples["split"] == "test", "label"] = None
    found = _run(ctx)
    assert list(found["class_counts"].evidence["counts"]) == ["train", "val"]
    assert "missing_class_in_split" not in found and "split_label_shift" not in found
