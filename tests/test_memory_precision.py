"""Host memory of window cutting, the chunked feature cache, and mixed precision per GPU generation."""

import tracemalloc
import warnings

import numpy as np
import pytest
import torch

from bt_tutorial.alignment import features as F
from bt_tutorial.alignment.models import load_speech_model, reduced_precision
from bt_tutorial.brain_tuning.loop import _precision
from bt_tutorial.brain_tuning.samples import TuningData, tr_windows
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.timing import to_response_rows

PARAMS = F.FeatureParams(context=2.0, stride=0.5, batch_size=4)


class _CheapModel:
    """Stands in for a SpeechModel: the window's last sample and mean as a 2-wide hidden state."""

    name, hidden_size, device = "cheap", 2, torch.device("cpu")

    def prepare(self, windows):
        return torch.from_numpy(np.asarray(windows, np.float32))

    def hidden_states(self, inputs, max_layer=None):
        state = torch.stack([inputs[:, -1], inputs.mean(1)], dim=1)[:, None, :]
        return [state] * ((max_layer or 0) + 1)

    def last_audio_frame(self, n_samples):
        return 0  # its one frame


def _peak_mib(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_feature_extraction_memory_does_not_grow_with_story_length():
    wav = np.random.default_rng(0).standard_normal(16000 * 100).astype(np.float32)  # 6.1 MiB
    params = F.FeatureParams(context=16.0, stride=0.1, batch_size=16)  # all windows at once: 977 MiB
    result = {}
    peak = _peak_mib(lambda: result.update(out=F.extract_features(_CheapModel(), wav, [0], params,
                                                                 progress=False)))
    assert peak < 60, f"peak {peak:.0f} MiB"
    times, feats = result["out"]
    stops = np.round(times * 16000).astype(int)
    assert np.allclose(feats[0][:, 0], wav[stops - 1])  # each window ends at its time
    assert np.allclose(feats[0][5, 1], np.r_[np.zeros(256000 - 9600), wav[:9600]].mean())


def test_audio_windows_cut_on_read_and_match_a_copy():
    wav = np.arange(16000 * 3, dtype=np.float32) + 1
    stops = np.array([-10, 500, 8000, 47000, 50000])
    w = F.AudioWindows(wav, stops, 16000)
    padded = np.r_[np.zeros(16000, np.float32), wav, np.zeros(2000, np.float32)]
    copy = np.stack([padded[max(s, 0):max(s, 0) + 16000] for s in stops])
    assert w.shape == copy.shape and len(w) == 5
    assert np.array_equal(np.asarray(w), copy) and np.array_equal(w[[1, 3]], copy[[1, 3]])
    assert isinstance(w[1:4], F.AudioWindows) and np.array_equal(np.asarray(w[::2]), copy[::2])
    assert np.shares_memory(w[3], w[4]) and np.array_equal(w[3, 100:200], copy[3, 100:200])
    assert np.array_equal(np.stack(list(w)), copy)


def test_tuning_data_holds_audio_not_windows():
    wav = np.random.default_rng(1).standard_normal(16000 * 200).astype(np.float32)
    tr_times = np.arange(90) * 2.0045 + 1.0
    peak = _peak_mib(lambda: tr_windows(wav, tr_times)[::2])  # 90 windows of 10 s copied: 55 MiB
    assert peak < 2 * wav.nbytes / 2**20 + 2, f"peak {peak:.1f} MiB"
    w = tr_windows(wav, tr_times)
    data = TuningData([w, w[::3]], [np.ones((90, 2), np.float32), np.zeros((30, 2), np.float32)])
    x, y = data.batch(np.array([0, 95]))
    assert np.array_equal(x, np.stack([w[0], w[15]])) and y.shape == (2, 2)


def test_chunked_cache_resumes_mid_story(tiny_twin, tmp_path, monkeypatch):
    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-hubert")
    monkeypatch.setattr(F, "CHUNK_BATCHES", 2)  # 8 windows per chunk: a 40 s story has 10 chunks
    times, direct = F.story_features(model, ds, "stagefright", [1, 2], PARAMS, cache_dir=False, progress=False)
    real, calls = F.extract_features, []

    def disconnect_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(kwargs["windows"])
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "extract_features", disconnect_after_three)
    with pytest.raises(KeyboardInterrupt):
        F.story_features(model, ds, "stagefright", [1, 2], PARAMS, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.rglob("windows_*.npz"))) == 3
    monkeypatch.setattr(F, "extract_features", lambda *a, **k: calls.append(k["windows"]) or real(*a, **k))
    again_times, again = F.story_features(model, ds, "stagefright", [1, 2], PARAMS, cache_dir=tmp_path,
                                          progress=False)
    n_chunks = -(-len(times) // 8)
    assert [c.start for c in calls] == [8 * i for i in range(n_chunks)]  # every chunk computed once
    assert np.array_equal(again_times, times)
    for k in (1, 2):
        assert np.allclose(again[k], direct[k], atol=1e-6)


def test_story_rows_are_the_analysis_rows_and_drop_the_windows(tiny_twin, tmp_path, monkeypatch):
    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-wav2vec2")
    story = "stagefright"
    n_rows = len(ds.tr_times(story))
    times, feats = F.story_features(model, ds, story, [0, 1, 3], PARAMS, cache_dir=False, progress=False)
    expected = {k: to_response_rows(feats[k], times, ds.n_scan_trs(story), story, n_rows, ds.tr) for k in feats}
    rows = F.story_rows(model, ds, story, [1, 3], PARAMS, n_rows, cache_dir=tmp_path, progress=False)
    assert all(np.array_equal(rows[k], expected[k]) for k in (1, 3))
    assert not list(tmp_path.rglob("windows_*.npz")) and len(list(tmp_path.rglob("rows_*.npz"))) == 1
    more = F.story_rows(model, ds, story, [0, 1], PARAMS, n_rows, cache_dir=tmp_path, progress=False,
                        keep_windows=True)
    assert np.array_equal(more[1], rows[1]) and list(tmp_path.rglob("windows_*.npz"))
    assert np.array_equal(more[0], expected[0])
    monkeypatch.setattr(F, "extract_features", lambda *a, **k: pytest.fail("recomputed a cached layer"))
    again = F.story_rows(model, ds, story, [3, 0, 1], PARAMS, n_rows, cache_dir=tmp_path, progress=False)
    assert all(np.array_equal(again[k], expected[k]) for k in (0, 1, 3))
    with pytest.raises(ValueError, match="stagefright"):
        F.story_rows(model, ds, story, [1], PARAMS, n_rows + 1, cache_dir=tmp_path, progress=False)


def test_cache_size_figure_matches_the_files(tiny_twin, tmp_path):
    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-whisper")
    story = "stagefright"
    F.story_rows(model, ds, story, range(4), PARAMS, cache_dir=tmp_path, progress=False, keep_windows=True)
    duration = len(ds.load_audio(story, 16000).waveform) / 16000
    size = F.feature_cache_bytes(duration, model.hidden_size, 4, PARAMS, len(ds.tr_times(story)), ds.tr)
    on_disk = {kind: sum(p.stat().st_size for p in tmp_path.rglob(f"{kind}_*.npz")) for kind in size}
    for kind in size:
        assert size[kind] <= on_disk[kind] < size[kind] + 4096, (kind, size, on_disk)
    paper = F.feature_cache_bytes(600, 768, 13)  # a 10-min story, every state of a base model
    assert paper["windows"] == 6000 * 768 * 13 * 4 and paper["rows"] == 279 * 768 * 13 * 4


@pytest.mark.parametrize("capability, dtype, scaled", [((7, 5), torch.float16, True),
                                                      ((8, 0), torch.bfloat16, False),
                                                      ((9, 0), torch.bfloat16, False)])
def test_bf16_only_from_ampere(monkeypatch, capability, dtype, scaled):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # a T4 says so by emulation
    assert reduced_precision("cuda:0") == dtype
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no CUDA here: autocast and scaler disable themselves
        autocast, scaler = _precision(torch.device("cuda"))
        assert autocast().fast_dtype == dtype
    assert isinstance(scaler, torch.amp.GradScaler) == scaled
    assert (scaler is None) != scaled


def test_cpu_keeps_float32():
    assert reduced_precision("cpu") == torch.float32 and F.feature_dtype("cpu") == torch.float32
    assert F.feature_dtype("cuda", torch.float16) == torch.float16
    assert _precision(torch.device("cpu")) == (_precision(torch.device("cpu"))[0], None)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_features_are_close_to_fp32(dtype):
    model = load_speech_model("tiny-wav2vec2")
    weights = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    wav = (0.1 * np.random.default_rng(2).standard_normal(16000 * 4)).astype(np.float32)
    _, ref = F.extract_features(model, wav, [1, 3], PARAMS, progress=False)
    _, default = F.extract_features(model, wav, [1, 3], PARAMS, None, progress=False)
    _, half = F.extract_features(model, wav, [1, 3], PARAMS, dtype, progress=False)
    for k in (1, 3):
        assert np.array_equal(default[k], ref[k])  # float32 on the CPU by default
        assert half[k].dtype == np.float32
        err = np.abs(half[k] - ref[k]).max() / np.abs(ref[k]).max()
        assert 0 < err < 0.05, err
        assert np.corrcoef(half[k].ravel(), ref[k].ravel())[0, 1] > 0.999
    assert all(torch.equal(v, weights[k]) for k, v in model.backbone.state_dict().items())  # weights not rounded
