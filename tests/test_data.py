"""The ds003020 reader, on the tiny twin and on damaged copies of it."""

import json
import re
import shutil

import h5py
import numpy as np
import pytest
import soundfile as sf

from bt_tutorial.dataset.layout import DatasetError
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.stimulus import BAD_WORDS
from bt_tutorial.lowlevel.phones import ARPABET
from bt_tutorial.profiles import open_dataset

SUBJECT = "UTS01"


@pytest.fixture
def twin_copy(tiny_twin, tmp_path):
    return shutil.copytree(tiny_twin, tmp_path / "copy")


def test_listing_and_split(tiny_twin):
    ds = LebelDataset(tiny_twin)
    assert ds.subjects == [SUBJECT]
    split = ds.split(SUBJECT)
    assert split["test"] == "wheretheressmoke" and split["validation"] == "stagefright"
    assert sorted(split["train"] + ["stagefright", "wheretheressmoke"]) == ds.stories(SUBJECT)


def test_responses_are_float32_with_respdict_minus_20_rows(tiny_twin):
    ds = LebelDataset(tiny_twin)
    for story in ds.stories(SUBJECT):
        y = ds.load_responses(SUBJECT, story)
        assert y.dtype == np.float32
        assert y.shape[0] == ds.respdict[story] - 20 == len(ds.tr_times(story))
    reps = ds.load_repeats(SUBJECT)
    assert reps.shape[0] == 4 and reps.shape[1:] == ds.load_responses(SUBJECT, "wheretheressmoke").shape


def test_transcript_drops_silences_and_stress(tiny_twin):
    ds = LebelDataset(tiny_twin)
    words, phones = ds.load_transcript("stagefright")
    assert len(words) > 20 and not set(words.labels) & BAD_WORDS
    assert set(phones.labels) <= set(ARPABET)
    assert np.all(np.diff(words.starts) > 0) and np.all(words.ends > words.starts)
    # the raw TextGrid has stress digits and "sp" silences that the reader removed
    text = ds.textgrid_path("stagefright").read_text()
    assert '"sp"' in text and re.search(r'"[A-Z]+[012]"', text)


def test_story_object_and_audio(tiny_twin):
    story = LebelDataset(tiny_twin).load_story("stagefright")
    audio = story.load_audio()
    assert audio.sample_rate == 16000 and audio.source_rate == 44100
    assert audio.waveform.dtype == np.float32
    assert story.words.ends[-1] <= audio.duration
    assert story.tr_times.shape == (story.n_scan_trs - 20,)


def test_open_dataset_follows_the_profile(tiny_twin, tmp_path):
    from bt_tutorial.config import Config

    shutil.copytree(tiny_twin, tmp_path / "synthetic_twin")
    ds = open_dataset(Config(profile="demo", data_home=tmp_path), ensure=False)
    assert ds.root == tmp_path / "synthetic_twin" and ds.subjects == [SUBJECT]
    with pytest.raises(FileNotFoundError, match=r"ds003020.*python -m bt_tutorial\.dataset\.download"):
        open_dataset(Config(profile="full", data_home=tmp_path))


def test_missing_file_names_path_and_fix(twin_copy):
    (twin_copy / "stimuli" / "stagefright.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"stagefright.wav.*python -m bt_tutorial\.synthetic"):
        LebelDataset(twin_copy).load_audio("stagefright")


def test_missing_root_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python -m bt_tutorial\.dataset\.download"):
        LebelDataset(tmp_path / "nowhere")


def test_hdf5_without_data_key(twin_copy):
    path = LebelDataset(twin_copy).response_path(SUBJECT, "stagefright")
    with h5py.File(path, "w") as f:
        f.create_dataset("other", data=np.zeros((3, 3)))
    with pytest.raises(DatasetError, match="no dataset 'data'.*other"):
        LebelDataset(twin_copy).load_responses(SUBJECT, "stagefright")


def test_rows_disagreeing_with_respdict(twin_copy):
    path = twin_copy / "derivative" / "respdict.json"
    respdict = json.loads(path.read_text())
    rows = respdict["stagefright"] - 20
    respdict["stagefright"] += 3
    path.write_text(json.dumps(respdict))
    with pytest.raises(DatasetError, match=f"stagefright have {rows} rows.*{rows + 3 + 20} TRs"):
        LebelDataset(twin_copy).load_responses(SUBJECT, "stagefright")


def test_nan_policies(twin_copy):
    ds = LebelDataset(twin_copy)
    path = ds.response_path(SUBJECT, "stagefright")
    with h5py.File(path, "r+") as f:
        f["data"][2, 7] = np.nan
    with pytest.raises(DatasetError, match=r"non-finite values \(NaN or inf\) in 1 voxels.*nan_policy='zero'"):
        ds.load_responses(SUBJECT, "stagefright")
    with pytest.warns(UserWarning, match="1 voxels"):
        y = ds.load_responses(SUBJECT, "stagefright", nan_policy="zero")
    assert y[2, 7] == 0 and np.isfinite(y).all()
    assert np.isnan(ds.load_responses(SUBJECT, "stagefright", nan_policy="keep")[2, 7])
    with pytest.raises(ValueError, match="nan_policy"):
        ds.load_responses(SUBJECT, "stagefright", nan_policy="drop")


def test_other_sample_rate_is_resampled_and_reported(twin_copy):
    ds = LebelDataset(twin_copy)
    path = ds.audio_path("stagefright")
    wav, rate = sf.read(path)
    sf.write(path, wav[::2], rate // 2)
    audio = ds.load_audio("stagefright")
    assert audio.source_rate == 22050 and audio.sample_rate == 16000
    assert audio.duration == pytest.approx(len(wav) / rate, abs=0.01)


def test_unknown_subject_and_missing_test_story(twin_copy):
    ds = LebelDataset(twin_copy)
    with pytest.raises(FileNotFoundError, match="UTS09.*subjects here"):
        ds.stories("UTS09")
    ds.response_path(SUBJECT, "wheretheressmoke").unlink()
    with pytest.warns(UserWarning, match="wheretheressmoke"), pytest.raises(FileNotFoundError,
                                                                           match="wheretheressmoke"):
        ds.split(SUBJECT)


def test_tree_shows_the_layout(tiny_twin):
    text = LebelDataset(tiny_twin).tree(max_files=1)
    assert "derivative/" in text and "respdict.json" in text and "more files" in text
