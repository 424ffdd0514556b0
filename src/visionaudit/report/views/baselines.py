"""Baseline findings: the model against each baseline (majority, class prior, image properties only)
with the difference's CI strip around zero, and a property shortcut as the cross-validated accuracy
of the image properties (together and each alone) against always predicting the majority class, with
each top property's median per class."""
from __future__ import annotations

import math

from ...findings import Finding
from ..charts import symmetric_range
from ..format import fmt_num, level, p_value
from .base import ViewContext, facts, generic_view, samples_blocks, table, traceback
from .blocks import Block, Cell, Column, Interval, Row
from .registry import register_view


@register_view("baselines.model_vs_baseline")
def model_vs_baseline_view(f: Finding, ctx: ViewContext) -> list[Block]:
    ev = f.evidence
    baselines = [r for r in ev.get("baselines", []) if isinstance(r, dict)]
    reach = symmetric_range([v for r in baselines for v in (r.get("low"), r.get("high"), r.get("difference"))])
    rows = []
    for r in baselines:
        rows.append(Row([Cell(str(r.get("baseline"))), Cell(str(r.get("description", ""))), Cell(fmt_num(r.get("n")), numeric=True),
                         Cell(f"{float(r.get('accuracy', math.nan)):.3f}", numeric=True),
                         Cell(f"{float(r.get('model_accuracy', math.nan)):.3f}", numeric=True),
                         Cell(f"{float(r.get('difference', math.nan)):+.3f} [{float(r.get('low', math.nan)):+.3f}, "
                              f"{float(r.get('high', math.nan)):+.3f}]",
                              interval=Interval(r.get("difference"), r.get("low"), r.get("high"), lo=-reach, hi=reach, ref=0.0)),
                         Cell(p_value(r.get("p_value")), numeric=True), Cell(str(r.get("verdict", "")))],
                        flagged=r.get("verdict") != "better"))
    blocks = [*facts(f), *traceback(f)]
    if rows:
        blocks.append(table(
            f"Model vs baselines on {ev.get('split', 'the evaluation split')} (model accuracy "
            f"{float(ev.get('model_accuracy', math.nan)):.3f})",
            [Column("baseline"), Column("what it does"), Column("n", numeric=True), Column("baseline accuracy", numeric=True),
             Column("model accuracy", numeric=True),
             Column(f"difference, {level(ev.get('confidence', 0.95))} CI (axis \u00b1{reach:g}, | = 0)"),
             Column("p", numeric=True), Column("verdict")], rows, role="baselines"))
    return blocks + samples_blocks(f, ctx)


@register_view("baselines.property_shortcut")
def property_shortcut_view(f: Finding, ctx: ViewContext) -> list[Block]:
    ev = f.evidence
    if "accuracy" not in ev:
        return generic_view(f, ctx)  # nothing measured (a crashed check): its message and traceback
    majority = ev.get("majority_rate")
    rows = [Row([Cell("all properties together"), Cell(f"{float(ev.get('accuracy', math.nan)):.3f}", numeric=True),
                 Cell(f"[{float(ev.get('accuracy_low', math.nan)):.3f}, {float(ev.get('accuracy_high', math.nan)):.3f}]",
                      interval=Interval(ev.get("accuracy"), ev.get("accuracy_low"), ev.get("accuracy_high"), ref=majority))],
                flagged=True)]
    for r in ev.get("top_properties", []):
        acc = r.get("accuracy_alone")
        rows.append(Row([Cell(str(r.get("property"))), Cell(f"{float(acc):.3f}", numeric=True),
                         Cell("", interval=Interval(acc, ref=majority))]))
    blocks = [*facts(f), *traceback(f), table(
        f"Cross-validated accuracy from image properties only ({ev.get('model', 'model')}, {ev.get('folds', '?')}-fold) "
        f"vs always '{ev.get('majority_class')}' ({float(majority or math.nan):.3f}, the | mark)",
        [Column("properties"), Column("accuracy", numeric=True), Column("on 0-1, with CI (| = majority rate)")], rows,
        role="shortcut")]
    medians = ev.get("class_medians") or {}
    props = [str(r.get("property")) for r in ev.get("top_properties", [])]
    if medians and props:
        rows = [Row([Cell(str(c))] + [Cell(fmt_num(vals.get(p)), numeric=True) for p in props]) for c, vals in medians.items()]
        blocks.append(table("Median of each top property per class", [Column("class")] + [Column(p, numeric=True) for p in props],
                            rows, role="medians"))
    return blocks + samples_blocks(f, ctx)
