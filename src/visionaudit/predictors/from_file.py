"""Predictions read from a file the user gives (``--predictions``).

Accepted files:

- ``.csv`` / ``.tsv`` / ``.parquet``: a key column, ``sample_id`` (matched to the dataset's sample ids)
  or ``path`` (matched to the image files: a relative path is taken relative to the predictions
  file's folder, else as a sample id, else relative to the dataset's root), and one column per class
  named like the dataset's labels, or ``prob_<class>`` (then other columns are ignored).
- ``.npy``: an ``(n_samples, n_classes)`` array in dataset order, with the classes in sorted order.

Samples the file does not mention keep a row of NaN (they are counted in ``Predictions.notes``);
every value that is given must be a finite number. Probabilities written with a few decimals rarely
sum to exactly 1: a row off by no more than rounding explains (:func:`rounding_tolerance`) is
renormalised; a row off by more is an error naming the file and line.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..dataset.model import Dataset
from ..errors import ArgumentError, SourceError
from .predictions import (
    KEY_COLUMNS,
    PROB_PREFIX,
    SUM_TOLERANCE,
    TABLE_SUFFIXES,
    Predictions,
)


def read_predictions(path: str | os.PathLike, dataset: Dataset, *,
                     from_logits: bool | Literal["auto"] = "auto") -> Predictions:
    """Read a predictions file for ``dataset`` (see the module docstring for the formats).

    ``from_logits``: ``True`` turns every row into probabilities with a softmax; ``False`` requires
    probabilities (non-negative rows summing to 1); ``"auto"`` reads probabilities when every row is
    one, logits when most rows are not (said in a note), and reports the bad rows otherwise.

    >>> preds = read_predictions("preds.csv", load_dataset("data/"))
    >>> preds.classes, preds.probs.shape, preds.missing
    (['beach', 'city', 'forest', 'meadow'], (218, 4), 0)
    """
    if from_logits not in (True, False, "auto"):
        raise ArgumentError("from_logits", from_logits, "True, False or 'auto'")
    p = Path(path)
    if not p.is_file():
        raise SourceError(str(p), "predictions file not found")
    suffix = p.suffix.lower()
    labels = sorted({str(v) for v in dataset.samples["label"].dropna()} | set(dataset.classes or []))
    ids = dataset.samples["sample_id"].astype(str).tolist()
    if suffix == ".npy":
        classes, values, where = labels, _read_npy(p, len(ids), labels), None
        rows = np.arange(len(ids))
    elif suffix in TABLE_SUFFIXES:
        table = _Table.read(p)
        classes, values, rows = table.match(dataset, labels)
        where = table
    else:
        raise SourceError(str(p), f"unknown predictions file type {suffix!r}: expected .csv, .tsv, .parquet or .npy")
    values, notes = _as_probabilities(values, from_logits, p, where, classes)
    probs = np.full((len(ids), len(classes)), np.nan)
    probs[rows] = values
    missing = len(ids) - len(np.unique(rows))
    if missing:
        notes.append(f"{missing} of {len(ids)} samples have no prediction in {p.name}")
    return Predictions(classes=list(classes), probs=probs, sample_ids=ids, source=str(p), notes=notes)


def _read_npy(p: Path, n: int, labels: list[str]) -> np.ndarray:
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SourceError(str(p), f"not a readable .npy array: {exc}") from exc
    if arr.ndim != 2 or arr.shape != (n, len(labels)):
        raise SourceError(str(p), f"expected an array of shape ({n}, {len(labels)}) (samples in dataset order x "
                                  f"classes {', '.join(labels)}), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise SourceError(str(p), f"expected a real-valued array, got dtype {arr.dtype}")
    return arr.astype(float)


class _Table:
    """A predictions table read with pandas; CSV line numbers are recovered only to report an error."""

    def __init__(self, path: Path, frame: pd.DataFrame, unit: str, sep: str = ","):
        self.path, self.frame, self.unit, self.sep = path, frame, unit, sep
        # The table row each row of ``frame`` came from, once rows are matched to samples.
        self._rows = np.arange(len(frame))
        self._cells: np.ndarray | None = None  # the class columns' cells, for printed()

    @classmethod
    def read(cls, p: Path) -> _Table:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow as pa
            try:
                frame = pd.read_parquet(p)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise SourceError(str(p), f"not a readable Parquet file: {exc}") from exc
            frame.columns = [str(c) for c in frame.columns]
            return cls(p, frame, "row")
        sep = "\t" if p.suffix.lower() == ".tsv" else ","
        try:
            # Everything as text first: which cells were not numbers is reported with its line.
            frame = pd.read_csv(p, sep=sep, dtype=str, encoding="utf-8-sig")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
            raise SourceError(str(p), f"cannot parse the predictions table: {exc}") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        return cls(p, frame, "line", sep)

    def error(self, problem: str, row: int | None = None, column: str | None = None) -> SourceError:
        """An error naming the file, the CSV line (or Parquet row, 1-based) of ``row`` and the column."""
        if row is None:
            return SourceError(str(self.path), problem, field=column)
        if self.unit == "row":
            return SourceError(str(self.path), f"row {row + 1}: {problem}", field=column)
        return SourceError(str(self.path), problem, line=self.line_of(row), field=column)

    def line_of(self, row: int) -> int:
        """The 1-based line where data row ``row`` starts (pandas skips blank lines, so count them)."""
        text = self.path.read_text(encoding="utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.sep)
        end, seen = 0, -2  # the header is record -1
        for record in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            seen += 1
            if seen == row:
                return start
        return end

    def match(self, dataset: Dataset, labels: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Class names, the (rows, classes) values and each row's position in the dataset."""
        frame = self.frame
        if frame.empty:
            raise self.error("the predictions table has a header but no rows", None)
        by_lower = {c.lower(): c for c in frame.columns}
        key = next((by_lower[k] for k in KEY_COLUMNS if k in by_lower), None)
        header = 1 if self.unit == "line" else None
        if key is None:
            raise SourceError(str(self.path), f"no key column: expected {' or '.join(map(repr, KEY_COLUMNS))}; "
                                              f"found columns: {', '.join(frame.columns)}", line=header)
        class_cols = self._class_columns(key, labels)
        self.class_cols = class_cols
        positions = self._positions(dataset, key)
        values = self._numbers(class_cols)
        return [c.removeprefix(PROB_PREFIX) for c in class_cols], values, positions

    def _class_columns(self, key: str, labels: list[str]) -> list[str]:
        columns = [c for c in self.frame.columns if c != key]
        prefixed = [c for c in columns if c.startswith(PROB_PREFIX)]
        class_cols = prefixed or columns
        names = [c[len(PROB_PREFIX):] if prefixed else c for c in class_cols]
        header = 1 if self.unit == "line" else None
        unknown = [c for c, n in zip(class_cols, names) if n not in labels]
        if unknown:
            raise SourceError(str(self.path), f"class column {unknown[0]!r} is not a label of the dataset "
                                              f"(labels: {', '.join(labels)})", line=header, field=unknown[0])
        absent = [label for label in labels if label not in names]
        if absent:
            raise SourceError(str(self.path), f"no column for label(s) {', '.join(map(repr, absent))}: expected one "
                                              f"column per class named like the label (or 'prob_<label>')", line=header)
        return class_cols

    def _positions(self, dataset: Dataset, key: str) -> np.ndarray:
        keys = self.frame[key]
        blank = keys.isna() | (keys.astype(str).str.strip() == "")
        if blank.any():
            raise self.error("empty key", int(np.flatnonzero(blank.to_numpy())[0]), key)
        keys = keys.astype(str).str.strip()
        repeated = keys.duplicated()
        if repeated.any():
            row = int(np.flatnonzero(repeated.to_numpy())[0])
            first = int(np.flatnonzero((keys == keys.iloc[row]).to_numpy())[0])
            raise self.error(f"{keys.iloc[row]!r} is listed twice (first at {self._where(first)})", row, key)
        samples = dataset.samples
        if key.lower() == "sample_id":
            index = {sid: [i] for i, sid in enumerate(samples["sample_id"].astype(str))}
            wanted = keys.tolist()
            what = "sample ids"
        else:
            # One file may be listed several times in a dataset: its prediction applies to each listing.
            index = {}
            for i, path in enumerate(samples["path"].astype(str)):
                index.setdefault(os.path.realpath(path), []).append(i)
            wanted = self._path_keys(dataset, keys.tolist(), index)
            what = "paths"
        unknown = [r for r, k in enumerate(wanted) if k not in index]
        if unknown:
            shown = ", ".join(f"{keys.iloc[r]!r} ({self._where(r)})" for r in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            how = ""
            if what == "paths":
                root = f", or relative to the dataset's root {dataset.root}" if dataset.root is not None else ""
                how = (f" (a path is matched relative to the predictions file's folder {self.path.parent}, as a "
                       f"sample id{root})")
            raise self.error(f"{len(unknown)} {what} are not in the dataset: {shown}{more}{how}", unknown[0], key)
        rows, positions = [], []
        for r, k in enumerate(wanted):
            for pos in index[k]:
                rows.append(r)
                positions.append(pos)
        self.frame = self.frame.iloc[rows].reset_index(drop=True)
        self._rows = np.asarray(rows)
        return np.asarray(positions)

    def _path_keys(self, dataset: Dataset, keys: list[str], index: dict[str, list[int]]) -> list[str]:
        """Each ``path`` key as the real path of a dataset file when it names one: relative to this
        file's folder, else as a sample id (paths relative to the dataset's root, as the readers make
        them), else relative to the root; a key that names none is returned as read."""
        path_of = dict(zip(dataset.samples["sample_id"].astype(str), dataset.samples["path"].astype(str)))
        root = dataset.root
        out = []
        for k in keys:
            for candidate in (self.path.parent / k, path_of.get(k), path_of.get(k.replace("\\", "/")),
                              None if root is None else Path(root) / k):
                if candidate is not None and os.path.realpath(candidate) in index:
                    out.append(os.path.realpath(candidate))
                    break
            else:
                out.append(k)
        return out

    def _where(self, row: int) -> str:
        return f"line {self.line_of(row)}" if self.unit == "line" else f"row {row + 1}"

    def _numbers(self, class_cols: list[str]) -> np.ndarray:
        raw = self.frame[class_cols]
        values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            cell = raw.iat[r, c]
            problem = "missing value" if cell is None or (isinstance(cell, float) and np.isnan(cell)) else \
                f"not a finite number: {str(cell).strip()!r}"
            raise self.error(problem, int(self._rows[r]), class_cols[c])
        return values

    def source_row(self, r: int) -> int:
        """The table row that value row ``r`` came from."""
        return int(self._rows[r])

    def printed(self, r: int, class_cols: list[str]) -> list[str]:
        """Value row ``r``'s cells as the file wrote them (text in a CSV; a Parquet number's shortest form)."""
        if self._cells is None:
            self._cells = self.frame[class_cols].to_numpy(dtype=object)
        return [v if isinstance(v, str) else repr(v) for v in self._cells[r].tolist()]


def decimals(text: str) -> int:
    """How many decimals a number was written with (``0.125`` -> 3, ``1.5e-04`` -> 5, ``1`` -> 0).

    >>> decimals("0.125"), decimals("1.5e-04"), decimals("1"), decimals("0.1000")
    (3, 5, 0, 4)
    """
    mantissa, _, exponent = text.strip().lower().partition("e")
    places = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
    try:
        places -= int(exponent) if exponent else 0
    except ValueError:
        pass
    return max(places, 0)


def rounding_tolerance(cells: list[str]) -> tuple[float, int]:
    """How far from 1 a row of probabilities written as ``cells`` may sum from rounding alone, and the
    decimals it was written with: each of K values rounded to d decimals is off by at most half a unit
    of the last decimal, so the sum by K x 0.5 x 10^-d; never less than ``SUM_TOLERANCE`` (1e-3).

    >>> rounding_tolerance(["0.3333", "0.3333", "0.3333"])   # sums to 0.9999
    (0.001, 4)
    >>> rounding_tolerance(["0.33", "0.33", "0.33"])         # sums to 0.99: 3 x 0.005 explains it
    (0.015, 2)
    """
    places = max((decimals(c) for c in cells), default=0)
    return max(SUM_TOLERANCE, len(cells) * 0.5 * 10.0 ** -places), places


#: At most this many rows off 1 by more than 1e-3 have their own decimals read; the others are allowed what
#: the coarsest of those rows was (one file is written by one formatter), so a large file costs no more.
_MAX_LOOKED_AT = 2_000
#: Rows off 1 by more than this are renormalised (float32 softmax outputs are off by ~1e-7); the note
#: counts those off by more than ``_NOTED``.
_RENORMALISE, _NOTED = 1e-9, 1e-6


def _as_probabilities(values: np.ndarray, from_logits: bool | str, p: Path, table: _Table | None,
                      classes: list[str]) -> tuple[np.ndarray, list[str]]:
    """Validate probabilities (renormalising rows off 1 by rounding), or softmax logits; ``table``
    (None for .npy) locates a bad row and gives the cells as written."""
    from scipy.special import softmax

    def error(problem: str, r: int, column: str | None = None) -> SourceError:
        if table is None:
            return SourceError(str(p), f"row index {r}: {problem}", field=column)
        return table.error(problem, table.source_row(r), column)

    def printed(r: int) -> list[str]:
        return table.printed(r, table.class_cols) if table is not None else [repr(float(v)) for v in values[r]]

    if table is None and not np.isfinite(values).all():
        r, c = np.argwhere(~np.isfinite(values))[0]
        raise error(f"not a finite number: {values[r, c]}", int(r), classes[c])
    if from_logits is True:
        return softmax(values, axis=1), []
    negative = (values < 0).any(axis=1)
    sums = values.sum(axis=1)
    deviation = np.abs(sums - 1.0)
    off = deviation > SUM_TOLERANCE
    # Only rows off by more than the floor need their printed decimals; a file of logits (mostly negative
    # rows) is told by its signs alone.
    candidates = np.flatnonzero(off & ~negative)
    if len(candidates) and not (from_logits == "auto" and negative.mean() > 0.5):
        coarsest = None
        for r in candidates[:_MAX_LOOKED_AT]:
            tolerance, places = rounding_tolerance(printed(int(r)))
            off[r] = deviation[r] > tolerance
            coarsest = places if coarsest is None else min(coarsest, places)
        rest = candidates[_MAX_LOOKED_AT:]
        if len(rest):
            off[rest] = deviation[rest] > max(SUM_TOLERANCE, len(classes) * 0.5 * 10.0 ** -coarsest)
    bad = negative | off
    if bad.any() and from_logits == "auto" and bad.mean() > 0.5:
        return softmax(values, axis=1), [
            (f"{p.name}: {int(bad.sum())} of {len(values)} rows are not probabilities (negative or not summing to 1), "
            "so the values were read as logits and turned into probabilities with a softmax")]
    if bad.any():
        hint = " (pass --from-logits, or from_logits=True in Python, if the file holds logits)"
        r = int(np.flatnonzero(bad)[0])
        if negative[r]:
            c = int(np.flatnonzero(values[r] < 0)[0])
            raise error(f"negative probability {values[r, c]:g}{hint}", r, classes[c])
        tolerance, places = rounding_tolerance(printed(r))
        raise error(f"probabilities sum to {sums[r]:.6g}, not 1, by more than rounding to {places} decimal(s) "
                    f"explains (±{tolerance:.3g}){hint}", r)
    fix = deviation > _RENORMALISE
    if not fix.any():
        return values, []
    values = values.copy()
    values[fix] /= sums[fix, None]
    notes = []
    noted = int((deviation > _NOTED).sum())
    if noted:
        notes.append(f"{p.name}: {noted} row(s) summed to 1 only to within rounding (off by up to "
                     f"{deviation.max():.2g}); they were renormalised")
    return values, notes
