"""The HTML report renders offline in headless Chromium: no console errors, every thumbnail decodes, and each
evaluate picture (reliability diagrams, confusion matrix, galleries, segment and baseline tables, fit bars) is read
back from the rendered page."""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pytest
from PIL import Image
from report_case import C_BROKEN, C_FIXED, compare_case, evaluate_case
from test_report import DATA_URI, build_dataset

import visionaudit
from visionaudit.findings import Finding, Severity
from visionaudit.report import write_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def _browse(report, shot, script: str, width: int = 1280):
    """Open ``report`` in headless Chromium ``width`` pixels wide, run ``script`` (a JS function of no argument)
    and save a full-page screenshot; returns (what the script returned, console errors and outside requests)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            # Anything fetched from outside the file itself would break the offline promise.
            page.on("request", lambda r: problems.append(f"request {r.url}") if not r.url.startswith(("file:", "data:")) else None)
            page.goto(report.as_uri(), wait_until="load")
            got = page.evaluate(script)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return got, problems


def test_report_renders_in_headless_chromium(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    result = visionaudit.scan(build_dataset(tmp_path / "data"), cache_dir=tmp_path / "cache", workers=1)
    ids = list(result.features.index)
    sharp = result.features["sharpness"].astype(float)
    cutoff = float(sharp.quantile(0.3))
    blurry = sharp[sharp < cutoff].sort_values()
    extra = [
        Finding(check="quality.blurry", issue="blurry", family="quality", title="Blurry images",
                severity=Severity.WARNING, message=f"{len(blurry)} image(s) are blurry.", samples=list(blurry.index),
                scores=(blurry / cutoff).to_dict(), evidence={"property": "sharpness", "cutoff": cutoff, "direction": "below"},
                thresholds={"quantile": 0.3}, why="Blur removes the detail a model learns from.", fix="Drop or re-shoot them."),
        Finding(check="duplicates.near", issue="near_duplicates", family="duplicates", title="Near duplicates",
                severity=Severity.WARNING, message="2 clusters of near-duplicate images.", samples=ids[:5],
                groups=[{"samples": ids[:2], "kind": "exact", "distance": 0.0},
                        {"samples": ids[2:5], "kind": "near", "distance": 4.0, "labels": ["cat", "dog", "cat"]}]),
    ]
    result = dataclasses.replace(result, findings=result.findings + extra)
    report = write_html(result, tmp_path / "report.html")
    expected_images = len(DATA_URI.findall(report.read_text(encoding="utf-8")))
    assert expected_images > 10

    shot = tmp_path / "report.png"
    (widths, svg_width, title), problems = _browse(report, shot, """() => [
      [...document.images].map(e => e.complete ? e.naturalWidth : 0),
      document.querySelector('figure.histogram svg').getBoundingClientRect().width, document.title]""")
    assert problems == []
    assert len(widths) == expected_images and min(widths) > 0
    assert svg_width > 300
    assert re.match(r"visionaudit report: .*data$", title)
    im = Image.open(shot).convert("RGB")
    assert im.width == 1280 and im.height > 2000
    # A real page: many distinct colours (photos) rather than a blank or error screen.
    colours = np.unique(np.asarray(im.resize((640, im.height // 2))).reshape(-1, 3), axis=0)
    assert len(colours) > 5000


#: Reads each evaluate picture back from the rendered page (boxes measured by the layout engine).
DOM_SCRIPT = """() => {
  const sec = issue => document.querySelector(`section[id$="-${issue}"]`);
  const box = e => e.getBoundingClientRect();
  const calib = sec('miscalibrated');
  const big = calib.querySelector('figure.reliability:not(.small)');
  const norm = document.querySelector('#model-metrics table.confusion.normalised');
  return {
    images: [...document.images].map(i => i.complete ? i.naturalWidth : 0),
    predictions: document.querySelector('dl.predictions').innerText,
    rbars: [...big.querySelectorAll('rect.rbar')].map(r => [+r.dataset.count, box(r).height]),
    diagonal: box(big.querySelector('line.diag')).width,
    caption: big.querySelector('figcaption').innerText,
    small: [...calib.querySelectorAll('figure.reliability.small')].map(f => [f.querySelector('figcaption').innerText,
                                                                         box(f).width]),
    normalised: [...norm.querySelectorAll('tbody tr')].map(tr => [...tr.querySelectorAll('td')].slice(1, -1).map(td => +td.innerText)),
    labels: Object.fromEntries([...sec('label_issues').querySelectorAll('figure.tile')].map(
      f => [f.querySelector('.sid').innerText, [f.querySelector('.change').innerText, f.querySelector('img').naturalWidth]])),
    pairs: [...sec('confused_pairs').querySelectorAll('.group .ghead strong')].map(s => s.innerText),
    segment: [...sec('weak_segments').querySelectorAll('table.segments')[0].querySelectorAll('tbody tr')].map(
      tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim())),
    segmentStrip: box(sec('weak_segments').querySelector('table.segments svg.strip')).width,
    segmentImages: sec('weak_segments').querySelectorAll('.group img').length,
    fit: [...sec('overfitting').querySelectorAll('rect.abar')].map(r => [+r.dataset.value, box(r).width]),
    wrong: [...sec('confident_errors').querySelectorAll('figure.tile')].slice(0, 3).map(f => f.querySelector('.change').innerText),
  };
}"""


def test_evaluate_report_pictures_in_headless_chromium(tmp_path, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    pytest.importorskip("sklearn")
    pytest.importorskip("cleanlab")
    from sklearn.metrics import confusion_matrix

    from visionaudit.metrics import calibration_table


    case = evaluate_case(tmp_path_factory.getbasetemp() / "evaluate_case")
    result = case["result"]
    report = write_html(result, tmp_path / "evaluate.html")
    got, problems = _browse(report, tmp_path / "evaluate.png", DOM_SCRIPT)
    assert problems == []
    assert len(got["images"]) == len(DATA_URI.findall(report.read_text(encoding="utf-8"))) > 100
    assert min(got["images"]) > 0
    assert "model.csv" in got["predictions"] and "1,000" in got["predictions"]

    test = case["split"] == "test"
    y, P = case["given"][test], case["probs"][test]
    table = calibration_table(y, P, n_bins=15)
    filled = table[table["count"] > 0]
    assert [c for c, _ in got["rbars"]] == filled["count"].tolist()
    # Each bar is as tall as its accuracy: 220 px of plot for accuracy 1 (the SVG is drawn at its own size).
    assert [h for _, h in got["rbars"]] == pytest.approx((220 * filled["accuracy"]).tolist(), abs=0.6)
    assert got["diagonal"] == pytest.approx(300, abs=1)
    assert got["caption"].startswith(f"test: ECE {result.finding('miscalibrated').evidence['ece']:.3f} [")
    assert len(got["small"]) == 10 and all(w > 150 for _, w in got["small"])

    counts = confusion_matrix(y, P.argmax(axis=1), labels=range(10))
    assert np.array(got["normalised"]) == pytest.approx(np.round(100 * counts / counts.sum(1, keepdims=True)))

    truth = dict(zip(case["ids"], case["truth"]))
    shown = [s for s in case["flipped"] if s in got["labels"]]
    assert len(shown) >= 10
    for s in shown:
        assert got["labels"][s] == [f"given {(truth[s] + 3) % 10} \u2192 suggested {truth[s]}", 28]
    pairs = result.finding("confused_pairs").groups
    assert got["pairs"] == [f"true {g['true']} \u2192 predicted {g['predicted']}" for g in pairs]
    row = next(r for r in got["segment"] if r[0] == "scanner = C")
    group = next(g for g in result.finding("weak_segments").groups if g["slice"] == "scanner = C")
    assert row[:4] == ["scanner = C", "metadata", "80", f"{100 * group['accuracy']:.1f}%"]
    assert got["segmentStrip"] == pytest.approx(170, abs=1) and got["segmentImages"] >= 8
    (train, train_w), (held, held_w) = got["fit"]
    assert train_w / held_w == pytest.approx(train / held, rel=0.01)
    worst = result.finding("confident_errors").evidence["worst"][:3]
    assert got["wrong"] == [f"given {r['given_label']} \u2192 predicted {r['predicted_label']} p={r['probability']:.3f}"
                            for r in worst]

    # The useless model's report: the baseline table draws one interval strip per baseline.
    useless = write_html(case["useless"], tmp_path / "useless.html")
    strips, problems = _browse(useless, tmp_path / "useless.png", """() =>
      [...document.querySelectorAll('table.baselines tbody tr')].map(tr => [tr.cells[0].innerText,
        tr.querySelector('svg.strip circle').getBoundingClientRect().x - tr.querySelector('svg.strip line.sref').getBoundingClientRect().x])""")
    assert problems == []
    baselines = case["useless"].finding("model_vs_baseline").evidence["baselines"]
    assert [name for name, _ in strips] == [b["baseline"] for b in baselines]
    # The dot sits left of the zero line exactly when the model is worse than that baseline.
    assert [dx < -3.5 for _, dx in strips] == [b["high"] < 0 for b in baselines]


#: Reads the comparison, leak and cluster pictures back from the rendered page.
COMPARE_SCRIPT = """() => {
  const sec = issue => document.querySelector(`section[id$="-${issue}"]`);
  const box = e => e.getBoundingClientRect();
  const rows = t => [...t.querySelectorAll('tbody tr')].map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()));
  const cmp = sec('model_comparison'), leak = sec('leaked_test_metrics'), seg = sec('weak_segments');
  const groups = s => [...s.querySelectorAll('.group')].map(g => ({
    title: g.querySelector('.ghead strong').innerText,
    tiles: [...g.querySelectorAll('figure.tile')].map(f => [f.querySelector('.sid').innerText,
      [...f.querySelectorAll('.badge.split')].map(b => b.innerText).join(), f.querySelector('img').naturalWidth])}));
  const accStrip = leak.querySelector('table.deleaked tbody tr svg.strip');
  const band = accStrip.querySelector('rect.sband'), ref = accStrip.querySelector('line.sref');
  return {
    images: [...document.images].map(i => i.complete ? i.naturalWidth : 0),
    comparison: rows(cmp.querySelector('table.comparison')),
    mcnemar: rows(cmp.querySelector('table.mcnemar'))[0],
    split: [...cmp.querySelectorAll('figure.splitbar rect')].map(r => [r.getAttribute('class'), +r.dataset.count, box(r).width]),
    verdict: cmp.querySelector('p.verdict').innerText,
    changed: groups(cmp),
    pairs: groups(leak),
    deleaked: rows(leak.querySelector('table.deleaked')),
    band: [box(band).left, box(band).right, box(ref).left, box(accStrip.querySelector('circle.sdot')).left],
    clusters: groups(seg).filter(g => g.title.startsWith('cluster')),
  };
}"""


def test_compare_and_leak_pictures_in_headless_chromium(tmp_path, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    pytest.importorskip("sklearn")
    case = compare_case(tmp_path_factory.getbasetemp() / "compare_case")
    result = case["result"]
    report = write_html(result, tmp_path / "compare.html")
    got, problems = _browse(report, tmp_path / "compare.png", COMPARE_SCRIPT)
    assert problems == []
    assert len(got["images"]) == len(DATA_URI.findall(report.read_text(encoding="utf-8"))) > 60
    assert min(got["images"]) == 28  # every thumbnail decodes, at MNIST's own size

    ev = result.finding("model_comparison").evidence
    for row, key in zip(got["comparison"], ("accuracy", "f1_macro", "log_loss")):
        m = ev["metrics"][key]
        assert row[1:3] == [f"{m['a']:.3f}", f"{m['b']:.3f}"]
        assert row[3].startswith(f"{m['difference']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}]")
        assert row[5] == "B better"
    assert got["mcnemar"][:3] == [str(C_BROKEN), str(C_FIXED), str(ev["n"] - C_BROKEN - C_FIXED)]
    (left, n_left, w_left), (right, n_right, w_right) = got["split"]
    assert (left, n_left, right, n_right) == ("sleft", C_BROKEN, "sright", C_FIXED)
    assert w_left / w_right == pytest.approx(C_BROKEN / C_FIXED, rel=0.02)
    assert got["verdict"].startswith("B (b.csv) is significantly better than A (a.csv)")
    broke, fixed = got["changed"]
    assert sorted(s for s, _, _ in broke["tiles"]) == case["broken"]
    assert [s for s, _, _ in fixed["tiles"]] == case["fixed"]

    # Leak pairs: test copy next to its training original, split badges and decoded thumbnails on both.
    pairs = {g["tiles"][0][0]: g for g in got["pairs"]}
    for copy, source in case["copies"].items():
        assert pairs[copy]["title"] == "exact copy of 1 training sample"
        assert pairs[copy]["tiles"] == [[copy, "test", 28], [source, "train", 28]]
    leak = result.finding("leaked_test_metrics").evidence
    acc = leak["metrics"]["accuracy"]
    original, deleaked = acc["original"], acc["deleaked"]
    assert got["deleaked"][0][:3] == ["accuracy",
                                      f"{original['value']:.3f} [{original['low']:.3f}, {original['high']:.3f}]",
                                      f"{deleaked['value']:.3f} [{deleaked['low']:.3f}, {deleaked['high']:.3f}]"]
    # The de-leaked accuracy's dot sits left of the original's mark, inside the band of the original CI.
    band_left, band_right, ref_x, dot_x = got["band"]
    assert band_left < dot_x < ref_x < band_right

    seg = result.finding("weak_segments")
    clusters = [g for g in seg.groups if g["kind"] == "cluster"]
    assert [g["title"] for g in got["clusters"]] == [f"{g['slice']} (builtin embedding)" for g in clusters]
    for drawn, g in zip(got["clusters"], clusters):
        assert [s for s, _, _ in drawn["tiles"]] == g["samples"][:8] + g["typical"][:8]
        assert {s for s, _, _ in drawn["tiles"]} <= set(case["inverted"])


#: Each table that reaches past the card it is in, or scrolls inside it: [class, table right, card right].
OVERFLOW_SCRIPT = """() => [...document.querySelectorAll('table')].map(t => {
  const card = t.closest('section'), wrap = t.parentElement;
  return [t.className, t.getBoundingClientRect().right, card.getBoundingClientRect().right,
          wrap.scrollWidth > wrap.clientWidth + 1];
}).filter(([, right, cardRight, scrolls]) => right > cardRight + 1 || scrolls)"""


def test_baseline_table_fits_its_card_at_1400_px(tmp_path, tmp_path_factory):
    """The "Model vs baselines" table reached 26 px past its card at 1,400 px, cutting its verdict column
    (issue 9, section 5); no table of an evaluate report may."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    pytest.importorskip("sklearn")
    pytest.importorskip("cleanlab")
    case = evaluate_case(tmp_path_factory.getbasetemp() / "evaluate_case")
    for name in ("useless", "result"):
        report = write_html(case[name], tmp_path / f"{name}.html")
        (overflowing, baselines), problems = _browse(report, tmp_path / f"{name}.png", f"""() => [
          ({OVERFLOW_SCRIPT})(),
          [...document.querySelectorAll('table.baselines tbody tr')].map(tr => tr.cells[tr.cells.length - 1].innerText)]""",
                                                     width=1400)
        assert problems == [] and overflowing == [], name
        if name == "useless":                           # every verdict is on the page, whole
            verdicts = [b["verdict"] for b in case[name].finding("model_vs_baseline").evidence["baselines"]]
            assert [" ".join(v.split()) for v in baselines] == verdicts


def test_captions_show_each_file_name_whole_in_chromium(tmp_path, tmp_path_factory):
    """COCO128's train ids (images/train2017/000000000009.jpg) are a character longer than two caption lines;
    the caption is cut at its start, so the file name shows and nothing is hidden."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    from coco128_case import coco128_scan

    scanned = coco128_scan(tmp_path_factory.getbasetemp() / "coco128_scan")
    report = write_html(scanned, tmp_path / "coco128.html")
    captions, problems = _browse(report, tmp_path / "coco128.png", """() =>
      [...document.querySelectorAll('.tile .sid')].map(e => [e.title, e.innerText.replace(/\\s+/g, ''),
                                                             e.scrollHeight <= e.clientHeight + 1])""", width=1400)
    assert problems == [] and len(captions) > 50
    for sid, shown, whole in captions:
        assert whole and shown.endswith(sid.rsplit("/", 1)[1]), (sid, shown)
    assert sum(shown != sid for sid, shown, _ in captions) > 20
