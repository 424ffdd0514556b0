"""Report views: each finding turned into typed blocks (tables, galleries, histograms, charts,
verdicts) that the HTML report and a dashboard both render.

One module per check family (quality, integrity, duplicates and leakage, balance, labels, errors,
segments, baselines, evaluation, compare, hygiene) registers its views with :func:`register_view`,
by check id or family; any other finding, a plugin check's included, is drawn by
:func:`generic_view`. :func:`build_report` gives the whole report as a :class:`ReportView`;
:func:`to_data` makes any of it JSON-ready.

>>> from visionaudit.findings import Finding, Result, Severity
>>> import pandas as pd
>>> f = Finding(check="acme.tiny", issue="tiny", family="acme", title="Tiny", severity=Severity.WARNING,
...             message="1 tiny image", samples=["a.jpg"], scores={"a.jpg": 0.1})
>>> result = Result([f], pd.DataFrame(), pd.DataFrame(), {}, {})
>>> [b["kind"] for b in to_data(build_report(result))["findings"][0]["blocks"]]
['gallery']
"""
from .base import ViewContext, generic_view
from .blocks import to_data
from .page import FindingView, ReportView, build_report
from .registry import register_view, view_for

__all__ = [
           "FindingView",
           "ReportView",
           "ViewContext",
           "build_report",
           "generic_view",
           "register_view",
           "to_data",
           "view_for",
]
