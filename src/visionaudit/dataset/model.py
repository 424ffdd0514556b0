"""The tables every later stage sees, whatever format the user's data came in: one samples table and,
for object annotations, one object table whose schema every reader shares (:data:`OBJECT_COLUMNS`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jfif"}
)

SAMPLE_COLUMNS = ("sample_id", "path", "label", "split")

#: The object table (``Dataset.objects``): the same columns, units and meaning whatever the reader.
#:
#: - ``object_id`` (str): ``"<sample_id>#<index>"``, the index counting the sample's objects from 0 in
#:   the order its annotation file lists them, so an id stays the same from run to run and names one
#:   object in findings.
#: - ``sample_id`` (str): the sample (image) the object is on; ``label`` (str or None): class name;
#:   ``category_id``: the class id the source file uses (COCO category id, YOLO class index) or None.
#: - ``x``, ``y``, ``w``, ``h`` (float): the box in pixels of the image as displayed, top-left corner
#:   and size; readers convert at read time, so no later stage needs the image size or a units flag.
#:   NaN where the box cannot be known (a YOLO image that cannot be opened).
#: - ``polygon``: None or a list of polygons, each a flat list ``[x1, y1, x2, y2, ...]`` in pixels
#:   (COCO ``segmentation`` polygons, YOLO-seg lines); ``rle``: None or a COCO run-length mask
#:   ``{"size": [h, w], "counts": ...}`` (``counts`` a list of ints or COCO's compressed string).
#: - ``iscrowd`` (bool): COCO's crowd flag (a region holding many instances), False elsewhere.
#: - ``area`` (float, pixels): the source's area when it gives one (COCO), else the polygon's area,
#:   else the mask's pixel count, else ``w * h``.
#:
#: Readers may add provenance columns after these (``annotation_id``, ``label_file``, ``line``...).
OBJECT_COLUMNS = ("object_id", "sample_id", "label", "category_id", "x", "y", "w", "h",
                  "polygon", "rle", "iscrowd", "area")


class Task(str, Enum):
    """What a dataset's annotations describe; it decides which checks can apply (see ``Dataset.task``)."""

    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"
    UNLABELLED = "unlabelled"

    def __str__(self) -> str:
        return self.value


def object_ids(sample_ids: Sequence[str]) -> list[str]:
    """The ``object_id`` of each object, given their sample ids in file order.

    >>> object_ids(["a.jpg", "b.jpg", "a.jpg"])
    ['a.jpg#0', 'b.jpg#0', 'a.jpg#1']
    """
    seen: dict[str, int] = {}
    out = []
    for sid in sample_ids:
        index = seen.get(sid, 0)
        seen[sid] = index + 1
        out.append(f"{sid}#{index}")
    return out


def polygon_area(polygon: Sequence[Sequence[float]]) -> float:
    """Area of a list of flat polygons (shoelace formula), the parts added as COCO does for an object
    drawn in several pieces.

    >>> polygon_area([[0, 0, 4, 0, 4, 3], [10, 10, 12, 10, 12, 12, 10, 12]])
    10.0
    """
    total = 0.0
    for part in polygon:
        xy = np.asarray(part, dtype=float).reshape(-1, 2)
        x, y = xy[:, 0], xy[:, 1]
        total += abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2
    return total


def rle_counts(counts: str) -> list[int]:
    """Decode COCO's compressed RLE string (pycocotools' ``rleFrString``) into run lengths: each run
    is stored as 5-bit groups, little end first, offset by 48 into printable characters, the 6th bit
    saying another group follows; from the fourth run on, a run is stored as the difference to the run
    two before it.

    >>> rle_counts("0:1")
    [0, 10, 1]
    """
    out: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ValueError("compressed RLE string ends inside a run")
            group = ord(counts[pos]) - 48
            if not 0 <= group < 64:
                raise ValueError(f"character {counts[pos]!r} is not in COCO's compressed RLE alphabet")
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and group & 0x10:
                value |= -1 << shift
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def rle_area(rle: Mapping[str, Any]) -> int:
    """Pixels inside a COCO RLE mask: runs alternate background / foreground, starting with background."""
    counts = rle["counts"]
    runs = rle_counts(counts) if isinstance(counts, str) else counts
    return int(sum(runs[1::2]))


