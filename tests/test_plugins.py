"""Third-party checks: the documented example in docs/plugins.md, installed as a real entry-point
plugin, runs in a CLI scan and reaches findings.json, scores.parquet and the HTML report."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import coco_images
from PIL import Image

from visionaudit.checks import REGISTRY, Check, register

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def doc_example() -> str:
    """The plugin module of docs/plugins.md (its first python block)."""
    block = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block, "docs/plugins.md lost its example"
    return block.group(1)


def install_plugin(site: Path, module: str, source: str, entry: str) -> None:
    """A minimal installed distribution: the module plus a dist-info with an entry point, as pip leaves it."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[visionaudit.checks]\n{entry}\n", encoding="utf-8")


def run_cli(args: list[str], site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "CI": "true"}
    return subprocess.run([sys.executable, "-c", "from visionaudit.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "data" / "thing"
    root.mkdir(parents=True)
    tiny = []
    for i, f in enumerate(coco_images()[:10]):
        im = Image.open(f).convert("RGB")
        if i in (2, 7):
            im = im.resize((48, 36))
            tiny.append(f"thing/{f.name}")
        im.save(root / f.name, quality=90)
    return root.parent, sorted(tiny)


def test_documented_plugin_runs_in_a_cli_scan(photos, tmp_path):
    root, tiny = photos
    site = tmp_path / "site"
    install_plugin(site, "acme_checks", doc_example(), "tiny_images = acme_checks:TinyImages")
    out = tmp_path / "out"
    res = run_cli(["scan", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--fail-on", "never"], site)
    assert res.returncode == 0, res.stderr + res.stdout

    findings = json.loads((out / "findings.json").read_text())["findings"]
    mine = [f for f in findings if f["check"] == "acme.tiny_images"]
    assert len(mine) == 1
    assert sorted(mine[0]["samples"]) == tiny
    assert mine[0]["severity"] == "warning" and mine[0]["family"] == "acme"
    assert mine[0]["thresholds"] == {"min_side": 64}

    scores = pd.read_parquet(out / "scores.parquet")
    flagged = scores.index[scores["is_tiny_images"]].tolist() if scores.index.name else \
        scores.loc[scores["is_tiny_images"], "sample_id"].tolist()
    assert sorted(flagged) == tiny
    assert scores["tiny_images_score"].between(0, 1).all()

    html = (out / "report.html").read_text()
    assert "Images too small to train on" in html
    assert all(Path(s).name in html for s in tiny)

    # a config judges the plugin's check like a built-in one
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("checks:\n  acme.tiny_images: {min_side: 20}\n")
    res = run_cli(["scan", str(root), "--out", str(tmp_path / "out2"), "--cache-dir", str(tmp_path / "cache"),
                   "--config", str(cfg), "--fail-on", "never"], site)
    assert res.returncode == 0, res.stderr
    findings = json.loads((tmp_path / "out2" / "findings.json").read_text())["findings"]
    assert not [f for f in findings if f["check"] == "acme.tiny_images"]


def test_broken_plugin_is_skipped_with_a_warning_naming_it(photos, tmp_path):
    root, _ = photos
    site = tmp_path / "site"
    install_plugin(site, "broken_checks", "raise RuntimeError('boom at import')\n", "broken = broken_checks:Nothing")
    res = run_cli(["scan", str(root), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                   "--fail-on", "never"], site)
    assert res.returncode == 0, res.stderr
    assert "broken" in res.stderr and "boom at import" in res.stderr
    assert (tmp_path / "out" / "findings.json").exists()


def test_register_refuses_incomplete_or_clashing_checks():
    class NoRun(Check):
        id, family, title, why, fix = "acme.no_run", "acme", "t", "w", "f"

    class BadId(Check):
        id, family, title, why, fix = "NoDots", "acme", "t", "w", "f"

        def run(self, ctx):
            return self.output()

    class NoWhy(BadId):
        id, why = "acme.no_why", ""

    class Clash(BadId):
        id = "quality.blurry"

    with pytest.raises(ValueError, match="run"):
        register(NoRun)
    with pytest.raises(ValueError, match="dotted"):
        register(BadId)
    with pytest.raises(ValueError, match="'why'"):
        register(NoWhy)
    with pytest.raises(ValueError, match="already taken"):
        register(Clash)
    with pytest.raises(TypeError):
        register(dict)
    assert "acme.no_run" not in REGISTRY and REGISTRY["quality.blurry"].__name__ == "Blurry"
