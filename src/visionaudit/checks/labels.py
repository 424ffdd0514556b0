"""Label issues: samples whose given label a model's out-of-sample predictions contradict.

Confident learning (cleanlab) decides which samples are likely mislabelled; each judged sample's
score is cleanlab's label quality score (self-confidence: the predicted probability of the given
label, in [0, 1], lower = more likely wrong). Only labelled samples with a prediction are judged, so
the check needs ``ctx.predictions`` and returns nothing without them (the ``scan`` suite has none).
The predictions must be out-of-sample (cross-validated, or from a model that never trained on these
images): a model that memorised the labels agrees with every mistake.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import Finding, Severity
from .base import Check

CANDIDATE_COLUMNS = ("sample_id", "path", "given_label", "suggested_label", "score")


def _cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError as exc:
        raise ImportError("the label_issues check needs cleanlab: pip install 'visionaudit[evaluate]'") from exc
    return cleanlab


class LabelIssues(Check):
    id = "labels.label_issues"
    family = "labels"
    title = "Likely label errors"
    severity = Severity.WARNING
    defaults = {"filter_by": "prune_by_noise_rate"}
    why = ("A wrong label teaches the model the wrong answer and, in a test split, marks a right prediction "
           "as an error: a few percent of label errors can change which model looks best. These samples' "
           "given labels disagree with what the model confidently predicts for them out of sample.")
    fix = ("Review the listed images worst first, with the suggested label next to the given one; correct the "
           "labels that are wrong in your annotation source (visionaudit never edits it), or drop ambiguous "
           "images. Re-train and re-run: the list shrinks as labels improve.")

    def run(self, ctx: Context) -> list[Finding]:
        preds = ctx.predictions
        if preds is None:
            return []
        samples = ctx.dataset.samples
        index = preds.label_index(samples["label"])
        judged = index >= 0
        if not judged.any():
            return []
        given = samples["label"][judged].astype(str).to_numpy()
        labels = index[judged]
        probs = preds.probs[judged]
        cl = _cleanlab()
        ranked = cl.filter.find_label_issues(labels, probs, return_indices_ranked_by="self_confidence",
                                             filter_by=self.params["filter_by"])
        quality = cl.rank.get_label_quality_scores(labels, probs, method="self_confidence")
        ids = samples["sample_id"][judged].to_numpy()
        scores = pd.Series(quality, index=ids)
        flags = pd.Series(False, index=ids)
        flags.iloc[ranked] = True
        ctx.add_scores("label_issues", scores, flags)
        if len(ranked) == 0:
            return []
        suggested = np.asarray(preds.classes, dtype=object)[probs.argmax(axis=1)]
        paths = samples["path"][judged].to_numpy()
        listed = [{"sample_id": str(ids[i]), "path": str(paths[i]), "given_label": str(given[i]),
                   "suggested_label": str(suggested[i]), "quality": float(quality[i])} for i in ranked]
        pairs = Counter((row["given_label"], row["suggested_label"]) for row in listed)
        common = ", ".join(f"{g} -> {s} ({n})" for (g, s), n in pairs.most_common(3))
        message = (f"{len(ranked)} of {len(ids)} labelled samples with predictions look mislabelled "
                   f"({len(ranked) / len(ids):.1%}); most common given -> suggested label: {common}")
        evidence = {
            "judged": int(len(ids)),
            "flagged": int(len(ranked)),
            "unlabelled": int(samples["label"].isna().sum()),
            "without_predictions": int(preds.missing),
            "candidates": listed,
            "pairs": [{"given_label": g, "suggested_label": s, "count": n} for (g, s), n in pairs.most_common()],
        }
        return [self.finding(issue="label_issues", message=message, samples=[row["sample_id"] for row in listed],
                             scores=scores, evidence=evidence)]


def corrected_candidates(finding: Finding) -> pd.DataFrame:
    """The label-issue finding as a table for review, worst first: one row per flagged sample with
    ``sample_id``, ``path``, ``given_label``, ``suggested_label`` and ``score`` (label quality).

    A renderer writes it next to the report; the user's own labels are never changed.

    >>> table = corrected_candidates(result.finding("label_issues"))     # doctest: +SKIP
    >>> table.columns.tolist()                                           # doctest: +SKIP
    ['sample_id', 'path', 'given_label', 'suggested_label', 'score']
    """
    rows = finding.evidence.get("candidates", [])
    table = pd.DataFrame(rows, columns=["sample_id", "path", "given_label", "suggested_label", "quality"])
    return table.rename(columns={"quality": "score"})[list(CANDIDATE_COLUMNS)]
