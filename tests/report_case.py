"""An evaluate run on real MNIST digits whose report shows every evaluate picture (shared by the report tests).

1,000 digits are written as PNGs (500 train, 500 test) into a manifest-like dataset with a ``scanner``
column. A PCA + logistic regression trained on the 500 train digits (true labels) gives in-sample train
probabilities (it memorised them: overfitting) and over-confident test probabilities (miscalibrated,
with real confusions). Then the test plants:

- 12 flipped labels: test digits the model gets right with p > 0.95 are given label (digit + 3) mod 10,
  so label issues must suggest the true digit back;
- a weak scanner: 80 test digits scanned by "C", of which 40 right ones have their top two
  probabilities swapped (wrong now);
- a useless second model (the training class frequencies for every image) for the baseline and
  underfitting findings.

:func:`evaluate_case` runs once per pytest session (cached on the base folder).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from conftest import mnist_arrays
from visionaudit import evaluate
from visionaudit.dataset import Dataset, make_samples
from visionaudit.suites import SUITES

N_TRAIN, N_TEST, N_FLIP, N_SCANNER_C, N_SPOILED = 500, 500, 12, 80, 40
CLASSES = [str(c) for c in range(10)]
#: Checks of the useless-model run: the baselines and the fit check, not the slow ones it does not need.
BASELINE_RUN = ("evaluation.metrics", "evaluation.overfitting", "baselines.model_vs_baseline")


def _write_predictions(path: Path, ids: np.ndarray, probs: np.ndarray) -> Path:
    table = pd.DataFrame(probs, columns=CLASSES)
    table.insert(0, "sample_id", ids)
    table.to_csv(path, index=False, float_format="%.17g")
    return path


@functools.cache
def evaluate_case(base: Path) -> dict[str, Any]:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    images, truth = mnist_arrays(N_TRAIN + N_TEST)
    truth = truth.astype(int)
    n = len(truth)
    split = np.array(["train"] * N_TRAIN + ["test"] * N_TEST)
    ids = np.array([f"{s}/{i:05d}" for i, s in enumerate(split)])
    for i, img in enumerate(images):
        path = base / "images" / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
    X = images.reshape(n, -1) / 255.0
    model = make_pipeline(PCA(40, whiten=True, random_state=0), LogisticRegression(C=10.0, max_iter=1000))
    model.fit(X[:N_TRAIN], truth[:N_TRAIN])
    probs = model.predict_proba(X)
    rng = np.random.default_rng(7)
    test = np.flatnonzero(split == "test")
    right = probs.argmax(axis=1) == truth
    sure = test[right[test] & (probs[test].max(axis=1) > 0.95)]
    flipped = np.sort(rng.choice(sure, N_FLIP, replace=False))
    given = truth.copy()
    given[flipped] = (truth[flipped] + 3) % 10
    scanner = rng.choice(np.array(list("ABD")), n)
    in_c = np.sort(rng.choice(np.setdiff1d(test, flipped), N_SCANNER_C, replace=False))
    scanner[in_c] = "C"
    spoilable = in_c[right[in_c]]
    spoiled = np.sort(rng.choice(spoilable, N_SPOILED, replace=False))
    top2 = np.argsort(probs[spoiled], axis=1)[:, -2:]
    rows = spoiled[:, None]
    probs[rows, top2] = probs[rows, top2[:, ::-1]]
    samples = [{"sample_id": ids[i], "path": str(base / "images" / f"{i:05d}.png"), "label": str(given[i]),
                "split": split[i], "scanner": scanner[i]} for i in range(n)]
    dataset = Dataset(make_samples(samples), source=str(base / "digits"), format="manifest",
                      metadata_columns=["scanner"])
    csv = _write_predictions(base / "model.csv", ids, probs)
    result = evaluate(dataset, predictions=csv, cache_dir=base / "cache", workers=1)
    prior = np.bincount(given[:N_TRAIN], minlength=10) / N_TRAIN
    useless_csv = _write_predictions(base / "prior.csv", ids, np.tile(prior, (n, 1)))
    only = {"checks": {cid: {"enabled": False} for cid in SUITES["evaluate"] if cid not in BASELINE_RUN}}
    useless = evaluate(dataset, predictions=useless_csv, cache_dir=base / "cache", workers=1, config=only)
    return {"result": result, "useless": useless, "ids": ids, "split": split, "truth": truth, "given": given,
            "probs": probs, "flipped": ids[flipped].tolist(), "scanner": scanner, "in_c": ids[in_c].tolist(),
            "spoiled": ids[spoiled].tolist(), "csv": csv, "base": base}
