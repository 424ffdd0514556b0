"""HTML report, JUnit XML and the findings.json schema, on a real scan of COCO128 images with injected problems."""
from __future__ import annotations

import dataclasses
import html as htmlmod
import json
import re
import shutil
import xml.etree.ElementTree as ET
from importlib.resources import files as package_files
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from conftest import coco_images, copy_images
from report_case import evaluate_case

import visionaudit
from visionaudit.features import decode
from visionaudit.findings import Finding, Result, Severity
from visionaudit.report import write_html, write_junit
from visionaudit.report.charts import histogram_geometry
from visionaudit.report.html import render_html
from visionaudit.report.json import result_json
from visionaudit.report.views.base import (
    MAX_GALLERY,
    MAX_GROUP_MEMBERS,
    MAX_GROUPS,
    property_histogram,
)
from visionaudit.suites import SUITES

WEIRD = "train/dog/we<ird & name>.jpg"
DATA_URI = re.compile(r'<img src="data:image/jpeg;base64,[A-Za-z0-9+/=]+"')
DOCS = Path(__file__).resolve().parents[1] / "docs" / "findings-schema.md"


def build_dataset(root: Path) -> Path:
    """train/{cat,dog} and val/{cat,dog} from real COCO128 photos, plus a zero-byte file, a truncated
    JPEG, a cross-split copy and a file whose name holds HTML metacharacters (another copy)."""
    train, val = coco_images("train2017")[:12], coco_images("val2017")[:6]
    for split, cls, chunk in (("train", "cat", train[:6]), ("train", "dog", train[6:]),
                              ("val", "cat", val[:3]), ("val", "dog", val[3:])):
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        for f in chunk:
            shutil.copyfile(f, root / split / cls / f.name)
    (root / "train" / "cat" / "zero.jpg").write_bytes(b"")
    data = val[0].read_bytes()
    (root / "val" / "dog" / "trunc.jpg").write_bytes(data[: len(data) // 3])
    shutil.copyfile(train[0], root / "val" / "cat" / "copy_of_train.jpg")
    shutil.copyfile(train[1], root / WEIRD)
    return root


#: Samples per (label, split) that build_dataset makes.
CLASS_COUNTS = {("cat", "train"): 7, ("dog", "train"): 7, ("cat", "val"): 4, ("dog", "val"): 4}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Result:
    tmp = tmp_path_factory.mktemp("report")
    root = build_dataset(tmp / "data")
    return visionaudit.scan(root, cache_dir=tmp / "cache", workers=1)


def _decodable(result: Result, sample: str) -> bool:
    return pd.isna(result.features.at[sample, "error_kind"])


def _property_finding(result: Result, prop: str, cutoff: float, direction: str = "below") -> Finding:
    values = result.features[prop].astype(float)
    hit = values[values < cutoff] if direction == "below" else values[values > cutoff]
    return Finding(check="quality.test_property", issue=f"low_{prop}", family="quality", title=f"Low {prop}",
                   severity=Severity.WARNING, message=f"{len(hit)} image(s) {direction} {cutoff}",
                   samples=list(hit.index), scores={s: 0.5 for s in hit.index},
                   evidence={"property": prop, "cutoff": cutoff, "direction": direction},
                   thresholds={"cutoff": cutoff}, why="w", fix="f")


# ---------------------------------------------------------------------------------------------- HTML


def test_real_scan_report_shows_every_finding_class_counts_and_placeholders(scanned, tmp_path):
    path = write_html(scanned, tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert {f.issue for f in scanned.findings} >= {"zero_byte", "truncated"}
    for f in scanned.findings:
        assert htmlmod.escape(f.title, quote=False) in text
    # One summary row per finding, each linking to a section that exists.
    links = re.findall(r'<td><a href="#([^"]+)">', text)
    assert len(links) == len(scanned.findings)
    assert all(f'id="{anchor}"' in text for anchor in links)
    # Undecodable files get a placeholder tile with the decoder's error, never an <img>.
    assert "file is empty (0 bytes)" in text
    assert re.search(r'<div class="broken"[^>]*><b>no preview</b><span>cannot decode pixels: [^<]*truncated', text)
    # Thumbnails: exactly the decodable tiles the galleries show.
    expected = 0
    for f in scanned.findings:
        if f.groups:
            shown = [s for g in f.groups[:MAX_GROUPS] for s in g["samples"][:MAX_GROUP_MEMBERS]]
        else:
            shown = sorted(f.samples, key=lambda s: f.scores.get(s, np.inf))[:MAX_GALLERY]
        expected += sum(_decodable(scanned, s) for s in shown)
    assert len(DATA_URI.findall(text)) == expected
    # Class counts per split, read back from the bars' data attributes.
    table = text[text.index('id="class-counts"'):text.index("</table>", text.index('id="class-counts"'))]
    splits = re.findall(r"<th>(\w+) <span", table)
    assert splits == ["train", "val"]
    rows = re.findall(r'<td class="cls">([^<]*)</td>(.*?)</tr>', table, flags=re.S)
    counts = {(label, split): int(n) for label, cells in rows
              for split, n in zip(splits, re.findall(r'data-count="(\d+)"', cells))}
    assert counts == CLASS_COUNTS
    assert 20_000 < path.stat().st_size < 2_000_000


def test_gallery_is_worst_first_capped_escaped_and_opens_no_file(scanned, monkeypatch):
    ids = list(scanned.features.index)
    # 300 sample ids cycling over the real files: more than a gallery shows, few distinct files.
    big = scanned.features.loc[[ids[i % len(ids)] for i in range(300)]].copy()
    original = dict(zip([f"s{i:03d}" if ids[i % len(ids)] != WEIRD else f"{WEIRD}#{i}" for i in range(300)], big.index))
    big.index = list(original)
    big["sample_id"] = big.index
    rng = np.random.default_rng(0)
    scores = dict(zip(big.index, rng.random(300).round(6)))
    many = Finding(check="quality.test", issue="many", family="quality", title="Many <samples> & more",
                   severity=Severity.WARNING, message="300 flagged", samples=list(big.index), scores=scores)
    groups = [{"samples": [big.index[2 * i], big.index[2 * i + 1]], "kind": "near", "distance": 0.1 * i}
              for i in range(30)]
    groups[0] = {"samples": list(big.index[:10]), "kind": "exact", "labels": ["<script>x</script>"] + ["cat"] * 9}
    dup = Finding(check="duplicates.test", issue="clusters", family="duplicates", title="Clusters",
                  severity=Severity.ERROR, message="30 clusters", samples=list(big.index[:60]), groups=groups)
    # Each id's thumbnail is its file's, from the scan's decode pass; the report looks each one up once.
    looked_up: list[str] = []

    class Thumbnails(dict):
        def get(self, sample, default=None):
            looked_up.append(sample)
            return scanned.thumbnails.get(original[sample], default)

    result = dataclasses.replace(scanned, findings=[many, dup], features=big, thumbnails=Thumbnails())

    def refuse(*args, **kwargs):
        raise AssertionError("the report decoded an image file")

    monkeypatch.setattr(decode, "open_for_display", refuse)
    text = render_html(result)

    worst = sorted(scores, key=scores.get)[:MAX_GALLERY]
    section = text[text.index('id="finding-2-many"'):]
    shown = [htmlmod.unescape(s) for s in re.findall(r'<div class="sid" title="([^"]*)"', section)]
    assert shown == worst
    assert "252 more in findings.json" in section
    # The error finding comes first; its groups are capped at MAX_GROUPS and members at MAX_GROUP_MEMBERS.
    clusters = text[text.index('id="finding-1-clusters"'):text.index('id="finding-2-many"')]
    assert clusters.count('<div class="group">') == MAX_GROUPS
    assert "6 more group(s) in findings.json" in clusters
    assert "+2 more" in clusters and "labels disagree" in clusters
    member_ids = [s for g in groups[:MAX_GROUPS] for s in g["samples"][:MAX_GROUP_MEMBERS]]
    decodable = big["error_kind"].isna()
    assert len(DATA_URI.findall(text)) == sum(decodable[s] for s in worst) + sum(decodable[s] for s in member_ids)
    # Each shown id looked up once, although many are shown in both findings.
    assert sorted(looked_up) == sorted(set(worst) | set(member_ids))
    # Dataset strings are escaped: titles, sample ids, labels.
    assert "Many &lt;samples&gt; &amp; more" in text
    assert "we&lt;ird &amp; name&gt;.jpg" in text and "we<ird" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text and "<script>" not in text


def test_report_size_stays_bounded_with_many_large_findings(scanned, tmp_path):
    ids = list(scanned.features.index)
    big = scanned.features.loc[[ids[i % len(ids)] for i in range(5000)]].copy()
    big.index = [f"img{i:05d}.jpg" for i in range(5000)]
    findings = [Finding(check=f"quality.c{k}", issue=f"issue_{k}", family="quality", title=f"Issue {k}",
                        severity=Severity.WARNING, message="m", samples=list(big.index),
                        scores={s: (i % 97) / 97 for i, s in enumerate(big.index)}) for k in range(20)]
    path = write_html(dataclasses.replace(scanned, findings=findings, features=big), tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert text.count('<figure class="tile">') == 20 * MAX_GALLERY
    assert text.count("4,952 more in findings.json") == 20
    assert 500_000 < path.stat().st_size < 5_000_000


def test_property_finding_draws_histogram_with_cutoff(scanned):
    values = scanned.features["sharpness"].astype(float)
    cutoff = float(values.quantile(0.25))
    text = render_html(dataclasses.replace(scanned, findings=[_property_finding(scanned, "sharpness", cutoff)]))
    svg = text[text.index("<svg"):text.index("</svg>")]
    bars = re.findall(r'<rect class="bar( flagged)?" x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="[\d.]+" data-count="(\d+)"', svg)
    finite = values[np.isfinite(values)]
    assert sum(int(n) for *_, n in bars) == len(finite)
    assert sum(int(n) for flag, *_, n in bars if flag) == int((finite < cutoff).sum())
    # The cut-off line sits on the right edge of the last flagged bar.
    cut_x = float(re.search(r'<line class="cutoff" x1="([\d.]+)"', svg).group(1))
    last = [b for b in bars if b[0]][-1]
    assert abs(float(last[1]) + float(last[2]) + 0.6 - cut_x) < 0.25


def test_property_histogram_geometry():
    h = property_histogram(np.array([1.0, 2, 3, 10]), 2.5, "below", "brightness")
    assert not h.log and h.total == 4 and h.flagged == 2
    above = property_histogram(np.array([1.0, 2, 3, 10, np.nan]), 2.5, "above", "brightness")
    assert above.flagged == 2 and above.total == 4
    drawn = histogram_geometry(above)
    assert [s["x"] for s in drawn["shades"]] == [drawn["cutoff_x"]]
    assert sum(b["count"] for b in drawn["bars"] if b["flagged"]) == 2
    spread = np.concatenate([[0.0, 0.0], np.geomspace(1, 1e4, 200)])
    h = property_histogram(spread, 50.0, "below", "sharpness")
    assert h.log and h.nonpositive == 2
    drawn = histogram_geometry(h)
    assert [t["label"] for t in drawn["ticks"]] == ["1", "10", "100", "1,000", "10,000"]
    assert h.flagged == int((spread < 50).sum())
    # Evenly spaced ticks on a log axis: one decade is a constant width.
    xs = [t["x"] for t in drawn["ticks"]]
    assert np.allclose(np.diff(xs), np.diff(xs)[0], atol=0.15)
    assert property_histogram(np.array([np.nan]), 1.0, "below", "x") is None
    assert property_histogram(np.array([1.0, 2.0]), None, "below", "x") is None
    flat = property_histogram(np.full(10, 3.0), 3.0, "below", "x")
    assert flat.total == 10 and flat.flagged == 0


def test_no_findings_and_bad_arguments(scanned, tmp_path):
    text = render_html(dataclasses.replace(scanned, findings=[]))
    assert "No findings: every check passed." in text
    assert len(DATA_URI.findall(text)) == 0
    with pytest.raises(ValueError, match="max_gallery=0"):
        write_html(scanned, tmp_path / "r.html", max_gallery=0)
    # A Result without a feature table (built by hand or by another job) still renders: placeholders.
    bare = Result(findings=[Finding(check="a.b", issue="x", family="a", title="X", severity=Severity.INFO,
                                    message="m", samples=["s1", "s2"])],
                  issues=pd.DataFrame(), features=pd.DataFrame(), dataset_summary={}, run_info={})
    text = render_html(bare)
    assert text.count("not in the dataset table</span>") == 2 and "Class counts per split" not in text


# ---------------------------------------------------------------------------------------------- evaluate report


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    pytest.importorskip("sklearn")
    pytest.importorskip("cleanlab")
    return evaluate_case(tmp_path_factory.getbasetemp() / "evaluate_case")


def _section(text: str, issue: str) -> str:
    start = re.search(rf'<section class="card finding[^"]*" id="finding-\d+-{issue}">', text).start()
    return text[start:text.index("</section>", start)]


def _expected_test(case) -> tuple[np.ndarray, np.ndarray]:
    test = case["split"] == "test"
    return case["given"][test], case["probs"][test]


def test_evaluate_report_header_confusion_and_reliability(case):
    from sklearn.metrics import confusion_matrix

    from visionaudit.metrics import calibration_table

    text = render_html(case["result"])
    y, P = _expected_test(case)
    header = text[:text.index("</header>")]
    assert re.search(r"<dt>file</dt><dd>[^<]*model\.csv</dd>", header) and "<dt>with prediction</dt><dd>1,000</dd>" in header
    card = text[text.index('id="model-metrics"'):text.index("</section>", text.index('id="model-metrics"'))]
    tables = re.findall(r'<table class="confusion( normalised)?">(.*?)</table>', card, flags=re.S)
    assert [t[0] for t in tables] == ["", " normalised"]
    expected = confusion_matrix(y, P.argmax(axis=1), labels=range(10))
    for (_, body), values in ((tables[0], expected), (tables[1], np.round(100 * expected / expected.sum(1, keepdims=True)))):
        rows = re.findall(r'<tr><td class="cls">(\d)</td>(.*?)</tr>', body, flags=re.S)
        assert [r[0] for r in rows] == [str(c) for c in range(10)]
        got = np.array([[int(v) for v in re.findall(r'<td title="[^"]*" style="[^"]*">(\d+)</td>', cells)] for _, cells in rows])
        assert (got == values).all()
    # The model is over-confident, so the metrics card links to the calibration finding's diagrams.
    assert "the calibration finding</a>" in card and '<figure class="reliability' not in card
    calibration = _section(text, "miscalibrated")
    big = calibration[calibration.index('<figure class="reliability">'):calibration.index("</figure>")]
    table = calibration_table(y, P, n_bins=15)
    filled = table[table["count"] > 0]
    assert [int(n) for n in re.findall(r'class="rbar(?: few)?"[^>]*data-count="(\d+)"', big)] == filled["count"].tolist()
    accuracy = [float(a) for a in re.findall(r'class="rbar(?: few)?"[^>]*data-accuracy="([\d.]+)"', big)]
    assert accuracy == pytest.approx(filled["accuracy"].tolist(), abs=1e-4)
    assert len(re.findall(r'class="diag"', big)) == 1
    ece = case["result"].finding("miscalibrated").evidence
    assert f"test: ECE {ece['ece']:.3f} [{ece['ece_low']:.3f}, {ece['ece_high']:.3f}] over 500 samples" in big
    small = re.findall(r'<figure class="reliability small">.*?<figcaption>([^<]*)</figcaption>', calibration, flags=re.S)
    per_class = sorted(ece["per_class"], key=lambda r: -r["ece"])
    assert small == [f"{r['class']}: ECE {r['ece']:.3f} (n={r['support']})" for r in per_class]
    assert len(small) == 10 and min(np.bincount(y)) >= 30


def test_evaluate_report_galleries_show_given_suggested_and_predicted(case):
    text = render_html(case["result"])
    labels = case["result"].finding("label_issues")
    shown = sorted(labels.samples, key=lambda s: labels.scores[s])[:MAX_GALLERY]
    candidates = {r["sample_id"]: r for r in labels.evidence["candidates"]}
    section = _section(text, "label_issues")
    tiles = re.findall(r'<div class="sid" title="([^"]+)">[^<]*</div>\s*<div class="change"[^>]*>given <b>([^<]*)</b> '
                       r'&rarr; suggested <b>([^<]*)</b></div>', section)
    assert tiles == [(s, candidates[s]["given_label"], candidates[s]["suggested_label"]) for s in shown]
    truth = dict(zip(case["ids"], case["truth"]))
    flipped_shown = [s for s in case["flipped"] if s in shown]
    assert len(flipped_shown) >= 10
    assert {s: (g, sug) for s, g, sug in tiles if s in case["flipped"]} == {
        s: (str((truth[s] + 3) % 10), str(truth[s])) for s in flipped_shown}
    assert f"{len(labels.samples) - MAX_GALLERY} more in findings.json" in section
    # Differently labelled duplicates join the list as clusters: drawn next to the ranked gallery, not instead.
    clusters = [{"samples": shown[:2], "labels": ["1", "7"], "kind": "near", "distance": 3.0, "suggested_label": "1"}]
    both = _section(render_html(dataclasses.replace(case["result"], findings=[dataclasses.replace(labels, groups=clusters)])),
                    "label_issues")
    assert both.count('<div class="change"') == MAX_GALLERY and both.count('<div class="group">') == 1
    assert re.search(r'<div class="ghead"><strong>2 images</strong><span>\xb7 near</span><span>\xb7 distance 3</span>'
                     r'<span>\xb7 suggested 1</span>\s*<span class="badge alert">labels disagree</span>', both)
    wrong = case["result"].finding("confident_errors")
    section = _section(text, "confident_errors")
    tiles = re.findall(r'title="([^"]+)">[^<]*</div>\s*<div class="change">given <b>([^<]*)</b> &rarr; predicted '
                       r'<b>([^<]*)</b> <span class="prob">p=([\d.]+)</span>', section)
    worst = wrong.evidence["worst"][:MAX_GALLERY]
    assert tiles == [(r["sample_id"], r["given_label"], r["predicted_label"], f"{r['probability']:.3f}") for r in worst]
    assert len(DATA_URI.findall(section)) == MAX_GALLERY


def test_evaluate_report_pairs_segments_fit_and_baselines(case):
    text = render_html(case["result"])
    pairs = case["result"].finding("confused_pairs")
    section = _section(text, "confused_pairs")
    titles = re.findall(r'<div class="ghead"><strong>true (\w+) \u2192 predicted (\w+)</strong><span>\xb7 (\d+) sample', section)
    assert titles == [(g["true"], g["predicted"], str(g["count"])) for g in pairs.groups]
    first = section[section.index('<div class="ghead">'):]
    first = first[:first.index('<div class="group">') if '<div class="group">' in first else None]
    assert re.findall(r'<div class="sid" title="([^"]+)"', first) == pairs.groups[0]["samples"][:MAX_GROUP_MEMBERS]
    # The planted weak scanner: one table row with its size, accuracy, CI and q, then its example images.
    seg = case["result"].finding("weak_segments")
    (group,) = [g for g in seg.groups if g["slice"] == "scanner = C"]
    section = _section(text, "weak_segments")
    row = re.search(r'<tr class="flagged"><td>scanner = C</td><td>metadata</td><td class="num">(\d+)</td>'
                    r'<td class="num">([\d.]+)%</td><td class="stripcell"><svg class="strip".*?</svg> ([\d.]+)% to ([\d.]+)%</td>', section, flags=re.S)
    in_c = set(case["in_c"])
    c_rows = np.isin(case["ids"], case["in_c"])
    right = int((case["probs"][c_rows].argmax(axis=1) == case["given"][c_rows]).sum())
    assert row.group(1) == "80" and group["size"] == len(in_c) == 80 and group["correct"] == right
    assert float(row.group(2)) == pytest.approx(100 * right / 80, abs=0.051)
    assert (float(row.group(3)), float(row.group(4))) == pytest.approx([100 * v for v in group["ci"]], abs=0.051)
    examples = section[section.index("<strong>scanner = C</strong>"):]
    assert set(re.findall(r'<div class="sid" title="([^"]+)"', examples)[:MAX_GROUP_MEMBERS]) <= in_c
    # Over-fitting: train and test accuracy bars with their bootstrap CIs.
    section = _section(text, "overfitting")
    values = [float(v) for v in re.findall(r'class="abar"[^>]*data-value="([\d.]+)"', section)]
    metrics = case["result"].finding("metrics").evidence["splits"]
    assert values == pytest.approx([metrics["train"]["metrics"]["accuracy"]["value"],
                                    metrics["test"]["metrics"]["accuracy"]["value"]], abs=1e-4)
    assert len(re.findall(r'class="whisk"', section)) == 6 and len(re.findall(r'class="ref"', section)) == 2
    # The useless model: one row per baseline, the model's difference with its CI, and the underfitting chart.
    useless = render_html(case["useless"])
    found = case["useless"].finding("model_vs_baseline")
    section = _section(useless, "model_vs_baseline")
    rows = re.findall(r'<tr(?: class="flagged")?><td>(\w+)</td>.*?</svg> ([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]</td>'
                      r'<td class="num">([^<]+)</td><td>([^<]+)</td></tr>', section, flags=re.S)
    assert [(r[0], r[5]) for r in rows] == [(b["baseline"], b["verdict"]) for b in found.evidence["baselines"]]
    assert [float(r[1]) for r in rows] == pytest.approx([b["difference"] for b in found.evidence["baselines"]], abs=5e-4)
    assert {b["baseline"] for b in found.evidence["baselines"]} == {"majority", "class_prior", "image_properties"}
    assert _section(useless, "underfitting").count('class="abar"') == 2
    # Calibrated enough (no calibration finding): the metrics card draws the reliability diagram itself.
    card = useless[useless.index('id="model-metrics"'):useless.index("</section>", useless.index('id="model-metrics"'))]
    assert case["useless"].finding("miscalibrated") is None
    assert re.findall(r'class="rbar(?: few)?"[^>]*data-count="(\d+)"', card) == ["500"]


def test_property_shortcut_table_names_each_property_alone(case):
    found = case["result"].finding("property_shortcut")
    section = _section(render_html(case["result"]), "property_shortcut")
    rows = re.findall(r'<tr(?: class="flagged")?><td>([^<]+)</td><td class="num">([\d.]+)</td>', section)
    assert rows[0] == ("all properties together", f"{found.evidence['accuracy']:.3f}")
    assert rows[1:1 + len(found.evidence["top_properties"])] == [
        (r["property"], f"{r['accuracy_alone']:.3f}") for r in found.evidence["top_properties"]]


def test_two_sided_odd_size_draws_both_cutoffs(tmp_path):
    from PIL import Image

    files = copy_images(coco_images("train2017")[:24], tmp_path / "data" / "train" / "a")
    Image.open(files[0]).resize((80, 60)).save(tmp_path / "data" / "train" / "a" / "thumb.jpg")
    Image.open(files[1]).resize((3200, 2400)).save(tmp_path / "data" / "train" / "a" / "huge.jpg")
    result = visionaudit.scan(tmp_path / "data", cache_dir=tmp_path / "cache", workers=1,
                              config={"checks": {c: {"enabled": False} for c in SUITES["scan"]
                                                 if c != "quality.odd_size"}})
    (finding,) = result.findings
    assert set(finding.samples) == {"train/a/thumb.jpg", "train/a/huge.jpg"} and finding.evidence["upper_cutoff"]
    svg = _section(render_html(result), "odd_size")
    cuts = re.findall(r'<line class="cutoff" x1="([\d.]+)"', svg)
    assert len(cuts) == 2 and float(cuts[0]) < float(cuts[1])
    assert len(re.findall(r'<rect class="shade"', svg)) == 2
    assert sum(int(n) for n in re.findall(r'<rect class="bar flagged"[^>]*data-count="(\d+)"', svg)) == 2
    assert "2 below the cut-off" in svg and "or above" in svg


def test_predictions_fields_shown_whatever_the_job_recorded(scanned):
    run = dict(scanned.run_info, predictions={"model": "model.onnx", "cross_validation": {"folds": 5, "classifier": "logistic"},
                                              "embedder": "builtin", "classes": ["cat", "dog"], "notes": []},
               embedder="onnx:model.onnx")
    header = render_html(dataclasses.replace(scanned, run_info=run))
    header = header[:header.index("</header>")]
    assert re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", header[header.index('class="predictions"'):]) == [
        ("model", "model.onnx"), ("cross validation", "folds: 5, classifier: logistic"), ("embedder", "builtin"),
        ("classes", "2")]
    assert "<dt>embedder</dt><dd>onnx:model.onnx</dd>" in header


def test_chart_geometry():
    from visionaudit.report.charts import interval_strip, reliability_diagram

    rows = [{"lower": i / 10, "upper": (i + 1) / 10, "count": c, "confidence": (i + 0.5) / 10, "accuracy": a}
            for i, (c, a) in enumerate([(0, None), (4, 0.25), (0, None), (0, None), (0, None), (0, None), (0, None),
                                        (0, None), (10, 0.5), (100, 0.99)])]
    d = reliability_diagram(rows, ece=0.1, title="t")
    assert [b["count"] for b in d["bars"]] == [4, 10, 100]
    p = d["plot"]
    # Bars stand on the x axis, reach the accuracy, and the gap box spans accuracy to confidence.
    for b, (acc, conf) in zip(d["bars"], [(0.25, 0.15), (0.5, 0.85), (0.99, 0.95)]):
        assert b["y"] + b["h"] == pytest.approx(p["bottom"], abs=0.11)
        assert b["h"] == pytest.approx(acc * p["h"], abs=0.11)
        assert b["gap_h"] == pytest.approx(abs(acc - conf) * p["h"], abs=0.11) and b["over"] == (conf > acc)
    assert d["bars"][-1]["count_h"] == pytest.approx(p["strip_bottom"] - p["strip_top"])
    assert reliability_diagram([{"lower": 0, "upper": 1, "count": 0}], ece=None, title="x") is None
    s = interval_strip(2.0, -1.0, None, lo=0.0, hi=1.0)
    assert s["x"] == s["x1"] and s["x_low"] == s["x0"] and s["x_high"] is None


# ---------------------------------------------------------------------------------------------- JUnit


def _result(findings: list[Finding], check_seconds: dict[str, float]) -> Result:
    return Result(findings=findings, issues=pd.DataFrame(), features=pd.DataFrame(),
                  dataset_summary={"source": "/data", "samples": 10},
                  run_info={"version": "0.1.0", "started_at": "2024-01-01T00:00:00+00:00", "seconds": 2.0,
                            "check_seconds": check_seconds})


def test_junit_one_testcase_per_finding_and_per_clean_check(tmp_path):
    findings = [
        Finding(check="integrity.decode_errors", issue="zero_byte", family="integrity", title="Zero",
                severity=Severity.ERROR, message="1 empty \x01file", samples=["a\x0b.jpg"], scores={"a\x0b.jpg": 0.0}),
        Finding(check="duplicates.near", issue="near_duplicates", family="duplicates", title="Near",
                severity=Severity.WARNING, message="2 clusters", samples=["b", "c", "d"],
                groups=[{"samples": ["b", "c"]}, {"samples": ["b", "d"]}]),
        Finding(check="balance.class_counts", issue="class_counts", family="balance", title="Counts",
                severity=Severity.INFO, message="2 classes"),
        Finding(check="quality.blurry", issue="check_failed", family="quality", title="Check failed",
                severity=Severity.ERROR, message="ValueError: boom", evidence={"traceback": "Traceback...\nValueError: boom"}),
    ]
    seconds = {"integrity.decode_errors": 0.4, "duplicates.near": 0.2, "balance.class_counts": 0.1,
               "quality.blurry": 0.05, "quality.dark": 0.3}
    root = ET.parse(write_junit(_result(findings, seconds), tmp_path / "ci" / "junit.xml")).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "visionaudit"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "1")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    assert set(cases) == {("integrity.decode_errors", "zero_byte"), ("duplicates.near", "near_duplicates"),
                          ("balance.class_counts", "class_counts"), ("quality.blurry", "check_failed"),
                          ("quality.dark", "no findings")}
    zero = cases["integrity.decode_errors", "zero_byte"].find("failure")
    assert zero.get("type") == "error" and zero.get("message") == "1 empty \ufffdfile"
    assert "a\ufffd.jpg  score=0.000" in zero.text
    near = cases["duplicates.near", "near_duplicates"].find("failure")
    assert near.get("type") == "warning" and "  b, c\n  b, d" in near.text
    info = cases["balance.class_counts", "class_counts"]
    assert info.find("failure") is None and info.find("system-out").text.startswith("[info] 2 classes")
    err = cases["quality.blurry", "check_failed"].find("error")
    assert err.get("type") == "check_failed" and err.text.endswith("ValueError: boom")
    assert list(cases["quality.dark", "no findings"]) == []
    assert cases["quality.dark", "no findings"].get("time") == "0.3000"

    relaxed = ET.parse(write_junit(_result(findings, seconds), tmp_path / "j2.xml", fail_on="error")).getroot()
    assert relaxed.find("testsuite").get("failures") == "1"
    with pytest.raises(ValueError, match="fail_on='sometimes'"):
        write_junit(_result(findings, seconds), tmp_path / "j3.xml", fail_on="sometimes")


def test_junit_from_real_scan(scanned, tmp_path):
    suite = ET.parse(write_junit(scanned, tmp_path / "junit.xml")).getroot().find("testsuite")
    checks_run = scanned.run_info["check_seconds"]
    clean = [c for c in checks_run if c not in {f.check for f in scanned.findings}]
    assert int(suite.get("tests")) == len(scanned.findings) + len(clean)
    failing = [f for f in scanned.findings if f.severity.rank >= Severity.WARNING.rank and f.issue != "check_failed"]
    assert int(suite.get("failures")) == len(failing)
    names = {(c.get("classname"), c.get("name")) for c in suite.findall("testcase")}
    assert ("integrity.decode_errors", "zero_byte") in names and ("integrity.decode_errors", "truncated") in names


# ---------------------------------------------------------------------------------------------- JSON schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((package_files("visionaudit") / "schema" / "findings.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_real_scan_json_validates(scanned, validator):
    doc = json.loads(json.dumps(result_json(scanned)))
    assert list(validator.iter_errors(doc)) == []
    groups = Finding(check="duplicates.near", issue="near_duplicates", family="duplicates", title="Near",
                     severity=Severity.WARNING, message="1 cluster", samples=["a", "b"],
                     groups=[{"samples": ["a", "b"], "kind": "near", "labels": ["cat", None],
                              "splits": ["train", "val"], "distance": 2.0}])
    prop = _property_finding(scanned, "brightness", 0.3)
    doc = json.loads(json.dumps(result_json(dataclasses.replace(scanned, findings=[groups, prop]))))
    assert list(validator.iter_errors(doc)) == []


@pytest.mark.parametrize("breakage, path", [
    (lambda d: d["findings"][0].update(severity="fatal"), ["findings", 0, "severity"]),
    (lambda d: d["findings"][0].pop("check"), ["findings", 0]),
    (lambda d: d["findings"][0]["scores"].update(x=1.5), ["findings", 0, "scores", "x"]),
    (lambda d: d["findings"][0]["evidence"].update(property="sharpness", cutoff=9.0), ["findings", 0, "evidence"]),
    (lambda d: d["findings"][0].update(issue="Zero Byte"), ["findings", 0, "issue"]),
    (lambda d: d["summary"]["by_severity"].pop("info"), ["summary", "by_severity"]),
    (lambda d: d.update(extra=1), []),
    (lambda d: d.update(schema_version="2.0"), ["schema_version"]),
])
def test_broken_documents_are_rejected(scanned, validator, breakage, path):
    doc = json.loads(json.dumps(result_json(scanned)))
    breakage(doc)
    errors = list(validator.iter_errors(doc))
    assert [list(e.absolute_path) for e in errors] == [path]


def test_docs_document_every_field_and_their_example_validates(validator):
    text = DOCS.read_text(encoding="utf-8")
    example = json.loads(re.search(r"```json\n(.*?)\n```", text, flags=re.S).group(1))
    assert list(validator.iter_errors(example)) == []
    schema = validator.schema
    fields = (set(schema["properties"]) | set(schema["$defs"]["finding"]["properties"])
              | set(schema["$defs"]["group"]["properties"]) | set(schema["properties"]["run"]["properties"])
              | set(schema["properties"]["dataset"]["properties"]))
    undocumented = {f for f in fields if f"`{f}`" not in text}
    assert undocumented == set()
