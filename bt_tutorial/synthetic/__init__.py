"""The synthetic twin of ds003020: the offline default dataset of the ``demo`` profile.

:func:`~bt_tutorial.synthetic.twin.ensure_twin` generates it once into the data home and reuses it after;
:func:`~bt_tutorial.synthetic.twin.make_synthetic_twin` writes it anywhere. :mod:`~bt_tutorial.synthetic.tasks` speaks
the offline downstream tasks of chapter 7 with the same synthesizer. See :mod:`bt_tutorial.synthetic.twin`.
"""
