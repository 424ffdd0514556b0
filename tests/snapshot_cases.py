"""The findings of today's checks on fixed data, for the behaviour snapshot (tests/test_snapshot.py).

Each case builds its data from a seed (the example dataset; 600 benchmark images cut from COCO128;
seeded predictions for the example) and runs the Python API. :func:`digest` keeps what a refactor
must not change: every finding's check, issue, severity, message, samples, per-sample scores, groups
and evidence. ``python tests/snapshot_cases.py`` rewrites ``tests/snapshots/findings.json``; do that
only in a commit of its own that says why the findings changed.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "findings.json"
SHARED_COCO = ROOT.parent / "shared" / "data" / "coco128" / "images"
BENCH_IMAGES = 600


def _plain(value: Any, work: str) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v, work) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, work) for v in value]
    if isinstance(value, str):
        return value.replace(work, "<work>")
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) else f
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), work)
    if isinstance(value, pd.DataFrame):
        return _plain(value.to_dict(orient="records"), work)
    return value


def digest(result: Any, work: Path) -> list[dict[str, Any]]:
    """The findings of ``result`` as plain data, in a fixed order (check, issue), with the data
    folder ``work`` written as ``<work>`` in every text (group members carry their paths)."""
    out = []
    for f in sorted(result.findings, key=lambda f: (f.check, f.issue)):
        evidence = {k: v for k, v in (f.evidence or {}).items() if k != "traceback"}
        out.append(_plain({"check": f.check, "issue": f.issue, "severity": f.severity.value, "message": f.message,
                           "samples": list(f.samples), "scores": dict(f.scores), "groups": f.groups,
                           "evidence": evidence}, str(work)))
    return out


def score_digest(result: Any) -> dict[str, Any]:
    """The per-sample scores table (``Result.issues``): sample ids, and per issue the flagged ids and
    every sample's score (None where the issue did not judge it)."""
    table = result.issues
    out: dict[str, Any] = {"sample_ids": [str(s) for s in table.index]}
    for col in sorted(table.columns):
        values = table[col]
        if col.startswith("is_"):
            out[col] = [str(s) for s in values.index[values.fillna(False).astype(bool)]]
        else:
            out[col] = [None if pd.isna(v) else float(v) for v in values]
    return out


def example_predictions(dataset_root: Path, out: Path) -> Path:
    """Seeded probabilities for the example data: right with p 0.8, confidence drawn per sample."""
    from visionaudit.dataset import load_dataset

    samples = load_dataset(dataset_root).samples
    labelled = samples[samples["label"].notna()]
    classes = sorted(labelled["label"].unique())
    rng = np.random.default_rng(0)
    rows = []
    for sid, label in zip(labelled["sample_id"], labelled["label"]):
        k = classes.index(label) if rng.random() < 0.8 else int(rng.integers(len(classes)))
        p = rng.dirichlet(np.ones(len(classes)) * 0.5)
        p = 0.4 * p + 0.6 * np.eye(len(classes))[k]
        rows.append({"sample_id": sid, **{c: float(v) for c, v in zip(classes, p)}})
    path = out / "preds.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def run_cases(work: Path) -> dict[str, dict[str, Any]]:
    """Every case's findings and scores digests; ``work`` is an empty folder for the data and the caches."""
    import visionaudit as va
    from visionaudit.examples import make_example_dataset

    data = work / "example"
    make_example_dataset(data, seed=0)
    opts = {"cache_dir": work / "cache", "workers": 2}

    def both(result: Any) -> dict[str, Any]:
        return {"findings": digest(result, work), "scores": score_digest(result)}

    cases = {"scan_example": both(va.scan(data, **opts)), "evaluate_example_crossval": both(va.evaluate(data, embedder="builtin", **opts))}
    preds = example_predictions(data, work)
    cases["evaluate_example_predictions"] = both(va.evaluate(data, preds, **opts))
    if SHARED_COCO.exists():
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from make_bench_data import build

        info = build(work / "bench", BENCH_IMAGES, seed=0, workers=2, verbose=False)
        cases["scan_bench600"] = both(va.scan(info["images_dir"], **opts))
    return cases


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cases = run_cases(Path(tmp))
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}: " + ", ".join(f"{k} {len(v['findings'])} findings" for k, v in cases.items()))
