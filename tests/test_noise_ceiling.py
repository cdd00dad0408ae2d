import os
import tracemalloc
import warnings

import numpy as np
import pytest

from bt_tutorial.alignment.noise_ceiling import (
    cc_max,
    explainable_variance,
    lebel_noise_ceiling_summary,
    select_voxels,
    signal_power,
)


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



def _column_r(a, b):
    """Pearson r of matching columns."""
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def test_ceiling_and_explainable_variance_match_their_empirical_counterparts():
    """No formula here: the true signal is known, so measure what the estimates claim.

    CC_max claims to be the correlation of the true signal with the mean of the
    repeats; explainable variance, the fraction of one repeat's variance the
    signal explains (its squared correlation with a repeat). 4 repeats, so that
    an N off by one moves the ceiling by more than the tolerance.
    """
    rng = np.random.default_rng(3)
    n_repeats, n_trs, per_level = 4, 1000, 100
    levels = np.array([0.05, 0.1, 0.25, 0.5, 1.0, 3.0])
    snr = np.repeat(levels, per_level)
    signal = rng.standard_normal((n_trs, snr.size)) * np.sqrt(snr)
    reps = signal + rng.standard_normal((n_repeats, n_trs, snr.size))

    r_with_mean = _column_r(signal, reps.mean(0))
    r2_with_one = np.mean([_column_r(signal, rep) ** 2 for rep in reps], axis=0)
    ceiling, ev = cc_max(reps), explainable_variance(reps)
    # per level, over 100 voxels: the estimates are unbiased to ~0.003 here
    by_level = lambda x: x.reshape(len(levels), per_level).mean(1)
    np.testing.assert_allclose(by_level(ceiling), by_level(r_with_mean), atol=0.01)
    np.testing.assert_allclose(by_level(ev), by_level(r2_with_one), atol=0.005)
    # and voxel by voxel, within sampling noise
    assert np.median(np.abs(ceiling - r_with_mean)) < 0.02
    assert np.median(np.abs(ev - r2_with_one)) < 0.02


def test_pure_noise_voxels_get_zero_not_nan():
    reps = simulate(np.random.default_rng(1), np.zeros(200), n_trs=300)
    c = cc_max(reps)
    assert np.isfinite(c).all() and (c >= 0).all()
    assert (c == 0).mean() > 0.3  # SP <= 0 for about half of them


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="n_repeats"):
        cc_max(np.zeros((5, 10)))


def test_nan_and_inf_voxels_are_ignored_with_one_warning():
    """Real repeats have NaN voxels: they get a ceiling of 0 (signal power NaN), the others are unchanged."""
    reps = simulate(np.random.default_rng(4), np.ones(6), n_repeats=3, n_trs=50)
    clean = cc_max(reps)
    reps[1, 4, 2] = np.inf
    reps[2, 7, 5] = -np.inf
    reps[:, :, 0] = np.nan  # a whole NaN column, as in ds003020
    with pytest.warns(UserWarning, match=r"3 of 6 voxels have non-finite values \(NaN or inf\).*\[0, 2, 5\]"):
        ceiling = cc_max(reps)
    assert ceiling[[0, 2, 5]].tolist() == [0, 0, 0]
    assert np.array_equal(ceiling[[1, 3, 4]], clean[[1, 3, 4]])
    with pytest.warns(UserWarning):
        assert np.isnan(signal_power(reps)[[0, 2, 5]]).all()
    with pytest.warns(UserWarning):
        assert explainable_variance(reps)[[0, 2, 5]].tolist() == [0, 0, 0]
    assert select_voxels(ceiling, 0.4).tolist() == np.flatnonzero(ceiling > 0.4).tolist()


def test_zeroed_columns_get_a_zero_ceiling_without_warning():
    reps = simulate(np.random.default_rng(6), np.ones(4), n_repeats=3, n_trs=50)
    reps[:, :, 1] = 0.0  # a NaN column after nan_policy="zero"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ceiling = cc_max(reps)
    assert ceiling[1] == 0 and (ceiling[[0, 2, 3]] > 0).all()


