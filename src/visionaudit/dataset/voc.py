"""Pascal VOC XML: one ``<annotation>`` file per image listing its objects as pixel boxes.

Two layouts are read. The VOC devkit one: ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg`` and,
optionally, ``ImageSets/Main/{train,val,trainval,test}.txt`` (one id per line) for the splits. And the
one labelImg, CVAT and Roboflow exports write: each ``<name>.xml`` beside its image ``<name>.<ext>``, in
the folder itself or in split folders below it (``train/``, ``valid/``, ``test/``...).
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path, PureWindowsPath
from typing import Any

import pandas as pd

from ..errors import SourceError
from .folders import SPLIT_NAMES
from .manifest import unique_ids
from .model import IMAGE_EXTENSIONS, Dataset, make_samples, object_table

#: The devkit layout's folders.
ANNOTATIONS, IMAGES, SPLIT_LISTS = "Annotations", "JPEGImages", os.path.join("ImageSets", "Main")
#: Split list files of the devkit layout, in the order their ids become samples. ``trainval`` is the
#: union of ``train`` and ``val`` and is read (as ``train``) only when neither of those exists.
SPLIT_FILES = ("train", "val", "test")
#: Provenance columns the VOC reader adds to the object table.
PROVENANCE_COLUMNS = ("difficult", "truncated", "annotation_file")


def _images_by_stem(names: list[str]) -> dict[str, str]:
    """File name of each image among ``names`` by its name without extension (the first, sorted, on a tie)."""
    out: dict[str, str] = {}
    for name in sorted(names):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
            out.setdefault(stem, name)
    return out


def _annotations_by_stem(folder: str, names: list[str]) -> dict[str, str]:
    return {name[:-4]: os.path.join(folder, name) for name in sorted(names)
            if name.lower().endswith(".xml") and not name.startswith(".")}


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _has_pairs(folder: str) -> bool:
    names = _listdir(folder)
    annotations = _annotations_by_stem(folder, names)
    return bool(annotations) and not _images_by_stem(names).keys().isdisjoint(annotations)


def _flat_folders(root: Path) -> list[tuple[str, str | None]]:
    """(folder, split) of the folders the flat layout reads: the split folders below ``root`` if any has
    an annotation paired with an image, else ``root`` itself."""
    splits = sorted((str(p), SPLIT_NAMES[p.name.lower()]) for p in root.iterdir()
                    if p.is_dir() and p.name.lower() in SPLIT_NAMES)
    return splits if any(_has_pairs(folder) for folder, _ in splits) else [(str(root), None)]


def voc_layout(folder: str | os.PathLike) -> str | None:
    """``"devkit"`` for a folder with ``Annotations/`` and ``JPEGImages/``, ``"flat"`` when an ``.xml``
    file sits beside an image of the same name in the folder or in one of its split folders, else
    None. Only those few folders are listed, so an image folder tree costs nothing to rule out."""
    root = Path(folder)
    if not root.is_dir():
        return None
    if (root / ANNOTATIONS).is_dir() and (root / IMAGES).is_dir():
        return "devkit"
    return "flat" if any(_has_pairs(f) for f, _ in _flat_folders(root)) else None


def _text(path: str, element: ET.Element, tag: str, where: str, required: bool = True) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise SourceError(path, f"missing <{tag}>" if child is None else f"<{tag}> is empty", field=f"{where}/{tag}")
        return None
    return child.text.strip()


def _number(path: str, element: ET.Element, tag: str, where: str) -> float:
    text = _text(path, element, tag, where)
    try:
        value = float(text)
    except ValueError:
        raise SourceError(path, f"expected a number, got {text!r}", field=f"{where}/{tag}") from None
    if not math.isfinite(value):
        raise SourceError(path, f"expected a finite number, got {text!r}", field=f"{where}/{tag}")
    return value


def _flag(path: str, element: ET.Element, tag: str, where: str) -> bool:
    text = _text(path, element, tag, where, required=False)
    if text is None:
        return False
    if text not in ("0", "1"):
        raise SourceError(path, f"expected 0 or 1, got {text!r}", field=f"{where}/{tag}")
    return text == "1"


def parse_annotation(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read one VOC annotation file: (``filename``, ``declared_width``, ``declared_height``) and its
    objects with the box in the object table's convention (see :func:`read_voc`).

    Malformed XML is a :class:`SourceError` with the line; a missing or bad element names it as a
    path from the root, objects counted from 1 as XPath does (``annotation/object[2]/bndbox/xmax``).
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SourceError(path, f"malformed XML: {exc}", line=exc.position[0]) from None
    except OSError as exc:
        raise SourceError(path, f"cannot read annotation file: {exc}") from exc
    if root.tag != "annotation":
        raise SourceError(path, f"expected a VOC <annotation> root element, got <{root.tag}>", field=root.tag)
    meta: dict[str, Any] = {"filename": _text(path, root, "filename", "annotation", required=False),
                            "declared_width": None, "declared_height": None}
    size = root.find("size")
    if size is not None:
        for tag in ("width", "height"):
            value = _number(path, size, tag, "annotation/size")
            if value <= 0:
                raise SourceError(path, f"expected a positive number, got {value:g}", field=f"annotation/size/{tag}")
            meta[f"declared_{tag}"] = int(value) if value.is_integer() else value
    objects = []
    for k, element in enumerate(root.findall("object"), 1):
        where = f"annotation/object[{k}]"
        name = _text(path, element, "name", where)
        box = element.find("bndbox")
        if box is None:
            raise SourceError(path, "missing <bndbox>", field=f"{where}/bndbox")
        xmin, ymin, xmax, ymax = (_number(path, box, tag, f"{where}/bndbox") for tag in ("xmin", "ymin", "xmax", "ymax"))
        for low, high, lo_tag, hi_tag in ((xmin, xmax, "xmin", "xmax"), (ymin, ymax, "ymin", "ymax")):
            if high < low:
                raise SourceError(path, f"{hi_tag} {high:g} is less than {lo_tag} {low:g}", field=f"{where}/bndbox/{hi_tag}")
        objects.append({"label": name, "x": xmin - 1, "y": ymin - 1, "w": xmax - xmin + 1, "h": ymax - ymin + 1,
                        "difficult": _flag(path, element, "difficult", where),
                        "truncated": _flag(path, element, "truncated", where), "annotation_file": path})
    return meta, objects


def _split_lists(root: Path) -> list[tuple[str, str]]:
    """(split, id) for every line of the devkit split lists, in :data:`SPLIT_FILES` order."""
    folder = root / SPLIT_LISTS
    files = [(name, folder / f"{name}.txt") for name in SPLIT_FILES if (folder / f"{name}.txt").is_file()]
    if not any(name in ("train", "val") for name, _ in files) and (folder / "trainval.txt").is_file():
        files.insert(0, ("train", folder / "trainval.txt"))
    out = []
    for split, file in files:
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(str(file), f"cannot read split list: {exc}") from exc
        out.extend((split, line.split()[0]) for line in text.splitlines() if line.strip())
    return out


def _devkit_entries(root: Path) -> list[tuple[str | None, str, str | None, str | None]]:
    """(split, image id, image file name or None, annotation path or None) per sample of a devkit folder."""
    annotations = _annotations_by_stem(str(root / ANNOTATIONS), _listdir(str(root / ANNOTATIONS)))
    images = _images_by_stem(_listdir(str(root / IMAGES)))
    listed = _split_lists(root)
    rest = sorted((set(annotations) | set(images)) - {image_id for _, image_id in listed})
    return [(split, image_id, images.get(image_id), annotations.get(image_id))
            for split, image_id in listed + [(None, image_id) for image_id in rest]]


def _flat_entries(root: Path) -> list[tuple[str | None, str, str, str | None, str | None]]:
    """(split, folder, image id, image file name or None, annotation path or None) per sample of a flat folder."""
    out = []
    for folder, split in _flat_folders(root):
        names = _listdir(folder)
        images, annotations = _images_by_stem(names), _annotations_by_stem(folder, names)
        out.extend((split, folder, stem, images.get(stem), annotations.get(stem))
                   for stem in sorted(set(images) | set(annotations)))
    return out


def read_voc(folder: str | os.PathLike) -> Dataset:
    """Read a Pascal VOC dataset (either layout, see :func:`voc_layout`).

    Samples: in the devkit layout, the ids of the split lists in order (``train``, ``val``, ``test``;
    an id listed twice is a sample per listing, the repeat's id suffixed ``@<split>``), then every
    other annotation or image with split None; ``sample_id`` is the image's file name in
    ``JPEGImages`` (``2008_000008.jpg``). In the flat layout, every image and annotation of the
    folder (or of its split folders, which give the split), ``sample_id`` the image's path relative
    to the folder. An image is paired with the annotation of the same name; without an image file,
    the path is the annotation's ``<filename>`` (else ``<id>.jpg``) beside where the image should be,
    kept so the scan reports it missing; an image without annotation has no objects. ``samples`` has
    ``annotation_file`` and the ``<size>`` as ``declared_width`` / ``declared_height``.

    Objects (the shared table, ``model.OBJECT_COLUMNS``): one per ``<object>`` in file order, label
    ``<name>``, ``category_id`` None (VOC files name classes, they do not number them), plus
    ``difficult``, ``truncated`` (False when absent) and ``annotation_file``. Box convention: VOC's
    ``<bndbox>`` holds 1-based pixel indices, both ends inclusive (the devkit's definition; a box
    over a whole W-pixel-wide image is xmin=1, xmax=W), so the pixel box is ``x = xmin - 1``,
    ``y = ymin - 1``, ``w = xmax - xmin + 1``, ``h = ymax - ymin + 1``: the continuous span of the
    pixels it covers, as Detectron2 reads VOC. Writing a continuous box ``(x, y, w, h)`` as VOC is
    then ``xmin = floor(x) + 1``, ``xmax = ceil(x + w)`` (and alike for y), which reads back as the
    smallest whole-pixel box around it. Malformed XML or a missing or bad element is a
    :class:`SourceError` naming the file and the element.

    >>> ds = read_voc("voc/")
    >>> ds.objects.loc[~ds.objects["difficult"]].groupby("label").size().to_dict()
    {'building': 3, 'tree': 3}
    >>> ds.objects[["object_id", "x", "y", "w", "h"]].head(1).values.tolist()    # <xmin>31</xmin><xmax>121</xmax>
    [['000000.jpg#0', 30.0, 86.0, 91.0, 171.0]]
    """
    root = Path(folder).resolve()
    layout = voc_layout(root)
    if layout is None:
        raise SourceError(str(root), f"not a Pascal VOC folder: expected {ANNOTATIONS}/ and {IMAGES}/, or .xml "
                                     f"annotations beside images of the same name")
    if layout == "devkit":
        entries = [(split, str(root / IMAGES), *rest) for split, *rest in _devkit_entries(root)]
    else:
        entries = _flat_entries(root)
    id_base = str(root / IMAGES) if layout == "devkit" else str(root)

    rows, per_sample = [], []
    for split, image_folder, stem, image, annotation in entries:
        meta, objects = parse_annotation(annotation) if annotation else ({}, [])
        # No image file: where the annotation says it is, so the scan reports it missing.
        path = os.path.join(image_folder, image or PureWindowsPath(meta.get("filename") or f"{stem}.jpg").name)
        rows.append({"sample_id": Path(os.path.relpath(path, id_base)).as_posix(), "path": os.path.normpath(path),
                     "label": None, "split": split, "annotation_file": annotation,
                     "declared_width": meta.get("declared_width"), "declared_height": meta.get("declared_height")})
        per_sample.append(objects)
    sample_ids = unique_ids([r["sample_id"] for r in rows], [r["split"] or "unsplit" for r in rows])
    objects = []
    for row, sid, found in zip(rows, sample_ids, per_sample):
        row["sample_id"] = sid
        objects.extend({"sample_id": sid, **o} for o in found)
    columns = ["sample_id", "label", "x", "y", "w", "h", *PROVENANCE_COLUMNS]
    without = sum(r["annotation_file"] is None for r in rows)
    notes = [f"{without} image(s) have no annotation file (no objects)"] if without else []
    return Dataset(
        samples=make_samples(rows), source=str(root), format="voc", root=root,
        classes=sorted({o["label"] for o in objects}),
        objects=object_table(pd.DataFrame(objects, columns=columns)), notes=notes,
    )
