"""tools/mutation_report.py: the per-module table of a mutmut run and the sorting of its survivors."""

import importlib
import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "mutation_report.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("mutation_report", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def diff(before: str, after: str) -> str:
    return f"--- a.py\n+++ a.py\n@@ -1 +1 @@\n-    {before}\n+    {after}\n"


def test_survivors_are_sorted_into_wording_equivalent_and_open():
    tool = load_tool()
    entry = {"function": "bt_tutorial.m.x_f", "change": "y = g(x, None)", "reason": "why"}
    assert tool.classify("bt_tutorial.m.x_f__mutmut_3", diff('raise ValueError("Bad x.")',
                                                           'raise ValueError("XXBad x.XX")'), [entry])[0] == "wording"
    assert tool.classify("bt_tutorial.m.x_f__mutmut_4", diff('warn("Bad x.")', 'warn("BAD X.")'), [])[0] == "wording"
    assert tool.classify("bt_tutorial.m.x_f__mutmut_5", diff("y = g(x, 1)", "y = g(x, None)"), [entry]) == (
        "equivalent", "why")
    assert tool.classify("bt_tutorial.m.x_h__mutmut_5", diff("y = g(x, 1)", "y = g(x, None)"), [entry])[0] == "open"
    assert tool.classify("bt_tutorial.m.x_f__mutmut_6", diff("y = a - b", "y = a + b"), [entry])[0] == "open"


def test_table_counts_and_shares_per_module():
    tool = load_tool()
    lines = ["    bt_tutorial.m.x_f__mutmut_1: killed", "    bt_tutorial.m.x_f__mutmut_2: survived",
             "    bt_tutorial.m.xǁCǁg__mutmut_1: timeout", "    bt_tutorial.m.x_f__mutmut_3: no tests",
             "    bt_tutorial.m.x_f__mutmut_4: survived"]
    counts, survivors = tool.tally(lines)
    assert dict(counts["bt_tutorial.m"]) == {"mutants": 5, "killed": 1, "survived": 2, "timeout": 1, "no tests": 1}
    assert survivors["bt_tutorial.m"] == ["bt_tutorial.m.x_f__mutmut_2", "bt_tutorial.m.x_f__mutmut_4"]
    counts["bt_tutorial.m"].update(equivalent=1, open=1)
    row = tool.table(counts).splitlines()[-1]
    assert row == "| `bt_tutorial.m` | 5 | 1 | 1 | 0 | 1 | 1 | 1 | 50% | 67% |"


def test_every_listed_equivalent_names_a_function_of_the_package():
    """A renamed function would leave its entries matching nothing."""
    tool = load_tool()
    entries = tool.load_equivalents()
    assert entries
    for entry in entries:
        module_name, _, function = entry["function"].rpartition(".")
        module = importlib.import_module(module_name)
        if function.startswith("xǁ"):
            _, cls, method = function.split("ǁ")
            assert hasattr(getattr(module, cls), method), entry
        else:
            assert hasattr(module, function.removeprefix("x_")), entry
        assert entry["change"].strip() and entry["reason"].strip(), entry


def test_each_module_run_names_existing_files_and_narrows_the_config():
    import glob
    import tomllib

    spec = importlib.util.spec_from_file_location("mutation_by_module", TOOL.with_name("mutation_by_module.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = TOOL.parents[1]
    for name, (files, tests) in tool.MODULES.items():
        assert all(glob.glob(str(root / f.partition("::")[0])) for f in files + tests), name
        for test in tests:  # a test named by node id must exist in its file
            path, _, function = test.partition("::")
            assert not function or f"def {function}(" in (root / path).read_text(), test
    config = tomllib.loads(tool.narrowed((root / "pyproject.toml").read_text(), ["a.py"], ["tests/t.py"]))
    assert config["tool"]["mutmut"]["only_mutate"] == ["a.py"]
    assert config["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == ["tests/t.py"]
    whole = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    assert {f for files, _ in tool.MODULES.values() for f in files} == set(whole)  # every module has its run


def test_equivalents_are_read_from_the_main_file_and_one_file_per_module(tmp_path):
    """Catches a module's own list of equivalents left unread."""
    tool = load_tool()
    entry = '[[equivalent]]\nfunction = "bt_tutorial.{m}.x_f"\nchange = "x = 1"\nreason = "r"\n'
    (tmp_path / "mutation_equivalents.toml").write_text(entry.format(m="a"))
    (tmp_path / "mutation_equivalents_b.toml").write_text(entry.format(m="b"))
    (tmp_path / "other.toml").write_text(entry.format(m="c"))
    got = tool.load_equivalents(tmp_path / "mutation_equivalents.toml")
    assert [e["function"] for e in got] == ["bt_tutorial.a.x_f", "bt_tutorial.b.x_f"]
