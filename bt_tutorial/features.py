"""Causal speech-model features: one vector per window of past audio.

For every time ``t`` on a grid with step ``stride``, the model reads the
``context`` seconds of audio that end at ``t`` (zeros before the story starts)
and the hidden state of its last frame becomes the feature at ``t``. Nothing
after ``t`` is ever seen, so the features are causal, as the brain's are.
The paper uses 16 s of context and a 0.1 s stride.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .config import PAPER_PARAMS, FeatureParams, model_folder_name, resolve_data_home  # noqa: F401 (re-exported)
from .models import SAMPLE_RATE, SpeechModel



def window_end_times(duration: float, stride: float) -> np.ndarray:
    """End time of every window, ``stride, 2 stride, ...`` up to ``duration`` (s)."""
    return np.arange(1, int(np.floor(duration / stride + 1e-9)) + 1) * stride


def _windows(waveform: np.ndarray, ends: np.ndarray, context: float) -> np.ndarray:
    """View of the windows, shape (n_windows, n_context_samples); zeros before the onset."""
    n_ctx = int(round(context * SAMPLE_RATE))
    padded = np.concatenate([np.zeros(n_ctx, np.float32), np.asarray(waveform, np.float32)])
    stops = np.round(ends * SAMPLE_RATE).astype(int)
    return np.lib.stride_tricks.sliding_window_view(padded, n_ctx)[stops]


def extract_features(model: SpeechModel, waveform: np.ndarray, layers, params: FeatureParams = PAPER_PARAMS,
                     dtype: torch.dtype = torch.float32, progress: bool = True) -> tuple:
    """Causal features of one waveform for the requested layers.

    Parameters
    ----------
    model : SpeechModel
        On the device where it should run.
    waveform : ndarray, shape (n_samples,)
        16 kHz audio.
    layers : sequence of int
        Hidden states wanted (0 = input of the first layer); no layer above
        ``max(layers)`` is computed.
    params : FeatureParams
    dtype : torch.dtype
        Computation type (float16 / bfloat16 on a GPU halves the memory).
    progress : bool

    Returns
    -------
    times : ndarray, shape (n_windows,)
        Window end times in seconds from the story onset.
    features : dict of int -> ndarray, shape (n_windows, hidden_size), float32
    """
    layers = sorted(set(int(k) for k in layers))
    ends = window_end_times(len(waveform) / SAMPLE_RATE, params.stride)
    windows = _windows(waveform, ends, params.context)
    out = {k: [] for k in layers}
    backbone_dtype = next(model.backbone.parameters()).dtype
    model.backbone.to(dtype=dtype)
    try:
        with torch.inference_mode():
            for start in tqdm(range(0, len(windows), params.batch_size), disable=not progress,
                              desc=f"{model.name} features", unit="batch"):
                inputs = model.prepare(windows[start:start + params.batch_size]).to(dtype)
                states = model.hidden_states(inputs, max(layers))
                n = params.n_pooled_frames(states[0].shape[1])
                for k in layers:
                    out[k].append(states[k][:, -n:, :].float().mean(1).cpu().numpy())
    finally:
        model.backbone.to(dtype=backbone_dtype)
    return ends, {k: np.concatenate(v) for k, v in out.items()}


def story_features(model: SpeechModel, dataset, story: str, layers, params: FeatureParams = PAPER_PARAMS,
                   cache_dir=None, dtype: torch.dtype = torch.float32, progress: bool = True) -> tuple:
    """Causal features of a story, computed once and cached on disk.

    The cache key holds the model's weights fingerprint, the story's audio, the
    window parameters and the dtype; a request for more layers recomputes and
    extends the cached file.

    Parameters
    ----------
    model : SpeechModel
    dataset : LebelDataset
    story : str
    layers : sequence of int
    params : FeatureParams
    cache_dir : str or Path, optional
        Default ``<data home>/cache/features``; ``False`` disables caching.

    Returns
    -------
    times, features : as :func:`extract_features`
    """
    audio = dataset.load_audio(story, SAMPLE_RATE)
    layers = sorted(set(int(k) for k in layers))
    path = None
    if cache_dir is not False:
        path = _cache_path(model, audio.waveform, story, params, dtype, cache_dir)
        cached = _read_cache(path)
        if cached and all(k in cached[1] for k in layers):
            return cached[0], {k: cached[1][k] for k in layers}
    times, feats = extract_features(model, audio.waveform, layers, params, dtype, progress)
    if path is not None:
        previous = _read_cache(path)
        _write_cache(path, times, {**(previous[1] if previous else {}), **feats})
    return times, feats


def _cache_path(model, waveform, story, params, dtype, cache_dir) -> Path:
    if cache_dir is None:
        cache_dir = resolve_data_home() / "cache" / "features"
    audio_hash = hashlib.sha1(np.ascontiguousarray(waveform).tobytes()).hexdigest()[:10]
    name = f"{story}_{audio_hash}_{params.tag()}_{str(dtype).replace('torch.', '')}.npz"
    return Path(cache_dir) / f"{model_folder_name(model.name)}-{model.fingerprint()}" / name


def _read_cache(path: Path):
    if not path.is_file():
        return None
    with np.load(path) as f:
        return f["times"], {int(k[6:]): f[k] for k in f.files if k.startswith("layer_")}


def _write_cache(path: Path, times: np.ndarray, feats: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, times=times, **{f"layer_{k}": v for k, v in feats.items()})
    tmp.replace(path)
