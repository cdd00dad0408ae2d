"""Checks of the encoding fit's inputs: shapes, finite values, alphas, a voxel selection.

Each problem is a ValueError (TypeError for a wrong kind of input) that names the
input, its shape and the first bad value, before any computation starts.
"""

from __future__ import annotations

import numpy as np

MIN_TEST_ROWS = 3  # Pearson r over fewer rows is +-1 or undefined


def check_alphas(alphas) -> np.ndarray:
    """A ridge alpha grid as a sorted float64 array of unique values; ValueError unless finite and > 0."""
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    bad = alphas[~(np.isfinite(alphas) & (alphas > 0))]
    if len(alphas) == 0 or bad.size:
        raise ValueError(f"alphas must be finite and > 0; got {len(alphas)} values, {bad.size} of them bad "
                         f"(e.g. {bad[:3].tolist()}).")
    return np.unique(alphas)


def voxel_indices(voxels, n_voxels: int) -> np.ndarray:
    """Indices of the voxels to fit, sorted and unique.

    Parameters
    ----------
    voxels : ndarray of bool, shape (n_voxels,), or of int, or None
        A mask or indices; None: every voxel.
    n_voxels : int

    Returns
    -------
    indices : ndarray of int, shape (n_fitted,)
    """
    if voxels is None:
        return np.arange(n_voxels)
    voxels = np.asarray(voxels)
    if voxels.dtype == bool:
        if voxels.shape != (n_voxels,):
            raise ValueError(f"voxels is a mask of shape {voxels.shape}; the responses have {n_voxels} voxels.")
        voxels = np.flatnonzero(voxels)
    elif voxels.ndim != 1 or voxels.dtype.kind not in "iu":
        raise TypeError(f"voxels must be a boolean mask or 1-D voxel indices, got {voxels.dtype} of shape "
                        f"{voxels.shape}.")
    elif voxels.size and (voxels.min() < 0 or voxels.max() >= n_voxels):
        raise ValueError(f"voxels holds indices from {voxels.min()} to {voxels.max()}; the responses have "
                         f"{n_voxels} voxels (0 to {n_voxels - 1}).")
    if voxels.size == 0:
        raise ValueError("voxels selects no voxel: there is nothing to fit.")
    return np.unique(voxels)


def check_inputs(X_train, Y_train, X_test, Y_test, dtype):
    """Validate shapes and values; return float arrays, training features concatenated.

    The training responses stay a list (no copy when already of ``dtype``): they are
    concatenated one chunk of voxels at a time.
    """
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a float type, got {dtype!r}.")
    if isinstance(X_train, np.ndarray) or isinstance(Y_train, np.ndarray):
        raise TypeError("X_train and Y_train must be lists with one array per story.")
    if len(X_train) != len(Y_train):
        raise ValueError(f"X_train has {len(X_train)} stories but Y_train has {len(Y_train)}.")
    Xs = [_as_2d(x, f"X_train[{i}]", dtype) for i, x in enumerate(X_train)]
    Ys = [_as_2d(y, f"Y_train[{i}]", dtype) for i, y in enumerate(Y_train)]
    X_test, Y_test = _as_2d(X_test, "X_test", dtype), _as_2d(Y_test, "Y_test", dtype)
    for i, (x, y) in enumerate(zip(Xs, Ys)):
        if len(x) != len(y):
            raise ValueError(f"Story {i}: X_train[{i}] has {len(x)} rows but Y_train[{i}] has {len(y)}.")
    for name, arrays, what in (("X", Xs + [X_test], "features"), ("Y", Ys + [Y_test], "voxels")):
        labels = [f"{name}_train[{i}]" for i in range(len(arrays) - 1)] + [f"{name}_test"]
        for label, a in zip(labels, arrays):
            if a.shape[1] != arrays[0].shape[1]:
                raise ValueError(f"{label} has {a.shape[1]} {what} but {labels[0]} has "
                                 f"{arrays[0].shape[1]}.")
    if len(X_test) != len(Y_test):
        raise ValueError(f"X_test has {len(X_test)} rows but Y_test has {len(Y_test)}.")
    if len(Y_test) < MIN_TEST_ROWS:
        raise ValueError(f"Y_test has {len(Y_test)} rows; test scores need at least {MIN_TEST_ROWS} "
                         "(a correlation over 2 rows is always +1 or -1).")
    return (np.concatenate(Xs), Ys, [len(x) for x in Xs], X_test, Y_test)


def _as_2d(a, name, dtype):
    a = np.asarray(a, dtype=dtype)
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_trs, n_columns), got shape {a.shape}.")
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(a[row, col]) else "inf"
        raise ValueError(f"{name} has {int(bad.sum())} non-finite values (NaN or inf); the first is {kind} "
                         f"at row {row}, column {col}.")
    largest = np.abs(a).max()
    if largest > largest_safe(a.dtype):
        row, col = np.unravel_index(np.argmax(np.abs(a)), a.shape)
        raise ValueError(f"{name} has values up to {largest:.3g} (row {row}, column {col}): their squares, summed "
                         f"over rows, overflow {a.dtype} and every score would be NaN. Z-score the columns first "
                         "(features from the package already are).")
    return a


def largest_safe(dtype) -> float:
    """Magnitude below which squares summed over a million rows stay finite in ``dtype``."""
    return float(np.sqrt(np.finfo(dtype).max / 1e6))
