r"""Full-scale GPU benchmark: features, encoding and brain-tuning at the paper's sizes, random weights.

Sections, in the order they run (``--only`` picks some):

- ``features``: 16 s windows every 0.1 s, last frame, all layers, for random wav2vec2-base, HuBERT
  base and Whisper small (encoder): windows/s of ``extract_features`` against a naive loop (batch 1,
  same model) in fp32 and bf16 (fp16 below compute capability 8.0), peak GPU memory, the time of
  the paper's ~186,000 windows. Target: ours >= 3x naive.
- ``encoding``: ``fit_encoding_model`` on himalaya's ``torch_cuda`` with random data of a real
  subject's size (9,000 TRs in 24 stories, 3,072 features, 95,556 voxels, 291 test TRs, 15 alphas):
  wall time, GPU and host memory. Before tuning, so that a tight budget still reaches it.
- ``tuning``: 5-TR windows, batch 8 accumulated to 128, 95,556 then 50,000 voxels: samples/s and
  peak memory of ``train_model`` (fp32, mixed) against the paper-style loop of
  ``bt_tutorial.brain_tuning.benchmark``, whether mixed precision fits a 16 GB T4, an epoch's time.
- ``multigpu``: with several GPUs, the two-process accelerate test of tests/test_tuning.py.

The JSON file is rewritten after every measurement (a run cut short keeps what it measured); a
measurement due to start after ``--budget-s`` is skipped with a note.

CPU check, the same code at tiny sizes (1 to 2 minutes)::

    PYTHONPATH=. .venv/bin/python benchmarks/gpu_full_scale.py --tiny --json /tmp/gpu_tiny.json

GPU run (device tool: ``carry=[".whl"]``, ``timeout_s=300``; the run itself takes 3-4 minutes)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
      .whl/*.whl && export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 || exit; \
    python3 benchmarks/gpu_full_scale.py --budget-s 240 --json $OUT/gpu_full_scale.json 2>&1 \
      | tee $OUT/gpu_full_scale.log

To carry: beyond torch, transformers and numpy the sections import tqdm (features) and
himalaya (encoding; tuning too, as ``bt_tutorial.brain_tuning`` imports ``bt_tutorial.alignment.encoding``),
which needs scikit-learn and scipy; ``multigpu`` needs pytest and accelerate. The GPU image has
all of them but himalaya: carry its pure-Python wheel, fetched here once with
``echo /.whl/ >> .git/info/exclude; python3 -m pip download --no-deps -d .whl himalaya==0.4.11``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import nullcontext
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import transformers

SECTIONS = ("features", "encoding", "tuning", "multigpu")
FAMILIES = ("wav2vec2", "hubert", "whisper")
PAPER_WINDOWS = 186_000  # 16 s windows every 0.1 s over 24 training stories, test and validation
EPOCH_SAMPLES = 8_700  # TRs of the 24 training stories
T4_USABLE_GIB = 14.2  # a T4 shows torch 14.7 GiB; the CUDA context takes about 0.5 of it
# a tuning run saves 2.7 GB at full size, which is not what is timed: in RAM when there is room
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 16 * 2**30 else None


# what each section runs: the paper's scale, and a CPU smoke test of the same code
FULL = dict(tiny=False, context=16.0, stride=0.1, feature_batch=16, n_ours=256, n_naive=32,
            window_trs=5, batch=8, effective_batch=128, tuning_samples=128, voxels=(95_556, 50_000),
            enc_trs=9_000, enc_stories=24, enc_features=3_072, enc_voxels=95_556, enc_test=291)
TINY = dict(FULL, tiny=True, feature_batch=4, n_ours=8, n_naive=2, window_trs=1, batch=2, effective_batch=4,
            tuning_samples=8, voxels=(500, 250), enc_trs=288, enc_features=64, enc_voxels=500, enc_test=40)


class Report:
    """Results by section and measurement, written to ``path`` after every measurement."""

    def __init__(self, path: Path, budget_s: float, sizes, device: torch.device):
        self.path, self.budget_s, self.start = path, budget_s, time.perf_counter()
        self.data = {"card": card_info(device), "sizes": vars(sizes), "budget_s": budget_s, "sections": {}}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def measure(self, section: str, key: str, fn) -> dict:
        """Store ``fn()`` (a dict) as ``section/key``; an error or a spent budget is stored instead."""
        if self.elapsed() > self.budget_s:
            entry = {"skipped": f"budget of {self.budget_s:g} s spent"}
        else:
            try:
                entry = fn()
            except Exception as err:  # one failed measurement must not stop the others
                entry = {"error": f"{type(err).__name__}: {err}", "where": traceback.format_exc(limit=-3)}
            _free()
        return self.record(section, key, entry)

    def record(self, section: str, key: str, entry: dict) -> dict:
        self.data["sections"].setdefault(section, {})[key] = entry
        print(f"[{self.elapsed():6.1f} s] {section} {key}: " + _line(entry), flush=True)
        self.save()
        return entry

    def save(self) -> None:
        self.data["elapsed_s"] = round(self.elapsed(), 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        tmp.replace(self.path)


def _line(entry: dict) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else (str(v).splitlines() or [""])[0]
    return ", ".join(f"{k}={fmt(v)}" for k, v in entry.items() if k != "where")


def card_info(device: torch.device) -> dict:
    """The machine: GPU name, capability and memory, library versions ("missing" for an absent one)."""
    info = {"device": str(device), "gpus": torch.cuda.device_count(), "torch": torch.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count()}
    for dist, module in (("transformers", "transformers"), ("numpy", "numpy"), ("himalaya", "himalaya"),
                         ("scikit-learn", "sklearn")):
        info[dist] = version(dist) if importlib.util.find_spec(module) else "missing"
    if device.type == "cuda":
        info.update(name=torch.cuda.get_device_name(device),
                    capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                    total_gib=round(torch.cuda.get_device_properties(device).total_memory / 2**30, 2),
                    tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    return info


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def clocked(fn, device: torch.device) -> tuple:
    """Run ``fn()``: its result, wall seconds, and peak allocated / reserved GPU GiB (None off the GPU)."""
    _free()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return out, seconds, peak, _reserved_gib(device)


def _reserved_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_reserved(device) / 2**30 if device.type == "cuda" else None


def mixed_dtype(device: torch.device) -> torch.dtype:
    """The package's fast type on a GPU; bf16 on the CPU, where autocast supports it (tiny runs)."""
    from bt_tutorial.alignment.models import reduced_precision

    return reduced_precision(device) if device.type == "cuda" else torch.bfloat16


