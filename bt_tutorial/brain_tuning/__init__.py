"""Brain-tuning: fine-tune a speech model to predict fMRI responses (Moussa et al., 2025).

Five parts, in the order a run uses them:

- :mod:`~bt_tutorial.brain_tuning.settings`: :class:`~bt_tutorial.brain_tuning.settings.TuningConfig`, the recipes
  (``TUNING_PRESETS``) and where runs are saved;
- :mod:`~bt_tutorial.brain_tuning.samples`: the audio window of every response row,
  its z-scored targets, and the shuffled-fMRI controls;
- :mod:`~bt_tutorial.brain_tuning.model`: the speech model with a linear head, and the
  ridge fit that can start the head;
- :mod:`~bt_tutorial.brain_tuning.schedule`: the rows of each optimizer step and the
  learning rates (the authors' schedule or this book's);
- :mod:`~bt_tutorial.brain_tuning.loop`: the training loop (mixed precision, gradient
  accumulation, checkpoints, resume), with :mod:`~bt_tutorial.brain_tuning.distributed`
  for several processes and :mod:`~bt_tutorial.brain_tuning.cli` behind
  ``python -m bt_tutorial.brain_tuning``.

:mod:`~bt_tutorial.brain_tuning.runs` keeps a run folder safe (locks, atomic writes,
checkpoints that load no code); :mod:`~bt_tutorial.brain_tuning.benchmark` times training
steps on a GPU (``python -m bt_tutorial.brain_tuning.benchmark``).
"""
