"""Figures of the tutorial. Every function returns the matplotlib figure."""

from __future__ import annotations

import numpy as np

from .timing import GRID_PAD, SOUND_START, TR, TRIM_START, scan_tr_times

# One colour per model in every figure of the book
MODEL_COLORS = {"pretrained": "tab:gray", "brain-tuned": "tab:blue", "control": "tab:orange"}
# 750 px at 100 dpi: shown about full size in the book's content column, so 10-pt text stays
# about 13 px high (a figure twice as wide would be shrunk, and its text with it)
FIGURE_WIDTH = 7.5


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_transcript(words, phones, audio, t0: float = 0.0, t1: float = 6.0):
    """Waveform with its words and phones, between ``t0`` and ``t1`` seconds.

    Parameters
    ----------
    words, phones : Intervals
    audio : Audio
    t0, t1 : float

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(FIGURE_WIDTH, 4.2), sharex=True,
                             gridspec_kw={"height_ratios": [2, 1, 1]})
    sr = audio.sample_rate
    seg = audio.waveform[int(t0 * sr): int(t1 * sr)]
    axes[0].plot(t0 + np.arange(len(seg)) / sr, seg, lw=0.4, color="0.3")
    axes[0].set_ylabel("audio")
    for ax, tier, color in ((axes[1], words, "tab:blue"), (axes[2], phones, "tab:orange")):
        part = tier.between(t0 - 2, t1)
        for k, (label, s, e) in enumerate(zip(part.labels, part.starts, part.ends)):
            if e < t0:
                continue
            ax.axvspan(max(s, t0), min(e, t1), color=color, alpha=0.25, lw=0)
            ax.axvline(s, color=color, lw=0.6)
            y = 0.5 if tier is words else (0.28, 0.72)[k % 2]  # neighbouring phones alternate
            ax.text((max(s, t0) + min(e, t1)) / 2, y, label, ha="center", va="center",
                    fontsize=9 if tier is words else 8, clip_on=True)
        ax.set_yticks([])
        ax.set_ylabel("words" if tier is words else "phones")
    axes[-1].set_xlim(t0, t1)
    axes[-1].set_xlabel("time from story onset (s)")
    fig.tight_layout()
    return fig


def plot_tr_grid(n_scan_trs: int, audio_duration: float, tr: float = TR):
    """The scan, the simulated TR grid and the rows kept after trimming, on one time axis.

    Parameters
    ----------
    n_scan_trs : int
        Scanner TRs of the story (respdict).
    audio_duration : float
        Length of the story audio in seconds.
    tr : float

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    scan = scan_tr_times(n_scan_trs, tr)
    grid = scan[: n_scan_trs - GRID_PAD]
    kept = scan[TRIM_START: n_scan_trs - TRIM_START]
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 2.6))
    rows = [("scanner TRs (respdict)", scan, "0.6"),
            (f"simulated grid (respdict - {GRID_PAD})", grid, "tab:purple"),
            ("response rows (respdict - 20)", kept, "tab:green")]
    for y, (label, times, color) in enumerate(rows[::-1]):
        ax.plot(times, np.full_like(times, y), "|", ms=10, color=color)
        ax.text(scan[0] - tr, y, label, ha="right", va="center", fontsize=9)
    ax.axvspan(0, audio_duration, color="tab:blue", alpha=0.12, lw=0)
    ax.text(audio_duration / 2, len(rows) - 0.45, "story audio", ha="center", color="tab:blue")
    ax.axvline(-SOUND_START, color="0.3", lw=0.8, ls=":")
    ax.set_ylim(-0.7, len(rows))
    ax.set_yticks([])
    ax.set_xlabel("seconds from story onset (the scan starts 10 s before)")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def plot_repeats(repeats: np.ndarray, voxel: int, tr_times: np.ndarray, title: str | None = None):
    """One voxel's response to every repeat of a story, and their mean.

    Parameters
    ----------
    repeats : ndarray, shape (n_repeats, n_trs, n_voxels)
    voxel : int
    tr_times : ndarray, shape (n_trs,)

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 3))
    ax.plot(tr_times, repeats[:, :, voxel].T, color="0.6", lw=0.6, alpha=0.7)
    ax.plot(tr_times, repeats[:, :, voxel].mean(0), color="tab:red", lw=2,
            label=f"mean of {len(repeats)} repeats")
    ax.plot([], [], color="0.6", lw=0.6, label="single repeats")
    ax.set_xlabel("time from story onset (s)")
    ax.set_ylabel("response (z)")
    ax.set_title(title or f"voxel {voxel}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def _surface_grid(values, vertex, hemi, views, draw):
    """A row of (left, right) inflated fsaverage5 panels per view; ``draw`` fills each panel."""
    from .surface import fsaverage5_meshes, to_fsaverage5

    meshes = fsaverage5_meshes()
    maps = to_fsaverage5(values, vertex, hemi)
    fig, axes = _plt().subplots(len(views), 2, figsize=(FIGURE_WIDTH, 3.0 * len(views)),
                                subplot_kw={"projection": "3d"}, squeeze=False)
    for r, view in enumerate(views):
        for c, side in enumerate(("left", "right")):
            common = dict(hemi=side, view=view, bg_map=meshes[f"sulc_{side}"], axes=axes[r, c], figure=fig)
            draw(meshes[f"infl_{side}"], maps[side], side, view, c, common)
    return fig


def plot_surface_rois(roi: np.ndarray, vertex: np.ndarray, hemi: np.ndarray, roi_names,
                      views=("lateral",)):
    """ROIs of the twin on the inflated fsaverage5 surface (nilearn), both hemispheres.

    Parameters
    ----------
    roi : ndarray, shape (n_voxels,), int
        Index into ``roi_names``; 0 means no ROI.
    vertex, hemi : ndarray, shape (n_voxels,)
        fsaverage5 vertex and hemisphere (0 left, 1 right) of each voxel.
    roi_names : sequence of str
    views : tuple of str
        nilearn views, one row of panels each.

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib.colors as mcolors
    from matplotlib.patches import Patch
    from nilearn import plotting

    colors = _plt().get_cmap("tab10")(np.arange(len(roi_names) - 1) % 10)
    cmap = mcolors.ListedColormap(colors)

    def draw(mesh, side_values, side, view, c, common):
        plotting.plot_surf_roi(mesh, roi_map=side_values, cmap=cmap, vmin=1, vmax=len(roi_names) - 1,
                               colorbar=False, title=f"{side} hemisphere, {view}", **common)

    fig = _surface_grid(np.where(roi > 0, roi, np.nan), vertex, hemi, views, draw)
    handles = [Patch(color=colors[i - 1], label=name) for i, name in enumerate(roi_names) if i > 0]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    return fig


