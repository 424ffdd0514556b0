"""Reading a user's predictions file: keys, class columns, logits, NPY, and errors naming file + line/field."""
from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
from conftest import mnist_arrays
from PIL import Image
from scipy.special import softmax

from visionaudit.context import Context
from visionaudit.dataset import load_dataset, read_folder
from visionaudit.errors import ArgumentError, SourceError
from visionaudit.predictors import Predictions, read_predictions

CLASSES = ["0", "1", "2"]
HINT = "(pass --from-logits, or from_logits=True in Python, if the file holds logits)"


@pytest.fixture
def digits(tmp_path):
    """Four real MNIST digits of each of the classes 0, 1, 2 as PNGs in class folders (12 samples)."""
    images, labels = mnist_arrays(200)
    root = tmp_path / "digits"
    for c in range(3):
        (root / str(c)).mkdir(parents=True)
        for i in np.flatnonzero(labels == c)[:4]:
            Image.fromarray(images[i]).save(root / str(c) / f"{i:03d}.png")
    dataset = read_folder(root)
    return dataset, tmp_path


def _probs(n: int, seed: int = 0) -> np.ndarray:
    return softmax(np.random.default_rng(seed).normal(size=(n, 3)) * 2, axis=1)


def _write(tmp_path, text: str, name: str = "preds.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _csv(dataset, values, key="sample_id", columns=CLASSES) -> str:
    keys = dataset.samples[key].tolist()
    lines = [",".join([key, *columns])]
    lines += [",".join([k, *(repr(float(v)) for v in row)]) for k, row in zip(keys, values)]
    return "\n".join(lines) + "\n"


def test_csv_by_sample_id_in_any_order_aligns_to_the_dataset(digits):
    dataset, tmp = digits
    probs = _probs(12)
    frame = pd.DataFrame(probs, columns=CLASSES)
    frame.insert(0, "sample_id", dataset.samples["sample_id"])
    path = tmp / "p.csv"
    frame.iloc[::-1].to_csv(path, index=False)
    preds = read_predictions(path, dataset)
    assert preds.classes == CLASSES and preds.notes == [] and preds.missing == 0
    np.testing.assert_array_equal(preds.probs, probs)
    assert preds.sample_ids == dataset.samples["sample_id"].tolist()


def test_path_key_relative_to_the_file_prob_columns_parquet_and_missing_rows(digits):
    dataset, tmp = digits
    probs = _probs(12, seed=1)
    (tmp / "out").mkdir()
    frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in ["2", "0", "1"]])  # any column order
    frame.insert(0, "model", "resnet")  # ignored: class columns are the prob_ ones
    frame.insert(0, "path", [f"../digits/{s}" for s in dataset.samples["sample_id"]])
    path = tmp / "out" / "p.parquet"
    frame.iloc[2:].to_parquet(path)
    preds = read_predictions(path, dataset)
    assert preds.classes == ["2", "0", "1"]
    np.testing.assert_array_equal(preds.probs[2:], probs[2:])
    assert np.isnan(preds.probs[:2]).all() and preds.has.tolist() == [False] * 2 + [True] * 10
    assert preds.notes == ["2 of 12 samples have no prediction in p.parquet"]


def test_a_file_listed_twice_gets_its_prediction_in_each_listing(digits):
    dataset, tmp = digits
    files = dataset.samples["path"].tolist()
    manifest = tmp / "manifest.csv"
    manifest.write_text("path,label\n" + "".join(f"{f},{lab}\n" for f, lab in
                                                  zip(files + files[:1], dataset.samples["label"].tolist() + ["2"])))
    listed = load_dataset(manifest)
    assert len(listed) == 13 and listed.samples["path"].iloc[12] == listed.samples["path"].iloc[0]
    probs = _probs(12, seed=4)
    rows = "".join(f"{os.path.relpath(f, tmp / 'tsv')}\t" + "\t".join(str(float(v)) for v in row) + "\n"
                   for f, row in zip(files, probs))
    (tmp / "tsv").mkdir()
    tsv = tmp / "tsv" / "p.tsv"
    tsv.write_text("path\t0\t1\t2\n\n" + rows)
    preds = read_predictions(tsv, listed)
    np.testing.assert_array_equal(preds.probs, np.vstack([probs, probs[:1]]))
    bad = rows.replace(str(float(probs[5][1])), "-0.5")
    tsv.write_text("path\t0\t1\t2\n\n" + bad)
    assert _error(tsv, listed) == f"{tsv}, line 8, field '1': negative probability -0.5 {HINT}"


