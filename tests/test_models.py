"""The model runner (features/models.py) and the ``--model`` path of evaluate, on real COCO128 photos.

The reference for every ONNX output is onnxruntime called directly by this test on images that the
test preprocesses itself with Pillow and numpy, following the documented recipe (shorter side to
256 with bilinear, centre crop 224 with offsets rounded, RGB, x/255, ImageNet mean/std, NCHW).
The TorchScript and ``module:callable`` kinds run a tiny seeded conv net written by the test.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, coco_images, copy_images
from PIL import Image
from typer.testing import CliRunner

from visionaudit import evaluate
from visionaudit.cli import app
from visionaudit.errors import ArgumentError, SourceError
from visionaudit.features import models
from visionaudit.features.models import Preprocess, load_model, run_model

ort = pytest.importorskip("onnxruntime")

MODELS = SHARED.parent / "models"
MOBILENET = MODELS / "mobilenetv2-12-int8.onnx"
WITH_EMBEDDING = MODELS / "mobilenetv2-12-int8-with-embedding.onnx"
MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
N = 12


@pytest.fixture(scope="module", autouse=True)
def _models_present():
    if not WITH_EMBEDDING.exists():
        pytest.skip(f"test models not found under {MODELS}")


def reference_input(path: Path, bgr: bool = False) -> np.ndarray:
    """The documented ImageNet recipe, written independently of visionaudit."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    if w <= h:
        new_w, new_h = 256, int(256 * h / w)
    else:
        new_w, new_h = int(256 * w / h), 256
    im = im.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = round((new_w - 224) / 2.0), round((new_h - 224) / 2.0)
    a = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32)
    if bgr:
        a = a[..., ::-1]
    a = (a * np.float32(1 / 255) - MEAN) / STD
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def reference_outputs(paths: list[Path], output: str, bgr: bool = False) -> np.ndarray:
    session = ort.InferenceSession(str(WITH_EMBEDDING), providers=["CPUExecutionProvider"])
    batch = np.stack([reference_input(p, bgr) for p in paths])
    return session.run([output], {"input": batch})[0]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    return copy_images(coco_images()[:N], tmp_path_factory.mktemp("photos"))


def test_onnx_runner_equals_onnxruntime_on_the_documented_recipe(photos, tmp_path):
    paths = [str(p) for p in photos]
    for output, width in (("output", 1000), ("embedding", 1280)):
        run = run_model(WITH_EMBEDDING, paths, output=output, cache_dir=tmp_path / "cache", workers=2, batch_size=5)
        expected = reference_outputs(photos, output)
        assert run.outputs.shape == (N, width) and run.output == output and run.errors == {}
        np.testing.assert_allclose(run.outputs, expected, atol=1e-4, rtol=0)
    bgr = run_model(WITH_EMBEDDING, paths, output="output", preprocess={"channel_order": "BGR"}, use_cache=False)
    np.testing.assert_allclose(bgr.outputs, reference_outputs(photos, "output", bgr=True), atol=1e-4, rtol=0)
    rgb = reference_outputs(photos, "output")
    assert np.abs(bgr.outputs - rgb).max() > 1.0                       # swapping channels changes the logits
    assert (bgr.outputs.argmax(1) != rgb.argmax(1)).sum() >= 3          # ... and some top-1 classes


def test_undecodable_image_is_a_nan_row_with_a_reason(photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:2000])                  # a real JPEG cut short
    missing = tmp_path / "gone.jpg"
    run = run_model(MOBILENET, [str(photos[1]), str(broken), str(missing)], cache_dir=tmp_path / "cache", workers=1)
    assert np.isfinite(run.outputs[0]).all() and np.isnan(run.outputs[1:]).all()
    assert sorted(run.errors) == sorted([str(broken), str(missing)])
    assert "decode" in run.errors[str(broken)] and "not found" in run.errors[str(missing)]
    np.testing.assert_allclose(run.outputs[0], reference_outputs([photos[1]], "output")[0], atol=1e-4, rtol=0)


