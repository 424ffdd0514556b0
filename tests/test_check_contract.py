"""One contract for every registered check, built-in or plugin: an id, a family, why/fix texts, and a
run(ctx) that returns a CheckOutput whose findings and scores are well formed, on an empty dataset, a
one-image dataset and a small real one (with predictions and a second model, so the evaluate checks
run too). Per-check behaviour is tested in each family's own test file."""
from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import coco_images

from visionaudit.checks import BUILTIN_CHECKS, registry
from visionaudit.context import Context
from visionaudit.dataset import read_folder
from visionaudit.dataset.model import SAMPLE_COLUMNS, Dataset, Task
from visionaudit.findings import CheckOutput, Finding, Severity
from visionaudit.predictors import Predictions
from visionaudit.suites import SUITES

CHECKS = sorted(registry().items())


def _predictions(dataset: Dataset, classes: list[str], seed: int) -> Predictions:
    rng = np.random.default_rng(seed)
    ids = dataset.samples["sample_id"].astype(str).tolist()
    probs = rng.dirichlet(np.ones(len(classes)), size=len(ids)) if ids else np.zeros((0, len(classes)))
    # mostly right, so the metrics are not degenerate
    labels = dataset.samples["label"].tolist()
    for i, label in enumerate(labels):
        if label in classes and rng.random() < 0.7:
            probs[i] = 0.1 / max(len(classes) - 1, 1)
            probs[i, classes.index(label)] = 0.9
    return Predictions(classes, probs, ids, source=f"seed{seed}")


def _context(dataset: Dataset, tmp_path, name: str) -> Context:
    classes = sorted({str(x) for x in dataset.samples["label"].dropna()} | {"cat", "dog"})  # a model has 2+ classes
    return Context(dataset, predictions=_predictions(dataset, classes, 0), compare=_predictions(dataset, classes, 1),
                   feature_options={"cache_dir": tmp_path / f"cache-{name}", "workers": 1, "progress": False})


@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> dict[str, Context]:
    tmp = tmp_path_factory.mktemp("contract")
    files = coco_images()[:24]
    real = tmp / "real"
    for i, f in enumerate(files):
        split = ("train", "train", "val", "test")[i % 4]
        label = ("cat", "dog")[(i // 4) % 2]
        (real / split / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, real / split / label / f.name)
    (real / "train" / "cat" / "broken.jpg").write_bytes(files[0].read_bytes()[:500])
    one = tmp / "one" / "cat"
    one.mkdir(parents=True)
    shutil.copyfile(files[0], one / files[0].name)
    empty = Dataset(pd.DataFrame({c: pd.Series(dtype=object) for c in SAMPLE_COLUMNS}), source="(empty)", format="folder")
    return {"empty": _context(empty, tmp, "empty"), "one": _context(read_folder(one.parent), tmp, "one"),
            "real": _context(read_folder(real), tmp, "real")}


#: The families that judge a model's predictions: their checks run in evaluate, never in scan.
MODEL_FAMILIES = {"evaluation", "labels", "segments", "baselines", "errors"}


def test_registry_holds_every_builtin_check_once_in_its_suite():
    assert len(CHECKS) >= len(BUILTIN_CHECKS) == len({c.id for c in BUILTIN_CHECKS}) == 39
    for cls in BUILTIN_CHECKS:
        assert registry()[cls.id] is cls
        expected = ["evaluate"] if cls.family in MODEL_FAMILIES else ["scan"]
        assert [s for s in SUITES if cls.id in SUITES[s]] == expected, cls.id


@pytest.mark.parametrize(("cid", "cls"), CHECKS, ids=[c for c, _ in CHECKS])
def test_check_declares_what_it_is(cid, cls):
    assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", cid) and cls.id == cid
    assert cid.split(".")[0] == cls.family
    for text in (cls.title, cls.why, cls.fix):
        assert isinstance(text, str) and len(text.strip()) > 10, f"{cid}: title/why/fix must say something"
    assert isinstance(cls.severity, Severity)
    assert cls.suites and all(s in ("scan", "evaluate") for s in cls.suites)
    assert all(t in {x.value for x in Task} for t in cls.tasks)
    cls(**cls.defaults)                      # its own defaults are accepted settings
    with pytest.raises(ValueError, match=cid):
        cls(no_such_setting=1)


@pytest.mark.parametrize("case", ["empty", "one", "real"])
@pytest.mark.parametrize(("cid", "cls"), CHECKS, ids=[c for c, _ in CHECKS])
def test_check_output_is_well_formed(cid, cls, case, contexts):
    ctx = contexts[case]
    out = cls().run(ctx)
    assert isinstance(out, CheckOutput) and out.check == cid
    ids = set(ctx.sample_ids)
    for f in out.findings:
        assert isinstance(f, Finding)
        assert f.check == cid and f.family == cls.family and f.issue and f.message
        assert f.issue != "check_failed"
        assert set(f.samples) <= ids, f"{cid}: finding names samples the dataset does not have"
        assert set(f.scores) <= set(f.samples)
        assert all(0.0 <= v <= 1.0 for v in f.scores.values())
    for s in out.scores:
        assert s.key in ("sample_id", "object_id", "prediction_id")
        if s.key == "sample_id":
            assert set(s.scores.index) <= ids and set(s.flags.index) <= ids
        values = s.scores.to_numpy(dtype=float)
        assert np.all((values[~np.isnan(values)] >= 0) & (values[~np.isnan(values)] <= 1)), f"{cid}.{s.issue}"
        assert s.flags.dtype == bool
    if case == "empty":
        assert not out.findings or all(f.count == 0 or not f.samples for f in out.findings)


def test_the_real_case_exercises_the_checks(contexts):
    # the contract above is only as good as its data: on the small real set the evaluate checks compute
    # metrics and the scan checks judge every decodable image
    ctx = contexts["real"]
    metrics = registry()["evaluation.metrics"]().run(ctx)
    assert metrics.findings and metrics.findings[0].issue == "metrics"
    decode = registry()["integrity.decode_errors"]().run(ctx)
    assert [f.samples for f in decode.findings] == [["train/cat/broken.jpg"]]
    blurry = next(s for s in registry()["quality.blurry"]().run(ctx).scores if s.issue == "blurry")
    assert len(blurry.scores) == 24 and not math.isnan(blurry.scores.mean())
