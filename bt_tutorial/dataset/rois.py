"""Regions of interest: named voxel sets, per-ROI summaries with intervals, paired model comparisons.

Intervals and tests here resample *voxels*. Neighbouring voxels share signal and
noise, so on real data they are not independent samples and these intervals are
narrower than a between-subject analysis would give; the paper's claims rest on
several subjects. Use them to judge the size of a difference within one subject.
"""

from __future__ import annotations

import numpy as np

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
    own masks are averaged (:mod:`~bt_tutorial.dataset.roi_build`), so values differ from theirs
    by that mapping. Chapters 5 and 6 report voxel means over usable ceilings instead
    (:func:`~bt_tutorial.comparison.roi_tables.roi_summary`).

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
