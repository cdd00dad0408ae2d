"""Bad data: damaged copies of the tiny twin and degenerate arrays get one clear error, never a wrong result.

Each damaged file must give an error that names the file and says how to replace it
(for the twin: delete its folder), not a traceback from h5py, soundfile or praatio.
"""

import json
import shutil
import warnings

import h5py
import numpy as np
import pytest
import soundfile as sf

from bt_tutorial.dataset.layout import DatasetError
from bt_tutorial.dataset.reader import LebelDataset

SUBJECT, STORY, TEST = "UTS01", "stagefright", "wheretheressmoke"
TWIN_FIX = "synthetic twin: delete the folder"


@pytest.fixture
def twin(tiny_twin, tmp_path):
    return shutil.copytree(tiny_twin, tmp_path / "copy")


def _train_story(ds):
    return ds.split(SUBJECT)["train"][0]


# ------------------------------------------------------------------ non-finite responses
def test_inf_in_responses_is_non_finite_like_nan(twin):
    ds = LebelDataset(twin)
    with h5py.File(ds.response_path(SUBJECT, STORY), "r+") as f:
        f["data"][1, 3] = np.inf
        f["data"][4, 9] = -np.inf
    with pytest.raises(DatasetError, match=r"non-finite values \(NaN or inf\) in 2 voxels \(first: \[3, 9\]\)"):
        ds.load_responses(SUBJECT, STORY)
    with pytest.warns(UserWarning, match=r"replaced non-finite values \(NaN or inf\) by 0 in 2 voxels"):
        y = ds.load_responses(SUBJECT, STORY, nan_policy="zero")
    assert np.isfinite(y).all() and y[1, 3] == 0 and y[4, 9] == 0


def test_inf_in_repeats_and_values_beyond_float32(twin):
    ds = LebelDataset(twin)
    with h5py.File(ds.response_path(SUBJECT, TEST), "r+") as f:
        f["individual_repeats"][2, 0, 5] = 1e300  # finite in the file, inf once read as float32
    with pytest.raises(DatasetError, match=r"non-finite values \(NaN or inf\) in 1 voxels \(first: \[5\]\)"):
        ds.load_repeats(SUBJECT)


# ------------------------------------------------------------------ missing response files
def test_story_with_stimulus_but_no_responses_warns_or_raises(twin):
    ds = LebelDataset(twin)
    story = _train_story(ds)
    path = ds.response_path(SUBJECT, story)
    path.unlink()
    with pytest.warns(UserWarning, match=rf"no responses for {SUBJECT}: \['{story}'\] \(missing {path}\)"):
        split = ds.split(SUBJECT)
    assert story not in split["train"]
    with pytest.raises(FileNotFoundError, match=rf"'{story}'.*{path.name}.*{TWIN_FIX}"):
        LebelDataset(twin, strict=True).split(SUBJECT)
    with pytest.raises(FileNotFoundError, match=story):
        ds.stories(SUBJECT, strict=True)


def test_story_never_downloaded_is_left_out_silently_but_a_partial_download_is_not(twin):
    """ds003020's respdict lists 84 stories; a partial download has files of only some."""
    ds = LebelDataset(twin)
    story = _train_story(ds)
    for path in (ds.response_path(SUBJECT, story), ds.textgrid_path(story), ds.audio_path(story)):
        path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert story not in ds.stories(SUBJECT)
    ds.response_path(SUBJECT, story).with_suffix(".hf5.part").write_bytes(b"\x89HDF")
    with pytest.warns(UserWarning, match=story):
        ds.stories(SUBJECT)


