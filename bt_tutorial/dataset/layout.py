"""The ds003020 layout around the reader: the derivatives folder, errors that say how to
replace a file, and the ground truth a synthetic twin keeps beside the layout.

Snapshot 3.1.0 of ds003020 names its folder of derivatives ``derivative/``; users of
newer snapshots cite ``derivatives/`` on the S3 mirror: :func:`~bt_tutorial.dataset.layout.derivative_dir` finds
either, and :class:`~bt_tutorial.dataset.reader.LebelDataset` reads through it.
"""

from __future__ import annotations

from pathlib import Path

# the folder of derivatives: singular in snapshot 3.1.0, plural on the S3 mirror of newer ones
DERIVATIVE_DIRS = ("derivative", "derivatives")
# where a synthetic twin keeps what real data cannot give: the truth behind its responses
GROUND_TRUTH_DIR = "ground_truth"
TWIN_INFO = "twin.json"

HOW_TO_GET = (
    "For the offline twin run `python -m bt_tutorial.synthetic --out {root}`; "
    "for the real data run `python -m bt_tutorial.dataset.download --subject UTS01 "
    "--stories 5 --out {root}`."
)


class DatasetError(ValueError):
    """A dataset file exists but its content is not what ds003020 promises."""


def refetch_hint(root, path=None) -> str:
    """How to replace a damaged file of the dataset at ``root``: regenerate the twin or download again."""
    root = Path(root)
    if (root / GROUND_TRUTH_DIR / TWIN_INFO).is_file():
        return (f"This is a synthetic twin: delete the folder {root} and it is regenerated on next use "
                f"(or run `python -m bt_tutorial.synthetic --out {root}`).")
    what = f"delete {path} and " if path is not None else ""
    return (f"To download it again, {what}run `python -m bt_tutorial.dataset.download --subject <UTSxx> "
            f"--stories <N> --out {root}` (it fetches only missing or incomplete files).")


def derivative_dir(root) -> Path | None:
    """The folder of derivatives under ``root``: ``derivative/`` or ``derivatives/``, None if neither.

    When both exist, the one holding ``respdict.json`` is used; both holding one is a
    DatasetError (a tree mixing two snapshots: merge them into one folder).
    """
    root = Path(root)
    found = [root / name for name in DERIVATIVE_DIRS if (root / name).is_dir()]
    if len(found) == 2:
        with_respdict = [d for d in found if (d / "respdict.json").is_file()]
        if len(with_respdict) == 2:
            raise DatasetError(f"{root} has both {found[0].name}/ and {found[1].name}/ with a respdict.json "
                               "(files of two snapshots of ds003020?): move the files of one into the other "
                               "and delete it.")
        found = with_respdict or found[:1]
    return found[0] if found else None


def require_file(path: Path, root: Path, what: str = "File") -> Path:
    """Return ``path`` or raise FileNotFoundError saying how to get it."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}. " + HOW_TO_GET.format(root=root))
    return path


def tree_lines(folder: Path, prefix: str, max_files: int, lines: list) -> None:
    entries = sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name))
    dirs = [p for p in entries if p.is_dir()]
    files = [p for p in entries if p.is_file()]
    shown = dirs + files[:max_files]
    for i, path in enumerate(shown):
        last = i == len(shown) - 1 and len(files) <= max_files
        lines.append(f"{prefix}{'└── ' if last else '├── '}{path.name}{'/' if path.is_dir() else ''}")
        if path.is_dir():
            tree_lines(path, prefix + ("    " if last else "│   "), max_files, lines)
    if len(files) > max_files:
        lines.append(f"{prefix}└── ... {len(files) - max_files} more files")
