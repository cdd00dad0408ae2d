"""``python -m bt_tutorial.brain_tuning``: the brain-tuning command line (:mod:`bt_tutorial.brain_tuning.cli`)."""

import sys

from bt_tutorial.brain_tuning.cli import main

if __name__ == "__main__":
    sys.exit(main())
