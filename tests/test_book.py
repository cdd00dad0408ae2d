"""The book: chapters paired with their Colab notebooks, toc, Colab setup cell."""

import re
from pathlib import Path

import jupytext
import pytest
import yaml

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.md"))


def cells(path):
    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_there_are_chapters():
    assert CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_and_ipynb_are_in_sync(chapter):
    ipynb = chapter.with_suffix(".ipynb")
    assert ipynb.is_file(), f"missing {ipynb.name}: run `make sync`"
    assert cells(chapter) == cells(ipynb), f"{ipynb.name} is out of date: run `make sync`"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_objectives_runtime_and_a_colab_cell(chapter):
    text = chapter.read_text()
    assert "Learning objectives" in text and "Estimated runtime" in text
    code = [src for kind, src, _ in cells(chapter) if kind == "code"]
    assert any('"google.colab" in sys.modules' in src for src in code[:2])


def test_toc_lists_existing_files_and_every_chapter():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]] + [entry["file"] for entry in toc["chapters"]]
    for name in files:
        assert (BOOK / f"{name}.md").is_file(), name
    assert {c.stem for c in CHAPTERS} <= set(files)


def test_colab_launch_button_and_ipynb_excluded():
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert "**.ipynb" in config["exclude_patterns"]
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True


def test_student_notebooks_have_no_solutions(tmp_path):
    import subprocess
    import sys

    script = BOOK.parent / "tools" / "make_student.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    for chapter in CHAPTERS:
        student = jupytext.read(tmp_path / f"{chapter.stem}.ipynb")
        original = [src for kind, src, tags in cells(chapter) if "solution" in tags]
        sources = [c.source for c in student.cells]
        assert original and not set(original) & set(sources)
        exercises = [s for s in sources if "NotImplementedError" in s]
        assert len(exercises) == len(original)
        with pytest.raises(NotImplementedError, match="Exercise"):
            exec(exercises[0], {})


def chapter_imports(chapter) -> dict:
    """``bt_tutorial`` names a chapter imports: name -> module."""
    import ast

    names = {}
    for kind, src, _ in cells(chapter):
        if kind != "code":
            continue
        tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bt_tutorial"):
                names.update({a.name: node.module for a in node.names})
    return names


def test_chapter_imports_are_read_from_the_code_cells():
    names = chapter_imports(BOOK / "05_semantic_roi_alignment.md")
    assert names["choose_layer"] == "bt_tutorial.comparison.effects" and names["open_dataset"] == "bt_tutorial.profiles"


def names_used_in_code(source: str) -> set:
    """Names a module's code uses (variables, attributes, imported names), not its comments or strings."""
    import ast

    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.alias):
            used.add(node.asname or node.name.split(".")[-1])
    return used


def test_names_in_comments_and_strings_do_not_count():
    used = names_used_in_code("import numpy as np\nfrom m import a_function\nx = m.helper  # other_name\ny = 'third'\n")
    assert {"np", "a_function", "helper", "m", "x"} <= used and not {"other_name", "third"} & used


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_package_name_a_chapter_imports_is_tested(chapter):
    used = set().union(*(names_used_in_code(p.read_text()) for p in Path(__file__).parent.glob("test_*.py")
                         if p.name != "test_book.py"))
    untested = sorted(f"{module}.{name}" for name, module in chapter_imports(chapter).items()
                      if not name.isupper() and name not in used)
    assert untested == [], f"{chapter.name} uses names no test's code uses: {untested}"


