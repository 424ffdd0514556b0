"""The built-in checks, in run order, and the registry that plugins join.

Adding a built-in check is one class in its family's module and one line here; a third-party check
uses :func:`register` or the ``visionaudit.checks`` entry point (:mod:`visionaudit.checks.registry`).
"""
from __future__ import annotations

from .balance import (
                      ClassCounts,
                      ClassImbalance,
                      MissingClassInSplit,
                      RareClasses,
                      SplitLabelShift,
)
from .base import Check
from .baselines import ModelVsBaseline, PropertyShortcut
from .compare import ModelComparison
from .duplicates import ConflictingDuplicateLabels, ExactDuplicates, NearDuplicates
from .errors import ConfidentErrors, ConfusedPairs
from .evaluation import Calibration, EvaluationMetrics, Overfitting, SmallTestSet
from .hygiene import LeakedTestMetrics
from .integrity import DecodeErrors, ExifRotation, ImageModes, WrongExtension
from .labels import LabelIssues
from .leakage import ExactSplitLeakage, GroupLeakage, NearSplitLeakage
from .manifest import DuplicatePaths
from .outliers import Outliers
from .quality import (
                      Blurry,
                      Dark,
                      GrayscaleAsRgb,
                      JpegArtifacts,
                      LowContrast,
                      LowInformation,
                      Noisy,
                      OddAspectRatio,
                      OddSize,
                      Overexposed,
)
from .registry import REGISTRY, register, registry
from .segments import WeakSegments

#: The built-in checks in run order (scan's, then evaluate's); each is registered below.
BUILTIN_CHECKS: tuple[type[Check], ...] = (
    DecodeErrors, WrongExtension, ExifRotation, ImageModes,
    Blurry, Dark, Overexposed, LowContrast, LowInformation, Noisy, JpegArtifacts, GrayscaleAsRgb, OddSize, OddAspectRatio,
    DuplicatePaths,
    ClassCounts, ClassImbalance, RareClasses, MissingClassInSplit, SplitLabelShift,
    ExactDuplicates, NearDuplicates, ConflictingDuplicateLabels, ExactSplitLeakage, NearSplitLeakage, GroupLeakage,
    Outliers,
    EvaluationMetrics, SmallTestSet, Calibration, Overfitting,
    LabelIssues,
    WeakSegments,
    ModelVsBaseline, PropertyShortcut,
    ConfusedPairs, ConfidentErrors,
    ModelComparison, LeakedTestMetrics,
)
for _cls in BUILTIN_CHECKS:
    register(_cls)


__all__ = ["BUILTIN_CHECKS", "REGISTRY", "Check", "register", "registry"]
