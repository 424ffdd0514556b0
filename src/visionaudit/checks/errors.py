"""Error analysis on the evaluation split: which classes the model mixes up, and where it is surest and wrong.

Both checks judge the samples of the evaluation split (``test``, else ``val``, else the only split;
see :func:`visionaudit.analyses.evaluation_data.evaluation_split`) that have a label and a prediction, with the
predicted class = the most probable one. They are informational: they say where to look, not whether
the model passes.

- ``errors.confused_pairs``: off-diagonal cells of the confusion matrix (true class -> predicted
  class) with at least ``min_count`` samples, most frequent first, each with its share of the true
  class and example ids (most confident first). Score of a judged sample: 1 - the share of its true
  class that goes to its predicted class (1 when right).
- ``errors.confident_errors``: wrong predictions whose predicted class has probability at least
  ``min_confidence``, worst (most confident) first; often a label error or an ambiguous image rather
  than a model mistake. Score: 1 - the probability of the wrong class (1 when right).
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analyses.evaluation_data import evaluation_data
from ..context import Context
from ..findings import CheckOutput, Severity
from ..metrics.classification import confusion_matrix
from .base import Check


class ConfusedPairs(Check):
    """The most frequent (true class -> predicted class) confusions, each a group of example samples.

    >>> [(g["true"], g["predicted"], g["count"]) for g in ConfusedPairs().run(ctx).findings[0].groups]
    [('beach', 'forest', 3), ('beach', 'meadow', 2)]
    """

    id = "errors.confused_pairs"
    family = "errors"
    suites = ("evaluate",)
    title = "Most confused class pairs"
    severity = Severity.INFO
    defaults: ClassVar[dict[str, Any]] = {
        "top": 10,        # pairs listed
        "min_count": 2,   # a pair needs at least this many samples (one mistake is not a pattern)
        "examples": 8,    # example sample ids per pair, most confident first
    }
    why = ("The errors of a classifier are rarely spread evenly: a few pairs of classes (4 and 9, husky and wolf) "
           "take most of them. Knowing which ones tells you where the model needs more or cleaner examples, where the "
           "class definitions overlap, and which mistakes matter for your users.")
    fix = ("Look at the example images of the top pairs. Add training images that tell the two classes apart, check "
           "both classes' labels for mix-ups (see label issues), and merge or redefine classes a person cannot tell "
           "apart either.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        d = evaluation_data(ctx)
        if d is None:
            return output
        pred = d.P.argmax(axis=1)
        k = len(d.classes)
        counts = confusion_matrix(d.y, pred, k)
        support = counts.sum(axis=1)
        share = counts / np.maximum(support, 1)[:, None]
        wrong = pred != d.y
        ids = d.ids.astype(str)
        scores = pd.Series(np.where(wrong, 1.0 - share[d.y, pred], 1.0), index=ids)
        off = counts.copy()
        np.fill_diagonal(off, 0)
        cells = np.argwhere(off >= int(self.params["min_count"]))
        # Most samples first; equal counts: the larger share of the true class, then class order.
        cells = sorted(map(tuple, cells), key=lambda ij: (-counts[ij], -share[ij], ij))[: int(self.params["top"])]
        listed = np.zeros((k, k), dtype=bool)
        for i, j in cells:
            listed[i, j] = True
        flags = pd.Series(wrong & listed[d.y, pred], index=ids)
        output.score("confused_pairs", scores, flags)
        if not cells:
            return output
        confidence = d.P[np.arange(d.n), pred]
        groups = []
        for i, j in cells:
            members = np.flatnonzero((d.y == i) & (pred == j))
            # Most confident first; equal probabilities keep sample-id order, so the examples are reproducible.
            members = members[np.lexsort((ids[members], -confidence[members]))]
            groups.append({
                "samples": ids[members[: int(self.params["examples"])]].tolist(),
                "true": d.classes[i], "predicted": d.classes[j], "count": int(counts[i, j]),
                "share": float(share[i, j]), "support": int(support[i]), "reverse": int(counts[j, i]),
                "confidence": [float(c) for c in confidence[members[: int(self.params["examples"])]]],
            })
        samples = [s for i, j in cells for s in ids[(d.y == i) & (pred == j)]]
        named = ", ".join(f"{g['true']} -> {g['predicted']} ({g['count']}, {g['share']:.1%} of {g['true']})"
                          for g in groups[:3])
        message = (f"{d.split}: {int(wrong.sum())} of {d.n} samples are misclassified; "
                   f"{len(groups)} pair(s) of true -> predicted class with {self.params['min_count']}+ samples, "
                   f"most confused: {named}")
        evidence = {"split": d.split, "n": d.n, "misclassified": int(wrong.sum()),
                    "pairs_listed": len(groups), "pairs_with_errors": int((off > 0).sum())}
        return output.add(self.finding(issue="confused_pairs", message=message, samples=samples, scores=scores,
                             groups=groups, evidence=evidence))


class ConfidentErrors(Check):
    """Wrong predictions made with high confidence, most confident first.

    ``evidence["worst"]`` lists up to ``top`` of them with the given label, the predicted label, the
    probability of the predicted class and that of the given label.

    >>> worst = ConfidentErrors().run(ctx).findings[0].evidence["worst"][0]
    >>> [str(worst[k]) for k in ("sample_id", "given_label", "predicted_label", "probability", "given_probability")]
    ['test/city/city_0003.jpg', 'city', 'forest', '0.7262', '0.2204']
    """

    id = "errors.confident_errors"
    family = "errors"
    suites = ("evaluate",)
    title = "Most confidently wrong predictions"
    severity = Severity.INFO
    defaults: ClassVar[dict[str, Any]] = {
        "min_confidence": 0.5,  # probability of the wrong class; above 0.5 it outweighs all other classes together
        "top": 100,             # rows kept in evidence["worst"] (every flagged id is in samples)
    }
    why = ("A model that is wrong while almost certain is the most dangerous kind of wrong: no confidence threshold "
           "catches it. These samples are also where label errors hide, since a good model confidently disagrees "
           "with a wrong label.")
    fix = ("Review the images worst first: fix the labels that are wrong (compare with label issues), note ambiguous "
           "images, and for true model mistakes add similar training images or calibrate the model.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        d = evaluation_data(ctx)
        if d is None:
            return output
        pred = d.P.argmax(axis=1)
        confidence = d.P[np.arange(d.n), pred]
        wrong = pred != d.y
        ids = d.ids.astype(str)
        scores = pd.Series(np.where(wrong, 1.0 - confidence, 1.0), index=ids)
        flagged = wrong & (confidence >= float(self.params["min_confidence"]))
        output.score("confident_errors", scores, pd.Series(flagged, index=ids))
        if not flagged.any():
            return output
        order = np.flatnonzero(flagged)
        order = order[np.lexsort((ids[order], -confidence[order]))]
        classes = np.asarray(d.classes, dtype=object)
        worst = [{"sample_id": ids[i], "given_label": str(classes[d.y[i]]), "predicted_label": str(classes[pred[i]]),
                  "probability": float(confidence[i]), "given_probability": float(d.P[i, d.y[i]])}
                 for i in order[: int(self.params["top"])]]
        top = worst[0]
        message = (f"{d.split}: {len(order)} of {int(wrong.sum())} wrong predictions have probability "
                   f">= {self.params['min_confidence']:g} for the wrong class; the surest: {top['sample_id']} given "
                   f"'{top['given_label']}', predicted '{top['predicted_label']}' ({top['probability']:.3f})")
        evidence = {"split": d.split, "n": d.n, "misclassified": int(wrong.sum()), "flagged": len(order),
                    "worst": worst}
        return output.add(self.finding(issue="confident_errors", message=message, samples=ids[order].tolist(), scores=scores,
                             evidence=evidence))
