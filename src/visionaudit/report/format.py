"""How numbers read in the report: one formatter for views (a table cell's text, a tile's value) and
renderers (an axis tick), so the page, the dashboard and the chart labels agree.

>>> fmt_num(1234.5), fmt_num(0.012345), fmt_num(12.34), fmt_num(3.0)
('1,234', '0.0123', '12.3', '3')
>>> with_ci(0.8, 0.75, 0.85), pct(0.1234), p_value(0.000472)
('0.800 [0.750, 0.850]', '12.3%', '0.00047')
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

#: Metric names of the evaluation findings' evidence keys, in the user's words.
_METRIC_NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "f1_macro": "macro F1",
                 "f1_micro": "micro F1", "precision_macro": "macro precision", "recall_macro": "macro recall",
                 "roc_auc_macro": "macro ROC-AUC", "pr_auc_macro": "macro PR-AUC", "log_loss": "log-loss", "ece": "ECE"}


def is_number(value: Any) -> bool:
    """A real number (numpy's included), not a bool."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def num_or_nan(value: Any) -> float:
    return float(value) if is_number(value) else math.nan


def fmt_num(value: Any) -> str:
    """A number as a person reads it: thousands separators, about three significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def fmt_value(value: Any) -> str:
    """Any evidence value as text: numbers by :func:`fmt_num`, lists and dicts item by item."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v) for v in value)
    if is_number(value):
        return fmt_num(value)
    return "none" if value is None else str(value)


def _finite(value: float, spec: str, suffix: str = "") -> str:
    return format(value, spec) + suffix if math.isfinite(value) else "n/a"


def f3(value: Any) -> str:
    return _finite(num_or_nan(value), ".3f")


def signed(value: Any) -> str:
    return _finite(num_or_nan(value), "+.3f")


def with_ci(value: Any, low: Any, high: Any, fmt: Callable[[Any], str] = f3) -> str:
    """``value [low, high]``, or the value alone when the interval is not known."""
    text = fmt(value)
    if math.isfinite(num_or_nan(low)) and math.isfinite(num_or_nan(high)):
        text += f" [{fmt(low)}, {fmt(high)}]"
    return text


def pct(value: Any) -> str:
    return _finite(100 * num_or_nan(value), ".1f", "%")


def p_value(value: Any) -> str:
    return _finite(num_or_nan(value), ".2g")


def level(confidence: Any) -> str:
    """A confidence level as a whole percentage: 0.95 -> '95%'."""
    return f"{100 * float(confidence):.0f}%"


def cut_start(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut at its start so that its end (a path's file name)
    stays: an ellipsis, then from the first folder boundary in what fits.

    >>> cut_start("datasets/coco/images/train2017/000000000009.jpg", 32)
    '…/train2017/000000000009.jpg'
    >>> cut_start("a_very_long_file_name_with_no_folders.jpg", 16), cut_start("short.jpg", 16)
    ('…_no_folders.jpg', 'short.jpg')
    """
    if len(text) <= limit:
        return text
    tail = text[len(text) - (limit - 1):]
    cut = tail.find("/")
    if 0 <= cut < len(tail) // 2:
        tail = tail[cut:]
    return "…" + tail


#: Stages of a run in the order they run (``run_info["stage_seconds"]``); shorter ones are not named.
STAGES = ("load", "decode", "embedding", "cross-validation", "predictions", "checks", "stats")
_SHORTEST_STAGE = 0.05


def seconds(value: Any) -> str:
    """A duration: '0.4 s', '12.3 s', '7 min 5 s'."""
    v = num_or_nan(value)
    if not math.isfinite(v):
        return "n/a"
    if v < 100:
        return f"{v:.1f} s"
    minutes, secs = divmod(round(v), 60)
    return f"{minutes} min {secs} s"


def run_time(run: dict[str, Any]) -> str | None:
    """How long a run took, whole and by stage (those of 0.05 s or more), from its ``run_info``; a run
    saved before stages were recorded names its decode pass and its checks.

    >>> run_time({"seconds": 4.23, "stage_seconds": {"load": 0.01, "decode": 2.9, "predictions": 0.0, "checks": 1.2}})
    '4.2 s (decode 2.9 s, checks 1.2 s)'
    >>> run_time({"seconds": 423.5, "feature_seconds": 3.1, "check_seconds": {"a": 400.0, "b": 0.5}})
    '7 min 4 s (decode 3.1 s, checks 6 min 40 s)'
    """
    total = run.get("seconds")
    if not is_number(total):
        return None
    stages = run.get("stage_seconds")
    if not isinstance(stages, dict):
        checks = run.get("check_seconds")
        stages = {"decode": run.get("feature_seconds"),
                  "checks": sum(v for v in checks.values() if is_number(v)) if isinstance(checks, dict) else None}
    order = [k for k in STAGES if k in stages] + [k for k in stages if k not in STAGES]
    parts = [f"{k} {seconds(stages[k])}" for k in order if is_number(stages[k]) and stages[k] >= _SHORTEST_STAGE]
    return seconds(total) + (f" ({', '.join(parts)})" if parts else "")


def metric_name(key: str) -> str:
    """An evidence key's metric in words: ``f1_macro`` -> 'macro F1', ``top_5_accuracy`` -> 'top-5 accuracy'."""
    if key.startswith("top_") and key.endswith("_accuracy"):
        return f"top-{key[4:-9]} accuracy"
    return _METRIC_NAMES.get(key, key.replace("_", " "))
