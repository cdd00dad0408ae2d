"""Settings of brain-tuning (Moussa et al., 2025): the recipe, its presets, where runs go.

For every response row (TR) of a training story, the model reads the audio of the
``window_trs`` TRs that end with it (about 10 s; ``lag_trs`` TRs earlier in the
improved recipe, so that the window holds the audio that drives the delayed
response), its last hidden state is averaged over time and a linear head predicts
the z-scored responses of the voxels whose noise ceiling is above 0.4. Loss MSE;
Adam with a backbone learning rate of 5e-5 and 1e-4 for the head; the convolutional
front end stays frozen. Checkpoints after every epoch and every ``checkpoint_every_steps``
optimizer steps make a run resumable; the shuffled-fMRI control uses the same loop.

The defaults of :class:`TuningConfig` (the ``"paper"`` preset) are those of the authors'
trainer (``src/brain_trainer_story.py`` of bridge-ai-neuro/brain-tuning, commit b7c325e):
30 epochs without early stopping; the backbone's learning rate 0 in the first epoch,
rising by a fifth per epoch to its full value at epoch 6, then falling linearly (to 4% at
the last epoch); the head's multiplied by 0.8 each epoch down to a tenth; batches of 128
consecutive rows, story by story; and the model left in eval mode (``from_pretrained``
returns it so and the trainer never calls ``train()``), so no dropout, SpecAugment masking
or LayerDrop. The ``"lag-ridge"`` preset (the demo's) is this book's improved recipe:
the lagged window, a ridge head, train mode, shuffled batches, 10% warm-up then linear
decay of the backbone, a constant head rate, and early stopping.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from bt_tutorial.config import model_folder_name

CONTROLS = (None, "other_story", "chunk_permute")
HEAD_INITS = ("random", "ridge")
SELECT_BY = ("val_loss", "val_r")
BATCH_ORDERS = ("by_story", "shuffled")


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
        Validation metric that picks the best epoch (and drives early stopping):
        the mean squared error or the mean correlation over voxels. The authors
        keep the checkpoints of epochs 6, 11 and 21 and report on the test story;
        this book picks the epoch on the validation story instead.
    batch_size, effective_batch : int
        Samples per forward pass; gradients are accumulated up to ``effective_batch``
        (the authors: 128 per optimizer step).
    epochs : int
        Epochs to train (the authors: 30).
    patience : int or None
        Stop after ``patience`` epochs without a better validation metric; None never
        stops early (the authors).
    batch_order : {"by_story", "shuffled"}
        ``"by_story"``: each story's rows in time order, ``effective_batch`` consecutive
        rows per step, stories in a fixed order (the authors' per-story data loaders);
        ``"shuffled"``: all training rows in a new random order every epoch.
    train_mode : bool
        Train with the model in train mode (dropout, SpecAugment masking and LayerDrop
        on, as the model's config sets them) or in eval mode (the authors).
    lr_backbone, lr_head : float
    warmup_epochs : int or None
        Backbone schedule by epoch (the authors: 5): multiplier ``epoch / warmup_epochs``
        in the first ``warmup_epochs`` epochs (0 in the first: only the head learns), then
        ``1 - (epoch - warmup_epochs) / (epochs - warmup_epochs)``, epochs counted from 0.
        None: by step, warm-up over ``warmup_fraction`` of the steps, then linear decay to 0.
    warmup_fraction : float
        Used when ``warmup_epochs`` is None.
    head_decay, head_floor : float
        Head multiplier ``max(head_decay ** epoch, head_floor)`` (the authors: 0.8, 0.1);
        1.0 and 1.0 keep it constant.
    control : {None, "other_story", "chunk_permute"}
        Shuffled-fMRI control: targets from a random other training story (cut, or
        topped up with its rows drawn at random, to the story's length), or the story's
        own TRs in chunks of ``chunk_trs`` swapped with chunks at least
        ``chunk_distance`` chunks away (see :func:`~bt_tutorial.brain_tuning.samples.control_targets`).
    chunk_trs, chunk_distance : int
        The authors: 15 and 10. ``chunk_distance=0`` permutes the chunks at random.
    ceiling_threshold : float
        Voxels whose noise ceiling is above this are the targets.
    seed : int
        Non-negative: it seeds torch and numpy's global generators (dropout, SpecAugment
        masks, LayerDrop) and the shuffled batch order.
    mixed_precision : bool
        On a GPU: bf16 autocast on compute capability 8.0 or more (A100, H100,
        L4), else fp16 with a gradient scaler (a T4 emulates bf16 slowly). The CPU always trains in fp32.
    row_step : int
        Train on every ``row_step``-th TR of each training story (1: all).
    checkpoint_every_steps : int
        Also write a checkpoint every this many optimizer steps (counted over the run, as
        the Hugging Face Trainer's ``save_steps``) inside an epoch, so a disconnect loses at
        most these steps; 0: at the ends of epochs only. The default, 50, is a checkpoint
        every 10 to 25 minutes of wav2vec2-base on one GPU at the paper's sizes (about 70
        steps an epoch; its checkpoint, with Adam's state, is about 1.1 GB); the demo's
        epochs of 42 steps write none. It does not change the weights, so a run may be
        resumed with another value.
    """

    window_trs: int = 5
    batch_size: int = 8
    effective_batch: int = 128
    epochs: int = 30
    patience: int | None = None
    batch_order: str = "by_story"
    train_mode: bool = False
    lr_backbone: float = 5e-5
    lr_head: float = 1e-4
    warmup_epochs: int | None = 5
    warmup_fraction: float = 0.1
    head_decay: float = 0.8
    head_floor: float = 0.1
    control: str | None = None
    chunk_trs: int = 15
    chunk_distance: int = 10
    ceiling_threshold: float = 0.4
    seed: int = 0
    mixed_precision: bool = True
    row_step: int = 1
    lag_trs: int = 0
    head_init: str = "random"
    select_by: str = "val_loss"
    checkpoint_every_steps: int = 50

    def __post_init__(self):
        if self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}, got {self.control!r}.")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {HEAD_INITS}, got {self.head_init!r}.")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {SELECT_BY}, got {self.select_by!r}.")
        if not 0 <= self.lag_trs < 20:
            raise ValueError(f"lag_trs must be between 0 and 19 TRs, got {self.lag_trs}.")
        if self.batch_order not in BATCH_ORDERS:
            raise ValueError(f"batch_order must be one of {BATCH_ORDERS}, got {self.batch_order!r}.")
        counts = {name: getattr(self, name) for name in ("epochs", "patience", "row_step", "window_trs",
                                                          "chunk_trs", "batch_size", "warmup_epochs")}
        for name, value in counts.items():
            if value is None and name in ("patience", "warmup_epochs"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1{' or None' if name in ('patience', 'warmup_epochs') else ''}, "
                                 f"got {value!r}.")
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer (--seed), got {self.seed!r}.")
        for name in ("chunk_distance", "checkpoint_every_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")
        if not isinstance(self.train_mode, bool):
            raise ValueError(f"train_mode must be True or False, got {self.train_mode!r}.")
        if not (0 < self.head_decay <= 1 and 0 <= self.head_floor <= 1):
            raise ValueError(f"head_decay must be in (0, 1] and head_floor in [0, 1], got {self.head_decay!r} "
                             f"and {self.head_floor!r}.")
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


