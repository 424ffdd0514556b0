"""The whole report as data: the header facts, the findings by severity, the checks run, the overview
sections (class counts, model metrics) and one :class:`FindingView` per finding, most severe first.

:func:`build_report` is what the HTML report renders and what a dashboard can ship as JSON
(``to_data(build_report(result))``); only the thumbnails are the renderer's to bring.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...findings import Result, Severity, plain
from ..format import fmt_num, fmt_value
from .balance import class_counts_section
from .base import MAX_GALLERY, MAX_GROUPS, ViewContext
from .blocks import Block, Fact, Gallery, Groups, Section, Tile
from .evaluation import model_metrics_section
from .registry import finding_blocks


@dataclass
class FindingView:
    """One finding's section: its header (what, how bad, why it matters, how to fix) and its blocks."""

    anchor: str
    check: str
    issue: str
    family: str
    title: str
    severity: str
    message: str
    why: str
    fix: str
    #: Affected samples, or groups when the finding has groups and no samples (``unit`` says which).
    count: int
    unit: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class CheckRun:
    check: str
    findings: int
    worst: str | None
    seconds: float | None


@dataclass
class ReportView:
    dataset: dict[str, Any]
    run: dict[str, Any]
    #: Where the judged predictions came from (file, model, or cross-validation and embedder).
    predictions: list[Fact]
    #: Samples whose image did not decode.
    undecodable: int
    counts: dict[str, int]
    checks: list[CheckRun]
    overview: list[Section]
    findings: list[FindingView]

    def tiles(self) -> Iterator[Tile]:
        """Every tile of every gallery and group, in page order (a sample may come more than once)."""
        for blocks in [s.blocks for s in self.overview] + [f.blocks for f in self.findings]:
            for b in blocks:
                if isinstance(b, Gallery):
                    yield from b.tiles
                elif isinstance(b, Groups):
                    for g in b.groups:
                        yield from g.members
                        yield from g.typical


def build_report(result: Result, *, max_gallery: int = MAX_GALLERY, max_groups: int = MAX_GROUPS) -> ReportView:
    """The report of ``result`` as views: every finding through the view registered for its check or
    family (:func:`~visionaudit.report.views.registry.view_for`), galleries capped at ``max_gallery``
    samples and ``max_groups`` groups."""
    for name, value in (("max_gallery", max_gallery), ("max_groups", max_groups)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"invalid {name}={value!r}: expected a positive integer")
    ctx = ViewContext.of(result, max_gallery, max_groups)
    ordered = sorted(result.findings, key=lambda f: -f.severity.rank)
    anchors = [f"finding-{i + 1}-{f.issue}" for i, f in enumerate(ordered)]
    findings = [FindingView(anchor=anchor, check=f.check, issue=f.issue, family=f.family, title=f.title,
                            severity=f.severity.value, message=f.message, why=f.why, fix=f.fix, count=f.count,
                            unit="group(s)" if f.groups and not f.samples else "sample(s)",
                            blocks=finding_blocks(f, ctx))
                for f, anchor in zip(ordered, anchors)]
    counts = {s.value: 0 for s in Severity}
    for f in ordered:
        counts[f.severity.value] += 1
    calibration = next((a for f, a in zip(ordered, anchors) if f.check == "evaluation.calibration"), None)
    overview = [s for s in (class_counts_section(result), model_metrics_section(result, calibration)) if s is not None]
    errors = result.features["error_kind"] if "error_kind" in result.features.columns else None
    return ReportView(dataset=plain(result.dataset_summary), run=plain(result.run_info),
                      predictions=_predictions(result.run_info), undecodable=0 if errors is None else int(errors.notna().sum()),
                      counts=counts, checks=_checks(result, ordered), overview=overview, findings=findings)


def _checks(result: Result, findings: list) -> list[CheckRun]:
    seconds = result.run_info.get("check_seconds") or {}
    rows = []
    for check in list(seconds) + sorted({f.check for f in findings} - set(seconds)):
        mine = [f for f in findings if f.check == check]
        worst = max(mine, key=lambda f: f.severity.rank).severity.value if mine else None
        rows.append(CheckRun(check, len(mine), worst, seconds.get(check)))
    return rows


def _predictions(run_info: dict[str, Any]) -> list[Fact]:
    """What the run's predictions came from, whatever fields the job recorded; the class list as its length."""
    info = run_info.get("predictions")
    if not isinstance(info, dict):
        return []
    out = []
    for key, value in info.items():
        if value is None or (isinstance(value, (list, dict, str)) and not value):
            continue
        if key == "classes" and isinstance(value, list):
            out.append(Fact("classes", fmt_num(len(value))))
        else:
            out.append(Fact({"path": "file"}.get(key, key.replace("_", " ")), fmt_value(value)))
    return out
