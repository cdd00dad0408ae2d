"""bt_tutorial._stack: a warning names the first line outside the package, however deep it is raised."""

import warnings

import pytest

from bt_tutorial._stack import warn_at_caller


def test_a_direct_call_warns_at_the_calling_line():
    with pytest.warns(RuntimeWarning, match="here") as caught:
        warn_at_caller("here", RuntimeWarning)
    assert caught[0].filename == __file__


def test_calls_through_the_package_warn_at_the_users_line(tmp_path):
    """Catches a fixed stacklevel: read_textgrid is one level above load_transcript's call of it."""
    import numpy as np

    from bt_tutorial.dataset.stimulus import Intervals, StimulusFileError, _replace_phones, dictionary_phones

    words = Intervals(("hello",), np.array([0.0]), np.array([1.2]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        phones = _replace_phones(words, StimulusFileError("x.TextGrid: no phones."), "dictionary")
    assert caught[0].filename == __file__ and "words are kept" in str(caught[0].message)
    assert phones.labels == dictionary_phones(words).labels


def test_the_packages_files_and_mutmuts_trampoline_count_as_inside():
    """Catches `make mutation` pointing warnings at mutmut's trampoline, which failed its clean test pass."""
    import os

    import bt_tutorial.dataset.stimulus
    from bt_tutorial._stack import _inside

    assert _inside(bt_tutorial.dataset.stimulus.__file__)
    assert _inside(os.path.join(os.sep, "venv", "site-packages", "mutmut", "mutation", "trampoline.py"))
    assert not _inside(__file__)


def test_no_module_of_the_package_warns_with_a_fixed_stacklevel():
    """Catches a warning raised with warnings.warn: its stacklevel is right at one depth only."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "bt_tutorial"
    fixed = [f"{path.relative_to(package)}:{node.lineno}" for path in package.rglob("*.py") if path.name != "_stack.py"
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "warnings.warn"]
    assert fixed == []


def test_the_noise_ceilings_warning_names_the_users_line():
    """Catches a warning that points inside the package (cc_max calls signal_power, which warns)."""
    import numpy as np

    from bt_tutorial.alignment.noise_ceiling import cc_max

    repeats = np.random.default_rng(0).standard_normal((3, 40, 4))
    repeats[0, 5, 1] = np.nan
    with pytest.warns(UserWarning, match="non-finite values") as caught:
        cc_max(repeats)
    assert caught[0].filename == __file__
