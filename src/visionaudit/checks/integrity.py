"""Integrity: files that cannot be used as they are, or whose pixels differ from what tools expect."""
from __future__ import annotations

import pandas as pd

from ..context import Context
from ..findings import Finding, Severity
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

    def run(self, ctx: Context) -> list[Finding]:
        kinds = ctx.features["error_kind"]
        findings = []
        for kind, (title, text) in _DECODE_ERRORS.items():
            hit = kinds == kind
            ctx.add_scores(kind, (~hit).astype(float), hit)
            ids = list(ctx.sample_ids[hit.to_numpy()])
            if ids:
                errors = ctx.features.loc[ids, "error"].astype(str).to_dict()
                findings.append(self.finding(issue=kind, title=title, message=text.format(n=len(ids)),
                                             samples=ids, scores={i: 0.0 for i in ids},
                                             evidence={"errors": errors}))
        return findings