def test_float32_chunks_match_float64_and_stay_near_the_input_size():
    """UTS03's repeats are 1.1 GB in float32: no float64 copy of the whole input (issue 12, item 2)."""
    rng = np.random.default_rng(7)
    reps = simulate(rng, rng.uniform(0, 1, 600), n_repeats=4, n_trs=60)
    whole = cc_max(reps, chunk=10**9)
    assert np.array_equal(cc_max(reps, chunk=7), whole)  # chunking changes nothing, even odd sizes
    np.testing.assert_allclose(cc_max(reps.astype(np.float32)), whole, atol=1e-5)
    big = np.random.default_rng(8).standard_normal((10, 20, 50_000), dtype=np.float32)  # 40 MB
    tracemalloc.start()
    try:
        cc_max(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * big.nbytes, f"peak {peak / 1e6:.0f} MB for a {big.nbytes / 1e6:.0f} MB input"


def test_degenerate_repeats_are_refused():
    """2 TRs gave pure noise a ceiling of exactly 1 whenever the repeats agreed in sign."""
    from bt_tutorial.alignment.noise_ceiling import MIN_TRS

    reps = simulate(np.random.default_rng(5), np.zeros(400), n_repeats=4, n_trs=2)
    with pytest.raises(ValueError, match=rf"2 TRs; a noise ceiling needs at least {MIN_TRS} \(with fewer, pure"):
        cc_max(reps)
    with pytest.raises(ValueError, match="n_repeats >= 2"):
        cc_max(simulate(np.random.default_rng(5), np.ones(3), n_repeats=1, n_trs=100))
    with pytest.raises(ValueError, match="n_voxels >= 1"):
        cc_max(np.zeros((3, 50, 0)))
    assert cc_max(simulate(np.random.default_rng(5), np.ones(3), n_repeats=2, n_trs=MIN_TRS)).shape == (3,)


def test_selection_and_normalisation_refuse_bad_ceilings():
    from bt_tutorial.alignment.noise_ceiling import normalized_alignment, select_voxels

    with pytest.raises(ValueError, match="non-empty 1-D array of finite values.*2 non-finite"):
        select_voxels(np.array([0.5, np.nan, np.inf]))
    with pytest.raises(ValueError, match=r"non-empty 1-D.*shape \(0,\)"):
        select_voxels(np.array([]))
    with pytest.raises(ValueError, match="ceiling has 2 non-finite"):
        normalized_alignment(np.array([0.1, 0.2, 0.3]), np.array([0.5, np.inf, np.nan]))
    with pytest.raises(ValueError, match=r"scores \(2,\) and ceiling \(3,\) differ in shape"):
        normalized_alignment(np.array([0.1, 0.2]), np.array([0.5, 0.5, 0.5]))
    # a NaN score (constant voxel) stays NaN instead of becoming a ratio
    assert np.isnan(normalized_alignment(np.array([np.nan, 0.2]), np.array([0.5, 0.5]))).tolist() == [True, False]


def test_normalized_alignment_explainable_variance_and_selection():
    from bt_tutorial.alignment.noise_ceiling import explainable_variance, normalized_alignment, select_voxels

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


def test_lebel_summary_is_complete_and_consistent():
    """The shipped summary of the real ds003020 ceilings: 8 subjects, values that agree."""
    summary = lebel_noise_ceiling_summary()
    assert sorted(summary) == [f"UTS{i:02d}" for i in range(1, 9)]
    levels = ["q10", "q25", "q50", "q75", "q90", "q99"]
    for subject, s in summary.items():
        assert isinstance(s["n_voxels"], int) and 50_000 < s["n_voxels"] < 150_000, subject
        assert 0 <= s["frac_zero"] <= 1 and 0 <= s["frac_gt_0_4"] <= 1
        assert s["frac_zero"] + s["frac_gt_0_4"] <= 1
        assert s["n_gt_0_4"] == round(s["frac_gt_0_4"] * s["n_voxels"])
        q = np.array([s["quantiles"][k] for k in levels])
        assert sorted(s["quantiles"]) == sorted(levels)
        assert np.all(np.diff(q) >= 0) and 0 <= q[0] and q[-1] <= s["max"] <= 1
        assert 0 < s["mean"] < s["max"]
        # the quantiles agree with the fractions: q_p is 0 exactly when more than a
        # fraction p of voxels is at 0, and above 0.4 when fewer than p are at or below it
        p = np.array([0.10, 0.25, 0.50, 0.75, 0.90, 0.99])
        np.testing.assert_array_equal(q == 0, p < s["frac_zero"], err_msg=subject)
        np.testing.assert_array_equal(q > 0.4, p > 1 - s["frac_gt_0_4"], err_msg=subject)
        # the mean is the integral of the quantile function over p in [0, 1]: on each
        # interval between levels it lies between the quantiles at the two ends
        edges = np.concatenate([[0], p, [1]])
        low = np.concatenate([[0], q])
        high = np.concatenate([q, [s["max"]]])
        width = np.diff(edges)
        assert width @ low - 1e-3 <= s["mean"] <= width @ high + 1e-3, subject


def test_signal_power_ignores_each_repeats_offset_and_scale():
    """Catches broken z-scoring of the repeats: the mean added instead of removed, or small sds left unscaled."""
    rng = np.random.default_rng(11)
    reps = 0.1 * simulate(rng, np.array([0.2, 1.0, 3.0]), n_repeats=4, n_trs=200)  # sds well under 1
    moved = reps * rng.uniform(0.05, 0.5, (4, 1, 3)) + rng.uniform(-5, 5, (4, 1, 3))
    np.testing.assert_allclose(signal_power(moved), signal_power(reps), rtol=1e-9)


def test_every_chunk_size_computes_every_voxel_in_float64():
    """Catches voxels skipped by the chunk loop (chunk of 1) and a float32 computation of float32 input."""
    rng = np.random.default_rng(12)
    reps = simulate(rng, rng.uniform(0, 2, 9), n_repeats=3, n_trs=80).astype(np.float32)
    exact = signal_power(reps.astype(np.float64), chunk=10**9)
    for chunk in (1, 4):
        np.testing.assert_allclose(signal_power(reps, chunk=chunk), exact, rtol=1e-12)  # float32: ~1e-7


def test_the_non_finite_warning_lists_five_voxels_and_points_at_the_caller():
    """Catches the warning attributed to the package's own line (stacklevel) or listing too many voxels."""
    reps = simulate(np.random.default_rng(13), np.ones(9), n_repeats=3, n_trs=50)
    reps[0, 0, 1:8] = np.nan
    with pytest.warns(UserWarning, match=r"7 of 9 voxels .*\(first: \[1, 2, 3, 4, 5\]\)") as caught:
        cc_max(reps)
    assert caught[0].filename == __file__ or "MUTANT_UNDER_TEST" in os.environ  # mutmut adds frames
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clean repeats: no warning at all
        cc_max(reps[:, :, [0, 8]])


def test_normalized_alignment_of_integer_lists_is_a_float_ratio():
    """Catches the inputs kept as ints: 1 / 2 would be stored as 0."""
    from bt_tutorial.alignment.noise_ceiling import normalized_alignment

    assert normalized_alignment([1, 0, 3], [2, 0, 4]).tolist()[::2] == [0.5, 0.75]


def test_swapped_axes_are_refused():
    """Catches repeats given as (n_trs, n_repeats, n_voxels): noise voxels got ceilings above 0.4."""
    reps = simulate(np.random.default_rng(14), np.zeros(5), n_repeats=10, n_trs=60)
    with pytest.raises(ValueError, match=r"more repeats \(60\) than TRs \(10\): the axes look swapped"):
        cc_max(reps.transpose(1, 0, 2))
    assert cc_max(reps[:10, :10]).shape == (5,)  # as many repeats as TRs is not swapped


def test_ceiling_recovery_correlates_only_the_voxels_with_a_true_ceiling():
    """Catches voxels without signal counted (their estimate is 0 by definition) or arguments swapped in a mask."""
    from bt_tutorial.alignment.noise_ceiling import ceiling_recovery

    rng = np.random.default_rng(0)
    true = np.concatenate([rng.uniform(0.2, 0.9, 200), np.zeros(100)])
    estimated = true + 0.05 * rng.standard_normal(300)
    estimated[200:] = rng.uniform(0, 0.9, 100)  # noise where there is no signal
    kept = true > 0.1
    assert ceiling_recovery(estimated, true) == pytest.approx(np.corrcoef(estimated[kept], true[kept])[0, 1])
    assert ceiling_recovery(estimated, true) > 0.95 > np.corrcoef(estimated, true)[0, 1]
    assert ceiling_recovery(true, estimated, min_true=0.1) < 0.95  # the mask follows the true ceilings
    with pytest.raises(ValueError, match="Only 0 voxels have a true ceiling above 0.95"):
        ceiling_recovery(estimated, true, min_true=0.95)
    with pytest.raises(ValueError, match="same shape"):
        ceiling_recovery(estimated[:10], true)

