"""``scan``: the foundation job. Dataset -> Features -> Predictors -> Context -> Checks -> Conditions -> Result.

:func:`run_suite` is that run for any suite; ``evaluate`` uses it with a predictions file.
"""
from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

import pandas as pd

from . import __version__
from .analyses import RunData
from .context import Context
from .dataset import Dataset, load_dataset
from .errors import ArgumentError
from .features import default_cache_dir
from .features.decode import DEFAULT_MAX_PIXELS
from .features.thumbnails import ReportThumbnails
from .findings import (
    CheckOutput,
    Finding,
    Result,
    Severity,
    apply_conditions,
    scores_table,
)
from .predictors import PredictionPlan, read_predictions
from .suites import build_checks, resolve_config


def scan(
    source: str | os.PathLike | Dataset,
    *,
    images: str | os.PathLike | None = None,
    group_columns: Sequence[str] = (),
    config: str | os.PathLike | dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    thumbnails: ReportThumbnails | None = None,
) -> Result:
    """Audit an image dataset for integrity, quality, duplicates, split leakage and balance.

    ``source`` is a folder, a CSV/Parquet manifest, a COCO json (with ``images``) or a YOLO yaml.
    ``group_columns`` names metadata columns (patient, video...) that must not span splits.
    The Result carries the thumbnails of the run's decode pass for the report (``result.thumbnails``, a
    :class:`~visionaudit.features.thumbnails.ReportThumbnails`); ``thumbnails``, when given, is the one
    connected to them.

    >>> result = scan("data/")
    >>> [f.issue for f in result.findings][:6]
    ['zero_byte', 'truncated', 'wrong_extension', 'exif_rotation', 'blurry', 'dark']
    >>> result.issues["blurry_score"].nsmallest(2).round(3)   # per-image scores in [0, 1], lower = worse
    sample_id
    train/beach/beach_0010.jpg    0.015
    train/city/city_0014.jpg      0.985
    Name: blurry_score, dtype: float64
    """
    return run_suite("scan", source, images=images, group_columns=group_columns, config=config, cache_dir=cache_dir,
                     use_cache=use_cache, workers=workers, progress=progress, max_pixels=max_pixels,
                     thumbnails=thumbnails)