def chapter_method_calls(chapter) -> set:
    """Attribute names a chapter's code calls, ``x.load_responses(...)`` -> ``load_responses``."""
    import ast

    called = set()
    for kind, src, _ in cells(chapter):
        if kind == "code":
            tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
            called |= {node.func.attr for node in ast.walk(tree)
                       if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    return called


def package_methods() -> dict:
    """Public methods of the package's public classes: name -> [function]."""
    import importlib
    import inspect
    import pkgutil

    import bt_tutorial

    methods = {}
    for info in pkgutil.walk_packages(bt_tutorial.__path__, "bt_tutorial."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and not cls.__name__.startswith("_"):
                for name, member in vars(cls).items():
                    member = member.fget if isinstance(member, property) else member
                    if inspect.isfunction(member) and not name.startswith("_"):
                        methods.setdefault(name, []).append(member)
    return methods


def body_lines(function) -> tuple:
    """(file, line numbers of the function's body): its code's lines without the ``def`` line."""
    import inspect

    code = inspect.unwrap(function).__code__
    return code.co_filename, {line for *_, line in code.co_lines() if line and line != code.co_firstlineno}


def chapter_callables(chapter) -> dict:
    """What a chapter runs of the package: ``module.name`` -> candidate functions (any one may be it).

    Imported functions, imported classes' methods, and methods called by name on any object
    (``dataset.load_responses(...)`` -> every public class's ``load_responses``).
    """
    import importlib
    import inspect

    found = {}
    for name, module in chapter_imports(chapter).items():
        obj = getattr(importlib.import_module(module), name)
        if inspect.isfunction(obj):
            found[f"{module}.{name}"] = [obj]
        elif inspect.isclass(obj):
            found[f"{module}.{name}"] = [f for f in vars(obj).values() if inspect.isfunction(f)]
    methods = package_methods()
    for name in chapter_method_calls(chapter) & set(methods):
        found[f"<object>.{name}"] = methods[name]
    return {key: functions for key, functions in found.items() if functions}


def test_chapter_callables_include_imports_and_method_calls():
    found = chapter_callables(BOOK / "01_setup_and_data.md")
    assert "bt_tutorial.profiles.open_dataset" in found and "<object>.load_responses" in found
    load_responses = found["<object>.load_responses"][0]
    file, lines = body_lines(load_responses)
    assert file.endswith("reader.py") and min(lines) > load_responses.__code__.co_firstlineno


@pytest.mark.run_last
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_function_a_chapter_calls_is_executed_by_a_test(chapter, request):
    """Coverage of the whole suite: each function a chapter calls has run at least one line of its body."""
    import coverage

    cov = coverage.Coverage.current()
    if not request.config.getoption("--chapter-coverage"):
        pytest.skip("needs the whole suite under coverage: make test")
    assert cov is not None, "--chapter-coverage needs `python -m coverage run -m pytest` (make test does this)"
    data = cov.get_data()
    missed = []
    for key, functions in chapter_callables(chapter).items():
        ran = False
        for function in functions:
            file, lines = body_lines(function)
            ran = ran or bool(lines & set(data.lines(file) or ()))
        if not ran:
            missed.append(key)
    assert missed == [], f"{chapter.name} calls functions no test runs: {sorted(missed)}"


def test_demo_feature_settings_quoted_in_the_docs_match_the_config():
    from bt_tutorial.config import get_config

    params = get_config(profile="demo").feature_params
    quoted = f"{params.context:g} s windows every {params.stride:g} s"
    root = BOOK.parent
    for doc in (root / "README.md", BOOK / "instructors.md"):
        text = doc.read_text()
        assert quoted in text, f"{doc.name} does not say '{quoted}'"
        for stride in re.findall(r"windows every\s+(\d+(?:\.\d+)?) s", text):
            assert float(stride) in (params.stride, 0.1), f"{doc.name} quotes a stride of {stride} s"


def test_paper_page_names_existing_tests():
    """Catches a "same as the authors" row of book/paper_and_book.md whose test was renamed or removed."""
    page = (BOOK / "paper_and_book.md").read_text()
    named = set(re.findall(r"`tests/(test_\w+\.py)::(test_\w+)`", page))
    assert len(named) >= 15
    rows = [line.split(" | ") for line in page.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) >= 20 and all(len(row) == 5 for row in rows)
    same_untested = [row[0] for row in rows if "the same" in row[2] and "tests/" not in row[4]]
    assert same_untested == []  # every "the same" names its test
    missing = []
    for file, test in sorted(named):
        source = (BOOK.parent / "tests" / file).read_text()
        if not re.search(rf"^def {test}\(", source, re.MULTILINE):
            missing.append(f"{file}::{test}")
    assert missing == []
