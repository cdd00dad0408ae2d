import numpy as np
import pytest

from bt_tutorial import features as F
from bt_tutorial.data import LebelDataset
from bt_tutorial.models import load_speech_model

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
    w = F._windows(wav, np.array([0.5, 3.0]), 1.0)
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
    with pytest.warns(UserWarning, match=f"{chunks[0].name} .* computed again"):
        _, again = F.story_features(model, ds, "stagefright", [1], PARAMS, cache_dir=tmp_path, progress=False)
    np.testing.assert_allclose(again[1], first[1], atol=1e-6)
