"""Image-quality findings: the judged property's histogram with its cut-off (and the second property
a finding also judges by, e.g. low information's dynamic range), then the images worst first with
their value of the property."""
from __future__ import annotations

from ...findings import Finding
from .base import (
    ViewContext,
    facts,
    histogram_of,
    judged_property,
    property_histograms,
    samples_blocks,
    traceback,
)
from .blocks import Block
from .registry import register_view


@register_view("quality")
def quality_view(f: Finding, ctx: ViewContext) -> list[Block]:
    also = (f.evidence or {}).get("also")
    second = histogram_of(also, ctx) if isinstance(also, dict) else None
    return [*facts(f, skip=("also",) if second else ()), *traceback(f), *property_histograms(f, ctx),
            *([second] if second else []), *samples_blocks(f, ctx, judged_property(f))]
