"""Tests of the ds003020 downloader against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import errno
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest

from bt_tutorial._local_http import serving
from bt_tutorial.dataset import download, transfer

REPO_ROOT = Path(__file__).resolve().parents[1]

from bt_tutorial.dataset.download import download_lebel, lebel_file_list
from bt_tutorial.dataset.file_formats import (
    HDF5_SIGNATURE,
    content_problem,
    md5_from_etag,
    read_registry,
    write_part_record,
)
from bt_tutorial.dataset.stories import PAPER_TRAIN_STORIES, TEST_STORY, VALIDATION_STORY
from bt_tutorial.dataset.transfer import DownloadError, download_file, format_size, remote_size

SUBJECT = "UTS01"
N_TRAIN = 1
FAST = dict(backoff=0, timeout=5, progress=False)


def build_mirror(twin: Path, root: Path, subject: str, stories: list[str]) -> list[str]:
    """Copy a synthetic twin into a miniature ds003020 mirror.

    The twin's training stories are served under the names of the paper's
    training stories (the downloader asks for those); the subject gets a small
    ``mask_thick.nii.gz`` written with nibabel.

    Returns
    -------
    relpaths : list of str
        POSIX paths of the written files, relative to ``root``.
    """
    import nibabel as nib
    import numpy as np

    twin_stories = json.loads((twin / "derivative" / "respdict.json").read_text())
    spare = [s for s in twin_stories if s not in (TEST_STORY, VALIDATION_STORY)]
    source = {s: (s if s in twin_stories else spare.pop(0)) for s in stories}
    files = {"derivative/respdict.json": json.dumps({s: twin_stories[source[s]] for s in stories}).encode()}
    for story, src in source.items():
        for pattern in ("derivative/TextGrids/{}.TextGrid", "stimuli/{}.wav",
                        f"derivative/preprocessed_data/{subject}/{{}}.hf5"):  # twin has UTS01
            src_path = twin / pattern.format(src)
            files[pattern.format(story)] = src_path.read_bytes()
    mask = f"derivative/pycortex-db/{subject}/transforms/{subject}_auto/mask_thick.nii.gz"
    (root / mask).parent.mkdir(parents=True, exist_ok=True)
    vol = (np.random.default_rng(0).random((8, 10, 12)) > 0.5).astype(np.uint8)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), root / mask)
    files[mask] = (root / mask).read_bytes()
    for relpath, data in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(files)


PORTAL_PAGE = b"<!DOCTYPE html>\n<html><head><title>Log in to the Wi-Fi</title></head><body>Log in</body></html>\n"


def etag_of(data: bytes, mode: str | None) -> str | None:
    """The ETag the mirror sends for ``data``: like S3 (``md5``, ``multipart``, ``kms``) or other servers."""
    md5, other = hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest()[:32]
    return {"md5": f'"{md5}"', "multipart": f'"{other}-3"', "opaque": f'"v{md5[:12]}"',
            "weak": f'W/"{other}"', "kms": f'"{other}"', None: None}[mode]  # fmt: skip


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serve files under ``root`` with HEAD, GET, single byte ranges and If-Range, like S3.

    Every response carries an ETag (``state["etag"]`` picks its kind, see :func:`etag_of`;
    S3's single-part MD5 by default) and the file's mtime as Last-Modified. A range
    request whose If-Range matches neither gets the whole file (200), as RFC 9110 says.

    ``state`` switches on misbehaviours: ``cut_after`` {path: n} cuts the first
    GET of a path after n bytes, ``change_after_cut`` {path: bytes} then replaces the
    served file, ``missing`` answers 404, ``short_by`` {path: n} never sends the last n
    bytes of a file while announcing them, ``ignore_range`` answers 200 to range requests,
    ``ignore_if_range`` honours Range whatever If-Range says, ``no_head`` answers 405 to
    HEAD, ``portal`` {path: n} answers the next n GETs with an HTML page (a captive
    portal), ``corrupt`` {path: [n, offset]} flips the bytes at ``offset`` in the next n
    GETs while keeping the size and headers, and ``bad_length`` {path: value} sends
    Content-Length ``value`` (None: no Content-Length), and ``short_200`` {path: n} answers a GET
    without Range with a 200 that announces and sends n bytes fewer (a truncating proxy; HEAD
    tells the true size). Every request is recorded in ``requests`` as (method, path, Range
    header, If-Range header).
    """

    root: Path
    state: dict

    def log_message(self, format, *args):
        pass

    def do_HEAD(self):
        self._serve(send_body=False)

    def do_GET(self):
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        relpath = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        state, range_header, if_range = self.state, self.headers.get("Range"), self.headers.get("If-Range")
        state["requests"].append((self.command, relpath, range_header, if_range))
        path = self.root / relpath
        if relpath in state["missing"] or not path.is_file():
            return self.send_error(404)
        if not send_body and state["no_head"]:
            return self.send_error(405)
        if send_body and state["portal"].get(relpath, 0) > 0:
            state["portal"][relpath] -= 1
            return self._send(200, {"Content-Type": "text/html", "Content-Length": str(len(PORTAL_PAGE))}, PORTAL_PAGE)
        data = path.read_bytes()
        etag = etag_of(data, state["etag"])
        last_modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
        if send_body and range_header is None and relpath in state["short_200"]:
            data = data[: len(data) - state["short_200"][relpath]]
        first, last, status = 0, len(data) - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header or "")
        if_range_ok = if_range is None or if_range in (etag, last_modified) and not if_range.startswith("W/")
        if match and relpath not in state["ignore_range"] and (if_range_ok or relpath in state["ignore_if_range"]):
            first, status = int(match.group(1)), 206
            last = min(int(match.group(2) or last), last)
            if first >= len(data):
                return self.send_error(416)
        headers = {"Content-Length": str(last + 1 - first), "Accept-Ranges": "bytes", "Last-Modified": last_modified}
        if etag:
            headers["ETag"] = etag
        if state["etag"] == "kms":  # S3 with KMS: a 32-hex ETag that is not the MD5
            headers["x-amz-server-side-encryption"] = "aws:kms"
        if status == 206:
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        if relpath in state["bad_length"]:
            headers["Content-Length"] = state["bad_length"][relpath]
        self._send(status, headers, self._body(relpath, data, first, last) if send_body else b"")

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if value is not None:
                self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except ConnectionError:
            pass  # The client stopped reading: a range GET answered 200, or a restart.

    def _body(self, relpath: str, data: bytes, first: int, last: int) -> bytes:
        end = min(last + 1, len(data) - self.state["short_by"].get(relpath, 0))
        data = bytearray(data)
        if self.state["corrupt"].get(relpath, [0])[0] > 0:
            self.state["corrupt"][relpath][0] -= 1
            offset = self.state["corrupt"][relpath][1]
            data[offset : offset + 4] = bytes(b ^ 0xFF for b in data[offset : offset + 4])
        body = bytes(data[first:end])
        if relpath in self.state["cut_after"]:
            body = body[: self.state["cut_after"].pop(relpath)]
            if relpath in self.state["change_after_cut"]:
                path = self.root / relpath
                mtime = path.stat().st_mtime
                path.write_bytes(self.state["change_after_cut"].pop(relpath))
                os.utime(path, (mtime + 10, mtime + 10))  # Last-Modified has a resolution of 1 s.
        return body


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Keep requests to 127.0.0.1 away from any proxy configured in the environment."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def mirror(tmp_path, tiny_twin):
    """A served folder holding a miniature ``ds003020`` (from the tiny twin) for UTS01."""
    serve_root = tmp_path / "mirror"
    stories = [TEST_STORY, VALIDATION_STORY, *PAPER_TRAIN_STORIES[:N_TRAIN]]
    build_mirror(tiny_twin, serve_root / "ds003020", SUBJECT, stories)
    return serve_root


