"""Can brain-tuning on the twin favour late language over early auditory? An oracle answer (chapter 5).

    PYTHONPATH=. .venv/bin/python benchmarks/specificity.py [--subjects UTS01 UTS02 UTS03] [--layer 2]

The paper finds brain-tuning's alignment gain larger in late language than in early
auditory cortex. Whether the twin can show that depends on its design, so this asks the
twin directly. The pretrained model's features at one layer get the twin's true semantic
drive, or its true low-level drive, appended as extra columns, and the encoding models are
fitted again (same delays, ridge and scores as ``brain_alignment``). The gain in normalised
alignment per ROI is what a model would gain if tuning had taught it exactly that drive:

- semantic gains larger in late language than in early auditory: the design lets a model
  that learns meaning show the paper's specificity;
- low-level gains larger in early auditory: a model that sharpens its acoustics gains there.

Written to ``benchmarks/results/specificity.json``.

With ``--tune-on late_language`` it also tests why the demo's tuning gains as much in early
auditory as in late language: the brain-tuned model and its control are tuned as in
chapter 4 (demo sizes, lag-ridge recipe) but on the late-language targets only, and the
three models are compared per ROI with the book's functions (:func:`bt_tutorial.comparison.workflow.measure_effects`).
Runs go to ``$BT_DATA/bench_runs/tune-on-<roi>/<subject>``; written to
``benchmarks/results/specificity_tuned.json``.

    PYTHONPATH=. .venv/bin/python benchmarks/specificity.py --subjects UTS01 --tune-on late_language
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bt_tutorial.alignment.encoding import fit_encoding_model
from bt_tutorial.alignment.layers import DELAYS, split_responses, story_feature_rows
from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.alignment.noise_ceiling import cc_max, normalized_alignment
from bt_tutorial.comparison.roi_tables import USABLE_CEILING
from bt_tutorial.config import get_config
from bt_tutorial.dataset.timing import make_delayed
from bt_tutorial.profiles import open_dataset
from bt_tutorial.synthetic.recovery import TRUTH_SETS, truth_rows
from bt_tutorial.synthetic.truth import twin_roi_masks

ROIS = ("late_language", "early_auditory", "primary_auditory")


def roi_alignment(rows: dict, dataset, subject: str, rois=ROIS) -> dict:
    """Mean normalised alignment per ROI of encoding models fitted on ``rows``.

    Parameters
    ----------
    rows : dict of str -> ndarray, shape (n_rows, n_features)
        Features of every training story and of the test story, on their response rows.

    Returns
    -------
    means : dict of str -> float
        Over the ROI's voxels whose noise ceiling is above ``USABLE_CEILING``.
    """
    split = dataset.split(subject)
    y_train, y_test, _, _ = split_responses(dataset, subject)
    x_train = [make_delayed(rows[s], DELAYS, s) for s in split["train"]]
    x_test = make_delayed(rows[split["test"]], DELAYS, split["test"])
    scores = fit_encoding_model(x_train, y_train, x_test, y_test).scores
    ceiling = cc_max(dataset.load_repeats(subject, split["test"]))
    normalized = normalized_alignment(scores, ceiling, USABLE_CEILING)
    masks = twin_roi_masks(dataset.root, subject, hemispheres=False)
    return {roi: float(np.nanmean(normalized[masks[roi]])) for roi in rois}


def oracle_gains(model_rows: dict, dataset, subject: str, sets=TRUTH_SETS, rois=ROIS) -> dict:
    """Alignment per ROI of ``model_rows`` alone and its gain with each true drive appended.

    Returns
    -------
    result : dict
        ``"model"``: ROI -> alignment; for each set, ROI -> gain over ``"model"``.
    """
    base = roi_alignment(model_rows, dataset, subject, rois)
    out = {"model": base}
    for set_name in sets:
        truth = truth_rows(dataset.root, list(model_rows), set_name)
        joined = {s: np.hstack([model_rows[s], truth[s]]) for s in model_rows}
        with_truth = roi_alignment(joined, dataset, subject, rois)
        out[set_name] = {roi: with_truth[roi] - base[roi] for roi in rois}
    return out


def targets_in_roi(data, voxels: np.ndarray, inside: np.ndarray) -> tuple:
    """Training or validation data cut to the target voxels inside an ROI.

    Parameters
    ----------
    data : TuningData
    voxels : ndarray of int, shape (n_targets,)
        Response columns of ``data.targets``.
    inside : ndarray of bool, shape (n_voxels,)

    Returns
    -------
    data : TuningData
        Same windows, targets of shape (n_rows_i, n_kept).
    voxels : ndarray of int, shape (n_kept,)
    """
    from bt_tutorial.brain_tuning.samples import TuningData

    keep = inside[voxels]
    return TuningData(data.windows, [t[:, keep] for t in data.targets]), voxels[keep]


def tune_on_roi(dataset, config, subject: str, roi: str, root: Path) -> dict:
    """Brain-tuned model and control of chapter 4, tuned on the targets inside ``roi`` only."""
    from bt_tutorial.brain_tuning.loop import train_model
    from bt_tutorial.brain_tuning.samples import prepare_tuning_data
    from bt_tutorial.comparison.workflow import tuning_settings

    inside = twin_roi_masks(dataset.root, subject, hemispheres=False)[roi]
    runs = {}
    for label, control in (("brain-tuned", None), ("control", "chunk_permute")):
        settings = tuning_settings("lag-ridge", {}, control)
        model = load_speech_model(config.model_name, data_home=config.data_home, device="cpu")
        train, val, voxels = prepare_tuning_data(model, dataset, subject, settings)
        train, kept = targets_in_roi(train, voxels, inside)
        val, _ = targets_in_roi(val, voxels, inside)
        result = train_model(model, train, val, kept, root / label, settings, resume=True, device="cpu",
                             progress=False, subject=subject)
        runs[label] = {"backbone": str(result.backbone_dir), "n_voxels": int(len(kept)),
                       "best_epoch": result.best_epoch}
    return runs


def tuned_gains(measures: dict, rois=ROIS) -> dict:
    """Paired differences per ROI at the layer chosen on the pretrained model (from :func:`bt_tutorial.comparison.workflow.measure_effects`)."""
    layer = str(measures["layer"])
    return {roi: {r["comparison"]: {k: r[k] for k in ("difference", "low", "high", "verdict")}
                  for r in measures["alignment"][roi][layer]} for roi in rois}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", nargs="+", default=["UTS01", "UTS02", "UTS03"])
    parser.add_argument("--layer", type=int, default=2, help="hidden state of the pretrained model")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--tune-on", default=None, choices=ROIS,
                        help="tune on this ROI's targets only and compare the models per ROI")
    args = parser.parse_args(argv)
    config = get_config(profile="demo")
    dataset = open_dataset(config)
    if args.tune_on:
        return tuned_on_roi_main(args, config, dataset)
    args.out = args.out or Path("benchmarks/results/specificity.json")
    model = load_speech_model(config.model_name, data_home=config.data_home, device="cpu")
    out = {"layer": args.layer, "model": config.model_name, "subjects": {}}
    for subject in args.subjects:
        split = dataset.split(subject)
        stories = split["train"] + [split["test"]]
        n_rows = {s: len(dataset.load_responses(subject, s)) for s in stories}
        rows = story_feature_rows(model, dataset, stories, [args.layer], config.feature_params, n_rows,
                                  progress=False)[args.layer]
        result = oracle_gains(rows, dataset, subject)
        out["subjects"][subject] = result
        print(subject, json.dumps(result, indent=None, default=lambda v: round(v, 4)), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    return 0


def tuned_on_roi_main(args, config, dataset) -> int:
    from bt_tutorial.comparison.workflow import measure_effects

    out = {"tuned_on": args.tune_on, "model": config.model_name, "subjects": {}}
    path = args.out or Path("benchmarks/results/specificity_tuned.json")
    for subject in args.subjects:
        root = config.data_home / "bench_runs" / f"tune-on-{args.tune_on}" / subject
        runs = tune_on_roi(dataset, config, subject, args.tune_on, root)
        measures = measure_effects(dataset, config, subject, runs, effects=())
        out["subjects"][subject] = {"runs": runs, "layer": measures["layer"], "gains": tuned_gains(measures)}
        print(subject, json.dumps(out["subjects"][subject]["gains"], default=lambda v: round(v, 4)), flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
