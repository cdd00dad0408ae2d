"""Stimulus files: audio (read at the models' rate) and TextGrid transcripts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BAD_WORDS = frozenset(
    ["sentence_start", "sentence_end", "br", "lg", "ls", "ns", "sp", ""]
)
SILENT_PHONES = frozenset(["", "SP", "SIL", "NS", "LG", "BR", "LS"])


@dataclass(frozen=True)
class Intervals:
    """Labelled time intervals (the words or phones of a story).

    Attributes
    ----------
    labels : tuple of str, length n
    starts, ends : ndarray, shape (n,)
        Seconds from the sound onset.
    """

    labels: tuple
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def centers(self) -> np.ndarray:
        """Middle of each interval, shape (n,)."""
        return (self.starts + self.ends) / 2.0

    def between(self, t0: float, t1: float) -> "Intervals":
        """The intervals that start in ``[t0, t1)``."""
        keep = (self.starts >= t0) & (self.starts < t1)
        idx = np.flatnonzero(keep)
        return Intervals(tuple(self.labels[i] for i in idx), self.starts[idx], self.ends[idx])


@dataclass
class Audio:
    """A mono waveform and where it came from.

    Attributes
    ----------
    waveform : ndarray, shape (n_samples,), float32
    sample_rate : int
        Rate of ``waveform`` (after resampling).
    source_rate : int
        Rate of the file on disk.
    path : Path
    """

    waveform: np.ndarray
    sample_rate: int
    source_rate: int
    path: Path

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.waveform) / self.sample_rate


def read_audio(path, sample_rate: int = 16000) -> Audio:
    """Read a sound file as mono float32 and resample it with torchaudio.

    Parameters
    ----------
    path : str or Path
    sample_rate : int
        Rate wanted (16 kHz for the speech models).

    Returns
    -------
    audio : Audio
    """
    import soundfile as sf

    wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    wav = wav.mean(axis=1)
    if rate != sample_rate:
        import torch
        import torchaudio.functional as AF

        wav = AF.resample(torch.from_numpy(wav), rate, sample_rate).numpy()
    return Audio(np.ascontiguousarray(wav, dtype=np.float32), sample_rate, rate, Path(path))


def read_textgrid(path) -> tuple:
    """Words and phones of a LeBel-style TextGrid (tier 0 phones, tier 1 words).

    Non-speech labels (``BAD_WORDS``) are dropped, words lower-cased, phones
    upper-cased without their stress digits.

    Returns
    -------
    words, phones : Intervals
    """
    from praatio import textgrid

    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False,
                               duplicateNamesMode="rename")
    if len(tg.tierNames) < 2:
        raise ValueError(f"{path} has tiers {tg.tierNames}; expected phones then words.")
    phones = _intervals(tg.getTier(tg.tierNames[0]).entries, _clean_phone, SILENT_PHONES)
    words = _intervals(tg.getTier(tg.tierNames[1]).entries, _clean_word, BAD_WORDS)
    return words, phones


def _clean_word(label: str) -> str:
    return label.strip().strip("{}").strip().lower()


def _clean_phone(label: str) -> str:
    return re.sub(r"\d", "", label.strip()).upper()


def _intervals(entries, clean, drop) -> Intervals:
    kept = [(s, e, clean(lab)) for s, e, lab in entries]
    kept = [(s, e, lab) for s, e, lab in kept if lab not in drop]
    labels = tuple(lab for _, _, lab in kept)
    starts = np.array([s for s, _, _ in kept], dtype=float)
    ends = np.array([e for _, e, _ in kept], dtype=float)
    return Intervals(labels, starts, ends)