def plant_registry(dataset_root: Path, path: Path, monkeypatch) -> Path:
    """Write the sizes and MD5s of the files under ``dataset_root`` as a registry CSV at ``path``, and
    make it the downloads' default (``BT_DATASET_REGISTRY``, seen by subprocesses too): the shipped
    registry is the real dataset's, and the miniature mirror's files would all differ from it."""
    rows = ["# the miniature mirror", "path,size,md5"]
    for file in sorted(f for f in dataset_root.rglob("*") if f.is_file()):
        data = file.read_bytes()
        rows.append(f"{file.relative_to(dataset_root).as_posix()},{len(data)},{hashlib.md5(data).hexdigest()}")
    path.write_text("\n".join(rows) + "\n")
    monkeypatch.setenv(download.REGISTRY_ENV, str(path))
    return path


@pytest.fixture
def server(mirror, monkeypatch):
    """Serve ``mirror`` on 127.0.0.1; yield its dataset URL, state, dataset root and registry
    (planted as the default: see :func:`plant_registry`)."""
    registry = plant_registry(mirror / "ds003020", mirror / "ds003020_md5.csv", monkeypatch)
    state = dict(requests=[], cut_after={}, missing=set(), short_by={}, ignore_range=set(), no_head=False,
                 etag="md5", ignore_if_range=set(), portal={}, corrupt={}, bad_length={}, change_after_cut={},
                 short_200={})
    handler = type("Handler", (MirrorHandler,), {"root": mirror, "state": state})
    with serving(handler) as base:
        yield SimpleNamespace(url=f"{base}/ds003020", state=state, root=mirror / "ds003020", registry=registry)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gets(state: dict, relpath: str) -> list:
    """Range headers of the GET requests made for ``ds003020/<relpath>``."""
    served = f"ds003020/{relpath}"
    return [rng for method, path, rng, _ in state["requests"] if method == "GET" and path == served]


def if_ranges(state: dict, relpath: str) -> list:
    """If-Range headers of the GET requests made for ``ds003020/<relpath>``."""
    served = f"ds003020/{relpath}"
    return [if_range for method, path, _, if_range in state["requests"] if method == "GET" and path == served]


WAV = f"stimuli/{TEST_STORY}.wav"
SERVED_WAV = f"ds003020/{WAV}"  # The key of WAV in the handler's switches.


def test_full_download_matches_mirror(server, tmp_path, capsys):
    out = tmp_path / "out"
    paths = download_lebel(SUBJECT, N_TRAIN, out, base_url=server.url, **FAST)
    relpaths = lebel_file_list(SUBJECT, N_TRAIN)
    assert paths == [out / relpath for relpath in relpaths]
    assert sorted(relpaths) == sorted(p.relative_to(server.root).as_posix() for p in server.root.rglob("*.*"))
    for relpath in relpaths:
        assert sha256(out / relpath) == sha256(server.root / relpath), relpath
    assert not list(out.rglob("*.part"))
    assert "total, 11 files" in capsys.readouterr().out


