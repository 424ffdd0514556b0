"""visionaudit's evaluate path vs cleanlab's Datalab, on the same probabilities and features.

Data (built once, cached under ``--data-dir``): the 10,000 MNIST test digits as PNG files, a manifest
with a seeded ``--flip`` share of labels changed to another digit (the flipped ids are the ground
truth), out-of-fold probabilities of a simple model trained on the noisy labels (PCA(50) + logistic
regression on the pixels, 5-fold stratified cross-validation), and visionaudit's ``builtin``
embedding of every image (the features Datalab gets). Both tools get the same probabilities; the
features are visionaudit's own, so Datalab is handed for free what visionaudit computes itself.

Tools, each in its own subprocess (imports and loading the inputs done before the clock starts):

* ``datalab_label``: ``Datalab(data, label_name="label").find_issues(pred_probs=..., features=...,
  issue_types={"label": {}})``.
* ``datalab_all``: the same with Datalab's default issue types (cleanlab 2.9 with these inputs: label,
  outlier, near_duplicate, non_iid, class_imbalance, underperforming_group, null; printed after the table).
* ``visionaudit_ranking``: the ``labels.label_issues`` check with ``duplicates: false``, the same work
  as ``datalab_label`` (cleanlab's confident-learning ranking and flags on the probabilities, no
  duplicate join): the like-for-like label-issue runtime.
* ``visionaudit_label``: the ``labels.label_issues`` check alone on a Context whose features come
  from the warm feature cache. Its own work is cleanlab's ranking plus the duplicate clusters with
  conflicting labels, which need the run's duplicate index; ``work s`` counts building that index
  (the check is the first to ask for it), and ``index s`` says how much of it that was. In a full
  ``evaluate`` run the index is shared with the other checks that read it (and with the
  cross-validation when visionaudit makes the predictions itself).
* ``visionaudit_evaluate``: ``visionaudit.evaluate(manifest, predictions.npy)``, the whole evaluate
  suite (metrics with bootstrap CIs, calibration, label issues, baselines, weak segments, errors...)
  with the feature cache warm; ``--cold`` adds a run with an empty cache (decoding every image).

Columns: ``work s`` wall time of the call; ``work cpu s`` its user+system CPU (process and joined
children); ``peak MB`` the process's peak RSS (polled every 10 ms during the call) and ``+MB`` that
peak above the RSS just before the call. Precision and recall at k (k = number flipped) read the
tool's label-issue ranking (visionaudit: ``label_issues_score``; Datalab: ``label_score``), lowest
score first; ``flagged`` is the tool's flagged set with its own precision and recall.

Usage::

    python benchmarks/evaluate_vs_datalab.py                    # 10,000 digits, 5% flipped, 3 rounds
    python benchmarks/evaluate_vs_datalab.py --repeat 5 --cold
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist_test"
TOOLS = ["datalab_label", "visionaudit_ranking", "visionaudit_label", "datalab_all", "visionaudit_evaluate"]
DATA_VERSION = 1
#: Label-issue runtime target: visionaudit at most this many times cleanlab's.
TARGET = 1.2


# --------------------------------------------------------------------------- data (built once)

def _mnist():
    import numpy as np

    with gzip.open(MNIST / "t10k-images-idx3-ubyte.gz", "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    return images, labels


def build(data_dir: str, flip: float, seed: int) -> dict:
    """Images, noisy manifest, shared probabilities and features; reused when already built."""
    import numpy as np

    base = Path(data_dir)
    run = base / f"flip{flip:g}-seed{seed}-v{DATA_VERSION}"
    info_path = run / "info.json"
    if info_path.exists():
        return json.loads(info_path.read_text())
    images, truth = _mnist()
    img_dir = base / "images"
    if len(list(img_dir.glob("*.png"))) != len(images):
        from PIL import Image

        img_dir.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(images):
            Image.fromarray(im).save(img_dir / f"{i:05d}.png")
    run.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(truth)
    flipped = np.sort(rng.choice(n, int(round(n * flip)), replace=False))
    noisy = truth.astype(np.int64)
    noisy[flipped] = (noisy[flipped] + rng.integers(1, 10, len(flipped))) % 10
    ids = [f"{i:05d}" for i in range(n)]
    import pandas as pd

    pd.DataFrame({"sample_id": ids, "path": [str(img_dir / f"{i}.png") for i in ids],
                  "label": [str(v) for v in noisy]}).to_csv(run / "manifest.csv", index=False)

    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(PCA(50, random_state=0), LogisticRegression(C=0.1, max_iter=500))
    probs = cross_val_predict(model, images.reshape(n, -1) / 255.0, noisy,
                              cv=StratifiedKFold(5, shuffle=True, random_state=seed), method="predict_proba")
    np.save(run / "predictions.npy", probs)  # dataset order, classes '0'..'9' (sorted)

    from visionaudit.context import Context
    from visionaudit.dataset import load_dataset
    from visionaudit.features.embedders import embeddings

    cache = base / "feature-cache"
    ctx = Context(load_dataset(run / "manifest.csv"), feature_options={"cache_dir": str(cache), "progress": False})
    emb = embeddings(ctx)
    assert emb.ids.tolist() == ids, "every digit must decode"
    np.save(run / "features.npy", emb.vectors)
    info = {"manifest": str(run / "manifest.csv"), "predictions": str(run / "predictions.npy"),
            "features": str(run / "features.npy"), "labels": [int(v) for v in noisy],
            "flipped": [ids[i] for i in flipped], "ids": ids, "cache": str(cache), "n": n,
            "model_accuracy_on_truth": float((probs.argmax(1) == truth).mean())}
    info_path.write_text(json.dumps(info))
    return info


# --------------------------------------------------------------------------- tools (in subprocesses)

def _load_datalab(info: dict):
    import numpy as np

    probs, feats = np.load(info["predictions"]), np.load(info["features"])
    return {"label": np.asarray(info["labels"])}, probs, feats


def run_datalab(info: dict, inputs, issue_types) -> dict:
    from cleanlab import Datalab

    data, probs, feats = inputs
    lab = Datalab(data=data, label_name="label", verbosity=0)
    kwargs = {"issue_types": issue_types} if issue_types else {}
    lab.find_issues(pred_probs=probs, features=feats, **kwargs)
    issues = lab.get_issues("label")
    ids = info["ids"]
    order = issues["label_score"].to_numpy().argsort(kind="stable")
    return {"ranking": [ids[i] for i in order],
            "flagged": [ids[i] for i in range(len(ids)) if issues["is_label_issue"].iat[i]],
            "extra": {"issue_types": sorted(lab.get_issue_summary()["issue_type"].tolist())}}


def _load_visionaudit(info: dict):
    from visionaudit.context import Context
    from visionaudit.dataset import load_dataset
    from visionaudit.predictors import read_predictions

    dataset = load_dataset(info["manifest"])
    ctx = Context(dataset, predictions=read_predictions(info["predictions"], dataset),
                  feature_options={"cache_dir": info["cache"], "progress": False})
    ctx.features  # noqa: B018 - the feature pass (warm cache) is not the check's work
    return ctx


def run_visionaudit_label(info: dict, ctx) -> dict:
    from visionaudit.analyses.duplicate_index import duplicate_index
    from visionaudit.checks.labels import LabelIssues

    t = time.perf_counter()
    duplicate_index(ctx)
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    (finding,) = LabelIssues().run(ctx)
    check_s = time.perf_counter() - t
    scores = ctx.issues_frame()["label_issues_score"]
    return {"ranking": scores.sort_values(kind="stable").index.tolist(), "flagged": list(finding.samples),
            "extra": {"index_s": index_s, "check_s": check_s, "joined_by_duplicates":
                      finding.evidence["joined_by_duplicates"]}}


def run_visionaudit_ranking(info: dict, ctx) -> dict:
    from visionaudit.checks.labels import LabelIssues

    (finding,) = LabelIssues(duplicates=False).run(ctx)
    scores = ctx.issues_frame()["label_issues_score"]
    return {"ranking": scores.sort_values(kind="stable").index.tolist(), "flagged": list(finding.samples)}


def run_visionaudit_evaluate(info: dict, cache: str) -> dict:
    import visionaudit

    result = visionaudit.evaluate(info["manifest"], info["predictions"], cache_dir=cache, progress=False)
    scores = result.issues["label_issues_score"]
    finding = result.finding("label_issues")
    run = result.run_info
    return {"ranking": scores.sort_values(kind="stable").index.tolist(), "flagged": list(finding.samples),
            "extra": {"check_seconds": run["check_seconds"], "feature_seconds": run["feature_seconds"],
                      "images_decoded": run["images_decoded"]}}


def child(args: argparse.Namespace) -> None:
    import psutil

    info = json.loads(Path(args.info).read_text())
    tool = args.child
    if tool.startswith("datalab"):
        import cleanlab.datalab.datalab  # noqa: F401 - imported before the clock
        inputs = _load_datalab(info)
        work = (lambda: run_datalab(info, inputs, {"label": {}} if tool == "datalab_label" else None))
    elif tool in ("visionaudit_label", "visionaudit_ranking"):
        import cleanlab.filter  # noqa: F401
        ctx = _load_visionaudit(info)
        run = run_visionaudit_label if tool == "visionaudit_label" else run_visionaudit_ranking
        work = (lambda: run(info, ctx))
    else:
        import cleanlab.filter  # noqa: F401
        import sklearn.ensemble  # noqa: F401
        import visionaudit  # noqa: F401
        cache = args.cache or info["cache"]
        work = (lambda: run_visionaudit_evaluate(info, cache))
    me = psutil.Process()
    base_rss = me.memory_info().rss
    peak = [base_rss]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            done.wait(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    cpu0 = _cpu_seconds()
    started = time.perf_counter()
    out = work()
    out["work_s"] = time.perf_counter() - started
    out["work_cpu_s"] = _cpu_seconds() - cpu0
    done.set()
    poller.join()
    peak[0] = max(peak[0], me.memory_info().rss)
    out.update(peak_mb=peak[0] / 2**20, added_mb=(peak[0] - base_rss) / 2**20)
    Path(args.out).write_text(json.dumps(out))


def _cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------- parent: measure and compare

def measure(tool: str, info_path: str, cache: str | None = None) -> dict:
    out_path = Path(tempfile.mkdtemp(prefix="va-evalbench-")) / "out.json"
    cmd = [sys.executable, __file__, "--child", tool, "--info", info_path, "--out", str(out_path)]
    if cache:
        cmd += ["--cache", cache]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=dict(os.environ, CI="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed (exit {proc.returncode}):\n{proc.stderr.decode(errors='replace')[-4000:]}")
    out = json.loads(out_path.read_text())
    shutil.rmtree(out_path.parent, ignore_errors=True)
    out["proc_s"] = time.perf_counter() - started
    return out


def at_k(ranking: list[str], flipped: set[str]) -> float:
    """Precision at k = recall at k for k = the number flipped."""
    k = len(flipped)
    return len(set(ranking[:k]) & flipped) / k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/tmp/visionaudit-bench-mnist", help="where images and inputs are cached")
    ap.add_argument("--flip", type=float, default=0.05, help="share of labels flipped (seeded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="rounds per tool, interleaved; fastest kept")
    ap.add_argument("--only", nargs="*", choices=TOOLS, help="run only these tools")
    ap.add_argument("--cold", action="store_true", help="also run visionaudit_evaluate with an empty feature cache")
    ap.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--info", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    t = time.perf_counter()
    info = build(args.data_dir, args.flip, args.seed)
    info_path = str(Path(info["manifest"]).parent / "info.json")
    print(f"inputs ready in {time.perf_counter() - t:.1f} s ({info['n']} digits, {len(info['flipped'])} flipped, "
          f"model accuracy on the true labels {info['model_accuracy_on_truth']:.3f})", file=sys.stderr)
    tools = args.only or TOOLS
    results: dict[str, dict] = {}
    for round_ in range(args.repeat):
        for tool in tools:
            r = measure(tool, info_path)
            print(f"  round {round_ + 1}: {tool} {r['work_s']:.2f} s", file=sys.stderr)
            if tool not in results or r["work_s"] < results[tool]["work_s"]:
                results[tool] = r
    if args.cold:
        cold = tempfile.mkdtemp(prefix="va-evalbench-cache-")
        try:
            results["visionaudit_evaluate_cold"] = measure("visionaudit_evaluate", info_path, cache=cold)
        finally:
            shutil.rmtree(cold, ignore_errors=True)

    import cleanlab
    import sklearn

    import visionaudit

    flipped = set(info["flipped"])
    print(f"\n{info['n']} MNIST test digits, {len(flipped)} labels flipped (seed {args.seed}); shared out-of-fold "
          f"probabilities (PCA+logistic regression on pixels, accuracy {info['model_accuracy_on_truth']:.3f} on the "
          f"true labels) and builtin-embedding features; {len(os.sched_getaffinity(0))} CPUs, Python "
          f"{sys.version.split()[0]}, cleanlab {cleanlab.__version__}, scikit-learn {sklearn.__version__}, "
          f"visionaudit {visionaudit.__version__}; fastest of {args.repeat} rounds")
    head = (f"{'tool':26s} {'work s':>7s} {'work cpu s':>10s} {'proc s':>7s} {'peak MB':>8s} {'+MB':>6s} "
            f"{'P=R@k':>6s} {'flagged':>7s} {'prec':>5s} {'recall':>6s}")
    print("\n" + head + "\n" + "-" * len(head))
    for tool, r in results.items():
        got = set(r["flagged"])
        hits = len(got & flipped)
        print(f"{tool:26s} {r['work_s']:7.2f} {r['work_cpu_s']:10.2f} {r['proc_s']:7.2f} {r['peak_mb']:8.0f} "
              f"{r['added_mb']:6.0f} {at_k(r['ranking'], flipped):6.3f} {len(got):7d} "
              f"{hits / max(len(got), 1):5.2f} {hits / len(flipped):6.2f}")
    print("(P=R@k: precision = recall among the k lowest label scores, k = number flipped; prec/recall: of the "
          "flagged set)")
    va, dl = results.get("visionaudit_label"), results.get("datalab_label")
    if va:
        e = va["extra"]
        print(f"\nvisionaudit_label: duplicate index {e['index_s']:.2f} s + check {e['check_s']:.2f} s "
              f"({e['joined_by_duplicates']} joined as duplicates of differently labelled digits)")
    ev = results.get("visionaudit_evaluate")
    if ev:
        checks = ev["extra"]["check_seconds"]
        slow = ", ".join(f"{k} {v:.2f}" for k, v in sorted(checks.items(), key=lambda kv: -kv[1])[:5])
        print(f"visionaudit_evaluate: features {ev['extra']['feature_seconds']:.2f} s "
              f"({ev['extra']['images_decoded']} decoded), checks {sum(checks.values()):.2f} s (slowest: {slow})")
    vr = results.get("visionaudit_ranking")
    if vr and dl:
        print(f"label-issue runtime, same work (ranking, no duplicate join) visionaudit / cleanlab: "
              f"{vr['work_s'] / dl['work_s']:.2f}x (target <= {TARGET}x) [cpu {vr['work_cpu_s'] / dl['work_cpu_s']:.2f}x]")
    if va and dl:
        e = va["extra"]
        print(f"label-issue runtime with the duplicate join visionaudit / cleanlab: {va['work_s'] / dl['work_s']:.2f}x "
              f"[cpu {va['work_cpu_s'] / dl['work_cpu_s']:.2f}x; the check alone with the run's duplicate index "
              f"already built: {e['check_s'] / dl['work_s']:.2f}x]")
    if ev and "datalab_all" in results:
        da = results["datalab_all"]
        print(f"whole suite: visionaudit evaluate / Datalab default issue types: {ev['work_s'] / da['work_s']:.2f}x "
              f"[cpu {ev['work_cpu_s'] / da['work_cpu_s']:.2f}x]; Datalab ran: "
              f"{', '.join(da['extra']['issue_types'])}")


if __name__ == "__main__":
    main()
