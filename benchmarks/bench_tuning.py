"""Brain-tuning speed: bt_tutorial's loop vs a loop in the style of the paper's code.

Reference, as the paper's public code does it: fp32, a new DataLoader per story and
epoch whose items cut their audio window on the fly, Whisper inputs padded to 30 s
by the feature extractor, one optimizer step per batch. Ours: windows built once per
story, Whisper's position table cut to the window, gradient accumulation, the same
model, head, optimizer and samples. Both run here on the CPU; the script prints
training samples/s of each and the ratio.

    python benchmarks/bench_tuning.py [--model whisper-tiny.en] [--samples 32]
"""

import argparse
import tempfile
import time

import numpy as np
import torch

from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.brain_tuning.benchmark import reference_loop
from bt_tutorial.brain_tuning.loop import train_model
from bt_tutorial.brain_tuning.samples import TuningData, tr_windows
from bt_tutorial.brain_tuning.settings import TuningConfig
from bt_tutorial.config import get_config
from bt_tutorial.dataset.stimulus import SAMPLE_RATE
from bt_tutorial.profiles import open_dataset


class _StoryItems(torch.utils.data.Dataset):
    """A story's samples as the paper's code serves them: each window cut from the audio when asked."""

    def __init__(self, audio, tr_times, targets, window_trs, tr):
        self.audio, self.tr_times, self.targets = audio, tr_times, targets
        self.n = int(round(window_trs * tr * SAMPLE_RATE))
        self.tr = tr

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        end = int(round((self.tr_times[i] + self.tr / 2) * SAMPLE_RATE))
        padded = np.concatenate([np.zeros(self.n, np.float32), self.audio])
        return padded[end: end + self.n], self.targets[i]


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="whisper-tiny.en")
    parser.add_argument("--samples", type=int, default=32, help="training samples (TRs) per loop")
    parser.add_argument("--window-trs", type=int, default=5)
    args = parser.parse_args(argv)
    config = get_config(profile="demo")
    ds = open_dataset(config)
    split = ds.split(config.subject)
    stories, per_story = [], args.samples // 2
    for story in split["train"][:2]:
        audio = ds.load_audio(story).waveform
        targets = ds.load_responses(config.subject, story)[:per_story, :200]
        stories.append((audio, ds.tr_times(story)[:per_story], targets.astype(np.float32)))

    torch.manual_seed(0)
    model = load_speech_model(args.model, whisper_pad_to_30s=True, freeze_feature_encoder=True)
    t0 = time.perf_counter()
    items = [_StoryItems(audio, tr_times, targets, args.window_trs, ds.tr) for audio, tr_times, targets in stories]
    reference_loop(model, items, 8, torch.device("cpu"))
    t_ref = time.perf_counter() - t0

    model = load_speech_model(args.model)
    windows = [tr_windows(a, t, args.window_trs, ds.tr) for a, t, _ in stories]
    train = TuningData(windows, [y for _, _, y in stories])
    val = TuningData(windows[:1], [stories[0][2][:8]])
    tuning = TuningConfig(window_trs=args.window_trs, batch_size=8, effective_batch=16, epochs=1)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = train_model(model, train, val, np.arange(200), out, tuning, device="cpu", progress=False)
        t_ours = time.perf_counter() - t0
    n = len(train)
    print(f"{args.model}, {n} samples of {args.window_trs} TRs, CPU, torch threads {torch.get_num_threads()}")
    print(f"reference loop (paper style): {t_ref:.1f} s, {n / t_ref:.2f} samples/s")
    print(f"bt_tutorial loop: {t_ours:.1f} s, {n / t_ours:.2f} samples/s "
          f"(training alone: {result.history[0]['samples_per_s']:.2f} samples/s; total includes "
          "validation and saving)")
    print(f"speed-up: {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()
