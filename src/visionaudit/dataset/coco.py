"""COCO instances json: images become samples, annotations become the object table (pixel boxes, polygons
and RLE masks as written)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .folders import folder_split
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


def read_coco(path: str | os.PathLike, images: str | os.PathLike | None = None, split: str | None = None, *,
              require_images: bool = False) -> Dataset:
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

    Without ``images``, the folder is the json's own when its files are there, else the first of the
    places COCO keeps them that holds them (:func:`image_folder_candidates`: for
    ``annotations/instances_val2017.json``, ``val2017/`` beside ``annotations/``...).
    ``require_images``: when none of the listed files exists, a :class:`SourceError` that names
    where they were looked for and says to pass the folder (``--images``); otherwise such a file is
    kept, pointing where it would be (the scan reports it as missing).

    >>> ds = read_coco("instances.json", images="images/")
    >>> ds.objects.groupby("label").size().to_dict()
    {'building': 4, 'tree': 4}
    >>> ds.objects[["object_id", "x", "y", "w", "h"]].head(1).values.tolist()
    [['000000.jpg#0', 30.0, 86.0, 91.0, 171.0]]
    """
    source = Path(path)
    data = _load(source)
    image_dir = _image_folder(source, data, images)
    part = _read_part(source, data, image_dir, images is not None, split, root=None, require_images=require_images)
    return _combine([part], source=str(path), root=image_dir)


def read_coco_files(entries: list[tuple[str | os.PathLike, str | os.PathLike | None]], *,
                    root: str | os.PathLike | None = None, source: str | None = None) -> Dataset:
    """Read several COCO instances files, one per split, as one dataset: ``entries`` are ``(json,
    images)`` pairs (``images`` None: found as :func:`read_coco` finds it). Each file's split comes
    from its name (``instances_val2017.json`` -> ``val``), else from its image folder's
    (``val2017/``), else it is the file's name; two files that would share a split keep their own
    names. Sample ids are the image paths relative to ``root`` (default: the folder the image folders
    share), so the copies of a file in two splits (``train2017/a.jpg``, ``val2017/a.jpg``) stay two
    samples, which the leakage checks compare. The files must agree on what each category id means.

    >>> ds = read_coco_files([("instances.json", "images/")], root=".")
    >>> ds.samples["sample_id"].tolist()[:2]
    ['images/000000.jpg', 'images/000001.jpg']
    """
    if not entries:
        raise SourceError(str(source or root or "COCO"), "no COCO json given")
    jsons = [Path(j) for j, _ in entries]
    loaded = [_load(j) for j in jsons]
    folders = [_image_folder(j, data, images) for j, data, (_, images) in zip(jsons, loaded, entries)]
    base = Path(os.path.abspath(root)) if root is not None else Path(os.path.commonpath([str(f) for f in folders]))
    named = [_split_of(j, f) for j, f in zip(jsons, folders)]
    splits = [s if named.count(s) == 1 else _coco_tag(j) for s, j in zip(named, jsons)]
    parts = [_read_part(j, data, f, images is not None, s, root=base, require_images=True)
             for j, data, f, s, (_, images) in zip(jsons, loaded, folders, splits, entries)]
    return _combine(parts, source=source or ", ".join(map(str, jsons)), root=base)


def coco_layout(folder: str | os.PathLike) -> list[Path]:
    """The COCO instances files of a dataset folder kept as COCO ships it (``annotations/instances_*.json``
    beside ``train2017/``, ``val2017/``...), sorted; empty when it has none.

    >>> coco_layout("data/")
    []
    """
    annotations = Path(folder) / "annotations"
    if not annotations.is_dir():
        return []
    return sorted(p for p in annotations.iterdir() if p.is_file() and p.name.lower().startswith("instances_")
                  and p.suffix.lower() == ".json")


def read_coco_folder(folder: str | os.PathLike) -> Dataset:
    """A dataset folder in COCO's layout (:func:`coco_layout`): every ``annotations/instances_*.json``
    with its image folder, one split each (:func:`read_coco_files`), sample ids relative to ``folder``."""
    root = Path(os.path.abspath(folder))
    return read_coco_files([(j, None) for j in coco_layout(root)], root=root, source=str(root))


def _coco_tag(json_path: Path) -> str:
    """What a COCO file's name says after ``instances_`` (``train2017``), else its name."""
    stem = json_path.stem
    return stem[len("instances_"):] if stem.lower().startswith("instances_") and len(stem) > 10 else stem


def _split_of(json_path: Path, image_dir: Path) -> str | None:
    tag = _coco_tag(json_path)
    return folder_split(tag) or folder_split(image_dir.name) or tag


def image_folder_candidates(json_path: str | os.PathLike) -> list[Path]:
    """Where a COCO json's images are looked for when no folder is given, in order: the json's folder,
    then, with ``tag`` what its name says after ``instances_`` (``val2017``), ``<folder>/<tag>``,
    ``<folder>/images/<tag>``, ``<parent>/<tag>``, ``<parent>/images/<tag>``, ``<folder>/images`` and
    ``<parent>/images`` (``parent``: the folder above, e.g. the dataset root above ``annotations/``).

    >>> [p.relative_to(Path.cwd()).as_posix() for p in image_folder_candidates("annotations/instances_val2017.json")][:4]
    ['annotations', 'annotations/val2017', 'annotations/images/val2017', 'val2017']
    """
    json_path = Path(os.path.abspath(json_path))
    here, up, tag = json_path.parent, json_path.parent.parent, _coco_tag(json_path)
    found: list[Path] = []
    for p in (here, here / tag, here / "images" / tag, up / tag, up / "images" / tag, here / "images", up / "images"):
        if p not in found:
            found.append(p)
    return found


