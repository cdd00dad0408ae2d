"""benchmarks/specificity.py: what each true drive of the twin adds to the alignment of every ROI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import specificity  # noqa: E402

from bt_tutorial.dataset.reader import LebelDataset  # noqa: E402


def test_the_semantic_drive_helps_late_language_most_and_the_lowlevel_drive_auditory_cortex(twin_root):
    """Catches the true drives appended to the wrong stories, the gain measured against the wrong
    baseline, or the sets swapped: features of pure noise gain from each drive where the twin planted it."""
    ds = LebelDataset(twin_root)
    split = ds.split("UTS01")
    rng = np.random.default_rng(0)
    noise = {s: rng.standard_normal((len(ds.load_responses("UTS01", s)), 4)).astype(np.float32)
             for s in split["train"] + [split["test"]]}
    got = specificity.oracle_gains(noise, ds, "UTS01")
    # the demo twin: the tiny one's edges of silence
    # move every drive on and off with the sound, so there the semantic drive helps auditory cortex too
    assert all(abs(v) < 0.15 for v in got["model"].values())  # noise explains next to nothing
    sem, low = got["semantic"], got["lowlevel"]
    assert sem["late_language"] > 0.3 and sem["late_language"] > sem["early_auditory"] + 0.1
    assert low["early_auditory"] > 0.3 and low["early_auditory"] > low["late_language"] + 0.1
    assert sem["early_auditory"] > sem["primary_auditory"] and low["primary_auditory"] > low["early_auditory"]


def test_tuning_data_is_cut_to_the_targets_inside_the_roi():
    """Catches the ROI mask applied to target positions instead of the targets' voxel indices."""
    from bt_tutorial.brain_tuning.samples import TuningData

    voxels = np.array([1, 4, 6, 9])
    inside = np.zeros(10, bool)
    inside[[0, 1, 2, 6]] = True  # as positions 0-2 it would keep 1, 4, 6 instead
    targets = [np.arange(12.0).reshape(3, 4), np.arange(8.0).reshape(2, 4)]
    data = TuningData([np.zeros((3, 5)), np.zeros((2, 5))], targets)
    cut, kept = specificity.targets_in_roi(data, voxels, inside)
    np.testing.assert_array_equal(kept, [1, 6])
    np.testing.assert_array_equal(cut.targets[0], targets[0][:, [0, 2]])
    np.testing.assert_array_equal(cut.targets[1], targets[1][:, [0, 2]])
    assert cut.windows is data.windows and len(cut) == 5
