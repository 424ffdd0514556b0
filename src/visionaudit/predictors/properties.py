"""Out-of-fold predictions of the label from image properties alone (size, file size, brightness,
sharpness, format...): the property baseline that ``baselines.property_shortcut``,
``baselines.model_vs_baseline`` and ``labels.label_issues`` judge against, computed once per run.

scikit-learn (the ``evaluate`` extra) is imported only when it is computed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .crossval import make_folds

#: Numeric per-image properties a shortcut model may use (those present and not constant are used).
PROPERTY_COLUMNS = (
    "width", "height", "megapixels", "aspect_ratio", "file_size", "jpeg_quality", "bit_depth", "has_alpha",
    "exif_orientation", "brightness", "contrast", "dynamic_range", "dark_fraction", "bright_fraction",
    "shadows", "highlights", "relative_contrast", "entropy", "sharpness", "noise", "channel_spread",
)
#: Categorical properties, one indicator column per value (``format=PNG``): a class saved as PNG is a shortcut too.
CATEGORICAL_COLUMNS = ("format", "mode")
MODELS = ("boosting", "logistic")


@dataclass
class PropertyPredictions:
    """Out-of-fold class probabilities of a model trained on image properties only.

    ``probs[i, k]`` is P(``classes[k]``) for ``sample_ids[i]`` from the fold that did not train on it.
    ``table`` is the property matrix the model saw (rows = ``sample_ids``); ``splits`` the
    (training rows, predicted rows) of each fold (:func:`visionaudit.predictors.crossval.make_folds`).
    """

    sample_ids: np.ndarray
    labels: np.ndarray
    classes: list[str]
    probs: np.ndarray
    table: pd.DataFrame
    model: str
    folds: int
    seed: int
    splits: list[tuple[np.ndarray, np.ndarray]]

    @property
    def predicted(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.probs.argmax(axis=1)]

    @property
    def correct(self) -> np.ndarray:
        return (self.predicted == self.labels).astype(float)


def property_table(ctx: Any, rows: np.ndarray) -> pd.DataFrame:
    """The image-property matrix for the samples selected by the boolean mask ``rows``.

    Numeric properties as floats (NaN where not measured, e.g. ``jpeg_quality`` of a PNG) and one 0/1
    column per value of each categorical property; columns constant over these rows are dropped since
    they cannot tell classes apart.

    >>> property_table(ctx, ctx.valid.to_numpy()).columns[:3].tolist()
    ['width', 'height', 'megapixels']
    """
    feats = ctx.features[rows]
    parts = {c: pd.to_numeric(feats[c], errors="coerce").astype(float) for c in PROPERTY_COLUMNS if c in feats}
    for c in CATEGORICAL_COLUMNS:
        if c in feats:
            values = feats[c].astype(object).where(feats[c].notna(), "none").astype(str)
            for v in sorted(values.unique()):
                parts[f"{c}={v}"] = (values == v).astype(float)
    table = pd.DataFrame(parts, index=feats.index)
    keep = [c for c in table.columns if table[c].nunique(dropna=False) > 1]
    return table[keep]


def _estimator(model: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "boosting":
        # Handles NaN and any monotone transform of a property (file size vs megapixels) natively; early
        # stopping on a seeded 10% hold-out ends weak fits after a few rounds (5x faster on 10 classes).
        return HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, learning_rate=0.1, early_stopping=True,
                                              random_state=seed)
    if model == "logistic":
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000))
    raise ValueError(f"unknown property model {model!r}; expected one of {', '.join(MODELS)}")


def _compute_property_predictions(ctx: Any, model: str, folds: int, seed: int) -> PropertyPredictions | None:
    plan = make_folds(ctx, ctx.valid.to_numpy(), folds=folds, seed=seed)
    if plan is None:
        return None
    table = property_table(ctx, plan.rows)
    if table.shape[1] == 0:
        return None
    probs = plan.predict_proba(_estimator(model, seed), table.to_numpy())
    return PropertyPredictions(sample_ids=plan.sample_ids, labels=plan.labels, classes=plan.classes, probs=probs,
                               table=table, model=model, folds=folds, seed=seed, splits=plan.splits())


def property_predictions(ctx: Any, *, model: str = "boosting", folds: int = 5,
                         seed: int = 0) -> PropertyPredictions | None:
    """Out-of-fold predictions of the label from image properties alone, computed once per run.

    Judged: labelled samples whose image decoded, of classes with at least ``folds`` such samples;
    group members and duplicates stay in one fold (:func:`visionaudit.predictors.crossval.make_folds`).
    None when fewer than two classes (or no varying property) remain.

    >>> pp = property_predictions(ctx)
    >>> round(float(pp.correct.mean()), 3)        # cross-validated accuracy: the example's classes differ in colour
    0.976
    """
    if model not in MODELS:
        raise ValueError(f"unknown property model {model!r}; expected one of {', '.join(MODELS)}")
    return ctx.memo(("baselines.property_predictions", model, folds, seed),
                    lambda: _compute_property_predictions(ctx, model, folds, seed))
