"""Which samples of one split copy samples of another: exact and near duplicate groups across splits,
and values of a group column (patient, video, scene) shared by splits.

:func:`exact_groups`, :func:`near_groups` and :func:`group_value_groups` build those groups for the
leakage checks and for :func:`copies_of`, which says which samples of one split copy (or share a
group with) samples of another: what ``evaluation.leaked_test_metrics`` removes from the test set.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import RunData
from .duplicate_index import describe_group, duplicate_index
from .neighbours import pair_groups

_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def _split_list(splits: list[Any]) -> list[str]:
    return sorted({str(s) for s in splits if s is not None}, key=lambda s: (_SPLIT_ORDER.get(s, 3), s))


def leaking(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups with members in more than one split, each told which splits it spans."""
    out = []
    for g in groups:
        spans = _split_list(g["splits"])
        if len(spans) > 1:
            out.append({**g, "spans": spans})
    return out


def exact_groups(data: RunData, exact: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Every group of exact duplicates (described, see :func:`describe_group`), in any splits."""
    index = duplicate_index(data, exact=exact)
    groups = [describe_group(data, index.ids[g].tolist(), "exact", 1.0) for g in index.exact_groups()]
    # Rows listing one file twice have the same bytes and so are already in one exact group,
    # except where the file could not be decoded; those rows are grouped by path here.
    decoded = set(index.ids)
    samples = data.features[["path"]].assign(sample_id=data.sample_ids)
    for _, rows in samples[~samples["sample_id"].isin(decoded)].groupby("path", sort=False):
        if len(rows) > 1:
            groups.append(describe_group(data, rows["sample_id"].tolist(), "exact", 1.0))
    return groups


def near_groups(data: RunData, near: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Every group of near duplicates, one member per exact group, with its weakest similarity."""
    index = duplicate_index(data, near=near)
    return [describe_group(data, index.ids[g].tolist(), "near", index.weakest_link(g)) for g in index.near_groups()]


def group_value_groups(data: RunData, columns: list[str]) -> list[dict[str, Any]]:
    """Values of the ``columns`` found in more than one split: column, value, spans and every sample."""
    samples = data.dataset.samples
    groups: list[dict[str, Any]] = []
    for column in columns:
        sub = samples[samples[column].notna() & samples["split"].notna()]
        spread = sub.groupby(sub[column].astype(str))["split"].nunique()
        for value in spread[spread > 1].index:
            rows = sub[sub[column].astype(str) == value]
            groups.append({
                "samples": rows["sample_id"].tolist(), "column": column, "value": value,
                "spans": _split_list(rows["split"].tolist()), "splits": rows["split"].tolist(),
                "labels": [None if pd.isna(v) else v for v in rows["label"]],
            })
    return groups


@dataclass
class Copy:
    """How a sample copies samples of another split: ``kind`` exact, near or group (a shared value of
    ``column``), and the ``sources``: the other split's samples in its duplicate group or with its value."""

    kind: str
    sources: list[str] = field(default_factory=list)
    column: str | None = None
    value: str | None = None


def copies_of(data: RunData, split: str, source: str = "train", *, exact: dict[str, float] | None = None,
              near: dict[str, float] | None = None, near_copies: bool = True,
              columns: Sequence[str] = ()) -> dict[str, Copy]:
    """Samples of ``split`` that are exact or near duplicates of ``source`` samples, or share a value of
    a group column with one, by sample id (the first reason found in that order).

    Near groups hold one member per exact group, so an image joins a ``source`` sample through any chain of
    exact and near links (a test copy of a training image's exact twin is found). A near copy's sources are
    the ``source`` members of that chain; an exact copy's, those of its exact group.

    >>> copies_of(data, "test")
    {'test/beach/beach_0015.jpg': Copy(kind='exact', sources=['train/beach/beach_0012.jpg'], column=None, value=None)}
    """
    split_of = dict(zip(data.dataset.samples["sample_id"], data.dataset.samples["split"]))
    out: dict[str, Copy] = {}
    exact_found = exact_groups(data, exact)
    for g in exact_found:
        sources = [s for s in g["samples"] if split_of[s] == source]
        if sources:
            out.update({s: Copy("exact", sources) for s in g["samples"] if split_of[s] == split})
    if near_copies:
        linked = exact_found + near_groups(data, near)
        ids = list(dict.fromkeys(s for g in linked for s in g["samples"]))
        position = {s: i for i, s in enumerate(ids)}
        pairs = [(position[g["samples"][0]], position[m]) for g in linked for m in g["samples"][1:]]
        for chain in pair_groups(len(ids), np.array(pairs, np.int64)):
            members = [ids[i] for i in chain]
            sources = [s for s in members if split_of[s] == source]
            if sources:
                for s in members:
                    if split_of[s] == split and s not in out:
                        out[s] = Copy("near", sources)
    for g in group_value_groups(data, list(columns)):
        sources = [s for s, sp in zip(g["samples"], g["splits"]) if sp == source]
        if sources:
            for s, sp in zip(g["samples"], g["splits"]):
                if sp == split and s not in out:
                    out[s] = Copy("group", sources, g["column"], g["value"])
    return out
