"""Weak-segment findings: the weak slices as a table (size, accuracy with its CI strip against the
overall accuracy, drop, p and q), every slice tested in a collapsed table, and each weak slice's
images, wrong ones first; an embedding cluster, which has no name a person wrote, is named with its
embedder and also shows its members nearest the centre."""
from __future__ import annotations

from typing import Any

from ...findings import Finding
from ..format import fmt_value, level, p_value, pct
from .base import MAX_GROUP_MEMBERS, ViewContext, facts, groups, table, tile, traceback
from .blocks import Block, Cell, Column, Interval, Row
from .registry import register_view


def _slice_name(r: dict[str, Any], embedder: Any) -> str:
    """A slice's name; an embedding cluster's says which embedder's space it is a cluster of."""
    name = str(r.get("slice"))
    if r.get("kind") == "cluster":
        which = r.get("embedder") or embedder
        return f"{name} ({which} embedding)" if which else name
    return name


@register_view("segments")
def weak_segments_view(f: Finding, ctx: ViewContext) -> list[Block]:
    ev = f.evidence
    overall = ev.get("overall_accuracy")
    embedder = (f.thresholds or {}).get("embedder")
    slices = groups(f, ctx)
    for g, raw in zip(slices.groups if slices else [], f.groups):
        ci = raw.get("ci") or [None, None]
        g.title = _slice_name(raw, embedder)
        g.size = int(raw.get("size", g.size))
        g.facts = [f"{g.size:,} samples", f"accuracy {pct(raw.get('accuracy'))} [{pct(ci[0])}, {pct(ci[1])}]",
                   f"q = {p_value(raw.get('q'))}", "examples: wrong first"]
        g.more = 0
        g.labels_disagree = False  # a slice holds every class; differing labels are expected
        typical = [str(s) for s in raw.get("typical") or []][:MAX_GROUP_MEMBERS]
        if typical:
            g.facts.pop()
            g.members_title = "examples: wrong first"
            g.typical = [tile(s, ctx) for s in typical]
            g.typical_title = "typical: nearest the cluster's centre"

    def row(r: dict[str, Any]) -> Row:
        ci = r.get("ci") or [None, None]
        return Row([Cell(_slice_name(r, embedder)), Cell(str(r.get("kind", ""))), Cell(fmt_value(r.get("size")), numeric=True),
                    Cell(pct(r.get("accuracy")), numeric=True),
                    Cell(f"{pct(ci[0])} to {pct(ci[1])}", interval=Interval(r.get("accuracy"), ci[0], ci[1], ref=overall)),
                    Cell(pct(r.get("drop")), numeric=True), Cell(p_value(r.get("p")), numeric=True),
                    Cell(p_value(r.get("q")), numeric=True)],
                   flagged=bool(r.get("flagged", True)))

    columns = [Column("slice"), Column("kind"), Column("size", numeric=True), Column("accuracy", numeric=True),
               Column(f"{level(f.thresholds.get('confidence', 0.95))} CI (| = overall)"), Column("drop", numeric=True),
               Column("p", numeric=True), Column("q", numeric=True)]
    blocks = [*facts(f), *traceback(f)]
    if f.groups:
        blocks.append(table(f"Weak slices (overall accuracy {pct(overall)})", columns, [row(r) for r in f.groups],
                            role="segments"))
    tested = [r for r in ev.get("slices", []) if isinstance(r, dict)]
    if tested:
        blocks.append(table(f"All {len(tested)} slices tested ({ev.get('test', 'one-sided test')}, {ev.get('correction', '')} q)",
                            columns, [row(r) for r in sorted(tested, key=lambda r: (r.get('q', 1.0), r.get('slice', '')))],
                            collapsed=True, role="segments"))
    return blocks + ([slices] if slices else [])
