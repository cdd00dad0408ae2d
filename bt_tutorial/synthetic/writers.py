"""Write stimulus and response files in the formats of ds003020."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MIN_GAP = 0.05  # seconds; longer silences get an "sp" interval, as in LeBel's TextGrids


def write_wav(path: Path, waveform: np.ndarray, rate: int, file_rate: int) -> None:
    """Resample to ``file_rate`` with torchaudio and write 16-bit PCM."""
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    if rate != file_rate:
        waveform = AF.resample(torch.from_numpy(waveform), rate, file_rate).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(waveform, -1, 1), file_rate, subtype="PCM_16")


def _with_silences(intervals: list, duration: float) -> list:
    out, t = [], 0.0
    for label, start, end in intervals:
        if end - start < 1e-4:
            continue
        if start - t >= MIN_GAP:
            out.append((t, start, "sp"))
        start = max(start, t)
        out.append((start, end, label))
        t = end
    if duration - t >= MIN_GAP:
        out.append((t, duration, "sp"))
    return out


def write_textgrid(path: Path, words: list, phones: list, duration: float) -> None:
    """Write a TextGrid with tier 0 phones (ARPAbet) and tier 1 words, via praatio."""
    from praatio import textgrid

    tg = textgrid.Textgrid()
    for name, items in (("phone", phones), ("word", words)):
        tg.addTier(textgrid.IntervalTier(name, _with_silences(items, duration), 0.0, duration))
    path.parent.mkdir(parents=True, exist_ok=True)
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def write_responses(path: Path, data: np.ndarray, repeats: np.ndarray | None = None) -> None:
    """Write ``data`` (TRs, voxels) and optionally ``individual_repeats`` as float64 HDF5."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.asarray(data, dtype=np.float64))
        if repeats is not None:
            f.create_dataset("individual_repeats", data=np.asarray(repeats, dtype=np.float64))
