"""Write the registry of sizes and MD5s of the ds003020 files the project can download.

The downloads of ``python -m bt_tutorial.dataset.download`` (and ``bt_tutorial.dataset.download.download_subject``)
check each file they fetch against ``bt_tutorial/data/ds003020_md5.csv``, whatever the server
sends; the registry also lists the ROI build's ds003020 inputs, which
``bt_tutorial.dataset.download.download_file(..., md5=...)`` can check the same way. This script
makes that file from the dataset's public git tree (a DataLad / git-annex repository),
without downloading any annexed content: an annexed file is a symlink (mode 120000) whose
target ends in its git-annex key ``MD5E-s<bytes>--<md5>.<ext>``; a file kept in git itself
(``respdict.json``) gets its size and MD5 from its blob (the reading is
:mod:`list_ds003020_tree`'s).

The paths are those the download code can ask for, for every subject it accepts (UTS01 to
UTS08) and every story of the tree (a config may name any story): what
:func:`bt_tutorial.dataset.download.lebel_file_list` lists, and the subject's inputs of
:func:`bt_tutorial.dataset.roi_build.plan_sources` (surfaces in either format, spherical
registration, transform, mask). Paths the tree lacks (a story a subject did not hear) are
left out.

Usage
-----
The shipped registry (snapshot 3.1.0, commit f74eb2bc95b827d359de338f9086743824d2d906) was
made with::

    git clone https://github.com/OpenNeuroDatasets/ds003020
    python data_scripts/make_md5_registry.py ds003020 --rev 3.1.0

The first argument is the clone (its work tree or a bare repository).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # list_ds003020_tree, beside this script
try:
    import bt_tutorial  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(HERE.parent))

from list_ds003020_tree import describe, list_tree, read_blobs  # noqa: E402

from bt_tutorial.config import LEBEL_SUBJECTS  # noqa: E402
from bt_tutorial.dataset.download import lebel_file_list  # noqa: E402
from bt_tutorial.dataset.roi_build import plan_sources  # noqa: E402
from bt_tutorial.dataset.roi_files import SURFACE_FORMATS  # noqa: E402
from bt_tutorial.dataset.stories import TEST_STORY, VALIDATION_STORY  # noqa: E402

DEFAULT_OUT = HERE.parent / "bt_tutorial" / "data" / "ds003020_md5.csv"
STORY_FOLDERS = ("stimuli/", "derivative/TextGrids/", "derivative/preprocessed_data/")


def stories_in_tree(paths) -> list[str]:
    """Names of the stories with audio, a TextGrid or responses in the tree, sorted."""
    names = {path.rsplit("/", 1)[1].rsplit(".", 1)[0] for path in paths if path.startswith(STORY_FOLDERS)}
    return sorted(names - {TEST_STORY, VALIDATION_STORY})


def downloadable_paths(stories) -> set[str]:
    """Every ds003020 path the download code can ask for, under ``derivative/`` (snapshot 3.1.0)."""
    paths = set()
    for subject in LEBEL_SUBJECTS:
        paths.update(lebel_file_list(subject, len(stories), "derivative", stories))
        for surfaces in SURFACE_FORMATS:
            sources = plan_sources(subject, derivative="derivative", surfaces=surfaces)
            paths.update(src.relpath for name, src in sources.items() if not name.startswith(("annot", "fsaverage")))
    return paths


def git_dir_of(clone: Path) -> Path:
    """The git directory of a clone given by its work tree or as a bare repository."""
    out = subprocess.run(["git", "-C", str(clone), "rev-parse", "--git-dir"], check=True, capture_output=True,
                         text=True).stdout.strip()
    return (clone / out).resolve()


def registry_rows(git_dir: Path, rev: str) -> tuple[list[tuple[str, str, str]], int]:
    """Rows ``(path, size, md5)`` of the downloadable files of ``rev``, sorted; and how many paths it lacks."""
    entries = {entry[3]: entry for entry in list_tree(git_dir, rev)}
    wanted = downloadable_paths(stories_in_tree(entries))
    kept = [entries[path] for path in sorted(wanted) if path in entries]
    blobs = read_blobs(git_dir, [entry[1] for entry in kept])
    rows = [describe(entry, blobs[entry[1]])[:3] for entry in kept]
    return rows, len(wanted) - len(kept)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clone", type=Path, help="a git clone of OpenNeuroDatasets/ds003020 (work tree or bare)")
    parser.add_argument("--rev", default="3.1.0", help="tag or commit (default: 3.1.0)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output CSV (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    git_dir = git_dir_of(args.clone)
    commit = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", f"{args.rev}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    rows, n_absent = registry_rows(git_dir, commit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as handle:
        handle.write(f"# ds003020 at commit {commit} (rev {args.rev}); made by data_scripts/make_md5_registry.py\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("path", "size", "md5"))
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out} ({n_absent} downloadable paths are not in the tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
