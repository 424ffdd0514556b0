"""What checks read: the run's data and analyses, its predictions, fixed when the run starts."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from .analyses import RunData
from .dataset import Dataset
from .features import FeatureRun
from .predictors.predictions import Predictions

T = TypeVar("T")


class Context:
    """The immutable input of the checks for one run.

    Built once, after the predictors made their predictions, and never assigned to afterwards
    (assigning raises ``AttributeError``): every check of a run sees the same inputs, whatever order
    they run in. Checks never open files. They read ``ctx.dataset`` (the samples table),
    ``ctx.features`` (one row per sample: the sample columns joined with the per-image features of
    its file), ``ctx.valid`` (samples whose image decoded) and ask for shared analyses
    (:mod:`visionaudit.analyses`), computed on first use and kept with :meth:`memo` in the run's
    :class:`~visionaudit.analyses.RunData`. ``ctx.predictions`` holds the model outputs judged
    (:class:`~visionaudit.predictors.predictions.Predictions`, rows in dataset order) or None;
    ``ctx.compare`` a second model's, judged against them. ``ctx.current`` is the dataset compared
    with this one (the reference) when a job has two: drift, monitoring windows.

    >>> ctx = Context(load_dataset("manifest.csv"), group_columns=["patient_id"])
    >>> ctx.predictions = None                                               # doctest: +ELLIPSIS
    Traceback (most recent call last):
    AttributeError: the Context of a run cannot be changed: ...
    """

    __slots__ = ("data", "predictions", "compare", "current")

    def __init__(self, data: RunData | Dataset, *, predictions: Predictions | None = None,
                 compare: Predictions | None = None, current: RunData | None = None,
                 group_columns: Sequence[str] = (), feature_options: dict[str, Any] | None = None):
        if isinstance(data, Dataset):
            data = RunData(data, feature_options=feature_options, group_columns=group_columns)
        elif group_columns or feature_options:
            raise ValueError("group_columns and feature_options belong to the RunData when one is given")
        ids = data.dataset.samples["sample_id"].astype(str).tolist()
        for name, preds in (("predictions", predictions), ("compare", compare)):
            if preds is not None and list(preds.sample_ids) != ids:
                raise ValueError(f"{name} are not aligned to the dataset's samples: read them with "
                                 "read_predictions(path, dataset) for this dataset")
        for name, value in (("data", data), ("predictions", predictions), ("compare", compare), ("current", current)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the Context of a run cannot be changed: {name!r} is fixed when the run starts "
                             "(build a new Context, e.g. Context(ctx.data, predictions=...))")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the Context of a run cannot be changed: {name!r} is fixed when the run starts")

    @property
    def dataset(self) -> Dataset:
        return self.data.dataset

    @property
    def features(self) -> pd.DataFrame:
        return self.data.features

    @property
    def valid(self) -> pd.Series:
        return self.data.valid

    @property
    def sample_ids(self) -> pd.Index:
        return self.data.sample_ids

    @property
    def feature_run(self) -> FeatureRun:
        return self.data.feature_run

    @property
    def feature_options(self) -> dict[str, Any]:
        return self.data.feature_options

    @property
    def group_columns(self) -> tuple[str, ...]:
        return self.data.group_columns

    def numeric(self, column: str) -> np.ndarray:
        return self.data.numeric(column)

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        return self.data.memo(key, compute)
