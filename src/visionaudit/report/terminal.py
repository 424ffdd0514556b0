"""The terminal summary: one line per finding, worst first; on a narrow terminal (under
:data:`TABLE_WIDTH` columns), each finding's check on one line and its message wrapped below it."""
from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from ..findings import Finding, Result
from .format import run_time

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
#: Messages listing many classes or splits are cut here; the HTML report and JSON have them whole.
MAX_MESSAGE = 220


def _short(text: str) -> str:
    """``text`` cut to MAX_MESSAGE and escaped: a message is data (file and class names, the
    ``pip install 'visionaudit[evaluate]'`` of a missing extra), never rich markup."""
    return escape(text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1].rstrip() + "…")


#: Width of the summary when stdout is not a terminal (a CI log, a pipe) and $COLUMNS is unset: rich's
#: default of 80 folds each message over several lines of a 5-column table.
LOG_WIDTH = 140


def _console() -> Console:
    console = Console(stderr=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = LOG_WIDTH
    return console


def print_summary(result: Result, console: Console | None = None) -> None:
    console = console or _console()
    ds = result.dataset_summary
    run = result.run_info
    splits = ds["splits"]
    splits = ", ".join(f"{k} {v}" for k, v in splits.items()) if isinstance(splits, dict) else (splits or "")
    console.print(f"[bold]visionaudit {run.get('job', 'scan')}[/bold] {escape(str(ds['source']))}  ({ds['format']}, {ds['samples']} samples, "
                  f"splits: {splits or 'none'})")
    took = run_time(run)
    console.print(f"decoded {run.get('images_decoded', 0)} image(s), {run.get('images_from_cache', 0)} from cache"
                  + (f"; took {took}" if took else ""))
    if run.get("predictions"):
        console.print(f"predictions: {escape(str(run['predictions'].get('source') or run['predictions'].get('path')))}")
    if not result.findings:
        console.print("[green]No findings.[/green]")
        return
    findings = sorted(result.findings, key=lambda f: (-f.severity.rank, f.check, f.issue))
    if console.width < TABLE_WIDTH:
        _print_list(findings, console)
        return
    table = Table(show_lines=False)
    for col in ("severity", "check", "issue", "count", "message"):
        table.add_column(col, overflow="fold")
    for f in findings:
        table.add_row(f"[{_STYLE[f.severity.value]}]{f.severity.value}[/]", escape(f.check), escape(f.issue), str(f.count) if f.count else "–", _short(f.message))
    console.print(table)


#: Narrower terminals get the list of :func:`_print_list`: a 5-column table there wraps its check ids
#: and messages a word (or a piece of one) per line.
TABLE_WIDTH = 120


def _print_list(findings: list[Finding], console: Console) -> None:
    """Per finding: severity, check (and issue, where the check reports several), count on one line;
    the message below it, indented, wrapped at word boundaries."""
    for f in findings:
        name = f.check if f.check.rsplit(".", 1)[-1] == f.issue else f"{f.check}: {f.issue}"
        count = f"  ({f.count})" if f.count else ""
        console.print(f"[{_STYLE[f.severity.value]}]{f.severity.value.upper():<7}[/] [bold]{escape(name)}[/bold]{count}",
                      overflow="fold")
        console.print(Padding(_short(f.message), (0, 0, 0, 8)), overflow="fold")
