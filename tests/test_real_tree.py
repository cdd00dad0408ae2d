"""The download and ROI plans against the real ds003020 (snapshot 3.1.0, commit f74eb2b).

``tests/data/ds003020_tree.tsv`` lists the files of the dataset's public git tree (made by
``data_scripts/list_ds003020_tree.py``; sizes and MD5s of annexed files from their git-annex
keys); ``tests/data/ds003020_respdict.json`` is the tree's ``derivative/respdict.json``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bt_tutorial.dataset import roi_build, roi_files
from bt_tutorial.dataset.download import lebel_file_list
from bt_tutorial.dataset.stories import PAPER_TRAIN_STORIES, TEST_STORY, TEST_STORY_ROWS, VALIDATION_STORY

DATA = Path(__file__).parent / "data"
PAPER_SUBJECTS = ("UTS01", "UTS02", "UTS03")
HDF5_HEADER = 2048  # bytes before the data of every preprocessed_data/*.hf5


@pytest.fixture(scope="module")
def tree() -> dict:
    with open(DATA / "ds003020_tree.tsv", newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle, delimiter="\t")}


@pytest.fixture(scope="module")
def respdict() -> dict:
    return json.loads((DATA / "ds003020_respdict.json").read_text())


@pytest.mark.parametrize("subject", PAPER_SUBJECTS)
def test_download_plan_names_only_real_files(tree, subject):
    """Catches a planned path the dataset does not have (a story, a folder or a file name)."""
    files = lebel_file_list(subject, len(PAPER_TRAIN_STORIES))
    assert len(files) == 1 + 3 * 26 + 1
    assert [f for f in files if f not in tree] == []


@pytest.mark.parametrize("subject", PAPER_SUBJECTS)
def test_roi_plan_names_only_real_files(tree, subject):
    """Catches asking UTS02 for .gii surfaces (it has pycortex .npz) or any input the tree lacks."""
    sources = roi_build.plan_sources(subject)
    dataset_inputs = [s.relpath for name, s in sources.items() if name not in roi_build.ATLAS_FILES]
    assert len(dataset_inputs) == 8
    assert [p for p in dataset_inputs if p not in tree] == []
    surfaces = {Path(p).suffix for p in tree if p.startswith(f"derivative/pycortex-db/{subject}/surfaces/pia_")}
    assert surfaces == {roi_files.surface_suffix(subject)}


def test_test_story_rows_and_response_sizes(tree, respdict):
    """Catches a wrong row count of the test story (291, not 281) or of any story (respdict - 20)."""
    assert respdict[TEST_STORY] - 20 == TEST_STORY_ROWS == 291
    for subject in PAPER_SUBJECTS:
        sizes = {s: int(tree[f"derivative/preprocessed_data/{subject}/{s}.hf5"]["size"])
                 for s in (*PAPER_TRAIN_STORIES, VALIDATION_STORY)}
        voxels = {(size - HDF5_HEADER) / (8 * (respdict[s] - 20)) for s, size in sizes.items()}
        assert len(voxels) == 1 and next(iter(voxels)).is_integer(), subject  # float64, (rows, voxels)
