"""Duplicates: the same picture stored more than once, exactly or after edits.

The three checks read the run's :class:`~visionaudit.analyses.duplicate_index.DuplicateIndex`
(how pairs are found and judged is documented there).
"""
from __future__ import annotations

import pandas as pd

from ..analyses.duplicate_index import (
    EXACT_DEFAULTS,
    NEAR_DEFAULTS,
    describe_group,
    duplicate_groups,
    duplicate_index,
    one_file,
)
from ..context import Context
from ..findings import CheckOutput, Severity
from .base import Check


class ExactDuplicates(Check):
    """Images whose decoded pixels are the same (see the module docstring for the tolerance).

    Rows that list one file twice are left to ``integrity.duplicate_paths``; here the same picture
    lives in different files (copies, or PNG and JPEG saves of one image).
    """

    id = "duplicates.exact"
    family = "duplicates"
    title = "Exact duplicate images"
    severity = Severity.WARNING
    defaults = dict(EXACT_DEFAULTS)
    why = ("The same image stored twice is trained on twice as often and counted twice in metrics; across "
           "splits it is test data the model has seen.")
    fix = ("Keep one file per group (the first listed is the largest) and delete or stop listing the others.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        index = duplicate_index(ctx, exact=self.params)
        groups = [describe_group(ctx, index.ids[g].tolist(), "exact", 1.0) for g in index.exact_groups()]
        groups = [g for g in groups if not one_file(ctx, g["samples"])]
        flagged = [s for g in groups for s in g["samples"]]
        hit = pd.Series(ctx.sample_ids.isin(flagged), index=ctx.sample_ids)
        output.score("exact_duplicates", (~hit).astype(float), hit)
        if not groups:
            return output
        extra = len(flagged) - len(groups)
        return output.add(self.finding(
            issue="exact_duplicates", samples=flagged, scores={s: 0.0 for s in flagged}, groups=groups,
            message=f"{len(groups)} group(s) of identical images ({len(flagged)} images, {extra} redundant).",
            evidence={"groups": len(groups), "images": len(flagged), "redundant": extra}))


class NearDuplicates(Check):
    """Images that are edited copies of each other: resized, re-encoded, slightly cropped or
    brightened (see the module docstring for the similarity and its threshold)."""

    id = "duplicates.near"
    family = "duplicates"
    title = "Near-duplicate images"
    severity = Severity.WARNING
    defaults = dict(NEAR_DEFAULTS)
    why = ("Edited copies (resized, re-compressed, cropped, brightened) weigh the same scene several times in "
           "training, and when they sit in different splits the test set measures memory, not generalisation.")
    fix = ("Keep one image per group (the first listed is the largest), or make sure a whole group stays in one "
           "split; raise `similarity` if the groups hold look-alike but distinct images.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        index = duplicate_index(ctx, near=self.params)
        scores = pd.Series(1.0 - index.best_similarity.astype(float), index=index.ids)
        groups = [describe_group(ctx, index.ids[g].tolist(), "near", index.weakest_link(g))
                  for g in index.near_groups()]
        flagged = [s for g in groups for s in g["samples"]]
        output.score("near_duplicates", scores, pd.Series(True, index=flagged, dtype=bool))
        if not groups:
            return output
        return output.add(self.finding(
            issue="near_duplicates", samples=flagged, scores=scores, groups=groups,
            message=f"{len(groups)} group(s) of near-duplicate images ({len(flagged)} images).",
            evidence={"groups": len(groups), "images": len(flagged), "pairs": int(len(index.near_pairs)),
                      "candidate_pairs": index.candidates}))


class ConflictingDuplicateLabels(Check):
    """Exact or near duplicates whose labels differ (one file listed twice with two labels is
    ``integrity.duplicate_paths``' finding).

    Severity error: one picture cannot be two classes in a single-label dataset, so at least one of
    the labels is wrong, and the model is taught both answers. Near duplicates count too because at
    the default threshold a near pair shows the same scene; on 2,000 distinct MNIST digits the near
    pairs found all share their label (see tests/test_duplicates.py), so an error here is a real
    disagreement, not a look-alike.
    """

    id = "duplicates.conflicting_labels"
    family = "duplicates"
    title = "Duplicates with different labels"
    severity = Severity.ERROR
    defaults = {**EXACT_DEFAULTS, **NEAR_DEFAULTS}
    why = ("Copies of one image with different labels are label noise by construction: the model is trained "
           "towards two answers for the same input, and evaluation counts one of them as wrong whatever it says.")
    fix = ("Decide the right label for each group and relabel (or drop) the others; the groups list every copy "
           "with its label.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        index = duplicate_index(ctx, exact={k: self.params[k] for k in EXACT_DEFAULTS},
                                near={k: self.params[k] for k in NEAR_DEFAULTS})
        groups = [g for g in duplicate_groups(ctx, index)
                  if len({label for label in g["labels"] if label is not None}) > 1
                  and not one_file(ctx, g["samples"])]
        flagged = list(dict.fromkeys(s for g in groups for s in g["samples"]))
        hit = pd.Series(ctx.sample_ids.isin(flagged), index=ctx.sample_ids)
        output.score("conflicting_duplicate_labels", (~hit).astype(float), hit)
        if not groups:
            return output
        return output.add(self.finding(
            issue="conflicting_duplicate_labels", samples=flagged, scores={s: 0.0 for s in flagged}, groups=groups,
            message=f"{len(groups)} group(s) of duplicate images carry different labels ({len(flagged)} images).",
            evidence={"groups": len(groups), "images": len(flagged)}))
