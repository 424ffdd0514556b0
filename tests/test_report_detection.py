"""The report and terminal summary of a real detection dataset (COCO128 with its YOLO labels; issue 9,
section 5): the class count of its objects in the header and findings.json, captions that keep the file
name, the rare-class gallery naming each image's class, the whole run time by stage, and a terminal
summary that reads at 80 columns."""
from __future__ import annotations

import html as htmlmod
import json
import re

import pytest
from coco128_case import coco128_scan, label_classes
from rich.console import Console

from visionaudit.report.format import run_time
from visionaudit.report.html import caption_chars, render_html
from visionaudit.report.run_folder import save_run
from visionaudit.report.terminal import print_summary
from visionaudit.report.views import build_report
from visionaudit.report.views.blocks import Gallery

TILE = re.compile(r'<div class="sid" title="([^"]*)">([^<]*)</div>')


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    return coco128_scan(tmp_path_factory.getbasetemp() / "coco128_scan")


def test_header_and_findings_json_count_the_classes_of_the_objects(scanned, tmp_path):
    present = set().union(*label_classes().values())
    counts = scanned.finding("class_counts").evidence["counts"]
    counted = {c for split in counts.values() for c, n in split.items() if n > 0}
    assert counted == present and len(present) == 76          # 76 of the 80 COCO classes have objects here
    assert scanned.dataset_summary["classes"] == 76
    saved = json.loads(save_run(scanned, tmp_path / "run").read_text(encoding="utf-8"))
    assert saved["dataset"]["classes"] == 76 and saved["dataset"]["objects"] == 1827
    header = render_html(scanned).split("</header>")[0]
    assert "<dt>classes</dt><dd>76 · 1,827 objects</dd>" in header


def test_captions_cut_long_paths_at_the_start_keeping_the_file_name(scanned):
    text = render_html(scanned)
    tiles = [(htmlmod.unescape(sid), htmlmod.unescape(shown)) for sid, shown in TILE.findall(text)]
    assert len(tiles) > 50
    limit = caption_chars(112)
    # images/train2017/000000000009.jpg is one character too long for two lines of a tile (the page clipped
    # its last line: ".jpg" or more of the file name); images/val2017/... fits
    cut = [(sid, shown) for sid, shown in tiles if len(sid) > limit]
    assert len(cut) > 20 and all(shown == sid for sid, shown in tiles if len(sid) <= limit)
    for sid, shown in cut:
        assert len(shown) <= limit and shown.startswith("\u2026/") and sid.endswith(shown[1:]), (sid, shown)
        assert shown.endswith("/" + sid.rsplit("/", 1)[1])


def test_rare_class_gallery_says_which_class_each_image_stands_for(scanned):
    finding = scanned.finding("rare_classes")
    rare_where = {}
    for r in finding.evidence["rare"]:
        rare_where.setdefault(r["class"], set()).add(r["scope"])
    classes = label_classes()
    split_of = scanned.features["split"]
    view = next(v for v in build_report(scanned).findings if v.issue == "rare_classes")
    (gallery,) = [b for b in view.blocks if isinstance(b, Gallery)]
    assert len(gallery.tiles) == 48
    for tile in gallery.tiles:
        assert tile.label is None                             # a detection image has no label of its own
        name = tile.note.removeprefix("rare class: ")
        # the class is one of the image's objects, and rare overall or in the image's own split
        assert name in classes[tile.sample], tile
        assert rare_where[name] & {"overall", split_of[tile.sample]}, tile
        # and the rarest of its classes: its score is that class's count over its threshold
        assert tile.score == pytest.approx(min(finding.scores[tile.sample], 1.0))
    section = re.split(r'id="finding-\d+-rare_classes">', render_html(scanned))[1].split("</section>")[0]
    notes = re.findall(r'<div class="note">rare class: ([^<]+)</div>', section)
    assert notes == [htmlmod.escape(t.note.removeprefix("rare class: "), quote=False) for t in gallery.tiles]


def test_the_run_time_is_the_whole_run_by_stage(scanned):
    run = scanned.run_info
    stages = run["stage_seconds"]
    assert list(stages) == ["load", "decode", "predictions", "checks", "stats"]
    assert stages["decode"] == run["feature_seconds"]
    assert stages["checks"] >= sum(run["check_seconds"].values()) - 0.01
    assert run["seconds"] >= sum(stages.values()) - 0.01 and run["seconds"] > stages["decode"]
    took = run_time(run)
    assert took.startswith(f"{run['seconds']:.1f} s (") and f"checks {stages['checks']:.1f} s" in took
    assert f'<dt>took</dt><dd class="took">{took}</dd>' in render_html(scanned)
    console = Console(width=100, record=True)
    print_summary(scanned, console)
    assert f"took {took}" in console.export_text()


def test_terminal_summary_reads_at_80_columns(scanned):
    console = Console(width=80, record=True)
    print_summary(scanned, console)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(scanned.findings) >= 8
    for f in scanned.findings:
        # each check id whole on a line, its message's first words together (not a word, or part of one, a line)
        assert any(f.check in line for line in lines), f.check
        first = " ".join(f.message.split()[:4])
        assert first in " ".join(text.split()), first
    words_per_line = [len(line.split()) for line in lines if line.strip()]
    assert sum(words_per_line) / len(words_per_line) > 5
