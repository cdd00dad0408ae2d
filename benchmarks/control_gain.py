"""Where does the shuffled control's downstream gain come from? A control with no response in its targets (chapter 7).

    PYTHONPATH=. .venv/bin/python benchmarks/control_gain.py [--subject UTS01]

Chapter 7's control (targets permuted in chunks of 10 TRs) gains on the synthetic tasks as
much as the brain-tuned model, or more. Its targets are still responses: slow, smooth, with
the subject's voxel-to-voxel correlations. This tunes a third model exactly as the control
(chapter 4's demo recipe, same stories, windows, steps and seed) but on targets of white
noise with the same shape and unit variance, then probes the five tasks:

- the noise-target model gains as much as the control: the gain comes from fine-tuning on
  the stories' speech with this recipe, whatever the targets;
- it gains clearly less: the response statistics the control keeps matter.

The brain-tuned model and the control are those of ``demo_effects.py`` (run it first, same
``BT_DATA``); the new model goes to ``$BT_DATA/bench_runs/noise-targets/<subject>``.
Written to ``benchmarks/results/control_gain.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def white_noise_targets(data, seed: int = 0):
    """``data`` with every target replaced by standard normal noise of the same shape.

    Parameters
    ----------
    data : TuningData

    Returns
    -------
    data : TuningData
        Same windows; targets float32, each (n_rows_i, n_voxels).
    """
    from bt_tutorial.brain_tuning.samples import TuningData

    rng = np.random.default_rng(seed)
    return TuningData(data.windows, [rng.standard_normal(t.shape).astype(np.float32) for t in data.targets])


def train_noise_model(dataset, config, subject: str, root: Path):
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.brain_tuning.loop import train_model
    from bt_tutorial.brain_tuning.samples import prepare_tuning_data
    from bt_tutorial.comparison.workflow import tuning_settings

    settings = tuning_settings("lag-ridge", {}, "chunk_permute")
    model = load_speech_model(config.model_name, data_home=config.data_home, device="cpu")
    train, val, voxels = prepare_tuning_data(model, dataset, subject, settings)
    result = train_model(model, white_noise_targets(train, 1), white_noise_targets(val, 2), voxels, root,
                         settings, resume=True, device="cpu", progress=False, subject=subject)
    return result.backbone_dir


def main(argv=None) -> int:
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.comparison.effects import downstream_effects
    from bt_tutorial.config import get_config
    from bt_tutorial.downstream.probes import probe_layers
    from bt_tutorial.profiles import open_dataset
    from bt_tutorial.synthetic.tasks import SYNTHETIC_TASKS, ensure_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subject", default="UTS01")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/control_gain.json"))
    args = parser.parse_args(argv)
    config = get_config(profile="demo")
    dataset = open_dataset(config)
    runs = config.data_home / "bench_runs"
    t0 = time.perf_counter()
    noise_dir = train_noise_model(dataset, config, args.subject, runs / "noise-targets" / args.subject)
    models = {"pretrained": load_speech_model(config.model_name, data_home=config.data_home, device="cpu"),
              "control": load_speech_model(str(runs / "lag-ridge" / args.subject / "control" / "backbone"),
                                           device="cpu"),
              "noise-targets": load_speech_model(str(noise_dir), device="cpu")}
    tasks = {name: ensure_task(name, progress=False) for name in SYNTHETIC_TASKS}
    results = {k: {name: probe_layers(m, t, seeds=10, progress=False) for name, t in tasks.items()}
               for k, m in models.items()}
    pairs = (("control", "pretrained"), ("noise-targets", "pretrained"), ("control", "noise-targets"))
    table = downstream_effects(results, list(tasks), pairs=pairs)
    print(table.to_string())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"subject": args.subject, "model": config.model_name,
                                    "pairs": table.to_dict("records"),
                                    "seconds": round(time.perf_counter() - t0, 1)}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
