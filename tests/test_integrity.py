"""Integrity checks on real photos: decode errors, wrong extensions, EXIF rotation, unusual pixel formats."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import coco_images, copy_images, mnist_arrays
from injected import INTEGRITY_INJECTED, build_injected_coco
from PIL import Image, ImageFile

import visionaudit

MODE_ISSUES = ["cmyk_images", "high_bit_depth", "palette_images", "alpha_channel", "mixed_channels"]


@pytest.fixture(scope="module")
def coco_scan(tmp_path_factory):
    root = build_injected_coco(tmp_path_factory.mktemp("coco") / "data")
    return root, visionaudit.scan(root, cache_dir=tmp_path_factory.mktemp("cache"), workers=2)


def test_integrity_checks_flag_exactly_the_injected_files(coco_scan):
    root, result = coco_scan
    # Independent oracle for the grayscale photos COCO itself contains: Pillow's mode at open.
    gray_coco = set()
    for f in coco_images("train2017") + coco_images("val2017"):
        with Image.open(f) as im:
            if im.mode == "L":
                gray_coco.add(f.name)
    assert gray_coco == {"000000000086.jpg", "000000007888.jpg"}
    expected = {k: set(v) for k, v in INTEGRITY_INJECTED.items()}
    expected["mixed_channels"] = gray_coco | {"inj_16bit.png"}   # 16-bit grayscale is also single-channel
    assert {issue: result.flagged(issue) for issue in expected} == expected
    errors = [f for f in result.findings if f.check == "integrity.decode_errors"]
    assert errors == []
    for issue in expected:
        assert result.finding(issue).severity.value == "warning"
        scores = result.issues[f"{issue}_score"]
        assert set(scores.index[scores == 0]) == expected[issue] and set(scores.unique()) == {0.0, 1.0}


def test_integrity_evidence_names_what_is_wrong(coco_scan):
    _, result = coco_scan
    assert result.finding("wrong_extension").evidence["formats"] == {"inj_png_named.jpg": "PNG content, .jpg extension"}
    assert result.finding("exif_rotation").evidence["orientations"] == {"inj_exif_rot6.jpg": "6 (rotated 90° CW)"}
    assert result.finding("cmyk_images").evidence["modes"] == {"inj_cmyk.jpg": "CMYK"}
    assert result.finding("cmyk_images").evidence["dominant_mode"] == "RGB"
    assert result.finding("mixed_channels").evidence["modes"] == {
        "000000000086.jpg": "L", "000000007888.jpg": "L", "inj_16bit.png": "I;16"}
    assert "RGB" in result.finding("high_bit_depth").message


def _truncated_cases(tmp_path: Path) -> Path:
    root = tmp_path / "trunc"
    root.mkdir()
    data = coco_images("train2017")[5].read_bytes()
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, "JPEG", quality=90, progressive=True)
    progressive = buf.getvalue()
    for name, src in (("base", data), ("prog", progressive)):
        (root / f"{name}_60.jpg").write_bytes(src[: int(len(src) * 0.60)])
        (root / f"{name}_95.jpg").write_bytes(src[: int(len(src) * 0.95)])
        (root / f"{name}_no_eoi.jpg").write_bytes(src[:-2])          # only the end marker missing
        (root / f"{name}_trailer.jpg").write_bytes(src + b"\x00\x00\x00\x18ftypmp42" + bytes(20000))
        (root / f"{name}_ok.jpg").write_bytes(src)
    return root


TRUNCATED = {f"{n}_{cut}.jpg" for n in ("base", "prog") for cut in ("60", "95", "no_eoi")}


@pytest.mark.parametrize("load_truncated", [False, True])
def test_truncated_jpegs_are_errors_even_when_pillow_is_told_to_load_them(tmp_path, cache_dir, monkeypatch,
                                                                           load_truncated):
    """ML code often sets ImageFile.LOAD_TRUNCATED_IMAGES; the missing end marker still gives them away.

    Data appended after a complete image (a motion photo's video, a maker trailer) is not truncation.
    """
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)
    root = _truncated_cases(tmp_path)
    result = visionaudit.scan(root, cache_dir=cache_dir, workers=1)
    assert result.flagged("truncated") == TRUNCATED
    assert not any(result.flagged(k) for k in ("unreadable", "not_image", "zero_byte"))
    valid = set(result.features.index[result.features["error_kind"].isna()])
    assert valid == {f"{n}_{s}.jpg" for n in ("base", "prog") for s in ("trailer", "ok")}
    assert result.exit_code() == 1


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _rgb16_png(rgb8: np.ndarray) -> bytes:
    """A 48-bit RGB PNG, which Pillow opens as 8-bit 'RGB' (so the mode alone does not reveal it)."""
    a = (rgb8.astype(">u2") * 257)
    raw = b"".join(b"\x00" + row.tobytes() for row in a)
    h, w = rgb8.shape[:2]
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def test_formats_that_pillow_hides(tmp_path, cache_dir):
    root = tmp_path / "fmt"
    files = copy_images(coco_images("val2017")[:24], root)
    photo = Image.open(files[0]).convert("RGB")
    (root / "rgb48.png").write_bytes(_rgb16_png(np.asarray(photo)))
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    pal.info["transparency"] = 0
    pal.save(root / "pal_transparent.png", transparency=0)
    photo.save(root / "jpeg_named.png", "JPEG", quality=90)
    # A camera multi-picture file (MPO) is JPEG data: a .jpg name is right.
    photo.save(root / "camera_mpo.jpg", "MPO", save_all=True, append_images=[photo.rotate(5)])
    for value, name in ((1, "upright.jpg"), (3, "upside_down.jpg"), (9, "invalid_tag.jpg")):
        exif = Image.Exif()
        exif[0x0112] = value
        photo.save(root / name, quality=90, exif=exif)
    result = visionaudit.scan(root, cache_dir=cache_dir, workers=1)
    feats = result.features
    assert feats.at["camera_mpo.jpg", "format"] == "MPO" and feats.at["rgb48.png", "mode"] == "RGB"
    assert result.flagged("high_bit_depth") == {"rgb48.png"}
    assert result.flagged("palette_images") == {"pal_transparent.png"}
    assert result.flagged("alpha_channel") == {"pal_transparent.png"}
    assert result.flagged("wrong_extension") == {"jpeg_named.png"}
    assert result.finding("wrong_extension").evidence["formats"] == {"jpeg_named.png": "JPEG content, .png extension"}
    assert result.flagged("exif_rotation") == {"upside_down.jpg"}
    assert result.finding("exif_rotation").evidence["orientations"] == {"upside_down.jpg": "3 (rotated 180°)"}
    assert result.flagged("mixed_channels") == set() and result.exit_code() == 0


def test_a_format_shared_by_most_images_is_the_dataset_format_not_a_finding(tmp_path, cache_dir):
    """RGBA icons are not an alpha 'mix'; colour images in a grayscale (MNIST) set are a channel mix."""
    icons = tmp_path / "icons"
    icons.mkdir()
    for f in coco_images("train2017")[:20]:
        im = Image.open(f).convert("RGBA").resize((64, 48))
        im.save(icons / f"{f.stem}.png")
    for f in coco_images("train2017")[20:23]:
        Image.open(f).convert("RGB").resize((64, 48)).save(icons / f"{f.stem}.png")
    result = visionaudit.scan(icons, cache_dir=cache_dir, workers=1)
    assert not any(result.flagged(i) for i in MODE_ISSUES)
    assert result.issues["alpha_channel_score"].eq(1.0).all()

    digits = tmp_path / "digits"
    digits.mkdir()
    images, _ = mnist_arrays(40)
    for i, a in enumerate(images):
        Image.fromarray(a).save(digits / f"d{i:02d}.png")
    for i, a in enumerate(images[:2]):
        Image.fromarray(np.stack([a, a // 2, a], axis=-1)).save(digits / f"colour{i}.png")
    result = visionaudit.scan(digits, cache_dir=cache_dir, workers=1)
    assert result.flagged("mixed_channels") == {"colour0.png", "colour1.png"}
    assert result.finding("mixed_channels").evidence["dominant_mode"] == "L"
