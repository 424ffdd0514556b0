"""Every mistake caught before the work, never a traceback (issue 9, section 3).

A bad config, an output that cannot be written or a bad argument ends in exit 2 with a message naming
the key or option and what it accepts, before any image is decoded: the feature pass is replaced by one
that fails the test, and no feature cache and no run folder are written.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import coco_images
from typer.testing import CliRunner

import visionaudit as va
import visionaudit.analyses
from visionaudit.cli import app
from visionaudit.errors import SourceError

runner = CliRunner()


def _plain(text: str) -> str:
    """The CLI's output on one line: rich folds long messages at the terminal width."""
    return re.sub(r"\s+", " ", text)


def _dataset(root: Path, classes: tuple[str, ...] = ("thing",), per_class: int = 6) -> Path:
    files = coco_images("train2017")
    for c, name in enumerate(classes):
        for split, chunk in (("train", files[c * per_class: c * per_class + per_class - 2]),
                             ("val", files[c * per_class + per_class - 2: (c + 1) * per_class])):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for f in chunk:
                shutil.copyfile(f, root / split / name / f.name)
    return root


@pytest.fixture
def no_decode(monkeypatch):
    """Fail the test if the run reaches the decode pass."""
    def decode(*args, **kwargs):
        raise AssertionError("the decode pass ran")
    monkeypatch.setattr(visionaudit.analyses, "compute_features", decode)


def _config(tmp_path: Path, text: str, suffix: str = ".yaml") -> Path:
    path = tmp_path / f"suite{suffix}"
    path.write_text(text)
    return path


