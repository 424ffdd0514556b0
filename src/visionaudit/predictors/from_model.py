"""Predictions from an image model visionaudit runs (``--model``: ONNX, TorchScript, ``module:callable``).

The model runs through the decode-and-infer pipeline of :mod:`visionaudit.features.models` (outputs
cached by file content, model and preprocessing); this module turns its outputs into
:class:`~visionaudit.predictors.predictions.Predictions` named by class.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..dataset.model import Dataset
from ..errors import SourceError
from ..features.models import Model, ModelRun, Preprocess, load_model, run_model
from .from_file import _as_probabilities
from .predictions import Predictions


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (the model's output columns in order); blank lines at the end ignored.

    >>> read_class_names("classes.txt")
    ['beach', 'city', 'forest', 'meadow']
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(str(p), f"cannot read class names: {exc}") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    names, seen = [], {}
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise SourceError(str(p), "empty class name (one name per line, one line per output column)", line=number)
        if name in seen:
            raise SourceError(str(p), f"class {name!r} is listed twice (first on line {seen[name]})", line=number)
        seen[name] = number
        names.append(name)
    if not names:
        raise SourceError(str(p), "no class names (one per line, one line per output column)")
    return names


def output_classes(width: int, dataset: Dataset, *, source: str, classes: list[str] | None = None,
                   classes_source: str | None = None) -> list[str]:
    """The class name of each of a model's ``width`` output columns: ``classes`` (read from
    ``classes_source``), else the dataset's sorted labels when there are as many; every label of the
    dataset must be among them. Errors name both numbers.

    >>> output_classes(4, dataset, source="model m.onnx")
    ['beach', 'city', 'forest', 'meadow']
    >>> output_classes(1000, dataset, source="model m.onnx")      # doctest: +ELLIPSIS
    Traceback (most recent call last):
    visionaudit.errors.SourceError: model m.onnx: the model gives 1000 outputs per image but the dataset has 4 labels: ...
    """
    labels = sorted({str(v) for v in dataset.samples["label"].dropna()} | set(dataset.classes or []))
    if classes is None:
        if width != len(labels):
            raise SourceError(source, f"the model gives {width} outputs per image but the dataset has {len(labels)} "
                                      "labels: pass the model's class names (--model-classes, one per line, one per "
                                      "output column)")
        return labels
    if len(classes) != width:
        raise SourceError(classes_source or source, f"{len(classes)} class names for a model that gives {width} "
                                                    "outputs per image (one name per output column)")
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        shown = ", ".join(map(repr, unknown[:5])) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise SourceError(classes_source or source, f"the dataset's labels {shown} are not among the model's classes")
    return list(classes)


def predictions_from_outputs(values: np.ndarray, dataset: Dataset, *, source: str,
                             classes: list[str] | None = None, classes_source: str | None = None,
                             from_logits: bool | Literal["auto"] = "auto") -> Predictions:
    """Predictions from a model's raw outputs, one row per sample in dataset order (NaN row: no output).

    Columns are named by :func:`output_classes`; rows that are not probabilities are read as logits
    as in :func:`read_predictions`.

    >>> logits = np.tile([2.0, 0.0, 0.0, -1.0], (len(dataset.samples), 1))
    >>> preds = predictions_from_outputs(logits, dataset, source="model m.onnx")
    >>> preds.classes, preds.probs[0].round(3).tolist()
    (['beach', 'city', 'forest', 'meadow'], [0.757, 0.102, 0.102, 0.038])
    """
    classes = output_classes(values.shape[1], dataset, source=source, classes=classes, classes_source=classes_source)
    has = np.isfinite(values).all(axis=1)
    probs = np.full(values.shape, np.nan)
    notes: list[str] = []
    if has.any():
        probs[has], notes = _as_probabilities(values[has].astype(float), from_logits, Path(source), None, classes)
    if (~has).any():
        notes.append(f"{int((~has).sum())} of {len(values)} samples have no model output (the image did not decode)")
    ids = dataset.samples["sample_id"].astype(str).tolist()
    return Predictions(classes=classes, probs=probs, sample_ids=ids, source=source, notes=notes)


@dataclass
class ModelPredictor:
    """A model ready to predict a dataset's classes: loaded, with its preprocessing and class names.

    Built by :meth:`prepare` before any image is decoded, so a missing model file, a bad spec or class
    names that do not fit fail first; :meth:`predict` then runs the model (cached) and turns its
    outputs into :class:`~visionaudit.predictors.predictions.Predictions`.

    >>> predictor = ModelPredictor.prepare(dataset, "m.onnx", classes="classes.txt")
    >>> preds = predictor.predict(dataset)
    >>> preds.source, preds.notes[-1]
    ("model m.onnx (output 'output')", '2 of 218 samples have no model output (the image did not decode)')
    """

    model: Model
    preprocess: Preprocess
    classes: list[str] | None
    classes_source: str | None
    from_logits: bool | str = "auto"
    run: ModelRun | None = None

    @classmethod
    def prepare(cls, dataset: Any, model: str | os.PathLike, *, preprocess: Any = None, classes: Any = None,
                output: str | None = None, from_logits: bool | str = "auto") -> ModelPredictor:
        """Load ``model`` and read ``classes`` (a file, one name per line, or a list)."""
        loaded = load_model(model, output)
        spec = Preprocess.from_config(preprocess if preprocess is not None else loaded.preprocess)
        loaded.check_preprocess(spec)
        names, where = None, None
        if classes is not None:
            if isinstance(classes, (str, os.PathLike)):
                names, where = read_class_names(classes), str(classes)
            else:
                names = [str(c) for c in classes]
        predictor = cls(model=loaded, preprocess=spec, classes=names, classes_source=where, from_logits=from_logits)
        if loaded.output_width is not None:  # the model declares its output size: check the names now
            output_classes(loaded.output_width, dataset, source=predictor.source, classes=names, classes_source=where)
        return predictor

    @property
    def source(self) -> str:
        output = f" (output {self.model.output!r})" if self.model.output else ""
        return f"model {self.model.name}{output}"

    def predict(self, dataset: Any, **options: Any) -> Any:
        """Run the model over ``dataset``'s images (``options``: :func:`run_model`'s cache, workers, progress)."""
        paths = dataset.samples["path"].astype(str).tolist()
        self.run = run_model(self.model, paths, preprocess=self.preprocess, **options)
        return predictions_from_outputs(self.run.rows(paths), dataset, source=self.source, classes=self.classes,
                                        classes_source=self.classes_source, from_logits=self.from_logits)

    def info(self) -> dict[str, Any]:
        """What run_info records about the model run."""
        info: dict[str, Any] = {"method": "model", "model": self.model.name, "kind": self.model.kind,
                                "output": self.model.output, "preprocess": asdict(self.preprocess)}
        if self.classes_source:
            info["classes_file"] = self.classes_source
        if self.run is not None:
            info.update(images_inferred=self.run.inferred, outputs_from_cache=self.run.from_cache,
                        images_without_output=len(self.run.errors))
        return info
