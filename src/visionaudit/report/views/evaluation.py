"""Evaluation findings: the calibration finding's reliability diagram with its ECE and CI and one
diagram per class, least calibrated first; over- and underfitting as train vs held-out accuracy bars
against the majority class; and the overview's model-metrics section (each metric per split with its
CI, per-class scores, the confusion matrix as counts and row-normalised, and the reliability diagram,
or a link to the calibration finding that draws it)."""
from __future__ import annotations

import math
from typing import Any

from ...findings import Finding, Result
from ..charts import FEW
from ..format import fmt_num, level
from .base import ViewContext, facts, samples_blocks, table, traceback
from .blocks import (
    Bar,
    Bars,
    Block,
    Cell,
    Column,
    Confusion,
    Heading,
    Note,
    Reliability,
    ReliabilityBin,
    ReliabilityGrid,
    Row,
    Section,
)
from .registry import register_view

#: Anchor of the overview's model-metrics section.
MODEL_METRICS_ANCHOR = "model-metrics"
#: Most per-class reliability diagrams drawn for one calibration finding.
MAX_CLASS_DIAGRAMS = 24
#: Most classes of a confusion matrix drawn; larger ones stay in findings.json.
MAX_CONFUSION_CLASSES = 60


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def reliability(rows: Any, *, title: str, ece: Any = None, small: bool = False, x_label: str = "confidence",
                y_label: str = "accuracy") -> Reliability | None:
    """A reliability diagram of a reliability table (``lower``, ``upper``, ``count``, ``confidence``,
    ``accuracy`` per bin), or None when no bin holds a sample."""
    bins = [ReliabilityBin(float(r["lower"]), float(r["upper"]), int(r["count"]), float(r["confidence"]), float(r["accuracy"]))
            for r in rows or [] if isinstance(r, dict) and r.get("count") and _finite(r.get("accuracy"))
            and _finite(r.get("confidence"))]
    if not bins:
        return None
    return Reliability(bins=bins, title=title, ece=float(ece) if _finite(ece) else None, small=small,
                       x_label=x_label, y_label=y_label)


@register_view("evaluation.calibration")
def calibration_view(f: Finding, ctx: ViewContext) -> list[Block]:
    ev = f.evidence
    ci = f" [{ev['ece_low']:.3f}, {ev['ece_high']:.3f}]" if _finite(ev.get("ece_low")) and _finite(ev.get("ece_high")) else ""
    blocks: list[Block] = [*facts(f), *traceback(f)]
    overall = reliability(ev.get("reliability"), ece=ev.get("ece"),
                          title=f"{ev.get('split', '')}: ECE {float(ev.get('ece', math.nan)):.3f}{ci}")
    if overall is not None:
        blocks.append(overall)
    per_class = sorted((r for r in ev.get("per_class") or [] if isinstance(r, dict)), key=lambda r: -float(r.get("ece") or 0.0))
    diagrams = [d for d in (reliability(r.get("reliability"), ece=r.get("ece"), small=True, x_label="p(class)",
                                        y_label="share of class",
                                        title=f"{r.get('class')}: ECE {float(r.get('ece', math.nan)):.3f} (n={r.get('support')})")
                            for r in per_class[:MAX_CLASS_DIAGRAMS]) if d is not None]
    if diagrams:
        skipped = ev.get("per_class_skipped") or []
        blocks.append(ReliabilityGrid(
            diagrams=diagrams, more=len(per_class) - len(diagrams),
            caption=(f"Per class, one-vs-rest, least calibrated first: x = predicted probability of the class, "
                     f"y = share of the bin's samples that are the class; faded bars hold fewer than {FEW} samples. "
                     + (f"{len(skipped)} class(es) with fewer than {f.thresholds.get('min_class_samples', '?')} samples "
                        f"not drawn." if skipped else ""))))
    return blocks + samples_blocks(f, ctx)


