"""Readers for every input format; only this package parses annotation and manifest files."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import ArgumentError, SourceError
from .folders import read_folder
from .model import Dataset, make_samples

__all__ = ["Dataset", "load_dataset", "make_samples", "read_folder"]


def load_dataset(
    source: str | os.PathLike | Dataset | Sequence[tuple[str | os.PathLike, str | os.PathLike | None]],
    *,
    images: str | os.PathLike | None = None,
    split: str | None = None,
) -> Dataset:
    """Open ``source`` as a :class:`Dataset`, choosing the reader by what it is.

    - a directory: COCO as COCO ships it when it has ``annotations/instances_*.json`` (every file, one
      split each, with ``train2017/``, ``val2017/``... beside ``annotations/``:
      :func:`coco.read_coco_folder`), YOLO when it holds a ``data.yaml`` (:func:`yolo.yolo_layout`),
      Pascal VOC when it has ``Annotations/`` and ``JPEGImages/`` or
      ``.xml`` files beside images of the same name (:func:`voc.voc_layout`), else an
      ImageFolder-style tree (optional split folders: ``train``, ``val2017``, ``images/train``...)
    - a list of ``(COCO json, image folder or None)`` pairs: one split each, read as one dataset
      (:func:`coco.read_coco_files`; the CLI's repeated ``--coco JSON:IMAGES``)
    - ``.csv`` / ``.parquet``: a manifest with a ``path`` column and optional ``label``, ``split``,
      ``id`` and metadata columns (paths relative to the manifest's folder)
    - ``.json``: COCO instances file; ``images`` names the image folder (default: the json's folder,
      or where COCO keeps images beside it); none of its files existing there is an error
    - ``.yaml`` / ``.yml``: YOLO data.yaml with train/val/test entries

    >>> load_dataset("data/").task.value
    'classification'
    >>> ds = load_dataset("instances.json", images="images/")
    >>> ds.task.value, len(ds.samples), len(ds.objects)
    ('detection', 5, 8)
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (list, tuple)):
        from .coco import read_coco_files
        if images is not None:
            raise ArgumentError("images", str(images), "no --images with --coco pairs (each pair names its folder)")
        return read_coco_files(list(source))
    path = Path(source)
    if not path.exists():
        raise ArgumentError("source", str(source), "an existing folder, manifest (.csv/.parquet), COCO .json or YOLO .yaml")
    if path.is_dir():
        if images is not None:
            raise ArgumentError("images", str(images), "no --images with a folder source (it is only for COCO json)")
        from .coco import coco_layout, read_coco_folder
        if coco_layout(path):
            return read_coco_folder(path)
        from .yolo import read_yolo, yolo_layout
        data_yaml = yolo_layout(path)
        if data_yaml is not None:
            return read_yolo(data_yaml)
        from .voc import read_voc, voc_layout
        return read_voc(path) if voc_layout(path) else read_folder(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet", ".pq"):
        from .manifest import read_manifest
        return read_manifest(path)
    if suffix == ".json":
        from .coco import read_coco
        return read_coco(path, images=images, split=split, require_images=True)
    if suffix in (".yaml", ".yml"):
        from .yolo import read_yolo
        return read_yolo(path)
    raise SourceError(str(path), f"unknown source type {suffix!r}: expected a folder, .csv, .parquet, .json (COCO) or .yaml (YOLO)")
