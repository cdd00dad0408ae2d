"""Glasser HCP-MMP1 regions of interest for the real data, built once per subject.

The paper's ROIs are sets of Glasser areas (``PAPER_ROI_SETS`` in :mod:`bt_tutorial.dataset.rois`)
defined on fsaverage; responses live in the voxels of each subject's cortical mask.
``python -m bt_tutorial.dataset.roi_build`` (:mod:`bt_tutorial.dataset.roi_build`) goes from one to the
other once: it carries the atlas label of each fsaverage vertex to the subject's vertices
through the spherical registration, then to voxels through a sparse voxel x vertex matrix
(:func:`voxel_vertex_matrix`, :func:`assign_voxels`), collects the voxels of every area
and ROI set (:func:`roi_sets_from_labels`) and writes an ``.npz`` (:func:`save_roi_masks`).

At run time the book needs numpy only: :func:`load_roi_masks` returns masks shaped like
the twin's, ``{name: ndarray of bool, shape (n_voxels,)}``, for each ROI set
(``late_language``, ``primary_auditory``, ``early_auditory``), each Glasser area of the
sets (``A1``, ``STSdp``, ...) and ``outside_rois`` (voxels in no set), each also per
hemisphere with a ``_L`` / ``_R`` suffix (``late_language_L``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from bt_tutorial._stack import warn_at_caller
from bt_tutorial.dataset.layout import derivative_dir

ATLAS = "HCP-MMP1"
FORMAT_VERSION = 1
HEMIS = ("L", "R")  # hemisphere codes 0 and 1; -1: no vertex maps into the voxel
ASSIGN_RULES = ("majority", "max_weight")
_UNLABELED = {"", "???", "unknown", "medial_wall", "medialwall", "corpuscallosum"}
_PREFIXED = re.compile(r"^(?P<hemi>[LR])_(?P<area>.+?)(?:_ROI)?$")
_SUFFIXED = re.compile(r"^(?P<area>.+?)(?:_ROI)?_(?P<hemi>[LR])$")
_BUILD_HINT = "python -m bt_tutorial.dataset.roi_build --data <ds003020 root> --subject {}"


class RoiFileError(ValueError):
    """An ROI mask file is missing, malformed, or does not fit the responses."""


# ------------------------------------------------------------------ label names
def parse_glasser_name(name) -> tuple:
    """Area and hemisphere of an atlas label name.

    Accepts ``L_A1_ROI`` (HCP-MMP1 annotation files), ``L_A1``, ``A1_L``, an
    optional ``lh.``/``rh.`` prefix, or a bare area name.

    Parameters
    ----------
    name : str or bytes

    Returns
    -------
    area : str or None
        ``"A1"``; None for unlabeled names (``???``, ``Unknown``, ``medial_wall``).
    hemi : {"L", "R"} or None
        None when the name does not say.
    """
    text = (name.decode() if isinstance(name, bytes) else str(name)).strip()
    hemi = None
    if text[:3].lower() in ("lh.", "rh."):
        hemi, text = text[0].upper(), text[3:]
    if text.lower() in _UNLABELED:
        return None, None
    match = _PREFIXED.match(text) or _SUFFIXED.match(text)
    if match:
        return match["area"], match["hemi"]
    return (text[:-4] if text.endswith("_ROI") else text), hemi


def check_roi_names(known_areas, roi_sets: dict | None = None, source: str = "the atlas") -> None:
    """Raise ValueError naming every area of ``roi_sets`` (default: the paper's) not in ``known_areas``."""
    known = set(known_areas)
    unknown = sorted({a for members in _sets(roi_sets).values() for a in members} - known)
    if unknown:
        sample = ", ".join(sorted(known)[:12]) or "none"
        raise ValueError(
            f"Areas {unknown} of the ROI sets are not in {source} (its areas include: {sample}). "
            "Use the Glasser HCP-MMP1 annotation (label names like L_A1_ROI), or fix the ROI set."
        )


def _sets(roi_sets: dict | None) -> dict:
    if roi_sets is None:
        from bt_tutorial.dataset.rois import PAPER_ROI_SETS

        return PAPER_ROI_SETS
    return roi_sets


# ------------------------------------------------------------- vertices -> voxels
def voxel_vertex_matrix(left, right, columns=None):
    """Voxel x vertex matrix of the response columns from per-hemisphere mappers.

    Parameters
    ----------
    left, right : sparse matrix, shape (n_vertices_hemi, n_volume_voxels)
        Vertex -> flat index of the (z, y, x) volume (``roi_build.line_nearest_matrix``).
    columns : ndarray of int, shape (n_voxels,), optional
        Flat volume index of each response column (``LebelDataset.voxel_columns``).

    Returns
    -------
    mapping : scipy.sparse.csr_matrix, shape (n_voxels, n_left + n_right)
        Left-hemisphere vertices first.
    """
    from scipy import sparse

    stacked = sparse.vstack([sparse.csr_matrix(left), sparse.csr_matrix(right)]).T.tocsr()
    return stacked if columns is None else stacked[np.asarray(columns)]


def voxel_labels_from_vertices(mapping, vertex_labels, rule: str = "majority", fill=-1) -> np.ndarray:
    """Label of each voxel from the labels of the vertices that map into it.

    Parameters
    ----------
    mapping : sparse matrix, shape (n_voxels, n_vertices)
        Non-negative weight of each vertex in each voxel.
    vertex_labels : ndarray, shape (n_vertices,)
        Any dtype; the label of unlabeled vertices (``""``, -1) competes like any other.
    rule : {"majority", "max_weight"}
        ``"majority"``: the label with the largest summed weight; ``"max_weight"``:
        the label of the heaviest vertex. Ties go to the smallest label or vertex.
    fill
        Label of voxels that no vertex maps into.

    Returns
    -------
    labels : ndarray, shape (n_voxels,)
    """
    from scipy import sparse

    if rule not in ASSIGN_RULES:
        raise ValueError(f"rule must be one of {ASSIGN_RULES}, got {rule!r}.")
    mapping = sparse.csr_matrix(mapping, dtype=np.float64)
    vertex_labels = np.asarray(vertex_labels)
    if mapping.shape[1] != len(vertex_labels):
        raise ValueError(f"mapping has {mapping.shape[1]} vertex columns for {len(vertex_labels)} labels.")
    if (mapping.data < 0).any():
        raise ValueError("mapping weights must be non-negative.")
    names, codes = np.unique(vertex_labels, return_inverse=True)
    if rule == "majority":
        onehot = sparse.csr_matrix((np.ones(codes.size), (np.arange(codes.size), codes)),
                                   shape=(codes.size, names.size))
        best, found = _row_argmax(mapping @ onehot)
        picked = names[best]
    else:
        best, found = _row_argmax(mapping)
        picked = vertex_labels[best]
    out = np.full(mapping.shape[0], fill, dtype=np.result_type(vertex_labels, np.asarray(fill)))
    out[found] = picked[found]
    return out


def _row_argmax(matrix) -> tuple:
    """Column of the largest positive entry of each row (smallest column on ties), and rows with one."""
    coo = matrix.tocoo()
    keep = coo.data > 0
    rows, cols, vals = coo.row[keep], coo.col[keep], coo.data[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols = rows[order], cols[order]
    first = np.r_[True, rows[1:] != rows[:-1]] if rows.size else np.zeros(0, bool)
    best, found = np.zeros(matrix.shape[0], np.int64), np.zeros(matrix.shape[0], bool)
    best[rows[first]], found[rows[first]] = cols[first], True
    return best, found


def assign_voxels(mapping, vertex_areas, n_left: int, rule: str = "majority") -> tuple:
    """Glasser area and hemisphere of each voxel.

    Parameters
    ----------
    mapping : sparse matrix, shape (n_voxels, n_left + n_right)
        From :func:`voxel_vertex_matrix`.
    vertex_areas : ndarray of str, shape (n_left + n_right,)
        Area of each subject vertex, ``""`` where unlabeled; left hemisphere first.
    n_left : int
    rule : {"majority", "max_weight"}
        As in :func:`voxel_labels_from_vertices`; votes are per area and hemisphere.

    Returns
    -------
    areas : ndarray of str, shape (n_voxels,)
        ``""`` for voxels outside every area.
    hemi : ndarray of int8, shape (n_voxels,)
        0 left, 1 right (that of the winning label, else of the larger weight), -1 none.
    """
    vertex_areas = np.asarray(vertex_areas, dtype=str)
    side = np.where(np.arange(vertex_areas.size) < n_left, "L", "R")
    tagged = np.char.add(np.char.add(vertex_areas, "|"), side)
    area, _, tag = np.char.partition(voxel_labels_from_vertices(mapping, tagged, rule, fill="|"), "|").T
    hemi = voxel_hemispheres(mapping, n_left)
    hemi[(area != "") & (tag == "L")] = 0
    hemi[(area != "") & (tag == "R")] = 1
    return area.astype(str), hemi


def voxel_hemispheres(mapping, n_left: int) -> np.ndarray:
    """Hemisphere with the larger summed vertex weight in each voxel.

    Returns
    -------
    hemi : ndarray of int8, shape (n_voxels,)
        0 left (also on exact ties), 1 right, -1 where no vertex maps.
    """
    from scipy import sparse

    mapping = sparse.csc_matrix(mapping, dtype=np.float64)
    left = np.asarray(mapping[:, :n_left].sum(axis=1)).ravel()
    right = np.asarray(mapping[:, n_left:].sum(axis=1)).ravel()
    hemi = np.where(right > left, 1, 0).astype(np.int8)
    hemi[(left <= 0) & (right <= 0)] = -1
    return hemi


# ---------------------------------------------------------------------- ROI sets
def roi_sets_from_labels(voxel_areas, voxel_hemi, roi_sets: dict | None = None, known_areas=None) -> dict:
    """Voxel indices of every ROI set and of each of its areas, also per hemisphere.

    Parameters
    ----------
    voxel_areas : ndarray of str, shape (n_voxels,)
        Area of each voxel, ``""`` for none (from :func:`assign_voxels`).
    voxel_hemi : ndarray of int, shape (n_voxels,)
        0 left, 1 right, -1 unknown.
    roi_sets : dict of str -> sequence of str, optional
        Default: ``PAPER_ROI_SETS``.
    known_areas : iterable of str, optional
        Areas of the atlas: an area of ``roi_sets`` not among them raises
        ValueError, one without voxels only warns. Without it, every area of
        ``roi_sets`` must label at least one voxel.

    Returns
    -------
    rois : dict of str -> ndarray of int64, sorted
        Each set, each area of the sets, and ``outside_rois`` (voxels in no set),
        each also with ``_L`` / ``_R`` (as ``bt_tutorial.dataset.rois.split_hemispheres``).
    """
    roi_sets = _sets(roi_sets)
    voxel_areas, voxel_hemi = np.asarray(voxel_areas, dtype=str), np.asarray(voxel_hemi)
    if known_areas is None:
        check_roi_names(set(voxel_areas) - {""}, roi_sets, "the voxel labels")
    else:
        check_roi_names(known_areas, roi_sets)
    areas = list(dict.fromkeys(a for members in roi_sets.values() for a in members))
    empty = [a for a in areas if not (voxel_areas == a).any()]
    if empty:
        warn_at_caller(f"Areas {empty} label no voxel of this subject; their masks are empty.")
    masks = {name: np.isin(voxel_areas, members) for name, members in roi_sets.items()}
    masks.update((area, voxel_areas == area) for area in areas)
    masks["outside_rois"] = ~np.isin(voxel_areas, areas)
    rois = {}
    for name, mask in masks.items():
        rois[name] = np.flatnonzero(mask)
        for code, side in enumerate(HEMIS):
            rois[f"{name}_{side}"] = np.flatnonzero(mask & (voxel_hemi == code))
    return rois


# ------------------------------------------------------------------------- files
def default_roi_path(root, subject: str) -> Path:
    """Where the build writes a subject's masks: ``<root>/derivative/roi_masks/<subject>.npz``.

    ``derivatives/`` instead when the dataset uses that name.
    """
    root = Path(root).expanduser()
    return (derivative_dir(root) or root / "derivative") / "roi_masks" / f"{subject}.npz"


def save_roi_masks(path, rois: dict, n_voxels: int, subject: str, hemi=None,
                   atlas: str = ATLAS, metadata: dict | None = None) -> Path:  # fmt: skip
    """Write the voxel indices of ROIs to an ``.npz`` that loads without pickle.

    Parameters
    ----------
    path : str or Path
    rois : dict of str -> ndarray of int, shape (n_roi_voxels,)
        Indices of response columns, e.g. from :func:`roi_sets_from_labels`.
    n_voxels : int
        Number of response columns of the subject.
    subject : str
    hemi : ndarray of int, shape (n_voxels,), optional
        Hemisphere of each voxel (0 left, 1 right, -1 unknown; default all -1).
    atlas : str
    metadata : dict, optional
        JSON-serialisable provenance (mapper, rule, annotation files).

    Returns
    -------
    path : Path
        With ``.npz`` appended if it was missing (numpy adds it).
    """
    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    arrays = {}
    for name, idx in rois.items():
        idx = np.unique(np.asarray(idx, dtype=np.int64))
        if idx.size and (idx[0] < 0 or idx[-1] >= n_voxels):
            raise ValueError(f"ROI {name!r} has voxel indices outside 0..{n_voxels - 1}.")
        arrays[f"roi__{name}"] = idx.astype(np.int32)
    hemi = np.full(n_voxels, -1, np.int8) if hemi is None else np.asarray(hemi, dtype=np.int8)
    if hemi.shape != (n_voxels,):
        raise ValueError(f"hemi must have shape ({n_voxels},), got {hemi.shape}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, format_version=np.int32(FORMAT_VERSION), n_voxels=np.int64(n_voxels),
        subject=np.str_(subject), atlas=np.str_(atlas), names=np.array(list(rois), dtype=str),
        hemi=hemi, metadata=np.str_(json.dumps(metadata or {})), **arrays,
    )
    return path


def read_roi_info(path, n_voxels: int | None = None) -> dict:
    """Everything in an ROI mask file written by :func:`save_roi_masks`.

    Parameters
    ----------
    path : str or Path
    n_voxels : int, optional
        Number of response columns (``responses.shape[1]``) the masks must fit.

    Returns
    -------
    info : dict
        ``masks`` (dict of str -> ndarray of bool, shape (n_voxels,)), ``hemi``
        (ndarray of int8, shape (n_voxels,)), ``subject``, ``atlas``, ``n_voxels``,
        ``format_version`` and ``metadata`` (dict).

    Raises
    ------
    RoiFileError
        If the file is missing, not an ROI mask file, of a newer format, or built
        for another number of voxels; the message names the file and the fix.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise RoiFileError(f"ROI mask file not found: {path}. Build it once with "
                           f"`{_BUILD_HINT.format(path.stem)}`.")
    with np.load(path, allow_pickle=False) as npz:
        if not {"format_version", "names", "n_voxels"} <= set(npz.files):
            raise RoiFileError(f"{path} is not an ROI mask file of bt_tutorial; rebuild it with "
                               f"`{_BUILD_HINT.format(path.stem)}`.")
        version = int(npz["format_version"])
        if version > FORMAT_VERSION:
            raise RoiFileError(f"{path} has format version {version}, newer than this bt_tutorial reads "
                               f"({FORMAT_VERSION}); update bt_tutorial or rebuild the file.")
        size = int(npz["n_voxels"])
        masks = {str(name): _mask(npz[f"roi__{name}"], size) for name in npz["names"]}
        info = dict(masks=masks, hemi=npz["hemi"].astype(np.int8), subject=str(npz["subject"]),
                    atlas=str(npz["atlas"]), n_voxels=size, format_version=version,
                    metadata=json.loads(str(npz["metadata"])))
    if n_voxels is not None and size != int(n_voxels):
        raise RoiFileError(
            f"{path} holds ROI masks of subject {info['subject']} for {size} voxels, but the responses "
            f"have {n_voxels}. The masks belong to another subject or cortical mask: load the file of the "
            f"right subject, or rebuild it with `{_BUILD_HINT.format(info['subject'])} --force`."
        )
    return info


def load_roi_masks(path, n_voxels: int | None = None) -> dict:
    """Boolean voxel masks of an ROI mask file, checked against ``n_voxels`` response columns.

    Parameters
    ----------
    path : str or Path
        E.g. ``default_roi_path(root, "UTS01")``.
    n_voxels : int, optional
        ``responses.shape[1]``; a different count raises :class:`RoiFileError`.

    Returns
    -------
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
        ROI sets, their areas and ``outside_rois``, each with ``_L`` / ``_R`` variants.
    """
    return read_roi_info(path, n_voxels)["masks"]


def _mask(indices: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[indices] = True
    return mask
