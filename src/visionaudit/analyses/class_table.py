"""Class counts per split: the table every balance check reads.

For an image-classification dataset the unit is the labelled image; for a detection dataset (no image
labels, but ``Dataset.objects``) it is the annotated object, counted in the split of its image. Samples
without a split are counted under ``"unassigned"`` (or ``"all"`` when the dataset has no splits at all).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from . import RunData

#: Split key for samples of a dataset that has no splits at all.
ALL = "all"
#: Split key for samples without a split in a dataset where other samples have one.
UNASSIGNED = "unassigned"
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def natural_key(name: str) -> list[str | int]:
    # "class2" before "class10"; re.split keeps text at even and digits at odd positions, so the keys compare.
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]



@dataclass(frozen=True)
class ClassTable:
    """Class counts per split, and which sample carries which class.

    ``counts``: classes (rows, natural order) x split keys (columns: train, val, test, other splits,
    then ``unassigned``), integer counts including zeros. ``rows``: one row per counted unit with
    ``sample_id``, ``label`` (str) and ``split`` (split key). ``unit``: ``"images"`` or ``"objects"``.
    """

    counts: pd.DataFrame
    rows: pd.DataFrame
    unit: str

    @property
    def splits(self) -> list[str]:
        """The real splits: every split key except ``all`` and ``unassigned``."""
        return [s for s in self.counts.columns if s not in (ALL, UNASSIGNED)]

    @property
    def totals(self) -> pd.Series:
        """Count per class over the whole dataset."""
        return self.counts.sum(axis=1)

    def as_nested(self) -> dict[str, dict[str, int]]:
        """``{split: {class: count}}`` with zeros, for JSON evidence and the report's bar chart."""
        return {str(s): {str(c): int(n) for c, n in self.counts[s].items()} for s in self.counts.columns}


def class_table(data: RunData) -> ClassTable | None:
    """The run's :class:`ClassTable` (computed once, shared by the balance checks); None if unlabelled.

    >>> table = class_table(data)
    >>> table.counts.loc["meadow"].to_dict(), table.unit     # the example's rare class, none in test
    ({'train': 3, 'val': 1, 'test': 0}, 'images')
    """
    return data.memo("balance.class_table", lambda: _build_class_table(data))


def _build_class_table(data: RunData) -> ClassTable | None:
    dataset = data.dataset
    samples = dataset.samples
    if dataset.has_labels:
        rows = samples.loc[samples["label"].notna(), ["sample_id", "label", "split"]]
        unit = "images"
    elif dataset.objects is not None and len(dataset.objects):
        objects = dataset.objects.loc[dataset.objects["label"].notna(), ["sample_id", "label"]]
        rows = objects.merge(samples[["sample_id", "split"]], on="sample_id", how="inner")
        unit = "objects"
    else:
        return None
    if rows.empty:
        return None
    missing_split = UNASSIGNED if samples["split"].notna().any() else ALL
    rows = pd.DataFrame({
        "sample_id": rows["sample_id"].to_numpy(),
        "label": rows["label"].astype(str).to_numpy(),
        "split": rows["split"].astype(object).where(rows["split"].notna(), missing_split).astype(str).to_numpy(),
    })
    counts = pd.crosstab(rows["label"], rows["split"])
    classes = sorted(counts.index, key=natural_key)
    splits = sorted(counts.columns, key=lambda s: (s == UNASSIGNED, _SPLIT_ORDER.get(s, 3), natural_key(s)))
    counts = counts.loc[classes, splits].astype(int)
    counts.index.name, counts.columns.name = "class", "split"
    return ClassTable(counts=counts, rows=rows, unit=unit)


def per_sample_min(data: RunData, rows: pd.DataFrame, values: pd.Series) -> pd.Series:
    """Per sample id, the minimum of ``values`` (aligned with ``rows``) over its rows."""
    return values.groupby(rows["sample_id"].to_numpy()).min().reindex(data.sample_ids)
