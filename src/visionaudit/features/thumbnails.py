"""The report's thumbnails, from a preview the decode pass makes while each image is decoded anyway.

The decode pass keeps a small JPEG of every image it decodes (:func:`make_preview`: the pixels it
measured, reduced by whole factors until their long side is under twice :data:`THUMBNAIL_SIZE`,
encoded at :data:`THUMBNAIL_QUALITY`). The report's thumbnail (long side :data:`THUMBNAIL_SIZE`,
never enlarged, an RGB JPEG at that quality, as the report made them from the image files) is made
from the preview only for the images a report shows (:func:`report_thumbnail`): resizing every
image to the thumbnail size in the decode pass cost 3x the preview's encoding (Pillow's bicubic
resize of a 128 px image: ~300 us against ~120 us to encode it), and the two thumbnails look alike
(34 dB median PSNR on the benchmark's and COCO128's photos, the same pixels where no resize is needed).

Previews are appended to a pack file (:class:`PackWriter`: one file per run, written sequentially,
beside the feature cache's parts) and each feature row keeps where its preview is (pack, offset,
length), so a cached row finds its preview again and no run holds its previews in memory: a million
images make ~4 GB of packs on disk and 16 bytes a row in memory. :class:`Thumbnails` reads one back
with a single positioned read; :class:`ReportThumbnails` is the sample id -> JPEG mapping the HTML
report and the run folder take, making only the thumbnails the report looks up.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

#: Long side of a report thumbnail in pixels (the report's tile size) and its JPEG quality.
THUMBNAIL_SIZE = 112
THUMBNAIL_QUALITY = 72
#: Columns of a feature row that locate its preview: pack file name, byte offset, byte length.
LOCATION_COLUMNS = ("preview_pack", "preview_offset", "preview_length")


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=THUMBNAIL_QUALITY)
    return buf.getvalue()


def make_preview(im: Image.Image) -> bytes:
    """The JPEG the decode pass keeps of a decoded 8-bit 'L' or 'RGB' image: the image itself,
    reduced by the whole factor (averaging blocks of pixels) that brings a long side of twice
    :data:`THUMBNAIL_SIZE` or more under that, or, when it is no larger than a thumbnail, its report
    thumbnail.

    >>> Image.open(io.BytesIO(make_preview(Image.new("RGB", (640, 480))))).size
    (128, 96)
    """
    factor = max(im.size) // THUMBNAIL_SIZE
    if factor >= 2:
        im = im.reduce(factor)
    return _jpeg(im if max(im.size) > THUMBNAIL_SIZE else im.convert("RGB"))


def report_thumbnail(preview: bytes) -> bytes:
    """The report's thumbnail of an image from its :func:`make_preview`: an RGB JPEG whose long
    side is :data:`THUMBNAIL_SIZE` (smaller images keep their size), as Pillow's ``thumbnail``
    makes it; a preview that is one already is returned as it is.

    >>> Image.open(io.BytesIO(report_thumbnail(make_preview(Image.new("L", (640, 480)))))).size
    (112, 84)
    """
    im = Image.open(io.BytesIO(preview))
    if im.mode == "RGB" and max(im.size) <= THUMBNAIL_SIZE:
        return preview
    im.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return _jpeg(im.convert("RGB"))


class PackWriter:
    """Appends previews to one new pack file in ``directory``, created on the first :meth:`add`.

    A feature row records a preview's location only after :meth:`flush`, so every location a
    cache part holds points at bytes already written; a run that dies leaves at most an unreferenced
    tail. Packs are never rewritten, so concurrent runs sharing a cache each append to their own.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.name = f"previews-{uuid.uuid4().hex}.pack"
        self._file = None
        self._size = 0

    def add(self, data: bytes) -> int:
        """Append ``data``; its offset in the pack."""
        if self._file is None:
            self._file = open(self.directory / self.name, "ab", buffering=1 << 20)  # noqa: SIM115 - closed by close()
        offset = self._size
        self._file.write(data)
        self._size += len(data)
        return offset

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Thumbnails:
    """The report thumbnail of each path of a feature run, made from its preview on demand.

    ``paths`` is the run's path index; aligned with it, ``codes`` gives each path's pack as an index
    into ``packs`` (file names in ``directory``; -1 where the image did not decode), ``offsets`` and
    ``lengths`` where in that pack its preview is. ``owned`` is a temporary folder holding the packs (a
    run without a cache), deleted with this object.

    >>> from visionaudit.features import compute_features
    >>> path = "data/train/beach/beach_0000.jpg"                  # 232 x 311 pixels
    >>> run = compute_features([path], use_cache=False)
    >>> [Image.open(io.BytesIO(jpeg)).size for jpeg in (run.thumbnails.preview(path), run.thumbnails.get(path))]
    [(116, 156), (83, 112)]
    """

    def __init__(self, directory: str | os.PathLike, paths: pd.Index, codes: np.ndarray, packs: list[str],
                 offsets: np.ndarray, lengths: np.ndarray, owned: str | None = None):
        self.directory = Path(directory)
        self._paths = paths
        self._codes = np.asarray(codes, dtype=np.int32)
        self._packs = list(packs)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._lengths = np.asarray(lengths, dtype=np.int64)
        if owned is not None:
            weakref.finalize(self, shutil.rmtree, owned, True)

    def get(self, path: str) -> bytes | None:
        """The report's JPEG thumbnail of ``path`` (:func:`report_thumbnail`); None when it has none
        (the image did not decode, or its pack was deleted from the cache)."""
        preview = self.preview(path)
        return None if preview is None else report_thumbnail(preview)

    def preview(self, path: str) -> bytes | None:
        """The preview the decode pass kept of ``path`` (:func:`make_preview`), or None."""
        at = self._paths.get_indexer([path])[0]
        if at < 0 or self._codes[at] < 0:
            return None
        length = int(self._lengths[at])
        try:
            with open(self.directory / self._packs[self._codes[at]], "rb", buffering=0) as fh:
                data = os.pread(fh.fileno(), length, int(self._offsets[at]))
        except OSError:
            return None
        return data if len(data) == length else None

    def __len__(self) -> int:
        """How many paths have a preview."""
        return int((self._codes >= 0).sum())


