"""Figures that compare models: ROI profiles across layers, paired differences, low-level drops, probe scores.

Laid out for the book's content column with :func:`~bt_tutorial.plotting.style.panel_grid`
and :func:`~bt_tutorial.plotting.style.panel_legend`.
"""

from __future__ import annotations

import numpy as np

from bt_tutorial.downstream.probes import best_layer
from bt_tutorial.plotting.style import LABEL_SIZE, MAX_COLUMNS, MODEL_COLORS, TITLE_SIZE, panel_grid, panel_legend


def _roi_ticks(ax, rois) -> None:
    ax.set_xticks(range(len(rois)))
    ax.set_xticklabels([r.replace("_", "\n") for r in rois])


def plot_roi_layers(table, rois, ylabel: str = "normalised alignment (r / CC_max)", title: str = "",
                    ncols: int = MAX_COLUMNS):
    """One panel per ROI: each model's mean across layers with its interval as a band.

    Parameters
    ----------
    table : pandas DataFrame
        Columns ``model, layer, roi, mean, low, high`` (:func:`~bt_tutorial.comparison.roi_tables.roi_layer_table`).
    rois : sequence of str
    ncols : int
        Panels per row at most (all panels share their axes).

    Returns
    -------
    fig : matplotlib Figure
    """
    fig, axes, spare = panel_grid(len(rois), ncols, sharex=True, sharey=True, title=title,
                                  xlabel="layer", ylabel=ylabel)
    for ax, roi in zip(axes, rois):
        for model, rows in table[table["roi"] == roi].groupby("model", sort=False):
            color = MODEL_COLORS.get(model)
            ax.plot(rows["layer"], rows["mean"], "o-", color=color, label=model)
            ax.fill_between(rows["layer"], rows["low"], rows["high"], color=color, alpha=0.2)
        n = int(table[table["roi"] == roi]["n_voxels"].max())
        ax.set_title(f"{roi.replace('_', ' ')} ({n} voxels)", fontsize=TITLE_SIZE)
        ax.set_xticks(sorted(table["layer"].unique()))
        ax.axhline(0, color="0.7", lw=0.8)
    panel_legend(fig, axes, spare)
    return fig


def plot_paired_differences(table, layer, ylabel: str = "difference in normalised alignment", title: str = ""):
    """Bars of paired differences (with intervals) per ROI at one layer, one colour per comparison.

    Parameters
    ----------
    table : pandas DataFrame
        Columns ``comparison, layer, roi, difference, low, high, p_value``
        (:func:`~bt_tutorial.comparison.roi_tables.paired_table`). Stars mark p < 0.05.

    Returns
    -------
    fig : matplotlib Figure
    """
    rows = table[table["layer"] == layer]
    rois = list(dict.fromkeys(rows["roi"]))
    comparisons = list(dict.fromkeys(rows["comparison"]))
    width = 0.8 / len(comparisons)
    fig, (ax,), _ = panel_grid(1, panel_height=3.2, title=title or f"layer {layer}")
    for j, comp in enumerate(comparisons):
        r = rows[rows["comparison"] == comp].set_index("roi").loc[rois]
        x = np.arange(len(rois)) + (j - (len(comparisons) - 1) / 2) * width
        err = np.vstack([r["difference"] - r["low"], r["high"] - r["difference"]])
        ax.bar(x, r["difference"], width, yerr=err, label=comp, alpha=0.85, capsize=2)
        for xi, (d, hi, lo, p) in zip(x, r[["difference", "high", "low", "p_value"]].to_numpy()):
            if p < 0.05:
                ax.text(xi, hi if d >= 0 else lo, "*", ha="center", va="bottom" if d >= 0 else "top",
                        fontsize=12)
    _roi_ticks(ax, rois)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.margins(y=0.12)  # room for the stars
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    panel_legend(fig, [ax])
    return fig


