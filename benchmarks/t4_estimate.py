r"""Estimated time of each chapter of the ``full`` profile on a free Colab T4, from FLOP counts.

No T4 has run the book yet. This script counts the floating-point operations of each chapter's
GPU work with the package's own code and turns them into time with an assumed share of the
T4's peak throughput. Every figure it prints is an **estimate**: replace it with a measured one
(``benchmarks/gpu_full_scale.py`` on a T4) when there is one.

    PYTHONPATH=. .venv/bin/python benchmarks/t4_estimate.py [--json results/t4_estimate.json]

What is counted (``torch.utils.flop_counter.FlopCounterMode``, on the CPU, random weights of the
real shapes from ``gpu_full_scale.random_model``):

- a feature window: ``extract_features`` on 16 s windows, all 13 hidden states of a Whisper small
  encoder (the ``full`` profile's model);
- a brain-tuning sample: forward and backward of ``BrainTunedModel`` on the paper's 5-TR window;
- a second of downstream clip audio: ``hidden_states`` of a 3 s clip.

The voxelwise ridge fits are counted from their dominant matrix products (:func:`ridge_fit_flops`),
checked against a fit timed here and against the real-scale fit of ``benchmarks/RESULTS.md``.
Times also ignore downloads, disk reads and Python overheads, so read them as lower bounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_full_scale import PAPER_WINDOWS, random_model  # noqa: E402

# NVIDIA T4 data sheet: 65 TFLOPS fp16 with tensor cores, 8.1 TFLOPS fp32
T4_PEAK = {"fp16": 65e12, "fp32": 8.1e12}
# Assumed shares of the peak (low, high): transformer work in fp16 rarely exceeds 30-40% of a
# tensor-core peak at these sizes; large fp32 GEMMs reach 50-70%.
EFFICIENCY = {"fp16": (0.15, 0.35), "fp32": (0.4, 0.7)}

EPOCH_SAMPLES = 8_700  # TRs of the paper's 24 training stories (one sample each)
VALIDATION_SAMPLES = 350  # rows of the validation story, predicted once per epoch
ALL_VOXELS, USABLE_VOXELS = 95_556, 57_975  # UTS03; ceiling > USABLE_CEILING (chapters 5-6)
N_LAYERS = 13  # hidden states of a base model
FEATURES = 768 * 4  # hidden size x FIR delays
TEST_ROWS = 251  # the test story from row 40
# chapter 7's audio per model in the full profile (FULL_TASK_SIZES): Speech Commands 35 words x
# 300 x 2 splits x 1 s; SLURP about 46 actions x 100 x 2 x about 3 s; CREMA-D 7,442 clips x about
# 2.5 s; TIMIT (licensed, optional) left out
TASK_AUDIO_S = 35 * 300 * 2 * 1.0 + 46 * 100 * 2 * 3.0 + 7_442 * 2.5


@dataclass(frozen=True)
class Plan:
    """What a full-profile pass through chapters 2-7 computes."""

    name: str
    windows: int = PAPER_WINDOWS  # feature windows per model (all stories)
    train_trs: int = EPOCH_SAMPLES
    epochs: int = 30
    task_audio_s: float = TASK_AUDIO_S


PAPER = Plan("paper settings (full profile defaults)")
# BT_FEATURES=fast (one window per second instead of ten), 6 of the 24 training stories (8 of
# the 26 stories with validation and test), 10 epochs; chapter 7 as in the full profile
REDUCED = Plan("reduced: fast features, 6 stories, 10 epochs", windows=PAPER_WINDOWS * 8 // 260,
               train_trs=EPOCH_SAMPLES // 4, epochs=10)


def counted(fn) -> tuple:
    """(FLOPs, CPU seconds) of one call of ``fn``."""
    with FlopCounterMode(display=False) as counter:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    return counter.get_total_flops(), seconds


def feature_window_flops(model, n: int = 4) -> tuple:
    """FLOPs and CPU seconds of one 16 s window, all hidden states (``extract_features``)."""
    from bt_tutorial.alignment.features import extract_features
    from bt_tutorial.config import FeatureParams
    from bt_tutorial.dataset.stimulus import SAMPLE_RATE

    params = FeatureParams(16.0, 0.1, n)
    wav = 0.1 * np.random.default_rng(0).standard_normal(int((16.0 + n * 0.1) * SAMPLE_RATE)).astype(np.float32)
    layers = list(range(model.n_layers + 1))
    flops, seconds = counted(lambda: extract_features(model, wav, layers, params, progress=False,
                                                      windows=slice(0, n)))
    return flops / n, seconds / n


def tuning_sample_flops(model, n_voxels: int, batch: int = 2) -> tuple:
    """FLOPs and CPU seconds of one training sample: forward, MSE loss and backward (5-TR window)."""
    from bt_tutorial.brain_tuning.model import BrainTunedModel
    from bt_tutorial.brain_tuning.samples import tr_windows

    n = tr_windows(np.zeros(1, np.float32), np.zeros(1), 5).shape[1]
    tuned = BrainTunedModel(model, n_voxels)
    inputs = model.prepare(np.random.default_rng(0).standard_normal((batch, n)).astype(np.float32))
    target = torch.zeros(batch, n_voxels)

    def step():
        loss = torch.nn.functional.mse_loss(tuned(inputs), target)
        loss.backward()

    flops, seconds = counted(step)
    tuned.zero_grad(set_to_none=True)
    return flops / batch, seconds / batch


def clip_second_flops(model, seconds: float = 3.0) -> float:
    """FLOPs per second of audio of a clip's forward pass (all hidden states)."""
    from bt_tutorial.dataset.stimulus import SAMPLE_RATE

    wav = np.random.default_rng(0).standard_normal((1, int(seconds * SAMPLE_RATE))).astype(np.float32)
    with torch.inference_mode():
        flops, _ = counted(lambda: model.hidden_states(model.prepare(wav)))
    return flops / seconds


