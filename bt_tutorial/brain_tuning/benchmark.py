"""Speed and memory of brain-tuning on this machine's GPU, with no data and no weights.

    python -m bt_tutorial.brain_tuning.benchmark [--samples 256] [--batch-size 16] [--json out.json]
    python -m bt_tutorial.brain_tuning.benchmark --tiny        # a CPU smoke test (seconds)

A randomly initialised wav2vec2-base-sized model (12 layers, 768 wide; ``--tiny``:
2 layers, 32 wide) trains on windows of random audio with random targets for 1000
voxels. Reported: training samples/s and peak GPU memory of

- a reference loop in the style of the paper's code (fp32, a new DataLoader per
  story per epoch, one optimizer step per batch), and
- bt_tutorial's loop (:func:`~bt_tutorial.brain_tuning.loop.train_model`) in fp32
  and with mixed precision (bf16 on GPUs of compute capability >= 8.0, fp16 below).

Target: bt_tutorial >= 2x the reference loop's samples/s on the GPU. It runs where
only the package is installed (Colab); ``benchmarks/gpu_tuning.py`` calls it.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bt_tutorial.alignment.models import SpeechModel, reduced_precision
from bt_tutorial.brain_tuning.loop import train_model
from bt_tutorial.brain_tuning.model import BrainTunedModel
from bt_tutorial.brain_tuning.samples import TuningData
from bt_tutorial.brain_tuning.settings import TuningConfig
from bt_tutorial.dataset.stimulus import SAMPLE_RATE

N_VOXELS = 1000
N_STORIES = 4
TINY = dict(samples=16, batch_size=4, seconds=1.0)


def random_wav2vec2(tiny: bool = False) -> SpeechModel:
    """A randomly initialised wav2vec 2.0 (base size, or a 2-layer, 32-wide one if ``tiny``); seeded."""
    import transformers as tf

    kwargs = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4) if tiny else {}
    torch.manual_seed(0)
    backbone = tf.Wav2Vec2Model(tf.Wav2Vec2Config(layerdrop=0.0, **kwargs))
    return SpeechModel("random-wav2vec2-base", "wav2vec2", backbone,
                       tf.Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True))


def reference_loop(model: SpeechModel, stories: list, batch_size: int, device: torch.device) -> None:
    """One epoch in the style of the paper's code: fp32, eval mode, a DataLoader per story (in order), a step per batch.

    Waveform models get normalised windows; Whisper gets log-mel of 30 s computed on the
    CPU per batch, as the paper's code feeds it.

    Parameters
    ----------
    model : SpeechModel
    stories : list of torch.utils.data.Dataset or of (windows, targets)
        Per story, items ``(window, targets)``: a dataset that cuts each window when asked
        (as the paper's code does), or the arrays ``windows``, shape (n, n_samples), and
        ``targets``, shape (n, n_voxels).
    batch_size : int
    device : torch.device
    """
    stories = [s if isinstance(s, torch.utils.data.Dataset)
               else torch.utils.data.TensorDataset(torch.from_numpy(s[0]), torch.from_numpy(s[1])) for s in stories]
    tuned = BrainTunedModel(model, np.shape(stories[0][0][1])[-1]).to(device)
    if model.family == "whisper":
        model.freeze_feature_encoder()
    else:
        tuned.backbone.feature_extractor._freeze_parameters()
    optimizer = torch.optim.Adam([{"params": [p for p in tuned.backbone.parameters() if p.requires_grad],
                                   "lr": 5e-5}, {"params": tuned.head.parameters(), "lr": 1e-4}])
    tuned.eval()  # the authors' trainer never calls train(): from_pretrained returns eval mode
    for story in stories:
        for x, y in torch.utils.data.DataLoader(story, batch_size=batch_size, shuffle=False):
            pred = tuned.head(tuned.backbone(_paper_inputs(model, x).to(device)).last_hidden_state.mean(1))
            loss = torch.nn.functional.mse_loss(pred, y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _paper_inputs(model: SpeechModel, x: torch.Tensor) -> torch.Tensor:
    """A batch of windows as the paper's code feeds the model (waveforms normalised, or Whisper log-mel)."""
    if model.family == "whisper":
        return model.feature_extractor(list(x.numpy()), sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    return (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True) + 1e-7)


def timed(fn, device: torch.device) -> tuple[float, float]:
    """Run ``fn()``; return its wall time in s and the peak GPU memory in GiB (NaN off the GPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return seconds, torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan


def run_benchmark(samples: int = 256, batch_size: int = 16, seconds: float = 10.0, tiny: bool = False,
                  device=None) -> dict:
    """Time the reference loop and bt_tutorial's loop (fp32, mixed precision) on random data.

    Parameters
    ----------
    samples : int
        Training windows per epoch, split over 4 stories (at least one batch per story).
    batch_size : int
        Samples per forward pass (bt_tutorial accumulates up to an effective batch of
        ``max(batch_size, 128)``).
    seconds : float
        Window length in seconds.
    tiny : bool
        The 2-layer, 32-wide model instead of the base-sized one.
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.

    Returns
    -------
    results : dict
        ``device``, ``samples``, ``batch_size``, ``seconds``, ``model``, and for each of
        ``reference``, ``fp32``, ``mixed``: ``samples_per_s``, ``peak_gib`` (NaN off the
        GPU) and ``dtype``; ``speedup_fp32`` and ``speedup_mixed`` against the reference.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    per_story = samples // N_STORIES
    if per_story < batch_size:
        raise ValueError(f"samples ({samples}) must be at least {N_STORIES} x batch_size ({batch_size}): "
                         f"the samples are split over {N_STORIES} stories.")
    rng = np.random.default_rng(0)
    n = int(seconds * SAMPLE_RATE)
    stories = [(rng.standard_normal((per_story, n)).astype(np.float32),
                rng.standard_normal((per_story, N_VOXELS)).astype(np.float32)) for _ in range(N_STORIES)]
    total = per_story * N_STORIES
    reference_loop(random_wav2vec2(tiny), stories[:1], batch_size, device)  # warm-up (kernels, allocator)
    t_ref, m_ref = timed(lambda: reference_loop(random_wav2vec2(tiny), stories, batch_size, device), device)
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
               "model": "tiny random wav2vec2" if tiny else "random wav2vec2-base",
               "samples": total, "batch_size": batch_size, "seconds": seconds,
               "reference": {"samples_per_s": total / t_ref, "peak_gib": m_ref, "dtype": "float32"}}
    train = TuningData([w for w, _ in stories], [y for _, y in stories])
    val = TuningData([stories[0][0][:batch_size]], [stories[0][1][:batch_size]])
    for key, mixed in (("fp32", False), ("mixed", True)):
        config = TuningConfig(batch_size=batch_size, effective_batch=max(batch_size, 128), epochs=1,
                              mixed_precision=mixed)
        with tempfile.TemporaryDirectory() as out:
            t, m = timed(lambda: train_model(random_wav2vec2(tiny), train, val, np.arange(N_VOXELS), out,
                                             config, device=device, progress=False), device)
        dtype = reduced_precision(device) if mixed else torch.float32
        results[key] = {"samples_per_s": total / t, "peak_gib": m, "dtype": str(dtype).removeprefix("torch.")}
        results[f"speedup_{key}"] = t_ref / t
    return results


