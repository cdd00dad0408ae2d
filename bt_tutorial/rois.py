"""Regions of interest: named voxel sets and per-ROI summaries."""

from __future__ import annotations

import numpy as np

# the paper's ROI sets (Glasser HCP-MMP1 names) and the twin's patches that stand for them
PAPER_ROI_SETS = {
    "late_language": ("A5", "44", "45", "IFJa", "IFSp", "PGi", "PGp", "PGs", "TPOJ1", "TPOJ2",
                      "TPOJ3", "STGa", "STSda", "STSdp", "TA2", "STSva", "STSvp"),
    "primary_auditory": ("A1",),
    "early_auditory": ("A1", "LBelt", "PBelt", "MBelt", "RI", "A4"),
}


def roi_masks(roi: np.ndarray, roi_names, groups: dict | None = None) -> dict:
    """Boolean voxel masks of every ROI, of ROI groups, and of voxels outside all ROIs.

    Parameters
    ----------
    roi : ndarray, shape (n_voxels,), int
        Index into ``roi_names`` (0 = no ROI).
    roi_names : sequence of str
    groups : dict of str -> sequence of str, optional
        Named unions of ROIs (default: the twin's ``ROI_GROUPS``).

    Returns
    -------
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
    """
    from .synthetic.cortex import ROI_GROUPS

    names = list(roi_names)
    masks = {name: roi == i for i, name in enumerate(names) if i > 0}
    for group, members in (ROI_GROUPS if groups is None else groups).items():
        masks[group] = np.isin(roi, [names.index(m) for m in members])
    masks["outside_rois"] = roi == 0
    return masks


def roi_means(values: np.ndarray, masks: dict) -> dict:
    """Mean of ``values`` over each mask, ignoring NaN.

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
        v = values[mask]
        v = v[np.isfinite(v)]
        out[name] = float(v.mean()) if v.size else float("nan")
    return out