# ------------------------------------------------------------------ audio
def test_audio_shorter_than_the_tr_grid(twin):
    ds = LebelDataset(twin)
    path = ds.audio_path(STORY)
    wav, rate = sf.read(path)
    sf.write(path, wav[: len(wav) // 2], rate)
    needed = ds.tr_times(STORY)[-1] + ds.tr / 2
    match = rf"{path.name} lasts {len(wav) / 2 / rate:.1f} s but the TR grid of {STORY} needs {needed:.1f} s"
    with pytest.raises(DatasetError, match=match + f".*{TWIN_FIX}"):
        ds.load_audio(STORY)
    with pytest.raises(DatasetError, match=match):
        ds.load_story(STORY).load_audio()


def test_audio_four_times_longer_than_the_tr_grid(twin):
    """Catches another story's (or a wrongly declared rate's) audio accepted because only a shortfall
    was checked."""
    ds = LebelDataset(twin)
    path = ds.audio_path(STORY)
    wav, rate = sf.read(path)
    sf.write(path, np.concatenate([wav] * 4), rate)
    with pytest.raises(DatasetError, match=rf"{path.name} lasts .* but the TR grid of {STORY} covers only"):
        ds.load_audio(STORY)


def test_float_audio_of_huge_amplitude_is_refused(twin):
    """Catches a float wav of 1e30 samples accepted (features all 0 or non-finite)."""
    ds = LebelDataset(twin)
    path = ds.audio_path(STORY)
    wav, rate = sf.read(path)
    sf.write(path, (wav * 1e30).astype(np.float32), rate, subtype="FLOAT")
    with pytest.raises(DatasetError, match=rf"{path.name} has samples up to [0-9.]+e\+29.*damaged or not audio"):
        ds.load_audio(STORY)


def test_audio_a_little_short_is_within_tolerance(twin):
    ds = LebelDataset(twin)
    path = ds.audio_path(STORY)
    wav, rate = sf.read(path)
    needed = ds.tr_times(STORY)[-1] + ds.tr / 2
    sf.write(path, wav[: int((needed - 0.5 * ds.tr) * rate)], rate)
    assert ds.load_audio(STORY).duration == pytest.approx(needed - 0.5 * ds.tr, abs=0.01)


@pytest.mark.parametrize("content", [b"", b"hello, not a sound", b"<!DOCTYPE html><html>Access denied</html>"])
def test_unreadable_wav(twin, content):
    ds = LebelDataset(twin)
    ds.audio_path(STORY).write_bytes(content)
    with pytest.raises(DatasetError, match=rf"{STORY}.wav is not a readable sound file.*{TWIN_FIX}"):
        ds.load_audio(STORY)


def test_wav_with_nan_samples(twin):
    ds = LebelDataset(twin)
    path = ds.audio_path(STORY)
    wav, rate = sf.read(path, dtype="float32")
    wav[100] = np.nan
    sf.write(path, wav, rate, subtype="FLOAT")
    with pytest.raises(DatasetError, match=r"1 non-finite \(NaN or inf\) samples"):
        ds.load_audio(STORY)


# ------------------------------------------------------------------ TextGrids
def _rewrite_tiers(path, tiers):
    """Save the TextGrid with only ``tiers``, a list of (old name, new name), in that order."""
    from praatio import textgrid

    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    out = textgrid.Textgrid()
    for old, new in tiers:
        out.addTier(tg.getTier(old).new(name=new))
    out.save(str(path), format="long_textgrid", includeBlankSpaces=True)


@pytest.mark.parametrize("tiers", [
    [("word", "word"), ("phone", "phone")],      # swapped
    [("word", "Words"), ("phone", "PHONES")],    # swapped, other spellings
    [("word", "words"), ("phone", "tier 2")],    # one found by name, the other is what is left
    [("phone", "tier 1"), ("word", "tier 2")],   # no names: LeBel's order
])
def test_tiers_are_found_by_name(twin, tiers):
    ds = LebelDataset(twin)
    words, phones = ds.load_transcript(STORY)
    _rewrite_tiers(ds.textgrid_path(STORY), tiers)
    words2, phones2 = ds.load_transcript(STORY)
    assert words2.labels == words.labels and phones2.labels == phones.labels
    np.testing.assert_array_equal(words2.starts, words.starts)


def test_unnamed_swapped_tiers_are_refused(twin):
    ds = LebelDataset(twin)
    _rewrite_tiers(ds.textgrid_path(STORY), [("word", "tier 1"), ("phone", "tier 2")])
    with pytest.raises(DatasetError, match=rf"{STORY}.TextGrid: tiers.*look swapped"):
        ds.load_transcript(STORY)


def test_transcript_shifted_past_the_scans_is_refused(twin):
    """Catches a transcript 1000 s late (event features all 0) accepted without a word."""
    from praatio import textgrid

    ds = LebelDataset(twin)
    path = ds.textgrid_path(STORY)
    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    out = textgrid.Textgrid()
    for name in tg.tierNames:
        tier = tg.getTier(name)
        out.addTier(tier.new(entries=[(a + 1000, b + 1000, label) for a, b, label in tier.entries],
                             minTimestamp=0, maxTimestamp=tier.maxTimestamp + 1000))
    out.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    with pytest.raises(DatasetError, match=rf"{STORY}.TextGrid: its words run to .* but the TR grid of {STORY}"):
        ds.load_transcript(STORY)


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "one tier"])
def test_unparsable_textgrid_names_the_file(twin, damage):
    ds = LebelDataset(twin)
    path = ds.textgrid_path(STORY)
    text = path.read_text()
    if damage == "one tier":
        _rewrite_tiers(path, [("word", "word")])
    else:
        path.write_text({"empty": "", "garbage": "<html>not found</html>", "truncated": text[: len(text) // 2]}[damage])
    with pytest.raises(DatasetError, match=rf"{STORY}.TextGrid.*{TWIN_FIX}"):
        ds.load_transcript(STORY)


# ------------------------------------------------------------------ HDF5 and JSON
@pytest.mark.parametrize("damage", ["truncated", "empty", "html"])
def test_damaged_hdf5_names_the_file_and_the_fix(twin, damage):
    ds = LebelDataset(twin)
    path = ds.response_path(SUBJECT, STORY)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "empty": b"",
                      "html": b"<!DOCTYPE html><html><body>Access Denied</body></html>"}[damage])
    with pytest.raises(DatasetError, match=rf"{path.name} cannot be read as HDF5 'data'.*{TWIN_FIX}"):
        ds.load_responses(SUBJECT, STORY)


def test_hdf5_with_one_repeat_or_wrong_shape(twin):
    ds = LebelDataset(twin)
    with h5py.File(ds.response_path(SUBJECT, TEST), "r+") as f:
        reps = f["individual_repeats"][:1]
        del f["individual_repeats"]
        f["individual_repeats"] = reps
    with pytest.raises(DatasetError, match="holds 1 repeat; a noise ceiling needs at least 2"):
        ds.load_repeats(SUBJECT)
    with h5py.File(ds.response_path(SUBJECT, STORY), "r+") as f:
        del f["data"]
        f["data"] = np.zeros(12)
    with pytest.raises(DatasetError, match=r"'data' should be \(TRs, voxels\), got shape \(12,\)"):
        ds.load_responses(SUBJECT, STORY)


@pytest.mark.parametrize("content,match", [
    ('{"stagefright": 32,', "is not valid JSON"),
    ("", "is not valid JSON"),
    ('["stagefright"]', "should map stories to TR counts, got a list"),
    ('{"stagefright": "32"}', "not integers above 20 and at most 43200 \\(a day of scans\\), e.g. 'stagefright': '32'"),
    ('{"stagefright": 32.5}', "not integers above 20.*e.g. 'stagefright': 32.5"),
    ('{"stagefright": null}', "not integers above 20"),
    ('{"stagefright": true}', "not integers above 20"),
    ('{"stagefright": 12}', "not integers above 20"),
    ('{"stagefright": 1000000000000}', "not integers above 20 and at most 43200"),
])
def test_bad_respdict(twin, content, match):
    (twin / "derivative" / "respdict.json").write_text(content)
    with pytest.raises(DatasetError, match=rf"respdict.json.*{match}.*{TWIN_FIX}"):
        LebelDataset(twin).respdict


def test_integral_floats_in_respdict_are_accepted(twin):
    path = twin / "derivative" / "respdict.json"
    respdict = json.loads(path.read_text())
    path.write_text(json.dumps({k: float(v) for k, v in respdict.items()}))
    assert LebelDataset(twin).respdict == respdict


def test_a_byte_order_mark_in_respdict_is_read(twin):
    """Catches a BOM (as some editors save JSON) reported as a damaged file to download again."""
    path = twin / "derivative" / "respdict.json"
    respdict = json.loads(path.read_text())
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(respdict).encode())
    assert LebelDataset(twin).respdict == respdict