def _as_objects(values: pd.Series, column: str, ok: Any, expected: str) -> pd.Series:
    values = values.astype(object).where(values.notna(), None)
    for i, value in enumerate(values):
        if value is not None and not ok(value):
            raise ValueError(f"object table row {i}: {column} must be {expected}, got {str(value)[:80]}")
    return values


def _is_polygon(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(
        isinstance(part, list) and len(part) >= 6 and len(part) % 2 == 0 for part in value)


def _is_rle(value: Any) -> bool:
    return isinstance(value, dict) and "size" in value and "counts" in value


def object_table(data: pd.DataFrame | Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Build ``Dataset.objects`` in the :data:`OBJECT_COLUMNS` schema from a reader's columns, checked.

    ``sample_id`` and ``label`` are required. Absent standard columns get their default: ``object_id``
    numbered per sample in row order (:func:`object_ids`), the box NaN, ``category_id``, ``polygon``
    and ``rle`` None, ``iscrowd`` False; ``area`` is filled where absent or NaN by the rule in
    :data:`OBJECT_COLUMNS`. Extra columns are kept after the standard ones. A table that breaks the
    schema (a repeated ``object_id``, a box that is not numbers, a polygon that is not a list of flat
    coordinate lists of even length >= 6, an RLE without ``size`` and ``counts``) is a ValueError:
    readers check their files first and name the bad line, so this is a programming error.

    >>> t = object_table({"sample_id": ["a.jpg", "a.jpg"], "label": ["cat", "dog"],
    ...                   "x": [0, 1], "y": [0, 1], "w": [2, 3], "h": [5, 4],
    ...                   "polygon": [None, [[1, 1, 4, 1, 4, 5]]]})
    >>> t[["object_id", "area"]].values.tolist()
    [['a.jpg#0', 10.0], ['a.jpg#1', 6.0]]
    """
    df = pd.DataFrame(data).reset_index(drop=True)
    missing = [c for c in ("sample_id", "label") if c not in df.columns]
    if missing:
        raise ValueError(f"the object table lacks columns {missing}")
    if "object_id" not in df.columns:
        df["object_id"] = object_ids(df["sample_id"].tolist())
    elif df["object_id"].duplicated().any():
        raise ValueError(f"the object table repeats object_id {df.loc[df['object_id'].duplicated(), 'object_id'].iloc[0]!r}")
    df["label"] = df["label"].astype(object).where(df["label"].notna(), None)
    for column in ("x", "y", "w", "h", "area"):
        if column not in df.columns:
            df[column] = np.nan
        try:
            df[column] = pd.to_numeric(df[column], errors="raise").astype(float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"object table column {column!r} must hold numbers: {exc}") from None
    for column in ("category_id", "polygon", "rle"):
        if column not in df.columns:
            df[column] = pd.Series([None] * len(df), dtype=object)
    df["category_id"] = df["category_id"].astype(object).where(df["category_id"].notna(), None)
    df["polygon"] = _as_objects(df["polygon"], "polygon", _is_polygon, "a list of flat [x1, y1, x2, y2, x3, y3, ...] lists")
    df["rle"] = _as_objects(df["rle"], "rle", _is_rle, 'a dict with "size" and "counts"')
    df["iscrowd"] = df["iscrowd"].fillna(False).astype(bool) if "iscrowd" in df.columns else False
    unknown = df["area"].isna()
    if unknown.any():
        df.loc[unknown, "area"] = [
            polygon_area(p) if p is not None else float(rle_area(r)) if r is not None else w * h
            for p, r, w, h in zip(df.loc[unknown, "polygon"], df.loc[unknown, "rle"],
                                  df.loc[unknown, "w"], df.loc[unknown, "h"])]
    return df[[*OBJECT_COLUMNS, *(c for c in df.columns if c not in OBJECT_COLUMNS)]]


@dataclass
class Dataset:
    """A set of samples (images) with optional labels, splits, metadata and objects.

    ``samples`` has one row per sample and at least the columns ``sample_id`` (unique, stable, shown
    to the user), ``path`` (absolute path of the image file), ``label`` (class name or None) and
    ``split`` (e.g. 'train'/'val'/'test' or None); other columns are user metadata (patient, video,
    camera...) usable for group-leakage checks and slicing. ``source_line`` records where a row came
    from in a manifest, for error messages. ``objects`` (optional) holds one row per annotated object
    in the :data:`OBJECT_COLUMNS` schema, boxes and polygons in pixels, whatever the reader; it is
    completed and checked by :func:`object_table` on construction. Readers whose boxes depend on the
    image size (YOLO) record each image's ``exif_orientation`` (1-8, 1 when absent) in ``samples``.
    """

    samples: pd.DataFrame
    source: str
    format: str
    root: Path | None = None
    classes: list[str] | None = None
    objects: pd.DataFrame | None = None
    metadata_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = [c for c in SAMPLE_COLUMNS if c not in self.samples.columns]
        if missing:
            raise ValueError(f"Dataset.samples lacks columns {missing}")
        if self.samples["sample_id"].duplicated().any():
            dup = self.samples.loc[self.samples["sample_id"].duplicated(), "sample_id"].iloc[0]
            raise ValueError(f"Dataset.samples has a duplicated sample_id {dup!r}")
        self.samples = self.samples.reset_index(drop=True)
        if self.objects is not None:
            self.objects = object_table(self.objects)
            stray = ~self.objects["sample_id"].isin(self.samples["sample_id"])
            if stray.any():
                raise ValueError(f"Dataset.objects names sample_id {self.objects.loc[stray, 'sample_id'].iloc[0]!r}, "
                                 f"which is not in Dataset.samples")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def has_labels(self) -> bool:
        return bool(self.samples["label"].notna().any())

    @property
    def splits(self) -> list[str]:
        return sorted(self.samples["split"].dropna().unique().tolist())

    @property
    def task(self) -> Task:
        """What the annotations describe, from the tables alone.

        With an object table (COCO, YOLO, VOC): ``segmentation`` if any object carries a polygon or an
        RLE mask, else ``detection`` (also when the table is empty: a detection source whose images have
        no objects yet). Without one: ``classification`` if any sample has a label, else ``unlabelled``.
        """
        if self.objects is not None:
            masked = self.objects["polygon"].notna().any() or self.objects["rle"].notna().any()
            return Task.SEGMENTATION if masked else Task.DETECTION
        return Task.CLASSIFICATION if self.has_labels else Task.UNLABELLED

    def summary(self) -> dict[str, Any]:
        s = self.samples
        # the classes the balance checks count: the image labels, else (detection) the objects' labels
        labels = s["label"] if self.has_labels else self.objects["label"] if self.objects is not None else None
        out: dict[str, Any] = {
            "source": self.source,
            "format": self.format,
            "task": self.task.value,
            "samples": int(len(s)),
            "unique_files": int(s["path"].nunique()),
            "splits": {str(k): int(v) for k, v in s["split"].value_counts().items()},
            "classes": 0 if labels is None else int(labels.nunique()),
            "metadata_columns": list(self.metadata_columns),
        }
        if self.objects is not None:
            out["objects"] = int(len(self.objects))
        return out


def make_samples(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a samples table from dict rows, filling absent standard columns with None."""
    df = pd.DataFrame(rows)
    for col in SAMPLE_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df["label"] = df["label"].astype(object).where(df["label"].notna(), None)
    df["split"] = df["split"].astype(object).where(df["split"].notna(), None)
    return df
