"""How well the pretrained model predicts the validation story before tuning, at each window lag.

    PYTHONPATH=. .venv/bin/python benchmarks/lag_head_start.py [--subject UTS01] [--lags 0 1 2 3]

For each lag, the demo's tuning data (``profile_tuning_config("demo", lag_trs=lag)``: 3-TR
windows ending ``lag`` TRs before the response) are built on the demo twin, the pretrained
Whisper tiny.en pools each window, and the ridge head is fitted as ``brain_tune`` starts it
(:func:`~bt_tutorial.brain_tuning.model.fit_ridge_head`). The validation correlation of that
head is the "head start" chapter 4 prints: the signal tuning starts from. It also prints the
share of the HRF's weight each window covers (``hrf_weight_in_window``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.brain_tuning.model import BrainTunedModel, fit_ridge_head, pooled_outputs
from bt_tutorial.brain_tuning.samples import prepare_tuning_data
from bt_tutorial.brain_tuning.settings import profile_tuning_config
from bt_tutorial.config import get_config
from bt_tutorial.dataset.timing import hrf_weight_in_window
from bt_tutorial.profiles import open_dataset


def head_start(lag: int, subject: str) -> dict:
    """Validation r and penalty of the ridge head on pretrained pooled outputs, at one lag."""
    config = get_config(profile="demo", subject=subject)
    dataset = open_dataset(config)
    settings = profile_tuning_config("demo", lag_trs=lag)
    speech = load_speech_model(config.model_name, data_home=config.data_home)
    train, val, voxels = prepare_tuning_data(speech, dataset, subject, settings)
    model = BrainTunedModel(speech, len(voxels))
    x_train = pooled_outputs(model, train, settings.batch_size)
    x_val = pooled_outputs(model, val, settings.batch_size)
    head = fit_ridge_head(x_train, train.targets, x_val, val.targets[0])
    return {"lag_trs": lag, "window_trs": settings.window_trs, "val_r": head["val_r"], "alpha": head["alpha"],
            "hrf_share": hrf_weight_in_window(settings.window_trs, lag), "voxels": int(len(voxels))}


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subject", default="UTS01")
    parser.add_argument("--lags", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for lag in args.lags:
        start = time.perf_counter()
        rows.append(head_start(lag, args.subject))
        r = rows[-1]
        print(f"lag {lag}: HRF share {r['hrf_share']:.0%}, head start validation r {r['val_r']:.4f} "
              f"(alpha {r['alpha']:g}, {r['voxels']} voxels; {time.perf_counter() - start:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
