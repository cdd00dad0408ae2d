"""The full profile on real-layout data (issue 12): the subject setting, NaN voxels, the paper's
training stories. A copy of the tiny twin stands in for ds003020."""

import json
import shutil
import warnings

import h5py
import numpy as np
import pytest

from bt_tutorial.alignment.noise_ceiling import cc_max
from bt_tutorial.config import get_config
from bt_tutorial.dataset.stories import PAPER_TRAIN_STORIES, TEST_STORY, VALIDATION_STORY, train_story_list
from bt_tutorial.profiles import open_dataset

SUBJECT = "UTS01"


@pytest.fixture
def full_root(tiny_twin, tmp_path):
    """The tiny twin where the full profile reads it (``<data home>/ds003020``)."""
    return shutil.copytree(tiny_twin, tmp_path / "ds003020")


def twin_train_stories(root):
    return sorted(set(json.loads((root / "derivative" / "respdict.json").read_text()))
                  - {TEST_STORY, VALIDATION_STORY})


def rename_story(root, old, new):
    """Give a story of the twin another name in every file (as if it were one of the paper's)."""
    respdict_path = root / "derivative" / "respdict.json"
    respdict = json.loads(respdict_path.read_text())
    respdict[new] = respdict.pop(old)
    respdict_path.write_text(json.dumps(respdict))
    for folder, suffix in [("derivative/TextGrids", ".TextGrid"), ("stimuli", ".wav"),
                           (f"derivative/preprocessed_data/{SUBJECT}", ".hf5")]:
        (root / folder / f"{old}{suffix}").rename(root / folder / f"{new}{suffix}")


# ------------------------------------------------------------------ item 6: the subject
def test_subject_comes_from_bt_subject_and_is_checked(monkeypatch):
    monkeypatch.delenv("BT_SUBJECT", raising=False)
    assert get_config().subject == "UTS01" and get_config(profile="full").subject == "UTS01"
    monkeypatch.setenv("BT_SUBJECT", "uts03")
    assert get_config(profile="full").subject == "UTS03"
    assert get_config(profile="full", subject="UTS02").subject == "UTS02"  # an override wins
    monkeypatch.setenv("BT_SUBJECT", "UTS09")
    with pytest.raises(ValueError, match=r"Unknown subject 'UTS09': ds003020 has UTS01, .*UTS08.*BT_SUBJECT"):
        get_config(profile="full")
    monkeypatch.setenv("BT_SUBJECT", "../UTS01")
    with pytest.raises(ValueError, match="Invalid subject.*BT_SUBJECT"):
        get_config()
    monkeypatch.setenv("BT_SUBJECT", "S10")  # a twin may name more subjects: the demo only checks the form
    assert get_config(profile="demo").subject == "S10"


def test_a_subject_the_dataset_lacks_is_named_with_the_subjects_it_has(full_root, monkeypatch):
    monkeypatch.setenv("BT_SUBJECT", "UTS03")
    config = get_config(profile="full", data_home=full_root.parent)
    dataset = open_dataset(config)
    with pytest.raises(FileNotFoundError, match=r"'UTS03'.*subjects here: \['UTS01'\].*BT_SUBJECT.*"
                                                r"python -m bt_tutorial.dataset.download --subject UTS03"):
        dataset.split(config.subject)


# ------------------------------------------------------------------ item 7: NaN voxels
def put_nan(path, key, columns):
    with h5py.File(path, "r+") as f:
        data = f[key][()]
        data[..., columns] = np.nan
        f[key][...] = data


