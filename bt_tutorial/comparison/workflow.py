"""Chapters 4-7 in one call: tune a model and its shuffled control, then measure the paper's effects.

Scripts that repeat the book over subjects or tuning recipes (``benchmarks/demo_effects.py``,
``benchmarks/specificity.py``) call these functions rather than copy the chapters. They use the
chapters' functions with two choices of their own, so that every subject and recipe is measured
alike: the encoding models fit every voxel, and the ROIs are the twin's own masks
(:func:`~bt_tutorial.synthetic.truth.twin_roi_masks`, both hemispheres together). Everything
runs on the CPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

# recipe changes on top of the demo sizes; "lag-ridge" is the demo's, "paper" the authors'
VARIANTS = {
    "paper": {"preset": "paper"},  # in one epoch only the head learns
    "lag-ridge": {"preset": "lag-ridge"},
    "no-lag": {"preset": "lag-ridge", "lag_trs": 0},
    "lag-1": {"preset": "lag-ridge", "lag_trs": 1},
    "random-head": {"preset": "lag-ridge", "head_init": "random"},
    "lag-ridge-eval": {"preset": "lag-ridge", "train_mode": False},  # the authors' eval mode
}
ROIS = ("late_language", "early_auditory", "primary_auditory")
MEASURES = ("alignment", "lowlevel", "downstream", "recovery")


def tuning_settings(variant: str, overrides: dict, control=None):
    """The demo's :class:`~bt_tutorial.brain_tuning.settings.TuningConfig` for one recipe of :data:`VARIANTS`.

    Parameters
    ----------
    variant : str
        A key of :data:`VARIANTS`.
    overrides : dict
        More settings (e.g. ``{"epochs": 2}``), applied last.
    control : str or None
        ``None`` for the brain-tuned model, or a control (``"chunk_permute"``, ...).
    """
    from bt_tutorial.brain_tuning.settings import profile_tuning_config

    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}; choose from {sorted(VARIANTS)}.")
    changes = dict(VARIANTS[variant])
    preset = changes.pop("preset")
    return profile_tuning_config("demo", preset, control=control, **changes, **overrides)


def train_pair(dataset, config, subject: str, variant: str, overrides: dict, root) -> dict:
    """Tune the brain-tuned model and its chunk-permuted control (chapter 4), or reload finished runs.

    Parameters
    ----------
    dataset : LebelDataset
    config : Config
        Its ``model_name`` and ``data_home`` give the pretrained model.
    subject : str
    variant, overrides
        As in :func:`tuning_settings`.
    root : path
        The runs go to ``root/brain-tuned`` and ``root/control``; each keeps the seconds its
        training took in ``bench_seconds.json``.

    Returns
    -------
    runs : dict of str -> dict
        Per model (``"brain-tuned"``, ``"control"``): ``seconds``, ``history``, ``initial``,
        ``best_epoch``, ``backbone`` (the tuned backbone's folder), ``n_voxels`` and ``settings``.
    """
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.brain_tuning.loop import brain_tune

    root, out = Path(root), {}
    for label, control in (("brain-tuned", None), ("control", "chunk_permute")):
        settings = tuning_settings(variant, overrides, control)
        t0 = time.perf_counter()
        model = load_speech_model(config.model_name, data_home=config.data_home, device="cpu")
        timing = root / label / "bench_seconds.json"
        trained_before = timing.is_file()
        result = brain_tune(model, dataset, subject, root / label, settings, resume=True, device="cpu",
                            progress=False)
        if not trained_before:  # a finished run is only reloaded: keep the time it took to train
            timing.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
        out[label] = {"seconds": json.loads(timing.read_text())["seconds"], "history": result.history,
                      "initial": result.initial, "best_epoch": result.best_epoch,
                      "backbone": str(result.backbone_dir), "n_voxels": int(len(result.voxels)),
                      "settings": settings.__dict__}
    return out


def measure_effects(dataset, config, subject: str, runs: dict, effects=MEASURES) -> dict:
    """The pretrained, brain-tuned and control models measured as chapters 5-7 measure them.

    Parameters
    ----------
    dataset : LebelDataset
    config : Config
    subject : str
    runs : dict
        From :func:`train_pair`: the tuned backbones' folders.
    effects : sequence of str
        Any of :data:`MEASURES`; the alignment (chapter 5) is always measured: it chooses the layer.

    Returns
    -------
    report : dict
        ``layer`` (chosen on the pretrained model), ``alignment`` (``{roi: {layer: rows}}`` of
        :func:`~bt_tutorial.comparison.effects.alignment_effects`), ``alignment_seconds``, and
        ``lowlevel``, ``recovery``, ``downstream`` where asked.
    """
    from bt_tutorial.alignment.layers import brain_alignment, story_feature_rows
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.alignment.noise_ceiling import cc_max
    from bt_tutorial.comparison.effects import alignment_effects, choose_layer
    from bt_tutorial.comparison.roi_tables import USABLE_CEILING, normalized_scores, paired_table
    from bt_tutorial.synthetic.truth import twin_roi_masks

    unknown = sorted(set(effects) - set(MEASURES))
    if unknown:
        raise ValueError(f"Unknown effects {unknown}; choose from {list(MEASURES)}.")
    models = {"pretrained": load_speech_model(config.model_name, data_home=config.data_home, device="cpu")}
    models.update({k: load_speech_model(runs[k]["backbone"], device="cpu") for k in ("brain-tuned", "control")})
    report, t0 = {}, time.perf_counter()
    align = {k: brain_alignment(m, dataset, subject, params=config.feature_params, progress=False)
             for k, m in models.items()}
    layers = align["pretrained"].layers
    ceiling = cc_max(dataset.load_repeats(subject, align["pretrained"].test_story))
    masks = twin_roi_masks(dataset.root, subject, hemispheres=False)
    normalized = normalized_scores(align, ceiling, USABLE_CEILING)
    pairs = paired_table(normalized, layers, masks, list(ROIS))
    chosen = choose_layer(normalized["pretrained"], layers)
    report["layer"] = chosen
    report["alignment"] = {
        roi: {str(k): alignment_effects(pairs, roi, k).reset_index().to_dict("records") for k in layers}
        for roi in ROIS}
    report["alignment_seconds"] = round(time.perf_counter() - t0, 1)
    split = dataset.split(subject)
    stories = split["train"] + [split["test"]]
    rows = None
    if {"lowlevel", "recovery"} & set(effects):
        n_rows = {s: len(dataset.load_responses(subject, s)) for s in stories}
        rows = {k: story_feature_rows(m, dataset, stories, layers, config.feature_params, n_rows, progress=False)
                for k, m in models.items()}
    if "lowlevel" in effects:
        report["lowlevel"] = lowlevel_effect(dataset, subject, rows, masks, ceiling, chosen, stories)
    if "recovery" in effects:
        from bt_tutorial.synthetic.recovery import recovery_table

        t0 = time.perf_counter()
        report["recovery"] = recovery_table(rows, dataset.root, split["train"], split["test"]).to_dict("records")
        report["recovery_seconds"] = round(time.perf_counter() - t0, 1)
    if "downstream" in effects:
        report["downstream"] = downstream_effect(models)
    return report


def lowlevel_effect(dataset, subject: str, rows: dict, masks: dict, ceiling, chosen: int, stories) -> dict:
    """Effect (b), chapter 6: the drop with every low-level set removed, at the chosen layer and the next.

    Parameters
    ----------
    rows : dict of str -> dict
        Per model, :func:`~bt_tutorial.alignment.layers.story_feature_rows`.
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
        Needs ``late_language``; its voxels with a ceiling over the usable one are compared.
    ceiling : ndarray, shape (n_voxels,)
    chosen : int
    stories : list of str
        The training stories, then the test story.

    Returns
    -------
    effect : dict
        Per layer: ``drops`` per model and the paired ``pairs`` rows; and ``seconds``.
    """
    from bt_tutorial.comparison.effects import lowlevel_effects
    from bt_tutorial.comparison.roi_tables import USABLE_CEILING
    from bt_tutorial.lowlevel.feature_sets import LOWLEVEL_SETS, lowlevel_rows
    from bt_tutorial.lowlevel.impact import lowlevel_impact

    t0 = time.perf_counter()
    split = dataset.split(subject)
    n_rows = {s: len(rows["pretrained"][chosen][s]) for s in stories}
    low = lowlevel_rows(dataset, stories, split["train"], LOWLEVEL_SETS, n_rows, top_diphones=50,
                        top_triphones=50, progress=False)
    every = "+".join(LOWLEVEL_SETS)
    out = {}
    for layer in sorted({chosen, min(chosen + 1, max(rows["pretrained"]))}):
        impacts = {k: lowlevel_impact(r, dataset, subject, sets=[every], layers=[layer], lowlevel=low)
                   for k, r in rows.items()}
        usable = masks["late_language"] & (ceiling > USABLE_CEILING)
        table = lowlevel_effects(impacts, usable, layer, every)
        drops = {k: float(imp.percent_drop({"late": usable}, layer)[every]["late"]) for k, imp in impacts.items()}
        out[str(layer)] = {"drops": drops, "pairs": table.reset_index().to_dict("records")}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def downstream_effect(models: dict) -> dict:
    """Effect (c), chapter 7: probes on every synthetic task, brain-tuned and control against pretrained.

    Parameters
    ----------
    models : dict of str -> SpeechModel
        ``"pretrained"``, ``"brain-tuned"`` and ``"control"``.

    Returns
    -------
    effect : dict
        ``pairs`` (rows of :func:`~bt_tutorial.comparison.effects.downstream_effects`) and ``seconds``.
    """
    from bt_tutorial.comparison.effects import BRAIN_PAIRS, downstream_effects
    from bt_tutorial.downstream.probes import probe_layers
    from bt_tutorial.synthetic.tasks import SYNTHETIC_TASKS, ensure_task

    t0 = time.perf_counter()
    tasks = {name: ensure_task(name, progress=False) for name in SYNTHETIC_TASKS}
    results = {k: {name: probe_layers(m, t, seeds=10, progress=False) for name, t in tasks.items()}
               for k, m in models.items()}
    table = downstream_effects(results, list(tasks), pairs=BRAIN_PAIRS + (("control", "pretrained"),))
    return {"pairs": table.to_dict("records"), "seconds": round(time.perf_counter() - t0, 1)}
