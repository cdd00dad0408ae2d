"""Downstream tasks and linear probes on frozen speech-model features (chapter 7).

- :mod:`~bt_tutorial.downstream.tasks`: the :class:`~bt_tutorial.downstream.tasks.Task` structure shared by all tasks;
- :mod:`~bt_tutorial.downstream.real` and :mod:`~bt_tutorial.downstream.timit`: Speech
  Commands v2, SLURP, CREMA-D and TIMIT for the ``full`` profile;
- :mod:`~bt_tutorial.downstream.clips`: time-averaged hidden states of every layer, cached;
- :mod:`~bt_tutorial.downstream.probes`: ridge probes with the penalty chosen on
  validation speakers carved from training, scored once on held-out speakers;
- :mod:`~bt_tutorial.downstream.report`: summary table and figure.
"""
