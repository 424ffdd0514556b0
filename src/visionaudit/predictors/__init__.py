"""Predictors: the one place predictions are made, before the run's Context exists.

A :class:`PredictionPlan` is prepared from what the user gave, before any image is decoded (so a
missing file, a bad model spec or an unlabelled dataset fails first): a predictions file
(:mod:`.from_file`), an image model visionaudit runs (:mod:`.from_model`), or, with neither,
cross-validation on image embeddings (:mod:`.crossval`). After the decode pass, :meth:`PredictionPlan.make`
turns it into :class:`~visionaudit.predictors.predictions.Predictions` for the Context, with what
``run_info["predictions"]`` says of how they were made.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Literal

from ..analyses import RunData
from ..dataset import Dataset
from ..errors import ArgumentError
from ..features.models import RUN_OPTIONS
from .crossval import check_request, cross_validated_predictions
from .from_file import read_predictions
from .from_model import ModelPredictor
from .predictions import DetectionPredictions, Predictions

__all__ = ["DetectionPredictions", "PredictionPlan", "Predictions", "out_of_fold_accuracy", "read_predictions"]


def out_of_fold_accuracy(preds: Predictions, labels: Any) -> float | None:
    """Share of the labelled samples with a prediction whose most probable class is their label
    (None when there are none)."""
    import numpy as np

    index = preds.label_index(labels)
    judged = index >= 0
    if not judged.any():
        return None
    return round(float(np.mean(preds.probs[judged].argmax(axis=1) == index[judged])), 4)


@dataclass
class PredictionPlan:
    """How a run gets its predictions: read already (``read``), from a model, or cross-validated."""

    read: Predictions | None = None
    model: ModelPredictor | None = None
    cross_validate: dict[str, Any] | None = None

    @classmethod
    def prepare(cls, dataset: Dataset, *, predictions: str | os.PathLike | None = None,
                model: dict[str, Any] | None = None, cross_validate: dict[str, Any] | None = None,
                from_logits: bool | Literal["auto"] = "auto") -> PredictionPlan:
        """Check and load what can be before the decode pass: a predictions file is read, a model loaded,
        a cross-validation request checked (labels, embedder, folds). ``cross_validate`` applies only when
        neither ``predictions`` nor ``model`` is given."""
        if model is not None and predictions is not None:
            raise ArgumentError("model", str(model.get("model")), "no predictions file with it (give one or the other)")
        if model is not None:
            return cls(model=ModelPredictor.prepare(dataset, from_logits=from_logits, **model))
        if predictions is not None:
            return cls(read=read_predictions(predictions, dataset, from_logits=from_logits))
        if cross_validate is not None:
            from ..features.embedders import resolve_embedder

            request = dict(cross_validate)
            requested = request.get("embedder", "auto")
            request["embedder"], _ = resolve_embedder(requested)  # auto: pretrained if installed, else builtin
            check_request(dataset, **request)
            return cls(cross_validate={**request, "requested_embedder": requested})
        return cls()

    def make(self, data: RunData) -> tuple[Predictions | None, dict[str, Any] | None]:
        """The predictions for ``data`` (after its decode pass), and how they were made (None when read
        from a file or when there are none)."""
        t0 = time.perf_counter()
        if self.model is not None:
            preds = self.model.predict(data.dataset, **{k: data.feature_options[k] for k in RUN_OPTIONS
                                                        if k in data.feature_options})
            return preds, {**self.model.info(), "source": preds.source, "seconds": round(time.perf_counter() - t0, 3)}
        if self.cross_validate is not None:
            request = {k: v for k, v in self.cross_validate.items() if k != "requested_embedder"}
            requested = self.cross_validate.get("requested_embedder", request.get("embedder", "auto"))
            timings: dict[str, float] = {}
            preds = cross_validated_predictions(data, **{**request, "embedder": requested}, timings=timings)
            return preds, {"method": "cross-validation", "source": preds.source, **request, "stage_seconds": timings,
                           "embedder": preds.embedder, "requested_embedder": requested,
                           "out_of_fold_accuracy": out_of_fold_accuracy(preds, data.dataset.samples["label"]),
                           "warnings": list(preds.warnings), "seconds": round(time.perf_counter() - t0, 3)}
        return self.read, None
