"""The schedule of a brain-tuning run: which rows each optimizer step trains on, and its learning rates.

The authors' schedule (``src/brain_trainer_story.py`` of bridge-ai-neuro/brain-tuning) changes
the learning rates once per epoch and walks the stories in order, 128 consecutive rows per
step; this book's improved recipe shuffles all rows every epoch and warms the backbone up
over the first steps (:class:`~bt_tutorial.brain_tuning.settings.TuningConfig` says which).
"""

from __future__ import annotations

import math

import numpy as np

from bt_tutorial.brain_tuning.settings import TuningConfig


def _story_sizes(rows_per_story) -> list:
    return [int(rows_per_story)] if np.ndim(rows_per_story) == 0 else [int(n) for n in rows_per_story]


def optimizer_steps(rows_per_story, config: TuningConfig) -> int:
    """Optimizer steps of a whole run: ``epochs`` times the steps of one epoch.

    Parameters
    ----------
    rows_per_story : int or sequence of int
        Training rows of each story (an int: all rows together).
    config : TuningConfig
        ``batch_order="by_story"`` makes ``ceil(n_rows / effective_batch)`` steps per
        story; ``"shuffled"`` ``ceil(total rows / effective_batch)`` in all.
    """
    sizes = _story_sizes(rows_per_story)
    if config.batch_order == "by_story":
        per_epoch = sum(math.ceil(n / config.effective_batch) for n in sizes)
    else:
        per_epoch = math.ceil(sum(sizes) / config.effective_batch)
    return config.epochs * per_epoch


def epoch_batches(rows_per_story, config: TuningConfig, epoch: int) -> list:
    """The training rows of each optimizer step of an epoch.

    Rows are numbered story after story, as in :class:`~bt_tutorial.brain_tuning.samples.TuningData`.

    Returns
    -------
    batches : list of ndarray of int
        ``"by_story"``: ``effective_batch`` consecutive rows of one story per step, the
        stories in their order, every epoch the same; ``"shuffled"``: a new permutation of
        all rows each epoch (seeded by ``config.seed`` and the epoch), cut in steps.
    """
    sizes = _story_sizes(rows_per_story)
    size = config.effective_batch
    if config.batch_order == "by_story":
        starts = np.cumsum([0] + sizes[:-1])
        return [np.arange(a + i, a + min(i + size, n)) for a, n in zip(starts, sizes) for i in range(0, n, size)]
    order = np.random.default_rng([config.seed, epoch]).permutation(sum(sizes))
    return [order[i:i + size] for i in range(0, len(order), size)]


def lr_schedule(steps_per_epoch: int, config: TuningConfig) -> list:
    """Learning-rate multipliers per optimizer step: ``[backbone, head]``.

    With ``config.warmup_epochs`` (the authors), the multipliers change once per epoch:
    the backbone's is ``epoch / warmup_epochs`` during the warm-up (0 in the first
    epoch), then ``1 - (epoch - warmup_epochs) / (epochs - warmup_epochs)``; the head's is
    ``max(head_decay ** epoch, head_floor)``. Without it, the backbone warms up linearly
    over ``warmup_fraction`` of all steps, then decays linearly to 0.

    Returns
    -------
    multipliers : list of two callables, step -> float
    """
    per_epoch = max(1, int(steps_per_epoch))
    total, warm = config.epochs * per_epoch, config.warmup_epochs

    def head(step):
        return max(config.head_decay ** (step // per_epoch), config.head_floor)

    if warm is not None:
        def backbone(step):
            epoch = step // per_epoch
            if epoch < warm:
                return epoch / warm
            return max(0.0, 1 - (epoch - warm) / max(1, config.epochs - warm))
        return [backbone, head]
    warmup = max(1, int(round(config.warmup_fraction * total)))

    def backbone(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return [backbone, head]
