"""Run chapters 1-7 in the ``full`` profile, offline, on a twin laid out as ds003020.

What a Colab user of the full profile does, with local stand-ins for the network:

- **the dataset**: a small synthetic twin named like ds003020 (the paper's story names,
  ``wheretheressmoke`` with repeats, ``stagefright``, subject UTS01, a ``mask_thick.nii.gz``)
  is served over HTTP on localhost; ``BT_DATASET_URL`` points chapter 1's download cell
  at it, so the chapters read what the real downloader wrote (no ``ground_truth/``);
- **ROI masks**: written from the twin's labels where ``python -m bt_tutorial.dataset.roi_build``
  writes them (that command is tested end to end on fakes in ``tests/test_roi_build.py``);
- **downstream tasks**: miniature Speech Commands, SLURP and CREMA-D in their real
  layouts under ``<data home>/downstream``, so chapter 7's loaders find them on disk;
- **the model**: ``BT_MODEL=tiny-wav2vec2`` (random weights, no download), at the full
  profile's feature setting (the paper's 16 s windows every 0.1 s unless ``--features``).

Any other request for the network fails: the kernels get a dead proxy and the Hugging
Face hub's offline mode. Each chapter runs in its own kernel; its time and peak memory
go to ``benchmarks/results/full_profile_book.json`` and the executed notebooks to
``<root>/executed/``::

    python tools/full_profile_book.py [--root DIR] [--chapters 1 2 3] [--features fast]

It took 79 minutes on 2 CPU cores shared with other work when chapter 4 trained two models for
10 epochs; the full profile now trains for the authors' 30 epochs, which makes chapter 4 about
three times longer (not rerun since). Chapter 5 extracts their features at 0.1 s. The exit code is 1 if a chapter
fails, with the failing cell's error.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bt_tutorial._local_http import serving

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
SUBJECT = "UTS01"
MODEL = "tiny-wav2vec2"
PEAK_MARK = "BT_PEAK_RSS_MB"
PEAK_CELL = ("import resource\n"
             f"print('{PEAK_MARK}', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")


def twin_spec():
    """One subject, five of the paper's training stories of 60 s, a 180 s test story with 4 repeats.

    The test story has about 80 rows, so that the full profile's scored rows (from row 40, as
    the authors' evaluation) leave about 40.
    """
    from bt_tutorial.dataset.stories import PAPER_TRAIN_STORIES
    from bt_tutorial.synthetic.twin import TwinSpec

    return TwinSpec(seed=0, n_subjects=1, n_train_stories=5, story_seconds=60.0, test_story_seconds=180.0,
                    n_repeats=4, train_story_names=PAPER_TRAIN_STORIES)


def build_mirror(mirror: Path, progress: bool = False) -> Path:
    """The twin as a server would hold ds003020, plus the subject's cortical mask volume."""
    import nibabel as nib

    from bt_tutorial.synthetic.cortex import N_POINTS
    from bt_tutorial.synthetic.twin import ensure_twin

    ensure_twin(mirror, twin_spec(), progress=progress)
    mask = mirror / "derivative" / "pycortex-db" / SUBJECT / "transforms" / f"{SUBJECT}_auto" / "mask_thick.nii.gz"
    if not mask.is_file():
        volume = np.zeros((16, 18, 20), dtype=np.uint8)
        volume.reshape(-1)[:N_POINTS] = 1
        mask.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(mask))
    return mirror


def write_roi_masks(mirror: Path, dataset_root: Path) -> Path:
    """The twin's ROI labels as the ROI build's mask file of the subject."""
    from bt_tutorial.dataset.atlas import default_roi_path, save_roi_masks
    from bt_tutorial.synthetic.truth import load_ground_truth, twin_roi_masks

    masks = twin_roi_masks(mirror, SUBJECT, hemispheres=True)  # as the build: areas, groups, outside, _L/_R
    hemi = load_ground_truth(mirror, SUBJECT)["hemi"]
    indices = {name: np.flatnonzero(m) for name, m in masks.items()}
    return save_roi_masks(default_roi_path(dataset_root, SUBJECT), indices, hemi.size, SUBJECT, hemi=hemi,
                          metadata={"source": "synthetic twin labels (tools/full_profile_book.py)"})


def _tone(label: int, speaker: int, clip: int, seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    """A clip whose pitch carries the label and whose timbre the speaker."""
    rng = np.random.default_rng(1000 * label + 10 * speaker + clip)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 180.0 * 1.25 ** label * (1 + 0.03 * speaker)
    wave = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 4 + speaker % 3))
    return (0.2 * wave / 2 + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def _write(path: Path, wave: np.ndarray, rate: int = 16000) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, rate, subtype="PCM_16")


