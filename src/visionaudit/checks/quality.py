"""Quality: images that decode but are blurry, badly exposed, flat, noisy, over-compressed or odd-shaped.

Every property is measured once per image by ``features/`` on a reduced-size decode (about 128-320 px
on the long side), so sharpness and noise describe the image at that scale; edge sharpness (the blurry
check's) is brought to the image's own pixels when that decode is over a quarter of the image's size.

How a cut-off is chosen (all property checks; defaults on each class, overridable per run):

- ``absolute``: a value that is bad whatever the dataset (e.g. the brightest 5% of the pixels
  average below 25% grey: underexposed). It keeps flagging in a dataset where most images are bad.
- ``z`` and ``floor``: the dataset-relative rule. The property is put on a scale where it is roughly
  symmetric (log for sharpness, noise, contrast...), and an image is a robust outlier when it lies
  more than ``z`` robust standard deviations (1.4826 x median absolute deviation, never less than a
  per-property minimum) beyond the dataset median. A robust outlier is flagged only if it is also
  beyond ``floor``, so a dataset that is uniformly fine does not get its worst few percent flagged.
  The rule needs at least ``min_images`` judged images; smaller sets use the absolute rule alone.

The two combine into one cut-off per dataset, ``max(absolute, min(relative, floor))`` for
properties where low is bad (mirrored for high), which findings report in ``evidence`` with the
property name and direction for the report's histogram. Each judged image gets a score in (0, 1):
a logistic function of its distance from the cut-off in robust standard deviations, 0.5 at the
cut-off, so ``score < 0.5`` exactly when the image is flagged.

Defaults (property, flagged side: absolute / relative floor; every relative rule uses z = 4):

==================  =====================  ======================================================
issue               property               cut-off
==================  =====================  ======================================================
blurry              edge_sharpness         below 1.2 / 1.2 (Laplacian / gradient energy, own px)
dark                highlights             below 0.25 / 0.35 (mean of the brightest 5%, 0..1)
overexposed         shadows                above 0.70 / 0.55 (mean of the darkest 5%, 0..1; of the
                                           object's pixels on a plain white background)
low_contrast        relative_contrast      below 0.20 / 0.30
low_information     dynamic_range,entropy  range below 0.04 (98% of pixels within 10 levels),
                                           or entropy an outlier below 4 bits with structure
                                           (edges, texture) in under 5% of the image
noisy               noise                  above 12 / 8 grey levels (white chroma noise; colour only)
jpeg_artifacts      jpeg_quality           below 30 / 60 (JPEG only)
grayscale_as_rgb    channel_spread         below 0.25 grey levels, when such images are < 50%
odd_size            megapixels             10x (and 4 robust SD) from the median, either side
odd_aspect_ratio    aspect_ratio           above 2x the median (long/short side) and 4 robust SD
==================  =====================  ======================================================

Measured on the 256 COCO128 photos with injected problems (tests/test_quality.py): each check flags
exactly the injected images plus clean photos that have the property (10 black-and-white photos
stored as RGB, one underexposed night shot, two 2.8:1 panoramic crops); on 2000 MNIST digits, none.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..context import Context
from ..features.hashing import thumb_matrix
from ..features.properties import GRAY_MODES, thumbnail_structure
from ..findings import CheckOutput, Severity
from .base import Check


@dataclass(frozen=True)
class Cutoff:
    """One dataset's cut-off for one property, and what it was derived from.

    ``value`` is in the property's own units; ``center``/``scale`` are the robust median and spread
    on the transformed scale (``scale`` is what a score unit means).
    """

    value: float
    direction: str
    center: float
    scale: float
    relative: float | None

    def flags(self, v: np.ndarray) -> np.ndarray:
        return (v < self.value) if self.direction == "below" else (v > self.value)


def robust_center_scale(t: np.ndarray, min_scale: float) -> tuple[float, float]:
    """Median and 1.4826 x MAD of finite ``t`` (the MAD floored at ``min_scale``).

    >>> robust_center_scale(np.array([1.0, 2.0, 3.0, 100.0]), 0.1)   # the 100 barely moves it
    (2.5, 1.4826)
    """
    t = t[np.isfinite(t)]
    if t.size == 0:
        return math.nan, min_scale
    center = float(np.median(t))
    return center, max(1.4826 * float(np.median(np.abs(t - center))), min_scale)


def dataset_cutoff(values: np.ndarray, *, direction: str, transform: Callable[[np.ndarray], np.ndarray],
                   inverse: Callable[[float], float], absolute: float | None, floor: float | None, z: float,
                   min_scale: float, min_images: int) -> Cutoff:
    """Combine the absolute rule and the robust-outlier rule into one cut-off (see the module doc).

    >>> v = np.array([0.8, 0.82, 0.85, 0.9, 0.88, 0.1])
    >>> c = dataset_cutoff(v, direction="below", transform=np.log, inverse=math.exp, absolute=0.2,
    ...                    floor=0.5, z=4, min_scale=0.1, min_images=5)
    >>> round(c.value, 3), c.flags(v).tolist()
    (0.5, [False, False, False, False, False, True])
    """
    t = transform(values[np.isfinite(values)])
    center, scale = robust_center_scale(t, min_scale)
    below = direction == "below"
    relative = None
    if np.isfinite(t).sum() >= min_images:
        relative = float(inverse(center - z * scale if below else center + z * scale))
    if below:
        rule = -math.inf if relative is None else (relative if floor is None else min(relative, floor))
        cut = max(rule, -math.inf if absolute is None else absolute)
    else:
        rule = math.inf if relative is None else (relative if floor is None else max(relative, floor))
        cut = min(rule, math.inf if absolute is None else absolute)
    return Cutoff(value=float(cut), direction=direction, center=center, scale=scale, relative=relative)


def cutoff_scores(values: np.ndarray, cutoff: Cutoff, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Scores in (0, 1), 0.5 at the cut-off, one robust standard deviation = one logistic unit."""
    if not math.isfinite(cutoff.value):
        # Nothing can be flagged: scores still rank images by how far toward the bad side they are.
        t_cut = cutoff.center - 4 * cutoff.scale if cutoff.direction == "below" else cutoff.center + 4 * cutoff.scale
    else:
        t_cut = float(transform(np.array([cutoff.value]))[0])
    d = (transform(values) - t_cut) / cutoff.scale
    return expit(d if cutoff.direction == "below" else -d)


