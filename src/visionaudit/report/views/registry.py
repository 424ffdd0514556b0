"""Which view draws a finding: registered by check id or by check family, with a generic fallback.

A view is a function ``view(finding, ctx) -> list[Block]``. :func:`view_for` looks it up by the
finding's check id (``evaluation.calibration``), then its ``family`` (``quality``), then the family
part of the check id (findings saved before they carried a family), and otherwise gives
:func:`~visionaudit.report.views.base.generic_view`, which draws any finding that follows the
findings.json conventions. So a new check family, or a plugin check, gets a sensible section with no
edit to the renderers; a plugin that wants its own picture registers a view::

    from visionaudit.report.views import register_view, generic_view

    @register_view("acme")                       # every check of the family 'acme'
    def acme_view(finding, ctx):
        return generic_view(finding, ctx)        # or blocks of its own
"""
from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

from ...findings import Finding
from .base import ViewContext, generic_view
from .blocks import BLOCK_TYPES, Block, Note

View = Callable[[Finding, ViewContext], list[Block]]

#: The built-in view modules; each registers its views when imported.
_BUILTIN = ("quality", "integrity", "duplicates", "balance", "labels", "errors", "segments", "baselines",
            "evaluation", "compare", "hygiene")
_BLOCKS = tuple(BLOCK_TYPES.values())
_VIEWS: dict[str, View] = {}
_loaded = False


def register_view(key: str) -> Callable[[View], View]:
    """Register the decorated function as the view of a check id (``family.name``) or a whole family."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"register_view takes a check id or a family name, got {key!r}")

    def add(view: View) -> View:
        _VIEWS[key] = view
        return view

    return add


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in _BUILTIN:
            importlib.import_module(f"{__package__}.{name}")


def view_for(finding: Finding) -> View:
    """The view registered for the finding's check id, else its family, else :func:`generic_view`."""
    _load_builtin()
    for key in (finding.check, finding.family, finding.check.split(".", 1)[0]):
        if key and key in _VIEWS:
            return _VIEWS[key]
    return generic_view


def finding_blocks(finding: Finding, ctx: ViewContext) -> list[Block]:
    """The blocks of a finding's section. A registered view that fails (a plugin's, or one meeting
    evidence it does not know) is replaced by the generic view with a note, never a failed report."""
    view = view_for(finding)
    try:
        blocks = list(view(finding, ctx))
        strays = [b for b in blocks if not isinstance(b, _BLOCKS)]
        if strays:
            raise TypeError(f"a view returns blocks (visionaudit.report.views.blocks), got {type(strays[0]).__name__}")
        return blocks
    except Exception as exc:
        if view is generic_view:
            raise
        name = f"{getattr(view, '__module__', '?')}.{getattr(view, '__qualname__', view)}"
        warnings.warn(f"report view {name} failed on {finding.check} ({finding.issue}): {type(exc).__name__}: {exc}; "
                      "drawn by the generic view", RuntimeWarning, stacklevel=2)
        return [Note(f"This finding's own view failed ({type(exc).__name__}: {exc}); shown generically."),
                *generic_view(finding, ctx)]
