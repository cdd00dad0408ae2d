"""The twin's cortex: fsaverage5 from nilearn, voxels and regions of interest.

Voxels are the fsaverage4 vertices nested in fsaverage5 (the first 2562
vertices of each hemisphere of an icosahedral FreeSurfer mesh are those of the
coarser mesh): 5124 evenly spaced cortical points, small enough to keep the
twin light. ROIs are patches of the pial surface (fsaverage is in MNI305
space) around published coordinates of the regions the paper uses; language
patches are larger on the left, as language is left-lateralised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bt_tutorial.dataset.rois import TWIN_ROI_SETS
from bt_tutorial.dataset.surface import fsaverage5_meshes

N_VOXELS_PER_HEMI = 2562  # fsaverage4 vertices nested in fsaverage5
N_POINTS = 2 * N_VOXELS_PER_HEMI

# name, group, centre of the left-hemisphere patch (MNI, mm), radius left, radius right
ROI_TABLE = (
    ("A1", "primary_auditory", (-44, -22, 8), 9, 9),
    ("Belt", "early_auditory", (-44, -22, 8), 17, 17),
    ("STGa", "late_language", (-58, -4, -8), 13, 9),
    ("STS", "late_language", (-54, -40, 2), 14, 10),
    ("TPOJ", "late_language", (-52, -56, 18), 12, 8),
    ("AG", "late_language", (-44, -68, 34), 14, 9),
    ("IFG", "late_language", (-50, 20, 10), 14, 9),
    ("IFJ", "late_language", (-40, 10, 30), 11, 7),
)
ROI_NAMES = ("none",) + tuple(row[0] for row in ROI_TABLE)
ROI_GROUPS = TWIN_ROI_SETS  # the reader's names for the paper's three groups


@dataclass(frozen=True)
class Cortex:
    """Voxels of the twin on fsaverage5.

    Attributes
    ----------
    vertex : ndarray, shape (n_voxels,), int
        fsaverage5 vertex index within its hemisphere.
    hemi : ndarray, shape (n_voxels,), int
        0 left, 1 right.
    pial, sphere : ndarray, shape (n_voxels, 3)
        Pial (MNI mm) and spherical coordinates.
    roi : ndarray, shape (n_voxels,), int
        Index into ``ROI_NAMES`` (0: outside every ROI).
    """

    vertex: np.ndarray
    hemi: np.ndarray
    pial: np.ndarray
    sphere: np.ndarray
    roi: np.ndarray

    @property
    def n_voxels(self) -> int:
        return len(self.vertex)


def build_cortex(n_voxels: int = N_POINTS) -> Cortex:
    """Voxels (fsaverage4 vertices) and their ROI labels.

    Parameters
    ----------
    n_voxels : int
        Beyond the 5124 points, voxel ``i`` sits on point ``i % 5124`` (a twin of
        real size repeats the points; each voxel still gets its own noise).
    """
    meshes = fsaverage5_meshes()
    vertex = np.tile(np.arange(N_VOXELS_PER_HEMI), 2)
    hemi = np.repeat([0, 1], N_VOXELS_PER_HEMI)
    pial = np.vstack([meshes[f"pial_{s}"][0][:N_VOXELS_PER_HEMI] for s in ("left", "right")])
    sphere = np.vstack([meshes[f"sphere_{s}"][0][:N_VOXELS_PER_HEMI] for s in ("left", "right")])
    point = np.arange(n_voxels) % N_POINTS
    return Cortex(vertex[point], hemi[point], pial[point], sphere[point], label_rois(pial, hemi)[point])


def label_rois(pial: np.ndarray, hemi: np.ndarray) -> np.ndarray:
    """ROI index of each point: the first patch of ``ROI_TABLE`` that contains it."""
    roi = np.zeros(len(pial), dtype=np.int16)
    for index, (_, _, centre, r_left, r_right) in enumerate(ROI_TABLE, start=1):
        for side, radius in ((0, r_left), (1, r_right)):
            c = np.array(centre, float) * (1 if side == 0 else np.array([-1, 1, 1]))
            inside = (hemi == side) & (np.linalg.norm(pial - c, axis=1) <= radius) & (roi == 0)
            roi[inside] = index
    return roi
