"""``evaluate``: judge a model's predictions on a dataset (metrics with CIs, label issues, calibration...)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from .analyses.evaluation_data import metrics_tables
from .checks.evaluation import EvaluationMetrics
from .context import Context
from .dataset import Dataset
from .errors import ArgumentError
from .features.decode import DEFAULT_MAX_PIXELS
from .features.thumbnails import ReportThumbnails
from .findings import Result
from .scan import run_suite
from .suites import resolve_config


def embedder_warning(embedder: str) -> str | None:
    """What a run with ``embedder`` must say before it starts: ``auto`` without the pretrained embedder
    installed falls back to builtin (:func:`visionaudit.features.embedders.resolve_embedder`)."""
    from .features.embedders import resolve_embedder

    return resolve_embedder(embedder)[1]


def evaluate(
    source: str | os.PathLike | Dataset,
    predictions: str | os.PathLike | None = None,
    *,
    images: str | os.PathLike | None = None,
    group_columns: Sequence[str] = (),
    config: str | os.PathLike | dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    from_logits: bool | Literal["auto"] = "auto",
    embedder: str = "auto",
    folds: int = 5,
    compare: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    preprocess: Any = None,
    model_classes: str | os.PathLike | Sequence[str] | None = None,
    model_output: str | None = None,
    thumbnails: ReportThumbnails | None = None,
) -> Result:
    """Evaluate a model's predictions on a labelled dataset with the ``evaluate`` suite.

    ``predictions`` is a CSV/TSV/Parquet file keyed by ``sample_id`` or ``path`` with one probability
    (or logit) column per class, or an ``.npy`` array in dataset order (see
    :func:`visionaudit.predictors.from_file.read_predictions`). Metrics are computed per split on the
    samples that have both a label and a prediction; use out-of-sample predictions (held-out splits,
    cross-validated train predictions), or the label-issue check sees what the model memorised.

    Without ``predictions``, out-of-fold probabilities are made after the feature pass: a logistic
    regression on ``embedder``'s image embeddings, ``folds``-fold cross-validated over the labelled
    samples, groups and duplicate clusters kept in one fold
    (:func:`visionaudit.predictors.crossval.cross_validated_predictions`); ``run_info["predictions"]`` says so,
    with the embedder used and the out-of-fold accuracy it reached. ``embedder="auto"`` (the default) is
    ``pretrained`` (EfficientNet-Lite0) when ``visionaudit[pretrained]`` is installed, else ``builtin``, with
    a warning in ``run_info["predictions"]["warnings"]`` and on the label-issue finding that its label issues
    are weak on photographs.

    The Result's ``stats`` holds the metrics tables (``metrics``, ``per_class``, ``calibration``,
    ``confusion``; see :func:`visionaudit.checks.evaluation.metrics_tables`) and ``run_info["predictions"]``
    says which file was read.

    ``compare`` is a second predictions file (model B, same format) judged against ``predictions``
    (model A) on the evaluation split's samples both predicted: the ``model_comparison`` finding says
    whether B is significantly better or worse (paired bootstrap CIs, McNemar's exact test; see
    :mod:`visionaudit.checks.compare`). The other checks judge A.

    >>> result = evaluate("data/", "preds.csv")
    >>> print(result.stats["metrics"].query("split == 'test' and metric == 'accuracy'").round(3).to_string(index=False))
    split   metric  value   low  high  n
     test accuracy  0.804 0.674 0.913 46
    >>> result.finding("small_test_set").message     # doctest: +ELLIPSIS
    'the test split has 46 samples with labels and predictions; a 95% CI of accuracy +-0.02 ... needs 1512 (now +-0.115)'
    >>> evaluate("data/", embedder="builtin", folds=5).run_info["predictions"]["source"]
    '5-fold cross-validated logistic regression on builtin embeddings'

    ``model`` (instead of ``predictions``) is an image model visionaudit runs over the dataset: an
    ``.onnx`` file, a TorchScript file or a Python ``module:callable``, with ``preprocess`` (a
    :class:`~visionaudit.features.models.Preprocess`, dict or YAML/JSON file; default ImageNet) and
    ``model_output`` (output name; default the first). Columns are named by ``model_classes`` (a file
    with one class per line, or a list), else by the dataset's sorted labels when there are as many.
    Outputs that are not probabilities are read as logits (softmax); ``run_info["predictions"]`` says
    ``method: model``. Outputs are cached with the features, so a re-run infers nothing new.
    ``thumbnails`` is connected to the report thumbnails of the feature pass (as in :func:`~visionaudit.scan`).

    >>> evaluate("data/", model="m.onnx", model_classes="classes.txt").run_info["predictions"]["method"]
    'model'
    >>> evaluate("data/", "a.csv", compare="b.csv").finding("model_comparison").message   # doctest: +ELLIPSIS
    'B (b.csv) is significantly better than A (a.csv) on the test split (46 samples): accuracy 1.000 vs 0.804, ...'
    """
    if compare is not None and predictions is None:
        raise ArgumentError("compare", str(compare), "given together with predictions (the model B is compared with)")
    cfg = resolve_config(config)
    # The stats tables use the metrics check's own settings, so they share its (memoised) bootstrap.
    overrides = (cfg.get("checks") or {}).get(EvaluationMetrics.id, {})
    params = EvaluationMetrics(**overrides).params_for_metrics()

    def stats(ctx: Context) -> dict[str, Any]:
        return metrics_tables(ctx, **params)

    return run_suite("evaluate", source, images=images, group_columns=group_columns, config=cfg, cache_dir=cache_dir,
                     use_cache=use_cache, workers=workers, progress=progress, max_pixels=max_pixels,
                     predictions=predictions, from_logits=from_logits, compare=compare, stats=stats, thumbnails=thumbnails,
                     model=None if model is None else {"model": model, "preprocess": preprocess,
                                                       "classes": model_classes, "output": model_output},
                     cross_validate=None if predictions is not None or model is not None
                     else {"embedder": embedder, "folds": folds})
