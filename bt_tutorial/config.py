"""Profiles (``demo`` offline, ``full`` online) and the data home.

The profile is read from the environment variable ``BT_PROFILE`` and the data
home from ``BT_DATA`` (``BT_SUBJECT``, ``BT_TRAIN_STORIES``, ``BT_MODEL``, ``BT_FEATURES``,
``BT_SCORED_ROWS``, ``BT_PROGRESS`` and ``BT_INTERACTIVE`` are optional);
:func:`get_config` turns them into one small object that chapters read, so the
same code runs in both profiles.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

PROFILES = ("demo", "full")
AUTHORS_FIRST_SCORED_ROW = 40  # eval_utils.py: responses [40:], features [50:-5], repeats [:, 40:]
SCORED_ROWS = {"authors": AUTHORS_FIRST_SCORED_ROW, "all": 0}
# the subjects of ds003020 (the full profile); a synthetic twin names its subjects the same way
LEBEL_SUBJECTS = tuple(f"UTS{i:02d}" for i in range(1, 9))
DEFAULT_SUBJECT = "UTS01"


@dataclass(frozen=True)
class FeatureParams:
    """How windows are cut.

    Parameters
    ----------
    context : float
        Seconds of audio per window (a multiple of 0.02 s).
    stride : float
        Seconds between consecutive window ends.
    batch_size : int
        Windows per forward pass.
    pool : {"last", "stride"}
        ``"last"``: the last frame of each window (the paper). ``"stride"``: the
        mean of the frames of the last ``stride`` seconds, so that a coarse
        stride still summarises all the audio between two window ends.
    """

    context: float = 16.0
    stride: float = 0.1
    batch_size: int = 16
    pool: str = "last"

    def __post_init__(self):
        numbers = (self.context, self.stride, self.batch_size)
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in numbers) or \
                self.context <= 0 or self.stride <= 0 or self.batch_size < 1:
            raise ValueError(f"Invalid feature parameters: {self} (context and stride are finite seconds > 0, "
                             "batch_size an integer >= 1).")
        if self.pool not in ("last", "stride"):
            raise ValueError(f"pool must be 'last' or 'stride', got {self.pool!r}.")
        if abs(self.context * 50 - round(self.context * 50)) > 1e-6:
            raise ValueError(f"context must be a multiple of 0.02 s, got {self.context}.")

    def tag(self) -> str:
        return f"c{self.context:g}_s{self.stride:g}" + ("" if self.pool == "last" else f"_{self.pool}")

    def n_pooled_frames(self, n_frames: int) -> int:
        """How many final frames of a window of ``n_frames`` frames are averaged."""
        if self.pool == "last":
            return 1
        return max(1, min(n_frames, int(round(n_frames * self.stride / self.context))))


PAPER_PARAMS = FeatureParams(context=16.0, stride=0.1)
# the demo profile's own windows (no preset named): about one TR apart, see Config.feature_params
DEMO_PARAMS = FeatureParams(context=8.0, stride=2.0, pool="stride")
FAST_PARAMS = FeatureParams(context=16.0, stride=1.0, pool="stride")
#: Named window settings (``BT_FEATURES``). ``"paper"``: 16 s of context every 0.1 s, last
#: frame (the default of the full profile). ``"fast"``: the paper's 16 s of context every
#: 1 s, each feature the mean of the frames of the last 1 s: a tenth of the windows, so
#: about a tenth of the extraction time. Measured on the twin (UTS01, whisper-tiny.en, first 3
#: training stories, benchmarks/bench_fast_preset.py -> benchmarks/results/fast_preset.json):
#: mean test r at the best layer +0.013 over voxels of noise ceiling > 0.4 (0.092 -> 0.105),
#: +0.017 late language, +0.024 early auditory, +0.023 primary auditory (always up, never
#: down); at most 0.048 apart for any layer and ROI group; per-voxel r correlate 0.76 with the
#: paper's. A 0.5 s stride was about as close (at most 0.052 apart, 0.82) for twice the time;
#: the last frame only every 1 s loses 0.07 r over ceiling > 0.4 voxels.
FEATURE_PRESETS = {"paper": PAPER_PARAMS, "fast": FAST_PARAMS}


def default_data_home() -> Path:
    """Per-user cache folder used when ``BT_DATA`` is not set.

    Returns
    -------
    path : Path
        ``$XDG_CACHE_HOME/bt_tutorial`` (``~/.cache/bt_tutorial`` by default).
    """
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bt_tutorial"


@dataclass(frozen=True)
class Config:
    """What a chapter needs to know about where it runs.

    Parameters
    ----------
    profile : {"demo", "full"}
        ``demo``: synthetic twin of ds003020, CPU, offline. ``full``: the real
        dataset and Hugging Face checkpoints, online, GPU recommended.
    data_home : Path
        Folder holding datasets, converted models and caches.
    subject : str
        Subject of the chapters (``BT_SUBJECT``; default ``UTS01``). The full profile
        accepts ``UTS01`` to ``UTS08``; the dataset must hold its responses (the reader
        lists the subjects it has otherwise).
    model : str, optional
        Speech model of the chapters (default: ``whisper-tiny.en`` in the demo
        profile, ``openai/whisper-small`` in the full one).
    progress : bool
        Show progress bars (``BT_PROGRESS=0`` turns them off, as in book builds).
    interactive : bool
        Show widgets (``BT_INTERACTIVE=0`` turns them off in book builds: the static
        book cannot show them, and executing them there can hang the notebook client).
    train_stories : {"paper", "all"}, str or tuple of str, optional
        Training stories of the split (``BT_TRAIN_STORIES``): ``"paper"``, the paper's 24
        (the full profile's default), ``"all"``, every story present but the test,
        validation and ``life`` stories (the demo profile's default: the twin has its own
        stories), or story names (a comma-separated string or a tuple). See
        :mod:`bt_tutorial.dataset.stories`.
    features : {"paper", "fast"}, optional
        Window preset of :data:`FEATURE_PRESETS` (``BT_FEATURES``). Default: ``"paper"``
        in the full profile; the demo profile keeps its own 8 s / 2 s windows unless a
        preset is named. See :attr:`feature_params`.
    scored_rows : {"authors", "all"}, optional
        Rows of the test story that r and the noise ceiling are computed on
        (``BT_SCORED_ROWS``): ``"authors"``, from row :data:`AUTHORS_FIRST_SCORED_ROW` (40) on,
        as the authors' evaluation code (the full profile's default); ``"all"``, every row
        (the demo's default: the twin's test story is short). See :attr:`first_scored_row`.
    """

    profile: str = "demo"
    data_home: Path = field(default_factory=default_data_home)
    subject: str = DEFAULT_SUBJECT
    model: str | None = None
    progress: bool = True
    interactive: bool = True
    train_stories: str | tuple | None = None
    features: str | None = None
    scored_rows: str | None = None

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(
                f"Unknown profile {self.profile!r}: use one of {PROFILES} "
                "(set the environment variable BT_PROFILE)."
            )
        object.__setattr__(self, "data_home", Path(self.data_home).expanduser())
        subject = self.subject.strip() if isinstance(self.subject, str) else self.subject
        if not isinstance(subject, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", subject):
            raise ValueError(f"Invalid subject {self.subject!r}: a folder name such as {DEFAULT_SUBJECT} "
                             "(set the environment variable BT_SUBJECT).")
        if self.profile == "full" and subject.upper() in LEBEL_SUBJECTS:
            subject = subject.upper()
        if self.profile == "full" and subject not in LEBEL_SUBJECTS:
            raise ValueError(f"Unknown subject {self.subject!r}: ds003020 has {', '.join(LEBEL_SUBJECTS)} "
                             "(set the environment variable BT_SUBJECT).")
        object.__setattr__(self, "subject", subject)
        stories = self.train_stories
        if isinstance(stories, str):
            key = stories.strip().lower()
            stories = key if key in ("paper", "all") else tuple(s.strip() for s in stories.split(",") if s.strip())
        elif stories is not None:
            stories = tuple(stories)
        if isinstance(stories, tuple) and not (stories and all(isinstance(s, str) and s for s in stories)):
            raise ValueError(f"train_stories must be 'paper', 'all' or story names, got {self.train_stories!r} "
                             "(set the environment variable BT_TRAIN_STORIES).")
        if isinstance(stories, tuple):
            _check_story_names(stories)
        object.__setattr__(self, "train_stories", stories)
        if self.features is not None:
            key = self.features.strip().lower() if isinstance(self.features, str) else self.features
            if key not in FEATURE_PRESETS:
                raise ValueError(f"Unknown feature preset {self.features!r}: use one of "
                                 f"{', '.join(FEATURE_PRESETS)} (set the environment variable BT_FEATURES).")
            object.__setattr__(self, "features", key)
        if self.scored_rows is not None:
            key = self.scored_rows.strip().lower() if isinstance(self.scored_rows, str) else self.scored_rows
            if key not in SCORED_ROWS:
                raise ValueError(f"Unknown scored_rows {self.scored_rows!r}: use one of {', '.join(SCORED_ROWS)} "
                                 "(set the environment variable BT_SCORED_ROWS).")
            object.__setattr__(self, "scored_rows", key)

    @property
    def dataset_root(self) -> Path:
        """Root of the dataset in the ds003020 layout for this profile."""
        name = "synthetic_twin" if self.profile == "demo" else "ds003020"
        return self.data_home / name

    @property
    def train_story_setting(self):
        """``train_stories``, or the profile's default: ``"paper"`` (full) or ``"all"`` (demo)."""
        if self.train_stories is not None:
            return self.train_stories
        return "all" if self.profile == "demo" else "paper"

    @property
    def nan_policy(self) -> str:
        """What the reader does with NaN responses: ``"raise"`` (demo) or ``"zero"`` (full).

        Real responses have NaN columns (voxels outside the brain in some runs); the
        paper's loader zeroes them, and so does the full profile, with a warning that
        counts them. The twin has none, so the demo profile keeps NaN an error.
        """
        return "raise" if self.profile == "demo" else "zero"

    @property
    def model_name(self) -> str:
        """The speech model the chapters use."""
        if self.model:
            return self.model
        return "whisper-tiny.en" if self.profile == "demo" else "openai/whisper-small"

    @property
    def feature_params(self) -> FeatureParams:
        """Window parameters of the causal features: the named preset's, or the profile's.

        A preset named in ``features`` (``BT_FEATURES``) wins in both profiles; see
        :data:`FEATURE_PRESETS` for ``"fast"`` and its measured cost in alignment.
        Otherwise ``full``: the paper's 16 s of context every 0.1 s, last frame of each
        window. ``demo``: 8 s every 2 s (about one TR), which keeps the whole book
        within 20 minutes on 2 CPU cores; each feature is the mean of the frames
        of the last 2 s, so that the coarse stride still covers all the audio
        (with the last frame only, alignment on the twin drops about fourfold).
        On the twin a 1 s stride gave the same alignment (within 0.01 r per ROI
        and layer) for twice the time.
        """
        if self.features is not None:
            return FEATURE_PRESETS[self.features]
        return DEMO_PARAMS if self.profile == "demo" else PAPER_PARAMS

    @property
    def first_scored_row(self) -> int:
        """First row of the test story scored (r) and used for its noise ceiling.

        The authors' evaluation (``eval_utils.py`` of bridge-ai-neuro/brain-tuning) drops the
        first 40 response rows of the test story (80 s), for r and for the ceiling alike;
        the full profile does the same by default. The demo scores every row.
        """
        key = self.scored_rows or ("all" if self.profile == "demo" else "authors")
        return SCORED_ROWS[key]

    def with_(self, **changes) -> "Config":
        """Return a copy with some fields changed."""
        return replace(self, **changes)


