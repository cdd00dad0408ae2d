"""The input files of the ROI build, read with numpy, scipy and nibabel only.

FreeSurfer annotations (``?h.HCP-MMP1.annot``), surfaces (GIfTI ``.gii``, pycortex ``.npz``
or FreeSurfer geometry), pycortex transforms (``matrices.xfm``), and which format of pycortex
surface each subject of ds003020 has. A damaged file is a ``ValueError`` that names it and
says to download it again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bt_tutorial.dataset import atlas

FREESURFER_HEMIS = (("lh", "L"), ("rh", "R"))
# pycortex surfaces in ds003020 3.1.0 (derivative/pycortex-db/<subject>/surfaces/): GIfTI for every
# subject but UTS02, whose surfaces are pycortex's own .npz (arrays ``pts`` and ``polys``);
# tests/test_real_tree.py checks this against the dataset's file list
SURFACE_SUFFIXES = {"UTS02": ".npz"}
SURFACE_FORMATS = (".gii", ".npz")


def surface_suffix(subject: str, root=None, derivative: str = "derivative") -> str:
    """File suffix of a subject's pycortex surfaces: ``".gii"`` or ``".npz"``.

    What ``root`` already holds decides (a complete set of four surfaces in one format);
    otherwise the real dataset's tree (:data:`SURFACE_SUFFIXES`, ``.gii`` but for UTS02).
    """
    if root is not None:
        folder = Path(root).expanduser() / derivative / "pycortex-db" / subject / "surfaces"
        for suffix in SURFACE_FORMATS:
            if all((folder / f"{kind}_{h}{suffix}").is_file() for h, _ in FREESURFER_HEMIS for kind in ("wm", "pia")):
                return suffix
    return SURFACE_SUFFIXES.get(subject, ".gii")


def read_annot_areas(path, hemi: str) -> tuple:
    """Area of each vertex of a FreeSurfer ``.annot`` and all areas its colour table names.

    Parameters
    ----------
    path : str or Path
    hemi : {"L", "R"}
        Hemisphere of the file; labels of the other one are an error.

    Returns
    -------
    areas : ndarray of str, shape (n_vertices,)
        Hemisphere stripped (``"A1"``); ``""`` where unlabeled.
    names : set of str
    """
    from nibabel.freesurfer import read_annot

    try:
        labels, _, names = read_annot(str(path))
    except Exception as exc:  # nibabel raises several types on a damaged file
        raise ValueError(f"Cannot read the annotation {path} ({type(exc).__name__}): delete it and run again "
                         "to download it again.") from None
    parsed = [atlas.parse_glasser_name(n) for n in names]
    wrong = sorted({area for area, h in parsed if area and h not in (None, hemi)})
    if wrong:
        raise ValueError(f"{path} holds labels of the other hemisphere ({wrong[:5]}): swap the lh and rh files.")
    table = np.array([area or "" for area, _ in parsed] + [""])  # vertex label -1 -> ""
    return table[np.where(labels < 0, len(parsed), labels)], set(table) - {""}


def read_surface(path) -> np.ndarray:
    """Vertex coordinates, shape (n_vertices, 3), of a GIFTI (``.gii``), pycortex (``.npz``) or FreeSurfer surface.

    A pycortex ``.npz`` holds the vertices as ``pts`` and the triangles as ``polys``.
    """
    import nibabel as nib
    from nibabel.freesurfer import read_geometry

    try:
        if str(path).endswith(".npz"):
            with np.load(str(path), allow_pickle=False) as npz:
                coords = npz["pts"]
        elif str(path).endswith(".gii"):
            darrays = nib.load(str(path)).darrays
            pointset = [d.data for d in darrays if d.intent == nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"]]
            coords = (pointset or [d.data for d in darrays if d.data.ndim == 2 and d.data.dtype.kind == "f"])[0]
        else:
            coords = read_geometry(str(path))[0]
    except Exception as exc:  # nibabel raises several types on a damaged file
        raise ValueError(f"Cannot read the surface {path} ({type(exc).__name__}): delete it and run again "
                         "to download it again.") from None
    return np.asarray(coords, dtype=np.float64).reshape(-1, 3)


def read_coord_xfm(path) -> np.ndarray:
    """The ``coord`` matrix, shape (4, 4), of a pycortex ``matrices.xfm`` (JSON): surface mm -> voxel (x, y, z)."""
    try:
        coord = np.asarray(json.loads(Path(path).read_text())["coord"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a pycortex transform with a 'coord' matrix ({type(exc).__name__}): "
                         "delete it and run again to download it again.") from None
    if coord.shape != (4, 4):
        raise ValueError(f"{path}: the 'coord' matrix has shape {coord.shape}, not (4, 4).")
    if not np.isfinite(coord).all():
        raise ValueError(f"{path}: the 'coord' matrix has non-finite values (every ROI would be empty): "
                         "delete it and run again to download it again.")
    return coord
