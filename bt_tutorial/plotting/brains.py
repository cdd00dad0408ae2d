"""Maps on the fsaverage5 surface: ROIs and per-voxel values."""

from __future__ import annotations

import numpy as np

from bt_tutorial.dataset.surface import to_fsaverage5
from bt_tutorial.plotting.style import FIGURE_WIDTH, _plt


def _surface_grid(values, vertex, hemi, views, draw):
    """A row of (left, right) inflated fsaverage5 panels per view; ``draw`` fills each panel."""
    from bt_tutorial.dataset.surface import fsaverage5_meshes

    meshes = fsaverage5_meshes()
    maps = to_fsaverage5(values, vertex, hemi)
    fig, axes = _plt().subplots(len(views), 2, figsize=(FIGURE_WIDTH, 3.0 * len(views)),
                                subplot_kw={"projection": "3d"}, squeeze=False)
    for r, view in enumerate(views):
        for c, side in enumerate(("left", "right")):
            common = dict(hemi=side, view=view, bg_map=meshes[f"sulc_{side}"], axes=axes[r, c], figure=fig)
            draw(meshes[f"infl_{side}"], maps[side], side, view, c, common)
    return fig


def plot_surface_rois(roi: np.ndarray, vertex: np.ndarray, hemi: np.ndarray, roi_names,
                      views=("lateral",)):
    """ROIs of the twin on the inflated fsaverage5 surface (nilearn), both hemispheres.

    Parameters
    ----------
    roi : ndarray, shape (n_voxels,), int
        Index into ``roi_names``; 0 means no ROI.
    vertex, hemi : ndarray, shape (n_voxels,)
        fsaverage5 vertex and hemisphere (0 left, 1 right) of each voxel.
    roi_names : sequence of str
    views : tuple of str
        nilearn views, one row of panels each.

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib.colors as mcolors
    from matplotlib.patches import Patch
    from nilearn import plotting

    colors = _plt().get_cmap("tab10")(np.arange(len(roi_names) - 1) % 10)
    cmap = mcolors.ListedColormap(colors)

    def draw(mesh, side_values, side, view, c, common):
        plotting.plot_surf_roi(mesh, roi_map=side_values, cmap=cmap, vmin=1, vmax=len(roi_names) - 1,
                               colorbar=False, title=f"{side} hemisphere, {view}", **common)

    fig = _surface_grid(np.where(roi > 0, roi, np.nan), vertex, hemi, views, draw)
    handles = [Patch(color=colors[i - 1], label=name) for i, name in enumerate(roi_names) if i > 0]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    return fig


def plot_surface_map(values: np.ndarray, vertex: np.ndarray, hemi: np.ndarray, title: str = "",
                     cmap: str = "inferno", vmin: float | None = None, vmax: float | None = None,
                     symmetric: bool = False, views=("lateral",)):
    """Voxel values on the inflated fsaverage5 surface, both hemispheres (NaN: not shown).

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
    vertex, hemi : ndarray, shape (n_voxels,)
    title : str
    cmap : str
    vmin, vmax : float, optional
        Colour range (default: the 2nd-98th percentiles; symmetric around 0 if asked).
    symmetric : bool
    views : tuple of str

    Returns
    -------
    fig : matplotlib Figure
    """
    from nilearn import plotting

    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    if vmax is None:
        vmax = float(np.percentile(np.abs(finite) if symmetric else finite, 98)) if finite.size else 1.0
    if vmin is None:
        vmin = -vmax if symmetric else (float(np.percentile(finite, 2)) if finite.size else 0.0)
    def draw(mesh, side_values, side, view, c, common):
        plotting.plot_surf_stat_map(mesh, stat_map=side_values, cmap=cmap, vmin=vmin, vmax=vmax,
                                    symmetric_cbar=symmetric, colorbar=(c == 1),
                                    title=f"{side} hemisphere", **common)

    fig = _surface_grid(values, vertex, hemi, views, draw)
    fig.suptitle(title, y=1.04)  # above the hemispheres' own titles, which sit at the top edge
    return fig