# (config, the words the message must hold: the field, and what it accepts or the closest name)
CONFIG_MISTAKES = {
    "severity_critical": ("checks:\n  quality.blurry: {severity: critical}\n",
                          ["checks.quality.blurry.severity", "'critical'", "error", "warning", "info"]),
    "misspelt_setting": ("checks:\n  quality.blurry: {abslute: 1.0}\n",
                         ["checks.quality.blurry.abslute", "did you mean 'absolute'?", "absolute, enabled, floor"]),
    "string_for_number": ("checks:\n  quality.dark: {floor: high}\n",
                          ["checks.quality.dark.floor", "'high'", "a number (default 0.35)"]),
    "misspelt_check": ("checks:\n  quality.blury: {enabled: false}\n",
                       ["checks.quality.blury", "did you mean 'quality.blurry'?"]),
    "misspelt_top_level_key": ("check:\n  quality.blurry: {enabled: false}\n",
                               ["'check'", "did you mean 'checks'?", "checks and group_columns"]),
    "enabled_not_boolean": ("checks:\n  duplicates.near: {enabled: 'no'}\n",
                            ["checks.duplicates.near.enabled", "true or false"]),
    "confidence_out_of_range": ("checks:\n  balance.split_label_shift: {alpha: 1.5}\n",
                                ["checks.balance.split_label_shift.alpha", "strictly between 0 and 1"]),
    "integer_setting_as_float": ("checks:\n  balance.outliers: {neighbours: 2.5}\n",
                                 ["checks.balance.outliers.neighbours", "an integer of at least 1"]),
    "negative_max_count": ("checks:\n  quality.dark: {max_count: -1}\n",
                           ["checks.quality.dark.max_count", "non-negative integer"]),
    "group_columns_not_a_list": ("group_columns: 3\n", ["group_columns", "list of column names"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_MISTAKES))
def test_config_mistake_exits_2_naming_the_key_before_any_decode(case, tmp_path, no_decode):
    text, words = CONFIG_MISTAKES[case]
    root = _dataset(tmp_path / "data")
    cache, out = tmp_path / "cache", tmp_path / "out"
    res = runner.invoke(app, ["scan", str(root), "--config", str(_config(tmp_path, text)), "--out", str(out),
                              "--cache-dir", str(cache), "--quiet"])
    message = _plain(res.output)
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output and "suite.yaml" in message
    for word in words:
        assert word in message, (word, message)
    assert not cache.exists() and not out.exists()


def test_config_mistakes_in_json_and_in_evaluate_and_report(tmp_path, no_decode, monkeypatch):
    root = _dataset(tmp_path / "data", classes=("a", "b"))
    config = _config(tmp_path, json.dumps({"checks": {"labels.label_issues": {"filter_by": "best"}}}), ".json")
    res = runner.invoke(app, ["evaluate", str(root), "--config", str(config), "--out", str(tmp_path / "out"),
                              "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert res.exit_code == 2, res.output
    message = _plain(res.output)
    assert "checks.labels.label_issues.filter_by" in message and "prune_by_noise_rate" in message
    config = _config(tmp_path, "checks:\n  baselines.property_shortcut: {folds: one}\n")
    res = runner.invoke(app, ["evaluate", str(root), "--config", str(config), "--out", str(tmp_path / "out"),
                              "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert res.exit_code == 2 and "an integer of at least 2" in _plain(res.output), res.output
    assert not (tmp_path / "cache").exists()
    # `visionaudit report RUN_DIR --config` judges a saved run: the same mistakes, the same errors
    monkeypatch.undo()
    out = tmp_path / "run"
    assert runner.invoke(app, ["scan", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "c2"),
                               "--quiet", "--fail-on", "never"]).exit_code == 0
    res = runner.invoke(app, ["report", str(out), "--config", str(_config(tmp_path, "checks:\n  quality.dark: "
                                                                                     "{severity: critical}\n"))])
    assert res.exit_code == 2 and "error, warning, info" in _plain(res.output), res.output


def test_python_api_validates_a_config_dict_before_any_decode(tmp_path, no_decode):
    root = _dataset(tmp_path / "data")
    for config, field in (({"checks": {"quality.blurry": {"severity": "critical"}}}, "checks.quality.blurry.severity"),
                          ({"checks": {"quality.dark": {"floor": "high"}}}, "checks.quality.dark.floor"),
                          ({"checks": {"quality.blurry": {"treshold": 1}}}, "checks.quality.blurry.treshold")):
        with pytest.raises(SourceError) as info:
            va.scan(root, config=config, cache_dir=tmp_path / "cache")
        assert info.value.field == field
        with pytest.raises(SourceError):
            va.evaluate(root, config=config, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_valid_config_is_read_case_insensitively_and_still_judges(tmp_path):
    root = _dataset(tmp_path / "data")
    (root / "train" / "thing" / "empty.jpg").write_bytes(b"")
    config = _config(tmp_path, "checks:\n  integrity.decode_errors: {severity: WARNING}\n  balance.outliers: {}\n")
    res = runner.invoke(app, ["scan", str(root), "--config", str(config), "--out", str(tmp_path / "out"),
                              "--cache-dir", str(tmp_path / "cache"), "--quiet", "--fail-on", "ERROR"])
    assert res.exit_code == 0, res.output  # the zero-byte file is judged a warning, below --fail-on ERROR
    res = runner.invoke(app, ["report", str(tmp_path / "out"), "--quiet", "--fail-on", "Warning"])
    assert res.exit_code == 1, res.output


# --- output paths ---------------------------------------------------------------------------------

def _unwritable_outputs(tmp_path: Path) -> dict[str, tuple[list[str], list[str]]]:
    a_file = tmp_path / "taken.txt"
    a_file.write_text("user data")
    a_folder = tmp_path / "folder"
    a_folder.mkdir()
    cases = {
        "out_is_a_file": (["--out", str(a_file)], ["--out", "existing file", "give a folder"]),
        "out_under_a_file": (["--out", str(a_file / "run")], ["--out", "is a file, not a folder"]),
        "junit_is_a_folder": (["--out", str(tmp_path / "o"), "--junit", str(a_folder)], ["--junit", "is a folder"]),
        "scores_csv_under_a_file": (["--out", str(tmp_path / "o"), "--scores-csv", str(a_file / "s.csv")],
                                    ["--scores-csv", "is a file, not a folder"]),
    }
    if sys.platform.startswith("linux"):  # a place nobody can create a folder in, root included
        cases["out_unwritable"] = (["--out", "/proc/visionaudit-run"], ["--out", "cannot write in"])
    return cases


@pytest.mark.parametrize("job", ["scan", "evaluate"])
def test_output_that_cannot_be_written_exits_2_before_any_decode(job, tmp_path, no_decode):
    root = _dataset(tmp_path / "data", classes=("a", "b"))
    for name, (args, words) in _unwritable_outputs(tmp_path).items():
        res = runner.invoke(app, [job, str(root), "--cache-dir", str(tmp_path / "cache"), "--quiet", *args])
        assert res.exit_code == 2, (name, res.output, res.exception)
        message = _plain(res.output)
        assert "Traceback" not in message and all(w in message for w in words), (name, message)
    assert (tmp_path / "taken.txt").read_text() == "user data"
    assert not (tmp_path / "cache").exists() and not (tmp_path / "o").exists()


def test_output_folders_that_do_not_exist_yet_are_made(tmp_path):
    root = _dataset(tmp_path / "data")
    out = tmp_path / "new" / "run"
    res = runner.invoke(app, ["scan", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet",
                              "--junit", str(tmp_path / "ci" / "junit.xml"),
                              "--scores-csv", str(tmp_path / "tables" / "scores.csv")])
    assert res.exit_code == 0, res.output
    assert (out / "findings.json").exists() and (tmp_path / "ci" / "junit.xml").exists()
    assert (tmp_path / "tables" / "scores.csv").exists()


# --- arguments ------------------------------------------------------------------------------------

def test_bad_arguments_exit_2_before_any_decode(tmp_path, no_decode):
    root = _dataset(tmp_path / "data", classes=("a", "b"))
    common = ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    for args, words in ((["scan", str(root), "--workers", "0"], ["--workers"]),
                        (["evaluate", str(root), "--workers", "0"], ["--workers"]),
                        (["evaluate", str(root), "--folds", "1"], ["--folds"]),
                        (["evaluate", str(root), "--embedder", "clip"], ["embedder", "builtin", "pretrained", "onnx"]),
                        (["scan", str(root), "--fail-on", "sometimes"], ["--fail-on", "error, warning or never"])):
        res = runner.invoke(app, [*args, *common])
        assert res.exit_code == 2, (args, res.output, res.exception)
        assert all(w in _plain(res.output) for w in words), (args, res.output)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"visionaudit {va.__version__}"


def test_every_job_has_workers_no_cache_and_junit_and_the_embedder_help_lists_its_values(monkeypatch):
    from visionaudit.features.embedders import EMBEDDERS

    monkeypatch.setenv("COLUMNS", "250")
    for job in ("scan", "evaluate"):
        text = runner.invoke(app, [job, "--help"]).output
        for option in ("--workers", "--no-cache", "--junit", "--cache-dir", "--fail-on"):
            assert option in text, (job, option)
    assert "--junit" in runner.invoke(app, ["report", "--help"]).output
    text = _plain(runner.invoke(app, ["evaluate", "--help"]).output)
    for scheme in EMBEDDERS:
        assert re.search(rf"\b{scheme}\b", text), scheme


def test_evaluate_with_no_cache_workers_and_junit(tmp_path):
    root = _dataset(tmp_path / "data", classes=("a", "b"))
    cache, junit = tmp_path / "cache", tmp_path / "junit.xml"
    res = runner.invoke(app, ["evaluate", str(root), "--out", str(tmp_path / "out"), "--cache-dir", str(cache),
                              "--no-cache", "--workers", "1", "--junit", str(junit), "--quiet", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    assert not cache.exists() and junit.read_text().startswith("<?xml")
    run_info = json.loads((tmp_path / "out" / "findings.json").read_text())["run"]
    assert run_info["images_decoded"] == 12 and run_info["images_from_cache"] == 0


# --- nothing decodes ------------------------------------------------------------------------------

def test_a_folder_of_only_corrupt_files_is_findings_not_a_crash(tmp_path):
    """``balance.outliers`` and every other check run on a dataset where no image decodes (truncated
    COCO JPEGs and files that are not images at all): decode errors are the findings, no check fails."""
    root = tmp_path / "data"
    for i, f in enumerate(coco_images("train2017")[:10]):
        for name in ("a", "b"):
            (root / name).mkdir(parents=True, exist_ok=True)
        data = f.read_bytes()
        (root / "a" / f.name).write_bytes(data[:600])
        (root / "b" / f"not_an_image_{i}.png").write_bytes(b"not an image " * (i + 1))
    out = tmp_path / "out"
    res = runner.invoke(app, ["scan", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert res.exit_code == 1, res.output  # decode errors are errors
    doc = json.loads((out / "findings.json").read_text())
    assert not [f for f in doc["findings"] if f["issue"] == "check_failed"], doc["findings"]
    broken = {s for f in doc["findings"] if f["check"] == "integrity.decode_errors" for s in f["samples"]}
    assert len(broken) == 20
    assert "balance.outliers" in doc["run"]["check_seconds"]
    res = runner.invoke(app, ["evaluate", str(root), "--out", str(tmp_path / "eval"),
                              "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert res.exit_code == 2 and "decoded" in _plain(res.output), res.output
