"""The TR grid of a story and the Huth-lab trimming conventions.

ds003020 gives, for each story, the number of scanner TRs in ``respdict.json``.
The story's sound starts ``SOUND_START`` seconds after the first TR. Following the
Huth lab's public code (``load_simulated_trfiles`` with ``pad=5`` and
``DataSequence.from_grid``), a story's stimulus is represented on a grid of
``respdict - 5`` simulated TRs whose times, relative to the sound onset, are the
middle of each TR::

    tr_times = arange(respdict - 5) * TR - SOUND_START + TR / 2

Features built on that grid are trimmed ``[10:-5]``; the released responses were
trimmed 10 TRs at the start and 10 at the end of the scan, so both end with
``respdict - 20`` rows and row ``i`` of each is scanner TR ``i + 10``.

The Huth-lab code simulates the grid with ``tr=2.0``; we use the scanner's
measured TR of 2.0045 s, which is the physical timing of the responses (the two
differ by 2.0 s at the end of a 15-minute story, 450 TRs). Pass ``tr=2.0`` to reproduce
their grid exactly.
"""

from __future__ import annotations

import numpy as np

TR = 2.0045
SOUND_START = 10.0
GRID_PAD = 5
TRIM_START = 10
TRIM_END = 5
RESPONSE_TRIM = GRID_PAD + TRIM_START + TRIM_END  # = 20 rows fewer than respdict


def canonical_hrf(dt: float = 0.1, length: float = 32.0) -> np.ndarray:
    """SPM's canonical double-gamma HRF sampled every ``dt`` seconds, unit sum.

    Returns
    -------
    hrf : ndarray, shape (round(length / dt),)
        ``hrf[i]``: weight of the sound ``i * dt`` seconds before the response.
    """
    from scipy import stats

    t = np.arange(0.0, length, dt)
    h = stats.gamma.pdf(t, 6) - stats.gamma.pdf(t, 16) / 6.0
    return h / h.sum()


def hrf_weight_in_window(window_trs: int, lag_trs: int = 0, tr: float = TR, dt: float = 0.1) -> float:
    """Share of the HRF's positive weight that a tuning window covers.

    The window of a response row ends ``lag_trs`` TRs before the end of the
    row's TR and lasts ``window_trs`` TRs; the sound ``s`` seconds before the end
    of that TR reaches the response with weight ``hrf(s)``.

    Returns
    -------
    share : float in [0, 1]
    """
    h = np.clip(canonical_hrf(dt), 0, None)
    s = np.arange(len(h)) * dt
    inside = (s >= lag_trs * tr) & (s < (lag_trs + window_trs) * tr)
    return float(h[inside].sum() / h.sum())


def simulated_tr_times(n_scan_trs: int, tr: float = TR) -> np.ndarray:
    """Times of the untrimmed simulated TR grid of a story.

    Parameters
    ----------
    n_scan_trs : int
        Number of scanner TRs of the story (its value in ``respdict.json``).
    tr : float
        Repetition time in seconds.

    Returns
    -------
    tr_times : ndarray, shape (n_scan_trs - 5,)
        Middle of each simulated TR in seconds relative to the sound onset.
    """
    n_grid = int(n_scan_trs) - GRID_PAD
    if n_grid <= TRIM_START + TRIM_END:
        raise ValueError(
            f"A story needs more than {RESPONSE_TRIM} scanner TRs to keep any row "
            f"after trimming; got {n_scan_trs}."
        )
    return np.arange(n_grid) * tr - SOUND_START + tr / 2.0


def trim_grid(values: np.ndarray) -> np.ndarray:
    """Apply the Huth-lab trimming ``[10:-5]`` to an array on the simulated grid.

    Parameters
    ----------
    values : ndarray, shape (n_scan_trs - 5, ...)

    Returns
    -------
    trimmed : ndarray, shape (n_scan_trs - 20, ...)
    """
    return values[TRIM_START:-TRIM_END]


def response_tr_times(n_scan_trs: int, tr: float = TR) -> np.ndarray:
    """Times of the rows of a story's released responses.

    Parameters
    ----------
    n_scan_trs : int
        Number of scanner TRs of the story (``respdict.json``).
    tr : float
        Repetition time in seconds.

    Returns
    -------
    tr_times : ndarray, shape (n_scan_trs - 20,)
        Middle of each kept TR in seconds relative to the sound onset.
    """
    return trim_grid(simulated_tr_times(n_scan_trs, tr))


def scan_tr_times(n_scan_trs: int, tr: float = TR) -> np.ndarray:
    """Middle of every scanner TR relative to the sound onset (untrimmed scan).

    Parameters
    ----------
    n_scan_trs : int
    tr : float

    Returns
    -------
    tr_times : ndarray, shape (n_scan_trs,)
    """
    return np.arange(int(n_scan_trs)) * tr - SOUND_START + tr / 2.0