def run_suite(
    suite: str,
    source: str | os.PathLike | Dataset,
    *,
    images: str | os.PathLike | None = None,
    group_columns: Sequence[str] = (),
    config: str | os.PathLike | dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    predictions: str | os.PathLike | None = None,
    from_logits: bool | Literal["auto"] = "auto",
    compare: str | os.PathLike | None = None,
    model: dict[str, Any] | None = None,
    cross_validate: dict[str, Any] | None = None,
    stats: Callable[[Context], dict[str, Any]] | None = None,
    thumbnails: ReportThumbnails | None = None,
) -> Result:
    """The run every job shares: load the dataset (and predictions), build the Context, run ``suite``.

    ``stats`` computes the Result's ``stats`` from the run's Context (e.g. evaluate's metrics tables),
    so it shares what the checks already computed. Bad predictions fail before any image is decoded.
    ``cross_validate`` (keyword arguments of :func:`visionaudit.predictors.crossval.cross_validated_predictions`,
    e.g. ``{"embedder": "builtin", "folds": 5}``) makes the predictions after the feature pass
    when no predictions file is given. ``compare`` is a second predictions file (model B), read like
    ``predictions`` and handed to the checks as ``ctx.compare``. ``model`` (keyword
    arguments of :meth:`visionaudit.predictors.from_model.ModelPredictor.prepare`: ``model``, ``preprocess``,
    ``classes``, ``output``) runs an image model over the dataset after the feature pass for the predictions.
    ``thumbnails`` (a new one when not given) is connected to the report thumbnails of the feature pass
    and carried by the Result.

    >>> result = run_suite("scan", "data/", config={"checks": {"quality.blurry": {"severity": "error"}}})
    >>> result.run_info["job"], result.finding("blurry").severity.value
    ('scan', 'error')
    """
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    cfg = resolve_config(config)  # a bad config fails here, before the dataset is read
    dataset = load_dataset(source, images=images)
    groups = list(group_columns) or list(cfg.get("group_columns", []) or [])
    for col in groups:
        if col not in dataset.samples.columns:
            raise ArgumentError("group_columns", col, f"a column of the dataset ({', '.join(map(str, dataset.samples.columns))})")
    if workers is not None and workers < 1:
        raise ArgumentError("workers", workers, "a positive integer")
    plan = PredictionPlan.prepare(dataset, predictions=predictions, model=model, cross_validate=cross_validate,
                                  from_logits=from_logits)
    other = None if compare is None else read_predictions(compare, dataset, from_logits=from_logits)
    checks = build_checks(suite, cfg.get("checks"), task=dataset.task)  # made before the decode pass: a check
    # that refuses its settings stops the run before any image is decoded
    data = RunData(dataset, feature_options={"cache_dir": cache_dir or default_cache_dir(), "use_cache": use_cache,
                                             "workers": workers, "progress": progress, "max_pixels": max_pixels},
                   group_columns=groups)
    t0 = time.perf_counter()
    run = data.feature_run
    feature_seconds = time.perf_counter() - t0
    # The Result carries the run's thumbnails, so every report of it shows images without decoding any.
    thumbnails = ReportThumbnails() if thumbnails is None else thumbnails
    thumbnails.connect(run.thumbnails, dataset.samples.set_index("sample_id")["path"])
    t1 = time.perf_counter()
    preds, made = plan.make(data)
    prediction_seconds = time.perf_counter() - t1
    ctx = Context(data, predictions=preds, compare=other)
    outputs: list[CheckOutput] = []
    timings: dict[str, float] = {}
    for check in checks:
        t = time.perf_counter()
        try:
            outputs.append(check.run(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others' findings
            outputs.append(check.output().add(Finding(
                check=check.id, issue="check_failed", family=check.family, title=f"Check {check.id} failed",
                severity=Severity.ERROR, message=f"{type(exc).__name__}: {exc}",
                evidence={"traceback": traceback.format_exc()})))
        timings[check.id] = round(time.perf_counter() - t, 4)
    findings = apply_conditions([f for out in outputs for f in out.findings], cfg.get("checks"))
    t2 = time.perf_counter()
    job_stats = stats(ctx) if stats else {}
    stats_seconds = time.perf_counter() - t2
    run_info = {
        "version": __version__,
        "job": suite,
        "started_at": started_at,
        "seconds": round(time.perf_counter() - started, 3),
        "feature_seconds": round(feature_seconds, 3),
        # where the time went: reading the inputs, the decode pass, predictions (a model, embeddings and
        # cross-validation), the checks, the job's tables (evaluate's metrics)
        "stage_seconds": {"load": round(t0 - started, 3), "decode": round(feature_seconds, 3),
                          "predictions": round(prediction_seconds, 3), "checks": round(t2 - t1 - prediction_seconds, 3),
                          "stats": round(stats_seconds, 3)},
        "images_decoded": run.decoded,
        "images_from_cache": run.from_cache,
        "cache_dir": run.cache_dir,
        "group_columns": groups,
        "check_seconds": timings,
    }
    if preds is not None:
        run_info["predictions"] = {"path": preds.source, "classes": preds.classes,
                                   "with_prediction": int(preds.has.sum()), "without_prediction": preds.missing,
                                   "notes": list(preds.notes)}
    if other is not None:
        run_info["compare"] = {"path": other.source, "with_prediction": int(other.has.sum()),
                               "without_prediction": other.missing, "notes": list(other.notes)}
    if made is not None and made.get("stage_seconds"):
        # cross-validation: the predictions stage is the embedding and the folds, each named with its time
        stages = run_info["stage_seconds"]
        split = {k: float(v) for k, v in made["stage_seconds"].items()}
        rest = round(max(0.0, stages.pop("predictions") - sum(split.values())), 3)
        run_info["stage_seconds"] = {**{k: v for k, v in stages.items() if k in ("load", "decode")}, **split,
                                     **({"predictions": rest} if rest >= 0.05 else {}),
                                     **{k: v for k, v in stages.items() if k not in ("load", "decode")}}
    if made is not None:
        info = run_info["predictions"]
        del info["path"]
        run_info["predictions"] = {**made, **info}
        if made["method"] == "cross-validation":
            run_info["embedder"] = made.get("embedder", "builtin")
    features = ctx.features.drop(columns=["tiny", "thumb"], errors="ignore")  # fingerprint bytes: not for users
    return Result(findings=findings, issues=scores_table(outputs, ctx.sample_ids), features=features,
                  dataset_summary=dataset.summary(), run_info=run_info, stats=job_stats,
                  object_issues=_item_scores(outputs, "object_id", dataset.objects),
                  prediction_issues=_item_scores(outputs, "prediction_id", getattr(preds, "objects", None)),
                  thumbnails=thumbnails)


def _item_scores(outputs: list[CheckOutput], key: Literal["object_id", "prediction_id"],
                 table: pd.DataFrame | None) -> pd.DataFrame | None:
    """The scores table of the annotated objects (``object_id``) or predicted objects
    (``prediction_id``): a row per item of ``table`` (or per item scored), None when no check judged one."""
    if not any(s.key == key for out in outputs for s in out.scores):
        return None
    scored = {i for out in outputs for s in out.scores if s.key == key for i in s.scores.index}
    ids = pd.Index(table[key] if table is not None and key in table else sorted(scored), name=key)
    return scores_table(outputs, ids, key=key)