def expit(x: Any) -> Any:
    """The logistic function 1 / (1 + exp(-x)), computed as ``scipy.special.expit`` computes it
    (bit-identical on float64), without importing scipy: 0.0 and 1.0 at the extremes, no overflow warning.

    >>> expit(np.array([-800.0, 0.0, 2.0])).round(6).tolist()
    [0.0, 0.5, 0.880797]
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


class PropertyCheck(Check):
    """A check that flags images whose ``column`` is beyond a dataset cut-off (module doc).

    Subclasses set ``issue``, ``column``, ``direction``, ``transform``/``inverse`` (to a scale where
    the property is roughly symmetric), ``min_scale`` (smallest robust spread on that scale),
    ``defaults`` (absolute, floor, z, min_images) and ``message`` (formatted with n, cutoff, median).
    """

    family = "quality"
    issue: ClassVar[str]
    column: ClassVar[str]
    direction: ClassVar[str] = "below"
    min_scale: ClassVar[float] = 0.1
    message: ClassVar[str]

    @staticmethod
    def transform(v: np.ndarray) -> np.ndarray:
        return v

    @staticmethod
    def inverse(t: float) -> float:
        return t

    def judged(self, ctx: Context) -> pd.Series:
        """Which samples this check judges: valid images with the property measured."""
        return ctx.valid & np.isfinite(ctx.numeric(self.column))

    def cutoff(self, values: np.ndarray) -> Cutoff:
        p = self.params
        return dataset_cutoff(values, direction=self.direction, transform=self.transform, inverse=self.inverse,
                              absolute=p.get("absolute"), floor=p.get("floor"), z=float(p["z"]),
                              min_scale=self.min_scale, min_images=int(p["min_images"]))

    def judged_values(self, ctx: Context, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The values each image is judged by against the dataset's cut-off (made from ``values``, the
        ``column`` of the judged samples ``mask``): ``values`` itself unless a check knows better for
        some images."""
        return values

    def evaluate(self, ctx: Context) -> tuple[pd.Series, pd.Series, Cutoff, np.ndarray]:
        """Scores and flags of the judged samples, the cut-off, and the judged values."""
        mask = self.judged(ctx).to_numpy()
        values = ctx.numeric(self.column)[mask]
        cut = self.cutoff(values)
        ids = ctx.sample_ids[mask]
        judged = self.judged_values(ctx, mask, values)
        scores = pd.Series(cutoff_scores(judged, cut, self.transform), index=ids)
        return scores, pd.Series(cut.flags(judged), index=ids), cut, values

    def evidence(self, cut: Cutoff, values: np.ndarray) -> dict[str, Any]:
        return {"property": self.column, "cutoff": round(cut.value, 6), "direction": cut.direction,
                "median": round(float(np.median(values)), 6) if values.size else None,
                "relative_cutoff": None if cut.relative is None else round(cut.relative, 6)}

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        scores, flags, cut, values = self.evaluate(ctx)
        output.score(self.issue, scores, flags)
        ids = list(flags.index[flags.to_numpy()])
        if not ids:
            return output
        median = float(np.median(values))
        return output.add(self.finding(issue=self.issue, samples=ids, scores=scores,
                             message=self.message.format(n=len(ids), cutoff=cut.value, median=median),
                             evidence=self.evidence(cut, values)))


