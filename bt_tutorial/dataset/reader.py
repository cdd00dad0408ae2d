"""Reader for a dataset in the layout of LeBel et al. (2023), OpenNeuro ds003020.

The real dataset (``full`` profile) and its synthetic twin (``demo`` profile)
share this reader: the twin is written in exactly the same layout::

    <root>/derivative/respdict.json
    <root>/derivative/TextGrids/<story>.TextGrid
    <root>/derivative/preprocessed_data/<subject>/<story>.hf5   (key "data")
    <root>/stimuli/<story>.wav

Snapshot 3.1.0 of ds003020 names the folder ``derivative/``; users of newer snapshots
cite ``derivatives/``: the reader accepts either (:func:`~bt_tutorial.dataset.layout.derivative_dir`).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from bt_tutorial._stack import warn_at_caller
from bt_tutorial.dataset.layout import HOW_TO_GET, DatasetError, derivative_dir, refetch_hint, require_file, tree_lines
from bt_tutorial.dataset.stimulus import Audio, Intervals, StimulusFileError, read_audio, read_textgrid
from bt_tutorial.dataset.stories import TEST_STORY, split_stories, train_story_list
from bt_tutorial.dataset.timing import RESPONSE_TRIM, TR, response_tr_times

NAN_POLICIES = ("raise", "zero", "keep")
# audio may end this many TRs before the end of the story's last response row (Lanczos
# resampling reaches 3 TRs around each row, so a small shortfall only dims its edge)
MAX_SCAN_TRS = 43_200  # a day of 2 s TRs: more is a damaged respdict.json
MAX_RESPONSE_BYTES = 16 * 2**30  # a response array this large is a damaged header
TRANSCRIPT_EXCESS_S = 30.0  # words this far past the last TR belong to no response
AUDIO_EXCESS_FACTOR = 1.5  # audio this much longer than the scans (+ 30 s) is another file
AUDIO_SHORTFALL_TRS = 1.0


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


def plain_name(name: str, kind: str) -> str:
    """``name`` if it is a plain file name (letters, digits, ``_ . -``, no ``..``); else ValueError.

    Subjects and stories become parts of paths: ``'../../x'`` would read or write outside the dataset.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise ValueError(f"Invalid {kind} {name!r}: a plain name such as 'UTS01' or 'wheretheressmoke', not a path.")
    return name


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
    nan_policy : {"raise", "zero", "keep"}
        Default of :meth:`load_responses` and :meth:`load_repeats` for non-finite
        values (``"zero"`` in the full profile: real responses have NaN voxels).
    train_stories : {"all", "paper"}, str or sequence of str
        Default training stories of :meth:`split` (see :mod:`bt_tutorial.dataset.stories`).

    Attributes
    ----------
    derivative : Path
        ``<root>/derivative`` or ``<root>/derivatives``, whichever the tree has.
    zeroed_voxels : dict of (subject, story) -> int
        How many voxels of each file loaded with ``nan_policy="zero"`` had non-finite
        values set to 0 (the key's story is ``"<story> (repeats)"`` for repeats).

    Examples
    --------
    >>> ds = LebelDataset("~/.cache/bt_tutorial/synthetic_twin")
    >>> Y = ds.load_responses("UTS01", "wheretheressmoke")
    """

    def __init__(self, root, tr: float = TR, strict: bool = False, nan_policy: str = "raise",
                 train_stories="all"):
        self.root = Path(root).expanduser()
        self.tr = tr
        self.strict = strict
        if nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}.")
        self.nan_policy = nan_policy
        train_story_list(train_stories)  # checked now, not at the first split
        self.train_stories = train_stories
        self.zeroed_voxels = {}
        self._zeroed_columns = {}  # subject -> bool mask of the columns zeroed so far
        self._said = set()  # warnings given once per dataset
        derivative = derivative_dir(self.root)
        if derivative is None:
            raise FileNotFoundError(f"No ds003020 dataset at {self.root} (missing {self.root / 'derivative'} "
                                    "or derivatives). " + HOW_TO_GET.format(root=self.root))
        self.derivative = derivative

    def __repr__(self) -> str:
        return f"LebelDataset(root={str(self.root)!r})"

    def tree(self, max_files: int = 3) -> str:
        """The folder layout as text, showing at most ``max_files`` files per folder."""
        lines = [f"{self.root.name}/"]
        tree_lines(self.root, "", max_files, lines)
        return "\n".join(lines)

    # ----------------------------------------------------------------- listing
    @cached_property
    def respdict(self) -> dict:
        """Story name -> number of scanner TRs, from ``derivative/respdict.json``.

        Raises DatasetError, naming the file and how to replace it, if it is not a
        JSON object of integers above 20 (a story keeps ``respdict - 20`` rows).
        """
        path = require_file(self.derivative / "respdict.json", self.root)
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is harmless
        except (UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{path} is not valid JSON ({exc}). {refetch_hint(self.root, path)}") from None
        if not isinstance(raw, dict):
            raise DatasetError(f"{path} should map stories to TR counts, got a {type(raw).__name__}. "
                               + refetch_hint(self.root, path))
        bad = [(k, v) for k, v in raw.items() if isinstance(v, bool) or not isinstance(v, (int, float))
               or not float(v).is_integer() or not RESPONSE_TRIM < v <= MAX_SCAN_TRS]
        if bad:
            raise DatasetError(f"{path}: {len(bad)} of {len(raw)} TR counts are not integers above "
                               f"{RESPONSE_TRIM} and at most {MAX_SCAN_TRS} (a day of scans), e.g. {bad[0][0]!r}: "
                               f"{bad[0][1]!r}. " + refetch_hint(self.root, path))
        return {k: int(v) for k, v in raw.items()}

    @property
    def subjects(self) -> list:
        """Subjects with a ``preprocessed_data`` folder, sorted."""
        base = self.derivative / "preprocessed_data"
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
        folder = self.derivative / "preprocessed_data" / plain_name(subject, "subject")
        if not folder.is_dir():
            raise FileNotFoundError(
                f"No responses for subject {subject!r} at {folder}; subjects here: {self.subjects}. Choose "
                f"one of them (BT_SUBJECT, or Config.subject), or download {subject}: `python -m "
                f"bt_tutorial.dataset.download --subject {subject} --stories 5 --out {self.root}`.")
        have = sorted(p.stem for p in folder.glob("*.hf5"))
        missing = [s for s in sorted(set(self.respdict) - set(have)) if self._has_stimulus(subject, s)]
        if missing:
            paths = ", ".join(str(self.response_path(subject, s)) for s in missing[:3])
            msg = (f"{len(missing)} stories of respdict.json have stimulus files but no responses for "
                   f"{subject}: {missing[:10]} (missing {paths}{', ...' if len(missing) > 3 else ''}). "
                   f"{refetch_hint(self.root)}")
            if self.strict if strict is None else strict:
                raise FileNotFoundError(msg)
            warn_at_caller(msg + " They are left out; pass strict=True to make this an error.")
        return have

    def _has_stimulus(self, subject: str, story: str) -> bool:
        part = self.response_path(subject, story).with_suffix(".hf5.part")  # an interrupted download
        return any(p.is_file() for p in (self.textgrid_path(story), self.audio_path(story), part))

    def split(self, subject: str, strict: bool | None = None, train_stories=None) -> dict:
        """The paper's split of the stories a subject has.

        Parameters
        ----------
        subject : str
        strict : bool, optional
            See :meth:`stories`.
        train_stories : {"all", "paper"}, str or sequence of str, optional
            Default: the dataset's. ``"all"``: every story present except the test,
            validation and ``life`` stories; ``"paper"``: the paper's 24, warning about
            those missing (see :func:`bt_tutorial.dataset.stories.split_stories`).

        Returns
        -------
        split : dict
            ``{"train": [...], "validation": "stagefright", "test": "wheretheressmoke"}``.
        """
        have = self.stories(subject, strict)
        setting = self.train_stories if train_stories is None else train_stories
        fix = (f"Download them with `python -m bt_tutorial.dataset.download --subject {subject} --stories N "
               f"--out {self.root}`.")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            split = split_stories(have, subject, setting, where=str(self.root), fix=fix)
        for w in caught:  # the missing stories, once per dataset (every analysis calls split)
            if str(w.message) not in self._said:
                self._said.add(str(w.message))
                warn_at_caller(str(w.message), w.category)
        return split

    def n_scan_trs(self, story: str) -> int:
        """Scanner TRs of ``story`` according to respdict."""
        if story not in self.respdict:
            raise DatasetError(f"Story {story!r} is not in {self.derivative}/respdict.json, so its TR "
                               f"count is unknown. Use a story it lists ({len(self.respdict)} stories), or "
                               "restore respdict.json. " + refetch_hint(self.root))
        return self.respdict[story]

    def tr_times(self, story: str) -> np.ndarray:
        """Time of each response row of ``story``, shape (respdict - 20,)."""
        return response_tr_times(self.n_scan_trs(story), self.tr)

    # --------------------------------------------------------------- responses
    def response_path(self, subject: str, story: str) -> Path:
        """Path of the HDF5 file of a subject's responses to a story."""
        return (self.derivative / "preprocessed_data" / plain_name(subject, "subject")
                / f"{plain_name(story, 'story')}.hf5")

    def load_responses(self, subject: str, story: str, nan_policy: str | None = None) -> np.ndarray:
        """A subject's responses to a story.

        Parameters
        ----------
        subject, story : str
        nan_policy : {"raise", "zero", "keep"}, optional
            What to do with non-finite values, NaN or inf (real data has NaN columns):
            ``"raise"`` a DatasetError naming the voxels, replace them by ``"zero"``
            (as the paper's loader does), or ``"keep"`` them. Default: the dataset's.
            ``"zero"`` warns with the number of voxels the first time a subject's
            files have non-finite values in voxels not reported before, and counts
            them in :attr:`zeroed_voxels`.

        Returns
        -------
        responses : ndarray, shape (respdict - 20, n_voxels), float32
        """
        data = self._read_hdf5(subject, story, "data", ("TRs", "voxels"))
        self._check_rows(subject, story, data.shape[0])
        return self._apply_nan_policy(data, nan_policy, subject, story)

    def load_repeats(self, subject: str, story: str = TEST_STORY, nan_policy: str | None = None) -> np.ndarray:
        """Single-repeat responses of the test story.

        ``nan_policy``: as in :meth:`load_responses`.

        Returns
        -------
        repeats : ndarray, shape (n_repeats, respdict - 20, n_voxels), float32
        """
        reps = self._read_hdf5(subject, story, "individual_repeats", ("n_repeats", "TRs", "voxels"))
        if reps.shape[0] < 2:
            raise DatasetError(f"{self.response_path(subject, story)}: 'individual_repeats' holds "
                               f"{reps.shape[0]} repeat; a noise ceiling needs at least 2.")
        self._check_rows(subject, story, reps.shape[1])
        return self._apply_nan_policy(reps, nan_policy, subject, story, " (repeats)")

    def _apply_nan_policy(self, data: np.ndarray, policy: str | None, subject: str, story: str,
                          what: str = "") -> np.ndarray:
        """Raise on, zero (in place) or keep the non-finite values of ``data`` (..., n_voxels)."""
        policy = self.nan_policy if policy is None else policy
        if policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {policy!r}.")
        if policy == "keep":
            return data
        path = self.response_path(subject, story)
        flat = data.reshape(-1, data.shape[-1])
        bad = _nonfinite_columns(flat)
        if not bad.any():
            return data
        voxels = np.flatnonzero(bad)
        if policy == "raise":
            raise DatasetError(f"{path} has non-finite values (NaN or inf) in {voxels.size} voxels (first: "
                               f"{voxels[:5].tolist()}). Pass nan_policy='zero' to replace them with 0 (a zero "
                               "column then gets a test r of NaN), or nan_policy='keep' to handle them yourself.")
        block = flat[:, voxels]
        block[~np.isfinite(block)] = 0
        flat[:, voxels] = block
        self.zeroed_voxels[(subject, story + what)] = int(voxels.size)
        seen = self._zeroed_columns.get(subject)
        seen = seen if seen is not None and seen.size == bad.size else np.zeros(bad.size, bool)
        new = int((bad & ~seen).sum())
        if new:
            self._zeroed_columns[subject] = bad | seen
            total = int((bad | seen).sum())
            warn_at_caller(f"{path}: replaced non-finite values (NaN or inf) by 0 in {voxels.size} voxels{what} "
                           f"({new} not reported before; {total} of {bad.size} voxels of {subject} so far). "
                           "Other files of the subject warn only for other voxels; the dataset's zeroed_voxels "
                           "counts them per story.")
        return data

    def _read_hdf5(self, subject: str, story: str, key: str, axes: tuple) -> np.ndarray:
        """Dataset ``key`` of a response file as float32, with one dimension per name in ``axes``."""
        import h5py

        path = require_file(self.response_path(subject, story), self.root, "Responses")
        try:
            with h5py.File(path, "r") as f:
                keys = sorted(f.keys())
                if key in f and np.prod(f[key].shape, dtype=float) * 4 > MAX_RESPONSE_BYTES:
                    raise DatasetError(f"{path}: {key!r} declares shape {f[key].shape}, "
                                       f"{np.prod(f[key].shape, dtype=float) * 4 / 2**30:.0f} GiB as float32; "
                                       "ds003020's largest is under 1 GiB. The file is damaged. "
                                       + refetch_hint(self.root, path))
                data = _read_float32(f[key]) if key in f else None
        except DatasetError:
            raise
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
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
        return (self.derivative / "pycortex-db" / plain_name(subject, "subject") / "transforms"
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
        return self.derivative / "TextGrids" / f"{plain_name(story, 'story')}.TextGrid"

    def audio_path(self, story: str) -> Path:
        return self.root / "stimuli" / f"{plain_name(story, 'story')}.wav"

    def load_transcript(self, story: str) -> tuple:
        """Words and phones of a story from its TextGrid.

        Tiers found by name (``phone(s)``, ``word(s)``), else tier 0 phones and
        tier 1 words; see :func:`~bt_tutorial.dataset.stimulus.read_textgrid`. Non-speech labels (``BAD_WORDS``) are
        dropped, words are lower-cased, phones upper-cased without stress digits.

        Returns
        -------
        words, phones : Intervals
        """
        path = require_file(self.textgrid_path(story), self.root, "TextGrid")
        try:
            words, phones = read_textgrid(path)
        except StimulusFileError as exc:
            raise DatasetError(f"{exc} {refetch_hint(self.root, path)}") from None
        if story in self.respdict and len(words.ends):
            grid_end = float(self.tr_times(story)[-1]) + self.tr / 2
            if float(words.ends.max()) > grid_end + TRANSCRIPT_EXCESS_S:
                raise DatasetError(f"{path}: its words run to {words.ends.max():.1f} s but the TR grid of {story} "
                                   f"ends at {grid_end:.1f} s (respdict.json: {self.n_scan_trs(story)} TRs): the "
                                   "transcript is shifted or another story's. " + refetch_hint(self.root, path))
        return words, phones

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
        if needed and audio.duration > AUDIO_EXCESS_FACTOR * needed + 30.0:
            raise DatasetError(f"{path} lasts {audio.duration:.1f} s but the TR grid of {story} covers only "
                               f"{needed:.1f} s (respdict.json: {self.n_scan_trs(story)} TRs): the audio is not "
                               "this story's, or its sample rate is declared wrong. "
                               + refetch_hint(self.root, path))
        return audio

    def load_story(self, story: str) -> Story:
        """Words, phones and TR times of a story in one object."""
        words, phones = self.load_transcript(story)
        return Story(story, words, phones, self.n_scan_trs(story), self.tr_times(story), self)


def _read_float32(dataset) -> np.ndarray:
    """An HDF5 dataset as float32, converted while reading (no float64 copy of a float64 file)."""
    out = np.empty(dataset.shape, dtype=np.float32)
    if out.size:
        dataset.read_direct(out)
    return out


def _nonfinite_columns(flat: np.ndarray, rows: int = 256) -> np.ndarray:
    """Columns of ``flat`` (n_rows, n_columns) with a non-finite value, shape (n_columns,), bool.

    Checked a block of rows at a time, so the temporary mask stays small.
    """
    bad = np.zeros(flat.shape[1], bool)
    for start in range(0, flat.shape[0], rows):
        bad |= ~np.isfinite(flat[start:start + rows]).all(axis=0)
    return bad
