"""Brain-tuning: fine-tune a speech model to predict fMRI responses (Moussa et al., 2025).

For every response row (TR) of a training story, the model reads the audio of the
``window_trs`` TRs that end with it (about 10 s; ``lag_trs`` TRs earlier in the
improved recipe, so that the window holds the audio that drives the delayed
response), its last hidden state is averaged over time and a linear head predicts
the z-scored responses of the voxels whose noise ceiling is above 0.4. The head
starts random (the paper) or from a ridge fit on the pretrained features
(``head_init="ridge"``: linear probing, then fine-tuning). Loss MSE; Adam with a backbone learning rate of 5e-5
(warm-up over the first 10% of steps, then linear decay) and 1e-4 for the head;
the convolutional front end stays frozen and the model is in train mode while it
trains (the paper's code left it in eval mode). Checkpoints after every epoch
make a run resumable; the shuffled-fMRI control uses the same loop.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .encoding import pearson_r
from .models import SAMPLE_RATE, SpeechModel
from .noise_ceiling import cc_max, select_voxels
from .timing import TR, zscore

CONTROLS = (None, "other_story", "chunk_permute")
HEAD_INITS = ("random", "ridge")
SELECT_BY = ("val_loss", "val_r")


@dataclass(frozen=True)
class TuningConfig:
    """Settings of a brain-tuning run (the paper's values by default).

    Parameters
    ----------
    window_trs : int
        TRs of audio per sample, ending with the response's TR (or ``lag_trs`` earlier).
    lag_trs : int
        How many TRs before the end of the response's TR the window ends (0: the
        paper). The haemodynamic response peaks 4-6 s after the sound that drives it.
    head_init : {"random", "ridge"}
        The head starts random (the paper) or as the ridge regression of the
        targets on the pretrained model's pooled outputs, its penalty chosen on
        the validation story (linear probing, then fine-tuning).
    select_by : {"val_loss", "val_r"}
        Validation metric that picks the best epoch and drives early stopping:
        the mean squared error (the paper) or the mean correlation over voxels.
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
    lag_trs: int = 0
    head_init: str = "random"
    select_by: str = "val_loss"

    def __post_init__(self):
        if self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}, got {self.control!r}.")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {HEAD_INITS}, got {self.head_init!r}.")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {SELECT_BY}, got {self.select_by!r}.")
        if not 0 <= self.lag_trs < 20:
            raise ValueError(f"lag_trs must be between 0 and 19 TRs, got {self.lag_trs}.")
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


RIDGE_HEAD_ALPHAS = np.logspace(-2, 6, 17)


def pooled_outputs(model: BrainTunedModel, data: "TuningData", batch_size: int, autocast=nullcontext,
                   progress: bool = False) -> np.ndarray:
    """The backbone's time-averaged last hidden state of every sample, without gradients.

    Returns
    -------
    pooled : ndarray, shape (n_samples, hidden_size), float32
    """
    model.eval()
    out = []
    with torch.no_grad(), autocast():
        for start in tqdm(range(0, len(data), batch_size), disable=not progress, desc="pooled outputs"):
            x, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
            out.append(model.speech_model.last_hidden_state(model.speech_model.prepare(x)).mean(dim=1)
                       .float().cpu().numpy())
    return np.concatenate(out)


