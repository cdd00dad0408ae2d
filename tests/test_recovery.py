"""What the model learned: recovering the twin's true features from model features."""

import numpy as np
import pytest

from bt_tutorial.data import LebelDataset
from bt_tutorial.recovery import recovery_scores, recovery_table, truth_rows


def _stories(rng, n_rows=(40, 50, 45, 60)):
    return {f"s{i}": rng.standard_normal((n, 3)).astype(np.float32) for i, n in enumerate(n_rows)}


def test_recovery_scores_find_a_planted_mixture_and_not_noise():
    rng = np.random.default_rng(0)
    truth = _stories(rng)
    mix = rng.standard_normal((3, 8))
    rows = {0: {s: t @ mix + 0.1 * rng.standard_normal((len(t), 8)) for s, t in truth.items()},
            1: {s: rng.standard_normal((len(t), 8)) for s, t in truth.items()}}
    scores = recovery_scores(rows, truth, ["s0", "s1", "s2"], "s3")
    assert scores[0].shape == (3,) and scores[0].min() > 0.95
    assert abs(scores[1].mean()) < 0.3
    rows[0]["s3"] = rows[0]["s3"][:-1]
    with pytest.raises(ValueError, match="s3"):
        recovery_scores(rows, truth, ["s0", "s1", "s2"], "s3")


def test_truth_rows_match_the_response_rows(tiny_twin):
    ds = LebelDataset(tiny_twin)
    split = ds.split("UTS01")
    stories = split["train"] + [split["test"]]
    for name in ("semantic", "lowlevel"):
        truth = truth_rows(tiny_twin, stories, name)
        for s in stories:
            assert len(truth[s]) == len(ds.load_responses("UTS01", s)), (name, s)
    with pytest.raises(ValueError, match="set_name"):
        truth_rows(tiny_twin, stories, "topic")
    rng = np.random.default_rng(0)
    sem = truth_rows(tiny_twin, stories, "semantic")
    rows = {"copy": {0: {s: np.hstack([t, rng.standard_normal((len(t), 2))]) for s, t in sem.items()}},
            "noise": {0: {s: rng.standard_normal((len(t), 5)) for s, t in sem.items()}}}
    table = recovery_table(rows, tiny_twin, split["train"], split["test"], sets=["semantic"]).set_index("model")
    assert list(table.columns) == ["layer", "truth", "mean_r"]
    assert table.loc["copy", "mean_r"] > 0.5 and table.loc["copy", "mean_r"] > table.loc["noise", "mean_r"] + 0.3