@register_view("evaluation.overfitting")
def fitting_view(f: Finding, ctx: ViewContext) -> list[Block]:
    """Over- and underfitting: train and held-out accuracy with their CIs (from the metrics finding)."""
    ev = f.evidence
    name = ev.get("split")
    metrics = _metrics_finding(ctx.result)
    splits = (metrics.evidence.get("splits") or {}) if metrics is not None else {}
    majority = ev.get("majority_rate") or {}
    bars = []
    for split, value in (("train", ev.get("train_accuracy")), (name, ev.get(f"{name}_accuracy"))):
        ci = ((splits.get(split) or {}).get("metrics") or {}).get("accuracy") or {}
        if _finite(value):
            bars.append(Bar(label=f"{split} ({(ev.get('n') or {}).get(split, '?')})", value=float(value),
                            low=ci.get("low"), high=ci.get("high"), ref=majority.get(split)))
    blocks: list[Block] = [*facts(f), *traceback(f)]
    if bars:
        confidence = metrics.evidence.get("confidence", 0.95) if metrics else 0.95
        blocks.append(Bars(bars=bars, caption=(
            f"Accuracy with {level(confidence)} bootstrap CIs; dashed mark: always predicting the split's most common "
            f"class. Gap train - {name}: {float(ev.get('gap', math.nan)):.3f} [{float(ev.get('gap_low', math.nan)):.3f}, "
            f"{float(ev.get('gap_high', math.nan)):.3f}].")))
    return blocks + samples_blocks(f, ctx)


def _metrics_finding(result: Result) -> Finding | None:
    return next((f for f in result.findings if f.check == "evaluation.metrics" and f.evidence.get("splits")), None)


def _m3(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"


def model_metrics_section(result: Result, calibration_anchor: str | None) -> Section | None:
    """The model-metrics overview, from the evaluation.metrics finding (None when the run judged no
    predictions). With a calibration finding (``calibration_anchor``), the
    reliability diagram is a link to it, which draws it with its CI and per class."""
    found = _metrics_finding(result)
    if found is None:
        return None
    splits = found.evidence["splits"]
    names = list(splits)
    main = found.evidence.get("evaluation_split", names[0])
    confidence = found.evidence.get("confidence", 0.95)
    rows = []
    for metric in splits[main]["metrics"]:
        cells = [Cell(metric.replace("_", " "))]
        for s in names:
            c = splits[s]["metrics"].get(metric, {})
            cells.append(Cell(_m3(c.get("value")), detail=None if c.get("low") is None else f"[{_m3(c.get('low'))}, {_m3(c.get('high'))}]"))
        rows.append(Row(cells))
    blocks: list[Block] = [table(None, [Column("metric")] + [Column(s, detail=f"({fmt_num(splits[s]['n'])})") for s in names],
                                 rows, role="permetric")]
    per_class = [Row([Cell(str(r.get("class"))), Cell(fmt_num(r.get("support"))), Cell(_m3(r.get("precision"))),
                      Cell(_m3(r.get("recall"))), Cell(_m3(r.get("f1"))), Cell(_m3(r.get("roc_auc")))])
                 for r in splits[main].get("per_class") or []]
    blocks.append(table(f"Per class on {main}", [Column(n) for n in ("class", "support", "precision", "recall", "F1", "ROC-AUC")],
                        per_class, role="perclass"))
    classes, counts = found.evidence.get("classes"), splits[main].get("confusion")
    if classes and counts and len(classes) <= MAX_CONFUSION_CLASSES:
        matrix = [[int(n) for n in row] for row in counts]
        blocks.append(Confusion(title=f"Confusion matrix on {main}", classes=[str(c) for c in classes], counts=matrix,
                                detail="(rows: true class, columns: predicted; shade = share of the row)"))
        blocks.append(Confusion(title=f"Confusion matrix on {main}, row-normalised", classes=[str(c) for c in classes],
                                counts=matrix, normalised=True, detail="(% of each true class)"))
    ece = splits[main].get("ece")
    diagram = reliability(splits[main].get("reliability"), ece=ece, title=f"{main}: ECE {ece:.3f}" if _finite(ece) else main)
    if diagram is not None:
        blocks.append(Heading(f"Calibration on {main}"))
        blocks.append(diagram if calibration_anchor is None else
                      Note("Miscalibrated: the reliability diagram with its CI and one per class is in",
                           link_text="the calibration finding", anchor=calibration_anchor))
    return Section(MODEL_METRICS_ANCHOR, "Model metrics per split", blocks, detail=f"({level(confidence)} bootstrap CIs)")
