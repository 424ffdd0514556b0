"""The compiled per-image kernel (features/_pixelstats.c) against the numpy implementation it mirrors.

Both paths run here: the kernel as built by `pip install -e .`, and the numpy fallback forced by
setting properties._kernel to None (what an install without a compiler, or VISIONAUDIT_NO_EXTENSION=1,
gets). Every feature of every image must agree to 1e-9 relative (1e-12 absolute at zero).
"""
from __future__ import annotations

import io
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import coco_images, mnist_arrays
from PIL import Image

from visionaudit.features import decode, hashing, properties

needs_kernel = pytest.mark.skipif(properties._kernel is None, reason="C extension not built (no compiler?)")


def _encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _edge_cases() -> dict[str, bytes]:
    """Small, flat, odd-shaped and non-RGB images: each takes a different branch of the kernel."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (150, 170, 3), dtype=np.uint8)
    step = np.zeros((8, 8), dtype=np.uint8)
    step[:, 4:] = 255
    cases = {
        "uniform_rgb": Image.new("RGB", (64, 48), (90, 90, 90)),
        "uniform_colour": Image.new("RGB", (64, 48), (200, 30, 60)),
        "uniform_gray": Image.new("L", (40, 40), 0),
        "one_pixel_rgb": Image.new("RGB", (1, 1), (10, 200, 30)),
        "one_pixel_gray": Image.new("L", (1, 1), 255),
        "one_row": Image.fromarray(noise[:1]),
        "five_by_five": Image.fromarray(noise[:5, :5]),          # below the 6x6 sharpness/noise floor
        "six_by_six": Image.fromarray(noise[:6, :6]),
        "odd_7x9": Image.fromarray(noise[:7, :9]),
        "noise_150x170": Image.fromarray(noise),                 # the noise window is cropped (> 128)
        "wide_300x40": Image.fromarray(rng.integers(0, 256, (40, 300, 3), dtype=np.uint8)),
        "tall_40x300": Image.fromarray(rng.integers(0, 256, (300, 40, 3), dtype=np.uint8)),   # Pillow's thumbnail
        "step_gray": Image.fromarray(step),
        "gray_as_rgb": Image.fromarray(np.repeat(noise[..., :1], 3, axis=2)),   # spread 0: no noise value
        "rgba": Image.fromarray(np.dstack([noise, noise[..., 0]]), "RGBA"),
        "palette": Image.fromarray(noise).convert("P", palette=Image.Palette.ADAPTIVE, colors=37),
        "la": Image.fromarray(np.dstack([noise[..., 0], noise[..., 1]]), "LA"),
        "bilevel": Image.fromarray(noise[..., 0]).convert("1"),
        "sixteen_bit": Image.fromarray((rng.integers(0, 65536, (90, 110))).astype(np.uint16)),
        "sixteen_bit_low": Image.fromarray((rng.integers(0, 200, (30, 20))).astype(np.uint16)),
    }
    out = {name: _encode(im) for name, im in cases.items()}
    out["cmyk_jpeg"] = _encode(Image.fromarray(noise).convert("CMYK"), "JPEG", quality=90)
    out["gray_jpeg"] = _encode(Image.fromarray(noise[..., 1]), "JPEG", quality=75)
    return out


def _assert_rows_equal(fast: dict, ref: dict, where: str) -> float:
    """Every column equal (floats to 1e-9 relative, 1e-12 absolute at zero); returns the largest
    relative difference among the floats."""
    worst = 0.0
    assert fast.keys() == ref.keys()
    for key, want in ref.items():
        got = fast[key]
        if isinstance(want, float):
            if math.isnan(want):
                assert math.isnan(got), (where, key, got, want)
                continue
            diff = abs(got - want)
            assert diff <= 1e-9 * abs(want) + 1e-12, (where, key, got, want)
            worst = max(worst, diff / abs(want) if want else diff)
        else:
            assert got == want, (where, key)
    return worst


def _both_paths(monkeypatch: pytest.MonkeyPatch, data: bytes) -> tuple[dict, dict]:
    fast = decode.measure_bytes(data)
    with monkeypatch.context() as m:
        m.setattr(properties, "_kernel", None)
        ref = decode.measure_bytes(data)
    return fast, ref


@needs_kernel
def test_kernel_equals_numpy_on_coco128_and_edge_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    files = coco_images("train2017") + coco_images("val2017")
    inputs = {f.name: f.read_bytes() for f in files} | _edge_cases()
    worst = 0.0
    colour_noise_values = 0
    for name, data in inputs.items():
        fast, ref = _both_paths(monkeypatch, data)
        assert ref["error_kind"] is None, name
        worst = max(worst, _assert_rows_equal(fast, ref, name))
        colour_noise_values += not math.isnan(ref["noise"])
    assert len(inputs) == len(files) + 22
    # The comparison covered the colour branch: all colour COCO photos and the colour edge cases.
    assert colour_noise_values > 200
    assert worst <= 1e-9


@needs_kernel
def test_kernel_equals_numpy_on_mnist_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    digits, _ = mnist_arrays(2000)
    for i, digit in enumerate(digits):
        gray = np.ascontiguousarray(digit)
        fast = properties.pixel_stats(gray)
        with monkeypatch.context() as m:
            m.setattr(properties, "_kernel", None)
            ref = properties.pixel_stats(gray)
        _assert_rows_equal(fast, ref, f"digit {i}")


@needs_kernel
def test_thumbnail_prints_equal_on_mnist_and_random_thumbnails(monkeypatch: pytest.MonkeyPatch) -> None:
    digits, _ = mnist_arrays(1000)
    rng = np.random.default_rng(3)
    thumbs = [Image.fromarray(d).resize((32, 32), Image.Resampling.BOX).tobytes() for d in digits]
    thumbs += [rng.integers(0, 256, 1024, dtype=np.uint8).tobytes() for _ in range(200)]
    thumbs += [bytes(1024), bytes([255]) * 1024, bytes(range(32)) * 32]
    fast = [hashing.dhash_and_tiny(t) for t in thumbs]
    monkeypatch.setattr(properties, "_kernel", None)
    assert fast == [hashing.dhash_and_tiny(t) for t in thumbs]
    assert len({d for d, _ in fast}) > 900     # the bits vary: a constant hash would also "agree"


@needs_kernel
def test_luminance_equals_pillow_on_every_colour() -> None:
    v = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([v >> 16, (v >> 8) & 255, v & 255], axis=-1).astype(np.uint8).reshape(4096, 4096, 3)
    assert properties._kernel.luminance(rgb) == Image.fromarray(rgb).convert("L").tobytes()


@needs_kernel
def test_box_thumbnail_equals_pillow_on_every_size_up_to_160() -> None:
    rng = np.random.default_rng(5)
    sizes = [(h, w) for h in range(1, 161) for w in range(h, 161)] + [(200, 300), (500, 4000), (1, 5000), (1024, 1024)]
    for h, w in sizes:
        gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
        want = Image.fromarray(gray).resize((32, 32), Image.Resampling.BOX).tobytes()
        assert properties._kernel.box_thumb(gray) == want, (h, w)
    # Taller than wide: Pillow may run its passes the other way round, so the kernel refuses and
    # hashing.thumbnail asks Pillow.
    tall = rng.integers(0, 256, (300, 40), dtype=np.uint8)
    with pytest.raises(ValueError, match="h <= w"):
        properties._kernel.box_thumb(tall)
    assert hashing.thumbnail(tall) == Image.fromarray(tall).resize((32, 32), Image.Resampling.BOX).tobytes()


@pytest.mark.parametrize("use_kernel", [True, False])
def test_pixel_stats_hand_computed(monkeypatch: pytest.MonkeyPatch, use_kernel: bool) -> None:
    if use_kernel and properties._kernel is None:
        pytest.skip("C extension not built")
    if not use_kernel:
        monkeypatch.setattr(properties, "_kernel", None)
    step = np.zeros((8, 8), dtype=np.uint8)
    step[:, 4:] = 255
    s = properties.pixel_stats(step)
    # Half black, half white: mean 127.5, std 127.5; both 5% tails pure; one bit of entropy. The
    # Laplacian's 6x6 interior has +-255 on either side of the edge in each row: var = 12 * 255^2 / 36.
    assert (s["brightness"], s["contrast"], s["dynamic_range"], s["dark_fraction"], s["bright_fraction"],
            s["entropy"], s["shadows"], s["highlights"], s["relative_contrast"]) == (0.5, 0.5, 1.0, 0.5, 0.5,
                                                                                   1.0, 0.0, 1.0, 1.0)
    assert s["sharpness"] == pytest.approx(12 * 255**2 / 36 / (127.5**2 + 1), rel=1e-12)
    # Edge sharpness: those 12 Laplacians squared over 36 pixels, against one step of 255 in each of the
    # 8 rows' 7 differences across (none down): (12/36) / (8/56) = 7/3, whatever the step's height.
    assert s["edge_sharpness"] == pytest.approx(7 / 3, rel=1e-12)
    assert properties.pixel_stats((step // 5).copy())["edge_sharpness"] == pytest.approx(7 / 3, rel=1e-12)
    assert s["channel_spread"] == 0.0 and math.isnan(s["noise"])
    rgb = np.zeros((6, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 30       # R-G = 30 everywhere, B-G = 0: spread 15, and a flat plane has no noise
    gray = np.full((6, 6), 9, dtype=np.uint8)
    s = properties.pixel_stats(gray, rgb)
    assert s["channel_spread"] == 15.0 and s["noise"] == 0.0 and s["sharpness"] == 0.0
    assert s["edge_sharpness"] == 0.0   # no edge at all: nothing sharp (not NaN, as below 6x6)
    assert math.isnan(properties.pixel_stats(np.zeros((5, 9), dtype=np.uint8))["edge_sharpness"])


@pytest.mark.parametrize("use_kernel", [True, False])
def test_edge_sharpness_is_judged_in_the_images_own_pixels(monkeypatch: pytest.MonkeyPatch, use_kernel: bool) -> None:
    """A JPEG decoded at half its size has its edge sharpness doubled (blur in its own pixels); one
    decoded at a quarter or an eighth keeps the value measured (properties.in_own_pixels)."""
    if use_kernel and properties._kernel is None:
        pytest.skip("C extension not built")
    if not use_kernel:
        monkeypatch.setattr(properties, "_kernel", None)
    photo = Image.open(coco_images("train2017")[0]).convert("RGB")
    for side, scale in ((256, 0.5), (640, 0.25), (1280, 0.125)):
        data = _encode(photo.resize((side, side * 3 // 4)), "JPEG", quality=90)
        im = Image.open(io.BytesIO(data))
        im.draft("RGB", decode.draft_size(*im.size))
        gray = np.asarray(im.convert("L"))
        assert max(gray.shape) == side * scale
        measured = properties.edge_sharpness(np.ascontiguousarray(gray))
        assert decode.measure_bytes(data)["edge_sharpness"] == measured * max(1.0, scale / 0.25)


@needs_kernel
def test_kernel_rejects_wrong_shapes() -> None:
    gray = np.zeros((4, 5), dtype=np.uint8)
    with pytest.raises(ValueError, match="gray must be"):
        properties.pixel_stats(np.zeros((4, 5), dtype=np.int16))
    with pytest.raises(ValueError, match="rgb must be"):
        properties.pixel_stats(gray, np.zeros((5, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="C-contiguous"):
        properties.pixel_stats(np.zeros((5, 8), dtype=np.uint8)[:, ::2])


def test_environment_variable_forces_the_numpy_path() -> None:
    code = "from visionaudit.features import properties; print(properties._kernel is None)"
    env = dict(os.environ, VISIONAUDIT_NO_EXTENSION="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


@needs_kernel
@pytest.mark.parametrize("level", [1, 37, 128, 255])
def test_phash_of_flat_images_is_the_mean_bit_alone_on_both_paths(monkeypatch: pytest.MonkeyPatch, level: int) -> None:
    # Every coefficient but the mean is zero up to rounding: without the tolerance its bits were
    # rounding noise (the numpy path gave 0xe629... for levels 1 and 128, 0xd609... for 255).
    data = _encode(Image.new("L", (64, 48), level), "PNG")
    fast, ref = _both_paths(monkeypatch, data)
    assert fast["phash"] == ref["phash"] == -(1 << 63)   # only the first (mean) bit, as a signed int64


def test_a_kernel_built_from_older_source_is_ignored_with_a_warning() -> None:
    # A checkout updated without re-running `pip install -e .` keeps the old compiled module, whose
    # functions take other arguments: the numpy path must run instead of every image failing.
    code = ("import sys, types, warnings\n"
            "sys.modules['visionaudit.features._pixelstats'] = types.ModuleType('visionaudit.features._pixelstats')\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    from visionaudit.features import decode, properties\n"
            "assert properties._kernel is None\n"
            "assert any('older _pixelstats.c' in str(w.message) for w in seen)\n"
            "from PIL import Image\n"
            "import io\n"
            "buf = io.BytesIO(); Image.new('RGB', (40, 30), (200, 10, 10)).save(buf, 'PNG')\n"
            "assert decode.measure_bytes(buf.getvalue())['error_kind'] is None\n")
    env = {k: v for k, v in os.environ.items() if k != "VISIONAUDIT_NO_EXTENSION"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@needs_kernel
def test_edge_sharpness_equal_on_rows_longer_than_the_kernels_int32_runs() -> None:
    """The kernel sums squared differences in int32 over runs of 32,768 pixels: rows longer than a run,
    worst case (every difference 255) included, must still give numpy's exact integer result."""
    rng = np.random.default_rng(11)
    stripes = np.zeros((7, 40_000), dtype=np.uint8)
    stripes[:, ::2] = 255
    for gray in (stripes, rng.integers(0, 256, (6, 70_000), dtype=np.uint8), rng.integers(0, 256, (9, 32_769), dtype=np.uint8)):
        fast = properties._kernel.pixel_stats(gray, None)[properties.PIXEL_STATS.index("edge_sharpness")]
        assert fast == properties._sharpness_pair(gray, 0.0)[1]
