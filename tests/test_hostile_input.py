"""Hostile input: a folder of broken, lying and oddly named files is scanned to the end, every bad file
is a finding with its exact id and error kind, the CLI fails the run, and nothing in the folder changes."""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import zlib
from importlib.resources import files
from pathlib import Path

import jsonschema
from conftest import coco_images
from typer.testing import CliRunner

import visionaudit
from visionaudit.cli import app

#: sample id -> the error kind it must be reported with.
BAD = {
    "bad/empty.jpg": "zero_byte",
    "bad/cut 60%.jpg": "truncated",
    "bad/cut 95%.jpg": "truncated",
    "bad/header only.jpg": "truncated",
    "bad/notes.png": "not_image",
    "bad/random bytes.jpg": "not_image",
    "bad/bomb.png": "too_large",
}
GOOD = {"café/ümlaut 1.jpg", "café/plain.jpg", "with space/photo two.jpg", "日本/写真.jpg"}


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _bomb_png() -> bytes:
    """A valid PNG signature and IHDR claiming 100000 x 100000 RGB pixels (30 GB decoded), in ~60 bytes."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def _hostile_folder(root: Path) -> Path:
    photos = coco_images("train2017")
    for rel, src in zip(sorted(GOOD), photos):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / rel)
    bad = root / "bad"
    bad.mkdir()
    data = photos[10].read_bytes()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "cut 60%.jpg").write_bytes(data[: int(len(data) * 0.60)])
    (bad / "cut 95%.jpg").write_bytes(data[: int(len(data) * 0.95)])
    (bad / "header only.jpg").write_bytes(data[:700])
    (bad / "notes.png").write_text("name,label\ncat.png,cat\n", encoding="utf-8")
    (bad / "random bytes.jpg").write_bytes(random.Random(0).randbytes(4096))
    (bad / "bomb.png").write_bytes(_bomb_png())
    return root


def _snapshot(root: Path) -> dict[str, tuple[str, int, int] | str]:
    """Every entry under ``root``: files by content hash, size and mtime; folders by name."""
    snap: dict[str, tuple[str, int, int] | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            snap[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.stat(p)
            with open(p, "rb") as fh:
                snap[os.path.relpath(p, root)] = (hashlib.sha256(fh.read()).hexdigest(), st.st_size, st.st_mtime_ns)
    return snap


def _error_kinds(findings: list[dict]) -> dict[str, str]:
    return {s: f["issue"] for f in findings if f["check"] == "integrity.decode_errors" for s in f["samples"]}


def test_hostile_folder_scans_to_the_end_reports_every_bad_file_and_is_left_untouched(tmp_path):
    root = _hostile_folder(tmp_path / "in put")
    before = _snapshot(root)
    assert len(before) == len(BAD) + len(GOOD) + 4      # 4 folders: bad, café, with space, 日本

    result = visionaudit.scan(root, cache_dir=tmp_path / "cache", workers=2)
    assert set(result.issues.index) == set(BAD) | GOOD
    assert _error_kinds([f.to_dict() for f in result.findings]) == BAD
    assert set(result.features.index[result.features["error_kind"].isna()]) == GOOD
    assert not result.flagged("check_failed")
    bomb = result.finding("too_large").evidence["errors"]["bad/bomb.png"]
    assert "100000x100000" in bomb or "decompression bomb" in bomb
    for issue in ("blurry", "dark", "exif_rotation"):   # the good files are judged like any others
        assert result.issues.loc[sorted(GOOD), f"{issue}_score"].notna().all()

    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["scan", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "cache2"),
                                   "--quiet"])
    assert res.exit_code == 1, res.output
    assert (out / "report.html").stat().st_size > 1000
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert _error_kinds(doc["findings"]) == BAD
    schema = json.loads((files("visionaudit") / "schema" / "findings.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc)) == []
    assert all(f["severity"] == "error" for f in doc["findings"] if f["check"] == "integrity.decode_errors")

    assert _snapshot(root) == before
