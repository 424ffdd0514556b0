"""findings.json: the versioned, documented machine-readable report (docs/findings-schema.md)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..findings import Result


def result_json(result: Result) -> dict[str, Any]:
    """findings.json's content: the Result without its per-item tables (a run folder keeps those as
    Parquet files, see :mod:`visionaudit.report.run_folder`)."""
    return result.to_dict(tables=False)


def write_json(result: Result, path: str | os.PathLike) -> Path:
    """Write ``findings.json`` and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result_json(result), indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path
