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


def _walk_images(top: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return found


def read_folder(root: str | os.PathLike) -> Dataset:
    """Read an image folder tree.

    Top-level folders named like splits (train/val/valid/test...) become the ``split`` column; the
    first folder below a split (or below the root when there are no split folders) is the class
    label. Files are recognised by their image extension; what they really contain is checked later.

    >>> ds = read_folder("data/")          # doctest: +SKIP
    >>> ds.samples[["sample_id", "label", "split"]].head()  # doctest: +SKIP
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise SourceError(str(root), "not a directory")
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in children if p.name.lower() in SPLIT_NAMES]
    tops = [(p, SPLIT_NAMES[p.name.lower()]) for p in split_dirs] if split_dirs else [(root, None)]
    rows = []
    for top, split in tops:
        for path in _walk_images(top):
            rel_to_top = path.relative_to(top)
            label = rel_to_top.parts[0] if len(rel_to_top.parts) > 1 else None
            rows.append({
                "sample_id": path.relative_to(root).as_posix(),
                "path": str(path),
                "label": label,
                "split": split,
            })
    if not rows:
        raise SourceError(str(root), f"no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    notes = []
    if split_dirs:
        loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if loose:
            notes.append(f"{len(loose)} image(s) directly under {root} were ignored because split folders exist")
    return Dataset(samples=make_samples(rows), source=str(root), format="folder", root=root, notes=notes)
