"""Download part of the LeBel et al. (2023) dataset (OpenNeuro ds003020): one subject, N stories.

Files come over plain HTTPS from OpenNeuro's public S3 bucket, resumably and verified
(:mod:`bt_tutorial.dataset.transfer`). From a notebook, :func:`download_subject` fetches what the
configured subject and N training stories need; from a shell::

    python -m bt_tutorial.dataset.download --subject UTS03 --stories 4 --out ~/data/ds003020 --dry-run

Run the same command again to resume an interrupted download. Snapshot 3.1.0 keeps the
derivatives in ``derivative/``, newer ones in ``derivatives/``: the server is asked which
it has, and a local tree keeps the name it already uses. ``BT_DATASET_URL`` replaces the
bucket by a mirror (a local copy served over HTTP, an institutional cache).

Every file is checked against the registry of snapshot 3.1.0 shipped in the package
(``bt_tutorial/data/ds003020_md5.csv``: size and MD5 of each file the project can
download, from the dataset's git-annex keys), whatever the server or mirror sends: a
server size that differs stops the plan before any download, a received file of another
size or MD5 is deleted and fetched again. ``--registry FILE`` (or ``BT_DATASET_REGISTRY``)
names another registry, e.g. for a mirror of another snapshot; ``--registry none`` checks
only sizes, formats and the server's MD5 ETags. ``--verify`` also reads the files already
downloaded and fetches again those whose MD5 differs. One download at a time writes into
a folder: a second one waits, saying which process holds ``<out>/.bt_download.lock``.

Exit codes: 0 on success; 2 on an expected error (a file missing on the server, a
download that cannot be completed or verified, a bad argument, a disk error), reported
as one ``error: ...`` line on stderr; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

from tqdm import tqdm

from bt_tutorial.command_line import run_command
from bt_tutorial.config import LEBEL_SUBJECTS
from bt_tutorial.dataset.file_formats import REGISTRY_ENV, Checksum, is_complete, load_registry, registry_key
from bt_tutorial.dataset.layout import DERIVATIVE_DIRS, derivative_dir
from bt_tutorial.dataset.stories import PAPER_TRAIN_STORIES, TEST_STORY, VALIDATION_STORY
from bt_tutorial.dataset.transfer import (
    DownloadError,
    RemoteFileMissing,
    download_file,
    download_lock,
    format_size,
    size_with_retries,
)

DEFAULT_BASE_URL = "https://s3.amazonaws.com/openneuro.org/ds003020"
BASE_URL_ENV = "BT_DATASET_URL"


class PlannedFile(NamedTuple):
    """One file to download: path relative to the dataset root, URL, size in bytes and, where the
    registry has the file, its MD5 (the size is then the registry's too)."""

    relpath: str
    url: str
    size: int
    md5: str | None = None


def dataset_url() -> str:
    """Root URL of ds003020: ``$BT_DATASET_URL`` if set (a mirror), else OpenNeuro's bucket."""
    return os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL


def lebel_file_list(subject: str, n_train_stories: int, derivative: str = "derivative",
                    train_stories: Sequence[str] = PAPER_TRAIN_STORIES) -> list[str]:
    """List the dataset files needed for one subject and the first training stories.

    Parameters
    ----------
    subject : str
        Subject identifier, ``"UTS01"`` to ``"UTS08"``.
    n_train_stories : int
        Number of training stories taken in order from ``train_stories`` (0 to its
        length, 24 for the paper's). The test and validation stories are always included.
    derivative : {"derivative", "derivatives"}
        Name of the folder of derivatives (singular in snapshot 3.1.0).
    train_stories : sequence of str
        Default :data:`~bt_tutorial.dataset.stories.PAPER_TRAIN_STORIES`.

    Returns
    -------
    files : list of str
        POSIX paths relative to the dataset root.
    """
    if not isinstance(subject, str) or subject not in LEBEL_SUBJECTS:
        raise ValueError(f"Unknown subject {subject!r}: use one of UTS01 to UTS08.")
    if derivative not in DERIVATIVE_DIRS:
        raise ValueError(f"derivative must be one of {DERIVATIVE_DIRS}, got {derivative!r}.")
    n, n_max = n_train_stories, len(train_stories)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= n_max:
        raise ValueError(f"The number of training stories must be an integer from 0 to {n_max}, got {n!r}.")
    files = [f"{derivative}/respdict.json"]
    for story in [TEST_STORY, VALIDATION_STORY, *train_stories[:n_train_stories]]:
        files += [f"{derivative}/TextGrids/{story}.TextGrid", f"stimuli/{story}.wav"]
        files.append(f"{derivative}/preprocessed_data/{subject}/{story}.hf5")
    files.append(f"{derivative}/pycortex-db/{subject}/transforms/{subject}_auto/mask_thick.nii.gz")
    return files


def probe_derivative(base_url: str = DEFAULT_BASE_URL, retries: int = 5, backoff: float = 1.0,
                     timeout: float = 60) -> tuple[str, int]:
    """Which folder of derivatives the server has, by asking for ``<folder>/respdict.json``.

    Returns
    -------
    name, size : str, int
        ``"derivative"`` or ``"derivatives"``, and the size of its respdict.json.

    Raises
    ------
    DownloadError
        If the server has neither (the message gives both URLs), or cannot be reached.
    """
    base, urls = base_url.rstrip("/"), []
    for name in DERIVATIVE_DIRS:
        urls.append(f"{base}/{name}/respdict.json")
        try:
            return name, size_with_retries(urls[-1], retries, backoff, timeout)
        except RemoteFileMissing:
            continue
    raise RemoteFileMissing(f"Neither {urls[0]} nor {urls[1]} exists on the server: is --base-url "
                            f"({base_url}) the root of ds003020?")


def plan_lebel(
    subject: str, n_train_stories: int, base_url: str = DEFAULT_BASE_URL,
    retries: int = 5, backoff: float = 1.0, timeout: float = 60, out_dir: str | Path | None = None,
    train_stories: Sequence[str] = PAPER_TRAIN_STORIES, registry: Mapping[str, Checksum] | None = None,
) -> list[PlannedFile]:  # fmt: skip
    """Pair each file of :func:`lebel_file_list` with its URL, remote size and registered MD5.

    The URLs use the server's folder of derivatives (:func:`probe_derivative`); the local
    paths keep the one ``out_dir`` already has, if any, else the server's. Other
    parameters are those of :func:`download_lebel`; ``registry`` as loaded by
    :func:`~bt_tutorial.dataset.file_formats.load_registry` (default: none).

    Returns
    -------
    plan : list of PlannedFile

    Raises
    ------
    DownloadError
        If the server's size of a registered file is not the registry's (the server
        holds another version): the message names the files and both sizes.
    """
    lebel_file_list(subject, n_train_stories, train_stories=train_stories)  # bad input fails before any request
    base = base_url.rstrip("/")
    remote, respdict_size = probe_derivative(base_url, retries, backoff, timeout)
    local_dir = derivative_dir(out_dir) if out_dir is not None and Path(out_dir).is_dir() else None
    local = local_dir.name if local_dir is not None else remote
    plan, differ = [], []
    for relpath, remote_path in zip(lebel_file_list(subject, n_train_stories, local, train_stories),
                                    lebel_file_list(subject, n_train_stories, remote, train_stories)):
        url = f"{base}/{urllib.parse.quote(remote_path)}"
        size = respdict_size if remote_path.endswith("/respdict.json") else size_with_retries(
            url, retries, backoff, timeout)
        known = (registry or {}).get(registry_key(remote_path))
        if known is not None and known.size != size:
            differ.append(f"{remote_path} is {size} bytes on the server, {known.size} in the registry")
        plan.append(PlannedFile(relpath, url, size, known and known.md5))
    if differ:
        raise DownloadError(
            f"{len(differ)} file(s) of {base_url} differ from the registry of checksums: {'; '.join(differ[:3])}"
            f"{'; ...' if len(differ) > 3 else ''}. The server holds another version of ds003020 than the "
            f"registry's; download from OpenNeuro's bucket ({DEFAULT_BASE_URL}), or give that version's registry "
            f"with --registry FILE, or --registry none to check only sizes, formats and the server's MD5 ETags."
        )
    return plan


def format_plan(plan: list[PlannedFile], out_dir: str | Path) -> str:
    """Render a plan as ``size  path`` lines, marking files complete in ``out_dir``, and a total."""
    lines, left = [], 0
    for item in plan:
        done = is_complete(Path(out_dir) / item.relpath, item.size)
        left += 0 if done else item.size
        lines.append(f"{format_size(item.size):>9}  {item.relpath}{'  (already downloaded)' if done else ''}")
    total, checked = format_size(sum(item.size for item in plan)), sum(item.md5 is not None for item in plan)
    lines.append(f"{total:>9}  total, {len(plan)} files ({format_size(left)} left to download; "
                 f"{checked} checked against the registry's MD5)")
    return "\n".join(lines)


def download_lebel(
    subject: str, n_train_stories: int, out_dir: str | Path, base_url: str = DEFAULT_BASE_URL,
    dry_run: bool = False, retries: int = 5, backoff: float = 1.0, timeout: float = 60,
    progress: bool = True, train_stories: Sequence[str] = PAPER_TRAIN_STORIES,
    registry: Mapping[str, Checksum] | str | Path | None = None, verify: bool = False,
    lock_timeout: float | None = None,
) -> list[PlannedFile] | list[Path]:  # fmt: skip
    """Download the files of one subject and the first training stories.

    Prints the files with their sizes and total, then downloads the missing ones into
    ``out_dir``, with a progress bar for the total and one for each file. Each file the
    registry has must have its size and MD5 there, whatever the server sends.

    Parameters
    ----------
    subject, n_train_stories, train_stories
        As in :func:`lebel_file_list`.
    out_dir : str or Path
        Local folder that becomes the dataset root.
    base_url : str
        URL of the dataset root.
    dry_run : bool
        Only print the plan; write nothing.
    retries, backoff, timeout, progress
        As in :func:`~bt_tutorial.dataset.transfer.download_file`.
    registry : mapping, str or Path, optional
        Sizes and MD5s to check against, as :func:`~bt_tutorial.dataset.file_formats.load_registry` reads it (default:
        ``$BT_DATASET_REGISTRY`` or the shipped one; ``"none"`` or ``{}``: none). A file
        it lacks is checked by size, format and the server's MD5 ETag where there is one.
    verify : bool
        Also read the files already complete and download again those whose MD5 is not
        the registry's (else a complete file is one of the right size and format).
    lock_timeout : float, optional
        Seconds to wait for another download into ``out_dir`` (which holds
        ``out_dir/.bt_download.lock``) to finish; None waits as long as it runs.

    Returns
    -------
    result : list of PlannedFile or list of Path
        The plan if ``dry_run``, else the local path of every file.

    Raises
    ------
    ValueError
        If ``subject`` or ``n_train_stories`` is invalid.
    DownloadError
        If ``out_dir`` or a folder above it is a file, a file is missing on the server,
        differs from the registry or cannot be completed, the disk is full, or another
        download into ``out_dir`` still runs after ``lock_timeout`` (the message names it).
    """
    out_dir = Path(out_dir)
    existing = next((folder for folder in (out_dir, *out_dir.parents) if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise DownloadError(f"Cannot download into {out_dir}: {existing} is a file, not a folder.")
    registry = load_registry(registry)
    plan = plan_lebel(subject, n_train_stories, base_url, retries, backoff, timeout, out_dir, train_stories, registry)
    print(format_plan(plan, out_dir))
    if dry_run:
        return plan
    paths = []
    total = sum(item.size for item in plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    with download_lock(out_dir, lock_timeout), \
            tqdm(total=total, desc="total", unit="B", unit_scale=True, disable=not progress) as bar:
        for item in plan:
            dest = out_dir / item.relpath
            if is_complete(dest, item.size) and not (verify and item.md5):
                tqdm.write(f"Skipping {item.relpath}: already complete.")
            else:  # with an MD5, a complete file is read and kept if it matches
                download_file(item.url, dest, item.size, retries, backoff, timeout, progress, item.md5)
            bar.update(item.size)
            paths.append(dest)
    return paths


def download_subject(config=None, n_train_stories: int = 5, base_url: str | None = None,
                     dry_run: bool = False, retries: int = 5, registry=None) -> list:
    """Download what the configured subject needs for the chapters (the full profile's data).

    The test and validation stories and the first ``n_train_stories`` training stories
    of ``config.train_stories`` (the paper's 24 unless set to story names) for
    ``config.subject`` (``BT_SUBJECT``), into ``config.dataset_root`` where
    :func:`bt_tutorial.profiles.open_dataset` reads them, with progress bars unless
    ``config.progress`` is off. Files already complete are skipped, so a chapter can
    call it every time.

    Parameters
    ----------
    config : Config, optional
        Default :func:`bt_tutorial.config.get_config`; must be the ``full`` profile.
    n_train_stories : int
        0 to 24: about 230-560 MB each with audio; the test story's responses alone are
        2.45 GB (float64 on disk).
    base_url : str, optional
        Root URL of the dataset (default :func:`dataset_url`: ``$BT_DATASET_URL`` or OpenNeuro).
    dry_run, retries, registry
        As in :func:`download_lebel` (each file is checked against the shipped registry
        of sizes and MD5s unless ``registry`` or ``$BT_DATASET_REGISTRY`` names another).

    Returns
    -------
    result : list of Path or list of PlannedFile
        As :func:`download_lebel`.
    """
    from bt_tutorial.config import get_config

    config = config or get_config()
    if config.profile != "full":
        raise ValueError("The demo profile reads the synthetic twin and downloads nothing; set BT_PROFILE=full "
                         "(or pass get_config(profile='full')) to download ds003020.")
    setting = config.train_story_setting
    stories = setting if isinstance(setting, tuple) else PAPER_TRAIN_STORIES
    return download_lebel(config.subject, n_train_stories, config.dataset_root, base_url=base_url or dataset_url(),
                          dry_run=dry_run, retries=retries, progress=config.progress, train_stories=stories,
                          registry=registry)


# ------------------------------------------------------------------ command line
class _OneLineParser(argparse.ArgumentParser):
    """An argument parser that reports a bad argument as one ``error:`` line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


_non_negative_int.__name__ = "integer"  # argparse says "invalid integer value: 'x'"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = _OneLineParser(prog="python -m bt_tutorial.dataset.download", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", required=True, help="subject, UTS01 to UTS08")
    parser.add_argument("--stories", type=int, required=True, metavar="N",
                        help=f"number of training stories, 0 to {len(PAPER_TRAIN_STORIES)} "
                        "(the test and validation stories are always downloaded)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="local dataset root (default: $BT_DATA/ds003020, where the full profile reads)")
    parser.add_argument("--base-url", default=dataset_url(),
                        help=f"URL of the dataset root (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})")
    parser.add_argument("--dry-run", action="store_true", help="list the files and sizes, download nothing")
    parser.add_argument("--retries", type=_non_negative_int, default=5, help="retries per file after a transient error")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--registry", metavar="FILE",
                        help=f"CSV path,size,md5 to check each file against (default: ${REGISTRY_ENV} or the "
                        "shipped registry of snapshot 3.1.0); 'none' checks only sizes, formats and MD5 ETags")
    parser.add_argument("--verify", action="store_true",
                        help="also read the files already downloaded and fetch again those whose MD5 differs")
    return parser.parse_args(argv)


def _default_out() -> Path:
    from bt_tutorial.config import get_config

    return get_config(profile="full").dataset_root


def main(argv: list[str] | None = None) -> int:
    """Run the download and return the exit code (0 on success, 2 on an expected error).

    Expected errors (:class:`DownloadError`, ``OSError``, ``ValueError``) print one
    ``error: <message>`` line on stderr; any other exception is a bug and propagates
    with its traceback.
    """
    args = parse_args(argv)

    def body():
        download_lebel(args.subject, args.stories, args.out or _default_out(), base_url=args.base_url,
                       dry_run=args.dry_run, retries=args.retries, progress=not args.no_progress,
                       registry=args.registry, verify=args.verify)
        return 0

    return run_command(body, (DownloadError, OSError, ValueError),
                       interrupted="Interrupted; run the same command again to resume.")


if __name__ == "__main__":
    sys.exit(main())
