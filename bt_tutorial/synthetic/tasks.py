"""Offline downstream tasks spoken by eSpeak NG, with exact labels.

Five tasks, synthesized on first use with the same eSpeak NG path as the twin
(:func:`bt_tutorial.synthetic.speech.synthesize`) and cached in the data home:

- ``semantic_category``: the category (animal, food, ...) of a spoken noun or short phrase;
- ``intent``: the intent of a spoken command, templated with varied slots (after SLURP);
- ``sentence_type``: statement, question or command;
- ``sentence_topic``: which of the twin's 12 story topics (the sea, a kitchen, ...) a
  sentence is about, the meaning the twin's language voxels encode (sentence embeddings of
  the story, whose main axes separate its topics); every sentence comes from a template that
  no story uses, so none occurs in a story;
- ``phonemes``: which of the 39 ARPAbet phones a clip of one or two words contains
  (multi-label), read from eSpeak's own phoneme events. A low-level control: it
  needs no meaning at all.

Each voice (an eSpeak accent and voice variant) speaks the same number of clips
per class, at a random rate and pitch per clip; the test voices (accents and
variants) never occur in training. The clips are kept apart from the twin's
stories, as the paper's tasks are from its podcasts: no task voice shares its accent
or its variant with a story voice (the stories are all ``en-us``), and every rate and
pitch lies outside the stories' ranges.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bt_tutorial.config import resolve_data_home
from bt_tutorial.dataset.stimulus import SAMPLE_RATE
from bt_tutorial.downstream.tasks import Task, load_task, save_task, split_by_groups
from bt_tutorial.lowlevel.phones import ARPABET
from bt_tutorial.synthetic import vocab as V
from bt_tutorial.synthetic.narrative import NAMES, TOPICS, fill_template
from bt_tutorial.synthetic.speech import synthesize

GENERATOR_VERSION = 3  # bump whenever the generated clips or labels change
SYNTHETIC_TASKS = ("semantic_category", "intent", "sentence_type", "sentence_topic", "phonemes")
# reproducible variants only (breathy ones draw noise from libc's rand(), see twin.VOICES), and
# accents whose phonemes all map to ARPAbet (en-029 and en-gb-scotland have some that do not)
TRAIN_VOICES = ("en+m4", "en-gb-x-rp+m6", "en-gb-x-gbcwmd+david", "en+shelby", "en-gb-x-gbclan+paul",
                "en-gb-x-gbclan+aunty", "en+m8", "en-us-nyc+edward")
TEST_VOICES = ("en-gb-x-gbcwmd+john", "en-us-nyc+belinda", "en+ed", "en-gb-x-rp+anika")
# below or above the stories' ranges (twin.STORY_RATES, twin.STORY_PITCHES), [low, high) each
RATES, PITCHES = ((125, 150), (186, 211)), ((20, 35), (66, 81))
_PHONEME_WORDS = tuple(sorted({w for ws in V.CATEGORIES.values() for w in ws} | set(V.EXTRA_WORDS)))


@dataclass(frozen=True)
class TaskSpec:
    """Size and seed of the synthetic tasks.

    Parameters
    ----------
    seed : int
        Clips and labels are a deterministic function of the spec.
    clips_per_voice : int
        Clips spoken by each voice; classes are balanced within a voice.
    train_voices, test_voices : tuple of str
        eSpeak voices (``accent+variant``); the two sets must not overlap.
    """

    seed: int = 0
    clips_per_voice: int = 64
    train_voices: tuple = TRAIN_VOICES
    test_voices: tuple = TEST_VOICES

    def __post_init__(self):
        if self.clips_per_voice < 1:
            raise ValueError(f"clips_per_voice must be at least 1, got {self.clips_per_voice}.")
        if not self.train_voices or not self.test_voices:
            raise ValueError("Need at least one training and one test voice.")
        if set(self.train_voices) & set(self.test_voices):
            raise ValueError(f"Voices {set(self.train_voices) & set(self.test_voices)} are in both "
                             "train_voices and test_voices.")

    def tag(self) -> str:
        """Version and a hash of the spec, as used in task versions and file names."""
        h = hashlib.sha1(repr(sorted(asdict(self).items())).encode()).hexdigest()[:8]
        return f"v{GENERATOR_VERSION}-{h}"


def label_names(name: str) -> tuple:
    """Class (or label) names of a synthetic task."""
    names = {"semantic_category": tuple(V.CATEGORIES), "intent": tuple(V.INTENTS),
             "sentence_type": tuple(V.SENTENCE_TYPES), "sentence_topic": tuple(TOPICS), "phonemes": ARPABET}
    if name not in names:
        raise ValueError(f"Unknown synthetic task {name!r}; choose one of {SYNTHETIC_TASKS}.")
    return names[name]


def make_synthetic_task(name: str, spec: TaskSpec = TaskSpec(), progress: bool = True) -> Task:
    """Synthesize one task (no caching; see :func:`ensure_task`).

    Parameters
    ----------
    name : {"semantic_category", "intent", "sentence_type", "sentence_topic", "phonemes"}
    spec : TaskSpec
    progress : bool

    Returns
    -------
    task : Task
        16 kHz clips; labels of shape (n_clips,) or, for ``phonemes``, (n_clips, 39) bool.
    """
    names = label_names(name)
    voices = spec.train_voices + spec.test_voices
    waves, labels, groups, texts = [], [], [], []
    bar = tqdm(total=len(voices) * spec.clips_per_voice, desc=name, disable=not progress)
    for v, voice in enumerate(voices):
        rng = np.random.default_rng([spec.seed, SYNTHETIC_TASKS.index(name), v])
        classes = rng.permutation(np.resize(np.arange(len(names)), spec.clips_per_voice))
        for c in classes:
            text = _text(name, names[c], rng)
            utterance = synthesize(text, voice, rate=_outside(rng, RATES), pitch=_outside(rng, PITCHES))
            phones = {p.rstrip("012") for p, _, _ in utterance.phones}
            waves.append(utterance)
            labels.append(np.isin(ARPABET, sorted(phones)) if name == "phonemes" else c)
            groups.append(voice)
            texts.append(text)
            bar.update()
    bar.close()
    waves = _to_16k(waves)
    return Task(name, waves, np.array(labels), names, split_by_groups(groups, spec.test_voices),
                np.array(groups), np.array(texts), version=f"synthetic-{spec.tag()}")


def _outside(rng, ranges) -> int:
    """A value from one of ``ranges`` (each ``[low, high)``), the range drawn first."""
    low, high = ranges[int(rng.integers(len(ranges)))]
    return int(rng.integers(low, high))


def shared_with_stories(voices) -> dict:
    """What task voices share with the twin's story voices: whole voices, accents, variants.

    Parameters
    ----------
    voices : sequence of str
        eSpeak voices, ``accent+variant``.

    Returns
    -------
    shared : dict of str -> set
        ``"voices"``, ``"accents"`` and ``"variants"`` in both; all empty when the domains
        are apart.
    """
    from bt_tutorial.synthetic.twin import VOICES

    def parts(vs, i):
        return {v.split("+")[i] if "+" in v else (v, "")[i] for v in vs}

    return {"voices": set(voices) & set(VOICES), "accents": parts(voices, 0) & parts(VOICES, 0),
            "variants": parts(voices, 1) & parts(VOICES, 1) - {""}}


def task_path(name: str, spec: TaskSpec = TaskSpec(), data_home=None) -> Path:
    """Cache file of a synthetic task: ``<data_home>/downstream/<name>_v<version>[_<hash>].npz``."""
    suffix = "" if spec == TaskSpec() else "_" + spec.tag().split("-")[1]
    return resolve_data_home(data_home) / "downstream" / f"{name}_v{GENERATOR_VERSION}{suffix}.npz"


def ensure_task(name: str, spec: TaskSpec = TaskSpec(), data_home=None, progress: bool = True) -> Task:
    """The synthetic task ``name``, read from the data home or generated once and cached.

    A cached file from another generator version or spec is regenerated.

    Parameters
    ----------
    name : {"semantic_category", "intent", "sentence_type", "sentence_topic", "phonemes"}
    spec : TaskSpec
    data_home : Path, optional
        Default: the configured data home (``BT_DATA``).
    progress : bool

    Returns
    -------
    task : Task
    """
    path = task_path(name, spec, data_home)
    if path.is_file():
        task = load_task(path)
        if task.version == f"synthetic-{spec.tag()}" and task.name == name:
            return task
    task = make_synthetic_task(name, spec, progress)
    save_task(task, path)
    return task


def _text(name: str, label: str, rng) -> str:
    """A random text of class ``label`` (ignored for ``phonemes``)."""
    pick = lambda seq: seq[rng.integers(len(seq))]  # noqa: E731
    if name == "semantic_category":
        noun, adj = pick(V.CATEGORIES[label]), pick(V.ADJECTIVES)
        text = pick(V.PHRASES).format(noun=noun, adj=adj, a="{a}")
        nxt = text.split("{a} ")[-1] if "{a}" in text else ""
        return text.replace("{a}", "an" if nxt[:1] in "aeiou" else "a")
    if name == "intent":
        return pick(V.INTENTS[label]).format(**{k: pick(v) for k, v in V.SLOTS.items()})
    if name == "sentence_type":
        subject, (verb, verb3) = pick(V.SUBJECTS), pick(V.VERBS)
        text = pick(V.SENTENCE_TYPES[label]).format(S=subject, s=subject, V=verb, V3=verb3,
                                                   O=pick(V.OBJECTS), when=pick(V.WHEN))
        return text[0].upper() + text[1:]
    if name == "sentence_topic":
        return fill_template(pick(V.TOPIC_TEMPLATES), TOPICS[label], rng.choice(NAMES, 3), rng)
    return " ".join(pick(_PHONEME_WORDS) for _ in range(rng.integers(1, 3)))


def _to_16k(utterances: list) -> list:
    """Resample eSpeak's output to 16 kHz, after all the synthesis.

    Interleaving torch calls with eSpeak's C code wakes torch's idle threads
    between clips, which made generation several times slower on 2 CPU cores.
    """
    import torch
    import torchaudio.functional as AF

    return [AF.resample(torch.from_numpy(u.waveform), u.sample_rate, SAMPLE_RATE).numpy()
            for u in utterances]
