"""Suites are data: which checks run, with which thresholds, and the conditions that judge them.

A config file (YAML or JSON) overrides the defaults::

    checks:
      quality.blurry: {threshold: 0.25, severity: error}
      duplicates.near: {enabled: false}
      quality.dark: {max_count: 5}        # up to 5 dark images are tolerated (judged info)
    group_columns: [patient_id]

Thresholds go to the check; ``severity`` and ``max_count`` are conditions applied to its findings
after the run (:func:`visionaudit.findings.apply_conditions`), so one run can be judged again with other conditions
(:meth:`visionaudit.findings.Result.judged`) without running the checks again.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .checks import BUILTIN_CHECKS, Check, registry
from .errors import SourceError
from .findings import Severity


def suite_checks(suite: str) -> list[str]:
    """The ids of the checks a suite runs, in run order: every registered check (built-in or plugin,
    :func:`visionaudit.checks.registry`) whose ``suites`` names it.

    >>> suite_checks("evaluate")[:2]
    ['evaluation.metrics', 'evaluation.small_test_set']
    """
    return [cid for cid, cls in registry().items() if suite in cls.suites]


class _Suites(Mapping[str, list[str]]):
    """suite name -> check ids, read from the registry when asked (so plugins loaded later count)."""

    def __getitem__(self, suite: str) -> list[str]:
        if suite not in self:
            raise KeyError(suite)
        return suite_checks(suite)

    def __contains__(self, suite: object) -> bool:
        return any(suite in cls.suites for cls in registry().values())

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for cls in registry().values():
            seen.update(dict.fromkeys(cls.suites))
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: The suites: ``scan`` judges the data, ``evaluate`` a model's predictions (``SUITES["scan"]``...).
SUITES: Mapping[str, list[str]] = _Suites()
#: The built-in checks that judge a model's predictions (the ``evaluate`` suite without plugins).
EVALUATE_CHECKS = [c.id for c in BUILTIN_CHECKS if "evaluate" in c.suites]


def load_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read a config file; errors name the file and the bad field."""
    if path is None:
        return {}
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(str(p), f"cannot read config: {exc}") from exc
    import yaml  # here: a scan without --config needs no YAML parser

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
        if cid not in registry():
            raise SourceError(str(p), f"unknown check {cid!r}; known checks: {', '.join(sorted(registry()))}",
                              field=f"checks.{cid}")
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


def build_checks(suite: str = "scan", overrides: dict[str, dict[str, Any]] | None = None,
                 task: str | None = None) -> list[Check]:
    """Instantiate the suite's checks with per-check overrides; disabled checks are left out, and so
    are checks whose ``tasks`` do not include ``task`` (the dataset's :class:`~visionaudit.dataset.model.Task`;
    None keeps every check)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known suites: {sorted(SUITES)}")
    overrides = overrides or {}
    checks = []
    for cid in SUITES[suite]:
        cls = registry()[cid]
        settings = dict(overrides.get(cid, {}))
        if settings.pop("enabled", True) is False:
            continue
        if task is not None and cls.tasks and str(task) not in cls.tasks:
            continue
        checks.append(cls(**settings))
    return checks
