"""YOLO datasets: a data.yaml naming split folders (or image lists) and the class names; one label
file per image under the parallel ``labels/`` folder, one object per line, normalised coordinates that
the reader turns into pixels with each image's size read from its header."""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from PIL import Image

from ..errors import SourceError
from .folders import _walk_images
from .manifest import unique_ids
from .model import Dataset, make_samples, object_table

SPLIT_KEYS = ("train", "val", "test")
#: Provenance columns the YOLO reader adds to the object table: ``shape`` ("box" or "polygon", what the
#: line held), the label file and its line number.
PROVENANCE_COLUMNS = ("shape", "label_file", "line")
_EXIF_ORIENTATION = 0x0112
#: Below this many images the headers are read in this thread (a pool costs more than it saves).
_POOL_FROM = 64


def label_path(image_path: str) -> str:
    """Where a YOLO image's label file is: the last ``images`` folder of the path becomes ``labels`` and
    the extension ``.txt``, as Ultralytics does (beside the image when no ``images`` folder is named).

    >>> label_path("/data/images/train/0001.jpg")
    '/data/labels/train/0001.txt'
    """
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return os.path.splitext(labels.join(image_path.rsplit(images, 1)))[0] + ".txt"


def _load(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(str(source), f"cannot read YOLO data.yaml: {exc}") from exc
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SourceError(str(source), f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                          line=mark.line + 1 if mark is not None else None) from exc
    if not isinstance(config, dict):
        raise SourceError(str(source), "expected a mapping with 'train'/'val'/'test' and 'names'")
    return config


def _class_names(source: Path, config: dict[str, Any]) -> dict[int, str]:
    names, nc = config.get("names"), config.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 0):
        raise SourceError(str(source), f"expected a class count, got {nc!r}", field="nc")
    if names is None:
        if nc is None:
            raise SourceError(str(source), "missing 'names' (the class names, a list or an id -> name mapping)",
                              field="names")
        return {i: str(i) for i in range(nc)}
    if isinstance(names, list):
        out = {i: str(n) for i, n in enumerate(names)}
    elif isinstance(names, dict):
        out = {}
        for key, name in names.items():
            try:
                cid = int(key)
            except (TypeError, ValueError):
                raise SourceError(str(source), f"class ids must be whole numbers, got {key!r}", field="names") from None
            if isinstance(key, (bool, float)) or cid < 0:
                raise SourceError(str(source), f"class ids must be whole numbers >= 0, got {key!r}", field="names")
            out[cid] = str(name)
    else:
        raise SourceError(str(source), f"expected a list or a mapping of class names, got {type(names).__name__}",
                          field="names")
    if nc is not None and nc != len(out):
        raise SourceError(str(source), f"nc is {nc} but 'names' lists {len(out)} classes", field="nc")
    return out


def _keypoint_values(source: Path, config: dict[str, Any]) -> int | None:
    shape = config.get("kpt_shape")
    if shape is None:
        return None
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise SourceError(str(source), f"expected [keypoints, values per keypoint], got {shape!r}", field="kpt_shape")
    return shape[0] * shape[1]


def _list_images(source: Path, key: str, entry: str, root: str) -> list[str]:
    """Image paths of one split entry: a folder (searched recursively) or a .txt list of image paths."""
    where = os.path.normpath(os.path.join(root, os.path.expanduser(entry)))
    if os.path.isdir(where):
        return _walk_images(Path(where))
    if os.path.isfile(where) and where.lower().endswith(".txt"):
        try:
            text = Path(where).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(where, f"cannot read image list: {exc}") from exc
        folder = os.path.dirname(where)
        return [os.path.normpath(os.path.join(folder, line.strip())) for line in text.splitlines() if line.strip()]
    if os.path.exists(where):
        raise SourceError(str(source), f"{entry!r} ({where}) is neither a folder nor a .txt list of images", field=key)
    # A symlink copied as a plain file (git without symlink support) blocks the path: say which one.
    blocker = next((str(p) for p in Path(where).parents if p.is_file()), None)
    why = f"; {blocker} is a file, not a folder" if blocker else ""
    raise SourceError(str(source), f"{entry!r} does not exist (looked for {where}{why})", field=key)


