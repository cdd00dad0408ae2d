"""Causal speech-model features: one vector per window of past audio.

For every time ``t`` on a grid with step ``stride``, the model reads the
``context`` seconds of audio that end at ``t`` (zeros before the story starts)
and the hidden state of its last frame becomes the feature at ``t``. Nothing
after ``t`` is ever seen, so the features are causal, as the brain's are.
The paper uses 16 s of context and a 0.1 s stride.

Windows overlap almost entirely (16 s every 0.1 s), so they are never all
cut at once: :class:`AudioWindows` keeps the audio and copies a batch only when
it is read. Features are cached per story in chunks of windows, so a run that
stops mid-story resumes at the first missing chunk; :func:`story_rows` caches
what the encoding analyses read, the features on the response rows.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bt_tutorial._stack import warn_at_caller
from bt_tutorial.alignment.models import SpeechModel, reduced_precision
from bt_tutorial.config import PAPER_PARAMS, FeatureParams, model_folder_name, resolve_data_home
from bt_tutorial.dataset.stimulus import SAMPLE_RATE
from bt_tutorial.dataset.timing import TR, to_response_rows

CHUNK_BATCHES = 64  # batches per cache chunk: 1024 windows (102 s of story at 0.1 s) at batch size 16


class AudioWindows:
    """Windows of one waveform, cut only when read; behaves as shape (n_windows, n_samples).

    Holds the zero-padded audio once and the sample at which each window ends.
    ``w[i]`` is a read-only view of window ``i``; ``w[a:b]`` is another
    ``AudioWindows`` (nothing copied); ``np.asarray(w)`` or ``w[index_array]``
    copies the selected windows only.

    Parameters
    ----------
    waveform : ndarray, shape (n_samples_audio,)
    stops : ndarray of int, shape (n_windows,)
        Sample (of ``waveform``) at which each window ends, exclusive; windows
        reaching before 0 or after the end read zeros there.
    n_samples : int
        Samples per window.
    """

    def __init__(self, waveform: np.ndarray, stops: np.ndarray, n_samples: int):
        stops = np.maximum(np.asarray(stops, dtype=np.int64), 0)
        after = max(0, int(stops.max(initial=0)) - len(waveform))
        padded = np.concatenate([np.zeros(n_samples, np.float32), np.asarray(waveform, np.float32),
                                 np.zeros(after, np.float32)])
        # row i of the view is padded[i:i + n] = the window ending at sample i of the waveform
        self._view = np.lib.stride_tricks.sliding_window_view(padded, n_samples)
        self.stops = stops

    @classmethod
    def _subset(cls, view: np.ndarray, stops: np.ndarray) -> "AudioWindows":
        out = cls.__new__(cls)
        out._view, out.stops = view, stops
        return out

    @property
    def shape(self) -> tuple:
        return (len(self.stops), self._view.shape[1])

    @property
    def dtype(self):
        return self._view.dtype

    ndim = 2

    def __len__(self) -> int:
        return len(self.stops)

    def __iter__(self):
        return (self._view[s] for s in self.stops)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows = np.asarray(self[key[0]])  # one window (1-D) or several (2-D): the columns come after
            return rows[key[1:]] if rows.ndim == 1 else rows[(slice(None),) + key[1:]]
        if isinstance(key, slice):
            return AudioWindows._subset(self._view, self.stops[key])
        return self._view[self.stops[key]]  # an int: a view; an index array: a copy of those windows

    def __array__(self, dtype=None, copy=None):
        out = self._view[self.stops]
        return out if dtype is None else out.astype(dtype, copy=False)


def window_end_times(duration: float, stride: float) -> np.ndarray:
    """End time of every window, ``stride, 2 stride, ...`` up to ``duration`` (s)."""
    return np.arange(1, int(np.floor(duration / stride + 1e-9)) + 1) * stride


def audio_windows(waveform: np.ndarray, ends: np.ndarray, context: float) -> AudioWindows:
    """Windows of ``context`` s ending at ``ends`` (s), shape (n_windows, n_context_samples); zeros before the onset."""
    return AudioWindows(waveform, np.round(np.asarray(ends) * SAMPLE_RATE).astype(int),
                        int(round(context * SAMPLE_RATE)))


def feature_dtype(device, dtype: torch.dtype | None = None) -> torch.dtype:
    """``dtype`` if given, else the device's fast type (bf16 / fp16 on a GPU, float32 on the CPU)."""
    return reduced_precision(device) if dtype is None else dtype


