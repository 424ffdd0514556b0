"""The content-keyed feature cache: what a re-scan decodes, and that cached rows equal fresh ones."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import coco_images, copy_images

from visionaudit import features
from visionaudit.features import cache as cache_mod
from visionaudit.features import compute_features
from visionaudit.features.decode import measure_file


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    """40 COCO128 photos, copied so the tests may change them."""
    return copy_images(coco_images("train2017")[:40], tmp_path / "images")


@pytest.fixture
def photos200(tmp_path: Path) -> list[Path]:
    """The 200 first COCO128 photos (128 train + 72 val), copied."""
    return copy_images(coco_images("train2017") + coco_images("val2017")[:72], tmp_path / "images")


def _run(paths, cache_dir, **kw):
    return compute_features([str(p) for p in paths], cache_dir=cache_dir, workers=kw.pop("workers", 1), **kw)


def _fresh(paths) -> pd.DataFrame:
    return compute_features([str(p) for p in paths], use_cache=False, workers=1).table


def test_rescan_decodes_nothing_and_matches_a_fresh_run(photos, cache_dir):
    first = _run(photos, cache_dir, workers=2)
    assert (first.decoded, first.from_cache) == (40, 0)
    again = _run(photos, cache_dir)
    assert (again.decoded, again.from_cache) == (0, 40)
    pd.testing.assert_frame_equal(again.table, first.table)
    pd.testing.assert_frame_equal(again.table, _fresh(photos))
    assert again.table.index.tolist() == [str(p) for p in photos]


def test_adding_one_percent_decodes_exactly_the_new_images(photos200, cache_dir):
    _run(photos200, cache_dir, workers=2)
    added = copy_images(coco_images("val2017")[72:74], photos200[0].parent)   # 2 new photos = 1%
    run = _run(photos200 + added, cache_dir, workers=2)
    assert (run.decoded, run.from_cache) == (2, 200)
    new = [str(p) for p in added]
    pd.testing.assert_frame_equal(run.table.loc[new], _fresh(added))


def test_renamed_and_copied_files_are_not_decoded_again(photos, cache_dir):
    before = _run(photos, cache_dir).table
    renamed = photos[3].with_name("renamed photo.png")       # same JPEG bytes behind a .png name
    photos[3].rename(renamed)
    copied = photos[0].parent / "sub" / "copy.jpg"
    copied.parent.mkdir()
    shutil.copyfile(photos[5], copied)
    paths = [p for p in photos if p != photos[3]] + [renamed, copied]
    run = _run(paths, cache_dir)
    assert (run.decoded, run.from_cache) == (0, 41)
    table = run.table
    same = [c for c in table.columns if c != "ext_format"]
    pd.testing.assert_series_equal(table.loc[str(renamed), same], before.loc[str(photos[3]), same], check_names=False)
    pd.testing.assert_series_equal(table.loc[str(copied)], before.loc[str(photos[5])], check_names=False)
    # The extension is the file's, not the cached row's: the renamed file now claims to be a PNG.
    assert table.loc[str(renamed), "ext_format"] == "PNG"
    assert table.loc[str(renamed), "format"] == "JPEG"
    pd.testing.assert_frame_equal(table, _fresh(paths))


def test_modified_file_is_decoded_again(photos, cache_dir):
    before = _run(photos, cache_dir).table
    target = photos[10]
    shutil.copyfile(coco_images("val2017")[100], target)          # new content under the same path
    run = _run(photos, cache_dir)
    assert (run.decoded, run.from_cache) == (1, 39)
    row = run.table.loc[str(target)]
    assert row["content_hash"] != before.loc[str(target), "content_hash"]
    fresh = measure_file(str(target))
    assert row["width"] == fresh["width"] and row["phash"] == fresh["phash"]
    assert row["brightness"] == pytest.approx(fresh["brightness"], rel=1e-12)


def test_content_change_that_keeps_size_and_mtime_is_noticed(photos, cache_dir):
    before = _run(photos, cache_dir).table
    target = photos[20]
    st = os.stat(target)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x55                                 # same size, different content
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))        # as cp -p / rsync / tar would
    assert (os.stat(target).st_size, os.stat(target).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    run = _run(photos, cache_dir)
    assert (run.decoded, run.from_cache) == (1, 39)
    assert run.table.loc[str(target), "content_hash"] != before.loc[str(target), "content_hash"]


def test_broken_and_missing_files_mixed_into_cached_parts(photos, cache_dir, monkeypatch):
    # Small batches: the first part has no error rows (error columns all null), later ones do.
    monkeypatch.setattr(features, "CHUNK_SIZE", 10)
    monkeypatch.setattr(features, "BATCH_ROWS", 10)
    good = photos[:30]
    _run(good, cache_dir)
    folder = photos[0].parent
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "cut.jpg").write_bytes(photos[35].read_bytes()[:3000])
    (folder / "notes.png").write_text("not an image")
    missing = folder / "gone.jpg"
    paths = good + [folder / "empty.jpg", folder / "cut.jpg", folder / "notes.png", missing]
    first = _run(paths, cache_dir)
    assert (first.decoded, first.from_cache) == (4, 30)
    again = _run(paths, cache_dir)
    # Files with content are cached, error rows included; a missing file has nothing to cache.
    assert (again.decoded, again.from_cache) == (1, 33)
    kinds = again.table["error_kind"].dropna().to_dict()
    assert kinds == {str(folder / "empty.jpg"): "zero_byte", str(folder / "cut.jpg"): "truncated",
                     str(folder / "notes.png"): "not_image", str(missing): "missing"}
    pd.testing.assert_frame_equal(again.table, first.table)
    pd.testing.assert_frame_equal(again.table, _fresh(paths))
    # Text and bytes are Python objects with None where missing (not pandas' string dtype and NaN).
    texts = ["content_hash", "error_kind", "error", "format", "ext_format", "mode", "tiny", "thumb"]
    assert (again.table[texts].dtypes == object).all()
    assert again.table.loc[str(missing), "format"] is None and again.table.loc[str(missing), "content_hash"] is None


def test_parts_are_merged_and_vanished_rows_are_measured_again(photos, cache_dir, monkeypatch):
    monkeypatch.setattr(features, "CHUNK_SIZE", 10)
    monkeypatch.setattr(features, "BATCH_ROWS", 10)
    monkeypatch.setattr(cache_mod, "MAX_PARTS", 3)
    first = _run(photos, cache_dir)
    part_dir = Path(first.cache_dir)
    assert len(list(part_dir.glob("part-*.parquet"))) == 1           # 4 parts written, merged into one
    # Deleting the rows (but not the path index) must not lose images: they are measured again.
    for p in part_dir.glob("part-*.parquet"):
        p.unlink()
    again = _run(photos, cache_dir)
    assert (again.decoded, again.from_cache) == (40, 0)
    pd.testing.assert_frame_equal(again.table, first.table)


def test_cache_is_keyed_by_feature_version(photos, cache_dir, monkeypatch):
    _run(photos[:5], cache_dir)
    monkeypatch.setattr(features, "FEATURE_VERSION", features.FEATURE_VERSION + 1)
    run = _run(photos[:5], cache_dir)
    assert (run.decoded, run.from_cache) == (5, 0)
    assert len(list((cache_dir / "features").iterdir())) == 2


def test_without_cache_nothing_is_written(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(tmp_path / "default-cache"))
    run = compute_features([str(p) for p in photos[:5]], use_cache=False, workers=1)
    assert (run.decoded, run.from_cache, run.cache_dir) == (5, 0, None)
    assert not (tmp_path / "default-cache").exists()


def test_tests_never_use_the_users_cache():
    """conftest points $VISIONAUDIT_CACHE at a temporary folder for the whole session (issue 9, section 6):
    features, model outputs and compiled templates of the tests never land in ~/.cache/visionaudit."""
    from visionaudit.features.cache import default_cache_dir
    from visionaudit.report.html import template_cache_dir

    user = (Path.home() / ".cache" / "visionaudit").resolve()
    for folder in (default_cache_dir(), template_cache_dir()):
        assert user not in folder.resolve().parents and folder.resolve() != user
