"""What every view shares: the sample lookups, the standard pieces of a finding (its thresholds and
evidence, a traceback, the histogram of the judged property, a gallery worst first, its groups) and
:func:`generic_view`, which any finding gets when no view is registered for its check or family.

A finding that follows the findings.json conventions needs no view of its own: ``evidence.property``
with ``cutoff`` (and ``direction``, ``upper_cutoff``) draws a histogram, ``groups`` draw side by side,
``samples`` draw worst first by ``scores``, and an evidence map keyed by the finding's samples (a
format, an orientation, a z-score per image) is written under each image instead of as a chip.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...findings import Finding, Result
from ..format import fmt_num, fmt_value, is_number
from .blocks import (
    Block,
    Change,
    Code,
    Column,
    Fact,
    Facts,
    Gallery,
    Group,
    Groups,
    Histogram,
    Row,
    Table,
    Tile,
)

#: Most thumbnails shown for one finding, and most groups (clusters, pairs) shown for a group finding.
MAX_GALLERY = 48
MAX_GROUPS = 24
#: Most members of one group shown side by side.
MAX_GROUP_MEMBERS = 8
#: Most rows of an evidence table (segments tested, properties...); the rest is in findings.json.
MAX_TABLE_ROWS = 60
_HIST_BINS = 40
#: Evidence keys that are drawn (the histogram), or shown another way (decode errors on their tiles,
#: a traceback), rather than as chips.
_NOT_CHIPS = frozenset({"property", "cutoff", "direction", "errors", "traceback"})


class Samples:
    """Path, label, split, decode error and properties of each sample id, from the Result's feature
    table (tolerant of absent columns and of ids it does not hold)."""

    def __init__(self, features: pd.DataFrame):
        self.features = features

    def get(self, sample: str, column: str) -> Any:
        if column not in self.features.columns or sample not in self.features.index:
            return None
        value = self.features.at[sample, column]
        return None if _missing(value) else value

    def missing_reason(self, sample: str) -> str | None:
        """Why this sample can have no picture, when the run already knows."""
        if self.get(sample, "path") is None:
            return "not in the dataset table"
        error = self.get(sample, "error")
        return None if error is None else str(error)


@dataclass(frozen=True)
class ViewContext:
    """What a view reads besides its finding: the whole Result (its other findings, stats and feature
    table) and the report's caps."""

    result: Result
    samples: Samples
    max_gallery: int = MAX_GALLERY
    max_groups: int = MAX_GROUPS

    @classmethod
    def of(cls, result: Result, max_gallery: int = MAX_GALLERY, max_groups: int = MAX_GROUPS) -> ViewContext:
        return cls(result, Samples(result.features), max_gallery, max_groups)


def _missing(value: Any) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def text_or_none(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def score_key(score: Any) -> float:
    """Sort key that puts scored samples first, lowest (worst) first."""
    return float(score) if is_number(score) and not math.isnan(float(score)) else math.inf


# ---------------------------------------------------------------------------------------------
# Standard pieces


def facts(f: Finding, skip: Iterable[str] = ()) -> list[Block]:
    """The finding's thresholds and its scalar evidence as chips; bulky or per-sample evidence stays
    in findings.json or goes under the images (see :func:`gallery`)."""
    out: list[Block] = []
    if f.thresholds:
        out.append(Facts("thresholds", [Fact(str(k), fmt_value(v)) for k, v in f.thresholds.items()], sep=" = "))
    skipped = _NOT_CHIPS | set(skip) | set(_per_sample_maps(f))
    items = []
    for key, value in (f.evidence or {}).items():
        if key in skipped:
            continue
        if _scalar(value) or (isinstance(value, (list, dict)) and 0 < len(value) <= 12 and all(
                _scalar(v) for v in (value.values() if isinstance(value, dict) else value))):
            items.append(Fact(str(key), fmt_value(value)))
    if items:
        out.append(Facts("evidence", items))
    return out


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, np.number)) or value is None


def _per_sample_maps(f: Finding) -> list[str]:
    """Evidence keys whose value maps some of the finding's samples to a scalar (one per image)."""
    samples = set(f.samples)
    return [k for k, v in (f.evidence or {}).items()
            if k not in _NOT_CHIPS and isinstance(v, dict) and v and set(map(str, v)) <= samples
            and all(_scalar(x) for x in v.values())]


def traceback(f: Finding) -> list[Block]:
    text = (f.evidence or {}).get("traceback")
    return [Code("traceback", text)] if isinstance(text, str) else []


