"""Shared fixtures: the demo twin in the tests' own data home and a tiny twin for fast checks.

The suite never reads or writes the user's data home: ``BT_DATA`` points to a temporary
folder made for each test session (removed at its end; a mutation tool's forked sessions
each get their own), and the other ``BT_*`` settings of the user's shell are cleared, so a
stale twin, a cached run or ``BT_PROFILE=full`` outside cannot change what the tests see.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

for _name in [name for name in os.environ if name.startswith("BT_")]:
    del os.environ[_name]

from bt_tutorial.synthetic.twin import TwinSpec, ensure_twin

# small enough to generate in a few seconds; same code path as the demo twin
TINY_SPEC = TwinSpec(seed=7, n_subjects=1, n_train_stories=2, story_seconds=40.0,
                     test_story_seconds=50.0, n_repeats=4)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a hub


@pytest.fixture(scope="session")
def twin_root():
    """The demo-profile twin, generated once per run into the tests' data home."""
    return ensure_twin(progress=False)


# One folder per test process tree: a mutation run forks a test session per mutant, and those
# sessions (which import this file again) find the folder in the environment they inherit and
# share the tiny twin instead of generating it each time (about 5 s).
if "PYTEST_TINY_TWIN_HOME" not in os.environ:
    os.environ["PYTEST_TINY_TWIN_HOME"] = tempfile.mkdtemp(prefix="bt_tutorial_tiny_twin_")
    _owner = os.getpid()
    atexit.register(lambda home=os.environ["PYTEST_TINY_TWIN_HOME"]: os.getpid() == _owner
                    and shutil.rmtree(home, ignore_errors=True))
TINY_HOME = os.environ["PYTEST_TINY_TWIN_HOME"]


@pytest.fixture(scope="session")
def tiny_twin():
    """A tiny twin in a temporary folder, generated once per test process (tests must not change it).

    Forked sessions generating it at the same time wait for one another (ensure_twin's lock).
    """
    return ensure_twin(Path(TINY_HOME) / "twin", TINY_SPEC, progress=False)


@pytest.fixture(scope="session")
def tiny_spec():
    """The spec of ``tiny_twin``."""
    return TINY_SPEC


SESSION_HOMES = []


def pytest_sessionstart(session):
    SESSION_HOMES.append(tempfile.mkdtemp(prefix="bt_tutorial_tests_"))
    os.environ["BT_DATA"] = SESSION_HOMES[-1]


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_HOMES.pop(), ignore_errors=True)  # only the folder this session made


def pytest_addoption(parser):
    parser.addoption("--chapter-coverage", action="store_true",
                     help="check that every function a chapter calls ran in this (coverage-measured) run")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "twin_root" in getattr(item, "fixturenames", ()):  # the demo twin takes about 35 s to generate
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)  # stable: order kept otherwise
