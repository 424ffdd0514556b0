"""File-integrity findings: the files worst first, each with what is wrong with it (the decoder's error
on its placeholder, the format behind a wrong extension, the EXIF orientation, the pixel mode), and a
file listed on several manifest rows as one group titled by its path."""
from __future__ import annotations

from ...findings import Finding
from .base import ViewContext, facts, gallery, group, traceback
from .blocks import Block, Groups
from .registry import register_view

#: How each per-image evidence map reads under its image ('' = the value alone).
_NOTES = {"formats": "", "orientations": "EXIF orientation", "modes": "mode"}


@register_view("integrity")
def integrity_view(f: Finding, ctx: ViewContext) -> list[Block]:
    blocks = [*facts(f), *traceback(f)]
    if f.groups:
        shown = []
        for raw in f.groups[:ctx.max_groups]:
            g = group(raw, ctx)
            if raw.get("path"):
                g.title = f"{raw['path']} on {g.size} rows"
            shown.append(g)
        blocks.append(Groups(shown, more=len(f.groups) - len(shown)))
    else:
        tiles = gallery(f, ctx, note_names=_NOTES)
        blocks += [tiles] if tiles else []
    return blocks