def extract_features(model: SpeechModel, waveform: np.ndarray, layers, params: FeatureParams = PAPER_PARAMS,
                     dtype: torch.dtype | None = None, progress=True, windows: slice | None = None) -> tuple:
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
    dtype : torch.dtype, optional
        Autocast type; the weights stay as they are. Default: bfloat16 on GPUs
        of compute capability >= 8.0, float16 on older GPUs (T4), float32 on
        the CPU (see :func:`~bt_tutorial.alignment.models.reduced_precision`).
    progress : bool or tqdm
        A bar, or a tqdm instance to advance by the windows done.
    windows : slice, optional
        Only these windows of the story's grid (a cache chunk); default all.

    Returns
    -------
    times : ndarray, shape (n_windows,)
        Window end times in seconds from the story onset.
    features : dict of int -> ndarray, shape (n_windows, hidden_size), float32
    """
    layers = sorted(set(int(k) for k in layers))
    ends = window_end_times(len(waveform) / SAMPLE_RATE, params.stride)
    cut = audio_windows(waveform, ends, params.context)
    if windows is not None:
        ends, cut = ends[windows], cut[windows]
    dtype = feature_dtype(model.device, dtype)
    amp = nullcontext() if dtype == torch.float32 else torch.autocast(model.device.type, dtype=dtype)
    bar = progress if isinstance(progress, tqdm) else tqdm(total=len(ends), disable=not progress,
                                                           desc=f"{model.name} features", unit="window")
    out = {k: [] for k in layers}
    last = model.last_audio_frame(cut.shape[1])  # padded Whisper: frame duration * 50, not 1499
    with torch.inference_mode():
        for start in range(0, len(cut), params.batch_size):
            inputs = model.prepare(np.asarray(cut[start:start + params.batch_size]))
            with amp:
                states = model.hidden_states(inputs, max(layers))
            stop = min(states[0].shape[1], last + 1)
            n = params.n_pooled_frames(stop)
            for k in layers:
                out[k].append(states[k][:, stop - n:stop, :].float().mean(1).cpu().numpy())
            bar.update(len(inputs))
    if bar is not progress:
        bar.close()
    empty = np.zeros((0, model.hidden_size), np.float32)
    return ends, {k: np.concatenate(v) if v else empty for k, v in out.items()}


def story_features(model: SpeechModel, dataset, story: str, layers, params: FeatureParams = PAPER_PARAMS,
                   cache_dir=None, dtype: torch.dtype | None = None, progress: bool = True) -> tuple:
    """Causal features of a story, computed once and cached on disk in chunks.

    The cache key holds the model's weights fingerprint, the story's audio, the
    window parameters and the dtype. Each chunk of ``CHUNK_BATCHES`` batches is
    written as soon as it is done, so an interrupted extraction resumes at the
    first missing chunk. A request for more layers recomputes each chunk with
    the layers it had and the new ones.

    Parameters
    ----------
    model : SpeechModel
    dataset : LebelDataset
    story : str
    layers : sequence of int
    params : FeatureParams
    cache_dir : str or Path, optional
        Default ``<data home>/cache/features``; ``False`` disables caching.
    dtype : torch.dtype, optional
        As :func:`extract_features`.

    Returns
    -------
    times, features : as :func:`extract_features`
    """
    audio = dataset.load_audio(story, SAMPLE_RATE).waveform
    layers = sorted(set(int(k) for k in layers))
    dtype = feature_dtype(model.device, dtype)
    if cache_dir is False:
        return extract_features(model, audio, layers, params, dtype, progress)
    return _cached_features(model, audio, _cache_path(model, audio, story, params, dtype, cache_dir), layers,
                            params, dtype, progress)


def _cached_features(model, audio, folder: Path, layers, params, dtype, progress) -> tuple:
    """:func:`story_features` for audio already loaded, cached in ``folder``."""
    times = window_end_times(len(audio) / SAMPLE_RATE, params.stride)
    parts = {k: [] for k in layers}
    with tqdm(total=len(times), disable=not progress, desc=f"{model.name} features", unit="window") as bar:
        for chunk in _chunks(len(times), params):
            path = folder / f"windows_{chunk.start}-{chunk.stop}.npz"
            cached = _read_cache(path) or {}
            if all(k in cached for k in layers):
                bar.update(chunk.stop - chunk.start)
            else:
                _, fresh = extract_features(model, audio, sorted(set(layers) | set(cached)), params, dtype,
                                            bar, windows=chunk)
                cached = {**cached, **fresh}
                _write_cache(path, cached)
            for k in layers:
                parts[k].append(cached[k])
    return times, {k: np.concatenate(v) for k, v in parts.items()}


def story_rows(model: SpeechModel, dataset, story: str, layers, params: FeatureParams = PAPER_PARAMS,
               n_response_rows: int | None = None, cache_dir=None, dtype: torch.dtype | None = None,
               progress: bool = True, keep_windows: bool = False) -> dict:
    """Features of a story on its response rows, as the encoding analyses read them, cached.

    The rows are :func:`~bt_tutorial.dataset.timing.to_response_rows` of
    :func:`story_features` (Lanczos to the TR grid, trimmed, z-scored), the
    same float32 values, so caching them loses nothing the analyses use; they
    take ``stride / TR`` of the windows' space (1/20 at the paper's 0.1 s).
    Once a story's rows are written its window chunks are deleted, unless
    ``keep_windows``.

    Parameters
    ----------
    model, dataset, story, layers, params, cache_dir, dtype, progress
        As :func:`story_features`.
    n_response_rows : int, optional
        Rows of the story's responses; a mismatch is an error naming the story.
    keep_windows : bool
        Keep the window-level chunks (for plots at window resolution).

    Returns
    -------
    rows : dict of int -> ndarray, shape (n_scan_trs - 20, hidden_size), float32
    """
    layers = sorted(set(int(k) for k in layers))
    n_scan = dataset.n_scan_trs(story)
    if cache_dir is False:
        times, feats = story_features(model, dataset, story, layers, params, False, dtype, progress)
        return {k: to_response_rows(feats[k], times, n_scan, story, n_response_rows, dataset.tr) for k in layers}
    audio = dataset.load_audio(story, SAMPLE_RATE).waveform
    dtype = feature_dtype(model.device, dtype)
    folder = _cache_path(model, audio, story, params, dtype, cache_dir)
    path = folder / f"rows_{n_scan}trs_tr{dataset.tr:g}.npz"
    cached = _read_cache(path) or {}
    missing = [k for k in layers if k not in cached]
    if missing:
        times, feats = _cached_features(model, audio, folder, missing, params, dtype, progress)
        cached.update({k: to_response_rows(feats[k], times, n_scan, story, n_response_rows, dataset.tr)
                       for k in missing})
        _write_cache(path, cached)
        if not keep_windows:
            for chunk in folder.glob("windows_*.npz"):
                chunk.unlink(missing_ok=True)
    out = {k: cached[k] for k in layers}
    if n_response_rows is not None and len(out[layers[0]]) != n_response_rows:
        raise ValueError(f"Story {story}: cached features give {len(out[layers[0]])} TR rows but the responses "
                         f"have {n_response_rows}; delete {path} if the responses were replaced.")
    return out


def feature_cache_bytes(duration: float, hidden_size: int, n_states: int, params: FeatureParams = PAPER_PARAMS,
                        n_rows: int | None = None, tr: float = TR) -> dict:
    """Disk space of one story's cached features, in bytes (float32, uncompressed).

    Parameters
    ----------
    duration : float
        Seconds of audio.
    hidden_size : int
        Width of a hidden state (768 for base models and Whisper small).
    n_states : int
        Hidden states cached (``n_layers + 1`` for all of them).
    params : FeatureParams
    n_rows : int, optional
        Response rows of the story (``len(dataset.tr_times(story))``); default
        ``duration / tr - 20``, which is about right for ds003020.
    tr : float

    Returns
    -------
    sizes : dict
        ``"windows"``: the window-level chunks of :func:`story_features`;
        ``"rows"``: the response rows of :func:`story_rows`, what stays on
        disk by default.
    """
    per_row = 4 * hidden_size * n_states
    n_windows = len(window_end_times(duration, params.stride))
    n_rows = max(0, int(round(duration / tr)) - 20) if n_rows is None else int(n_rows)
    return {"windows": n_windows * per_row, "rows": n_rows * per_row}


CACHE_VERSION = 2  # 2: the top state is the model's output (Whisper: after its final layer norm)


def _chunks(n_windows: int, params: FeatureParams):
    size = CHUNK_BATCHES * params.batch_size
    return [slice(a, min(a + size, n_windows)) for a in range(0, n_windows, size)]


def _cache_path(model, waveform, story, params, dtype, cache_dir) -> Path:
    """Folder of one story's cache (window chunks and response rows)."""
    if cache_dir is None:
        cache_dir = resolve_data_home() / "cache" / "features"
    audio_hash = hashlib.sha1(np.ascontiguousarray(waveform).tobytes()).hexdigest()[:10]
    name = f"{story}_{audio_hash}_{params.tag()}_{str(dtype).replace('torch.', '')}_v{CACHE_VERSION}"
    return Path(cache_dir) / f"{model_folder_name(model.name)}-{model.fingerprint()}" / name


def _read_cache(path: Path) -> dict | None:
    """A cached chunk, or None when missing or unreadable (a damaged file is removed and recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            feats = {int(k[6:]): f[k] for k in f.files if k.startswith("layer_")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        warn_at_caller(f"The feature cache file {path} is damaged ({type(exc).__name__}): it is computed again.")
        path.unlink(missing_ok=True)
        return None
    bad = [k for k, v in feats.items() if not np.isfinite(v).all()]
    if bad:
        warn_at_caller(f"The feature cache file {path} has non-finite values (layers {bad}): "
                       "it is computed again.")
        path.unlink(missing_ok=True)
        return None
    return feats


def _write_cache(path: Path, feats: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **{f"layer_{k}": v for k, v in feats.items()})
    tmp.replace(path)
