"""Real downstream tasks of the paper for the ``full`` profile: Speech Commands v2, SLURP, CREMA-D.

Each loader returns a :class:`~bt_tutorial.downstream.tasks.Task` like the
synthetic ones (16 kHz clips, labels, a train/test split with no speaker in
both, label names). Downloads go through :func:`~bt_tutorial.dataset.transfer.download_file`
(resumable, size-checked) into ``<data home>/downstream/<dataset>/`` unless a
root is given; nothing is downloaded unless ``download=True``. TIMIT, which is
licensed, is read from a user-supplied folder (:mod:`bt_tutorial.downstream.timit`).
"""

from __future__ import annotations

import csv
import json
import re
import tarfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bt_tutorial.config import resolve_data_home
from bt_tutorial.dataset.file_formats import content_problem
from bt_tutorial.dataset.transfer import DownloadError, download_file
from bt_tutorial.downstream.tasks import Task

SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SLURP_TEXT_URL = "https://raw.githubusercontent.com/pswietojanski/slurp/master/dataset/slurp"
SLURP_AUDIO_URL = "https://zenodo.org/record/4274930/files/slurp_real.tar.gz"
CREMA_D_MIRRORS = (
    # the maintainers' GitLab mirror, which their README has recommended since 2025
    "https://gitlab.com/cs-cooper-lab/crema-d-mirror/-/raw/main",
    # the original repository's Git LFS media: often over its bandwidth quota (CREMA-D issue #15)
    "https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/master",
)
CREMA_D_URL = CREMA_D_MIRRORS[0]
CREMA_D_CLONE = "git clone https://gitlab.com/cs-cooper-lab/crema-d-mirror.git"  # needs git-lfs
CREMA_D_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness",
                    "NEU": "neutral", "SAD": "sadness"}
_SLURP_SPLITS = {"train": "train", "devel": "train", "test": "test"}  # devel joins training


def default_root(dataset: str, data_home=None) -> Path:
    """``<data home>/downstream/<dataset>``, where downloads go by default."""
    return resolve_data_home(data_home) / "downstream" / dataset


# ------------------------------------------------------------ Speech Commands
def download_speech_commands(root=None, url: str = SPEECH_COMMANDS_URL, progress: bool = True) -> Path:
    """Download and unpack Speech Commands v2 (2.3 GB) into ``root``; skipped if already there."""
    root = Path(root) if root else default_root("speech_commands")
    if (root / "testing_list.txt").is_file():
        return root
    archive = download_file(url, root / Path(url).name, progress=progress)
    _extract(archive, root)
    archive.unlink()
    return root


def load_speech_commands(root=None, words=None, max_per_class: int | None = None, seed: int = 0,
                         download: bool = False, progress: bool = True) -> Task:
    """Keyword spotting on Speech Commands v2 (Warden, 2018): one spoken word per 1 s clip.

    Layout::

        <root>/<word>/<speaker>_nohash_<k>.wav
        <root>/testing_list.txt, <root>/validation_list.txt   (paths relative to root)

    The official test list is the test split; the validation list joins training
    (probes carve their own validation speakers from it).

    Parameters
    ----------
    root : str or Path, optional
        Default ``<data home>/downstream/speech_commands``.
    words : sequence of str, optional
        Classes to keep (default: every word folder, 35 in v2).
    max_per_class : int, optional
        Keep at most this many clips per class in each split (random, from ``seed``).
    seed : int
    download : bool
        Download first if ``root`` has no data.
    progress : bool

    Returns
    -------
    task : Task
    """
    root = Path(root) if root else default_root("speech_commands")
    if download:
        download_speech_commands(root, progress=progress)
    if not (root / "testing_list.txt").is_file():
        raise FileNotFoundError(
            f"No Speech Commands v2 at {root}: expected <root>/<word>/<speaker>_nohash_<k>.wav and "
            "<root>/testing_list.txt. Call load_speech_commands(download=True) or unpack "
            f"{SPEECH_COMMANDS_URL} there.")
    test = set((root / "testing_list.txt").read_text().split())
    names = sorted(words) if words else sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    absent = [w for w in names if not (root / w).is_dir()]
    if absent:
        raise FileNotFoundError(f"No folder for the words {absent} under {root}.")
    files = [f"{w}/{f.name}" for w in names for f in sorted((root / w).glob("*.wav"))]
    if not files:
        raise FileNotFoundError(f"No clips of {names} under {root}: expected <root>/<word>/*.wav.")
    labels = np.array([names.index(f.split("/")[0]) for f in files])
    split = np.array(["test" if f in test else "train" for f in files])
    groups = np.array([Path(f).name.split("_nohash_")[0] for f in files])
    texts = np.array([f.split("/")[0] for f in files])
    keep = _drop_shared_speakers(split, groups)
    keep = keep[_sample_per_class(labels[keep], split[keep], max_per_class, seed)]
    return _build("speech_commands", [root / files[i] for i in keep], labels[keep], names,
                  split[keep], groups[keep], texts[keep], "speech_commands-v2", progress)


