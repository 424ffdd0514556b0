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

The finding is judged by its model (issue 9 §1): disagreements with the labels are label errors only
where the model is clearly right most of the time; where it is weak they are mostly its own mistakes
(the builtin embedder reached out-of-fold accuracy 0.33 on a 10-class photo set, flagged 47.6% of it,
and its 30 surest candidates were all labelled correctly). So the model's accuracy on the samples it
judged gets a bootstrap CI (:func:`~visionaudit.metrics.bootstrap_ci`, seeded) and so does each baseline
the run has: always the majority class, and the model that sees only image properties
(:func:`~visionaudit.predictors.properties.property_predictions`, shared with the baselines checks).
The finding is a **warning** only when the lower CI bound of the model's accuracy is above the upper
CI bound of the best baseline *and* the accuracy is at least ``min_accuracy``; otherwise it is an
**info** finding, "ranking only", listing the ``top`` surest candidates, flagging none of them, with
every judged sample's score in the scores table. Copies of one picture under different labels are
flagged either way: they do not depend on the model.

``min_accuracy`` (default 0.6): the accuracy below which a model's disagreements with the labels are
mostly its own errors. Measured on 2,000 MNIST digits with 100 labels flipped (5%, two seeds), builtin
embeddings weakened step by step with Gaussian noise, 5-fold logistic regression as in
:mod:`~visionaudit.predictors.crossval`: precision at k = 100 (the share of flips among the 100 lowest
scores) was 0.70-0.76 at accuracy 0.82, 0.67-0.73 at 0.76, 0.56-0.57 at 0.63-0.65, 0.40-0.41 at
0.50-0.51, 0.26-0.35 at 0.38-0.43 and 0.16-0.22 at 0.29: from about 0.6 down, model errors outnumber
the flips among the surest candidates. Less label noise than 5% moves the point up.

