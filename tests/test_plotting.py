import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bt_tutorial.comparison.roi_tables import paired_table, roi_layer_table  # noqa: E402
from bt_tutorial.dataset.reader import LebelDataset  # noqa: E402
from bt_tutorial.plotting.alignment import (  # noqa: E402
    plot_ceiling_histogram,
    plot_ceiling_scatter,
    plot_layer_scores,
    plot_prediction,
    plot_roi_bars,
)
from bt_tutorial.plotting.brains import plot_surface_map, plot_surface_rois  # noqa: E402
from bt_tutorial.plotting.dataset import plot_repeats, plot_resampling, plot_tr_grid, plot_transcript  # noqa: E402
from bt_tutorial.plotting.models import plot_paired_differences, plot_percent_drop, plot_roi_layers  # noqa: E402
from bt_tutorial.plotting.style import FIGURE_WIDTH, MODEL_COLORS, grid_shape, panel_grid  # noqa: E402
from bt_tutorial.plotting.tuning import plot_training_history  # noqa: E402
from bt_tutorial.synthetic.truth import load_ground_truth  # noqa: E402


def test_plot_transcript_labels_the_words_in_the_window(tiny_twin):
    story = LebelDataset(tiny_twin).load_story("stagefright")
    fig = plot_transcript(story.words, story.phones, story.load_audio(), 1.0, 4.0)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    shown = {t.get_text() for t in fig.axes[1].texts}
    inside = {w for w, s, e in zip(story.words.labels, story.words.starts, story.words.ends)
              if s < 4.0 and e > 1.0}
    assert shown == inside


def test_plot_tr_grid_marks_respdict_minus_20_rows():
    fig = plot_tr_grid(100, 150.0)
    counts = sorted(len(line.get_xdata()) for line in fig.axes[0].lines if line.get_marker() == "|")
    assert counts == [80, 95, 100]


def test_plot_repeats_draws_each_repeat_and_the_mean():
    reps = np.random.default_rng(0).standard_normal((4, 30, 5))
    fig = plot_repeats(reps, 2, np.arange(30.0))
    ydata = [line.get_ydata() for line in fig.axes[0].lines if len(line.get_ydata())]
    assert len(ydata) == 5 and np.allclose(ydata[4], reps[:, :, 2].mean(0))


def test_plot_surface_rois_returns_both_hemispheres(tiny_twin):
    gt = load_ground_truth(tiny_twin, "UTS01")
    fig = plot_surface_rois(gt["roi"], gt["vertex"], gt["hemi"], gt["roi_names"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(gt["roi_names"][1:])


def test_line_bar_prediction_and_histogram_plots():
    fig = plot_layer_scores([0, 1, 2], {"late_language": [0.1, 0.2, 0.3], "outside": [0, 0, 0.1]})
    assert len(fig.axes[0].lines) == 3  # two groups and the zero line
    fig = plot_roi_bars({"A1": 0.2, "STS": 0.4})
    assert [p.get_height() for p in fig.axes[0].patches] == [0.2, 0.4]
    t = np.arange(20.0)
    fig = plot_prediction(t, np.sin(t), np.sin(t))
    assert "r = 1.00" in fig.axes[0].get_legend().get_texts()[1].get_text()
    fig = plot_ceiling_histogram(np.linspace(0, 1, 50), {"quantiles": {"q50": 0.3, "q90": 0.6}},
                                          threshold=0.25)
    assert sum(p.get_height() for p in fig.axes[0].patches) == 50
    vertical = sorted(line.get_xdata()[0] for line in fig.axes[0].lines if len(line.get_xdata()))
    assert vertical == [0.25, 0.3, 0.6]  # the threshold and the two reference quantiles
    fig = plot_ceiling_histogram(np.linspace(0, 1, 50), threshold=None)
    assert not [line for line in fig.axes[0].lines if len(line.get_xdata())]
    fig = plot_ceiling_scatter(np.array([0.1, 0.5]), np.array([0.2, 0.4]), n_repeats=5)
    points = fig.axes[0].collections[0].get_offsets()
    assert np.allclose(points, [[0.2, 0.1], [0.4, 0.5]])  # x: true, y: estimated
    assert fig.axes[0].get_ylabel() == "estimated CC_max (5 repeats)"
    fig = plot_resampling(t, np.cos(t), t[::2], np.cos(t[::2]))
    fine, coarse = (line.get_ydata() for line in fig.axes[0].lines)
    np.testing.assert_allclose(fine, (np.cos(t) - np.cos(t).mean()) / np.cos(t).std())
    np.testing.assert_allclose(coarse, np.cos(t[::2]))


def test_plot_surface_map_nan_values_and_colour_range(tiny_twin):
    gt = load_ground_truth(tiny_twin, "UTS01")
    values = np.linspace(-1, 1, gt["vertex"].size)
    values[:10] = np.nan
    fig = plot_surface_map(values, gt["vertex"], gt["hemi"], symmetric=True, title="x")
    assert fig._suptitle.get_text() == "x" and len(fig.axes) >= 2
    expected = np.percentile(np.abs(values[10:]), 98)  # NaN ignored
    colorbar = [c for ax in fig.axes for c in ax.collections if c.get_clim() != (None, None)]
    low, high = colorbar[0].get_clim()
    assert high == pytest.approx(expected) and low == pytest.approx(-expected)


def test_plot_training_history_draws_train_and_validation_per_run():
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9}, {"epoch": 2, "train_loss": 0.8, "val_loss": 0.85}]
    fig = plot_training_history({"tuned": history, "control": history})
    assert len(fig.axes[0].lines) == 4
    assert list(fig.axes[0].lines[1].get_ydata()) == [0.9, 0.85]


