"""Report views: findings become typed, JSON-ready blocks; the registry draws a finding of an unknown family
(a plugin check) with the generic view; and file, class, split and check names carrying markup reach every
view's HTML escaped. Real runs: the example dataset's scan, and the MNIST evaluate and compare cases of
tests/report_case.py."""
from __future__ import annotations

import dataclasses
import html as htmlmod
import json
import re
import warnings
from html.parser import HTMLParser

import numpy as np
import pytest
from markupsafe import escape
from report_case import compare_case, evaluate_case

import visionaudit
from visionaudit.examples import make_example_dataset
from visionaudit.findings import Finding, Result, Severity
from visionaudit.report.html import render_html
from visionaudit.report.views import (
    build_report,
    generic_view,
    register_view,
    registry,
    to_data,
    view_for,
)
from visionaudit.report.views.blocks import BLOCK_TYPES, Gallery, Note

EVIL = "<script>alert(1)</script>\" onerror=\"alert(2)' <img src=x onerror=alert(3)>"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Result:
    root = tmp_path_factory.mktemp("views")
    make_example_dataset(root / "data", seed=0)
    return visionaudit.scan(root / "data", cache_dir=root / "cache", workers=1)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Result:
    pytest.importorskip("sklearn")
    pytest.importorskip("cleanlab")
    return evaluate_case(tmp_path_factory.getbasetemp() / "evaluate_case")["result"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Result:
    pytest.importorskip("sklearn")
    return compare_case(tmp_path_factory.getbasetemp() / "compare_case")["result"]


def _with_plugin(result: Result, check: str = "acme.tiny_images", family: str = "acme") -> tuple[Result, Finding]:
    """The run with what a third-party check reports: the smallest images worst first, each one's side length,
    the property it judged (added to the feature table) with its cut-off."""
    features = result.features.copy()
    decoded = features["error_kind"].isna()
    features["min_side"] = np.minimum(features["width"].astype(float), features["height"].astype(float)).where(decoded)
    side = features["min_side"].dropna()
    cutoff = float(side.quantile(0.2))
    hit = side[side < cutoff].sort_values()
    tiny = Finding(check=check, issue="tiny_images", family=family, title="Images too small to train on",
                   severity=Severity.WARNING, message=f"{len(hit)} image(s) have a side under {cutoff:g} pixels.",
                   samples=list(hit.index), scores=(hit / cutoff).to_dict(),
                   evidence={"property": "min_side", "cutoff": cutoff, "direction": "below",
                             "sides": {s: int(v) for s, v in hit.items()}, "median": float(side.median())},
                   thresholds={"min_side": cutoff}, why="w", fix="f")
    return dataclasses.replace(result, findings=[tiny], features=features), tiny


# ---------------------------------------------------------------------------------------------- generic view


def test_plugin_family_is_drawn_by_the_generic_view(example):
    result, tiny = _with_plugin(example)
    assert view_for(tiny) is generic_view
    (section,) = build_report(result).findings
    assert [b.kind for b in section.blocks] == ["facts", "facts", "histogram", "gallery"]
    thresholds, evidence, hist, gallery = section.blocks
    assert thresholds.sep == " = " and [f.name for f in thresholds.items] == ["min_side"]
    # The per-image map goes under each image, not into a chip.
    assert [(f.name, f.value) for f in evidence.items] == [("median", f"{tiny.evidence['median']:.3g}")]
    side = result.features["min_side"].dropna()
    assert hist.property == "min_side" and hist.total == len(side) and sum(hist.counts) == len(side)
    assert hist.flagged == len(tiny.samples) == sum(n for n, hit in zip(hist.counts, hist.flagged_bins) if hit)
    assert [t.sample for t in gallery.tiles] == sorted(tiny.samples, key=tiny.scores.get)
    assert [t.note for t in gallery.tiles] == [f"sides: {tiny.evidence['sides'][t.sample]}" for t in gallery.tiles]
    assert [t.value for t in gallery.tiles] == [f"{int(side[t.sample])}" for t in gallery.tiles]

    text = render_html(result)
    page = text[text.index('id="finding-1-tiny_images"'):]
    assert re.findall(r'<div class="sid" title="([^"]+)"', page) == [t.sample for t in gallery.tiles]
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', page)) == len(gallery.tiles)
    assert sum(int(n) for n in re.findall(r'<rect class="bar flagged"[^>]*data-count="(\d+)"', page)) == hist.flagged


def test_registered_views_by_check_then_family_and_a_failing_view_falls_back(example, monkeypatch):
    result, tiny = _with_plugin(example)
    old = dataclasses.replace(example.finding("dark"), family="")
    # A finding saved before findings carried a family is drawn by its check id's family.
    assert view_for(old) is view_for(example.finding("dark")) is not generic_view
    monkeypatch.setattr(registry, "_VIEWS", dict(registry._VIEWS))   # the built-ins are loaded by now

    @register_view("acme")
    def family_view(f, ctx):
        return [Note(f"family view of {f.check}")]

    assert view_for(tiny) is family_view
    assert view_for(dataclasses.replace(tiny, check="acme.other")) is family_view

    @register_view("acme.tiny_images")
    def broken(f, ctx):
        raise KeyError("no such evidence")

    assert view_for(tiny) is broken
    with pytest.warns(RuntimeWarning, match=r"acme.tiny_images .*KeyError"):
        (section,) = build_report(result).findings
    assert isinstance(section.blocks[0], Note) and "KeyError" in section.blocks[0].text
    assert [b.kind for b in section.blocks[1:]] == ["facts", "facts", "histogram", "gallery"]

    @register_view("acme.tiny_images")
    def not_blocks(f, ctx):
        return [{"kind": "table"}]

    with pytest.warns(RuntimeWarning, match="got dict"):
        (section,) = build_report(result).findings
    assert isinstance(section.blocks[-1], Gallery)


# ---------------------------------------------------------------------------------------------- JSON


def _kinds(data):
    if isinstance(data, dict):
        if "kind" in data:
            yield data["kind"]
        for v in data.values():
            yield from _kinds(v)
    elif isinstance(data, list):
        for v in data:
            yield from _kinds(v)


@pytest.mark.parametrize("which", ["example", "evaluated", "compared"])
def test_views_are_json_ready_blocks(which, request):
    result = request.getfixturevalue(which)
    view = build_report(result)
    data = json.loads(json.dumps(to_data(view), allow_nan=False))
    assert [f["check"] for f in data["findings"]] == [f.check for f in sorted(result.findings, key=lambda f: -f.severity.rank)]
    kinds = set(_kinds(data))
    assert kinds <= set(BLOCK_TYPES)
    # Each job's pictures are there as blocks: histograms and groups for the scan, charts for evaluate.
    expected = {"example": {"histogram", "gallery", "groups", "class_counts", "table"},
                "evaluated": {"reliability", "reliability_grid", "confusion", "bars", "table", "gallery", "groups"},
                "compared": {"verdict", "split_bar", "table", "groups"}}[which]
    assert expected <= kinds
    # The JSON's galleries name exactly the samples the HTML draws, in the same order.
    tiles = [t["sample"] for f in data["findings"] for b in f["blocks"] if b["kind"] == "gallery" for t in b["tiles"]]
    tiles += [t["sample"] for f in data["findings"] for b in f["blocks"] if b["kind"] == "groups"
              for g in b["groups"] for t in g["members"] + g["typical"]]
    drawn = [htmlmod.unescape(s) for s in re.findall(r'<div class="sid" title="([^"]*)"', render_html(result))]
    assert sorted(tiles) == sorted(drawn) and len(tiles) > 10


# ---------------------------------------------------------------------------------------------- escaping


def _hostile(result: Result) -> Result:
    """The same run with every sample id, label and split name, and every finding's title and message,
    carrying markup and quotes; plus a plugin finding whose check and family do."""
    features = result.features
    names: dict[str, str] = {}
    for column in ("label", "split"):
        if column in features.columns:
            names.update({str(v): f"{v}{EVIL}" for v in features[column].dropna().unique()})
    names.update({str(s): f"{s}{EVIL}" for s in features.index})

    def swap(obj):
        if isinstance(obj, str):
            return names.get(obj, obj)
        if isinstance(obj, dict):
            return {swap(k): swap(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [swap(v) for v in obj]
        return obj

    findings = []
    for f in result.findings:
        data = f.to_dict()
        kept = {k: data[k] for k in ("check", "issue", "family", "severity", "check_severity", "count")}
        data = {**swap(data), **kept, "title": f.title + EVIL, "message": f.message + EVIL}
        findings.append(Finding.from_dict(data))
    plugin = dataclasses.replace(findings[0], check=f"acme.x{EVIL}", family=f"acme{EVIL}", issue="tiny", groups=[])
    features = features.copy()
    features.index = [names[str(s)] for s in features.index]
    for column in ("label", "split"):
        if column in features.columns:
            features[column] = features[column].map(lambda v: names.get(str(v)) if isinstance(v, str) else v)
    source = f"/data/{EVIL}"
    renamed = {new: old for old, new in names.items()}
    thumbnails = _Renamed(result.thumbnails if result.thumbnails is not None else {}, renamed)  # the run's pictures, new ids
    return dataclasses.replace(result, findings=findings + [plugin], features=features, thumbnails=thumbnails,
                               dataset_summary={**result.dataset_summary, "source": source})


class _Renamed(dict):
    """A thumbnails mapping read through renamed sample ids (new id -> old id)."""

    def __init__(self, source, renamed: dict[str, str]):
        super().__init__()
        self.source, self.renamed = source, renamed

    def get(self, sample, default=None):
        return self.source.get(self.renamed.get(sample, sample), default)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


@pytest.mark.parametrize("which", ["example", "evaluated", "compared"])
def test_hostile_names_reach_every_view_escaped(which, request):
    result = _hostile(request.getfixturevalue(which))
    text = render_html(result)
    parser = _Tags()
    parser.feed(text)
    tags = {t for t, _ in parser.tags}
    assert "script" not in tags and '" onerror="' not in text and "<script" not in text.lower()
    assert not [(t, a) for t, attrs in parser.tags for a, _ in attrs if a.startswith("on")]
    assert all(v.startswith("data:image/jpeg;base64,") for t, attrs in parser.tags if t == "img" for a, v in attrs if a == "src")
    # Every finding's section, each view's tiles and tables included, shows the names, escaped.
    escaped = str(escape(EVIL))
    sections = re.findall(r'<section class="card finding[^"]*" id="([^"]+)">(.*?)</section>', text, flags=re.DOTALL)
    assert len(sections) == len(result.findings)
    for anchor, body in sections:
        assert escaped in body, anchor
    ids = [htmlmod.unescape(s) for s in re.findall(r'<div class="sid" title="([^"]*)"', text)]
    assert ids and all(s.endswith(EVIL) for s in ids)
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', text)) > 0   # the renamed samples still get pictures
    labels = [htmlmod.unescape(s) for s in re.findall(r'<td class="cls">([^<]*)</td>', text)]
    assert labels and all(s.endswith(EVIL) for s in labels)
    json.dumps(to_data(build_report(result)), allow_nan=False)


def test_every_block_kind_has_a_renderer():
    from importlib.resources import files

    source = (files("visionaudit.report") / "templates" / "report.html.j2").read_text(encoding="utf-8")
    assert set(re.findall(r"b\.kind == '(\w+)'", source)) == set(BLOCK_TYPES)


def test_a_crashed_check_renders_through_its_own_view(example):
    """A check that crashed reports `check_failed` with a traceback and nothing else; each registered view
    draws it (message and traceback) without failing over to the generic view."""
    view_for(example.findings[0])                                      # loads the built-in views
    keys = sorted(registry._VIEWS)
    crashed = [Finding(check=key if "." in key else f"{key}.some_check", issue="check_failed",
                       family=key.split(".")[0], title=f"Check {key} failed", severity=Severity.ERROR,
                       message="ValueError: boom", evidence={"traceback": "Traceback...\nValueError: boom"})
               for key in keys]
    assert len(crashed) >= 15
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view = build_report(dataclasses.replace(example, findings=crashed))
    for section in view.findings:
        assert [b.kind for b in section.blocks] == ["code"], section.check
        assert section.blocks[0].text.endswith("ValueError: boom")
