"""Model-error findings: the most confused class pairs (a table, then each pair's images with the
model's probability of the wrong class) and the most confidently wrong images ("given -> predicted p")."""
from __future__ import annotations

from typing import Any

from ...findings import Finding
from ..format import fmt_num, pct
from .base import (
    ViewContext,
    changed_gallery,
    facts,
    groups,
    table,
    text_or_none,
    traceback,
)
from .blocks import Block, Cell, Change, Column, Row, Tile
from .registry import register_view


def _predicted(row: dict[str, Any], t: Tile) -> Change:
    prob = row.get("probability")
    return Change(given=text_or_none(row.get("given_label")), verb="predicted",
                  other=text_or_none(row.get("predicted_label")), probability=None if prob is None else float(prob))


@register_view("errors.confident_errors")
def confident_errors_view(f: Finding, ctx: ViewContext) -> list[Block]:
    return [*facts(f), *traceback(f), *changed_gallery(f, ctx, "worst", _predicted)]


@register_view("errors.confused_pairs")
def confused_pairs_view(f: Finding, ctx: ViewContext) -> list[Block]:
    pairs = groups(f, ctx)
    rows = []
    for g, raw in zip(pairs.groups if pairs else [], f.groups):
        true, pred = raw.get("true"), raw.get("predicted")
        g.title = f"true {true} \u2192 predicted {pred}"
        g.facts = [f"{raw.get('count')} sample(s)", f"{pct(raw.get('share'))} of true {true}"]
        if raw.get("reverse"):
            g.facts.append(f"{raw['reverse']} the other way")
        g.size = int(raw.get("count", g.size))
        g.more = g.size - len(g.members)
        for t, conf in zip(g.members, raw.get("confidence") or []):
            t.note = f"p({pred}) {conf:.3f}"
        rows.append(Row([Cell(str(true)), Cell(str(pred)), Cell(fmt_num(raw.get("count")), numeric=True),
                         Cell(pct(raw.get("share")), numeric=True), Cell(fmt_num(raw.get("support")), numeric=True),
                         Cell(fmt_num(raw.get("reverse", 0)), numeric=True)]))
    blocks = [*facts(f), *traceback(f)]
    if rows:
        blocks.append(table(None, [Column("true class"), Column("predicted"), Column("count", numeric=True),
                                   Column("share of true class", numeric=True), Column("true class samples", numeric=True),
                                   Column("the other way", numeric=True)], rows, role="pairs"))
    return blocks + ([pairs] if pairs else [])
