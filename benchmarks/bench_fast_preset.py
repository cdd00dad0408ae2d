"""What a coarser feature stride costs in alignment, measured on the synthetic twin.

The paper cuts 16 s windows every 0.1 s, which makes feature extraction the longest
step, yet the features are low-passed to the 2 s TR grid. This script extracts the
features of one subject's stories at the paper's setting and at coarser candidates,
all at the paper's 16 s of context, fits the encoding models of every layer
(:func:`bt_tutorial.alignment.layers.brain_alignment`) and compares:

- windows and seconds of feature extraction, and their ratio to the paper's (same process,
  fresh cache, one candidate after the other);
- mean test r per ROI group of the twin (and over voxels with a noise ceiling > 0.4) at
  every layer and at the best layer of each group, the difference to the paper's, and the
  largest absolute difference over layers;
- the correlation over voxels of the test r with the paper's, at the paper's best layer.

    python benchmarks/bench_fast_preset.py [--subject UTS01] [--stories N] [--model whisper-tiny.en]

``--stories N`` keeps the first N training stories of the split (the test story is always
scored whole). Results go to ``benchmarks/results/fast_preset.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from full_profile_rehearsal import FewStories  # beside this file

from bt_tutorial.config import PAPER_PARAMS, FeatureParams
from bt_tutorial.dataset.rois import roi_means as group_means

CANDIDATES = {
    "paper": PAPER_PARAMS,
    "16s/0.5s stride-pool": FeatureParams(16.0, 0.5, pool="stride"),
    "16s/1.0s stride-pool": FeatureParams(16.0, 1.0, pool="stride"),
    "16s/1.0s last": FeatureParams(16.0, 1.0, pool="last"),
}
GROUPS = ("late_language", "early_auditory", "primary_auditory", "outside_rois", "ceiling>0.4", "all")
RESULT = Path(__file__).parent / "results" / "fast_preset.json"


def extract(model, dataset, stories, layers, params, cache) -> dict:
    """Extract (and cache) every story's feature rows; return windows and seconds."""
    from bt_tutorial.alignment.features import story_rows, window_end_times

    windows = sum(len(window_end_times(len(dataset.load_audio(s, 16000).waveform) / 16000, params.stride))
                  for s in stories)
    load, t0 = os.getloadavg()[0], time.perf_counter()
    for story in stories:
        story_rows(model, dataset, story, layers, params, cache_dir=cache, progress=False)
    seconds = time.perf_counter() - t0
    # the machine's 1-min load average before and after: other jobs on the cores skew the seconds
    return {"windows": windows, "seconds": round(seconds, 1), "seconds_per_window": round(seconds / windows, 4),
            "load_average": [round(load, 1), round(os.getloadavg()[0], 1)]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subject", default="UTS01")
    parser.add_argument("--stories", type=int, default=None, help="training stories kept (default: all)")
    parser.add_argument("--model", default="whisper-tiny.en")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES)[1:], choices=list(CANDIDATES)[1:])
    parser.add_argument("--cache", type=Path, default=None,
                        help="feature cache (default: a fresh temporary folder, deleted at the end)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    if args.stories is not None and args.stories < 2:
        parser.error("--stories must be at least 2: the ridge penalty is cross-validated over whole stories")

    from bt_tutorial.alignment.layers import brain_alignment
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.alignment.noise_ceiling import cc_max
    from bt_tutorial.config import get_config
    from bt_tutorial.profiles import open_dataset
    from bt_tutorial.synthetic.truth import twin_roi_masks

    config = get_config(profile="demo", progress=False)
    dataset = open_dataset(config)
    if args.stories is not None:
        dataset = FewStories(dataset, args.stories)
    split = dataset.split(args.subject)
    stories = split["train"] + [split["test"]]
    audio_s = {s: len(dataset.load_audio(s, 16000).waveform) / 16000 for s in stories}
    model = load_speech_model(args.model)
    layers = list(range(model.n_layers + 1))
    ceiling = cc_max(dataset.load_repeats(args.subject, split["test"]))
    masks = {k: v for k, v in twin_roi_masks(dataset.root, args.subject, hemispheres=False).items() if k in GROUPS}
    masks["ceiling>0.4"] = ceiling > 0.4
    masks["all"] = np.ones_like(ceiling, bool)

    cache = args.cache or Path(tempfile.mkdtemp(prefix="bt_fast_preset_"))
    print(f"{args.model}, {args.subject}: {len(split['train'])} training stories + {split['test']}, "
          f"{sum(audio_s.values()):.0f} s of audio; torch threads {torch.get_num_threads()}; cache {cache}",
          flush=True)
    from bt_tutorial.alignment.features import extract_features

    extract_features(model, dataset.load_audio(stories[0], 16000).waveform[:32000], layers,
                     FeatureParams(16.0, 1.0), progress=False)  # warm-up: the first run's time is not skewed
    runs = {}
    try:
        for name in ["paper"] + args.candidates:
            params = CANDIDATES[name]
            timing = extract(model, dataset, stories, layers, params, cache)
            print(f"{name}: {timing['windows']} windows in {timing['seconds']:.0f} s", flush=True)
            result = brain_alignment(model, dataset, args.subject, layers, params, cache_dir=cache,
                                     progress=False, keep_predictions=False)
            scores = result.scores  # (n_layers, n_voxels)
            per_layer = {k: group_means(scores[i], masks) for i, k in enumerate(layers)}
            best = {g: max(layers, key=lambda k: per_layer[k][g]) for g in masks}
            runs[name] = {"params": {"context": params.context, "stride": params.stride, "pool": params.pool},
                          **timing, "scores": scores, "per_layer": per_layer,
                          "best_layer": best, "at_best": {g: per_layer[best[g]][g] for g in masks}}
    finally:
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)

    paper = runs["paper"]
    ref_layer = paper["best_layer"]["ceiling>0.4"]
    i_ref = layers.index(ref_layer)
    for name, run in runs.items():
        run["time_ratio_to_paper"] = round(run["seconds"] / paper["seconds"], 3)
        run["windows_ratio_to_paper"] = round(run["windows"] / paper["windows"], 3)  # the load-free estimate
        run["speed_up"] = round(paper["seconds"] / run["seconds"], 1)
        run["diff_at_best"] = {g: run["at_best"][g] - paper["at_best"][g] for g in masks}
        run["max_abs_diff_over_layers"] = {
            g: max(abs(run["per_layer"][k][g] - paper["per_layer"][k][g]) for k in layers) for g in masks}
        a, b = run["scores"][i_ref], paper["scores"][i_ref]
        ok = np.isfinite(a) & np.isfinite(b)
        run["voxel_r_corr_with_paper"] = {
            "layer": ref_layer, "all": float(np.corrcoef(a[ok], b[ok])[0, 1]),
            "ceiling>0.4": float(np.corrcoef(a[ok & masks["ceiling>0.4"]], b[ok & masks["ceiling>0.4"]])[0, 1])}

    print(f"\nmean test r at the best layer of each group (difference to paper; largest |difference| over "
          f"{len(layers)} layers)")
    for name, run in runs.items():
        print(f"\n{name}: {run['windows']} windows, {run['seconds']:.0f} s "
              f"(x{run['time_ratio_to_paper']:.3f} of paper, {run['speed_up']:g}x faster); voxel r vs paper at "
              f"layer {ref_layer}: corr {run['voxel_r_corr_with_paper']['all']:.3f} "
              f"(ceiling>0.4: {run['voxel_r_corr_with_paper']['ceiling>0.4']:.3f})")
        for g in masks:
            print(f"  {g:17s} layer {run['best_layer'][g]}  r {run['at_best'][g]:.4f}  "
                  f"diff {run['diff_at_best'][g]:+.4f}  max|diff| {run['max_abs_diff_over_layers'][g]:.4f}")

    def rounded(x):
        if isinstance(x, dict):
            return {str(k): rounded(v) for k, v in x.items()}
        return round(x, 4) if isinstance(x, float) else x

    out = {"command": "python benchmarks/bench_fast_preset.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "date": datetime.date.today().isoformat(),
           "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, torch threads {torch.get_num_threads()}",
           "model": args.model, "subject": args.subject, "train_stories": split["train"], "test_story": split["test"],
           "audio_seconds": round(sum(audio_s.values()), 1), "layers": layers,
           "voxels": {g: int(m.sum()) for g, m in masks.items()},
           "note": "at_best: mean test r of a group at its best layer; diff_*: candidate minus paper; "
                   "time_ratio_to_paper: seconds of feature extraction / paper's, same process (skewed when "
                   "the load differs between runs; every window is one 16 s forward pass, so "
                   "windows_ratio_to_paper is the load-free estimate)",
           "runs": {name: rounded({k: v for k, v in run.items() if k != "scores"}) for name, run in runs.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
