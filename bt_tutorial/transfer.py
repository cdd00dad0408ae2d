"""Resumable, verified downloads of single files over HTTPS (used for ds003020 and the downstream data).

Each file is written to ``<file>.part``, its ETag and Last-Modified to ``<file>.part.json``,
and resumed after an interruption with a range request carrying ``If-Range``: a file
changed on the server restarts from zero instead of being spliced. It gets its final name
once its size, its first bytes (:mod:`bt_tutorial.file_formats`) and, where the ETag is an
MD5, its MD5 match.
"""

from __future__ import annotations

import re
import time
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Callable
from urllib.error import HTTPError, URLError

from tqdm import tqdm

from .file_formats import discard_part, is_complete, read_part_record, verify_file, write_part_record

_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_LENGTH_RE = re.compile(r"\s*([0-9]+)\s*")
_CHUNK_SIZE = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be downloaded completely and correctly."""


class RemoteFileMissing(DownloadError):
    """The server says the file does not exist (HTTP 404, or 403 from S3 for a missing key)."""


class _TransientError(Exception):
    """A failure worth retrying: HTTP 5xx or a transfer cut short."""


class _BadContent(_TransientError):
    """The finished file has the wrong content for its format or checksum; it was deleted."""


_TRANSIENT_ERRORS = (_TransientError, URLError, HTTPException, ConnectionError, TimeoutError)


def format_size(n_bytes: int) -> str:
    """Format a byte count with decimal units, e.g. ``"1.2 GB"``."""
    size = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"


def _open(url: str, timeout: float, method: str = "GET", first: int | None = None, last: int | None = None,
          if_range: str | None = None):  # fmt: skip
    """Send one request; turn HTTP errors into DownloadError or _TransientError."""
    headers = {"User-Agent": "bt-tutorial-downloader"}
    if first is not None:
        headers["Range"] = f"bytes={first}-{'' if last is None else last}"
        if if_range:
            headers["If-Range"] = if_range
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if method == "HEAD" and exc.code in (405, 501):
            raise  # HEAD refused: the caller falls back to a GET.
        if exc.code in (403, 404):
            # S3 answers 403 instead of 404 for a missing key when listing is denied.
            raise RemoteFileMissing(
                f"HTTP {exc.code}: {url} does not exist on the server. "
                "Check the subject and story names, or --base-url."
            ) from None
        if exc.code >= 500:
            raise _TransientError(f"HTTP {exc.code} {exc.reason} for {url}") from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}.") from None


def _content_length(headers) -> int | None:
    """The Content-Length header as an int; None if missing, negative or malformed."""
    match = _LENGTH_RE.fullmatch(headers.get("Content-Length") or "")
    return int(match.group(1)) if match else None


def remote_size(url: str, timeout: float = 60) -> int:
    """Ask the server for the size of a file.

    Sends a HEAD request; if HEAD is refused (HTTP 405 or 501) or gives no valid
    Content-Length, gets the first byte only and reads the total from Content-Range.

    Parameters
    ----------
    url : str
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    size : int

    Raises
    ------
    DownloadError
        If there is no valid Content-Length (none, negative) nor Content-Range.
    """
    try:
        with _open(url, timeout, method="HEAD") as response:
            length = _content_length(response.headers)
    except HTTPError:
        length = None
    if length is not None:
        return length
    with _open(url, timeout, first=0, last=0) as response:
        match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
        if response.status == 206 and match and match.group(3) != "*":
            return int(match.group(3))
        length = _content_length(response.headers)
        if response.status == 200 and length is not None:
            return length
        got = response.headers.get("Content-Length")
    raise DownloadError(
        f"The server did not report a valid size for {url} (Content-Length: {got!r}, "
        "no usable Content-Range). Check --base-url, or try again later."
    )


def _retry(attempt: Callable, retries: int, backoff: float):
    """Call ``attempt`` until it succeeds, waiting ``backoff * 2**i`` seconds before retry ``i``."""
    for i in range(retries):
        try:
            return attempt()
        except _TRANSIENT_ERRORS:
            time.sleep(backoff * 2**i)
    return attempt()


def size_with_retries(url: str, retries: int, backoff: float, timeout: float) -> int:
    """:func:`remote_size`, retried after transient errors; DownloadError once they are used up."""
    try:
        return _retry(lambda: remote_size(url, timeout), retries, backoff)
    except _TRANSIENT_ERRORS as exc:
        raise DownloadError(
            f"Could not get the size of {url} after {retries + 1} attempts: {exc}. "
            "Check the internet connection (the demo profile needs none)."
        ) from exc


def _part_size(dest: Path, part: Path, expected: int) -> int:
    """Size of ``part``; a part bigger than ``expected`` cannot be resumed, so delete it and raise."""
    size = part.stat().st_size if part.exists() else 0
    if size > expected:
        part.unlink()
        raise DownloadError(
            f"{dest}: expected {expected} bytes but got {size}. "
            "The partial file was deleted; run again to restart the download."
        )
    return size


class _Transfer:
    """One file's download across attempts; its size follows the server's if the file changes."""

    def __init__(self, url: str, dest: Path, expected: int, timeout: float, bar):
        self.url, self.dest, self.expected, self.timeout, self.bar = url, dest, expected, timeout, bar
        self.part = dest.with_name(dest.name + ".part")

    def attempt(self) -> None:
        """Make one attempt at completing and checking ``part``, resuming from its current size."""
        url, part = self.url, self.part
        offset = _part_size(self.dest, part, self.expected)
        record = read_part_record(part, url, self.expected) if offset else None
        offset = offset if record else 0  # Without the version's validators a resume could splice two.
        if offset == self.expected:
            part.touch()  # A complete part, or an empty file: no request, but the file must exist.
            return self._verify(record)
        if_range = record and (record["etag"] or record["last_modified"])
        with _open(url, self.timeout, first=offset or None, if_range=if_range) as response:
            if offset and response.status == 206:
                match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != offset:
                    raise DownloadError(f"The server sent the wrong byte range of {url} to resume at {offset}.")
                etag = response.headers.get("ETag")
                if match.group(3) not in ("*", str(self.expected)) or (etag and record["etag"] not in (None, etag)):
                    discard_part(part)  # The server ignored If-Range: do not splice the new version.
                    raise _TransientError(f"{url} changed on the server; restarting it from zero")
            else:
                offset = 0  # A fresh start, or the server sends the whole (maybe changed) file.
                length = _content_length(response.headers)
                self.expected = self.expected if length is None else length
                record = write_part_record(part, url, self.expected, response.headers)
            self.bar.reset(total=self.expected)
            self.bar.update(offset)
            with open(part, "ab" if offset else "wb") as handle:
                while chunk := response.read(_CHUNK_SIZE):
                    handle.write(chunk)
                    self.bar.update(len(chunk))
        received = _part_size(self.dest, part, self.expected)
        if received < self.expected:
            raise _TransientError(f"the connection closed after {received} of {self.expected} bytes")
        self._verify(record)

    def _verify(self, record: dict | None) -> None:
        """Check the complete ``part``'s format and MD5; delete it and raise _BadContent if wrong."""
        problem = verify_file(self.part, self.dest.name, record and record["md5"])
        if problem:
            discard_part(self.part)
            raise _BadContent(f"the downloaded file {problem}")


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
        Final path, skipped if it already has the expected size and starts like its
        format. Data goes to ``dest + ".part"`` (its version in ``dest + ".part.json"``),
        renamed once complete and checked.
    expected_size : int, optional
        Size in bytes; asked from the server when None. A whole body sent with
        another Content-Length (the file changed on the server) replaces it.
    retries : int
        Retries after a connection error, timeout, short transfer, HTTP 5xx or a
        file with the wrong content or MD5, each resuming from the bytes on disk
        when the server's file is unchanged, else restarting from zero.
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
        If the file does not exist on the server (raised at once), ``dest`` is a
        folder, or the file cannot be completed with the expected size and content.
    """
    dest = Path(dest)
    if expected_size is None:
        expected_size = size_with_retries(url, retries, backoff, timeout)
    if is_complete(dest, expected_size):
        return dest
    if dest.is_dir():
        raise DownloadError(f"Cannot download {url} to {dest}: it is a folder.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    bar_options = dict(desc=dest.name, unit="B", unit_scale=True, leave=False, disable=not progress)
    with tqdm(total=expected_size, **bar_options) as bar:
        transfer = _Transfer(url, dest, expected_size, timeout, bar)
        try:
            _retry(transfer.attempt, retries, backoff)
        except _BadContent as exc:
            raise DownloadError(
                f"{dest}: {exc}, after {retries + 1} attempts to download {url}. It was deleted. "
                "Check the network (log in to its portal if it has one) and run the same command "
                "again to download the file again."
            ) from exc
        except _TRANSIENT_ERRORS as exc:
            got = transfer.part.stat().st_size if transfer.part.exists() else 0
            raise DownloadError(
                f"{dest}: expected {transfer.expected} bytes but got {got} after "
                f"{retries + 1} attempts to download {url} (last error: {exc}). "
                f"The partial file {transfer.part.name} was kept; run again to resume."
            ) from exc
    transfer.part.replace(dest)
    discard_part(transfer.part)
    return dest
