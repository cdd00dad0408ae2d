"""Download part of the LeBel et al. (2023) dataset (OpenNeuro ds003020).

Files come over plain HTTPS from OpenNeuro's public S3 bucket. Each one is written to
``<file>.part``, resumed with an HTTP range request after an interruption, and renamed
to its final name only once its size matches the size announced by the server.
"""

from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.error import HTTPError, URLError

from tqdm import tqdm

from .data import PAPER_TRAIN_STORIES, TEST_STORY, VALIDATION_STORY

DEFAULT_BASE_URL = "https://s3.amazonaws.com/openneuro.org/ds003020"


_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_CHUNK_SIZE = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be downloaded completely and correctly."""


class _TransientError(Exception):
    """A failure worth retrying: HTTP 5xx or a transfer cut short."""


_TRANSIENT_ERRORS = (_TransientError, URLError, HTTPException, ConnectionError, TimeoutError)


class PlannedFile(NamedTuple):
    """One file to download: path relative to the dataset root, URL and size in bytes."""

    relpath: str
    url: str
    size: int


def lebel_file_list(subject: str, n_train_stories: int) -> list[str]:
    """List the dataset files needed for one subject and the first training stories.

    Parameters
    ----------
    subject : str
        Subject identifier, ``"UTS01"`` to ``"UTS08"``.
    n_train_stories : int
        Number of training stories taken in order from :data:`PAPER_TRAIN_STORIES`
        (0 to 24). The test and validation stories are always included.

    Returns
    -------
    files : list of str
        POSIX paths relative to the dataset root.
    """
    if not isinstance(subject, str) or not re.fullmatch(r"UTS0[1-8]", subject):
        raise ValueError(f"Unknown subject {subject!r}: use one of UTS01 to UTS08.")
    n, n_max = n_train_stories, len(PAPER_TRAIN_STORIES)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= n_max:
        raise ValueError(f"The number of training stories must be an integer from 0 to {n_max}, got {n!r}.")
    files = ["derivative/respdict.json"]
    for story in [TEST_STORY, VALIDATION_STORY, *PAPER_TRAIN_STORIES[:n_train_stories]]:
        files += [f"derivative/TextGrids/{story}.TextGrid", f"stimuli/{story}.wav"]
        files.append(f"derivative/preprocessed_data/{subject}/{story}.hf5")
    files.append(f"derivative/pycortex-db/{subject}/transforms/{subject}_auto/mask_thick.nii.gz")
    return files


def format_size(n_bytes: int) -> str:
    """Format a byte count with decimal units, e.g. ``"1.2 GB"``."""
    size = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"


def _open(url: str, timeout: float, method: str = "GET", first: int | None = None, last: int | None = None):
    """Send one request; turn HTTP errors into DownloadError or _TransientError."""
    headers = {"User-Agent": "bt-tutorial-downloader"}
    if first is not None:
        headers["Range"] = f"bytes={first}-{'' if last is None else last}"
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if method == "HEAD" and exc.code in (405, 501):
            raise  # HEAD refused: the caller falls back to a GET.
        if exc.code in (403, 404):
            # S3 answers 403 instead of 404 for a missing key when listing is denied.
            raise DownloadError(
                f"HTTP {exc.code}: {url} does not exist on the server. "
                "Check the subject and story names, or --base-url."
            ) from None
        if exc.code >= 500:
            raise _TransientError(f"HTTP {exc.code} {exc.reason} for {url}") from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}.") from None


def remote_size(url: str, timeout: float = 60) -> int:
    """Ask the server for the size of a file.

    Sends a HEAD request; if HEAD is refused (HTTP 405 or 501) or gives no
    Content-Length, gets the first byte only and reads the total from Content-Range.

    Parameters
    ----------
    url : str
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    size : int
        Size of the file in bytes.
    """
    try:
        with _open(url, timeout, method="HEAD") as response:
            length = response.headers.get("Content-Length")
    except HTTPError:
        length = None
    if length is not None:
        return int(length)
    with _open(url, timeout, first=0, last=0) as response:
        match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
        if response.status == 206 and match and match.group(3) != "*":
            return int(match.group(3))
        if response.status == 200 and response.headers.get("Content-Length") is not None:
            return int(response.headers["Content-Length"])
    raise DownloadError(f"The server did not report the size of {url}.")


def _retry(attempt: Callable, retries: int, backoff: float):
    """Call ``attempt`` until it succeeds, waiting ``backoff * 2**i`` seconds before retry ``i``."""
    for i in range(retries):
        try:
            return attempt()
        except _TRANSIENT_ERRORS:
            time.sleep(backoff * 2**i)
    return attempt()


def _size_with_retries(url: str, retries: int, backoff: float, timeout: float) -> int:
    try:
        return _retry(lambda: remote_size(url, timeout), retries, backoff)
    except _TRANSIENT_ERRORS as exc:
        raise DownloadError(
            f"Could not get the size of {url} after {retries + 1} attempts: {exc}. "
            "Check the internet connection (the demo profile needs none)."
        ) from exc


def _size_on_disk(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _part_size(dest: Path, part: Path, expected: int) -> int:
    """Size of ``part``; a part bigger than ``expected`` cannot be resumed, so delete it and raise."""
    size = _size_on_disk(part)
    if size > expected:
        part.unlink()
        raise DownloadError(
            f"{dest}: expected {expected} bytes but got {size}. "
            "The partial file was deleted; run again to restart the download."
        )
    return size


def _fetch_once(url: str, dest: Path, part: Path, expected: int, timeout: float, bar) -> None:
    """Make one attempt at completing ``part``, resuming from its current size."""
    offset = _part_size(dest, part, expected)
    if offset == expected:
        part.touch()  # An empty file needs no request but must still exist.
        return
    with _open(url, timeout, first=offset or None) as response:
        if offset and response.status != 206:
            offset = 0  # The server ignored the Range header and sends the whole file.
        elif offset:
            match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                raise DownloadError(f"The server sent the wrong byte range of {url} to resume at {offset}.")
        bar.reset(total=expected)
        bar.update(offset)
        with open(part, "ab" if offset else "wb") as handle:
            while chunk := response.read(_CHUNK_SIZE):
                handle.write(chunk)
                bar.update(len(chunk))
    received = _part_size(dest, part, expected)
    if received < expected:
        raise _TransientError(f"the connection closed after {received} of {expected} bytes")


def download_file(
    url: str, dest: str | Path, expected_size: int | None = None,
    retries: int = 5, backoff: float = 1.0, timeout: float = 60, progress: bool = True,
) -> Path:  # fmt: skip
    """Download one file, resuming and retrying after interruptions.

    Parameters
    ----------
    url : str
        URL of the file.
    dest : str or Path
        Final path, skipped if it already has the expected size. Data goes to
        ``dest + ".part"``, renamed once complete.
    expected_size : int, optional
        Size in bytes; asked from the server when None.
    retries : int
        Retries after a connection error, timeout, short transfer or HTTP 5xx,
        each resuming from the bytes on disk.
    backoff : float
        Seconds to wait before the first retry, doubled for each next one.
    timeout : float
        Socket timeout in seconds.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dest : Path

    Raises
    ------
    DownloadError
        If the file does not exist on the server (raised at once) or cannot be
        completed with the expected size.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if expected_size is None:
        expected_size = _size_with_retries(url, retries, backoff, timeout)
    if _is_complete(dest, expected_size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    bar_options = dict(desc=dest.name, unit="B", unit_scale=True, leave=False, disable=not progress)
    with tqdm(total=expected_size, **bar_options) as bar:
        try:
            _retry(lambda: _fetch_once(url, dest, part, expected_size, timeout, bar), retries, backoff)
        except _TRANSIENT_ERRORS as exc:
            raise DownloadError(
                f"{dest}: expected {expected_size} bytes but got {_size_on_disk(part)} after "
                f"{retries + 1} attempts to download {url} (last error: {exc}). "
                f"The partial file {part.name} was kept; run again to resume."
            ) from exc
    part.replace(dest)
    return dest


def plan_lebel(
    subject: str, n_train_stories: int, base_url: str = DEFAULT_BASE_URL,
    retries: int = 5, backoff: float = 1.0, timeout: float = 60,
) -> list[PlannedFile]:  # fmt: skip
    """Pair each file of :func:`lebel_file_list` with its URL and remote size.

    Parameters are those of :func:`download_lebel`.

    Returns
    -------
    plan : list of PlannedFile
    """
    base = base_url.rstrip("/")
    plan = []
    for relpath in lebel_file_list(subject, n_train_stories):
        url = f"{base}/{urllib.parse.quote(relpath)}"
        plan.append(PlannedFile(relpath, url, _size_with_retries(url, retries, backoff, timeout)))
    return plan


def _is_complete(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


def format_plan(plan: list[PlannedFile], out_dir: str | Path) -> str:
    """Render a plan as ``size  path`` lines, marking files complete in ``out_dir``, and a total."""
    lines, left = [], 0
    for item in plan:
        done = _is_complete(Path(out_dir) / item.relpath, item.size)
        left += 0 if done else item.size
        lines.append(f"{format_size(item.size):>9}  {item.relpath}{'  (already downloaded)' if done else ''}")
    total = format_size(sum(item.size for item in plan))
    lines.append(f"{total:>9}  total, {len(plan)} files ({format_size(left)} left to download)")
    return "\n".join(lines)


def download_lebel(
    subject: str, n_train_stories: int, out_dir: str | Path, base_url: str = DEFAULT_BASE_URL,
    dry_run: bool = False, retries: int = 5, backoff: float = 1.0, timeout: float = 60,
    progress: bool = True,
) -> list[PlannedFile] | list[Path]:  # fmt: skip
    """Download the files of one subject and the first training stories.

    Prints the files with their sizes and total, then downloads the missing ones into ``out_dir``.

    Parameters
    ----------
    subject, n_train_stories
        As in :func:`lebel_file_list`.
    out_dir : str or Path
        Local folder that becomes the dataset root.
    base_url : str
        URL of the dataset root.
    dry_run : bool
        Only print the plan; write nothing.
    retries, backoff, timeout, progress
        As in :func:`download_file`.

    Returns
    -------
    result : list of PlannedFile or list of Path
        The plan if ``dry_run``, else the local path of every file.

    Raises
    ------
    ValueError
        If ``subject`` or ``n_train_stories`` is invalid.
    DownloadError
        If a file is missing on the server or cannot be completed.
    """
    out_dir = Path(out_dir)
    plan = plan_lebel(subject, n_train_stories, base_url, retries, backoff, timeout)
    print(format_plan(plan, out_dir))
    if dry_run:
        return plan
    paths = []
    total = sum(item.size for item in plan)
    with tqdm(total=total, desc="total", unit="B", unit_scale=True, disable=not progress) as bar:
        for item in plan:
            dest = out_dir / item.relpath
            if _is_complete(dest, item.size):
                tqdm.write(f"Skipping {item.relpath}: already complete.")
            else:
                download_file(item.url, dest, item.size, retries, backoff, timeout, progress)
            bar.update(item.size)
            paths.append(dest)
    return paths
