"""Downstream tasks and linear probes on frozen speech-model features (chapter 7).

- :mod:`~bt_tutorial.downstream.tasks`: the :class:`Task` structure shared by all tasks;
- :mod:`~bt_tutorial.downstream.real` and :mod:`~bt_tutorial.downstream.timit`: Speech
  Commands v2, SLURP, CREMA-D and TIMIT for the ``full`` profile;
- :mod:`~bt_tutorial.downstream.clips`: time-averaged hidden states of every layer, cached;
- :mod:`~bt_tutorial.downstream.probes`: ridge probes with the penalty chosen on
  validation speakers carved from training, scored once on held-out speakers;
- :mod:`~bt_tutorial.downstream.report`: summary table and figure.
"""

from .clips import clip_features
from .probes import DEFAULT_ALPHAS, ProbeResult, best_layer, fit_probe, probe_layer, probe_layers
from .real import default_root, load_crema_d, load_slurp, load_speech_commands
from .report import (largest_difference_at_layer, paired_difference, plot_probe_scores, summary_rows,
                     summary_table)
from .tasks import Task, load_task, save_task
from .timit import load_timit

__all__ = [
    "DEFAULT_ALPHAS", "ProbeResult", "Task", "best_layer",
    "clip_features", "default_root", "fit_probe", "largest_difference_at_layer", "load_crema_d", "load_slurp",
    "load_speech_commands", "load_task", "load_timit", "paired_difference",
    "plot_probe_scores", "probe_layer", "probe_layers", "save_task", "summary_rows", "summary_table",
]
