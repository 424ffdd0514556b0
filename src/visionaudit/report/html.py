"""report.html: one self-contained page (inline CSS, SVG and base64 thumbnails) that opens offline.

The page reads only the :class:`~visionaudit.findings.Result`: a summary of findings by severity,
then one section per finding with its why/fix text, thresholds, a histogram of the judged property
with the cut-off drawn (property findings), and a gallery of thumbnails worst-first (or duplicate
clusters and leaked pairs side by side). Galleries are capped so the page stays a few MB for any
dataset size; the rest is in ``findings.json``. Thumbnails are decoded through
:func:`visionaudit.features.decode.open_for_display`, each file at most once per report.
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

#: Most thumbnails shown for one finding, and most groups (clusters, pairs) shown for a group finding.
MAX_GALLERY = 48
MAX_GROUPS = 24
#: Most members of one group shown side by side.
MAX_GROUP_MEMBERS = 8
#: Most classes in the class-count table.
MAX_CLASSES = 60
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
                       workers=workers)
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
) -> str:
    """The report as one HTML string (see :func:`write_html`)."""
    for name, value in (("max_gallery", max_gallery), ("max_groups", max_groups), ("thumb_size", thumb_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"invalid {name}={value!r}: expected a positive integer")
    table = _SampleTable(result.features)
    ordered = sorted(result.findings, key=lambda f: -f.severity.rank)
    sections = [_finding_section(i, f, table, result.features, max_gallery, max_groups)
                for i, f in enumerate(ordered)]
    wanted = [tile["sample"] for s in sections for tile in _tiles(s)]
    thumbs = _make_thumbnails(table, wanted, thumb_size, workers)
    for s in sections:
        for tile in _tiles(s):
            tile["thumb"] = thumbs[tile["sample"]]
    counts = {s.value: 0 for s in Severity}
    for f in ordered:
        counts[f.severity.value] += 1
    return _template().render(
        dataset=result.dataset_summary,
        run=result.run_info,
        counts=counts,
        sections=sections,
        checks=_checks_table(result, ordered),
        classes=_class_counts(result),
        metrics=_model_metrics(result),
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


def _make_thumbnails(table: _SampleTable, samples: list[str], size: int, workers: int | None) -> dict[str, Thumb]:
    """One thumbnail per sample id, decoding each distinct file once, in a thread pool
    (Pillow releases the GIL while decoding)."""
    by_path: dict[str, list[str]] = {}
    out: dict[str, Thumb] = {}
    for sample in dict.fromkeys(samples):
        path = table.get(sample, "path")
        if path is None:
            out[sample] = Thumb(None, error="not in the dataset table")
        else:
            by_path.setdefault(str(path), []).append(sample)
    paths = list(by_path)
    n_workers = max(1, min(workers or (os.cpu_count() or 1), 8, len(paths) or 1))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        images = list(pool.map(lambda p: _encode(decode.open_for_display(p, size)), paths))
    for path, thumb in zip(paths, images):
        for sample in by_path[path]:
            if thumb.uri is None:
                error = table.get(sample, "error")
                thumb = Thumb(None, error=str(error) if error is not None else "could not be decoded for display")
            out[sample] = thumb
    return out


def _encode(im: Any) -> Thumb:
    if im is None:
        return Thumb(None)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=_THUMB_QUALITY, optimize=True)
    uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return Thumb(uri, im.width, im.height)


# ---------------------------------------------------------------------------------------------
# Finding sections


def _finding_section(index: int, f: Finding, table: _SampleTable, features: pd.DataFrame,
                     max_gallery: int, max_groups: int) -> dict[str, Any]:
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
    }
    if prop is not None and prop in features.columns:
        section["histogram"] = property_histogram(
            pd.to_numeric(features[prop], errors="coerce").to_numpy(dtype=float),
            evidence.get("cutoff"), str(evidence.get("direction", "below")), prop)
    if f.groups:
        shown = f.groups[:max_groups]
        section["groups"] = [_group(g, table) for g in shown]
        section["groups_more"] = len(f.groups) - len(shown)
    else:
        # Worst first; samples without a score keep the check's order, after the scored ones.
        ordered = sorted(f.samples, key=lambda s: _score_key(f.scores.get(s)))
        shown = ordered[:max_gallery]
        section["gallery"] = [_tile(s, table, f.scores.get(s), prop) for s in shown]
        section["gallery_more"] = len(ordered) - len(shown)
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
        "size": len(samples),
        "facts": facts,
        "labels_disagree": len(distinct_labels) > 1,
        "splits": sorted(distinct_splits) if len(distinct_splits) > 1 else [],
        "members": members,
        "more": len(samples) - len(members),
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
        elif isinstance(value, (list, dict)) and len(value) <= 12 and all(
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
                       bins: int = _HIST_BINS) -> dict[str, Any] | None:
    """Bars, axis ticks and the cut-off line of a histogram of ``values``, in SVG units.

    The x axis is logarithmic when the values span decades and are right-skewed (sharpness on a set
    with blurred images): see :func:`_wants_log_scale`; values <= 0 then fall in the first bar. One bin edge is moved onto the cut-off, so the bars on the
    flagged side (``direction`` 'below' or 'above' the cut-off) hold exactly the flagged values.
    Returns None when there is nothing to draw.

    >>> h = property_histogram(np.array([1.0, 2, 3, 10]), 2.5, "below", "brightness")
    >>> sum(b["count"] for b in h["bars"] if b["flagged"])
    2
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0 or not isinstance(cutoff, (int, float, np.number)) or not math.isfinite(float(cutoff)):
        return None
    cutoff = float(cutoff)
    log = _wants_log_scale(v) and cutoff > 0
    positive = v[v > 0]
    if log:
        floor = min(float(positive.min()), cutoff)
        t, c = np.log10(np.maximum(v, floor)), math.log10(cutoff)
    else:
        t, c = v, cutoff
    lo, hi = min(float(t.min()), c), max(float(t.max()), c)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    if lo < c < hi:
        k = int(np.argmin(np.abs(edges[1:-1] - c))) + 1
        edges[k] = c
    counts, _ = np.histogram(t, edges)
    below = direction != "above"

    def x(val: float) -> float:
        return round(_PLOT_LEFT + (val - lo) / (hi - lo) * _PLOT_W, 1)

    top = max(int(counts.max()), 1)
    bars = []
    for i, n in enumerate(counts):
        h = 0.0 if n == 0 else max(1.5, n / top * _PLOT_H)
        flagged = edges[i + 1] <= c if below else edges[i] >= c
        bars.append({"x": x(edges[i]), "w": max(round(x(edges[i + 1]) - x(edges[i]) - 0.6, 1), 0.4),
                     "y": round(_PLOT_TOP + _PLOT_H - h, 1), "h": round(h, 1), "count": int(n),
                     "flagged": bool(flagged),
                     "range": f"{_fmt_num(_untransform(edges[i], log))} to {_fmt_num(_untransform(edges[i + 1], log))}"})
    ticks = _log_ticks(lo, hi) if log else _linear_ticks(lo, hi)
    cut_x = x(c)
    flagged_n = int(sum(b["count"] for b in bars if b["flagged"]))
    return {
        "name": name,
        "log": log,
        "bars": bars,
        "ticks": [{"x": x(tv), "label": label} for tv, label in ticks],
        "cutoff": _fmt_num(cutoff),
        "cutoff_x": cut_x,
        "shade_x": _PLOT_LEFT if below else cut_x,
        "shade_w": round((cut_x - _PLOT_LEFT) if below else (_PLOT_LEFT + _PLOT_W - cut_x), 1),
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
    return {"splits": [{"name": s, "n": splits[s]["n"]} for s in names], "rows": rows, "main": main,
            "confidence": found.evidence.get("confidence", 0.95), "per_class": splits[main]["per_class"],
            "confusion": _confusion_heatmap(found.evidence.get("classes"), splits[main].get("confusion"))}


def _confusion_heatmap(classes: list[str] | None, counts: list[list[int]] | None) -> dict[str, Any] | None:
    """Confusion-matrix cells (true class rows, predicted columns) shaded by the row-normalised rate.

    Up to MAX_CLASSES classes; larger matrices stay in findings.json only.
    """
    if not classes or not counts or len(classes) > MAX_CLASSES:
        return None
    m = np.asarray(counts, dtype=float)
    rates = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    rows = [{"label": str(c), "cells": [{"count": int(m[i, j]), "rate": float(rates[i, j]),
                                         "diagonal": i == j} for j in range(len(classes))]}
            for i, c in enumerate(classes)]
    return {"classes": [str(c) for c in classes], "rows": rows}


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
