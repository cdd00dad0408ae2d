"""benchmarks/control_gain.py: the control whose targets hold no response."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import control_gain  # noqa: E402

from bt_tutorial.brain_tuning.samples import TuningData  # noqa: E402


def test_white_noise_targets_keep_windows_and_shapes_and_carry_no_response():
    """Catches targets left as they were (a plain copy of the control), or noise of another shape or scale."""
    rng = np.random.default_rng(0)
    responses = [np.cumsum(rng.standard_normal((400, 6)), axis=0) for _ in range(2)]  # slow, like fMRI
    data = TuningData([np.zeros((400, 8)), np.ones((400, 8))], responses)
    noise = control_gain.white_noise_targets(data, seed=3)
    assert noise.windows is data.windows
    assert [t.shape for t in noise.targets] == [(400, 6), (400, 6)]
    for t, y in zip(noise.targets, responses):
        assert t.dtype == np.float32 and abs(t.std() - 1) < 0.05 and abs(t.mean()) < 0.05
        lag1 = np.mean([np.corrcoef(t[1:, j], t[:-1, j])[0, 1] for j in range(6)])
        assert abs(lag1) < 0.15  # white, unlike the responses' near-1 autocorrelation
        assert abs(np.corrcoef(t.ravel(), y.ravel())[0, 1]) < 0.1
