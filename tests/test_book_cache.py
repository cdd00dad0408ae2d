"""The book's execution cache is cleared when the package's source changes."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("book_cache", ROOT / "tools" / "book_cache.py")
book_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book_cache)


def _tree(tmp_path):
    package, build = tmp_path / "pkg", tmp_path / "_build"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("X = 1\n")
    (package / "sub" / "b.py").write_text("Y = 2\n")
    (build / book_cache.CACHE).mkdir(parents=True)
    (build / book_cache.CACHE / "outputs").write_text("old numbers")
    return package, build


def test_a_changed_function_clears_the_cache_and_an_unchanged_package_keeps_it(tmp_path):
    """Catches a build showing the old code's numbers after a package change (the chapters unchanged)."""
    package, build = _tree(tmp_path)
    assert book_cache.refresh(build, package)  # no stamp yet: the cache's origin is unknown
    (build / book_cache.CACHE).mkdir()
    (build / book_cache.CACHE / "outputs").write_text("numbers of this code")
    assert not book_cache.refresh(build, package)
    assert (build / book_cache.CACHE / "outputs").read_text() == "numbers of this code"
    (package / "sub" / "b.py").write_text("Y = 3\n")
    assert book_cache.refresh(build, package)
    assert not (build / book_cache.CACHE).exists()


def test_the_hash_sees_renames_and_ignores_bytecode(tmp_path):
    package, _ = _tree(tmp_path)
    before = book_cache.source_hash(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\x00")
    assert book_cache.source_hash(package) == before
    (package / "a.py").rename(package / "c.py")
    assert book_cache.source_hash(package) != before


def test_extra_files_count(tmp_path):
    package, _ = _tree(tmp_path)
    extra = tmp_path / "pyproject.toml"
    extra.write_text("[project]\n")
    before = book_cache.source_hash(package, (extra,))
    extra.write_text("[project]\nname = 'x'\n")
    assert book_cache.source_hash(package, (extra,)) != before


def test_make_book_refreshes_the_cache_before_it_builds():
    recipe = (ROOT / "Makefile").read_text().split("\nbook:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()]
    refresh = next(i for i, line in enumerate(lines) if "tools/book_cache.py" in line)
    build = next(i for i, line in enumerate(lines) if "jupyter-book build" in line)
    assert refresh < build
