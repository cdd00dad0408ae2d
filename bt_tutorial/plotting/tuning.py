"""Figures of brain-tuning and what it changed: the window against the HRF, the ablation, recovery."""

from __future__ import annotations

import numpy as np

from bt_tutorial.dataset.timing import TR, canonical_hrf, hrf_weight_in_window
from bt_tutorial.plotting.style import MODEL_COLORS, _plt


def plot_tuning_windows(windows: dict, tr: float = TR, span: float = 24.0):
    """The canonical HRF and the audio each tuning window feeds the model.

    Parameters
    ----------
    windows : dict of str -> (int, int)
        Label -> ``(window_trs, lag_trs)``.
    tr : float
    span : float
        Seconds before the response shown.

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib.pyplot as plt

    dt = 0.1
    h = canonical_hrf(dt, span)
    seconds = np.arange(len(h)) * dt
    fig, axes = plt.subplots(len(windows) + 1, 1, figsize=(7.5, 1.6 + 0.7 * len(windows)), sharex=True,
                             gridspec_kw={"height_ratios": [3] + [1] * len(windows)})
    axes[0].plot(-seconds, h / h.max(), color="0.2", label="canonical HRF (the twin's)")
    axes[0].axhline(0, color="0.7", lw=0.8)
    axes[0].set_ylabel("HRF weight\n(peak = 1)")
    axes[0].set_title("sound s seconds before the end of the response's TR drives it with weight hrf(s)",
                      fontsize=10)
    for ax, (label, (window_trs, lag_trs)), color in zip(axes[1:], windows.items(), plt.get_cmap("tab10").colors):
        start, end = -(lag_trs + window_trs) * tr, -lag_trs * tr
        axes[0].axvspan(start, end, color=color, alpha=0.12, label=f"{label} window")
        ax.barh(0, end - start, left=start, height=0.6, color=color)
        share = hrf_weight_in_window(window_trs, lag_trs, tr)
        ax.text(start - 0.3, 0, f"{label}: {window_trs} TRs, lag {lag_trs} -> {share:.0%} of the HRF",
                ha="right", va="center", fontsize=9)
        ax.set_yticks([])
        ax.set_ylim(-0.6, 0.6)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    axes[0].legend(fontsize=9, loc="upper left")
    axes[-1].set_xlim(-span, 1)
    axes[-1].set_xlabel("time relative to the end of the response's TR (s)")
    fig.tight_layout()
    return fig


def plot_ablation(table, roi_label: str = "late language", title: str = ""):
    """Paired alignment differences of tuning recipes, with their intervals.

    Parameters
    ----------
    table : pandas DataFrame
        Columns ``recipe``, ``comparison``, ``difference``, ``low``, ``high``
        (one row per recipe and comparison).

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib.pyplot as plt

    recipes = list(dict.fromkeys(table["recipe"]))
    comparisons = list(dict.fromkeys(table["comparison"]))
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.55 * len(recipes) * len(comparisons)))
    height = 0.8 / len(comparisons)
    for j, (comparison, color) in enumerate(zip(comparisons, plt.get_cmap("tab10").colors)):
        rows = table[table["comparison"] == comparison].set_index("recipe").reindex(recipes)
        y = np.arange(len(recipes)) + (j - (len(comparisons) - 1) / 2) * height
        ax.barh(y, rows["difference"], height=height * 0.9, color=color, label=comparison)
        ax.errorbar(rows["difference"], y, xerr=[rows["difference"] - rows["low"], rows["high"] - rows["difference"]],
                    fmt="none", color="0.2", lw=1)
    ax.axvline(0, color="0.4", lw=0.8)
    ax.set_yticks(np.arange(len(recipes)), recipes)
    ax.invert_yaxis()
    ax.set_xlabel(f"difference of normalised alignment, {roi_label} (95% interval)")
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_recovery(table, title: str = ""):
    """Recovery of the twin's true features per layer, one panel per feature set.

    Parameters
    ----------
    table : pandas DataFrame
        From :func:`~bt_tutorial.synthetic.recovery.recovery_table` (``model, layer, truth, mean_r``).

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib.pyplot as plt

    truths = list(dict.fromkeys(table["truth"]))
    fig, axes = plt.subplots(len(truths), 1, figsize=(7.5, 2.8 * len(truths)), sharex=True, squeeze=False)
    for ax, truth in zip(axes[:, 0], truths):
        part = table[table["truth"] == truth]
        for (model, rows), fallback in zip(part.groupby("model", sort=False), plt.get_cmap("tab10").colors):
            ax.plot(rows["layer"], rows["mean_r"], "o-", color=MODEL_COLORS.get(model, fallback), label=model)
        ax.set_ylabel("mean test r")
        ax.set_title(f"true {truth} features", fontsize=10)
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel("layer")
    axes[-1, 0].set_xticks(sorted(table["layer"].unique()))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_training_history(histories: dict, title: str = "", initial: dict | None = None):
    """Loss and validation correlation per epoch, one colour per run.

    Parameters
    ----------
    histories : dict of str -> list of dict
        Run name -> ``TuningResult.history``.
    initial : dict of str -> dict, optional
        Run name -> ``TuningResult.initial``: drawn at epoch 0 (the starting head).

    Returns
    -------
    fig : matplotlib Figure
        Two panels: MSE (training and validation), validation mean r.
    """
    plt = _plt()
    fig, (ax, ax_r) = plt.subplots(2, 1, figsize=(7.5, 5.5), sharex=True)
    for (name, history), fallback in zip(histories.items(), plt.get_cmap("tab10").colors):
        color = MODEL_COLORS.get(name, fallback)
        start = (initial or {}).get(name) or {}
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], "o--", color=color, label=f"{name}: training")
        first = [start] if "val_loss" in start and "val_r" in start else []
        val_epochs = [0] * len(first) + epochs
        ax.plot(val_epochs, [h["val_loss"] for h in first + history], "o-", color=color,
                label=f"{name}: validation")
        if all("val_r" in h for h in history):
            ax_r.plot(val_epochs, [h["val_r"] for h in first + history], "o-", color=color, label=name)
    ax.set_ylabel("MSE (z-scored responses)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax_r.axhline(0, color="0.7", lw=0.8)
    ax_r.set_ylabel("validation mean r")
    ax_r.set_xlabel("epoch (0: before training)" if initial else "epoch")
    ax_r.xaxis.get_major_locator().set_params(integer=True)
    if ax_r.lines[1:]:
        ax_r.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig
