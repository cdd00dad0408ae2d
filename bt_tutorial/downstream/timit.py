"""TIMIT (LDC93S1, licensed) from a folder the user supplies: phoneme presence and sentence type.

Layout, in upper or lower case, with or without a ``.wav`` added to the audio
files' names (as some converted copies have)::

    <root>/TRAIN/DR1/FCJF0/SA1.WAV   (NIST SPHERE or RIFF, 16 kHz)
    <root>/TRAIN/DR1/FCJF0/SA1.PHN   (start sample, end sample, phone)
    <root>/TRAIN/DR1/FCJF0/SA1.WRD   (start sample, end sample, word)
    <root>/TEST/...

``<root>`` may also be a folder holding ``TIMIT/`` or ``data/`` with that layout.
The official TRAIN / TEST folders are the split (no speaker is in both).

- ``"phonemes"``: one clip per word, labelled with the phones it contains,
  folded from TIMIT's 61 labels to the 39 ARPAbet phones of the synthetic task
  (closures, pauses and the glottal stop ``q`` are dropped; the flap ``dx`` counts as T).
- ``"sentence_type"``: one clip per utterance, labelled with TIMIT's prompt type:
  SA (dialect sentences, the same two for everyone), SX (phonetically compact)
  or SI (phonetically diverse).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from bt_tutorial.downstream.tasks import Task
from bt_tutorial.lowlevel.phones import ARPABET

TIMIT_TO_ARPABET = {
    "aa": "AA", "ae": "AE", "ah": "AH", "ao": "AO", "aw": "AW", "ax": "AH", "ax-h": "AH",
    "axr": "ER", "ay": "AY", "b": "B", "ch": "CH", "d": "D", "dh": "DH", "dx": "T", "eh": "EH",
    "el": "L", "em": "M", "en": "N", "eng": "NG", "er": "ER", "ey": "EY", "f": "F", "g": "G",
    "hh": "HH", "hv": "HH", "ih": "IH", "ix": "IH", "iy": "IY", "jh": "JH", "k": "K", "l": "L",
    "m": "M", "n": "N", "ng": "NG", "nx": "N", "ow": "OW", "oy": "OY", "p": "P", "r": "R",
    "s": "S", "sh": "SH", "t": "T", "th": "TH", "uh": "UH", "uw": "UW", "ux": "UW", "v": "V",
    "w": "W", "y": "Y", "z": "Z", "zh": "ZH",
}
TIMIT_DROPPED = ("bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "h#", "pau", "epi", "q")
TIMIT_SENTENCE_TYPES = ("SA", "SX", "SI")
TIMIT_TASKS = ("phonemes", "sentence_type")


def load_timit(root, task: str = "phonemes", max_clips: int | None = None, seed: int = 0,
               progress: bool = True) -> Task:
    """A TIMIT task (see the module docstring) from a local copy.

    Parameters
    ----------
    root : str or Path
        The user's TIMIT folder.
    task : {"phonemes", "sentence_type"}
    max_clips : int, optional
        At most this many clips per split (random, from ``seed``; for
        ``sentence_type`` at most ``max_clips // 3`` per class and split).
    seed : int
    progress : bool

    Returns
    -------
    task : Task
    """
    if task not in TIMIT_TASKS:
        raise ValueError(f"task must be one of {TIMIT_TASKS}, got {task!r}.")
    utterances = _find_utterances(_timit_base(root))
    rng = np.random.default_rng(seed)
    if task == "sentence_type":
        items = _sentence_items(utterances, max_clips, rng)
        names = TIMIT_SENTENCE_TYPES
    else:
        items = _word_items(utterances, max_clips, rng)
        names = ARPABET
    cache, waves = {}, []
    for it in tqdm(items, desc=f"timit {task}", disable=not progress):
        wav = cache.get(it["wav"])
        if wav is None:
            cache.clear()  # items are grouped by utterance: keep one file in memory
            wav = cache[it["wav"]] = _read_16k(it["wav"])
        waves.append(wav[it["start"]:it["end"]])
    return Task(f"timit_{task}", waves, np.array([it["label"] for it in items]), names,
                np.array([it["split"] for it in items]), np.array([it["speaker"] for it in items]),
                np.array([it["text"] for it in items]), version=f"timit-{task}")


def fold_phones(labels) -> set:
    """TIMIT phone labels -> the set of ARPAbet phones they fold to.

    Raises
    ------
    ValueError
        For a label that is neither mapped nor dropped.
    """
    out = set()
    for p in labels:
        p = p.lower()
        if p in TIMIT_TO_ARPABET:
            out.add(TIMIT_TO_ARPABET[p])
        elif p not in TIMIT_DROPPED:
            raise ValueError(f"Unknown TIMIT phone {p!r}.")
    return out


def _timit_base(root) -> Path:
    root = Path(root).expanduser()
    for base in (root, root / "TIMIT", root / "timit", root / "data", root / "TIMIT" / "data"):
        if base.is_dir():
            subs = {p.name.lower(): p for p in base.iterdir() if p.is_dir()}
            if "train" in subs and "test" in subs:
                return base
    raise FileNotFoundError(
        f"No TIMIT at {root}: expected <root>/TRAIN/DR1/FCJF0/SA1.WAV with .PHN and .WRD files beside "
        "it, and <root>/TEST/... (upper or lower case). TIMIT is licensed by the LDC (LDC93S1): "
        "point root to your own copy.")


def _find_utterances(base: Path) -> list:
    """One dict per utterance with its files, split and speaker, sorted by path."""
    out = []
    splits = [p for p in base.iterdir() if p.is_dir() and p.name.lower() in ("train", "test")]
    for split_dir in sorted(splits, key=lambda p: p.name.lower() != "train"):
        for wav in sorted(split_dir.glob("*/*/*")):
            if not wav.name.lower().split(".", 1)[-1] in ("wav", "wav.wav"):
                continue
            stem = wav.name.split(".", 1)[0]
            siblings = {p.name.lower(): p for p in wav.parent.iterdir()}
            phn, wrd = siblings.get(f"{stem.lower()}.phn"), siblings.get(f"{stem.lower()}.wrd")
            if phn is None or wrd is None:
                raise FileNotFoundError(f"{wav} has no .PHN or .WRD file beside it.")
            out.append(dict(wav=wav, phn=phn, wrd=wrd, stem=stem.upper(), speaker=wav.parent.name.upper(),
                            split="train" if split_dir.name.lower() == "train" else "test"))
    if not out:
        raise FileNotFoundError(f"No TIMIT utterances under {base}: expected "
                                "<split>/<DR>/<speaker>/<utt>.WAV.")
    return out


def _read_marks(path: Path) -> list:
    """(start sample, end sample, label) lines of a .PHN or .WRD file."""
    marks = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            marks.append((int(parts[0]), int(parts[1]), parts[2]))
    return marks


def _sentence_items(utterances: list, max_clips, rng) -> list:
    items = []
    for u in utterances:
        kind = u["stem"][:2]
        if kind in TIMIT_SENTENCE_TYPES:
            words = _read_marks(u["wrd"])
            end = words[-1][1] if words else None
            items.append(dict(wav=u["wav"], start=0, end=end, label=TIMIT_SENTENCE_TYPES.index(kind),
                              split=u["split"], speaker=u["speaker"], text=" ".join(w for _, _, w in words)))
    per_class = None if max_clips is None else max(1, max_clips // len(TIMIT_SENTENCE_TYPES))
    return _subsample(items, per_class, rng, by_label=True)


def _word_items(utterances: list, max_clips, rng) -> list:
    items = []
    for u in utterances:
        phones = _read_marks(u["phn"])
        mids = np.array([(a + b) / 2 for a, b, _ in phones])
        for start, end, word in _read_marks(u["wrd"]):
            inside = [p for (_, _, p), m in zip(phones, mids) if start <= m < end]
            present = fold_phones(inside)
            if present:
                items.append(dict(wav=u["wav"], start=start, end=end, label=np.isin(ARPABET, list(present)),
                                  split=u["split"], speaker=u["speaker"], text=word))
    return _subsample(items, max_clips, rng, by_label=False)


def _subsample(items: list, limit, rng, by_label: bool) -> list:
    """At most ``limit`` items per split (and per label if ``by_label``), kept in file order."""
    if limit is None:
        return items
    keys = [(it["split"], it["label"] if by_label else 0) for it in items]
    keep = []
    for key in sorted(set(keys)):
        idx = [i for i, k in enumerate(keys) if k == key]
        keep.extend(rng.permutation(idx)[:limit])
    return [items[i] for i in sorted(keep)]


def _read_16k(path: Path) -> np.ndarray:
    from bt_tutorial.dataset.stimulus import read_audio

    audio = read_audio(path, 16000)
    if audio.source_rate != 16000:
        raise ValueError(f"{path} is sampled at {audio.source_rate} Hz; TIMIT's sample marks assume 16 kHz.")
    return audio.waveform
