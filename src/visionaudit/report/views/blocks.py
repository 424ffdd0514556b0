"""The typed blocks a view turns a finding into, as plain data.

A block says *what* to show (a table's cells, a gallery's samples worst first, a histogram's bins and
cut-off, a reliability table), never how: no markup, no pixel geometry, no image bytes. So the HTML
report and the dashboard draw the same blocks, and :func:`to_data` ships any of them as JSON (each
object with its ``kind``). A gallery names samples by id; the renderer brings the thumbnails.

>>> to_data(Verdict(tone="good", text="B is better"))
{'kind': 'verdict', 'tone': 'good', 'text': 'B is better'}
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, get_args

from ...findings import plain


@dataclass
class Fact:
    name: str
    value: str


@dataclass
class Facts:
    """Named values shown as chips: a finding's thresholds, its scalar evidence."""

    kind: ClassVar[str] = "facts"
    label: str
    items: list[Fact]
    #: Between a name and its value: ": " (evidence) or " = " (thresholds).
    sep: str = ": "


@dataclass
class Verdict:
    """One sentence that judges: ``tone`` is ``good``, ``bad`` or ``neutral``."""

    kind: ClassVar[str] = "verdict"
    tone: str
    text: str


@dataclass
class Heading:
    """The title of the blocks that follow it."""

    kind: ClassVar[str] = "heading"
    text: str
    detail: str | None = None


@dataclass
class Note:
    """A line of text, optionally ending with a link to another part of the report (an anchor)."""

    kind: ClassVar[str] = "note"
    text: str
    link_text: str | None = None
    anchor: str | None = None


@dataclass
class Code:
    """Preformatted text shown collapsed (a crashed check's traceback)."""

    kind: ClassVar[str] = "code"
    title: str
    text: str


@dataclass
class Interval:
    """A value with its interval drawn on a ``[lo, hi]`` axis, with an optional reference mark (the
    overall rate, zero) and reference interval (what the value is compared with)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    lo: float = 0.0
    hi: float = 1.0
    ref: float | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    width: float = 170.0


@dataclass
class Cell:
    text: str
    numeric: bool = False
    #: Drawn before the text (a CI strip).
    interval: Interval | None = None
    #: Shown after the text, muted (a CI in brackets).
    detail: str | None = None


@dataclass
class Column:
    name: str
    numeric: bool = False
    #: Shown after the name, muted (a split's sample count).
    detail: str | None = None


@dataclass
class Row:
    cells: list[Cell]
    #: The row is what the finding is about (a weak slice, a baseline the model does not beat).
    flagged: bool = False


@dataclass
class Table:
    """Rows of cells; ``more`` rows were left out (they are in findings.json)."""

    kind: ClassVar[str] = "table"
    columns: list[Column]
    rows: list[Row]
    title: str | None = None
    more: int = 0
    collapsed: bool = False
    note: str | None = None
    #: A name for the table's role (``segments``, ``comparison``...), which styles may key on.
    role: str = ""


@dataclass
class Change:
    """What a tile's label would become: ``given`` -> ``verb`` (suggested, predicted) ``other``."""

    given: str | None
    verb: str
    other: str | None
    probability: float | None = None
    why: str | None = None


@dataclass
class Box:
    """An object's box in the image's pixels (top-left corner and size), to draw on a detection tile."""

    x: float
    y: float
    w: float
    h: float
    label: str | None = None


@dataclass
class Tile:
    """One sample in a gallery or group: its id, score in [0, 1] (lower = worse) and what to write under it."""

    sample: str
    score: float | None = None
    label: str | None = None
    split: str | None = None
    #: The judged property and this sample's value of it (as text).
    property: str | None = None
    value: str | None = None
    change: Change | None = None
    note: str | None = None
    #: Why there will be no picture, when known from the run (not in the dataset table, decode error).
    missing: str | None = None
    boxes: list[Box] = field(default_factory=list)


@dataclass
class Gallery:
    """Samples worst first; ``more`` were left out."""

    kind: ClassVar[str] = "gallery"
    tiles: list[Tile]
    more: int = 0


