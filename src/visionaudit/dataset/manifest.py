"""CSV / TSV / Parquet manifests: one row per sample, a path column and optional label, split, id, metadata.

Rows are kept as the user wrote them, including rows whose file does not exist (the features stage
reports those as ``missing``) and rows repeating a path (``integrity.duplicate_paths`` reports those),
so every finding can point back at a manifest line.
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .folders import SPLIT_NAMES
from .model import SAMPLE_COLUMNS, Dataset, make_samples

#: Accepted names (case-insensitive) of the standard columns, in order of preference.
PATH_COLUMNS = ("path", "filepath", "file", "filename", "image")
LABEL_COLUMNS = ("label", "class")
SPLIT_COLUMNS = ("split",)
ID_COLUMNS = ("sample_id", "id")

PARQUET_SUFFIXES = (".parquet", ".pq")
#: Prefix given to a metadata column whose name a later stage already uses (``width``, ``format``...).
RENAMED_PREFIX = "manifest_"


def unique_ids(ids: Sequence[str], tags: Sequence[str]) -> list[str]:
    """Make sample ids unique: an id's first use keeps it, each repeat becomes ``"<id>@<tag>"``.

    Used by every reader whose source may list one file several times, so each listing stays a
    sample of its own that findings can name.

    >>> unique_ids(["a.jpg", "b.jpg", "a.jpg"], ["line 2", "line 3", "line 4"])
    ['a.jpg', 'b.jpg', 'a.jpg@line 4']
    """
    taken = set(ids)
    first: set[str] = set()
    out = []
    for sid, tag in zip(ids, tags):
        if sid not in first:
            first.add(sid)
            out.append(sid)
            continue
        candidate, k = f"{sid}@{tag}", 2
        while candidate in taken:
            candidate, k = f"{sid}@{tag}#{k}", k + 1
        taken.add(candidate)
        out.append(candidate)
    return out


def split_name(value: str) -> str:
    """The canonical split name (``training`` -> ``train``, ``valid``/``dev`` -> ``val``...); other names
    are kept as written, without surrounding spaces.

    >>> split_name("Validation"), split_name("holdout")
    ('val', 'holdout')
    """
    value = value.strip()
    return SPLIT_NAMES.get(value.lower(), value)


def _reserved_names() -> set[str]:
    # Columns the samples table gets from us, or that the features table adds when the two are joined.
    from ..features.decode import COLUMNS
    return {*SAMPLE_COLUMNS, "source_line", *COLUMNS}


class _Table:
    """Raw manifest cells (``None`` where empty) with the line or row each record came from."""

    def __init__(self, source: Path, columns: list[str], records: list[list[Any]], lines: list[int], unit: str,
                 header_line: int | None = None):
        self.source, self.columns, self.records, self.lines, self.unit = source, columns, records, lines, unit
        self.header_line = header_line

    def error(self, problem: str, line: int | None = None, column: str | None = None) -> SourceError:
        """An error naming the file and the record (CSV line or Parquet row) and column."""
        if line is not None and self.unit == "row":
            return SourceError(str(self.source), f"row {line}: {problem}", field=column)
        return SourceError(str(self.source), problem, line=line, field=column)


def _guess_delimiter(header_line: str) -> str:
    for delim in (",", "\t", ";", "|"):
        if delim in header_line:
            return delim
    return ","


def _read_delimited(source: Path) -> _Table:
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise SourceError(str(source), f"cannot read manifest: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(str(source), f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the manifest as UTF-8",
                          line=data.count(b"\n", 0, exc.start) + 1) from exc
    if source.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        delimiter = _guess_delimiter(text.lstrip("\r\n").split("\n", 1)[0])
    # strict: an unclosed quote is an error, not a field that silently swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = 0
    records: list[list[Any]] = []
    lines: list[int] = []
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header, header_line = [c.strip() for c in record], start
                continue
            if len(record) != len(header):
                hint = " (a delimiter inside an unquoted value?)" if len(record) > len(header) else ""
                raise SourceError(str(source), f"expected {len(header)} fields like the header on line {header_line}, "
                                               f"got {len(record)}{hint}", line=start)
            records.append([cell if cell.strip() else None for cell in record])
            lines.append(start)
    except csv.Error as exc:
        hint = " (a quote that is never closed?)" if "end of data" in str(exc) else ""
        raise SourceError(str(source), f"cannot parse CSV record: {exc}{hint}", line=end + 1) from exc
    if header is None:
        raise SourceError(str(source), "empty manifest: expected a header row naming the columns (at least 'path')")
    columns = [name or f"unnamed_{i + 1}" for i, name in enumerate(header)]
    table = _Table(source, columns, records, lines, "line", header_line)
    seen: set[str] = set()
    for name in columns:
        if name.lower() in seen:
            raise table.error(f"column {name!r} appears twice in the header", header_line, name)
        seen.add(name.lower())
    return table


def _read_parquet(source: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(source)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(str(source), f"not a readable Parquet file: {exc}") from exc
    columns = [str(c) for c in table.column_names]
    lowered = [c.lower() for c in columns]
    dup = next((c for c in columns if lowered.count(c.lower()) > 1), None)
    if dup is not None:
        raise SourceError(str(source), f"column {dup!r} appears twice", field=dup)
    # to_pydict keeps nullable integers as int/None where pandas would turn them into floats.
    data = table.to_pydict()
    cells = [data[c] for c in table.column_names]
    records = [[_blank_to_none(v) for v in row] for row in zip(*cells)]
    return _Table(source, columns, records, list(range(1, len(records) + 1)), "row")


def _blank_to_none(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _find(columns: list[str], aliases: Sequence[str]) -> str | None:
    by_lower = {c.lower(): c for c in columns}
    return next((by_lower[a] for a in aliases if a in by_lower), None)


def _text(value: Any) -> str:
    """A label or id cell as text; integral floats lose their '.0' (Parquet/pandas turn ints into floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _build(table: _Table) -> Dataset:
    source = table.source
    columns = table.columns
    path_col = _find(columns, PATH_COLUMNS)
    header_line = table.header_line
    if path_col is None:
        raise table.error(f"no path column: expected one of {', '.join(PATH_COLUMNS)}; "
                          f"found columns: {', '.join(columns) or '(none)'}", header_line)
    if not table.records:
        raise SourceError(str(source), "the manifest has a header but no rows")
    label_col = _find(columns, LABEL_COLUMNS)
    split_col = _find(columns, SPLIT_COLUMNS)
    id_col = _find(columns, ID_COLUMNS)
    standard = {path_col, label_col, split_col, id_col} - {None}
    reserved = _reserved_names()
    meta_cols = [c for c in columns if c not in standard]
    renamed = {c: (RENAMED_PREFIX + c if c in reserved else c) for c in meta_cols}
    clash = next((new for old, new in renamed.items() if old != new and new in columns), None)
    if clash is not None:
        raise table.error(f"column {clash!r} collides with the renamed column {clash[len(RENAMED_PREFIX):]!r}; "
                          "rename one of them", header_line, clash)
    index = {c: i for i, c in enumerate(columns)}
    root = Path(os.path.abspath(source)).parent

    rows: list[dict[str, Any]] = []
    given_ids: dict[str, int] = {}
    for record, line in zip(table.records, table.lines):
        raw_path = record[index[path_col]]
        if raw_path is None:
            raise table.error("empty path value", line, path_col)
        if not isinstance(raw_path, str):
            raise table.error(f"path must be text, got {type(raw_path).__name__} {raw_path!r}", line, path_col)
        if "\n" in raw_path or "\r" in raw_path:
            raise table.error(f"path {raw_path!r} contains a line break (a quote that is closed too late?)", line, path_col)
        row: dict[str, Any] = {
            "path": os.path.normpath(os.path.join(root, raw_path)),
            "source_line": line,
            "sample_id": raw_path,
        }
        if id_col is not None and record[index[id_col]] is not None:
            sid = _text(record[index[id_col]])
            if sid in given_ids:
                where = "line" if table.unit == "line" else "row"
                raise table.error(f"duplicate id {sid!r} (first on {where} {given_ids[sid]}); ids must be unique",
                                  line, id_col)
            given_ids[sid] = line
            row["sample_id"] = sid
        row["label"] = _text(record[index[label_col]]) if label_col and record[index[label_col]] is not None else None
        if split_col is not None and record[index[split_col]] is not None:
            split = record[index[split_col]]
            if not isinstance(split, str):
                raise table.error(f"split must be text such as 'train', 'val' or 'test', got "
                                  f"{type(split).__name__} {split!r}", line, split_col)
            row["split"] = split_name(split)
        for col in meta_cols:
            row[renamed[col]] = record[index[col]]
        rows.append(row)

    sample_ids = unique_ids([r["sample_id"] for r in rows],
                            [f"{'line' if table.unit == 'line' else 'row'} {r['source_line']}" for r in rows])
    for r, sid in zip(rows, sample_ids):
        r["sample_id"] = sid
    samples = make_samples(rows)
    meta_names = [renamed[c] for c in meta_cols]
    samples = samples[[*SAMPLE_COLUMNS, "source_line", *meta_names]]
    notes = [f"manifest column {old!r} is kept as {new!r} (the name is used for a computed image property)"
             for old, new in renamed.items() if old != new]
    return Dataset(samples=samples, source=str(source), format="manifest", root=root,
                   metadata_columns=meta_names, notes=notes)


def read_manifest(path: str | os.PathLike) -> Dataset:
    """Read a CSV, TSV or Parquet manifest with one row per image.

    Columns (names case-insensitive): ``path`` (required; also accepted: ``filepath``, ``file``,
    ``filename``, ``image``), optional ``label`` (or ``class``), ``split`` (``training``/``valid``/
    ``dev``/``testing``... are normalised to ``train``/``val``/``test``) and ``id`` (or ``sample_id``);
    every other column is metadata, kept as written (CSV cells stay text, so ``007`` stays ``007``).
    Relative paths are relative to the manifest's folder. Each sample's ``source_line`` is its CSV
    line (the header is line 1) or its Parquet row (1-based). A repeated path stays a sample of its
    own, with id ``<path>@line N``. The CSV delimiter is guessed from the header (comma, tab,
    semicolon or bar); ``.tsv`` is always tab-separated. Errors name the file, the line and the column.

    >>> ds = read_manifest("manifest.csv")
    >>> ds.samples[["sample_id", "label", "split", "source_line", "patient_id"]].tail(2).values.tolist()
    [['data/val/meadow/meadow_0000.jpg', 'meadow', 'val', 219, 'p108'], ['data/train/beach/beach_0014.jpg@line 220', 'city', 'test', 220, 'p900']]
    """
    source = Path(path)
    if source.suffix.lower() in PARQUET_SUFFIXES:
        return _build(_read_parquet(source))
    return _build(_read_delimited(source))

