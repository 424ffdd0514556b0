"""visionaudit: find the pitfalls that make computer-vision models fail in production."""
from __future__ import annotations

__version__ = "0.1.0"

from .dataset import Dataset, load_dataset  # noqa: E402
from .errors import ArgumentError, SourceError, VisionauditError  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .findings import SCHEMA_VERSION, Finding, Result, Severity  # noqa: E402
from .scan import scan  # noqa: E402

__all__ = ["scan", "evaluate", "load_dataset", "Dataset", "Finding", "Result", "Severity", "SCHEMA_VERSION",
           "VisionauditError", "SourceError", "ArgumentError", "__version__"]