IMPROVED_SCHEDULE = {"epochs": 10, "patience": 3, "batch_order": "shuffled", "train_mode": True,
                     "warmup_epochs": None, "warmup_fraction": 0.1, "head_decay": 1.0, "head_floor": 1.0,
                     "chunk_trs": 10, "chunk_distance": 0}
TUNING_PRESETS = {
    "paper": {},
    "lag-ridge": {"lag_trs": 2, "head_init": "ridge", **IMPROVED_SCHEDULE},
}


def profile_tuning_config(profile: str, preset: str | None = None, **changes) -> TuningConfig:
    """Tuning settings of a profile and recipe.

    Recipes (``preset``): ``"paper"``, the authors' (window ending at the
    response's TR, random head, their schedule, eval mode, 30 epochs);
    ``"lag-ridge"``, the window ending 2 TRs (4 s) earlier, the head starting from a
    ridge fit on the pretrained features, and this book's schedule
    (:data:`IMPROVED_SCHEDULE`: train mode, shuffled batches, up to 10 epochs with
    early stopping). ``full`` uses the paper's recipe by default, at the paper's sizes.
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
    sizes = DEMO_SIZES if profile == "demo" else {}
    return TuningConfig(**{**TUNING_PRESETS[preset], **sizes, **changes})


DEMO_SIZES = {"window_trs": 3, "batch_size": 8, "effective_batch": 16, "epochs": 1, "row_step": 1}


def tuned_model_dir(data_home, model_name: str, subject: str, control: str | None = None) -> Path:
    """Where a chapter saves (and later chapters find) a brain-tuned model's run folder."""
    kind = "brain" if control is None else f"control-{control}"
    return Path(data_home) / "tuned" / f"{model_folder_name(model_name)}_{subject}" / kind
