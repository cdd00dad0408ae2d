"""The T4 time estimate of the full profile (benchmarks/t4_estimate.py): its arithmetic and FLOP counts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import t4_estimate  # noqa: E402
from gpu_full_scale import random_model  # noqa: E402


def test_ridge_fit_flops_adds_the_folds_and_the_refit_by_hand():
    """Catches a dropped fold, a prediction counted once instead of once per alpha, or a missing refit."""
    n, p, v, n_test = 100, 10, 7, 5
    n_val = 20
    fit = 2 * 80 * p * p + 9 * p ** 3 + 2 * 80 * p * v + 2 * p * p * v + 3 * 2 * n_val * p * v
    refit = 2 * n * p * p + 9 * p ** 3 + 2 * n * p * v + 2 * p * p * v + 2 * n_test * p * v
    assert t4_estimate.ridge_fit_flops(n, p, v, n_test, n_alphas=3, n_folds=5) == 5 * fit + refit


def test_t4_minutes_divide_by_peak_times_efficiency():
    """Catches the two precisions swapped or the fast and slow bounds reversed."""
    flops = {"fp16": 65e12 * 0.35 * 60, "fp32": 0.0}
    fast, slow = t4_estimate.t4_minutes(flops)
    assert fast == pytest.approx(1.0) and slow == pytest.approx(0.35 / 0.15)
    fast, slow = t4_estimate.t4_minutes({"fp16": 0.0, "fp32": 8.1e12 * 0.7 * 60})
    assert fast == pytest.approx(1.0) and slow == pytest.approx(0.7 / 0.4)


def test_chapter_flops_scale_with_the_plan():
    """Catches a chapter that ignores the plan's windows, epochs or training TRs."""
    unit = {"window": 1.0, "sample": 3.0, "clip_second": 2.0}
    small = t4_estimate.Plan("a", windows=10, train_trs=100, epochs=2, task_audio_s=5.0)
    big = t4_estimate.Plan("b", windows=20, train_trs=100, epochs=4, task_audio_s=5.0)
    a, b = t4_estimate.chapter_flops(small, unit), t4_estimate.chapter_flops(big, unit)
    assert a["2 alignment"]["fp16"] == 10 and a["5 semantic ROIs"]["fp16"] == 20
    assert b["4 brain-tuning"]["fp16"] == 2 * a["4 brain-tuning"]["fp16"]
    assert a["7 downstream"]["fp16"] == 3 * 5.0 * 2.0
    assert a["6 low-level impact"]["fp32"] == 3 * 35 * t4_estimate.ridge_fit_flops(100, 3072, 57_975, 251)


def test_counted_flops_of_a_window_grow_with_the_model():
    """Catches a count that misses the transformer (a tiny model would then cost what a big one does)."""
    tiny = random_model("whisper", tiny=True)
    flops, seconds = t4_estimate.feature_window_flops(tiny, n=2)
    hidden = 32
    assert flops > 2 * hidden * hidden * 800 and seconds > 0  # at least one projection of 800 frames
    per_second = t4_estimate.clip_second_flops(tiny, seconds=1.0)
    assert np.isfinite(per_second) and per_second < flops
