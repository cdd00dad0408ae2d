"""Check the built book as a reader meets it (``make book`` runs it after the build).

    python tools/check_book.py                 # book/ and book/_build of this repository

1. **No line cut at the right edge.** Every code line of a chapter (its MyST ``.md``) and
   every executed output line (``_build/jupyter_execute/*.ipynb``: printed text, and plain
   text results without an HTML form) is at most ``WIDTH`` characters. At a 1280px window a
   code or output box holds 83 characters (``book/_static/custom.css`` sets 13px code).
   A warning's first line is measured without the ``file:line:`` Python puts before it,
   which names the executing machine's temporary file, not anything the book wrote.
2. **Readable offline.** No page of ``_build/html`` loads a script from another host
   (MathJax is bundled by sphinx-mathjax-offline).
3. **Code that leads to the reference.** Every function and class a chapter imports from
   ``bt_tutorial`` is a link to its API page (sphinx-codeautolink). A name left unlinked
   means the extension could not read the cell, or the API reference lacks the name.

Exits 1 and lists every offending line or page.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 80
_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
_SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc=[\"']((?:https?:)?//[^\"']+)", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WARNING_LOCATION = re.compile(r"^\S+:\d+: (?=\w*Warning: )")
_IMPORT = re.compile(r"^from (bt_tutorial[\w.]*) import (?:\(([^)]*)\)|([^\n]*))", re.M)


def wide_code_lines(chapter: Path, width: int = WIDTH) -> list:
    """``(line number, line)`` of every code-cell line of a MyST chapter wider than ``width``."""
    text = chapter.read_text()
    out = []
    for match in _CODE_CELL.finditer(text):
        first = text.count("\n", 0, match.start(1)) + 1
        lines = match.group(1).splitlines()
        if lines and lines[0] == "---":  # the cell's options (captions, alt text) are not shown as code
            skip = lines.index("---", 1) + 1
            first, lines = first + skip, lines[skip:]
        out += [(first + i, line) for i, line in enumerate(lines) if len(line) > width]
    return out


def _output_text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    data = output.get("data", {})
    if "text/html" in data or "image/png" in data:  # shown as a table or a figure, not as text
        return ""
    return "".join(data.get("text/plain", ""))


def wide_output_lines(notebook: Path, width: int = WIDTH) -> list:
    """``(cell number, line)`` of every executed output line wider than ``width``."""
    cells = json.loads(notebook.read_text())["cells"]
    out = []
    for k, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            for line in _ANSI.sub("", _output_text(output)).split("\n"):
                shown = _WARNING_LOCATION.sub("", line.split("\r")[-1])  # a progress bar redraws its line
                if len(shown) > width:
                    out.append((k, line))
    return out


def external_scripts(html_dir: Path) -> dict:
    """Pages of the built book that load a script from another host: page name -> addresses."""
    found = {}
    for page in sorted(Path(html_dir).glob("*.html")):
        sources = _SCRIPT_SRC.findall(page.read_text(errors="replace"))
        if sources:
            found[page.name] = sources
    return found


def imported_names(chapter: Path) -> set:
    """``module.name`` of every function and class a chapter's code cells import from ``bt_tutorial``.

    Constants (upper-case names) are left out: a tuple carries no ``__module__`` that
    sphinx-codeautolink could link.
    """
    names = set()
    for cell in _CODE_CELL.findall(Path(chapter).read_text()):
        for module, in_parentheses, on_one_line in _IMPORT.findall(cell):
            listed = re.sub(r"#[^\n]*", "", in_parentheses or on_one_line)
            names |= {f"{module}.{name.strip()}" for name in listed.split(",")
                      if name.strip() and not name.strip().isupper()}
    return names


def unlinked_names(chapter: Path, page: Path) -> list:
    """Names a chapter imports from the package that its built page does not link to the API reference.

    A link counts by the name's last part (the anchor is the module that defines it).
    """
    html = Path(page).read_text(errors="replace")
    anchors = re.findall(r'class="sphinx-codeautolink-a" href="[^"#]*#([\w.]+)"', html)
    anchors += re.findall(r'href="[^"#]*#([\w.]+)"[^>]*class="sphinx-codeautolink-a"', html)
    linked = {anchor.rsplit(".", 1)[-1] for anchor in anchors if anchor.startswith("bt_tutorial.")}
    return sorted(name for name in imported_names(chapter) if name.rsplit(".", 1)[-1] not in linked)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=ROOT / "book")
    parser.add_argument("--width", type=int, default=WIDTH)
    args = parser.parse_args(argv)
    problems = []
    for chapter in sorted(args.book.glob("[0-9]*.md")):
        problems += [f"{chapter.name}:{n}: code line of {len(line)} characters: {line.strip()[:60]}"
                     for n, line in wide_code_lines(chapter, args.width)]
    executed = sorted((args.book / "_build" / "jupyter_execute").glob("[0-9]*.ipynb"))
    if not executed:
        problems.append(f"no executed chapters in {args.book / '_build' / 'jupyter_execute'}: build the book first")
    for notebook in executed:
        problems += [f"{notebook.name}, cell {k}: output line of {len(line)} characters: {line.strip()[:60]}"
                     for k, line in wide_output_lines(notebook, args.width)]
    for page, sources in external_scripts(args.book / "_build" / "html").items():
        problems.append(f"{page} loads scripts from other hosts (not readable offline): {sources}")
    for chapter in sorted(args.book.glob("[0-9]*.md")):
        page = args.book / "_build" / "html" / f"{chapter.stem}.html"
        missing = unlinked_names(chapter, page) if page.is_file() else [f"(no page {page.name})"]
        if missing:
            problems.append(f"{chapter.name}: imports not linked to the API reference: {missing}")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problems" if problems else f"every line within {args.width} characters; no script "
          "from another host; every imported name linked to the API reference")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
