"""Integrity: files that cannot be used as they are, or whose pixels differ from what tools expect."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..context import Context
from ..features.properties import GRAY_MODES
from ..findings import CheckOutput, Severity
from .base import Check

_DECODE_ERRORS = {
    "missing": ("Missing files", "{n} listed file(s) do not exist."),
    "zero_byte": ("Zero-byte files", "{n} file(s) are empty (0 bytes)."),
    "not_image": ("Not an image", "{n} file(s) with an image extension are not images in any known format."),
    "truncated": ("Truncated images", "{n} image(s) end before their pixel data does (interrupted copy or download)."),
    "unreadable": ("Unreadable images", "{n} image(s) could not be decoded."),
    "too_large": ("Oversized images (decompression-bomb guard)",
                  "{n} image(s) declare more pixels than the decode limit and were not decoded."),
}


class DecodeErrors(Check):
    id = "integrity.decode_errors"
    family = "integrity"
    title = "Files that cannot be decoded"
    severity = Severity.ERROR
    why = ("A file that cannot be read or decoded crashes a data loader mid-epoch, or is silently skipped "
           "so the model trains and is evaluated on a different set than the one you think.")
    fix = ("Re-copy or re-download the files from the source, or drop them from the manifest; "
           "`visionaudit scan --write-clean-manifest` writes a manifest without them.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        kinds = ctx.features["error_kind"]
        findings = []
        for kind, (title, text) in _DECODE_ERRORS.items():
            hit = kinds == kind
            output.score(kind, (~hit).astype(float), hit)
            ids = list(ctx.sample_ids[hit.to_numpy()])
            if ids:
                errors = ctx.features.loc[ids, "error"].astype(str).to_dict()
                message = text.format(n=len(ids))
                if kind == "missing":
                    message = message[:-1] + _where_missing(ctx, ids)
                findings.append(self.finding(issue=kind, title=title, message=message,
                                             samples=ids, scores={i: 0.0 for i in ids},
                                             evidence={"errors": errors}))
        return output.add(*findings)


def _where_missing(ctx: Context, ids: list[str]) -> str:
    """Where the missing files were looked for (their folders) and, for a COCO json, how to point at its images."""
    paths = ctx.dataset.samples.set_index("sample_id").loc[ids, "path"].astype(str)
    folders = sorted({os.path.dirname(p) for p in paths})
    shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more folder(s)" if len(folders) > 3 else "")
    hint = ""
    if ctx.dataset.format == "coco":
        hint = (" A COCO json's file names are relative to its image folder: pass it with --images FOLDER "
                "(or --coco JSON:FOLDER per split).")
    return f" (looked for them in {shown}).{hint}"


def _binary_scores(ctx: Context, output: CheckOutput, issue: str, judged: pd.Series, hit: pd.Series) -> list[str]:
    """Record score 0 (hit) / 1 (fine) for the judged samples; return the hit ids in dataset order."""
    ids = ctx.sample_ids[judged.to_numpy()]
    flags = hit[judged]
    output.score(issue, pd.Series(np.where(flags, 0.0, 1.0), index=ids), flags)
    return list(ids[flags.to_numpy()])


#: Content formats that a given extension family legitimately holds (MPO: multi-picture JPEG from cameras).
_SAME_FORMAT = {"MPO": "JPEG"}


class WrongExtension(Check):
    id = "integrity.wrong_extension"
    family = "integrity"
    title = "Extension does not match the content"
    why = ("Loaders and tools that pick a decoder by extension (or a pipeline that re-encodes '.jpg' files) fail "
           "or silently change such files; it also often means the file went through an undocumented conversion.")
    fix = "Rename the files to the extension of their real format, or re-encode them to the format their name says."

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        feats = ctx.features
        content = feats["format"].map(lambda f: _SAME_FORMAT.get(f, f), na_action="ignore")
        judged = content.notna() & feats["ext_format"].notna()
        ids = _binary_scores(ctx, output, "wrong_extension", judged, content != feats["ext_format"])
        if not ids:
            return output
        detail = {i: f"{feats.at[i, 'format']} content, {os.path.splitext(str(feats.at[i, 'path']))[1]} extension"
                  for i in ids}
        return output.add(self.finding(issue="wrong_extension", samples=ids, scores={i: 0.0 for i in ids},
                             message=f"{len(ids)} file(s) hold a different image format than their extension says.",
                             evidence={"formats": detail}))


_ORIENTATION_NAMES = {2: "mirrored", 3: "rotated 180°", 4: "mirrored vertically", 5: "mirrored + rotated 90° CW",
                      6: "rotated 90° CW", 7: "mirrored + rotated 90° CCW", 8: "rotated 90° CCW"}


class ExifRotation(Check):
    id = "integrity.exif_rotation"
    family = "integrity"
    title = "Images rotated by an EXIF orientation tag"
    why = ("The pixels of these images are stored sideways or mirrored, and only the EXIF tag says how to turn "
           "them. Viewers apply it, most ML loaders (PIL.Image.open, cv2 with some flags, torchvision) and many "
           "annotation tools do not, so boxes drawn on the displayed image do not match the pixels the model "
           "sees, and the model trains on rotated images.")
    fix = ("Bake the rotation into the pixels once (PIL.ImageOps.exif_transpose, then save without the tag) and "
           "re-check annotations made on these images, or apply exif_transpose consistently in every loader.")

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        feats = ctx.features
        orientation = pd.to_numeric(feats["exif_orientation"], errors="coerce").fillna(0)
        # Values outside 2-8 (0, 1, or invalid) tell viewers to show the pixels as stored.
        ids = _binary_scores(ctx, output, "exif_rotation", feats["format"].notna(), orientation.between(2, 8))
        if not ids:
            return output
        detail = {i: f"{int(orientation[i])} ({_ORIENTATION_NAMES[int(orientation[i])]})" for i in ids}
        return output.add(self.finding(issue="exif_rotation", samples=ids, scores={i: 0.0 for i in ids},
                             message=f"{len(ids)} image(s) carry an EXIF orientation that rotates or mirrors them on display.",
                             evidence={"orientations": detail}))


_MODE_ISSUES = {
    "cmyk_images": ("CMYK images", "{n} image(s) are CMYK (print colour space) in a dataset of {dominant} images.",
                    "Loaders convert CMYK to RGB inconsistently (with or without the ICC profile, some not at all): "
                    "colours shift between tools, and code that assumes 3 channels breaks on 4.",
                    "Convert them to sRGB RGB with their ICC profile once (e.g. Pillow ImageCms) and store the result."),
    "high_bit_depth": ("16-bit images", "{n} image(s) have 16 bits per channel in a dataset of 8-bit {dominant} images.",
                       "Loaders scale 16-bit pixels differently (kept as 0-65535, clipped or divided by 256), so "
                       "these images reach the model with a different intensity range than the rest.",
                       "Convert them to 8 bits with an explicit, documented scaling, or make the loader handle 16 bits."),
    "palette_images": ("Palette (indexed-colour) images",
                       "{n} image(s) store palette indices (mode P) in a dataset of {dominant} images.",
                       "Reading a palette image without converting it yields colour indices, not colours; a model "
                       "fed those sees noise. Palettes also quantise colours to at most 256.",
                       "Convert them to RGB once and store the result."),
    "alpha_channel": ("Images with an alpha channel",
                      "{n} image(s) have an alpha channel or transparency in a dataset of {dominant} images.",
                      "How transparency is flattened (onto black, white, or dropped with the hidden pixels) differs "
                      "by loader, so what the model sees behind transparent areas is arbitrary; 4-channel tensors "
                      "break 3-channel models.",
                      "Composite them onto the background your deployment sees and save as RGB."),
    "mixed_channels": ("Grayscale and colour images mixed",
                       "{n} image(s) have a different channel count ({minority}) than most of the dataset ({dominant}).",
                       "A single-channel image in a colour dataset either crashes a 3-channel pipeline or is expanded "
                       "silently; either way it is a different input distribution (and vice versa).",
                       "Convert them to the dataset's channel layout once, or check that their source belongs in the dataset."),
}


class ImageModes(Check):
    id = "integrity.image_modes"
    family = "integrity"
    title = "Images stored in an unusual pixel format"
    defaults = {"max_fraction": 0.5}
    why = "Images whose pixel format differs from the rest of the dataset reach the model differently depending on the loader."
    fix = "Convert them to the dataset's dominant format once and store the result."

    def run(self, ctx: Context) -> CheckOutput:
        output = self.output()
        feats = ctx.features
        valid = ctx.valid
        mode = feats["mode"].astype(str)
        kind = pd.Series(np.where(mode.isin(GRAY_MODES), "grayscale", np.where(mode == "CMYK", "CMYK", "colour")),
                         index=ctx.sample_ids)
        counts = kind[valid].value_counts()
        dominant = str(counts.index[0]) if len(counts) else "colour"
        dominant_mode = str(mode[valid].value_counts().index[0]) if valid.any() else "RGB"
        properties = {
            "cmyk_images": mode == "CMYK",
            "high_bit_depth": pd.to_numeric(feats["bit_depth"], errors="coerce") > 8,
            "palette_images": mode.isin(["P", "PA"]),
            "alpha_channel": feats["has_alpha"].fillna(False).astype(bool),
            "mixed_channels": (kind != dominant) & (kind != "CMYK"),
        }
        limit = float(self.params["max_fraction"])
        findings = []
        for issue, has in properties.items():
            has = has & valid
            share = has[valid].mean() if valid.any() else 0.0
            # Only a minority is a mix: when most images share the property it is the dataset's format.
            hit = has & bool(share < limit)
            ids = _binary_scores(ctx, output, issue, valid, hit)
            if not ids:
                continue
            title, text, why, fix = _MODE_ISSUES[issue]
            minority = ", ".join(sorted(set(mode[ids])))
            findings.append(self.finding(
                issue=issue, title=title, samples=ids, scores={i: 0.0 for i in ids}, why=why, fix=fix,
                message=text.format(n=len(ids), dominant=dominant_mode, minority=minority),
                evidence={"modes": {i: mode[i] for i in ids}, "dominant_mode": dominant_mode,
                          "share": round(float(share), 6)}))
        return output.add(*findings)