def _name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


# ------------------------------------------------------------------- models
_MODELS: dict = {}


def random_model(family: str, tiny: bool):
    """A randomly initialised SpeechModel on the CPU, built once per family and seeded.

    Full size: ``Wav2Vec2Config()`` and ``HubertConfig()`` (the base models) and a
    Whisper small encoder; tiny: 2 layers, 32 wide. Layerdrop is off so that every
    step runs every layer (the timings would vary otherwise).
    """
    if family in _MODELS:
        return _MODELS[family]
    import transformers as tf

    from bt_tutorial.alignment.models import SpeechModel
    from bt_tutorial.dataset.stimulus import SAMPLE_RATE

    torch.manual_seed(0)
    if family == "whisper":
        size = (dict(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64) if tiny else
                dict(d_model=768, encoder_layers=12, encoder_attention_heads=12, encoder_ffn_dim=3072))
        backbone = tf.models.whisper.modeling_whisper.WhisperEncoder(tf.WhisperConfig(num_mel_bins=80, **size))
        extractor, name = tf.WhisperFeatureExtractor(feature_size=80), "random-whisper-small-encoder"
    else:
        size = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                    apply_spec_augment=False) if tiny else {}  # tiny windows would be fully masked
        config, model = ((tf.Wav2Vec2Config, tf.Wav2Vec2Model) if family == "wav2vec2" else
                         (tf.HubertConfig, tf.HubertModel))
        backbone = model(config(layerdrop=0.0, **size))
        extractor, name = tf.Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE), f"random-{family}-base"
    _MODELS[family] = SpeechModel(name, family, backbone.eval(), extractor)
    return _MODELS[family]


