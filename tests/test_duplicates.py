"""Exact and near duplicates on real photos (COCO128) and digits (MNIST), with injected copies."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import coco_images, issues_frame, mnist_arrays, run_check
from PIL import Image, ImageEnhance

from visionaudit.analyses.duplicate_index import duplicate_index
from visionaudit.checks.duplicates import (
    ConflictingDuplicateLabels,
    ExactDuplicates,
    NearDuplicates,
)
from visionaudit.context import Context
from visionaudit.dataset import read_folder


def make_variant(src: Path, kind: str, dest: Path) -> Path:
    """Write an edited copy of ``src``: copy, png, q100/q70 (JPEG quality), r50/r75 (resize),
    c3/c5/c7/c10 (crop that share of each side), left10 (crop 10% off the left), b13/b07/b095 (brightness)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if kind == "copy":
        shutil.copyfile(src, dest)
        return dest
    im = Image.open(src).convert("RGB")
    w, h = im.size
    if kind == "png":
        im.save(dest, "PNG")
        return dest
    if kind.startswith("q"):
        im.save(dest, "JPEG", quality=int(kind[1:]))
        return dest
    if kind.startswith("r"):
        scale = int(kind[1:]) / 100
        im = im.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    elif kind.startswith("c"):
        f = int(kind[1:]) / 100
        im = im.crop((round(w * f), round(h * f), w - round(w * f), h - round(h * f)))
    elif kind == "left10":
        im = im.crop((round(w * 0.1), 0, w, h))
    elif kind.startswith("b"):
        im = ImageEnhance.Brightness(im).enhance({"b13": 1.3, "b07": 0.7, "b095": 0.95}[kind])
    else:
        raise ValueError(kind)
    im.save(dest, "JPEG", quality=90)
    return dest


def run_checks(root: Path, cache_dir: Path, *checks):
    ctx = Context(read_folder(root), feature_options={"cache_dir": cache_dir, "workers": 2})
    return ctx, [f for c in checks for f in run_check(c, ctx)]


def group_sets(finding) -> set[frozenset[str]]:
    return {frozenset(g["samples"]) for g in finding.groups}


@pytest.fixture(scope="module")
def injected(tmp_path_factory) -> Path:
    """30 COCO128 photos plus edited copies of five of them (A..E)."""
    root = tmp_path_factory.mktemp("dups")
    photos = coco_images("train2017")[:30]
    for f in photos:
        shutil.copyfile(f, root / f.name)
    a, b, c, d, e = photos[:5]
    for src, kinds in [(a, ["copy", "png", "q100", "q70", "r50"]), (b, ["r50", "r75"]), (c, ["c3", "c5", "c7", "c10"]),
                       (d, ["b13", "b07", "b095"]), (e, ["left10"])]:
        for kind in kinds:
            make_variant(src, kind, root / f"{src.stem}_{kind}.{'png' if kind == 'png' else 'jpg'}")
    return root


