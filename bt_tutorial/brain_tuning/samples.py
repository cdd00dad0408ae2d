"""Training samples: the audio window of every response row, its z-scored targets, the controls.

The shuffled-fMRI controls keep the audio and break its link with the responses,
either by giving each story another story's responses or by permuting chunks of
a story's own TRs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from bt_tutorial._stack import warn_at_caller
from bt_tutorial.alignment.features import AudioWindows
from bt_tutorial.alignment.noise_ceiling import cc_max, select_voxels
from bt_tutorial.brain_tuning.settings import TuningConfig
from bt_tutorial.dataset.stimulus import SAMPLE_RATE
from bt_tutorial.dataset.timing import TR, zscore


def tr_windows(waveform: np.ndarray, tr_times: np.ndarray, window_trs: int = 5, tr: float = TR,
               multiple: int = 320, lag_trs: int = 0) -> np.ndarray:
    """Audio of the ``window_trs`` TRs ending with each response row (or ``lag_trs`` TRs earlier).

    The window of a row ends at the end of its TR (``tr_times + tr / 2``), minus
    ``lag_trs * tr``. Audio
    before the story onset or after its end is zeros, so a story shorter than a
    window still gives full windows. The length is rounded up to a multiple of
    ``multiple`` samples (Whisper needs 20 ms steps).

    Parameters
    ----------
    waveform : ndarray, shape (n_samples,)
        16 kHz audio.
    tr_times : ndarray, shape (n_rows,)

    Returns
    -------
    windows : AudioWindows, shape (n_rows, n_window_samples)
        Holds the audio once; a window is cut when read (a batch at a time).
    """
    n = int(math.ceil(window_trs * tr * SAMPLE_RATE / multiple) * multiple)
    ends = np.round((np.asarray(tr_times) + tr / 2 - lag_trs * tr) * SAMPLE_RATE).astype(int)
    return AudioWindows(waveform, ends, n)


def control_targets(targets: list, control: str | None, chunk_trs: int, rng, chunk_distance: int = 0) -> list:
    """Targets of the shuffled-fMRI control (unchanged when ``control`` is None).

    ``"other_story"``: each story takes the responses of a random other story, cut to
    its length or topped up with rows of that story drawn at random (the authors'
    ``FMRIRandomStory``, ``random_method="all"``, which may also draw the story itself).
    ``"chunk_permute"``: the story's rows in chunks of ``chunk_trs`` (the last one
    shorter); with ``chunk_distance`` d > 0, chunk i swaps in turn with a random chunk at
    least d chunks further on, when there is one (the authors' ``random_method="local"``:
    15 and 10; chunks near the end may stay in place); with d = 0 the chunks are permuted
    at random. A story too short for any swap is permuted at random, with a warning.

    Parameters
    ----------
    targets : list of ndarray, each (n_rows_i, n_voxels)
    control : {None, "other_story", "chunk_permute"}
    chunk_trs : int
    rng : numpy Generator
    chunk_distance : int

    Returns
    -------
    targets : list of ndarray with the same shapes
    """
    if control is None:
        return targets
    if control == "other_story":
        if len(targets) < 2:
            raise ValueError("The 'other_story' control needs at least 2 training stories.")
        out = []
        for k, t in enumerate(targets):
            source = targets[rng.choice([i for i in range(len(targets)) if i != k])]
            extra = rng.integers(0, len(source), max(0, len(t) - len(source)))
            out.append(np.concatenate([source[:len(t)], source[extra]]))
        return out
    permuted = []
    for t in targets:  # a loop, not a comprehension: chunk_order's warning names control_targets' caller
        permuted.append(t[chunk_order(len(t), chunk_trs, chunk_distance, rng)])
    return permuted


def chunk_order(n_rows: int, chunk_trs: int, chunk_distance: int, rng) -> np.ndarray:
    """Row order of the chunk control: chunks of ``chunk_trs`` rows, reordered (see :func:`~bt_tutorial.brain_tuning.samples.control_targets`).

    Returns
    -------
    order : ndarray of int, shape (n_rows,)
        A permutation of ``range(n_rows)`` that keeps each chunk's rows together.
    """
    chunks = [np.arange(a, min(a + chunk_trs, n_rows)) for a in range(0, n_rows, chunk_trs)]
    n = len(chunks)
    if chunk_distance and n <= chunk_distance:
        warn_at_caller(f"A story of {n_rows} rows has {n} chunks of {chunk_trs} TRs, too few to swap chunks "
                       f"{chunk_distance} apart: its chunks are permuted at random instead.")
        chunk_distance = 0
    if not chunk_distance:
        places = rng.permutation(n)
    else:
        places = np.arange(n)
        for i in range(n - chunk_distance):
            j = rng.integers(i + chunk_distance, n)
            places[[i, j]] = places[[j, i]]
    return np.concatenate([chunks[i] for i in places]) if n else np.arange(0)


@dataclass
class TuningData:
    """Windows and targets of a set of stories, indexed by (story, row).

    ``windows`` are arrays or :class:`~bt_tutorial.alignment.features.AudioWindows`, each
    (n_rows_i, n_window_samples); :meth:`batch` copies only the rows it returns.
    """

    windows: list
    targets: list
    index: np.ndarray = field(init=False)

    def __post_init__(self):
        self.index = np.array([(s, r) for s, t in enumerate(self.targets) for r in range(len(t))])

    def __len__(self) -> int:
        return len(self.index)

    @property
    def window_samples(self) -> int:
        """Length of every window (16 kHz samples)."""
        return int(self.windows[0].shape[1])

    def batch(self, rows: np.ndarray) -> tuple:
        pairs = self.index[rows]
        x = np.stack([self.windows[s][r] for s, r in pairs])
        y = np.stack([self.targets[s][r] for s, r in pairs])
        return x, torch.from_numpy(y)


def prepare_tuning_data(speech_model, dataset, subject: str, config: TuningConfig) -> tuple:
    """Select the voxels and build training and validation data.

    Returns
    -------
    train, validation : TuningData
    voxels : ndarray of int
        Response columns used as targets (noise ceiling above the threshold).
    """
    split = dataset.split(subject)
    repeats = dataset.load_repeats(subject, split["test"])
    voxels = select_voxels(cc_max(repeats), config.ceiling_threshold)
    rng = np.random.default_rng(config.seed)

    def load(stories):
        windows, targets = [], []
        for story in stories:
            audio = dataset.load_audio(story, SAMPLE_RATE).waveform
            windows.append(tr_windows(audio, dataset.tr_times(story), config.window_trs, dataset.tr,
                                      lag_trs=config.lag_trs))
            responses = dataset.load_responses(subject, story)
            if responses.shape[1] != repeats.shape[2]:
                raise ValueError(f"{subject}, {story}: {responses.shape[1]} voxel columns, but the test story's "
                                 f"repeats have {repeats.shape[2]}; the voxels chosen on the test story would be "
                                 "other voxels there. Re-download the story's responses.")
            targets.append(zscore(responses[:, voxels]).astype(np.float32))
        return windows, targets

    train_w, train_t = load(split["train"])
    train_w = [w[::config.row_step] for w in train_w]
    train_t = [t[::config.row_step] for t in train_t]
    val_w, val_t = load([split["validation"]])
    train_t = control_targets(train_t, config.control, config.chunk_trs, rng, config.chunk_distance)
    if config.control is not None:  # the control is selected on shuffled targets too
        val_t = control_targets(val_t, "chunk_permute", config.chunk_trs, rng, config.chunk_distance)
    return TuningData(train_w, train_t), TuningData(val_w, val_t), voxels
