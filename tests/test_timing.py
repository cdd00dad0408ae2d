import numpy as np
import pytest

from bt_tutorial.dataset import timing


def test_grid_has_respdict_minus_5_rows_and_mid_tr_times():
    t = timing.simulated_tr_times(300)
    assert t.shape == (295,)
    assert t[0] == pytest.approx(-10 + timing.TR / 2)
    assert np.allclose(np.diff(t), timing.TR)


def test_trimmed_grid_matches_response_rows():
    n = 300
    assert timing.trim_grid(timing.simulated_tr_times(n)).shape == (n - 20,)
    # row i of the responses is scanner TR i + 10
    assert np.allclose(timing.response_tr_times(n), timing.scan_tr_times(n)[10:-10])


def test_huth_lab_grid_reproduced_with_tr_2():
    # load_simulated_trfiles(respdict, tr=2.0, start_time=10.0, pad=5) + from_grid's tr/2
    n = 120
    huth = np.arange(n - 5) * 2.0 - 10.0 + 1.0
    assert np.allclose(timing.simulated_tr_times(n, tr=2.0), huth)


def test_too_short_story_is_an_error():
    with pytest.raises(ValueError, match="more than 20"):
        timing.simulated_tr_times(20)


def test_lanczos_keeps_slow_signals_and_removes_fast_ones():
    old = np.arange(0, 200, 0.1)
    new = np.arange(10, 190, 2.0)
    slow = np.sin(2 * np.pi * 0.05 * old)  # well below the TR grid's Nyquist (0.25 Hz)
    fast = np.sin(2 * np.pi * 0.6 * old)  # far above it
    out = timing.lanczos_resample(np.column_stack([slow, fast, np.ones_like(old)]), old, new)
    assert np.allclose(out[:, 0], np.sin(2 * np.pi * 0.05 * new), atol=0.02)
    assert np.abs(out[:, 1]).max() < 0.05
    assert np.allclose(out[:, 2], 1.0, atol=0.01)


def test_lanczos_kernel_zero_crossings():
    k = timing.lanczos_kernel(np.array([0.0, 2.0, 4.0, 1.0, 7.0]), cutoff=0.5, window=3)
    assert k[0] == 1 and np.allclose(k[1:3], 0, atol=1e-12) and k[3] > 0 and k[4] == 0


def test_make_delayed_shifts_down_with_zeros():
    x = np.arange(12.0).reshape(6, 2)
    d = timing.make_delayed(x, delays=(1, 3))
    assert d.shape == (6, 4)
    assert np.array_equal(d[:, :2], np.vstack([np.zeros((1, 2)), x[:5]]))
    assert np.array_equal(d[:, 2:], np.vstack([np.zeros((3, 2)), x[:3]]))


def test_to_response_rows_shape_zscore_and_mismatch():
    n_scan = 60
    times = np.arange(0, 100, 0.5)
    feats = np.column_stack([np.sin(times / 7), np.cos(times / 11)])
    rows = timing.to_response_rows(feats, times, n_scan, "story", n_response_rows=40)
    assert rows.shape == (40, 2) and np.allclose(rows.mean(0), 0, atol=1e-6)
    with pytest.raises(ValueError, match="Story story: features give 40 TR rows but the responses have 41"):
        timing.to_response_rows(feats, times, n_scan, "story", n_response_rows=41)


@pytest.mark.parametrize("row", [3, 17, 31])
def test_to_response_rows_puts_an_event_on_its_response_row(row):
    """Catches a TR grid shifted by a TR (or the wrong trimming): an event at the time of response row
    ``row`` (seconds from the story onset: (row + 10) * TR - 10 + TR / 2) peaks on that row."""
    n_scan = 60
    times = np.arange(0, 120, 0.1)
    event = (row + 10) * timing.TR - 10 + timing.TR / 2
    bump = np.exp(-0.5 * ((times - event) / 1.5) ** 2)
    rows = timing.to_response_rows(bump[:, None], times, n_scan, "story", n_response_rows=40)
    assert int(np.argmax(rows[:, 0])) == row
    assert timing.response_tr_times(n_scan)[row] == pytest.approx(event)  # the same time, as the reader gives it


def test_make_delayed_refuses_a_story_not_longer_than_the_largest_delay():
    """A delay of 4 on 4 rows gives a block of zeros: an error naming the story, not silent zeros."""
    with pytest.raises(ValueError, match="Story s has 4 rows, not more than the largest delay \\(4 TRs\\)"):
        timing.make_delayed(np.ones((4, 3)), (1, 4), "Story s")
    with pytest.raises(ValueError, match="largest delay \\(2 TRs\\)"):
        timing.make_delayed(np.ones((2, 3)), (-2, 1))
    with pytest.raises(ValueError, match="at least one delay"):
        timing.make_delayed(np.ones((5, 3)), ())
    d = timing.make_delayed(np.arange(5.0)[:, None], (-1, 4))  # one row more than the delay is enough
    assert np.array_equal(d, [[1, 0], [2, 0], [3, 0], [4, 0], [0, 0]])