# ------------------------------------------------ model comparison figures (chapters 5-7)
ROIS = ["late_language", "early_auditory", "primary_auditory"]
MODELS = ("pretrained", "brain-tuned", "control")
SETS = ("spectrum", "phonemes", "diphones", "triphones", "articulation", "rates")


def _normalized(n_layers=5, n=90, seed=0):
    rng = np.random.default_rng(seed)
    base = 0.3 + 0.1 * rng.standard_normal((n_layers, n))
    scores = {m: base + 0.05 * i + 0.02 * rng.standard_normal((n_layers, n)) for i, m in enumerate(MODELS)}
    masks = {r: np.arange(n) % 3 == i for i, r in enumerate(ROIS)}
    return scores, masks


def panels(fig):
    """The data panels: every axes but the one that only holds the legend."""
    return [ax for ax in fig.axes if ax.get_label() != "legend"]


def check_readable_layout(fig, n_panels, max_per_row=2):
    """At most two panels a row, 7-8 inches wide, text >= 9 pt, the legend off the data."""
    axes = panels(fig)
    assert len(axes) == n_panels
    rows = [ax.get_subplotspec().rowspan.start for ax in axes]
    assert max(rows.count(r) for r in set(rows)) <= max_per_row
    assert 7 <= fig.get_figwidth() <= 8
    fig.draw_without_rendering()
    sizes = {t.get_text(): t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()}
    assert min(sizes.values()) >= 9, sizes
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert len(legends) == 1
    box = legends[0].get_window_extent()
    assert not any(box.overlaps(ax.get_window_extent()) for ax in axes)
    return axes


def test_grid_shape_puts_at_most_ncols_panels_in_a_row():
    assert [grid_shape(n) for n in (1, 2, 3, 4, 5)] == [(1, 1), (1, 2), (2, 2), (2, 2), (3, 2)]
    assert grid_shape(3, ncols=1) == (3, 1) and grid_shape(4, ncols=3) == (2, 3)
    with pytest.raises(ValueError):
        grid_shape(0)


def test_panel_grid_keeps_tick_labels_above_the_free_cell():
    fig, axes, spare = panel_grid(3, sharex=True, xlabel="layer")
    assert len(axes) == 3 and spare is not None and not spare.axison
    assert [ax.get_xlabel() for ax in axes] == ["", "layer", "layer"]
    shown = [ax.xaxis.get_tick_params()["labelbottom"] for ax in axes]
    assert shown == [False, True, True]  # the panel above the free cell keeps its tick labels
    fig, axes, spare = panel_grid(4, ncols=3)
    assert spare is not None and len(fig.axes) == 5  # the second free cell is removed
    plt.close("all")


def test_plot_roi_layers_two_columns_shared_axes_legend_in_the_free_cell():
    scores, masks = _normalized()
    fig = plot_roi_layers(roi_layer_table(scores, range(5), masks, ROIS, n_boot=20), ROIS, title="t")
    axes = check_readable_layout(fig, 3)
    assert [ax.get_title() for ax in axes] == ["late language (30 voxels)", "early auditory (30 voxels)",
                                               "primary auditory (30 voxels)"]
    assert all(ax.get_shared_y_axes().joined(axes[0], ax) for ax in axes)
    assert [t.get_text() for t in fig.axes[3].get_legend().get_texts()] == list(MODELS)
    fig = plot_roi_layers(roi_layer_table(scores, range(5), masks, ROIS, n_boot=20), ROIS, ncols=1)
    check_readable_layout(fig, 3, max_per_row=1)
    plt.close("all")


def test_plot_paired_differences_one_wide_panel_legend_below():
    scores, masks = _normalized()
    fig = plot_paired_differences(paired_table(scores, range(5), masks, ROIS, n_permutations=20,
                                                  n_boot=20), 2)
    (ax,) = check_readable_layout(fig, 1)
    assert len(ax.patches) == 3 * 3 and len(fig.legends[0].get_texts()) == 3
    plt.close("all")


def test_plot_percent_drop_panel_per_model_in_two_columns():
    rng = np.random.default_rng(1)
    drops = {m: {s: {r: float(rng.uniform(0, 50)) for r in ROIS} for s in SETS} for m in MODELS}
    fig = plot_percent_drop(drops, ROIS, title="t")
    axes = check_readable_layout(fig, 3)
    assert [ax.get_title() for ax in axes] == list(MODELS)
    heights = [drops["brain-tuned"][s][r] for s in SETS for r in ROIS]
    assert [p.get_height() for p in axes[1].patches] == heights
    assert all(ax.get_shared_y_axes().joined(axes[0], ax) for ax in axes)
    plt.close("all")


def test_every_model_has_one_colour_and_figures_fit_the_column(tiny_twin):
    """Catches a figure in another colour per model, or wider than the book's column (shrunk, legends unreadable)."""
    fig = plot_layer_scores([0, 1], {"brain-tuned, late_language": [0.1, 0.2],
                                              "control, late_language": [0.1, 0.1],
                                              "brain-tuned, early_auditory": [0.2, 0.3]})
    lines = fig.axes[0].get_lines()
    assert lines[0].get_color() == lines[2].get_color() == MODEL_COLORS["brain-tuned"]
    assert lines[1].get_color() == MODEL_COLORS["control"]
    assert lines[0].get_linestyle() != lines[2].get_linestyle()  # one style per ROI
    ds = LebelDataset(tiny_twin)
    story = ds.load_story(ds.stories()[0])
    fig = plot_transcript(story.words, story.phones, story.load_audio(16000), 1.0, 4.0)
    assert fig.get_figwidth() <= FIGURE_WIDTH
    heights = [t.get_position()[1] for t in fig.axes[2].texts]
    assert len(heights) > 2 and all(a != b for a, b in zip(heights, heights[1:]))  # neighbours alternate
    plt.close("all")