def _log_offset(offset: float) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[float], float]]:
    return (lambda v: np.log(np.asarray(v, dtype=float) + offset)), (lambda t: math.exp(t) - offset)


_log_sharpness, _exp_sharpness = _log_offset(1e-4)
_log_level, _exp_level = _log_offset(0.01)


class Blurry(PropertyCheck):
    id = "quality.blurry"
    title = "Blurry images"
    issue = "blurry"
    column = "edge_sharpness"
    min_scale = 0.25
    transform, inverse = staticmethod(_log_sharpness), staticmethod(_exp_sharpness)
    # The absolute rule alone (floor = absolute): edge sharpness is already relative to each image's own
    # content, and a cut-off raised toward a sharp dataset's median flags soft but fine photos (on the
    # benchmark a floor of 1.6 would flag 18 clean crops, precision 0.93). 1.2 flags none of the 256
    # COCO128 photos and 97% of them blurred by a 3 px Gaussian (benchmarks/blur_coco.py).
    defaults = {"absolute": 1.2, "floor": 1.2, "z": 4.0, "min_images": 20}
    message = ("{n} image(s) look blurry: edge sharpness (Laplacian over gradient energy, in the image's own "
               "pixels) below {cutoff:.3g}, dataset median {median:.3g}.")
    why = ("Out-of-focus or motion-blurred images carry little of the detail a model learns from; in training "
           "they teach it to ignore texture, in evaluation they measure a camera problem, not the model.")
    fix = ("Look at the worst images first (lowest score). Drop or re-shoot them, or keep them on purpose and "
           "tag them so their effect on metrics can be measured separately.")


class Dark(PropertyCheck):
    id = "quality.dark"
    title = "Dark (underexposed) images"
    issue = "dark"
    column = "highlights"
    transform, inverse = staticmethod(_log_level), staticmethod(_exp_level)
    defaults = {"absolute": 0.25, "floor": 0.35, "z": 4.0, "min_images": 20}
    message = ("{n} image(s) are dark: even their brightest 5% of pixels average below {cutoff:.0%} grey "
               "(dataset median {median:.0%}).")
    why = ("In an underexposed image the content sits in a few dark grey levels, buried in noise and "
           "quantisation; a model sees little of it. Judging by the brightest pixels, not the mean, keeps "
           "black-background images (digits, night sky, X-rays) from being called dark.")
    fix = ("Check the capture settings of the source (camera, time of day); drop unusable frames, or keep them "
           "and add brightness augmentation if the deployment will see them too.")


