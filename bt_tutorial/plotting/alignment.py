"""Figures of alignment (chapters 2-3): scores across layers, ROI bars, a prediction, noise ceilings."""

from __future__ import annotations

import numpy as np

from bt_tutorial.plotting.style import FIGURE_WIDTH, MODEL_COLORS, _plt


def plot_layer_scores(layers, scores_by_group: dict, ylabel: str = "mean correlation r", title: str = ""):
    """One line per voxel group across layers.

    Parameters
    ----------
    layers : sequence of int
    scores_by_group : dict of str -> sequence of float (one per layer)

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = {}
    for group, scores in scores_by_group.items():
        model, _, part = group.partition(", ")  # "brain-tuned, late_language": colour by model
        style = {}
        if model in MODEL_COLORS:
            style = {"color": MODEL_COLORS[model], "ls": styles.setdefault(part, ("-", "--", ":")[len(styles) % 3])}
        ax.plot(list(layers), list(scores), marker="o", label=group.replace("_", " "), **{"ls": "-", **style})
    ax.set_xlabel("layer (0 = input of the first transformer layer)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(list(layers))
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roi_bars(means: dict, ylabel: str = "mean correlation r", title: str = "", errors: dict | None = None):
    """Bar chart of a value per ROI (optionally with error bars).

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    names = list(means)
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(names)), 3.6))
    err = [errors[n] for n in names] if errors else None
    ax.bar(range(len(names)), [means[n] for n in names], yerr=err, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_prediction(tr_times: np.ndarray, measured: np.ndarray, predicted: np.ndarray, title: str = ""):
    """Measured and predicted time course of one voxel.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    r = np.corrcoef(measured, predicted)[0, 1] if np.std(predicted) > 0 else 0.0
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 3))
    ax.plot(tr_times, measured, color="0.3", lw=1.2, label="measured (mean of repeats)")
    ax.plot(tr_times, predicted, color="tab:red", lw=1.2, label=f"predicted (r = {r:.2f})")
    ax.set_xlabel("time from story onset (s)")
    ax.set_ylabel("response (z)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_ceiling_scatter(estimated: np.ndarray, true: np.ndarray, groups: np.ndarray | None = None,
                         n_repeats: int | None = None):
    """Estimated against true noise ceiling, one dot per voxel.

    Parameters
    ----------
    estimated, true : ndarray, shape (n_voxels,)
    groups : ndarray, shape (n_voxels,), optional
        Colours the dots.
    n_repeats : int, optional
        Repeats behind the estimate, for the axis label.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    ax.scatter(true, estimated, s=3, alpha=0.3, c=groups, cmap="coolwarm" if groups is not None else None)
    ax.plot([0, 1], [0, 1], color="0.3", lw=0.8)
    ax.set_xlabel("true noise ceiling (ground truth)")
    ax.set_ylabel("estimated CC_max" + (f" ({n_repeats} repeats)" if n_repeats else ""))
    ax.set_xlim(-0.02, 1)
    ax.set_ylim(-0.02, 1)
    fig.tight_layout()
    return fig


def plot_ceiling_histogram(ceiling: np.ndarray, reference: dict | None = None, title: str = "",
                           threshold: float | None = 0.4):
    """Histogram of noise ceilings, with the real data's quantiles for comparison.

    Parameters
    ----------
    ceiling : ndarray, shape (n_voxels,)
    reference : dict, optional
        One subject of :func:`~bt_tutorial.alignment.noise_ceiling.lebel_noise_ceiling_summary`.
    threshold : float, optional
        Voxel selection threshold to mark (the paper's 0.4); None for no line.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.hist(ceiling, bins=40, range=(0, 1), color="tab:blue", alpha=0.7, label="this subject")
    if reference:
        for name, q in reference["quantiles"].items():
            ax.axvline(q, color="tab:red", lw=0.8, ls="--")
        ax.plot([], [], color="tab:red", ls="--", label="real data quantiles (10-99%)")
    if threshold is not None:
        ax.axvline(threshold, color="k", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("noise ceiling CC_max")
    ax.set_ylabel("voxels")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
