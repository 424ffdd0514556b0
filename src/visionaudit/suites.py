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
from .checks.base import CONDITION_KEYS
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


#: The keys a config may have at its top level.
CONFIG_KEYS = ("checks", "group_columns")


def load_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read and validate a config file (:func:`validate_config`); errors name the file and the bad field."""
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
    return validate_config(data, str(p))


def resolve_config(config: str | os.PathLike | dict[str, Any] | None) -> dict[str, Any]:
    """A config given as a file (read by :func:`load_config`) or as a dict (validated the same way)."""
    return validate_config(config, "config") if isinstance(config, dict) else load_config(config)


def _closest(name: str, known: list[str]) -> str:
    import difflib

    match = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}? " if match else ""


def validate_config(data: Any, source: str = "config") -> dict[str, Any]:
    """Check a config before the run, so that a mistake is an error naming its key (and the closest
    valid name, and the accepted values) instead of a traceback or a failed check after every image
    was decoded. Severities are read case-insensitively; the returned dict is the config to use.

    >>> validate_config({"checks": {"quality.blury": {"enabled": False}}})   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    visionaudit.errors.SourceError: config, field 'checks.quality.blury': unknown check 'quality.blury'; did you mean 'quality.blurry'? known checks: ...
    >>> validate_config({"checks": {"quality.dark": {"floor": "high"}}})
    Traceback (most recent call last):
    visionaudit.errors.SourceError: config, field 'checks.quality.dark.floor': invalid value 'high': expected a number (default 0.35)
    """
    data = data or {}
    if not isinstance(data, dict):
        raise SourceError(source, "expected a mapping with 'checks' and/or 'group_columns' at the top level")
    for key in data:
        if key not in CONFIG_KEYS:
            raise SourceError(source, f"unknown key {key!r}; {_closest(key, list(CONFIG_KEYS))}"
                                      f"a config has {' and '.join(CONFIG_KEYS)}", field=str(key))
    groups = data.get("group_columns")
    if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
        raise SourceError(source, f"expected a list of column names, got {groups!r}", field="group_columns")
    checks = data.get("checks", {}) or {}
    if not isinstance(checks, dict):
        raise SourceError(source, "expected a mapping of check id -> settings", field="checks")
    known = sorted(registry())
    severities = [s.value for s in Severity]
    validated: dict[str, dict[str, Any]] = {}
    for cid, settings in checks.items():
        if cid not in registry():
            raise SourceError(source, f"unknown check {cid!r}; {_closest(cid, known)}known checks: {', '.join(known)}",
                              field=f"checks.{cid}")
        settings = settings if settings is not None else {}
        if not isinstance(settings, dict):
            raise SourceError(source, f"expected a mapping of setting -> value, got {settings!r}", field=f"checks.{cid}")
        cls = registry()[cid]
        accepted = sorted(set(cls.defaults) | CONDITION_KEYS)
        settings = dict(settings)
        for key, value in settings.items():
            field = f"checks.{cid}.{key}"
            if key not in accepted:
                raise SourceError(source, f"{cid} has no setting {key!r}; {_closest(key, accepted)}"
                                          f"it accepts {', '.join(accepted)}", field=field)
            if key == "severity":
                if not isinstance(value, str) or value.lower() not in severities:
                    raise SourceError(source, f"unknown severity {value!r}; expected {', '.join(severities)}", field=field)
                settings[key] = value.lower()
            elif key == "max_count":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise SourceError(source, f"invalid value {value!r}: expected a non-negative integer", field=field)
            elif key == "enabled":
                if not isinstance(value, bool):
                    raise SourceError(source, f"invalid value {value!r}: expected true or false", field=field)
            else:
                problem = cls.setting_problem(key, value)
                if problem is not None:
                    raise SourceError(source, f"invalid value {value!r}: expected {problem}", field=field)
        validated[cid] = settings
    return {**data, "checks": validated} if "checks" in data else dict(data)


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
        try:
            checks.append(cls(**settings))
        except (TypeError, ValueError) as exc:  # a plugin's own constructor refusing its settings
            raise SourceError("config", f"{cid} refused its settings: {exc}", field=f"checks.{cid}") from exc
    return checks
