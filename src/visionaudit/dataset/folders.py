"""ImageFolder-style trees: ``root/[split/]class/image``; images directly under a split are unlabelled."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import SourceError
from .model import IMAGE_EXTENSIONS, Dataset, make_samples

SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}
#: A split folder's name: a split name, optionally followed by a year or version (``train2017``,
#: ``val_2017``, ``test-v2``). ``train_station`` is not one.
_SPLIT_FOLDER = re.compile(r"(?P<name>[a-z]+)(?:[-_. ]?v?\d+)?", re.IGNORECASE)
#: Folders that hold the images of a dataset root without being a class (YOLO and COCO exports).
IMAGE_FOLDER_NAMES = ("images",)


def folder_split(name: str) -> str | None:
    """The split a dataset's top-level folder stands for, or None when its name is not a split's.

    >>> folder_split("train2017"), folder_split("Val_2017"), folder_split("valid"), folder_split("train_station")
    ('train', 'val', 'val', None)
    """
    match = _SPLIT_FOLDER.fullmatch(name.strip())
    return SPLIT_NAMES.get(match["name"].lower()) if match else None


def split_folders(root: Path) -> list[tuple[Path, str]]:
    """The split folders of a dataset root with the split each stands for: its folders named like splits
    (``train``, ``val2017``...) or, when it has none, those under its ``images/`` folder (``images/train``,
    as YOLO and COCO exports keep them). Two folders that would give the same split (``train2014`` and
    ``train2017``) keep their own names, so neither is merged into the other.

    >>> [(p.name, s) for p, s in split_folders(Path("data/"))]
    [('test', 'test'), ('train', 'train'), ('val', 'val')]
    >>> [(p.relative_to("yolo").as_posix(), s) for p, s in split_folders(Path("yolo/"))]
    [('images/train', 'train')]
    """
    def named(folder: Path) -> list[tuple[Path, str]]:
        found = [(p, folder_split(p.name)) for p in _subfolders(folder)]
        return [(p, s) for p, s in found if s is not None]

    found = named(root)
    if not found:
        container = next((p for p in _subfolders(root) if p.name.lower() in IMAGE_FOLDER_NAMES), None)
        found = named(container) if container is not None else []
    taken = [s for _, s in found]
    return [(p, s if taken.count(s) == 1 else p.name) for p, s in found]


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _walk_image_dirs(top: Path) -> list[tuple[str, list[str]]]:
    """(directory, sorted image file names in it) for every directory under ``top``, in sorted order,
    hidden files and folders skipped. Strings, not Path objects: for 5,000 files, pathlib's parsing
    cost ~0.25 s of a ~0.4 s listing."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        names = [n for n in sorted(filenames)
                 if not n.startswith(".") and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
        if names:
            found.append((dirpath, names))
    return found


def _walk_images(top: Path) -> list[str]:
    return [os.path.join(dirpath, name) for dirpath, names in _walk_image_dirs(top) for name in names]


def read_folder(root: str | os.PathLike) -> Dataset:
    """Read an image folder tree.

    Top-level folders named like splits (train/val/valid/test..., also with a year or version:
    ``train2017``, ``val_2017``), or when there are none the split folders under an ``images/``
    folder (``images/train``), become the ``split`` column (:func:`split_folders`); the first folder
    below a split (or below the root when there are no split folders) is the class label, skipping
    an ``images`` folder (``train/images/...`` of a Roboflow export is unlabelled, not class
    "images"). A class folder deeper down keeps its name even when it looks like a split
    (``train_station``, ``test``). Sample ids are paths relative to the root, so copies of a file in
    two splits stay two samples. Files are recognised by their image extension; what they really
    contain is checked later.

    >>> ds = read_folder("data/")
    >>> ds.samples.loc[0, ["sample_id", "label", "split"]].tolist()
    ['test/beach/beach_0000.jpg', 'beach', 'test']
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise SourceError(str(root), "not a directory")
    split_dirs = split_folders(root)
    tops: list[tuple[Path, str | None]] = list(split_dirs) or [(root, None)]
    rows = []
    for top, split in tops:
        for dirpath, names in _walk_image_dirs(top):
            below_top = Path(dirpath).relative_to(top).parts
            if below_top and below_top[0].lower() in IMAGE_FOLDER_NAMES:
                below_top = below_top[1:]
            label = below_top[0] if below_top else None
            prefix = "".join(f"{part}/" for part in Path(dirpath).relative_to(root).parts)
            rows.extend({"sample_id": prefix + name, "path": os.path.join(dirpath, name), "label": label,
                         "split": split} for name in names)
    if not rows:
        raise SourceError(str(root), f"no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    notes = []
    if split_dirs:
        loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if loose:
            notes.append(f"{len(loose)} image(s) directly under {root} were ignored because split folders exist")
    return Dataset(samples=make_samples(rows), source=str(root), format="folder", root=root, notes=notes)