def test_rerun_decodes_and_infers_nothing_and_new_preprocessing_reinfers(photos, tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    paths = [str(p) for p in copy_images(photos[:6], folder)]
    broken = folder / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:2000])
    paths.append(str(broken))
    decodes, inferred = [], []
    real_prepare = models.prepare_bytes
    monkeypatch.setattr(models, "prepare_bytes", lambda *a, **k: decodes.append(1) or real_prepare(*a, **k))
    model = load_model(MOBILENET)
    real_predict = model.predict
    model.predict = lambda batch: inferred.append(len(batch)) or real_predict(batch)
    cache = tmp_path / "cache"

    def go(**kw):
        decodes.clear()
        inferred.clear()
        return run_model(model, paths, cache_dir=cache, workers=1, **kw)   # workers=1: the counters see every call

    first = go()
    assert (len(decodes), sum(inferred), first.decoded, first.inferred, first.from_cache) == (7, 6, 7, 6, 0)
    again = go()
    assert (len(decodes), sum(inferred), again.decoded, again.inferred, again.from_cache) == (0, 0, 0, 0, 7)
    np.testing.assert_array_equal(again.outputs, first.outputs)          # NaN row of the broken file included
    assert again.errors == first.errors and list(again.errors) == [str(broken)]
    shutil.copyfile(photos[0], folder / "copy.jpg")                       # same content, new name: no decode
    paths.append(str(folder / "copy.jpg"))
    copied = go()
    assert (len(decodes), sum(inferred), copied.from_cache) == (0, 0, 8)
    np.testing.assert_array_equal(copied.outputs[-1], first.outputs[0])
    bgr = go(preprocess={"channel_order": "BGR"})
    # A new recipe decodes every file again (the copy too: workers decode before the content repeat is
    # seen) but infers once per distinct content that decoded: 6 photos.
    assert (len(decodes), sum(inferred), bgr.inferred) == (8, 6, 6)
    assert not np.allclose(bgr.outputs[:6], first.outputs[:6])


def test_preprocess_spec_errors_name_the_field_and_accepted_values(tmp_path, photos):
    with pytest.raises(ArgumentError, match=r"preprocess\.channel_order='RGBA'.*RGB, BGR"):
        Preprocess.from_config({"channel_order": "RGBA"})
    with pytest.raises(ArgumentError, match=r"preprocess\.colour.*size, resize, resize_to"):
        Preprocess.from_config({"colour": "RGB"})
    with pytest.raises(ArgumentError, match=r"preprocess\.resize_to=200.*crop size 224"):
        Preprocess.from_config({"resize_to": 200})
    with pytest.raises(ArgumentError, match=r"preprocess\.mean.*three numbers"):
        Preprocess.from_config({"mean": [0.5, 0.5]})
    spec = tmp_path / "spec.yaml"
    spec.write_text("size: 160\nlayout: NWHC\n")
    with pytest.raises(SourceError, match=r"spec\.yaml, field 'layout'.*NCHW, NHWC"):
        Preprocess.from_config(spec)
    spec.write_text("size: [160, 192]\nresize: plain\nchannel_order: BGR\n")
    assert Preprocess.from_config(spec) == Preprocess(size=(160, 192), resize="plain", channel_order="BGR")
    with pytest.raises(ArgumentError, match=r"3x160x192.*input shape 3x224x224"):   # before any decoding
        run_model(MOBILENET, [str(photos[0])], preprocess=spec, use_cache=False)
    with pytest.raises(ArgumentError, match=r"model output='logits'.*output, embedding"):
        load_model(WITH_EMBEDDING, "logits")
    with pytest.raises(ArgumentError, match=r"\.onnx file, a TorchScript file"):
        load_model("weights.h5")


TINY_NET = '''
import numpy as np
import torch

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                          torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()


def numpy_net(batch):
    """Numpy in, numpy out: a plain function gets arrays."""
    assert isinstance(batch, np.ndarray)
    with torch.no_grad():
        return {"logits": net(torch.from_numpy(batch)).numpy(), "mean": batch.mean(axis=(1, 2, 3))}
'''


