"""Figures of the tutorial. Every function returns the matplotlib figure."""

from __future__ import annotations

import numpy as np

from .timing import GRID_PAD, SOUND_START, TR, TRIM_START, scan_tr_times


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
    fig, axes = plt.subplots(3, 1, figsize=(11, 4.2), sharex=True,
                             gridspec_kw={"height_ratios": [2, 1, 1]})
    sr = audio.sample_rate
    seg = audio.waveform[int(t0 * sr): int(t1 * sr)]
    axes[0].plot(t0 + np.arange(len(seg)) / sr, seg, lw=0.4, color="0.3")
    axes[0].set_ylabel("audio")
    for ax, tier, color in ((axes[1], words, "tab:blue"), (axes[2], phones, "tab:orange")):
        part = tier.between(t0 - 2, t1)
        for label, s, e in zip(part.labels, part.starts, part.ends):
            if e < t0:
                continue
            ax.axvspan(max(s, t0), min(e, t1), color=color, alpha=0.25, lw=0)
            ax.axvline(s, color=color, lw=0.6)
            ax.text((max(s, t0) + min(e, t1)) / 2, 0.5, label, ha="center", va="center",
                    fontsize=8 if tier is words else 6.5, clip_on=True)
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
    fig, ax = plt.subplots(figsize=(11, 2.6))
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
    fig, ax = plt.subplots(figsize=(11, 3))
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

    from .synthetic.cortex import fsaverage5_meshes, to_fsaverage5

    plt = _plt()
    meshes = fsaverage5_meshes()
    maps = to_fsaverage5(np.where(roi > 0, roi, np.nan), vertex, hemi)
    colors = plt.get_cmap("tab10")(np.arange(len(roi_names) - 1) % 10)
    cmap = mcolors.ListedColormap(colors)
    fig, axes = plt.subplots(len(views), 2, figsize=(12, 4.4 * len(views)),
                             subplot_kw={"projection": "3d"}, squeeze=False)
    for r, view in enumerate(views):
        for c, side in enumerate(("left", "right")):
            plotting.plot_surf_roi(
                meshes[f"infl_{side}"], roi_map=maps[side], hemi=side, view=view,
                bg_map=meshes[f"sulc_{side}"], cmap=cmap, vmin=1, vmax=len(roi_names) - 1,
                axes=axes[r, c], figure=fig, colorbar=False,
                title=f"{side} hemisphere, {view}")
    handles = [Patch(color=colors[i - 1], label=name) for i, name in enumerate(roi_names) if i > 0]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    return fig
