"""Run an image model (ONNX, TorchScript or a Python callable) over a dataset's images.

Images are decoded and preprocessed on the run's executor (:mod:`visionaudit.engine`); the model
runs in this process on batches as they arrive, and the executor starts decoding more only as
batches are taken, so decoded inputs never pile up. Outputs are cached on disk next to the
feature cache, keyed by (file content, model, preprocessing, output name), so a re-run decodes and
infers nothing it has seen. An image that cannot be decoded gets a row of NaN and a reason, never
an exception.

Model specs (:func:`load_model`):

- ``path/to/model.onnx``: run with onnxruntime (``pip install 'visionaudit[onnx]'``); one input.
- ``path/to/model.pt`` / ``.pts`` / ``.torchscript``: a TorchScript file (``torch.jit.load``).
- ``package.module:callable``: a Python callable given a float batch (a ``torch.nn.Module`` gets a
  ``torch.Tensor``, anything else a numpy array) and returning an array or tensor of shape (N, ...).

Preprocessing is a :class:`Preprocess` (defaults: ImageNet). Decoding does not apply the EXIF
orientation by default (``exif_transpose=False``) because the common training loaders
(torchvision's ``ImageFolder``, timm, Keras) do not either: the model sees the pixels the way it
saw its training images.

>>> run = run_model("m.onnx", ["data/train/city/city_0000.jpg", "data/train/forest/forest_0000.jpg"], output="output")
>>> run.outputs.shape, run.outputs.argmax(axis=1).tolist()
((2, 4), [0, 2])
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from ..engine import Executor, make_executor, progress_bar
from ..errors import ArgumentError, SourceError, VisionauditError
from .cache import FeatureCache, default_cache_dir
from .decode import DEFAULT_MAX_PIXELS, _to_rgb_or_l, content_hash, read_file

#: Bumped when the meaning of a cached model output changes.
MODEL_CACHE_VERSION = 1
#: Images per inference call.
BATCH_SIZE = 32
#: Images per worker chunk: a 224x224 float32 image is 600 kB, so a chunk is about 10 MB in flight.
CHUNK_SIZE = 16
#: New output rows are written to the cache every this many rows (an interrupted run resumes).
FLUSH_ROWS = 1024
#: The run's feature options that also steer a model run (:func:`run_model` keywords).
RUN_OPTIONS = ("cache_dir", "use_cache", "workers", "progress", "max_pixels")
TORCHSCRIPT_SUFFIXES = (".pt", ".pts", ".torchscript")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESIZE_MODES = ("center_crop", "plain")
_CHANNEL_ORDERS = ("RGB", "BGR")
_LAYOUTS = ("NCHW", "NHWC")
_DTYPES = ("float32", "float16", "uint8")
_INTERPOLATIONS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                   "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
                   "box": Image.Resampling.BOX}
_ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a model input (defaults: the ImageNet recipe of torchvision).

    1. Decode with Pillow; convert to RGB (grey replicated, alpha dropped, 16-bit scaled to 8-bit);
       apply the EXIF orientation only if ``exif_transpose``.
    2. ``resize="center_crop"``: scale so the shorter side is ``resize_to`` (the longer side is
       ``int(resize_to * long / short)``), then cut the centre ``size`` (offsets rounded as
       torchvision does). ``resize="plain"``: scale to ``size`` ignoring the aspect ratio.
       ``interpolation``: nearest, bilinear, bicubic, lanczos or box (Pillow's filters).
    3. ``channel_order`` RGB or BGR; then ``value * scale``, minus ``mean``, divided by ``std``
       (``mean``/``std`` are per channel in the model's channel order).
    4. ``layout`` NCHW or NHWC; ``dtype`` float32, float16 or uint8 (uint8 needs scale 1, mean 0, std 1).

    ``size`` is one number (square) or ``[height, width]``.

    >>> Preprocess.from_config({"size": 160, "resize_to": 182, "channel_order": "BGR"}).size
    (160, 160)
    """

    size: tuple[int, int] = (224, 224)
    resize: str = "center_crop"
    resize_to: int = 256
    interpolation: str = "bilinear"
    channel_order: str = "RGB"
    scale: float = 1 / 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    layout: str = "NCHW"
    dtype: str = "float32"
    exif_transpose: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ArgumentError:
            return ArgumentError(f"preprocess.{name}", getattr(self, name), expected)

        size = self.size
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            size = (int(size), int(size))
        if (not isinstance(size, (tuple, list)) or len(size) != 2
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size)):
            raise bad("size", "a positive integer or [height, width]")
        object.__setattr__(self, "size", (int(size[0]), int(size[1])))
        for name, allowed in (("resize", _RESIZE_MODES), ("interpolation", tuple(_INTERPOLATIONS)),
                              ("channel_order", _CHANNEL_ORDERS), ("layout", _LAYOUTS), ("dtype", _DTYPES)):
            if getattr(self, name) not in allowed:
                raise bad(name, f"one of {', '.join(allowed)}")
        if (not isinstance(self.resize_to, (int, np.integer)) or isinstance(self.resize_to, bool)
                or (self.resize == "center_crop" and self.resize_to < max(self.size))):
            raise bad("resize_to", f"an integer >= the crop size {max(self.size)} (the shorter side before the centre crop)")
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool) or not np.isfinite(self.scale):
            raise bad("scale", "a finite number (e.g. 0.00392156862745098 = 1/255)")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if (not isinstance(value, (tuple, list)) or len(value) != 3
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)):
                raise bad(name, "three numbers, one per channel")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if any(v == 0 for v in self.std):
            raise bad("std", "three non-zero numbers")
        if not isinstance(self.exif_transpose, bool):
            raise bad("exif_transpose", "true or false")
        if self.dtype == "uint8" and (self.scale != 1 or self.mean != (0.0, 0.0, 0.0) or self.std != (1.0, 1.0, 1.0)):
            raise bad("dtype", "float32 or float16 when scale, mean or std change the values (uint8 holds raw 0-255 pixels)")

    @classmethod
    def from_config(cls, config: Preprocess | dict[str, Any] | str | os.PathLike | None) -> Preprocess:
        """A spec from a dict, a YAML/JSON file (a mapping of these fields), or None (the defaults).

        Unknown fields and bad values raise an error naming the field and the accepted values.
        """
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        where = None
        if isinstance(config, (str, os.PathLike)):
            where = str(config)
            config = _read_mapping(Path(config))
        if not isinstance(config, dict):
            raise ArgumentError("preprocess", config, "a mapping of preprocessing fields, a YAML/JSON file or None")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in config if k not in known]
        if unknown:
            message = f"unknown preprocessing field {unknown[0]!r}: expected some of {', '.join(known)}"
            if where:
                raise SourceError(where, message, field=str(unknown[0]))
            raise ArgumentError(f"preprocess.{unknown[0]}", config[unknown[0]], f"a field among {', '.join(known)}")
        try:
            return cls(**config)
        except ArgumentError as exc:
            if where:
                raise SourceError(where, str(exc), field=exc.name.partition(".")[2]) from exc
            raise

    def digest(self) -> str:
        """Stable text of every field, part of the output cache key."""
        return json.dumps(asdict(self), sort_keys=True)


