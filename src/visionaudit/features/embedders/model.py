"""Embedders backed by an image model: ``onnx:PATH[#output]``, ``torchscript:PATH[#output]``,
``torch:module:callable[#output]``, and (in :mod:`.pretrained`) ``pretrained`` and ``timm:NAME``.

They read the images through :func:`visionaudit.features.models.run_model`, so embeddings are
cached on disk with the other per-image results and a re-run infers nothing new.

>>> emb = ModelEmbedder("onnx:m.onnx", lambda: load_model("m.onnx", prefer_output="embedding"))
>>> emb.embed(dataset.samples.head(2)).shape
(2, 3)
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import ArgumentError, SourceError
from ..models import RUN_OPTIONS, Model, Preprocess, load_model, model_kind, run_model
from .base import Embedder

#: The output an embedder takes when none is named and the model has one of this name.
EMBEDDING_OUTPUT = "embedding"


class ModelEmbedder(Embedder):
    """Vectors = a model's (flattened) output for each image, with ``preprocess`` (default ImageNet).

    The model is loaded on first use, so naming an embedder costs nothing until it embeds.
    Without ``preprocess``, the model's own recipe (:attr:`Model.preprocess`) or the ImageNet one.
    """

    def __init__(self, name: str, load: Callable[[], Model], preprocess: Preprocess | dict[str, Any] | str | None = None):
        self.name = name
        self._load = load
        self._model: Model | None = None
        self.preprocess = None if preprocess is None else Preprocess.from_config(preprocess)

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = self._load()
        return self._model

    def embed(self, features: pd.DataFrame, options: dict[str, Any] | None = None) -> np.ndarray:
        paths = features["path"].astype(str).tolist()
        given = options or {}
        run = run_model(self.model, paths, preprocess=self.preprocess, **{k: given[k] for k in RUN_OPTIONS if k in given})
        return run.rows(paths)


def _split_output(arg: str) -> tuple[str, str | None]:
    """``PATH#output`` -> (PATH, output); no ``#``: (arg, None)."""
    target, sep, output = arg.rpartition("#")
    return (target, output or None) if sep else (arg, None)


def file_embedder(scheme: str, arg: str, preprocess: Any = None) -> ModelEmbedder:
    """``onnx:PATH[#output]`` or ``torchscript:PATH[#output]``; the file must exist."""
    path, output = _split_output(arg)
    if not Path(path).is_file():
        raise SourceError(path, f"model file for the {scheme} embedder not found")
    suffix = Path(path).suffix.lower()
    if (scheme == "onnx") != (suffix == ".onnx"):
        raise SourceError(path, f"the {scheme} embedder needs " + ("an .onnx file" if scheme == "onnx" else
                                                                    "a TorchScript file (.pt, .pts, .torchscript)"))
    return ModelEmbedder(f"{scheme}:{arg}", lambda: load_model(path, output, prefer_output=EMBEDDING_OUTPUT), preprocess)


def torch_embedder(arg: str, preprocess: Any = None) -> ModelEmbedder:
    """``torch:package.module:callable[#output]``: the callable gets torch tensors."""
    spec, output = _split_output(arg)
    if model_kind(spec) != "callable":
        raise ArgumentError("embedder", f"torch:{arg}", "'torch:package.module:callable' (a TorchScript file: 'torchscript:PATH')")
    return ModelEmbedder(f"torch:{arg}", lambda: load_model(spec, output, prefer_output=EMBEDDING_OUTPUT,
                                                           torch_input=True), preprocess)
