"""Class-balance findings. The class counts per split are one table at the top of the report (a
section of the overview, from the class-counts finding or, without it, the feature table's labels);
rare classes, classes missing from a split and label shift between splits get tables of their
numbers next to their images."""
from __future__ import annotations

import pandas as pd

from ...findings import Finding, Result
from ..format import fmt_num, fmt_value, p_value, pct
from .base import ViewContext, facts, gallery, samples_blocks, table, traceback
from .blocks import Block, Cell, ClassCounts, ClassRow, Column, Note, Row, Section
from .registry import register_view

#: Most classes in the class-count table.
MAX_CLASSES = 60
#: Anchor of the overview's class-count section.
CLASS_COUNTS_ANCHOR = "class-counts"


@register_view("balance.class_counts")
def class_counts_view(f: Finding, ctx: ViewContext) -> list[Block]:
    blocks = [*facts(f, skip=("counts",)), *traceback(f)]
    if f.evidence.get("counts"):
        blocks.append(Note("Every class per split is in the table", link_text="Class counts per split",
                           anchor=CLASS_COUNTS_ANCHOR))
    return blocks


@register_view("balance.rare_classes")
def rare_classes_view(f: Finding, ctx: ViewContext) -> list[Block]:
    unit = str(f.evidence.get("unit", "images"))
    rows = [Row([Cell(str(r.get("class"))), Cell(str(r.get("scope", ""))), Cell(fmt_num(r.get("count")), numeric=True),
                 Cell(fmt_num(r.get("threshold")), numeric=True)])
            for r in f.evidence.get("rare") or [] if isinstance(r, dict)]
    blocks = [*facts(f), *traceback(f)]
    if rows:
        blocks.append(table(None, [Column("class"), Column("where"), Column(unit, numeric=True),
                                   Column("fewer than", numeric=True)], rows, role="rare"))
    # each image says which rare class it stands for (a detection image has no label of its own)
    shown = gallery(f, ctx, note_names={"class_of": "rare class"})
    return blocks + ([shown] if shown else [])


@register_view("balance.missing_class_in_split")
def missing_class_view(f: Finding, ctx: ViewContext) -> list[Block]:
    rows = [Row([Cell(str(r.get("class"))), Cell(str(r.get("missing_from"))),
                 Cell(fmt_value(r.get("present_in") or {})), Cell(str(r.get("severity", "")))],
                flagged=r.get("severity") == "error")
            for r in f.evidence.get("missing") or [] if isinstance(r, dict)]
    blocks = [*facts(f), *traceback(f)]
    if rows:
        blocks.append(table(None, [Column("class"), Column("missing from"),
                                   Column(f"{f.evidence.get('unit', 'images')} elsewhere"), Column("severity")],
                            rows, role="missing"))
    return blocks + samples_blocks(f, ctx)


@register_view("balance.split_label_shift")
def label_shift_view(f: Finding, ctx: ViewContext) -> list[Block]:
    ev = f.evidence
    blocks = [*facts(f), *traceback(f)]
    pairs = [r for r in ev.get("pairs") or [] if isinstance(r, dict)]
    if pairs:
        rows = [Row([Cell(" vs ".join(map(str, r.get("splits") or []))), Cell(f"{float(r.get('tvd', 0.0)):.3f}", numeric=True),
                     Cell(p_value(r.get("p_value")), numeric=True), Cell("yes" if r.get("shifted") else "no")],
                    flagged=bool(r.get("shifted")))
                for r in pairs]
        blocks.append(table("Each pair of splits", [Column("splits"), Column("total variation distance", numeric=True),
                                                    Column("p", numeric=True), Column("shifted")], rows, role="shift"))
    shares = ev.get("distributions")
    if isinstance(shares, dict) and shares:
        frame = pd.DataFrame({str(s): d for s, d in shares.items() if isinstance(d, dict)}).fillna(0.0)
        frame = frame.loc[frame.max(axis=1).sort_values(ascending=False, kind="stable").index]
        rows = [Row([Cell(str(c))] + [Cell(pct(frame.at[c, s]), numeric=True) for s in frame.columns]) for c in frame.index]
        blocks.append(table("Share of each class per split", [Column("class")] + [Column(s, numeric=True) for s in frame.columns],
                            rows, role="shift"))
    return blocks + samples_blocks(f, ctx)


def class_counts_section(result: Result) -> Section | None:
    """The overview's class counts per split (None when nothing is labelled)."""
    counts = class_counts(result)
    if counts is None:
        return None
    return Section(CLASS_COUNTS_ANCHOR, "Class counts per split", [counts],
                   detail=None if counts.unit == "images" else f"({counts.unit})")


def class_counts(result: Result) -> ClassCounts | None:
    """Per-split class counts, largest class first: the class-counts finding's (they count objects
    in detection datasets) when it ran, else the image labels of the feature table."""
    features = result.features
    found = next((f for f in result.findings if f.check == "balance.class_counts"), None)
    unlabelled, unit = 0, "images"
    if found is not None and found.evidence.get("counts"):
        counts = pd.DataFrame(found.evidence["counts"]).fillna(0).astype(int)
        counts.index = counts.index.astype(str)
        unit = str(found.evidence.get("unit", "images"))
        if unit == "images" and "label" in features.columns:
            unlabelled = int(features["label"].isna().sum())
    else:
        if "label" not in features.columns or not features["label"].notna().any():
            return None
        labels = features["label"].astype(object).where(features["label"].notna(), None)
        labelled = labels.notna()
        split = (features["split"] if "split" in features.columns else pd.Series(None, index=features.index, dtype=object))
        split = split.astype(object).where(split.notna(), "(no split)")
        counts = pd.crosstab(labels[labelled].astype(str), split[labelled].astype(str))
        unlabelled = int((~labelled).sum())
    if counts.empty:
        return None
    order = [s for s in ("train", "val", "test") if s in counts.columns]
    counts = counts[order + sorted(c for c in counts.columns if c not in order)]
    counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    shown = counts.iloc[:MAX_CLASSES]
    rows = [ClassRow(str(c), [int(n) for n in shown.loc[c]]) for c in shown.index]
    return ClassCounts(splits=[str(s) for s in counts.columns], totals=[int(n) for n in counts.sum(axis=0)], rows=rows,
                       unit=unit, more=len(counts) - len(shown), unlabelled=unlabelled)


@register_view("balance.outliers")
def outliers_view(f: Finding, ctx: ViewContext) -> list[Block]:
    shown = gallery(f, ctx, note_names={"z_scores": "isolation z"})
    return [*facts(f), *traceback(f), *([shown] if shown else [])]
