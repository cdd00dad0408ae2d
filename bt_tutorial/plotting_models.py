"""Figures that compare models: ROI profiles across layers, paired differences, low-level drops.

The figures are laid out for the book's content column (about 700 px, i.e. 7 inches at
100 dpi): at most :data:`MAX_COLUMNS` panels side by side, text of at least 9 pt, and the
legend outside the data (in the free cell of the last row, or under the panels).
:func:`panel_grid` and :func:`panel_legend` do this for every multi-panel figure of
chapters 5-7.
"""

from __future__ import annotations

import numpy as np

from .plotting import FIGURE_WIDTH, MODEL_COLORS, _plt

PANEL_HEIGHT = 2.6  # inches per row of panels
MAX_COLUMNS = 2
TITLE_SIZE, LABEL_SIZE, LEGEND_SIZE = 10, 10, 9  # points; tick labels keep matplotlib's 10


def grid_shape(n_panels: int, ncols: int = MAX_COLUMNS) -> tuple:
    """Rows and columns of a grid of ``n_panels`` with at most ``ncols`` per row.

    Returns
    -------
    nrows, ncols : int
    """
    if n_panels < 1 or ncols < 1:
        raise ValueError(f"Need at least one panel and one column, got {n_panels} and {ncols}.")
    cols = min(ncols, n_panels)
    return -(-n_panels // cols), cols


def panel_grid(n_panels: int, ncols: int = MAX_COLUMNS, *, sharex: bool = False, sharey: bool = False,
               width: float = FIGURE_WIDTH, panel_height: float = PANEL_HEIGHT, title: str = "",
               xlabel: str = "", ylabel: str = ""):
    """A figure of ``n_panels`` panels, at most ``ncols`` per row (:func:`grid_shape`).

    ``ylabel`` is written once, left of the figure; ``xlabel`` under the lowest panel of
    each column. A free cell left in the last row is returned as ``spare`` (no axis
    drawn) for :func:`panel_legend`; the panel above it keeps its x tick labels.

    Returns
    -------
    fig : matplotlib Figure
    axes : list of Axes, one per panel, row by row
    spare : Axes or None
    """
    plt = _plt()
    nrows, cols = grid_shape(n_panels, ncols)
    height = nrows * panel_height + 0.4 * bool(title)
    fig, grid = plt.subplots(nrows, cols, figsize=(width, height), sharex=sharex, sharey=sharey,
                             squeeze=False, layout="constrained")
    cells = list(grid.flat)
    axes, free = cells[:n_panels], cells[n_panels:]
    lowest = cells[-cols:]
    for ax in free:
        ax.set_axis_off()
        above = cells[cells.index(ax) - cols]
        above.xaxis.set_tick_params(which="both", labelbottom=True)
        lowest[lowest.index(ax)] = above
    for ax in free[1:]:
        fig.delaxes(ax)
    spare = free[0] if free else None
    if spare is not None:
        spare.set_label("legend")
    if title:
        fig.suptitle(title, fontsize=TITLE_SIZE + 1)
    if xlabel:
        for ax in lowest:
            ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    if ylabel:
        fig.supylabel(ylabel, fontsize=LABEL_SIZE)
    return fig, axes, spare


def panel_legend(fig, axes, spare=None, extra=(), ncols: int = 3):
    """One legend for all panels, outside the data.

    Entries are collected from ``axes`` (one per label), then ``extra`` handles. The
    legend fills ``spare`` when there is one, else it goes under the panels.

    Returns
    -------
    legend : matplotlib Legend
    """
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    for handle in extra:
        entries.setdefault(handle.get_label(), handle)
    handles, labels = list(entries.values()), list(entries)
    if spare is not None:
        return spare.legend(handles, labels, loc="center", fontsize=LEGEND_SIZE, frameon=False)
    return fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(labels)),
                      fontsize=LEGEND_SIZE, frameon=False)


def _roi_ticks(ax, rois) -> None:
    ax.set_xticks(range(len(rois)))
    ax.set_xticklabels([r.replace("_", "\n") for r in rois])


def plot_roi_layers(table, rois, ylabel: str = "normalised alignment (r / CC_max)", title: str = "",
                    ncols: int = MAX_COLUMNS):
    """One panel per ROI: each model's mean across layers with its interval as a band.

    Parameters
    ----------
    table : pandas DataFrame
        Columns ``model, layer, roi, mean, low, high`` (:func:`~bt_tutorial.comparison.roi_layer_table`).
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
        (:func:`~bt_tutorial.comparison.paired_table`). Stars mark p < 0.05.

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
