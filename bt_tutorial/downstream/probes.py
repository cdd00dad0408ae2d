"""Linear probes on frozen features, with the regularisation chosen without the test split.

Protocol, for every seed:

1. a quarter (``validation_fraction``) of the *training* speakers is set aside for
   validation; test speakers are never among them;
2. features are standardised with the mean and standard deviation of the
   remaining training clips (the fitting clips) only;
3. a ridge classifier (one-vs-rest targets in {-1, 1}, closed form for every
   alpha from one SVD) is fitted on the fitting clips for every alpha of the grid,
   and the alpha with the best validation score is kept;
4. that probe predicts the test clips once.

The seeds differ in which training speakers validate, so each seed's probe
learns from a different subset of speakers, and the spread of the test score
over seeds shows how much it depends on that choice. Scores: accuracy and
macro-F1 for one-label tasks (macro-F1 selects alpha); micro-F1 (selects alpha)
and macro-F1 for multi-label tasks (the phoneme control task). A multi-label
probe predicts a label when its output is above 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass

import numpy as np

from bt_tutorial.downstream.clips import _model_dir, clip_features
from bt_tutorial.downstream.tasks import Task
from bt_tutorial.stats import t_interval

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 7))


@dataclass
class ProbeResult:
    """Test scores of one probe (model, task, layer) over seeds.

    Attributes
    ----------
    model, task : str
    layer : int
    primary : str
        The metric that selects alpha: ``"macro_f1"`` or, multi-label, ``"micro_f1"``.
    scores : dict of str -> list of float
        Test score per seed, for every metric.
    validation : list of float
        Best validation score (primary metric) per seed.
    alphas : list of float
        Alpha chosen per seed.
    n_train, n_validation, n_test : int
        Clips used to fit and validate (first seed; they vary with the validation
        speakers) and to test.
    """

    model: str
    task: str
    layer: int
    primary: str
    scores: dict
    validation: list
    alphas: list
    n_train: int
    n_validation: int
    n_test: int

    def mean(self, metric: str | None = None) -> float:
        """Mean test score over seeds (default metric: ``primary``)."""
        return float(np.mean(self.scores[metric or self.primary]))

    def interval(self, metric: str | None = None, level: float = 0.95) -> tuple:
        """Student-t confidence interval of the mean over seeds; NaN with a single seed."""
        _, low, high = t_interval(self.scores[metric or self.primary], level)
        return low, high

    def summary(self) -> str:
        lo, hi = self.interval()
        return (f"{self.task} | {self.model} | layer {self.layer}: {self.primary} "
                f"{self.mean():.3f} [{lo:.3f}, {hi:.3f}] over {len(self.alphas)} seeds, "
                f"validation {np.mean(self.validation):.3f}, median alpha {np.median(self.alphas):g}")


def fit_probe(features: np.ndarray, task: Task, seeds=10, alphas=DEFAULT_ALPHAS,
              validation_fraction: float = 0.25, model: str = "", layer: int = -1) -> ProbeResult:
    """Run the probe protocol (module docstring) on precomputed features.

    Parameters
    ----------
    features : ndarray, shape (n_clips, n_features)
        One row per clip of ``task``.
    task : Task
    seeds : int or sequence of int
        Number of seeds (0, 1, ...) or the seeds themselves.
    alphas : sequence of float
        Ridge penalties tried on the validation speakers.
    validation_fraction : float
        Share of the training speakers held out for validation (at least one).
    model : str
    layer : int
        Recorded in the result.

    Returns
    -------
    result : ProbeResult
    """
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(task):
        raise ValueError(f"features must have shape (n_clips={len(task)}, n_features); got {X.shape}.")
    bad_clips = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_clips.size:
        raise ValueError(f"features of {bad_clips.size} clips of {task.name!r} are not finite (NaN or inf; first "
                         f"clips {bad_clips[:5].tolist()}): recompute them (delete their cache) before probing.")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
    seeds = list(range(seeds)) if np.isscalar(seeds) else list(seeds)
    alphas = np.sort(np.asarray(alphas, dtype=float))
    if not seeds or not len(alphas) or not np.isfinite(alphas).all() or alphas.min() < 0:
        raise ValueError(f"Need at least one seed and finite, non-negative alphas; got {len(seeds)} seeds and "
                         f"alphas {alphas.tolist()[:5]}.")
    train, test = task.indices("train"), task.indices("test")
    if len(np.unique(task.groups[train])) < 2 or len(test) == 0:
        raise ValueError(f"Task {task.name!r} needs at least 2 training speakers and a test split.")
    Y = _targets(task)
    primary = "micro_f1" if task.multilabel else "macro_f1"
    with _one_blas_thread():
        runs = [_one_seed(X, Y, task, train, test, seed, alphas, validation_fraction, primary)
                for seed in seeds]
    metrics = runs[0]["test"].keys()
    return ProbeResult(model=model, task=task.name, layer=int(layer), primary=primary,
                       scores={m: [r["test"][m] for r in runs] for m in metrics},
                       validation=[r["validation"] for r in runs], alphas=[r["alpha"] for r in runs],
                       n_train=runs[0]["n_fit"], n_validation=runs[0]["n_val"], n_test=len(test))


def probe_layer(model, task: Task, layer: int, seeds=10, alphas=DEFAULT_ALPHAS,
                validation_fraction: float = 0.25, cache_dir=None, progress: bool = True) -> ProbeResult:
    """Probe one hidden state of a model on a task; results and features are cached.

    Features of all hidden states are computed in one pass the first time
    (:func:`~bt_tutorial.downstream.clips.clip_features`); the probe's result is
    cached under a key made of the model's weights fingerprint, the task's
    version and content digest, the layer and the probe settings.

    Parameters
    ----------
    model : SpeechModel
    task : Task
    layer : int
        Hidden state (0 = input of the first transformer layer).
    seeds, alphas, validation_fraction
        As in :func:`fit_probe`.
    cache_dir : str or Path or False, optional
        Default ``<data home>/cache/downstream``; ``False`` disables caching.
    progress : bool

    Returns
    -------
    result : ProbeResult
    """
    settings = dict(seeds=list(range(seeds)) if np.isscalar(seeds) else [int(s) for s in seeds],
                    alphas=[float(a) for a in alphas], validation_fraction=float(validation_fraction))
    path = None
    if cache_dir is not False:
        key = hashlib.sha1(json.dumps([task.version, settings], sort_keys=True).encode()).hexdigest()[:10]
        path = _model_dir(model, cache_dir) / f"{task.name}_{task.digest()}_layer{int(layer)}_{key}.json"
        if path.is_file():
            return ProbeResult(**json.loads(path.read_text()))
    X = clip_features(model, task, [layer], cache_dir=cache_dir, progress=progress)[int(layer)]
    result = fit_probe(X, task, settings["seeds"], settings["alphas"], validation_fraction,
                       model=model.name, layer=layer)
    if path is not None:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(result)))
        tmp.replace(path)
    return result


def probe_layers(model, task: Task, layers=None, **kwargs) -> dict:
    """:func:`probe_layer` for several hidden states (default: all); dict layer -> ProbeResult."""
    layers = range(model.n_layers + 1) if layers is None else layers
    return {int(k): probe_layer(model, task, k, **kwargs) for k in layers}


def best_layer(results: dict) -> int:
    """The layer whose probes did best on *validation* (mean over seeds), never on test.

    Parameters
    ----------
    results : dict of int -> ProbeResult
    """
    return max(results, key=lambda k: (np.mean(results[k].validation), -k))


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, multilabel: bool) -> dict:
    """Accuracy and macro-F1 (one label), or micro- and macro-F1 (multi-label, boolean rows).

    Macro-F1 averages over the classes that occur in ``y_true`` or ``y_pred``.
    """
    if multilabel:
        tp = (y_true & y_pred).sum(0)
        fp, fn = (~y_true & y_pred).sum(0), (y_true & ~y_pred).sum(0)
        micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
        seen = (tp + fp + fn) > 0
        macro = np.mean(2 * tp[seen] / (2 * tp[seen] + fp[seen] + fn[seen])) if seen.any() else 0.0
        return {"micro_f1": float(micro), "macro_f1": float(macro)}
    classes = np.union1d(y_true, y_pred)
    f1 = []
    for c in classes:
        tp = np.sum((y_true == c) & (y_pred == c))
        f1.append(2 * tp / (np.sum(y_true == c) + np.sum(y_pred == c)))
    return {"accuracy": float(np.mean(y_true == y_pred)), "macro_f1": float(np.mean(f1))}


def _targets(task: Task) -> np.ndarray:
    """One-vs-rest targets in {-1, 1}, shape (n_clips, n_classes or n_labels)."""
    if task.multilabel:
        onehot = task.labels.astype(bool)
    else:
        onehot = task.labels[:, None] == np.arange(len(task.label_names))[None, :]
    return np.where(onehot, 1.0, -1.0)


def _decide(outputs: np.ndarray, multilabel: bool) -> np.ndarray:
    return outputs > 0 if multilabel else outputs.argmax(1)


def _one_seed(X, Y, task, train, test, seed, alphas, validation_fraction, primary) -> dict:
    fit, val = _carve_validation(task.groups, train, seed, validation_fraction)
    mu, sd = X[fit].mean(0), X[fit].std(0)
    sd[sd == 0] = 1.0
    Z = (X - mu) / sd
    y_mean = Y[fit].mean(0)
    U, s, Vt = np.linalg.svd(Z[fit], full_matrices=False)
    UtY = U.T @ (Y[fit] - y_mean)
    keep = s > s[:1].max(initial=0.0) * max(Z[fit].shape) * np.finfo(float).eps  # as numpy's pinv
    truth = _labels_of(task)
    val_scores, weights = [], []
    for alpha in alphas:
        W = Vt.T @ (np.divide(s, s**2 + alpha, out=np.zeros_like(s), where=keep)[:, None] * UtY)
        weights.append(W)
        pred = _decide(Z[val] @ W + y_mean, task.multilabel)
        val_scores.append(classification_scores(truth[val], pred, task.multilabel)[primary])
    best = len(alphas) - 1 - int(np.argmax(val_scores[::-1]))  # ties: the larger alpha
    pred = _decide(Z[test] @ weights[best] + y_mean, task.multilabel)
    return dict(test=classification_scores(truth[test], pred, task.multilabel),
                validation=float(val_scores[best]), alpha=float(alphas[best]), n_fit=len(fit),
                n_val=len(val))


def _one_blas_thread():
    """Run numpy's BLAS on one thread: the matrices are small, and right after a torch
    forward pass a multithreaded BLAS contends with torch's idle threads (on 2 CPU
    cores, an SVD was measured 100 times slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn (himalaya)
        return contextlib.nullcontext()
    return threadpool_limits(1, "blas")


def _labels_of(task: Task) -> np.ndarray:
    return task.labels.astype(bool) if task.multilabel else task.labels


def _carve_validation(groups, train, seed, fraction) -> tuple:
    """Split training clips by speaker into fitting and validation clips."""
    speakers = np.unique(groups[train])
    n_val = min(max(1, int(round(fraction * len(speakers)))), len(speakers) - 1)
    held = np.random.default_rng(seed).permutation(speakers)[:n_val]
    is_val = np.isin(groups[train], held)
    return train[~is_val], train[is_val]