def property_histograms(f: Finding, ctx: ViewContext) -> list[Block]:
    """The histogram of ``evidence.property`` with its cut-off, when the feature table has the property."""
    h = histogram_of(f.evidence or {}, ctx)
    return [] if h is None else [h]


def histogram_of(ev: dict[str, Any], ctx: ViewContext) -> Histogram | None:
    """The histogram that a ``property``/``cutoff``/``direction`` (/``upper_cutoff``) evidence dict
    asks for, over the feature table's values of the property."""
    prop = ev.get("property")
    if not isinstance(prop, str) or prop not in ctx.samples.features.columns:
        return None
    values = pd.to_numeric(ctx.samples.features[prop], errors="coerce").to_numpy(dtype=float)
    return property_histogram(values, ev.get("cutoff"), str(ev.get("direction", "below")), prop,
                              upper=ev.get("upper_cutoff"))


def judged_property(f: Finding) -> str | None:
    prop = (f.evidence or {}).get("property")
    return prop if isinstance(prop, str) else None


def tile(sample: str, ctx: ViewContext, score: Any = None, prop: str | None = None,
         label: Any = None, split: Any = None) -> Tile:
    """A sample's tile: its score, label and split (from the feature table unless given) and its value
    of ``prop``."""
    s = ctx.samples
    value = s.get(sample, prop) if prop else None
    shown = is_number(value)
    return Tile(sample=str(sample), score=None if score_key(score) == math.inf else float(score),
                label=text_or_none(label if label is not None else s.get(sample, "label")),
                split=text_or_none(split if split is not None else s.get(sample, "split")),
                property=prop if shown else None, value=fmt_num(value) if shown else None,
                missing=s.missing_reason(sample))


def gallery(f: Finding, ctx: ViewContext, prop: str | None = None,
            note_names: dict[str, str] | None = None) -> Gallery | None:
    """The finding's samples worst first (unscored ones after, in the check's order), capped. Each
    per-sample evidence map writes its value under the image, after its key (or after
    ``note_names[key]``; an empty name writes the value alone)."""
    if not f.samples:
        return None
    ordered = sorted(f.samples, key=lambda s: score_key(f.scores.get(s)))
    shown = ordered[:ctx.max_gallery]
    tiles = [tile(s, ctx, f.scores.get(s), prop) for s in shown]
    names = {k: (note_names or {}).get(k, k.replace("_", " ")) for k in _per_sample_maps(f)}
    for t in tiles:
        lines = [f"{name}: {fmt_value(f.evidence[k][t.sample])}" if name else fmt_value(f.evidence[k][t.sample])
                 for k, name in names.items() if t.sample in f.evidence[k]]
        t.note = "; ".join(lines) or None
    return Gallery(tiles, more=len(ordered) - len(shown))


def changed_gallery(f: Finding, ctx: ViewContext, key: str,
                    change: Callable[[dict[str, Any], Tile], Change | None]) -> list[Block]:
    """The gallery, each tile given the label change (given -> suggested or predicted) that
    ``change`` reads from its record in the evidence list ``key`` (records with a ``sample_id``)."""
    records = {str(r.get("sample_id")): r for r in f.evidence.get(key) or [] if isinstance(r, dict)}
    shown = gallery(f, ctx)
    if shown is None:
        return []
    for t in shown.tiles:
        if t.sample in records:
            t.change = change(records[t.sample], t)
    return [shown]


def group(raw: dict[str, Any], ctx: ViewContext) -> Group:
    """One group of a finding: its members side by side (capped), with the group's own labels and
    splits when it reports them (what the check compared), else the feature table's."""
    samples = [str(s) for s in raw.get("samples", [])]
    labels = [v if v is not None else ctx.samples.get(s, "label")
              for s, v in zip(samples, _aligned(raw.get("labels"), len(samples)))]
    splits = [v if v is not None else ctx.samples.get(s, "split")
              for s, v in zip(samples, _aligned(raw.get("splits"), len(samples)))]
    members = [tile(s, ctx, label=labels[i], split=splits[i]) for i, s in enumerate(samples[:MAX_GROUP_MEMBERS])]
    distinct_labels = {str(v) for v in labels if v is not None}
    distinct_splits = {str(v) for v in splits if v is not None}
    group_facts = [str(raw["kind"])] if raw.get("kind") else []
    for key in ("distance", "similarity"):
        if is_number(raw.get(key)):
            group_facts.append(f"{key} {fmt_num(raw[key])}")
    return Group(size=len(samples), members=members, facts=group_facts, labels_disagree=len(distinct_labels) > 1,
                 splits=sorted(distinct_splits) if len(distinct_splits) > 1 else [], more=len(samples) - len(members))


