"""Noise ceilings from repeated presentations (Schoppe et al. 2016).

With ``N`` repeats of z-scored responses (total power TP = 1 per repeat), the
signal power is ``SP = (N var(mean) - TP) / (N - 1)`` and the largest
correlation a model can reach with the mean of the repeats is
``CC_max = 1 / sqrt(1 + (TP / SP - 1) / N)``. Sampling noise makes SP <= 0 for
voxels with (almost) no signal: their CC_max is defined as 0, the value the
real-data summary in this project also uses.

Inputs are checked: at least ``MIN_REPEATS`` repeats and ``MIN_TRS`` TRs.
``MIN_TRS = 10`` only rules out degenerate estimates: each
repeat is z-scored over time, so with 2 TRs every repeat is ``(-1, 1)`` or
``(1, -1)`` and, with 4 repeats, 1 in 8 pure-noise voxels gets a ceiling of
exactly 1.0. Short stories stay noisy: with 4 pure-noise repeats a third of
the voxels exceed the paper's 0.4 threshold at 10 TRs, against 3 % at the
291 rows of the real test story.

Real repeats have voxels with NaN (the paper's loader zeroes them): a voxel with a
non-finite value in any repeat gets a signal power of NaN and a ceiling of 0, with one
warning that counts them, and a voxel constant over time (a zeroed column) gets 0 too,
so both drop out of :func:`select_voxels`. The repeats are processed ``CHUNK_VOXELS``
voxels at a time in float64, so a float32 input (1.1 GB for UTS03's 95,556 voxels and
10 repeats) needs about ``CHUNK_VOXELS`` voxels' worth of temporary memory, not copies
of the whole input.
"""

from __future__ import annotations

import numpy as np

from bt_tutorial._stack import warn_at_caller

MIN_REPEATS = 2
MIN_TRS = 10
CHUNK_VOXELS = 2048


def _check_repeats(repeats) -> np.ndarray:
    repeats = np.asarray(repeats)
    if repeats.ndim != 3 or repeats.shape[0] < MIN_REPEATS or repeats.shape[2] == 0:
        raise ValueError(f"repeats must be shaped (n_repeats >= {MIN_REPEATS}, n_trs, n_voxels >= 1), "
                         f"got {repeats.shape}.")
    if repeats.shape[1] < MIN_TRS:
        raise ValueError(f"repeats have {repeats.shape[1]} TRs; a noise ceiling needs at least {MIN_TRS} "
                         "(with fewer, pure noise gets ceilings near 1).")
    if repeats.shape[0] > repeats.shape[1]:
        raise ValueError(f"repeats shaped {repeats.shape} have more repeats ({repeats.shape[0]}) than TRs "
                         f"({repeats.shape[1]}): the axes look swapped; the order is (n_repeats, n_trs, n_voxels).")
    return repeats


