"""Build the Glasser HCP-MMP1 ROI masks of one ds003020 subject (downloads its inputs).

A thin wrapper of ``python -m bt_tutorial.dataset.roi_build``, which works without this checkout::

    python data_scripts/build_roi_masks.py --subject UTS03 --data ~/data/ds003020
"""

import sys
from pathlib import Path

try:
    from bt_tutorial.dataset.roi_build import main
except ImportError:  # Run from a checkout without installing the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bt_tutorial.dataset.roi_build import main

if __name__ == "__main__":
    sys.exit(main())
