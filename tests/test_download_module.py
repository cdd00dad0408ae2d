"""The downloader as a module (``python -m bt_tutorial.dataset.download``), the chapter's call, and
``derivative/`` versus ``derivatives/`` on the server (issue 12, items 5 and 9).

Served by the miniature mirror of ``test_download.py`` on 127.0.0.1; no network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_download import FAST, N_TRAIN, SUBJECT, MirrorHandler, build_mirror, no_proxy, plant_registry  # noqa: F401

from bt_tutorial._local_http import serving
from bt_tutorial.config import LEBEL_SUBJECTS, get_config
from bt_tutorial.dataset import download
from bt_tutorial.dataset.download import download_lebel, download_subject, lebel_file_list
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.stories import PAPER_TRAIN_STORIES, TEST_STORY, VALIDATION_STORY
from bt_tutorial.dataset.transfer import DownloadError

REPO_ROOT = Path(__file__).resolve().parents[1]


def serve(root: Path):
    state = dict(requests=[], cut_after={}, missing=set(), short_by={}, ignore_range=set(), no_head=False,
                 etag="md5", ignore_if_range=set(), portal={}, corrupt={}, bad_length={}, change_after_cut={},
                 short_200={})
    handler = type("Handler", (MirrorHandler,), {"root": root, "state": state})
    return handler, state


@pytest.fixture(params=["derivative", "derivatives"])
def server(request, tmp_path, tiny_twin, monkeypatch):
    """A mirror whose folder of derivatives is singular (snapshot 3.1.0) or plural (newer snapshots),
    with its registry of checksums planted as the default."""
    root = tmp_path / "mirror"
    build_mirror(tiny_twin, root / "ds003020", SUBJECT, [TEST_STORY, VALIDATION_STORY, *PAPER_TRAIN_STORIES[:N_TRAIN]])
    if request.param == "derivatives":
        (root / "ds003020" / "derivative").rename(root / "ds003020" / "derivatives")
    plant_registry(root / "ds003020", root / "ds003020_md5.csv", monkeypatch)
    handler, state = serve(root)
    with serving(handler) as base:
        yield SimpleNamespace(url=f"{base}/ds003020", state=state, root=root / "ds003020", derivative=request.param)


def test_either_folder_is_probed_downloaded_and_read(server, tmp_path):
    out = tmp_path / "out"
    paths = download_lebel(SUBJECT, N_TRAIN, out, base_url=server.url, **FAST)
    assert paths == [out / p for p in lebel_file_list(SUBJECT, N_TRAIN, server.derivative)]
    assert (out / server.derivative / "respdict.json").is_file()
    ds = LebelDataset(out)
    assert ds.derivative == out / server.derivative
    assert ds.split(SUBJECT)["train"] == list(PAPER_TRAIN_STORIES[:N_TRAIN])
    assert ds.load_responses(SUBJECT, TEST_STORY).shape[0] == ds.respdict[TEST_STORY] - 20
    heads = [path for method, path, _, _ in server.state["requests"] if method == "HEAD"]
    probed = ["ds003020/derivative/respdict.json"] + (["ds003020/derivatives/respdict.json"]
                                                      if server.derivative == "derivatives" else [])
    assert heads[:len(probed)] == probed and heads.count(probed[-1]) == 1  # the probe's size is reused


def test_a_local_tree_keeps_its_folder_name(server, tmp_path):
    out = tmp_path / "out"
    other = "derivative" if server.derivative == "derivatives" else "derivatives"
    (out / other).mkdir(parents=True)
    download_lebel(SUBJECT, N_TRAIN, out, base_url=server.url, **FAST)
    assert not (out / server.derivative).exists() or other == server.derivative
    assert (out / other / "preprocessed_data" / SUBJECT / f"{TEST_STORY}.hf5").is_file()
    assert LebelDataset(out).split(SUBJECT)["test"] == TEST_STORY


def test_neither_folder_on_the_server_is_one_clear_error(server, tmp_path, capsys):
    shutil.rmtree(server.root / server.derivative)
    with pytest.raises(DownloadError, match=r"Neither .*/derivative/respdict.json nor .*/derivatives/respdict"):
        download_lebel(SUBJECT, N_TRAIN, tmp_path, base_url=server.url, **FAST)
    code = download.main(["--subject", SUBJECT, "--stories", "1", "--out", str(tmp_path), "--base-url",
                          server.url, "--retries", "0", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: Neither") and err.count("\n") == 1


def test_reader_refuses_a_tree_with_both_folders_holding_a_respdict(tmp_path):
    for name in ("derivative", "derivatives"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "respdict.json").write_text("{}")
    with pytest.raises(ValueError, match="both derivative/ and derivatives/"):
        LebelDataset(tmp_path)
    (tmp_path / "derivative" / "respdict.json").unlink()  # an empty leftover folder: the other one is used
    assert LebelDataset(tmp_path).derivative == tmp_path / "derivatives"


def test_module_entry_point_runs_without_the_scripts_folder(server, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bt_tutorial.dataset.download", "--subject", SUBJECT, "--stories", "1",
               "--out", str(out), "--base-url", server.url, "--dry-run"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "total, 11 files" in result.stdout and not out.exists()
    bad = subprocess.run(command[:4] + ["UTS9"] + command[5:], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: Unknown subject") and bad.stderr.count("\n") == 1


def test_the_wrapper_script_is_the_module(server, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("download_lebel_cli", REPO_ROOT / "data_scripts" / "download_lebel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main is download.main and module.download is download


def test_download_subject_follows_the_config(server, tmp_path, monkeypatch):
    monkeypatch.setenv("BT_SUBJECT", SUBJECT)
    config = get_config(profile="full", data_home=tmp_path, progress=False)
    paths = download_subject(config, N_TRAIN, base_url=server.url)
    assert paths[0] == config.dataset_root / server.derivative / "respdict.json"
    assert LebelDataset(config.dataset_root).stories(SUBJECT) == sorted([TEST_STORY, VALIDATION_STORY,
                                                                          *PAPER_TRAIN_STORIES[:N_TRAIN]])
    custom = config.with_(train_stories=(PAPER_TRAIN_STORIES[0], "souls"))
    plan = download_subject(custom, 1, base_url=server.url, dry_run=True)
    assert any(item.relpath.endswith(f"{PAPER_TRAIN_STORIES[0]}.wav") for item in plan)
    with pytest.raises(ValueError, match="demo profile reads the synthetic twin"):
        download_subject(get_config(profile="demo", data_home=tmp_path), 1, base_url=server.url)


def test_a_mirror_set_in_the_environment_replaces_openneuro(server, tmp_path, monkeypatch):
    monkeypatch.delenv("BT_DATASET_URL", raising=False)
    assert download.dataset_url() == download.DEFAULT_BASE_URL
    monkeypatch.setenv("BT_DATASET_URL", server.url)
    assert download.dataset_url() == server.url
    config = get_config(profile="full", data_home=tmp_path, subject=SUBJECT, progress=False)
    download_subject(config, 1)  # no base_url: the chapter's call
    assert (config.dataset_root / server.derivative / "respdict.json").is_file()
    assert download.parse_args(["--subject", SUBJECT, "--stories", "1"]).base_url == server.url


# ------------------------------------------------ the registry of checksums and the script that makes it
REGISTRY_COMMIT = "f74eb2bc95b827d359de338f9086743824d2d906"  # ds003020 snapshot 3.1.0


def test_shipped_registry_covers_every_planned_file_and_agrees_with_the_tree_listing():
    """The registry installed with the package has every file the downloader and the ROI build can ask
    for (UTS01-UTS08, the paper's stories), from snapshot 3.1.0, and agrees with the separately made
    listing tests/data/ds003020_tree.tsv where both have a file."""
    import tomllib

    from bt_tutorial.dataset.file_formats import REGISTRY_FILE, read_registry, registry_key
    from bt_tutorial.dataset.roi_build import plan_sources

    registry = read_registry()
    assert REGISTRY_COMMIT in REGISTRY_FILE.read_text().splitlines()[0] and len(registry) == 620
    for subject in LEBEL_SUBJECTS:
        planned = set(lebel_file_list(subject, len(PAPER_TRAIN_STORIES)))
        planned |= {src.relpath for name, src in plan_sources(subject).items() if name.startswith(("wm", "pia", "sph",
                                                                                                     "xfm", "mask"))}
        assert planned <= set(registry), sorted(planned - set(registry))[:3]
    lines = (REPO_ROOT / "tests" / "data" / "ds003020_tree.tsv").read_text().splitlines()[1:]
    tree = {path: (int(size), md5) for path, size, md5, _ in (line.split("\t") for line in lines)}
    common = set(tree) & set(registry)
    assert len(common) > 500 and all(tuple(registry[path]) == tree[path] for path in common)
    assert registry_key("derivatives/respdict.json") == "derivative/respdict.json"
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "data/*.csv" in package_data["bt_tutorial"]  # installed, not only in a checkout


@pytest.mark.parametrize("row", ["a.wav,12", "a.wav,-1,0123456789abcdef0123456789abcdef", "a.wav,1,xyz"])
def test_a_malformed_registry_row_names_the_file_and_line(tmp_path, row):
    from bt_tutorial.dataset.file_formats import read_registry

    path = tmp_path / "md5.csv"
    path.write_text(f"# comment\npath,size,md5\n{row}\n")
    with pytest.raises(ValueError, match=f"{path}, line 3: expected path,size,md5"):
        read_registry(path)


def test_make_md5_registry_reads_annex_keys_and_git_blobs(tmp_path):
    """The script takes size and MD5 from an annexed file's symlink target (MD5E key) and from the
    blob of a file kept in git, and keeps only paths the project can download."""
    repo = tmp_path / "ds003020"
    key_md5 = "0123456789abcdef0123456789abcdef"
    annexed = {f"stimuli/{TEST_STORY}.wav": f"MD5E-s1234--{key_md5}.wav",
               f"derivative/preprocessed_data/{SUBJECT}/{TEST_STORY}.hf5": f"MD5E-s99--{key_md5}.hf5",
               f"derivative/preprocessed_data/UTS09/{TEST_STORY}.hf5": f"MD5E-s5--{key_md5}.hf5"}  # not downloadable
    for relpath, key in annexed.items():
        (repo / relpath).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(f"../.git/annex/objects/Xx/Yy/{key}/{key}", repo / relpath)
    respdict = b'{"a": 1}\n'
    (repo / "derivative" / "respdict.json").write_bytes(respdict)
    (repo / "README").write_text("not downloaded\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "tree"], check=True)
    out = tmp_path / "md5.csv"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "data_scripts" / "make_md5_registry.py"), str(repo),
                             "--rev", "HEAD", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# ds003020 at commit ") and lines[1] == "path,size,md5"
    assert lines[2:] == [f"derivative/preprocessed_data/{SUBJECT}/{TEST_STORY}.hf5,99,{key_md5}",
                         f"derivative/respdict.json,{len(respdict)},{hashlib.md5(respdict).hexdigest()}",
                         f"stimuli/{TEST_STORY}.wav,1234,{key_md5}"]
