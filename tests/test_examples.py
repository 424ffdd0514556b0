"""The generated example dataset: its files, its determinism, and that the scan finds what it plants."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visionaudit
from visionaudit.errors import ArgumentError
from visionaudit.examples import LAYOUT, make_example_dataset
from visionaudit.suites import SUITES

#: A scan runs these; evaluate-only checks (labels, metrics, baselines...) need predictions.
SCAN_CHECKS = SUITES["scan"]

PLANTED = ["exact_duplicate", "near_duplicate", "near_split_copy", "cross_split_copy", "blurry", "dark", "overexposed",
           "truncated", "zero_byte", "wrong_extension", "exif_orientation", "odd_size", "odd_aspect_ratio", "noisy",
           "low_contrast", "low_information", "jpeg_artifacts", "grayscale_as_rgb", "conflicting_labels",
           "rare_class", "class_imbalance", "class_missing_from_split", "split_label_shift"]
#: One extra file per planted file problem (the duplicate, the resized copy, the cross-split copy, ...).
EXTRA_FILES = 19

# What each registered check must report on the example (seed 0). A check registered without an entry
# here fails test_every_registered_check_finds_its_planted_problem: the demo must show every check.
# Each entry: (issue, planted problems, how): "exact" = flags exactly the files of those problems,
# "within" = flags all of them and no clean image, "clean" = may flag planted files, never a clean
# image, "present" = the finding exists, "absent" = no such finding.
EXPECTED: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "integrity.decode_errors": [("zero_byte", ("zero_byte",), "exact"), ("truncated", ("truncated",), "exact"),
                                *((kind, (), "absent") for kind in ("not_image", "unreadable", "missing", "too_large"))],
    "integrity.duplicate_paths": [("duplicate_manifest_path", (), "absent")],
    "integrity.wrong_extension": [("wrong_extension", ("wrong_extension",), "exact")],
    "integrity.exif_rotation": [("exif_rotation", ("exif_orientation",), "exact")],
    "integrity.image_modes": [(issue, (), "absent") for issue in
                              ("cmyk_images", "high_bit_depth", "palette_images", "alpha_channel", "mixed_channels")],
    **{f"quality.{issue}": [(issue, (issue,), "within")] for issue in
       ("blurry", "dark", "overexposed", "low_contrast", "low_information", "noisy", "jpeg_artifacts",
        "grayscale_as_rgb", "odd_size", "odd_aspect_ratio")},
    "duplicates.exact": [("exact_duplicates", ("exact_duplicate", "cross_split_copy", "conflicting_labels"), "exact")],
    "duplicates.near": [("near_duplicates", ("near_duplicate", "near_split_copy"), "within")],
    "duplicates.conflicting_labels": [("conflicting_duplicate_labels", ("conflicting_labels",), "exact")],
    "leakage.exact": [("exact_split_leakage", ("cross_split_copy",), "exact")],
    "leakage.near": [("near_split_leakage", ("near_split_copy",), "within")],
    "leakage.group": [("group_leakage", (), "absent")],
    "balance.outliers": [("outliers", (), "clean")],
    "balance.class_counts": [("class_counts", (), "present")],
    "balance.class_imbalance": [("class_imbalance", (), "present")],
    "balance.rare_classes": [("rare_classes", ("rare_class",), "exact")],
    "balance.missing_class_in_split": [("missing_class_in_split", ("rare_class",), "exact")],
    "balance.split_label_shift": [("split_label_shift", (), "present")],
}


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("example") / "data"
    return root, make_example_dataset(root, seed=0)


@pytest.fixture(scope="module")
def scanned(example, tmp_path_factory):
    root, _ = example
    return visionaudit.scan(root, cache_dir=tmp_path_factory.mktemp("cache"), workers=2)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_tree_layout_and_counts(example):
    root, info = example
    files = _files(root)
    assert info["planted"] == PLANTED
    assert info["images"] == len(files) == sum(sum(c.values()) for c in LAYOUT.values()) + EXTRA_FILES == 218
    assert all(name.endswith(".jpg") for name in files)
    per_folder = Counter(name.rsplit("/", 1)[0] for name in files)
    assert per_folder == Counter({
        "train/beach": 44, "train/city": 46, "train/forest": 44, "train/meadow": 3,
        "val/beach": 12, "val/city": 12, "val/forest": 10, "val/meadow": 1,
        "test/beach": 33, "test/city": 8, "test/forest": 5,
    })
    planted_ids = {i for ids in info["planted_files"].values() for i in ids}
    assert planted_ids <= set(files)


def test_planted_files_are_what_they_claim(example):
    root, info = example
    pf = info["planted_files"]
    data = _files(root)

    def image(sid: str) -> Image.Image:
        return Image.open(root / sid)

    assert data[pf["zero_byte"][0]] == b""
    cut = data[pf["truncated"][0]]
    assert cut[:2] == b"\xff\xd8" and b"\xff\xd9" not in cut[-2:]
    with pytest.raises(OSError):
        image(pf["truncated"][0]).load()
    assert data[pf["wrong_extension"][0]][:8] == b"\x89PNG\r\n\x1a\n" and image(pf["wrong_extension"][0]).format == "PNG"
    assert image(pf["exif_orientation"][0]).getexif()[0x0112] == 6
    assert image(pf["odd_size"][0]).size == (36, 24)

    a, b = pf["exact_duplicate"]
    assert a != b and data[a] == data[b] and a.split("/")[:2] == b.split("/")[:2]
    a, b = pf["cross_split_copy"]
    assert data[a] == data[b] and a.startswith("train/") and b.startswith("test/")
    a, b = pf["conflicting_labels"]
    assert data[a] == data[b] and a.split("/")[1] != b.split("/")[1]
    for (a, b), scale, split in ((pf["near_duplicate"], 2 / 3, "train/"), (pf["near_split_copy"], 4 / 5, "val/")):
        big, small = image(a).convert("L"), image(b).convert("L")
        assert small.size == (int(big.width * scale), int(big.height * scale)) and data[a] != data[b]
        assert a.startswith("train/") and b.startswith(split)
        x = np.asarray(big.resize(small.size), dtype=float).ravel()
        assert np.corrcoef(x, np.asarray(small, dtype=float).ravel())[0, 1] > 0.98
    assert image(pf["odd_aspect_ratio"][0]).size == (320, 72)
    assert image(pf["jpeg_artifacts"][0]).quantization[0][0] > 4 * image(pf["exact_duplicate"][0]).quantization[0][0]
    rgb = np.asarray(image(pf["grayscale_as_rgb"][0]), dtype=int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2 and np.abs(rgb[..., 2] - rgb[..., 1]).max() <= 2

    clean = [sid for sid in data if sid not in {i for ids in pf.values() for i in ids}]
    sample = clean[::10]
    looked_at = sample + [pf[p][0] for p in ("dark", "overexposed", "blurry", "low_contrast", "low_information", "noisy")]
    gray = {sid: np.asarray(image(sid).convert("L"), dtype=float) for sid in looked_at}
    assert gray[pf["dark"][0]].mean() < min(20.0, 0.25 * min(gray[s].mean() for s in sample))
    assert (gray[pf["overexposed"][0]] >= 250).mean() > 0.5
    lap = {s: np.var(g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]) for s, g in gray.items()}
    assert lap[pf["blurry"][0]] * 5 < min(lap[s] for s in sample)
    assert lap[pf["noisy"][0]] > 5 * max(lap[s] for s in sample)
    assert gray[pf["low_contrast"][0]].std() < 0.25 * min(gray[s].std() for s in sample)
    assert gray[pf["low_information"][0]].std() < 2.0
    for sid in clean:
        w, h = image(sid).size
        assert 200 <= w <= 320 and 200 <= h <= 320


def test_same_seed_same_bytes_other_seed_other_images(tmp_path, example):
    root, info = example
    again = make_example_dataset(tmp_path / "again", seed=0)
    assert again == info
    first = _files(root)
    assert _files(tmp_path / "again") == first
    make_example_dataset(tmp_path / "other", seed=1)
    other = _files(tmp_path / "other")
    shared = set(first) & set(other)
    assert len(shared) > 150 and sum(first[k] == other[k] for k in shared) <= 1  # only the empty file may match


def test_refuses_a_non_empty_target_and_leaves_it_alone(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    with pytest.raises(ArgumentError, match="target"):
        make_example_dataset(target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"] and (target / "keep.txt").read_text() == "user data"
    a_file = tmp_path / "file.jpg"
    a_file.write_bytes(b"x")
    with pytest.raises(ArgumentError, match="target"):
        make_example_dataset(a_file)


def test_scan_finds_planted_integrity_and_balance_problems(example, scanned):
    _, info = example
    pf = info["planted_files"]
    assert scanned.flagged("zero_byte") == set(pf["zero_byte"])
    assert scanned.flagged("truncated") == set(pf["truncated"])
    assert scanned.flagged("rare_classes") == set(pf["rare_class"])
    missing = scanned.finding("missing_class_in_split")
    assert [(m["class"], m["missing_from"], m["severity"]) for m in missing.evidence["missing"]] == [("meadow", "test", "warning")]
    imbalance = scanned.finding("class_imbalance")
    assert imbalance.evidence["smallest"] == {"class": "meadow", "count": 4}
    assert imbalance.evidence["largest"] == {"class": "beach", "count": 89}
    shift = scanned.finding("split_label_shift")
    shifted = [p["splits"] for p in shift.evidence["pairs"] if p["shifted"]]
    assert ["train", "test"] in shifted
    counts = scanned.finding("class_counts").evidence["counts"]
    assert counts["test"] == {"beach": 33, "city": 8, "forest": 5, "meadow": 0}


def test_every_registered_check_finds_its_planted_problem(example, scanned):
    _, info = example
    pf = info["planted_files"]
    planted_any = {i for ids in pf.values() for i in ids}
    unknown = sorted(set(SCAN_CHECKS) - set(EXPECTED))
    assert not unknown, f"add what the example dataset must show for {unknown} to EXPECTED (and plant it if needed)"
    failed = [f for f in scanned.findings if f.issue == "check_failed"]
    assert not failed, [(f.check, f.message) for f in failed]
    for check_id in SCAN_CHECKS:
        for issue, problems, how in EXPECTED[check_id]:
            finding = scanned.finding(issue)
            if how == "absent":
                assert finding is None, f"{check_id}: unexpected {issue}: {finding.samples}"
                continue
            if how == "clean":
                assert finding is None or set(finding.samples) <= planted_any, (
                    f"{check_id}/{issue}: clean images flagged {sorted(set(finding.samples) - planted_any)}")
                continue
            assert finding is not None and finding.check == check_id, f"{check_id} did not report {issue}"
            flagged, planted = set(finding.samples), {i for p in problems for i in pf[p]}
            if how == "exact":
                assert flagged == planted, f"{check_id}/{issue}: flagged {sorted(flagged)}, planted {sorted(planted)}"
            elif how == "within":
                assert planted <= flagged <= planted_any, (
                    f"{check_id}/{issue}: missed {sorted(planted - flagged)}, clean images flagged {sorted(flagged - planted_any)}")


def test_cli_example_data_fills_an_empty_folder_and_refuses_a_full_one(tmp_path):
    from typer.testing import CliRunner

    from visionaudit.cli import app

    runner = CliRunner()
    (tmp_path / "data").mkdir()
    res = runner.invoke(app, ["example-data", str(tmp_path / "data"), "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "wrote 218 images" in res.output and "zero_byte" in res.output
    res = runner.invoke(app, ["example-data", str(tmp_path / "data")])
    assert res.exit_code == 2 and "target" in res.output