def _parse_label_file(path: str, names: dict[int, str], keypoint_values: int | None) -> list[tuple]:
    """(class_id, shape, coordinates, line) per object, normalised as written: ``(cx, cy, w, h)`` for a
    box, the flat ``x1, y1, x2, y2, ...`` for a polygon."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(path, f"cannot read label file: {exc}") from exc
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        values = []
        for part in parts:
            try:
                value = float(part)
            except ValueError:
                raise SourceError(path, f"{part!r} is not a number", line=lineno) from None
            if not math.isfinite(value):
                raise SourceError(path, f"{part!r} is not a finite number", line=lineno)
            values.append(value)
        cls, coords = values[0], values[1:]
        if not cls.is_integer() or int(cls) not in names:
            known = f"0-{len(names) - 1}" if sorted(names) == list(range(len(names))) else ", ".join(map(str, sorted(names)))
            raise SourceError(path, f"class id {parts[0]} is not one of the data.yaml names' ids ({known})", line=lineno)
        if keypoint_values is not None:
            if len(coords) != 4 + keypoint_values:
                raise SourceError(path, f"expected {5 + keypoint_values} values (class cx cy w h and keypoints as "
                                        f"kpt_shape says), got {len(parts)}", line=lineno)
            coords = coords[:4]
        if len(coords) == 4:
            rows.append((int(cls), "box", coords, lineno))
        elif len(coords) >= 6 and len(coords) % 2 == 0:
            rows.append((int(cls), "polygon", coords, lineno))
        else:
            raise SourceError(path, f"expected 5 values (class cx cy w h) or a polygon (class x1 y1 x2 y2 x3 y3 ...), "
                                    f"got {len(parts)} values", line=lineno)
    return rows


def displayed_size(path: str) -> tuple[int, int, int] | None:
    """``(width, height, exif_orientation)`` of an image as it is displayed, from its header alone (no
    pixel decode); None when the file cannot be opened as an image.

    The size is the one after the EXIF orientation is applied, as Ultralytics uses: its loader
    (``cv2.imread``) turns the pixels upright before the normalised labels are scaled, and its
    ``exif_size`` swaps width and height for orientations 6 and 8. Width and height are swapped for
    5 and 7 too (a quarter turn plus a mirror), which cv2 and Pillow's ``exif_transpose`` also turn;
    Ultralytics' ``exif_size`` leaves those two as stored, but its training images are turned. The
    orientation is 1 when the tag is absent or not one of 1-8. A PNG is only asked for EXIF when its
    header holds it: Pillow would decode the whole image to look for an ``eXIf`` chunk after the
    pixels.
    """
    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = 1
            if im.format != "PNG" or "exif" in im.info:
                try:
                    tag = im.getexif().get(_EXIF_ORIENTATION, 1)
                except Exception:  # noqa: BLE001 - a broken EXIF block leaves the image as stored
                    tag = 1
                orientation = tag if isinstance(tag, int) and 1 <= tag <= 8 else 1
    except Exception:  # noqa: BLE001 - missing, unreadable, not an image, decompression bomb: the scan reports it
        return None
    return (height, width, orientation) if orientation >= 5 else (width, height, orientation)


def _displayed_sizes(paths: list[str]) -> list[tuple[int, int, int] | None]:
    if len(paths) < _POOL_FROM:
        return [displayed_size(p) for p in paths]
    # Opening a header is mostly waiting on the file system; threads overlap that.
    with ThreadPoolExecutor(max_workers=min(16, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(displayed_size, paths, chunksize=32))


def _to_pixels(shape: str, coords: list[float], width: int, height: int) -> tuple[float, float, float, float, list | None]:
    """``(x, y, w, h, polygon)`` in pixels from a line's normalised coordinates; a polygon's box is its
    bounding box."""
    if shape == "box":
        cx, cy, w, h = coords
        return (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height, None
    xs, ys = [v * width for v in coords[0::2]], [v * height for v in coords[1::2]]
    flat = [v for point in zip(xs, ys) for v in point]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), [flat]


def yolo_layout(folder: str | os.PathLike) -> Path | None:
    """The data.yaml of a YOLO dataset folder (as Ultralytics and Roboflow export it): ``data.yaml``
    (or ``data.yml``) at its top, else its only top-level ``.yaml`` that names classes (``names``) and
    at least one of ``train``/``val``/``test``; None for any other folder.

    >>> yolo_layout("yolo/").name, yolo_layout("data/")
    ('data.yaml', None)
    """
    top = Path(folder)
    for name in ("data.yaml", "data.yml"):
        if (top / name).is_file():
            return top / name
    candidates = [p for p in top.iterdir() if p.is_file() and p.suffix.lower() in (".yaml", ".yml")]
    if len(candidates) != 1:
        return None
    try:
        config = yaml.safe_load(candidates[0].read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        return None
    if isinstance(config, dict) and "names" in config and any(config.get(k) for k in SPLIT_KEYS):
        return candidates[0]
    return None


def read_yolo(path: str | os.PathLike) -> Dataset:
    """Read a YOLO dataset from its data.yaml.

    ``path`` in the yaml is the dataset root (relative to the yaml's folder; default: that folder).
    ``train``/``val``/``test`` are each a folder (searched recursively), a ``.txt`` list of image
    paths (relative to the list's folder) or a list of those, relative to the root. ``names`` is a
    list or an id -> name mapping. Each image's labels are read from the file Ultralytics would read
    (``.../images/...`` -> ``.../labels/...``, extension ``.txt``; symlinks are not resolved first,
    so an ``images`` symlink still finds the ``labels`` beside it); an image without a label file
    has no objects. A line is ``class cx cy w h`` or a YOLO-seg polygon ``class x1 y1 x2 y2 ...``;
    with ``kpt_shape`` the keypoints after the box are skipped.

    ``Dataset.objects`` is the shared object table (``model.OBJECT_COLUMNS``) in pixels: each image's
    size is read from its header (:func:`displayed_size`: the EXIF-corrected size, as Ultralytics
    scales labels) and the normalised values multiplied by it. A polygon line keeps its polygon and
    its box is the polygon's bounding box. ``category_id`` is the class index, ``object_id`` numbers
    an image's lines in file order; ``shape``, ``label_file`` and ``line`` say where each object came
    from. Boxes reaching outside the image are kept as written for the detection checks. An image
    that cannot be opened (missing, corrupt, not an image) keeps its objects, since the label file
    is still the user's annotation, but their box, polygon and area are unknown: NaN / None, with a
    note (the scan reports the file itself). ``samples`` gains ``image_width``, ``image_height`` (the
    size used, missing when unreadable) and ``exif_orientation`` (1-8, 1 when absent or unreadable).
    A malformed line is a :class:`SourceError` naming the label file and line.

    >>> ds = read_yolo("yolo/data.yaml")
    >>> ds.objects.groupby("label").size().to_dict()
    {'building': 4, 'tree': 4}
    >>> [round(v, 3) for v in ds.objects.loc[0, ["x", "y", "w", "h"]]]    # the COCO file's box, from 6 decimals
    [30.0, 86.0, 91.0, 171.0]
    """
    source = Path(path)
    config = _load(source)
    base = config.get("path")
    if base is not None and not isinstance(base, str):
        raise SourceError(str(source), f"expected a folder, got {base!r}", field="path")
    root = os.path.normpath(os.path.join(os.path.abspath(source.parent), os.path.expanduser(base or ".")))
    if not os.path.isdir(root):
        raise SourceError(str(source), f"dataset root {root} is not a folder", field="path")
    names = _class_names(source, config)
    keypoint_values = _keypoint_values(source, config)

    listed: list[tuple[str, str]] = []
    for key in SPLIT_KEYS:
        entries = config.get(key)
        if entries in (None, ""):
            continue
        if isinstance(entries, str):
            entries = [entries]
        if not (isinstance(entries, list) and all(isinstance(e, str) and e for e in entries)):
            raise SourceError(str(source), f"expected a folder, a .txt list or a list of those, got {entries!r}", field=key)
        for entry in entries:
            listed.extend((key, image) for image in _list_images(source, key, entry, root))
    if not listed:
        named = [k for k in SPLIT_KEYS if config.get(k)]
        raise SourceError(str(source), f"no images found in {', '.join(named)}" if named
                          else "none of 'train', 'val', 'test' is set", field=named[0] if named else None)

    # Ids are paths relative to the root, so they read the same on every machine.
    ids = [Path(os.path.relpath(image, root) if image.startswith(root + os.sep) else image).as_posix()
           for _, image in listed]
    sample_ids = unique_ids(ids, [split for split, _ in listed])
    parsed: dict[str, list[tuple] | None] = {}
    samples, objects = [], []
    for (split, image), sid in zip(listed, sample_ids):
        labels = label_path(image)
        if labels not in parsed:
            parsed[labels] = _parse_label_file(labels, names, keypoint_values) if os.path.isfile(labels) else None
        samples.append({"sample_id": sid, "path": image, "label": None, "split": split,
                        "label_file": labels if parsed[labels] is not None else None})
    sizes = _displayed_sizes([image for _, image in listed])
    unsized = 0
    for sample, size in zip(samples, sizes):
        width, height, orientation = size if size is not None else (None, None, 1)
        sample.update(image_width=width, image_height=height, exif_orientation=orientation)
        rows = parsed[sample["label_file"]] if sample["label_file"] is not None else []
        unsized += len(rows) if size is None else 0
        for cls, shape, coords, line in rows:
            x, y, w, h, polygon = (_to_pixels(shape, coords, width, height) if size is not None
                                   else (math.nan, math.nan, math.nan, math.nan, None))
            objects.append({"sample_id": sample["sample_id"], "label": names[cls], "category_id": cls,
                            "x": x, "y": y, "w": w, "h": h, "polygon": polygon,
                            "shape": shape, "label_file": sample["label_file"], "line": line})
    notes = []
    without = sum(s["label_file"] is None for s in samples)
    if without:
        notes.append(f"{without} image(s) have no label file (no objects)")
    unreadable = sizes.count(None)
    if unreadable:
        notes.append(f"{unreadable} image(s) could not be opened to read their size: their {unsized} object(s) "
                     f"have no box or polygon (NaN)")
    table = make_samples(samples)
    for column in ("image_width", "image_height"):
        table[column] = table[column].astype("Int64")
    columns = ["sample_id", "label", "category_id", "x", "y", "w", "h", "polygon", *PROVENANCE_COLUMNS]
    return Dataset(
        samples=table, source=str(source), format="yolo", root=Path(root),
        classes=[names[k] for k in sorted(names)], objects=object_table(pd.DataFrame(objects, columns=columns)),
        notes=notes,
    )