# ---------------------------------------------------------------------- SLURP
def download_slurp(root=None, text_url: str = SLURP_TEXT_URL, audio_url: str = SLURP_AUDIO_URL,
                   progress: bool = True) -> Path:
    """Download SLURP's annotations and real recordings (about 4 GB) into ``root``.

    Files already there are kept without asking the server (downloads land as ``.part``
    first, so a file under its final name is complete): a second call needs no network.
    """
    root = Path(root) if root else default_root("slurp")
    text_dir = root / "dataset" / "slurp"
    for part in ("train", "devel", "test"):
        if not (text_dir / f"{part}.jsonl").is_file():
            download_file(f"{text_url}/{part}.jsonl", text_dir / f"{part}.jsonl", progress=progress)
    marker = text_dir / "metadata.absent"
    if not (text_dir / "metadata.json").is_file() and not marker.is_file():
        try:  # speaker ids; without them recordings are grouped by session
            download_file(f"{text_url}/metadata.json", text_dir / "metadata.json", progress=progress)
        except DownloadError as exc:
            if "does not exist" not in str(exc):
                raise
            marker.write_text(f"{text_url}/metadata.json does not exist on the server.\n")
    if not (root / "audio" / "slurp_real").is_dir():
        archive = download_file(audio_url, root / "audio" / Path(audio_url).name, progress=progress)
        _extract(archive, root / "audio")
        archive.unlink()
    return root


SLURP_LABELS = ("action", "intent", "scenario")


def load_slurp(root=None, label: str = "action", classes=None, max_per_class: int | None = None,
               headset_only: bool = True, seed: int = 0, download: bool = False,
               progress: bool = True) -> Task:
    """Action (or intent, or scenario) of spoken commands to a home assistant: SLURP (Bastianelli et al., 2020).

    Layout (as the SLURP repository and its download script leave it)::

        <root>/dataset/slurp/{train,devel,test}.jsonl   (and optionally metadata.json)
        <root>/audio/slurp_real/<recording>.flac

    ``devel`` joins training. Speakers come from ``metadata.json`` when present,
    else each recording session is its own group; training clips of test speakers
    are dropped.

    Parameters
    ----------
    root : str or Path, optional
        Default ``<data home>/downstream/slurp``.
    label : {"action", "intent", "scenario"}
        The authors' probe predicts the ``action`` field (``data_utils.py`` of
        bridge-ai-neuro/brain-tuning); ``intent`` is scenario and action together.
    classes : sequence of str, optional
        Classes to keep (default: all that occur in training).
    max_per_class : int, optional
        At most this many clips per class in each split.
    headset_only : bool
        Keep only the close-talk (``-headset``) recordings.
    seed, download, progress
        As in :func:`load_speech_commands`.

    Returns
    -------
    task : Task
    """
    if label not in SLURP_LABELS:
        raise ValueError(f"label must be one of {SLURP_LABELS}, got {label!r}.")
    root = Path(root) if root else default_root("slurp")
    if download:
        download_slurp(root, progress=progress)
    text_dir, audio_dir = root / "dataset" / "slurp", root / "audio" / "slurp_real"
    missing = [p for p in [text_dir / f"{s}.jsonl" for s in _SLURP_SPLITS] + [audio_dir] if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"SLURP is incomplete at {root}: missing {[str(m) for m in missing]}. Expected "
            "<root>/dataset/slurp/{train,devel,test}.jsonl and <root>/audio/slurp_real/*.flac; "
            "call load_slurp(download=True).")
    speakers = _slurp_speakers(text_dir / "metadata.json")
    rows = []
    for part, split in _SLURP_SPLITS.items():
        for line in (text_dir / f"{part}.jsonl").read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                for rec in item["recordings"]:
                    if not headset_only or "-headset" in rec["file"]:
                        session = rec["file"].replace("-headset", "").rsplit(".", 1)[0]
                        rows.append((rec["file"], item[label], split,
                                     speakers.get(rec["file"], session), item["sentence"]))
    names = sorted(classes) if classes else sorted({r[1] for r in rows if r[2] == "train"})
    rows = [r for r in rows if r[1] in names]
    if not rows:
        raise ValueError(f"No SLURP recordings of {label}s {names[:5]} in {text_dir}"
                         + (" (headset_only=True)." if headset_only else "."))
    files, labels, split, groups, texts = (np.array(c) for c in zip(*rows))
    labels = np.array([names.index(x) for x in labels])
    keep = _drop_shared_speakers(split, groups)
    keep = keep[_sample_per_class(labels[keep], split[keep], max_per_class, seed)]
    return _build("slurp", [audio_dir / f for f in files[keep]], labels[keep], names, split[keep],
                  groups[keep], texts[keep], f"slurp-{label}", progress)


