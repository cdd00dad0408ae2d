"""The twin's ground truth: its true drives and its ROI masks, written beside the data."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from bt_tutorial.dataset.layout import GROUND_TRUTH_DIR, TWIN_INFO, DatasetError, refetch_hint
from bt_tutorial.dataset.rois import roi_masks


def twin_roi_masks(twin_root, subject: str, hemispheres: bool = True) -> dict:
    """The twin's ROI masks (ROIs, the paper's three groups, outside), from its ground truth."""
    truth = load_ground_truth(twin_root, subject)
    return roi_masks(truth["roi"], truth["roi_names"], hemi=truth["hemi"] if hemispheres else None)


def load_ground_truth(root, subject: str | None = None, story: str | None = None) -> dict:
    """Ground truth of a synthetic twin: its summary, a subject's voxels or a story's features.

    The twin (:mod:`bt_tutorial.synthetic`) writes these files; the reader owns their layout.

    Returns
    -------
    truth : dict
        ``twin.json`` content if neither subject nor story is given; else the
        arrays of ``ground_truth/<subject>.npz`` or ``ground_truth/stories/<story>.npz``.
    """
    gt = Path(root) / GROUND_TRUTH_DIR
    if subject is None and story is None:
        try:
            return json.loads((gt / TWIN_INFO).read_text())
        except (UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{gt / TWIN_INFO} is not valid JSON ({exc}). {refetch_hint(root)}") from None
    path = gt / f"{subject}.npz" if subject else gt / "stories" / f"{story}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"No ground truth at {path}: is {root} a synthetic twin?")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # truncated, or not an npz
        raise DatasetError(f"Cannot read the ground truth {path} ({type(exc).__name__}). "
                           + refetch_hint(root)) from None