def _image_folder(source: Path, data: dict[str, Any], images: str | os.PathLike | None) -> Path:
    """The folder a COCO file's images are in: ``images`` when given (it must be a folder), else found
    (:func:`_find_image_folder`)."""
    if images is None:
        return _find_image_folder(source, _file_names(data))
    image_dir = Path(os.path.abspath(images))
    if not image_dir.is_dir():
        raise SourceError(str(image_dir), "the images folder given for the COCO file is not a directory")
    return image_dir


def _file_names(data: dict[str, Any], limit: int = 50) -> list[str]:
    """Up to ``limit`` ``file_name`` values of a COCO json, spread over its list (no validation: the
    reader does that)."""
    listed = data.get("images")
    if not isinstance(listed, list):
        return []
    names = [item.get("file_name") for item in listed if isinstance(item, dict)]
    names = [n for n in names if isinstance(n, str) and n.strip()]
    step = max(1, len(names) // limit)
    return names[::step][:limit]


def _find_image_folder(json_path: Path, names: list[str]) -> Path:
    """The candidate folder (:func:`image_folder_candidates`) holding the most of ``names``; the json's
    folder when it holds as many as any, or when none holds one."""
    candidates = image_folder_candidates(json_path)
    best, hits = candidates[0], -1
    for folder in candidates:
        if not folder.is_dir():
            continue
        n = sum(os.path.exists(folder / name) for name in names)
        if n > hits:
            best, hits = folder, n
        if hits == len(names):
            break
    return best if hits > 0 else candidates[0]


class _Part:
    """What one COCO file adds: sample rows (``sample_id`` as read), objects with the row they belong to,
    categories, where its images are."""

    def __init__(self, source: Path, image_dir: Path, rows: list[dict[str, Any]], objects: dict[str, list[Any]],
                 categories: dict[Any, str], tags: list[str]):
        self.source, self.image_dir, self.rows, self.objects = source, image_dir, rows, objects
        self.categories, self.tags = categories, tags


def _read_part(source: Path, data: dict[str, Any], image_dir: Path, given: bool, split: str | None, *,
               root: Path | None, require_images: bool) -> _Part:
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
        image_path = os.path.normpath(image_dir / file_name)
        sample_id = file_name
        if root is not None and image_path.startswith(str(root) + os.sep):
            sample_id = Path(os.path.relpath(image_path, root)).as_posix()
        rows.append({"sample_id": sample_id, "path": image_path, "label": None,
                     "split": split, "image_id": image_id, **declared})
    if not rows:
        raise SourceError(str(source), "the COCO file lists no images", field="images")
    if require_images and not any(os.path.exists(r["path"]) for r in rows):
        if given:
            where = f"under {image_dir}, the images folder given"
        else:
            looked = [p for p in image_folder_candidates(source) if p == image_dir or p.is_dir()]
            where = f"under {', '.join(map(str, looked))} (the json's folder and where COCO keeps images)"
        raise SourceError(str(source), f"none of the {len(rows)} image file(s) it lists exists (looked for "
                                       f"{_short(data['images'][0]['file_name'])}... {where}); pass the folder its "
                                       f"'file_name' entries are relative to: --images FOLDER (or --coco JSON:FOLDER)",
                          field="images")

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

    columns = ("row", "label", "category_id", "x", "y", "w", "h", "polygon", "rle", "iscrowd", "area",
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
        for key, value in (("row", index_of_image[image_id]), ("label", categories[category_id]),
                           ("category_id", category_id), ("x", x), ("y", y), ("w", w), ("h", h),
                           ("polygon", polygon), ("rle", rle), ("iscrowd", bool(iscrowd)),
                           ("area", float(area) if area is not None else float("nan")),
                           ("image_id", image_id), ("annotation_id", item.get("id"))):
            objects[key].append(value)

    tags = [f"id {r['image_id']}" for r in rows]
    return _Part(source, image_dir, rows, objects, categories, tags)


def _combine(parts: list[_Part], *, source: str, root: Path) -> Dataset:
    """One dataset from the parts of one or several COCO files: unique sample ids, objects pointing at
    them, and one category list (a category id that means two names is an error naming both files)."""
    categories: dict[Any, str] = {}
    defined_in: dict[Any, Path] = {}
    for part in parts:
        for cid, name in part.categories.items():
            if cid in categories and categories[cid] != name:
                raise SourceError(str(part.source), f"category id {cid!r} is {name!r} here but {categories[cid]!r} in "
                                                    f"{defined_in[cid]}: files read together must share their categories",
                                  field="categories")
            categories.setdefault(cid, name)
            defined_in.setdefault(cid, part.source)
    several = len(parts) > 1
    rows = [r for part in parts for r in part.rows]
    tags = [f"{r['split'] or part.source.stem} {tag}" if several else tag
            for part in parts for r, tag in zip(part.rows, part.tags)]
    sample_ids = unique_ids([r["sample_id"] for r in rows], tags)
    for r, sid in zip(rows, sample_ids):
        r["sample_id"] = sid
    objects: dict[str, list[Any]] = {}
    offset = 0
    for part in parts:
        for key, values in part.objects.items():
            if key == "row":
                objects.setdefault("sample_id", []).extend(sample_ids[offset + i] for i in values)
            else:
                objects.setdefault(key, []).extend(values)
        offset += len(part.rows)
    return Dataset(
        samples=make_samples(rows), source=source, format="coco", root=root,
        classes=[categories[k] for k in sorted(categories, key=lambda k: (isinstance(k, str), k))],
        objects=object_table(objects),
    )
