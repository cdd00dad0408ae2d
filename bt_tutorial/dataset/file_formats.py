"""Cheap checks that a downloaded file holds what its name says (signatures and MD5), and the
record kept beside a partial download.

A captive portal, a proxy error page or a corrupted transfer can leave a file of the
right size with the wrong content. :func:`content_problem` reads the first bytes and
compares them with the signature of the format given by the file's suffix;
:func:`md5_from_etag` and :func:`file_md5` check the whole file where the server's
ETag is an MD5 (S3 and GCS objects uploaded in one part), or against a registry of known
sizes and MD5s (:func:`read_registry`: the shipped ``data/ds003020_md5.csv`` for ds003020),
whatever the server says. :func:`write_part_record` saves which version of a file a ``.part``
holds, so that a resume can ask for that version only.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Mapping, NamedTuple

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)  # after a user block
_HEAD_SIZE = 512
_HTML_RE = re.compile(rb"\s*(<!doctype\s+html|<html|<head|<body)", re.IGNORECASE)
_TEXTGRID_HEADERS = ('File type = "ooTextFile',  # long and short ("ooTextFile short") formats
                     '"Praat chronological TextGrid text file"')  # fmt: skip
_MD5_ETAG_RE = re.compile(r'"?([0-9a-fA-F]{32})"?')
_MD5_RE = re.compile(r"[0-9a-f]{32}")
REGISTRY_ENV = "BT_DATASET_REGISTRY"  # a registry to use instead of REGISTRY_FILE, or "none"
REGISTRY_FILE = Path(__file__).parents[1] / "data" / "ds003020_md5.csv"
"""Sizes and MD5s of the ds003020 files the project downloads (snapshot 3.1.0; made by
``data_scripts/make_md5_registry.py`` from the dataset's git-annex keys)."""


class Checksum(NamedTuple):
    """What a registry knows of a file: its size in bytes and its MD5 (32 lower-case hex digits)."""

    size: int
    md5: str


def _text_start(head: bytes) -> str:
    """Decode the start of a text file written in UTF-8 or UTF-16, with or without a BOM."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):  # fmt: skip
        if head.startswith(bom):
            return head[len(bom):].decode(encoding, errors="replace")
    if len(head) > 1 and (head[0] == 0) != (head[1] == 0):  # UTF-16 without a BOM
        return head.decode("utf-16-be" if head[0] == 0 else "utf-16-le", errors="replace")
    return head.decode("utf-8", errors="replace")


def _check_hdf5(path: Path, head: bytes) -> str | None:
    if head.startswith(HDF5_SIGNATURE):
        return None
    with open(path, "rb") as handle:
        for offset in _HDF5_OFFSETS[1:]:
            handle.seek(offset)
            if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return None
    return "an HDF5 file"


def _check_wav(path: Path, head: bytes) -> str | None:
    return None if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE" else "a WAV file"


def _check_textgrid(path: Path, head: bytes) -> str | None:
    return None if _text_start(head).lstrip().startswith(_TEXTGRID_HEADERS) else "a Praat TextGrid"


def _check_json(path: Path, head: bytes) -> str | None:
    try:
        json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return "valid JSON"
    return None


def _check_gzip(path: Path, head: bytes) -> str | None:
    return None if head.startswith(b"\x1f\x8b") else "a gzip file"


def _check_zip(path: Path, head: bytes) -> str | None:
    return None if head.startswith((b"PK\x03\x04", b"PK\x05\x06")) else "a zip file"


CHECKS = {
    ".hf5": _check_hdf5, ".h5": _check_hdf5, ".hdf5": _check_hdf5, ".wav": _check_wav,
    ".textgrid": _check_textgrid, ".json": _check_json, ".gz": _check_gzip, ".tgz": _check_gzip,
    ".zip": _check_zip, ".npz": _check_zip,
}  # fmt: skip
"""Content check for each suffix (lower case): returns what the file should be, or None if it is."""


def content_problem(path: str | Path, name: str | None = None) -> str | None:
    """Say what is wrong with the content of ``path`` for its format, or None if nothing is.

    Files of a format without a check pass unless they look like an HTML page while
    their name is not ``.html``/``.htm``.

    Parameters
    ----------
    path : str or Path
    name : str, optional
        File name giving the format, e.g. the final name of a ``.part`` file;
        ``path``'s name when None.

    Returns
    -------
    problem : str or None
        E.g. ``"is not an HDF5 file (it looks like an HTML page: a captive portal,
        proxy or error page answered, not the server)"``.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_SIZE)
    suffix = Path(name or path.name).suffix.lower()
    looks_html = bool(_HTML_RE.match(_text_start(head).encode("utf-8", errors="replace")))
    expected = CHECKS[suffix](path, head) if suffix in CHECKS else None
    if expected is None and (suffix in CHECKS or not looks_html or suffix in (".html", ".htm")):
        return None
    what = f"is not {expected}" if expected else "is not the expected file"
    if looks_html:
        return f"{what} (it looks like an HTML page: a captive portal, proxy or error page answered, not the server)"
    return f"{what} (its first bytes are {head[:16]!r})"


def is_complete(path: Path, size: int) -> bool:
    """Whether ``path`` is a file of ``size`` bytes whose content starts like its format."""
    return path.is_file() and path.stat().st_size == size and content_problem(path) is None


