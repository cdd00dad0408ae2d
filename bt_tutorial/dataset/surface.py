"""The fsaverage5 surface, offline from nilearn: meshes and values spread to its vertices.

Brain maps of both profiles are drawn on it (:func:`~bt_tutorial.plotting.brains.plot_surface_map`);
the synthetic twin places its voxels on its vertices.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def fsaverage5_meshes() -> dict:
    """Pial, inflated and sphere meshes and sulcal depth of fsaverage5 (offline, nilearn).

    Returns
    -------
    meshes : dict
        ``{"pial_left": (coords, faces), ..., "sulc_left": ndarray, ...}``.
    """
    from nilearn import datasets, surface

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    out = {}
    for kind in ("pial", "infl", "sphere"):
        for side in ("left", "right"):
            mesh = surface.load_surf_mesh(fs[f"{kind}_{side}"])
            out[f"{kind}_{side}"] = (np.asarray(mesh.coordinates), np.asarray(mesh.faces))
    for side in ("left", "right"):
        out[f"sulc_{side}"] = np.asarray(surface.load_surf_data(fs[f"sulc_{side}"]))
    return out


def to_fsaverage5(values: np.ndarray, vertex: np.ndarray, hemi: np.ndarray) -> dict:
    """Spread voxel values to every fsaverage5 vertex (nearest voxel on the sphere).

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
    vertex, hemi : ndarray, shape (n_voxels,)

    Returns
    -------
    maps : dict
        ``{"left": ndarray (10242,), "right": ndarray (10242,)}``.
    """
    from scipy.spatial import cKDTree

    meshes = fsaverage5_meshes()
    out = {}
    for side_idx, side in enumerate(("left", "right")):
        sphere = meshes[f"sphere_{side}"][0]
        sel = np.flatnonzero(hemi == side_idx)
        _, nearest = cKDTree(sphere[vertex[sel]]).query(sphere)
        out[side] = np.asarray(values, float)[sel][nearest]
    return out
