"""Split leakage: copies across train/val/test folders, and a group column spanning splits."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import coco_images, issues_frame, run_check
from test_duplicates import group_sets, make_variant

from visionaudit import scan
from visionaudit.analyses import duplicate_index
from visionaudit.checks.duplicates import ExactDuplicates, NearDuplicates
from visionaudit.checks.leakage import ExactSplitLeakage, GroupLeakage, NearSplitLeakage
from visionaudit.context import Context
from visionaudit.dataset import read_folder


@pytest.fixture(scope="module")
def split_tree(tmp_path_factory) -> tuple[Path, list[Path]]:
    """train/ val/ test/ folders of distinct COCO128 photos, plus copies placed across splits
    (p0 byte copy -> val, p1 0.75x -> val, p2 PNG -> test, p3 10% crop -> test) and one copy that
    stays inside train (p5 0.5x)."""
    root = tmp_path_factory.mktemp("splits")
    photos = coco_images("train2017")[:40]
    for split, chunk in (("train", photos[:20]), ("val", photos[20:30]), ("test", photos[30:40])):
        (root / split).mkdir()
        for f in chunk:
            shutil.copyfile(f, root / split / f.name)
    make_variant(photos[0], "copy", root / "val" / "p0_copy.jpg")
    make_variant(photos[1], "r75", root / "val" / "p1_small.jpg")
    make_variant(photos[2], "png", root / "test" / "p2_resaved.png")
    make_variant(photos[3], "c10", root / "test" / "p3_crop.jpg")
    make_variant(photos[5], "r50", root / "train" / "p5_small.jpg")
    return root, photos


def test_exact_and_near_leakage_across_split_folders(split_tree, tmp_path, monkeypatch):
    root, photos = split_tree
    builds = []
    real_build = duplicate_index._build_index
    monkeypatch.setattr(duplicate_index, "_build_index", lambda *a: builds.append(1) or real_build(*a))
    ctx = Context(read_folder(root), feature_options={"cache_dir": tmp_path / "cache", "workers": 2})
    findings = {f.issue: f for c in (ExactDuplicates(), NearDuplicates(), ExactSplitLeakage(), NearSplitLeakage())
                for f in run_check(c, ctx)}
    assert len(builds) == 1                       # the duplicate pairs are computed once and shared

    exact = findings["exact_split_leakage"]
    assert exact.severity.value == "error"
    assert group_sets(exact) == {frozenset({f"train/{photos[0].name}", "val/p0_copy.jpg"}),
                                 frozenset({f"train/{photos[2].name}", "test/p2_resaved.png"})}
    for g in exact.groups:
        assert dict(zip(g["samples"], g["splits"])) == {s: s.split("/")[0] for s in g["samples"]}
        assert g["kind"] == "exact"
    assert sorted(tuple(g["spans"]) for g in exact.groups) == [("train", "test"), ("train", "val")]
    assert exact.evidence["split_pairs"] == {"train/val": 1, "train/test": 1}

    near = findings["near_split_leakage"]
    assert near.severity.value == "warning"
    assert group_sets(near) == {frozenset({f"train/{photos[1].name}", "val/p1_small.jpg"}),
                                frozenset({f"train/{photos[3].name}", "test/p3_crop.jpg"})}
    assert all(g["kind"] == "near" and g["similarity"] >= 0.9 for g in near.groups)
    # The within-train copy is a near duplicate but not leakage.
    assert frozenset({f"train/{photos[5].name}", "train/p5_small.jpg"}) in group_sets(findings["near_duplicates"])
    assert "train/p5_small.jpg" not in near.samples
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_exact_split_leakage"]]) == set(exact.samples)
    assert issues.loc["val/p1_small.jpg", "near_split_leakage_score"] < 0.1
    assert issues.loc["train/p5_small.jpg", "near_split_leakage_score"] == 1.0


def test_group_column_spanning_splits_from_a_manifest(tmp_path):
    """A CSV manifest with a `patient` column: patients p1 and p3 appear in more than one split."""
    photos = coco_images("val2017")[:9]
    images = tmp_path / "images"
    images.mkdir()
    for f in photos:
        shutil.copyfile(f, images / f.name)
    rows = [("a", "p1", "train"), ("b", "p1", "test"), ("c", "p2", "train"), ("d", "p2", "train"),
            ("e", "p3", "val"), ("f", "p3", "test"), ("g", "p3", "train"), ("h", "p4", "val"), ("i", None, "test")]
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"id": [r[0] for r in rows], "path": [f"images/{f.name}" for f in photos],
                  "label": ["cat", "dog", "cat", "dog", "cat", "dog", "cat", "dog", "cat"],
                  "split": [r[2] for r in rows], "patient": [r[1] for r in rows]}).to_csv(manifest, index=False)
    result = scan(manifest, group_columns=["patient"], cache_dir=tmp_path / "cache", workers=2)
    finding = result.finding("group_leakage")
    assert finding is not None and finding.severity.value == "error"
    groups = {g["value"]: g for g in finding.groups}
    assert set(groups) == {"p1", "p3"}
    assert groups["p1"]["samples"] == ["a", "b"] and groups["p1"]["spans"] == ["train", "test"]
    assert groups["p3"]["samples"] == ["e", "f", "g"] and groups["p3"]["spans"] == ["train", "val", "test"]
    assert groups["p3"]["splits"] == ["val", "test", "train"] and groups["p3"]["column"] == "patient"
    assert set(finding.samples) == {"a", "b", "e", "f", "g"}
    assert finding.evidence["columns"] == {"patient": 2}
    assert result.issues.loc["c", "group_leakage_score"] == 1.0 and result.issues.loc["a", "group_leakage_score"] == 0.0
    assert result.exit_code("error") == 1


def test_no_group_columns_means_no_group_check(split_tree, tmp_path):
    root, _ = split_tree
    ctx = Context(read_folder(root), group_columns=[],
                  feature_options={"cache_dir": tmp_path / "cache", "workers": 2})
    assert run_check(GroupLeakage(), ctx) == []
    assert "group_leakage_score" not in issues_frame(ctx).columns


def test_one_file_listed_in_two_splits_is_exact_leakage(tmp_path):
    """A manifest listing one file under train and test leaks it, decodable or not."""
    photos = coco_images("val2017")[:3]
    for f in photos:
        shutil.copyfile(f, tmp_path / f.name)
    (tmp_path / "broken.jpg").write_bytes(photos[0].read_bytes()[:200])
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"id": ["x", "y", "z", "b1", "b2"],
                  "path": [photos[0].name, photos[0].name, photos[1].name, "broken.jpg", "broken.jpg"],
                  "split": ["train", "test", "train", "train", "val"]}).to_csv(manifest, index=False)
    result = scan(manifest, cache_dir=tmp_path / "cache", workers=2)
    finding = result.finding("exact_split_leakage")
    assert group_sets(finding) == {frozenset({"x", "y"}), frozenset({"b1", "b2"})}
    assert result.finding("exact_duplicates") is None     # one file twice is integrity.duplicate_paths' finding
