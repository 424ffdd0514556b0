"""TEMPORARY: thumbnails decoded by the report for callers that do not pass ``thumbnails=`` yet.

The decode pass is becoming the one place that opens images (thumbnails made with the features);
once every caller of :func:`visionaudit.report.html.render_html` passes the thumbnails, delete this
module and the one line in ``html.py`` that calls it (marked ``DECODE FALLBACK``), with the
``decode_missing``, ``workers`` and (unless still wanted for the tile size) ``thumb_size`` arguments.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from ..features import decode

_THUMB_QUALITY = 72


def decode_thumbnails(features: pd.DataFrame, samples: list[str], size: int, workers: int | None) -> dict[str, bytes]:
    """JPEG thumbnails of ``samples`` that decode, each distinct file (the feature table's ``path``)
    decoded once, in a thread pool (Pillow releases the GIL while decoding)."""
    by_path: dict[str, list[str]] = {}
    paths_of = features["path"] if "path" in features.columns else pd.Series(dtype=object)
    for sample in dict.fromkeys(samples):
        path = paths_of.get(sample)
        if path is not None and not pd.isna(path):
            by_path.setdefault(str(path), []).append(sample)
    paths = list(by_path)
    if not paths:
        return {}
    n_workers = max(1, min(workers or (os.cpu_count() or 1), 8, len(paths)))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        images = list(pool.map(lambda p: _jpeg(decode.open_for_display(p, size)), paths))
    return {sample: data for path, data in zip(paths, images) if data is not None for sample in by_path[path]}


def _jpeg(im: Any) -> bytes | None:
    if im is None:
        return None
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=_THUMB_QUALITY, optimize=True)
    return buf.getvalue()