def _read_mapping(p: Path) -> Any:
    import yaml

    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(str(p), f"cannot read preprocessing spec: {exc}") from exc
    try:
        return json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SourceError(str(p), f"not valid YAML/JSON: {exc}") from exc


def preprocess_image(im: Image.Image, spec: Preprocess) -> np.ndarray:
    """One decoded image as a model input (C, H, W) or (H, W, C) array, following ``spec``.

    >>> preprocess_image(Image.new("RGB", (640, 480)), Preprocess()).shape
    (3, 224, 224)
    """
    if spec.exif_transpose:
        im = ImageOps.exif_transpose(im)
    im = _to_rgb_or_l(im).convert("RGB")
    height, width = spec.size
    resample = _INTERPOLATIONS[spec.interpolation]
    if spec.resize == "plain":
        im = im.resize((width, height), resample)
    else:
        w, h = im.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(spec.resize_to * long / short)
        new_w, new_h = (spec.resize_to, new_long) if w <= h else (new_long, spec.resize_to)
        im = im.resize((new_w, new_h), resample)
        top, left = round((new_h - height) / 2.0), round((new_w - width) / 2.0)
        im = im.crop((left, top, left + width, top + height))
    a = np.asarray(im, dtype=np.float32)
    if spec.channel_order == "BGR":
        a = a[..., ::-1]
    if spec.dtype == "uint8":
        a = a.astype(np.uint8)
    else:
        a = ((a * np.float32(spec.scale) - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32))
        a = a.astype(spec.dtype)
    if spec.layout == "NCHW":
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a)


