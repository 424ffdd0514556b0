"""What checks ask for: features, neighbours and scores, computed once and shared (lazily)."""
from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .dataset import Dataset
from .dataset.predictions import Predictions
from .features import FeatureRun, compute_features


class Context:
    """Shared, lazily computed inputs of the checks for one run.

    Checks never open files. They read ``ctx.dataset`` (the samples table), ``ctx.features`` (one
    row per sample: the sample columns joined with the per-image features of its file) and
    ``ctx.valid`` (samples whose image decoded), and ask for derived things such as
    ``features.embedders.embeddings(ctx)`` or ``checks.duplicates.duplicate_index(ctx)``, computed
    on first use and kept with :meth:`memo`. ``ctx.predictions`` holds the user's model outputs
    (:class:`~visionaudit.dataset.predictions.Predictions`, rows in dataset order) or None.
    """

    def __init__(self, dataset: Dataset, *, settings: dict[str, Any] | None = None,
                 feature_options: dict[str, Any] | None = None, predictions: Predictions | None = None):
        ids = dataset.samples["sample_id"].astype(str).tolist()
        if predictions is not None and list(predictions.sample_ids) != ids:
            raise ValueError("predictions are not aligned to the dataset's samples: read them with "
                             "read_predictions(path, dataset) for this dataset")
        self.dataset = dataset
        self.predictions = predictions
        self.settings = settings or {}
        self.feature_options = feature_options or {}
        self._memo: dict[Any, Any] = {}

    @cached_property
    def feature_run(self) -> FeatureRun:
        return compute_features(self.dataset.samples["path"].tolist(), **self.feature_options)

    @cached_property
    def features(self) -> pd.DataFrame:
        """Samples joined with their file's features, indexed by ``sample_id`` (dataset order)."""
        feats = self.feature_run.table
        joined = self.dataset.samples.join(feats, on="path")
        return joined.set_index("sample_id", drop=False)

    @cached_property
    def valid(self) -> pd.Series:
        """True for samples whose image decoded (features are meaningful)."""
        return self.features["error_kind"].isna()

    @property
    def sample_ids(self) -> pd.Index:
        # From the samples table (same order as ``features``), so checks that need no image never decode one.
        return pd.Index(self.dataset.samples["sample_id"], name="sample_id")

    def memo(self, key: Any, compute):
        """Compute ``compute()`` once per run under ``key`` and share the result between checks."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def numeric(self, column: str) -> np.ndarray:
        """A feature column as float array (NaN where not measured)."""
        return pd.to_numeric(self.features[column], errors="coerce").to_numpy(dtype=float)
