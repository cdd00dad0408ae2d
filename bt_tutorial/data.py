"""Reader for a dataset in the layout of LeBel et al. (2023), OpenNeuro ds003020.

The real dataset (``full`` profile) and its synthetic twin (``demo`` profile)
share this reader: the twin is written in exactly the same layout::

    <root>/derivative/respdict.json
    <root>/derivative/TextGrids/<story>.TextGrid
    <root>/derivative/preprocessed_data/<subject>/<story>.hf5   (key "data")
    <root>/stimuli/<story>.wav
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .stimulus import (BAD_WORDS, Audio, Intervals, StimulusFileError, read_audio,  # noqa: F401 (re-exported)
                       read_textgrid)
from .timing import RESPONSE_TRIM, TR, response_tr_times

TEST_STORY = "wheretheressmoke"
VALIDATION_STORY = "stagefright"
EXCLUDED_STORIES = ("life",)  # left out of the paper's training set
# the 27 stories all subjects heard, minus life, stagefright and wheretheressmoke
PAPER_TRAIN_STORIES = (
    "adollshouse", "adventuresinsayingyes", "alternateithicatom", "avatar", "buck", "exorcism", "eyespy",
    "fromboyhoodtofatherhood", "hangtime", "haveyoumethimyet", "howtodraw", "inamoment", "itsabox", "legacy",
    "myfirstdaywiththeyankees", "naked", "odetostepfather", "sloth", "souls", "swimmingwithastronauts",
    "thatthingonmyarm", "theclosetthatateeverything", "tildeath", "undertheinfluence")
NAN_POLICIES = ("raise", "zero", "keep")
# audio may end this many TRs before the end of the story's last response row (Lanczos
# resampling reaches 3 TRs around each row, so a small shortfall only dims its edge)
AUDIO_SHORTFALL_TRS = 1.0
# where a synthetic twin keeps what real data cannot give: the truth behind its responses
GROUND_TRUTH_DIR = "ground_truth"
TWIN_INFO = "twin.json"

_HOW_TO_GET = (
    "For the offline twin run `python data_scripts/make_synthetic_twin.py --out {root}`; "
    "for the real data run `python data_scripts/download_lebel.py --subject UTS01 "
    "--stories 5 --out {root}`."
)


class DatasetError(ValueError):
    """A dataset file exists but its content is not what ds003020 promises."""


def refetch_hint(root, path=None) -> str:
    """How to replace a damaged file of the dataset at ``root``: regenerate the twin or download again."""
    root = Path(root)
    if (root / GROUND_TRUTH_DIR / TWIN_INFO).is_file():
        return (f"This is a synthetic twin: delete the folder {root} and it is regenerated on next use "
                f"(or run `python data_scripts/make_synthetic_twin.py --out {root}`).")
    what = f"delete {path} and " if path is not None else ""
    return (f"To download it again, {what}run `python data_scripts/download_lebel.py --subject <UTSxx> "
            f"--stories <N> --out {root}` (it fetches only missing or incomplete files).")


@dataclass
class Story:
    """Everything about one story that does not depend on the subject.

    Attributes
    ----------
    name : str
    words, phones : Intervals
        From the story's TextGrid, silences and non-speech labels dropped,
        phones in ARPAbet without stress digits.
    n_scan_trs : int
        Scanner TRs (``respdict.json``).
    tr_times : ndarray, shape (n_scan_trs - 20,)
        Time of each response row relative to the sound onset, in seconds.
    """

    name: str
    words: Intervals
    phones: Intervals
    n_scan_trs: int
    tr_times: np.ndarray
    dataset: "LebelDataset"

    def load_audio(self, sample_rate: int = 16000) -> Audio:
        """The story's audio, mono, resampled to ``sample_rate``."""
        return self.dataset.load_audio(self.name, sample_rate)


