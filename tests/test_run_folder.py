"""Results round-trip: ``Result.from_dict(result.to_dict())`` is equal, the run folder (findings.json,
scores.parquet, features.parquet, thumbnails.parquet) loads back to an equal Result, ``visionaudit report``
re-renders it without the images, and the scores table ranks label issues as the Python API does."""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import mnist_arrays
from PIL import Image
from typer.testing import CliRunner

import visionaudit as va
from visionaudit.cli import app
from visionaudit.examples import make_example_dataset
from visionaudit.findings import Result, Severity
from visionaudit.report.run_folder import load_run

runner = CliRunner()


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    root = tmp_path_factory.mktemp("example")
    make_example_dataset(root / "data", seed=0)
    return root


def test_scan_and_evaluate_results_round_trip(example):
    cache = example / "cache"
    for result in (va.scan(example / "data", cache_dir=cache), va.evaluate(example / "data", embedder="builtin", cache_dir=cache)):
        again = Result.from_dict(result.to_dict())
        assert again == result
        assert again.issues.shape == result.issues.shape and len(again.findings) == len(result.findings) > 5
        changed = Result.from_dict(result.to_dict())
        changed.findings[0].scores[next(iter(changed.findings[0].scores), "x")] = 0.123456
        assert changed != result                                   # the comparison looks at the content
    assert again.stats["metrics"].equals(result.stats["metrics"])   # evaluate's tables come back as DataFrames