def _slurp_speakers(path: Path) -> dict:
    if not path.is_file():
        return {}
    speakers = {}
    for record in json.loads(path.read_text()).values():
        for name, rec in record.get("recordings", {}).items():
            speakers[name] = str(rec["usrid"])
    return speakers


# -------------------------------------------------------------------- CREMA-D
def download_crema_d(root=None, actors=None, base_url=None, list_url: str | None = None,
                     progress: bool = True) -> Path:
    """Download CREMA-D's audio clips (Open Database License) file by file into ``<root>/AudioWAV``.

    Sources are tried in order until one serves the clips; clips already on disk
    are kept, so a source that fails half-way is continued by the next one.

    Parameters
    ----------
    root : str or Path, optional
        Default ``<data home>/downstream/crema_d``.
    actors : sequence of int, optional
        Only these actors (1001-1091), e.g. to fetch a subset quickly.
    base_url : str or sequence of str, optional
        Source(s) holding ``SentenceFilenames.csv`` and ``AudioWAV/<clip>.wav``
        (default :data:`CREMA_D_MIRRORS`: the maintainers' GitLab mirror, then
        the original GitHub repository's Git LFS media).
    list_url : str, optional
        The clip list (default ``<source>/SentenceFilenames.csv``).
    progress : bool

    Returns
    -------
    root : Path

    Raises
    ------
    DownloadError
        If no source serves the clips (each source's error is named, with the
        manual route: clone the GitLab mirror and pass its folder as ``root``).
    """
    root = Path(root) if root else default_root("crema_d")
    sources = [base_url] if isinstance(base_url, str) else list(base_url or CREMA_D_MIRRORS)
    failures = []
    for base in sources:
        try:
            return _download_crema_d_from(base.rstrip("/"), list_url, root, actors, progress)
        except DownloadError as exc:
            failures.append(f"- {base}: {exc}")
    raise DownloadError(
        "Could not download CREMA-D from any source:\n" + "\n".join(failures) + "\n"
        "(A WAV file that starts with 'version https://' is a Git LFS pointer: that source serves "
        "no audio.) Fix: try again later, pass another mirror as base_url, or "
        f"fetch the clips by hand (`{CREMA_D_CLONE}` with git-lfs installed, or the release archive at "
        "https://github.com/CheyneyComputerScience/CREMA-D/releases) and call "
        "load_crema_d(root=<the folder holding AudioWAV/>).")


def _download_crema_d_from(base: str, list_url, root: Path, actors, progress: bool) -> Path:
    """Download the listed clips from one source; raise DownloadError if it does not serve them."""
    listing = root / "SentenceFilenames.csv"
    if not listing.is_file():  # a listing under its final name is complete (downloads land as .part)
        download_file(list_url or f"{base}/SentenceFilenames.csv", listing, progress=False)
    with open(listing, newline="") as f:
        names = [row["Filename"] for row in csv.DictReader(f)]
    if actors is not None:
        names = [n for n in names if int(n.split("_")[0]) in {int(a) for a in actors}]
    absent, have = [], 0
    known_absent = root / "AudioWAV.absent"  # clips a source answered 404 for: not asked again
    skip = set(known_absent.read_text().split()) if known_absent.is_file() else set()
    for name in tqdm(names, desc="CREMA-D", unit="file", disable=not progress):
        dest = root / "AudioWAV" / f"{name}.wav"
        if dest.is_file() and content_problem(dest) is None:  # complete: downloads land as .part first
            have += 1
            continue
        if name in skip:
            absent.append(name)
            continue
        url = f"{base}/AudioWAV/{name}.wav"
        try:
            download_file(url, dest, progress=False)
            have += 1
        except DownloadError as exc:
            if re.search(r"HTTP (403|429)\b", str(exc)):  # how a Git LFS source over its quota answers
                raise DownloadError(f"the server refused {url} ({str(exc).split(':')[0]}): over its "
                                    "bandwidth quota, or access denied.") from exc
            if "HTTP 404" not in str(exc):
                raise
            absent.append(name)
    if names and not have:
        raise DownloadError(f"none of the {len(names)} listed clips is at {base}/AudioWAV/ (HTTP 404).")
    if absent:
        known_absent.write_text("\n".join(absent) + "\n")
        print(f"{len(absent)} listed clips are not on the server, e.g. {absent[:3]} (listed in {known_absent}; "
              "delete it to ask again).")
    return root


