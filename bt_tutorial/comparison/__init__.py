"""Comparing pretrained, brain-tuned and control models: ROI tables, the paper's three effects (chapters 4-8).

- :mod:`~bt_tutorial.comparison.roi_tables`: normalised alignment of the three models, per-ROI tables;
- :mod:`~bt_tutorial.comparison.effects`: the paper's three effects with intervals and verdicts;
- :mod:`~bt_tutorial.comparison.closing`: the effects chapters 5-7 keep, side by side (chapter 8);
- :mod:`~bt_tutorial.comparison.workflow`: chapters 4-7 in one call (tune, align, compare), for scripts.

The statistics they share (bootstraps, permutation tests, t-intervals, the verdict rule) are in
:mod:`bt_tutorial.stats`.
"""