# ------------------------------------------------------------------ features -> TR grid
def lanczos_kernel(t: np.ndarray, cutoff: float, window: int = 3) -> np.ndarray:
    """Lanczos kernel ``sinc(c t) sinc(c t / window)`` for ``|c t| < window``, else 0.

    Parameters
    ----------
    t : ndarray
        Time differences in seconds.
    cutoff : float
        Frequency in Hz of the kernel's zero crossings (``1 / TR`` for a TR grid).
    window : int
        Number of lobes on each side.
    """
    x = np.asarray(t, dtype=float) * cutoff
    out = np.sinc(x) * np.sinc(x / window)
    out[np.abs(x) >= window] = 0.0
    return out


def lanczos_resample(values: np.ndarray, old_times: np.ndarray, new_times: np.ndarray,
                     window: int = 3) -> np.ndarray:
    """Downsample features to new times with a Lanczos filter (Huth lab method).

    The kernel's zero crossings are at multiples of the new sampling period, so it
    removes what the new grid cannot represent. Weights are scaled by the old
    sampling period times the cutoff, so a constant signal keeps its value (the
    Huth-lab code leaves this scale out; it disappears in the z-scoring).

    Parameters
    ----------
    values : ndarray, shape (n_old, n_features)
    old_times : ndarray, shape (n_old,)
        Increasing times of ``values`` in seconds.
    new_times : ndarray, shape (n_new,)
        Times to resample to, evenly spaced.
    window : int

    Returns
    -------
    resampled : ndarray, shape (n_new, n_features)
    """
    values = np.asarray(values)
    if values.shape[0] != len(old_times):
        raise ValueError(f"{values.shape[0]} feature rows but {len(old_times)} times.")
    cutoff = 1.0 / np.mean(np.diff(new_times))
    kernel = lanczos_kernel(new_times[:, None] - old_times[None, :], cutoff, window)
    kernel *= np.mean(np.diff(old_times)) * cutoff
    return kernel @ values


def make_delayed(values: np.ndarray, delays=(1, 2, 3, 4), name: str = "values") -> np.ndarray:
    """Stack copies of the features shifted later by each delay (FIR model).

    Row ``t`` of the block for delay ``d`` holds the features of row ``t - d``
    (zeros for the first ``d`` rows), so a linear model on the result can fit a
    haemodynamic response lasting ``max(delays)`` TRs. Apply it per story.

    Parameters
    ----------
    values : ndarray, shape (n_trs, n_features)
        More rows than the largest delay: a story with fewer would get a
        block of zeros, so that is a ValueError naming ``name``.
    delays : sequence of int
    name : str
        What ``values`` are (e.g. the story), for error messages.

    Returns
    -------
    delayed : ndarray, shape (n_trs, n_features * len(delays))
    """
    values = np.asarray(values)
    delays = [int(d) for d in delays]
    if values.ndim != 2 or not delays:
        raise ValueError(f"{name}: need 2-D values (n_trs, n_features) and at least one delay, got shape "
                         f"{values.shape} and delays {delays}.")
    longest = max(abs(d) for d in delays)
    if values.shape[0] <= longest:
        raise ValueError(f"{name} has {values.shape[0]} rows, not more than the largest delay ({longest} "
                         "TRs): that delay's features would be all zeros. Use longer stories or smaller delays.")
    out = np.zeros((values.shape[0], values.shape[1] * len(delays)), dtype=values.dtype)
    for k, d in enumerate(delays):
        block = out[:, k * values.shape[1]:(k + 1) * values.shape[1]]
        if d >= 0:
            block[d:] = values[: values.shape[0] - d]
        else:
            block[:d] = values[-d:]
    return out


def zscore(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Z-score along ``axis`` (columns over rows by default); constant columns become 0."""
    sd = values.std(axis=axis, keepdims=True)
    return (values - values.mean(axis=axis, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def to_response_rows(values: np.ndarray, times: np.ndarray, n_scan_trs: int, story: str = "?",
                     n_response_rows: int | None = None, tr: float = TR) -> np.ndarray:
    """Features sampled at ``times`` -> the story's response rows, z-scored.

    Lanczos-resamples to the simulated TR grid, trims ``[10:-5]`` and z-scores,
    so row ``i`` lines up with row ``i`` of the story's responses.

    Parameters
    ----------
    values : ndarray, shape (n_times, n_features)
    times : ndarray, shape (n_times,)
        Seconds from the story onset.
    n_scan_trs : int
        The story's value in respdict.
    story : str
        Name used in error messages.
    n_response_rows : int, optional
        Rows of the story's responses; a mismatch is an error naming the story.

    Returns
    -------
    rows : ndarray, shape (n_scan_trs - 20, n_features), float32
    """
    rows = trim_grid(lanczos_resample(values, times, simulated_tr_times(n_scan_trs, tr)))
    if n_response_rows is not None and rows.shape[0] != n_response_rows:
        raise ValueError(
            f"Story {story}: features give {rows.shape[0]} TR rows but the responses have "
            f"{n_response_rows}; respdict says {n_scan_trs} TRs (rows = TRs - 20)."
        )
    return zscore(rows).astype(np.float32)
