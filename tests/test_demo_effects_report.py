"""benchmarks/demo_effects.py: the effect (c) tables over subjects that RESULTS.md quotes."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import demo_effects  # noqa: E402


def _run(subject, rows):
    pairs = [{"task": task, "comparison": comparison, "difference": d, "low": d - 0.01, "high": d + 0.01,
              "verdict": verdict} for task, comparison, d, verdict in rows]
    return {"variant": "lag-ridge", "subject": subject, "measures": {"downstream": {"pairs": pairs}}}


def test_downstream_report_gives_each_subject_then_the_mean_range_and_counts_over_subjects():
    """Catches a mean over the wrong rows, a comparison put in another's column, or verdicts miscounted."""
    t, c, p = demo_effects.DOWNSTREAM_PAIRS
    runs = [_run("UTS01", [("topic", t, 0.09, "higher"), ("topic", c, 0.03, "higher"), ("topic", p, 0.06, "higher")]),
            _run("UTS02", [("topic", t, 0.01, "no clear difference"), ("topic", c, -0.03, "lower"),
                           ("topic", p, 0.04, "higher")])]
    lines = demo_effects.downstream_report(runs)
    assert lines[2] == ("| lag-ridge | UTS01 | topic | +0.090 [+0.080, +0.100] ↑ | +0.030 [+0.020, +0.040] ↑ | "
                        "+0.060 [+0.050, +0.070] ↑ |")
    assert lines[3].startswith("| lag-ridge | UTS02 | topic | +0.010 [+0.000, +0.020] | -0.030")
    assert lines[-1] == ("| lag-ridge | topic | 2 | +0.050 (+0.010, +0.090) 1↑ 0↓ | +0.000 (-0.030, +0.030) 1↑ 1↓ | "
                         "+0.050 (+0.040, +0.060) 2↑ 0↓ |")
