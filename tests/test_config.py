from pathlib import Path

import pytest

from bt_tutorial.config import get_config


def test_defaults_and_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("BT_PROFILE", raising=False)
    monkeypatch.setenv("BT_DATA", str(tmp_path))
    cfg = get_config()
    assert cfg.profile == "demo"
    assert cfg.dataset_root == tmp_path / "synthetic_twin"
    monkeypatch.setenv("BT_PROFILE", "FULL")
    assert get_config().dataset_root == tmp_path / "ds003020"


def test_overrides_win_over_environment(monkeypatch):
    monkeypatch.setenv("BT_PROFILE", "full")
    assert get_config(profile="demo", data_home="/x").data_home == Path("/x")


def test_unknown_profile_names_the_variable(monkeypatch):
    monkeypatch.setenv("BT_PROFILE", "gpu")
    with pytest.raises(ValueError, match="BT_PROFILE"):
        get_config()


def test_profile_defaults_for_model_and_features(monkeypatch):
    monkeypatch.delenv("BT_MODEL", raising=False)
    monkeypatch.setenv("BT_PROGRESS", "0")
    demo, full = get_config(profile="demo"), get_config(profile="full")
    assert demo.model_name == "whisper-tiny.en" and full.model_name == "openai/whisper-small"
    assert (full.feature_params.context, full.feature_params.stride) == (16.0, 0.1)
    assert demo.feature_params.stride > full.feature_params.stride
    assert demo.progress is False
    monkeypatch.setenv("BT_MODEL", "tiny-hubert")
    assert get_config().model_name == "tiny-hubert"


def test_widgets_switch_reads_bt_interactive(monkeypatch):
    monkeypatch.delenv("BT_INTERACTIVE", raising=False)
    assert get_config().interactive is True
    monkeypatch.setenv("BT_INTERACTIVE", "0")
    assert get_config().interactive is False and get_config().progress in (True, False)


def test_feature_preset_is_chosen_by_bt_features(monkeypatch):
    from bt_tutorial.config import FEATURE_PRESETS, PAPER_PARAMS

    monkeypatch.setenv("BT_PROFILE", "full")
    monkeypatch.delenv("BT_FEATURES", raising=False)
    assert get_config().features is None and get_config().feature_params == PAPER_PARAMS  # the paper's by default
    monkeypatch.setenv("BT_FEATURES", " Fast ")
    cfg = get_config()
    assert cfg.features == "fast" and cfg.feature_params == FEATURE_PRESETS["fast"] != PAPER_PARAMS
    monkeypatch.setenv("BT_FEATURES", "paper")
    assert get_config().feature_params == PAPER_PARAMS
    monkeypatch.setenv("BT_PROFILE", "demo")  # a named preset wins in the demo profile too
    assert get_config().feature_params == PAPER_PARAMS
    monkeypatch.delenv("BT_FEATURES")
    assert get_config().feature_params.context == 8.0  # the demo keeps its own windows otherwise


def test_fast_preset_keeps_the_paper_context_with_a_coarser_stride():
    from bt_tutorial.config import FEATURE_PRESETS, PAPER_PARAMS

    fast = FEATURE_PRESETS["fast"]
    assert fast.context == PAPER_PARAMS.context == 16.0
    assert fast.stride > PAPER_PARAMS.stride and fast.pool == "stride"
    assert FEATURE_PRESETS["paper"] == PAPER_PARAMS


def test_unknown_feature_preset_names_the_variable_and_choices(monkeypatch):
    monkeypatch.setenv("BT_FEATURES", "quick")
    with pytest.raises(ValueError, match="BT_FEATURES") as info:
        get_config()
    assert "BT_FEATURES" in str(info.value) and "paper, fast" in str(info.value) and "'quick'" in str(info.value)


def test_tests_see_a_fresh_data_home_of_their_own():
    """Catches the suite reading the shell's data home (a stale twin there changed what tests saw)."""
    import os
    import tempfile

    home = get_config().data_home
    assert home.name.startswith("bt_tutorial_tests_") and home.parent == Path(tempfile.gettempdir())
    assert not {name for name in os.environ if name.startswith("BT_")} - {"BT_DATA"}  # the shell's BT_* cleared


def test_the_suite_ignores_a_garbage_data_home_and_bt_settings_in_the_shell(tmp_path):
    import os
    import subprocess
    import sys

    user = tmp_path / "user_home"
    (user / "synthetic_twin").mkdir(parents=True)
    (user / "synthetic_twin" / "twin.json").write_text("{garbage")
    env = dict(os.environ, BT_DATA=str(user), BT_PROFILE="full", BT_SUBJECT="UTS09", BT_MODEL="nonsense")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"{__file__}::test_tests_see_a_fresh_data_home_of_their_own"],
                         env=env, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stdout[-2000:]
    assert sorted(p.name for p in user.rglob("*")) == ["synthetic_twin", "twin.json"]


@pytest.mark.parametrize("stories, words", [("a,a,b", "more than once: \\['a'\\]"),
                                            ("../../../../escaped", "not a path"), ("a/b", "not a path")])
def test_duplicate_or_path_like_training_stories_are_refused(monkeypatch, stories, words):
    """Catches a story kept twice (in a CV training fold and its validation fold) or a name that
    writes outside the dataset."""
    monkeypatch.setenv("BT_TRAIN_STORIES", stories)
    with pytest.raises(ValueError, match=words):
        get_config()


@pytest.mark.parametrize("value, on", [("off", False), ("0", False), ("No", False), ("on", True), ("1", True)])
def test_progress_switch_values(monkeypatch, value, on):
    monkeypatch.setenv("BT_PROGRESS", value)
    assert get_config().progress is on
    monkeypatch.setenv("BT_PROGRESS", "disabled")
    with pytest.raises(ValueError, match="BT_PROGRESS='disabled': use 1/0"):
        get_config()


@pytest.mark.parametrize("field, value", [("stride", float("inf")), ("context", float("nan")), ("stride", 0.0)])
def test_feature_params_must_be_finite_and_positive(field, value):
    from bt_tutorial.config import FeatureParams

    with pytest.raises(ValueError, match="finite seconds > 0"):
        FeatureParams(**{field: value})
