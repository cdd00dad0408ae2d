"""Figures of brain-tuning: window vs HRF, ablation bars, recovery curves, training history."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bt_tutorial.dataset.timing import TR, canonical_hrf, hrf_weight_in_window  # noqa: E402
from bt_tutorial.plotting.tuning import (  # noqa: E402
    plot_ablation,
    plot_recovery,
    plot_training_history,  # noqa: E402
    plot_tuning_windows,
)


def test_hrf_share_of_a_window():
    h = canonical_hrf()
    assert np.isclose(h.sum(), 1) and 40 <= int(np.argmax(h)) <= 60  # peak 4-6 s
    assert hrf_weight_in_window(20, 0) == pytest.approx(1.0)
    assert hrf_weight_in_window(3, 2) > hrf_weight_in_window(3, 0)  # the lag moves the window onto the peak
    assert hrf_weight_in_window(1, 0) + hrf_weight_in_window(1, 1) == pytest.approx(hrf_weight_in_window(2, 0))


def test_plot_tuning_windows_draws_one_bar_per_window():
    fig = plot_tuning_windows({"paper": (5, 0), "demo": (3, 2)})
    assert len(fig.axes) == 3
    bar = fig.axes[2].patches[0]
    assert bar.get_x() == pytest.approx(-5 * TR) and bar.get_width() == pytest.approx(3 * TR)
    assert "74%" in fig.axes[2].texts[0].get_text()
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["canonical HRF (the twin's)", "paper window", "demo window"]


def test_plot_ablation_and_recovery():
    table = pd.DataFrame([{"recipe": r, "comparison": c, "difference": d, "low": d - 0.01, "high": d + 0.01}
                          for r, d0 in (("paper", -0.04), ("lag-ridge", 0.07))
                          for c, d in (("brain-tuned - pretrained", d0), ("brain-tuned - control", d0 / 2))])
    fig = plot_ablation(table)
    widths = sorted(p.get_width() for p in fig.axes[0].patches)
    assert widths == pytest.approx([-0.04, -0.02, 0.035, 0.07])
    rec = pd.DataFrame([{"model": m, "layer": k, "truth": t, "mean_r": 0.1 * k}
                        for m in ("pretrained", "brain-tuned") for k in range(3) for t in ("semantic", "lowlevel")])
    fig = plot_recovery(rec)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2


def test_plot_training_history_starts_at_the_initial_head():
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "val_r": 0.2},
               {"epoch": 2, "train_loss": 0.8, "val_loss": 0.95, "val_r": 0.25}]
    fig = plot_training_history({"tuned": history}, initial={"tuned": {"val_loss": 0.97, "val_r": 0.1}})
    val, r = fig.axes[0].lines[1], fig.axes[1].lines[0]
    assert list(val.get_xdata()) == [0, 1, 2] and list(val.get_ydata()) == [0.97, 0.9, 0.95]
    assert list(r.get_ydata()) == [0.1, 0.2, 0.25]
