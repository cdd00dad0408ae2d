"""Voxelwise encoding models: ridge regression from features to fMRI responses.

One ridge model per voxel, fitted with himalaya on any of its backends.
Each voxel gets its own regularisation ``alpha``, chosen by cross-validation
over whole stories (TRs within a story are autocorrelated, so holding out
single TRs would reward overfitting). The model is then refit on all training
stories and scored by the Pearson correlation on the test story.

The cross-validation runs in himalaya's grid-search engine, the one behind
``KernelRidgeCV`` (solver ``"kernel"``, for fewer TRs than features) and
``RidgeCV`` (solver ``"primal"``). The refit is done here from one
eigendecomposition, where himalaya refits every voxel once per selected alpha,
and the validation R^2 skips himalaya's scan for NaN: on 2 CPU cores (torch,
float32, 3000 TRs x 3072 features x 20 000 voxels, 15 alphas, 5 folds) the fit
takes 36 s against 110 s for ``KernelRidgeCV``. With the same folds and alphas chosen by
R^2 (``KernelRidgeCV(solver_params=dict(score_func=r2_score))``) the two choose the same
alphas and give the same test scores (``tests/test_encoding.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bt_tutorial.alignment.encoding_inputs import check_alphas, check_inputs, voxel_indices

MAX_FOLDS = 5
# elements of the (n_alphas, n_val_trs, n_voxels) prediction block scored at once
BLOCK_ELEMENTS = 2**27
# bytes of training responses copied, centred and fitted at once: a real subject's
# 95,556 voxels x 7,935 TRs (3 GB in float32) go in chunks instead of being held twice
CHUNK_BYTES = 2**30


def story_splits(lengths, n_folds=None):
    """Train/validation splits that hold out whole stories.

    Stories are dealt round-robin into folds (story ``i`` goes to fold
    ``i % n_folds``), so a fold is not a run of neighbouring stories.

    Parameters
    ----------
    lengths : sequence of int, length n_stories
        Number of rows (TRs) of each story, in the order they are concatenated.
    n_folds : int or None
        Number of folds, between 2 and n_stories. None: one fold per story, at
        most 5.

    Returns
    -------
    splits : list of (train, val) tuples of int ndarrays
        Row indices into the concatenated stories; every row is in exactly one
        ``val``. A list, because himalaya calls ``cv.split(Y)`` without groups.
    """
    lengths = [int(n) for n in lengths]
    if len(lengths) < 2 or min(lengths) < 1:
        raise ValueError(f"Need at least 2 stories with rows each, got lengths {lengths}.")
    if n_folds is None:
        n_folds = min(len(lengths), MAX_FOLDS)
    if not 2 <= n_folds <= len(lengths):
        raise ValueError(f"n_folds must be between 2 and {len(lengths)} (the number of stories), got {n_folds}.")
    fold_of_row = np.repeat(np.arange(len(lengths)) % n_folds, lengths)
    return [(np.flatnonzero(fold_of_row != k), np.flatnonzero(fold_of_row == k))
            for k in range(n_folds)]


def pick_backend(preferred="auto"):
    """Set the himalaya backend and return the name of the one in use.

    ``"auto"`` picks ``"torch_cuda"`` when torch sees a GPU, else ``"torch"``
    (CPU), else ``"numpy"``. On 2 CPU cores, float32, torch was 2x faster than
    numpy for himalaya's KernelRidgeCV (3000 TRs x 3072 features x 5000 voxels: 13 s
    vs 26 s), mostly because its eigendecomposition (MKL) is 5x faster than
    numpy's (OpenBLAS); matrix products ran at the same speed.

    Parameters
    ----------
    preferred : str
        ``"auto"`` or a himalaya backend name (``"numpy"``, ``"torch"``,
        ``"torch_cuda"``, ...). A backend that cannot be loaded only warns and
        leaves the current one in place.

    Returns
    -------
    name : str
        The backend now set; himalaya keeps it as global state until changed.
    """
    if preferred == "auto":
        try:
            import torch
        except (ImportError, OSError):
            preferred = "numpy"
        else:
            preferred = "torch_cuda" if torch.cuda.is_available() else "torch"
    from himalaya.backend import set_backend  # himalaya loads torch: only when a model is fitted

    return set_backend(preferred, on_error="warn").name


def pearson_r(a, b):
    """Pearson correlation of matching columns.

    Parameters
    ----------
    a, b : array_like, shape (n_samples, n_columns) or (n_samples,)

    Returns
    -------
    r : ndarray, shape (n_columns,), or float for 1-D inputs
        NaN where either column is constant (r is undefined there) or holds
        a non-finite value (NaN or inf); average with ``np.nanmean`` or drop
        those columns. Computed in float32 for float32 inputs, else in float64.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim not in (1, 2):
        raise ValueError(f"a and b must be 1-D or 2-D with the same shape, got {a.shape} and {b.shape}.")
    dtype = np.result_type(a.dtype, b.dtype, np.float32)
    a2, b2 = a.reshape(len(a), -1).astype(dtype), b.reshape(len(b), -1).astype(dtype)
    # ptp rather than a zero sum of squares: the mean of equal floats can be inexact
    ok = np.isfinite(a2).all(0) & np.isfinite(b2).all(0)
    ok &= (a2.max(0, initial=-np.inf) > a2.min(0, initial=np.inf))
    ok &= (b2.max(0, initial=-np.inf) > b2.min(0, initial=np.inf))
    a2, b2 = np.where(ok, a2, 0), np.where(ok, b2, 0)  # keep NaN and inf out of the sums
    a2 -= a2.sum(0) / max(len(a2), 1)
    b2 -= b2.sum(0) / max(len(b2), 1)
    a2 /= np.where(ok, np.abs(a2).max(0, initial=0), 1)  # unit scale: squares of 1e20 overflow float32
    b2 /= np.where(ok, np.abs(b2).max(0, initial=0), 1)
    den = np.sqrt(np.einsum("ij,ij->j", a2, a2) * np.einsum("ij,ij->j", b2, b2))
    ok &= den > 0
    r = np.where(ok, np.einsum("ij,ij->j", a2, b2) / np.where(ok, den, 1), np.nan).astype(dtype)
    r = np.clip(r, -1, 1)
    return float(r[0]) if a.ndim == 1 else r