def _aligned(values: Any, n: int) -> list[Any]:
    values = list(values) if isinstance(values, (list, tuple)) else []
    return [values[i] if i < len(values) and not _missing(values[i]) else None for i in range(n)]


def groups(f: Finding, ctx: ViewContext) -> Groups | None:
    """The finding's groups (capped), each drawn by :func:`group`."""
    if not f.groups:
        return None
    shown = f.groups[:ctx.max_groups]
    return Groups([group(g, ctx) for g in shown], more=len(f.groups) - len(shown))


def samples_blocks(f: Finding, ctx: ViewContext, prop: str | None = None) -> list[Block]:
    """Groups when the finding has them (its samples are their members), else the gallery."""
    block = groups(f, ctx) if f.groups else gallery(f, ctx, prop)
    return [] if block is None else [block]


def generic_view(f: Finding, ctx: ViewContext) -> list[Block]:
    """Any finding: thresholds and evidence, traceback, the judged property's histogram, then its
    groups or its samples worst first."""
    return [*facts(f), *traceback(f), *property_histograms(f, ctx), *samples_blocks(f, ctx, judged_property(f))]


def table(title: str | None, columns: list[Column], rows: list[Row], *, total: int | None = None,
          collapsed: bool = False, note: str | None = None, role: str = "") -> Table:
    """A table of at most MAX_TABLE_ROWS rows; the rest (of ``total``, default all rows) is counted."""
    shown = rows[:MAX_TABLE_ROWS]
    return Table(columns=columns, rows=shown, title=title, more=(len(rows) if total is None else total) - len(shown),
                 collapsed=collapsed, note=note, role=role)


# ---------------------------------------------------------------------------------------------
# Property histogram


def property_histogram(values: np.ndarray, cutoff: Any, direction: str, name: str,
                       bins: int = _HIST_BINS, upper: Any = None) -> Histogram | None:
    """The histogram of ``values`` with the cut-off(s) of a finding, or None when there is nothing to draw.

    The bins are logarithmic when the values span decades and are right-skewed (sharpness on a set
    with blurred images): see :func:`_wants_log_scale`; values <= 0 then fall in the first bin. One bin
    edge is moved onto the cut-off, so the bins on the flagged side (``direction`` 'below' or 'above'
    the cut-off) hold exactly the flagged values. A two-sided finding (odd image size) also passes
    ``upper``: values below ``cutoff`` or above ``upper`` are flagged.

    >>> h = property_histogram(np.array([1.0, 2, 3, 10]), 2.5, "below", "brightness")
    >>> h.flagged, sum(n for n, hit in zip(h.counts, h.flagged_bins) if hit)
    (2, 2)
    >>> property_histogram(np.array([1.0, 2, 3, 10]), 1.5, "below", "size", upper=5.0).flagged
    2
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0 or not is_number(cutoff) or not math.isfinite(float(cutoff)):
        return None
    cutoff = float(cutoff)
    two_sided = is_number(upper) and math.isfinite(float(upper)) and float(upper) > cutoff
    upper = float(upper) if two_sided else None
    log = _wants_log_scale(v) and cutoff > 0
    if log:
        floor = min(float(v[v > 0].min()), cutoff)
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
    flagged = [bool(edges[i + 1] <= c if below else edges[i] >= c) or (cu is not None and bool(edges[i] >= cu))
               for i in range(len(counts))]
    return Histogram(property=name, edges=[float(10.0 ** e if log else e) for e in edges],
                     counts=[int(n) for n in counts], flagged_bins=flagged, cutoff=cutoff,
                     direction="below" if below else "above", total=int(v.size),
                     flagged=int(sum(n for n, hit in zip(counts, flagged) if hit)), upper=upper, log=log,
                     nonpositive=int((v <= 0).sum()) if log else 0)


def _wants_log_scale(v: np.ndarray) -> bool:
    """True for non-negative values spanning 1.5+ decades whose logarithm is less skewed than they
    are (sharpness, noise): a linear axis would squeeze most of them into the first bars."""
    positive = v[v > 0]
    if v.min() < 0 or positive.size < 3:
        return False
    p1, p99 = np.percentile(positive, [1, 99])
    if p99 < 30 * p1:
        return False
    return bool(abs(_skew(np.log10(positive))) < abs(_skew(positive)))


def _skew(x: np.ndarray) -> float:
    """Sample skewness (the biased moment estimator, as scipy.stats.skew's default); NaN for constant values."""
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    if m2 <= (np.finfo(float).resolution * float(x.mean())) ** 2:
        return math.nan
    return float(np.mean(d ** 3)) / m2 ** 1.5
