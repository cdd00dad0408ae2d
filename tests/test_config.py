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
