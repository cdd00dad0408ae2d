"""The offline stand-ins of ``tools/full_profile_book.py`` (chapters 1-7 in the full profile):
chapter 7's real loaders read its miniature datasets from the data home without any network."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from bt_tutorial.config import get_config
from bt_tutorial.profiles import profile_downstream_tasks

TOOL = Path(__file__).resolve().parents[1] / "tools" / "full_profile_book.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("full_profile_book", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chapter_7_reads_the_miniature_datasets_offline(tmp_path, monkeypatch):
    tool = load_tool()
    tool.write_downstream_fakes(tmp_path, n_speakers=5, n_clips=2)
    for name, value in tool.offline_env(tmp_path, "http://127.0.0.1:9", None).items():
        monkeypatch.setenv(name, value)
    tasks = profile_downstream_tasks(get_config())
    assert get_config().profile == "full" and list(tasks) == ["speech_commands", "slurp", "crema_d"]
    for name, task in tasks.items():
        assert set(task.split) == {"train", "test"}, name
        assert not set(task.groups[task.split == "train"]) & set(task.groups[task.split == "test"]), name
        assert len(np.unique(task.labels)) == len(task.label_names) >= 3, name
        assert all(len(w) == 16000 for w in task.waveforms), name


def test_offline_env_points_the_hub_proxies_and_dataset_url_at_localhost():
    env = load_tool().offline_env(Path("/x"), "http://127.0.0.1:8000", "fast")
    assert env["BT_PROFILE"] == "full" and env["BT_MODEL"] == "tiny-wav2vec2" and env["BT_FEATURES"] == "fast"
    assert env["https_proxy"] == env["http_proxy"] == "http://127.0.0.1:9" and env["HF_HUB_OFFLINE"] == "1"
    assert "127.0.0.1" in env["no_proxy"] and env["BT_DATASET_URL"] == "http://127.0.0.1:8000"


def test_the_mirrors_registry_lists_every_served_file_with_its_size_and_md5(tmp_path):
    """Catches chapter 1's download refused by the shipped ds003020 registry (the twin is not the
    snapshot): the tool points the chapters at a registry of the mirror's own files."""
    from bt_tutorial.dataset.file_formats import file_md5, load_registry

    tool = load_tool()
    mirror = tmp_path / "mirror"
    (mirror / "stimuli").mkdir(parents=True)
    (mirror / "stimuli" / "a.wav").write_bytes(b"RIFF" + bytes(10))
    (mirror / "respdict.json").write_text("{}")
    registry = load_registry(tool.write_registry(mirror, tmp_path / "md5.csv"))
    assert set(registry) == {"stimuli/a.wav", "respdict.json"}
    assert registry["stimuli/a.wav"].size == 14 and registry["stimuli/a.wav"].md5 == file_md5(mirror / "stimuli" / "a.wav")
    env = tool.offline_env(tmp_path, "http://127.0.0.1:8000", None, tmp_path / "md5.csv")
    assert env["BT_DATASET_REGISTRY"] == str(tmp_path / "md5.csv")
    assert tool.offline_env(tmp_path, "http://127.0.0.1:8000", None)["BT_DATASET_REGISTRY"] == "none"
