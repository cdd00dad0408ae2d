"""The package's shape: stages in the book's order, no cycles, one home per name, light imports.

Imports inside functions count too: they hide a cycle from Python, not from a reader.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bt_tutorial"
# the book's order: a module may import its own stage and the stages before it, never a later one
STAGES = ("_stack", "_local_http", "config", "command_line", "stats", "dataset", "alignment", "lowlevel", "downstream",
          "synthetic", "profiles", "brain_tuning", "comparison", "plotting")
# modules that import nothing from the package
LEAVES = {"_stack", "_local_http", "config", "stats", "dataset.stimulus", "dataset.timing", "alignment.noise_ceiling",
          "dataset.surface", "alignment.whisper_ct2", "lowlevel.phones", "dataset.file_formats", "dataset.stories",
          "dataset.layout", "command_line", "alignment.encoding_inputs"}
# below every module: warnings at the user's line; a leaf may import it
UTILITIES = {"_stack"}
# the modules outside synthetic/ that may import it: profiles generates the demo data on first use;
# the chapters 4-7 workflow measures the demo on the twin's own ROI masks and tasks
TWIN_GATEWAYS = {"profiles", "comparison.workflow"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set) -> set:
    """Package modules that ``name`` imports, as names relative to the package."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("bt_tutorial"):
                stem = node.module[len("bt_tutorial"):].lstrip(".")
            else:
                continue
            targets = [f"bt_tutorial.{stem}".rstrip(".")] if node.module else []  # not the parent of `from . import x`
            targets += [f"bt_tutorial.{stem}.{a.name}".replace("..", ".") for a in node.names]
        else:
            continue
        for t in targets:
            if t == "bt_tutorial" or t.startswith("bt_tutorial."):
                rel = t[len("bt_tutorial"):].lstrip(".")
                if rel in known and rel != name:
                    out.add(rel)
    return out


def import_graph() -> dict:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def find_cycle(graph: dict):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


GRAPH = import_graph()


def test_the_graph_sees_relative_absolute_and_function_level_imports():
    assert "brain_tuning.settings" in GRAPH["brain_tuning.loop"]  # from .settings import ...
    assert "synthetic.twin" in GRAPH["profiles"]  # imported inside a function
    assert "config" in GRAPH["synthetic.twin"]  # from ..config, inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None, f"import cycle: {' -> '.join(find_cycle(GRAPH))}"


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_nothing_from_the_package(leaf):
    assert GRAPH[leaf] - UTILITIES == set(), f"{leaf} imports {sorted(GRAPH[leaf])}"


def test_only_the_gateways_import_the_twin():
    offenders = {name: sorted(t for t in targets if t.split(".")[0] == "synthetic")
                 for name, targets in GRAPH.items()
                 if name.split(".")[0] != "synthetic" and name not in TWIN_GATEWAYS}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_module_is_on_the_package_map():
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    missing = [name for name in GRAPH if name and name.count(".") == 0 and f"``{name}``" not in doc]
    assert missing == [], f"bt_tutorial/__init__.py does not describe {missing}"


FULL_NAMES = {("bt_tutorial." + name).rstrip("."): path for name, path in modules().items()}


def stage(module: str) -> int:
    return STAGES.index(module.split(".")[0]) if module else -1


def test_every_module_belongs_to_a_stage():
    assert {m.split(".")[0] for m in GRAPH if m} == set(STAGES)


def test_no_module_imports_a_later_stage():
    upward = [f"{name} -> {target}" for name, targets in GRAPH.items() for target in targets
              if stage(target) > stage(name)]
    assert upward == []


def test_the_package_imports_itself_by_absolute_names():
    relative = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in PACKAGE.rglob("*.py")
                for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom) and node.level]
    assert relative == []


def defined_names(path: Path) -> set:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


CHAPTER_IMPORT = re.compile(r"^\s*from (bt_tutorial[\w.]*) import (?:\(([^)]*)\)|([^\n(#]+))", re.M)


def package_imports(path: Path):
    """``(line, module, names)`` of every ``from bt_tutorial... import`` in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bt_tutorial":
            yield node.lineno, node.module, [a.name for a in node.names]


def imports_everywhere():
    """``(where, module, name)`` of every name imported from the package, in its code, tests and chapters."""
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
                 *(ROOT / "tools").glob("*.py"), *(ROOT / "data_scripts").glob("*.py")]:
        for line, module, names in package_imports(path):
            for name in names:
                yield f"{path.relative_to(ROOT)}:{line}", module, name
    for path in sorted((ROOT / "book").glob("[0-9]*.md")):
        for match in CHAPTER_IMPORT.finditer(path.read_text()):
            names = (match[2] or match[3]).replace("\n", " ").split(",")
            for name in filter(None, (n.split(" as ")[0].strip() for n in names)):
                yield path.name, match[1], name


def test_each_name_is_imported_from_the_module_that_defines_it():
    elsewhere = []
    for where, module, name in imports_everywhere():
        if f"{module}.{name}" in FULL_NAMES:
            continue
        if module not in FULL_NAMES:
            elsewhere.append(f"{where}: no module {module}")
        elif name not in defined_names(FULL_NAMES[module]):
            elsewhere.append(f"{where}: {name} is not defined in {module}")
    assert elsewhere == []


def test_a_package_init_defines_nothing_but_its_map():
    for name, path in FULL_NAMES.items():
        if path.name == "__init__.py":
            body = ast.parse(path.read_text()).body
            assert all(isinstance(node, (ast.Expr, ast.Assign)) for node in body), name
            assert not any(isinstance(node, ast.Assign) and node.targets[0].id != "__version__" for node in body)


@pytest.mark.parametrize("module, heavy", [
    ("bt_tutorial.brain_tuning", ("torch", "himalaya", "transformers")),
    ("bt_tutorial.downstream", ("torch", "himalaya", "transformers")),
    ("bt_tutorial.downstream.tasks", ("torch", "himalaya", "transformers", "bt_tutorial.dataset.download")),
    ("bt_tutorial.stats", ("torch", "himalaya", "pandas", "matplotlib")),
    ("bt_tutorial.brain_tuning.settings", ("torch", "himalaya", "transformers")),
])
def test_light_modules_load_no_heavy_library(module, heavy):
    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


# module constants whose name is the same in several modules on purpose: each module's own version
SHARED_NAMES = {"CACHE_VERSION", "GENERATOR_VERSION", "main", "parse_args"}


def test_no_two_modules_define_the_same_public_name():
    """Catches a name defined twice (one value in two homes, or two meanings under one name)."""
    homes = {}
    for name, path in FULL_NAMES.items():
        for defined in defined_names(path):
            if not defined.startswith("_") and defined not in SHARED_NAMES:
                homes.setdefault(defined, []).append(name)
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}