def test_second_run_skips_complete_files(server, tmp_path, capsys):
    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    server.state["requests"].clear()
    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    assert [request[0] for request in server.state["requests"]] == ["HEAD"] * 11
    output = capsys.readouterr().out
    assert "already complete" in output and "0 B left to download" in output


def test_existing_part_file_is_resumed(server, tmp_path):
    source = server.root / WAV
    dest, url, size = tmp_path / "a.wav", f"{server.url}/{WAV}", source.stat().st_size
    Path(f"{dest}.part").write_bytes(source.read_bytes()[:12345])
    etag = etag_of(source.read_bytes(), "md5")
    write_part_record(Path(f"{dest}.part"), url, size, {"ETag": etag})
    download_file(url, dest, size, **FAST)
    assert gets(server.state, WAV) == ["bytes=12345-"]
    assert if_ranges(server.state, WAV) == [etag]
    assert sha256(dest) == sha256(source)
    assert not Path(f"{dest}.part").exists() and not Path(f"{dest}.part.json").exists()


def test_cut_connection_is_retried_and_resumed(server, tmp_path):
    server.state["cut_after"][SERVED_WAV] = 50_000
    dest = tmp_path / "a.wav"
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    assert gets(server.state, WAV) == [None, "bytes=50000-"]
    assert sha256(dest) == sha256(server.root / WAV)


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.state["ignore_range"].add(SERVED_WAV)
    dest, url, source = tmp_path / "a.wav", f"{server.url}/{WAV}", server.root / WAV
    Path(f"{dest}.part").write_bytes(b"stale bytes")
    write_part_record(Path(f"{dest}.part"), url, source.stat().st_size, {"ETag": etag_of(source.read_bytes(), "md5")})
    download_file(url, dest, **FAST)
    assert gets(server.state, WAV) == ["bytes=11-"]
    assert sha256(dest) == sha256(server.root / WAV)


def test_empty_file(server, tmp_path):
    (server.root / "empty.txt").write_bytes(b"")
    dest = download_file(f"{server.url}/empty.txt", tmp_path / "empty.txt", **FAST)
    assert dest.read_bytes() == b""


def test_missing_file_fails_at_once(server, tmp_path, monkeypatch):
    server.state["missing"].add(SERVED_WAV)
    url = f"{server.url}/{WAV}"
    waits = []
    monkeypatch.setattr(transfer.time, "sleep", waits.append)
    with pytest.raises(DownloadError, match=re.escape(url)) as info:
        download_file(url, tmp_path / "a.wav", 1000, retries=5, backoff=10, timeout=5, progress=False)
    assert waits == []  # a 404 is not retried after a backoff
    assert "--base-url" in str(info.value)
    assert len(gets(server.state, WAV)) == 1
    assert not (tmp_path / "a.wav").exists()


def test_short_transfers_fail_with_sizes(server, tmp_path):
    server.state["short_by"][SERVED_WAV] = 100
    size = (server.root / WAV).stat().st_size
    dest = tmp_path / "a.wav"
    with pytest.raises(DownloadError, match=f"expected {size} bytes but got {size - 100}"):
        download_file(f"{server.url}/{WAV}", dest, retries=2, **FAST)
    assert len(gets(server.state, WAV)) == 3
    assert not dest.exists()


def test_part_bigger_than_expected_is_deleted(server, tmp_path):
    size = (server.root / WAV).stat().st_size
    dest = tmp_path / "a.wav"
    part = Path(f"{dest}.part")
    part.write_bytes(b"x" * (size + 1))
    with pytest.raises(DownloadError, match=f"expected {size} bytes but got {size + 1}"):
        download_file(f"{server.url}/{WAV}", dest, size, **FAST)
    assert not part.exists() and not dest.exists()


def test_dry_run_lists_files_and_writes_nothing(server, tmp_path, capsys):
    out = tmp_path / "out"
    plan = download_lebel(SUBJECT, N_TRAIN, out, base_url=server.url, dry_run=True, **FAST)
    assert [item.relpath for item in plan] == lebel_file_list(SUBJECT, N_TRAIN)
    assert [item.size for item in plan] == [(server.root / item.relpath).stat().st_size for item in plan]
    output = capsys.readouterr().out
    for item in plan:
        assert f"{format_size(item.size)}  {item.relpath}" in output
    assert format_size(sum(item.size for item in plan)) in output.splitlines()[-1]
    assert not out.exists()
    assert not gets(server.state, WAV)


def test_remote_size_falls_back_to_range_get(server):
    server.state["no_head"] = True
    assert remote_size(f"{server.url}/{WAV}", timeout=5) == (server.root / WAV).stat().st_size
    assert gets(server.state, WAV) == ["bytes=0-0"]


def test_file_list_layout():
    files = lebel_file_list("UTS03", 2)
    assert len(files) == 2 + 3 * 4
    assert files[0] == "derivative/respdict.json"
    assert files[-1] == "derivative/pycortex-db/UTS03/transforms/UTS03_auto/mask_thick.nii.gz"
    assert "derivative/preprocessed_data/UTS03/alternateithicatom.hf5" not in files
    assert f"stimuli/{PAPER_TRAIN_STORIES[1]}.wav" in files
    assert len(PAPER_TRAIN_STORIES) == 24 and {TEST_STORY, VALIDATION_STORY}.isdisjoint(PAPER_TRAIN_STORIES)


@pytest.mark.parametrize(
    ("subject", "n", "message"),
    [("UTS09", 1, "subject"), ("uts01", 1, "subject"), ("UTS1", 1, "subject"),
     ("UTS01", -1, "0 to 24"), ("UTS01", 25, "0 to 24"), ("UTS01", 1.5, "integer")],
)  # fmt: skip
def test_file_list_validation(subject, n, message):
    with pytest.raises(ValueError, match=message):
        lebel_file_list(subject, n)


