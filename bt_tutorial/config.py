"""Profiles (``demo`` offline, ``full`` online) and the data home.

The profile is read from the environment variable ``BT_PROFILE`` and the data
home from ``BT_DATA``; :func:`get_config` turns both into one small object that
chapters read, so the same code runs in both profiles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROFILES = ("demo", "full")


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
    """

    profile: str = "demo"
    data_home: Path = field(default_factory=default_data_home)
    subject: str = "UTS01"

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
    values.update(overrides)
    return Config(**values)
