import warnings

import numpy as np
import pytest
import torch

from bt_tutorial.alignment.models import load_speech_model

TINY = ["tiny-wav2vec2", "tiny-hubert", "tiny-whisper"]


def audio(seconds, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal((2, int(seconds * 16000)))).astype(np.float32)


@pytest.mark.parametrize("name", TINY)
def test_hidden_states_of_every_layer_and_truncation(name):
    model = load_speech_model(name)
    x = model.prepare(audio(2))
    with torch.inference_mode():
        full = model.hidden_states(x)
        assert len(full) == model.n_layers + 1
        assert full[-1].shape[:2] == (2, 100 if "whisper" in name else 99)
        for k in range(model.n_layers + 1):
            part = model.hidden_states(x, k)
            assert len(part) == k + 1 and torch.allclose(part[-1], full[k], atol=1e-5)
    with pytest.raises(ValueError, match="hidden states 0..3"):
        model.hidden_states(x, 7)


@pytest.mark.parametrize("name", TINY)
def test_prepare_takes_read_only_windows_silently(name):
    model = load_speech_model(name)
    wave = audio(2)[0]
    view = np.lib.stride_tricks.sliding_window_view(wave, 16000)[::16000]  # read-only rows, as windows are cut
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = model.prepare(view)
    assert torch.equal(x, model.prepare(view.copy()))


@pytest.mark.parametrize("name", ["tiny-wav2vec2", "tiny-hubert"])
def test_states_match_transformers_hidden_states(name):
    model = load_speech_model(name)
    x = model.prepare(audio(1))
    with torch.inference_mode():
        ref = model.backbone(x, output_hidden_states=True).hidden_states
        for ours, theirs in zip(model.hidden_states(x), ref):
            assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("seconds", [30, 4])
def test_whisper_states_match_transformers_hidden_states(seconds):
    """Catches a top Whisper state taken before the encoder's final layer norm: the authors' "layer 12"
    is transformers' hidden_states[-1], after it."""
    model = load_speech_model("tiny-whisper", whisper_pad_to_30s=True)
    x = model.prepare(audio(seconds))
    with torch.inference_mode():
        ref = model.backbone(x, output_hidden_states=True).hidden_states
        ours = model.hidden_states(x)
        assert len(ours) == len(ref) == model.n_layers + 1
        for k, (a, b) in enumerate(zip(ours, ref)):
            assert torch.allclose(a, b, atol=1e-5), k
        before_norm = model.backbone.layers[-1](ref[-2], None)[0]
        assert not torch.allclose(ours[-1], before_norm, atol=1e-3)  # the norm matters


def test_padded_whisper_features_read_the_authors_frame():
    """Catches reading frame 1499 (padding) of a window padded to 30 s: the authors read frame
    duration * 50, the last whose input holds audio; averages over a window's last second stop there too."""
    from bt_tutorial.alignment.features import extract_features
    from bt_tutorial.config import FeatureParams

    model = load_speech_model("tiny-whisper", whisper_pad_to_30s=True)
    wave = audio(6)[0]
    params = FeatureParams(context=4.0, stride=2.0, batch_size=2)
    ends, feats = extract_features(model, wave, [model.n_layers], params, progress=False)
    assert model.last_audio_frame(64000) == 200 and model.n_audio_frames(64000) == 200
    windows = np.stack([np.concatenate([np.zeros(64000), wave])[int(e * 16000):int(e * 16000) + 64000]
                        for e in ends])
    with torch.inference_mode():
        ref = model.backbone(model.prepare(windows), output_hidden_states=True).hidden_states[-1]
    np.testing.assert_allclose(feats[model.n_layers], ref[:, 200].numpy(), atol=1e-5)
    pooled = FeatureParams(context=4.0, stride=2.0, batch_size=2, pool="stride")
    _, mean = extract_features(model, wave, [model.n_layers], pooled, progress=False)
    np.testing.assert_allclose(mean[model.n_layers], ref[:, 101:201].mean(1).numpy(), atol=1e-5)
    cut = load_speech_model("tiny-whisper")
    assert cut.last_audio_frame(64000) == 199  # no frame past the window: its last


