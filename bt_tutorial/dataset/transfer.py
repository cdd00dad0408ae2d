"""Resumable, verified downloads of single files over HTTPS (used for ds003020 and the downstream data).

Each file is written to ``<file>.part``, its ETag and Last-Modified to ``<file>.part.json``,
and resumed after an interruption with a range request carrying ``If-Range``: a file
changed on the server restarts from zero instead of being spliced. A resume needs a strong
ETag, or a known MD5 to check the result: with only Last-Modified (a weak validator that
a server may ignore) the download restarts from zero. It gets its final name once its
size, its first bytes (:mod:`bt_tutorial.dataset.file_formats`) and its MD5 match: the caller's
(a registry's, e.g. ``data/ds003020_md5.csv``), else the ETag's where it is an MD5. A
caller's size and MD5 hold whatever the server sends; without them, a whole body of
another length is taken for a changed file only when its ETag gives an MD5 to check it.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import time
import urllib.request
from contextlib import contextmanager
from http.client import HTTPException
from pathlib import Path
from typing import Callable
from urllib.error import HTTPError, URLError

from filelock import FileLock, Timeout
from tqdm import tqdm

from bt_tutorial.dataset.file_formats import (
    discard_part,
    etag_md5,
    file_md5,
    is_complete,
    read_part_record,
    verify_file,
    write_part_record,
)

_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_LENGTH_RE = re.compile(r"\s*([0-9]+)\s*")
_CHUNK_SIZE = 1 << 20
LOCK_NAME = ".bt_download.lock"  # in the output folder; who holds it is written in LOCK_NAME + ".owner"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # no space left, or the user's quota


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
    """:func:`~bt_tutorial.dataset.transfer.remote_size`, retried after transient errors; DownloadError once they are used up."""
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
    """One file's download across attempts; without a known MD5 its size follows the server's if the
    file changes (and the new version's ETag gives an MD5)."""

    def __init__(self, url: str, dest: Path, expected: int, timeout: float, bar, md5: str | None = None):
        self.url, self.dest, self.expected, self.timeout, self.bar = url, dest, expected, timeout, bar
        self.md5 = md5  # the caller's: size and MD5 then hold whatever the server sends
        self.part = dest.with_name(dest.name + ".part")

    def resumable(self, record: dict | None) -> bool:
        """Whether a part with this record may be resumed: the server can tell its version (a strong
        ETag), or a known MD5 will catch a splice. Last-Modified alone is weak: restart from zero."""
        return record is not None and bool(record["etag"] or self.md5)

    def attempt(self) -> None:
        """Make one attempt at completing and checking ``part``, resuming from its current size."""
        url, part = self.url, self.part
        offset = _part_size(self.dest, part, self.expected)
        record = read_part_record(part, url, self.expected) if offset else None
        offset = offset if self.resumable(record) else 0  # Else a resume could splice two versions.
        if offset == self.expected:
            part.touch()  # A complete part, or an empty file: no request, but the file must exist.
            return self._verify(record)
        if_range = record and (record["etag"] or record["last_modified"])
        with _open(url, self.timeout, first=offset or None, if_range=if_range) as response:
            if offset and response.status == 206:
                match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != offset:
                    raise DownloadError(f"The server sent the wrong byte range of {url} to resume at {offset}.")
                etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
                if (match.group(3) not in ("*", str(self.expected)) or (etag and record["etag"] not in (None, etag))
                        or (not record["etag"] and modified and record["last_modified"] not in (None, modified))):
                    discard_part(part)  # The server ignored If-Range: do not splice the new version.
                    raise _TransientError(f"{url} changed on the server; restarting it from zero")
            else:
                offset = 0  # A fresh start, or the server sends the whole (maybe changed) file.
                self._check_length(_content_length(response.headers), etag_md5(response.headers))
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

    def _check_length(self, length: int | None, md5: str | None) -> None:
        """Accept a whole body of ``length`` bytes: the expected size, or a changed file's if nothing
        pins the size and the ETag's ``md5`` will check it. Else raise _TransientError (a truncated
        response is not taken for a new version)."""
        if length is None or length == self.expected:
            return
        if self.md5 is None and md5 is not None:
            self.expected = length
            return
        why = "the registry's size" if self.md5 else "the size the server gave before, and no MD5 checks a new one"
        raise _TransientError(f"the server sent {length} bytes of {self.url}, not {self.expected} ({why})")

    def _verify(self, record: dict | None) -> None:
        """Check the complete ``part``'s format and MD5; delete it and raise _BadContent if wrong."""
        if self.md5:
            problem = verify_file(self.part, self.dest.name, self.md5, "of the registry")
        else:
            problem = verify_file(self.part, self.dest.name, record and record["md5"])
        if problem:
            discard_part(self.part)
            raise _BadContent(f"the downloaded file {problem}")


def download_file(
    url: str, dest: str | Path, expected_size: int | None = None,
    retries: int = 5, backoff: float = 1.0, timeout: float = 60, progress: bool = True, md5: str | None = None,
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
        Size in bytes; asked from the server when None. Without ``md5``, a whole body
        sent with another Content-Length (the file changed on the server) replaces it
        when its ETag is an MD5 (which then checks it); with none, it is refused as
        truncated.
    retries : int
        Retries after a connection error, timeout, short transfer, HTTP 5xx or a
        file with the wrong content or MD5, each resuming from the bytes on disk
        when the server's file is unchanged and a strong ETag or ``md5`` can tell,
        else restarting from zero.
    backoff : float
        Seconds to wait before the first retry, doubled for each next one.
    timeout : float
        Socket timeout in seconds.
    progress : bool
        Show a progress bar.
    md5 : str, optional
        The file's MD5 (32 hex digits, e.g. from a registry); then ``expected_size`` is
        its size too. Both hold whatever the server sends: a body announced with another
        length is refused, a complete file of another MD5 deleted, both fetched again,
        and the error after the last retry gives the expected and received size or MD5. A ``dest``
        already complete is read to check it. Without it, the ETag's MD5 checks the file
        where the server gives one.

    Returns
    -------
    dest : Path

    Raises
    ------
    DownloadError
        If the file does not exist on the server (raised at once), ``dest`` is a
        folder, the disk is full (the message names the file; the partial file is
        kept to resume where it can be, else deleted), or the file cannot be completed
        with the expected size and content.
    """
    dest = Path(dest)
    md5 = md5.lower() if md5 else None
    if expected_size is None:
        expected_size = size_with_retries(url, retries, backoff, timeout)
    if is_complete(dest, expected_size):
        if md5 is None or (got := file_md5(dest)) == md5:
            return dest
        tqdm.write(f"{dest}: its MD5 is {got}, not {md5}; downloading it again.")
    if dest.is_dir():
        raise DownloadError(f"Cannot download {url} to {dest}: it is a folder.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    bar_options = dict(desc=dest.name, unit="B", unit_scale=True, leave=False, disable=not progress)
    with tqdm(total=expected_size, **bar_options) as bar:
        transfer = _Transfer(url, dest, expected_size, timeout, bar, md5)
        try:
            _retry(transfer.attempt, retries, backoff)
        except _BadContent as exc:
            other = ", or whether the server holds another version of the file than the registry's" if md5 else ""
            raise DownloadError(
                f"{dest}: {exc}, after {retries + 1} attempts to download {url}. It was deleted. "
                f"Check the network (log in to its portal if it has one){other}, and run the same command "
                "again to download the file again."
            ) from exc
        except _TRANSIENT_ERRORS as exc:
            got = transfer.part.stat().st_size if transfer.part.exists() else 0
            kept = (f"The partial file {transfer.part.name} was kept; run again to resume." if got
                    else "Run again to retry.")
            raise DownloadError(
                f"{dest}: expected {transfer.expected} bytes but got {got} after "
                f"{retries + 1} attempts to download {url} (last error: {exc}). {kept}"
            ) from exc
        except OSError as exc:  # after the transient errors, some of which are OSErrors
            if exc.errno not in _DISK_FULL:
                raise
            raise _disk_full(transfer, exc) from exc
    transfer.part.replace(dest)
    discard_part(transfer.part)
    return dest


def _disk_full(transfer: _Transfer, exc: OSError) -> DownloadError:
    """The error for a full disk while writing ``transfer``'s part: keep the part if it can be resumed
    (a strong ETag or a known MD5), else delete it to free its space; the message says which."""
    part, got = transfer.part, transfer.part.stat().st_size if transfer.part.exists() else 0
    if got and transfer.resumable(read_part_record(part, transfer.url, transfer.expected)):
        kept = f"its first {got} bytes are kept in {part.name} and the download resumes from there"
    else:
        discard_part(part)
        kept = f"{part.name} was deleted (the server gives no way to check a resume), so it restarts from zero"
    return DownloadError(
        f"The disk is full: writing {transfer.dest} failed at {got} of {transfer.expected} bytes "
        f"({exc.strerror or exc}). Free at least {format_size(transfer.expected - got)} on the disk of "
        f"{transfer.dest.parent} and run the same command again; {kept}."
    )


@contextmanager
def download_lock(out_dir: Path, timeout: float | None = None):
    """Hold ``out_dir/.bt_download.lock`` (a :class:`filelock.FileLock`) so that one download writes there.

    Writes who holds it (process id, host, start time, command) beside it, in
    ``.bt_download.lock.owner``. If another process holds it, prints that and waits.

    Parameters
    ----------
    out_dir : Path
        An existing folder.
    timeout : float, optional
        Seconds to wait; None waits as long as the other download runs.

    Raises
    ------
    DownloadError
        If the lock is still held after ``timeout`` seconds; the message names the holder.
    """
    lock, owner = FileLock(str(out_dir / LOCK_NAME)), out_dir / (LOCK_NAME + ".owner")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if timeout is None or timeout > 0:
            tqdm.write(f"Another download into {out_dir} is running ({_holder(owner)}): waiting for it to finish.")
        try:
            lock.acquire(timeout=1e9 if timeout is None else timeout)  # finite: no in-process deadlock check
        except Timeout:
            raise DownloadError(
                f"Another download into {out_dir} is running ({_holder(owner)}; it holds {out_dir / LOCK_NAME}). "
                "Wait for it to finish or stop it, then run the same command again."
            ) from None
    try:
        owner.write_text(f"process {os.getpid()} on {socket.gethostname()}, since "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv) or 'python'}\n")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def _holder(owner: Path) -> str:
    """Who holds the lock, as its ``.owner`` file says (the holder may not have written it yet)."""
    try:
        return owner.read_text().strip() or "a process that has not written who it is yet"
    except OSError:
        return "a process that has not written who it is yet"
