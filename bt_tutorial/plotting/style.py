"""The book's figure style: one colour per model, the content column's width, panel grids and legends.

The figures are laid out for the book's content column (about 700 px, i.e. 7 inches at
100 dpi): at most :data:`MAX_COLUMNS` panels side by side, text of at least 9 pt, and the
legend outside the data (in the free cell of the last row, or under the panels).
:func:`panel_grid` and :func:`panel_legend` do this for every multi-panel figure of
chapters 5-7.
"""

from __future__ import annotations

# One colour per model in every figure of the book
MODEL_COLORS = {"pretrained": "tab:gray", "brain-tuned": "tab:blue", "control": "tab:orange"}
# 750 px at 100 dpi: shown about full size in the book's content column, so 10-pt text stays
# about 13 px high (a figure twice as wide would be shrunk, and its text with it)
FIGURE_WIDTH = 7.5


def _plt():
    import matplotlib.pyplot as plt

    return plt


PANEL_HEIGHT = 2.6  # inches per row of panels
TITLE_SIZE = 10  # points, as LABEL_SIZE; tick labels keep matplotlib's 10
LABEL_SIZE = 10
LEGEND_SIZE = 9


MAX_COLUMNS = 2


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
