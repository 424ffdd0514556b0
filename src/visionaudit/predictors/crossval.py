"""Out-of-fold class probabilities: the one cross-validation every estimate without a model shares.

A sample's out-of-fold probabilities come from a model fitted on the other folds, so they judge its
label as a model that never saw it would. Two things make naive k-fold leak:

- samples that belong together (a user's ``group_columns``: the same patient, video or scene) in
  both the fitted and the predicted part, and
- exact or near copies of one picture (the run's :func:`~visionaudit.analyses.duplicate_index.duplicate_index`)
  split between the parts: the model has seen the copy with its label, so the probabilities agree
  with that label, right or wrong, and a label error repeated on both copies is hidden.

:func:`make_folds` keeps each such cluster in one fold (``StratifiedGroupKFold`` with group
columns; seeded ``StratifiedKFold`` over the clusters otherwise, which with nothing to keep together
is plain ``StratifiedKFold`` over the samples). A class with fewer clusters than folds cannot
be in every training part and is left unjudged (said in ``notes``).
:func:`cross_validated_predictions` fits a logistic regression on image embeddings with those folds:
what ``evaluate`` uses when the user has neither predictions nor a model. scikit-learn (the
``evaluate`` extra) is imported only when folds are made.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..analyses import RunData
from ..analyses.duplicate_index import duplicate_index
from ..dataset.model import Dataset
from ..errors import ArgumentError, SourceError
from .predictions import Predictions

MODELS = ("logistic",)
#: Inverse L2 strength of the logistic regression on standardised embeddings. On 2,000 MNIST digits
#: with builtin embeddings (712 dimensions), 5-fold accuracy was 0.886 at C=0.01 and 0.03, 0.884 at
#: 0.1 and 0.868 at 1.0; on 1,500 digits with 100 labels flipped, the 100 lowest given-label
#: probabilities held 74 flipped ids at C=0.01, 71 at 0.03, 63 at 0.1 (78 at 0.003, with lower
#: accuracy at 0.001). Strong shrinkage suits embeddings with more dimensions than samples per class.
LOGISTIC_C = 0.01
LOGISTIC_MAX_ITER = 1000


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ImportError("cross-validation needs scikit-learn: pip install 'visionaudit[evaluate]'") from exc


@dataclass
class Folds:
    """Which fold predicts each judged sample of a run.

    ``rows`` marks the judged samples in dataset order; ``sample_ids``, ``labels``, ``fold`` and
    ``groups`` (the keep-together cluster of each) are aligned with them. ``classes`` are the judged
    labels, sorted, which is also the column order of scikit-learn's ``predict_proba``.

    >>> folds = make_folds(data, data.valid.to_numpy())
    >>> np.bincount(folds.fold), folds.classes               # 'meadow' has 4 images for 5 folds: left out
    (array([43, 45, 42, 41, 41]), ['beach', 'city', 'forest'])
    """

    rows: np.ndarray
    sample_ids: np.ndarray
    labels: np.ndarray
    classes: list[str]
    fold: np.ndarray
    groups: np.ndarray
    k: int
    seed: int
    notes: list[str] = field(default_factory=list)

    def splits(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(training rows, predicted rows) of each fold, as scikit-learn's ``cv`` takes them."""
        return [(np.flatnonzero(self.fold != f), np.flatnonzero(self.fold == f)) for f in range(self.k)]

    def predict_proba(self, estimator, x: np.ndarray, *, progress: bool = False,
                      description: str = "cross-validating") -> np.ndarray:
        """Out-of-fold ``predict_proba`` of ``estimator`` on ``x`` (one row per judged sample): a clone
        fitted per fold, as scikit-learn's ``cross_val_predict`` does, with a bar of the folds on stderr
        when ``progress``."""
        from sklearn.base import clone
        from threadpoolctl import threadpool_limits

        from ..engine import progress_bar

        out = np.zeros((len(self.labels), len(self.classes)))
        # Small problems: on a busy 2-core machine threads cost more than they save (a 5-fold boosting
        # fit ran 16x slower with OpenMP threads: 115 s vs 7 s single-threaded, measured).
        with threadpool_limits(1), progress_bar(self.k, description, progress) as advance:
            for train, predicted in self.splits():
                fitted = clone(estimator).fit(x[train], self.labels[train])
                columns = np.searchsorted(self.classes, fitted.classes_)  # every class is in every training part
                out[np.ix_(predicted, columns)] = fitted.predict_proba(x[predicted])
                advance(1)
        return out


