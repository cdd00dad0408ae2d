"""Shared fixtures: the demo twin in the data home and a tiny twin for fast checks."""

from __future__ import annotations

import os

import pytest

from bt_tutorial.synthetic import TwinSpec, ensure_twin, make_synthetic_twin

# small enough to generate in a few seconds; same code path as the demo twin
TINY_SPEC = TwinSpec(seed=7, n_subjects=1, n_train_stories=2, story_seconds=40.0,
                     test_story_seconds=50.0, n_repeats=4)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a hub


@pytest.fixture(scope="session")
def twin_root():
    """The demo-profile twin, generated once into the data home (BT_DATA) and reused."""
    return ensure_twin(progress=False)


@pytest.fixture(scope="session")
def tiny_twin(tmp_path_factory):
    """A tiny twin written to a temporary folder."""
    return make_synthetic_twin(tmp_path_factory.mktemp("tiny") / "twin", TINY_SPEC, progress=False)


@pytest.fixture(scope="session")
def tiny_spec():
    """The spec of ``tiny_twin``."""
    return TINY_SPEC
