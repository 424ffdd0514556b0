"""The one contract between checks and everything that reads their results.

A :class:`Finding` says what a check found, how bad it is, which samples it concerns and how sure it
is (per-sample scores in [0, 1], lower = worse). HTML, JSON, JUnit, the terminal summary and the CI
exit code read findings and nothing else. The JSON schema is versioned (``SCHEMA_VERSION``) and
documented in ``docs/findings-schema.md``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

SCHEMA_VERSION = "1.0"


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass
class Finding:
    """One problem a check found.

    ``samples`` lists the affected sample ids worst first; ``scores`` gives each one's score in [0, 1]
    (lower = worse); ``groups`` lists sets of samples that belong together (duplicate clusters,
    leaked pairs); ``evidence`` carries check-specific numbers (counts per split, distances...).
    """

    check: str
    issue: str
    title: str
    severity: Severity
    message: str
    samples: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    fix: str = ""
    family: str = ""

    @property
    def count(self) -> int:
        return len(self.samples) if self.samples else len(self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "issue": self.issue,
            "family": self.family,
            "title": self.title,
            "severity": self.severity.value,
            "message": self.message,
            "count": self.count,
            "samples": list(self.samples),
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
            "groups": self.groups,
            "evidence": self.evidence,
            "thresholds": self.thresholds,
            "why": self.why,
            "fix": self.fix,
        }


@dataclass
class Result:
    """What a scan returns: the findings, per-image scores and the dataset summary.

    ``issues`` is a DataFrame indexed by sample id with one ``<issue>_score`` column in [0, 1]
    (lower = worse) and one boolean ``is_<issue>`` column per issue type computed.
    ``features`` holds the raw per-image properties (brightness, blur, size...).
    """

    findings: list[Finding]
    issues: pd.DataFrame
    features: pd.DataFrame
    dataset_summary: dict[str, Any]
    run_info: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)

    def by_severity(self, severity: Severity | str) -> list[Finding]:
        sev = Severity(severity)
        return [f for f in self.findings if f.severity == sev]

    def finding(self, issue: str) -> Finding | None:
        """The finding for ``issue`` (e.g. ``"near_duplicates"``), or None if it was not raised."""
        for f in self.findings:
            if f.issue == issue:
                return f
        return None

    def flagged(self, issue: str) -> set[str]:
        """Sample ids that ``issue`` flagged (empty if it was not raised)."""
        f = self.finding(issue)
        return set(f.samples) if f else set()

    def exit_code(self, fail_on: str = "error") -> int:
        """1 if any finding is at least as severe as ``fail_on`` ('error', 'warning'), else 0."""
        if fail_on == "never":
            return 0
        floor = Severity(fail_on).rank
        return 1 if any(f.severity.rank >= floor for f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        counts = {s.value: 0 for s in Severity}
        for f in self.findings:
            counts[f.severity.value] += 1
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "visionaudit", "version": self.run_info.get("version")},
            "run": self.run_info,
            "dataset": self.dataset_summary,
            "summary": {"findings": len(self.findings), "by_severity": counts},
            "findings": [f.to_dict() for f in sorted(self.findings, key=lambda f: -f.severity.rank)],
        }