@dataclass(repr=False)
class EncodingResult:
    """Outcome of :func:`fit_encoding_model`.

    Attributes
    ----------
    alphas : ndarray, shape (n_voxels,)
        Regularisation chosen for each voxel (a value of the grid); NaN for a voxel
        left out of the fit (``fit_encoding_model(..., voxels=...)``).
    scores : ndarray, shape (n_voxels,)
        Pearson r between predictions and the test responses; NaN for a voxel
        whose test responses (or predictions) are constant, so average with
        ``np.nanmean`` (:meth:`summary` does).
    predictions : ndarray, shape (n_test_trs, n_voxels), or None
        Predicted test responses, in the units of the training responses; None
        when not kept (``brain_alignment(..., keep_predictions=False)``).
    backend : str
        himalaya backend used.
    solver : str
        ``"kernel"`` or ``"primal"``.
    cv_scores : ndarray, shape (n_voxels,)
        Validation R^2 at the chosen alpha, averaged over the story folds.
    """

    alphas: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    backend: str
    solver: str
    cv_scores: np.ndarray

    def summary(self):
        """Two lines: sizes, solver and backend; mean and max r (NaN voxels left out), median alpha."""
        n_voxels = len(self.scores)
        n_test = "?" if self.predictions is None else len(self.predictions)
        finite = self.scores[np.isfinite(self.scores)]
        mean, top = (finite.mean(), finite.max()) if finite.size else (np.nan, np.nan)
        unfitted = int(np.isnan(self.alphas).sum())
        constant = n_voxels - finite.size - unfitted
        undefined = (f", {constant} constant voxels without r" if constant else "") + (
            f", {unfitted} voxels not fitted" if unfitted else "")
        return (f"EncodingResult({n_voxels} voxels, {n_test} test TRs, solver={self.solver!r}, "
                f"backend={self.backend!r}:\n  mean r={mean:.3f}, max r={top:.3f}{undefined}, "
                f"median alpha={np.nanmedian(self.alphas):.3g})")

    __repr__ = summary

    def spread(self, fitted: np.ndarray, n_voxels: int) -> "EncodingResult":
        """This result of the voxels ``fitted`` (indices) placed among ``n_voxels``, NaN elsewhere.

        For a fit of responses already cut to some voxels (to hold less in memory).
        """
        fitted = np.asarray(fitted)
        if len(fitted) != len(self.scores):
            raise ValueError(f"{len(fitted)} voxel indices for a result of {len(self.scores)} voxels.")

        def place(values):
            if values is None:
                return None
            out = np.full(values.shape[:-1] + (n_voxels,), np.nan, dtype=np.result_type(values, np.float32))
            out[..., fitted] = values
            return out

        return replace(self, alphas=place(self.alphas), scores=place(self.scores),
                       predictions=place(self.predictions), cv_scores=place(self.cv_scores))


