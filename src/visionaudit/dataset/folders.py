"""ImageFolder-style trees: ``root/[split/]class/image``; images directly under a split are unlabelled."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import SourceError
from .model import IMAGE_EXTENSIONS, Dataset, make_samples

SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}


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

    Top-level folders named like splits (train/val/valid/test...) become the ``split`` column; the
    first folder below a split (or below the root when there are no split folders) is the class
    label. Files are recognised by their image extension; what they really contain is checked later.

    >>> ds = read_folder("data/")
    >>> ds.samples.loc[0, ["sample_id", "label", "split"]].tolist()
    ['test/beach/beach_0000.jpg', 'beach', 'test']
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise SourceError(str(root), "not a directory")
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in children if p.name.lower() in SPLIT_NAMES]
    tops = [(p, SPLIT_NAMES[p.name.lower()]) for p in split_dirs] if split_dirs else [(root, None)]
    rows = []
    for top, split in tops:
        for dirpath, names in _walk_image_dirs(top):
            below_top = Path(dirpath).relative_to(top).parts
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