def prepare_bytes(data: bytes, spec: Preprocess, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray | None, str | None]:
    """Decode an encoded image and preprocess it: (input, None), or (None, why it could not be)."""
    if not data:
        return None, "file is empty (0 bytes)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            im = Image.open(io.BytesIO(data))
            if im.width * im.height > max_pixels:
                return None, f"{im.width}x{im.height} exceeds the {max_pixels:,}-pixel decode limit"
            im.load()
            return preprocess_image(im, spec), None
        except Exception as exc:  # noqa: BLE001 - a file that does not decode is a NaN row, never a crash
            return None, f"cannot decode: {exc}"


@dataclass(frozen=True)
class _InputSettings:
    """What preparing any image needs (the executor's state, shipped once per worker): the content
    hashes whose outputs are cached, the preprocessing and the decode limit."""

    known: frozenset[str]
    spec: Preprocess
    max_pixels: int


def _prepare_path(settings: _InputSettings, path: str) -> tuple[str | None, np.ndarray | None, str | None, bool]:
    """(content hash, input or None, error or None, output already cached) of ``path``."""
    data, error_row = read_file(path)
    if data is None:
        return None, None, error_row["error"], False
    digest = content_hash(data)
    if digest in settings.known:
        return digest, None, None, True
    array, error = prepare_bytes(data, settings.spec, settings.max_pixels)
    return digest, array, error, False


@dataclass
class Model:
    """A loaded model: ``predict(batch) -> (N, D) float32`` and what identifies it in the cache.

    ``identity`` is the model file's SHA-256 (ONNX, TorchScript) or the callable's name and its
    module file's SHA-256; ``output`` the output used (None: the only or first one); ``preprocess``
    the model's own recipe, used when the caller gives none (None: the ImageNet defaults).
    """

    kind: str
    name: str
    identity: str
    predict: Callable[[np.ndarray], np.ndarray]
    output: str | None = None
    outputs: list[str] = field(default_factory=list)
    input_shape: list[Any] | None = None
    input_dtype: str | None = None
    preprocess: Preprocess | None = None
    output_width: int | None = None

    def check_preprocess(self, spec: Preprocess) -> None:
        """Fail before any decoding when the model's declared input disagrees with ``spec``."""
        if self.input_dtype is not None and self.input_dtype != spec.dtype:
            raise ArgumentError("preprocess.dtype", spec.dtype, f"{self.input_dtype} (the input type of {self.name})")
        shape = self.input_shape
        if not shape or len(shape) != 4:
            return
        want = [3, *spec.size] if spec.layout == "NCHW" else [*spec.size, 3]
        fixed = [(i, s) for i, s in enumerate(shape[1:]) if isinstance(s, int)]
        if any(want[i] != s for i, s in fixed):
            shown = "x".join(str(s) if isinstance(s, int) else "?" for s in shape[1:])
            raise ArgumentError("preprocess", f"{spec.layout} {'x'.join(map(str, want))}",
                                f"the input shape {shown} of {self.name} (set size and layout to match)")


def model_kind(spec: str) -> str:
    """``onnx``, ``torchscript`` or ``callable``, from a model spec's suffix or ``module:callable`` form.

    >>> model_kind("m.onnx"), model_kind("m.pt"), model_kind("mypkg.nets:classifier")
    ('onnx', 'torchscript', 'callable')
    """
    s = str(spec)
    suffix = Path(s).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    module, sep, attr = s.partition(":")
    if sep and module and attr and all(part.isidentifier() for part in [*module.split("."), *attr.split(".")]):
        return "callable"
    raise ArgumentError("model", s, "an .onnx file, a TorchScript file (.pt, .pts, .torchscript) or a Python "
                                    "'package.module:callable'")