def test_full_profile_zeroes_nan_voxels_with_one_warning_per_new_voxels(full_root):
    dataset = open_dataset(get_config(profile="full", data_home=full_root.parent, train_stories="all"))
    assert dataset.nan_policy == "zero"
    train = twin_train_stories(full_root)
    put_nan(dataset.response_path(SUBJECT, train[0]), "data", [2, 7])
    put_nan(dataset.response_path(SUBJECT, train[1]), "data", [2, 7])
    with pytest.warns(UserWarning, match=rf"{train[0]}.hf5: replaced non-finite values \(NaN or inf\) by 0 in 2 "
                                         rf"voxels \(2 not reported before; 2 of \d+ voxels of {SUBJECT} so far\)"):
        y = dataset.load_responses(SUBJECT, train[0])
    assert (y[:, [2, 7]] == 0).all() and np.isfinite(y).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same voxels in another story: counted, not warned again
        assert (dataset.load_responses(SUBJECT, train[1])[:, [2, 7]] == 0).all()
    put_nan(dataset.response_path(SUBJECT, TEST_STORY), "individual_repeats", [7, 11])
    with pytest.warns(UserWarning, match=r"in 2 voxels \(repeats\) \(1 not reported before; 3 of"):
        repeats = dataset.load_repeats(SUBJECT)
    assert dataset.zeroed_voxels == {(SUBJECT, train[0]): 2, (SUBJECT, train[1]): 2,
                                     (SUBJECT, f"{TEST_STORY} (repeats)"): 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ceiling = cc_max(repeats)  # zero columns: a ceiling of 0, no crash, no warning
    assert ceiling[[7, 11]].tolist() == [0, 0] and np.isfinite(ceiling).all()
    with pytest.warns(UserWarning, match="2 of .* voxels have non-finite values"):
        assert cc_max(dataset.load_repeats(SUBJECT, nan_policy="keep"))[[7, 11]].tolist() == [0, 0]


def test_demo_profile_still_refuses_nan(full_root):
    put_nan(full_root / "derivative" / "preprocessed_data" / SUBJECT / f"{TEST_STORY}.hf5", "data", [1])
    shutil.move(full_root, full_root.parent / "synthetic_twin")
    dataset = open_dataset(get_config(profile="demo", data_home=full_root.parent), ensure=False)
    assert dataset.nan_policy == "raise" and dataset.train_stories == "all"
    with pytest.raises(ValueError, match="non-finite values"):
        dataset.load_responses(SUBJECT, TEST_STORY)


# ------------------------------------------------------------------ item 8: the paper's training stories
def test_full_profile_trains_on_the_paper_stories_and_names_the_missing(full_root):
    train = twin_train_stories(full_root)
    rename_story(full_root, train[0], "souls")  # one of the paper's 24; train[1] is not
    dataset = open_dataset(get_config(profile="full", data_home=full_root.parent))
    assert dataset.train_stories == "paper"
    with pytest.warns(UserWarning, match=r"23 of the paper's 24 training stories have no responses for UTS01.*"
                                         r"'adollshouse'.*Training on the 1 present.*bt_tutorial.dataset.download"):
        split = dataset.split(SUBJECT)
    assert split == {"train": ["souls"], "validation": VALIDATION_STORY, "test": TEST_STORY}
    with warnings.catch_warnings():  # every analysis splits again: said once per dataset
        warnings.simplefilter("error")
        assert dataset.split(SUBJECT) == split
    assert dataset.split(SUBJECT, train_stories="all")["train"] == sorted(["souls", train[1]])
    with pytest.warns(UserWarning, match="1 of the chosen 2 training stories"):
        assert dataset.split(SUBJECT, train_stories=(train[1], "naked"))["train"] == [train[1]]


def test_no_paper_story_at_all_is_an_error_that_names_the_setting(full_root, monkeypatch):
    monkeypatch.setenv("BT_TRAIN_STORIES", "paper")
    dataset = open_dataset(get_config(profile="full", data_home=full_root.parent))
    with pytest.raises(FileNotFoundError, match="None of the paper's 24 training stories.*BT_TRAIN_STORIES=all"):
        dataset.split(SUBJECT)
    monkeypatch.setenv("BT_TRAIN_STORIES", "all")
    assert open_dataset(get_config(profile="full", data_home=full_root.parent)).split(SUBJECT)["train"] == \
        twin_train_stories(full_root)
    monkeypatch.setenv("BT_TRAIN_STORIES", " souls, naked ")
    assert get_config(profile="full").train_stories == ("souls", "naked")


def test_train_story_settings():
    assert len(PAPER_TRAIN_STORIES) == 24 and train_story_list("paper") == PAPER_TRAIN_STORIES
    assert train_story_list("all") is None and train_story_list("a,b") == ("a", "b")
    assert get_config(profile="demo").train_story_setting == "all"
    assert get_config(profile="full").train_story_setting == "paper"
    for bad in ("", f"souls,{TEST_STORY}"):
        with pytest.raises(ValueError, match="BT_TRAIN_STORIES"):
            train_story_list(bad)
    with pytest.raises(ValueError, match="BT_TRAIN_STORIES"):
        get_config(train_stories=" , ")