def test_an_hdf5_header_declaring_gigabytes_is_refused_before_reading(twin):
    """Catches a MemoryError (82 GiB) from a damaged header."""
    ds = LebelDataset(twin)
    with h5py.File(ds.response_path(SUBJECT, STORY), "r+") as f:
        del f["data"]
        f.create_dataset("data", shape=(11, 2_000_000_000), dtype="f4")  # allocated lazily, never written
    with pytest.raises(DatasetError, match=r"'data' declares shape \(11, 2000000000\), 82 GiB as float32"):
        ds.load_responses(SUBJECT, STORY)


def test_real_data_hint_says_how_to_download_again(twin):
    shutil.rmtree(twin / "ground_truth")
    ds = LebelDataset(twin)
    path = ds.response_path(SUBJECT, STORY)
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match=rf"delete {path} and run `python -m bt_tutorial\.dataset\.download"):
        ds.load_responses(SUBJECT, STORY)


# ------------------------------------------------------------------ callers of pearson_r
def test_recovery_table_means_leave_out_constant_features(monkeypatch):
    from bt_tutorial.synthetic import recovery

    monkeypatch.setattr(recovery, "truth_rows", lambda *a: {})
    monkeypatch.setattr(recovery, "recovery_scores", lambda *a, **k: {0: np.array([0.2, np.nan, 0.4]),
                                                                      1: np.array([np.nan, np.nan])})
    table = recovery.recovery_table({"m": {}}, None, ["a"], "b", sets=("semantic",))
    assert table["mean_r"].iloc[0] == pytest.approx(0.3) and np.isnan(table["mean_r"].iloc[1])