def temporary_pack_folder() -> str:
    """A folder for the packs of a run without a cache (handed to :class:`Thumbnails` as ``owned``)."""
    return tempfile.mkdtemp(prefix="visionaudit-thumbnails-")


class ReportThumbnails(MutableMapping[str, bytes]):
    """Sample id -> the report's JPEG thumbnail, as ``write_html(thumbnails=...)`` and
    ``save_run`` take it, made on demand from the previews of a run's decode pass.

    Give it to :func:`visionaudit.scan` (or ``evaluate``), which connects it to the run; afterwards
    every sample whose image decoded can be looked up, and the keys (what iterating and ``len`` see,
    and so what a run folder's ``thumbnails.parquet`` keeps) are the thumbnails looked up or set so
    far: those the report showed.

    >>> from visionaudit import scan
    >>> thumbnails = ReportThumbnails()
    >>> result = scan("data/", thumbnails=thumbnails)
    >>> Image.open(io.BytesIO(thumbnails["train/beach/beach_0000.jpg"])).size
    (83, 112)
    >>> "train/city/city_0026.jpg" in thumbnails          # the example's zero-byte file: nothing to show
    False
    >>> list(thumbnails)                                  # what a run folder would keep: what was shown
    ['train/beach/beach_0000.jpg']
    """

    def __init__(self) -> None:
        self._taken: dict[str, bytes] = {}
        self._paths: Mapping[str, str] = {}
        self._source: Thumbnails | None = None

    def connect(self, source: Thumbnails, sample_paths: pd.Series) -> None:
        """Read from ``source``, ``sample_paths`` giving each sample id's path."""
        self._source, self._paths = source, sample_paths

    def __getitem__(self, sample: str) -> bytes:
        if sample not in self._taken:
            path = self._paths.get(sample)
            data = None if path is None or self._source is None else self._source.get(str(path))
            if data is None:
                raise KeyError(sample)
            self._taken[sample] = data
        return self._taken[sample]

    def __setitem__(self, sample: str, data: bytes) -> None:
        self._taken[sample] = data

    def __delitem__(self, sample: str) -> None:
        del self._taken[sample]

    def __iter__(self) -> Iterator[str]:
        return iter(self._taken)

    def __len__(self) -> int:
        return len(self._taken)
