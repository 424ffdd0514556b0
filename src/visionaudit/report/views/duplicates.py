"""Duplicate and split-leakage findings: each cluster or leaked group side by side, with its kind,
similarity, the splits it spans and whether its labels disagree. A duplicate cluster lists its likely
original first (most pixels, then largest file), the one to keep; a group-column leak is titled by
its value (``patient_id = P012``)."""
from __future__ import annotations

from ...findings import Finding
from .base import ViewContext, facts, group, samples_blocks, traceback
from .blocks import Block, Groups
from .registry import register_view


def _groups(f: Finding, ctx: ViewContext, first_note: str | None) -> list[Block]:
    if not f.groups:
        return samples_blocks(f, ctx)
    shown = []
    for raw in f.groups[:ctx.max_groups]:
        g = group(raw, ctx)
        if raw.get("column") is not None and "value" in raw:
            g.title = f"{raw['column']} = {raw['value']}: {g.size} images"
        if first_note and g.members:
            g.members[0].note = first_note
        shown.append(g)
    return [Groups(shown, more=len(f.groups) - len(shown))]


@register_view("duplicates")
def duplicates_view(f: Finding, ctx: ViewContext) -> list[Block]:
    return [*facts(f), *traceback(f), *_groups(f, ctx, "likely original")]


@register_view("leakage")
def leakage_view(f: Finding, ctx: ViewContext) -> list[Block]:
    return [*facts(f), *traceback(f), *_groups(f, ctx, None)]