def _chunk_signal_power(reps: np.ndarray) -> np.ndarray:
    """Signal power of the voxels of a float64 block (n_repeats, n_trs, n_voxels) of finite values."""
    sd = reps.std(axis=1, keepdims=True)
    reps = (reps - reps.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    n = reps.shape[0]
    total = reps.var(axis=1).mean(axis=0)
    return (n * reps.mean(axis=0).var(axis=0) - total) / (n - 1)


def signal_power(repeats: np.ndarray, chunk: int = CHUNK_VOXELS) -> np.ndarray:
    """Signal power of each voxel, in units of the per-repeat variance.

    Parameters
    ----------
    repeats : ndarray, shape (n_repeats, n_trs, n_voxels)
        Responses to the same stimulus (any float dtype; float32 is not copied
        whole); each repeat is z-scored over time here (a repeat constant over
        time counts as 0). At least ``MIN_REPEATS`` repeats and ``MIN_TRS`` TRs,
        else ValueError.
    chunk : int
        Voxels computed at a time (in float64).

    Returns
    -------
    sp : ndarray, shape (n_voxels,), float64
        Can be negative where the signal is lost in noise; NaN for voxels with a
        non-finite value (one warning counts them).
    """
    reps = _check_repeats(repeats)
    n_voxels = reps.shape[2]
    sp = np.full(n_voxels, np.nan)
    bad = np.zeros(n_voxels, bool)
    for start in range(0, n_voxels, max(1, int(chunk))):
        block = np.asarray(reps[:, :, start:start + chunk], dtype=np.float64)
        finite = np.isfinite(block)
        ok = finite.all(axis=(0, 1))
        if not ok.all():
            block = np.where(finite, block, 0.0)
        bad[start:start + block.shape[2]] = ~ok
        sp[start:start + block.shape[2]] = np.where(ok, _chunk_signal_power(block), np.nan)
    if bad.any():
        voxels = np.flatnonzero(bad)
        warn_at_caller(f"{voxels.size} of {n_voxels} voxels have non-finite values (NaN or inf) in the repeats "
                       f"(first: {voxels[:5].tolist()}): they are ignored (signal power NaN, noise ceiling 0). "
                       "Load the repeats with nan_policy='zero' to make them zero columns.")
    return sp


def cc_max(repeats: np.ndarray, chunk: int = CHUNK_VOXELS) -> np.ndarray:
    """Noise ceiling: the highest correlation reachable with the mean of the repeats.

    Parameters
    ----------
    repeats : ndarray, shape (n_repeats, n_trs, n_voxels)
        As in :func:`signal_power`.
    chunk : int
        Voxels computed at a time.

    Returns
    -------
    ceiling : ndarray, shape (n_voxels,), float64
        In [0, 1]; 0 where the signal power is <= 0, the voxel is constant (e.g. a
        zeroed NaN column) or has non-finite values.
    """
    n = np.shape(repeats)[0]
    sp = signal_power(repeats, chunk)
    out = np.zeros_like(sp)
    ok = sp > 0  # False for NaN
    out[ok] = 1.0 / np.sqrt(1.0 + (1.0 / sp[ok] - 1.0) / n)
    return out


def explainable_variance(repeats: np.ndarray) -> np.ndarray:
    """Fraction of a single repeat's variance that the stimulus explains.

    Equal to the signal power of z-scored repeats (``SP / TP``), clipped to
    [0, 1]; ``CC_max`` relates it to the mean of the repeats instead.

    Parameters
    ----------
    repeats : ndarray, shape (n_repeats, n_trs, n_voxels)

    Returns
    -------
    ev : ndarray, shape (n_voxels,)
        0 for voxels with non-finite values.
    """
    return np.clip(np.nan_to_num(signal_power(repeats), nan=0.0), 0.0, 1.0)


def normalized_alignment(scores: np.ndarray, ceiling: np.ndarray, min_ceiling: float = 0.0) -> np.ndarray:
    """Correlation divided by the noise ceiling, ``r / CC_max``.

    Parameters
    ----------
    scores : ndarray, shape (n_voxels,)
        Correlation of a model's predictions with the mean of the repeats;
        NaN (a constant voxel, see :func:`~bt_tutorial.alignment.encoding.pearson_r`) stays NaN.
    ceiling : ndarray, shape (n_voxels,)
        ``cc_max`` of the same voxels.
    min_ceiling : float
        Voxels whose ceiling is not above this get NaN (a ratio over a ceiling
        near 0 is noise; 0 gives NaN only where the ceiling is 0).

    Returns
    -------
    normalized : ndarray, shape (n_voxels,)
    """
    scores, ceiling = np.asarray(scores, float), np.asarray(ceiling, float)
    if scores.shape != ceiling.shape:
        raise ValueError(f"scores {scores.shape} and ceiling {ceiling.shape} differ in shape.")
    if not np.isfinite(ceiling).all():
        raise ValueError(f"ceiling has {int((~np.isfinite(ceiling)).sum())} non-finite values (NaN or inf).")
    out = np.full_like(scores, np.nan)
    ok = ceiling > min_ceiling
    out[ok] = scores[ok] / ceiling[ok]
    return out


def select_voxels(ceiling: np.ndarray, threshold: float = 0.4) -> np.ndarray:
    """Indices of the voxels whose noise ceiling is above ``threshold`` (the paper: 0.4).

    Returns
    -------
    voxels : ndarray of int, shape (n_selected,)
        Never empty: callers need voxels to fit or tune on.

    Raises
    ------
    ValueError
        If no voxel is above ``threshold`` (the message gives the highest
        ceiling), or ``ceiling`` is empty or not finite.
    """
    ceiling = np.asarray(ceiling, float)
    if ceiling.ndim != 1 or ceiling.size == 0 or not np.isfinite(ceiling).all():
        raise ValueError(f"ceiling must be a non-empty 1-D array of finite values, got shape {ceiling.shape}"
                         f" with {int((~np.isfinite(ceiling)).sum())} non-finite values.")
    selected = np.flatnonzero(ceiling > threshold)
    if selected.size == 0:
        raise ValueError(
            f"No voxel has a noise ceiling above {threshold} (highest: {ceiling.max():.3f} of "
            f"{ceiling.size} voxels); lower the threshold or check the repeats."
        )
    return selected


def lebel_noise_ceiling_summary() -> dict:
    """Distribution of the real per-voxel noise ceilings of ds003020 (UTS01-UTS08).

    Computed from the released repeats of the test story: per subject the
    number of voxels, the fraction at 0, the fraction above 0.4, the mean and
    quantiles (``q10`` ... ``q99``).

    Returns
    -------
    summary : dict of subject -> dict
    """
    import json
    from importlib.resources import files

    return json.loads(files("bt_tutorial").joinpath("reference/lebel_noise_ceiling_summary.json").read_text())


def ceiling_recovery(estimated: np.ndarray, true: np.ndarray, min_true: float = 0.1) -> float:
    """Pearson r between estimated and true ceilings, over voxels whose true ceiling is above ``min_true``.

    On the synthetic twin the true ceiling of every voxel is known; voxels with (almost) no
    signal are left out, since their estimates are 0 by definition.

    Parameters
    ----------
    estimated, true : ndarray, shape (n_voxels,)
    min_true : float

    Returns
    -------
    r : float
    """
    estimated, true = np.asarray(estimated, float), np.asarray(true, float)
    if estimated.shape != true.shape or estimated.ndim != 1:
        raise ValueError(f"estimated and true ceilings must be 1-D with the same shape, got {estimated.shape} "
                         f"and {true.shape}.")
    kept = (true > min_true) & np.isfinite(estimated) & np.isfinite(true)
    if kept.sum() < 3 or np.ptp(estimated[kept]) == 0 or np.ptp(true[kept]) == 0:
        raise ValueError(f"Only {int(kept.sum())} voxels have a true ceiling above {min_true} (or their ceilings "
                         "are constant): lower min_true.")
    return float(np.corrcoef(estimated[kept], true[kept])[0, 1])

