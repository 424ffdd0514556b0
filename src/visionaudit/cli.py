"""Command line: one command per job (``scan``, ``evaluate``, ``report``; drift, pipeline, serve later)."""
from __future__ import annotations

import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .engine import progress_enabled
from .errors import VisionauditError
from .findings import Result

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="visionaudit: find the pitfalls that make computer-vision models fail in production.")
err = Console(stderr=True)

EMBEDDER_HELP = ("Embeddings to cross-validate on when no predictions are given: auto (the default: pretrained when "
                 "visionaudit[pretrained] is installed, else builtin), builtin (weight-free; weak label issues on "
                 "photographs), pretrained (EfficientNet-Lite0, offline), onnx:PATH, torchscript:PATH, "
                 "torch:package.module:callable (these three may end in #OUTPUT, the model output to use) or timm:NAME.")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"visionaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """visionaudit: find the pitfalls that make computer-vision models fail in production."""


SOURCE_HELP = ("Image folder (split folders train/val/test, also train2017, val_2017, images/train), manifest "
               "(.csv/.parquet), COCO .json, a folder kept as COCO ships it (annotations/instances_*.json beside "
               "train2017/, val2017/), YOLO .yaml or Pascal VOC folder.")
COCO_HELP = ("A COCO instances json and its image folder, JSON:IMAGES, one split each; repeat it for several splits "
             "(instead of SOURCE). Sample ids are image paths relative to the folder the image folders share.")


@app.command()
def scan(
    source: Optional[Path] = typer.Argument(None, metavar="SOURCE", help=SOURCE_HELP, show_default=False),
    images: Optional[Path] = typer.Option(None, "--images", help="Image folder for a COCO json."),
    coco: list[str] = typer.Option([], "--coco", metavar="JSON:IMAGES", help=COCO_HELP),
    out: Path = typer.Option(Path("visionaudit-report"), "--out", "-o", help="Folder for report.html and findings.json."),
    fail_on: str = typer.Option("error", "--fail-on", help="Exit 1 when a finding is at least this severe: error, warning or never (any case)."),
    group_column: list[str] = typer.Option([], "--group-column", "-g", help="Metadata column that must not span splits (patient, video...). Repeatable."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML/JSON file overriding check thresholds and severities."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache folder (default ~/.cache/visionaudit or $VISIONAUDIT_CACHE)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the feature cache."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: all cores)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write a JUnit XML file for CI systems."),
    scores_csv: Optional[Path] = typer.Option(None, "--scores-csv", help="Also write the scores table (scores.parquet) as CSV."),
    write_clean_manifest: Optional[Path] = typer.Option(
        None, "--write-clean-manifest",
        help="Write a CSV manifest without unusable files and with one copy per exact-duplicate group (plus <name>.dropped.csv)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary table."),
) -> None:
    """Audit an image dataset: integrity, quality, duplicates, split leakage and balance."""
    from . import scan as run_scan
    from .report import print_summary
    from .scan import ReportThumbnails

    fail_on = _check_fail_on(fail_on)
    dataset_source = _dataset_source(source, coco)
    if write_clean_manifest is not None and source is not None and write_clean_manifest.resolve() == source.resolve():
        err.print(f"[red]error:[/red] --write-clean-manifest {write_clean_manifest} is the input itself; "
                  "visionaudit never overwrites user data: choose a new file name")
        raise typer.Exit(2)
    _check_outputs(out, {"--junit": junit, "--scores-csv": scores_csv, "--write-clean-manifest": write_clean_manifest})
    thumbnails = ReportThumbnails()
    try:
        result = run_scan(dataset_source, images=images, group_columns=group_column, config=config, cache_dir=cache_dir,
                          use_cache=not no_cache, workers=workers, progress=progress_enabled(quiet), thumbnails=thumbnails)
    except VisionauditError as exc:
        _fail(exc)
    json_path, html_path = _write_reports(result, out, thumbnails, scores_csv)
    if junit is not None:
        from .report.junit import write_junit
        write_junit(result, junit, fail_on=fail_on)
    if write_clean_manifest is not None:
        from .report.clean_manifest import write_clean_manifest as write_manifest
        manifest_path, kept, dropped = write_manifest(result, write_clean_manifest)
        err.print(f"clean manifest: {manifest_path} ({kept} kept, {dropped} dropped)")
    if not quiet:
        print_summary(result)
        err.print(f"report: {html_path}\nfindings: {json_path}")
    raise typer.Exit(result.exit_code(fail_on))


@app.command()
def evaluate(
    source: Optional[Path] = typer.Argument(None, metavar="SOURCE", help=SOURCE_HELP, show_default=False),
    predictions: Optional[Path] = typer.Option(
        None, "--predictions", "-p",
        help="Model outputs: CSV/TSV/Parquet keyed by sample_id or path with one column per class, or .npy. "
             "Without it, out-of-fold predictions are cross-validated on image embeddings."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Image model to run instead of --predictions: an .onnx file, a TorchScript file "
                                    "(.pt/.pts/.torchscript) or a Python module:callable."),
    preprocess: Optional[Path] = typer.Option(
        None, "--preprocess", help="YAML/JSON preprocessing spec for --model (size, resize, resize_to, interpolation, "
                                   "channel_order, scale, mean, std, layout, dtype, exif_transpose; default ImageNet)."),
    model_classes: Optional[Path] = typer.Option(
        None, "--model-classes", help="Class names of --model's outputs, one per line (default: the dataset's sorted "
                                      "labels when there are as many)."),
    model_output: Optional[str] = typer.Option(None, "--model-output", help="Which output of --model (default: the first)."),
    embedder: str = typer.Option("auto", "--embedder", help=EMBEDDER_HELP),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds when no predictions are given."),
    compare: Optional[tuple[Path, Path]] = typer.Option(
        None, "--compare", help="Two predictions files A B of the same test set: B is judged against A (paired "
                                "bootstrap, McNemar's test); the other checks judge A. Replaces --predictions."),
    group_column: list[str] = typer.Option([], "--group-column", "-g",
                                           help="Metadata column (patient, video...): kept in one fold when cross-validating, sliced for weak segments. Repeatable."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image folder for a COCO json."),
    coco: list[str] = typer.Option([], "--coco", metavar="JSON:IMAGES", help=COCO_HELP),
    from_logits: bool = typer.Option(
        False, "--from-logits", help="The predictions file holds logits: softmax each row. Without it, rows are read "
                                     "as probabilities (rows off 1 by rounding are renormalised), or as logits when "
                                     "most rows are not probabilities."),
    out: Path = typer.Option(Path("visionaudit-report"), "--out", "-o",
                             help="Folder for report.html, findings.json and label_candidates.csv."),
    fail_on: str = typer.Option("error", "--fail-on", help="Exit 1 when a finding is at least this severe: error, warning or never (any case)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML/JSON file overriding check thresholds and severities."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache folder (default ~/.cache/visionaudit or $VISIONAUDIT_CACHE)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the feature cache."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: all cores)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write a JUnit XML file for CI systems."),
    scores_csv: Optional[Path] = typer.Option(None, "--scores-csv", help="Also write the scores table (scores.parquet) as CSV."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary table."),
) -> None:
    """Evaluate a model's predictions (or, without them, cross-validated ones on image embeddings): metrics with
    CIs, label issues, calibration, over/underfitting."""
    from . import evaluate as run_evaluate
    from .checks.labels import corrected_candidates
    from .report import print_summary
    from .scan import ReportThumbnails

    fail_on = _check_fail_on(fail_on)
    dataset_source = _dataset_source(source, coco)
    thumbnails = ReportThumbnails()
    if compare is not None:
        if predictions is not None:
            err.print("[red]error:[/red] give --predictions or --compare A B, not both (A is the model judged)")
            raise typer.Exit(2)
        predictions = compare[0]
    _check_outputs(out, {"--junit": junit, "--scores-csv": scores_csv})
    if predictions is None and model is None:
        from .evaluate import embedder_warning

        warning = embedder_warning(embedder)
        if warning:
            err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    try:
        result = run_evaluate(dataset_source, predictions, images=images, from_logits=True if from_logits else "auto", config=config, cache_dir=cache_dir,
                              use_cache=not no_cache, workers=workers, progress=progress_enabled(quiet), embedder=embedder, folds=folds, group_columns=group_column,
                              compare=compare[1] if compare else None, model=model, preprocess=preprocess,
                              model_classes=model_classes, model_output=model_output, thumbnails=thumbnails)
    except VisionauditError as exc:
        _fail(exc)
    json_path, html_path = _write_reports(result, out, thumbnails, scores_csv)
    if junit is not None:
        from .report.junit import write_junit
        write_junit(result, junit, fail_on=fail_on)
    label_issues = result.finding("label_issues")
    if label_issues is not None:
        candidates = out / "label_candidates.csv"
        corrected_candidates(label_issues).to_csv(candidates, index=False)
        err.print(f"label candidates: {candidates} ({label_issues.count} to review)")
    if not quiet:
        print_summary(result)
        err.print(f"report: {html_path}\nfindings: {json_path}")
    raise typer.Exit(result.exit_code(fail_on))


def _check_fail_on(fail_on: str) -> str:
    """``--fail-on``, read case-insensitively (``ERROR`` is ``error``)."""
    if fail_on.lower() not in ("error", "warning", "never"):
        err.print(f"[red]error:[/red] invalid --fail-on {escape(fail_on)!r}: expected error, warning or never")
        raise typer.Exit(2)
    return fail_on.lower()


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def _check_writable(folder: Path, option: str, shown: Path) -> None:
    """Create ``folder`` (and its parents) and write a file in it, then remove what was made: as root,
    permissions say nothing, so only trying tells whether the reports can be written there."""
    import tempfile

    made = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                _usage(f"invalid {option} {shown}: {parent} is a file, not a folder")
            break
        made.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        _usage(f"invalid {option} {shown}: cannot write in {folder} ({exc.strerror or exc}); "
               "give a folder you can write to")
    finally:
        for path in made:  # deepest first; leave nothing behind: the run makes them again
            try:
                path.rmdir()
            except OSError:
                break


def _check_outputs(out: Path | None, files: dict[str, Path | None]) -> None:
    """Fail before the run (exit 2) when an output cannot be written: ``--out`` an existing file or an
    unwritable place, a file option naming a folder; not after every image was decoded."""
    if out is not None:
        if out.exists() and not out.is_dir():
            _usage(f"invalid --out {out}: it is an existing file; --out is the run folder (report.html, "
                   "findings.json, scores.parquet...): give a folder, new or existing")
        _check_writable(out, "--out", out)
    for option, path in files.items():
        if path is None:
            continue
        if path.is_dir():
            _usage(f"invalid {option} {path}: it is a folder; give a file name")
        _check_writable(path.parent, option, path)


def _dataset_source(source: Path | None, coco: list[str]) -> Path | list[tuple[Path, Path | None]]:
    """SOURCE, or the ``(json, image folder)`` pairs of ``--coco JSON:IMAGES`` (exit 2 for neither or both,
    or a pair that is not one)."""
    if not coco:
        if source is None:
            err.print("[red]error:[/red] missing SOURCE: give a dataset (folder, manifest, COCO .json, YOLO .yaml) "
                      "or --coco JSON:IMAGES")
            raise typer.Exit(2)
        return source
    if source is not None:
        err.print(f"[red]error:[/red] give SOURCE ({escape(str(source))}) or --coco JSON:IMAGES pairs, not both")
        raise typer.Exit(2)
    pairs = []
    for value in coco:
        cut = value.lower().rfind(".json:")
        if cut >= 0 and value[cut + 6:].strip():
            pairs.append((Path(value[:cut + 5]), Path(value[cut + 6:])))
        elif value.lower().endswith(".json"):
            pairs.append((Path(value), None))
        else:
            err.print(f"[red]error:[/red] invalid --coco {escape(value)!r}: expected JSON:IMAGES, a COCO instances "
                      ".json file, a colon and its image folder (e.g. annotations/instances_val2017.json:val2017)")
            raise typer.Exit(2)
    return pairs


def _fail(exc: VisionauditError) -> NoReturn:
    # Escaped: file names and messages may hold [brackets] that rich would read as markup.
    err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2) from exc


def _write_reports(result: Result, out: Path, thumbnails: MutableMapping[str, bytes],
                   scores_csv: Path | None = None) -> tuple[Path, Path]:
    """The run folder (findings.json, scores, features, the thumbnails the report shows) and report.html
    into ``out``; ``thumbnails`` are the run's decode pass's, so the report opens no image."""
    from .report.html import write_html
    from .report.run_folder import save_run

    html_path = write_html(result, out / "report.html", thumbnails=thumbnails)
    json_path = save_run(result, out, thumbnails)
    if scores_csv is not None:
        scores_csv.parent.mkdir(parents=True, exist_ok=True)
        result.issues.to_csv(scores_csv, index_label="sample_id")
    return json_path, html_path


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Run folder that `visionaudit scan` or `evaluate` wrote (--out)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Where to write the HTML report (default RUN_DIR/report.html)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write a JUnit XML file for CI systems."),
    config: Optional[Path] = typer.Option(
        None, "--config", help="Judge the saved findings again with this config's conditions (per check: severity, "
                               "max_count); thresholds need a new run."),
    fail_on: str = typer.Option("error", "--fail-on", help="Exit 1 when a finding is at least this severe: error, warning or never (any case)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary table."),
) -> None:
    """Render a saved run again (HTML, JUnit, terminal, exit code) from its folder, opening no image."""
    from .report import print_summary
    from .report.html import write_html
    from .report.run_folder import load_run
    from .suites import load_config

    fail_on = _check_fail_on(fail_on)
    _check_outputs(None, {"--html": html, "--junit": junit})
    try:
        result, thumbnails = load_run(run_dir)
        if config is not None:
            result = result.judged(load_config(config).get("checks") or {})
    except VisionauditError as exc:
        _fail(exc)
    html_path = write_html(result, html or run_dir / "report.html", thumbnails=thumbnails)
    if junit is not None:
        from .report.junit import write_junit
        write_junit(result, junit, fail_on=fail_on)
    if not quiet:
        print_summary(result)
        err.print(f"report: {html_path}")
    raise typer.Exit(result.exit_code(fail_on))


@app.command("example-data")
def example_data(
    target: Path = typer.Argument(..., help="Folder to create (must not exist or be empty)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Generate a small labelled image dataset with planted problems, to try `visionaudit scan` on."""
    from .examples import make_example_dataset

    try:
        info = make_example_dataset(target, seed=seed)
    except VisionauditError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    err.print(f"wrote {info['images']} images to {target} (planted: {', '.join(info['planted'])})")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # python -m visionaudit.cli
    main()
