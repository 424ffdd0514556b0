"""The shape of a check: an id, a family, defaults, a why/fix paragraph and ``run(ctx) -> CheckOutput``."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import pandas as pd

from ..context import Context
from ..findings import CheckOutput, Finding, Severity

#: Config keys every check accepts besides its own thresholds: conditions the suite applies after the
#: run (``severity``, ``max_count``; see :func:`visionaudit.findings.apply_conditions`) and ``enabled``.
CONDITION_KEYS = frozenset({"severity", "max_count", "enabled"})


class Check:
    """Base class for all checks.

    Subclasses set ``id`` (stable, dotted: ``family.name``), ``family``, ``title``, ``severity`` (the
    check's own judgement; the suite's conditions may change it afterwards), ``defaults`` (thresholds,
    overridable per run), ``suites`` (the jobs that run it: ``scan``, ``evaluate``), ``tasks`` (the
    dataset tasks it applies to, :class:`~visionaudit.dataset.model.Task` values; empty = all) and
    ``why``/``fix`` text, and implement :meth:`run`, which reads only the :class:`Context` and returns a
    :class:`~visionaudit.findings.CheckOutput`: its findings (none when all is well) and a score and
    flag for every item it judged (``output.score(...)``), so users can rank and threshold on their own.
    """

    id: ClassVar[str]
    family: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    defaults: ClassVar[dict[str, Any]] = {}
    suites: ClassVar[tuple[str, ...]] = ("scan",)
    tasks: ClassVar[tuple[str, ...]] = ()
    why: ClassVar[str] = ""
    fix: ClassVar[str] = ""

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.defaults) - CONDITION_KEYS
        if unknown:
            raise ValueError(f"check {self.id!r} has no setting(s) {sorted(unknown)}; it accepts "
                             f"{sorted(set(self.defaults) | CONDITION_KEYS)}")
        self.params = {**self.defaults, **{k: v for k, v in overrides.items() if k in self.defaults}}

    def run(self, ctx: Context) -> CheckOutput:
        raise NotImplementedError

    def output(self) -> CheckOutput:
        """An empty output of this check, to add findings and scores to."""
        return CheckOutput(self.id)

    def finding(
        self,
        *,
        issue: str,
        message: str,
        samples: Iterable[str] = (),
        scores: pd.Series | dict[str, float] | None = None,
        groups: list[dict[str, Any]] | None = None,
        evidence: dict[str, Any] | None = None,
        title: str | None = None,
        severity: Severity | None = None,
        why: str | None = None,
        fix: str | None = None,
    ) -> Finding:
        """A Finding filled with this check's id, family, severity, thresholds and texts.

        ``samples`` are sorted worst-first by ``scores`` when scores are given.
        """
        samples = list(samples)
        score_map: dict[str, float] = {}
        if scores is not None:
            src = scores if isinstance(scores, dict) else scores.to_dict()
            score_map = {s: float(src[s]) for s in samples if s in src}
            samples.sort(key=lambda s: score_map.get(s, 1.0))
        return Finding(
            check=self.id, issue=issue, family=self.family, title=title or self.title,
            severity=severity or self.severity, message=message, samples=samples, scores=score_map,
            groups=groups or [], evidence=evidence or {}, thresholds=dict(self.params),
            why=why or self.why, fix=fix or self.fix,
        )
