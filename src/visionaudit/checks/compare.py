"""Comparing two models (or two runs of one) on the same test samples: is the difference real?

``evaluation.model_comparison`` judges model B (the run's second predictions,
``ctx.compare``, e.g. ``visionaudit evaluate DATA --compare A.csv B.csv``) against
model A (``ctx.predictions``) on the evaluation split's labelled samples that both predicted:

- the difference B - A in accuracy, macro F1 and log-loss, each with the paired bootstrap CI of
  :func:`visionaudit.metrics.paired_bootstrap` (every resample takes the same samples for both
  models, so the CI accounts for their correlation);
- McNemar's exact test on the discordant samples (``b``: only A right, ``c``: only B right):
  two-sided binomial p of ``min(b, c)`` in ``b + c`` trials at 1/2. Exact at every count, so there
  is no large-sample condition to check; it decides "significant" (p below 1 - ``confidence``).
- when the difference is not significant, how many test samples would show it: Connor's (1987)
  sample size for McNemar's test, ``n = (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2`` with the
  observed discordant share ``psi = (b + c) / n`` and difference ``d = (c - b) / n``, at
  ``power`` (default 80%). A CI half-width (``samples_needed``) would answer "how precisely", not
  "how many to detect this difference", and at the observed size gives only 50% power.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analyses.evaluation_data import (
    BOOTSTRAP_DEFAULTS,
    LABELS,
    evaluation_data,
    f1_macro_statistic,
    mean_statistic,
)
from ..context import Context
from ..findings import CheckOutput, Severity
from ..metrics import mcnemar, paired_bootstrap
from ..predictors.predictions import Predictions
from .base import Check

#: Metrics compared, with whether higher is better.
COMPARED = {"accuracy": True, "f1_macro": True, "log_loss": False}


def comparison_predictions(ctx: Context) -> Predictions | None:
    """The run's second predictions (model B), columns in the order of ``ctx.predictions``' classes.

    Raises ValueError when B is not aligned to the dataset's samples or its classes differ from A's.

    >>> comparison_predictions(ctx).classes == ctx.predictions.classes
    True
    """
    other = ctx.compare
    if other is None:
        return None
    base = ctx.predictions
    if base is None:
        raise ValueError(f"comparison predictions {other.source or '(B)'} were given without the predictions of "
                         "the model they are compared with (A)")
    if list(other.sample_ids) != ctx.dataset.samples["sample_id"].astype(str).tolist():
        raise ValueError("comparison predictions are not aligned to the dataset's samples: read them with "
                         "read_predictions(path, dataset) for this dataset")
    if set(other.classes) != set(base.classes) or len(other.classes) != len(base.classes):
        only_a = sorted(set(base.classes) - set(other.classes))
        only_b = sorted(set(other.classes) - set(base.classes))
        raise ValueError(f"the two prediction files have different classes: only in A ({base.source or 'A'}): "
                         f"{only_a}, only in B ({other.source or 'B'}): {only_b}")
    order = [other.classes.index(c) for c in base.classes]
    return Predictions(list(base.classes), other.probs[:, order], list(other.sample_ids), other.source, list(other.notes))


def mcnemar_samples_needed(b: int, c: int, n: int, *, confidence: float = 0.95, power: float = 0.8) -> int | None:
    """Test samples McNemar's test needs to detect the observed difference with ``power``.

    Connor (1987): ``(z_a sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2`` with ``psi = (b + c) / n`` and
    ``d = (c - b) / n``; None when ``b == c`` (no difference to detect).

    >>> mcnemar_samples_needed(10, 16, 500)
    2832
    """
    if b == c:
        return None
    from scipy.special import ndtri

    psi, d = (b + c) / n, (c - b) / n
    z_a, z_b = float(ndtri(0.5 + confidence / 2.0)), float(ndtri(power))
    return math.ceil((z_a * math.sqrt(psi) + z_b * math.sqrt(max(psi - d * d, 0.0))) ** 2 / (d * d) - 1e-9)


def _name(source: str, fallback: str) -> str:
    return f"{fallback} ({Path(source).name})" if source else fallback


class ModelComparison(Check):
    """Model B against model A on the same evaluation samples (see the module docstring).

    One finding, info when B is better or the difference is not significant, warning when B is
    significantly worse (a regression, so ``--fail-on warning`` can gate a release on it).
    ``evidence["metrics"]`` holds each metric's A, B, B - A and CI; ``evidence["mcnemar"]`` the
    discordant counts and exact p; ``evidence["regressed"]`` / ``["improved"]`` the samples only A /
    only B gets right. Records ``comparison_regression`` (flag: A right, B wrong; score: B's
    probability of the label).

    >>> ctx = Context(dataset, predictions=read_predictions("a.csv", dataset),
    ...               compare=read_predictions("b.csv", dataset))
    >>> ModelComparison().run(ctx).findings[0].message                              # doctest: +ELLIPSIS
    'B (b.csv) is significantly better than A (a.csv) on the test split (46 samples): accuracy 1.000 vs 0.804, ...'
    """

    id = "evaluation.model_comparison"
    family = "evaluation"
    suites = ("evaluate",)
    title = "Comparison of two models on the same samples"
    severity = Severity.INFO
    defaults: ClassVar[dict[str, Any]] = {**BOOTSTRAP_DEFAULTS, "power": 0.8}
    why = ("Two models (or two training runs) scored on a few hundred test images differ by a point or two by chance "
           "alone. The samples are shared, so the honest question is whether B gets right the samples A gets wrong "
           "more often than the other way round (McNemar's test on the discordant samples), and how wide the paired "
           "interval of the difference is.")
    fix = ("Ship the change only when the difference is significant and its interval excludes differences too small "
           "to matter; otherwise collect the test samples the finding says are needed, or treat the models as equal "
           "and choose on cost. Look at the regressed samples before accepting a better average.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        other = comparison_predictions(ctx)
        if other is None:
            return output
        d = evaluation_data(ctx)
        if d is None:
            return output
        split = d.split
        position = pd.Index(ctx.dataset.samples["sample_id"].astype(str)).get_indexer(d.ids.astype(str))
        both = other.has[position]
        name_a, name_b = _name(ctx.predictions.source, "A"), _name(other.source, "B")
        if both.sum() < 2:
            return output.add(self.finding(
                issue="model_comparison", severity=Severity.WARNING, title="Models not compared: no shared samples",
                message=(f"{name_b} predicts {int(both.sum())} of the {d.n} {split} samples that {name_a} is evaluated "
                         "on: at least 2 shared samples are needed to compare them"),
                evidence={"split": split, "n": int(both.sum()), "evaluated_a": d.n}))
        ids, y, p_a, p_b = d.ids[both].astype(str), d.y[both], d.P[both], other.probs[position[both]]
        n, k = len(y), len(d.classes)
        boot = {"n_resamples": int(self.params["n_resamples"]), "confidence": float(self.params["confidence"]),
                "seed": int(self.params["seed"]), "vectorized": True}
        per_model = [_per_sample(y, p) for p in (p_b, p_a)]
        functions = {"accuracy": mean_statistic, "f1_macro": f1_macro_statistic(k), "log_loss": mean_statistic}
        metrics = {}
        for metric, fn in functions.items():
            arrays = [m[metric] for m in per_model]
            r = paired_bootstrap(fn, arrays[0], arrays[1], **boot)
            metrics[metric] = {"a": r.estimate_b, "b": r.estimate_a, "difference": r.difference, "low": r.low,
                               "high": r.high, "bootstrap_p": r.p_value, "higher_is_better": COMPARED[metric]}
        correct_a, correct_b = p_a.argmax(axis=1) == y, p_b.argmax(axis=1) == y
        test = mcnemar(correct_a, correct_b, exact=True)
        alpha = 1.0 - float(self.params["confidence"])
        significant = test.p_value < alpha
        acc = metrics["accuracy"]
        level = f"{self.params['confidence']:.0%}"
        figures = (f"accuracy {acc['b']:.3f} vs {acc['a']:.3f}, difference {acc['difference']:+.3f} ({level} CI "
                   f"[{acc['low']:+.3f}, {acc['high']:+.3f}]), McNemar p={test.p_value:.3g} ({test.c} samples only B "
                   f"gets right, {test.b} only A)")
        where = f"on the {split} split ({n} samples)"
        needed = mcnemar_samples_needed(test.b, test.c, n, confidence=float(self.params["confidence"]),
                                        power=float(self.params["power"]))
        severity = None
        if significant:
            verdict = "better" if test.c > test.b else "worse"
            message = f"{name_b} is significantly {verdict} than {name_a} {where}: {figures}"
            severity = Severity.WARNING if verdict == "worse" else None
        elif needed is None:
            verdict = "not significant"
            message = (f"The difference between {name_b} and {name_a} {where} is not significant: {figures}; "
                       "they get equally many samples right that the other gets wrong")
        else:
            verdict = "not significant"
            message = (f"The difference between {name_b} and {name_a} {where} is not significant: {figures}; "
                       f"to detect a difference this size with {float(self.params['power']):.0%} power, a test set "
                       f"needs about {needed} samples")
        regressed, improved = correct_a & ~correct_b, ~correct_a & correct_b
        p_true_b = p_b[np.arange(n), y]
        output.score("comparison_regression", pd.Series(p_true_b, index=ids), pd.Series(regressed, index=ids))
        others = [f"{LABELS[m]} {v['difference']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]"
                  for m, v in metrics.items() if m != "accuracy"]
        message += "; B - A: " + ", ".join(others)
        evidence: dict[str, Any] = {
            "split": split, "n": n, "evaluated_a": d.n, "a": ctx.predictions.source, "b": other.source,
            "confidence": float(self.params["confidence"]), "verdict": verdict, "significant": bool(significant),
            "metrics": metrics,
            "mcnemar": {"only_a_right": test.b, "only_b_right": test.c, "p_value": test.p_value, "exact": test.exact},
            "samples_needed": needed, "power": float(self.params["power"]),
            "regressed": ids[regressed].tolist(), "improved": ids[improved].tolist(),
        }
        return output.add(self.finding(issue="model_comparison", message=message, samples=ids[regressed].tolist(),
                             scores=pd.Series(p_true_b, index=ids), evidence=evidence, severity=severity))


def _per_sample(y: np.ndarray, probs: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """The per-sample arrays each compared metric is computed from (see checks.evaluation)."""
    pred = probs.argmax(axis=1)
    correct = pred == y
    eps = np.finfo(np.float64).eps
    nll = -np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0 - eps))
    return {"accuracy": (correct,), "f1_macro": (y, pred, correct), "log_loss": (nll,)}
