"""benchmarks/tuning_targets.py: the tuning targets per ROI of the twin, and their planted semantic share."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tuning_targets  # noqa: E402

from bt_tutorial.alignment.noise_ceiling import cc_max  # noqa: E402
from bt_tutorial.dataset.reader import LebelDataset  # noqa: E402
from bt_tutorial.synthetic.truth import load_ground_truth  # noqa: E402


def test_targets_are_counted_in_their_roi_with_the_planted_share(tiny_twin):
    """Catches targets counted in the wrong ROI, all voxels counted, or the share read from the wrong voxels."""
    ds = LebelDataset(tiny_twin)
    ceiling = cc_max(ds.load_repeats("UTS01", ds.split("UTS01")["test"]))
    threshold = float(np.median(ceiling))  # about half the voxels
    got = tuning_targets.targets_by_roi(ds, "UTS01", threshold)
    truth = load_ground_truth(ds.root, "UTS01")
    roi, share = np.asarray(truth["roi"]), np.asarray(truth["semantic_fraction"])
    chosen = ceiling > threshold
    assert got["n_targets"] == chosen.sum() == sum(r["n_targets"] for r in got["rois"].values())
    assert got["semantic_share"] == pytest.approx(share[chosen].mean())
    for i, name in enumerate(truth["roi_names"]):
        if (roi == i).any():
            row = got["rois"][str(name)]
            assert row["n_targets"] == (chosen & (roi == i)).sum()
            assert row["semantic_share"] == pytest.approx(share[roi == i].mean())
