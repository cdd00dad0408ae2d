"""eSpeak NG phoneme mnemonics (English) mapped to the 39 ARPAbet phones.

LeBel et al.'s TextGrids label phones in ARPAbet (CMU dictionary) with stress
digits on vowels; the twin writes the same. A few eSpeak phonemes are two
ARPAbet phones (``aI@`` in *fire* is AY ER); their duration is split evenly.
"""

from __future__ import annotations

from bt_tutorial.lowlevel.phones import ARPABET, VOWELS  # noqa: F401 (the twin's phone set)

ESPEAK_TO_ARPABET = {
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",),
    "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "tS": ("CH",), "dZ": ("JH",),
    "m": ("M",), "n": ("N",), "N": ("NG",), "l": ("L",), "r": ("R",), "w": ("W",),
    "j": ("Y",), "t#": ("T",), "d#": ("D",), "r-": ("R",), "l/": ("L",), "?": ("T",),
    "n-": ("AH", "N"), "m-": ("AH", "M"), "l-": ("AH", "L"), "x": ("K",), "C": ("HH",),
    # vowels
    "a": ("AE",), "aa": ("AE",), "a#": ("AE",), "A:": ("AA",), "A": ("AA",),
    "A@": ("AA", "R"), "0": ("AA",), "V": ("AH",), "@": ("AH",), "@L": ("AH", "L"),
    "3": ("ER",), "3:": ("ER",), "E": ("EH",), "e": ("EH",), "e@": ("EH", "R"),
    "I": ("IH",), "i": ("IY",), "i:": ("IY",), "i@": ("IH", "R"), "i@3": ("IH", "R"),
    "O:": ("AO",), "O": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"), "oU": ("OW",),
    "o": ("OW",), "U": ("UH",), "u:": ("UW",), "u": ("UW",), "U@": ("UH", "R"),
    "aI": ("AY",), "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "aU": ("AW",),
    "aU@": ("AW", "ER"), "eI": ("EY",), "OI": ("OY",), "ju:": ("Y", "UW"),
}

STRESS_MARKS = "',%="


def split_stress(mnemonic: str) -> tuple:
    """Split eSpeak stress marks off a phoneme mnemonic.

    Returns
    -------
    base : str
        The mnemonic without stress marks.
    stress : int
        1 for primary stress (``'``), 2 for secondary (``,``), 0 otherwise.
    """
    stress = 1 if "'" in mnemonic else 2 if "," in mnemonic else 0
    return mnemonic.strip(STRESS_MARKS), stress


def is_pause(mnemonic: str) -> bool:
    """True for eSpeak pauses (``_``, ``_:``, ``_!`` ...)."""
    return mnemonic.startswith("_")


def to_arpabet(mnemonic: str) -> tuple:
    """ARPAbet phones (with stress digits on vowels) of one eSpeak phoneme.

    Variants marked by a trailing digit or ``#`` (``@2``, ``t2``, ``I#``) fall
    back to their base phoneme. Modifiers such as ``;`` give an empty tuple.

    Raises
    ------
    KeyError
        For a phoneme the table does not know: add it to ``ESPEAK_TO_ARPABET``.
    """
    base, stress = split_stress(mnemonic)
    if base in ("", ";") or is_pause(base):
        return ()
    phones = ESPEAK_TO_ARPABET.get(base) or ESPEAK_TO_ARPABET.get(base.rstrip("0123456789#"))
    if phones is None:
        raise KeyError(f"eSpeak phoneme {mnemonic!r} has no ARPAbet mapping.")
    out, first_vowel = [], True
    for p in phones:
        if p in VOWELS:
            p, first_vowel = p + str(stress if first_vowel else 0), False
        out.append(p)
    return tuple(out)
