"""Regions of interest: named voxel sets, per-ROI summaries with intervals, paired model comparisons.

Intervals and tests here resample *voxels*. Neighbouring voxels share signal and
noise, so on real data they are not independent samples and these intervals are
narrower than a between-subject analysis would give; the paper's claims rest on
several subjects. Use them to judge the size of a difference within one subject.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import load_ground_truth

# the paper's ROI sets (Glasser HCP-MMP1 names; the authors' lists in bridge-ai-neuro/multi-brain-tuning,
# src/utils/brn_align_utils.py: 16 late-language areas, STSvp not among them) and the twin's stand-ins
PAPER_ROI_SETS = {
    "late_language": ("A5", "44", "45", "IFJa", "IFSp", "PGi", "PGp", "PGs", "TPOJ1", "TPOJ2",
                      "TPOJ3", "STGa", "STSda", "STSdp", "TA2", "STSva"),
    "primary_auditory": ("A1",),
    "early_auditory": ("A1", "LBelt", "PBelt", "MBelt", "RI", "A4"),
}
TWIN_ROI_SETS = {
    "primary_auditory": ("A1",),
    "early_auditory": ("A1", "Belt"),
    "late_language": ("STGa", "STS", "TPOJ", "AG", "IFG", "IFJ"),
}
HEMISPHERES = ("L", "R")


def roi_masks(roi: np.ndarray, roi_names, groups: dict | None = None, hemi: np.ndarray | None = None) -> dict:
    """Boolean voxel masks of every ROI, of ROI groups, and of voxels outside all ROIs.

    Parameters
    ----------
    roi : ndarray, shape (n_voxels,), int
        Index into ``roi_names`` (0 = no ROI).
    roi_names : sequence of str
    groups : dict of str -> sequence of str, optional
        Named unions of ROIs (default: ``TWIN_ROI_SETS``).
    hemi : ndarray, shape (n_voxels,), int, optional
        0 for left, 1 for right; adds ``<name>_L`` and ``<name>_R`` for every mask.

    Returns
    -------
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
    """
    names = [str(n) for n in roi_names]
    masks = {name: roi == i for i, name in enumerate(names) if i > 0}
    for group, members in (TWIN_ROI_SETS if groups is None else groups).items():
        masks[group] = np.isin(roi, [names.index(m) for m in members])
    masks["outside_rois"] = roi == 0
    return masks if hemi is None else split_hemispheres(masks, hemi)


def split_hemispheres(masks: dict, hemi: np.ndarray) -> dict:
    """Add a left (``_L``) and right (``_R``) version of every mask.

    Parameters
    ----------
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
    hemi : ndarray, shape (n_voxels,), int
        0 for left, 1 for right.
    """
    hemi = np.asarray(hemi)
    if hemi.shape != next(iter(masks.values())).shape:
        raise ValueError(f"hemi has shape {hemi.shape}, the masks {next(iter(masks.values())).shape}.")
    out = dict(masks)
    for name, mask in masks.items():
        for side, label in enumerate(HEMISPHERES):
            out[f"{name}_{label}"] = mask & (hemi == side)
    return out


def twin_roi_masks(twin_root, subject: str, hemispheres: bool = True) -> dict:
    """The twin's ROI masks (ROIs, the paper's three groups, outside), from its ground truth."""
    truth = load_ground_truth(twin_root, subject)
    return roi_masks(truth["roi"], truth["roi_names"], hemi=truth["hemi"] if hemispheres else None)


def check_mask(mask, n_voxels: int, name: str = "mask") -> np.ndarray:
    """``mask`` as a boolean array of ``n_voxels``; a mask of another length (another subject's
    or another voxel selection's) is a ValueError naming both lengths."""
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (n_voxels,):
        raise ValueError(f"ROI mask {name!r} is {mask.dtype} of shape {mask.shape}, but the values have {n_voxels} "
                         "voxels: use masks built for this subject's voxels (roi_masks / profile_roi_masks).")
    return mask


def roi_means(values: np.ndarray, masks: dict) -> dict:
    """Mean of ``values`` over each mask, ignoring NaN and inf (e.g. the NaN r of constant voxels).

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
    masks : dict of str -> ndarray of bool

    Returns
    -------
    means : dict of str -> float (NaN for an empty mask)
    """
    values = np.asarray(values, float)
    out = {}
    for name, mask in masks.items():
        v = values[check_mask(mask, len(values), name)]
        v = v[np.isfinite(v)]
        out[name] = float(v.mean()) if v.size else float("nan")
    return out


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


def roi_summary(values: np.ndarray, masks: dict, rois=None, n_boot: int = 2000, level: float = 0.95,
                seed: int = 0) -> list:
    """Per-ROI mean with a bootstrap interval.

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
        For example normalised alignment, NaN for voxels without a usable ceiling.
    masks : dict of str -> ndarray of bool
    rois : sequence of str, optional
        Which masks (default: all).

    Returns
    -------
    rows : list of dict
        ``roi``, ``n_voxels`` (finite values), ``mean``, ``low``, ``high``.
    """
    rows = []
    for name in masks if rois is None else rois:
        v = np.asarray(values, float)[masks[name]]
        mean, low, high = bootstrap_mean(v, n_boot, level, seed)
        rows.append({"roi": name, "n_voxels": int(np.isfinite(v).sum()), "mean": mean, "low": low, "high": high})
    return rows


AUTHORS_MIN_CEILING = 0.05  # multi-brain-tuning, brn_align_utils.get_vol_base_: cc_thr=0.05


def area_then_roi_means(scores: np.ndarray, ceiling: np.ndarray, masks: dict, groups: dict,
                        min_ceiling: float = AUTHORS_MIN_CEILING, voxels=None) -> dict:
    """The authors' ROI summary: mean per area, then the mean of the areas of each ROI set.

    As the authors' later code (bridge-ai-neuro/multi-brain-tuning, ``brn_align_utils.py``):
    each voxel's normalised alignment ``r / ceiling``, with voxels whose ceiling is at most
    ``min_ceiling`` (or whose r is NaN) counted as 0, not left out; averaged over each area
    (both hemispheres together), then over the areas of the set, so that every area weighs
    the same whatever its size. The authors average fsaverage vertices after projecting
    each subject's volume with an unpublished affine; here the voxels of the subject's
    own masks are averaged (:mod:`~bt_tutorial.roi_build`), so values differ from theirs
    by that mapping. Chapters 5 and 6 report voxel means over usable ceilings instead
    (:func:`roi_summary`).

    Parameters
    ----------
    scores : ndarray, shape (n_voxels,)
        Test correlations r.
    ceiling : ndarray, shape (n_voxels,)
        Noise ceilings (CC_max) of the same voxels, from the same test rows.
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
        Must hold a mask for each area named in ``groups``.
    groups : dict of str -> sequence of str
        ROI sets and their areas (e.g. :data:`PAPER_ROI_SETS`, :data:`TWIN_ROI_SETS`).
    min_ceiling : float
    voxels : ndarray of bool, shape (n_voxels,), optional
        Only these voxels are averaged (e.g. the fitted ones of ``brain_alignment(voxels=)``,
        whose other scores are NaN because they were not fitted); default all.

    Returns
    -------
    means : dict of str -> float
        NaN for a set none of whose areas has a voxel.
    """
    scores, ceiling = np.asarray(scores, float), np.asarray(ceiling, float)
    if scores.shape != ceiling.shape:
        raise ValueError(f"scores {scores.shape} and ceiling {ceiling.shape} must cover the same voxels.")
    voxels = None if voxels is None else np.asarray(voxels, bool)
    usable = ceiling > min_ceiling
    normalized = np.zeros_like(scores)
    normalized[usable] = np.nan_to_num(scores[usable] / ceiling[usable], nan=0.0)
    out = {}
    for group, areas in groups.items():
        missing = [a for a in areas if a not in masks]
        if missing:
            raise KeyError(f"No mask for the areas {missing} of {group!r}; masks: {sorted(masks)[:8]}...")
        kept = [masks[a] if voxels is None else masks[a] & voxels for a in areas]
        area_means = [normalized[m].mean() for m in kept if m.any()]
        out[group] = float(np.mean(area_means)) if area_means else float("nan")
    return out


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


def compare_in_rois(a: np.ndarray, b: np.ndarray, masks: dict, rois=None, **kwargs) -> dict:
    """:func:`paired_comparison` of two models' voxel values in each ROI.

    Returns
    -------
    comparisons : dict of str -> PairedComparison
    """
    return {name: paired_comparison(np.asarray(a)[masks[name]], np.asarray(b)[masks[name]], **kwargs)
            for name in (masks if rois is None else rois)}