class Overexposed(PropertyCheck):
    id = "quality.overexposed"
    title = "Overexposed (washed-out) images"
    issue = "overexposed"
    column = "shadows"
    direction = "above"
    transform = staticmethod(lambda v: -np.log(1.01 - np.asarray(v, dtype=float)))
    inverse = staticmethod(lambda t: 1.01 - math.exp(-t))
    # Washed out: the tone curve lifted until even the darkest 5% of the pixels are light, the highlights
    # clipped or squeezed into the last few levels. On a plain bright background (a product shot,
    # clip-art, a sketch on white: the image's border is flat and above 90% grey) the white is the
    # background, not lost highlights: the object's own darkest tones are judged instead. A photo only
    # pushed up (a gain that burns its bright half to white but keeps its deep shadows) is not told
    # apart from a snow field or an overcast sky by any whole-image statistic and is not flagged
    # (benchmarks/quality_real.py prints both rates).
    defaults = {"absolute": 0.7, "floor": 0.55, "z": 4.0, "min_images": 20}
    message = ("{n} image(s) are overexposed: even their darkest 5% of pixels (an object's own, on a plain white "
               "background) average above {cutoff:.0%} grey (dataset median {median:.0%}).")
    why = ("Overexposure clips highlights to white and lifts every shadow: shapes and texture are gone where a "
           "model needs them. Judging by the darkest pixels, and by the object's own pixels where the image is "
           "an object on a plain white background, keeps product shots, documents and sketches from being "
           "called overexposed.")
    fix = "Drop or re-capture the images, or fix exposure at the source; check for a wrong gamma or brightness step in the pipeline."

    def judged_values(self, ctx: Context, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        # On a plain bright background (its border flat and above 90% grey), the object's own darkest tones.
        own = ((ctx.numeric("background_share")[mask] >= 0.5) & (ctx.numeric("background_level")[mask] >= 0.9)
               & np.isfinite(ctx.numeric("foreground_shadows")[mask]))
        return np.where(own, ctx.numeric("foreground_shadows")[mask], values)


class LowContrast(PropertyCheck):
    id = "quality.low_contrast"
    title = "Low-contrast images"
    issue = "low_contrast"
    column = "relative_contrast"
    transform, inverse = staticmethod(_log_level), staticmethod(_exp_level)
    defaults = {"absolute": 0.2, "floor": 0.3, "z": 4.0, "min_images": 20}
    message = ("{n} image(s) have low contrast: their brightest and darkest 5% of pixels differ by a relative contrast "
               "below {cutoff:.2f} (dataset median {median:.2f}).")
    why = ("A washed-out, hazy or flattened image squeezes its content into a narrow band of grey levels; "
           "the contrast measure ignores plain under- or overexposure (see dark/overexposed), so what is "
           "flagged here is a genuinely narrowed tonal range (fog, glare, a bad tone curve).")
    fix = "Drop them, or correct the tone curve at the source; if the deployment sees such images, keep them and add contrast augmentation."


class LowInformation(PropertyCheck):
    id = "quality.low_information"
    title = "Near-uniform, low-information images"
    issue = "low_information"
    column = "entropy"
    min_scale = 0.25
    # The entropy rule flags only images with almost no structure: under ``max_structure`` of the image
    # with any edge or texture (4x4-pixel blocks of the 32x32 thumbnail spanning more than 8 levels).
    # Clip-art, a sketch or an object on a plain background have few grey levels (a low entropy) but
    # plenty of structure; a blank or near-uniform frame has none.
    defaults = {"absolute_range": 0.04, "floor": 4.0, "z": 4.0, "min_images": 20, "max_structure": 0.05}
    message = ("{n} image(s) carry almost no information: nearly uniform (98% of pixels within "
               "{range_levels} grey levels) or an entropy below {cutoff:.2f} bits (dataset median {median:.2f}) "
               "with structure in under {structure:.0%} of the image.")
    why = ("Blank frames (lens cap, empty conveyor, a failed capture, a placeholder) are not examples of any "
           "class; labelled as one, they teach the model that a blank image means that class.")
    fix = "Remove them from the dataset, or label them as an explicit 'empty' class if the deployment sees them."

    def cutoff(self, values: np.ndarray) -> Cutoff:
        p = self.params
        # Entropy has no dataset-independent bad value (a digit on black has ~1.5 bits), so its absolute
        # rule is the tonal range instead: that is checked in run().
        return dataset_cutoff(values, direction="below", transform=self.transform, inverse=self.inverse,
                              absolute=None, floor=float(p["floor"]), z=float(p["z"]),
                              min_scale=self.min_scale, min_images=int(p["min_images"]))

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        scores, flags, cut, values = self.evaluate(ctx)
        look = np.flatnonzero(flags.to_numpy())
        most = float(self.params["max_structure"])
        if look.size:   # entropy outliers: do they show structure? (their thumbnails only)
            thumbs = ctx.features["thumb"].reindex(flags.index[look]).tolist()
            structure = thumbnail_structure(thumb_matrix(thumbs))
            entropy_scores = scores.to_numpy().copy()
            entropy_scores[look] = np.maximum(entropy_scores[look], expit((structure - most) / 0.02))
            structured = np.zeros(len(flags), bool)
            structured[look] = structure >= most
            scores = pd.Series(entropy_scores, index=scores.index)
            flags = flags & ~pd.Series(structured, index=flags.index)
        limit = float(self.params["absolute_range"])
        rng = ctx.numeric("dynamic_range")
        rng = pd.Series(rng, index=ctx.sample_ids).reindex(scores.index).to_numpy()
        flat = rng < limit
        # A uniform image scores like an entropy outlier: 0.5 at the range limit, lower below it.
        range_scores = expit((np.log(rng + 0.01) - math.log(limit + 0.01)) / 0.25)
        scores = pd.Series(np.minimum(scores.to_numpy(), range_scores), index=scores.index)
        flags = flags | pd.Series(flat, index=flags.index)
        output.score(self.issue, scores, flags)
        ids = list(flags.index[flags.to_numpy()])
        if not ids:
            return output
        evidence = self.evidence(cut, values)
        evidence["also"] = {"property": "dynamic_range", "cutoff": limit, "direction": "below"}
        return output.add(self.finding(issue=self.issue, samples=ids, scores=scores, evidence=evidence,
                             message=self.message.format(n=len(ids), cutoff=cut.value, median=float(np.median(values)),
                                                         range_levels=round(limit * 255), structure=most)))


class Noisy(PropertyCheck):
    id = "quality.noisy"
    title = "Noisy images"
    issue = "noisy"
    column = "noise"
    direction = "above"
    min_scale = 0.25
    transform = staticmethod(lambda v: np.log1p(np.asarray(v, dtype=float)))
    inverse = staticmethod(math.expm1)
    defaults = {"absolute": 12.0, "floor": 8.0, "z": 4.0, "min_images": 20}
    message = ("{n} image(s) are noisy: white colour-noise sigma above {cutoff:.3g} grey levels at analysis size "
               "(median of the colour images {median:.3g}).")
    why = ("Strong sensor noise (low light, high ISO) or noise added by a pipeline hides fine detail and is "
           "a shift the model may not see at deployment. Noise is told apart from texture by being "
           "independent per colour channel and per pixel (it halves when 2x2 pixels are averaged); "
           "grayscale images have no colour to tell it by and are not judged.")
    fix = "Drop or denoise them, or fix the capture (light, ISO); if the deployment is noisy too, keep them and add noise augmentation."


class JpegArtifacts(PropertyCheck):
    id = "quality.jpeg_artifacts"
    title = "Heavy JPEG compression"
    issue = "jpeg_artifacts"
    column = "jpeg_quality"
    min_scale = 5.0
    defaults = {"absolute": 30.0, "floor": 60.0, "z": 4.0, "min_images": 20}
    message = ("{n} JPEG image(s) are heavily compressed: estimated quality below {cutoff:.0f} "
               "(dataset median {median:.0f}).")
    why = ("At low JPEG quality, 8x8 blocking, ringing and colour bleeding replace real texture; a model can "
           "learn the artifacts (e.g. when one class comes from a source that compresses harder).")
    fix = "Re-export the images from their originals at quality 85+; if only some sources compress hard, check they do not align with a class."


class GrayscaleAsRgb(Check):
    id = "quality.grayscale_as_rgb"
    family = "quality"
    title = "Grayscale images stored as RGB"
    severity = Severity.INFO
    defaults = {"max_spread": 0.25, "max_fraction": 0.5}
    why = ("Black-and-white photos stored with three equal channels look like colour images to every loader; "
           "in a colour dataset they are a different input distribution, and a model leaning on colour "
           "fails on them.")
    fix = ("Decide whether black-and-white images belong in the dataset; if they do, make sure the test set "
           "has them too, or convert the whole dataset to grayscale if colour is not needed.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        feats = ctx.features
        color = ctx.valid & ~feats["mode"].isin(GRAY_MODES)
        spread = pd.Series(ctx.numeric("channel_spread"), index=ctx.sample_ids)[color]
        limit = float(self.params["max_spread"])
        scores = pd.Series(expit((np.log1p(spread.to_numpy()) - math.log1p(limit)) / 0.1), index=spread.index)
        # When gray-in-RGB is the norm of the dataset, it is a storage choice, not a mix.
        hit = (spread < limit) & bool((spread < limit).mean() < float(self.params["max_fraction"]))
        output.score("grayscale_as_rgb", scores, hit)
        ids = list(hit.index[hit.to_numpy()])
        if not ids:
            return output
        return output.add(self.finding(issue="grayscale_as_rgb", samples=ids, scores=scores,
                             message=(f"{len(ids)} of {len(spread)} colour-mode images have identical channels "
                                      f"(mean channel difference below {limit:g} grey levels): grayscale stored as RGB."),
                             evidence={"property": "channel_spread", "cutoff": limit, "direction": "below"}))


class OddSize(Check):
    id = "quality.odd_size"
    family = "quality"
    title = "Images far smaller or larger than the rest"
    defaults = {"ratio": 10.0, "z": 4.0, "min_images": 20}
    why = ("Models resize every input to one size: an image 10x smaller than its peers is upsampled into mush, "
           "one far larger loses its detail or stalls the loader. Such images often come from a different "
           "source (thumbnails, crops, scans) and carry a different distribution.")
    fix = "Check where they come from; drop thumbnails and wrong crops, or fetch the full-size originals."
    #: The robust spread of log pixel count is never taken below log(2): a 2x size spread is normal.
    min_scale = math.log(2.0)

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        mask = (ctx.valid & np.isfinite(ctx.numeric("megapixels"))).to_numpy()
        mp = ctx.numeric("megapixels")[mask]
        ids = ctx.sample_ids[mask]
        t = np.log(mp)
        center, scale = robust_center_scale(t, self.min_scale)
        # Two-sided: too small or too large, on the log scale, by z robust deviations and the ratio.
        reach = max(float(self.params["z"]) * scale, math.log(float(self.params["ratio"])))
        lo, hi = math.exp(center - reach), math.exp(center + reach)
        scores = pd.Series(expit(-(np.abs(t - center) - reach) / scale), index=ids)
        # Without enough images there is no "typical size" to differ from: scores rank, nothing is flagged.
        enough = mp.size >= int(self.params["min_images"])
        flags = pd.Series(((mp < lo) | (mp > hi)) & enough, index=ids)
        output.score("odd_size", scores, flags)
        hit = list(ids[flags.to_numpy()])
        if not hit:
            return output
        median = math.exp(center)
        return output.add(self.finding(issue="odd_size", samples=hit, scores=scores,
                             message=(f"{len(hit)} image(s) have a pixel count outside {lo:.3g}-{hi:.3g} megapixels, "
                                      f"far from the dataset median {median:.3g} MP."),
                             # The findings schema has one-sided cut-offs: the histogram shows the low one
                             # (thumbnails, the common case); images above upper_cutoff are flagged too.
                             evidence={"property": "megapixels", "cutoff": round(lo, 6), "direction": "below",
                                       "upper_cutoff": round(hi, 6), "median": round(median, 6)}))


class OddAspectRatio(PropertyCheck):
    id = "quality.odd_aspect_ratio"
    title = "Unusually elongated images"
    issue = "odd_aspect_ratio"
    column = "aspect_ratio"
    direction = "above"
    min_scale = 0.1
    transform = staticmethod(lambda v: np.log(np.asarray(v, dtype=float)))
    inverse = staticmethod(math.exp)
    defaults = {"factor": 2.0, "z": 4.0, "min_images": 20}
    message = ("{n} image(s) are unusually elongated: long side / short side above {cutoff:.2f} "
               "(dataset median {median:.2f}).")
    why = ("Resizing a panorama or a thin strip to a square model input squashes its content; cropping loses "
           "most of it. Such images are often stitched, mis-cropped or from another source.")
    fix = "Crop or pad them to the dataset's usual shape, or drop them; check the tool that produced them."

    def cutoff(self, values: np.ndarray) -> Cutoff:
        # The floor is relative: at least ``factor`` times the median elongation (portrait vs landscape
        # is not elongation: aspect_ratio is long side / short side).
        p = self.params
        median = float(np.median(values)) if values.size else 1.0
        return dataset_cutoff(values, direction="above", transform=self.transform, inverse=self.inverse,
                              absolute=None, floor=median * float(p["factor"]), z=float(p["z"]),
                              min_scale=self.min_scale, min_images=int(p["min_images"]))