def test_logits_softmaxed_when_asked_or_detected(digits):
    dataset, tmp = digits
    logits = np.random.default_rng(2).normal(size=(12, 3)) * 3
    path = _write(tmp, _csv(dataset, logits))
    expected = softmax(logits, axis=1)
    np.testing.assert_allclose(read_predictions(path, dataset, from_logits=True).probs, expected, rtol=1e-12)
    auto = read_predictions(path, dataset)
    np.testing.assert_allclose(auto.probs, expected, rtol=1e-12)
    assert auto.notes == ["preds.csv: 12 of 12 rows are not probabilities (negative or not summing to 1), so the "
                          "values were read as logits and turned into probabilities with a softmax"]
    with pytest.raises(SourceError) as exc:
        read_predictions(path, dataset, from_logits=False)
    assert str(exc.value) == f"{path}, line 2, field '1': negative probability -1.56825 {HINT}"
    # Probabilities given as probabilities are kept exactly, even with from_logits="auto".
    probs = _probs(12)
    np.testing.assert_array_equal(read_predictions(_write(tmp, _csv(dataset, probs), "q.csv"), dataset).probs, probs)
    with pytest.raises(ArgumentError, match=re.escape("invalid from_logits='yes': expected True, False or 'auto'")):
        read_predictions(path, dataset, from_logits="yes")


def test_npy_in_dataset_order_with_sorted_classes(digits):
    dataset, tmp = digits
    probs = _probs(12, seed=3)
    np.save(tmp / "p.npy", probs)
    preds = read_predictions(tmp / "p.npy", dataset)
    assert preds.classes == CLASSES
    np.testing.assert_array_equal(preds.probs, probs)
    np.save(tmp / "logits.npy", np.log(probs) + 5.0)
    np.testing.assert_allclose(read_predictions(tmp / "logits.npy", dataset, from_logits=True).probs, probs, rtol=1e-9)
    ctx = Context(dataset, predictions=preds)
    assert ctx.predictions is preds


def _error(path, dataset, **kw) -> str:
    with pytest.raises(SourceError) as exc:
        read_predictions(path, dataset, **kw)
    return str(exc.value)