def format_results(results: dict) -> str:
    """The results as the lines the command prints."""
    lines = [f"device: {results['device']}; {results['model']}; {results['samples']} samples of "
             f"{results['seconds']:g} s, batch {results['batch_size']}"]
    for key, label in (("reference", "reference loop"), ("fp32", "bt_tutorial loop"),
                       ("mixed", "bt_tutorial loop, mixed precision")):
        r = results[key]
        peak = "n/a" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.1f} GiB"
        lines.append(f"{label} ({r['dtype']}): {r['samples_per_s']:.1f} samples/s, peak GPU memory {peak}"
                     + ("" if key == "reference" else " (includes validation and saving)"))
    lines.append(f"speed-up vs reference: fp32 {results['speedup_fp32']:.2f}x, mixed "
                 f"{results['speedup_mixed']:.2f}x (target >= 2x on a GPU)")
    return "\n".join(lines)


def main(argv=None) -> dict:
    """Command line: parse, run, print, and write ``--json`` if given; returns the results."""
    parser = argparse.ArgumentParser(prog="python -m bt_tutorial.brain_tuning.benchmark",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=256, help="training windows (split over 4 stories)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="window length")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--tiny", action="store_true",
                        help=f"tiny model and data ({TINY['samples']} samples of {TINY['seconds']:g} s, "
                        f"batch {TINY['batch_size']}): a CPU smoke test")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else dict(samples=args.samples, batch_size=args.batch_size, seconds=args.seconds)
    results = run_benchmark(**sizes, tiny=args.tiny, device=args.device)
    print(format_results(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
