"""Rehearse the full profile at real scale on the CPU: peak host memory, disk and time per stage.

A twin of real size (:data:`bt_tutorial.synthetic.twin.REAL_SCALE`: one subject, 95,556
voxels, the paper's 24 training stories of about 350 TRs, a validation story and the
test story with 10 repeats) stands in for a subject of ds003020. Each stage runs in its
own process, so its peak resident memory (``ru_maxrss``) is its own:

- ``features``: the paper's 16 s windows every 0.1 s for two stories, tiny model, cached;
- ``encoding``: the ridge fit of one layer on all voxels and all training stories, with
  features of a base model's shape (768 columns x 4 delays, random: the fit's memory and
  time depend on the shapes only);
- ``noise_ceiling``: ``cc_max`` of the test story's repeats, every voxel;
- ``tuning``: one brain-tuning epoch on two training stories at the paper's window;
- ``lowlevel``: chapter 6's path for one layer: the low-level sets of every story (200
  diphones and triphones, as the full profile keeps), all six removed from random
  features of a base model's shape, and the encoding fits before and after on the voxels
  with a usable ceiling (``voxels=``, as the chapter fits them), while the rows of three
  models x 13 layers are held as the chapter holds them;
- ``roi``: ``python -m bt_tutorial.dataset.roi_build`` (its ``main``) on fakes of a real subject's
  size (:mod:`roi_fakes`: 150,000 vertices per hemisphere, fsaverage's 163,842, the 95,556
  voxels of UTS03's mask), written by the parent into ``<root>_roi_fakes/`` and downloaded
  from 127.0.0.1 by the stage (the twin is not used);

    python benchmarks/full_profile_rehearsal.py --root /tmp/real_scale [--small]

``--small`` runs every stage on a small twin and small ROI fakes (a check of the script,
in a few minutes).
Results go to ``benchmarks/results/full_profile_rehearsal.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # roi_fakes, beside this file
STAGES = ("twin", "features", "encoding", "noise_ceiling", "tuning", "roi", "lowlevel")
MODEL = "tiny-wav2vec2"
BASE_WIDTH = 768  # hidden size of wav2vec2-base, HuBERT base


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # kB on Linux


def folder_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e9


def spec_for(small: bool):
    from bt_tutorial.synthetic.twin import REAL_SCALE

    if not small:
        return REAL_SCALE
    return replace(REAL_SCALE, n_train_stories=3, story_seconds=60.0, test_story_seconds=60.0, n_voxels=8000)


class FewStories:
    """A dataset whose split keeps the first ``n`` training stories."""

    def __init__(self, dataset, n: int):
        self._dataset, self._n = dataset, n

    def split(self, subject, *args, **kwargs):
        split = self._dataset.split(subject, *args, **kwargs)
        return {**split, "train": split["train"][: self._n]}

    def __getattr__(self, name):
        return getattr(self._dataset, name)


def stage_twin(root: Path, small: bool) -> dict:
    from bt_tutorial.synthetic.twin import ensure_twin

    ensure_twin(root, spec_for(small), progress=False)
    return {"disk_gb": round(folder_gb(root), 2)}


def stage_features(root: Path, small: bool) -> dict:
    from bt_tutorial.alignment.features import story_rows
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.config import PAPER_PARAMS
    from bt_tutorial.dataset.reader import LebelDataset

    dataset, model = LebelDataset(root), load_speech_model(MODEL)
    cache = root.parent / f"{root.name}_feature_cache"
    shutil.rmtree(cache, ignore_errors=True)
    stories = dataset.split("UTS01")["train"][:2]
    seconds = sum(len(dataset.load_audio(s, 16000).waveform) / 16000 for s in stories)
    layers = list(range(model.n_layers + 1))
    for story in stories:
        story_rows(model, dataset, story, layers, PAPER_PARAMS, cache_dir=cache, progress=False)
    return {"stories": len(stories), "audio_s": round(seconds), "layers": len(layers),
            "hidden_size": model.hidden_size, "cache_gb": round(folder_gb(cache), 3),
            "cache_gb_per_hour_per_768_wide_layer": round(
                folder_gb(cache) / (seconds / 3600) / len(layers) * BASE_WIDTH / model.hidden_size, 3)}


def stage_encoding(root: Path, small: bool) -> dict:
    from bt_tutorial.alignment.encoding import fit_encoding_model
    from bt_tutorial.dataset.reader import LebelDataset
    from bt_tutorial.dataset.timing import make_delayed

    dataset = LebelDataset(root)
    split = dataset.split("UTS01")
    rng = np.random.default_rng(0)
    y_train = [dataset.load_responses("UTS01", s).astype(np.float32) for s in split["train"]]
    y_test = dataset.load_responses("UTS01", split["test"]).astype(np.float32)
    x_train = [make_delayed(rng.standard_normal((len(y), BASE_WIDTH)).astype(np.float32), (1, 2, 3, 4))
               for y in y_train]
    x_test = make_delayed(rng.standard_normal((len(y_test), BASE_WIDTH)).astype(np.float32), (1, 2, 3, 4))
    result = fit_encoding_model(x_train, y_train, x_test, y_test)
    return {"train_trs": sum(map(len, y_train)), "voxels": y_test.shape[1], "columns": x_test.shape[1],
            "solver": result.solver, "responses_gb": round(sum(y.nbytes for y in y_train) / 1e9, 2)}


def stage_noise_ceiling(root: Path, small: bool) -> dict:
    from bt_tutorial.alignment.noise_ceiling import cc_max
    from bt_tutorial.dataset.reader import LebelDataset

    dataset = LebelDataset(root)
    repeats = dataset.load_repeats("UTS01", dataset.split("UTS01")["test"])
    ceiling = cc_max(repeats)
    return {"repeats_shape": list(repeats.shape), "repeats_gb": round(repeats.nbytes / 1e9, 2),
            "voxels_above_0.4": int(np.sum(ceiling > 0.4))}


def stage_tuning(root: Path, small: bool) -> dict:
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.brain_tuning.loop import brain_tune
    from bt_tutorial.brain_tuning.settings import profile_tuning_config
    from bt_tutorial.dataset.reader import LebelDataset

    dataset = FewStories(LebelDataset(root), 2)
    config = replace(profile_tuning_config("full"), epochs=1, batch_size=8, effective_batch=32,
                     mixed_precision=False)
    out = root.parent / f"{root.name}_tuned"
    result = brain_tune(load_speech_model(MODEL), dataset, "UTS01", out, config, device="cpu",
                        progress=False, overwrite=True)
    return {"voxels": len(result.voxels), "samples_per_s": round(result.history[-1]["samples_per_s"], 1),
            "run_folder_gb": round(folder_gb(out), 3)}


def stage_lowlevel(root: Path, small: bool) -> dict:
    from bt_tutorial.alignment.noise_ceiling import cc_max
    from bt_tutorial.comparison.roi_tables import USABLE_CEILING
    from bt_tutorial.dataset.reader import LebelDataset
    from bt_tutorial.lowlevel.feature_sets import LOWLEVEL_SETS, lowlevel_rows, ngram_vocabularies
    from bt_tutorial.lowlevel.impact import lowlevel_impact

    dataset = LebelDataset(root)
    split = dataset.split("UTS01")
    stories = split["train"] + [split["test"]]
    n_rows = {s: len(dataset.tr_times(s)) for s in stories}
    vocabularies = ngram_vocabularies(dataset, split["train"], LOWLEVEL_SETS, 200, 200)
    t0 = time.perf_counter()
    lowlevel = lowlevel_rows(dataset, stories, split["train"], LOWLEVEL_SETS, n_rows, vocabularies=vocabularies)
    lowlevel_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    held = [{s: rng.standard_normal((n, BASE_WIDTH)).astype(np.float32) for s, n in n_rows.items()}
            for _ in range(3 * 13)]  # chapter 6 holds every layer of three models
    fit_voxels = cc_max(dataset.load_repeats("UTS01", split["test"])) > USABLE_CEILING
    all_sets = "+".join(LOWLEVEL_SETS)
    impact = lowlevel_impact({0: held[0]}, dataset, "UTS01", sets=[all_sets], lowlevel=lowlevel, voxels=fit_voxels)
    return {"train_trs": sum(n_rows[s] for s in split["train"]), "voxels": len(fit_voxels),
            "voxels_fitted": int(fit_voxels.sum()), "model_columns": BASE_WIDTH,
            "lowlevel_columns": int(sum(lowlevel[split["test"]][name].shape[1] for name in LOWLEVEL_SETS)),
            "held_rows_gb": round(sum(a.nbytes for h in held for a in h.values()) / 1e9, 2),
            "lowlevel_features_s": round(lowlevel_s, 1), "fits": 2,
            "mean_r_orig": round(float(np.nanmean(impact.r_orig[0])), 4)}


def roi_fakes_info(root: Path, small: bool, write: bool = False) -> dict:
    """Figures of the ROI fakes of this root (written first if ``write``; see :mod:`roi_fakes`)."""
    import roi_fakes as fakes

    folder = root.parent / f"{root.name}_roi_fakes"
    if write:
        return {"folder": str(folder), **fakes.ensure_roi_fakes(folder, fakes.SMALL if small else fakes.REAL)}
    return {"folder": str(folder), **json.loads((folder / "fakes.json").read_text())}


def stage_roi(root: Path, small: bool) -> dict:
    import os

    from roi_fakes import atlas_pins

    from bt_tutorial._local_http import serving
    from bt_tutorial.dataset import atlas, roi_build
    from bt_tutorial.dataset.rois import PAPER_ROI_SETS

    info = roi_fakes_info(root, small)
    served, data = Path(info["folder"]) / "served", Path(info["folder"]) / "data"
    shutil.rmtree(data, ignore_errors=True)  # every input is downloaded again
    roi_build.ATLAS_FILES = atlas_pins(served, roi_build.ATLAS_FILES)  # MD5s of the fakes, as the tests pin them
    for name in ("no_proxy", "NO_PROXY"):
        os.environ[name] = "127.0.0.1,localhost"
    with serving(directory=served) as url:
        code = roi_build.main(["--subject", info["subject"], "--data", str(data), "--base-url", f"{url}/ds003020",
                               "--atlas-url", f"{url}/atlas", "--quiet"])
    if code:
        raise RuntimeError(f"roi_build exited with {code}")
    out = atlas.default_roi_path(data, info["subject"])
    masks = atlas.load_roi_masks(out)
    inputs = [data / src.relpath for src in roi_build.plan_sources(info["subject"], "x", "x").values()]
    return {"vertices_per_hemisphere": info["spec"]["n_vertices"], "fsaverage_vertices": info["spec"]["n_fsaverage"],
            "voxels": int(atlas.read_roi_info(out)["n_voxels"]), "voxels_crossed": info["voxels_crossed"],
            "labelled": {g: int(masks[g].sum()) for g in PAPER_ROI_SETS},
            "output_mb": round(out.stat().st_size / 1e6, 2),
            "downloaded_mb": round(sum(p.stat().st_size for p in inputs) / 1e6, 1)}


def run_stage(name: str, root: Path, small: bool) -> dict:
    """Run one stage in a fresh process; return its figures, peak RSS and time."""
    cmd = [sys.executable, __file__, "--root", str(root), "--stage", name] + (["--small"] if small else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"stage {name} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {**figures, "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="where the real-scale twin lives")
    parser.add_argument("--small", action="store_true", help="a small twin: check the script")
    parser.add_argument("--stage", choices=STAGES, help="run one stage in this process (internal)")
    parser.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "full_profile_rehearsal.json")
    args = parser.parse_args(argv)
    if args.stage:
        if args.stage != "roi":  # roi_build needs no torch: its import would count in the peak
            import torch

            torch.set_num_threads(max(1, torch.get_num_threads()))
        figures = globals()[f"stage_{args.stage}"](args.root, args.small)
        print(json.dumps({**figures, "peak_rss_gb": round(peak_rss_gb(), 2)}))
        return 0
    results = {"stages": {}}
    if not args.small and args.out.is_file():  # stages run before keep their figures
        results = json.loads(args.out.read_text())
    results.update(machine=f"{platform.machine()}, {__import__('os').cpu_count()} cores", small=args.small)
    for name in args.only:
        fakes = roi_fakes_info(args.root, args.small, write=True) if name == "roi" else {}  # here, not measured
        results["stages"][name] = run_stage(name, args.root, args.small)
        if fakes:
            results["stages"][name]["fakes"] = {k: fakes[k] for k in (
                "served_mb", "generate_s", "mid_surface_mm2", "samples_in_volume", "samples_in_mask",
                "mask_max_mm_from_mid_surface")}
        print(name, results["stages"][name], flush=True)
    if not args.small:
        args.out.write_text(json.dumps(results, indent=1))
        print("written", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
