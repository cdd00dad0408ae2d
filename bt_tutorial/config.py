"""Profiles (``demo`` offline, ``full`` online) and the data home.

The profile is read from the environment variable ``BT_PROFILE`` and the data
home from ``BT_DATA`` (``BT_MODEL``, ``BT_PROGRESS`` and ``BT_INTERACTIVE`` are optional);
:func:`get_config` turns them into one small object that chapters read, so the
same code runs in both profiles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROFILES = ("demo", "full")


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
        if self.context <= 0 or self.stride <= 0 or self.batch_size < 1:
            raise ValueError(f"Invalid feature parameters: {self}.")
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
        Subject used by default in the chapters.
    model : str, optional
        Speech model of the chapters (default: ``whisper-tiny.en`` in the demo
        profile, ``openai/whisper-small`` in the full one).
    progress : bool
        Show progress bars (``BT_PROGRESS=0`` turns them off, as in book builds).
    interactive : bool
        Show widgets (``BT_INTERACTIVE=0`` turns them off in book builds: the static
        book cannot show them, and executing them there can hang the notebook client).
    """

    profile: str = "demo"
    data_home: Path = field(default_factory=default_data_home)
    subject: str = "UTS01"
    model: str | None = None
    progress: bool = True
    interactive: bool = True

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(
                f"Unknown profile {self.profile!r}: use one of {PROFILES} "
                "(set the environment variable BT_PROFILE)."
            )
        object.__setattr__(self, "data_home", Path(self.data_home).expanduser())

    @property
    def dataset_root(self) -> Path:
        """Root of the dataset in the ds003020 layout for this profile."""
        name = "synthetic_twin" if self.profile == "demo" else "ds003020"
        return self.data_home / name

    @property
    def model_name(self) -> str:
        """The speech model the chapters use."""
        if self.model:
            return self.model
        return "whisper-tiny.en" if self.profile == "demo" else "openai/whisper-small"

    @property
    def feature_params(self):
        """Window parameters of the causal features.

        ``full``: the paper's 16 s of context every 0.1 s, last frame of each
        window. ``demo``: 8 s every 2 s (about one TR), which keeps the whole book
        within 20 minutes on 2 CPU cores; each feature is the mean of the frames
        of the last 2 s, so that the coarse stride still covers all the audio
        (with the last frame only, alignment on the twin drops about fourfold).
        On the twin a 1 s stride gave the same alignment (within 0.01 r per ROI
        and layer) for twice the time.
        """
        if self.profile == "demo":
            return FeatureParams(context=8.0, stride=2.0, pool="stride")
        return PAPER_PARAMS

    def with_(self, **changes) -> "Config":
        """Return a copy with some fields changed."""
        return replace(self, **changes)


def get_config(**overrides) -> Config:
    """Build the configuration from ``BT_PROFILE`` / ``BT_DATA`` and overrides.

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
    if os.environ.get("BT_MODEL"):
        values["model"] = os.environ["BT_MODEL"]
    for name in ("progress", "interactive"):
        values[name] = os.environ.get(f"BT_{name.upper()}", "1").strip().lower() not in ("0", "false", "no")
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
