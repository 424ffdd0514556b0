"""integrity.duplicate_paths, and a manifest scanned end to end: rows whose file is missing are the
`missing` finding, rows repeating a file are `duplicate_manifest_path`, both with exact ids."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
from conftest import coco_images, issues_frame, run_check
from test_dataset_readers import make_photo_dir

import visionaudit
from visionaudit.checks.manifest import DuplicatePaths
from visionaudit.context import Context
from visionaudit.dataset import load_dataset


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_scan_reports_missing_rows_and_repeated_paths_with_exact_ids(tmp_path: Path):
    root = make_photo_dir(tmp_path / "data")
    (root / "manifest.csv").write_text(
        "path,label,split\n"
        "a.jpg,cat,train\n"                       # line 2
        "sub dir/ñandú 1.jpg,dog,train\n"         # line 3
        "gone.jpg,cat,train\n"                    # line 4
        "./a.jpg,dog,val\n"                       # line 5: same file as line 2, other label and split
        "missing dir/x y.jpg,cat,val\n"           # line 6
        "c.jpg,dog,val\n"                         # line 7
        "c.jpg,dog,val\n",                        # line 8: exact repeat
        encoding="utf-8")
    before = _snapshot(root)
    result = visionaudit.scan(root / "manifest.csv", cache_dir=tmp_path / "cache", workers=1)

    assert result.flagged("missing") == {"gone.jpg", "missing dir/x y.jpg"}
    missing = result.finding("missing")
    assert missing.severity.value == "error" and missing.evidence["errors"] == {
        "gone.jpg": "file not found", "missing dir/x y.jpg": "file not found"}
    # The unicode, space-containing path decodes like any other file.
    assert pd.isna(result.features.loc["sub dir/ñandú 1.jpg", "error_kind"])
    assert result.features.loc["sub dir/ñandú 1.jpg", "width"] > 0

    dup = result.finding("duplicate_manifest_path")
    assert dup.check == "integrity.duplicate_paths" and dup.severity.value == "warning"
    assert dup.samples == ["a.jpg", "./a.jpg", "c.jpg", "c.jpg@line 8"]
    assert dup.groups == [
        {"samples": ["a.jpg", "./a.jpg"], "path": str(root / "a.jpg"), "labels": ["cat", "dog"], "splits": ["train", "val"]},
        {"samples": ["c.jpg", "c.jpg@line 8"], "path": str(root / "c.jpg"), "labels": ["dog", "dog"], "splits": ["val", "val"]},
    ]
    assert dup.evidence == {"rows": 4, "files": 2, "conflicting_labels": 1, "conflicting_splits": 1}
    assert dup.message == "4 rows list 2 file(s) more than once (1 with different labels; 1 in more than one split)."
    flags = result.issues["is_duplicate_manifest_path"]
    assert set(flags[flags].index) == {"a.jpg", "./a.jpg", "c.jpg", "c.jpg@line 8"}
    assert result.issues.loc["sub dir/ñandú 1.jpg", "duplicate_manifest_path_score"] == 1.0
    assert result.issues.loc["c.jpg@line 8", "duplicate_manifest_path_score"] == 0.0
    assert result.features.loc["c.jpg@line 8", "source_line"] == 8
    assert result.exit_code("error") == 1
    json.dumps(result.to_dict())
    assert _snapshot(root) == before


def test_no_repeated_path_no_finding_and_every_row_scores_one(tmp_path: Path):
    root = make_photo_dir(tmp_path / "data")
    (root / "m.csv").write_text("path\na.jpg\nc.jpg\nsub dir/ñandú 1.jpg\n", encoding="utf-8")
    ctx = Context(load_dataset(root / "m.csv"), feature_options={"cache_dir": tmp_path / "cache", "workers": 1})
    assert run_check(DuplicatePaths(), ctx) == []
    frame = issues_frame(ctx)
    assert frame["duplicate_manifest_path_score"].tolist() == [1.0, 1.0, 1.0]
    assert not frame["is_duplicate_manifest_path"].any()


def test_coco_file_listed_under_two_image_ids_is_flagged(tmp_path: Path):
    images = tmp_path / "imgs"
    images.mkdir()
    for f in coco_images("val2017")[:2]:
        shutil.copyfile(f, images / f.name)
    names = sorted(p.name for p in images.iterdir())
    coco = {"images": [{"id": 1, "file_name": names[0]}, {"id": 2, "file_name": names[1]},
                       {"id": 3, "file_name": names[0]}],
            "annotations": [], "categories": []}
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    ctx = Context(load_dataset(tmp_path / "gt.json", images=images),
                  feature_options={"cache_dir": tmp_path / "cache", "workers": 1})
    [finding] = run_check(DuplicatePaths(), ctx)
    assert finding.samples == [names[0], f"{names[0]}@id 3"]
    assert finding.groups[0]["labels"] == [None, None]