# ------------------------------------------------------------------- features
def features_section(report: Report, sizes, device: torch.device) -> None:
    from bt_tutorial.config import FeatureParams
    from bt_tutorial.dataset.stimulus import SAMPLE_RATE

    params = FeatureParams(sizes.context, sizes.stride, sizes.feature_batch)
    n_samples = int(round(sizes.n_ours * sizes.stride * SAMPLE_RATE))
    wav = (0.1 * np.random.default_rng(0).standard_normal(n_samples)).astype(np.float32)
    for family in FAMILIES:
        for dtype in (torch.float32, mixed_dtype(device)):
            report.measure("features", f"{family}/{_name(dtype)}",
                           lambda: compare_features(family, sizes, wav, params, dtype, device))


def compare_features(family: str, sizes, wav: np.ndarray, params, dtype: torch.dtype, device: torch.device) -> dict:
    """Windows/s and peak memory of ``extract_features`` and of the naive loop, all hidden states."""
    from bt_tutorial.alignment.features import extract_features

    model, n_naive = copy.deepcopy(random_model(family, sizes.tiny)).to(device), sizes.n_naive
    layers = list(range(model.n_layers + 1))
    extract_features(model, wav, layers, params, dtype, progress=False, windows=slice(0, params.batch_size))
    (_, feats), t_ours, peak_ours, _ = clocked(
        lambda: extract_features(model, wav, layers, params, dtype, progress=False), device)
    n_ours = len(feats[0])
    naive_features(model, wav, params, dtype, 1)
    _, t_naive, peak_naive, _ = clocked(lambda: naive_features(model, wav, params, dtype, n_naive), device)
    ours, naive = n_ours / t_ours, n_naive / t_naive
    return {"ours_windows_per_s": ours, "naive_windows_per_s": naive, "speedup": ours / naive,
            "target_3x_met": ours >= 3 * naive, "ours_peak_gib": peak_ours, "naive_peak_gib": peak_naive,
            "paper_windows_ours_min": PAPER_WINDOWS / ours / 60,
            "paper_windows_naive_min": PAPER_WINDOWS / naive / 60, "windows": [n_ours, n_naive]}


def naive_features(model, wav: np.ndarray, params, dtype: torch.dtype, n: int) -> list:
    """The last frame of every hidden state, one window (batch 1) per forward pass."""
    from bt_tutorial.alignment.features import AudioWindows, window_end_times
    from bt_tutorial.dataset.stimulus import SAMPLE_RATE

    ends = window_end_times(len(wav) / SAMPLE_RATE, params.stride)[:n]
    windows = AudioWindows(wav, np.round(ends * SAMPLE_RATE).astype(int), int(round(params.context * SAMPLE_RATE)))
    amp = nullcontext() if dtype == torch.float32 else torch.autocast(model.device.type, dtype=dtype)
    out = []
    with torch.inference_mode():
        for window in windows:
            with amp:
                states = model.hidden_states(model.prepare(window[None].copy()))  # a view is read-only
            out.append([s[0, -1].float().cpu() for s in states])
    return out


