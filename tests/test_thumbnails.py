"""The report's thumbnails come from the decode pass: every gallery tile has one after the images are
gone, a cached row brings its thumbnail back, they show what the report's own decode showed, and the
command line opens no image after the decode pass."""
from __future__ import annotations

import gc
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import coco_images, copy_images
from PIL import Image
from typer.testing import CliRunner

import visionaudit as va
from visionaudit.cli import app
from visionaudit.examples import make_example_dataset
from visionaudit.features import compute_features, decode
from visionaudit.features.thumbnails import THUMBNAIL_SIZE, ReportThumbnails
from visionaudit.report.html import render_html

TILE = re.compile(r'<figure class="tile">.*?<div class="sid" title="([^"]*)"', re.S)
IMG = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)" width="(\d+)" height="(\d+)" alt="([^"]*)"')


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The example dataset (planted problems, a truncated and a zero-byte file) plus COCO photos of
    other sizes and aspect ratios than its own."""
    root = tmp_path_factory.mktemp("thumbs") / "data"
    make_example_dataset(root, seed=0)
    copy_images(coco_images("train2017")[:8], root / "train" / "coco")
    return root


def _images(text: str) -> dict[str, tuple[bytes, int, int]]:
    """Shown sample id -> (JPEG bytes, width, height) of the report's <img> tiles."""
    import base64
    import html

    return {html.unescape(alt): (base64.b64decode(uri), int(w), int(h)) for uri, w, h, alt in IMG.findall(text)}


def test_report_shows_every_thumbnail_after_the_images_are_deleted(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    thumbnails = ReportThumbnails()
    result = va.scan(copy, cache_dir=tmp_path / "cache", thumbnails=thumbnails)
    assert result.thumbnails is thumbnails                  # the Result carries the run's thumbnails
    shutil.rmtree(copy)
    text = render_html(result)
    shown = _images(text)
    decodable = result.features["error_kind"].isna()
    tiles = set(TILE.findall(text))
    assert len(shown) > 25 and set(shown) == {s for s in tiles if decodable[s]}
    assert "no thumbnail kept with this run" not in text
    # Only what the report looked up is kept (what a run folder's thumbnails.parquet saves).
    assert set(thumbnails) == set(shown) and len(thumbnails) < len(result.features)
    # The same pictures as the report made when it decoded the files itself (the display decoder's
    # thumbnail of the original file), of the same size (to a pixel's rounding).
    psnr = []
    for sample, (jpeg, width, height) in shown.items():
        original = data / Path(result.features.at[sample, "path"]).relative_to(copy)
        buf = io.BytesIO()
        decode.open_for_display(str(original), THUMBNAIL_SIZE).save(buf, "JPEG", quality=72)
        ref = buf.getvalue()
        ref_w, ref_h = Image.open(io.BytesIO(ref)).size
        assert max(width, height) == min(THUMBNAIL_SIZE, max(ref_w, ref_h)) and abs(width - ref_w) + abs(height - ref_h) <= 1
        a = np.asarray(Image.open(io.BytesIO(jpeg)).resize((ref_w, ref_h)), dtype=float)
        b = np.asarray(Image.open(io.BytesIO(ref)), dtype=float)
        psnr.append(10 * np.log10(255 ** 2 / max(((a - b) ** 2).mean(), 1e-9)))
    assert min(psnr) > 25 and np.median(psnr) > 30


def test_cached_rows_bring_their_thumbnails_back(data, tmp_path):
    photos = sorted((data / "train" / "coco").glob("*.jpg"))[:5]
    paths = [str(p) for p in copy_images(photos, tmp_path / "a")]
    first = compute_features(paths, cache_dir=tmp_path / "cache", workers=1)
    again = compute_features(paths, cache_dir=tmp_path / "cache", workers=1)
    # The same content under a new name is a cache hit too.
    moved = str(tmp_path / "moved.jpg")
    shutil.copyfile(paths[0], moved)
    copied = compute_features([moved], cache_dir=tmp_path / "cache", workers=1)
    assert (first.decoded, again.decoded, again.from_cache, copied.decoded, copied.from_cache) == (5, 0, 5, 0, 1)
    made = [first.thumbnails.get(p) for p in paths]
    assert all(m[:2] == b"\xff\xd8" for m in made)
    assert [again.thumbnails.get(p) for p in paths] == made
    assert copied.thumbnails.get(moved) == made[0]
    assert len(first.thumbnails) == 5 and first.thumbnails.get("not/a/path.jpg") is None


def test_a_run_without_cache_keeps_its_thumbnails_until_dropped(data, tmp_path):
    paths = [str(p) for p in sorted((data / "train" / "coco").glob("*.jpg"))[:3]] + [str(tmp_path / "missing.jpg")]
    run = compute_features(paths, use_cache=False, workers=1)
    folder = run.thumbnails.directory
    assert [run.thumbnails.get(p) is not None for p in paths] == [True, True, True, False]
    assert folder.is_dir()
    del run
    gc.collect()
    assert not folder.exists()


def test_the_command_line_opens_no_image_after_the_decode_pass(data, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the report decoded an image file")

    monkeypatch.setattr(decode, "open_for_display", refuse)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["scan", str(data), "--out", str(out), "--no-cache", "--fail-on", "never", "-q"])
    assert res.exit_code == 0, res.output
    shown = _images((out / "report.html").read_text(encoding="utf-8"))
    saved = pq.read_table(out / "thumbnails.parquet")
    assert len(shown) > 25
    assert dict(zip(saved.column("sample_id").to_pylist(), saved.column("jpeg").to_pylist())) == {
        s: jpeg for s, (jpeg, _, _) in shown.items()}


def test_python_api_reports_show_the_runs_thumbnails_with_the_images_gone(data, tmp_path):
    """scan -> write_html, save_run -> `visionaudit report`, load_run -> render_html: every path shows the
    decode pass's thumbnails, which the Result carries (issue 8, acceptance 2: the report never decodes)."""
    from visionaudit.report import write_html
    from visionaudit.report.run_folder import load_run, save_run

    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    result = va.scan(copy, use_cache=False, workers=1)     # no thumbnails argument, no cache: packs in a temp folder
    shutil.rmtree(copy)
    gc.collect()                                            # the Result keeps the run's previews alive
    text = write_html(result, tmp_path / "report.html").read_text(encoding="utf-8")
    shown = _images(text)
    decodable = result.features["error_kind"].isna()
    assert len(shown) > 25 and set(shown) == {s for s in TILE.findall(text) if decodable[s]}
    assert "no thumbnail kept with this run" not in text

    run = tmp_path / "run"
    save_run(result, run)                                   # keeps the thumbnails its report shows
    res = CliRunner().invoke(app, ["report", str(run), "--fail-on", "never", "-q"])
    assert res.exit_code == 0, res.output
    assert _images((run / "report.html").read_text(encoding="utf-8")) == shown
    loaded, thumbnails = load_run(run)
    assert loaded.thumbnails == thumbnails and _images(render_html(loaded)) == shown
