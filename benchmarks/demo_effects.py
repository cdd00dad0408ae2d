"""Does the demo show the paper's effects, and how robustly? Tuned and control runs, then the effects.

For each subject and tuning recipe ("variant"), this trains the brain-tuned model and its
shuffled-fMRI control exactly as chapter 4 does (demo profile sizes), then measures with the
package's workflow of chapters 4-7 (:mod:`bt_tutorial.comparison.workflow`):

- alignment (chapter 5): late-language normalised alignment, brain-tuned minus pretrained
  and minus control, at the layer chosen on the pretrained model and at every layer;
- lowlevel (chapter 6): percentage drop with all low-level sets removed, paired differences;
- downstream (chapter 7): probe differences on the four synthetic tasks;
- recovery (chapter 5): how well each layer recovers the twin's true semantic and
  low-level features.

    python benchmarks/demo_effects.py --subjects UTS01 UTS02 UTS03 \\
        --effects alignment lowlevel downstream recovery --out benchmarks/results/robustness.json
    python benchmarks/demo_effects.py --subjects UTS01 --variants lag-ridge paper no-lag lag-1 \\
        random-head lag-ridge-eval --out bt_tutorial/reference/tuning_ablation.json
    python benchmarks/demo_effects.py --report benchmarks/results/robustness.json

Runs go to ``$BT_DATA/bench_runs/<variant>/<subject>`` and are resumed when finished.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bt_tutorial.comparison.workflow import MEASURES, VARIANTS, measure_effects, train_pair


def report(path: Path) -> str:
    """Markdown summary of a results file: each effect per run, then mean and spread."""
    data = json.loads(Path(path).read_text())
    lines = [f"`{data['command']}` ({data['date']}, {data['machine']})", "",
             "| variant | subject | layer | tuning s (both) | best epochs | (a) tuned - pretrained | "
             "(a) tuned - control | (b) drop tuned - pretrained | (b) drop tuned - control |",
             "|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for run in data["runs"]:
        m, t = run["measures"], run["tuning"]
        k = str(m["layer"])
        a = {r["comparison"]: r for r in m["alignment"]["late_language"][k]}
        cells = [_cell(a["brain-tuned - pretrained"]), _cell(a["brain-tuned - control"])]
        summary.setdefault(run["variant"], []).append([a["brain-tuned - pretrained"]["difference"],
                                                       a["brain-tuned - control"]["difference"]])
        if "lowlevel" in m:
            b = {r["comparison"]: r for r in m["lowlevel"][k]["pairs"]}
            cells += [_cell(b["brain-tuned - pretrained"], 1), _cell(b["brain-tuned - control"], 1)]
        else:
            cells += ["", ""]
        secs = t["brain-tuned"]["seconds"] + t["control"]["seconds"]
        epochs = f"{t['brain-tuned']['best_epoch']} / {t['control']['best_epoch']}"
        lines.append(f"| {run['variant']} | {run['subject']} | {k} | {secs:.0f} | {epochs} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | runs | (a) tuned - pretrained, mean (min, max) | (a) tuned - control, mean (min, max) |",
              "|---|---|---|---|"]
    for variant, values in summary.items():
        v = np.array(values)
        lines.append(f"| {variant} | {len(v)} | " + " | ".join(
            f"{v[:, j].mean():+.3f} ({v[:, j].min():+.3f}, {v[:, j].max():+.3f})" for j in range(2)) + " |")
    downstream = [r for r in data["runs"] if "downstream" in r["measures"]]
    if downstream:
        lines += ["", *downstream_report(downstream)]
    return "\n".join(lines)


DOWNSTREAM_PAIRS = ("brain-tuned - pretrained", "brain-tuned - control", "control - pretrained")


def downstream_report(runs: list) -> list:
    """Effect (c) per subject and task (difference [95% interval] and verdict), then over subjects.

    The second table counts, per task and comparison, the subjects with a clear gain (↑) or
    loss (↓) and gives the mean difference over subjects with its range.
    """
    head = "| " + " | ".join(DOWNSTREAM_PAIRS) + " |"
    lines = ["| variant | subject | task " + head, "|---|---|---|---|---|---|"]
    pooled = {}
    for run in runs:
        for r in run["measures"]["downstream"]["pairs"]:
            pooled.setdefault((run["variant"], r["task"]), {}).setdefault(r["comparison"], []).append(r)
        by = {}
        for r in run["measures"]["downstream"]["pairs"]:
            by.setdefault(r["task"], {})[r["comparison"]] = r
        for task, c in by.items():
            cells = [_cell(c[k]) if k in c else "" for k in DOWNSTREAM_PAIRS]
            lines.append(f"| {run['variant']} | {run['subject']} | {task} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | task | subjects " + head, "|---|---|---|---|---|---|"]
    for (variant, task), c in pooled.items():
        cells = []
        for k in DOWNSTREAM_PAIRS:
            rows = c.get(k, [])
            d = np.array([r["difference"] for r in rows])
            up, down = (sum(r["verdict"] == v for r in rows) for v in ("higher", "lower"))
            cells.append(f"{d.mean():+.3f} ({d.min():+.3f}, {d.max():+.3f}) {up}↑ {down}↓" if len(d) else "")
        n = max(len(v) for v in c.values())
        lines.append(f"| {variant} | {task} | {n} | " + " | ".join(cells) + " |")
    return lines


def _cell(row: dict, digits: int = 3) -> str:
    mark = {"higher": " ↑", "lower": " ↓"}.get(row["verdict"], "")
    return f"{row['difference']:+.{digits}f} [{row['low']:+.{digits}f}, {row['high']:+.{digits}f}]{mark}"


def _setting(config_class, name: str, text: str):
    """``FIELD=VALUE`` of ``--set`` as the field's type: ``none``, ``true``/``false``, numbers, names."""
    default = getattr(config_class(), name)
    if text.lower() == "none":
        return None
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise SystemExit(f"--set {name}= takes true or false, got {text!r}")
        return text.lower() == "true"
    if isinstance(default, (int, float)) or name in ("patience", "warmup_epochs"):
        return float(text) if "." in text or "e" in text.lower() else int(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", nargs="+", default=["UTS01"])
    parser.add_argument("--variants", nargs="+", default=["lag-ridge"], choices=sorted(VARIANTS))
    parser.add_argument("--effects", nargs="*", default=["alignment"],
                        choices=list(MEASURES))
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="override tuning settings, e.g. epochs=1 row_step=2")
    parser.add_argument("--tag", default="", help="suffix of the run folders (with --set)")
    parser.add_argument("--out", type=Path, help="results JSON (appended to when it exists)")
    parser.add_argument("--report", type=Path, help="print the markdown summary of a results file")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.report))
        return 0
    from bt_tutorial.brain_tuning.settings import TuningConfig
    from bt_tutorial.config import get_config
    from bt_tutorial.profiles import open_dataset

    overrides = {k: _setting(TuningConfig, k, v) for k, v in (s.split("=", 1) for s in args.set)}
    config = get_config(profile="demo")
    dataset = open_dataset(config)
    runs = []
    if args.out and args.out.is_file():
        runs = json.loads(args.out.read_text())["runs"]
    for variant in args.variants:
        for subject in args.subjects:
            root = config.data_home / "bench_runs" / (variant + args.tag) / subject
            t0 = time.perf_counter()
            tuning = train_pair(dataset, config, subject, variant, overrides, root)
            measures = measure_effects(dataset, config, subject, tuning, args.effects)
            run = {"variant": variant + args.tag, "subject": subject, "overrides": overrides, "tuning": tuning,
                   "measures": measures, "seconds": round(time.perf_counter() - t0, 1)}
            runs = [r for r in runs if (r["variant"], r["subject"]) != (run["variant"], subject)] + [run]
            a = {r["comparison"]: r for r in measures["alignment"]["late_language"][str(measures["layer"])]}
            print(f"{variant}{args.tag} {subject}: layer {measures['layer']}, late language "
                  + ", ".join(f"{c} {r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]" for c, r in a.items())
                  + f" ({run['seconds']:.0f} s)", flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({
                    "command": "python benchmarks/demo_effects.py " + " ".join(argv or sys.argv[1:]),
                    "date": datetime.date.today().isoformat(),
                    "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}", "runs": runs}, indent=1,
                    default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
