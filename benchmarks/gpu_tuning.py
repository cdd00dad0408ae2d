"""GPU check of brain-tuning speed and memory (for the lent GPU machine; no data, no weights).

A randomly initialised wav2vec2-base-sized model (12 layers, 768 wide) trains on
10 s windows of random audio with random targets for 1000 voxels. Reported:
training samples/s and peak GPU memory for

- the reference loop in the style of the paper's code (fp32, a new DataLoader per
  story per epoch, one optimizer step per batch), and
- bt_tutorial's loop in fp32 and with mixed precision (bf16 where supported).

    PYTHONPATH=. python benchmarks/gpu_tuning.py [--samples 256] [--batch-size 16]
    PYTHONPATH=. python benchmarks/gpu_tuning.py --tiny      # a CPU smoke test

Target: bt_tutorial >= 2x the reference loop's samples/s on the GPU.
"""

import argparse
import tempfile
import time

import numpy as np
import torch

from bt_tutorial.models import SpeechModel
from bt_tutorial.brain_tuning import train_model
from bt_tutorial.brain_tuning import BrainTunedModel, TuningConfig, TuningData


def make_model(tiny: bool) -> SpeechModel:
    import transformers as tf

    kwargs = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4) if tiny else {}
    torch.manual_seed(0)
    backbone = tf.Wav2Vec2Model(tf.Wav2Vec2Config(layerdrop=0.0, **kwargs))
    return SpeechModel("random-wav2vec2-base", "wav2vec2", backbone,
                       tf.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True))


def reference(model, stories, batch_size, device):
    tuned = BrainTunedModel(model, stories[0][1].shape[1]).to(device)
    tuned.backbone.feature_extractor._freeze_parameters()
    optimizer = torch.optim.Adam([{"params": [p for p in tuned.backbone.parameters() if p.requires_grad],
                                   "lr": 5e-5}, {"params": tuned.head.parameters(), "lr": 1e-4}])
    tuned.train()
    for windows, targets in stories:
        data = torch.utils.data.TensorDataset(torch.from_numpy(windows), torch.from_numpy(targets))
        for x, y in torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True):
            x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True) + 1e-7)
            pred = tuned.head(tuned.backbone(x.to(device)).last_hidden_state.mean(1))
            loss = torch.nn.functional.mse_loss(pred, y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return time.perf_counter() - t0, peak


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tiny", action="store_true", help="small model and data: a CPU smoke test")
    args = parser.parse_args(argv)
    if args.tiny:
        args.samples, args.batch_size, args.seconds = 16, 4, 1.0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    n = int(args.seconds * 16000)
    per_story = args.samples // 4
    stories = [(rng.standard_normal((per_story, n)).astype(np.float32),
                rng.standard_normal((per_story, 1000)).astype(np.float32)) for _ in range(4)]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"device: {name}; {args.samples} samples of {args.seconds:g} s, batch {args.batch_size}")
    model = make_model(args.tiny)
    reference(model, stories[:1], args.batch_size, device)  # warm-up (kernels, allocator)
    t_ref, m_ref = timed(lambda: reference(make_model(args.tiny), stories, args.batch_size, device), device)
    print(f"reference loop, fp32: {args.samples / t_ref:.1f} samples/s, peak {m_ref:.1f} GiB")
    train = TuningData([w for w, _ in stories], [y for _, y in stories])
    val = TuningData([stories[0][0][:args.batch_size]], [stories[0][1][:args.batch_size]])
    results = {}
    for mixed in (False, True):
        config = TuningConfig(batch_size=args.batch_size, effective_batch=max(args.batch_size, 128),
                              epochs=1, mixed_precision=mixed)
        with tempfile.TemporaryDirectory() as out:
            t, m = timed(lambda: train_model(make_model(args.tiny), train, val, np.arange(1000), out,
                                             config, device=device, progress=False), device)
        results[mixed] = t
        label = "mixed precision" if mixed else "fp32"
        print(f"bt_tutorial loop, {label}: {args.samples / t:.1f} samples/s, peak {m:.1f} GiB "
              f"(includes validation and saving)")
    print(f"speed-up vs reference: fp32 {t_ref / results[False]:.2f}x, mixed {t_ref / results[True]:.2f}x "
          "(target >= 2x)")


if __name__ == "__main__":
    main()
