"""Tests of the ds003020 downloader against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

from bt_tutorial.download import (
    PAPER_TRAIN_STORIES,
    TEST_STORY,
    VALIDATION_STORY,
    DownloadError,
    download_file,
    download_lebel,
    format_size,
    lebel_file_list,
    remote_size,
)

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


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serve files under ``root`` with HEAD, GET and single byte ranges.

    ``state`` switches on misbehaviours: ``cut_after`` {path: n} cuts the first
    GET of a path after n bytes, ``missing`` answers 404, ``short_by`` {path: n}
    never sends the last n bytes of a file while announcing them, ``ignore_range``
    answers 200 to range requests and ``no_head`` answers 405 to HEAD. Every
    request is recorded in ``requests`` as (method, path, Range header).
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
        state, range_header = self.state, self.headers.get("Range")
        state["requests"].append((self.command, relpath, range_header))
        path = self.root / relpath
        if relpath in state["missing"] or not path.is_file():
            return self.send_error(404)
        if not send_body and state["no_head"]:
            return self.send_error(405)
        data = path.read_bytes()
        first, last, status = 0, len(data) - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header or "")
        if match and relpath not in state["ignore_range"]:
            first, status = int(match.group(1)), 206
            last = min(int(match.group(2) or last), last)
            if first >= len(data):
                return self.send_error(416)
        self.send_response(status)
        self.send_header("Content-Length", str(last + 1 - first))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.end_headers()
        if send_body:
            self.wfile.write(self._body(relpath, data, first, last))

    def _body(self, relpath: str, data: bytes, first: int, last: int) -> bytes:
        end = min(last + 1, len(data) - self.state["short_by"].get(relpath, 0))
        body = data[first:end]
        if relpath in self.state["cut_after"]:
            body = body[: self.state["cut_after"].pop(relpath)]
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


@pytest.fixture
def server(mirror):
    """Serve ``mirror`` on 127.0.0.1; yield its dataset URL, state and dataset root."""
    state = dict(requests=[], cut_after={}, missing=set(), short_by={}, ignore_range=set(), no_head=False)
    handler = type("Handler", (MirrorHandler,), {"root": mirror, "state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/ds003020"
    yield SimpleNamespace(url=url, state=state, root=mirror / "ds003020")
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gets(state: dict, relpath: str) -> list:
    """Range headers of the GET requests made for ``ds003020/<relpath>``."""
    served = f"ds003020/{relpath}"
    return [rng for method, path, rng in state["requests"] if method == "GET" and path == served]


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
    assert [method for method, _, _ in server.state["requests"]] == ["HEAD"] * 11
    output = capsys.readouterr().out
    assert "already complete" in output and "0 B left to download" in output


def test_existing_part_file_is_resumed(server, tmp_path):
    source = server.root / WAV
    dest = tmp_path / "a.wav"
    Path(f"{dest}.part").write_bytes(source.read_bytes()[:12345])
    download_file(f"{server.url}/{WAV}", dest, source.stat().st_size, **FAST)
    assert gets(server.state, WAV) == ["bytes=12345-"]
    assert sha256(dest) == sha256(source)
    assert not Path(f"{dest}.part").exists()


def test_cut_connection_is_retried_and_resumed(server, tmp_path):
    server.state["cut_after"][SERVED_WAV] = 50_000
    dest = tmp_path / "a.wav"
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    assert gets(server.state, WAV) == [None, "bytes=50000-"]
    assert sha256(dest) == sha256(server.root / WAV)


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.state["ignore_range"].add(SERVED_WAV)
    dest = tmp_path / "a.wav"
    Path(f"{dest}.part").write_bytes(b"stale bytes")
    download_file(f"{server.url}/{WAV}", dest, **FAST)
    assert gets(server.state, WAV) == ["bytes=11-"]
    assert sha256(dest) == sha256(server.root / WAV)


def test_empty_file(server, tmp_path):
    (server.root / "empty.txt").write_bytes(b"")
    dest = download_file(f"{server.url}/empty.txt", tmp_path / "empty.txt", **FAST)
    assert dest.read_bytes() == b""


def test_missing_file_fails_at_once(server, tmp_path):
    server.state["missing"].add(SERVED_WAV)
    url = f"{server.url}/{WAV}"
    start = time.monotonic()
    with pytest.raises(DownloadError, match=re.escape(url)) as info:
        download_file(url, tmp_path / "a.wav", 1000, retries=5, backoff=10, timeout=5, progress=False)
    assert time.monotonic() - start < 2
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
    assert result.returncode == 1
    assert bad_url in result.stderr and "Traceback" not in result.stderr


def test_downloaded_tree_reads_with_the_dataset_reader(server, tmp_path):
    import nibabel as nib
    import numpy as np

    from bt_tutorial.data import LebelDataset

    download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    ds = LebelDataset(tmp_path)
    split = ds.split(SUBJECT)
    assert split["train"] == list(PAPER_TRAIN_STORIES[:N_TRAIN])
    y = ds.load_responses(SUBJECT, split["train"][0])
    assert y.shape[0] == ds.respdict[split["train"][0]] - 20
    mask = np.asarray(nib.load(str(ds.mask_path(SUBJECT))).dataobj)
    assert ds.voxel_columns(SUBJECT).size == int(mask.sum())