def test_run_folder_renders_again_without_images_and_judges_again(example, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(example / "data", data)
    out = tmp_path / "run"
    res = runner.invoke(app, ["scan", str(data), "--out", str(out), "--no-cache", "--fail-on", "never", "-q",
                              "--scores-csv", str(tmp_path / "scores.csv")])
    assert res.exit_code == 0, res.output
    result, thumbnails = load_run(out)
    fresh = va.scan(data, use_cache=False)
    assert replace(result, run_info=fresh.run_info) == fresh      # same findings and tables (timings aside)
    assert set(result.finding("blurry").samples) <= set(thumbnails)           # shown, so saved
    assert not set(result.finding("zero_byte").samples) & set(thumbnails)    # nothing to show
    csv = pd.read_csv(tmp_path / "scores.csv", index_col="sample_id")
    assert list(csv.index) == list(result.issues.index) and csv["blurry_score"].equals(result.issues["blurry_score"])
    original = (out / "report.html").read_text()
    shutil.rmtree(data)                                         # the report needs no image any more
    res = runner.invoke(app, ["report", str(out), "--html", str(tmp_path / "again.html"), "-q"])
    assert res.exit_code == 1                                   # the example has errors
    assert (tmp_path / "again.html").read_text() == original
    assert original.count("data:image/jpeg;base64,") >= 40
    # Judged again by other conditions: every error made info -> exit 0 at --fail-on error.
    errors = {f.check for f in result.findings if f.severity is Severity.ERROR}
    config = tmp_path / "lenient.yaml"
    config.write_text("checks:\n" + "".join(f"  {c}: {{severity: info}}\n" for c in sorted(errors)))
    res = runner.invoke(app, ["report", str(out), "--config", str(config), "--html", str(tmp_path / "j.html"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(tmp_path / "nowhere"), "-q"])
    assert res.exit_code == 2 and "findings.json" in res.output


def test_result_to_dict_fails_no_rounding_and_schema_version_is_checked(example):
    result = va.scan(example / "data", cache_dir=example / "cache")
    data = result.to_dict()
    data["schema_version"] = "2.0"
    with pytest.raises(ValueError, match="schema_version '2.0'"):
        Result.from_dict(data)


def test_conditions_judge_the_same_output_differently(example):
    result = va.scan(example / "data", cache_dir=example / "cache")
    blurry = result.finding("blurry")
    assert blurry.severity is Severity.WARNING and blurry.count >= 1
    tolerant = result.judged({"quality.blurry": {"max_count": blurry.count}})
    assert tolerant.finding("blurry").severity is Severity.INFO
    strict = result.judged({"quality.blurry": {"max_count": blurry.count - 1}})
    assert strict.finding("blurry").severity is Severity.WARNING
    assert result.judged({"quality.blurry": {"severity": "error"}}).finding("blurry").severity is Severity.ERROR
    assert result.finding("blurry").severity is Severity.WARNING         # the original is not changed
    # The same condition given to a run in its config: same judgement as judging afterwards.
    configured = va.scan(example / "data", cache_dir=example / "cache",
                         config={"checks": {"quality.blurry": {"max_count": blurry.count}}})
    assert configured.finding("blurry").severity is Severity.INFO
    assert configured.finding("blurry").check_severity is Severity.WARNING


def test_scores_parquet_ranks_mnist_label_issues_as_the_python_api(tmp_path):
    sklearn = pytest.importorskip("sklearn")
    pytest.importorskip("cleanlab")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    assert sklearn is not None
    n = 800
    images, truth = mnist_arrays(n)
    rng = np.random.default_rng(3)
    noisy = truth.astype(int)
    flipped = rng.choice(n, 40, replace=False)
    noisy[flipped] = (noisy[flipped] + rng.integers(1, 10, 40)) % 10
    ids = []
    for i, (img, label) in enumerate(zip(images, noisy)):
        (tmp_path / "digits" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "digits" / str(label) / f"{i:04d}.png")
        ids.append(f"{label}/{i:04d}.png")
    probs = cross_val_predict(LogisticRegression(C=0.05, max_iter=300), images.reshape(n, -1) / 255.0, noisy,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    preds = pd.DataFrame(probs, columns=[str(c) for c in range(10)])
    preds.insert(0, "sample_id", ids)
    preds.to_csv(tmp_path / "preds.csv", index=False)
    out = tmp_path / "run"
    res = runner.invoke(app, ["evaluate", str(tmp_path / "digits"), "--predictions", str(tmp_path / "preds.csv"),
                              "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--fail-on", "never", "-q"])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out / "scores.parquet")
    assert len(table) == n and {"label_issues_score", "is_label_issues"} <= set(table.columns)
    ranked = table.sort_values("label_issues_score", kind="stable")
    api = va.evaluate(tmp_path / "digits", tmp_path / "preds.csv", cache_dir=tmp_path / "cache")
    finding = api.finding("label_issues")
    flagged = ranked.index[ranked["is_label_issues"]].tolist()
    assert flagged == finding.samples                              # same set, same worst-first order
    assert ranked.index.tolist() == api.issues.sort_values("label_issues_score", kind="stable").index.tolist()
    hits = len(set(flagged[:40]) & {ids[i] for i in flipped})
    assert hits >= 25, hits                                        # the ranking finds the flipped digits


def test_object_and_prediction_scores_reach_the_result_and_the_run_folder(tmp_path):
    """A check that judges annotated objects and predicted ones: run_suite gives one row per object
    (unjudged objects unflagged), and both tables survive the round trips."""
    import json

    from conftest import coco_images

    from visionaudit.checks import REGISTRY, Check, register
    from visionaudit.findings import CheckOutput
    from visionaudit.report.run_folder import save_run

    images = tmp_path / "images"
    images.mkdir()
    files = [shutil.copyfile(f, images / f.name) for f in coco_images()[:3]]
    coco = {"images": [{"id": i + 1, "file_name": f.name, "width": Image.open(f).width, "height": Image.open(f).height}
                       for i, f in enumerate(files)],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": k + 1, "image_id": 1 + k % 3, "category_id": 1, "bbox": [5, 5, 10 + 40 * k, 20],
                             "area": (10 + 40 * k) * 20, "iscrowd": 0} for k in range(5)]}
    (tmp_path / "gt.json").write_text(json.dumps(coco))

    @register
    class WideBoxes(Check):
        id, family, title = "testing.wide_boxes", "testing", "Boxes wider than 100 px"
        why, fix = "A test check that scores objects by width.", "Nothing to fix: it is a test."

        def run(self, ctx) -> CheckOutput:
            out = self.output()
            objs = ctx.dataset.objects.set_index("object_id")
            judged = objs[objs["w"] > 20]                       # the narrowest box is not judged
            out.score("wide_box", (1 - judged["w"] / 1000).clip(0, 1), judged["w"] > 100, key="object_id")
            return out

    try:
        result = va.scan(tmp_path / "gt.json", images=images, cache_dir=tmp_path / "cache")
    finally:
        REGISTRY.pop("testing.wide_boxes")
    table = result.object_issues
    # annotation k is on image k % 3, k-th box 10 + 40k wide: image 0 has widths 10 and 130, ...
    assert sorted(table.index) == sorted(f"{f.name}#{i}" for f, n in zip(files, (2, 2, 1)) for i in range(n))
    assert sorted(table.index[table["is_wide_box"]]) == [f"{files[0].name}#1", f"{files[1].name}#1"]
    assert table["wide_box_score"].isna().tolist() == (table.index == f"{files[0].name}#0").tolist()
    assert result.prediction_issues is None

    ids = pd.Index(["a.jpg#p0", "a.jpg#p1"], name="prediction_id")
    result = replace(result, prediction_issues=pd.DataFrame({"is_unmatched": [True, False],
                                                             "unmatched_score": [0.05, 0.9]}, index=ids))
    assert Result.from_dict(result.to_dict()) == result
    save_run(result, tmp_path / "run")
    again, _ = load_run(tmp_path / "run")
    assert again == result and again.prediction_issues["is_unmatched"].tolist() == [True, False]
    save_run(replace(result, prediction_issues=None), tmp_path / "run")
    assert not (tmp_path / "run" / "prediction_scores.parquet").exists()
