"""The synthetic twin of ds003020: the offline default dataset of the ``demo`` profile.

:func:`ensure_twin` generates it once into the data home and reuses it after;
:func:`make_synthetic_twin` writes it anywhere. See :mod:`bt_tutorial.synthetic.twin`.
"""

from .twin import TwinSpec, ensure_twin, load_ground_truth, make_synthetic_twin

__all__ = ["TwinSpec", "ensure_twin", "load_ground_truth", "make_synthetic_twin"]
