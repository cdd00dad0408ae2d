"""Figures that compare models: ROI profiles across layers, paired differences, low-level drops."""

from __future__ import annotations

import numpy as np

from .plotting import _plt

MODEL_COLORS = {"pretrained": "tab:gray", "brain-tuned": "tab:blue", "control": "tab:orange"}


def plot_roi_layers(table, rois, ylabel: str = "normalised alignment (r / CC_max)", title: str = ""):
    """One panel per ROI: each model's mean across layers with its interval as a band.

    Parameters
    ----------
    table : pandas DataFrame
        Columns ``model, layer, roi, mean, low, high`` (:func:`~bt_tutorial.comparison.roi_layer_table`).
    rois : sequence of str

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(rois), figsize=(3.6 * len(rois), 3.4), sharey=True, squeeze=False)
    for ax, roi in zip(axes[0], rois):
        for model, rows in table[table["roi"] == roi].groupby("model", sort=False):
            color = MODEL_COLORS.get(model)
            ax.plot(rows["layer"], rows["mean"], "o-", color=color, label=model)
            ax.fill_between(rows["layer"], rows["low"], rows["high"], color=color, alpha=0.2)
        n = int(table[table["roi"] == roi]["n_voxels"].max())
        ax.set_title(f"{roi.replace('_', ' ')} ({n} voxels)", fontsize=9)
        ax.set_xlabel("layer")
        ax.set_xticks(sorted(table["layer"].unique()))
        ax.axhline(0, color="0.7", lw=0.8)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
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
    plt = _plt()
    rows = table[table["layer"] == layer]
    rois = list(dict.fromkeys(rows["roi"]))
    comparisons = list(dict.fromkeys(rows["comparison"]))
    width = 0.8 / len(comparisons)
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rois)), 3.6))
    for j, comp in enumerate(comparisons):
        r = rows[rows["comparison"] == comp].set_index("roi").loc[rois]
        x = np.arange(len(rois)) + (j - (len(comparisons) - 1) / 2) * width
        err = np.vstack([r["difference"] - r["low"], r["high"] - r["difference"]])
        ax.bar(x, r["difference"], width, yerr=err, label=comp, alpha=0.85, capsize=2)
        for xi, (d, hi, lo, p) in zip(x, r[["difference", "high", "low", "p_value"]].to_numpy()):
            if p < 0.05:
                ax.text(xi, hi if d >= 0 else lo, "*", ha="center", va="bottom" if d >= 0 else "top")
    ax.set_xticks(range(len(rois)))
    ax.set_xticklabels([n.replace("_", "\n") for n in rois], fontsize=8)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"layer {layer}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_percent_drop(drops: dict, rois, title: str = "", ylabel: str = "drop in alignment (%)"):
    """Grouped bars: percentage drop per ROI, one group per model (or layer), one bar per feature set.

    Parameters
    ----------
    drops : dict of str -> dict of str -> dict of str -> float
        ``drops[group][set][roi]``.
    rois : sequence of str

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    groups = list(drops)
    fig, axes = plt.subplots(1, len(groups), figsize=(3.8 * len(groups), 3.6), sharey=True, squeeze=False)
    for ax, group in zip(axes[0], groups):
        sets = list(drops[group])
        width = 0.8 / len(sets)
        for j, s in enumerate(sets):
            x = np.arange(len(rois)) + (j - (len(sets) - 1) / 2) * width
            ax.bar(x, [drops[group][s][r] for r in rois], width, label=s)
        ax.set_xticks(range(len(rois)))
        ax.set_xticklabels([r.replace("_", "\n") for r in rois], fontsize=8)
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_title(group, fontsize=9)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
