"""One structure for every downstream task, synthetic or real, and its file format.

A task is a set of short clips at 16 kHz with exact labels, a train/test split
and the speaker (or synthetic voice) of every clip. Test speakers never occur in
training, so a probe is scored on voices it has not heard; probes carve their
validation speakers from the training ones (:mod:`bt_tutorial.downstream.probes`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bt_tutorial.dataset.stimulus import SAMPLE_RATE

SPLITS = ("train", "test")


@dataclass(eq=False)
class Task:
    """Clips, labels, split and speakers of a classification task.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"intent"`` or ``"speech_commands"``.
    waveforms : list of ndarray, each shape (n_samples_i,), float32
        16 kHz audio of each clip.
    labels : ndarray
        Shape (n_clips,) of int class indices (one label per clip), or shape
        (n_clips, n_labels) of bool (multi-label, e.g. the phones present).
    label_names : tuple of str
        Name of each class (or of each label column).
    split : ndarray of str, shape (n_clips,)
        ``"train"`` or ``"test"``.
    groups : ndarray of str, shape (n_clips,)
        Speaker or synthetic voice of each clip; no group is in both splits.
    texts : ndarray of str, shape (n_clips,)
        What is said (empty where unknown).
    version : str
        Changes whenever the generator or loader would produce other clips.
    """

    name: str
    waveforms: list
    labels: np.ndarray
    label_names: tuple
    split: np.ndarray
    groups: np.ndarray
    texts: np.ndarray
    version: str = "1"
    _digest: str | None = field(default=None, repr=False)

    def __post_init__(self):
        self.waveforms = [np.asarray(w, dtype=np.float32) for w in self.waveforms]
        self.labels = np.asarray(self.labels)
        self.label_names = tuple(str(x) for x in self.label_names)
        self.split = np.asarray(self.split, dtype=str)
        self.groups = np.asarray(self.groups, dtype=str)
        self.texts = np.asarray(self.texts, dtype=str)
        _check(self)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def multilabel(self) -> bool:
        """True when each clip has a set of labels (a boolean row) instead of one class."""
        return self.labels.ndim == 2

    def __len__(self) -> int:
        return len(self.waveforms)

    def indices(self, split: str) -> np.ndarray:
        """Clip indices of ``"train"`` or ``"test"``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        return np.flatnonzero(self.split == split)

    def digest(self) -> str:
        """Hash of the clips, labels, split and groups: a cache key for features and probes."""
        if self._digest is None:
            h = hashlib.sha1(f"{self.name}|{self.version}|{self.label_names}".encode())
            for w in self.waveforms:
                h.update(np.int64(len(w)).tobytes())
                h.update(w.tobytes())
            for a in (self.labels, self.split, self.groups):
                h.update(np.ascontiguousarray(a).tobytes())
            self._digest = h.hexdigest()[:12]
        return self._digest

    def summary(self) -> str:
        """Two lines: sizes and classes; speakers and durations."""
        n_train, n_test = (len(self.indices(s)) for s in SPLITS)
        seconds = np.array([len(w) for w in self.waveforms]) / SAMPLE_RATE
        kind = "labels (multi-label)" if self.multilabel else "classes"
        return (f"{self.name}: {len(self)} clips ({n_train} train, {n_test} test), "
                f"{len(self.label_names)} {kind},\n  {len(set(self.groups[self.split == 'train']))} train / "
                f"{len(set(self.groups[self.split == 'test']))} test speakers, "
                f"{seconds.mean():.2f} s per clip on average")

    __repr__ = summary


def _check(task: Task) -> None:
    n = len(task.waveforms)
    for name in ("labels", "split", "groups", "texts"):
        if len(getattr(task, name)) != n:
            raise ValueError(f"Task {task.name!r}: {name} has {len(getattr(task, name))} rows "
                             f"for {n} clips.")
    if not set(np.unique(task.split)) <= set(SPLITS):
        raise ValueError(f"Task {task.name!r}: split values must be in {SPLITS}.")
    if task.labels.ndim == 1:
        if n and (task.labels.min() < 0 or task.labels.max() >= len(task.label_names)):
            raise ValueError(f"Task {task.name!r}: labels must index label_names "
                             f"(0..{len(task.label_names) - 1}).")
    elif task.labels.ndim != 2 or task.labels.shape[1] != len(task.label_names):
        raise ValueError(f"Task {task.name!r}: multi-label rows need one column per label name.")
    shared = set(task.groups[task.split == "train"]) & set(task.groups[task.split == "test"])
    if shared:
        raise ValueError(f"Task {task.name!r}: speakers {sorted(shared)[:5]} are in both splits.")


def save_task(task: Task, path) -> Path:
    """Write a task to one ``.npz`` file (atomically).

    Parameters
    ----------
    task : Task
    path : str or Path

    Returns
    -------
    path : Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(w) for w in task.waveforms], dtype=np.int64)
    audio = np.concatenate(task.waveforms) if len(task) else np.zeros(0, np.float32)
    meta = dict(name=task.name, version=task.version, label_names=list(task.label_names))
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, audio=audio, lengths=lengths, labels=task.labels, split=task.split,
                 groups=task.groups, texts=task.texts, meta=np.array(json.dumps(meta)))
    tmp.replace(path)
    return path


def load_task(path) -> Task:
    """Read a task written by :func:`save_task`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No task file at {path}.")
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        bounds = np.concatenate([[0], np.cumsum(f["lengths"])])
        audio = f["audio"]
        waveforms = [audio[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return Task(meta["name"], waveforms, f["labels"], tuple(meta["label_names"]), f["split"],
                    f["groups"], f["texts"], meta["version"])


def split_by_groups(groups, test_groups) -> np.ndarray:
    """``"test"`` for clips whose group is in ``test_groups``, ``"train"`` otherwise.

    Returns
    -------
    split : ndarray of str, shape (n_clips,)
    """
    groups = np.asarray(groups, dtype=str)
    return np.where(np.isin(groups, np.asarray(list(test_groups), dtype=str)), "test", "train")
