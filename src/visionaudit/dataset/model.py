"""The one table every later stage sees, whatever format the user's data came in."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jfif"}
)

SAMPLE_COLUMNS = ("sample_id", "path", "label", "split")


@dataclass
class Dataset:
    """A set of samples (images) with optional labels, splits, metadata and objects.

    ``samples`` has one row per sample and at least the columns ``sample_id`` (unique, stable, shown
    to the user), ``path`` (absolute path of the image file), ``label`` (class name or None) and
    ``split`` (e.g. 'train'/'val'/'test' or None); other columns are user metadata (patient, video,
    camera...) usable for group-leakage checks and slicing. ``source_line`` records where a row came
    from in a manifest, for error messages. ``objects`` (optional) holds one row per annotated object
    (``sample_id``, ``label``, ``x``, ``y``, ``w``, ``h``: top-left corner and size) for detection
    datasets, in ``box_units``: ``"pixels"`` (COCO) or ``"normalized"`` (fractions of the image's
    width and height, YOLO).
    """

    samples: pd.DataFrame
    source: str
    format: str
    root: Path | None = None
    classes: list[str] | None = None
    objects: pd.DataFrame | None = None
    box_units: str = "pixels"
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

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def has_labels(self) -> bool:
        return bool(self.samples["label"].notna().any())

    @property
    def splits(self) -> list[str]:
        return sorted(self.samples["split"].dropna().unique().tolist())

    def summary(self) -> dict[str, Any]:
        s = self.samples
        out: dict[str, Any] = {
            "source": self.source,
            "format": self.format,
            "samples": int(len(s)),
            "unique_files": int(s["path"].nunique()),
            "splits": {str(k): int(v) for k, v in s["split"].value_counts().items()},
            "classes": int(s["label"].nunique()) if self.has_labels else 0,
            "metadata_columns": list(self.metadata_columns),
        }
        if self.objects is not None:
            out["objects"] = int(len(self.objects))
            out["box_units"] = self.box_units
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
