"""Time ``fit_encoding_model`` against a reference bootstrap ridge on synthetic data.

The reference follows the Huth lab's ``bootstrap_ridge`` method, written here
from the formulas: for each bootstrap, random 40-TR chunks (about 20% of the
rows) are held out, the rest is decomposed ``X = U diag(S) Vt``, and the
held-out predictions for each alpha are ``X_val Vt^T diag(S / (S^2 + alpha)) U^T Y``.
Alphas use himalaya's scale (``S^2 + alpha``; the Huth lab's code writes
``S^2 + alpha^2``), so both methods search the same grid. Each bootstrap has its
own SVD so that the held-out rows never enter the fit.

Both run in this process on the same data and alphas; nothing is asserted.

    python benchmarks/bench_encoding.py [--trs 3000 --features 3072 --voxels 20000] [--small]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from himalaya.backend import set_backend

from bt_tutorial.alignment.encoding import fit_encoding_model, pearson_r, pick_backend


def make_data(n_trs, n_features, n_voxels, n_stories=10, rank=20, n_repeats=10, seed=0):
    """Stories of features and responses with a planted low-rank linear signal.

    Parameters
    ----------
    n_trs : int
        Training rows, split into ``n_stories`` stories; the test set has
        ``n_trs // n_stories`` rows.
    n_features, n_voxels, n_stories, rank : int
    n_repeats : int
        The test responses are a mean of this many repeats (noise / sqrt(n_repeats)).
    seed : int

    Returns
    -------
    data : dict
        ``X``, ``Y``: lists of (n_trs_i, n_features) and (n_trs_i, n_voxels)
        float32 arrays; ``X_test``, ``Y_test``, ``S_test`` (noiseless test signal).
    """
    rng = np.random.default_rng(seed)
    n_test = n_trs // n_stories
    n_total = n_trs + n_test
    # a decaying spectrum, as in delayed model activations, rather than white features
    n_latent = min(256, n_features)
    latent = rng.standard_normal((n_total, n_latent), dtype=np.float32)
    mixing = rng.standard_normal((n_latent, n_features), dtype=np.float32) / np.sqrt(n_latent)
    X = latent @ mixing + 0.5 * rng.standard_normal((n_total, n_features), dtype=np.float32)
    A = rng.standard_normal((n_features, rank), dtype=np.float32)
    S = (X @ A) @ rng.standard_normal((rank, n_voxels), dtype=np.float32)
    S /= S.std(0)
    # a fifth of the voxels carry no signal; the rest from weak to strong
    amplitude = np.exp(rng.uniform(np.log(0.05), np.log(1.0), n_voxels)).astype(np.float32)
    amplitude[rng.random(n_voxels) < 0.2] = 0
    S *= amplitude
    noise_sd = np.where(np.arange(n_total) < n_trs, 1.0, 1 / np.sqrt(n_repeats)).astype(np.float32)
    Y = S + noise_sd[:, None] * rng.standard_normal((n_total, n_voxels), dtype=np.float32)
    bounds = np.linspace(0, n_trs, n_stories + 1).astype(int)
    stories = list(zip(bounds[:-1], bounds[1:]))
    return dict(X=[X[a:b] for a, b in stories], Y=[Y[a:b] for a, b in stories],
                X_test=X[n_trs:], Y_test=Y[n_trs:], S_test=S[n_trs:])


def reference_bootstrap_ridge(X, Y, X_test, alphas, n_boots=3, chunk_len=40, held_fraction=0.2,
                              voxel_chunk=4000, seed=0):
    """Ridge with per-voxel alpha chosen by bootstrapped held-out correlation.

    Parameters
    ----------
    X : ndarray, shape (n_trs, n_features)
    Y : ndarray, shape (n_trs, n_voxels)
    X_test : ndarray, shape (n_test, n_features)
    alphas : ndarray, shape (n_alphas,)
    n_boots, chunk_len : int
    held_fraction : float
        Fraction of the chunks held out in each bootstrap.
    voxel_chunk : int
        Voxels whose weights are held in memory at once.
    seed : int

    Returns
    -------
    best_alphas : ndarray, shape (n_voxels,)
    predictions : ndarray, shape (n_test, n_voxels)
    """
    rng = np.random.default_rng(seed)
    x_mean, y_mean = X.mean(0), Y.mean(0)
    X, Y, X_test = X - x_mean, Y - y_mean, X_test - x_mean
    n_trs, dtype = len(X), X.dtype
    starts = np.arange(0, n_trs, chunk_len)
    n_held = max(1, round(held_fraction * len(starts)))
    corrs = np.zeros((len(alphas), Y.shape[1]))
    for _ in range(n_boots):
        held = np.zeros(n_trs, dtype=bool)
        for start in rng.choice(starts, n_held, replace=False):
            held[start:start + chunk_len] = True
        U, S, Vt = np.linalg.svd(X[~held], full_matrices=False)
        UtY = U.T @ Y[~held]
        to_val = X[held] @ Vt.T
        Y_val = Y[held]
        for i, alpha in enumerate(alphas):
            shrink = (S / (S**2 + alpha)).astype(dtype)  # float64 here would double the matmul time
            corrs[i] += pearson_r((to_val * shrink) @ UtY, Y_val)
    best = corrs.argmax(0)

    U, S, Vt = np.linalg.svd(X, full_matrices=False)
    predictions = np.empty((len(X_test), Y.shape[1]), dtype=dtype)
    for i in np.unique(best):
        voxels = np.flatnonzero(best == i)
        shrink = (S / (S**2 + alphas[i])).astype(dtype)[:, None]
        for start in range(0, len(voxels), voxel_chunk):
            chunk = voxels[start:start + voxel_chunk]
            weights = Vt.T @ (shrink * (U.T @ Y[:, chunk]))
            predictions[:, chunk] = X_test @ weights
    return alphas[best], predictions + y_mean


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trs", type=int, default=3000, help="training TRs (10 stories)")
    parser.add_argument("--features", type=int, default=3072)
    parser.add_argument("--voxels", type=int, default=20000)
    parser.add_argument("--alphas", type=int, default=15, help="number of alphas, 1 to 1e10")
    parser.add_argument("--small", action="store_true", help="800 TRs, 1024 features, 2000 voxels")
    parser.add_argument("--folds", type=int, default=None,
                        help="story folds of our cross-validation (default: the package default, 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS/LAPACK and torch threads (steadier timings on a shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    if args.small:
        args.trs, args.features, args.voxels = 800, 1024, 2000
    alphas = np.logspace(0, 10, args.alphas)

    data = make_data(args.trs, args.features, args.voxels)
    n_test = len(data["X_test"])
    print(f"data: {args.trs} training TRs in {len(data['X'])} stories, {n_test} test TRs, "
          f"{args.features} features, {args.voxels} voxels, float32; "
          f"{len(alphas)} alphas from 1 to 1e10; threads: {args.threads or 'all'}")

    backend = pick_backend()  # import and set up the backend outside the timing
    start = time.perf_counter()
    ours = fit_encoding_model(data["X"], data["Y"], data["X_test"], data["Y_test"], alphas=alphas,
                              n_folds=args.folds)
    t_ours = time.perf_counter() - start
    set_backend("numpy")

    start = time.perf_counter()
    ref_alphas, ref_predictions = reference_bootstrap_ridge(
        np.concatenate(data["X"]), np.concatenate(data["Y"]), data["X_test"], alphas)
    t_ref = time.perf_counter() - start
    r_ref = pearson_r(ref_predictions, data["Y_test"]).astype(np.float64)

    def describe(r, predictions):
        truth = pearson_r(predictions, data["S_test"])[data["S_test"].std(0) > 0]
        return f"mean r = {r.mean():.4f}, mean r with the noiseless signal = {truth.mean():.4f}"

    print(f"ours ({backend}, {ours.solver} solver, {args.folds or min(len(data['X']), 5)} story folds): "
          f"{t_ours:.1f} s, {describe(ours.scores, ours.predictions)}")
    print(f"reference (numpy, 3 bootstraps of 40-TR chunks, SVD): {t_ref:.1f} s, "
          f"{describe(r_ref, ref_predictions)}")
    print(f"speed ratio reference / ours: {t_ref / t_ours:.2f}x (target >= 3x)")
    print(f"mean |r_ref - r_ours| = {np.abs(r_ref - ours.scores).mean():.4f}, "
          f"mean r difference = {ours.scores.mean() - r_ref.mean():+.4f} (target within 0.01); "
          f"same alpha for {np.mean(ref_alphas == ours.alphas):.0%} of voxels")


if __name__ == "__main__":
    main()
