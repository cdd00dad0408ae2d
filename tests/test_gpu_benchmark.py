"""The GPU benchmark's entry point in the package (it runs on Colab), checked on the CPU with a tiny model."""

from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import pytest

from bt_tutorial.brain_tuning import benchmark

ROOT = Path(__file__).resolve().parents[1]


def test_the_benchmark_runs_every_loop_on_the_cpu_with_a_tiny_model():
    results = benchmark.run_benchmark(samples=8, batch_size=2, seconds=0.25, tiny=True, device="cpu")
    assert results["device"] == "CPU" and results["samples"] == 8 and results["model"] == "tiny random wav2vec2"
    for key in ("reference", "fp32", "mixed"):
        assert results[key]["samples_per_s"] > 0 and math.isnan(results[key]["peak_gib"])
        assert results[key]["dtype"] == "float32"  # no autocast on the CPU
    text = benchmark.format_results(results)
    assert "peak GPU memory n/a" in text and "speed-up vs reference" in text


def test_throughput_and_speedups_come_from_the_measured_times(monkeypatch):
    """Catches a speed-up inverted (t / t_ref) or a throughput per batch instead of per sample."""
    times = iter([(4.0, math.nan), (2.0, math.nan), (0.5, math.nan)])  # reference, fp32, mixed
    monkeypatch.setattr(benchmark, "timed", lambda fn, device: next(times))
    results = benchmark.run_benchmark(samples=8, batch_size=2, seconds=0.25, tiny=True, device="cpu")
    assert [results[k]["samples_per_s"] for k in ("reference", "fp32", "mixed")] == [2.0, 4.0, 16.0]
    assert (results["speedup_fp32"], results["speedup_mixed"]) == (2.0, 8.0)
    assert "fp32 2.00x, mixed 8.00x" in benchmark.format_results(results)


def test_too_few_samples_for_a_batch_per_story_is_an_error():
    with pytest.raises(ValueError, match=r"samples \(6\) must be at least 4 x batch_size \(2\)"):
        benchmark.run_benchmark(samples=6, batch_size=2, tiny=True, device="cpu")


CALLS = []


def fake_results(samples, batch_size, seconds, tiny, device):
    CALLS.append(dict(samples=samples, batch_size=batch_size, seconds=seconds, tiny=tiny, device=device))
    row = {"samples_per_s": 2.0, "peak_gib": 1.5, "dtype": "bfloat16"}
    return {"device": "fake GPU", "model": "m", "samples": 99, "batch_size": 3, "seconds": 0.5,
            "reference": dict(row, samples_per_s=1.0), "fp32": row, "mixed": row, "speedup_fp32": 2.0,
            "speedup_mixed": 2.0}


@pytest.mark.parametrize("entry", ["module", "wrapper"])
def test_the_module_and_the_benchmarks_script_share_one_command_line(entry, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(benchmark, "run_benchmark", fake_results)
    out = tmp_path / "r.json"
    argv = ["--tiny", "--json", str(out)]
    if entry == "module":
        benchmark.main(argv)
    else:  # benchmarks/gpu_tuning.py only forwards to the package's main
        monkeypatch.setattr(sys, "argv", ["gpu_tuning.py", *argv])
        runpy.run_path(str(ROOT / "benchmarks" / "gpu_tuning.py"), run_name="__main__")
    assert CALLS.pop() == dict(benchmark.TINY, tiny=True, device=None)  # --tiny means the tiny sizes
    assert json.loads(out.read_text()) == fake_results(99, 3, 0.5, True, None)  # what ran is what is saved
    CALLS.pop()
    assert "peak GPU memory 1.5 GiB" in capsys.readouterr().out
