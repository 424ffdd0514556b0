"""The run folder: everything a saved run needs to be rendered again, with no image or dataset.

``findings.json`` (the Result without its per-item tables), ``scores.parquet`` (the scores table:
a row per judged sample, ``is_<issue>`` and ``<issue>_score`` per issue), ``object_scores.parquet``
(the same per object, when a check judged objects), ``features.parquet`` (the per-image properties
the report's histograms and galleries read) and ``thumbnails.parquet`` (the report's thumbnails,
sample id -> JPEG bytes). :func:`load_run` gives back an equal Result and the thumbnails.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import SourceError
from ..findings import Result
from .json import write_json

FINDINGS = "findings.json"
SCORES = "scores.parquet"
OBJECT_SCORES = "object_scores.parquet"
PREDICTION_SCORES = "prediction_scores.parquet"
FEATURES = "features.parquet"
THUMBNAILS = "thumbnails.parquet"


def _write_table(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=True)
    os.replace(tmp, path)


def _read_table(path: Path) -> pd.DataFrame:
    """A table written by :func:`_write_table`, with text columns that were ``object`` (None where
    missing) read back as such rather than as pandas' string dtype."""
    df = pd.read_parquet(path)
    meta = pq.read_schema(path).pandas_metadata or {}
    for col in meta.get("columns", []):
        name = col.get("name")
        if col.get("numpy_type") == "object" and name in df.columns and df[name].dtype != object:
            values = df[name]
            df[name] = pd.Series(values.astype(object).where(values.notna(), None), index=df.index, dtype=object)
    return df


def save_run(result: Result, out: str | os.PathLike, thumbnails: Mapping[str, bytes] | None = None) -> Path:
    """Write ``result`` (and the report's ``thumbnails``) into the run folder ``out``; returns the
    path of ``findings.json``. Files of an earlier run in the folder are replaced, one by one.

    Without ``thumbnails``, the Result's own are kept (``result.thumbnails``, from its decode pass):
    those a report looked up already and those the report of this Result shows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_table(result.issues, out / SCORES)
    for table, name in ((result.object_issues, OBJECT_SCORES), (result.prediction_issues, PREDICTION_SCORES)):
        if table is not None:
            _write_table(table, out / name)
        elif (out / name).exists():
            (out / name).unlink()
    _write_table(result.features, out / FEATURES)
    if thumbnails is None and result.thumbnails is not None:
        thumbnails = _shown_thumbnails(result, result.thumbnails)
    if thumbnails is not None:
        ids = sorted(thumbnails)
        table = pa.table({"sample_id": pa.array(ids, pa.string()),
                          "jpeg": pa.array([thumbnails[i] for i in ids], pa.binary())})
        tmp = out / (THUMBNAILS + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, out / THUMBNAILS)
    return write_json(result, out / FINDINGS)


def _shown_thumbnails(result: Result, source: Mapping[str, bytes]) -> dict[str, bytes]:
    """The thumbnails ``source`` has of the samples it gave already and of those the report of ``result`` shows."""
    from .views import build_report

    wanted = dict.fromkeys([*source, *(t.sample for t in build_report(result).tiles())])
    return {s: data for s in wanted if (data := source.get(s)) is not None}


def load_run(run_dir: str | os.PathLike) -> tuple[Result, dict[str, bytes]]:
    """The Result saved in ``run_dir`` by :func:`save_run`, and its thumbnails (empty if none were saved),
    which the Result carries too (``result.thumbnails``), so its report shows them.

    >>> saved, thumbnails = load_run("visionaudit-report")     # what save_run(result, ...) wrote
    >>> saved == result, len(thumbnails), saved.thumbnails is thumbnails   # the thumbnails its report shows
    (True, 76, True)
    >>> saved.issues["label_issues_score"].nsmallest(2)
    sample_id
    train/beach/beach_0022.jpg    0.0082
    val/forest/forest_0008.jpg    0.0319
    Name: label_issues_score, dtype: float64
    """
    run_dir = Path(run_dir)
    path = run_dir / FINDINGS
    if not path.is_file():
        raise SourceError(str(path), "not found: a run folder holds the findings.json that `visionaudit scan` "
                                     "or `evaluate` wrote with --out")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(str(path), f"cannot read findings.json: {exc}") from exc
    tables = {}
    for key, name in (("issues", SCORES), ("features", FEATURES), ("object_issues", OBJECT_SCORES),
                      ("prediction_issues", PREDICTION_SCORES)):
        file = run_dir / name
        tables[key] = _read_table(file) if file.is_file() else None
    try:
        result = Result.from_dict(data, tables=tables)
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(str(path), f"not a visionaudit findings.json this version reads: {exc}") from exc
    thumbnails: dict[str, bytes] = {}
    if (run_dir / THUMBNAILS).is_file():
        table = pq.read_table(run_dir / THUMBNAILS)
        thumbnails = dict(zip(table.column("sample_id").to_pylist(), table.column("jpeg").to_pylist()))
    result.thumbnails = thumbnails
    return result, thumbnails
