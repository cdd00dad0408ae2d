"""What each profile plugs in: dataset, ROI masks, downstream tasks; and the small shared helpers."""

import numpy as np
import pytest

import bt_tutorial.downstream.real as downstream_real
import bt_tutorial.downstream.timit as downstream_timit
import bt_tutorial.synthetic.tasks as synthetic_tasks
import bt_tutorial.synthetic.twin as synthetic_twin
from bt_tutorial.alignment.models import load_speech_model, pick_device
from bt_tutorial.config import get_config, model_folder_name, resolve_data_home
from bt_tutorial.dataset.atlas import RoiFileError, default_roi_path, save_roi_masks
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.timing import zscore
from bt_tutorial.profiles import open_dataset, profile_downstream_tasks, profile_roi_masks
from bt_tutorial.synthetic.truth import load_ground_truth, twin_roi_masks


def test_open_dataset_generates_the_twin_only_in_the_demo_profile(monkeypatch, tmp_path):
    for name in ("synthetic_twin", "ds003020"):
        (tmp_path / name / "derivative").mkdir(parents=True)
    calls = []
    monkeypatch.setattr(synthetic_twin, "ensure_twin", lambda root, progress=True: calls.append(root))
    demo = get_config(profile="demo", data_home=tmp_path)
    assert open_dataset(demo).root == tmp_path / "synthetic_twin" and calls == [tmp_path / "synthetic_twin"]
    assert open_dataset(demo, ensure=False).root == tmp_path / "synthetic_twin" and len(calls) == 1
    full = open_dataset(get_config(profile="full", data_home=tmp_path))
    assert full.root == tmp_path / "ds003020" and len(calls) == 1
    assert full.strict and not open_dataset(demo).strict  # a missing response file: an error, a warning


def test_profile_roi_masks_demo_reads_the_twin_and_checks_the_voxel_count(tiny_twin):
    ds = LebelDataset(tiny_twin)
    n = len(load_ground_truth(tiny_twin, "UTS01")["roi"])
    masks = profile_roi_masks(ds, "UTS01", n, config=get_config(profile="demo"))
    expected = twin_roi_masks(tiny_twin, "UTS01")
    assert masks.keys() == expected.keys() and "late_language_L" in masks
    assert all(np.array_equal(masks[k], expected[k]) for k in masks)
    assert "late_language_L" not in profile_roi_masks(ds, "UTS01", n, hemispheres=False,
                                                      config=get_config(profile="demo"))
    with pytest.raises(ValueError, match=f"cover {n} voxels, the responses {n + 1}"):
        profile_roi_masks(ds, "UTS01", n + 1, config=get_config(profile="demo"))


def test_profile_roi_masks_full_reads_the_atlas_file(tmp_path):
    (tmp_path / "derivative").mkdir()
    ds = LebelDataset(tmp_path)
    with pytest.raises(RoiFileError, match="python -m bt_tutorial.dataset.roi_build"):
        profile_roi_masks(ds, "UTS02", 6, config=get_config(profile="full"))
    rois = {"late_language": np.array([1, 4]), "late_language_L": np.array([1]), "late_language_R": np.array([4])}
    save_roi_masks(default_roi_path(tmp_path, "UTS02"), rois, 6, "UTS02", hemi=np.array([0, 0, 0, 1, 1, 1]))
    masks = profile_roi_masks(ds, "UTS02", 6, config=get_config(profile="full"))
    assert {k: np.flatnonzero(v).tolist() for k, v in masks.items()} == {k: v.tolist() for k, v in rois.items()}
    with pytest.raises(RoiFileError, match="for 6 voxels, but the responses have 7"):
        profile_roi_masks(ds, "UTS02", 7, config=get_config(profile="full"))


class _Task:
    def __init__(self, name):
        self.name = name


def test_profile_downstream_tasks_per_profile(monkeypatch, tmp_path):
    monkeypatch.setattr(synthetic_tasks, "ensure_task", lambda name, data_home, progress: (name, data_home))
    demo = profile_downstream_tasks(get_config(profile="demo", data_home=tmp_path))
    assert list(demo) == list(synthetic_tasks.SYNTHETIC_TASKS) and demo["intent"] == ("intent", tmp_path)
    asked = {}
    for loader in ("load_speech_commands", "load_slurp", "load_crema_d"):
        def fake(root, loader=loader, **kw):
            asked[loader] = kw
            return loader, root, kw["download"]
        monkeypatch.setattr(downstream_real, loader, fake)
    monkeypatch.setattr(downstream_timit, "load_timit", lambda root, kind, max_clips: _Task(f"timit_{kind}"))
    monkeypatch.setenv("BT_DATA", str(tmp_path / "elsewhere"))  # the config's data home wins
    full = get_config(profile="full", data_home=tmp_path)
    home = tmp_path / "downstream"
    assert profile_downstream_tasks(full, timit_root=None) == {
        "speech_commands": ("load_speech_commands", home / "speech_commands", True),
        "slurp": ("load_slurp", home / "slurp", True), "crema_d": ("load_crema_d", home / "crema_d", True)}
    assert asked["load_slurp"]["label"] == "action"  # the authors' SLURP label
    assert asked["load_slurp"]["max_per_class"] == 100 and asked["load_crema_d"]["max_per_class"] is None
    profile_downstream_tasks(full, timit_root=None, sizes=None)
    assert all(kw["max_per_class"] is None for kw in asked.values())  # every clip, as the authors
    with_timit = profile_downstream_tasks(full, timit_root=tmp_path)
    assert list(with_timit)[3:] == ["timit_phonemes", "timit_sentence_type"]


def test_shared_helpers(monkeypatch, tmp_path):
    assert model_folder_name("openai/whisper-small") == "openai--whisper-small"
    assert model_folder_name("/content/drive/run/backbone/") == "content--drive--run--backbone"
    assert len(model_folder_name("/x" * 100)) == 60
    monkeypatch.setenv("BT_DATA", str(tmp_path))
    assert resolve_data_home() == tmp_path and resolve_data_home("~") != tmp_path
    assert pick_device("cpu") == "cpu"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert pick_device() == "cuda"
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert pick_device() == "cpu"
    x = np.array([[1.0, 2.0, 5.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(zscore(x)[:, 0], [-1, 1])
    assert np.all(zscore(x)[:, 1] == 0)  # constant column
    np.testing.assert_allclose(zscore(x, axis=1).mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(zscore(x, axis=1).std(axis=1), 1)


@pytest.mark.parametrize("name,size", [("tiny-wav2vec2", 32), ("tiny-whisper", 32)])
def test_hidden_size_is_the_width_of_every_state(name, size):
    model = load_speech_model(name)
    assert model.hidden_size == size
    states = model.hidden_states(model.prepare(np.zeros((1, 3520), np.float32)))
    assert all(s.shape[-1] == model.hidden_size for s in states)
