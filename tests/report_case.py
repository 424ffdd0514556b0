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
from conftest import mnist_arrays
from PIL import Image

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


#: The compare + hygiene case: MNIST digits 1000-1799 (none in :func:`evaluate_case`'s set is reused).
C_TRAIN, C_TEST, C_COPIES, C_INVERTED, C_FIXED, C_BROKEN = 400, 400, 10, 60, 24, 7
#: The checks the compare case runs: what its pictures need.
COMPARE_RUN = ("evaluation.metrics", "evaluation.model_comparison", "evaluation.leaked_test_metrics",
               "segments.weak_segments")


@functools.cache
def compare_case(base: Path) -> dict[str, Any]:
    """An evaluate run with two prediction files and training copies in test, on real MNIST digits.

    400 train and 400 test digits (MNIST test images 1000-1799) as PNGs, then planted:

    - 10 test samples that are byte copies of training PNGs (``test/copy_of_<train id>``, label of the
      original): the model A (PCA + logistic regression fitted on the training digits) memorised them;
    - 60 test digits inverted (white background): A gets most of them wrong and they form embedding
      clusters of their own (a weak cluster slice);
    - model B = A with 24 test digits A gets wrong put right (``fixed``) and 7 it gets right put wrong
      (``broken``), so McNemar's discordant counts on test are exactly (7, 24).
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    images, truth = mnist_arrays(1000 + C_TRAIN + C_TEST)
    images, truth = images[1000:].copy(), truth[1000:].astype(int)
    rng = np.random.default_rng(11)
    split = np.array(["train"] * C_TRAIN + ["test"] * C_TEST)
    ids = [f"{s}/{i:05d}" for i, s in enumerate(split)]
    inverted = np.sort(rng.choice(np.arange(C_TRAIN, C_TRAIN + C_TEST), C_INVERTED, replace=False))
    images[inverted] = 255 - images[inverted]
    sources = np.sort(rng.choice(C_TRAIN, C_COPIES, replace=False))
    copies = [f"test/copy_of_{ids[i].split('/')[1]}" for i in sources]
    paths = []
    for i, img in enumerate(images):
        path = base / "images" / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
        paths.append(path)
    for s, copy in zip(sources, copies):
        target = base / "images" / f"{copy.replace('/', '_')}.png"
        target.write_bytes(paths[s].read_bytes())
        paths.append(target)
    all_ids = np.array(ids + copies)
    all_split = np.concatenate([split, ["test"] * C_COPIES])
    all_truth = np.concatenate([truth, truth[sources]])
    X = np.concatenate([images, images[sources]]).reshape(len(all_ids), -1) / 255.0
    model = make_pipeline(PCA(30, whiten=True, random_state=0), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(X[:C_TRAIN], all_truth[:C_TRAIN])
    probs_a = model.predict_proba(X)
    test = np.flatnonzero(all_split == "test")
    right = probs_a.argmax(axis=1) == all_truth
    fixed = np.sort(rng.choice(test[~right[test]], C_FIXED, replace=False))
    broken = np.sort(rng.choice(test[right[test]], C_BROKEN, replace=False))
    probs_b = probs_a.copy()
    # Put right: the label gets the top probability; put wrong: the runner-up swaps with it.
    for i in fixed:
        top = probs_b[i].argmax()
        probs_b[i, [top, all_truth[i]]] = probs_b[i, [all_truth[i], top]]
    for i in broken:
        second = np.argsort(probs_b[i])[-2]
        probs_b[i, [second, all_truth[i]]] = probs_b[i, [all_truth[i], second]]
    samples = [{"sample_id": all_ids[i], "path": str(paths[i]), "label": str(all_truth[i]), "split": all_split[i]}
               for i in range(len(all_ids))]
    dataset = Dataset(make_samples(samples), source=str(base / "digits"), format="manifest")
    csv_a = _write_predictions(base / "a.csv", all_ids, probs_a)
    csv_b = _write_predictions(base / "b.csv", all_ids, probs_b)
    only = {"checks": {cid: {"enabled": False} for cid in SUITES["evaluate"] if cid not in COMPARE_RUN}}
    result = evaluate(dataset, predictions=csv_a, compare=csv_b, cache_dir=base / "cache", workers=1, config=only)
    return {"result": result, "ids": all_ids, "split": all_split, "truth": all_truth, "probs_a": probs_a,
            "probs_b": probs_b, "copies": dict(zip(copies, [ids[i] for i in sources])),
            "inverted": all_ids[inverted].tolist(), "fixed": all_ids[fixed].tolist(),
            "broken": all_ids[broken].tolist(), "base": base}
