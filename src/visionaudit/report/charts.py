"""Geometry of the report's charts, in SVG user units; the template draws them.

Each function turns the numbers of a view's block (a histogram's bins, a reliability table, bars with
CIs) into coordinates and returns None when there is nothing to draw, so the page stays inline SVG
with no plotting library and no script. The axis helpers (:func:`symmetric_range`,
:func:`zoomed_range`) are also what views use to choose an interval's axis.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .format import fmt_num

if TYPE_CHECKING:
    from .views.blocks import Histogram

#: Bins with fewer samples are drawn faded: their accuracy is too noisy to read (one sample is 0 or 1).
FEW = 10


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def reliability_diagram(rows: Sequence[dict[str, Any]], *, ece: float | None, title: str, small: bool = False,
                        x_label: str = "confidence", y_label: str = "accuracy") -> dict[str, Any] | None:
    """Bars of accuracy per confidence bin over the diagonal of perfect calibration, and a strip of bin counts.

    ``rows`` is a reliability table (``lower``, ``upper``, ``count``, ``confidence``, ``accuracy``;
    empty bins have no accuracy). Each non-empty bin draws a bar up to its accuracy and a gap box
    between its accuracy and its mean confidence (``over`` when confidence is higher).

    >>> d = reliability_diagram([{"lower": 0.5, "upper": 1.0, "count": 4, "confidence": 0.9, "accuracy": 0.5}],
    ...                         ece=0.4, title="test")
    >>> [(b["count"], b["over"]) for b in d["bars"]]
    [(4, True)]
    """
    filled = [r for r in rows if r.get("count") and _finite(r.get("accuracy")) and _finite(r.get("confidence"))]
    if not filled:
        return None
    left, top = (30.0, 8.0) if small else (46.0, 12.0)
    w, h = (150.0, 110.0) if small else (300.0, 220.0)
    strip_h = 20.0 if small else 36.0
    strip_top = top + h + (16.0 if small else 22.0)
    most = max(int(r["count"]) for r in filled)

    def x(v: float) -> float:
        return round(left + v * w, 1)

    def y(v: float) -> float:
        return round(top + (1.0 - v) * h, 1)

    bars = []
    for r in filled:
        lo, hi, acc, conf, n = float(r["lower"]), float(r["upper"]), float(r["accuracy"]), float(r["confidence"]), int(r["count"])
        # Square-root heights: a bin of 5 next to one of 400 still shows.
        ch = max(1.0, strip_h * math.sqrt(n / most))
        bars.append({
            "x": round(x(lo) + 0.5, 1), "w": round(max(x(hi) - x(lo) - 1.0, 0.6), 1),
            "y": y(acc), "h": round(top + h - y(acc), 1),
            "gap_y": y(max(acc, conf)), "gap_h": round(abs(acc - conf) * h, 1), "over": conf > acc,
            "count_y": round(strip_top + strip_h - ch, 1), "count_h": round(ch, 1),
            "count": n, "accuracy": acc, "confidence": conf, "range": f"{lo:.2f}-{hi:.2f}", "few": n < FEW,
        })
    ticks = (0.0, 0.5, 1.0) if small else (0.0, 0.25, 0.5, 0.75, 1.0)
    return {
        "title": title, "ece": ece, "small": small, "few_below": FEW, "bars": bars, "n": sum(b["count"] for b in bars),
        "most": most, "x_label": x_label, "y_label": y_label,
        "ticks": [{"v": f"{t:g}", "x": x(t), "y": y(t)} for t in ticks],
        "plot": {"left": left, "top": top, "right": left + w, "bottom": top + h, "w": w, "h": h,
                 "strip_top": strip_top, "strip_bottom": strip_top + strip_h,
                 "width": left + w + 10, "height": strip_top + strip_h + (12.0 if small else 16.0)},
    }


def interval_strip(value: float | None, low: float | None, high: float | None, *, lo: float = 0.0, hi: float = 1.0,
                   ref: float | None = None, ref_low: float | None = None, ref_high: float | None = None,
                   width: float = 170.0, height: float = 18.0) -> dict[str, Any] | None:
    """A point with its interval on a [lo, hi] axis, with an optional reference line (overall, zero) and
    reference interval (``ref_low``-``ref_high``, drawn as a band behind: the value it is compared with).

    >>> s = interval_strip(0.5, 0.4, 0.6, ref=0.8, width=100)
    >>> s["x"], s["x_low"], s["x_ref"], s["x_band"]
    (50.0, 40.6, 78.2, None)
    >>> interval_strip(0.5, 0.4, 0.6, ref=0.8, ref_low=0.7, ref_high=0.9, width=100)["x_band"]
    (68.8, 87.6)
    """
    if not _finite(value) or hi <= lo:
        return None
    pad = 3.0

    def x(v: float) -> float:
        return round(pad + (min(max(v, lo), hi) - lo) / (hi - lo) * (width - 2 * pad), 1)

    return {
        "width": width, "height": height, "mid": height / 2, "x": x(float(value)),
        "x_low": x(float(low)) if _finite(low) else None, "x_high": x(float(high)) if _finite(high) else None,
        "x_ref": x(float(ref)) if _finite(ref) else None, "x0": pad, "x1": width - pad,
        "x_band": (x(float(ref_low)), x(float(ref_high))) if _finite(ref_low) and _finite(ref_high) else None,
    }


def zoomed_range(values: Sequence[float | None], *, floor: float | None = None, ceiling: float | None = None,
                 margin: float = 0.15) -> tuple[float, float]:
    """An axis [lo, hi] holding every value with ``margin`` of their spread on each side (clipped to
    ``floor``/``ceiling``), so intervals a few points apart are told apart on a short strip.

    >>> zoomed_range([0.61, 0.71, 0.66], floor=0.0, ceiling=1.0)
    (0.595, 0.725)
    """
    finite = [float(v) for v in values if _finite(v)]
    if not finite:
        return (0.0, 1.0)
    a, b = min(finite), max(finite)
    pad = max((b - a) * margin, 1e-3 * max(abs(a), abs(b), 1.0))
    lo, hi = a - pad, b + pad
    if floor is not None:
        lo = max(lo, floor)
    if ceiling is not None:
        hi = min(hi, ceiling)
    return (round(lo, 6), round(hi, 6))


def split_bar(left: int, right: int, *, left_label: str, right_label: str, width: float = 560.0) -> dict[str, Any] | None:
    """One bar split in two by counts (McNemar's discordant samples), with a mark at the even split.

    Under "no difference" each discordant sample is equally likely on either side, so the further the
    split is from the middle mark, the stronger the evidence.

    >>> b = split_bar(7, 24, left_label="only A", right_label="only B", width=331)
    >>> b["left"]["w"], b["right"]["x"], b["x_even"]
    (68.0, 83.0, 165.5)
    """
    total = int(left) + int(right)
    if total <= 0:
        return None
    x0, top, h, w = 15.0, 22.0, 22.0, width - 30.0

    def part(n: int, x: float, label: str) -> dict[str, Any]:
        share = n / total
        return {"n": int(n), "share": share, "x": round(x, 1), "w": round(share * w, 1), "label": label}

    lpart = part(int(left), x0, left_label)
    rpart = part(int(right), x0 + lpart["w"], right_label)
    return {"left": lpart, "right": rpart, "total": total, "x0": x0, "x1": x0 + w, "top": top, "h": h,
            "x_even": round(x0 + w / 2, 1), "width": width, "height": top + h + 8.0}


def symmetric_range(values: Sequence[float | None]) -> float:
    """Half-width of an axis centred on 0 that holds every value (at least 0.05), for difference strips.

    >>> symmetric_range([0.12, -0.03, None])
    0.15
    """
    m = max([abs(float(v)) for v in values if _finite(v)] or [0.0])
    return max(0.05, math.ceil(m * 1.1 * 20) / 20)


def accuracy_bars(rows: Sequence[dict[str, Any]], *, width: float = 560.0) -> dict[str, Any] | None:
    """Horizontal bars of accuracy (0-1) with CI whiskers and a dashed reference mark per row.

    ``rows``: ``label``, ``value``, optional ``low``/``high`` (CI) and ``ref`` (e.g. the majority-class rate).

    >>> b = accuracy_bars([{"label": "train", "value": 0.5, "low": 0.4, "high": 0.6, "ref": 0.1}], width=310)
    >>> b["rows"][0]["w"], b["rows"][0]["x_low"]
    (72.0, 167.6)
    """
    rows = [r for r in rows if _finite(r.get("value"))]
    if not rows:
        return None
    left, top, row_h, bar_h = 110.0, 8.0, 30.0, 18.0
    w = width - left - 56.0  # room for the value printed after the whisker

    def x(v: float) -> float:
        return round(left + min(max(v, 0.0), 1.0) * w, 1)

    out = []
    for i, r in enumerate(rows):
        y = top + i * row_h
        out.append({
            "label": str(r["label"]), "value": float(r["value"]), "y": y, "bar_h": bar_h, "mid": y + bar_h / 2,
            "x": left, "w": round(x(float(r["value"])) - left, 1),
            "x_low": x(float(r["low"])) if _finite(r.get("low")) else None,
            "x_high": x(float(r["high"])) if _finite(r.get("high")) else None,
            "x_ref": x(float(r["ref"])) if _finite(r.get("ref")) else None,
            "low": r.get("low"), "high": r.get("high"), "ref": r.get("ref"),
        })
    bottom = top + len(rows) * row_h
    return {"rows": out, "ticks": [{"x": x(t), "v": f"{t:g}"} for t in (0.0, 0.25, 0.5, 0.75, 1.0)],
            "left": left, "right": left + w, "top": top, "bottom": bottom, "width": width, "height": bottom + 20.0}


# Histogram plot area in SVG user units.
_PLOT_W, _PLOT_H, _PLOT_LEFT, _PLOT_TOP = 760.0, 140.0, 48.0, 22.0


def histogram_geometry(h: Histogram) -> dict[str, Any]:
    """Bars, axis ticks, cut-off line(s) and the shaded flagged side(s) of a histogram block.

    The x axis is the bins' own scale: logarithmic when the block's bins are (one decade is a constant
    width). A two-sided histogram (``upper``) draws both cut-offs and shades below the first and above
    the second.
    """
    t = [math.log10(e) if h.log else e for e in h.edges]
    lo, hi = t[0], t[-1]
    c = math.log10(h.cutoff) if h.log else h.cutoff
    cu = None if h.upper is None else (math.log10(h.upper) if h.log else h.upper)

    def x(val: float) -> float:
        return round(_PLOT_LEFT + (val - lo) / (hi - lo) * _PLOT_W, 1)

    top = max(max(h.counts, default=0), 1)
    bars = []
    for i, n in enumerate(h.counts):
        height = 0.0 if n == 0 else max(1.5, n / top * _PLOT_H)
        bars.append({"x": x(t[i]), "w": max(round(x(t[i + 1]) - x(t[i]) - 0.6, 1), 0.4),
                     "y": round(_PLOT_TOP + _PLOT_H - height, 1), "h": round(height, 1), "count": int(n),
                     "flagged": h.flagged_bins[i], "range": f"{fmt_num(h.edges[i])} to {fmt_num(h.edges[i + 1])}"})
    cut_x = x(c)
    below = h.direction == "below"
    shades = [{"x": _PLOT_LEFT if below else cut_x,
               "w": round((cut_x - _PLOT_LEFT) if below else (_PLOT_LEFT + _PLOT_W - cut_x), 1)}]
    cuts = [{"x": cut_x, "label": f"cut-off {fmt_num(h.cutoff)}"}]
    if cu is not None:
        cuts.append({"x": x(cu), "label": f"upper cut-off {fmt_num(h.upper)}"})
        shades.append({"x": x(cu), "w": round(_PLOT_LEFT + _PLOT_W - x(cu), 1)})
    ticks = _log_ticks(lo, hi) if h.log else _linear_ticks(lo, hi)
    return {
        "bars": bars, "ticks": [{"x": x(tv), "label": label} for tv, label in ticks], "cutoff_x": cut_x,
        "cuts": cuts, "shades": shades, "ymax": top,
        "plot": {"left": _PLOT_LEFT, "top": _PLOT_TOP, "w": _PLOT_W, "h": _PLOT_H,
                 "bottom": _PLOT_TOP + _PLOT_H, "right": _PLOT_LEFT + _PLOT_W,
                 "width": _PLOT_LEFT + _PLOT_W + 16, "height": _PLOT_TOP + _PLOT_H + 24},
    }


def _linear_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    raw = (hi - lo) / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [(float(t), fmt_num(round(float(t), 10))) for t in np.arange(start, hi + step * 1e-9, step)]


def _log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    decades = range(math.ceil(lo), math.floor(hi) + 1)
    every = max(1, math.ceil(len(decades) / 8))  # keep labels from overlapping on a wide range
    return [(float(e), fmt_num(10.0 ** e) if e >= -4 else f"1e{e}") for e in decades[::every]]
