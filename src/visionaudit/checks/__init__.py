"""The check registry: adding a check is one class in its family's module and one line here."""
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
from .segments import WeakSegments

REGISTRY: dict[str, type[Check]] = {cls.id: cls for cls in [
    DecodeErrors, WrongExtension, ExifRotation, ImageModes,
    Blurry, Dark, Overexposed, LowContrast, LowInformation, Noisy, JpegArtifacts, GrayscaleAsRgb, OddSize, OddAspectRatio,
    DuplicatePaths,
    ClassCounts, ClassImbalance, RareClasses, MissingClassInSplit, SplitLabelShift,
    ExactDuplicates, NearDuplicates, ConflictingDuplicateLabels, ExactSplitLeakage, NearSplitLeakage, GroupLeakage,
    Outliers,
    LabelIssues,
    EvaluationMetrics, SmallTestSet, Calibration, Overfitting,
    ConfusedPairs, ConfidentErrors,
    WeakSegments,
    ModelVsBaseline, PropertyShortcut,
    ModelComparison, LeakedTestMetrics,
]}

__all__ = ["Check", "REGISTRY"]
