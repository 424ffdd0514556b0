"""The scan command as CI uses it: exit codes, outputs, clean manifest, bad arguments."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from conftest import coco_images
from typer.testing import CliRunner

from visionaudit.cli import app

runner = CliRunner()


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    files = coco_images("train2017")[:12]
    for split, chunk in (("train", files[:8]), ("val", files[8:])):
        (root / split / "thing").mkdir(parents=True)
        for f in chunk:
            shutil.copyfile(f, root / split / "thing" / f.name)
    (root / "train" / "thing" / "empty.jpg").write_bytes(b"")
    data = files[0].read_bytes()
    (root / "val" / "thing" / "cut.jpg").write_bytes(data[: len(data) // 2])
    return root


def test_scan_writes_reports_and_exit_code_follows_fail_on(tmp_path):
    root = _dataset(tmp_path)
    out = tmp_path / "out"
    args = ["scan", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    doc = json.loads((out / "findings.json").read_text())
    bad = {f["issue"]: f["samples"] for f in doc["findings"] if f["severity"] == "error"}
    assert bad["zero_byte"] == ["train/thing/empty.jpg"]
    assert bad["truncated"] == ["val/thing/cut.jpg"]
    assert (out / "report.html").stat().st_size > 1000
    assert runner.invoke(app, args + ["--fail-on", "never"]).exit_code == 0


def test_clean_manifest_drops_unusable_files_and_never_overwrites_input(tmp_path):
    root = _dataset(tmp_path)
    manifest = tmp_path / "clean.csv"
    res = runner.invoke(app, ["scan", str(root), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"),
                              "--quiet", "--fail-on", "never", "--write-clean-manifest", str(manifest)])
    assert res.exit_code == 0, res.output
    kept = pd.read_csv(manifest)
    dropped = pd.read_csv(tmp_path / "clean.dropped.csv")
    assert set(dropped["sample_id"]) == {"train/thing/empty.jpg", "val/thing/cut.jpg"}
    assert set(dropped["reason"]) == {"zero_byte", "truncated"}
    assert len(kept) == 12 and not set(kept["sample_id"]) & set(dropped["sample_id"])
    src = tmp_path / "m.csv"
    kept.to_csv(src, index=False)
    before = src.read_bytes()
    res = runner.invoke(app, ["scan", str(src), "--out", str(tmp_path / "o2"), "--cache-dir", str(tmp_path / "c"),
                              "--quiet", "--write-clean-manifest", str(src)])
    assert res.exit_code == 2 and "never overwrites" in res.output
    assert src.read_bytes() == before


def test_bad_arguments_exit_2_with_a_message(tmp_path):
    res = runner.invoke(app, ["scan", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "nope" in res.output
    res = runner.invoke(app, ["scan", str(tmp_path), "--fail-on", "sometimes"])
    assert res.exit_code == 2 and "--fail-on" in res.output
    root = _dataset(tmp_path)
    res = runner.invoke(app, ["scan", str(root), "--group-column", "patient", "--cache-dir", str(tmp_path / "c"),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "patient" in res.output


def test_summary_in_a_log_keeps_each_finding_on_a_line_or_two(tmp_path, monkeypatch):
    # CI logs are not terminals: rich would lay the table out 80 characters wide and fold every
    # message over four or five lines.
    monkeypatch.delenv("COLUMNS", raising=False)
    root = _dataset(tmp_path)
    res = runner.invoke(app, ["scan", str(root), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"),
                              "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) > 100
    row = next(i for i, line in enumerate(lines) if "zero_byte" in line)
    assert "file(s) are empty (0 bytes)." in lines[row]


def test_missing_extra_message_names_the_extra(monkeypatch):
    # rich reads "[evaluate]" as a style tag and printed "pip install 'visionaudit'"; a message is data.
    import sys

    from rich.console import Console

    from visionaudit.checks import labels
    from visionaudit.findings import Finding, Result, Severity
    from visionaudit.report.terminal import print_summary

    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)
    try:
        labels._cleanlab()
    except ImportError as exc:
        message = f"{type(exc).__name__}: {exc}"
    finding = Finding(check="label_issues", issue="check_failed", family="labels", title="Check label_issues failed",
                      severity=Severity.ERROR, message=message)
    result = Result(findings=[finding], issues=pd.DataFrame(), features=pd.DataFrame(),
                    dataset_summary={"source": "data[1]", "format": "folder", "samples": 1, "splits": {}},
                    run_info={"images_decoded": 1, "images_from_cache": 0, "seconds": 0.1})
    console = Console(record=True, width=300)
    print_summary(result, console)
    text = console.export_text()
    assert "pip install 'visionaudit[evaluate]'" in text
    assert "data[1]" in text