@pytest.mark.parametrize("name", TINY)
def test_freeze_feature_encoder_and_save_load(name, tmp_path):
    model = load_speech_model(name, freeze_feature_encoder=True)
    frozen = {n for n, p in model.backbone.named_parameters() if not p.requires_grad}
    assert frozen and all(("conv" in n or "feature_extractor" in n or "embed_positions" in n) for n in frozen)
    assert any(p.requires_grad for n, p in model.backbone.named_parameters() if "layers" in n)
    model.save_pretrained(tmp_path / "saved")
    again = load_speech_model(str(tmp_path / "saved"))
    assert again.family == model.family
    x = model.prepare(audio(1))
    with torch.inference_mode():
        assert torch.allclose(again.hidden_states(x)[-1], model.hidden_states(x)[-1], atol=1e-5)


def test_fingerprint_follows_the_weights():
    a, b = load_speech_model("tiny-hubert"), load_speech_model("tiny-hubert")
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        next(b.backbone.encoder.layers[0].parameters()).add_(1e-3)
    assert a.fingerprint() != b.fingerprint()


def test_whisper_cut_position_table_equals_padding_at_30s():
    cut = load_speech_model("tiny-whisper")
    padded = load_speech_model("tiny-whisper", whisper_pad_to_30s=True)
    x = audio(30)
    with torch.inference_mode():
        a, b = cut.hidden_states(cut.prepare(x)), padded.hidden_states(padded.prepare(x))
    for s, t in zip(a, b):
        assert torch.allclose(s, t, atol=1e-5)


def test_whisper_short_windows_run_and_differ_from_padding_only_by_attention():
    cut = load_speech_model("tiny-whisper")
    padded = load_speech_model("tiny-whisper", whisper_pad_to_30s=True)
    x = audio(4)
    with torch.inference_mode():
        a = cut.hidden_states(cut.prepare(x))
        b = padded.hidden_states(padded.prepare(x))
    assert a[-1].shape[1] == 200 and b[-1].shape[1] == 1500
    # before attention (state 0) the valid frames agree except the last (STFT edge)
    assert torch.allclose(a[0][:, :-2], b[0][:, :198], atol=1e-4)


def test_whisper_window_must_be_a_multiple_of_20_ms():
    model = load_speech_model("tiny-whisper")
    with pytest.raises(ValueError, match="20 ms"):
        model.prepare(np.zeros((1, 16010), np.float32))


def test_hub_name_offline_fails_fast_with_advice(monkeypatch):
    """Catches a hub name that, offline, tries the network (about 30 s of DNS errors) before failing."""
    import socket

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tried = []

    def no_network(*args, **kwargs):
        tried.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(OSError, match="whisper-tiny.en"):
        load_speech_model("facebook/wav2vec2-base-not-cached")
    assert tried == []  # no connection attempted


@pytest.mark.parametrize("pad", [False, True])
def test_whisper_log_mel_matches_the_feature_extractor(pad):
    model = load_speech_model("tiny-whisper", whisper_pad_to_30s=pad)
    x = audio(3)
    n = 480000 if pad else x.shape[1]
    ref = model.feature_extractor(list(x), sampling_rate=16000, return_tensors="pt",
                                  padding="max_length", max_length=n, truncation=True)["input_features"]
    ours = model.prepare(x)
    assert ours.shape == ref.shape and torch.allclose(ours, ref, atol=1e-4)


def test_two_first_loads_of_whisper_tiny_at_once_both_succeed(tmp_path):
    """Catches the second of two notebooks failing with 'Directory not empty' while the first converts."""
    import os
    import subprocess
    import sys

    code = "from bt_tutorial.alignment.models import _converted_whisper_tiny; print(_converted_whisper_tiny())"
    env = dict(os.environ, BT_DATA=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outs]
    assert (tmp_path / "models" / "whisper-tiny.en" / "config.json").is_file()


class _NotATensor:
    """Pickled into a weights file, as an old or foreign ``pytorch_model.bin`` holds more than tensors."""


def test_damaged_weights_name_the_file_and_the_fix(tmp_path):
    """Catches a raw SafetensorError (truncated model.safetensors) or UnpicklingError (a pickled .bin)."""
    import re

    folder = tmp_path / "saved"
    load_speech_model("tiny-hubert").save_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])  # an interrupted download
    with pytest.raises(OSError, match=re.escape(f"{weights} is damaged or incomplete") + ".*SafetensorError.*"
                       + re.escape(f"To fix it: delete the folder {folder} and save the model there again")):
        load_speech_model(str(folder))
    weights.unlink()
    torch.save({"encoder.weight": _NotATensor()}, folder / "pytorch_model.bin")
    with pytest.raises(OSError, match=re.escape(f"{folder / 'pytorch_model.bin'} cannot be loaded safely")
                       + ".*UnpicklingError.*" + re.escape(f"delete the folder {folder}")):
        load_speech_model(str(folder))
