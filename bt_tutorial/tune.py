"""``python -m bt_tutorial.tune``: the brain-tuning command line (:mod:`bt_tutorial.brain_tuning.cli`)."""

import sys

from .brain_tuning.cli import main

if __name__ == "__main__":
    sys.exit(main())
