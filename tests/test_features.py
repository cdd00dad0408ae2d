import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bt_tutorial.alignment import features as F
from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.timing import to_response_rows

PARAMS = F.FeatureParams(context=2.0, stride=0.5, batch_size=4)


@pytest.mark.parametrize("name", ["tiny-wav2vec2", "tiny-whisper"])
def test_features_are_causal(name):
    model = load_speech_model(name)
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000 * 6)).astype(np.float32)
    changed = wav.copy()
    changed[16000 * 3 + 1:] = np.random.default_rng(1).standard_normal(changed.size - 16000 * 3 - 1)
    times, a = F.extract_features(model, wav, [1, 3], PARAMS, progress=False)
    _, b = F.extract_features(model, changed, [1, 3], PARAMS, progress=False)
    past = times <= 3.0
    for k in (1, 3):
        assert np.allclose(a[k][past], b[k][past], atol=1e-5)
        assert not np.allclose(a[k][~past], b[k][~past], atol=1e-3)


def test_window_times_and_zero_padding_before_onset():
    assert np.allclose(F.window_end_times(2.0, 0.5), [0.5, 1.0, 1.5, 2.0])
    wav = np.arange(16000 * 3, dtype=np.float32)
    w = F.audio_windows(wav, np.array([0.5, 3.0]), 1.0)
    assert w.shape == (2, 16000)
    assert np.all(w[0, :8000] == 0) and np.array_equal(w[0, 8000:], wav[:8000])
    assert np.array_equal(w[1], wav[-16000:])


def test_invalid_params():
    with pytest.raises(ValueError, match="0.02"):
        F.FeatureParams(context=1.01)
    with pytest.raises(ValueError):
        F.FeatureParams(stride=0)


