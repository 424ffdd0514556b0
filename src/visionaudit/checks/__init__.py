"""The check registry: adding a check is one class in its family's module and one line here."""
from __future__ import annotations

from .balance import ClassCounts, ClassImbalance, MissingClassInSplit, RareClasses, SplitLabelShift
from .base import Check
from .integrity import DecodeErrors
from .manifest import DuplicatePaths

REGISTRY: dict[str, type[Check]] = {cls.id: cls for cls in [
    DecodeErrors,
    DuplicatePaths,
    ClassCounts, ClassImbalance, RareClasses, MissingClassInSplit, SplitLabelShift,
]}

__all__ = ["Check", "REGISTRY"]