def plot_percent_drop(drops: dict, rois, title: str = "", ylabel: str = "drop in alignment (%)",
                      ncols: int = MAX_COLUMNS):
    """Grouped bars: percentage drop per ROI, one panel per model (or layer), one bar per feature set.

    Parameters
    ----------
    drops : dict of str -> dict of str -> dict of str -> float
        ``drops[group][set][roi]``.
    rois : sequence of str
    ncols : int
        Panels per row at most (all panels share their axes).

    Returns
    -------
    fig : matplotlib Figure
    """
    groups = list(drops)
    fig, axes, spare = panel_grid(len(groups), ncols, sharex=True, sharey=True, title=title, ylabel=ylabel)
    for ax, group in zip(axes, groups):
        sets = list(drops[group])
        width = 0.8 / len(sets)
        for j, s in enumerate(sets):
            x = np.arange(len(rois)) + (j - (len(sets) - 1) / 2) * width
            ax.bar(x, [drops[group][s][r] for r in rois], width, label=s)
        _roi_ticks(ax, rois)
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_title(group, fontsize=TITLE_SIZE)
    panel_legend(fig, axes, spare)
    return fig


def plot_probe_scores(results: dict, metric: str | None = None, chance: dict | None = None,
                      title: str | None = None, ncols: int | None = None):
    """Test score per layer, one panel per task, one line (mean and 95% band) per model.

    The layer each model would be reported at (best on validation) is circled. Panels
    share the hidden-state axis; each keeps its own score axis (tasks differ in level).

    Parameters
    ----------
    results : dict
        ``{model label: {task: {layer: ProbeResult}}}``.
    metric : str, optional
        Default: each result's primary metric.
    chance : dict of str -> float, optional
        A dashed reference line per task (e.g. ``1 / n_classes``).
    title : str, optional
    ncols : int, optional
        Panels per row at most; default :data:`~bt_tutorial.plotting.style.MAX_COLUMNS` (2).

    Returns
    -------
    fig : matplotlib Figure
    """
    from matplotlib.lines import Line2D

    tasks = list(dict.fromkeys(t for by_task in results.values() for t in by_task))
    fig, axes, spare = panel_grid(len(tasks), ncols or MAX_COLUMNS, sharex=True, title=title or "",
                                  xlabel="hidden state", ylabel=f"test {metric or 'score'}")
    for ax, task in zip(axes, tasks):
        for i, (label, by_task) in enumerate(results.items()):
            if task in by_task:  # a small shift per model keeps equal lines from hiding each other
                _draw_model(ax, by_task[task], label, MODEL_COLORS.get(label, f"C{i}"), metric,
                            shift=0.08 * (i - (len(results) - 1) / 2), marker="osD^v"[i % 5])
        if chance and task in chance:
            ax.axhline(chance[task], color="0.5", ls="--", lw=0.8, label="chance")
        first = next(r for by_task in results.values() if task in by_task
                     for r in by_task[task].values())
        name = (metric or first.primary).replace("_f1", "-F1")
        ax.set_title(f"{task.replace('_', ' ')} ({name})", fontsize=TITLE_SIZE)
    best = Line2D([], [], ls="none", marker="o", ms=10, mfc="none", color="0.3", label="best on validation")
    panel_legend(fig, axes, spare, extra=[best], ncols=3)
    return fig


def _draw_model(ax, by_layer: dict, label: str, color: str, metric: str | None, shift: float = 0.0,
                marker: str = "o") -> None:
    layers = sorted(by_layer)
    x = np.array(layers) + shift
    means = np.array([by_layer[k].mean(metric) for k in layers])
    bands = np.array([by_layer[k].interval(metric) for k in layers])
    ax.plot(x, means, "-", marker=marker, color=color, ms=4, label=label)
    ax.fill_between(x, bands[:, 0], bands[:, 1], color=color, alpha=0.15, lw=0)
    k = best_layer(by_layer)
    ax.plot([k + shift], [by_layer[k].mean(metric)], "o", ms=10, mfc="none", color=color)
    ax.set_xticks(layers)
