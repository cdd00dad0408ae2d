import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bt_tutorial import plotting  # noqa: E402
from bt_tutorial.data import LebelDataset  # noqa: E402
from bt_tutorial.synthetic import load_ground_truth  # noqa: E402


def test_plot_transcript_labels_the_words_in_the_window(tiny_twin):
    story = LebelDataset(tiny_twin).load_story("stagefright")
    fig = plotting.plot_transcript(story.words, story.phones, story.load_audio(), 1.0, 4.0)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    shown = {t.get_text() for t in fig.axes[1].texts}
    inside = {w for w, s, e in zip(story.words.labels, story.words.starts, story.words.ends)
              if s < 4.0 and e > 1.0}
    assert shown == inside


def test_plot_tr_grid_marks_respdict_minus_20_rows():
    fig = plotting.plot_tr_grid(100, 150.0)
    counts = sorted(len(line.get_xdata()) for line in fig.axes[0].lines if line.get_marker() == "|")
    assert counts == [80, 95, 100]


def test_plot_repeats_draws_each_repeat_and_the_mean():
    reps = np.random.default_rng(0).standard_normal((4, 30, 5))
    fig = plotting.plot_repeats(reps, 2, np.arange(30.0))
    ydata = [line.get_ydata() for line in fig.axes[0].lines if len(line.get_ydata())]
    assert len(ydata) == 5 and np.allclose(ydata[4], reps[:, :, 2].mean(0))


def test_plot_surface_rois_returns_both_hemispheres(tiny_twin):
    gt = load_ground_truth(tiny_twin, "UTS01")
    fig = plotting.plot_surface_rois(gt["roi"], gt["vertex"], gt["hemi"], gt["roi_names"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(gt["roi_names"][1:])


def test_line_bar_prediction_and_histogram_plots():
    fig = plotting.plot_layer_scores([0, 1, 2], {"late_language": [0.1, 0.2, 0.3], "outside": [0, 0, 0.1]})
    assert len(fig.axes[0].lines) == 3  # two groups and the zero line
    fig = plotting.plot_roi_bars({"A1": 0.2, "STS": 0.4})
    assert [p.get_height() for p in fig.axes[0].patches] == [0.2, 0.4]
    t = np.arange(20.0)
    fig = plotting.plot_prediction(t, np.sin(t), np.sin(t))
    assert "r = 1.00" in fig.axes[0].get_legend().get_texts()[1].get_text()
    fig = plotting.plot_ceiling_histogram(np.linspace(0, 1, 50), {"quantiles": {"q50": 0.3, "q90": 0.6}})
    assert sum(p.get_height() for p in fig.axes[0].patches) == 50
    fig = plotting.plot_ceiling_scatter(np.array([0.1, 0.5]), np.array([0.2, 0.4]))
    assert len(fig.axes) == 1
    fig = plotting.plot_resampling(t, np.cos(t), t[::2], np.cos(t[::2]))
    assert len(fig.axes[0].lines) == 2


def test_plot_surface_map_nan_values_and_colour_range(tiny_twin):
    gt = load_ground_truth(tiny_twin, "UTS01")
    values = np.linspace(-1, 1, gt["vertex"].size)
    values[:10] = np.nan
    fig = plotting.plot_surface_map(values, gt["vertex"], gt["hemi"], symmetric=True, title="x")
    assert fig._suptitle.get_text() == "x" and len(fig.axes) >= 2


def test_plot_training_history_draws_train_and_validation_per_run():
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9}, {"epoch": 2, "train_loss": 0.8, "val_loss": 0.85}]
    fig = plotting.plot_training_history({"tuned": history, "control": history})
    assert len(fig.axes[0].lines) == 4
    assert list(fig.axes[0].lines[1].get_ydata()) == [0.9, 0.85]
