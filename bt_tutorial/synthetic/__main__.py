"""Write the synthetic twin of ds003020 (the offline dataset of the demo profile).

    python -m bt_tutorial.synthetic                  # into the data home, once
    python -m bt_tutorial.synthetic --out DIR --seed 1

Without --out the twin goes to the demo profile's data home ($BT_DATA or
~/.cache/bt_tutorial) and is reused if it is already there. A twin left half-written
by Ctrl-C is written afresh by the same command.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from bt_tutorial.command_line import run_command
from bt_tutorial.config import get_config
from bt_tutorial.synthetic.twin import (
    GENERATOR_VERSION,
    TwinSpec,
    _info_path,
    ensure_twin,
    make_synthetic_twin,
    remove_partial_twin,
)


def main(argv=None) -> int:
    """Run the command: 0 when the twin is ready, 2 with one line on a bad folder or seed, 130 on Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m bt_tutorial.synthetic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="output folder (default: the demo data home, reused if present)")
    parser.add_argument("--seed", type=int, default=0, help="random seed, a non-negative integer (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    again = " ".join(["python -m bt_tutorial.synthetic", *(sys.argv[1:] if argv is None else argv)])
    return run_command(lambda: write_twin(args.out, TwinSpec(seed=args.seed), progress=not args.no_progress),
                       interrupted=f"interrupted: the synthetic twin is not finished; `{again}` writes it afresh.")


def write_twin(out, spec, progress: bool = True) -> int:
    """Write the twin into ``out`` (a new or empty folder) or into the demo data home (``out`` None).

    A twin in ``out`` whose writing was interrupted is deleted and written again; a finished
    twin of the same spec is kept.
    """
    t0 = time.perf_counter()
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        if remove_partial_twin(out):
            print(f"{out} holds a twin whose writing was interrupted: writing it again.")
        elif not _same_twin(out, spec):
            raise FileExistsError(f"{out} exists and is not an empty folder; choose a new folder.")
    if out is None:
        root = ensure_twin(get_config(profile="demo").dataset_root, spec, progress=progress)
    else:
        root = out if _same_twin(out, spec) else make_synthetic_twin(out, spec, progress=progress)
    print(f"synthetic twin ready at {root} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _same_twin(out: Path, spec) -> bool:
    """Whether ``out`` holds a finished twin of ``spec`` written by this generator version."""
    try:
        saved = json.loads(_info_path(out).read_text())
    except (OSError, ValueError):
        return False
    return saved.get("spec") == spec.as_json() and saved.get("version") == GENERATOR_VERSION


if __name__ == "__main__":
    sys.exit(main())
