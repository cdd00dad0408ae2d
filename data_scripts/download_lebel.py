"""Download part of the LeBel et al. (2023) dataset (OpenNeuro ds003020).

A thin wrapper of ``python -m bt_tutorial.dataset.download`` (the same options and exit codes),
kept for checkouts; a pip install has only the module. Example::

    python data_scripts/download_lebel.py --subject UTS03 --stories 4 --out ~/data/ds003020 --dry-run
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from bt_tutorial.dataset import download
except ImportError:  # Run from a checkout without installing the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bt_tutorial.dataset import download

parse_args = download.parse_args
main = download.main

if __name__ == "__main__":
    sys.exit(main())