def ridge_fit_flops(n_train: int, p: int, v: int, n_test: int, n_alphas: int = 11, n_folds: int = 5) -> float:
    """Dominant FLOPs of one voxelwise ridge fit: ``n_folds`` cross-validation fits and the refit.

    Each fit: ``X'X`` (2 n p^2), its eigendecomposition (about 9 p^3), ``X'Y`` (2 n p v), its
    rotation into the eigenbasis (2 p^2 v), and one prediction of the held-out rows per alpha
    (2 n_val p v each). The refit predicts the test rows once.
    """
    def one(n_fit, n_pred, times):
        return 2 * n_fit * p * p + 9 * p ** 3 + 2 * n_fit * p * v + 2 * p * p * v + times * 2 * n_pred * p * v

    n_val = n_train // n_folds
    return n_folds * one(n_train - n_val, n_val, n_alphas) + one(n_train, n_test, 1)


def measured_ridge_rate(n_train: int = 2_000, p: int = 768, v: int = 4_000) -> float:
    """FLOP/s of ``fit_encoding_model`` on this CPU, by :func:`ridge_fit_flops` over a timed fit."""
    from bt_tutorial.alignment.encoding import fit_encoding_model

    rng = np.random.default_rng(0)
    x = [rng.standard_normal((n_train // 5, p), dtype=np.float32) for _ in range(5)]
    y = [rng.standard_normal((n_train // 5, v), dtype=np.float32) for _ in range(5)]
    x_test, y_test = rng.standard_normal((200, p), dtype=np.float32), rng.standard_normal((200, v), dtype=np.float32)
    start = time.perf_counter()
    fit_encoding_model(x, y, x_test, y_test, backend="torch", solver="primal")
    return ridge_fit_flops(n_train, p, v, 200) / (time.perf_counter() - start)


def chapter_flops(plan: Plan, unit: dict) -> dict:
    """FLOPs per chapter, split by precision: {chapter: {"fp16": ..., "fp32": ...}}."""
    fit_all = ridge_fit_flops(plan.train_trs, FEATURES, ALL_VOXELS, TEST_ROWS)
    fit_usable = ridge_fit_flops(plan.train_trs, FEATURES, USABLE_VOXELS, TEST_ROWS)
    windows = plan.windows * unit["window"]
    tuning = 2 * plan.epochs * (plan.train_trs * unit["sample"] + VALIDATION_SAMPLES * unit["sample"] / 3)
    return {
        "2 alignment": {"fp16": windows, "fp32": N_LAYERS * fit_all},
        "3 noise ceilings": {"fp16": 0.0, "fp32": N_LAYERS * fit_all},
        "4 brain-tuning": {"fp16": tuning, "fp32": 0.0},
        "5 semantic ROIs": {"fp16": 2 * windows, "fp32": 3 * N_LAYERS * fit_usable},
        "6 low-level impact": {"fp16": 0.0, "fp32": 3 * (2 * N_LAYERS + 9) * fit_usable},
        "7 downstream": {"fp16": 3 * plan.task_audio_s * unit["clip_second"], "fp32": 0.0},
    }


def t4_minutes(flops: dict) -> tuple:
    """(fast, slow) minutes on a T4 for a chapter's FLOPs, at the high and low assumed efficiency."""
    fast = sum(f / (T4_PEAK[k] * EFFICIENCY[k][1]) for k, f in flops.items())
    slow = sum(f / (T4_PEAK[k] * EFFICIENCY[k][0]) for k, f in flops.items())
    return fast / 60, slow / 60


def table(plans, unit: dict) -> str:
    lines = ["| chapter | " + " | ".join(p.name for p in plans) + " |", "|---" * (len(plans) + 1) + "|"]
    per_plan = [chapter_flops(p, unit) for p in plans]
    totals = [[0.0, 0.0] for _ in plans]
    for chapter in per_plan[0]:
        cells = []
        for i, flops in enumerate(per_plan):
            fast, slow = t4_minutes(flops[chapter])
            totals[i][0] += fast
            totals[i][1] += slow
            cells.append(f"{fast:.0f}-{slow:.0f} min")
        lines.append(f"| {chapter} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"**{a / 60:.1f}-{b / 60:.1f} h**" for a, b in totals) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the counts and estimates here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = random_model("whisper", tiny=False)
    window, window_s = feature_window_flops(model)
    sample, sample_s = tuning_sample_flops(model, ALL_VOXELS)
    unit = {"window": window, "sample": sample, "clip_second": clip_second_flops(model)}
    rate = measured_ridge_rate()
    real_fit = ridge_fit_flops(7_935, FEATURES, ALL_VOXELS, TEST_ROWS)
    print(f"feature window (16 s, 13 states): {window / 1e9:.0f} GFLOP; {window_s:.2f} s on this CPU "
          f"({window / window_s / 1e9:.0f} GFLOP/s)")
    print(f"tuning sample (5 TRs, forward and backward, {ALL_VOXELS} voxels): {sample / 1e9:.0f} GFLOP; "
          f"{sample_s:.2f} s on this CPU")
    print(f"clip audio: {unit['clip_second'] / 1e9:.0f} GFLOP per second")
    print(f"ridge fit, real scale (7,935 TRs, {FEATURES} features, {ALL_VOXELS} voxels): "
          f"{real_fit / 1e12:.0f} TFLOP; this CPU fits at {rate / 1e9:.0f} GFLOP/s, so about "
          f"{real_fit / rate / 60:.0f} min here (benchmarks/RESULTS.md measured 24 min, 1466 s)")
    plans = (PAPER, REDUCED)
    text = table(plans, unit)
    print("\nEstimated T4 time per chapter (computation only):\n" + text)
    out = {"unit_flops": unit, "cpu_seconds": {"window": window_s, "sample": sample_s},
           "cpu_ridge_flops_per_s": rate, "real_fit_flops": real_fit, "t4_peak": T4_PEAK,
           "efficiency": EFFICIENCY, "plans": [asdict(p) for p in plans],
           "minutes": {p.name: {c: t4_minutes(f) for c, f in chapter_flops(p, unit).items()} for p in plans}}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