def test_format_size():
    assert [format_size(n) for n in (0, 999, 1500, 2_500_000, 1_234_000_000)] == [
        "0 B", "999 B", "1.5 kB", "2.5 MB", "1.2 GB"
    ]  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, str(REPO_ROOT / "data_scripts" / "download_lebel.py"), *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_cli_dry_run(server, tmp_path):
    out = tmp_path / "out"
    args = ["--subject", SUBJECT, "--stories", "1", "--out", str(out), "--base-url", server.url]
    result = run_cli(*args, "--dry-run")
    assert result.returncode == 0, result.stderr
    size = (server.root / WAV).stat().st_size
    assert f"{format_size(size)}  {WAV}" in result.stdout
    assert "total, 11 files" in result.stdout
    assert not out.exists()


def test_cli_failure_exits_with_message(server, tmp_path):
    bad_url = f"{server.url}/nowhere"
    result = run_cli("--subject", SUBJECT, "--stories", "1", "--out", str(tmp_path), "--base-url", bad_url)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert bad_url in result.stderr and "Traceback" not in result.stderr


def test_downloaded_tree_reads_with_the_dataset_reader(server, tmp_path):
    import nibabel as nib
    import numpy as np

    from bt_tutorial.dataset.reader import LebelDataset

    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    ds = LebelDataset(tmp_path)
    split = ds.split(SUBJECT)
    assert split["train"] == list(PAPER_TRAIN_STORIES[:N_TRAIN])
    y = ds.load_responses(SUBJECT, split["train"][0])
    assert y.shape[0] == ds.respdict[split["train"][0]] - 20
    mask = np.asarray(nib.load(str(ds.mask_path(SUBJECT))).dataobj)
    assert ds.voxel_columns(SUBJECT).size == int(mask.sum())


# ------------------------------------------------ versions: If-Range, no splicing
HF5 = f"derivative/preprocessed_data/{SUBJECT}/{TEST_STORY}.hf5"
SERVED_HF5 = f"ds003020/{HF5}"


def new_version(data: bytes, extra: int = 0) -> bytes:
    """Another version of a WAV file: same header, other samples, ``extra`` more bytes."""
    return data[:44] + bytes(reversed(data[44:])) + b"\x01" * extra


def cut_download(server, dest: Path, at: int = 50_000) -> None:
    """Start downloading WAV to ``dest`` and lose the connection after ``at`` bytes, with no retry."""
    server.state["cut_after"][SERVED_WAV] = at
    with pytest.raises(DownloadError, match="was kept; run again to resume"):
        download_file(f"{server.url}/{WAV}", dest, retries=0, **FAST)
    assert Path(f"{dest}.part").stat().st_size == at and Path(f"{dest}.part.json").is_file()


@pytest.mark.parametrize("etag_mode", ["md5", "opaque", None])
def test_file_changed_between_runs_restarts_from_zero(server, tmp_path, etag_mode):
    server.state["etag"] = etag_mode
    source, dest = server.root / WAV, tmp_path / "a.wav"
    old = source.read_bytes()
    old_validator = etag_of(old, etag_mode) or email.utils.formatdate(source.stat().st_mtime, usegmt=True)
    cut_download(server, dest)
    new = new_version(old)  # same size: only the validator tells the versions apart
    source.write_bytes(new)
    os.utime(source, (source.stat().st_mtime + 10,) * 2)
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    if etag_mode is None:  # Last-Modified alone is a weak validator: no resume, a restart from zero
        assert gets(server.state, WAV) == [None, None] and if_ranges(server.state, WAV) == [None, None]
    else:
        assert gets(server.state, WAV) == [None, "bytes=50000-"]
        assert if_ranges(server.state, WAV) == [None, old_validator]  # the server then answered 200
    assert dest.read_bytes() == new
    assert not Path(f"{dest}.part").exists() and not Path(f"{dest}.part.json").exists()


def test_unchanged_file_resumes_with_if_range(server, tmp_path):
    dest = tmp_path / "a.wav"
    cut_download(server, dest)
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    assert gets(server.state, WAV) == [None, "bytes=50000-"]
    assert if_ranges(server.state, WAV) == [None, etag_of((server.root / WAV).read_bytes(), "md5")]
    assert sha256(dest) == sha256(server.root / WAV)


@pytest.mark.parametrize("extra", [0, 1000, -1000])
def test_file_changed_during_download_restarts_from_zero(server, tmp_path, extra):
    old = (server.root / WAV).read_bytes()
    new = new_version(old, extra) if extra >= 0 else new_version(old)[:extra]
    server.state["cut_after"][SERVED_WAV] = 50_000
    server.state["change_after_cut"][SERVED_WAV] = new
    dest = download_file(f"{server.url}/{WAV}", tmp_path / "a.wav", **FAST)
    assert gets(server.state, WAV) == [None, "bytes=50000-"]
    assert if_ranges(server.state, WAV) == [None, etag_of(old, "md5")]
    assert dest.read_bytes() == new


def test_server_ignoring_if_range_is_not_spliced(server, tmp_path):
    server.state["etag"] = "opaque"  # no MD5 to catch a splice at the end
    server.state["ignore_if_range"].add(SERVED_WAV)
    source, dest = server.root / WAV, tmp_path / "a.wav"
    cut_download(server, dest)
    new = new_version(source.read_bytes())
    source.write_bytes(new)
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    assert gets(server.state, WAV) == [None, "bytes=50000-", None]  # 206 with another ETag: restart
    assert dest.read_bytes() == new


