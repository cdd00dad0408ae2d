"""Frozen features of short clips: every hidden state, averaged over the clip's frames.

Clips are sorted by length and batched with their neighbours, so that little
padding is needed; each clip is padded with zeros to the longest of its batch
and only the frames that cover its own samples are averaged. All hidden states
come out of one forward pass and are cached together on disk, because a probe
per layer reuses them.

Padding is not invisible to the model: Whisper's encoder has no attention mask
and attends to the padded frames, and wav2vec 2.0 / HuBERT base models are run
without one too (their feature extractor is normalised per clip before
padding). Batching clips of similar length keeps this effect small (most clips
of a batch have the same number of frames); ``batch_size=1`` removes it at the
cost of speed. ``benchmarks/bench_downstream.py`` measures both.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bt_tutorial.alignment.models import WHISPER_SECONDS, SpeechModel
from bt_tutorial.config import model_folder_name, resolve_data_home
from bt_tutorial.dataset.stimulus import SAMPLE_RATE
from bt_tutorial.downstream.tasks import Task

_WHISPER_HOP = 320  # samples per Whisper encoder frame (20 ms)
_MIN_SAMPLES = 400  # the shortest input the wav2vec 2.0 / HuBERT front end accepts


def clip_features(model: SpeechModel, task: Task, layers=None, batch_size: int = 16,
                  cache_dir=None, progress: bool = True) -> dict:
    """Time-averaged hidden states of every clip of a task, computed once and cached.

    Parameters
    ----------
    model : SpeechModel
    task : Task
    layers : sequence of int, optional
        Hidden states to return (default: all, 0..``model.n_layers``). All are
        computed and cached whatever is asked.
    batch_size : int
        Clips per forward pass.
    cache_dir : str or Path or False, optional
        Default ``<data home>/cache/downstream``; ``False`` disables caching.
    progress : bool

    Returns
    -------
    features : dict of int -> ndarray, shape (n_clips, hidden_size), float32
    """
    wanted = list(range(model.n_layers + 1)) if layers is None else [int(k) for k in layers]
    bad = [k for k in wanted if not 0 <= k <= model.n_layers]
    if bad:
        raise ValueError(f"{model.name} has hidden states 0..{model.n_layers}; asked for {bad}.")
    path = None if cache_dir is False else feature_cache_path(model, task, cache_dir)
    if path is not None and path.is_file():
        with np.load(path) as f:
            return {k: f[f"layer_{k}"] for k in wanted}
    feats = _extract(model, task.waveforms, batch_size, progress, desc=f"{task.name} features")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **{f"layer_{k}": v for k, v in enumerate(feats)})
        tmp.replace(path)
    return {k: feats[k] for k in wanted}


CACHE_VERSION = 2  # 2: the top state is the model's output (Whisper: after its final layer norm)


def feature_cache_path(model: SpeechModel, task: Task, cache_dir=None) -> Path:
    """``<cache_dir>/<model name>-<weights fingerprint>/<task>_<task digest>.npz``."""
    return _model_dir(model, cache_dir) / f"{task.name}_{task.digest()}_v{CACHE_VERSION}.npz"


def _model_dir(model: SpeechModel, cache_dir=None) -> Path:
    if cache_dir is None:
        cache_dir = resolve_data_home() / "cache" / "downstream"
    return Path(cache_dir) / f"{model_folder_name(model.name)}-{model.fingerprint()}"


def _extract(model: SpeechModel, waveforms: list, batch_size: int, progress: bool, desc: str) -> list:
    """Pooled states, a list over hidden states of arrays (n_clips, hidden_size)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    order = np.argsort([len(w) for w in waveforms], kind="stable")
    out = [None] * len(waveforms)
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch",
                          disable=not progress):
            idx = order[start:start + batch_size]
            pooled = _pooled_batch(model, [waveforms[i] for i in idx])
            for j, i in enumerate(idx):
                out[i] = pooled[:, j]
    if not out:
        return [np.zeros((0, model.hidden_size), np.float32)] * (model.n_layers + 1)
    return list(np.stack(out, axis=1))


def _pooled_batch(model: SpeechModel, clips: list) -> np.ndarray:
    """Mean over each clip's valid frames, shape (n_states, batch, hidden_size)."""
    inputs, n_valid = _batch_inputs(model, clips)
    states = model.hidden_states(inputs)
    frames = states[0].shape[1]
    mask = (torch.arange(frames)[None, :] < torch.as_tensor(n_valid)[:, None]).to(states[0].dtype)
    mask = mask.to(states[0].device)[..., None]
    pooled = [(s * mask).sum(1) / mask.sum(1) for s in states]
    return torch.stack(pooled).float().cpu().numpy()


def _batch_inputs(model: SpeechModel, clips: list) -> tuple:
    """Model inputs of zero-padded clips and the number of frames covering each clip."""
    if model.family == "whisper":
        limit = int(WHISPER_SECONDS * SAMPLE_RATE)
        clips = [c[:limit] for c in clips]  # Whisper's encoder reads at most 30 s
        lengths = np.array([max(len(c), 1) for c in clips])
        n = int(math.ceil(lengths.max() / _WHISPER_HOP) * _WHISPER_HOP)
        batch = np.zeros((len(clips), n), np.float32)
        for i, c in enumerate(clips):
            batch[i, :len(c)] = c
        return model.prepare(batch), np.ceil(lengths / _WHISPER_HOP).astype(int)
    prepared = [model.prepare(np.pad(c, (0, max(0, _MIN_SAMPLES - len(c))))[None])[0] for c in clips]
    lengths = torch.tensor([len(p) for p in prepared])
    padded = torch.nn.utils.rnn.pad_sequence(prepared, batch_first=True)
    n_valid = model.backbone._get_feat_extract_output_lengths(lengths)
    return padded, n_valid.cpu().numpy().astype(int)

