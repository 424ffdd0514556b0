"""Suites are data: which checks run, with which thresholds, and the conditions that judge them.

A config file (YAML or JSON) overrides the defaults::

    checks:
      quality.blurry: {threshold: 0.25, severity: error}
      duplicates.near: {enabled: false}
      quality.dark: {max_count: 5}        # up to 5 dark images are tolerated (judged info)
    group_columns: [patient_id]

Thresholds go to the check; ``severity`` and ``max_count`` are conditions applied to its findings
after the run (:func:`apply_conditions`), so one run can be judged again with other conditions
(:meth:`visionaudit.findings.Result.judged`) without running the checks again.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .checks import REGISTRY, Check
from .errors import SourceError
from .findings import Finding, Severity

#: Checks that judge a model's predictions; ``scan`` has none, so they run in ``evaluate`` only.
EVALUATE_CHECKS = ["evaluation.metrics", "evaluation.small_test_set", "evaluation.calibration",
                   "evaluation.overfitting", "labels.label_issues", "segments.weak_segments",
                   "baselines.model_vs_baseline", "baselines.property_shortcut",
                   "errors.confused_pairs", "errors.confident_errors", "evaluation.model_comparison",
                   "evaluation.leaked_test_metrics"]

SUITES: dict[str, list[str]] = {
    "scan": [cid for cid in REGISTRY if cid not in EVALUATE_CHECKS],
    "evaluate": EVALUATE_CHECKS,
}


def load_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read a config file; errors name the file and the bad field."""
    if path is None:
        return {}
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(str(p), f"cannot read config: {exc}") from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise SourceError(str(p), f"not valid YAML/JSON: {exc}", line=(line + 1) if line is not None else getattr(exc, "lineno", None)) from exc
    data = data or {}
    if not isinstance(data, dict):
        raise SourceError(str(p), "expected a mapping with 'checks' and/or 'group_columns' at the top level")
    checks = data.get("checks", {}) or {}
    if not isinstance(checks, dict):
        raise SourceError(str(p), "expected a mapping of check id -> settings", field="checks")
    for cid, settings in checks.items():
        if cid not in REGISTRY:
            raise SourceError(str(p), f"unknown check {cid!r}; known checks: {', '.join(sorted(REGISTRY))}", field=f"checks.{cid}")
        if not isinstance(settings, dict):
            raise SourceError(str(p), "expected a mapping of setting -> value", field=f"checks.{cid}")
        severity = settings.get("severity")
        if severity is not None and severity not in {s.value for s in Severity}:
            raise SourceError(str(p), f"unknown severity {severity!r}; expected error, warning or info",
                              field=f"checks.{cid}.severity")
        max_count = settings.get("max_count")
        if max_count is not None and (not isinstance(max_count, int) or isinstance(max_count, bool) or max_count < 0):
            raise SourceError(str(p), f"expected a non-negative integer, got {max_count!r}", field=f"checks.{cid}.max_count")
    return data


def build_checks(suite: str = "scan", overrides: dict[str, dict[str, Any]] | None = None) -> list[Check]:
    """Instantiate the suite's checks with per-check overrides; disabled checks are left out."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known suites: {sorted(SUITES)}")
    overrides = overrides or {}
    checks = []
    for cid in SUITES[suite]:
        settings = dict(overrides.get(cid, {}))
        if settings.pop("enabled", True) is False:
            continue
        checks.append(REGISTRY[cid](**settings))
    return checks


def apply_conditions(findings: list[Finding], conditions: dict[str, dict[str, Any]] | None) -> list[Finding]:
    """The findings judged by ``conditions`` (check id -> settings; other keys are ignored).

    Each finding starts from the severity its check gave (``check_severity``): ``severity`` replaces
    it; ``max_count`` judges a finding that affects at most that many samples (or groups) as info,
    tolerated. A check that crashed stays an error whatever the conditions say.

    >>> from visionaudit.findings import Finding
    >>> f = Finding(check="quality.dark", issue="dark", title="Dark", severity="warning", message="2 dark", samples=["a", "b"])
    >>> [g.severity.value for g in apply_conditions([f], {"quality.dark": {"max_count": 2}})]
    ['info']
    """
    conditions = conditions or {}
    out = []
    for f in findings:
        cond = conditions.get(f.check) or {}
        severity = f.check_severity
        if f.issue != "check_failed":
            if cond.get("severity") is not None:
                severity = Severity(cond["severity"])
            if cond.get("max_count") is not None and f.count <= int(cond["max_count"]):
                severity = Severity.INFO
        out.append(replace(f, severity=severity))
    return out
