"""The closing page: effects kept by chapters 5-7 and read back side by side."""

import pandas as pd
import pytest

from bt_tutorial.comparison.closing import TITLES, effects_path, load_effects, save_effect, verdict_table


def _alignment(control_verdict="higher"):
    return pd.DataFrame({"difference": [0.07, 0.05], "low": [0.06, 0.04], "high": [0.08, 0.06],
                         "p_value": [0.0002, 0.0002], "verdict": ["higher", control_verdict]},
                        index=pd.Index(["brain-tuned - pretrained", "brain-tuned - control"], name="comparison"))


def _downstream(intent="higher", phonemes="no clear difference"):
    rows = []
    for task, v in (("intent", intent), ("phonemes", phonemes)):
        for comparison, verdict in (("brain-tuned - pretrained", "higher"), ("brain-tuned - control", v),
                                    ("control - pretrained", "higher")):
            rows.append({"task": task, "comparison": comparison, "difference": 0.01, "low": 0.0, "high": 0.02,
                         "verdict": verdict})
    return pd.DataFrame(rows)


def test_saved_effects_come_back_and_a_rerun_replaces_its_own_only(tmp_path):
    save_effect(_alignment(), "alignment", tmp_path, "openai/whisper-tiny.en", "UTS01", layer=3)
    save_effect(_downstream(), "downstream", tmp_path, "openai/whisper-tiny.en", "UTS01")
    save_effect(_alignment("no clear difference"), "alignment", tmp_path, "openai/whisper-tiny.en", "UTS01",
                layer=4)
    assert effects_path(tmp_path, "openai/whisper-tiny.en", "UTS01").parent == tmp_path / "effects"
    effects = load_effects(tmp_path, "openai/whisper-tiny.en", "UTS01")
    assert sorted(effects) == ["alignment", "downstream"]
    assert effects["alignment"]["verdict"].tolist() == ["higher", "no clear difference"]
    assert effects["alignment"]["layer"].iloc[0] == 4
    assert load_effects(tmp_path, "openai/whisper-tiny.en", "UTS02") == {}
    with pytest.raises(ValueError, match="effect must be one of"):
        save_effect(_alignment(), "alignmnet", tmp_path, "m", "UTS01")


def test_verdict_table_says_what_holds_what_does_not_and_what_has_not_run(tmp_path):
    """Catches a verdict read from the wrong comparison or a missing chapter shown as a result."""
    save_effect(_alignment(), "alignment", tmp_path, "m", "UTS01")
    save_effect(_downstream(phonemes="higher"), "downstream", tmp_path, "m", "UTS01")
    table = verdict_table(load_effects(tmp_path, "m", "UTS01"), paper={"alignment": "higher in late language"})
    a, b, c = (table.loc[TITLES[k]] for k in ("alignment", "lowlevel", "downstream"))
    assert (a["vs pretrained"], a["vs control"], a["holds in this build"]) == ("higher", "higher", "yes")
    assert a["paper"] == "higher in late language" and c["paper"] == ""
    assert b["holds in this build"] == "not run" and b["vs control"] == "not run"
    assert c["vs control"] == "intent: higher; phonemes: higher"
    assert c["holds in this build"] == "no"  # the low-level task improves too
    save_effect(_alignment("no clear difference"), "alignment", tmp_path, "m", "UTS01")
    assert verdict_table(load_effects(tmp_path, "m", "UTS01")).loc[TITLES["alignment"], "holds in this build"] == "no"