def test_exact_and_near_groups_on_injected_copies(injected, tmp_path):
    photos = [f.name for f in coco_images("train2017")[:5]]
    a, b, c, d, e = (p[:-4] for p in photos)
    ctx, findings = run_checks(injected, tmp_path / "cache", ExactDuplicates(), NearDuplicates())
    by_issue = {f.issue: f for f in findings}

    exact = by_issue["exact_duplicates"]
    # Byte copy, PNG re-save and a q100 re-encode hold the same pixels; the q70 re-encode of the q96
    # original lost detail (qualities 26 apart, more than max_quality_gap): near, not exact.
    expected_exact = frozenset({f"{a}.jpg", f"{a}_copy.jpg", f"{a}_png.png", f"{a}_q100.jpg"})
    assert group_sets(exact) == {expected_exact}
    assert exact.groups[0]["samples"][0] == f"{a}_png.png"          # the largest file stands for the group
    assert exact.groups[0]["kind"] == "exact" and exact.severity.value == "warning"
    assert set(exact.samples) == expected_exact

    near = by_issue["near_duplicates"]
    # Resized, re-encoded at q70, cropped (centre and one side) and brightened copies; the exact group
    # joins through its representative only, and a 5% darker same-size copy is near, not exact (mean shift > 1).
    assert group_sets(near) == {
        frozenset({f"{a}_png.png", f"{a}_r50.jpg", f"{a}_q70.jpg"}),
        frozenset({f"{b}.jpg", f"{b}_r50.jpg", f"{b}_r75.jpg"}),
        frozenset({f"{c}.jpg", f"{c}_c3.jpg", f"{c}_c5.jpg", f"{c}_c7.jpg", f"{c}_c10.jpg"}),
        frozenset({f"{d}.jpg", f"{d}_b13.jpg", f"{d}_b07.jpg", f"{d}_b095.jpg"}),
        frozenset({f"{e}.jpg", f"{e}_left10.jpg"}),
    }
    for g in near.groups:
        assert g["kind"] == "near" and 0.9 <= g["similarity"] <= 1.0
        assert g["samples"][0] in {f"{a}_png.png", f"{b}.jpg", f"{c}.jpg", f"{d}.jpg", f"{e}.jpg"}  # full size first
    issues = issues_frame(ctx)
    assert set(issues.index[issues["is_near_duplicates"]]) == set(near.samples)
    assert set(issues.index[issues["is_exact_duplicates"]]) == expected_exact
    assert issues.loc[f"{b}_r50.jpg", "near_duplicates_score"] <= 0.1
    assert issues.loc[coco_images("train2017")[20].name, "near_duplicates_score"] > 0.4


def test_no_false_positives_on_clean_coco128(tmp_path):
    """The 256 COCO128 photos (train2017 + val2017) hold no duplicates: 0 exact, 0 near, and no
    pair comes closer than 0.65 structural similarity (near duplicates need 0.90)."""
    root = _mk(tmp_path / "coco")
    for f in coco_images("train2017") + coco_images("val2017"):
        shutil.copyfile(f, root / f"{f.parent.name}_{f.name}")
    ctx, findings = run_checks(root, tmp_path / "cache", ExactDuplicates(), NearDuplicates(),
                               ConflictingDuplicateLabels())
    assert findings == []
    index = duplicate_index(ctx)
    assert len(index.exact_pairs) == 0 and len(index.near_pairs) == 0
    assert 0.5 < float(index.best_similarity.max()) < 0.7      # measured 0.64-0.65
    assert index.candidates < 256 * 255 // 2 // 2          # candidate generation is far from all pairs


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_false_positive_rate_on_2000_distinct_mnist_digits(tmp_path):
    """2,000 distinct MNIST test digits as PNGs in class folders. No exact duplicates; 55 images
    (2.75%) fall in near-duplicate groups, every one a '1': strokes drawn alike at the same slant,
    which differ in only a few pixels at 28x28 (the top pair correlates 0.98 at full resolution).
    No near pair joins two different digits, so conflicting-label findings stay clean. Without
    the contrast rule (contrast=1) 272 images would be flagged."""
    images, labels = mnist_arrays(2000)
    for i, (im, label) in enumerate(zip(images, labels)):
        Image.fromarray(im).save(_mk(tmp_path / "mnist" / str(label)) / f"{i:05d}.png")
    ctx, findings = run_checks(tmp_path / "mnist", tmp_path / "cache", ExactDuplicates(), NearDuplicates(),
                               ConflictingDuplicateLabels())
    by_issue = {f.issue: f for f in findings}
    assert set(by_issue) == {"near_duplicates"}
    flagged = by_issue["near_duplicates"].samples
    assert len(flagged) == 55
    assert {s.split("/")[0] for s in flagged} == {"1"}
    (floor_only,) = run_check(NearDuplicates(contrast=1.0), ctx)
    assert len(floor_only.samples) == 272