@pytest.mark.parametrize("record", ["none", "other url", "other size", "no validator", "not json"])
def test_part_without_a_matching_record_restarts_from_zero(server, tmp_path, record):
    server.state["etag"] = "opaque"
    source, dest, url = server.root / WAV, tmp_path / "a.wav", f"{server.url}/{WAV}"
    part, size = Path(f"{dest}.part"), source.stat().st_size
    part.write_bytes(new_version(source.read_bytes())[:12345])  # from another version of the file
    etag = etag_of(source.read_bytes(), "opaque")
    if record == "other url":
        write_part_record(part, f"{url}?v=1", size, {"ETag": etag})
    elif record == "other size":
        write_part_record(part, url, size + 1, {"ETag": etag})
    elif record == "no validator":
        write_part_record(part, url, size, {"ETag": f"W/{etag}"})
    elif record == "not json":
        Path(f"{part}.json").write_text("{not json")
    download_file(url, dest, **FAST)
    assert gets(server.state, WAV) == [None]
    assert sha256(dest) == sha256(source)


# ------------------------------------------------ content: signatures and MD5
def test_captive_portal_page_is_detected_and_refetched(server, tmp_path):
    server.state["portal"][SERVED_HF5] = 1
    dest = download_file(f"{server.url}/{HF5}", tmp_path / "a.hf5", **FAST)
    assert len(gets(server.state, HF5)) == 2
    assert sha256(dest) == sha256(server.root / HF5)


def test_html_served_as_hf5_fails_clearly(server, tmp_path):
    (server.root / HF5).write_bytes(PORTAL_PAGE)  # its MD5 ETag matches: only the signature tells
    dest = tmp_path / "a.hf5"
    with pytest.raises(DownloadError) as info:
        download_file(f"{server.url}/{HF5}", dest, retries=1, **FAST)
    message = str(info.value)
    assert str(dest) in message and "not an HDF5 file" in message and "HTML page" in message
    assert "after 2 attempts" in message and "run the same command again" in message
    assert len(gets(server.state, HF5)) == 2
    assert list(tmp_path.iterdir()) == [tmp_path / "mirror"]  # nothing left behind


