"""The paper's three effects: verdicts, layer choice, percentage-drop differences, probe differences."""

import numpy as np
import pandas as pd
import pytest

from bt_tutorial.comparison.effects import (
    alignment_effects,
    choose_layer,
    downstream_effects,
    effect_holds,
    lowlevel_effects,
    percent_drop_difference,
)
from bt_tutorial.stats import verdict


def interval(low, high):
    return {"low": low, "high": high}


def test_with_a_paired_test_the_verdict_needs_both_the_interval_and_the_p_value():
    """Catches the p-value ignored (either direction), a p-value of 0.05 taken as significant, or NaN p accepted."""
    assert verdict({"low": 0.01, "high": 0.2, "p_value": 0.2}) == "no clear difference"
    assert verdict({"low": -0.2, "high": -0.01, "p_value": 0.2}) == "no clear difference"
    assert verdict({"low": 0.01, "high": 0.2, "p_value": 0.05}) == "no clear difference"
    assert verdict({"low": 0.01, "high": 0.2, "p_value": 0.01}) == "higher"
    assert verdict({"low": -0.2, "high": -0.01, "p_value": 0.049}) == "lower"
    assert verdict({"low": 0.01, "high": 0.2, "p_value": np.nan}) == "too few values to compare"


def test_the_verdict_of_an_interval_and_effect_holds():
    assert verdict(interval(0.01, 0.2)) == "higher"
    assert verdict(interval(-0.2, -0.01)) == "lower"
    assert verdict(interval(-0.1, 0.1)) == "no clear difference"
    assert verdict(interval(0.0, 0.1)) == verdict(interval(-0.1, 0.0)) == "no clear difference"  # 0 is inside
    assert verdict(interval(np.nan, 0.1)) == "too few values to compare"
    assert effect_holds("alignment", ["higher", "higher"]) and not effect_holds("alignment", ["higher", "lower"])
    assert effect_holds("lowlevel", ["lower"]) and not effect_holds("lowlevel", [])
    assert effect_holds("low-level task", ["no clear difference", "lower"])
    assert not effect_holds("low-level task", ["higher"])
    with pytest.raises(ValueError, match="kind"):
        effect_holds("speed", ["higher"])


def test_choose_layer_uses_the_pretrained_model_and_ignores_nan():
    values = np.array([[0.1, np.nan, 0.1], [0.3, np.nan, 0.5], [0.2, 0.9, np.nan]])
    assert choose_layer(values, [0, 2, 4]) == 4  # means 0.1, 0.4, 0.55
    with pytest.raises(ValueError, match="one row per layer and some finite values"):
        choose_layer(values, [0, 1])


def test_alignment_effects_picks_the_roi_and_layer_rows():
    pairs = pd.DataFrame([
        {"comparison": "brain-tuned - pretrained", "layer": 3, "roi": "late_language", "n_voxels": 50,
         "difference": 0.05, "low": 0.02, "high": 0.08, "p_value": 0.001},
        {"comparison": "brain-tuned - control", "layer": 3, "roi": "late_language", "n_voxels": 50,
         "difference": 0.01, "low": -0.01, "high": 0.03, "p_value": 0.3},
        {"comparison": "brain-tuned - pretrained", "layer": 2, "roi": "late_language", "n_voxels": 50,
         "difference": -0.05, "low": -0.08, "high": -0.02, "p_value": 0.001}])
    table = alignment_effects(pairs, "late_language", 3)
    assert list(table.index) == ["brain-tuned - pretrained", "brain-tuned - control"]
    assert list(table["verdict"]) == ["higher", "no clear difference"]
    with pytest.raises(KeyError, match="layer 9"):
        alignment_effects(pairs, "late_language", 9)


def test_percent_drop_difference_on_planted_drops():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.2, 0.6, 400)
    mask = np.ones(400, bool)
    mask[:50] = False
    a = percent_drop_difference(r, 0.8 * r, r, 0.5 * r + rng.normal(0, 0.01, 400), mask)
    assert np.isclose(a["drop_a"], 20) and abs(a["drop_b"] - 50) < 1
    assert abs(a["difference"] + 30) < 1 and a["low"] < a["difference"] < a["high"] < 0
    same = percent_drop_difference(r, 0.7 * r + rng.normal(0, 0.05, 400), r, 0.7 * r + rng.normal(0, 0.05, 400), mask)
    assert same["low"] < 0 < same["high"]
    assert np.isnan(percent_drop_difference(r, r, r, r, np.zeros(400, bool))["difference"])


def test_percent_drop_difference_defaults_are_reproducible_and_two_voxels_suffice():
    """Catches an unseeded bootstrap, changed documented defaults (2000 resamples, seed 0, 95%),
    and two voxels refused."""
    rng = np.random.default_rng(1)
    r = rng.uniform(0.2, 0.6, 300)
    args = (r, 0.8 * r + rng.normal(0, 0.02, 300), r, 0.6 * r + rng.normal(0, 0.02, 300), np.ones(300, bool))
    first = percent_drop_difference(*args)
    assert first == percent_drop_difference(*args) == percent_drop_difference(*args, n_boot=2000, level=0.95,
                                                                                 seed=0)
    assert first != percent_drop_difference(*args, seed=1) and first != percent_drop_difference(*args, n_boot=2001)
    half = percent_drop_difference(*args, level=0.5)  # the level reaches the interval
    assert first["low"] < half["low"] < half["high"] < first["high"]
    two = np.zeros(300, bool)
    two[:2] = True
    assert np.isfinite(percent_drop_difference(*args[:4], two)["low"])