def plot_surface_map(values: np.ndarray, vertex: np.ndarray, hemi: np.ndarray, title: str = "",
                     cmap: str = "inferno", vmin: float | None = None, vmax: float | None = None,
                     symmetric: bool = False, views=("lateral",)):
    """Voxel values on the inflated fsaverage5 surface, both hemispheres (NaN: not shown).

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
    vertex, hemi : ndarray, shape (n_voxels,)
    title : str
    cmap : str
    vmin, vmax : float, optional
        Colour range (default: the 2nd-98th percentiles; symmetric around 0 if asked).
    symmetric : bool
    views : tuple of str

    Returns
    -------
    fig : matplotlib Figure
    """
    from nilearn import plotting

    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    if vmax is None:
        vmax = float(np.percentile(np.abs(finite) if symmetric else finite, 98)) if finite.size else 1.0
    if vmin is None:
        vmin = -vmax if symmetric else (float(np.percentile(finite, 2)) if finite.size else 0.0)
    def draw(mesh, side_values, side, view, c, common):
        plotting.plot_surf_stat_map(mesh, stat_map=side_values, cmap=cmap, vmin=vmin, vmax=vmax,
                                    symmetric_cbar=symmetric, colorbar=(c == 1),
                                    title=f"{side} hemisphere", **common)

    fig = _surface_grid(values, vertex, hemi, views, draw)
    fig.suptitle(title, y=1.04)  # above the hemispheres' own titles, which sit at the top edge
    return fig


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


def plot_resampling(times: np.ndarray, values: np.ndarray, tr_times: np.ndarray, rows: np.ndarray,
                    title: str = ""):
    """One feature on its fine time grid and after Lanczos resampling to the TR grid.

    Parameters
    ----------
    times : ndarray, shape (n_windows,)
    values : ndarray, shape (n_windows,)
    tr_times : ndarray, shape (n_rows,)
    rows : ndarray, shape (n_rows,)
        The resampled (and z-scored) feature.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 3))
    z = (values - values.mean()) / (values.std() or 1.0)
    ax.plot(times, z, color="0.6", lw=0.8, label="window features (z)")
    ax.plot(tr_times, rows, "o-", color="tab:purple", ms=3, lw=1.2, label="on the TR grid (z)")
    ax.set_xlabel("time from story onset (s)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_ceiling_histogram(ceiling: np.ndarray, reference: dict | None = None, title: str = "",
                           threshold: float | None = 0.4):
    """Histogram of noise ceilings, with the real data's quantiles for comparison.

    Parameters
    ----------
    ceiling : ndarray, shape (n_voxels,)
    reference : dict, optional
        One subject of :func:`~bt_tutorial.noise_ceiling.lebel_noise_ceiling_summary`.
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
