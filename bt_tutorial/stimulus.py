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
# tier names (compared lower-cased, stripped) that identify a TextGrid's tiers
PHONE_TIER_NAMES = ("phone", "phones")
WORD_TIER_NAMES = ("word", "words")


class StimulusFileError(ValueError):
    """A stimulus file (audio or TextGrid) exists but cannot be read as one; the message names it."""


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

    Raises
    ------
    StimulusFileError
        The file is not a sound file libsndfile can read (empty, truncated
        header, a text or HTML page saved as ``.wav``), has no samples, or
        has non-finite (NaN or inf) samples; the message names the file.
    """
    import soundfile as sf

    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:  # LibsndfileError is both
        raise StimulusFileError(f"{path} is not a readable sound file ({exc}).") from None
    if wav.size == 0:
        raise StimulusFileError(f"{path} is a sound file with no samples.")
    wav = wav.mean(axis=1)
    bad = int(np.count_nonzero(~np.isfinite(wav)))
    if bad:
        raise StimulusFileError(f"{path} has {bad} non-finite (NaN or inf) samples.")
    if rate != sample_rate:
        import torch
        import torchaudio.functional as AF

        wav = AF.resample(torch.from_numpy(wav), rate, sample_rate).numpy()
    return Audio(np.ascontiguousarray(wav, dtype=np.float32), sample_rate, rate, Path(path))


def read_textgrid(path) -> tuple:
    """Words and phones of a LeBel-style TextGrid.

    Tiers are found by name, case-insensitive: ``phone`` or ``phones``, and
    ``word`` or ``words``. A tier not found by name falls back to its position
    in LeBel's files (tier 0 phones, tier 1 words); a positional guess whose
    "phones" are fewer than its "words" is refused, since every word has at
    least one phone. Non-speech labels (``BAD_WORDS``) are dropped, words
    lower-cased, phones upper-cased without their stress digits.

    Returns
    -------
    words, phones : Intervals

    Raises
    ------
    StimulusFileError
        The file cannot be parsed as a TextGrid, its tiers cannot be told
        apart, or it has no words; the message names the file.
    """
    from praatio import textgrid

    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False,
                                   duplicateNamesMode="rename")
    except Exception as exc:  # praatio raises many types (ValueError, IndexError, decode errors, ...)
        raise StimulusFileError(f"{path} cannot be parsed as a TextGrid "
                                f"({type(exc).__name__}: {exc}).") from None
    names = list(tg.tierNames)
    phone_tier, word_tier = _find_tier(names, PHONE_TIER_NAMES), _find_tier(names, WORD_TIER_NAMES)
    by_position = phone_tier is None or word_tier is None
    rest = [n for n in names if n not in (phone_tier, word_tier)]
    if by_position and len(rest) < (phone_tier is None) + (word_tier is None):
        raise StimulusFileError(f"{path} has tiers {names}; expected a phone tier and a word tier "
                                f"(named {PHONE_TIER_NAMES} and {WORD_TIER_NAMES}, or in that order).")
    if phone_tier is None:
        phone_tier = rest.pop(0)
    if word_tier is None:
        word_tier = rest.pop(0)
    try:
        phones = _intervals(tg.getTier(phone_tier).entries, _clean_phone, SILENT_PHONES)
        words = _intervals(tg.getTier(word_tier).entries, _clean_word, BAD_WORDS)
    except (AttributeError, TypeError, ValueError) as exc:  # e.g. a point tier where intervals belong
        raise StimulusFileError(f"{path}: tiers {phone_tier!r} / {word_tier!r} are not interval tiers "
                                f"of phones and words ({exc}).") from None
    if len(words) == 0:
        raise StimulusFileError(f"{path}: the word tier {word_tier!r} has no words.")
    if by_position and len(phones) < len(words):
        raise StimulusFileError(
            f"{path}: tiers {names} are not named {PHONE_TIER_NAMES[0]!r} and {WORD_TIER_NAMES[0]!r}, "
            f"and by position tier {phone_tier!r} has fewer intervals ({len(phones)}) than tier "
            f"{word_tier!r} ({len(words)}), so they look swapped; rename the tiers.")
    return words, phones


def _find_tier(names, wanted):
    for name in names:
        if name.strip().lower() in wanted:
            return name
    return None


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