def test_story_features_are_cached_and_extended(tiny_twin, tmp_path, monkeypatch):
    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-hubert")
    times, first = F.story_features(model, ds, "stagefright", [1], PARAMS, cache_dir=tmp_path, progress=False)
    assert first[1].shape == (len(times), 32)
    calls = []
    real = F.extract_features
    monkeypatch.setattr(F, "extract_features", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    _, again = F.story_features(model, ds, "stagefright", [1], PARAMS, cache_dir=tmp_path, progress=False)
    assert calls == [] and np.array_equal(again[1], first[1])
    _, more = F.story_features(model, ds, "stagefright", [1, 2], PARAMS, cache_dir=tmp_path, progress=False)
    assert calls == [[1, 2]] and np.allclose(more[1], first[1], atol=1e-6)
    F.story_features(model, ds, "stagefright", [2], PARAMS, cache_dir=tmp_path, progress=False)
    assert len(calls) == 1
    other = F.FeatureParams(context=2.0, stride=1.0)
    F.story_features(model, ds, "stagefright", [2], other, cache_dir=tmp_path, progress=False)
    assert len(calls) == 2


@pytest.mark.parametrize("damage", ["truncated", "nan"])
def test_a_damaged_cache_chunk_is_computed_again(tiny_twin, tmp_path, damage):
    """Catches a truncated chunk raising BadZipFile on every later run, or NaN features read back."""
    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-hubert")
    _, first = F.story_features(model, ds, "stagefright", [1], PARAMS, cache_dir=tmp_path, progress=False)
    chunks = sorted(p for p in tmp_path.rglob("*.npz"))
    assert chunks
    if damage == "truncated":
        chunks[0].write_bytes(chunks[0].read_bytes()[:100])
    else:
        with np.load(chunks[0]) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["layer_1"][0, 0] = np.nan
        with open(chunks[0], "wb") as f:
            np.savez(f, **arrays)
    why = r"is damaged \((BadZipFile|EOFError|OSError|ValueError)\)" if damage == "truncated" else \
        r"has non-finite values \(layers \[1\]\)"
    with pytest.warns(UserWarning, match=f"{chunks[0].name} {why}: it is computed again") as caught:
        _, again = F.story_features(model, ds, "stagefright", [1], PARAMS, cache_dir=tmp_path, progress=False)
    np.testing.assert_allclose(again[1], first[1], atol=1e-6)
    assert caught[0].filename == __file__  # the warning points at the reader's call


class _PlantedModel:
    """Stands in for a SpeechModel: layer k's one frame is (k + 1) * [window's last sample, window's mean]."""

    name, hidden_size, device = "planted/model", 2, torch.device("cpu")

    def __init__(self):
        self.calls = 0

    def fingerprint(self):
        return "planted"

    def prepare(self, windows):
        return torch.from_numpy(np.asarray(windows, np.float32))

    def hidden_states(self, inputs, max_layer=None):
        self.calls += 1
        state = torch.stack([inputs[:, -1], inputs.mean(1)], dim=1)[:, None, :]
        return [(k + 1) * state for k in range((max_layer or 0) + 1)]

    def last_audio_frame(self, n_samples):
        return 0  # its one frame


class _StubDataset:
    """Stands in for a LebelDataset: 60 s of known audio, 30 scanner TRs; records the (story, rate) asked."""

    def __init__(self, tr=2.0, seed=0):
        self.tr, self.asked = tr, []
        self.waveform = np.random.default_rng(seed).standard_normal(16000 * 60).astype(np.float32)

    def load_audio(self, story, rate):  # no default rate: the caller must ask for 16 kHz
        self.asked.append((story, rate))
        return SimpleNamespace(waveform=self.waveform)

    def n_scan_trs(self, story):
        return 30


def test_rows_without_a_cache_match_the_cached_rows_and_write_nothing(tmp_path, monkeypatch):
    """Catches story_rows(cache_dir=False) passing a wrong argument on (or caching anyway), or a TR ignored."""
    monkeypatch.setenv("BT_DATA", str(tmp_path / "home"))
    model = _PlantedModel()
    for tr in (2.0, 1.5):
        ds = _StubDataset(tr=tr)
        times, feats = F.story_features(model, ds, "story_a", [0, 2], PARAMS, cache_dir=False, progress=False)
        stops = np.round(times * 16000).astype(int)
        np.testing.assert_array_equal(feats[2][:, 0], 3 * ds.waveform[stops - 1])  # planted: 3 x last sample
        expected = {k: to_response_rows(feats[k], times, 30, "story_a", tr=tr) for k in (0, 2)}
        plain = F.story_rows(model, ds, "story_a", [2, 0], PARAMS, cache_dir=False, progress=False)
        assert not (tmp_path / "home").exists()  # nothing cached, not even in the data home
        cached = F.story_rows(model, ds, "story_a", [2, 0], PARAMS, n_response_rows=10,
                              cache_dir=tmp_path / f"tr{tr}", progress=False)
        for k in (0, 2):
            assert plain[k].dtype == np.float32 and plain[k].shape == (10, 2)
            np.testing.assert_array_equal(plain[k], expected[k])
            np.testing.assert_array_equal(cached[k], expected[k])
        assert set(ds.asked) == {("story_a", 16000)}
    assert not np.allclose(expected[0], to_response_rows(feats[0], times, 30, "story_a", tr=2.0))  # tr matters


def test_a_row_count_mismatch_names_the_story_before_anything_is_cached(tmp_path):
    """Catches the story's name or the expected row count not reaching to_response_rows (cached or not)."""
    model, ds = _PlantedModel(), _StubDataset()
    for cache_dir in (False, tmp_path):
        with pytest.raises(ValueError, match="Story story_a: features give 10 TR rows but the responses have 11; "
                                             "respdict says 30"):
            F.story_rows(model, ds, "story_a", [0], PARAMS, n_response_rows=11, cache_dir=cache_dir,
                         progress=False)
    assert not list(tmp_path.rglob("rows_*.npz"))


def test_cache_folder_is_named_by_story_audio_and_dtype_and_shared_by_rows(tmp_path):
    """Catches the story, the audio hash or the dtype left out of the cache key, which reuses stale features."""
    model, ds = _PlantedModel(), _StubDataset()
    _, first = F.story_features(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path, progress=False)
    assert model.calls == 30  # 120 windows in batches of 4
    rows = F.story_rows(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path, progress=False, keep_windows=True)
    assert model.calls == 30  # the rows are made from the windows story_features cached
    audio_hash = hashlib.sha1(ds.waveform.tobytes()).hexdigest()[:10]
    folders = [p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*")]
    assert folders == [f"planted--model-planted/story_a_{audio_hash}_c2_s0.5_float32_v{F.CACHE_VERSION}"]
    ds.waveform = ds.waveform[::-1].copy()  # the audio was replaced
    _, other = F.story_features(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path, progress=False)
    assert model.calls == 60 and not np.allclose(other[0], first[0])
    new_rows = F.story_rows(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path, progress=False)
    assert not np.allclose(new_rows[0], rows[0])
    assert set(ds.asked) == {("story_a", 16000)}


def test_the_requested_dtype_reaches_the_model_and_names_the_cache(tmp_path, monkeypatch):
    """Catches a dtype asked for (bf16 on the CPU) dropped on the way to extract_features or the cache key."""
    seen = []
    real = F.extract_features
    monkeypatch.setattr(F, "extract_features",
                        lambda *a, **k: seen.append(a[4] if len(a) > 4 else k.get("dtype")) or real(*a, **k))
    model, ds = _PlantedModel(), _StubDataset()
    kw = dict(dtype=torch.bfloat16, progress=False)
    F.story_features(model, ds, "story_a", [0], PARAMS, cache_dir=False, **kw)
    F.story_features(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path / "a", **kw)
    F.story_rows(model, ds, "story_a", [0], PARAMS, cache_dir=False, **kw)
    F.story_rows(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path / "b", **kw)
    assert seen and all(d is torch.bfloat16 for d in seen), seen
    names = {p.name for p in tmp_path.glob("*/*/*")}
    assert len(names) == 1 and "_bfloat16_v" in names.pop()


def test_progress_bar_counts_every_window_once(tmp_path, monkeypatch, capsys):
    """Catches the bar hidden by default, shown when progress=False, mislabelled, or miscounting cached chunks."""
    monkeypatch.setattr(F, "CHUNK_BATCHES", 5)  # 120 windows in chunks of 20
    model, ds = _PlantedModel(), _StubDataset()

    def bar_of(err):
        bar = err.strip().split("\r")[-1].strip()  # the bar's final state
        assert bar.startswith("planted/model features: 100%|") and "| 120/120 [" in bar and "window/s]" in bar, err
        return bar

    for i, func in enumerate((F.story_features, F.story_rows)):
        for cache_dir in (False, tmp_path / f"{i}_quiet"):
            func(model, ds, "s", [0], PARAMS, cache_dir=cache_dir, progress=False)
            assert capsys.readouterr().err == ""
        for cache_dir in (False, tmp_path / f"{i}_shown"):
            func(model, ds, "s", [0], PARAMS, cache_dir=cache_dir)  # the default shows a bar
            bar_of(capsys.readouterr().err)
    F.story_features(model, ds, "s", [0], PARAMS, cache_dir=tmp_path / "0_shown")  # all chunks read back
    bar_of(capsys.readouterr().err)
    F.story_features(model, ds, "s", [0, 1], PARAMS, cache_dir=tmp_path / "0_shown")  # all chunks extended
    bar_of(capsys.readouterr().err)


def test_rows_written_delete_window_chunks_even_if_another_process_deleted_some(tmp_path, monkeypatch):
    """Catches chunk deletion failing when a concurrent run of the same story already removed a chunk."""
    real_glob = Path.glob

    def glob_then_vanish(self, pattern):
        for p in real_glob(self, pattern):
            if pattern == "windows_*.npz":
                p.unlink()  # another process got there first
            yield p

    monkeypatch.setattr(Path, "glob", glob_then_vanish)
    rows = F.story_rows(_PlantedModel(), _StubDataset(), "s", [0], PARAMS, cache_dir=tmp_path, progress=False)
    assert rows[0].shape == (10, 2)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.rglob("*.npz")] == ["rows_30trs_tr2.npz"]


def test_cache_size_of_a_story_shorter_than_the_trimmed_trs_has_no_rows():
    """Catches a story shorter than 20 TRs counted as one response row."""
    sizes = F.feature_cache_bytes(30.0, 8, 2, PARAMS, tr=2.0)
    assert sizes == {"windows": 60 * 64, "rows": 0}
    assert F.feature_cache_bytes(50.0, 8, 2, PARAMS, tr=2.0)["rows"] == 5 * 64


class _FramesModel(_PlantedModel):
    """Frame f of every window holds f, times (layer + 1); the window's audio ends 3 frames before its last."""

    name = "planted/frames"

    def hidden_states(self, inputs, max_layer=None):
        n_frames = inputs.shape[1] // 320
        frames = torch.arange(n_frames, dtype=torch.float32)[None, :, None].expand(len(inputs), n_frames, 2)
        return [(k + 1) * frames for k in range((max_layer or 0) + 1)]

    def last_audio_frame(self, n_samples):
        return n_samples // 320 - 3


@pytest.mark.parametrize("pool, frame", [("last", 97.0), ("stride", np.mean(np.arange(74, 98)))])
def test_features_pool_the_frames_that_end_at_the_audios_last_frame(pool, frame):
    """Catches the stop taken from the hidden size, one frame past the audio, or the pooled count miscomputed."""
    params = F.FeatureParams(context=2.0, stride=0.5, batch_size=4, pool=pool)  # 100 frames, audio to frame 97
    wav = np.ones(16000 * 3, np.float32)
    _, feats = F.extract_features(_FramesModel(), wav, [0, 2], params, progress=False)
    np.testing.assert_allclose(feats[0], frame)  # pool "stride": the last round(98 x 0.5 / 2) = 24 frames
    np.testing.assert_allclose(feats[2], 3 * frame)


def test_no_windows_give_empty_float32_features_for_every_layer():
    """Catches the empty case returning None, a row of zeros, float64, or failing to concatenate nothing."""
    ends, feats = F.extract_features(_PlantedModel(), np.ones(16000 * 3, np.float32), [0, 1], PARAMS,
                                     progress=False, windows=slice(0, 0))
    assert len(ends) == 0 and set(feats) == {0, 1}
    for k in (0, 1):
        assert feats[k].shape == (0, 2) and feats[k].dtype == np.float32


def test_extract_features_shows_a_bar_unless_asked_not_to(capsys):
    wav = np.ones(16000 * 2, np.float32)
    F.extract_features(_PlantedModel(), wav, [0], PARAMS)
    assert "planted/model features" in capsys.readouterr().err
    F.extract_features(_PlantedModel(), wav, [0], PARAMS, progress=False)
    assert "features" not in capsys.readouterr().err


def test_reduced_precision_autocasts_to_the_asked_type_and_float32_not_at_all():
    """Catches float16 run as bfloat16 (autocast's CPU default) or float32 run under an autocast that warns."""
    import warnings

    model = load_speech_model("tiny-wav2vec2")
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000 * 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, full = F.extract_features(model, wav, [2], PARAMS, dtype=torch.float32, progress=False)
    err = {}
    for dtype in (torch.float16, torch.bfloat16):
        _, got = F.extract_features(model, wav, [2], PARAMS, dtype=dtype, progress=False)
        err[dtype] = np.abs(got[2] - full[2]).max()
    assert 0 < err[torch.float16] < err[torch.bfloat16] / 3  # 10 against 7 mantissa bits


def test_the_default_cache_folder_is_in_the_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("BT_DATA", str(tmp_path))
    path = F._cache_path(_PlantedModel(), np.ones(4, np.float32), "story_a", PARAMS, torch.float32, None)
    assert path.parent.parent == tmp_path / "cache" / "features"


def test_audio_windows_behave_as_a_float32_array_of_windows():
    """Catches float stops kept as floats, float64 audio, empty stops refused, and wrong 2-D indexing or casts."""
    wav = np.arange(10, dtype=np.float64)
    w = F.AudioWindows(wav, np.array([3.0, 5.0, 12.0]), 4)  # the last window runs past the audio
    assert w.dtype == np.float32 and w.shape == (3, 4)
    np.testing.assert_array_equal(np.asarray(w), [[0, 0, 1, 2], [1, 2, 3, 4], [8, 9, 0, 0]])
    np.testing.assert_array_equal(w[1:3, 1:3], [[2, 3], [9, 0]])  # a slice, then the columns
    np.testing.assert_array_equal(w[0, 2:], [1, 2])
    np.testing.assert_array_equal(w[np.array([2, 0]), :2], [[8, 9], [0, 0]])
    half = np.asarray(w, dtype=np.float16)
    assert half.dtype == np.float16 and half[2, 1] == 9
    assert np.asarray(w, dtype=np.float64).dtype == np.float64
    empty = F.AudioWindows(wav, np.array([], int), 4)
    assert len(empty) == 0 and np.asarray(empty).shape == (0, 4)


def test_a_damaged_rows_file_is_computed_again_and_the_warning_points_at_the_call(tmp_path):
    """Catches the rows' warning pointing inside the package, or a damaged rows file kept."""
    model, ds = _PlantedModel(), _StubDataset()
    first = F.story_rows(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path, progress=False)
    (rows_file,) = tmp_path.rglob("rows_*.npz")
    rows_file.write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match=f"{rows_file.name} is damaged") as caught:
        again = F.story_rows(model, ds, "story_a", [0], PARAMS, cache_dir=tmp_path, progress=False)
    assert caught[0].filename == __file__
    np.testing.assert_array_equal(again[0], first[0])
