import numpy as np
import pytest

from bt_tutorial.noise_ceiling import cc_max, signal_power


def simulate(rng, snr, n_repeats=10, n_trs=2000):
    """Repeats with signal variance ``snr`` and unit noise, per voxel."""
    signal = rng.standard_normal((n_trs, len(snr))) * np.sqrt(snr)
    return np.stack([signal + rng.standard_normal(signal.shape) for _ in range(n_repeats)])


def test_signal_power_and_ceiling_match_known_snr():
    rng = np.random.default_rng(0)
    snr = np.array([0.05, 0.2, 1.0, 4.0])
    reps = simulate(rng, snr)
    sp_true = snr / (1 + snr)  # z-scored: total power 1
    assert np.allclose(signal_power(reps), sp_true, atol=0.02)
    ceiling_true = 1 / np.sqrt(1 + (1 / sp_true - 1) / 10)
    assert np.allclose(cc_max(reps), ceiling_true, atol=0.03)


def test_pure_noise_voxels_get_zero_not_nan():
    reps = simulate(np.random.default_rng(1), np.zeros(200), n_trs=300)
    c = cc_max(reps)
    assert np.isfinite(c).all() and (c >= 0).all()
    assert (c == 0).mean() > 0.3  # SP <= 0 for about half of them


def test_bad_shapes_and_nan_are_errors():
    with pytest.raises(ValueError, match="n_repeats"):
        cc_max(np.zeros((5, 10)))
    reps = np.zeros((3, 10, 2))
    reps[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        signal_power(reps)


def test_normalized_alignment_explainable_variance_and_selection():
    from bt_tutorial.noise_ceiling import explainable_variance, normalized_alignment, select_voxels

    rng = np.random.default_rng(2)
    snr = np.array([0.0, 0.5, 2.0])
    reps = simulate(rng, snr, n_trs=4000)
    ev = explainable_variance(reps)
    assert np.allclose(ev, snr / (1 + snr), atol=0.03) and (ev >= 0).all()
    norm = normalized_alignment(np.array([0.1, 0.3, 0.5]), np.array([0.0, 0.6, 0.8]))
    assert np.isnan(norm[0]) and np.allclose(norm[1:], [0.5, 0.625])
    assert list(select_voxels(np.array([0.1, 0.5, 0.41, 0.4]))) == [1, 2]
    with pytest.raises(ValueError, match="highest: 0.300 of 2 voxels"):
        select_voxels(np.array([0.1, 0.3]))