def test_same_size_corruption_is_caught_by_the_md5_etag(server, tmp_path):
    size = (server.root / HF5).stat().st_size
    server.state["corrupt"][SERVED_HF5] = [1, size // 2]
    dest = download_file(f"{server.url}/{HF5}", tmp_path / "a.hf5", **FAST)
    assert len(gets(server.state, HF5)) == 2
    assert sha256(dest) == sha256(server.root / HF5)


def test_persistent_corruption_fails_with_the_md5_mismatch(server, tmp_path):
    size = (server.root / HF5).stat().st_size
    server.state["corrupt"][SERVED_HF5] = [99, size // 2]
    dest = tmp_path / "a.hf5"
    with pytest.raises(DownloadError, match=r"a\.hf5: the downloaded file does not match the MD5 checksum"):
        download_file(f"{server.url}/{HF5}", dest, retries=1, **FAST)
    assert not dest.exists() and not Path(f"{dest}.part").exists()


@pytest.mark.parametrize("relpath", [HF5, WAV, f"derivative/TextGrids/{TEST_STORY}.TextGrid"])
def test_corrupted_signature_is_caught_without_md5(server, tmp_path, relpath):
    server.state["etag"] = "opaque"
    server.state["corrupt"][f"ds003020/{relpath}"] = [1, 0]
    dest = download_file(f"{server.url}/{relpath}", tmp_path / Path(relpath).name, **FAST)
    assert len(gets(server.state, relpath)) == 2
    assert sha256(dest) == sha256(server.root / relpath)


@pytest.mark.parametrize("etag_mode", ["multipart", "opaque", "weak", "kms"])
def test_etags_that_are_not_md5_are_not_checked_as_md5(server, tmp_path, etag_mode):
    server.state["etag"] = etag_mode
    source, dest = server.root / WAV, tmp_path / "a.wav"
    cut_download(server, dest)
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    validator = etag_of(source.read_bytes(), etag_mode)
    if etag_mode == "weak":  # a weak ETag may not go in If-Range, and Last-Modified alone is weak: a restart
        assert gets(server.state, WAV) == [None, None]
        validator = None
    assert if_ranges(server.state, WAV) == [None, validator]
    assert sha256(dest) == sha256(source)


def test_second_run_refetches_same_size_corrupted_files(server, tmp_path, capsys):
    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    broken = {HF5: b"\0" * (server.root / HF5).stat().st_size,
              "derivative/respdict.json": b"x" * (server.root / "derivative/respdict.json").stat().st_size}
    for relpath, data in broken.items():
        (tmp_path / relpath).write_bytes(data)
    server.state["requests"].clear()
    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    fetched = sorted(path for method, path, _, _ in server.state["requests"] if method == "GET")
    assert fetched == sorted(f"ds003020/{relpath}" for relpath in broken)
    for relpath in broken:
        assert sha256(tmp_path / relpath) == sha256(server.root / relpath)
    assert capsys.readouterr().out.count("already complete") == 9


TEXTGRID = 'File type = "ooTextFile"\nObject class = "TextGrid"\n'


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [("a.TextGrid", TEXTGRID.encode(), None),
     ("a.TextGrid", b"\xef\xbb\xbf" + TEXTGRID.encode(), None),
     ("a.TextGrid", TEXTGRID.encode("utf-16"), None),  # with a BOM
     ("a.TextGrid", TEXTGRID.encode("utf-16-be"), None),  # without one
     ("a.TextGrid", TEXTGRID.replace("ooTextFile", "ooTextFile short").replace("\n", "\r\n").encode(), None),
     ("a.TextGrid", PORTAL_PAGE, "is not a Praat TextGrid (it looks like an HTML page"),
     ("a.TextGrid", b'File type = "ooBinaryFile"', "is not a Praat TextGrid"),
     ("a.wav", b"RIFF\0\0\0\0WAVEfmt ", None),
     ("a.wav", b"RIFF\0\0\0\0AVI LIST", "is not a WAV file"),
     ("a.hf5", HDF5_SIGNATURE + b"\0" * 100, None),
     ("a.H5", b"\0" * 512 + HDF5_SIGNATURE + b"\0" * 100, None),  # after a user block
     ("a.hf5", b"\0" * 2000, "is not an HDF5 file (its first bytes are"),
     ("a.hf5", PORTAL_PAGE, "is not an HDF5 file (it looks like an HTML page"),
     ("a.json", b'{"a": 1}', None),
     ("a.json", b'{"a": 1', "is not valid JSON"),
     ("a.nii.gz", b"\x1f\x8b\x08\0", None),
     ("a.nii.gz", PORTAL_PAGE, "is not a gzip file"),
     ("a.bin", PORTAL_PAGE, "is not the expected file (it looks like an HTML page"),
     ("a.bin", b"\0\1\2", None),
     ("a.html", PORTAL_PAGE, None)],
)  # fmt: skip
def test_content_problem(tmp_path, name, data, problem):
    path = tmp_path / "file.part"
    path.write_bytes(data)
    found = content_problem(path, name)
    assert found is None if problem is None else found.startswith(problem), found


def test_md5_from_etag():
    md5 = "0123456789abcdef0123456789ABCDEF"
    assert md5_from_etag(f'"{md5}"') == md5.lower() and md5_from_etag(md5) == md5.lower()
    for etag in (f'"{md5}-3"', f'W/"{md5}"', '"v0123"', "", None):
        assert md5_from_etag(etag) is None


# ------------------------------------------------ sizes and places
@pytest.mark.parametrize("length", ["-1", None, "12abc"])
def test_bad_content_length_falls_back_to_content_range(server, tmp_path, length):
    server.state["bad_length"][SERVED_WAV] = length
    url, source = f"{server.url}/{WAV}", server.root / WAV
    assert remote_size(url, timeout=5) == source.stat().st_size
    assert gets(server.state, WAV) == ["bytes=0-0"]
    dest = download_file(url, tmp_path / "a.wav", **FAST)
    assert sha256(dest) == sha256(source)


@pytest.mark.parametrize("length", ["-1", None, "12abc"])
def test_no_valid_size_is_a_clear_error(server, tmp_path, length):
    server.state["bad_length"][SERVED_WAV] = length
    server.state["ignore_range"].add(SERVED_WAV)  # no Content-Range either
    url = f"{server.url}/{WAV}"
    with pytest.raises(DownloadError, match=f"did not report a valid size for {re.escape(url)}"):
        remote_size(url, timeout=5)
    with pytest.raises(DownloadError, match="did not report a valid size"):
        download_file(url, tmp_path / "a.wav", **FAST)
    assert not (tmp_path / "a.wav").exists()


@pytest.mark.parametrize("where", ["out", "parent"])
def test_out_that_is_a_file_is_a_clear_error(server, tmp_path, where):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    out = afile if where == "out" else afile / "ds003020"
    with pytest.raises(DownloadError, match=f"{re.escape(str(afile))} is a file, not a folder"):
        download_lebel(SUBJECT, N_TRAIN, out, base_url=server.url, **FAST)
    assert server.state["requests"] == [] and afile.read_text() == "not a folder"


def test_dest_that_is_a_folder_is_a_clear_error(server, tmp_path):
    (tmp_path / "a.wav").mkdir()
    with pytest.raises(DownloadError, match="it is a folder"):
        download_file(f"{server.url}/{WAV}", tmp_path / "a.wav", **FAST)


# ------------------------------------------------ the command line
@pytest.fixture(scope="module")
def cli():
    import importlib.util

    script = REPO_ROOT / "data_scripts" / "download_lebel.py"
    spec = importlib.util.spec_from_file_location("download_lebel_cli", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("case", "message"),
    [("out is a file", "is a file, not a folder"), ("bad subject", "Unknown subject"),
     ("stories out of range", "0 to 24"), ("stories not a number", "invalid int value"),
     ("negative retries", "must be 0 or more"), ("missing on server", "does not exist on the server"),
     ("no valid size", "did not report a valid size"), ("html served", "not an HDF5 file"),
     ("size not the registry's", f"{HF5} is {len(PORTAL_PAGE)} bytes on the server"),
     ("disk error", "No space left on device"), ("unknown option", "unrecognized arguments")],
)  # fmt: skip
def test_cli_expected_errors_print_one_line_and_exit_2(server, tmp_path, cli, capsys, monkeypatch, case, message):
    out = tmp_path / "out"
    args = {"--subject": SUBJECT, "--stories": "1", "--out": str(out), "--base-url": server.url, "--retries": "0"}
    extra = ["--no-progress"]
    if case == "out is a file":
        out.write_text("")
    elif case == "bad subject":
        args["--subject"] = "UTS9"
    elif case == "stories out of range":
        args["--stories"] = "99"
    elif case == "stories not a number":
        args["--stories"] = "two"
    elif case == "negative retries":
        args["--retries"] = "-1"
    elif case == "missing on server":
        server.state["missing"].add(SERVED_WAV)
    elif case == "no valid size":
        server.state["bad_length"][SERVED_WAV] = "-5"
        server.state["ignore_range"].add(SERVED_WAV)
    elif case == "html served":
        (server.root / HF5).write_bytes(PORTAL_PAGE)
        args["--registry"] = "none"  # else its size, not the registry's, stops the plan (the next case)
    elif case == "size not the registry's":
        (server.root / HF5).write_bytes(PORTAL_PAGE)
    elif case == "disk error":
        def full_disk(*a, **k):
            raise OSError(28, "No space left on device", str(out / HF5))
        monkeypatch.setattr(cli.download, "download_lebel", full_disk)
    elif case == "unknown option":
        extra.append("--fast")
    argv = [item for pair in args.items() for item in pair] + extra
    argparse_error = case in ("stories not a number", "negative retries", "unknown option")
    with pytest.raises(SystemExit) if argparse_error else nullcontext() as exit_info:
        code = cli.main(argv)
    code = exit_info.value.code if exit_info else code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_cli_lets_real_bugs_through_with_their_traceback(cli, monkeypatch, tmp_path):
    def buggy(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(cli.download, "download_lebel", buggy)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["--subject", SUBJECT, "--stories", "1", "--out", str(tmp_path)])


# ------------------------------------------------ registry of checksums, weak validators, full disk, one writer
def registered(server, relpath: str) -> dict:
    """``expected_size`` and ``md5`` of ``relpath`` in the mirror's planted registry, for download_file."""
    known = read_registry(server.registry)[relpath]
    return dict(expected_size=known.size, md5=known.md5)


def serve_other_version(server, relpath: str) -> tuple[bytes, float]:
    """Serve a same-size other version of ``relpath``; return the registered bytes and their mtime."""
    source = server.root / relpath
    good, mtime = source.read_bytes(), source.stat().st_mtime
    source.write_bytes(new_version(good))
    os.utime(source, (mtime, mtime))
    return good, mtime


@pytest.mark.parametrize("last_modified", ["changed", "unchanged"])
def test_last_modified_only_server_ignoring_if_range_does_not_splice_with_the_registry(server, tmp_path,
                                                                                       last_modified):
    """Fault: a server with Last-Modified and no ETag that ignores If-Range, the file changed (same size)
    between attempts: the resume would splice old[:k] + new[k:]. With the registry's MD5 the resume is
    allowed and the splice is refused: by the 206's new Last-Modified, else by the MD5 (a copy that
    kept the mtime), and the download restarts from zero."""
    server.state["etag"] = None
    server.state["ignore_if_range"].add(SERVED_WAV)
    good, mtime = serve_other_version(server, WAV)  # the mirror first serves another version ...
    dest, url, pinned = tmp_path / "a.wav", f"{server.url}/{WAV}", registered(server, WAV)
    server.state["cut_after"][SERVED_WAV] = 50_000
    with pytest.raises(DownloadError, match="was kept; run again to resume"):
        download_file(url, dest, retries=0, **pinned, **FAST)
    (server.root / WAV).write_bytes(good)  # ... then the registry's, same size
    shift = 10 if last_modified == "changed" else 0
    os.utime(server.root / WAV, (mtime + shift, mtime + shift))
    download_file(url, dest, **pinned, **FAST)
    assert gets(server.state, WAV) == [None, "bytes=50000-", None]
    assert dest.read_bytes() == good


@pytest.mark.parametrize("last_modified", ["changed", "unchanged"])
def test_last_modified_alone_is_not_resumed_without_the_registry(server, tmp_path, last_modified):
    """Fault: the same splice with no registry entry: Last-Modified is a weak validator that this
    server ignores, so the part is not resumed at all; the download restarts from zero."""
    server.state["etag"] = None
    server.state["ignore_if_range"].add(SERVED_WAV)
    source, dest = server.root / WAV, tmp_path / "a.wav"
    cut_download(server, dest)
    mtime = source.stat().st_mtime
    new = new_version(source.read_bytes())
    source.write_bytes(new)
    shift = 10 if last_modified == "changed" else 0
    os.utime(source, (mtime + shift, mtime + shift))
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    assert gets(server.state, WAV) == [None, None]
    assert dest.read_bytes() == new


@pytest.mark.parametrize("pinned", [False, True], ids=["server size", "registry"])
def test_short_200_with_a_non_md5_etag_is_not_accepted_truncated(server, tmp_path, pinned):
    """Fault: a whole-file 200 announcing and sending 1000 bytes fewer than the file has, with an ETag
    that is no MD5, was taken for a changed file and kept truncated. Its Content-Length is now held
    against the expected size (the server's HEAD, or the registry's)."""
    server.state["etag"] = "opaque"
    server.state["short_200"][SERVED_WAV] = 1000
    size, dest = (server.root / WAV).stat().st_size, tmp_path / "a.wav"
    options = registered(server, WAV) if pinned else {}
    with pytest.raises(DownloadError, match=f"the server sent {size - 1000} bytes of .*, not {size}"):
        download_file(f"{server.url}/{WAV}", dest, retries=1, **options, **FAST)
    assert len(gets(server.state, WAV)) == 2
    assert not dest.exists() and not Path(f"{dest}.part").exists()


def test_same_size_corruption_without_md5_etags_is_caught_by_the_registry(server, tmp_path):
    """Fault: a mirror whose ETags are no MD5 sends a file of the right size and signature with
    flipped bytes inside. Without a registry it is kept; with it, it is fetched again."""
    server.state["etag"] = "opaque"
    size = (server.root / HF5).stat().st_size
    server.state["corrupt"][SERVED_HF5] = [1, size // 2]
    unchecked = download_file(f"{server.url}/{HF5}", tmp_path / "unchecked.hf5", **FAST)
    assert sha256(unchecked) != sha256(server.root / HF5)  # what the registry is for
    server.state["corrupt"][SERVED_HF5] = [1, size // 2]
    server.state["requests"].clear()
    download_lebel(SUBJECT, N_TRAIN, tmp_path / "out", base_url=server.url, **FAST)
    assert len(gets(server.state, HF5)) == 2
    assert sha256(tmp_path / "out" / HF5) == sha256(server.root / HF5)


def test_persistent_corruption_names_the_file_and_both_md5s(server, tmp_path):
    """A registered file that keeps arriving with another MD5 is deleted, and the error names the
    file, the registry's MD5 and the received one."""
    server.state["etag"] = "opaque"
    size = (server.root / HF5).stat().st_size
    server.state["corrupt"][SERVED_HF5] = [99, size // 2]
    dest, pinned = tmp_path / "a.hf5", registered(server, HF5)
    data = bytearray((server.root / HF5).read_bytes())
    data[size // 2: size // 2 + 4] = bytes(b ^ 0xFF for b in data[size // 2: size // 2 + 4])
    got = hashlib.md5(bytes(data)).hexdigest()
    with pytest.raises(DownloadError) as info:
        download_file(f"{server.url}/{HF5}", dest, retries=1, **pinned, **FAST)
    message = str(info.value)
    assert str(dest) in message and f"of the registry (expected {pinned['md5']}, got {got})" in message
    assert not dest.exists() and not Path(f"{dest}.part").exists()


class FullDisk:
    """A binary file whose writes fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, handle, room: int):
        self.handle, self.room = handle, room

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.handle.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)


@pytest.mark.parametrize(("etag_mode", "kept"), [("md5", True), (None, False)])
def test_full_disk_names_the_file_and_keeps_a_resumable_part(server, tmp_path, monkeypatch, etag_mode, kept):
    """Fault: a full disk mid-download. The error says the disk is full and names the file; the part
    is kept to resume when its version can be checked (a strong ETag), else deleted to free space."""
    server.state["etag"] = etag_mode
    dest, url, source = tmp_path / "a.wav", f"{server.url}/{WAV}", server.root / WAV
    part = Path(f"{dest}.part")

    def full_disk_open(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        return FullDisk(handle, 30_000) if Path(path) == part else handle

    monkeypatch.setattr(transfer, "open", full_disk_open, raising=False)
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, **FAST)
    message = str(info.value)
    assert message.startswith(f"The disk is full: writing {dest} failed at 30000 of")
    assert ("kept in a.wav.part" if kept else "a.wav.part was deleted") in message
    assert part.exists() == kept and len(gets(server.state, WAV)) == 1  # no retry on a full disk
    monkeypatch.undo()  # space freed
    download_file(url, dest, **FAST)
    assert gets(server.state, WAV)[1:] == (["bytes=30000-"] if kept else [None])
    assert sha256(dest) == sha256(source)


HOLD_LOCK = """
import sys
from pathlib import Path
from bt_tutorial.dataset.transfer import download_lock
with download_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_two_downloads_into_one_folder_wait_or_fail_naming_the_holder(server, tmp_path, capsys):
    """Fault: two downloads into one --out at once wrote the same .part files. A second one now waits
    for the lock the first holds in the folder, or fails after its timeout naming the holder."""
    out = tmp_path / "out"
    out.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DownloadError, match=rf"Another download into .* is running \(process {holder.pid} on "):
            download_lebel(SUBJECT, N_TRAIN, out, base_url=server.url, lock_timeout=0.2, **FAST)
        assert not gets(server.state, WAV)  # nothing was downloaded while the other one held the folder
        threading.Timer(0.5, holder.stdin.close).start()  # the first download ends soon
        download_lebel(SUBJECT, N_TRAIN, out, base_url=server.url, **FAST)
    finally:
        holder.stdin.close() if not holder.stdin.closed else None
        holder.wait(timeout=30)
    assert f"(process {holder.pid} on" in capsys.readouterr().out.split("waiting for it to finish")[0]
    assert sha256(out / WAV) == sha256(server.root / WAV)
    assert (out / ".bt_download.lock").exists() and not (out / ".bt_download.lock.owner").exists()


def test_verify_refetches_a_complete_file_whose_md5_is_not_the_registrys(server, tmp_path):
    """--verify reads the files already complete: one damaged inside (size and signature intact)
    is skipped by a plain run and fetched again by a verifying one."""
    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    data = bytearray((tmp_path / HF5).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / HF5).write_bytes(bytes(data))
    server.state["requests"].clear()
    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    assert not [r for r in server.state["requests"] if r[0] == "GET"]
    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, verify=True, **FAST)
    assert [path for method, path, _, _ in server.state["requests"] if method == "GET"] == [SERVED_HF5]
    assert sha256(tmp_path / HF5) == sha256(server.root / HF5)
