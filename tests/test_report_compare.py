"""The HTML report's pictures of a model comparison, of test metrics inflated by training copies and of
embedding-cluster slices, read back from the page and checked against numbers computed here from the case's
own predictions (tests/report_case.py :func:`compare_case`: real MNIST digits, two prediction files, byte
copies of training digits in test, inverted test digits)."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from report_case import C_BROKEN, C_FIXED, compare_case
from scipy import stats
from test_report import DATA_URI, _section

from visionaudit.findings import Finding, Severity
from visionaudit.report.html import render_html
from visionaudit.report.views.base import MAX_GROUP_MEMBERS

#: One row of an evidence table: its cells' text, each after the cell's strip (if any).
ROW = re.compile(r"<tr(?: class=\"(\w+)\")?>(.*?)</tr>", re.DOTALL)
CELL = re.compile(r"<td[^>]*>(?:<svg class=\"strip\".*?</svg> )?(.*?)</td>", re.DOTALL)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    pytest.importorskip("sklearn")
    return compare_case(tmp_path_factory.getbasetemp() / "compare_case")


@pytest.fixture(scope="module")
def page(compared) -> str:
    return render_html(compared["result"])


def _table(section: str, css: str) -> list[tuple[str, list[str]]]:
    body = re.search(rf'<table class="evtable {css}">.*?<tbody>(.*?)</tbody>', section, re.DOTALL).group(1)
    return [(cls, CELL.findall(cells)) for cls, cells in ROW.findall(body)]


def _groups(section: str) -> list[dict]:
    """Each drawn group: title, sample ids, split badges and thumbnails, in page order."""
    out = []
    for chunk in section.split('<div class="group">')[1:]:
        out.append({"title": re.search(r"<strong>(.*?)</strong>", chunk).group(1),
                    "ids": re.findall(r'<div class="sid" title="([^"]+)"', chunk),
                    "splits": re.findall(r'class="badge split split-(\w+)"', chunk),
                    "notes": re.findall(r'<div class="note">([^<]*)</div>', chunk),
                    "uris": re.findall(r'<img src="(data:image/jpeg;base64,[^"]+)"', chunk)})
    return out


def _test_arrays(compared):
    test = compared["split"] == "test"
    return (compared["ids"][test], compared["truth"][test], compared["probs_a"][test], compared["probs_b"][test])


def test_comparison_table_equals_metrics_computed_from_both_prediction_files(compared, page):
    from sklearn.metrics import f1_score, log_loss

    f = compared["result"].finding("model_comparison")
    ev = f.evidence
    _, y, pa, pb = _test_arrays(compared)
    section = _section(page, "model_comparison")
    rows = _table(section, "comparison")
    expected = {
        "accuracy": [(p.argmax(1) == y).mean() for p in (pa, pb)],
        "macro F1": [f1_score(y, p.argmax(1), average="macro") for p in (pa, pb)],
        "log-loss (lower is better)": [log_loss(y, p, labels=range(10)) for p in (pa, pb)],
    }
    assert [cells[0] for _, cells in rows] == list(expected)
    for (cls, cells), (name, (a, b)), key in zip(rows, expected.items(), ("accuracy", "f1_macro", "log_loss")):
        m = ev["metrics"][key]
        assert (float(cells[1]), float(cells[2])) == pytest.approx((a, b), abs=5e-4)
        diff, low, high, reach = re.fullmatch(r"([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\] \(axis \u00b1([\d.]+)\)",
                                              cells[3]).groups()
        assert float(diff) == pytest.approx(b - a, abs=5e-4)
        assert (float(low), float(high)) == pytest.approx((m["low"], m["high"]), abs=5e-4)
        assert float(reach) >= max(abs(m["low"]), abs(m["high"]))
        # The planted B fixes 24 and breaks 7 of A's answers: better on every metric, each CI clear of 0.
        assert cells[5] == "B better" and cls == ""
    # McNemar: exactly the planted discordant counts, the exact two-sided binomial p, the rest concordant.
    (_, mcnemar), = _table(section, "mcnemar")
    p = stats.binomtest(C_BROKEN, C_BROKEN + C_FIXED, 0.5).pvalue
    assert mcnemar[:4] == [str(C_BROKEN), str(C_FIXED), str(len(y) - C_BROKEN - C_FIXED), f"{p:.2g}"]
    assert mcnemar[4] == f"{ev['samples_needed']:,}"
    bars = re.findall(r'<rect class="s(left|right)" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*data-count="(\d+)"', section)
    assert [(side, int(n)) for side, _, _, n in bars] == [("left", C_BROKEN), ("right", C_FIXED)]
    assert float(bars[0][2]) / float(bars[1][2]) == pytest.approx(C_BROKEN / C_FIXED, rel=0.01)
    verdict = re.search(r'<p class="verdict (\w+)">([^<]*)</p>', section)
    assert verdict.group(1) == "good"
    assert verdict.group(2).startswith(f"B (b.csv) is significantly better than A (a.csv) (McNemar p = {p:.2g} &lt; 0.05;")


def test_comparison_galleries_are_the_samples_b_broke_and_fixed(compared, page):
    ids, y, pa, pb = _test_arrays(compared)
    section = _section(page, "model_comparison")
    assert '<div class="gallery">' not in section  # the two galleries replace the generic one
    broke, fixed = _groups(section)
    p_label = dict(zip(ids, pb[np.arange(len(y)), y]))
    worst_first = sorted(compared["broken"], key=p_label.get)
    assert broke["title"] == f"B broke {C_BROKEN}: only A gets them right (lowest B p(label) first)"
    assert broke["ids"] == worst_first and broke["notes"] == [f"B p(label) {p_label[s]:.3f}" for s in worst_first]
    assert fixed["title"] == f"B fixed {C_FIXED}: only B gets them right"
    assert fixed["ids"] == compared["fixed"] and set(broke["splits"] + fixed["splits"]) == {"test"}
    assert len(broke["uris"]) == C_BROKEN and len(fixed["uris"]) == C_FIXED
    # Checked against the arrays, not the finding: A right and B wrong exactly on the broken ones.
    a_right, b_right = pa.argmax(1) == y, pb.argmax(1) == y
    assert sorted(ids[a_right & ~b_right], key=p_label.get) == broke["ids"]
    assert list(ids[~a_right & b_right]) == fixed["ids"]


def test_comparison_not_significant_and_not_compared_render_in_words(compared):
    f = compared["result"].finding("model_comparison")
    ev = {**f.evidence, "significant": False, "verdict": "not significant", "samples_needed": 2832}
    section = _section(render_html(dataclasses.replace(compared["result"], findings=[dataclasses.replace(f, evidence=ev)])),
                       "model_comparison")
    assert re.search(r'<p class="verdict neutral">No significant difference between B \(b.csv\) and A \(a.csv\) '
                     r'\(McNemar p = [\d.]+ &lt; 0.05; accuracy B \u2212 A \+[\d.]+ \[[^\]]+\]\)\. To detect a difference '
                     r'this size with 80% power, a test set needs about 2,832 samples\.</p>', section)
    # No shared samples: only the message, no empty tables.
    lone = Finding(check="evaluation.model_comparison", issue="model_comparison", family="evaluation",
                   title="Models not compared: no shared samples", severity=Severity.WARNING,
                   message="B predicts 0 of the 410 test samples", evidence={"split": "test", "n": 0, "evaluated_a": 410})
    section = _section(render_html(dataclasses.replace(compared["result"], findings=[lone])), "model_comparison")
    assert "B predicts 0 of the 410 test samples" in section and "<table" not in section and "verdict" not in section


def test_leaked_pairs_side_by_side_and_deleaked_metrics(compared, page):
    f = compared["result"].finding("leaked_test_metrics")
    ev = f.evidence
    section = _section(page, "leaked_test_metrics")
    groups = _groups(section)
    by_copy = {g["ids"][0]: g for g in groups}
    # Every planted byte copy is a pair: the test copy, then its training original, each with its split badge;
    # the two thumbnails are the same picture (same bytes decoded), unlike any other pair's.
    for copy, source in compared["copies"].items():
        g = by_copy[copy]
        assert g["title"] == "exact copy of 1 training sample"
        assert g["ids"] == [copy, source] and g["splits"] == ["test", "train"]
        assert len(g["uris"]) == 2 and g["uris"][0] == g["uris"][1]
    assert len({g["uris"][0] for g in groups}) == len(groups) == len(f.groups)
    assert [g["ids"] for g in groups] == [[str(s) for s in raw["samples"][:MAX_GROUP_MEMBERS]] for raw in f.groups]
    for g, raw in zip(groups, f.groups):
        assert g["title"] == f"{raw['kind']} copy of {raw['sources']} training sample" + ("" if raw["sources"] == 1 else "s")
        assert g["splits"] == ["test"] + ["train"] * (len(g["ids"]) - 1)
    # The table: each metric on all test samples and without the copies, recomputed here for accuracy.
    ids, y, pa, _ = _test_arrays(compared)
    clean = ~np.isin(ids, f.samples)
    right = pa.argmax(1) == y
    rows = {cells[0]: (cls, cells[1:]) for cls, cells in _table(section, "deleaked")}
    _, (original, deleaked, inflation) = rows["accuracy"]
    acc = ev["metrics"]["accuracy"]
    assert original == f"{right.mean():.3f} [{acc['original']['low']:.3f}, {acc['original']['high']:.3f}]"
    assert deleaked == f"{right[clean].mean():.3f} [{acc['deleaked']['low']:.3f}, {acc['deleaked']['high']:.3f}]"
    assert inflation == (f"{right.mean() - right[clean].mean():+.3f} [{ev['accuracy_inflation_low']:+.3f}, "
                         f"{ev['accuracy_inflation_high']:+.3f}]")
    assert len(rows) == len(ev["metrics"])
    for key, m in ev["metrics"].items():
        name = {"f1_macro": "macro F1", "roc_auc_macro": "macro ROC-AUC", "log_loss": "log-loss (lower is better)",
                "balanced_accuracy": "balanced accuracy", "top_5_accuracy": "top-5 accuracy"}.get(key)
        if name is None:
            continue
        _, (original, deleaked, inflation) = rows[name]
        assert original.startswith(f"{m['original']['value']:.3f} [") and deleaked.startswith(f"{m['deleaked']['value']:.3f} [")
        assert inflation == f"{m['inflation']:+.3f}"
    # A strip for each metric with CIs, with the original CI as its band; none for bare point values.
    strips = re.findall(r"<tr[^>]*><td>([^<]+)</td><td class=\"num\">[^<]*</td><td[^>]*>(<svg.*?</svg>)?", section, re.DOTALL)
    with_ci = {_name for _name, svg in strips if svg}
    assert with_ci == {cells[0] for _, cells in _table(section, "deleaked") if "[" in cells[1]}
    assert section.count('class="sband"') == len(with_ci)


def test_cluster_slices_named_with_their_embedder_and_typical_members(compared, page):
    seg = compared["result"].finding("weak_segments")
    clusters = [g for g in seg.groups if g["kind"] == "cluster"]
    assert clusters, "the inverted digits make a weak embedding cluster"
    section = _section(page, "weak_segments")
    weak = _table(section, "segments")
    names = [cells[0] for _, cells in weak]
    drawn = {g["title"]: g for g in _groups(section)}
    inverted = set(compared["inverted"])
    for g in clusters:
        name = f"{g['slice']} (builtin embedding)"
        assert re.fullmatch(r"cluster \d+ of \d+ \(builtin embedding\)", name) and name in names
        # Examples (wrong first) then the members nearest the centre: all inverted digits here.
        shown = drawn[name]
        assert shown["ids"] == g["samples"][:MAX_GROUP_MEMBERS] + g["typical"][:MAX_GROUP_MEMBERS]
        assert set(shown["ids"]) <= inverted and len(shown["uris"]) == len(shown["ids"])
    # Every slice tested, cluster or not, is in the collapsed table with the same naming.
    tested = [cells[0] for _, cells in _table(section[section.index("<details"):], "segments")]
    assert sorted(tested) == sorted(r["slice"] + (" (builtin embedding)" if r["kind"] == "cluster" else "")
                                    for r in seg.evidence["slices"])
    # A finding from before cluster slices (no embedder, no typical) still renders.
    plain = [{k: v for k, v in g.items() if k not in ("embedder", "typical")} for g in seg.groups]
    old = dataclasses.replace(seg, groups=plain, thresholds={})
    text = _section(render_html(dataclasses.replace(compared["result"], findings=[old])), "weak_segments")
    assert f"<strong>{clusters[0]['slice']}</strong>" in text and "nearest the cluster" not in text
    assert len(DATA_URI.findall(text)) == sum(min(len(g["samples"]), MAX_GROUP_MEMBERS) for g in plain)
