"""Errors raised at the boundary, each naming what was wrong and where."""
from __future__ import annotations


class VisionauditError(Exception):
    """Base class for errors visionaudit raises on bad input."""


class SourceError(VisionauditError):
    """An annotation, manifest or config file that cannot be used.

    The message always names the file and, where it applies, the line or field.
    """

    def __init__(self, path: str, problem: str, *, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


class ArgumentError(VisionauditError, ValueError):
    """A bad argument to a public function or CLI option."""

    def __init__(self, name: str, value: object, expected: str):
        self.name = name
        super().__init__(f"invalid {name}={value!r}: expected {expected}")
