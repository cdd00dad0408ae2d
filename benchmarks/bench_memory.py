"""Peak host memory of cutting audio windows: all at once (before) vs a batch at a time (now).

Each variant runs in its own process, which reports its peak resident set size
(``ru_maxrss``) before and after the stage; the parent prints them and the
ratio. Stages, for one story of ``--seconds`` of audio:

- ``features``: causal features at the paper's settings (16 s windows every
  0.1 s, ``config.PAPER_PARAMS``) with a tiny model;
- ``tuning``: brain-tuning data at the paper's window (5 TRs ending at each
  response row), then a few training batches.

The old way indexed a ``sliding_window_view`` with an index array, which copies
every window before the first batch, so running the model on only ``--batches``
batches already shows its peak; ``--batches 0`` runs the whole story.
Also prints the feature cache's size per story (:func:`feature_cache_bytes`).

    python benchmarks/bench_memory.py [--seconds 1000] [--batches 8]
"""

import argparse
import json
import resource
import subprocess
import sys

import numpy as np
import torch

from bt_tutorial.alignment.features import audio_windows, extract_features, feature_cache_bytes, window_end_times
from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.brain_tuning.samples import TuningData, tr_windows
from bt_tutorial.config import PAPER_PARAMS
from bt_tutorial.dataset.stimulus import SAMPLE_RATE
from bt_tutorial.dataset.timing import TR, response_tr_times

MODEL = "tiny-wav2vec2"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _old_windows(waveform, stops, n):
    padded = np.concatenate([np.zeros(n, np.float32), waveform, np.zeros(max(0, stops.max() - len(waveform)),
                                                                         np.float32)])
    return np.lib.stride_tricks.sliding_window_view(padded, n)[np.maximum(stops, 0)]


def features_stage(way, wav, model, batches):
    params, layers = PAPER_PARAMS, [model.n_layers]
    ends = window_end_times(len(wav) / SAMPLE_RATE, params.stride)
    n = len(ends) if batches == 0 else min(len(ends), batches * params.batch_size)
    if way == "new":
        extract_features(model, wav, layers, params, progress=False, windows=slice(0, n))
        return n
    windows = _old_windows(wav, np.round(ends * SAMPLE_RATE).astype(int), int(params.context * SAMPLE_RATE))
    with torch.inference_mode():
        for start in range(0, n, params.batch_size):
            model.hidden_states(model.prepare(windows[start:start + params.batch_size]), max(layers))
    return n


def tuning_stage(way, wav, model, batches):
    tr_times = response_tr_times(int(len(wav) / SAMPLE_RATE / TR) + 10)
    if way == "new":
        windows = tr_windows(wav, tr_times, window_trs=5)
    else:
        n = int(np.ceil(5 * TR * SAMPLE_RATE / 320) * 320)
        windows = _old_windows(wav, np.round((tr_times + TR / 2) * SAMPLE_RATE).astype(int), n)
    data = TuningData([windows], [np.zeros((len(tr_times), 100), np.float32)])
    order = np.random.default_rng(0).permutation(len(data))
    with torch.inference_mode():
        for b in range(len(data) // 4 if batches == 0 else batches):
            x, _ = data.batch(order[4 * b:4 * b + 4])
            model.hidden_states(model.prepare(x))
    return len(data)


def child(stage, way, seconds, batches):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = load_speech_model(MODEL)
    wav = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    audio_windows(wav[:SAMPLE_RATE], np.array([0.5]), 0.5)  # warm imports
    before = _rss_mib()
    n = (features_stage if stage == "features" else tuning_stage)(way, wav, model, batches)
    print(json.dumps({"before": before, "peak": _rss_mib(), "windows": n, "audio_mib": wav.nbytes / 2**20}))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1000.0)
    parser.add_argument("--batches", type=int, default=8, help="batches run through the model (0: all)")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, args.seconds, args.batches)
    print(f"{args.seconds:g} s story, model {MODEL}, features at {PAPER_PARAMS.context:g} s / "
          f"{PAPER_PARAMS.stride:g} s, tuning windows of 5 TRs; peak RSS per process (MiB)")
    for stage in ("features", "tuning"):
        got = {}
        for way in ("old", "new"):
            out = subprocess.run([sys.executable, __file__, "--seconds", str(args.seconds), "--batches",
                                  str(args.batches), "--child", stage, way], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{stage}/{way} failed:\n{out.stderr[-2000:]}")
            got[way] = json.loads(out.stdout.strip().splitlines()[-1])
            g = got[way]
            print(f"  {stage:8s} {way}: peak {g['peak']:8.0f}  (before the stage {g['before']:.0f}, "
                  f"+{g['peak'] - g['before']:.0f}; audio {g['audio_mib']:.0f}; {g['windows']} windows)")
        old, new = got["old"], got["new"]
        growth = (old["peak"] - old["before"]) / max(1.0, new["peak"] - new["before"])
        print(f"  {stage:8s} old / new: peak {old['peak'] / new['peak']:.1f}x, growth in the stage {growth:.0f}x")
    print("feature cache per story, float32, every hidden state (MB):")
    for name, width, states in (("whisper-small / base models", 768, 13), ("whisper-tiny.en", 384, 5)):
        for seconds in (600, args.seconds):
            size = feature_cache_bytes(seconds, width, states)
            print(f"  {name}, {seconds:g} s: windows at 0.1 s {size['windows'] / 1e6:.0f}, "
                  f"response rows {size['rows'] / 1e6:.1f} ({size['windows'] / size['rows']:.0f}x smaller)")


if __name__ == "__main__":
    main()
