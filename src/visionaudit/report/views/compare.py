"""The model-comparison finding: the verdict in words, a table of A, B and B - A with its paired CI
per metric, McNemar's discordant counts as a table and a split bar, and galleries of the samples B
broke (lowest B probability of the label first) and B fixed."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...findings import Finding
from ..charts import symmetric_range
from ..format import (
    f3,
    fmt_num,
    level,
    metric_name,
    num_or_nan,
    p_value,
    signed,
    with_ci,
)
from .base import ViewContext, facts, score_key, table, tile, traceback
from .blocks import Block, Cell, Column, Group, Groups, Interval, Row, SplitBar, Verdict
from .registry import register_view

#: Most samples in each of the galleries (samples B fixed, samples B broke).
MAX_CHANGED = 24
#: Metrics where lower is better.
LOWER_IS_BETTER = frozenset({"log_loss", "ece"})


def _model_label(source: Any, fallback: str) -> str:
    return f"{fallback} ({Path(str(source)).name})" if source else fallback


def _favours(low: Any, high: Any, higher_is_better: bool) -> str:
    """Which model a difference B - A favours: by its CI, not its point estimate."""
    lo, hi = num_or_nan(low), num_or_nan(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    if lo > 0 or hi < 0:
        return "B better" if (lo > 0) == higher_is_better else "A better"
    return "no clear difference (CI holds 0)"


def _changed(title: str, samples: list[str], ctx: ViewContext, scores: dict[str, Any], worst_first: bool) -> Group:
    """Samples one model got right and the other wrong, ordered by B's probability of the label."""
    ordered = sorted(samples, key=lambda s: score_key(scores.get(s)) * (1 if worst_first else -1))
    members = []
    for s in ordered[:MAX_CHANGED]:
        t = tile(s, ctx)
        if score_key(scores.get(s)) != math.inf:
            t.note = f"B p(label) {float(scores[s]):.3f}"
        members.append(t)
    return Group(size=len(samples), members=members, title=title, more=len(samples) - len(members))


@register_view("evaluation.model_comparison")
def model_comparison_view(f: Finding, ctx: ViewContext) -> list[Block]:
    ev = f.evidence
    chips = facts(f, skip=("regressed", "improved", "mcnemar"))
    if "metrics" not in ev:
        return [*chips, *traceback(f)]  # nothing compared (no shared samples): the message says why
    conf = level(ev.get("confidence", 0.95))
    alpha = 1.0 - float(ev.get("confidence", 0.95))
    a, b = _model_label(ev.get("a"), "A"), _model_label(ev.get("b"), "B")
    n = int(ev.get("n") or 0)
    rows = []
    for key, m in (ev.get("metrics") or {}).items():
        if not isinstance(m, dict):
            continue
        diff, low, high = m.get("difference"), m.get("low"), m.get("high")
        reach = symmetric_range([diff, low, high])
        higher = bool(m.get("higher_is_better", key not in LOWER_IS_BETTER))
        favours = _favours(low, high, higher)
        rows.append(Row([Cell(metric_name(key) + ("" if higher else " (lower is better)")),
                         Cell(f3(m.get("a")), numeric=True), Cell(f3(m.get("b")), numeric=True),
                         Cell(f"{with_ci(diff, low, high, signed)} (axis \u00b1{reach:g})",
                              interval=Interval(diff, low, high, lo=-reach, hi=reach, ref=0.0)),
                         Cell(p_value(m.get("bootstrap_p")), numeric=True), Cell(favours)],
                        flagged=favours == "A better"))
    test = ev.get("mcnemar") or {}
    only_a, only_b = int(test.get("only_a_right") or 0), int(test.get("only_b_right") or 0)
    p = num_or_nan(test.get("p_value"))
    needed = ev.get("samples_needed")
    blocks: list[Block] = [*chips, *traceback(f), _verdict(ev, a, b, p, alpha, needed),
        table(f"{b} vs {a} on the {ev.get('split', 'evaluation')} split's {n:,} shared samples (paired bootstrap, {conf} CIs)",
              [Column("metric"), Column("A", numeric=True), Column("B", numeric=True), Column(f"B \u2212 A, {conf} CI (| = 0)"),
               Column("bootstrap p", numeric=True), Column("by the CI")], rows, role="comparison"),
        table(f"McNemar's {'exact ' if test.get('exact') else ''}test on the samples the models disagree about",
              [Column("only A right (B broke)", numeric=True), Column("only B right (B fixed)", numeric=True),
               Column("same for both", numeric=True), Column("p", numeric=True),
               Column(f"samples for {level(ev.get('power', 0.8))} power", numeric=True)],
              [Row([Cell(fmt_num(only_a), numeric=True), Cell(fmt_num(only_b), numeric=True),
                    Cell(fmt_num(max(n - only_a - only_b, 0)), numeric=True), Cell(p_value(p), numeric=True),
                    Cell("n/a" if needed is None else fmt_num(needed), numeric=True)])], role="mcnemar")]
    if only_a + only_b > 0:
        blocks.append(SplitBar(
            left=only_a, right=only_b, left_label=f"only A right: {only_a}", right_label=f"only B right: {only_b}",
            caption=(f"The {only_a + only_b:,} discordant samples: red, those only {a} gets right; blue, those only "
                     f"{b} gets right. With no real difference they would split about evenly (the dashed mark); "
                     f"the other {max(n - only_a - only_b, 0):,} samples are right or wrong for both.")))
    scores = f.scores or {}
    broke, fixed = [str(s) for s in ev.get("regressed") or []], [str(s) for s in ev.get("improved") or []]
    # The finding scores the samples B broke (B's probability of the label); the fixed ones keep its order.
    changed = []
    if broke:
        changed.append(_changed(f"B broke {len(broke):,}: only A gets them right (lowest B p(label) first)",
                                broke, ctx, scores, worst_first=True))
    if fixed:
        changed.append(_changed(f"B fixed {len(fixed):,}: only B gets them right", fixed, ctx, scores, worst_first=False))
    if changed:
        blocks.append(Groups(changed))
    return blocks


def _verdict(ev: dict[str, Any], a: str, b: str, p: float, alpha: float, needed: Any) -> Verdict:
    verdict = str(ev.get("verdict", ""))
    acc = (ev.get("metrics") or {}).get("accuracy") or {}
    relation = "<" if p < alpha else "\u2265"
    figures = (f"McNemar p = {p_value(p)} {relation} {alpha:.2g}; accuracy B \u2212 A "
               f"{with_ci(acc.get('difference'), acc.get('low'), acc.get('high'), signed)}")
    if ev.get("significant"):
        text = f"{b} is significantly {verdict} than {a} ({figures})."
        if verdict == "worse":
            text += " A regression: look at the samples B broke before shipping it."
        return Verdict("good" if verdict == "better" else "bad", text)
    text = f"No significant difference between {b} and {a} ({figures})."
    text += (f" To detect a difference this size with {level(ev.get('power', 0.8))} power, a test set needs about "
             f"{int(needed):,} samples." if needed is not None else
             " They get equally many samples right that the other gets wrong.")
    return Verdict("neutral", text)
