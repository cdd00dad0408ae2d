"""GPU check of brain-tuning speed and memory: a thin wrapper of ``python -m bt_tutorial.brain_tuning.benchmark``.

The benchmark lives in the package (:mod:`bt_tutorial.brain_tuning.benchmark`) so that it
runs where only the package is installed (Colab); see there for what it measures.

    PYTHONPATH=. python benchmarks/gpu_tuning.py [--samples 256] [--batch-size 16] [--json out.json]
    PYTHONPATH=. python benchmarks/gpu_tuning.py --tiny      # a CPU smoke test
"""

from bt_tutorial.brain_tuning.benchmark import main

if __name__ == "__main__":
    main()