def verify_file(path: str | Path, name: str, md5: str | None, source: str = "given by the server") -> str | None:
    """:func:`content_problem`, then whether the file's MD5 is ``md5`` (if given); None if all is well.

    ``source`` says where ``md5`` comes from, for the message: e.g. ``"does not match the MD5
    checksum given by the server (expected 0123..., got 4567...)"``.
    """
    problem = content_problem(path, name)
    if problem is None and md5 and (got := file_md5(path)) != md5:
        problem = f"does not match the MD5 checksum {source} (expected {md5}, got {got})"
    return problem


def read_registry(path: str | Path = REGISTRY_FILE) -> dict[str, Checksum]:
    """Read a registry of checksums: a CSV with columns ``path,size,md5`` (lines starting with ``#`` skipped).

    Parameters
    ----------
    path : str or Path
        Default: the shipped registry of ds003020, :data:`REGISTRY_FILE`. A mirror serving
        other files (the tests' miniature one) plants its own.

    Returns
    -------
    registry : dict of str -> Checksum
        By POSIX path relative to the dataset root, as :func:`registry_key` spells it.

    Raises
    ------
    ValueError
        If a row is not ``path,size,md5`` with a size of 0 or more and a 32-hex-digit MD5
        (the message names the file and line).
    """
    registry = {}
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [(number, line) for number, line in enumerate(handle, 1) if not line.startswith("#")]
    for (number, _), row in zip(lines, csv.reader(line for _, line in lines)):
        if row == ["path", "size", "md5"] or not row:
            continue
        if len(row) != 3 or not row[1].isdigit() or not _MD5_RE.fullmatch(row[2].lower()):
            raise ValueError(f"{path}, line {number}: expected path,size,md5 with an MD5 of 32 hex digits, got {row}.")
        registry[registry_key(row[0])] = Checksum(int(row[1]), row[2].lower())
    return registry


def load_registry(registry: Mapping[str, Checksum] | str | Path | None = None) -> Mapping[str, Checksum]:
    """The registry of sizes and MD5s to check downloads against.

    Parameters
    ----------
    registry : mapping, str or Path, optional
        A mapping from :func:`~bt_tutorial.dataset.file_formats.registry_key` paths to
        :class:`~bt_tutorial.dataset.file_formats.Checksum` (used as is), the path of a CSV
        ``path,size,md5``, or ``"none"`` (no registry: an empty mapping). Default:
        ``$BT_DATASET_REGISTRY`` if set, else the shipped registry of snapshot 3.1.0.

    Returns
    -------
    registry : mapping of str -> Checksum

    Raises
    ------
    OSError, ValueError
        If the CSV cannot be read, or a row is malformed (:func:`read_registry`).
    """
    if registry is None:
        registry = os.environ.get(REGISTRY_ENV, "").strip() or REGISTRY_FILE
    if isinstance(registry, Mapping):
        return registry
    if str(registry).lower() == "none":
        return {}
    return read_registry(registry)


def registry_key(relpath: str) -> str:
    """The registry's name of a dataset path: ``derivatives/`` (newer snapshots' name) read as ``derivative/``."""
    first, _, rest = relpath.partition("/")
    return f"derivative/{rest}" if first == "derivatives" and rest else relpath


def _record_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def write_part_record(part: Path, url: str, size: int, headers) -> dict:
    """Save beside ``<file>.part``, in ``<file>.part.json``, which version of ``url`` it holds.

    Keeps the response's strong ETag and Last-Modified (to send in ``If-Range``) and the
    MD5 in the ETag, unless S3 says the object is encrypted with KMS or a customer key
    (its ETag is then not the MD5 of the content). Returns the record.
    """
    etag = headers.get("ETag")
    etag = None if etag and etag.startswith("W/") else etag  # A weak ETag may not go in If-Range.
    record = dict(url=url, size=size, etag=etag, last_modified=headers.get("Last-Modified"), md5=etag_md5(headers))
    _record_path(part).write_text(json.dumps(record))
    return record


def etag_md5(headers) -> str | None:
    """The MD5 of the content given by a response's ETag (:func:`md5_from_etag`), None if it gives none.

    None too when S3 says the object is encrypted with KMS or a customer key: its ETag is
    then not the MD5 of the content.
    """
    encrypted = (headers.get("x-amz-server-side-encryption") or "").startswith("aws:kms") or headers.get(
        "x-amz-server-side-encryption-customer-algorithm")  # fmt: skip
    etag = headers.get("ETag")
    return None if encrypted or (etag and etag.startswith("W/")) else md5_from_etag(etag)


def read_part_record(part: Path, url: str, size: int) -> dict | None:
    """The record written by :func:`write_part_record` if it is for ``url`` and ``size`` and
    holds an ETag or Last-Modified to send in ``If-Range``; None otherwise."""
    try:
        record = json.loads(_record_path(part).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("url") != url or record.get("size") != size:
        return None
    for key in ("etag", "last_modified", "md5"):
        record[key] = record.get(key) if isinstance(record.get(key), str) else None
    record["md5"] = md5_from_etag(record["md5"])
    return record if record["etag"] or record["last_modified"] else None


def discard_part(part: Path) -> None:
    """Delete ``part`` and its record, if they exist."""
    part.unlink(missing_ok=True)
    _record_path(part).unlink(missing_ok=True)


def md5_from_etag(etag: str | None) -> str | None:
    """The MD5 hex digest in an S3-style ETag of an object uploaded in one part, else None.

    A multipart upload's ETag ends in ``-<parts>`` and a weak ETag starts with ``W/``:
    neither is the MD5 of the content.
    """
    match = _MD5_ETAG_RE.fullmatch(etag.strip()) if etag else None
    return match.group(1).lower() if match else None


def file_md5(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
