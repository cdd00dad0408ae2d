"""Figures: every function returns the figure.

- :mod:`~bt_tutorial.plotting.style`: the models' colours, widths and panel grids;
- :mod:`~bt_tutorial.plotting.dataset`: transcripts, the TR grid, repeats, resampling (chapter 1);
- :mod:`~bt_tutorial.plotting.alignment`: scores across layers, ROI bars, predictions, ceilings (chapters 2-3);
- :mod:`~bt_tutorial.plotting.brains`: ROI and score maps on the fsaverage5 surface;
- :mod:`~bt_tutorial.plotting.tuning`: tuning windows, training histories, the recipe ablation, recovery
  (chapters 4-5);
- :mod:`~bt_tutorial.plotting.models`: ROI profiles across layers, paired differences, low-level drops and
  probe scores (chapters 5-7).
"""
