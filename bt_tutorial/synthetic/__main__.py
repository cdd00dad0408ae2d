"""Write the synthetic twin of ds003020 (the offline dataset of the demo profile).

    python -m bt_tutorial.synthetic                  # into the data home, once
    python -m bt_tutorial.synthetic --out DIR --seed 1

Without --out the twin goes to the demo profile's data home ($BT_DATA or
~/.cache/bt_tutorial) and is reused if it is already there.
"""

import argparse
import sys
import time
from pathlib import Path

from ..command_line import run_command
from ..config import get_config
from . import TwinSpec, ensure_twin, make_synthetic_twin


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bt_tutorial.synthetic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="output folder (default: the demo data home, reused if present)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    return run_command(lambda: write_twin(args.out, TwinSpec(seed=args.seed), progress=not args.no_progress))


def write_twin(out, spec, progress: bool = True) -> int:
    """Write the twin into ``out`` (a new or empty folder) or into the demo data home (``out`` None)."""
    t0 = time.perf_counter()
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose a new folder.")
    if out is None:
        root = ensure_twin(get_config(profile="demo").dataset_root, spec, progress=progress)
    else:
        root = make_synthetic_twin(out, spec, progress=progress)
    print(f"synthetic twin ready at {root} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
