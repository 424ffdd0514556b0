"""The check registry: adding a check is one class in its family's module and one line here."""
from __future__ import annotations

from .balance import ClassCounts, ClassImbalance, MissingClassInSplit, RareClasses, SplitLabelShift
from .base import Check
from .duplicates import ConflictingDuplicateLabels, ExactDuplicates, NearDuplicates
from .integrity import DecodeErrors
from .leakage import ExactSplitLeakage, GroupLeakage, NearSplitLeakage
from .manifest import DuplicatePaths
from .outliers import Outliers

REGISTRY: dict[str, type[Check]] = {cls.id: cls for cls in [
    DecodeErrors,
    DuplicatePaths,
    ClassCounts, ClassImbalance, RareClasses, MissingClassInSplit, SplitLabelShift,
    ExactDuplicates, NearDuplicates, ConflictingDuplicateLabels, ExactSplitLeakage, NearSplitLeakage, GroupLeakage,
    Outliers,
]}

__all__ = ["Check", "REGISTRY"]