def test_make_delayed_zero_and_negative_delays_keep_the_dtype():
    """Catches delay 0 treated as a negative delay and a float64 copy of float32 features."""
    x = np.arange(1.0, 13.0, dtype=np.float32).reshape(6, 2)
    d = timing.make_delayed(x, delays=(0, -2))
    assert d.dtype == np.float32
    assert np.array_equal(d[:, :2], x)
    assert np.array_equal(d[:, 2:], np.vstack([x[2:], np.zeros((2, 2))]))


def test_hrf_weight_in_window_planted_shares():
    """Catches a window placed at the wrong lag, a half-open edge moved, or the negative undershoot
    counted as weight (chapter 4's 'share of the HRF a window covers')."""
    h = np.clip(timing.canonical_hrf(0.1), 0, None)
    h = h / h.sum()
    assert timing.hrf_weight_in_window(16) == pytest.approx(1.0)  # 32 s: the whole HRF
    assert timing.hrf_weight_in_window(0) == 0.0
    assert timing.hrf_weight_in_window(1, tr=2.0) == pytest.approx(h[:20].sum())  # s in [0, 2)
    assert timing.hrf_weight_in_window(2, lag_trs=1, tr=2.0) == pytest.approx(h[20:60].sum())  # [2, 6)
    early, late = timing.hrf_weight_in_window(2, 0, tr=2.0), timing.hrf_weight_in_window(2, 2, tr=2.0)
    assert late > early  # the HRF peaks about 5 s after the sound: a lag of 2 TRs covers more of it


def test_canonical_hrf_is_spms_double_gamma():
    """Catches any change to the HRF: the reference is written from the formula with math.gamma,
    h(t) = t^5 e^-t / 5! - t^15 e^-t / (6 * 15!), sampled every 0.1 s over 32 s, unit sum."""
    import math

    t = np.arange(0.0, 32.0, 0.1)
    h = np.array([x ** 5 * math.exp(-x) / math.gamma(6) - x ** 15 * math.exp(-x) / (6 * math.gamma(16)) for x in t])
    np.testing.assert_allclose(timing.canonical_hrf(), h / h.sum(), rtol=1e-9, atol=1e-15)
    assert timing.canonical_hrf(0.5, 20.0).shape == (40,) and timing.canonical_hrf(0.5, 20.0).sum() == pytest.approx(1)


def test_lanczos_window_and_tr_reach_the_kernel():
    """Catches the number of lobes (3) or the TR not passed on, and a wrong row count in the error."""
    assert timing.lanczos_kernel(np.array([2.9, 3.1]), 1.0)[1] == 0.0  # 3 lobes: zero beyond 3
    assert timing.lanczos_kernel(np.array([2.9]), 1.0)[0] != 0.0
    rng = np.random.default_rng(0)
    times = np.arange(0, 60, 0.5)
    values = rng.standard_normal((len(times), 2))
    new = np.arange(1, 59, 2.0)
    three = timing.lanczos_resample(values, times, new)
    assert np.array_equal(three, timing.lanczos_resample(values, times, new, window=3))
    assert not np.allclose(three, timing.lanczos_resample(values, times, new, window=5))
    with pytest.raises(ValueError, match="5 feature rows but 4 times"):
        timing.lanczos_resample(values[:5], times[:4], new)
    grid = np.arange(0, 200, 0.5)
    bump = np.exp(-0.5 * ((grid - 100) / 4) ** 2)[:, None]
    assert not np.allclose(timing.to_response_rows(bump, grid, 100, tr=2.0),
                           timing.to_response_rows(bump, grid, 100))  # the TR reaches the grid


def test_zscore_per_column_or_row_and_constant_columns_become_zero():
    """Catches a z-score over the whole array, a multiplication by the sd, small sds left unscaled,
    and a constant column turned into NaN or inf."""
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(5, 0.1, 50), rng.normal(-3, 7, 50), np.full(50, 4.0)])
    with np.errstate(all="raise"):
        z = timing.zscore(x)
    np.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z[:, :2].std(0), 1, rtol=1e-12)
    assert np.array_equal(z[:, 2], np.zeros(50))
    np.testing.assert_allclose(timing.zscore(x[:, :2].T, axis=1), z[:, :2].T, rtol=1e-12)
    assert timing.response_tr_times(60, tr=2.0)[1] - timing.response_tr_times(60, tr=2.0)[0] == pytest.approx(2.0)