_ON, _OFF = ("1", "true", "yes", "on", ""), ("0", "false", "no", "off")


def _switch(variable: str) -> bool:
    """An on/off environment variable (on when unset); anything else is an error, not a guess."""
    value = os.environ.get(variable, "1").strip().lower()
    if value not in _ON + _OFF:
        raise ValueError(f"{variable}={os.environ[variable]!r}: use 1/0, true/false, yes/no or on/off.")
    return value in _ON


def _check_story_names(stories: tuple) -> None:
    """Story names are plain folder names, each given once (a story in two CV folds inflates scores)."""
    bad = [s for s in stories if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", s) or ".." in s]
    if bad:
        raise ValueError(f"Invalid story names {bad}: a story is a plain name such as 'alternateithicatom', "
                         "not a path (set the environment variable BT_TRAIN_STORIES).")
    twice = sorted({s for s in stories if stories.count(s) > 1})
    if twice:
        raise ValueError(f"Stories given more than once: {twice} (BT_TRAIN_STORIES); a story in two "
                         "cross-validation folds would be scored on itself.")


def get_config(**overrides) -> Config:
    """Build the configuration from ``BT_PROFILE``, ``BT_DATA``, ``BT_SUBJECT`` ... and overrides.

    ``BT_FEATURES`` names a window preset of :data:`FEATURE_PRESETS` (``paper`` or ``fast``).

    Parameters
    ----------
    **overrides
        Fields of :class:`Config` that take precedence over the environment.

    Returns
    -------
    config : Config
    """
    values = {"profile": os.environ.get("BT_PROFILE", "demo").strip().lower()}
    if os.environ.get("BT_DATA"):
        values["data_home"] = Path(os.environ["BT_DATA"])
    for name in ("model", "subject", "train_stories", "features", "scored_rows"):
        if os.environ.get(f"BT_{name.upper()}", "").strip():
            values[name] = os.environ[f"BT_{name.upper()}"].strip()
    for name in ("progress", "interactive"):
        values[name] = _switch(f"BT_{name.upper()}")
    values.update(overrides)
    return Config(**values)


def resolve_data_home(data_home=None) -> Path:
    """``data_home`` as a Path, or the configured one (``BT_DATA``) when it is None."""
    return Path(data_home).expanduser() if data_home is not None else get_config().data_home


def model_folder_name(model_name: str) -> str:
    """A folder name for a model name or path (``openai/whisper-small`` -> ``openai--whisper-small``).

    Long local paths keep their last 60 characters, enough to tell models apart.
    """
    return str(model_name).strip("/").replace("/", "--")[-60:]