def test_torchscript_and_module_callable_equal_direct_torch(photos, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    (tmp_path / "tiny_net_mod.py").write_text(TINY_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("tiny_net_mod", None)
    import tiny_net_mod

    batch = np.stack([reference_input(p) for p in photos[:5]])
    with torch.no_grad():
        expected = tiny_net_mod.net(torch.from_numpy(batch)).numpy()
    traced = torch.jit.trace(tiny_net_mod.net, torch.from_numpy(batch[:2]))
    traced.save(str(tmp_path / "tiny.pt"))
    paths = [str(p) for p in photos[:5]]
    cache = tmp_path / "cache"
    for spec, output in (("tiny_net_mod:net", None), (str(tmp_path / "tiny.pt"), None),
                         ("tiny_net_mod:numpy_net", "logits")):
        run = run_model(spec, paths, output=output, cache_dir=cache, workers=2)
        assert run.outputs.shape == (5, 3) and run.inferred == 5, spec
        np.testing.assert_allclose(run.outputs, expected, atol=1e-5, rtol=0, err_msg=spec)
    means = run_model("tiny_net_mod:numpy_net", paths, output="mean", cache_dir=cache)
    np.testing.assert_allclose(means.outputs[:, 0], batch.mean(axis=(1, 2, 3)), rtol=1e-5)
    assert load_model("tiny_net_mod:net").kind == "callable" and load_model(str(tmp_path / "tiny.pt")).kind == "torchscript"
    with pytest.raises(ArgumentError, match=r"model output='probs'.*logits, mean"):
        run_model("tiny_net_mod:numpy_net", paths[:1], output="probs", use_cache=False)
    with pytest.raises(ArgumentError, match=r"tiny_net_mod:nope.*no 'nope'"):
        load_model("tiny_net_mod:nope")


@pytest.fixture(scope="module")
def imagenet_case(tmp_path_factory, photos):
    """COCO photos filed under the ImageNet class the reference run of MobileNet gives them, 3 moved
    to another class folder: COCO has no ImageNet ground truth, so the reference's own top-1 is the
    label; the runner must then score exactly 1.0 on the unmoved images and call every moved one wrong."""
    root = tmp_path_factory.mktemp("imagenet_case")
    top1 = reference_outputs(photos, "output").argmax(axis=1)
    used = sorted(set(top1.tolist()))
    moved = {1, 5, 9}
    ids = []
    for i, (photo, cls) in enumerate(zip(photos, top1.tolist())):
        label = used[(used.index(cls) + 1) % len(used)] if i in moved else cls
        folder = root / "data" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, folder / photo.name)
        ids.append(f"{label}/{photo.name}")
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in range(1000)))
    return root, ids, sorted(ids[i] for i in moved), len({i.split('/')[0] for i in ids})


def test_evaluate_with_an_onnx_model(imagenet_case):
    root, _, moved, _ = imagenet_case
    cache = root / "cache"
    result = evaluate(root / "data", model=MOBILENET, model_classes=root / "classes.txt", cache_dir=cache)
    info = result.run_info["predictions"]
    assert info["method"] == "model" and info["model"] == str(MOBILENET) and info["output"] == "output"
    assert info["source"] == f"model {MOBILENET} (output 'output')" and info["images_inferred"] == N
    assert info["with_prediction"] == N and len(info["classes"]) == 1000 and "softmax" in info["notes"][0]
    metrics = result.stats["metrics"].set_index("metric")
    assert metrics.loc["accuracy", "value"] == pytest.approx((N - 3) / N)
    assert sorted(result.issues.index[result.issues["is_misclassified"]]) == moved
    again = evaluate(root / "data", model=MOBILENET, model_classes=root / "classes.txt", cache_dir=cache)
    assert (again.run_info["predictions"]["images_inferred"], again.run_info["predictions"]["outputs_from_cache"]) == (0, N)
    with pytest.raises(ArgumentError, match="model.*no predictions file"):
        evaluate(root / "data", root / "preds.csv", model=MOBILENET)


def test_cli_model_class_count_errors_name_both_numbers(imagenet_case):
    root, _, _, n_labels = imagenet_case
    short = root / "ten.txt"
    short.write_text("".join(f"c{i}\n" for i in range(10)))
    runner = CliRunner()
    out = runner.invoke(app, ["evaluate", str(root / "data"), "--model", str(MOBILENET), "--model-classes", str(short),
                              "--cache-dir", str(root / "cache"), "-o", str(root / "out"), "-q"])
    assert out.exit_code == 2 and "10 class names for a model that gives 1000 outputs" in " ".join(out.output.split())
    out = runner.invoke(app, ["evaluate", str(root / "data"), "--model", str(MOBILENET),
                              "--cache-dir", str(root / "cache"), "-o", str(root / "out"), "-q"])
    assert out.exit_code == 2
    assert f"the model gives 1000 outputs per image but the dataset has {n_labels} labels" in " ".join(out.output.split())
    out = runner.invoke(app, ["evaluate", str(root / "data"), "--model", str(MOBILENET), "--model-classes",
                              str(root / "classes.txt"), "--model-output", "embedding",
                              "--cache-dir", str(root / "cache"), "-o", str(root / "out"), "-q"])
    assert out.exit_code == 2 and "model output='embedding'" in out.output and "expected one of output" in out.output
