"""The shape of a check: an id, a family, defaults, a why/fix paragraph and ``run(ctx)``."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import pandas as pd

from ..context import Context
from ..findings import Finding, Severity


class Check:
    """Base class for all checks.

    Subclasses set ``id`` (stable, dotted: ``family.name``), ``family``, ``title``, ``severity``,
    ``defaults`` (thresholds, overridable per run) and ``why``/``fix`` text, and implement
    :meth:`run`, which reads only the :class:`Context` and returns findings (empty when all is well).
    A check also records per-sample scores with ``ctx.add_scores`` for every sample it judged, so
    users can rank and threshold on their own.
    """

    id: ClassVar[str]
    family: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    defaults: ClassVar[dict[str, Any]] = {}
    why: ClassVar[str] = ""
    fix: ClassVar[str] = ""

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.defaults) - {"severity", "enabled"}
        if unknown:
            raise ValueError(f"check {self.id!r} has no setting(s) {sorted(unknown)}; it accepts {sorted(self.defaults)}")
        self.params = {**self.defaults, **{k: v for k, v in overrides.items() if k in self.defaults}}
        if "severity" in overrides:
            self.severity = Severity(overrides["severity"])

    def run(self, ctx: Context) -> list[Finding]:
        raise NotImplementedError

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