def test_errors_name_the_file_line_and_field(digits):
    dataset, tmp = digits
    ids = dataset.samples["sample_id"].tolist()
    probs = _probs(12)
    good = _csv(dataset, probs).splitlines()

    p = _write(tmp, good[0].replace("sample_id", "image_name") + "\n" + "\n".join(good[1:]) + "\n")
    assert _error(p, dataset) == (f"{p}, line 1: no key column: expected 'sample_id' or 'path'; "
                                  "found columns: image_name, 0, 1, 2")

    rows = list(good)
    rows[3] = rows[3].replace(ids[2], "2/999.png", 1)
    rows[6] = rows[6].replace(ids[5], "7/x.png", 1)
    p = _write(tmp, "\n".join(rows[:4]) + "\n\n" + "\n".join(rows[4:]) + "\n")  # a blank line before line 6
    assert _error(p, dataset) == (f"{p}, line 4, field 'sample_id': 2 sample ids are not in the dataset: "
                                  f"'2/999.png' (line 4), '7/x.png' (line 8)")

    p = _write(tmp, _csv(dataset, probs, key="path").replace(str(tmp / "digits"), str(tmp / "elsewhere")))
    assert _error(p, dataset).startswith(f"{p}, line 2, field 'path': 12 paths are not in the dataset: "
                                         f"'{tmp / 'elsewhere' / ids[0]}' (line 2), ")

    p = _write(tmp, "\n".join(good[:3] + [good[2]] + good[3:]) + "\n")
    assert _error(p, dataset) == f"{p}, line 4, field 'sample_id': {ids[1]!r} is listed twice (first at line 3)"

    p = _write(tmp, _csv(dataset, np.c_[probs, np.zeros(12)], columns=[*CLASSES, "7"]))
    assert _error(p, dataset) == (f"{p}, line 1, field '7': class column '7' is not a label of the dataset "
                                  "(labels: 0, 1, 2)")

    p = _write(tmp, _csv(dataset, probs[:, :2] / probs[:, :2].sum(1, keepdims=True), columns=CLASSES[:2]))
    assert _error(p, dataset) == (f"{p}, line 1: no column for label(s) '2': expected one column per class named "
                                  f"like the label (or 'prob_<label>')")

    bad = probs.copy()
    bad[4] = [1.2, -0.2, 0.0]
    p = _write(tmp, _csv(dataset, bad))
    assert _error(p, dataset) == f"{p}, line 6, field '1': negative probability -0.2 {HINT}"

    bad = probs.copy()
    bad[7] = [0.52, 0.31, 0.07]   # two decimals: rounding explains up to 3 x 0.005 = 0.015, not 0.1
    p = _write(tmp, _csv(dataset, bad))
    assert _error(p, dataset) == (f"{p}, line 9: probabilities sum to 0.9, not 1, by more than rounding to 2 "
                                  f"decimal(s) explains (±0.015) {HINT}")
    assert _error(p, dataset, from_logits=False) == _error(p, dataset)

    rows = list(good)
    rows[5] = f"{ids[4]},0.5,,0.5"
    rows[9] = f"{ids[8]},0.5,abc,0.5"
    p = _write(tmp, "\n".join(rows) + "\n")
    assert _error(p, dataset) == f"{p}, line 6, field '1': missing value"
    rows[5] = good[5]
    p = _write(tmp, "\n".join(rows) + "\n")
    assert _error(p, dataset) == f"{p}, line 10, field '1': not a finite number: 'abc'"


def test_parquet_and_npy_errors(digits):
    dataset, tmp = digits
    probs = _probs(12)
    frame = pd.DataFrame(probs, columns=CLASSES)
    frame.insert(0, "sample_id", dataset.samples["sample_id"])
    frame.loc[3, "2"] = np.nan
    frame.to_parquet(tmp / "p.parquet")
    assert _error(tmp / "p.parquet", dataset) == f"{tmp / 'p.parquet'}, field '2': row 4: missing value"

    np.save(tmp / "wrong.npy", probs[:, :2])
    assert _error(tmp / "wrong.npy", dataset) == (
        f"{tmp / 'wrong.npy'}: expected an array of shape (12, 3) (samples in dataset order x classes 0, 1, 2), "
        "got shape (12, 2)")
    bad = probs.copy()
    bad[5, 1] = np.nan
    np.save(tmp / "nan.npy", bad)
    assert _error(tmp / "nan.npy", dataset) == f"{tmp / 'nan.npy'}, field '1': row index 5: not a finite number: nan"
    assert _error(tmp / "p.json", dataset) == f"{tmp / 'p.json'}: predictions file not found"
    (tmp / "p.json").write_text("{}")
    assert _error(tmp / "p.json", dataset) == (f"{tmp / 'p.json'}: unknown predictions file type '.json': expected "
                                              ".csv, .tsv, .parquet or .npy")


def test_predictions_must_match_the_context_dataset(digits):
    dataset, _ = digits
    preds = Predictions(CLASSES, _probs(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="predictions are not aligned to the dataset's samples"):
        Context(dataset, predictions=preds)
