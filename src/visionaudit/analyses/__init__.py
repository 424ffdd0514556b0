"""Shared analyses: what two checks (or a check and a predictor) both need, computed once per run.

Each analysis is a function of a :class:`RunData` (a dataset and what the decode pass measured of
it) that memoises its result there: the duplicate index (:mod:`.duplicate_index`), copies across splits
(:mod:`.leakage`), class counts per split (:mod:`.class_table`), the evaluated samples and their metrics
(:mod:`.evaluation_data`, which also needs the predictions: it takes anything with a dataset, predictions
and a memo, such as the run's Context),
and the one nearest-neighbour search (:mod:`.neighbours`). Predictors (cross-validation) read them
before the Context exists; checks read them through the Context, which serves the same RunData.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..features import FeatureRun, compute_features

T = TypeVar("T")


class RunData:
    """A dataset, its per-image features (decoded lazily, once) and the analyses computed on them.

    ``features`` has one row per sample (dataset order, indexed by ``sample_id``): the sample
    columns joined with the features of its file; ``valid`` is True where the image decoded.
    ``feature_options`` are :func:`~visionaudit.features.compute_features`'s keyword arguments
    (cache, workers, progress, max_pixels); ``feature_run`` may be given when the features were
    computed already (same files). ``group_columns`` name metadata that must not span splits or folds.
    """

    def __init__(self, dataset: Dataset, *, feature_options: dict[str, Any] | None = None,
                 group_columns: Sequence[str] = (), feature_run: FeatureRun | None = None):
        self.dataset = dataset
        self.feature_options = dict(feature_options or {})
        self.group_columns = tuple(group_columns)
        self._memo: dict[Any, Any] = {}
        if feature_run is not None:
            self.__dict__["feature_run"] = feature_run

    @cached_property
    def feature_run(self) -> FeatureRun:
        return compute_features(self.dataset.samples["path"].tolist(), **self.feature_options)

    @cached_property
    def features(self) -> pd.DataFrame:
        """Samples joined with their file's features, indexed by ``sample_id`` (dataset order). Where a
        reader recorded a column the decode pass measures too (YOLO's ``exif_orientation``), the
        decode pass's value is kept."""
        table = self.feature_run.table
        samples = self.dataset.samples
        joined = samples.drop(columns=[c for c in table.columns if c in samples.columns and c != "path"]).join(table, on="path")
        return joined.set_index("sample_id", drop=False)

    @cached_property
    def valid(self) -> pd.Series:
        """True for samples whose image decoded (features are meaningful)."""
        return self.features["error_kind"].isna()

    @property
    def sample_ids(self) -> pd.Index:
        # From the samples table (same order as ``features``), so checks that need no image never decode one.
        return pd.Index(self.dataset.samples["sample_id"], name="sample_id")

    def numeric(self, column: str) -> np.ndarray:
        """A feature column as float array (NaN where not measured)."""
        return pd.to_numeric(self.features[column], errors="coerce").to_numpy(dtype=float)

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        """Compute ``compute()`` once per run under ``key`` and share the result."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]
