"""Write student notebooks: the chapters with every exercise solution removed.

    python tools/make_student.py [--out student]

Cells tagged ``solution`` are replaced by a cell that raises an "exercise" error, so
a student notebook runs up to the first unsolved exercise and says what to do.
The book keeps the solutions (hidden in dropdowns).
"""

import argparse
import sys
from pathlib import Path

import jupytext
from nbformat.v4 import new_code_cell

BOOK = Path(__file__).resolve().parents[1] / "book"
PLACEHOLDER = ('raise NotImplementedError("Exercise: write your solution in this cell '
               '(see the exercise above), then run it.")')


def studentize(notebook):
    """Replace the solution cells of a notebook; return it and how many were replaced."""
    cells, n = [], 0
    for cell in notebook.cells:
        if "solution" in cell.metadata.get("tags", []):
            cells.append(new_code_cell(PLACEHOLDER, metadata={"tags": ["exercise"]}))
            n += 1
        else:
            cells.append(cell)
    notebook.cells = cells
    return notebook, n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("student"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for chapter in sorted(BOOK.glob("[0-9][0-9]_*.md")):
        notebook, n = studentize(jupytext.read(chapter))
        jupytext.write(notebook, args.out / f"{chapter.stem}.ipynb")
        print(f"{chapter.stem}: {n} exercise solutions removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
