"""Simulated fMRI responses of the twin: stimulus drive, HRF, voxel weights, noise.

Each voxel mixes a semantic drive (sentence embeddings of the recent words) and
a low-level drive (mel-band power, phone rate, word rate) in a proportion set
by its ROI, convolved with the canonical double-gamma HRF. Noise is AR(1) with
a per-voxel level chosen from a target noise ceiling, so the ceiling of every
voxel is known.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from bt_tutorial.dataset.timing import SOUND_START, canonical_hrf
from bt_tutorial.synthetic.cortex import ROI_NAMES

DT = 0.1  # seconds, resolution of the stimulus time courses
N_MEL_BANDS = 6
LOWLEVEL_NAMES = tuple(f"mel{k}" for k in range(N_MEL_BANDS)) + ("phone_rate", "word_rate")

# semantic share of the drive per ROI: auditory mostly low-level, language mostly semantic
SEMANTIC_FRACTION = {"none": 0.5, "A1": 0.1, "Belt": 0.3}
LANGUAGE_SEMANTIC_FRACTION = 0.85


def fine_times(n_scan_trs: int, tr: float, dt: float = DT) -> np.ndarray:
    """Times (s, from sound onset) of the fine grid covering the whole scan."""
    return -SOUND_START + np.arange(int(np.ceil(n_scan_trs * tr / dt))) * dt


def hold_vectors(starts: np.ndarray, vectors: np.ndarray, times: np.ndarray, stop: float) -> np.ndarray:
    """Value of the most recent vector at each time (zero before the first and after ``stop``).

    Returns
    -------
    held : ndarray, shape (n_times, n_features)
    """
    idx = np.searchsorted(starts, times, side="right") - 1
    held = vectors[np.clip(idx, 0, None)].astype(float)
    held[(idx < 0) | (times > stop)] = 0.0
    return held


def event_rate(onsets: np.ndarray, times: np.ndarray, width: float = 0.5) -> np.ndarray:
    """Events per second around each time (box window of ``width`` seconds)."""
    edges = np.append(times, times[-1] + DT) - DT / 2
    counts = np.histogram(onsets, bins=edges)[0].astype(float)
    box = np.ones(max(1, int(round(width / DT))))
    return np.convolve(counts, box / (box.size * DT), mode="same")


def mel_band_power(waveform: np.ndarray, sample_rate: int, times: np.ndarray) -> np.ndarray:
    """Log power in ``N_MEL_BANDS`` mel bands, averaged in ``DT`` bins at ``times``.

    Returns
    -------
    power : ndarray, shape (n_times, N_MEL_BANDS); silence outside the audio.
    """
    import torch
    import torchaudio.transforms as T

    hop = int(sample_rate * DT / 4)
    mel = T.MelSpectrogram(sample_rate, n_fft=1024, hop_length=hop, n_mels=N_MEL_BANDS,
                           f_max=min(8000, sample_rate // 2))(torch.from_numpy(waveform))
    logp = torch.log(mel + 1e-6).T.numpy()  # (frames, bands)
    frame_t = np.arange(len(logp)) * hop / sample_rate
    idx = np.clip(np.round((frame_t - times[0]) / DT).astype(int), 0, len(times) - 1)
    out = np.full((len(times), N_MEL_BANDS), np.log(1e-6))
    sums = np.zeros_like(out)
    np.add.at(sums, idx, logp)
    n = np.bincount(idx, minlength=len(times))[:, None]
    np.divide(sums, n, out=out, where=n > 0)
    return out


def sample_at_trs(course: np.ndarray, scan_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Convolve a fine time course with the HRF and read it at the scan TR times.

    Parameters
    ----------
    course : ndarray, shape (n_times, n_features)
    scan_times : ndarray, shape (n_trs,)
    times : ndarray, shape (n_times,)

    Returns
    -------
    sampled : ndarray, shape (n_trs, n_features)
    """
    h = canonical_hrf()[:, None]
    conv = signal.fftconvolve(course, h, axes=0)[: len(course)]
    idx = np.clip(np.round((scan_times - times[0]) / DT).astype(int), 0, len(times) - 1)
    return conv[idx]


def smooth_fields(sphere: np.ndarray, hemi: np.ndarray, n_fields: int, rng,
                  n_bumps: int = 30, width: float = 18.0, independent: float = 0.3) -> np.ndarray:
    """Spatially smooth random weights on the sphere, one field per feature.

    Returns
    -------
    fields : ndarray, shape (n_fields, n_voxels), each field with unit variance.
    """
    out = np.zeros((n_fields, len(sphere)))
    for side in (0, 1):
        sel = np.flatnonzero(hemi == side)
        for k in range(n_fields):
            centres = sphere[rng.choice(sel, n_bumps, replace=False)]
            d2 = ((sphere[sel, None, :] - centres[None]) ** 2).sum(-1)
            out[k, sel] = np.exp(-d2 / (2 * width ** 2)) @ rng.standard_normal(n_bumps)
    out += independent * out.std() * rng.standard_normal(out.shape)
    return out / out.std(axis=1, keepdims=True)


def semantic_fractions(roi: np.ndarray) -> np.ndarray:
    """Share of the semantic drive in each voxel's signal, by ROI, shape (n_voxels,)."""
    frac = np.array([SEMANTIC_FRACTION.get(n, LANGUAGE_SEMANTIC_FRACTION) for n in ROI_NAMES])
    return frac[roi]


def target_noise_ceilings(roi: np.ndarray, rng, null_fraction: float, low_outside: float,
                          low_inside: float = 0.55, high: float = 0.95) -> np.ndarray:
    """Draw each voxel's true noise ceiling (CC_max for the mean of the repeats).

    Outside the ROIs a fraction ``null_fraction`` of voxels carries no signal
    (ceiling 0); the other voxels draw a ceiling uniformly in
    ``[low_outside, high]`` (``[low_inside, high]`` in the ROIs). Ceilings
    between 0 and ``low_outside`` are left out on purpose: with 10 repeats of a
    few hundred TRs their estimate is mostly sampling noise, and the estimated
    distribution of the whole cortex still looks like the real one (sampling
    noise spreads the signal-free voxels over 0-0.45).
    """
    inside = roi > 0
    c = np.where(inside, rng.uniform(low_inside, high, len(roi)),
                 rng.uniform(low_outside, high, len(roi)))
    c[(~inside) & (rng.random(len(roi)) < null_fraction)] = 0.0
    return c


def noise_sd_for_ceiling(ceiling: np.ndarray, n_repeats: int) -> np.ndarray:
    """Per-trial noise s.d. (signal variance 1) that gives ``ceiling`` with n repeats.

    From CC_max = 1 / sqrt(1 + (NP / SP) / N) (Schoppe et al. 2016):
    NP / SP = N (1 / CC_max^2 - 1). A zero ceiling gets infinite noise, returned
    as ``inf`` (the voxel is pure noise).
    """
    with np.errstate(divide="ignore"):
        ratio = n_repeats * (1.0 / np.square(ceiling) - 1.0)
    return np.sqrt(ratio)


def ar1_noise(rng, n_times: int, n_voxels: int, rho: float = 0.2) -> np.ndarray:
    """Unit-variance AR(1) noise, shape (n_times, n_voxels)."""
    e = rng.standard_normal((n_times, n_voxels)) * np.sqrt(1 - rho ** 2)
    return signal.lfilter([1.0], [1.0, -rho], e, axis=0)