def keep_together(data: RunData, rows: np.ndarray, *, duplicates: bool = True) -> tuple[np.ndarray, list[str]]:
    """A cluster number for each sample marked in ``rows``: samples sharing a value of a group column
    (``data.group_columns``) or linked as exact or near duplicates share a cluster.

    Returns the numbers (aligned with the marked samples) and what was kept together, in words.

    >>> manifest = RunData(load_dataset("manifest.csv"), group_columns=["patient_id"])
    >>> groups, said = keep_together(manifest, manifest.valid.to_numpy())
    >>> len(groups), len(set(groups)), said     # 217 decoded rows, 2 per patient, copies joined
    (217, 104, ["group column 'patient_id'", 'exact and near duplicates'])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = pd.Index(data.dataset.samples["sample_id"][rows])
    n = len(ids)
    links, said = [], []
    for column in data.group_columns:
        codes = pd.factorize(data.dataset.samples[column][rows])[0]
        order = np.argsort(codes, kind="stable")
        same = (codes[order][1:] == codes[order][:-1]) & (codes[order][1:] >= 0)
        links.append(np.stack([order[:-1][same], order[1:][same]], axis=1))
        said.append(f"group column {column!r}")
    if duplicates and n > 1:
        index = duplicate_index(data)
        at = ids.get_indexer(index.ids)
        pairs = at[np.concatenate([index.exact_pairs, index.near_pairs]).astype(np.int64).reshape(-1, 2)]
        pairs = pairs[(pairs >= 0).all(axis=1)]
        if len(pairs):
            links.append(pairs)
            said.append("exact and near duplicates")
    edges = np.concatenate(links) if links else np.empty((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1], said


def _check_folds(folds: int) -> None:
    if not isinstance(folds, (int, np.integer)) or isinstance(folds, bool) or folds < 2:
        raise ArgumentError("folds", folds, "an integer of at least 2")


def _assign(labels: np.ndarray, groups: np.ndarray, k: int, seed: int, *, balance_samples: bool) -> np.ndarray:
    """Fold of each sample, every group in one fold.

    ``balance_samples`` (a user's group column: a patient with hundreds of images) uses
    ``StratifiedGroupKFold``, which balances classes by samples but costs a pass over every fold per
    group (2.2 s for 10,000 groups). Duplicate clusters are mostly pairs among singletons, so folds
    over the clusters themselves, stratified by each cluster's first label, keep classes balanced to
    within a cluster per fold, at the price of one ``StratifiedKFold``.
    """
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    fold = np.empty(len(labels), np.int64)
    if balance_samples:
        splits = StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(np.zeros((len(labels), 1)), labels, groups)
        for f, (_, predicted) in enumerate(splits):
            fold[predicted] = f
        return fold
    units, first, unit_of = np.unique(groups, return_index=True, return_inverse=True)
    unit_fold = np.empty(len(units), np.int64)
    with warnings.catch_warnings():
        # A class whose clusters mostly start with another label has fewer units than folds here; the
        # caller checks every class is in every training part and leaves out those that are not.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros((len(units), 1)), labels[first])
        for f, (_, predicted) in enumerate(splits):
            unit_fold[predicted] = f
    fold[:] = unit_fold[unit_of.ravel()]
    return fold


def make_folds(data: RunData, candidates: np.ndarray, *, folds: int = 5, seed: int = 0,
               duplicates: bool = True) -> Folds | None:
    """Seeded stratified folds over the labelled samples marked in ``candidates`` (dataset order),
    keeping group-column values and duplicate clusters (:func:`keep_together`) in one fold each.

    Classes with fewer clusters than ``folds`` (or absent from some fold's training part) are left
    out and named in ``notes``. None when fewer than two classes remain.

    >>> folds = make_folds(data, data.valid.to_numpy(), folds=5, seed=0)
    >>> [len(test) for _, test in folds.splits()]
    [43, 45, 42, 41, 41]
    >>> folds.notes[0]
    "1 class(es) with fewer than 5 samples (or clusters kept together) to spread over 5 folds are not judged: 'meadow' (4)"
    """
    _sklearn()
    _check_folds(folds)
    labels = data.dataset.samples["label"]
    rows = np.asarray(candidates, bool) & labels.notna().to_numpy()
    clusters, said = keep_together(data, rows, duplicates=duplicates)
    cluster_of = pd.Series(clusters, index=np.flatnonzero(rows))
    y_all = labels.astype(str).to_numpy()
    left_out: dict[str, int] = {}
    while True:
        positions = np.flatnonzero(rows)
        y, g = y_all[positions], cluster_of.loc[positions].to_numpy()
        per_class = pd.Series(g).groupby(y).nunique()
        rare = per_class[per_class < folds]
        if len(rare) == 0:
            if len(per_class) < 2:
                return None
            fold = _assign(y, g, folds, seed, balance_samples=bool(data.group_columns))
            # Greedy group folds can put every cluster of a class in one fold: its training part then
            # lacks the class and would give it probability 0.
            absent = {c for f in range(folds) for c in set(per_class.index) - set(y[fold != f])}
            rare = per_class[sorted(absent)]
        if len(rare) == 0:
            break
        left_out.update(rare.to_dict())
        rows &= ~np.isin(y_all, rare.index)
    notes = []
    if left_out:
        named = ", ".join(f"{c!r} ({n})" for c, n in sorted(left_out.items()))
        notes.append(f"{len(left_out)} class(es) with fewer than {folds} samples (or clusters kept together) to "
                     f"spread over {folds} folds are not judged: {named}")
    shared = pd.Series(g)[pd.Series(g).duplicated(keep=False)]
    if len(shared):
        notes.append(f"{len(shared)} samples in {shared.nunique()} clusters "
                     f"({' and '.join(said)}) were kept in one fold each, so no copy or group member of a predicted "
                     "sample was in its training part")
    return Folds(rows=rows, sample_ids=data.dataset.samples["sample_id"][rows].astype(str).to_numpy(), labels=y,
                 classes=sorted(per_class.index.tolist()), fold=fold, groups=g, k=folds, seed=seed, notes=notes)


def check_request(dataset: Dataset, embedder: str = "auto", model: str = "logistic", folds: int = 5,
                  seed: int = 0) -> None:
    """Fail before any image is decoded when :func:`cross_validated_predictions` cannot run on ``dataset``:
    no label anywhere (the error names what is needed), an unknown ``model`` or ``embedder`` (or its model
    file missing) or fewer than 2 ``folds``.

    >>> check_request(load_dataset("unlabelled/"))     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    visionaudit.errors.SourceError: .../unlabelled: no sample has a label: ...
    """
    from ..features.embedders import get_embedder

    if model not in MODELS:
        raise ArgumentError("model", model, f"one of {', '.join(MODELS)}")
    _check_folds(folds)
    get_embedder(embedder)  # an unknown name or a missing model file fails here; models load on first use
    if not dataset.has_labels:
        raise SourceError(dataset.source, "no sample has a label: evaluating without predictions cross-validates a "
                                          "classifier on the labels, so it needs labelled images (class folders, a "
                                          "'label' column...); or pass predictions (--predictions) of a model")


def _estimator(model: str):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # lbfgs fits the multinomial (softmax) model; scaling makes one C fit every embedder's units.
    return make_pipeline(StandardScaler(), LogisticRegression(C=LOGISTIC_C, max_iter=LOGISTIC_MAX_ITER))


def cross_validated_predictions(data: RunData, embedder: str = "auto", model: str = "logistic", folds: int = 5,
                                seed: int = 0, timings: dict[str, float] | None = None) -> Predictions:
    """Out-of-fold class probabilities of a classifier on ``embedder``'s image embeddings.

    ``embedder="auto"`` is ``pretrained`` when installed, else ``builtin`` with a warning in the
    Predictions' ``warnings`` (:func:`~visionaudit.features.embedders.resolve_embedder`); ``embedder``
    of the Predictions names the one used.
    ``model="logistic"``: multinomial logistic regression on standardised embeddings. Folds come from
    :func:`make_folds` (seeded, stratified, groups and duplicate clusters kept together). Rows are in
    dataset order; unlabelled samples, images that did not decode and classes too small to
    cross-validate keep a row of NaN, counted in ``notes``. Raises :class:`SourceError` when no
    sample is labelled or fewer than two classes can be judged. ``timings``, when given, receives the
    seconds of the two stages, ``embedding`` and ``cross-validation`` (each with a progress bar on
    stderr when the run's ``progress`` option is on).

    >>> preds = cross_validated_predictions(data, "builtin", folds=5)
    >>> preds.source, preds.classes, preds.probs.shape
    ('5-fold cross-validated logistic regression on builtin embeddings', ['beach', 'city', 'forest'], (218, 3))
    """
    from ..features.embedders import embeddings, resolve_embedder

    dataset = data.dataset
    embedder, warning = resolve_embedder(embedder)
    check_request(dataset, embedder, model, folds, seed)
    t0 = time.perf_counter()
    emb = embeddings(data, embedder)
    t1 = time.perf_counter()
    samples = dataset.samples
    ids = samples["sample_id"].astype(str)
    embedded = ids.isin(pd.Index(emb.ids).astype(str)).to_numpy()
    plan = make_folds(data, embedded, folds=folds, seed=seed)
    labelled = samples["label"].notna().to_numpy()
    if plan is None:
        counts = samples["label"][labelled & embedded].astype(str).value_counts()
        shown = ", ".join(f"{c!r}: {n}" for c, n in counts.sort_index().items()) or "none"
        raise SourceError(dataset.source, f"cross-validation needs at least two classes with {folds} or more labelled "
                                          f"images that decoded (samples per class: {shown})")
    x = emb.vectors[pd.Index(emb.ids).astype(str).get_indexer(plan.sample_ids)].astype(np.float64)
    probs = np.full((len(samples), len(plan.classes)), np.nan)
    probs[plan.rows] = plan.predict_proba(_estimator(model), x, progress=bool(data.feature_options.get("progress")),
                                          description=f"cross-validating ({folds} folds)")
    if timings is not None:
        timings.update({"embedding": round(t1 - t0, 3), "cross-validation": round(time.perf_counter() - t1, 3)})
    notes = []
    if (~labelled).any():
        notes.append(f"{int((~labelled).sum())} of {len(samples)} samples have no label, so no prediction")
    if (labelled & ~embedded).any():
        notes.append(f"{int((labelled & ~embedded).sum())} labelled samples have no {embedder} embedding (the image "
                     "did not decode), so no prediction")
    source = f"{folds}-fold cross-validated logistic regression on {embedder} embeddings"
    return Predictions(classes=plan.classes, probs=probs, sample_ids=ids.tolist(), source=source,
                       notes=notes + plan.notes, embedder=embedder, warnings=[warning] if warning else [])