class _Impact:
    def __init__(self, r_orig, r_resid):
        self.r_orig, self.r_resid = {3: r_orig}, {(3, "all"): r_resid}


def test_lowlevel_effects_table_reads_lower_for_a_smaller_drop():
    rng = np.random.default_rng(1)
    r = rng.uniform(0.2, 0.6, 300)
    impacts = {"pretrained": _Impact(r, 0.5 * r), "control": _Impact(r, 0.55 * r),
               "brain-tuned": _Impact(r, 0.8 * r)}
    table = lowlevel_effects(impacts, np.ones(300, bool), 3, "all")
    assert list(table["verdict"]) == ["lower", "lower"] and table.index.name == "comparison"
    assert table.loc["brain-tuned - pretrained", "difference"] == pytest.approx(-30)
    other = lowlevel_effects(impacts, np.ones(300, bool), 3, "all", seed=5, n_boot=300)  # passed through
    assert other["low"].tolist() != table["low"].tolist()


class _Probe:
    primary = "macro_f1"

    def __init__(self, scores):
        self.scores = {"macro_f1": list(scores)}


def test_downstream_effects_compare_each_models_best_layer(monkeypatch):
    import bt_tutorial.downstream.probes as probes

    monkeypatch.setattr(probes, "best_layer", lambda by_layer: max(by_layer))
    base = np.linspace(0.5, 0.6, 10)
    results = {"pretrained": {"t": {1: _Probe(base), 2: _Probe(base)}},
               "control": {"t": {1: _Probe(base + 0.2), 2: _Probe(base + 0.01)}},
               "brain-tuned": {"t": {1: _Probe(base - 0.5), 2: _Probe(base + 0.05 + 0.001 * np.arange(10))}}}
    table = downstream_effects(results, ["t"]).set_index("comparison")
    assert table.loc["brain-tuned - pretrained", "verdict"] == "higher"
    assert table.loc["brain-tuned - control", "difference"] == pytest.approx(0.0445)


def test_downstream_summary_needs_every_semantic_task_and_no_phoneme_gain():
    from bt_tutorial.comparison.effects import downstream_summary

    def table(verdicts):
        return pd.DataFrame([{"task": t, "comparison": "brain-tuned - control", "verdict": v}
                             for t, v in verdicts.items()]
                            + [{"task": "intent", "comparison": "brain-tuned - pretrained", "verdict": "lower"}])

    good = downstream_summary(table({"intent": "higher", "sentence_type": "higher", "phonemes": "lower"}))
    assert good["holds"] and good["n_improved"] == 2 and good["lowlevel"] == {"phonemes": "lower"}
    assert not downstream_summary(table({"intent": "higher", "phonemes": "higher"}))["holds"]
    assert not downstream_summary(table({"intent": "no clear difference", "phonemes": "lower"}))["holds"]


def _pairs(late_vs_control_low=0.01):
    rows = []
    for layer in (1, 2):
        for roi in ("late_language", "early_auditory"):
            rows.append({"comparison": "brain-tuned - pretrained", "layer": layer, "roi": roi, "n_voxels": 40,
                         "difference": 0.05, "low": 0.02, "high": 0.08, "p_value": 0.001})
            low = late_vs_control_low if layer == 2 and roi == "late_language" else -0.02
            rows.append({"comparison": "brain-tuned - control", "layer": layer, "roi": roi, "n_voxels": 40,
                         "difference": 0.03, "low": low, "high": 0.06, "p_value": 0.01 if low > 0 else 0.2})
    return pd.DataFrame(rows)


def test_describe_alignment_states_the_numbers_and_the_verdict():
    from bt_tutorial.comparison.effects import describe_alignment

    text = describe_alignment(_pairs(), 2, ["late_language", "early_auditory"])
    assert "late language, layer 2:\n  brain-tuned - pretrained +0.050 [+0.020, +0.080] p = 0.001 higher" in text
    assert "at layer\n2: holds in this run" in text or "at layer 2: holds in this run" in text.replace("\n", " ")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "brain-tuned above the control at 1 of 2 layers" in text
    weak = describe_alignment(_pairs(late_vs_control_low=-0.01), 2, ["late_language"]).replace("\n", " ")
    assert "at layer 2: does not hold in this run" in weak and "at 0 of 2 layers" in weak


