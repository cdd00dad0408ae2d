"""Brain-tuning: fine-tune a speech model to predict fMRI responses (Moussa et al., 2025).

For every response row (TR) of a training story, the model reads the audio of the
``window_trs`` TRs that end with it (about 10 s), its last hidden state is averaged
over time and a linear head predicts the z-scored responses of the voxels whose
noise ceiling is above 0.4. Loss MSE; Adam with a backbone learning rate of 5e-5
(warm-up over the first 10% of steps, then linear decay) and 1e-4 for the head;
the convolutional front end stays frozen and the model is in train mode while it
trains (the paper's code left it in eval mode). Checkpoints after every epoch
make a run resumable; the shuffled-fMRI control uses the same loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .models import SAMPLE_RATE, SpeechModel
from .noise_ceiling import cc_max, select_voxels
from .timing import TR, zscore

CONTROLS = (None, "other_story", "chunk_permute")


@dataclass(frozen=True)
class TuningConfig:
    """Settings of a brain-tuning run (the paper's values by default).

    Parameters
    ----------
    window_trs : int
        TRs of audio per sample, ending with the response's TR.
    batch_size, effective_batch : int
        Samples per forward pass; gradients are accumulated up to ``effective_batch``.
    epochs, patience : int
        Maximum epochs; stop after ``patience`` epochs without a better validation loss.
    lr_backbone, lr_head, warmup_fraction : float
    control : {None, "other_story", "chunk_permute"}
        Shuffled-fMRI control: targets from another training story, or the story's
        own TRs permuted in chunks of ``chunk_trs``.
    ceiling_threshold : float
        Voxels whose noise ceiling is above this are the targets.
    seed : int
    mixed_precision : bool
        On a GPU: bf16 autocast where supported, else fp16 with a gradient
        scaler. The CPU always trains in fp32.
    row_step : int
        Train on every ``row_step``-th TR of each training story (1: all; the
        demo profile uses 2 to fit a CPU budget).
    """

    window_trs: int = 5
    batch_size: int = 8
    effective_batch: int = 128
    epochs: int = 10
    patience: int = 3
    lr_backbone: float = 5e-5
    lr_head: float = 1e-4
    warmup_fraction: float = 0.1
    control: str | None = None
    chunk_trs: int = 10
    ceiling_threshold: float = 0.4
    seed: int = 0
    mixed_precision: bool = True
    row_step: int = 1

    def __post_init__(self):
        if self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}, got {self.control!r}.")
        if self.batch_size < 1 or self.effective_batch < self.batch_size:
            raise ValueError("Need 1 <= batch_size <= effective_batch.")


class BrainTunedModel(torch.nn.Module):
    """A speech model with a linear head on its time-averaged last hidden state.

    Parameters
    ----------
    speech_model : SpeechModel
    n_voxels : int
    """

    def __init__(self, speech_model: SpeechModel, n_voxels: int):
        super().__init__()
        self.speech_model = speech_model
        self.backbone = speech_model.backbone
        hidden = speech_model.backbone.config.hidden_size if speech_model.family != "whisper" \
            else speech_model.backbone.config.d_model
        self.head = torch.nn.Linear(hidden, n_voxels)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Predicted responses, shape (batch, n_voxels), from prepared inputs."""
        return self.head(self.speech_model.last_hidden_state(inputs).mean(dim=1))


def tr_windows(waveform: np.ndarray, tr_times: np.ndarray, window_trs: int = 5, tr: float = TR,
               multiple: int = 320) -> np.ndarray:
    """Audio of the ``window_trs`` TRs ending with each response row.

    The window of a row ends at the end of its TR (``tr_times + tr / 2``). Audio
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
    windows : ndarray, shape (n_rows, n_window_samples), a read-only view
    """
    n = int(math.ceil(window_trs * tr * SAMPLE_RATE / multiple) * multiple)
    ends = np.round((np.asarray(tr_times) + tr / 2) * SAMPLE_RATE).astype(int)
    after = max(0, int(ends.max()) - len(waveform))
    padded = np.concatenate([np.zeros(n, np.float32), np.asarray(waveform, np.float32),
                             np.zeros(after, np.float32)])
    return np.lib.stride_tricks.sliding_window_view(padded, n)[ends]


def control_targets(targets: list, control: str | None, chunk_trs: int, rng) -> list:
    """Targets of the shuffled-fMRI control (unchanged when ``control`` is None).

    Parameters
    ----------
    targets : list of ndarray, each (n_rows_i, n_voxels)
    control : {None, "other_story", "chunk_permute"}
    chunk_trs : int
    rng : numpy Generator

    Returns
    -------
    targets : list of ndarray with the same shapes
    """
    if control is None:
        return targets
    if control == "other_story":
        if len(targets) < 2:
            raise ValueError("The 'other_story' control needs at least 2 training stories.")
        return [np.resize(targets[(k + 1) % len(targets)], t.shape) for k, t in enumerate(targets)]
    out = []
    for t in targets:
        chunks = np.array_split(np.arange(len(t)), max(1, int(math.ceil(len(t) / chunk_trs))))
        out.append(t[np.concatenate([chunks[i] for i in rng.permutation(len(chunks))])])
    return out


@dataclass
class TuningData:
    """Windows and targets of a set of stories, indexed by (story, row)."""

    windows: list
    targets: list
    index: np.ndarray = field(init=False)

    def __post_init__(self):
        self.index = np.array([(s, r) for s, t in enumerate(self.targets) for r in range(len(t))])

    def __len__(self) -> int:
        return len(self.index)

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
    voxels = select_voxels(cc_max(dataset.load_repeats(subject, split["test"])), config.ceiling_threshold)
    rng = np.random.default_rng(config.seed)

    def load(stories):
        windows, targets = [], []
        for story in stories:
            audio = dataset.load_audio(story, SAMPLE_RATE).waveform
            windows.append(tr_windows(audio, dataset.tr_times(story), config.window_trs, dataset.tr))
            targets.append(zscore(dataset.load_responses(subject, story)[:, voxels]).astype(np.float32))
        return windows, targets

    train_w, train_t = load(split["train"])
    train_w = [w[::config.row_step] for w in train_w]
    train_t = [t[::config.row_step] for t in train_t]
    val_w, val_t = load([split["validation"]])
    train_t = control_targets(train_t, config.control, config.chunk_trs, rng)
    if config.control is not None:  # the control is selected on shuffled targets too
        val_t = control_targets(val_t, "chunk_permute", config.chunk_trs, rng)
    return TuningData(train_w, train_t), TuningData(val_w, val_t), voxels


def profile_tuning_config(profile: str, **changes) -> TuningConfig:
    """Tuning settings of a profile: the paper's for ``full``; smaller for ``demo``.

    ``demo`` (CPU, about 3 minutes per run for Whisper tiny.en on the twin):
    3-TR windows, every second training TR, 3 epochs, effective batch 32.
    """
    if profile == "demo":
        base = TuningConfig(window_trs=3, batch_size=8, effective_batch=32, epochs=3, patience=3,
                            row_step=2)
    else:
        base = TuningConfig()
    return TuningConfig(**{**base.__dict__, **changes})


def tuned_model_dir(data_home, model_name: str, subject: str, control: str | None = None) -> Path:
    """Where a chapter saves (and later chapters find) a brain-tuned model's run folder."""
    kind = "brain" if control is None else f"control-{control}"
    return Path(data_home) / "tuned" / f"{model_name.replace('/', '--')}_{subject}" / kind