def load_crema_d(root=None, test_fraction: float = 0.2, max_per_class: int | None = None, seed: int = 0,
                 download: bool = False, progress: bool = True) -> Task:
    """Emotion of acted sentences: CREMA-D (Cao et al., 2014), 6 emotions, 91 actors.

    Layout: ``<root>/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav``
    (e.g. ``1001_DFA_ANG_XX.wav``). CREMA-D has no official split: a random
    ``test_fraction`` of the actors (from ``seed``) is the test split.

    Parameters
    ----------
    root : str or Path, optional
        Default ``<data home>/downstream/crema_d``.
    test_fraction : float
    max_per_class, seed, download, progress
        As in :func:`load_speech_commands`.

    Returns
    -------
    task : Task
    """
    root = Path(root) if root else default_root("crema_d")
    if download:
        download_crema_d(root, progress=progress)
    pattern = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.wav")
    files = sorted(p for p in (root / "AudioWAV").glob("*.wav") if pattern.fullmatch(p.name))
    if not files:
        raise FileNotFoundError(
            f"No CREMA-D clips at {root / 'AudioWAV'}: expected <root>/AudioWAV/"
            "<actor>_<sentence>_<emotion>_<level>.wav; call load_crema_d(download=True), or "
            f"`{CREMA_D_CLONE}` (with git-lfs) and pass that folder as root.")
    parts = [pattern.fullmatch(p.name).groups() for p in files]
    codes = list(CREMA_D_EMOTIONS)
    labels = np.array([codes.index(p[2]) for p in parts])
    groups = np.array([p[0] for p in parts])
    actors = np.unique(groups)
    n_test = min(max(1, int(round(test_fraction * len(actors)))), len(actors) - 1)
    test_actors = np.random.default_rng(seed).permutation(actors)[:n_test]
    split = np.where(np.isin(groups, test_actors), "test", "train")
    keep = _sample_per_class(labels, split, max_per_class, seed)
    return _build("crema_d", [files[i] for i in keep], labels[keep], tuple(CREMA_D_EMOTIONS.values()),
                  split[keep], groups[keep], np.array([p[1] for p in parts])[keep],
                  f"crema_d-{seed}-{test_fraction}", progress)


# -------------------------------------------------------------------- helpers
def _build(name, paths, labels, names, split, groups, texts, version, progress) -> Task:
    """Read the clips at 16 kHz and assemble the task."""
    from bt_tutorial.dataset.stimulus import read_audio

    waves = [read_audio(p, 16000).waveform for p in tqdm(paths, desc=name, disable=not progress)]
    return Task(name, waves, labels, tuple(names), split, groups, texts, version=version)


def _sample_per_class(labels, split, max_per_class, seed) -> np.ndarray:
    """Indices keeping at most ``max_per_class`` clips per (split, class), in file order."""
    if max_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for s in np.unique(split):
        for c in np.unique(labels):
            idx = np.flatnonzero((split == s) & (labels == c))
            keep.extend(rng.permutation(idx)[:max_per_class])
    return np.sort(np.array(keep, dtype=int))


def _drop_shared_speakers(split, groups) -> np.ndarray:
    """Indices without the training clips of speakers that are also in the test split."""
    test_speakers = set(groups[split == "test"])
    return np.flatnonzero((split == "test") | ~np.isin(groups, list(test_speakers)))


def _extract(archive: Path, dest: Path) -> None:
    """Unpack a tar archive into ``dest``, refusing members that would land outside it."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
            return
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if dest.resolve() not in target.parents and target != dest.resolve():
                raise ValueError(f"{archive} has a member outside the archive root: {member.name}.")
        tar.extractall(dest)
