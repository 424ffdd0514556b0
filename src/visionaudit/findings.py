"""The one contract between checks and everything that reads their results.

A check returns a :class:`CheckOutput`: its :class:`Finding` objects (what it found, how bad the check
thinks it is, which samples it concerns) and its :class:`IssueScores` (a score in [0, 1], lower =
worse, and a flag for every item it judged, keyed by sample, by object or by prediction). The suite
then applies its conditions (severity overrides from the config, tolerated counts) to the findings.
HTML, JSON, JUnit, the terminal summary, the scores table and the CI exit code read the
:class:`Result` and nothing else; ``Result.from_dict(result.to_dict())`` gives back an equal Result.
The JSON schema is versioned (``SCHEMA_VERSION``) and documented in ``docs/findings-schema.md``.
"""
from __future__ import annotations

import enum
import math
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

SCHEMA_VERSION = "1.1"

#: What a score is keyed by: an image, an annotated object, or a model's prediction (a confident
#: detection with no annotation is a finding about a prediction).
ScoreKey = Literal["sample_id", "object_id", "prediction_id"]


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
    #: The severity the check itself gave, before the suite's conditions; None = same as ``severity``.
    check_severity: Severity | None = None

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)
        if self.check_severity is None:
            self.check_severity = self.severity
        self.check_severity = Severity(self.check_severity)

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
            "check_severity": self.check_severity.value,
            "message": self.message,
            "count": self.count,
            "samples": list(self.samples),
            "scores": {str(k): float(v) for k, v in self.scores.items()},
            "groups": plain(self.groups),
            "evidence": plain(self.evidence),
            "thresholds": plain(self.thresholds),
            "why": self.why,
            "fix": self.fix,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The Finding that :meth:`to_dict` wrote (``count`` is derived, so it is not read)."""
        return cls(check=data["check"], issue=data["issue"], title=data["title"], severity=Severity(data["severity"]),
                   message=data["message"], samples=list(data.get("samples", [])),
                   scores={k: float(v) for k, v in (data.get("scores") or {}).items()},
                   groups=list(data.get("groups") or []), evidence=dict(data.get("evidence") or {}),
                   thresholds=dict(data.get("thresholds") or {}), why=data.get("why", ""), fix=data.get("fix", ""),
                   family=data.get("family", ""), check_severity=data.get("check_severity"))


@dataclass(frozen=True)
class IssueScores:
    """One issue's judgement of every item a check looked at: ``scores`` in [0, 1] (lower = worse) and
    boolean ``flags``, both indexed by the item's id (a ``key``: sample, object or prediction).
    Items the check did not judge are absent (they get no score, not a good one)."""

    issue: str
    scores: pd.Series
    flags: pd.Series
    key: ScoreKey = "sample_id"


@dataclass
class CheckOutput:
    """What one check returns: its findings (empty when all is well) and its per-item scores.

    >>> out = CheckOutput("quality.dark")
    >>> out.score("dark", pd.Series([0.1, 0.9], index=["a.jpg", "b.jpg"]), pd.Series([True, False], index=["a.jpg", "b.jpg"]))
    >>> out.add().scores[0].issue
    'dark'
    """

    check: str
    findings: list[Finding] = field(default_factory=list)
    scores: list[IssueScores] = field(default_factory=list)

    def add(self, *findings: Finding) -> CheckOutput:
        """Append findings and return this output (so a check can ``return output.add(...)``)."""
        self.findings.extend(findings)
        return self

    def score(self, issue: str, scores: pd.Series, flags: pd.Series, key: ScoreKey = "sample_id") -> None:
        """Record ``issue``'s score and flag for each judged item (indexed by ``key``); a missing
        flag counts as not flagged."""
        self.scores.append(IssueScores(issue, scores.astype(float), flags.where(flags.notna(), False).astype(bool), key))


def scores_table(outputs: list[CheckOutput], ids: pd.Index, key: ScoreKey = "sample_id") -> pd.DataFrame:
    """The scores table of ``outputs`` over the items ``ids`` (keyed by ``key``): per issue an
    ``is_<issue>`` flag column (False where not judged) and a ``<issue>_score`` column in [0, 1] (NaN
    where not judged), in the order the issues were scored."""
    cols: dict[str, pd.Series] = {}
    for out in outputs:
        for s in out.scores:
            if s.key != key:
                continue
            flags = s.flags.reindex(ids)
            cols[f"is_{s.issue}"] = flags.where(flags.notna(), False).astype(bool)
            cols[f"{s.issue}_score"] = s.scores.reindex(ids).astype(float).clip(0.0, 1.0)
    return pd.DataFrame(cols, index=ids)


@dataclass
class Result:
    """What a run returns: the findings, per-item scores, the dataset summary and the run's tables.

    ``issues`` is a DataFrame indexed by sample id with one ``<issue>_score`` column in [0, 1]
    (lower = worse) and one boolean ``is_<issue>`` column per issue type computed (the scores table,
    written as ``scores.parquet``); ``object_issues`` is the same for objects (indexed by object id)
    and ``prediction_issues`` for predicted objects (indexed by prediction id, e.g. a confident
    detection with no annotation), each when a check judged such items. ``features`` holds the raw per-image properties (brightness, blur,
    size...). ``stats`` holds a job's tables (evaluate: metrics with CIs, per-class scores...).
    ``thumbnails`` (sample id -> JPEG) are the report's pictures from the run's decode pass (a
    ``ReportThumbnails``) or from a saved run folder; they are not part of the saved Result or of equality.
    """

    findings: list[Finding]
    issues: pd.DataFrame
    features: pd.DataFrame
    dataset_summary: dict[str, Any]
    run_info: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)
    object_issues: pd.DataFrame | None = None
    prediction_issues: pd.DataFrame | None = None
    thumbnails: MutableMapping[str, bytes] | None = field(default=None, repr=False)

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

    def judged(self, conditions: dict[str, dict[str, Any]]) -> Result:
        """This Result judged by other conditions (check id -> ``severity`` / ``max_count``, as in a
        config's ``checks``), from the checks' own severities: the same run, judged for CI or for
        exploration (see :func:`apply_conditions`)."""
        return replace(self, findings=apply_conditions(self.findings, conditions))

    def to_dict(self, tables: bool = True) -> dict[str, Any]:
        """The Result as JSON-ready data. ``tables=False`` leaves out the per-item tables (``issues``,
        ``object_issues``, ``features``), which a run folder keeps as Parquet files beside
        ``findings.json``."""
        counts = {s.value: 0 for s in Severity}
        for f in self.findings:
            counts[f.severity.value] += 1
        out = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "visionaudit", "version": self.run_info.get("version")},
            "run": plain(self.run_info),
            "dataset": plain(self.dataset_summary),
            "summary": {"findings": len(self.findings), "by_severity": counts},
            "findings": [f.to_dict() for f in sorted(self.findings, key=lambda f: -f.severity.rank)],
            "stats": encode_tables(self.stats),
        }
        if tables:
            out["tables"] = {"issues": table_to_dict(self.issues), "features": table_to_dict(self.features),
                             **{key: None if getattr(self, key) is None else table_to_dict(getattr(self, key))
                                for key in ("object_issues", "prediction_issues")}}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], tables: dict[str, pd.DataFrame | None] | None = None) -> Result:
        """The Result that :meth:`to_dict` wrote. The per-item tables come from ``data["tables"]``, or
        from ``tables`` (read from a run folder's Parquet files), or are empty."""
        major = str(data.get("schema_version", "")).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"schema_version {data.get('schema_version')!r} is not readable by this visionaudit "
                             f"(reads {SCHEMA_VERSION.split('.')[0]}.x)")
        if tables is None:
            saved = data.get("tables") or {}
            tables = {k: None if v is None else table_from_dict(v) for k, v in saved.items()}
        issues = tables.get("issues")
        features = tables.get("features")
        return cls(findings=[Finding.from_dict(f) for f in data.get("findings", [])],
                   issues=issues if issues is not None else pd.DataFrame(index=pd.Index([], name="sample_id")),
                   features=features if features is not None else pd.DataFrame(index=pd.Index([], name="sample_id")),
                   dataset_summary=dict(data.get("dataset") or {}), run_info=dict(data.get("run") or {}),
                   stats=decode_tables(data.get("stats") or {}), object_issues=tables.get("object_issues"),
                   prediction_issues=tables.get("prediction_issues"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return (self.to_dict(tables=False) == other.to_dict(tables=False)
                and _frames_equal(self.issues, other.issues) and _frames_equal(self.features, other.features)
                and _frames_equal(self.object_issues, other.object_issues)
                and _frames_equal(self.prediction_issues, other.prediction_issues))


def plain(obj: Any) -> Any:
    """``obj`` with numpy/pandas values made JSON-ready: NaN and infinities become None, tuples lists,
    numpy scalars Python numbers, bytes hex text."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, pd.DataFrame):
        return plain(obj.to_dict(orient="records"))
    if isinstance(obj, enum.Enum):
        return obj.value
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def table_to_dict(df: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as JSON-ready columns that :func:`table_from_dict` turns back into an equal one
    (dtypes, index and its name, column-index names kept)."""
    return {
        "index": plain(list(df.index)), "index_name": df.index.name, "columns_name": df.columns.name,
        "columns": [str(c) for c in df.columns], "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
        "data": {str(c): plain(df[c].tolist()) for c in df.columns},
    }


def table_from_dict(data: dict[str, Any]) -> pd.DataFrame:
    """The DataFrame that :func:`table_to_dict` wrote."""
    cols: dict[str, pd.Series] = {}
    for c in data["columns"]:
        dtype, values = data["dtypes"][c], data["data"][c]
        if dtype.startswith("float"):
            cols[c] = pd.Series([np.nan if v is None else v for v in values], dtype=dtype)
        elif dtype == "object":
            cols[c] = pd.Series(values, dtype=object)
        else:
            cols[c] = pd.Series(values).astype(dtype)
    df = pd.DataFrame(cols, columns=data["columns"])
    df.index = pd.Index(data["index"], name=data.get("index_name"))
    df.columns.name = data.get("columns_name")
    return df


def encode_tables(obj: Any) -> Any:
    """``stats``-like data with its DataFrames as ``{"table": ...}`` objects (see :func:`table_to_dict`)."""
    if isinstance(obj, pd.DataFrame):
        return {"table": table_to_dict(obj)}
    if isinstance(obj, dict):
        return {str(k): encode_tables(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_tables(v) for v in obj]
    return plain(obj)


def decode_tables(obj: Any) -> Any:
    """The inverse of :func:`encode_tables`."""
    if isinstance(obj, dict):
        if set(obj) == {"table"} and isinstance(obj["table"], dict):
            return table_from_dict(obj["table"])
        return {k: decode_tables(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_tables(v) for v in obj]
    return obj


def _frames_equal(a: pd.DataFrame | None, b: pd.DataFrame | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return table_to_dict(a) == table_to_dict(b)


def apply_conditions(findings: list[Finding], conditions: dict[str, dict[str, Any]] | None) -> list[Finding]:
    """The findings judged by ``conditions`` (check id -> settings; other keys are ignored).

    Each finding starts from the severity its check gave (``check_severity``): ``severity`` replaces
    it; ``max_count`` judges a finding that affects at most that many samples (or groups) as info,
    tolerated. A check that crashed stays an error whatever the conditions say.

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