@dataclass
class Group:
    """Samples that belong together: a duplicate cluster, a leaked pair, a confused class pair, a slice."""

    size: int
    members: list[Tile]
    title: str | None = None
    facts: list[str] = field(default_factory=list)
    labels_disagree: bool = False
    #: The splits the group spans, when more than one.
    splits: list[str] = field(default_factory=list)
    #: Members not shown.
    more: int = 0
    members_title: str | None = None
    #: A second row of samples (a cluster's members nearest its centre).
    typical: list[Tile] = field(default_factory=list)
    typical_title: str | None = None


@dataclass
class Groups:
    kind: ClassVar[str] = "groups"
    groups: list[Group]
    more: int = 0


@dataclass
class Histogram:
    """A property's distribution over the decoded images with the finding's cut-off.

    ``edges`` are the bin edges in the property's units (evenly spaced in log10 when ``log``); one edge
    sits on each cut-off, so ``flagged_bins`` (values ``direction`` the cut-off, or above ``upper`` for a
    two-sided finding) hold exactly the flagged values. With ``log``, values <= 0 are counted in the
    first bin (``nonpositive`` of them).
    """

    kind: ClassVar[str] = "histogram"
    property: str
    edges: list[float]
    counts: list[int]
    flagged_bins: list[bool]
    cutoff: float
    direction: str
    total: int
    flagged: int
    upper: float | None = None
    log: bool = False
    nonpositive: int = 0


@dataclass
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float | None
    accuracy: float | None


@dataclass
class Reliability:
    """A reliability diagram: per confidence bin, mean confidence against accuracy."""

    kind: ClassVar[str] = "reliability"
    bins: list[ReliabilityBin]
    title: str
    ece: float | None = None
    small: bool = False
    x_label: str = "confidence"
    y_label: str = "accuracy"


@dataclass
class ReliabilityGrid:
    kind: ClassVar[str] = "reliability_grid"
    diagrams: list[Reliability]
    caption: str
    more: int = 0


@dataclass
class Bar:
    label: str
    value: float
    low: float | None = None
    high: float | None = None
    #: A reference mark (the majority-class rate).
    ref: float | None = None


@dataclass
class Bars:
    """Horizontal bars of rates in [0, 1] with CI whiskers and reference marks."""

    kind: ClassVar[str] = "bars"
    bars: list[Bar]
    caption: str


@dataclass
class SplitBar:
    """One bar split in two by counts (McNemar's discordant samples), with the even split marked."""

    kind: ClassVar[str] = "split_bar"
    left: int
    right: int
    left_label: str
    right_label: str
    caption: str


@dataclass
class ClassRow:
    label: str
    counts: list[int]


@dataclass
class ClassCounts:
    """Samples (or objects) per class and split, largest class first."""

    kind: ClassVar[str] = "class_counts"
    splits: list[str]
    totals: list[int]
    rows: list[ClassRow]
    unit: str = "images"
    more: int = 0
    unlabelled: int = 0


@dataclass
class Confusion:
    """A confusion matrix (rows: true class, columns: predicted), as counts or as shares of each row."""

    kind: ClassVar[str] = "confusion"
    title: str
    classes: list[str]
    counts: list[list[int]]
    normalised: bool = False
    detail: str | None = None


Block = (Facts | Verdict | Heading | Note | Code | Table | Gallery | Groups | Histogram | Reliability | ReliabilityGrid
         | Bars | SplitBar | ClassCounts | Confusion)

#: Every block type by its kind.
BLOCK_TYPES: dict[str, type] = {t.kind: t for t in get_args(Block)}


@dataclass
class Section:
    """A titled part of the report made of blocks (an overview section above the findings)."""

    anchor: str
    title: str
    blocks: list[Block]
    detail: str | None = None


def to_data(obj: Any) -> Any:
    """A block (or a view of blocks, or a list of them) as JSON-ready data: each dataclass a dict,
    with its ``kind`` first when it has one; NaN becomes None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        kind = getattr(type(obj), "kind", None)
        if isinstance(kind, str):
            out["kind"] = kind
        for f in dataclasses.fields(obj):
            out[f.name] = to_data(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    return plain(obj)
