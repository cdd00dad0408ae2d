"""Feature extraction: bt_tutorial's batched, truncated extraction vs a naive loop.

The naive loop runs one full-model forward per window (all layers) and keeps
the last frame of a middle layer, as feature extraction is often written. Both
run in this process on the same windows; the script prints the speed ratio and
checks that the features agree.

    python benchmarks/bench_features.py [--model whisper-tiny.en] [--seconds 60]
"""

import argparse
import time

import numpy as np
import torch

from bt_tutorial.alignment.features import audio_windows, extract_features, window_end_times
from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.config import FeatureParams


def naive(model, waveform, layer, params):
    ends = window_end_times(len(waveform) / 16000, params.stride)
    out = []
    with torch.inference_mode():
        for window in audio_windows(waveform, ends, params.context):
            states = model.hidden_states(model.prepare(window[None]))  # every layer
            out.append(states[layer][0, -1].numpy())
    return np.stack(out)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="whisper-tiny.en")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--context", type=float, default=8.0)
    parser.add_argument("--stride", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = load_speech_model(args.model)
    layer = model.n_layers // 2
    wav = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * 16000))).astype(np.float32)
    params = FeatureParams(args.context, args.stride, args.batch_size)
    extract_features(model, wav[: 16000 * 10], [layer], params, progress=False)  # warm-up
    t0 = time.perf_counter()
    ref = naive(model, wav, layer, params)
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, ours = extract_features(model, wav, [layer], params, progress=False)
    t_ours = time.perf_counter() - t0
    err = np.abs(ours[layer] - ref).max() / np.abs(ref).max()
    print(f"model {args.model}, layer {layer} of {model.n_layers}, {len(ref)} windows of "
          f"{args.context:g} s every {args.stride:g} s, torch threads {torch.get_num_threads()}")
    print(f"naive loop: {t_naive:.1f} s ({len(ref) / t_naive:.1f} windows/s)")
    print(f"bt_tutorial: {t_ours:.1f} s ({len(ref) / t_ours:.1f} windows/s)")
    print(f"speed-up: {t_naive / t_ours:.2f}x; max relative difference {err:.1e}")


if __name__ == "__main__":
    main()