def fit_encoding_model(X_train, Y_train, X_test, Y_test, alphas=np.logspace(0, 10, 11),
                       n_folds=None, backend="auto", solver="auto", dtype="float32",
                       voxels=None, progress=False):
    """Fit one ridge model per voxel, alpha by cross-validation over stories.

    X and Y are centred with the training means (himalaya fits no intercept).

    Each voxel takes the alpha with the highest validation R^2, averaged over
    the story folds (``cv_scores``), rather than himalaya's default negative
    squared error (which weighs folds by their variance): the paper's code also
    picks alphas by per-voxel R^2 (ridge_utils ``bootstrap_ridge`` with
    ``use_corr=False``, on random chunks rather than whole stories). Alphas and
    test scores equal those of himalaya's ``KernelRidgeCV(alphas,
    cv=story_splits(lengths), solver_params=dict(score_func=r2_score))`` on the
    centred data.

    Parameters
    ----------
    X_train : list of ndarray, each shape (n_trs_i, n_features)
        Features of each training story (usually delayed and z-scored per story).
    Y_train : list of ndarray, each shape (n_trs_i, n_voxels)
        Responses of each training story, rows aligned with ``X_train``.
    X_test : ndarray, shape (n_test_trs, n_features)
    Y_test : ndarray, shape (n_test_trs, n_voxels)
        Test responses, the mean over repeats; at least ``MIN_TEST_ROWS`` rows.
        All inputs must be finite (else a ValueError naming the input and
        counting its NaN and inf values).
    alphas : array_like, shape (n_alphas,)
        Candidate alphas, finite and > 0. The default, 1 to 1e10 one decade apart, suits
        z-scored features: with p features and a voxel explaining a fraction
        R^2 of its variance, the best alpha is about p (1 - R^2) / R^2, e.g.
        1e6 for p = 10 000 and R^2 = 0.01; pure-noise voxels take the top.
    n_folds : int or None
        Folds of whole stories; None: one per story, at most 5.
    backend : str
        ``"auto"`` or a himalaya backend name, see :func:`pick_backend`. The
        previous backend is restored on return.
    solver : {"auto", "kernel", "primal"}
        ``"auto"``: kernel when there are fewer training TRs than features.
    dtype : {"float32", "float64"}
    voxels : ndarray of bool, shape (n_voxels,), or of int, optional
        Fit only these voxels; the others get NaN alphas, scores, cv_scores and
        predictions. Each voxel's fit is independent of the others', so the fitted
        voxels' results equal those of a fit on all voxels, for a fraction of the
        time and memory (chapters 5-6 fit only the voxels their summaries use).
    progress : bool
        Show himalaya's progress bar (kernel solver).

    Returns
    -------
    result : EncodingResult
        numpy arrays, whatever the backend; shapes count all voxels.
    """
    X, Ys, lengths, X_test, Y_test = check_inputs(X_train, Y_train, X_test, Y_test, dtype)
    alphas = check_alphas(alphas)
    fitted = voxel_indices(voxels, Y_test.shape[1])
    n_samples, n_features = X.shape
    if solver == "auto":
        solver = "kernel" if n_samples < n_features else "primal"
    if solver not in ("kernel", "primal"):
        raise ValueError(f"solver must be 'auto', 'kernel' or 'primal', got {solver!r}.")
    splits = story_splits(lengths, n_folds)

    x_mean = X.mean(0)
    X -= x_mean
    X_test = X_test - x_mean
    n_voxels, max_val = len(fitted), max(len(val) for _, val in splits)
    chunk = max(1, CHUNK_BYTES // (n_samples * X.itemsize))
    batch = max(1, min(n_voxels, chunk, BLOCK_ELEMENTS // (len(alphas) * max_val)))

    from himalaya.backend import get_backend, set_backend

    previous = get_backend().name
    try:
        name = pick_backend(backend)
        basis = _eigenbasis(X, X_test, solver)
        parts = []
        for start in range(0, n_voxels, chunk):
            Y = _gather(Ys, fitted[start:start + chunk])
            y_mean = Y.mean(0)
            Y -= y_mean
            best, cv_scores, predictions = _fit_predict(basis, Y, alphas, splits, batch, progress)
            parts.append((best, cv_scores, predictions + y_mean))
            del Y
    finally:
        set_backend(previous)
    best, cv_scores, predictions = (np.concatenate(p, axis=-1) for p in zip(*parts))
    # exp(-log(alpha)) in float32 is not exactly the grid value
    best = alphas[np.abs(np.log(best)[:, None] - np.log(alphas)[None]).argmin(1)]
    scores = pearson_r(predictions, Y_test[:, fitted]).astype(np.float64)
    result = EncodingResult(alphas=best, scores=scores, predictions=predictions, backend=name, solver=solver,
                            cv_scores=cv_scores.astype(np.float64))
    return result if len(fitted) == Y_test.shape[1] else result.spread(fitted, Y_test.shape[1])



def _gather(Ys: list, cols: np.ndarray) -> np.ndarray:
    """The columns ``cols`` of every story, stacked: one copy, no per-story intermediates."""
    out = np.empty((sum(len(y) for y in Ys), len(cols)), dtype=Ys[0].dtype)
    row = 0
    for y in Ys:
        np.take(y, cols, axis=1, out=out[row:row + len(y)], mode="clip")  # cols are checked; "raise" buffers
        row += len(y)
    return out


def _eigenbasis(X, X_test, solver):
    """What the CV and the refit share across voxel chunks, as backend arrays.

    Returns
    -------
    basis : dict
        ``solver``, ``data`` (the kernel ``X X^T`` or ``X``, for himalaya's CV), ``lam``
        (eigenvalues, clipped at 0), ``project`` and ``to_test``: the refit weights of
        alpha are ``project @ Y / (lam + alpha)`` and the test predictions ``to_test @ weights``.
    """
    from himalaya.backend import get_backend

    b = get_backend()
    X, X_test = b.asarray(X), b.asarray(X_test)
    if solver == "kernel":
        K = X @ X.T
        # K = E diag(lam) E^T; dual weights E diag(1 / (lam + alpha)) E^T Y
        lam, E = b.eigh(K)
        data, project, to_test = K, E.T, (X_test @ X.T) @ E
    else:
        # X^T X = E diag(lam) E^T; weights E diag(1 / (lam + alpha)) E^T X^T Y
        lam, E = b.eigh(X.T @ X)
        data, project, to_test = X, (X @ E).T, X_test @ E
    lam = b.clip(lam, 0, None)[:, None]  # float32 round-off can make them negative
    return dict(solver=solver, data=data, lam=lam, project=project, to_test=to_test)


def _fit_predict(basis, Y, alphas, splits, batch, progress):
    """CV alphas of the voxels of ``Y`` (centred) with himalaya, refit them in the eigenbasis, predict."""
    from himalaya.backend import get_backend
    from himalaya.kernel_ridge import solve_multiple_kernel_ridge_random_search
    from himalaya.ridge import solve_group_ridge_random_search

    b = get_backend()
    data, lam, project, to_test = basis["data"], basis["lam"], basis["project"], basis["to_test"]
    predictions = np.empty((to_test.shape[0], Y.shape[1]), dtype=Y.dtype)
    Y = b.asarray(Y)
    grid = b.asarray(alphas, dtype=data.dtype)
    common = dict(alphas=grid, cv=splits, score_func=_r2_score, n_targets_batch=batch,
                  n_iter=b.ones_like(data, shape=(1, 1)), concentration=None,
                  jitter_alphas=False, random_state=None)
    if basis["solver"] == "kernel":
        deltas, _, cv_scores = solve_multiple_kernel_ridge_random_search(
            data[None], Y, return_weights=None, progress_bar=progress, **common)
    else:
        deltas, _, cv_scores = solve_group_ridge_random_search(
            [data], Y, return_weights=False, progress_bar=False, warn=False, **common)
    best = b.exp(-deltas[0])
    for start in range(0, Y.shape[1], batch):
        cols = slice(start, start + batch)
        coefs = (project @ Y[:, cols]) / (lam + best[None, cols])
        predictions[:, cols] = b.to_numpy(to_test @ coefs)
    return (b.to_numpy(best).astype(np.float64), b.to_numpy(cv_scores)[0], predictions)


def _r2_score(y_true, y_pred):
    """R^2 per target and alpha, for himalaya's ``score_func``.

    himalaya's ``r2_score`` first scans the predictions for NaN and inf, which
    took a third of a CPU fit; inputs are checked finite before the fit here.

    Parameters
    ----------
    y_true : backend array, shape (n_samples, n_targets)
    y_pred : backend array, shape (n_alphas, n_samples, n_targets) or (n_samples, n_targets)

    Returns
    -------
    r2 : backend array, shape (n_alphas, n_targets) or (n_targets,)
        0 for targets with no variance.
    """
    resid = y_pred - y_true
    resid *= resid
    centred = y_true - y_true.mean(0)
    var = (centred * centred).sum(0)
    return (1 - resid.sum(-2) / (var + (var == 0))) * (var > 0)
