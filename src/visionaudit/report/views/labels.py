"""Label-issue findings: every candidate worst first, each tile saying "given -> suggested" (the
reason on hover), and next to them the differently labelled duplicate clusters with the label their
copies suggest."""
from __future__ import annotations

from typing import Any

from ...findings import Finding
from .base import ViewContext, changed_gallery, facts, groups, text_or_none, traceback
from .blocks import Block, Change, Tile
from .registry import register_view


def _suggested(row: dict[str, Any], t: Tile) -> Change | None:
    if row.get("suggested_label") is None:
        return None
    return Change(given=text_or_none(row.get("given_label", t.label)), verb="suggested", other=str(row["suggested_label"]),
                  why=row["reason"] if isinstance(row.get("reason"), str) else None)


@register_view("labels")
def label_issues_view(f: Finding, ctx: ViewContext) -> list[Block]:
    clusters = groups(f, ctx)
    for g, raw in zip(clusters.groups if clusters else [], f.groups):
        if raw.get("suggested_label") is not None:
            g.facts.append(f"suggested {raw['suggested_label']}")
    return [*facts(f), *traceback(f), *changed_gallery(f, ctx, "candidates", _suggested),
            *([clusters] if clusters else [])]
