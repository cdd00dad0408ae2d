"""Settings of brain-tuning (Moussa et al., 2025): the recipe, its presets, where runs go.

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
from dataclasses import dataclass
from pathlib import Path

from ..config import model_folder_name

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
        On a GPU: bf16 autocast on compute capability 8.0 or more (A100, H100,
        L4), else fp16 with a gradient scaler (a T4 emulates bf16 slowly). The CPU always trains in fp32.
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
        counts = {name: getattr(self, name) for name in ("epochs", "patience", "row_step", "window_trs",
                                                          "chunk_trs", "batch_size")}
        for name, value in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if self.effective_batch % self.batch_size or self.effective_batch < self.batch_size:
            raise ValueError(f"effective_batch ({self.effective_batch}) must be a multiple of batch_size "
                             f"({self.batch_size}): gradients are accumulated over whole batches.")
        for name in ("lr_backbone", "lr_head"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
        if not (isinstance(self.warmup_fraction, (int, float)) and 0 <= self.warmup_fraction < 1):
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}.")
        if not 0 <= self.ceiling_threshold < 1:
            raise ValueError(f"ceiling_threshold must be in [0, 1), got {self.ceiling_threshold!r}.")


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
    return Path(data_home) / "tuned" / f"{model_folder_name(model_name)}_{subject}" / kind
