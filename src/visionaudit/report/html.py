"""report.html: one self-contained page (inline CSS, SVG and base64 thumbnails) that opens offline.

The page reads only the :class:`~visionaudit.findings.Result`: a summary of findings by severity,
then one section per finding with its why/fix text, thresholds, a histogram of the judged property
with the cut-off drawn (property findings), and a gallery of thumbnails worst-first (or duplicate
clusters and leaked pairs side by side). Galleries are capped so the page stays a few MB for any
dataset size; the rest is in ``findings.json``. Thumbnails (sample id -> JPEG bytes) come from the
``thumbnails`` mapping given (a saved run folder's); those missing are decoded through
:func:`visionaudit.features.decode.open_for_display`, each file at most once per report, and added to
it, unless ``decode_missing`` is False (re-rendering a saved run opens no image file).
"""
from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from scipy import stats

from ..features import decode
from ..findings import Finding, Result, Severity
from .charts import (
    FEW,
    accuracy_bars,
    interval_strip,
    reliability_diagram,
    split_bar,
    symmetric_range,
    zoomed_range,
)

#: Most thumbnails shown for one finding, and most groups (clusters, pairs) shown for a group finding.
MAX_GALLERY = 48
MAX_GROUPS = 24
#: Most members of one group shown side by side.
MAX_GROUP_MEMBERS = 8
#: Most classes in the class-count table.
MAX_CLASSES = 60
#: Most rows of an evidence table (segments tested, properties...); the rest is in findings.json.
MAX_TABLE_ROWS = 60
#: Issues whose samples are a ranked list of their own next to their groups (label issues: every
#: candidate, and the differently labelled duplicate clusters among them), so both are drawn.
_GALLERY_AND_GROUPS = frozenset({"label_issues"})
#: Most samples in each of a model comparison's galleries (samples B fixed, samples B broke).
MAX_CHANGED = 24
#: Most per-class reliability diagrams drawn for one calibration finding.
MAX_CLASS_DIAGRAMS = 24
THUMB_SIZE = 112
_THUMB_QUALITY = 72
_HIST_BINS = 40
# Histogram plot area in SVG user units.
_PLOT_W, _PLOT_H, _PLOT_LEFT, _PLOT_TOP = 760.0, 140.0, 48.0, 22.0


@dataclass(frozen=True)
class Thumb:
    """One decoded thumbnail as a data URI, or the reason there is none."""

    uri: str | None
    width: int = 0
    height: int = 0
    error: str = ""


