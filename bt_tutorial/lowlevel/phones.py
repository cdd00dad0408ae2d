"""Phones of a transcript: the 39 ARPAbet phones, their articulation, diphones and triphones.

The articulation table is written here (no external source): 22 binary
features per phone.

========== ===================================================================
group      features
========== ===================================================================
place (7)  bilabial, labiodental, dental, alveolar, postalveolar, velar, glottal
manner (6) stop, fricative, affricate, nasal, liquid, glide
voicing    voiced (every vowel is voiced)
vowel (8)  front, central, back, high, mid, low, rounded, tense
========== ===================================================================

Choices: R is a postalveolar liquid (the English approximant), W a rounded
bilabial and velar glide, Y a glide marked front and high (the glide of IY)
rather than palatal; ER is a central mid rounded vowel (English /ɝ/ is
produced with rounded lips), which keeps it apart from AH. Diphthongs carry
the features of both targets (AY = central low + front high). ``tense`` marks
IY, UW, EY and OW, the tense members of the pairs the other features cannot
tell apart (IY/IH, UW/UH). With these choices every phone has its own row.

Diphones and triphones are runs of 2 or 3 consecutive phones inside one word
(a phone belongs to the word whose interval holds its centre): runs across
word boundaries mostly span pauses and would make the vocabulary grow with
every word pair. The sets keep the ``top_k`` most frequent runs of the
*training* stories (:func:`~bt_tutorial.lowlevel.phones.phone_ngram_vocabulary`), so the test story adds
nothing to the features' definition.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

# the 39 phones of the CMU dictionary, as LeBel et al.'s TextGrids label them (stress digits aside)
ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY",
    "F", "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P",
    "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)
VOWELS = frozenset(["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH",
                    "IY", "OW", "OY", "UH", "UW"])
PHONES = ARPABET
ARTICULATORY_FEATURES = (
    "bilabial", "labiodental", "dental", "alveolar", "postalveolar", "velar", "glottal",
    "stop", "fricative", "affricate", "nasal", "liquid", "glide", "voiced",
    "front", "central", "back", "high", "mid", "low", "rounded", "tense",
)
_VOICED_VOWEL = ("voiced",)
_PHONE_FEATURES = {
    # consonants: place, manner, voicing
    "P": ("bilabial", "stop"), "B": ("bilabial", "stop", "voiced"),
    "T": ("alveolar", "stop"), "D": ("alveolar", "stop", "voiced"),
    "K": ("velar", "stop"), "G": ("velar", "stop", "voiced"),
    "F": ("labiodental", "fricative"), "V": ("labiodental", "fricative", "voiced"),
    "TH": ("dental", "fricative"), "DH": ("dental", "fricative", "voiced"),
    "S": ("alveolar", "fricative"), "Z": ("alveolar", "fricative", "voiced"),
    "SH": ("postalveolar", "fricative"), "ZH": ("postalveolar", "fricative", "voiced"),
    "HH": ("glottal", "fricative"),
    "CH": ("postalveolar", "affricate"), "JH": ("postalveolar", "affricate", "voiced"),
    "M": ("bilabial", "nasal", "voiced"), "N": ("alveolar", "nasal", "voiced"),
    "NG": ("velar", "nasal", "voiced"),
    "L": ("alveolar", "liquid", "voiced"), "R": ("postalveolar", "liquid", "voiced"),
    "W": ("bilabial", "velar", "glide", "voiced", "rounded"),
    "Y": ("glide", "voiced", "front", "high"),
    # monophthongs
    "AA": _VOICED_VOWEL + ("back", "low"), "AE": _VOICED_VOWEL + ("front", "low"),
    "AH": _VOICED_VOWEL + ("central", "mid"), "AO": _VOICED_VOWEL + ("back", "mid", "rounded"),
    "EH": _VOICED_VOWEL + ("front", "mid"), "ER": _VOICED_VOWEL + ("central", "mid", "rounded"),
    "IH": _VOICED_VOWEL + ("front", "high"), "IY": _VOICED_VOWEL + ("front", "high", "tense"),
    "UH": _VOICED_VOWEL + ("back", "high", "rounded"),
    "UW": _VOICED_VOWEL + ("back", "high", "rounded", "tense"),
    # diphthongs: both targets
    "AW": _VOICED_VOWEL + ("central", "low", "back", "high", "rounded"),
    "AY": _VOICED_VOWEL + ("central", "low", "front", "high"),
    "EY": _VOICED_VOWEL + ("front", "mid", "high", "tense"),
    "OW": _VOICED_VOWEL + ("back", "mid", "high", "rounded", "tense"),
    "OY": _VOICED_VOWEL + ("back", "mid", "front", "high", "rounded"),
}


def articulation_table() -> np.ndarray:
    """Articulatory features of every phone.

    Returns
    -------
    table : ndarray, shape (39, 22), float32
        Row ``i`` is phone ``PHONES[i]``, column ``j`` feature
        ``ARTICULATORY_FEATURES[j]``; 1 where the phone has the feature.
    """
    table = np.zeros((len(PHONES), len(ARTICULATORY_FEATURES)), np.float32)
    for i, phone in enumerate(PHONES):
        for feature in _PHONE_FEATURES[phone]:
            table[i, ARTICULATORY_FEATURES.index(feature)] = 1.0
    return table


ARTICULATION = articulation_table()
_PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}


def phone_indices(labels) -> np.ndarray:
    """Index into ``PHONES`` of each label, -1 for labels that are not ARPAbet phones.

    Parameters
    ----------
    labels : sequence of str, length n
        Phones, upper-case without stress digits (as :func:`~bt_tutorial.dataset.stimulus.read_textgrid`
        gives them).

    Returns
    -------
    index : ndarray, shape (n,), int
    """
    return np.array([_PHONE_INDEX.get(lab, -1) for lab in labels], dtype=int)


def word_of_phone(words, phones) -> np.ndarray:
    """Index of the word that holds each phone's centre, -1 for phones outside all words.

    Parameters
    ----------
    words, phones : Intervals
        Sorted by start time.

    Returns
    -------
    word : ndarray, shape (n_phones,), int
    """
    centers = phones.centers
    j = np.searchsorted(words.starts, centers, side="right") - 1
    inside = (j >= 0) & (centers < words.ends[np.clip(j, 0, None)])
    return np.where(inside, j, -1)


def phone_ngrams(words, phones, n: int) -> tuple:
    """Runs of ``n`` consecutive phones inside one word.

    Runs that contain a label outside ``PHONES`` are skipped.

    Parameters
    ----------
    words, phones : Intervals
    n : int
        2 for diphones, 3 for triphones.

    Returns
    -------
    ngrams : list of tuple of str, length n_runs
    times : ndarray, shape (n_runs,)
        Middle of each run (start of its first phone to end of its last), in seconds.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    word = word_of_phone(words, phones)
    known = phone_indices(phones.labels) >= 0
    ngrams, times = [], []
    for i in range(len(phones) - n + 1):
        span = slice(i, i + n)
        if word[i] >= 0 and np.all(word[span] == word[i]) and np.all(known[span]):
            ngrams.append(tuple(phones.labels[span]))
            times.append((phones.starts[i] + phones.ends[i + n - 1]) / 2.0)
    return ngrams, np.array(times, dtype=float)


def phone_ngram_vocabulary(dataset, stories, n: int, top_k: int) -> list:
    """The ``top_k`` most frequent within-word phone n-grams of some stories.

    Pass the training stories only, so that the feature set is defined
    without looking at the test story.

    Parameters
    ----------
    dataset : LebelDataset
    stories : sequence of str
    n : int
        2 for diphones, 3 for triphones.
    top_k : int

    Returns
    -------
    vocabulary : list of tuple of str, length <= top_k
        Most frequent first; ties in alphabetical order, so the result does
        not depend on the order of ``stories``.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}.")
    if isinstance(stories, str) or len(stories) == 0:
        raise ValueError(f"stories must be a non-empty list of story names, got {stories!r}.")
    counts = Counter()
    for story in stories:
        counts.update(phone_ngrams(*dataset.load_transcript(story), n)[0])
    return sorted(counts, key=lambda g: (-counts[g], g))[:top_k]


def ngram_name(ngram) -> str:
    """Column name of an n-gram, e.g. ``"DH-AH"``."""
    return "-".join(ngram)
