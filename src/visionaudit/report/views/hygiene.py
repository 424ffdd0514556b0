"""The leaked-test-metrics finding: each test copy next to its training original(s), and every
headline metric on all test samples and on those that copy no training sample, with their CIs and
the inflation (the accuracy's own CI)."""
from __future__ import annotations

import math

from ...findings import Finding
from ..charts import symmetric_range, zoomed_range
from ..format import level, metric_name, num_or_nan, pct, signed, with_ci
from .base import ViewContext, facts, groups, table, traceback
from .blocks import Block, Cell, Column, Interval, Row
from .compare import LOWER_IS_BETTER
from .registry import register_view

#: Metrics that are not proportions in [0, 1] (their strips are not clipped to it).
UNBOUNDED = frozenset({"log_loss"})


def _has_ci(row: dict) -> bool:
    return math.isfinite(num_or_nan(row.get("low"))) and math.isfinite(num_or_nan(row.get("high")))


@register_view("evaluation.leaked_test_metrics")
def leaked_test_metrics_view(f: Finding, ctx: ViewContext) -> list[Block]:
    ev = f.evidence
    split = str(ev.get("split", "test"))
    pairs = groups(f, ctx)
    for g, raw in zip(pairs.groups if pairs else [], f.groups):
        sources = int(raw.get("sources", g.size - 1))
        trained = f"{sources:,} training sample{'' if sources == 1 else 's'}"
        if raw.get("kind") == "group":
            g.title = f"shares {raw.get('column')} = {raw.get('value')} with {trained}"
        else:
            g.title = f"{raw.get('kind', 'a')} copy of {trained}"
        # Each tile has its split badge; the kind is in the title.
        g.facts = [fact for fact in g.facts if fact != raw.get("kind")]
        g.splits = []
        # The finding lists at most a few sources per copy; the count says how many there are.
        g.more = max(sources + 1 - len(g.members), 0)
    blocks: list[Block] = [*facts(f), *traceback(f)]
    metrics = ev.get("metrics")
    if isinstance(metrics, dict):
        blocks.append(_metrics_table(ev, metrics, split))
    return blocks + ([pairs] if pairs else [])


def _metrics_table(ev: dict, metrics: dict, split: str) -> Block:
    rows = []
    # Metrics with CIs first: only they get a strip (a zoomed axis of two bare points would exaggerate the gap).
    ordered = sorted(((k, m) for k, m in metrics.items() if isinstance(m, dict)),
                     key=lambda km: not _has_ci(km[1].get("original") or {}))
    for key, m in ordered:
        before, after = m.get("original") or {}, m.get("deleaked") or {}
        strip = None
        if _has_ci(before) and _has_ci(after):
            values = [before.get(k) for k in ("value", "low", "high")] + [after.get(k) for k in ("value", "low", "high")]
            lo, hi = zoomed_range(values, **({} if key in UNBOUNDED else {"floor": 0.0, "ceiling": 1.0}))
            strip = Interval(after.get("value"), after.get("low"), after.get("high"), lo=lo, hi=hi,
                             ref=before.get("value"), ref_low=before.get("low"), ref_high=before.get("high"))
        inflation, inflation_strip = signed(m.get("inflation")), None
        if key == "accuracy" and "accuracy_inflation" in ev:
            gap = [ev.get("accuracy_inflation"), ev.get("accuracy_inflation_low"), ev.get("accuracy_inflation_high")]
            inflation = with_ci(*gap, signed)
            reach = symmetric_range(gap)
            inflation_strip = Interval(*gap, lo=-reach, hi=reach, ref=0.0, width=110.0)
        rows.append(Row([Cell(metric_name(key) + (" (lower is better)" if key in LOWER_IS_BETTER else "")),
                         Cell(with_ci(before.get("value"), before.get("low"), before.get("high")), numeric=True),
                         Cell(with_ci(after.get("value"), after.get("low"), after.get("high")), interval=strip),
                         Cell(inflation, interval=inflation_strip)],
                        flagged=key == "accuracy"))
    return table(
        f"Metrics on all {int(ev.get('n') or 0):,} {split} samples vs the {int(ev.get('clean') or 0):,} that copy no "
        f"training sample ({level(ev.get('confidence', 0.95))} bootstrap CIs)",
        [Column("metric"), Column("original", numeric=True),
         Column("de-leaked with CI (band: original CI, |: original; axis zoomed per row)"),
         Column("inflation = original \u2212 de-leaked")], rows, role="deleaked",
        note=(f"The {int(ev.get('copies') or 0):,} copies are {pct(ev.get('copies_accuracy'))} right. The accuracy "
              f"inflation's CI resamples copies and clean samples apart (| = 0); the other inflations are plain "
              f"differences."))
