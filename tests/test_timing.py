import numpy as np
import pytest

from bt_tutorial import timing


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
