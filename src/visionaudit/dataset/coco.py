"""COCO instances json: images become samples, annotations become the object table (pixel boxes, polygons
and RLE masks as written)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .manifest import split_name, unique_ids
from .model import Dataset, make_samples, object_table, rle_counts

#: Provenance columns the COCO reader adds to the object table.
PROVENANCE_COLUMNS = ("image_id", "annotation_id")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    # COCO ids are integers; some exporters write strings. Floats and booleans are never meant as ids.
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(str(source), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise SourceError(str(source), f"cannot read COCO json: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(str(source), f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from exc
    if not isinstance(data, dict):
        raise SourceError(str(source), f"expected a JSON object with 'images', 'annotations' and 'categories', "
                                       f"got {type(data).__name__}")
    return data


def _list(source: Path, data: dict[str, Any], key: str, required: bool) -> list[Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise SourceError(str(source), f"missing {key!r}: a COCO instances file lists its {key} there "
                                           f"(top-level keys found: {', '.join(map(str, data)) or 'none'})", field=key)
        return []
    if not isinstance(value, list):
        raise SourceError(str(source), f"expected a list, got {type(value).__name__}", field=key)
    return value


def _entry(source: Path, key: str, i: int, item: Any, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise SourceError(str(source), f"expected an object, got {_short(item)}", field=f"{key}[{i}]")
    for name in required:
        if name not in item:
            raise SourceError(str(source), f"missing {name!r}", field=f"{key}[{i}].{name}")
    return item


def _segmentation(source: Path, field: str, value: Any) -> tuple[list[list[float]] | None, dict[str, Any] | None]:
    """(polygon, rle) of an annotation's ``segmentation``: a list of flat polygons, or a run-length mask
    ``{"size": [h, w], "counts": [...] or "compressed string"}``; absent or empty is neither."""
    if value is None or value == []:
        return None, None
    if isinstance(value, list):
        polygon = []
        for j, part in enumerate(value):
            if not (isinstance(part, list) and len(part) >= 6 and len(part) % 2 == 0 and all(_is_number(v) for v in part)):
                raise SourceError(str(source), f"expected a polygon [x1, y1, x2, y2, x3, y3, ...] (an even count >= 6 "
                                               f"of numbers), got {_short(part)}", field=f"{field}[{j}]")
            polygon.append([float(v) for v in part])
        return polygon, None
    if not isinstance(value, dict):
        raise SourceError(str(source), f"expected a list of polygons or an RLE mask, got {_short(value)}", field=field)
    size, counts = value.get("size"), value.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                            for v in size)):
        raise SourceError(str(source), f"expected the mask size [height, width], got {_short(size)}", field=f"{field}.size")
    if isinstance(counts, str):
        try:
            runs = rle_counts(counts)
        except ValueError as exc:
            raise SourceError(str(source), f"broken compressed RLE: {exc}", field=f"{field}.counts") from None
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
        runs = counts
    else:
        raise SourceError(str(source), f"expected run lengths (a list of whole numbers >= 0 or COCO's compressed "
                                       f"string), got {_short(counts)}", field=f"{field}.counts")
    if sum(runs) != size[0] * size[1] or min(runs, default=0) < 0:
        raise SourceError(str(source), f"the runs cover {sum(runs)} pixels, but a {size[0]}x{size[1]} mask has "
                                       f"{size[0] * size[1]}", field=f"{field}.counts")
    return None, {"size": list(size), "counts": counts}


def read_coco(path: str | os.PathLike, images: str | os.PathLike | None = None, split: str | None = None) -> Dataset:
    """Read a COCO instances json (object detection ground truth).

    Each entry of ``images`` is a sample: ``sample_id`` is its ``file_name`` (a file listed under two
    image ids keeps both, the second as ``<file_name>@id <id>``), ``path`` is ``file_name`` under the
    ``images`` folder (default: the json's folder), ``label`` is None (the labels are per object),
    ``split`` is ``split`` for all; ``image_id``, ``declared_width`` and ``declared_height`` are kept.
    Each annotation is a row of ``Dataset.objects`` (the shared schema, ``model.OBJECT_COLUMNS``):
    ``object_id`` numbers an image's annotations in file order, ``category_id`` and ``label``
    (category name), ``x``, ``y``, ``w``, ``h`` the ``bbox`` (pixels, as COCO writes them),
    ``polygon`` the ``segmentation`` when it is a list of polygons, ``rle`` when it is a run-length
    mask (``counts`` kept as written, a list or the compressed string; crowd regions use this),
    ``iscrowd``, ``area`` as given (else the polygon's area, the mask's pixel count or ``w*h``), plus
    ``image_id`` and ``annotation_id``. A ``bbox`` that is not 4 finite numbers with a width and
    height >= 0 is an error, as is a malformed segmentation. Errors name the file and the JSON path
    of the bad value (``annotations[12].bbox``) or, for broken JSON, the line.

    >>> ds = read_coco("instances.json", images="images/")
    >>> ds.objects.groupby("label").size().to_dict()
    {'building': 4, 'tree': 4}
    >>> ds.objects[["object_id", "x", "y", "w", "h"]].head(1).values.tolist()
    [['000000.jpg#0', 30.0, 86.0, 91.0, 171.0]]
    """
    source = Path(path)
    data = _load(source)
    image_dir = Path(os.path.abspath(images if images is not None else source.parent))
    if images is not None and not image_dir.is_dir():
        raise SourceError(str(image_dir), "the images folder given for the COCO file is not a directory")
    split = split_name(split) if split is not None else None

    rows: list[dict[str, Any]] = []
    index_of_image: dict[Any, int] = {}
    for i, item in enumerate(_list(source, data, "images", required=True)):
        item = _entry(source, "images", i, item, ("id", "file_name"))
        image_id, file_name = item["id"], item["file_name"]
        if not _is_id(image_id):
            raise SourceError(str(source), f"expected an integer id, got {_short(image_id)}", field=f"images[{i}].id")
        if image_id in index_of_image:
            raise SourceError(str(source), f"duplicate image id {image_id!r} (also images[{index_of_image[image_id]}])",
                              field=f"images[{i}].id")
        if not isinstance(file_name, str) or not file_name.strip():
            raise SourceError(str(source), f"expected a file name, got {_short(file_name)}", field=f"images[{i}].file_name")
        declared = {}
        for key in ("width", "height"):
            value = item.get(key)
            if value is not None and not (_is_number(value) and value > 0):
                raise SourceError(str(source), f"expected a positive number, got {_short(value)}", field=f"images[{i}].{key}")
            declared[f"declared_{key}"] = value
        index_of_image[image_id] = i
        rows.append({"sample_id": file_name, "path": os.path.normpath(image_dir / file_name), "label": None,
                     "split": split, "image_id": image_id, **declared})
    if not rows:
        raise SourceError(str(source), "the COCO file lists no images", field="images")
    sample_ids = unique_ids([r["sample_id"] for r in rows], [f"id {r['image_id']}" for r in rows])
    for r, sid in zip(rows, sample_ids):
        r["sample_id"] = sid

    annotations = _list(source, data, "annotations", required=False)
    categories: dict[Any, str] = {}
    for i, item in enumerate(_list(source, data, "categories", required=bool(annotations))):
        item = _entry(source, "categories", i, item, ("id", "name"))
        if not _is_id(item["id"]):
            raise SourceError(str(source), f"expected an integer id, got {_short(item['id'])}", field=f"categories[{i}].id")
        if item["id"] in categories:
            raise SourceError(str(source), f"duplicate category id {item['id']!r}", field=f"categories[{i}].id")
        if not isinstance(item["name"], str) or not item["name"]:
            raise SourceError(str(source), f"expected a name, got {_short(item['name'])}", field=f"categories[{i}].name")
        categories[item["id"]] = item["name"]

    columns = ("sample_id", "label", "category_id", "x", "y", "w", "h", "polygon", "rle", "iscrowd", "area",
               *PROVENANCE_COLUMNS)
    objects: dict[str, list[Any]] = {c: [] for c in columns}
    for i, item in enumerate(annotations):
        item = _entry(source, "annotations", i, item, ("image_id", "category_id", "bbox"))
        image_id, category_id, bbox = item["image_id"], item["category_id"], item["bbox"]
        if image_id not in index_of_image:
            raise SourceError(str(source), f"unknown image id {_short(image_id)} (not in 'images')",
                              field=f"annotations[{i}].image_id")
        if category_id not in categories:
            raise SourceError(str(source), f"unknown category id {_short(category_id)} (not in 'categories')",
                              field=f"annotations[{i}].category_id")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise SourceError(str(source), f"expected 4 numbers [x, y, width, height], got {_short(bbox)}",
                              field=f"annotations[{i}].bbox")
        if bbox[2] < 0 or bbox[3] < 0:
            raise SourceError(str(source), f"expected a width and height >= 0 in [x, y, width, height], got "
                                           f"{_short(bbox)}", field=f"annotations[{i}].bbox")
        area = item.get("area")
        if area is not None and not _is_number(area):
            raise SourceError(str(source), f"expected a number, got {_short(area)}", field=f"annotations[{i}].area")
        iscrowd = item.get("iscrowd", 0)
        if iscrowd not in (0, 1):
            raise SourceError(str(source), f"expected 0 or 1, got {_short(iscrowd)}", field=f"annotations[{i}].iscrowd")
        polygon, rle = _segmentation(source, f"annotations[{i}].segmentation", item.get("segmentation"))
        x, y, w, h = (float(v) for v in bbox)
        for key, value in (("sample_id", sample_ids[index_of_image[image_id]]), ("label", categories[category_id]),
                           ("category_id", category_id), ("x", x), ("y", y), ("w", w), ("h", h),
                           ("polygon", polygon), ("rle", rle), ("iscrowd", bool(iscrowd)),
                           ("area", float(area) if area is not None else float("nan")),
                           ("image_id", image_id), ("annotation_id", item.get("id"))):
            objects[key].append(value)

    samples = make_samples(rows)
    return Dataset(
        samples=samples, source=str(source), format="coco", root=image_dir,
        classes=[categories[k] for k in sorted(categories, key=lambda k: (isinstance(k, str), k))],
        objects=object_table(objects),
    )