def require_file(path: Path, root: Path, what: str = "File") -> Path:
    """Return ``path`` or raise FileNotFoundError saying how to get it."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}. " + _HOW_TO_GET.format(root=root))
    return path


class LebelDataset:
    """Read a folder in the ds003020 layout (real or synthetic).

    Parameters
    ----------
    root : str or Path
        Folder that contains ``derivative/`` and ``stimuli/``.
    tr : float
        Repetition time used for the simulated TR grid.
    strict : bool
        What :meth:`stories` does with a story that has stimulus files but no
        response file for the subject: warn and leave it out (False), or raise
        (True, e.g. for the full profile).

    Examples
    --------
    >>> ds = LebelDataset("~/.cache/bt_tutorial/synthetic_twin")  # doctest: +SKIP
    >>> Y = ds.load_responses("UTS01", "wheretheressmoke")  # doctest: +SKIP
    """

    def __init__(self, root, tr: float = TR, strict: bool = False):
        self.root = Path(root).expanduser()
        self.tr = tr
        self.strict = strict
        if not (self.root / "derivative").is_dir():
            raise FileNotFoundError(f"No ds003020 dataset at {self.root} (missing {self.root / 'derivative'}). "
                                    + _HOW_TO_GET.format(root=self.root))

    def __repr__(self) -> str:
        return f"LebelDataset(root={str(self.root)!r})"

    def tree(self, max_files: int = 3) -> str:
        """The folder layout as text, showing at most ``max_files`` files per folder."""
        lines = [f"{self.root.name}/"]
        _tree_lines(self.root, "", max_files, lines)
        return "\n".join(lines)

    # ----------------------------------------------------------------- listing
    @cached_property
    def respdict(self) -> dict:
        """Story name -> number of scanner TRs, from ``derivative/respdict.json``.

        Raises DatasetError, naming the file and how to replace it, if it is not a
        JSON object of integers above 20 (a story keeps ``respdict - 20`` rows).
        """
        path = require_file(self.root / "derivative" / "respdict.json", self.root)
        try:
            raw = json.loads(path.read_text())
        except (UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{path} is not valid JSON ({exc}). {refetch_hint(self.root, path)}") from None
        if not isinstance(raw, dict):
            raise DatasetError(f"{path} should map stories to TR counts, got a {type(raw).__name__}. "
                               + refetch_hint(self.root, path))
        bad = [(k, v) for k, v in raw.items() if isinstance(v, bool) or not isinstance(v, (int, float))
               or not float(v).is_integer() or v <= RESPONSE_TRIM]
        if bad:
            raise DatasetError(f"{path}: {len(bad)} of {len(raw)} TR counts are not integers above "
                               f"{RESPONSE_TRIM}, e.g. {bad[0][0]!r}: {bad[0][1]!r}. " + refetch_hint(self.root, path))
        return {k: int(v) for k, v in raw.items()}

    @property
    def subjects(self) -> list:
        """Subjects with a ``preprocessed_data`` folder, sorted."""
        base = self.root / "derivative" / "preprocessed_data"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def stories(self, subject: str | None = None, strict: bool | None = None) -> list:
        """Stories with responses for ``subject`` (all stories of respdict if None).

        A story of respdict.json with a TextGrid, audio or ``.hf5.part`` but no
        response file for ``subject`` is left out with a warning naming it and
        the file, or raises FileNotFoundError if ``strict`` (default: the
        dataset's). Stories with none of their files were not downloaded
        (ds003020's respdict.json lists all 84): they are left out silently.
        """
        if subject is None:
            return sorted(self.respdict)
        folder = self.root / "derivative" / "preprocessed_data" / subject
        if not folder.is_dir():
            raise FileNotFoundError(f"No responses for subject {subject!r} at {folder}; subjects here: "
                                    f"{self.subjects}. " + _HOW_TO_GET.format(root=self.root))
        have = sorted(p.stem for p in folder.glob("*.hf5"))
        missing = [s for s in sorted(set(self.respdict) - set(have)) if self._has_stimulus(subject, s)]
        if missing:
            paths = ", ".join(str(self.response_path(subject, s)) for s in missing[:3])
            msg = (f"{len(missing)} stories of respdict.json have stimulus files but no responses for "
                   f"{subject}: {missing[:10]} (missing {paths}{', ...' if len(missing) > 3 else ''}). "
                   f"{refetch_hint(self.root)}")
            if self.strict if strict is None else strict:
                raise FileNotFoundError(msg)
            warnings.warn(msg + " They are left out; pass strict=True to make this an error.", stacklevel=2)
        return have

    def _has_stimulus(self, subject: str, story: str) -> bool:
        part = self.response_path(subject, story).with_suffix(".hf5.part")  # an interrupted download
        return any(p.is_file() for p in (self.textgrid_path(story), self.audio_path(story), part))

    def split(self, subject: str, strict: bool | None = None) -> dict:
        """The paper's split of the stories a subject has.

        Returns
        -------
        split : dict
            ``{"train": [...], "validation": "stagefright", "test": "wheretheressmoke"}``;
            training stories are all others except ``life``. ``strict``: see :meth:`stories`.
        """
        have = self.stories(subject, strict)
        for story in (TEST_STORY, VALIDATION_STORY):
            if story not in have:
                raise FileNotFoundError(f"Subject {subject} has no responses for {story!r}, which the paper's "
                                        "split needs. " + _HOW_TO_GET.format(root=self.root))
        skip = {TEST_STORY, VALIDATION_STORY, *EXCLUDED_STORIES}
        return {"train": [s for s in have if s not in skip], "validation": VALIDATION_STORY, "test": TEST_STORY}

    def n_scan_trs(self, story: str) -> int:
        """Scanner TRs of ``story`` according to respdict."""
        if story not in self.respdict:
            raise DatasetError(f"Story {story!r} is not in {self.root}/derivative/respdict.json, so its TR "
                               f"count is unknown. Use a story it lists ({len(self.respdict)} stories), or "
                               "restore respdict.json. " + refetch_hint(self.root))
        return self.respdict[story]

    def tr_times(self, story: str) -> np.ndarray:
        """Time of each response row of ``story``, shape (respdict - 20,)."""
        return response_tr_times(self.n_scan_trs(story), self.tr)

    # --------------------------------------------------------------- responses
    def response_path(self, subject: str, story: str) -> Path:
        """Path of the HDF5 file of a subject's responses to a story."""
        return self.root / "derivative" / "preprocessed_data" / subject / f"{story}.hf5"

    def load_responses(self, subject: str, story: str, nan_policy: str = "raise") -> np.ndarray:
        """A subject's responses to a story.

        Parameters
        ----------
        subject, story : str
        nan_policy : {"raise", "zero", "keep"}
            What to do with non-finite values, NaN or inf (real data has NaN):
            ``"raise"`` a DatasetError naming the voxels, replace them by
            ``"zero"`` (with one warning that says how many), or ``"keep"`` them.

        Returns
        -------
        responses : ndarray, shape (respdict - 20, n_voxels), float32
        """
        data = self._read_hdf5(subject, story, "data", ("TRs", "voxels"))
        self._check_rows(subject, story, data.shape[0])
        return _apply_nan_policy(data, nan_policy, self.response_path(subject, story))

    def load_repeats(self, subject: str, story: str = TEST_STORY, nan_policy: str = "raise") -> np.ndarray:
        """Single-repeat responses of the test story.

        Returns
        -------
        repeats : ndarray, shape (n_repeats, respdict - 20, n_voxels), float32
        """
        reps = self._read_hdf5(subject, story, "individual_repeats", ("n_repeats", "TRs", "voxels"))
        if reps.shape[0] < 2:
            raise DatasetError(f"{self.response_path(subject, story)}: 'individual_repeats' holds "
                               f"{reps.shape[0]} repeat; a noise ceiling needs at least 2.")
        self._check_rows(subject, story, reps.shape[1])
        return _apply_nan_policy(reps, nan_policy, self.response_path(subject, story))

    def _read_hdf5(self, subject: str, story: str, key: str, axes: tuple) -> np.ndarray:
        """Dataset ``key`` of a response file as float32, with one dimension per name in ``axes``."""
        import h5py

        path = require_file(self.response_path(subject, story), self.root, "Responses")
        try:
            with h5py.File(path, "r") as f:
                data = np.asarray(f[key], dtype=np.float32) if key in f else None
                keys = sorted(f.keys())
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            # h5py: OSError for a truncated, empty or non-HDF5 file; the others for odd content
            raise DatasetError(f"{path} cannot be read as HDF5 {key!r} ({type(exc).__name__}: {exc}); it is "
                               f"damaged or not a response file. {refetch_hint(self.root, path)}") from None
        if data is None:
            raise DatasetError(f"{path} has no dataset {key!r} (keys: {keys}). The file is not a ds003020 "
                               f"response file or is damaged. {refetch_hint(self.root, path)}")
        if data.ndim != len(axes):
            raise DatasetError(f"{path}: {key!r} should be ({', '.join(axes)}), got shape {data.shape}. "
                               + refetch_hint(self.root, path))
        return data

    def _check_rows(self, subject: str, story: str, n_rows: int) -> None:
        expected = self.n_scan_trs(story) - RESPONSE_TRIM
        if n_rows != expected:
            raise DatasetError(f"Responses of {subject}/{story} have {n_rows} rows but respdict.json says "
                               f"{self.n_scan_trs(story)} TRs, i.e. {expected} rows after trimming 20. "
                               "Check that respdict.json and the .hf5 file come from the same release.")

    def mask_path(self, subject: str) -> Path:
        """Path of the subject's cortical mask in the pycortex database."""
        return (self.root / "derivative" / "pycortex-db" / subject / "transforms"
                / f"{subject}_auto" / "mask_thick.nii.gz")

    def voxel_columns(self, subject: str) -> np.ndarray:
        """Flat volume index of each response column (real data only).

        The columns of a subject's responses are the voxels of
        ``mask_thick.nii.gz`` in the order ``flatnonzero(mask.T.ravel())``.

        Returns
        -------
        columns : ndarray, shape (n_voxels,), int
        """
        import nibabel as nib

        path = require_file(self.mask_path(subject), self.root, "Cortical mask")
        try:
            mask = np.asarray(nib.load(str(path)).dataobj)
        except Exception as exc:  # nibabel raises many types for a damaged file
            raise DatasetError(f"Cannot read the cortical mask {path} ({type(exc).__name__}). "
                               + refetch_hint(self.root, path)) from None
        return np.flatnonzero(mask.T.ravel())

    # ---------------------------------------------------------------- stimulus
    def textgrid_path(self, story: str) -> Path:
        return self.root / "derivative" / "TextGrids" / f"{story}.TextGrid"

    def audio_path(self, story: str) -> Path:
        return self.root / "stimuli" / f"{story}.wav"

    def load_transcript(self, story: str) -> tuple:
        """Words and phones of a story from its TextGrid.

        Tiers found by name (``phone(s)``, ``word(s)``), else tier 0 phones and
        tier 1 words; see :func:`read_textgrid`. Non-speech labels (``BAD_WORDS``) are
        dropped, words are lower-cased, phones upper-cased without stress digits.

        Returns
        -------
        words, phones : Intervals
        """
        path = require_file(self.textgrid_path(story), self.root, "TextGrid")
        try:
            return read_textgrid(path)
        except StimulusFileError as exc:
            raise DatasetError(f"{exc} {refetch_hint(self.root, path)}") from None

    def load_audio(self, story: str, sample_rate: int = 16000) -> Audio:
        """A story's audio, mono, float32, resampled to ``sample_rate``.

        The rate of the file is kept in ``Audio.source_rate`` (44.1 kHz in ds003020).
        Audio ending more than ``AUDIO_SHORTFALL_TRS`` TRs before the end of the last
        response row (truncated, or from another release) raises DatasetError with
        both durations, instead of features silently zero at the end (stories
        missing from respdict.json are not checked).
        """
        path = require_file(self.audio_path(story), self.root, "Stimulus audio")
        try:
            audio = read_audio(path, sample_rate)
        except StimulusFileError as exc:
            raise DatasetError(f"{exc} {refetch_hint(self.root, path)}") from None
        needed = float(self.tr_times(story)[-1]) + self.tr / 2 if story in self.respdict else 0.0
        if audio.duration < needed - AUDIO_SHORTFALL_TRS * self.tr:
            raise DatasetError(f"{path} lasts {audio.duration:.1f} s but the TR grid of {story} needs "
                               f"{needed:.1f} s of audio (respdict.json: {self.n_scan_trs(story)} TRs; tolerance "
                               f"{AUDIO_SHORTFALL_TRS:g} TR): the file is truncated or from another release. "
                               + refetch_hint(self.root, path))
        return audio

    def load_story(self, story: str) -> Story:
        """Words, phones and TR times of a story in one object."""
        words, phones = self.load_transcript(story)
        return Story(story, words, phones, self.n_scan_trs(story), self.tr_times(story), self)


def load_ground_truth(root, subject: str | None = None, story: str | None = None) -> dict:
    """Ground truth of a synthetic twin: its summary, a subject's voxels or a story's features.

    The twin (:mod:`bt_tutorial.synthetic`) writes these files; the reader owns their layout.

    Returns
    -------
    truth : dict
        ``twin.json`` content if neither subject nor story is given; else the
        arrays of ``ground_truth/<subject>.npz`` or ``ground_truth/stories/<story>.npz``.
    """
    gt = Path(root) / GROUND_TRUTH_DIR
    if subject is None and story is None:
        try:
            return json.loads((gt / TWIN_INFO).read_text())
        except (UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{gt / TWIN_INFO} is not valid JSON ({exc}). {refetch_hint(root)}") from None
    path = gt / f"{subject}.npz" if subject else gt / "stories" / f"{story}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"No ground truth at {path}: is {root} a synthetic twin?")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # truncated, or not an npz
        raise DatasetError(f"Cannot read the ground truth {path} ({type(exc).__name__}). "
                           + refetch_hint(root)) from None


def _tree_lines(folder: Path, prefix: str, max_files: int, lines: list) -> None:
    entries = sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name))
    dirs = [p for p in entries if p.is_dir()]
    files = [p for p in entries if p.is_file()]
    shown = dirs + files[:max_files]
    for i, path in enumerate(shown):
        last = i == len(shown) - 1 and len(files) <= max_files
        lines.append(f"{prefix}{'└── ' if last else '├── '}{path.name}{'/' if path.is_dir() else ''}")
        if path.is_dir():
            _tree_lines(path, prefix + ("    " if last else "│   "), max_files, lines)
    if len(files) > max_files:
        lines.append(f"{prefix}└── ... {len(files) - max_files} more files")


def _apply_nan_policy(data: np.ndarray, policy: str, path: Path) -> np.ndarray:
    if policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {policy!r}.")
    bad = ~np.isfinite(data)
    if policy == "keep" or not bad.any():
        return data
    voxels = np.flatnonzero(bad.reshape(-1, data.shape[-1]).any(axis=0))
    if policy == "raise":
        raise DatasetError(f"{path} has non-finite values (NaN or inf) in {voxels.size} voxels (first: "
                           f"{voxels[:5].tolist()}). Pass nan_policy='zero' to replace them with 0 (a zero "
                           "column then gets a test r of NaN), or nan_policy='keep' to handle them yourself.")
    warnings.warn(f"{path}: replaced non-finite values (NaN or inf) by 0 in {voxels.size} voxels.",
                  stacklevel=3)
    return np.where(bad, np.float32(0), data)