def test_describe_lowlevel_and_downstream():
    from bt_tutorial.comparison.effects import control_share, describe_downstream, describe_lowlevel

    table = pd.DataFrame({"drop_a": [20.0, 20.0], "drop_b": [30.0, 25.0], "difference": [-10.0, -5.0],
                          "low": [-15.0, -9.0], "high": [-5.0, 1.0],
                          "verdict": ["lower", "no clear difference"]},
                         index=pd.Index(["brain-tuned - pretrained", "brain-tuned - control"], name="comparison"))
    text = describe_lowlevel(table, 3, "spectrum+rates")
    assert "  brain-tuned 20.0 vs pretrained 30.0: -10.0 [-15.0, -5.0] -> lower\n" in text
    assert "  brain-tuned 20.0 vs control 25.0: -5.0 [-9.0, +1.0] -> no clear difference\n" in text
    assert text.endswith("does not hold in this run.")
    assert describe_lowlevel(table.iloc[:1], 3, "x").endswith(": holds in this run.")

    effect = pd.DataFrame([
        {"task": "intent", "comparison": "brain-tuned - control", "difference": 0.04, "low": 0.01, "high": 0.07,
         "verdict": "higher"},
        {"task": "phonemes", "comparison": "brain-tuned - control", "difference": 0.0, "low": -0.01,
         "high": 0.01, "verdict": "no clear difference"},
        {"task": "intent", "comparison": "brain-tuned - pretrained", "difference": 0.08, "low": 0.05,
         "high": 0.1, "verdict": "higher"},
        {"task": "intent", "comparison": "control - pretrained", "difference": 0.02, "low": 0.0, "high": 0.04,
         "verdict": "no clear difference"},
        {"task": "phonemes", "comparison": "brain-tuned - pretrained", "difference": -0.01, "low": -0.02,
         "high": 0.0, "verdict": "no clear difference"},
        {"task": "phonemes", "comparison": "control - pretrained", "difference": 0.01, "low": 0.0, "high": 0.02,
         "verdict": "no clear difference"}])
    text = describe_downstream(effect)
    assert text.startswith("intent:\n  brain-tuned - control    +0.040 [+0.010, +0.070] -> higher\n")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "intent: improves over the control (higher)" in text
    flat = text.replace("\n", " ")
    assert "low-level control task phonemes: no clear difference against the control (no gain, as expected)" in flat
    assert "holds in this run (1 of 1 semantic tasks improve)" in flat
    as_lowlevel = describe_downstream(effect, lowlevel_tasks=("intent",))
    assert "low-level control task intent: higher against the control (it improves too)" in as_lowlevel
    assert "phonemes: does not improve over the control (no clear difference)" in as_lowlevel
    share = control_share(effect)
    assert share.loc["intent"].iloc[-1] == pytest.approx(0.25)
    assert np.isnan(share.loc["phonemes"].iloc[-1])  # the tuned model does not gain: no share
    noisy = effect.copy()
    noisy.loc[(noisy["task"] == "intent") & (noisy["comparison"] == "brain-tuned - pretrained"), "verdict"] = \
        "no clear difference"
    assert np.isnan(control_share(noisy).loc["intent"].iloc[-1])  # a gain within the noise: no share


def test_ablation_table_reads_each_run_at_its_chosen_layer(tmp_path):
    import json

    from bt_tutorial.comparison.effects import ablation_table, load_tuning_ablation

    def row(comparison, difference):
        return {"comparison": comparison, "difference": difference, "low": difference - 0.01,
                "high": difference + 0.01, "verdict": "higher" if difference > 0.01 else "no clear difference"}

    run = {"variant": "lag-ridge", "subject": "UTS02",
           "tuning": {"brain-tuned": {"seconds": 100.0, "initial": {"val_r": 0.0734}},
                      "control": {"seconds": 90.0, "initial": {}}},
           "measures": {"layer": 2, "alignment": {"late_language": {
               "2": [row("brain-tuned - control", 0.04)], "3": [row("brain-tuned - control", -0.5)]}}}}
    path = tmp_path / "ablation.json"
    new = json.loads(json.dumps(run))
    new["variant"], new["tuning"]["brain-tuned"]["initial"] = "my-recipe", {}
    path.write_text(json.dumps({"runs": [new]}))
    unknown = ablation_table(load_tuning_ablation(path)).iloc[0]
    assert unknown["recipe"] == "my-recipe" and np.isnan(unknown["head_start_r"])  # its own name; no r: NaN
    path.write_text(json.dumps({"runs": [run]}))
    table = ablation_table(load_tuning_ablation(path))
    assert table.to_dict("records") == [{
        "recipe": "lag 2 TRs + ridge head (the demo)", "subject": "UTS02", "layer": 2,
        "comparison": "brain-tuned - control",
        "difference": 0.04, "low": 0.03, "high": 0.05, "verdict": "higher", "tuning_s": 190.0,
        "head_start_r": 0.073}]
    assert ablation_table(load_tuning_ablation(path), layer=3)["difference"].tolist() == [-0.5]
    packaged = load_tuning_ablation()
    assert {"command", "date", "machine", "runs"} <= set(packaged)
    assert set(ablation_table(packaged)["comparison"]) >= {"brain-tuned - pretrained", "brain-tuned - control"}