def write_html(
    result: Result,
    path: str | os.PathLike,
    *,
    max_gallery: int = MAX_GALLERY,
    max_groups: int = MAX_GROUPS,
    thumb_size: int = THUMB_SIZE,
    workers: int | None = None,
    thumbnails: dict[str, bytes] | None = None,
    decode_missing: bool = True,
) -> Path:
    """Write the self-contained HTML report and return its path.

    >>> from visionaudit import scan
    >>> result = scan("data/")                                   # doctest: +SKIP
    >>> write_html(result, "out/report.html")                    # doctest: +SKIP
    PosixPath('out/report.html')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(result, max_gallery=max_gallery, max_groups=max_groups, thumb_size=thumb_size,
                       workers=workers, thumbnails=thumbnails, decode_missing=decode_missing)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_html(
    result: Result,
    *,
    max_gallery: int = MAX_GALLERY,
    max_groups: int = MAX_GROUPS,
    thumb_size: int = THUMB_SIZE,
    workers: int | None = None,
    thumbnails: dict[str, bytes] | None = None,
    decode_missing: bool = True,
) -> str:
    """The report as one HTML string (see :func:`write_html` and the module's note on thumbnails)."""
    for name, value in (("max_gallery", max_gallery), ("max_groups", max_groups), ("thumb_size", thumb_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"invalid {name}={value!r}: expected a positive integer")
    table = _SampleTable(result.features)
    ordered = sorted(result.findings, key=lambda f: -f.severity.rank)
    sections = [_finding_section(i, f, table, result, max_gallery, max_groups)
                for i, f in enumerate(ordered)]
    wanted = list(dict.fromkeys(tile["sample"] for s in sections for tile in _tiles(s)))
    thumbnails = {} if thumbnails is None else thumbnails
    if decode_missing:
        thumbnails.update(_make_thumbnails(table, [s for s in wanted if s not in thumbnails], thumb_size, workers))
    thumbs = {s: _thumb(s, thumbnails.get(s), table) for s in wanted}
    for s in sections:
        for tile in _tiles(s):
            tile["thumb"] = thumbs[tile["sample"]]
    counts = {s.value: 0 for s in Severity}
    for f in ordered:
        counts[f.severity.value] += 1
    metrics = _model_metrics(result)
    if metrics is not None:
        # The calibration finding draws the same diagram with its CI and per-class ones: link there instead.
        metrics["calibration_anchor"] = next((s["anchor"] for s in sections if s["finding"].issue == "miscalibrated"), None)
    return _template().render(
        dataset=result.dataset_summary,
        run=result.run_info,
        counts=counts,
        sections=sections,
        checks=_checks_table(result, ordered),
        classes=_class_counts(result),
        metrics=metrics,
        predictions=_predictions_facts(result.run_info),
        undecodable=table.undecodable,
        thumb_size=thumb_size,
    )


# ---------------------------------------------------------------------------------------------
# Sample lookups


class _SampleTable:
    """Path, label, split and decode error of each sample id (tolerant of absent columns)."""

    def __init__(self, features: pd.DataFrame):
        self.features = features
        errors = features["error_kind"] if "error_kind" in features.columns else pd.Series(dtype=object)
        self.undecodable = int(errors.notna().sum())

    def get(self, sample: str, column: str) -> Any:
        if column not in self.features.columns or sample not in self.features.index:
            return None
        value = self.features.at[sample, column]
        return None if _missing(value) else value


def _missing(value: Any) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _tiles(section: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield from section["gallery"]
    for group in section["groups"]:
        yield from group["members"]
        yield from group["typical"]


def _make_thumbnails(table: _SampleTable, samples: list[str], size: int, workers: int | None) -> dict[str, bytes]:
    """JPEG thumbnails of ``samples`` that decode, each distinct file decoded once, in a thread pool
    (Pillow releases the GIL while decoding)."""
    by_path: dict[str, list[str]] = {}
    for sample in dict.fromkeys(samples):
        path = table.get(sample, "path")
        if path is not None:
            by_path.setdefault(str(path), []).append(sample)
    paths = list(by_path)
    if not paths:
        return {}
    n_workers = max(1, min(workers or (os.cpu_count() or 1), 8, len(paths)))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        images = list(pool.map(lambda p: _jpeg(decode.open_for_display(p, size)), paths))
    return {sample: data for path, data in zip(paths, images) if data is not None for sample in by_path[path]}


def _jpeg(im: Any) -> bytes | None:
    if im is None:
        return None
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=_THUMB_QUALITY, optimize=True)
    return buf.getvalue()


def _thumb(sample: str, data: bytes | None, table: _SampleTable) -> Thumb:
    """The tile's image as a data URI, or why there is none."""
    if data is None:
        if table.get(sample, "path") is None:
            return Thumb(None, error="not in the dataset table")
        error = table.get(sample, "error")
        return Thumb(None, error=str(error) if error is not None else "could not be decoded for display")
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
    return Thumb("data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"), width, height)


# ---------------------------------------------------------------------------------------------
# Finding sections


def _finding_section(index: int, f: Finding, table: _SampleTable, result: Result,
                     max_gallery: int, max_groups: int) -> dict[str, Any]:
    features = result.features
    evidence = f.evidence or {}
    prop = evidence.get("property") if isinstance(evidence.get("property"), str) else None
    section: dict[str, Any] = {
        "anchor": f"finding-{index + 1}-{f.issue}",
        "finding": f,
        "count": f.count,
        "thresholds": [(k, _fmt_value(v)) for k, v in (f.thresholds or {}).items()],
        "evidence": _evidence_items(evidence),
        "traceback": evidence.get("traceback") if isinstance(evidence.get("traceback"), str) else None,
        "histogram": None,
        "gallery": [],
        "gallery_more": 0,
        "groups": [],
        "groups_more": 0,
        "blocks": [],
    }
    if prop is not None and prop in features.columns:
        section["histogram"] = property_histogram(
            pd.to_numeric(features[prop], errors="coerce").to_numpy(dtype=float),
            evidence.get("cutoff"), str(evidence.get("direction", "below")), prop,
            upper=evidence.get("upper_cutoff"))
    if f.groups:
        shown = f.groups[:max_groups]
        section["groups"] = [_group(g, table) for g in shown]
        section["groups_more"] = len(f.groups) - len(shown)
    if not f.groups or f.issue in _GALLERY_AND_GROUPS:
        # Worst first; samples without a score keep the check's order, after the scored ones.
        ordered = sorted(f.samples, key=lambda s: _score_key(f.scores.get(s)))
        shown = ordered[:max_gallery]
        section["gallery"] = [_tile(s, table, f.scores.get(s), prop) for s in shown]
        section["gallery_more"] = len(ordered) - len(shown)
    extra = _EXTRAS.get(f.issue)
    if extra is not None:
        extra(section, f, result)
    return section


def _score_key(score: Any) -> float:
    return float(score) if isinstance(score, (int, float)) and not math.isnan(score) else math.inf


def _tile(sample: str, table: _SampleTable, score: Any, prop: str | None,
          label: Any = None, split: Any = None) -> dict[str, Any]:
    value = table.get(sample, prop) if prop else None
    return {
        "sample": sample,
        "score": None if _score_key(score) == math.inf else float(score),
        "label": label if label is not None else table.get(sample, "label"),
        "split": split if split is not None else table.get(sample, "split"),
        "property": prop if value is not None else None,
        "value": _fmt_num(value) if isinstance(value, (int, float, np.number)) else None,
        "change": None,
        "note": None,
        "thumb": None,
    }


def _group(group: dict[str, Any], table: _SampleTable) -> dict[str, Any]:
    samples = [str(s) for s in group.get("samples", [])]
    # The group's own labels/splits win (a check may report what it compared); else the table's.
    labels = [v if v is not None else table.get(s, "label") for s, v in zip(samples, _aligned(group.get("labels"), len(samples)))]
    splits = [v if v is not None else table.get(s, "split") for s, v in zip(samples, _aligned(group.get("splits"), len(samples)))]
    members = [_tile(s, table, None, None, label=labels[i], split=splits[i])
               for i, s in enumerate(samples[:MAX_GROUP_MEMBERS])]
    distinct_labels = {str(v) for v in labels if v is not None}
    distinct_splits = {str(v) for v in splits if v is not None}
    facts = []
    if group.get("kind"):
        facts.append(str(group["kind"]))
    for key in ("distance", "similarity"):
        if isinstance(group.get(key), (int, float)):
            facts.append(f"{key} {_fmt_num(group[key])}")
    return {
        "title": None,
        "size": len(samples),
        "facts": facts,
        "labels_disagree": len(distinct_labels) > 1,
        "splits": sorted(distinct_splits) if len(distinct_splits) > 1 else [],
        "members": members,
        "more": len(samples) - len(members),
        "members_title": None,
        "typical": [],
        "typical_title": None,
    }


def _aligned(values: Any, n: int) -> list[Any]:
    values = list(values) if isinstance(values, (list, tuple)) else []
    return [values[i] if i < len(values) and not _missing(values[i]) else None for i in range(n)]


def _evidence_items(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """Scalar evidence worth a line in the report; bulky per-sample maps stay in findings.json."""
    skip = {"property", "cutoff", "direction", "errors", "traceback"}
    items = []
    for key, value in evidence.items():
        if key in skip:
            continue
        if isinstance(value, (str, int, float, bool, np.number)) or value is None:
            items.append((key, _fmt_value(value)))
        elif isinstance(value, (list, dict)) and 0 < len(value) <= 12 and all(
                isinstance(v, (str, int, float, bool, np.number)) or v is None
                for v in (value.values() if isinstance(value, dict) else value)):
            items.append((key, _fmt_value(value)))
    return items


def _fmt_num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _fmt_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt_value(v) for v in value)
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return _fmt_num(value)
    return "none" if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# Property histogram (inline SVG geometry; the template draws it)


def property_histogram(values: np.ndarray, cutoff: Any, direction: str, name: str,
                       bins: int = _HIST_BINS, upper: Any = None) -> dict[str, Any] | None:
    """Bars, axis ticks and the cut-off line(s) of a histogram of ``values``, in SVG units.

    The x axis is logarithmic when the values span decades and are right-skewed (sharpness on a set
    with blurred images): see :func:`_wants_log_scale`; values <= 0 then fall in the first bar. One bin
    edge is moved onto the cut-off, so the bars on the flagged side (``direction`` 'below' or 'above'
    the cut-off) hold exactly the flagged values. A two-sided finding (odd image size) also passes
    ``upper``: values below ``cutoff`` or above ``upper`` are flagged, and both lines are drawn.
    Returns None when there is nothing to draw.

    >>> h = property_histogram(np.array([1.0, 2, 3, 10]), 2.5, "below", "brightness")
    >>> sum(b["count"] for b in h["bars"] if b["flagged"])
    2
    >>> property_histogram(np.array([1.0, 2, 3, 10]), 1.5, "below", "size", upper=5.0)["flagged"]
    2
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0 or not isinstance(cutoff, (int, float, np.number)) or not math.isfinite(float(cutoff)):
        return None
    cutoff = float(cutoff)
    two_sided = isinstance(upper, (int, float, np.number)) and math.isfinite(float(upper)) and float(upper) > cutoff
    upper = float(upper) if two_sided else None
    log = _wants_log_scale(v) and cutoff > 0
    positive = v[v > 0]
    if log:
        floor = min(float(positive.min()), cutoff)
        t, c = np.log10(np.maximum(v, floor)), math.log10(cutoff)
    else:
        t, c = v, cutoff
    cu = None if upper is None else (math.log10(upper) if log else upper)
    lo, hi = min(float(t.min()), c), max(float(t.max()), c if cu is None else cu)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    moved = set()
    for cut in (c, cu):
        if cut is not None and lo < cut < hi:
            k = int(np.argmin(np.abs(edges[1:-1] - cut))) + 1
            if k not in moved:
                edges[k] = cut
                moved.add(k)
    counts, _ = np.histogram(t, edges)
    below = direction != "above" or two_sided

    def x(val: float) -> float:
        return round(_PLOT_LEFT + (val - lo) / (hi - lo) * _PLOT_W, 1)

    top = max(int(counts.max()), 1)
    bars = []
    for i, n in enumerate(counts):
        h = 0.0 if n == 0 else max(1.5, n / top * _PLOT_H)
        flagged = edges[i + 1] <= c if below else edges[i] >= c
        if cu is not None:
            flagged = flagged or edges[i] >= cu
        bars.append({"x": x(edges[i]), "w": max(round(x(edges[i + 1]) - x(edges[i]) - 0.6, 1), 0.4),
                     "y": round(_PLOT_TOP + _PLOT_H - h, 1), "h": round(h, 1), "count": int(n),
                     "flagged": bool(flagged),
                     "range": f"{_fmt_num(_untransform(edges[i], log))} to {_fmt_num(_untransform(edges[i + 1], log))}"})
    ticks = _log_ticks(lo, hi) if log else _linear_ticks(lo, hi)
    cut_x = x(c)
    flagged_n = int(sum(b["count"] for b in bars if b["flagged"]))
    shade = {"x": _PLOT_LEFT if below else cut_x,
             "w": round((cut_x - _PLOT_LEFT) if below else (_PLOT_LEFT + _PLOT_W - cut_x), 1)}
    cuts = [{"x": cut_x, "label": f"cut-off {_fmt_num(cutoff)}"}]
    shades = [shade]
    if cu is not None:
        cuts.append({"x": x(cu), "label": f"upper cut-off {_fmt_num(upper)}"})
        shades.append({"x": x(cu), "w": round(_PLOT_LEFT + _PLOT_W - x(cu), 1)})
    return {
        "name": name,
        "log": log,
        "bars": bars,
        "ticks": [{"x": x(tv), "label": label} for tv, label in ticks],
        "cutoff": _fmt_num(cutoff),
        "upper": None if upper is None else _fmt_num(upper),
        "cutoff_x": cut_x,
        "shade_x": shade["x"],
        "shade_w": shade["w"],
        "cuts": cuts,
        "shades": shades,
        "direction": "below" if below else "above",
        "total": int(v.size),
        "flagged": flagged_n,
        "nonpositive": int((v <= 0).sum()) if log else 0,
        "ymax": top,
        "plot": {"left": _PLOT_LEFT, "top": _PLOT_TOP, "w": _PLOT_W, "h": _PLOT_H,
                 "bottom": _PLOT_TOP + _PLOT_H, "right": _PLOT_LEFT + _PLOT_W,
                 "width": _PLOT_LEFT + _PLOT_W + 16, "height": _PLOT_TOP + _PLOT_H + 24},
    }


def _wants_log_scale(v: np.ndarray) -> bool:
    """True for non-negative values spanning 1.5+ decades whose logarithm is less skewed than they
    are (sharpness, noise): a linear axis would squeeze most of them into the first bars."""
    positive = v[v > 0]
    if v.min() < 0 or positive.size < 3:
        return False
    p1, p99 = np.percentile(positive, [1, 99])
    if p99 < 30 * p1:
        return False
    return bool(abs(stats.skew(np.log10(positive))) < abs(stats.skew(positive)))


def _untransform(t: float, log: bool) -> float:
    return 10.0 ** t if log else t


def _linear_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    raw = (hi - lo) / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [(t, _fmt_num(round(t, 10))) for t in np.arange(start, hi + step * 1e-9, step)]


def _log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    decades = range(math.ceil(lo), math.floor(hi) + 1)
    every = max(1, math.ceil(len(decades) / 8))  # keep labels from overlapping on a wide range
    return [(float(e), _fmt_num(10.0 ** e) if e >= -4 else f"1e{e}") for e in decades[::every]]


# ---------------------------------------------------------------------------------------------
# Checks run and class counts


def _checks_table(result: Result, findings: list[Finding]) -> list[dict[str, Any]]:
    seconds = result.run_info.get("check_seconds") or {}
    rows = []
    for check in list(seconds) + sorted({f.check for f in findings} - set(seconds)):
        mine = [f for f in findings if f.check == check]
        worst = max(mine, key=lambda f: f.severity.rank).severity.value if mine else None
        rows.append({"check": check, "findings": len(mine), "worst": worst, "seconds": seconds.get(check)})
    return rows


def _class_counts(result: Result) -> dict[str, Any] | None:
    """Per-split class counts, with bar widths relative to the largest share of any split.

    The balance check's counts are used when it ran (they count objects in detection datasets);
    otherwise image labels are counted from the feature table.
    """
    features = result.features
    found = result.finding("class_counts")
    unlabelled, unit = 0, "images"
    if found is not None and found.evidence.get("counts"):
        table = pd.DataFrame(found.evidence["counts"]).fillna(0).astype(int)
        table.index = table.index.astype(str)
        unit = str(found.evidence.get("unit", "images"))
        if unit == "images" and "label" in features.columns:
            unlabelled = int(features["label"].isna().sum())
    else:
        if "label" not in features.columns or not features["label"].notna().any():
            return None
        labels = features["label"].astype(object).where(features["label"].notna(), None)
        labelled = labels.notna()
        split = (features["split"] if "split" in features.columns else pd.Series(None, index=features.index, dtype=object))
        split = split.astype(object).where(split.notna(), "(no split)")
        table = pd.crosstab(labels[labelled].astype(str), split[labelled].astype(str))
        unlabelled = int((~labelled).sum())
    if table.empty:
        return None
    order = [s for s in ("train", "val", "test") if s in table.columns]
    table = table[order + sorted(c for c in table.columns if c not in order)]
    table = table.loc[table.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    totals = table.sum(axis=0)
    shares = table / totals.replace(0, 1)
    peak = float(shares.to_numpy().max()) or 1.0
    shown = table.iloc[:MAX_CLASSES]
    rows = []
    for cls in shown.index:
        cells = []
        for s in table.columns:
            n = int(table.at[cls, s])
            share = float(shares.at[cls, s])
            cells.append({"count": n, "pct": f"{100 * share:.1f}", "width": round(100 * share / peak, 1)})
        rows.append({"label": cls, "cells": cells, "missing": any(c["count"] == 0 for c in cells)})
    return {
        "splits": [{"name": s, "total": int(totals[s])} for s in table.columns],
        "rows": rows,
        "more": len(table) - len(shown),
        "unlabelled": unlabelled,
        "unit": unit,
    }


def _model_metrics(result: Result) -> dict[str, Any] | None:
    """The evaluation.metrics finding as tables: each metric per split with its CI, and the evaluation
    split's per-class precision/recall/F1 (None when the run judged no predictions)."""
    found = result.finding("metrics")
    splits = found.evidence.get("splits") if found is not None else None
    if not splits:
        return None
    names = list(splits)
    main = found.evidence.get("evaluation_split", names[0])
    rows = [{"metric": metric.replace("_", " "), "cells": [splits[s]["metrics"].get(metric, {}) for s in names]}
            for metric in splits[main]["metrics"]]
    ece = splits[main].get("ece")
    reliability = reliability_diagram(splits[main].get("reliability") or [], ece=ece,
                                      title=f"{main}: ECE {ece:.3f}" if isinstance(ece, (int, float)) else main)
    return {"splits": [{"name": s, "n": splits[s]["n"]} for s in names], "rows": rows, "main": main,
            "confidence": found.evidence.get("confidence", 0.95), "per_class": splits[main]["per_class"],
            "confusion": _confusion_heatmap(found.evidence.get("classes"), splits[main].get("confusion")),
            "reliability": reliability, "calibration_anchor": None}


def _confusion_heatmap(classes: list[str] | None, counts: list[list[int]] | None) -> dict[str, Any] | None:
    """Confusion-matrix cells (true class rows, predicted columns) shaded by the row-normalised rate.

    Up to MAX_CLASSES classes; larger matrices stay in findings.json only.
    """
    if not classes or not counts or len(classes) > MAX_CLASSES:
        return None
    m = np.asarray(counts, dtype=float)
    rates = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    rows = [{"label": str(c), "total": int(m[i].sum()),
             "cells": [{"count": int(m[i, j]), "rate": float(rates[i, j]), "pct": f"{100 * rates[i, j]:.0f}",
                        "diagonal": i == j} for j in range(len(classes))]}
            for i, c in enumerate(classes)]
    return {"classes": [str(c) for c in classes], "rows": rows}


# ---------------------------------------------------------------------------------------------
# Evaluate findings: the tables and charts each one adds to its section (keyed by issue)


def _cell(text: Any, strip: dict[str, Any] | None = None, num: bool = False) -> dict[str, Any]:
    return {"text": text if isinstance(text, str) else _fmt_value(text), "strip": strip, "num": num}


def _pct(v: Any) -> str:
    return f"{100 * float(v):.1f}%" if isinstance(v, (int, float, np.number)) and math.isfinite(float(v)) else "n/a"


def _level(confidence: Any) -> str:
    """A confidence level as a whole percentage: 0.95 -> '95%'."""
    return f"{100 * float(confidence):.0f}%"


def _p(v: Any) -> str:
    return f"{float(v):.2g}" if isinstance(v, (int, float, np.number)) and math.isfinite(float(v)) else "n/a"


def _table_block(title: str | None, columns: list[tuple[str, bool]], rows: list[dict[str, Any]], *,
                 total: int | None = None, collapsed: bool = False, note: str | None = None,
                 css: str = "") -> dict[str, Any]:
    shown = rows[:MAX_TABLE_ROWS]
    return {"kind": "table", "title": title, "columns": [{"name": n, "num": num} for n, num in columns],
            "rows": shown, "more": (total if total is not None else len(rows)) - len(shown),
            "collapsed": collapsed, "note": note, "css": css}


def _label_issues_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    rows = {str(r.get("sample_id")): r for r in f.evidence.get("candidates", []) if isinstance(r, dict)}
    for tile in section["gallery"]:
        row = rows.get(tile["sample"])
        if row and row.get("suggested_label") is not None:
            tile["change"] = {"given": row.get("given_label", tile["label"]), "verb": "suggested",
                              "other": row["suggested_label"], "prob": None,
                              "why": row["reason"] if isinstance(row.get("reason"), str) else None}
    for g, raw in zip(section["groups"], f.groups):
        if raw.get("suggested_label") is not None:
            g["facts"].append(f"suggested {raw['suggested_label']}")


def _confident_errors_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    rows = {str(r.get("sample_id")): r for r in f.evidence.get("worst", []) if isinstance(r, dict)}
    for tile in section["gallery"]:
        row = rows.get(tile["sample"])
        if row:
            tile["change"] = {"given": row.get("given_label"), "verb": "predicted",
                              "other": row.get("predicted_label"), "prob": row.get("probability"), "why": None}


def _confused_pairs_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    rows = []
    for g, raw in zip(section["groups"], f.groups):
        true, pred = raw.get("true"), raw.get("predicted")
        g["title"] = f"true {true} \u2192 predicted {pred}"
        g["facts"] = [f"{raw.get('count')} sample(s)", f"{_pct(raw.get('share'))} of true {true}"]
        if raw.get("reverse"):
            g["facts"].append(f"{raw['reverse']} the other way")
        g["size"] = int(raw.get("count", g["size"]))
        g["more"] = g["size"] - len(g["members"])
        for tile, conf in zip(g["members"], raw.get("confidence") or []):
            tile["note"] = f"p({pred}) {conf:.3f}"
        rows.append({"cells": [_cell(str(true)), _cell(str(pred)), _cell(raw.get("count"), num=True),
                               _cell(_pct(raw.get("share")), num=True), _cell(raw.get("support"), num=True),
                               _cell(raw.get("reverse", 0), num=True)], "cls": ""})
    section["blocks"].append(_table_block(
        None, [("true class", False), ("predicted", False), ("count", True), ("share of true class", True),
               ("true class samples", True), ("the other way", True)], rows, css="pairs"))


def _slice_name(r: dict[str, Any], embedder: Any) -> str:
    """A slice's name; an embedding cluster's says which embedder's space it is a cluster of."""
    name = str(r.get("slice"))
    if r.get("kind") == "cluster":
        which = r.get("embedder") or embedder
        return f"{name} ({which} embedding)" if which else name
    return name


def _weak_segments_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    ev = f.evidence
    overall = ev.get("overall_accuracy")
    embedder = (f.thresholds or {}).get("embedder")
    table = _SampleTable(result.features)
    for g, raw in zip(section["groups"], f.groups):
        ci = raw.get("ci") or [None, None]
        g["title"] = _slice_name(raw, embedder)
        g["size"] = int(raw.get("size", g["size"]))
        g["facts"] = [f"{g['size']:,} samples", f"accuracy {_pct(raw.get('accuracy'))} [{_pct(ci[0])}, {_pct(ci[1])}]",
                      f"q = {_p(raw.get('q'))}", "examples: wrong first"]
        g["more"] = 0
        g["labels_disagree"] = False  # a slice holds every class; differing labels are expected
        typical = [str(s) for s in raw.get("typical") or []][:MAX_GROUP_MEMBERS]
        if typical:
            # A cluster has no name a person wrote: its members nearest the centre show what it holds.
            g["facts"].pop()
            g["members_title"] = "examples: wrong first"
            g["typical"] = [_tile(s, table, None, None) for s in typical]
            g["typical_title"] = "typical: nearest the cluster's centre"

    def row(r: dict[str, Any]) -> dict[str, Any]:
        ci = r.get("ci") or [None, None]
        strip = interval_strip(r.get("accuracy"), ci[0], ci[1], ref=overall)
        return {"cells": [_cell(_slice_name(r, embedder)), _cell(str(r.get("kind", ""))), _cell(r.get("size"), num=True),
                          _cell(_pct(r.get("accuracy")), num=True), _cell(f"{_pct(ci[0])} to {_pct(ci[1])}", strip),
                          _cell(_pct(r.get("drop")), num=True), _cell(_p(r.get("p")), num=True),
                          _cell(_p(r.get("q")), num=True)],
                "cls": "flagged" if r.get("flagged", True) else ""}

    level = _level(f.thresholds.get("confidence", 0.95))
    columns = [("slice", False), ("kind", False), ("size", True), ("accuracy", True), (f"{level} CI (| = overall)", False),
               ("drop", True), ("p", True), ("q", True)]
    section["blocks"].append(_table_block(
        f"Weak slices (overall accuracy {_pct(overall)})", columns, [row(r) for r in f.groups], css="segments"))
    tested = [r for r in ev.get("slices", []) if isinstance(r, dict)]
    if tested:
        section["blocks"].append(_table_block(
            f"All {len(tested)} slices tested ({ev.get('test', 'one-sided test')}, {ev.get('correction', '')} q)",
            columns, [row(r) for r in sorted(tested, key=lambda r: (r.get('q', 1.0), r.get('slice', '')))],
            collapsed=True, css="segments"))


def _model_vs_baseline_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    ev = f.evidence
    table = [r for r in ev.get("baselines", []) if isinstance(r, dict)]
    reach = symmetric_range([v for r in table for v in (r.get("low"), r.get("high"), r.get("difference"))])
    rows = []
    for r in table:
        strip = interval_strip(r.get("difference"), r.get("low"), r.get("high"), lo=-reach, hi=reach, ref=0.0)
        rows.append({"cells": [_cell(str(r.get("baseline"))), _cell(str(r.get("description", ""))),
                               _cell(r.get("n"), num=True), _cell(f"{float(r.get('accuracy', math.nan)):.3f}", num=True),
                               _cell(f"{float(r.get('model_accuracy', math.nan)):.3f}", num=True),
                               _cell(f"{float(r.get('difference', math.nan)):+.3f} [{float(r.get('low', math.nan)):+.3f}, "
                                     f"{float(r.get('high', math.nan)):+.3f}]", strip),
                               _cell(_p(r.get("p_value")), num=True), _cell(str(r.get("verdict", "")))],
                     "cls": "" if r.get("verdict") == "better" else "flagged"})
    level = _level(ev.get("confidence", 0.95))
    section["blocks"].append(_table_block(
        f"Model vs baselines on {ev.get('split', 'the evaluation split')} (model accuracy "
        f"{float(ev.get('model_accuracy', math.nan)):.3f})",
        [("baseline", False), ("what it does", False), ("n", True), ("baseline accuracy", True),
         ("model accuracy", True), (f"difference, {level} CI (axis \u00b1{reach:g}, | = 0)", False), ("p", True),
         ("verdict", False)], rows, css="baselines"))


def _property_shortcut_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    ev = f.evidence
    majority = ev.get("majority_rate")
    rows = [{"cells": [_cell("all properties together"), _cell(f"{float(ev.get('accuracy', math.nan)):.3f}", num=True),
                       _cell(f"[{float(ev.get('accuracy_low', math.nan)):.3f}, {float(ev.get('accuracy_high', math.nan)):.3f}]",
                             interval_strip(ev.get("accuracy"), ev.get("accuracy_low"), ev.get("accuracy_high"), ref=majority))],
             "cls": "flagged"}]
    for r in ev.get("top_properties", []):
        acc = r.get("accuracy_alone")
        rows.append({"cells": [_cell(str(r.get("property"))), _cell(f"{float(acc):.3f}", num=True),
                               _cell("", interval_strip(acc, None, None, ref=majority))], "cls": ""})
    section["blocks"].append(_table_block(
        f"Cross-validated accuracy from image properties only ({ev.get('model', 'model')}, {ev.get('folds', '?')}-fold) "
        f"vs always '{ev.get('majority_class')}' ({float(majority or math.nan):.3f}, the | mark)",
        [("properties", False), ("accuracy", True), ("on 0-1, with CI (| = majority rate)", False)], rows,
        css="shortcut"))
    medians = ev.get("class_medians") or {}
    props = [str(r.get("property")) for r in ev.get("top_properties", [])]
    if medians and props:
        rows = [{"cells": [_cell(str(c))] + [_cell(_fmt_num(vals.get(p)), num=True) for p in props], "cls": ""}
                for c, vals in medians.items()]
        section["blocks"].append(_table_block("Median of each top property per class",
                                              [("class", False)] + [(p, True) for p in props], rows, css="medians"))


def _fitting_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    ev = f.evidence
    name = ev.get("split")
    metrics = result.finding("metrics")
    splits = (metrics.evidence.get("splits") or {}) if metrics is not None else {}
    majority = ev.get("majority_rate") or {}
    rows = []
    for split, value in (("train", ev.get("train_accuracy")), (name, ev.get(f"{name}_accuracy"))):
        ci = ((splits.get(split) or {}).get("metrics") or {}).get("accuracy") or {}
        rows.append({"label": f"{split} ({(ev.get('n') or {}).get(split, '?')})", "value": value,
                     "low": ci.get("low"), "high": ci.get("high"), "ref": majority.get(split)})
    chart = accuracy_bars(rows)
    if chart is not None:
        chart["kind"] = "bars"
        level = _level(metrics.evidence.get("confidence", 0.95) if metrics else 0.95)
        chart["caption"] = (f"Accuracy with {level} bootstrap "
                            f"CIs; dashed mark: always predicting the split's most common class. Gap train - {name}: "
                            f"{float(ev.get('gap', math.nan)):.3f} [{float(ev.get('gap_low', math.nan)):.3f}, "
                            f"{float(ev.get('gap_high', math.nan)):.3f}].")
        section["blocks"].append(chart)


def _calibration_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    ev = f.evidence
    ci = ""
    if isinstance(ev.get("ece_low"), (int, float)) and isinstance(ev.get("ece_high"), (int, float)):
        ci = f" [{ev['ece_low']:.3f}, {ev['ece_high']:.3f}]"
    overall = reliability_diagram(ev.get("reliability") or [], ece=ev.get("ece"),
                                  title=f"{ev.get('split', '')}: ECE {float(ev.get('ece', math.nan)):.3f}{ci}")
    if overall is not None:
        overall["kind"] = "reliability"
        section["blocks"].append(overall)
    per_class = [r for r in ev.get("per_class") or [] if isinstance(r, dict)]
    per_class.sort(key=lambda r: -float(r.get("ece") or 0.0))
    diagrams = []
    for r in per_class[:MAX_CLASS_DIAGRAMS]:
        d = reliability_diagram(r.get("reliability") or [], ece=r.get("ece"), small=True,
                                title=f"{r.get('class')}: ECE {float(r.get('ece', math.nan)):.3f} (n={r.get('support')})",
                                x_label="p(class)", y_label="share of class")
        if d is not None:
            diagrams.append(d)
    if diagrams:
        skipped = ev.get("per_class_skipped") or []
        section["blocks"].append({
            "kind": "reliability_grid", "diagrams": diagrams, "more": len(per_class) - len(diagrams),
            "caption": (f"Per class, one-vs-rest, least calibrated first: x = predicted probability of the class, "
                        f"y = share of the bin's samples that are the class; faded bars hold fewer than {FEW} samples. "
                        + (f"{len(skipped)} class(es) with fewer than {f.thresholds.get('min_class_samples', '?')} samples "
                           f"not drawn." if skipped else ""))})


#: Metric names of the compare and hygiene findings' evidence keys (the report does not import the checks).
_METRIC_NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "f1_macro": "macro F1",
                 "f1_micro": "micro F1", "precision_macro": "macro precision", "recall_macro": "macro recall",
                 "roc_auc_macro": "macro ROC-AUC", "pr_auc_macro": "macro PR-AUC", "log_loss": "log-loss", "ece": "ECE"}
