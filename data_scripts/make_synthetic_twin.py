"""Write the synthetic twin of ds003020 (the offline dataset of the demo profile).

A thin wrapper of ``python -m bt_tutorial.synthetic`` (the same options and exit codes),
kept for checkouts; a pip install has only the module::

    python data_scripts/make_synthetic_twin.py                 # into the data home, once
    python data_scripts/make_synthetic_twin.py --out DIR --seed 1
"""

import sys
from pathlib import Path

try:
    import bt_tutorial  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bt_tutorial.synthetic import __main__ as cli

main = cli.main

if __name__ == "__main__":
    sys.exit(main())
