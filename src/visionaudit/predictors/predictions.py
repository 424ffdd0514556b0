"""Predictions: what a model says about a dataset's samples, in one small protocol for every task.

- :class:`Predictions` (classification): per-class probabilities, one row per sample, in dataset
  order; a sample the model did not predict keeps a row of NaN.
- :class:`DetectionPredictions` (detection, instance segmentation): a table of predicted objects, one
  row per prediction (``prediction_id``, ``sample_id``, ``label``, ``score``, box in pixels as top-left
  ``x``, ``y`` and size ``w``, ``h``, optional ``polygon`` / ``rle`` mask), over the dataset's samples.

Both carry the dataset's ``sample_ids``, a ``source`` (where they came from, for the report) and
``notes``. Only :mod:`visionaudit.predictors` makes them (from a file, a model, or cross-validation),
before the run's :class:`~visionaudit.context.Context` exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ArgumentError, SourceError

#: Key columns, in order of preference (matched case-insensitively).
KEY_COLUMNS = ("sample_id", "path")
#: Prefix of class columns written as ``prob_<class>``.
PROB_PREFIX = "prob_"
#: How far a row of probabilities may sum from 1 (files written with a few decimals).
SUM_TOLERANCE = 1e-3
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


@dataclass
class Predictions:
    """Per-class probabilities aligned to a dataset's samples.

    ``probs`` has one row per sample of the dataset, in dataset order (``sample_ids``), and one column
    per class (``classes``); samples without a prediction have a row of NaN.

    >>> p = Predictions(["cat", "dog"], np.array([[0.9, 0.1], [np.nan, np.nan]]), ["a.png", "b.png"])
    >>> p.has.tolist(), p.missing
    ([True, False], 1)
    """

    classes: list[str]
    probs: np.ndarray
    sample_ids: list[str]
    source: str = ""
    notes: list[str] = field(default_factory=list)
    #: The embedder cross-validation used (None for a file or a model), and what a user must hear
    #: about how the predictions were made (e.g. that ``auto`` fell back to ``builtin``).
    embedder: str | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.probs.shape != (len(self.sample_ids), len(self.classes)):
            raise ValueError(f"probs has shape {self.probs.shape}; expected "
                             f"({len(self.sample_ids)} samples, {len(self.classes)} classes)")

    @property
    def has(self) -> np.ndarray:
        """True for samples that have a prediction."""
        return ~np.isnan(self.probs).any(axis=1)

    def label_index(self, labels: pd.Series) -> np.ndarray:
        """Each sample's label as a column of ``probs``; -1 where it has no label or no prediction.

        Raises ValueError naming the labels of predicted samples that are not among ``classes``.

        >>> p = Predictions(["cat", "dog"], np.array([[0.9, 0.1], [0.2, 0.8], [np.nan, np.nan]]), ["a", "b", "c"])
        >>> p.label_index(pd.Series(["dog", None, "cat"])).tolist()
        [1, -1, -1]
        """
        judged = labels.notna().to_numpy() & self.has
        given = labels.astype(object).to_numpy()[judged].astype(str)
        position = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(given) - set(position))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the predictions' classes {self.classes}")
        index = np.full(len(labels), -1, dtype=np.int64)
        index[judged] = [position[g] for g in given]
        return index

    @property
    def missing(self) -> int:
        """How many samples have no prediction."""
        return int((~self.has).sum())




#: Columns of :attr:`DetectionPredictions.objects`; ``polygon`` and ``rle`` may be None.
DETECTION_COLUMNS = ("prediction_id", "sample_id", "label", "score", "x", "y", "w", "h", "polygon", "rle")
BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


@dataclass
class DetectionPredictions:
    """Predicted objects of a detector for a dataset's samples (see the module's note).

    ``objects`` has the :data:`DETECTION_COLUMNS`, boxes in pixels of the image as stored; ``prediction_id``
    is ``<sample_id>#p<index>`` (index in the model's output order for that sample). ``sample_ids`` lists
    every sample of the dataset (a sample with no row had no detection).

    >>> preds = DetectionPredictions.from_dicts(["a.jpg"], [{"boxes": [[10, 20, 50, 80]], "scores": [0.9],
    ...                                           "labels": ["cat"]}], source="model")
    >>> preds.objects[["prediction_id", "x", "y", "w", "h"]].values.tolist()
    [['a.jpg#p0', 10.0, 20.0, 40.0, 60.0]]
    """

    sample_ids: list[str]
    objects: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)
    kind = "detection"

    def __post_init__(self) -> None:
        missing = [c for c in DETECTION_COLUMNS if c not in self.objects.columns]
        if missing:
            raise ValueError(f"detection predictions lack columns {missing}")
        unknown = set(self.objects["sample_id"]) - set(self.sample_ids)
        if unknown:
            raise ValueError(f"detections for samples not in the dataset: {sorted(map(str, unknown))[:5]}")

    @classmethod
    def from_dicts(cls, sample_ids: list[str], outputs: list[dict], *, source: str,
                   box_format: str = "xyxy") -> DetectionPredictions:
        """From torchmetrics-style outputs, one dict per sample in ``sample_ids`` order: ``boxes``
        (n, 4) in ``box_format`` pixels, ``scores`` (n,), ``labels`` (n,), optional ``masks`` (n, H, W)
        booleans, kept as COCO RLE when ``pycocotools`` is installed. A box whose size is negative or
        that is not 4 finite numbers is an error naming the sample and the detection."""
        if box_format not in BOX_FORMATS:
            raise ArgumentError("box_format", box_format, f"one of {', '.join(BOX_FORMATS)}")
        if len(outputs) != len(sample_ids):
            raise ArgumentError("outputs", f"{len(outputs)} dicts", f"one per sample ({len(sample_ids)})")
        rows = []
        for sid, out in zip(sample_ids, outputs):
            boxes = np.asarray(out.get("boxes", []), dtype=float).reshape(-1, 4)
            scores = np.asarray(out.get("scores", []), dtype=float).reshape(-1)
            labels = list(np.asarray(out.get("labels", [])).reshape(-1))
            if not (len(boxes) == len(scores) == len(labels)):
                raise SourceError(source, f"{sid}: {len(boxes)} boxes, {len(scores)} scores and {len(labels)} labels "
                                          "(one each per detection)")
            masks = out.get("masks")
            for k, (box, score, label) in enumerate(zip(boxes, scores, labels)):
                if not np.isfinite(box).all() or not np.isfinite(score):
                    raise SourceError(source, f"{sid}: detection {k} has a box or score that is not finite: "
                                              f"{box.tolist()} {score}")
                if box_format == "xyxy":
                    x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
                elif box_format == "xywh":
                    x, y, w, h = box
                else:
                    x, y, w, h = box[0] - box[2] / 2, box[1] - box[3] / 2, box[2], box[3]
                if w < 0 or h < 0:
                    raise SourceError(source, f"{sid}: detection {k} has a negative size ({w:g} x {h:g}); its "
                                              f"box {box.tolist()} is not in {box_format} format")
                rows.append({"prediction_id": f"{sid}#p{k}", "sample_id": sid, "label": str(label),
                             "score": float(score), "x": float(x), "y": float(y), "w": float(w), "h": float(h),
                             "polygon": None, "rle": None if masks is None else _rle(np.asarray(masks[k]))})
        return cls(list(sample_ids), pd.DataFrame(rows, columns=list(DETECTION_COLUMNS)), source)


def _rle(mask: np.ndarray) -> dict:
    try:
        from pycocotools import mask as mask_utils
    except ImportError as exc:
        raise ImportError("masks in detection predictions need pycocotools: pip install 'visionaudit[detection]'") from exc
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