#: Metrics that are not proportions in [0, 1] (their strips are not clipped to it).
_UNBOUNDED = frozenset({"log_loss"})
#: Metrics where lower is better.
_LOWER_IS_BETTER = frozenset({"log_loss", "ece"})


def _metric_name(key: str) -> str:
    if key.startswith("top_") and key.endswith("_accuracy"):
        return f"top-{key[4:-9]} accuracy"
    return _METRIC_NAMES.get(key, key.replace("_", " "))


def _num_or_nan(v: Any) -> float:
    return float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else math.nan


def _f3(v: Any) -> str:
    x = _num_or_nan(v)
    return f"{x:.3f}" if math.isfinite(x) else "n/a"


def _signed(v: Any) -> str:
    x = _num_or_nan(v)
    return f"{x:+.3f}" if math.isfinite(x) else "n/a"


def _with_ci(value: Any, low: Any, high: Any, fmt: Any = _f3) -> str:
    text = fmt(value)
    if math.isfinite(_num_or_nan(low)) and math.isfinite(_num_or_nan(high)):
        text += f" [{fmt(low)}, {fmt(high)}]"
    return text


def _has_ci(row: dict[str, Any]) -> bool:
    return math.isfinite(_num_or_nan(row.get("low"))) and math.isfinite(_num_or_nan(row.get("high")))


