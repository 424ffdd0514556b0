"""findings.json: the versioned, documented machine-readable report (docs/findings-schema.md)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..findings import Result


def _plain(obj: Any) -> Any:
    """Make numpy/pandas values JSON-serialisable; NaN becomes null."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def result_json(result: Result) -> dict[str, Any]:
    return _plain(result.to_dict())


def write_json(result: Result, path: str | os.PathLike) -> Path:
    """Write ``findings.json`` and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result_json(result), indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path
