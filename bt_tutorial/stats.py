"""Statistics of the comparisons: bootstraps, sign-flip permutation tests, t-intervals, verdicts.

Intervals and tests here resample *voxels* (or seeds). Neighbouring voxels share signal and
noise, so on real data they are not independent samples and these intervals are narrower
than a between-subject analysis would give; the paper's claims rest on several subjects.
Use them to judge the size of a difference within one subject.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def format_p(p: float) -> str:
    """A p-value as the book prints it: ``"p < 0.001"`` below 0.001, else three decimals.

    Resampling tests cannot go below ``1 / (n + 1)`` (0.0002 with 5000 sign flips, 0.0005
    with 2000), so smaller values say only "as small as the test can tell"; one format keeps
    the same comparison from being printed with several p-values.
    """
    if not np.isfinite(p):
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(row) -> str:
    """The book's one verdict rule, in plain words: is a difference clearly above or below 0?

    ``"higher"`` when the interval lies above 0, ``"lower"`` when it lies below, and, where the
    row has a ``p_value`` (a paired test), only if that is also below 0.05; otherwise ``"no
    clear difference"``. An interval or p-value that is not finite gives ``"too few values to
    compare"``.

    Parameters
    ----------
    row : mapping
        ``low`` and ``high`` (the interval of the difference) and optionally ``p_value``: a row
        of :func:`~bt_tutorial.comparison.roi_tables.paired_table`, or a dict.
    """
    p_value = row.get("p_value", 0.0)
    if not (np.isfinite(row["low"]) and np.isfinite(row["high"]) and np.isfinite(p_value)):
        return "too few values to compare"
    if p_value < 0.05 and row["low"] > 0:
        return "higher"
    if p_value < 0.05 and row["high"] < 0:
        return "lower"
    return "no clear difference"


def t_interval(values, level: float = 0.95) -> tuple:
    """Mean and Student-t confidence interval of the mean (seeds of a probe, or their paired differences).

    Parameters
    ----------
    values : array_like, shape (n,)
    level : float, optional

    Returns
    -------
    mean, low, high : float
        ``low`` and ``high`` are NaN with fewer than two values.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()) if len(x) else float("nan"), float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def percent_lost(original, residual):
    """``100 (original - residual) / original``: how much of ``original`` is lost, in percent.

    Applied to mean correlations (a ratio of means, not a mean of per-voxel ratios).

    Parameters
    ----------
    original, residual : float or ndarray (same shape)

    Returns
    -------
    drop : float or ndarray
        100 when nothing is left, 0 when nothing is lost.
    """
    return 100.0 * (original - residual) / original


def resampled_means(values: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Means of each row of ``values`` over ``n_boot`` resamples of its columns (paired: the same
    columns for every row).

    Parameters
    ----------
    values : ndarray, shape (n_rows, n) or (n,)
    n_boot : int
    rng : numpy Generator

    Returns
    -------
    means : ndarray, shape (n_rows, n_boot)
    """
    values = np.atleast_2d(values)
    n_rows, n = values.shape
    chunk = int(np.clip(2**22 // max(1, n_rows * n), 1, 500))  # about 32 MB of resampled values at a time
    means = np.empty((n_rows, n_boot))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[:, start:stop] = values[:, rng.integers(0, n, (stop - start, n))].mean(axis=2)
    return means


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple:
    """Central ``level`` percentile interval of bootstrap samples (NaN ignored): (low, high)."""
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """Mean and percentile bootstrap interval of the mean (over voxels; NaN ignored).

    Parameters
    ----------
    values : ndarray, shape (n,)

    Returns
    -------
    mean, low, high : float (NaN when no finite value)
    """
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    low, high = percentile_interval(resampled_means(values, n_boot, np.random.default_rng(seed))[0], level)
    return float(values.mean()), low, high


@dataclass(frozen=True)
class PairedComparison:
    """Model A minus model B over the same voxels.

    Attributes
    ----------
    mean_difference, low, high : float
        Mean of ``a - b`` and its bootstrap interval.
    p_value : float
        Two-sided, from a sign-flip permutation test or a Wilcoxon signed-rank test.
    n_voxels : int
    method : str
    """

    mean_difference: float
    low: float
    high: float
    p_value: float
    n_voxels: int
    method: str


def sign_flip_p_value(differences: np.ndarray, n_permutations: int = 5000, seed: int = 0) -> float:
    """Two-sided p-value of a zero mean difference: flip the sign of each pair at random.

    Under the null hypothesis that A and B are exchangeable within each voxel, every
    difference is as likely to have either sign.
    """
    d = np.asarray(differences, float)
    rng = np.random.default_rng(seed)
    observed, exceed = abs(d.mean()), 0
    for start in range(0, n_permutations, 500):
        signs = rng.choice(np.array([-1.0, 1.0]), (min(500, n_permutations - start), d.size))
        exceed += int((np.abs(signs @ d) / d.size >= observed - 1e-12).sum())
    return (1 + exceed) / (1 + n_permutations)


def paired_comparison(a: np.ndarray, b: np.ndarray, method: str = "permutation", n_permutations: int = 5000,
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> PairedComparison:
    """Compare two models voxel by voxel (the voxels where both values are finite).

    Parameters
    ----------
    a, b : ndarray, shape (n_voxels,)
    method : {"permutation", "wilcoxon"}
        Sign-flip permutation test of the mean difference, or scipy's Wilcoxon
        signed-rank test of the median difference.

    Returns
    -------
    comparison : PairedComparison
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"Paired values need the same voxels; got shapes {a.shape} and {b.shape}.")
    if method not in ("permutation", "wilcoxon"):
        raise ValueError(f"method must be 'permutation' or 'wilcoxon', got {method!r}.")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if d.size < 2:
        return PairedComparison(float("nan"), float("nan"), float("nan"), float("nan"), int(d.size), method)
    mean, low, high = bootstrap_mean(d, n_boot, level, seed)
    if method == "wilcoxon":
        from scipy.stats import wilcoxon

        p = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    else:
        p = sign_flip_p_value(d, n_permutations, seed)
    return PairedComparison(mean, low, high, p, int(d.size), method)
