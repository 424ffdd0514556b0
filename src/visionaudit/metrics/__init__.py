"""Evaluation metrics and the one bootstrap used for their confidence intervals.

``classification`` computes classification metrics (streaming, mergeable); ``bootstrap`` gives CIs,
paired comparisons, McNemar's test and sample-size figures.
"""
from __future__ import annotations

from .bootstrap import (
    BootstrapResult,
    McNemarResult,
    PairedBootstrapResult,
    bootstrap_ci,
    ci_halfwidth,
    mcnemar,
    paired_bootstrap,
    samples_needed,
)
from .classification import (
    ClassificationMetrics,
    ClassificationReport,
    as_probabilities,
    calibration_table,
    classification_metrics,
)

__all__ = [
    "BootstrapResult",
    "ClassificationMetrics",
    "ClassificationReport",
    "McNemarResult",
    "PairedBootstrapResult",
    "as_probabilities",
    "bootstrap_ci",
    "calibration_table",
    "ci_halfwidth",
    "classification_metrics",
    "mcnemar",
    "paired_bootstrap",
    "samples_needed",
]
