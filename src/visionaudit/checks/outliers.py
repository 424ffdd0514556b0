"""Outliers: images far from all others in feature space.

An image's isolation is its mean distance to its ``neighbours`` (10) nearest images in the builtin
embedding (:class:`~visionaudit.features.embedders.BuiltinEmbedder`: thumbnail layout and edges,
plus robust z-scores of brightness, contrast, entropy, colour, sharpness and noise), searched with
the shared :func:`~visionaudit.analyses.neighbours.knn`. The mean over several neighbours, not the distance
to the single nearest, so that a handful of similar strays (a few scanned documents among photos)
still stand out. The cut-off is relative to the dataset itself: an image is an outlier when its
isolation exceeds the median by more than ``threshold`` (8) robust standard deviations
(1.4826 x MAD). Measured on the 256 COCO128 photos: the most isolated (birds against an overcast
white sky) is at 5.4 (6.9 with an earlier decoder), so none is flagged, while 3 MNIST digits and a
checkerboard planted among them score 10.3 and more. The score is 0.5 ** (z / threshold) for
z > 0 (1 at or below the median, 0.5 at the cut-off).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analyses.neighbours import knn
from ..context import Context
from ..features.embedders import embeddings
from ..findings import CheckOutput, Severity
from .base import Check


class Outliers(Check):
    id = "balance.outliers"
    family = "balance"
    title = "Outlier images"
    severity = Severity.WARNING
    defaults = {"neighbours": 10, "threshold": 8.0}
    why = ("Images unlike the rest of the dataset (a scanned document among photos, a test pattern, a blank frame, "
           "a different camera or domain) are either junk that adds noise, or a kind of input the model sees too "
           "rarely to learn, which then fails silently in production.")
    fix = ("Look at the flagged images first: drop junk, and where they are real inputs collect more like them or "
           "note the gap; `threshold` raises or lowers the cut-off.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        k = int(self.params["neighbours"])
        emb = embeddings(ctx, "builtin")
        if len(emb.ids) < k + 2:
            return output
        nb = knn(emb.vectors, k)
        isolation = nb.distances.mean(axis=1).astype(float)
        median = float(np.median(isolation))
        spread = 1.4826 * float(np.median(np.abs(isolation - median)))
        z = (isolation - median) / spread if spread > 0 else np.zeros_like(isolation)
        threshold = float(self.params["threshold"])
        scores = pd.Series(0.5 ** (np.maximum(z, 0.0) / threshold), index=emb.ids)
        flags = pd.Series(z > threshold, index=emb.ids)
        output.score("outliers", scores, flags)
        flagged = emb.ids[flags.to_numpy()].tolist()
        if not flagged:
            return output
        zmap = dict(zip(emb.ids, np.round(z, 3)))
        return output.add(self.finding(
            issue="outliers", samples=flagged, scores=scores,
            message=f"{len(flagged)} image(s) are far from all others (isolation more than {threshold:g} robust "
                    f"standard deviations above the median).",
            evidence={"z_scores": {s: float(zmap[s]) for s in flagged}, "median_distance": round(median, 6),
                      "robust_std": round(spread, 6), "embedding": "builtin", "neighbours": k}))
