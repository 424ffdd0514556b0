"""Outliers: images far from all others in the builtin embedding, on COCO128 with planted strays."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import coco_images, issues_frame, mnist_arrays, run_check
from PIL import Image

from visionaudit.checks.outliers import Outliers
from visionaudit.context import Context
from visionaudit.dataset import read_folder
from visionaudit.errors import ArgumentError
from visionaudit.features.embedders import BuiltinEmbedder, embeddings, get_embedder

PLANTED = {"zz_mnist0.png", "zz_mnist1.png", "zz_mnist2.png", "zz_checker.png"}


def _coco(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for f in coco_images("train2017") + coco_images("val2017"):
        shutil.copyfile(f, root / f"{f.parent.name}_{f.name}")
    return root


def _context(root: Path, cache: Path) -> Context:
    return Context(read_folder(root), feature_options={"cache_dir": cache, "workers": 2})


def test_clean_coco128_has_no_outliers(tmp_path):
    """The 256 COCO128 photos: nobody is past the cut-off (the most isolated, birds against an
    overcast white sky, sits at about 5.4 robust standard deviations; the cut-off is 8)."""
    ctx = _context(_coco(tmp_path / "coco"), tmp_path / "cache")
    assert run_check(Outliers(), ctx) == []
    scores = issues_frame(ctx)["outliers_score"]
    assert scores.notna().all() and scores.min() > 0.5
    assert scores.idxmin() == "train2017_000000000143.jpg"


def test_planted_strays_rank_first(tmp_path):
    """Three MNIST digits (enlarged to 256 px) and a checkerboard among the 256 photos are the four
    most isolated images and the only ones flagged."""
    root = _coco(tmp_path / "mixed")
    digits, _ = mnist_arrays(3)
    for i, d in enumerate(digits):
        Image.fromarray(d).resize((256, 256), Image.Resampling.BILINEAR).save(root / f"zz_mnist{i}.png")
    board = ((np.indices((240, 320)).sum(axis=0) // 20) % 2 * 255).astype(np.uint8)
    Image.fromarray(board).save(root / "zz_checker.png")
    ctx = _context(root, tmp_path / "cache")
    (finding,) = run_check(Outliers(), ctx)
    assert set(finding.samples) == PLANTED
    assert finding.samples[0] == "zz_checker.png"                    # worst first
    assert all(finding.evidence["z_scores"][s] > 10 for s in PLANTED)
    scores = issues_frame(ctx)["outliers_score"].sort_values()
    assert set(scores.index[:4]) == PLANTED
    assert (scores[list(PLANTED)] < 0.5).all() and (scores.drop(list(PLANTED)) > 0.5).all()
    assert finding.severity.value == "warning" and finding.thresholds == {"neighbours": 10, "threshold": 8.0}


def test_builtin_embedding_and_registry(tmp_path):
    root = tmp_path / "few"
    root.mkdir()
    for f in coco_images("val2017")[:12]:
        shutil.copyfile(f, root / f.name)
    (root / "broken.jpg").write_bytes(b"not an image")
    ctx = _context(root, tmp_path / "cache")
    emb = embeddings(ctx)
    assert emb is embeddings(ctx)                                     # computed once per run
    assert list(emb.ids) == sorted(f.name for f in coco_images("val2017")[:12])   # decoded images only
    # 256 intensity + 450 edge values + 6 properties; thumbnail blocks have norm 1/sqrt(2) each.
    assert emb.vectors.shape == (12, 712) and emb.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[:, :256], axis=1), 2 ** -0.5, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[:, 256:706], axis=1), 2 ** -0.5, rtol=1e-5)
    assert isinstance(get_embedder("builtin"), BuiltinEmbedder)
    with pytest.raises(ArgumentError, match="embedder.*builtin"):
        get_embedder("clip:ViT-B-32")   # no such scheme: the error lists the known ones
    with pytest.raises(ArgumentError, match="decoded"):
        BuiltinEmbedder().embed(ctx.features)                          # includes the broken file


def test_too_few_images_is_not_judged(tmp_path):
    root = tmp_path / "tiny"
    root.mkdir()
    for f in coco_images("val2017")[:8]:
        shutil.copyfile(f, root / f.name)
    ctx = _context(root, tmp_path / "cache")
    assert run_check(Outliers(), ctx) == []
    assert "outliers_score" not in issues_frame(ctx).columns
