"""Mutation testing one module at a time, each against its own tests (``make mutation``).

    python tools/mutation_by_module.py                    # every module below, in order
    python tools/mutation_by_module.py timing rois        # some of them
    python tools/mutation_by_module.py --work /tmp/mut    # where the copies go (kept: a rerun resumes)

For each module, a copy of the committed repository is made under ``--work``, its
``[tool.mutmut]`` is narrowed to that module and its test files, and ``mutmut run`` runs
there; then ``tools/mutation_report.py`` prints the module's table rows and open survivors.
Running a module against its own tests (not the whole suite) keeps each mutant to seconds:
with the whole selection, every mutant of a function the training tests touch reran them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUNING_UNITS = ["tests/test_tuning.py", "tests/test_runs.py"]


def _units(*names) -> list:
    """Unit tests of ``tests/test_tuning.py`` by name: its end-to-end runs would retrain for every mutant."""
    return [f"tests/test_tuning.py::test_{name}" for name in names]


MODULES = {  # module -> (files mutated, test files)
    "timing": (["bt_tutorial/dataset/timing.py"], ["tests/test_timing.py", "tests/test_memory_precision.py"]),
    "noise_ceiling": (["bt_tutorial/alignment/noise_ceiling.py"], ["tests/test_noise_ceiling.py"]),
    "rois": (["bt_tutorial/dataset/rois.py"], ["tests/test_rois.py"]),
    "effects": (["bt_tutorial/comparison/effects.py"], ["tests/test_effects.py"]),
    "stimulus": (["bt_tutorial/dataset/stimulus.py"], ["tests/test_stimulus_textgrids.py", "tests/test_bad_data.py"]),
    "encoding": (["bt_tutorial/alignment/encoding.py"], ["tests/test_encoding.py"]),
    "lowlevel": (["bt_tutorial/lowlevel/*"], ["tests/test_lowlevel.py"]),
    "alignment": (["bt_tutorial/alignment/layers.py"], ["tests/test_alignment.py"]),
    "features": (["bt_tutorial/alignment/features.py"], ["tests/test_features.py", "tests/test_memory_precision.py"]),
    "probes": (["bt_tutorial/downstream/probes.py"], ["tests/test_downstream.py"]),
    "schedule": (["bt_tutorial/brain_tuning/schedule.py"], _units("optimizer_steps_and_schedule",
                                                                   "paper_recipe_learning_rates_per_epoch")),
    "samples": (["bt_tutorial/brain_tuning/samples.py"], _units(
        "tr_windows_end_with_their_tr_and_pad_short_audio", "controls_shuffle_targets_but_keep_shapes",
        "lagged_windows_end_lag_trs_earlier", "controls_follow_the_authors_rules", "tr_windows_default_to_five_trs",
        "other_story_top_up_draws_every_row_and_a_single_story_is_refused",
        "chunk_permute_passes_the_distance_and_falls_back_to_a_random_order",
        "a_story_with_other_voxel_columns_is_refused", "brain_tune_passes_every_setting_to_the_data_and_the_loop",
        "prepare_tuning_data_builds_what_the_recipe_says",
        "tuning_data_indexes_every_row_of_every_story_and_batches_them",
        "the_chunk_control_permutes_at_random_unless_a_distance_is_given")),
    "settings": (["bt_tutorial/brain_tuning/settings.py"], _units(
        "profile_settings_and_run_folders", "command_line_presets_and_overrides",
        "tuned_model_dir_names_the_brain_run_and_each_control", "tuning_config_accepts_every_bound_it_documents",
        "tuning_config_refuses_each_value_past_a_bound_and_names_it") + [
        "tests/test_runs.py::test_settings_are_checked_up_front", "tests/test_runs.py::test_a_negative_seed_is_refused_with_the_flag",
        "tests/test_command_line.py"]),
    "loop": (["bt_tutorial/brain_tuning/loop.py"], TUNING_UNITS),
}


def toml_list(items) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def narrowed(pyproject: str, files: list, tests: list) -> str:
    """``pyproject.toml`` with ``only_mutate`` and the test selection of ``[tool.mutmut]`` replaced."""
    for key, value in (("only_mutate", files), ("pytest_add_cli_args_test_selection", tests)):
        pyproject, n = re.subn(rf"^{key} = \[.*?\]$", f"{key} = {toml_list(value)}", pyproject,
                               flags=re.MULTILINE | re.DOTALL)
        if n != 1:
            raise SystemExit(f"pyproject.toml: no single `{key} = [...]` in [tool.mutmut]")
    return pyproject


def prepare(work: Path, name: str) -> Path:
    copy = work / name
    if not (copy / ".git").is_dir():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(copy)], check=True)
    else:  # a later commit: new or changed functions get new mutants, the rest keep their results
        subprocess.run(["git", "checkout", "-q", "pyproject.toml", "tools"], cwd=copy, check=True)
        subprocess.run(["git", "clean", "-fdq", "tools"], cwd=copy, check=True)  # equivalents copied last time
        subprocess.run(["git", "pull", "-q", "--ff-only"], cwd=copy, check=True)
    files, tests = MODULES[name]
    config = copy / "pyproject.toml"
    config.write_text(narrowed((ROOT / "pyproject.toml").read_text(), files, tests))
    for listed in (ROOT / "tools").glob("mutation_equivalents*.toml"):
        (copy / "tools" / listed.name).write_text(listed.read_text())
    return copy


def _survivors(bin_dir: Path, copy: Path) -> list:
    if not (copy / "mutants").is_dir():
        return []
    out = subprocess.run([str(bin_dir / "mutmut"), "results"], cwd=copy, capture_output=True, text=True).stdout
    return [line.split(":")[0].strip() for line in out.splitlines() if line.strip().endswith(": survived")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--work", type=Path, default=ROOT / "mutants-by-module")
    parser.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2)))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {', '.join(MODULES)}")
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in args.modules or list(MODULES):
        copy = prepare(args.work, name)
        print(f"== {name}: {' '.join(MODULES[name][0])} against {' '.join(MODULES[name][1])}", flush=True)
        mutmut = [str(bin_dir / "mutmut"), "run", "--max-children", str(args.max_children)]
        survivors = _survivors(bin_dir, copy)  # of an earlier run: tried again against today's tests
        subprocess.run(mutmut, cwd=copy, env=env, stdout=subprocess.DEVNULL, check=False)
        if survivors:
            # mutmut maps tests to functions once; without this, tests added since never run on the survivors
            (copy / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
            subprocess.run(mutmut + survivors, cwd=copy, env=env, stdout=subprocess.DEVNULL, check=False)
        subprocess.run([sys.executable, "tools/mutation_report.py", "--survivors"], cwd=copy, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
