"""The shape of a check: an id, a family, defaults, a why/fix paragraph and ``run(ctx) -> CheckOutput``."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import pandas as pd

from ..context import Context
from ..findings import CheckOutput, Finding, Severity

#: Config keys every check accepts besides its own thresholds: conditions the suite applies after the
#: run (``severity``, ``max_count``; see :func:`visionaudit.findings.apply_conditions`) and ``enabled``.
CONDITION_KEYS = frozenset({"severity", "max_count", "enabled"})

#: Ranges of settings that several checks share, by name: (low, high, what a config must give).
#: A config value outside is refused before the run (:meth:`Check.setting_problem`).
SHARED_RANGES: dict[str, tuple[float, float, str]] = {
    **{k: (0.0, 1.0, "a number strictly between 0 and 1") for k in ("confidence", "alpha", "fdr", "power")},
    **{k: (1, math.inf, "an integer of at least 1") for k in (
        "n_resamples", "neighbours", "n_bins", "bins", "min_images", "min_size", "top", "examples", "cluster_size",
        "max_clusters", "n_init")},
    "folds": (2, math.inf, "an integer of at least 2"),
}


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
    #: The values a text setting accepts (e.g. ``{"model": ("boosting", "logistic")}``); a config
    #: naming another is refused before the run.
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.defaults) - CONDITION_KEYS
        if unknown:
            raise ValueError(f"check {self.id!r} has no setting(s) {sorted(unknown)}; it accepts "
                             f"{sorted(set(self.defaults) | CONDITION_KEYS)}")
        self.params = {**self.defaults, **{k: v for k, v in overrides.items() if k in self.defaults}}

    @classmethod
    def setting_problem(cls, key: str, value: Any) -> str | None:
        """What ``value`` should have been for the setting ``key`` (one of ``defaults``), or None when
        it will do: a config is checked with this before any image is decoded, so ``floor: high`` is
        an error naming the setting, not a failed check after the scan. The expected kind follows the
        default's (a number, an integer, true/false, a text, a list), ``choices`` and
        :data:`SHARED_RANGES`; a check with other constraints overrides this.

        >>> from visionaudit.checks.quality import Dark
        >>> Dark.setting_problem("floor", "high")
        'a number (default 0.35)'
        >>> Dark.setting_problem("floor", 0.4) is None
        True
        """
        default = cls.defaults[key]
        allowed = cls.choices.get(key)
        if allowed is not None:
            return None if value in allowed else f"one of {', '.join(map(str, allowed))}"
        if default is None:
            return None
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, bool):
            return None if isinstance(value, bool) else f"true or false (default {str(default).lower()})"
        if isinstance(default, int):
            expected = "an integer"
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            expected = "a number"
            ok = number and math.isfinite(value)
        elif isinstance(default, str):
            return None if isinstance(value, str) else f"a text (default {default!r})"
        elif isinstance(default, (list, tuple)):
            kinds = {type(v) for v in default}
            if not isinstance(value, (list, tuple)):
                return f"a list (default {list(default)})"
            if kinds and not all(type(v) in kinds for v in value):
                names = " or ".join(sorted({"integers" if k is int else "numbers" if k is float else "texts"
                                            for k in kinds}))
                return f"a list of {names} (default {list(default)})"
            return None
        else:
            return None
        low, high, said = SHARED_RANGES.get(key, (-math.inf, math.inf, ""))
        if ok and low <= value <= high and not (said.startswith("a number strictly") and value in (low, high)):
            return None
        return f"{said or expected} (default {default})"

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
