"""Label issues: samples whose given label a model's out-of-sample predictions contradict, or that
are copies of a picture filed under another label.

Two sources feed one ranking (worst first) and one corrected-candidates table:

- Confident learning (cleanlab) decides which samples with a prediction are likely mislabelled; each
  such sample's score is cleanlab's label quality score (self-confidence: the predicted probability
  of the given label, in [0, 1], lower = more likely wrong). The predictions must be out-of-sample
  (cross-validated, or from a model that never trained on these images): a model that memorised the
  labels agrees with every mistake.
- Duplicate clusters (exact and near copies linked together, from the run's shared
  :func:`~visionaudit.analyses.duplicate_index.duplicate_index`) whose members carry different labels: one
  picture cannot be two classes, so at least one copy is mislabelled. The cluster gets one answer:
  of the labels its copies carry, the one with the highest mean predicted probability over the
  copies that have a prediction (one of them is most likely right, even where the model favours a
  third class) or, when no copy has one, the labels' strict majority. Every copy labelled otherwise
  joins the list with that answer as the suggested label (none on a tie, and then every copy joins).
  Its score is its own probability of the given label where it has a prediction, else the copies'
  mean probability of it, else the share of the labelled copies that carry its label. This works
  for samples the predictions do not cover.

The check needs ``ctx.predictions`` and returns nothing without them (the ``scan`` suite has none;
there ``duplicates.conflicting_labels`` reports the clusters).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analyses.duplicate_index import describe_group, duplicate_index
from ..analyses.neighbours import pair_groups
from ..context import Context
from ..findings import CheckOutput, Finding, Severity
from ..predictors.predictions import Predictions
from .base import Check

CANDIDATE_COLUMNS = ("sample_id", "path", "given_label", "suggested_label", "score", "reason",
                     "duplicate_cluster", "duplicate_members")


def _cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError as exc:
        raise ImportError("the label_issues check needs cleanlab: pip install 'visionaudit[evaluate]'") from exc
    return cleanlab


def _label_counts(labels: list[Any]) -> str:
    return ", ".join(f"{label} x{n}" for label, n in Counter(labels).most_common())


def duplicate_label_conflicts(ctx: Context, preds: Predictions) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """Clusters of exact or near duplicates whose labels differ, and a candidate row for each copy
    whose label is not the cluster's answer (see the module docstring), keyed by sample id.

    Each cluster is a finding group (:func:`~visionaudit.checks.duplicates.describe_group`, likely
    original first) with its ``cluster`` id (``exact-1``, ``near-2``...), the ``suggested_label`` and
    where it came from (``suggested_by``: ``model``, ``majority`` or ``none`` on a tie).

    >>> groups, rows = duplicate_label_conflicts(ctx, ctx.predictions)
    >>> groups[0]["cluster"], groups[0]["samples"], groups[0]["labels"], groups[0]["suggested_label"]
    ('exact-1', ['train/beach/beach_0021.jpg', 'train/forest/forest_0036.jpg'], ['beach', 'forest'], 'beach')
    >>> list(rows)
    ['train/forest/forest_0036.jpg']
    """
    index = duplicate_index(ctx)
    links = np.concatenate([index.exact_pairs, index.near_pairs]).reshape(-1, 2)
    position = {sid: p for p, sid in enumerate(preds.sample_ids)}
    column = {c: k for k, c in enumerate(preds.classes)}
    has = preds.has
    labels = ctx.dataset.samples["label"].to_numpy()
    paths = ctx.dataset.samples["path"].to_numpy()
    groups: list[dict[str, Any]] = []
    rows: dict[str, dict] = {}
    for members in pair_groups(len(index.ids), links):
        at = [position[str(s)] for s in index.ids[members]]
        given = [labels[p] for p in at]
        if len({str(g) for g in given if not pd.isna(g)}) < 2:
            continue
        near = np.isin(index.near_pairs, members).all(axis=1)
        kind = "near" if near.any() else "exact"
        group = describe_group(ctx, index.ids[members].tolist(), kind,
                               float(index.near_similarity[near].min()) if near.any() else 1.0)
        predicted = [p for p in at if has[p]]
        mean = preds.probs[predicted].mean(axis=0) if predicted else None
        labelled = [str(g) for g in given if not pd.isna(g)]
        if mean is not None:
            answer = max(sorted(set(labelled)), key=lambda g: mean[column[g]] if g in column else -1.0)
            source = "model"
        else:
            (top, n), *rest = Counter(labelled).most_common(2) + [(None, 0)]
            answer, source = (top, "majority") if n > rest[0][1] else (None, "none")
        cluster = f"{kind}-{len(groups) + 1}"
        groups.append({**group, "cluster": cluster, "suggested_label": answer, "suggested_by": source})
        said = {"model": "suggested: the copies' label the model finds most likely",
                "majority": "suggested: the copies' majority label",
                "none": "the labels tie and no copy has a prediction: decide from the images"}[source]
        reason = f"{kind} duplicates carry different labels ({_label_counts(labelled)}); {said}"
        for p, g in zip(at, given):
            if pd.isna(g) or str(g) == answer:
                continue
            k = column.get(str(g))
            if has[p]:
                score = float(preds.probs[p, k]) if k is not None else 0.0
            elif mean is not None:
                score = float(mean[k]) if k is not None else 0.0
            else:
                score = labelled.count(str(g)) / len(labelled)
            sid = preds.sample_ids[p]
            rows[sid] = {"sample_id": sid, "path": str(paths[p]), "given_label": str(g), "suggested_label": answer,
                         "quality": score, "reason": reason, "duplicate_cluster": cluster,
                         "duplicate_members": [s for s in group["samples"] if s != sid]}
    return groups, rows


class LabelIssues(Check):
    id = "labels.label_issues"
    family = "labels"
    suites = ("evaluate",)
    title = "Likely label errors"
    severity = Severity.WARNING
    defaults = {"filter_by": "prune_by_noise_rate", "duplicates": True}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"filter_by": (  # cleanlab's find_label_issues
        "prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
        "low_normalized_margin", "low_self_confidence")}
    why = ("A wrong label teaches the model the wrong answer and, in a test split, marks a right prediction "
           "as an error: a few percent of label errors can change which model looks best. These samples' "
           "given labels disagree with what the model confidently predicts for them out of sample, or with "
           "the labels of their exact or near duplicates.")
    fix = ("Review the listed images worst first, with the suggested label next to the given one; correct the "
           "labels that are wrong in your annotation source (visionaudit never edits it), or drop ambiguous "
           "images. Re-train and re-run: the list shrinks as labels improve.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        preds = ctx.predictions
        if preds is None:
            return output
        samples = ctx.dataset.samples
        index = preds.label_index(samples["label"])
        judged = index >= 0
        ids = samples["sample_id"].to_numpy()
        scores = pd.Series(np.nan, index=ids)
        flags = pd.Series(False, index=ids)
        listed: dict[str, dict] = {}
        if judged.any():
            listed = self._model_candidates(samples, preds, index, judged, scores, flags)
        groups, conflicts = duplicate_label_conflicts(ctx, preds) if self.params["duplicates"] else ([], {})
        joined = [sid for sid in conflicts if sid not in listed]
        for sid, row in conflicts.items():
            if sid in listed:
                # The model doubts it too: one row, with the cluster's answer (from all copies).
                model = listed[sid]
                listed[sid] = {**row, "quality": model["quality"], "reason": f"{model['reason']}; {row['reason']}"}
            else:
                listed[sid] = row
                scores[sid] = row["quality"]
            flags[sid] = True
        output.score("label_issues", scores, flags)
        if not listed:
            return output
        order = sorted(listed.values(), key=lambda r: r["quality"])
        n_model = len(listed) - len(joined)
        pairs = Counter((row["given_label"], row["suggested_label"]) for row in order)
        common = ", ".join(f"{g} -> {'?' if s is None else s} ({n})" for (g, s), n in pairs.most_common(3))
        n_judged = int(judged.sum())
        parts = [(f"{n_model} of {n_judged} labelled samples with predictions look mislabelled "
                  f"({n_model / n_judged:.1%})")] if n_judged else []
        if joined:
            parts.append(f"{len(joined)} {'more ' if parts else ''}are duplicates of differently labelled images "
                         f"({len(groups)} duplicate cluster(s) with conflicting labels)")
        message = "; ".join(parts) + f"; most common given -> suggested label: {common}"
        evidence = {
            "judged": n_judged,
            "flagged": len(listed),
            "flagged_by_model": n_model,
            "joined_by_duplicates": len(joined),
            "duplicate_clusters": len(groups),
            "unlabelled": int(samples["label"].isna().sum()),
            "without_predictions": int(preds.missing),
            "candidates": order,
            "pairs": [{"given_label": g, "suggested_label": s, "count": n} for (g, s), n in pairs.most_common()],
        }
        return output.add(self.finding(issue="label_issues", message=message, samples=[row["sample_id"] for row in order],
                             scores={row["sample_id"]: row["quality"] for row in order}, groups=groups,
                             evidence=evidence))

    def _model_candidates(self, samples: pd.DataFrame, preds: Predictions, index: np.ndarray, judged: np.ndarray,
                          scores: pd.Series, flags: pd.Series) -> dict[str, dict]:
        """Cleanlab's verdict on the samples with a label and a prediction: records their scores and
        flags and returns a candidate row for each flagged one, in cleanlab's order (worst first)."""
        given = samples["label"][judged].astype(str).to_numpy()
        labels = index[judged]
        probs = preds.probs[judged]
        cl = _cleanlab()
        ranked = cl.filter.find_label_issues(labels, probs, return_indices_ranked_by="self_confidence",
                                             filter_by=self.params["filter_by"])
        quality = cl.rank.get_label_quality_scores(labels, probs, method="self_confidence")
        ids = samples["sample_id"][judged].to_numpy()
        scores[ids] = quality
        flags[ids[ranked]] = True
        best = probs.argmax(axis=1)
        suggested = np.asarray(preds.classes, dtype=object)[best]
        paths = samples["path"][judged].to_numpy()
        return {str(ids[i]): {"sample_id": str(ids[i]), "path": str(paths[i]), "given_label": str(given[i]),
                              "suggested_label": str(suggested[i]), "quality": float(quality[i]),
                              "reason": (f"the model predicts {suggested[i]} (p {probs[i, best[i]]:.2f}) and gives "
                                         f"the given label p {quality[i]:.2f}"),
                              "duplicate_cluster": None, "duplicate_members": []}
                for i in ranked}


