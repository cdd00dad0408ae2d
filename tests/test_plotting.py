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
