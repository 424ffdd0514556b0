"""The HTML report renders offline in headless Chromium: no console errors, every thumbnail decodes."""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pytest
from PIL import Image

import visionaudit
from visionaudit.findings import Finding, Severity
from visionaudit.report import write_html

from test_report import DATA_URI, build_dataset

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def test_report_renders_in_headless_chromium(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
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

    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            # Anything fetched from outside the file itself would break the offline promise.
            page.on("request", lambda r: problems.append(f"request {r.url}") if not r.url.startswith(("file:", "data:")) else None)
            page.goto(report.as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
            svg_width = page.eval_on_selector("figure.histogram svg", "e => e.getBoundingClientRect().width")
            title = page.title()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert len(widths) == expected_images and min(widths) > 0
    assert svg_width > 300
    assert re.match(r"visionaudit report: .*data$", title)
    im = Image.open(shot).convert("RGB")
    assert im.width == 1280 and im.height > 2000
    # A real page: many distinct colours (photos) rather than a blank or error screen.
    colours = np.unique(np.asarray(im.resize((640, im.height // 2))).reshape(-1, 3), axis=0)
    assert len(colours) > 5000