def write_downstream_fakes(home: Path, n_speakers: int = 6, n_clips: int = 3) -> None:
    """Speech Commands v2, SLURP and CREMA-D in miniature, in the layouts their loaders read."""
    words = ("yes", "no", "up", "down")
    root = home / "downstream" / "speech_commands"
    test = []
    for w, word in enumerate(words):
        for s in range(n_speakers):
            for k in range(n_clips):
                name = f"{word}/spk{s:04d}_nohash_{k}.wav"
                _write(root / name, _tone(w, s, k))
                test += [name] if s >= n_speakers - 2 else []
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "validation_list.txt").write_text("")

    root = home / "downstream" / "slurp"
    text_dir, intents, metadata = root / "dataset" / "slurp", ("alarm_set", "play_music", "weather_query"), {}
    text_dir.mkdir(parents=True, exist_ok=True)
    for part, speakers in (("train", range(0, 3)), ("devel", range(3, 4)), ("test", range(4, n_speakers))):
        lines = []
        for i, intent in enumerate(intents):
            for s in speakers:
                for k in range(n_clips):
                    name = f"audio-{i}{s}{k}-headset.flac"
                    _write(root / "audio" / "slurp_real" / name, _tone(i, s, k))
                    lines.append(json.dumps({"slurp_id": len(metadata), "sentence": f"{intent} {k}",
                                             "intent": intent, "scenario": intent.split("_")[0],
                                             "action": intent.split("_", 1)[1], "recordings": [{"file": name}]}))
                    metadata[str(len(metadata))] = {"recordings": {name: {"usrid": f"U{s}"}}}
        (text_dir / f"{part}.jsonl").write_text("\n".join(lines) + "\n")
    (text_dir / "metadata.json").write_text(json.dumps(metadata))

    root = home / "downstream" / "crema_d"
    names = []
    for e, emotion in enumerate(("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")):
        for a in range(n_speakers):
            for k, sentence in enumerate(("DFA", "IEO", "TIE")[:n_clips]):
                names.append(f"{1001 + a}_{sentence}_{emotion}_XX")
                _write(root / "AudioWAV" / f"{names[-1]}.wav", _tone(e, a, k))
    with open(root / "SentenceFilenames.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Stimulus_Number", "Filename"])
        writer.writerows(enumerate(names, 1))


def write_registry(mirror: Path, out: Path) -> Path:
    """A registry of sizes and MD5s (``path,size,md5``) of every file the mirror serves.

    The twin is not ds003020's snapshot, so the shipped registry would refuse its files; this one
    lets the chapters' downloads be checked the same way, against the twin's own checksums.
    """
    from bt_tutorial.dataset.file_formats import file_md5

    rows = [f"{f.relative_to(mirror).as_posix()},{f.stat().st_size},{file_md5(f)}"
            for f in sorted(mirror.rglob("*")) if f.is_file()]
    out.write_text("path,size,md5\n" + "\n".join(rows) + "\n")
    return out


def offline_env(home: Path, url: str, features: str | None, registry: Path | None = None) -> dict:
    """The kernels' environment: full profile, tiny model, only localhost reachable, the mirror's registry."""
    dead = "http://127.0.0.1:9"  # discard port: any other request fails at once
    env = {"BT_PROFILE": "full", "BT_DATA": str(home), "BT_SUBJECT": SUBJECT, "BT_MODEL": MODEL,
           "BT_DATASET_URL": url, "BT_PROGRESS": "0", "BT_INTERACTIVE": "0",
           "BT_DATASET_REGISTRY": str(registry) if registry else "none",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
           "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    if features:
        env["BT_FEATURES"] = features
    return env


def run_chapter(path: Path, out: Path, timeout: int) -> dict:
    """Execute one chapter in a fresh kernel; its time, peak memory and error (None if it ran)."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = jupytext.read(path)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(BOOK)}})
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = str(exc)
    seconds = time.perf_counter() - start
    nbformat.write(nb, out / f"{path.stem}.ipynb")
    peak = None
    for output in nb.cells[-1].get("outputs", []):
        if output.get("name") == "stdout" and PEAK_MARK in output.get("text", ""):
            peak = float(output["text"].split()[-1])
    return {"chapter": path.stem, "seconds": round(seconds, 1), "peak_rss_mb": peak and round(peak),
            "error": error}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="working folder (default: a new temporary folder)")
    parser.add_argument("--chapters", nargs="+", type=int, default=list(range(1, 8)))
    parser.add_argument("--features", help="BT_FEATURES for the chapters (default: the full profile's)")
    parser.add_argument("--timeout", type=int, default=2400, help="seconds per cell")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "full_profile_book.json")
    args = parser.parse_args(argv)

    root = args.root or Path(tempfile.mkdtemp(prefix="bt_full_book_"))
    home, executed = root / "home", root / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    mirror = build_mirror(root / "mirror")
    write_roi_masks(mirror, home / "ds003020")
    write_downstream_fakes(home)
    runs = []
    with serving(directory=mirror) as url:
        os.environ.update(offline_env(home, url, args.features, write_registry(mirror, root / "mirror_md5.csv")))
        print(f"mirror {url} <- {mirror}; data home {home}", flush=True)
        for number in args.chapters:
            path = next(BOOK.glob(f"{number:02d}_*.md"))
            runs.append(run_chapter(path, executed, args.timeout))
            run = runs[-1]
            print(f"{run['chapter']}: {'FAILED' if run['error'] else 'ok'} in {run['seconds']:.0f} s, "
                  f"peak {run['peak_rss_mb']} MB", flush=True)
            if run["error"]:
                print(run["error"][-4000:], file=sys.stderr)
                break
    failed = any(r["error"] for r in runs)
    if not failed:  # chapters run before, in the same setting, keep their figures
        write_results(args.out, runs, args.features)
    return 1 if failed else 0


def write_results(out: Path, runs: list, features: str | None) -> None:
    command = "python tools/full_profile_book.py" + (f" --features {features}" if features else "")
    old = json.loads(out.read_text()) if out.is_file() else {}
    chapters = {r["chapter"]: r for r in old.get("chapters", [])} if old.get("command") == command else {}
    chapters.update({r["chapter"]: {**r, "date": time.strftime("%Y-%m-%d")} for r in runs})
    result = {"command": command, "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}", "model": MODEL,
              "twin": twin_spec().as_json(), "chapters": [chapters[k] for k in sorted(chapters)]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