def fit_ridge_head(x_train: np.ndarray, targets: list, x_val: np.ndarray, y_val: np.ndarray,
                   alphas=RIDGE_HEAD_ALPHAS) -> dict:
    """Ridge regression of the targets on pooled outputs: the head's starting point.

    One penalty for all voxels, the one with the lowest validation MSE (the
    training loss). Features are centred, so the bias absorbs the means.

    Parameters
    ----------
    x_train : ndarray, shape (n_samples, hidden_size)
    targets : list of ndarray, each (n_rows_i, n_voxels)
        Training targets in the order of ``x_train``'s rows (per story).
    x_val : ndarray, shape (n_val, hidden_size)
    y_val : ndarray, shape (n_val, n_voxels)
    alphas : array_like, shape (n_alphas,)

    Returns
    -------
    head : dict
        ``weight`` (n_voxels, hidden_size), ``bias`` (n_voxels,), ``alpha``,
        ``val_loss`` and ``val_r`` (mean Pearson r over voxels) of the chosen penalty.
    """
    x_train = np.asarray(x_train, np.float64)
    if len(x_train) != sum(len(t) for t in targets):
        raise ValueError(f"x_train has {len(x_train)} rows but the targets have "
                         f"{sum(len(t) for t in targets)}.")
    mean_x = x_train.mean(axis=0)
    u, s, vt = np.linalg.svd(x_train - mean_x, full_matrices=False)
    mean_y = sum(t.sum(axis=0, dtype=np.float64) for t in targets) / len(x_train)
    bounds = np.cumsum([0] + [len(t) for t in targets])
    uty = sum(u[a:b].T @ t for a, b, t in zip(bounds[:-1], bounds[1:], targets))  # mean_y drops out: u is centred
    x_val = np.asarray(x_val, np.float64) - mean_x
    best = None
    for alpha in alphas:
        weight = vt.T @ ((s / (s ** 2 + alpha))[:, None] * uty)
        pred = x_val @ weight + mean_y
        loss = float(np.mean((pred - y_val) ** 2))
        if best is None or loss < best["val_loss"]:
            best = {"weight": weight.T, "alpha": float(alpha), "val_loss": loss, "val_r": mean_correlation(pred, y_val)}
    best["bias"] = mean_y - best["weight"] @ mean_x
    return best


def mean_correlation(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over columns of the Pearson r between two arrays of shape (n_rows, n_columns)."""
    return float(np.mean(pearson_r(pred, target)))


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
    windows : ndarray, shape (n_rows, n_window_samples), a read-only view
    """
    n = int(math.ceil(window_trs * tr * SAMPLE_RATE / multiple) * multiple)
    ends = np.round((np.asarray(tr_times) + tr / 2 - lag_trs * tr) * SAMPLE_RATE).astype(int)
    after = max(0, int(ends.max()) - len(waveform))
    padded = np.concatenate([np.zeros(n, np.float32), np.asarray(waveform, np.float32),
                             np.zeros(after, np.float32)])
    return np.lib.stride_tricks.sliding_window_view(padded, n)[np.maximum(ends, 0)]


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
            windows.append(tr_windows(audio, dataset.tr_times(story), config.window_trs, dataset.tr,
                                      lag_trs=config.lag_trs))
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


TUNING_PRESETS = {
    "paper": {},
    "lag-ridge": {"lag_trs": 2, "head_init": "ridge"},
}


def profile_tuning_config(profile: str, preset: str | None = None, **changes) -> TuningConfig:
    """Tuning settings of a profile and recipe.

    Recipes (``preset``): ``"paper"``, the paper's (window ending at the
    response's TR, random head); ``"lag-ridge"``, the window ending 2 TRs
    (4 s) earlier and the head starting from a ridge fit on the pretrained
    features. ``full`` uses the paper's recipe by default, at the paper's sizes.
    ``demo`` (CPU, about 3.5 minutes per run for Whisper tiny.en on the twin) uses
    ``"lag-ridge"`` by default: with the paper's recipe at demo sizes the head
    does not learn in so few steps and the tuned model equals the shuffled
    control (``benchmarks/demo_effects.py`` measures both).

    Parameters
    ----------
    profile : {"demo", "full"}
    preset : {"paper", "lag-ridge"}, optional
    **changes
        Fields of :class:`TuningConfig` that override the preset.

    Returns
    -------
    config : TuningConfig
    """
    preset = preset or ("lag-ridge" if profile == "demo" else "paper")
    if preset not in TUNING_PRESETS:
        raise ValueError(f"Unknown tuning preset {preset!r}: use one of {sorted(TUNING_PRESETS)}.")
    base = dict(DEMO_SIZES) if profile == "demo" else {}
    return TuningConfig(**{**base, **TUNING_PRESETS[preset], **changes})


DEMO_SIZES = {"window_trs": 3, "batch_size": 8, "effective_batch": 16, "epochs": 1, "patience": 2,
              "row_step": 1}


def tuned_model_dir(data_home, model_name: str, subject: str, control: str | None = None) -> Path:
    """Where a chapter saves (and later chapters find) a brain-tuned model's run folder."""
    kind = "brain" if control is None else f"control-{control}"
    return Path(data_home) / "tuned" / f"{model_name.replace('/', '--')}_{subject}" / kind
