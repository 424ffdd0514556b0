"""report.html: one self-contained page (inline CSS, SVG and base64 thumbnails) that opens offline.

The page draws the Result's views (:mod:`visionaudit.report.views`): a summary of findings by
severity, the overview sections (class counts, model metrics), then one section per finding with its
why/fix text and its blocks, each block type by one macro of ``templates/report.html.j2`` with the
geometry of :mod:`visionaudit.report.charts`. Galleries are capped so the page stays a few MB for any
dataset size; the rest is in ``findings.json``.

Thumbnails (sample id -> JPEG bytes) come from the ``thumbnails`` mapping given, else from the
Result's own (``result.thumbnails``: those of the run's decode pass, or of a saved run folder). The
report never opens an image file: a tile without a thumbnail says why it has no picture.
"""
from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..findings import Result
from . import charts
from .format import cut_start, fmt_num, run_time
from .views import build_report
from .views.base import MAX_GALLERY, MAX_GROUPS
from .views.blocks import Bars, ClassCounts, Confusion, Interval, Reliability, SplitBar

if TYPE_CHECKING:
    import jinja2

THUMB_SIZE = 112


def caption_chars(thumb_size: int) -> int:
    """How many characters of a sample id a tile's caption shows: two lines of the 11 px monospace
    font (6.6 px a character) across the tile; longer ids are cut at the start, keeping the file name."""
    return max(8, 2 * int(thumb_size / 6.6))


@dataclass(frozen=True)
class Image:
    """A thumbnail as a data URI, with its size in pixels."""

    uri: str
    width: int
    height: int


def write_html(
    result: Result,
    path: str | os.PathLike,
    *,
    max_gallery: int = MAX_GALLERY,
    max_groups: int = MAX_GROUPS,
    thumb_size: int = THUMB_SIZE,
    thumbnails: Mapping[str, bytes] | None = None,
) -> Path:
    """Write the self-contained HTML report and return its path.

    >>> from visionaudit import scan
    >>> result = scan("data/")
    >>> write_html(result, "out/report.html")
    PosixPath('out/report.html')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(result, max_gallery=max_gallery, max_groups=max_groups, thumb_size=thumb_size,
                       thumbnails=thumbnails)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_html(
    result: Result,
    *,
    max_gallery: int = MAX_GALLERY,
    max_groups: int = MAX_GROUPS,
    thumb_size: int = THUMB_SIZE,
    thumbnails: Mapping[str, bytes] | None = None,
) -> str:
    """The report as one HTML string (see :func:`write_html` and the module's note on thumbnails)."""
    if not isinstance(thumb_size, int) or thumb_size < 1:
        raise ValueError(f"invalid thumb_size={thumb_size!r}: expected a positive integer")
    report = build_report(result, max_gallery=max_gallery, max_groups=max_groups)
    wanted = list(dict.fromkeys(t.sample for t in report.tiles()))
    if thumbnails is None:
        thumbnails = result.thumbnails if result.thumbnails is not None else {}
    images = {s: _image(data) for s in wanted if (data := thumbnails.get(s)) is not None}
    return _template().render(report=report, images=images, thumb_size=thumb_size,
                              caption_chars=caption_chars(thumb_size))


def _image(data: bytes) -> Image:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as im:
        width, height = im.size
    return Image("data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"), width, height)


# ---------------------------------------------------------------------------------------------
# Block geometry for the template (the blocks hold numbers; the SVG needs coordinates)


def _reliability(r: Reliability) -> dict[str, Any] | None:
    return charts.reliability_diagram([asdict(b) for b in r.bins], ece=r.ece, title=r.title, small=r.small,
                                      x_label=r.x_label, y_label=r.y_label)


def _bars(b: Bars) -> dict[str, Any] | None:
    return charts.accuracy_bars([asdict(bar) for bar in b.bars])


def _split_bar(b: SplitBar) -> dict[str, Any] | None:
    return charts.split_bar(b.left, b.right, left_label=b.left_label, right_label=b.right_label)


def _class_bars(b: ClassCounts) -> list[dict[str, Any]]:
    """Each class's count per split with its share of the split, and a bar width relative to the
    largest share of any split (so a minority class reads the same in every split)."""
    totals = [max(t, 1) for t in b.totals]
    peak = max((n / t for r in b.rows for n, t in zip(r.counts, totals)), default=0.0) or 1.0
    return [{"label": r.label, "missing": 0 in r.counts,
             "cells": [{"count": n, "pct": f"{100 * n / t:.1f}", "width": round(100 * n / t / peak, 1)}
                       for n, t in zip(r.counts, totals)]}
            for r in b.rows]


def _confusion_cells(b: Confusion) -> list[dict[str, Any]]:
    """Each true class's row of counts with its row-normalised rate (the shade)."""
    rows = []
    for i, (label, counts) in enumerate(zip(b.classes, b.counts)):
        total = sum(counts)
        rows.append({"label": label, "total": total,
                     "cells": [{"count": n, "rate": n / max(total, 1), "pct": f"{100 * n / max(total, 1):.0f}",
                                "diagonal": i == j} for j, n in enumerate(counts)]})
    return rows


def _strip(i: Interval | None) -> dict[str, Any] | None:
    if i is None:
        return None
    return charts.interval_strip(i.value, i.low, i.high, lo=i.lo, hi=i.hi, ref=i.ref, ref_low=i.ref_low,
                                 ref_high=i.ref_high, width=i.width)


#: How the template is compiled (part of the compiled-template cache's folder name).
_TEMPLATE_OPTIONS = {"autoescape": True, "trim_blocks": True, "lstrip_blocks": True}


def template_cache_dir() -> Path:
    """Where the compiled report template is kept: ``jinja-<Jinja version>-<options>`` under the user
    cache folder (``$VISIONAUDIT_CACHE``, else ``$XDG_CACHE_HOME/visionaudit``, else
    ``~/.cache/visionaudit``, as for the feature cache).

    Compiling ``report.html.j2`` costs 0.15-0.3 s; loading the compiled code, a few ms. Jinja recompiles
    when the template's source changes (its checksum is in each cache file) or Python's version does.
    """
    import hashlib

    import jinja2

    env = os.environ.get("VISIONAUDIT_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "visionaudit"
    options = hashlib.sha1(repr(sorted(_TEMPLATE_OPTIONS.items())).encode()).hexdigest()[:8]
    return base / f"jinja-{jinja2.__version__}-{options}"


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """A file cache of compiled templates in :func:`template_cache_dir`; None where it cannot be made.
    A cache file that cannot be written is skipped: the report never fails for its cache."""
    import jinja2

    class Cache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Any) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    try:
        folder = template_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home folder to expand
        return None
    return Cache(str(folder))


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visionaudit.report", "templates"),
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_bytecode_cache(),
        **_TEMPLATE_OPTIONS,
    )
    env.filters["num"] = fmt_num
    env.globals["run_time"] = run_time
    env.filters["cut_start"] = cut_start
    env.globals.update(histogram_svg=charts.histogram_geometry, reliability_svg=_reliability, bars_svg=_bars,
                       split_svg=_split_bar, strip_svg=_strip, class_bars=_class_bars, confusion_cells=_confusion_cells)
    return env.get_template("report.html.j2")