def test_mnist_copies_are_found_among_look_alikes(tmp_path):
    """Real duplicates in a dense collection: a byte copy and a 2x enlarged copy of two digits
    among 500 MNIST digits are found; nothing else is flagged except look-alike '1's."""
    images, labels = mnist_arrays(500)
    root = tmp_path / "mnist"
    for i, (im, label) in enumerate(zip(images, labels)):
        Image.fromarray(im).save(_mk(root / str(label)) / f"{i:05d}.png")
    zero, four = int(np.flatnonzero(labels == 0)[0]), int(np.flatnonzero(labels == 4)[0])
    shutil.copyfile(root / "0" / f"{zero:05d}.png", root / "0" / "copy.png")
    Image.fromarray(images[four]).resize((56, 56), Image.Resampling.BICUBIC).save(root / "4" / "big.png")
    ctx, findings = run_checks(root, tmp_path / "cache", ExactDuplicates(), NearDuplicates())
    by_issue = {f.issue: f for f in findings}
    assert group_sets(by_issue["exact_duplicates"]) == {frozenset({f"0/{zero:05d}.png", "0/copy.png"})}
    near = group_sets(by_issue["near_duplicates"])
    assert frozenset({f"4/{four:05d}.png", "4/big.png"}) in near
    assert {s.split("/")[0] for g in near for s in g} <= {"1", "4"}


def test_conflicting_labels(injected, tmp_path):
    """Copies filed under different classes: an exact and a near conflict are errors; copies with
    the same label are not."""
    photos = coco_images("train2017")[:12]
    root = tmp_path / "labelled"
    for i, f in enumerate(photos):
        shutil.copyfile(f, _mk(root / ("cat" if i % 2 else "dog")) / f.name)
    a, b, c = photos[1], photos[3], photos[5]                    # all filed under cat
    make_variant(a, "copy", root / "dog" / "a_copy.jpg")
    make_variant(b, "r50", root / "dog" / "b_small.jpg")
    make_variant(c, "c10", root / "cat" / "c_crop.jpg")
    ctx, findings = run_checks(root, tmp_path / "cache", ConflictingDuplicateLabels())
    (finding,) = findings
    assert finding.severity.value == "error"
    assert group_sets(finding) == {frozenset({f"cat/{a.name}", "dog/a_copy.jpg"}),
                                   frozenset({f"cat/{b.name}", "dog/b_small.jpg"})}
    kinds = {frozenset(g["samples"]): (g["kind"], sorted(g["labels"])) for g in finding.groups}
    assert kinds[frozenset({f"cat/{a.name}", "dog/a_copy.jpg"})] == ("exact", ["cat", "dog"])
    assert kinds[frozenset({f"cat/{b.name}", "dog/b_small.jpg"})] == ("near", ["cat", "dog"])
    assert f"cat/{c.name}" not in finding.samples


def test_thresholds_are_settings(injected, tmp_path):
    """Raising `similarity` to 0.999 keeps only the closest near copies; the setting is recorded."""
    ctx, findings = run_checks(injected, tmp_path / "cache", NearDuplicates(similarity=0.999))
    assert all(g["similarity"] >= 0.999 for f in findings for g in f.groups)
    assert all(f.thresholds["similarity"] == 0.999 for f in findings)
    with pytest.raises(ValueError, match="similarity_threshold"):
        NearDuplicates(similarity_threshold=0.5)


def test_tiny_and_broken_collections(tmp_path):
    """One decodable image among broken files: nothing to pair, no finding, no crash."""
    root = _mk(tmp_path / "few")
    shutil.copyfile(coco_images("val2017")[0], root / "only.jpg")
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("not an image")
    ctx, findings = run_checks(root, tmp_path / "cache", ExactDuplicates(), NearDuplicates(),
                               ConflictingDuplicateLabels())
    assert findings == []
    index = duplicate_index(ctx)
    assert list(index.ids) == ["only.jpg"] and index.candidates == 0
    assert issues_frame(ctx).loc["only.jpg", "near_duplicates_score"] == 1.0
