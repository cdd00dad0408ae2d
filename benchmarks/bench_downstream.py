"""Downstream tasks: generation time, and clip features batched by length vs one clip at a time.

Generates the four synthetic tasks (not cached: into a temporary folder), then
computes the features of every hidden state of each task twice, with caching
off: batches of similar-length clips (``batch_size=16``, the default) and one
clip per forward pass (no padding at all). Prints clips/s, seconds of audio per
second, and how far each clip's batched features are from its unbatched ones
(relative L2 distance of the last hidden state, median and 95th percentile over
clips): padding is not invisible to the model (see :mod:`bt_tutorial.downstream.clips`).

    python benchmarks/bench_downstream.py [--model whisper-tiny.en] [--clips-per-voice 64]
"""

import argparse
import time

import numpy as np
import torch

from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.downstream.clips import clip_features
from bt_tutorial.synthetic.tasks import SYNTHETIC_TASKS, TaskSpec, make_synthetic_task


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="whisper-tiny.en")
    parser.add_argument("--clips-per-voice", type=int, default=TaskSpec().clips_per_voice)
    parser.add_argument("--skip-unbatched", action="store_true")
    args = parser.parse_args(argv)
    model = load_speech_model(args.model)
    spec = TaskSpec(clips_per_voice=args.clips_per_voice)
    print(f"model {args.model}, torch threads {torch.get_num_threads()}, "
          f"{args.clips_per_voice} clips per voice x {len(spec.train_voices) + len(spec.test_voices)} voices")
    total = {"generate": 0.0, "batched": 0.0}
    for name in SYNTHETIC_TASKS:
        t0 = time.perf_counter()
        task = make_synthetic_task(name, spec, progress=False)
        t_gen = time.perf_counter() - t0
        seconds = sum(len(w) for w in task.waveforms) / task.sample_rate
        t0 = time.perf_counter()
        batched = clip_features(model, task, cache_dir=False, progress=False)
        t_batch = time.perf_counter() - t0
        total["generate"] += t_gen
        total["batched"] += t_batch
        line = (f"{name:>18}: {len(task)} clips, {seconds:.0f} s of audio | generate {t_gen:.1f} s | "
                f"features batched {t_batch:.1f} s ({len(task) / t_batch:.0f} clips/s, "
                f"{seconds / t_batch:.0f} s audio/s)")
        if not args.skip_unbatched:
            t0 = time.perf_counter()
            single = clip_features(model, task, batch_size=1, cache_dir=False, progress=False)
            t_single = time.perf_counter() - t0
            top = max(batched)
            rel = np.linalg.norm(batched[top] - single[top], axis=1) / np.linalg.norm(single[top], axis=1)
            line += (f" | one clip per pass {t_single:.1f} s ({t_single / t_batch:.1f}x slower), "
                     f"batched vs one clip: median {np.median(rel):.3f}, p95 {np.quantile(rel, 0.95):.3f}")
        print(line)
    print(f"all tasks: generate {total['generate']:.1f} s, features (batched) {total['batched']:.1f} s")


if __name__ == "__main__":
    main()
