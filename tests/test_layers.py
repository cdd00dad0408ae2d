"""The package's import graph: no cycles, leaves at the bottom, the twin on top.

Imports inside functions count too: they hide a cycle from Python, not from a reader.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bt_tutorial"
# modules that import nothing from the package
LEAVES = {"_stack", "config", "stimulus", "timing", "noise_ceiling", "surface", "whisper_ct2",
          "lowlevel.phones", "file_formats", "stories", "layout", "command_line", "encoding_inputs"}
# below every module: warnings at the user's line; a leaf may import it
UTILITIES = {"_stack"}
# the one module outside synthetic/ that may import it: it generates the demo data on first use
TWIN_GATEWAY = "profiles"


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
    assert "synthetic" in GRAPH["profiles"]  # imported inside a function
    assert "config" in GRAPH["synthetic.twin"]  # from ..config, inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None, f"import cycle: {' -> '.join(find_cycle(GRAPH))}"


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_nothing_from_the_package(leaf):
    assert GRAPH[leaf] - UTILITIES == set(), f"{leaf} imports {sorted(GRAPH[leaf])}"


def test_only_the_gateway_imports_the_twin():
    offenders = {name: sorted(t for t in targets if t.split(".")[0] == "synthetic")
                 for name, targets in GRAPH.items()
                 if name.split(".")[0] != "synthetic" and name != TWIN_GATEWAY}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_module_is_on_the_package_map():
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    missing = [name for name in GRAPH if name and name.count(".") == 0 and f"``{name}``" not in doc]
    assert missing == [], f"bt_tutorial/__init__.py does not describe {missing}"
