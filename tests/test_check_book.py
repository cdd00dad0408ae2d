"""tools/check_book.py: no line wider than a code box, no script from another host, code linked to the API."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_book", ROOT / "tools" / "check_book.py")
check_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_book)
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_code_line_of_a_chapter_is_wider_than_its_box(chapter):
    wide = check_book.wide_code_lines(chapter)
    assert not wide, f"{chapter.name}: lines wider than {check_book.WIDTH} characters: {wide[:5]}"


def test_wide_code_lines_reads_code_cells_only(tmp_path):
    chapter = tmp_path / "01_x.md"
    text = "x" * 100
    chapter.write_text(f"# Title {text}\n\n```{{code-cell}} ipython3\n---\nmystnb:\n  figure:\n    caption: {text}\n---\n"
                       f"short = 1\nlong = '{text}'\n```\n\n{text}\n")
    assert check_book.wide_code_lines(chapter) == [(10, f"long = '{text}'")]


def _notebook(tmp_path, outputs):
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": outputs}]}))
    return path


def test_wide_output_lines_count_printed_text_and_plain_results_but_not_tables(tmp_path):
    long = "y" * 81
    notebook = _notebook(tmp_path, [
        {"output_type": "stream", "name": "stdout", "text": ["ok\n", f"{long}\n"]},
        {"output_type": "execute_result", "data": {"text/plain": long}},
        {"output_type": "execute_result", "data": {"text/plain": long, "text/html": "<table/>"}},
        {"output_type": "stream", "name": "stderr", "text": f"\x1b[31m{'z' * 80}\x1b[0m\n"},
        {"output_type": "stream", "name": "stderr", "text": f"{long}\r{'w' * 10}\n"}])
    assert check_book.wide_output_lines(notebook) == [(0, long), (0, long)]


def test_a_warning_is_measured_without_the_location_python_puts_before_it(tmp_path):
    where = "/tmp/ipykernel_19565/1693879.py:6: "
    short, wide = f"{where}RuntimeWarning: {'s' * 60}", f"{where}RuntimeWarning: {'s' * 65}"
    notebook = _notebook(tmp_path, [{"output_type": "stream", "name": "stderr",
                                     "text": f"{short}\n{wide}\n{where}{'n' * 60}\n"}])
    assert check_book.wide_output_lines(notebook) == [(0, wide), (0, f"{where}{'n' * 60}")]


def test_external_scripts_finds_a_cdn_but_not_bundled_files(tmp_path):
    (tmp_path / "a.html").write_text('<script src="_static/mathjax/tex-chtml.js"></script>')
    (tmp_path / "b.html").write_text('<script defer="defer" src="https://cdn.example.org/mathjax.js"></script>')
    (tmp_path / "c.html").write_text('<script src="//cdn.example.org/x.js"></script>')
    assert check_book.external_scripts(tmp_path) == {"b.html": ["https://cdn.example.org/mathjax.js"],
                                                     "c.html": ["//cdn.example.org/x.js"]}


def test_make_book_checks_the_build():
    recipe = (ROOT / "Makefile").read_text().split("\nbook:", 1)[1].split("\n\n", 1)[0]
    lines = [line for line in recipe.splitlines() if line.strip()]
    build = next(i for i, line in enumerate(lines) if "jupyter-book build" in line)
    assert any("tools/check_book.py" in line for line in lines[build + 1:])


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_figure_of_a_chapter_has_alt_text(chapter):
    """A figure's alt text is what a screen reader says; without it, it reads the file name."""
    import re

    import jupytext

    for cell in jupytext.read(chapter).cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and re.search(r"\bplot_\w+\(", cell.source) \
                and not cell.source.lstrip().startswith(("import", "from")) and "remove-output" not in tags:
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 10, f"{chapter.name}: a figure cell without alt text:\n{cell.source[:120]}"


def test_imported_names_reads_one_line_and_parenthesised_imports_and_skips_constants(tmp_path):
    chapter = tmp_path / "09_x.md"
    chapter.write_text("```{code-cell} ipython3\nfrom bt_tutorial.alignment.encoding import fit_encoding_model\n"
                       "from bt_tutorial.comparison.effects import (alignment_effects,\n    paired_comparison)\n"
                       "from bt_tutorial.lowlevel.impact import LOWLEVEL_ALPHAS, lowlevel_impact\nimport numpy as np\n```\n"
                       "Text: from bt_tutorial.dataset.rois import not_code\n")
    assert check_book.imported_names(chapter) == {
        "bt_tutorial.alignment.encoding.fit_encoding_model", "bt_tutorial.comparison.effects.alignment_effects",
        "bt_tutorial.comparison.effects.paired_comparison", "bt_tutorial.lowlevel.impact.lowlevel_impact"}


def test_unlinked_names_lists_each_imported_name_its_page_does_not_link(tmp_path):
    chapter = tmp_path / "09_x.md"
    chapter.write_text("```{code-cell} ipython3\nfrom bt_tutorial.synthetic.truth import load_ground_truth\n"
                       "from bt_tutorial.dataset.reader import LebelDataset\n```\n")
    page = tmp_path / "09_x.html"
    link = ('<a class="sphinx-codeautolink-a" href="autoapi/bt_tutorial/synthetic/truth/index.html'
            '#bt_tutorial.synthetic.truth.load_ground_truth" title="x">load_ground_truth</a>')
    page.write_text(link + '<span class="n">LebelDataset</span>')
    assert check_book.unlinked_names(chapter, page) == ["bt_tutorial.dataset.reader.LebelDataset"]
    page.write_text(link.replace("sphinx-codeautolink-a", "reference external"))
    assert check_book.unlinked_names(chapter, page) == ["bt_tutorial.dataset.reader.LebelDataset",
                                                        "bt_tutorial.synthetic.truth.load_ground_truth"]


def test_the_book_links_its_code_cells_to_the_api_reference():
    config = (ROOT / "book" / "_config.yml").read_text()
    assert "sphinx_codeautolink" in config
    book_extra = re.search(r"^book = \[(.*)\]", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert "sphinx-codeautolink" in book_extra
