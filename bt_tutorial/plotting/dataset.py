"""Figures of the data (chapter 1): a transcript, the TR grid, repeats, resampling onto the TR grid."""

from __future__ import annotations

import numpy as np

from bt_tutorial.dataset.timing import GRID_PAD, SOUND_START, TR, TRIM_START, scan_tr_times
from bt_tutorial.plotting.style import FIGURE_WIDTH, _plt


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