The check needs ``ctx.predictions`` and returns nothing without them (the ``scan`` suite has none;
there ``duplicates.conflicting_labels`` reports the clusters).
"""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analyses.duplicate_index import describe_group, duplicate_index
from ..analyses.neighbours import pair_groups
from ..context import Context
from ..findings import CheckOutput, Finding, Severity
from ..metrics import bootstrap_ci
from ..predictors.predictions import Predictions
from ..predictors.properties import property_predictions
from .base import Check

#: Default accuracy floor of the out-of-fold model below which label issues are a ranking only
#: (see the module docstring for how it was chosen).
MIN_ACCURACY = 0.6

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


def _accuracy(correct: np.ndarray) -> np.ndarray:
    return correct.mean(axis=-1)  # vectorised over the bootstrap's resample axis


def model_support(ctx: Context, preds: Predictions, index: np.ndarray, *, min_accuracy: float = MIN_ACCURACY,
                  confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0,
                  property_baseline: bool = True, property_model: str = "boosting", folds: int = 5) -> dict[str, Any]:
    """Whether the model behind ``preds`` is good enough for its disagreements with the labels to be
    label errors: its accuracy on the judged samples (``index >= 0``) with a bootstrap CI, each
    baseline's (majority class; the image-property model when ``property_baseline`` and the run has
    one) and the verdict, ``supported`` when the accuracy's lower bound is above every baseline's upper
    bound and the accuracy is at least ``min_accuracy``.

    >>> support = model_support(ctx, ctx.predictions, ctx.predictions.label_index(ctx.dataset.samples["label"]))
    >>> support["supported"], round(support["accuracy"], 3), support["best_baseline"]   # the classes differ in colour
    (False, 0.739, 'image_properties')
    """
    judged = index >= 0
    labels = index[judged]
    correct = (preds.probs[judged].argmax(axis=1) == labels).astype(float)
    boot = {"n_resamples": int(n_resamples), "confidence": float(confidence), "seed": int(seed), "vectorized": True}

    def ci(values: np.ndarray) -> Any:
        if len(values) < 2:  # nothing to resample: the interval is everything
            return SimpleNamespace(estimate=float(values.mean()) if len(values) else 0.0, low=0.0, high=1.0)
        return bootstrap_ci(_accuracy, values, **boot)

    acc = ci(correct)
    counts = np.bincount(labels, minlength=len(preds.classes))
    top = int(counts.argmax())  # ties: the first class in the predictions' (sorted) order
    majority = ci((labels == top).astype(float))
    baselines = [{"baseline": "majority", "description": f"always '{preds.classes[top]}'", "n": int(judged.sum()),
                  "accuracy": majority.estimate, "low": majority.low, "high": majority.high}]
    if property_baseline:
        pp = property_predictions(ctx, model=property_model, folds=int(folds), seed=int(seed))
        if pp is not None and len(pp.labels) >= 2:
            prop = ci(pp.correct)
            baselines.append({"baseline": "image_properties",
                              "description": f"{pp.model} on image properties only ({pp.folds}-fold out-of-fold)",
                              "n": len(pp.labels), "accuracy": prop.estimate, "low": prop.low, "high": prop.high})
    best = max(baselines, key=lambda b: b["high"])
    above = acc.low > best["high"]
    floor = acc.estimate >= float(min_accuracy)
    if above and floor:
        reason = "supported"
    elif not above:
        reason = (f"its accuracy is not clearly above the best baseline ({best['baseline']}: {best['accuracy']:.3f}, "
                  f"CI up to {best['high']:.3f})")
    else:
        reason = f"its accuracy is below the floor min_accuracy={float(min_accuracy):g}"
    return {"supported": bool(above and floor), "reason": reason, "accuracy": acc.estimate, "accuracy_low": acc.low,
            "accuracy_high": acc.high, "confidence": float(confidence), "judged": int(judged.sum()),
            "min_accuracy": float(min_accuracy), "best_baseline": best["baseline"], "baselines": baselines,
            "source": preds.source, "embedder": preds.embedder, "warnings": list(preds.warnings)}


class LabelIssues(Check):
    id = "labels.label_issues"
    family = "labels"
    suites = ("evaluate",)
    title = "Likely label errors"
    severity = Severity.WARNING
    defaults = {"filter_by": "prune_by_noise_rate", "duplicates": True, "min_accuracy": MIN_ACCURACY,
                "confidence": 0.95, "n_resamples": 1000, "seed": 0, "property_baseline": True, "top": 20}
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
        support: dict[str, Any] | None = None
        if judged.any():
            listed = self._model_candidates(samples, preds, index, judged, scores, flags)
            p = self.params
            support = model_support(ctx, preds, index, min_accuracy=float(p["min_accuracy"]),
                                    confidence=float(p["confidence"]), n_resamples=int(p["n_resamples"]),
                                    seed=int(p["seed"]), property_baseline=bool(p["property_baseline"]))
        ranking_only = support is not None and not support["supported"]
        n_ranked = len(listed)
        if ranking_only:
            # A weak model's disagreements are mostly its own errors: nothing is flagged on its word, the
            # surest candidates are shown, the full ranking is every judged sample's score.
            flags[list(listed)] = False
            listed = {row["sample_id"]: row for row in sorted(listed.values(), key=lambda r: r["quality"])[:int(self.params["top"])]}
        shown = len(listed)
        groups, conflicts = duplicate_label_conflicts(ctx, preds) if self.params["duplicates"] else ([], {})
        joined = [sid for sid in conflicts if sid not in listed]
        for sid, row in conflicts.items():
            if sid in listed:
                # The model doubts it too: one row, with the cluster's answer (from all copies).
                model = listed[sid]
                listed[sid] = {**row, "quality": model["quality"], "reason": f"{model['reason']}; {row['reason']}"}
            else:
                listed[sid] = row
                if np.isnan(scores[sid]):
                    scores[sid] = row["quality"]
            flags[sid] = True
        output.score("label_issues", scores, flags)
        if not listed:
            return output
        order = sorted(listed.values(), key=lambda r: r["quality"])
        n_model = shown
        pairs = Counter((row["given_label"], row["suggested_label"]) for row in order)
        common = ", ".join(f"{g} -> {'?' if s is None else s} ({n})" for (g, s), n in pairs.most_common(3))
        n_judged = int(judged.sum())
        level = f"{float(self.params['confidence']):.0%}"
        parts = []
        if joined:
            more = "more " if support is not None and (ranking_only or n_model) else ""
            parts.append(f"{len(joined)} {more}are duplicates of differently labelled images "
                         f"({len(groups)} duplicate cluster(s) with conflicting labels)")
        if support is not None:
            # The model (embedder or file) is named in the run's predictions line and in evidence.model; the
            # message leads with the verdict and the numbers behind it, so a terminal's cut keeps them.
            accuracy = (f"model accuracy {support['accuracy']:.3f} ({level} CI {support['accuracy_low']:.3f}-"
                        f"{support['accuracy_high']:.3f})")
            if ranking_only:
                parts.insert(0, f"Ranking only: {accuracy}, {support['reason']}, so its disagreements with the labels "
                                f"are mostly its own errors and flag nothing; the {shown} surest of its {n_ranked} "
                                f"candidates among {n_judged} judged samples are listed, every judged sample's score is "
                                "in the scores table (label_issues)")
            elif n_model:
                best = next(b for b in support["baselines"] if b["baseline"] == support["best_baseline"])
                parts.insert(0, f"{n_model} of {n_judged} labelled samples with predictions look mislabelled "
                                f"({n_model / n_judged:.1%}); {accuracy}, above the best baseline ({best['baseline']} "
                                f"{best['accuracy']:.3f}, CI up to {best['high']:.3f})")
        message = "; ".join(parts) + f"; most common given -> suggested label: {common}"
        message += "".join(f"; {w}" for w in preds.warnings)
        evidence = {
            "judged": n_judged,
            "flagged": int(flags.sum()),
            "flagged_by_model": 0 if ranking_only else n_model,
            "joined_by_duplicates": len(joined),
            "duplicate_clusters": len(groups),
            "unlabelled": int(samples["label"].isna().sum()),
            "without_predictions": int(preds.missing),
            "ranking_only": ranking_only,
            "ranked_candidates": n_ranked,
            "model": support,
            "candidates": order,
            "pairs": [{"given_label": g, "suggested_label": s, "count": n} for (g, s), n in pairs.most_common()],
        }
        # A weak model makes the whole finding a ranking; copies under other labels stay flagged (they do not
        # depend on the model) and listed, but no longer make it a warning on its own.
        severity = Severity.INFO if ranking_only else None
        return output.add(self.finding(issue="label_issues", message=message, samples=[row["sample_id"] for row in order],
                             scores={row["sample_id"]: row["quality"] for row in order}, groups=groups,
                             evidence=evidence, severity=severity))

    @classmethod
    def setting_problem(cls, key: str, value: Any) -> str | None:
        if key == "min_accuracy" and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and 0.0 <= value <= 1.0):
            return f"a number from 0 to 1 (default {MIN_ACCURACY})"
        return super().setting_problem(key, value)

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