def load_model(spec: str | os.PathLike, output: str | None = None, *, prefer_output: str | None = None,
               torch_input: bool | None = None) -> Model:
    """Load the model named by ``spec`` (see the module docstring).

    ``output`` names the output to use (an ONNX output name, a key of a returned dict, or an index
    of a returned tuple); without it, ``prefer_output`` if the model has an output of that name,
    else the first. ``torch_input`` forces a callable to get torch tensors (True) or numpy arrays.

    >>> model = load_model("m.onnx", "embedding")
    >>> model.kind, model.outputs, model.output
    ('onnx', ['output', 'embedding'], 'embedding')
    """
    s = str(spec)
    kind = model_kind(s)
    if kind == "callable":
        obj = _import_callable(s)
        module_file = getattr(importlib.import_module(s.partition(":")[0]), "__file__", None)
        identity = f"callable:{s}:{_file_sha256(module_file) if module_file else ''}"
        return callable_model(obj, s, identity, output=output, prefer_output=prefer_output, torch_input=torch_input)
    p = Path(s)
    if not p.is_file():
        raise SourceError(s, "model file not found")
    if kind == "onnx":
        return _onnx_model(p, output, prefer_output)
    torch = _import_torch(s)
    try:
        module = torch.jit.load(str(p), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - any loader failure names the file
        raise SourceError(s, f"not a loadable TorchScript file: {exc}") from exc
    return callable_model(module, s, f"torchscript:{_file_sha256(str(p))}", output=output,
                          prefer_output=prefer_output, torch_input=True, kind="torchscript")


def callable_model(fn: Callable[[Any], Any], name: str, identity: str, *, output: str | None = None,
                   prefer_output: str | None = None, torch_input: bool | None = None, kind: str = "callable") -> Model:
    """Wrap a Python callable (batch in, array/tensor/tuple/dict out) as a :class:`Model`."""
    if not callable(fn):
        raise ArgumentError("model", name, "a callable (function or torch.nn.Module)")
    if torch_input is None:
        torch_input = _is_torch_module(fn)
    if torch_input and hasattr(fn, "eval") and _is_torch_module(fn):
        fn.eval()

    def predict(batch: np.ndarray) -> np.ndarray:
        if torch_input:
            import torch

            with torch.inference_mode():
                out = fn(torch.from_numpy(batch))
        else:
            out = fn(batch)
        return _select(out, output, prefer_output, name)

    return Model(kind=kind, name=name, identity=identity, predict=predict, output=output)


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # not imported by us: an object cannot be a Module unless torch is loaded
    return torch is not None and isinstance(obj, torch.nn.Module)


def _select(out: Any, output: str | None, prefer: str | None, name: str) -> np.ndarray:
    """The chosen output of a callable's result as a float32 numpy array."""
    if isinstance(out, dict):
        keys = [str(k) for k in out]
        key = output if output is not None else (prefer if prefer in keys else keys[0] if keys else None)
        if key not in keys:
            raise ArgumentError("model output", output, f"one of {', '.join(keys)} (the keys {name} returns)")
        out = out[list(out)[keys.index(key)]]
    elif isinstance(out, (tuple, list)):
        index = 0 if output is None else (int(output) if str(output).isdigit() else -1)
        if not 0 <= index < len(out):
            raise ArgumentError("model output", output, f"an index from 0 to {len(out) - 1} ({name} returns a tuple)")
        out = out[index]
    elif output is not None and output != "0":
        raise ArgumentError("model output", output, f"nothing ({name} returns a single array)")
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    return np.asarray(out, dtype=np.float32)


def _import_callable(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArgumentError("model", spec, f"an importable module:callable (importing {module_name!r} failed: {exc})") from exc
    try:
        return functools.reduce(getattr, attr.split("."), module)
    except AttributeError as exc:
        raise ArgumentError("model", spec, f"a callable that {module_name} defines (no {attr!r} in it)") from exc


def _import_torch(what: str):
    try:
        import torch
    except ImportError as exc:
        raise VisionauditError(f"{what} needs PyTorch: pip install 'visionaudit[torch]'") from exc
    return torch


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_sha256(path: str) -> str:
    st = os.stat(path)
    return _sha256_of(os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _onnx_model(p: Path, output: str | None, prefer: str | None) -> Model:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise VisionauditError(f"{p} needs onnxruntime: pip install 'visionaudit[onnx]'") from exc
    available = ort.get_available_providers()
    providers = [x for x in ("CUDAExecutionProvider", "CPUExecutionProvider") if x in available] or available
    try:
        session = ort.InferenceSession(str(p), providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise SourceError(str(p), f"not a loadable ONNX model: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise SourceError(str(p), f"expected a model with one image input, found {len(inputs)}: "
                                  f"{', '.join(i.name for i in inputs)}")
    names = [o.name for o in session.get_outputs()]
    chosen = output if output is not None else (prefer if prefer in names else names[0])
    if chosen not in names:
        raise ArgumentError("model output", output, f"one of {', '.join(names)} (the outputs of {p.name})")
    input_name = inputs[0].name
    shape = session.get_outputs()[names.index(chosen)].shape
    width = int(np.prod(shape[1:])) if len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]) else None

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run([chosen], {input_name: batch})[0], dtype=np.float32)

    return Model(kind="onnx", name=str(p), identity=f"onnx:{_file_sha256(str(p))}", predict=predict, output=chosen,
                 outputs=names, input_shape=list(inputs[0].shape), input_dtype=_ONNX_TYPES.get(inputs[0].type),
                 output_width=width)


@dataclass
class ModelRun:
    """A model's outputs for distinct image paths, and how they were obtained.

    ``outputs[i]`` (flattened per image, float32) belongs to ``paths[i]``; a row of NaN where the
    image gave no output, with the reason in ``errors``. ``decoded`` counts images read and decoded
    in this run, ``inferred`` images the model ran on, ``from_cache`` paths answered by the cache.
    """

    paths: list[str]
    outputs: np.ndarray
    errors: dict[str, str]
    decoded: int
    inferred: int
    from_cache: int
    model: str
    output: str | None
    cache_dir: str | None

    def rows(self, paths: Sequence[str]) -> np.ndarray:
        """Output rows for ``paths`` (repeats allowed), in that order."""
        return self.outputs[pd.Index(self.paths).get_indexer([str(p) for p in paths])]


@functools.cache
def _code_digest() -> str:
    """Editing the preprocessing code starts a new output cache."""
    return hashlib.blake2b(Path(__file__).read_bytes(), digest_size=6).hexdigest()


def _cache_key(model: Model, spec: Preprocess, max_pixels: int) -> str:
    text = "\n".join([str(MODEL_CACHE_VERSION), _code_digest(), model.identity, str(model.output), spec.digest(),
                      str(max_pixels)])
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def run_model(
    model: str | os.PathLike | Model,
    paths: Sequence[str | os.PathLike],
    *,
    preprocess: Preprocess | dict[str, Any] | str | os.PathLike | None = None,
    output: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch_size: int = BATCH_SIZE,
    executor: Executor | None = None,
) -> ModelRun:
    """Run ``model`` on every distinct path once; reuse cached outputs of content seen before.
    Images are decoded on ``executor`` (default: :func:`~visionaudit.engine.make_executor` with ``workers``).

    >>> paths = dataset.samples["path"].tolist()
    >>> run = run_model("m.onnx", paths, cache_dir="model-cache")
    >>> run.outputs.shape, run.inferred, run.from_cache      # 2 files do not decode, 3 repeat another's bytes
    ((218, 4), 213, 0)
    >>> run_model("m.onnx", paths, cache_dir="model-cache").inferred
    0
    """
    loaded = model if isinstance(model, Model) else load_model(model, output)
    spec = Preprocess.from_config(preprocess if preprocess is not None else loaded.preprocess)
    loaded.check_preprocess(spec)
    if batch_size < 1:
        raise ArgumentError("batch_size", batch_size, "a positive integer")
    unique = list(dict.fromkeys(str(p) for p in paths))
    cache = (FeatureCache(cache_dir or default_cache_dir(), _cache_key(loaded, spec, max_pixels), kind="models")
             if use_cache else None)
    path_hash, stamps = cache.unchanged(unique) if cache is not None else ({}, {})
    todo = [p for p in unique if p not in path_hash]
    known = frozenset(cache.known_hashes()) if (cache is not None and todo) else frozenset()

    results: dict[str, tuple[np.ndarray | None, str | None]] = {}   # content hash -> (output, error)
    errors: dict[str, str] = {}
    batch: list[tuple[str, np.ndarray]] = []
    pending: list[dict[str, Any]] = []
    counts = {"decoded": 0, "inferred": 0}

    def infer() -> None:
        if not batch:
            return
        inputs = np.stack([a for _, a in batch])
        try:
            out = loaded.predict(inputs)
        except VisionauditError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model that rejects its input is the user's to fix: say so
            raise ArgumentError("model", loaded.name, f"a model accepting a {spec.dtype} batch of shape {inputs.shape} "
                                                      f"({type(exc).__name__}: {exc})") from exc
        if out.ndim == 0 or len(out) != len(batch):
            raise ArgumentError("model", loaded.name, f"one output row per image: {len(batch)} images gave shape {out.shape}")
        out = out.reshape(len(batch), -1)
        for (digest, _), row in zip(batch, out):
            results[digest] = (row, None)
            pending.append({"content_hash": digest, "values": row.tobytes(), "error": None})
        counts["inferred"] += len(batch)
        batch.clear()

    def flush() -> None:
        if cache is not None and pending:
            cache.append(pd.DataFrame(pending, columns=["content_hash", "values", "error"]))
        pending.clear()

    def take(path: str, digest: str | None, array: np.ndarray | None, error: str | None, cached: bool) -> None:
        if digest is None:
            errors[path] = error or "cannot read file"
            return
        path_hash[path] = digest
        if cached or digest in results or any(d == digest for d, _ in batch):
            return
        counts["decoded"] += 1
        if array is None:
            results[digest] = (None, error)
            pending.append({"content_hash": digest, "values": None, "error": error})
        else:
            batch.append((digest, array))
            if len(batch) >= batch_size:
                infer()
        if len(pending) >= FLUSH_ROWS:
            flush()

    settings = _InputSettings(known, spec, int(max_pixels))
    with progress_bar(len(todo), f"running {Path(loaded.name).name}", progress) as advance:
        for i, prepared in (executor or make_executor(workers)).map(_prepare_path, todo, settings,
                                                                    chunk_size=CHUNK_SIZE, progress=advance):
            take(todo[i], *prepared)
    infer()
    from_cache = 0
    wanted = {h for h in path_hash.values() if h not in results}
    if wanted and cache is not None:
        stored = cache.load(wanted).set_index("content_hash")
        for digest, row in stored.iterrows():
            values, error = row["values"], row["error"]
            # Parquet gives a stored None back as None or NaN, depending on the other rows of its part.
            results[digest] = (np.frombuffer(values, dtype=np.float32) if isinstance(values, bytes) else None,
                               error if isinstance(error, str) else None)
        lost = [p for p, h in path_hash.items() if h not in results]
        if lost:  # rows vanished from the cache underneath us: compute them now, in this process
            anew = replace(settings, known=frozenset())
            for p in lost:
                take(p, *_prepare_path(anew, p))
            infer()
        from_cache = sum(1 for p, h in path_hash.items() if h in stored.index)
    flush()
    if cache is not None:
        cache.update_path_index({p: (*stamps[p], h) for p, h in path_hash.items() if p in stamps})
        cache.compact_if_fragmented()

    dims = {len(v) for v, _ in results.values() if v is not None}
    if len(dims) > 1:
        raise ArgumentError("model", loaded.name, f"outputs of one size per image, got sizes {sorted(dims)}")
    dim = dims.pop() if dims else 0
    outputs = np.full((len(unique), dim), np.nan, dtype=np.float32)
    for i, p in enumerate(unique):
        digest = path_hash.get(p)
        if digest is None:
            continue
        values, error = results[digest]
        if values is None:
            errors[p] = error or "no output"
        else:
            outputs[i] = values
    return ModelRun(paths=unique, outputs=outputs, errors=errors, decoded=counts["decoded"],
                    inferred=counts["inferred"], from_cache=from_cache, model=loaded.name, output=loaded.output,
                    cache_dir=str(cache.dir) if cache is not None else None)