# ------------------------------------------------------------------- encoding
def fit_at_scale(sizes, device: torch.device) -> dict:
    """Wall time and memory of one voxelwise ridge fit on random data of a real subject's size."""
    from bt_tutorial.alignment.encoding import BLOCK_ELEMENTS, CHUNK_BYTES, fit_encoding_model

    generator = torch.Generator(device=device).manual_seed(0)

    def normal(*shape):  # drawn on the device: numpy takes 5-15 s for the 3.4 GB of responses
        return torch.randn(shape, generator=generator, device=device).cpu().numpy()

    rows = sizes.enc_trs // sizes.enc_stories
    x_train = [normal(rows, sizes.enc_features) for _ in range(sizes.enc_stories)]
    y_train = [normal(rows, sizes.enc_voxels) for _ in range(sizes.enc_stories)]
    x_test, y_test = normal(sizes.enc_test, sizes.enc_features), normal(sizes.enc_test, sizes.enc_voxels)
    rss_before = _rss_gib()
    backend = "torch_cuda" if device.type == "cuda" else "torch"
    result, seconds, peak, reserved = clocked(lambda: fit_encoding_model(
        x_train, y_train, x_test, y_test, alphas=np.logspace(0, 14, 15), backend=backend), device)
    n = rows * sizes.enc_stories
    return {"wall_s": seconds, "gpu_peak_gib": peak, "gpu_reserved_gib": reserved,
            "host_peak_rss_gib": _rss_gib(), "host_rss_before_fit_gib": rss_before,
            "backend": result.backend, "solver": result.solver, "shape": [n, sizes.enc_features, sizes.enc_voxels],
            "voxels_per_chunk": max(1, CHUNK_BYTES // (n * 4)), "block_elements": BLOCK_ELEMENTS,
            "mean_test_r": float(np.nanmean(result.scores))}


def _rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ------------------------------------------------------------------- tuning
def tuning_section(report: Report, sizes, device: torch.device) -> None:
    from bt_tutorial.brain_tuning.benchmark import N_STORIES
    from bt_tutorial.brain_tuning.samples import TuningData, tr_windows

    rng = np.random.default_rng(0)
    n = tr_windows(np.zeros(1, np.float32), np.zeros(1), sizes.window_trs).shape[1]  # the loop's window length
    per_story = sizes.tuning_samples // N_STORIES
    windows = [rng.standard_normal((per_story, n), dtype=np.float32) for _ in range(N_STORIES)]
    warm = TuningData([windows[0][:sizes.batch]], [rng.standard_normal((sizes.batch, 8), dtype=np.float32)])
    for family in FAMILIES:  # kernels and allocator warmed once per model shape
        report.measure("tuning", f"{family}/warm_up", lambda: reference_tuning(family, warm, sizes, device))
    for n_voxels in sizes.voxels:
        targets = [rng.standard_normal((per_story, n_voxels), dtype=np.float32) for _ in range(N_STORIES)]
        train = TuningData(windows, targets)
        val = TuningData([windows[0][:sizes.batch]], [targets[0][:sizes.batch]])
        for family in FAMILIES:
            key = f"{family}/{n_voxels}"
            runs = {"mixed": report.measure("tuning", f"{key}/ours_mixed",
                                            lambda: ours_tuning(family, train, val, sizes, device, True)),
                    "reference": report.measure("tuning", f"{key}/reference_fp32",
                                                lambda: reference_tuning(family, train, sizes, device)),
                    "fp32": report.measure("tuning", f"{key}/ours_fp32",
                                           lambda: ours_tuning(family, train, val, sizes, device, False))}
            report.measure("tuning", f"{key}/summary", lambda: tuning_summary(runs, device))


def ours_tuning(family: str, train, val, sizes, device: torch.device, mixed: bool) -> dict:
    """One epoch of :func:`~bt_tutorial.brain_tuning.loop.train_model` (with its validation and saving)."""
    from bt_tutorial.brain_tuning.benchmark import timed
    from bt_tutorial.brain_tuning.loop import train_model
    from bt_tutorial.brain_tuning.settings import TuningConfig

    config = TuningConfig(window_trs=sizes.window_trs, batch_size=sizes.batch, effective_batch=sizes.effective_batch,
                          epochs=1, mixed_precision=mixed)
    model, voxels = copy.deepcopy(random_model(family, sizes.tiny)), np.arange(train.targets[0].shape[1])
    with tempfile.TemporaryDirectory(dir=SCRATCH) as out:
        done = {}
        seconds, peak = timed(lambda: done.update(r=train_model(model, train, val, voxels, out, config,
                                                                  device=device, progress=False)), device)
    reserved = _reserved_gib(device)
    training = done["r"].history[0]["samples_per_s"]
    dtype = mixed_dtype(device) if mixed and device.type == "cuda" else torch.float32
    return {"dtype": _name(dtype), "samples_per_s": training, "samples_per_s_with_val_and_save": len(train) / seconds,
            "peak_gib": None if math.isnan(peak) else peak, "reserved_gib": reserved,
            "epoch_min": EPOCH_SAMPLES / training / 60, "samples": len(train)}


def reference_tuning(family: str, train, sizes, device: torch.device) -> dict:
    """The paper-style loop of :mod:`bt_tutorial.brain_tuning.benchmark` on the same samples, fp32."""
    from bt_tutorial.brain_tuning.benchmark import reference_loop, timed

    stories = list(zip(train.windows, train.targets))
    model = copy.deepcopy(random_model(family, sizes.tiny))
    seconds, peak = timed(lambda: reference_loop(model, stories, sizes.batch, device), device)
    rate = len(train) / seconds
    return {"dtype": "fp32", "samples_per_s": rate, "peak_gib": None if math.isnan(peak) else peak,
            "reserved_gib": _reserved_gib(device), "epoch_min": EPOCH_SAMPLES / rate / 60}


def tuning_summary(runs: dict, device: torch.device) -> dict:
    """Speed-ups against the reference and whether the mixed-precision run fits a T4."""
    rate = {k: r.get("samples_per_s") for k, r in runs.items()}
    out = {}
    for k in ("mixed", "fp32"):  # the reference's time includes moving the model; ours, without and with its
        if rate[k] and rate["reference"]:  # validation and saving
            out[f"speedup_{k}"] = rate[k] / rate["reference"]
            out[f"speedup_{k}_with_val_and_save"] = runs[k]["samples_per_s_with_val_and_save"] / rate["reference"]
    reserved = runs["mixed"].get("reserved_gib")
    out["fits_t4_16gb"] = (reserved < T4_USABLE_GIB) if reserved is not None else f"n/a ({device.type})"
    if device.type == "cuda" and mixed_dtype(device) != torch.float16:
        out["t4_note"] = "measured in bf16; a T4 runs fp16 with a gradient scaler, same activation sizes"
    return out


# ------------------------------------------------------------------- multi-GPU
TWO_PROCESS_TEST = "tests/test_tuning.py::test_two_processes_under_accelerate_match_one_process"


def two_process_check(n_gpus: int) -> dict:
    """The repository's two-process accelerate test (CPU processes, gloo) when several GPUs are seen."""
    if n_gpus < 2:
        return {"status": f"{n_gpus} GPU: not run"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", TWO_PROCESS_TEST]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return {"status": "passed" if done.returncode == 0 else f"failed (rc {done.returncode})", "gpus": n_gpus,
            "tail": (done.stdout + done.stderr)[-1500:], "note": "the test's processes use the CPU (gloo)"}


# ------------------------------------------------------------------- command line
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models and data on the CPU: a smoke test")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/gpu_full_scale.json"))
    parser.add_argument("--budget-s", type=float, default=400.0,
                        help="no measurement starts after this many seconds")
    args = parser.parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        parser.error("no GPU is visible: the full-scale run needs one (use --tiny for the CPU check)")
    sizes = SimpleNamespace(**(TINY if args.tiny else FULL))
    device = torch.device("cpu" if args.tiny else "cuda")
    if args.tiny:
        torch.set_num_threads(1)  # tiny ops gain nothing from threads, and on a busy CPU they spin (4x slower)
    transformers.utils.logging.disable_progress_bar()  # save_pretrained's bars would drown the lines
    report = Report(args.json, args.budget_s, sizes, device)
    print(f"card: {_line(report.data['card'])}", flush=True)
    runners = {"features": features_section, "tuning": tuning_section,
               "encoding": lambda r, s, d: r.measure("encoding", "fit_encoding_model", lambda: fit_at_scale(s, d)),
               "multigpu": lambda r, s, d: r.measure("multigpu", "two_processes",
                                                     lambda: two_process_check(torch.cuda.device_count()))}
    for name in (s for s in SECTIONS if s in args.only):
        try:
            runners[name](report, sizes, device)
        except Exception as err:  # e.g. a package missing on the GPU machine: record it, go on
            report.record(name, "section", {"error": f"{type(err).__name__}: {err}",
                                            "where": traceback.format_exc(limit=-3)})
    report.save()
    print(f"done in {report.elapsed():.0f} s; results in {args.json}", flush=True)
    return report.data


if __name__ == "__main__":
    main()