def test_percent_drop_compares_the_same_voxels():
    from bt_tutorial.lowlevel.impact import percent_drop

    masks = {"roi": np.array([True, True])}
    # the second voxel has no r on the original features: it must not enter the residual mean either
    drops = percent_drop(np.array([0.5, np.nan]), np.array([0.25, 0.9]), masks)
    assert drops["roi"] == pytest.approx(50.0)


def test_story_missing_from_respdict_damaged_truth_and_mask_name_the_file(twin, tmp_path):
    from bt_tutorial.synthetic.truth import load_ground_truth

    ds = LebelDataset(twin)
    with pytest.raises(DatasetError, match="'nosuchstory' is not in .*respdict.json.*" + TWIN_FIX):
        ds.tr_times("nosuchstory")
    truth = twin / "ground_truth" / f"{SUBJECT}.npz"
    truth.write_bytes(truth.read_bytes()[:100])  # truncated
    with pytest.raises(DatasetError, match=f"Cannot read the ground truth {truth}.*" + TWIN_FIX):
        load_ground_truth(twin, SUBJECT)
    (tmp_path / "real" / "derivative").mkdir(parents=True)
    real = LebelDataset(tmp_path / "real")
    mask = real.mask_path(SUBJECT)
    mask.parent.mkdir(parents=True, exist_ok=True)
    mask.write_text("<html>captive portal</html>")
    with pytest.raises(DatasetError, match=r"Cannot read the cortical mask .*python -m bt_tutorial\.dataset\.download"):
        real.voxel_columns(SUBJECT)


@pytest.mark.parametrize("subject, story", [("../../../x/derivative/preprocessed_data/UTS01", STORY),
                                            (SUBJECT, "../../escaped"), (SUBJECT, "a/b")])
def test_path_like_subjects_and_stories_are_refused(twin, subject, story):
    """Catches `tune --subject '../../../x/...'` training on another dataset, or a story name that
    reads or writes outside the dataset."""
    ds = LebelDataset(twin)
    with pytest.raises(ValueError, match="not a path"):
        ds.response_path(subject, story)
    with pytest.raises(ValueError, match="not a path"):
        ds.load_responses(subject, story)