def corrected_candidates(finding: Finding) -> pd.DataFrame:
    """The label-issue finding as a table for review, worst first: one row per flagged sample with
    ``sample_id``, ``path``, ``given_label``, ``suggested_label`` (empty where copies tie),
    ``score`` (label quality), ``reason``, and for duplicates of differently labelled images the
    ``duplicate_cluster`` id and the other ``duplicate_members`` (separated by ``;``).

    A renderer writes it next to the report; the user's own labels are never changed.

    >>> table = corrected_candidates(result.finding("label_issues"))
    >>> table.columns.tolist()
    ['sample_id', 'path', 'given_label', 'suggested_label', 'score', 'reason', 'duplicate_cluster', 'duplicate_members']
    >>> table[["sample_id", "given_label", "suggested_label", "score"]].head(2).values.tolist()
    [['train/beach/beach_0022.jpg', 'beach', 'city', 0.0082], ['val/forest/forest_0008.jpg', 'forest', 'beach', 0.0319]]
    """
    rows = [{**r, "duplicate_members": ";".join(r.get("duplicate_members") or [])}
            for r in finding.evidence.get("candidates", [])]
    table = pd.DataFrame(rows, columns=[c if c != "score" else "quality" for c in CANDIDATE_COLUMNS])
    return table.rename(columns={"quality": "score"})[list(CANDIDATE_COLUMNS)]