def _model_label(source: Any, fallback: str) -> str:
    return f"{fallback} ({Path(str(source)).name})" if source else fallback


def _favours(low: Any, high: Any, higher_is_better: bool) -> str:
    """Which model a difference B - A favours: by its CI, not its point estimate."""
    lo, hi = _num_or_nan(low), _num_or_nan(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    if lo > 0 or hi < 0:
        return "B better" if (lo > 0) == higher_is_better else "A better"
    return "no clear difference (CI holds 0)"


def _changed_group(title: str, samples: list[str], table: _SampleTable, scores: dict[str, Any],
                   note: str, worst_first: bool) -> dict[str, Any]:
    """A gallery of samples one model got right and the other wrong, ordered by B's probability of the label."""
    ordered = sorted(samples, key=lambda s: _score_key(scores.get(s)) * (1 if worst_first else -1))
    members = []
    for s in ordered[:MAX_CHANGED]:
        tile = _tile(s, table, None, None)
        score = scores.get(s)
        if _score_key(score) != math.inf:
            tile["note"] = f"{note} {float(score):.3f}"
        members.append(tile)
    return {"title": title, "size": len(samples), "facts": [], "labels_disagree": False, "splits": [],
            "members": members, "more": len(samples) - len(members), "members_title": None, "typical": [],
            "typical_title": None}


def _model_comparison_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    ev = f.evidence
    if "metrics" not in ev:
        return  # nothing compared (no shared samples): the message says why
    level = _level(ev.get("confidence", 0.95))
    alpha = 1.0 - float(ev.get("confidence", 0.95))
    a, b = _model_label(ev.get("a"), "A"), _model_label(ev.get("b"), "B")
    n = int(ev.get("n") or 0)
    rows = []
    for key, m in (ev.get("metrics") or {}).items():
        if not isinstance(m, dict):
            continue
        diff, low, high = m.get("difference"), m.get("low"), m.get("high")
        reach = symmetric_range([diff, low, high])
        higher = bool(m.get("higher_is_better", key not in _LOWER_IS_BETTER))
        favours = _favours(low, high, higher)
        rows.append({"cells": [_cell(_metric_name(key) + ("" if higher else " (lower is better)")),
                               _cell(_f3(m.get("a")), num=True), _cell(_f3(m.get("b")), num=True),
                               _cell(f"{_with_ci(diff, low, high, _signed)} (axis \u00b1{reach:g})",
                                     interval_strip(diff, low, high, lo=-reach, hi=reach, ref=0.0)),
                               _cell(_p(m.get("bootstrap_p")), num=True), _cell(favours)],
                     "cls": "flagged" if favours == "A better" else ""})
    section["blocks"].append(_table_block(
        f"{b} vs {a} on the {ev.get('split', 'evaluation')} split's {n:,} shared samples (paired bootstrap, {level} CIs)",
        [("metric", False), ("A", True), ("B", True), (f"B \u2212 A, {level} CI (| = 0)", False), ("bootstrap p", True),
         ("by the CI", False)], rows, css="comparison"))
    test = ev.get("mcnemar") or {}
    only_a, only_b = int(test.get("only_a_right") or 0), int(test.get("only_b_right") or 0)
    p = _num_or_nan(test.get("p_value"))
    needed = ev.get("samples_needed")
    row = {"cells": [_cell(only_a, num=True), _cell(only_b, num=True), _cell(max(n - only_a - only_b, 0), num=True),
                     _cell(_p(p), num=True), _cell("n/a" if needed is None else needed, num=True)],
           "cls": ""}
    section["blocks"].append(_table_block(
        f"McNemar's {'exact ' if test.get('exact') else ''}test on the samples the models disagree about",
        [("only A right (B broke)", True), ("only B right (B fixed)", True), ("same for both", True), ("p", True),
         (f"samples for {_level(ev.get('power', 0.8))} power", True)], [row], css="mcnemar"))
    bar = split_bar(only_a, only_b, left_label=f"only A right: {only_a}", right_label=f"only B right: {only_b}")
    if bar is not None:
        bar["kind"] = "split"
        bar["caption"] = (f"The {only_a + only_b:,} discordant samples: red, those only {a} gets right; blue, those only "
                          f"{b} gets right. With no real difference they would split about evenly (the dashed mark); "
                          f"the other {max(n - only_a - only_b, 0):,} samples are right or wrong for both.")
        section["blocks"].append(bar)
    verdict = str(ev.get("verdict", ""))
    acc = (ev.get("metrics") or {}).get("accuracy") or {}
    relation = "<" if p < alpha else "\u2265"
    figures = (f"McNemar p = {_p(p)} {relation} {alpha:.2g}; accuracy B \u2212 A "
               f"{_with_ci(acc.get('difference'), acc.get('low'), acc.get('high'), _signed)}")
    if ev.get("significant"):
        text = f"{b} is significantly {verdict} than {a} ({figures})."
        if verdict == "worse":
            text += " A regression: look at the samples B broke before shipping it."
        tone = "good" if verdict == "better" else "bad"
    else:
        text = f"No significant difference between {b} and {a} ({figures})."
        text += (f" To detect a difference this size with {_level(ev.get('power', 0.8))} power, a test set needs about "
                 f"{int(needed):,} samples." if needed is not None else
                 " They get equally many samples right that the other gets wrong.")
        tone = "neutral"
    section["blocks"].insert(0, {"kind": "verdict", "text": text, "tone": tone})
    table = _SampleTable(result.features)
    scores = f.scores or {}
    section["gallery"], section["gallery_more"] = [], 0
    groups = []
    broke, fixed = [str(s) for s in ev.get("regressed") or []], [str(s) for s in ev.get("improved") or []]
    # The finding scores the samples B broke (B's probability of the label); the fixed ones keep its order.
    if broke:
        groups.append(_changed_group(f"B broke {len(broke):,}: only A gets them right (lowest B p(label) first)",
                                     broke, table, scores, "B p(label)", worst_first=True))
    if fixed:
        groups.append(_changed_group(f"B fixed {len(fixed):,}: only B gets them right", fixed, table, scores,
                                     "B p(label)", worst_first=False))
    section["groups"] = groups
    section["evidence"] = [(k, v) for k, v in section["evidence"] if k not in ("regressed", "improved", "mcnemar")]


def _leaked_test_metrics_extra(section: dict[str, Any], f: Finding, result: Result) -> None:
    ev = f.evidence
    split = str(ev.get("split", "test"))
    for g, raw in zip(section["groups"], f.groups):
        sources = int(raw.get("sources", g["size"] - 1))
        trained = f"{sources:,} training sample{'' if sources == 1 else 's'}"
        if raw.get("kind") == "group":
            g["title"] = f"shares {raw.get('column')} = {raw.get('value')} with {trained}"
        else:
            g["title"] = f"{raw.get('kind', 'a')} copy of {trained}"
        # Each tile has its split badge; the kind is in the title.
        g["facts"] = [fact for fact in g["facts"] if fact != raw.get("kind")]
        g["splits"] = []
        # The finding lists at most a few sources per copy; the count says how many there are.
        g["more"] = max(sources + 1 - len(g["members"]), 0)
    metrics = ev.get("metrics")
    if not isinstance(metrics, dict):
        return
    level = _level(ev.get("confidence", 0.95))
    rows = []
    # Metrics with CIs first: only they get a strip (a zoomed axis of two bare points would exaggerate the gap).
    ordered = sorted(((k, m) for k, m in metrics.items() if isinstance(m, dict)),
                     key=lambda km: not _has_ci(km[1].get("original") or {}))
    for key, m in ordered:
        before, after = m.get("original") or {}, m.get("deleaked") or {}
        strip = None
        if _has_ci(before) and _has_ci(after):
            values = [before.get(k) for k in ("value", "low", "high")] + [after.get(k) for k in ("value", "low", "high")]
            lo, hi = zoomed_range(values, **({} if key in _UNBOUNDED else {"floor": 0.0, "ceiling": 1.0}))
            strip = interval_strip(after.get("value"), after.get("low"), after.get("high"), lo=lo, hi=hi,
                                   ref=before.get("value"), ref_low=before.get("low"), ref_high=before.get("high"))
        inflation, inflation_strip = _signed(m.get("inflation")), None
        if key == "accuracy" and "accuracy_inflation" in ev:
            gap = [ev.get("accuracy_inflation"), ev.get("accuracy_inflation_low"), ev.get("accuracy_inflation_high")]
            inflation = _with_ci(*gap, _signed)
            reach = symmetric_range(gap)
            inflation_strip = interval_strip(*gap, lo=-reach, hi=reach, ref=0.0, width=110.0)
        rows.append({"cells": [_cell(_metric_name(key) + (" (lower is better)" if key in _LOWER_IS_BETTER else "")),
                               _cell(_with_ci(before.get("value"), before.get("low"), before.get("high")), num=True),
                               _cell(_with_ci(after.get("value"), after.get("low"), after.get("high")), strip),
                               _cell(inflation, inflation_strip)],
                     "cls": "flagged" if key == "accuracy" else ""})
    section["blocks"].append(_table_block(
        f"Metrics on all {int(ev.get('n') or 0):,} {split} samples vs the {int(ev.get('clean') or 0):,} that copy no "
        f"training sample ({level} bootstrap CIs)",
        [("metric", False), ("original", True),
         ("de-leaked with CI (band: original CI, |: original; axis zoomed per row)", False),
         ("inflation = original \u2212 de-leaked", False)], rows, css="deleaked",
        note=(f"The {int(ev.get('copies') or 0):,} copies are {_pct(ev.get('copies_accuracy'))} right. The accuracy "
              f"inflation's CI resamples copies and clean samples apart (| = 0); the other inflations are plain "
              f"differences.")))


_EXTRAS = {
    "model_comparison": _model_comparison_extra,
    "leaked_test_metrics": _leaked_test_metrics_extra,
    "label_issues": _label_issues_extra,
    "confident_errors": _confident_errors_extra,
    "confused_pairs": _confused_pairs_extra,
    "weak_segments": _weak_segments_extra,
    "model_vs_baseline": _model_vs_baseline_extra,
    "property_shortcut": _property_shortcut_extra,
    "overfitting": _fitting_extra,
    "underfitting": _fitting_extra,
    "miscalibrated": _calibration_extra,
}


def _predictions_facts(run_info: dict[str, Any]) -> list[tuple[str, str]]:
    """What the run's predictions came from (file, model, or cross-validation and embedder), as label/text pairs.

    Whatever fields the job recorded are shown; the class list as its length.
    """
    info = run_info.get("predictions")
    if not isinstance(info, dict):
        return []
    out = []
    for key, value in info.items():
        if value is None or (isinstance(value, (list, dict, str)) and not value):
            continue
        if key == "classes" and isinstance(value, list):
            out.append(("classes", _fmt_num(len(value))))
        else:
            out.append(({"path": "file"}.get(key, key.replace("_", " ")), _fmt_value(value)))
    return out


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visionaudit.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = _fmt_num
    return env.get_template("report.html.j2")
