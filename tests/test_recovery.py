"""What the model learned: recovering the twin's true features from model features."""

import numpy as np
import pytest

from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.synthetic.recovery import recovery_scores, recovery_table, truth_rows


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


def test_recovery_gains_are_changes_from_the_pretrained_model():
    import pandas as pd

    from bt_tutorial.synthetic.recovery import recovery_gains

    table = pd.DataFrame([{"model": m, "layer": k, "truth": t, "mean_r": r}
                          for m, base in (("pretrained", 0.30), ("brain-tuned", 0.40), ("control", 0.25))
                          for k in (1, 2) for t, r in (("semantic", base + k / 100), ("lowlevel", 0.5))])
    gains = recovery_gains(table, 2)
    assert gains.loc["semantic", "brain-tuned"] == pytest.approx(0.10)
    assert gains.loc["semantic", "control"] == pytest.approx(-0.05)
    assert gains.loc["lowlevel"].abs().max() < 1e-12 and "pretrained" not in gains
    with pytest.raises(KeyError, match="layer 7"):
        recovery_gains(table, 7)


def test_lowlevel_share_check_against_the_twin(tiny_twin):
    import pandas as pd

    from bt_tutorial.synthetic.recovery import lowlevel_share_check, true_lowlevel_share
    from bt_tutorial.synthetic.truth import load_ground_truth, twin_roi_masks

    masks = twin_roi_masks(tiny_twin, "UTS01", hemispheres=False)
    share = true_lowlevel_share(tiny_twin, "UTS01", masks)
    frac = load_ground_truth(tiny_twin, "UTS01")["semantic_fraction"]
    assert share["late_language"] == pytest.approx(1 - frac[masks["late_language"]].mean())
    assert share["early_auditory"] > share["late_language"]  # the twin's design
    drops = pd.DataFrame({3: [40.0, 10.0, 5.0, 20.0]},
                         index=pd.MultiIndex.from_tuples([("pretrained", "early_auditory"),
                                                          ("pretrained", "late_language"),
                                                          ("control", "early_auditory"),
                                                          ("control", "late_language")], names=["model", "roi"]))
    check = lowlevel_share_check(drops, share, 3)
    assert check.loc["pretrained", "early_auditory drop larger"]
    assert not check.loc["control", "early_auditory drop larger"]
    assert check.loc["control", "drop, late_language (%)"] == 20.0
