"""The paper's three effects, each against the pretrained model and the shuffled control.

(a) **Alignment**: normalised alignment in late language regions, brain-tuned minus
    pretrained and minus control (rows of :func:`~bt_tutorial.comparison.roi_tables.paired_table`).
(b) **Low-level impact**: the percentage drop of late-language alignment when the
    low-level features are regressed out, brain-tuned minus the other model, with a
    paired bootstrap over voxels; the paper expects it *lower* after brain-tuning.
(c) **Downstream**: probe scores, brain-tuned minus the other model, paired by seed;
    semantic tasks should improve over the control and the phoneme task should not.

Each effect gets a verdict from its interval (and p-value where there is one), and
:func:`effect_holds` says whether a row shows the paper's direction.
"""

from __future__ import annotations

import textwrap

import numpy as np

from bt_tutorial.stats import format_p, percent_lost, percentile_interval, resampled_means, verdict

BRAIN_PAIRS = (("brain-tuned", "pretrained"), ("brain-tuned", "control"))


def choose_layer(normalized_pretrained: np.ndarray, layers) -> int:
    """The layer shown in detail: the pretrained model's best mean normalised alignment.

    Chosen on the pretrained model only (over all usable voxels), so the choice
    cannot flatter a tuned model.

    Parameters
    ----------
    normalized_pretrained : ndarray, shape (n_layers, n_voxels)
        NaN where the noise ceiling is too low.
    layers : sequence of int

    Returns
    -------
    layer : int
    """
    means = np.nanmean(np.asarray(normalized_pretrained, float), axis=1)
    if len(means) != len(layers) or not np.isfinite(means).any():
        raise ValueError("normalized_pretrained needs one row per layer and some finite values.")
    return int(list(layers)[int(np.nanargmax(means))])


def alignment_effects(pairs, roi: str = "late_language", layer: int | None = None):
    """Effect (a): the rows of a paired table for one ROI and layer, with verdicts.

    Parameters
    ----------
    pairs : pandas DataFrame
        From :func:`~bt_tutorial.comparison.roi_tables.paired_table`.
    roi : str
    layer : int

    Returns
    -------
    table : pandas DataFrame
        ``comparison, difference, low, high, p_value, verdict``, indexed by comparison.
    """
    rows = pairs[(pairs["roi"] == roi) & (pairs["layer"] == layer)]
    if rows.empty:
        raise KeyError(f"No paired comparison for ROI {roi!r} at layer {layer}.")
    out = rows[["comparison", "difference", "low", "high", "p_value"]].copy()
    out["verdict"] = [verdict(r) for _, r in rows.iterrows()]
    return out.set_index("comparison")


def percent_drop_difference(r_orig_a, r_resid_a, r_orig_b, r_resid_b, mask, n_boot: int = 2000,
                            level: float = 0.95, seed: int = 0) -> dict:
    """Percentage drop of model a minus that of model b over one ROI, paired bootstrap over voxels.

    ``drop = 100 (mean r_orig - mean r_resid) / mean r_orig`` over the ROI's
    voxels (a ratio of means, as :func:`~bt_tutorial.lowlevel.impact.percent_drop`);
    each bootstrap sample resamples the same voxels for both models.

    Parameters
    ----------
    r_orig_a, r_resid_a, r_orig_b, r_resid_b : ndarray, shape (n_voxels,)
    mask : ndarray of bool, shape (n_voxels,)

    Returns
    -------
    result : dict
        ``drop_a``, ``drop_b``, ``difference`` (a - b, percentage points), ``low``, ``high``.
    """
    values = np.stack([np.asarray(v, float)[np.asarray(mask, bool)]
                       for v in (r_orig_a, r_resid_a, r_orig_b, r_resid_b)])
    values = values[:, np.isfinite(values).all(axis=0)]
    if values.shape[1] < 2:
        nan = float("nan")
        return {"drop_a": nan, "drop_b": nan, "difference": nan, "low": nan, "high": nan}

    def drops(means):
        return percent_lost(means[0], means[1]), percent_lost(means[2], means[3])

    drop_a, drop_b = drops(values.mean(axis=1))
    a, b = drops(resampled_means(values, n_boot, np.random.default_rng(seed)))
    low, high = percentile_interval(a - b, level)
    return {"drop_a": float(drop_a), "drop_b": float(drop_b), "difference": float(drop_a - drop_b),
            "low": low, "high": high}


def lowlevel_effects(impacts: dict, mask, layer: int, set_name: str, pairs=BRAIN_PAIRS, **kwargs):
    """Effect (b): paired differences of the percentage drop, with verdicts.

    Parameters
    ----------
    impacts : dict of str -> LowLevelImpact
        Per model, with ``layer`` and ``set_name`` fitted.
    mask : ndarray of bool, shape (n_voxels,)
        The ROI's usable voxels.
    layer : int
    set_name : str
    pairs : sequence of (str, str)
    **kwargs
        Passed to :func:`percent_drop_difference`.

    Returns
    -------
    table : pandas DataFrame indexed by comparison
        ``drop_a, drop_b, difference, low, high, verdict`` (``"lower"``: the
        first model's alignment rests less on low-level features).
    """
    import pandas as pd

    rows = {}
    for a, b in pairs:
        ia, ib = impacts[a], impacts[b]
        d = percent_drop_difference(ia.r_orig[layer], ia.r_resid[(layer, set_name)],
                                    ib.r_orig[layer], ib.r_resid[(layer, set_name)], mask, **kwargs)
        rows[f"{a} - {b}"] = {**d, "verdict": verdict(d)}
    return pd.DataFrame(rows).T.rename_axis("comparison")


def downstream_effects(results: dict, tasks, pairs=BRAIN_PAIRS):
    """Effect (c): probe score differences at each model's validation-chosen layer.

    Parameters
    ----------
    results : dict of str -> dict of str -> dict of int -> ProbeResult
        ``results[model][task][layer]`` from :func:`~bt_tutorial.downstream.probes.probe_layers`.
    tasks : sequence of str
    pairs : sequence of (str, str)

    Returns
    -------
    table : pandas DataFrame
        ``task, comparison, difference, low, high, verdict`` (t-interval over seeds).
    """
    import pandas as pd

    from bt_tutorial.downstream.probes import best_layer
    from bt_tutorial.downstream.report import paired_difference

    rows = []
    for task in tasks:
        chosen = {m: results[m][task][best_layer(results[m][task])] for m in results}
        for a, b in pairs:
            mean, low, high = paired_difference(chosen[a], chosen[b])
            rows.append({"task": task, "comparison": f"{a} - {b}", "difference": mean, "low": low,
                         "high": high, "verdict": verdict({"low": low, "high": high})})
    return pd.DataFrame(rows)


EXPECTED = {"alignment": "higher", "lowlevel": "lower", "semantic task": "higher",
            "low-level task": "no clear difference"}


def effect_holds(kind: str, verdicts) -> bool:
    """Whether every verdict of an effect shows the paper's direction.

    ``kind`` is ``"alignment"`` (higher), ``"lowlevel"`` (lower drop),
    ``"semantic task"`` (higher) or ``"low-level task"`` (no gain: anything
    but ``"higher"``).
    """
    if kind not in EXPECTED:
        raise ValueError(f"kind must be one of {sorted(EXPECTED)}, got {kind!r}.")
    verdicts = list(verdicts)
    if kind == "low-level task":
        return all(v != "higher" for v in verdicts)
    return bool(verdicts) and all(v == EXPECTED[kind] for v in verdicts)


RECIPES = {"paper": "paper (the authors' recipe)", "lag-ridge": "lag 2 TRs + ridge head (the demo)",
           "no-lag": "demo without the lag", "lag-1": "demo with a lag of 1 TR",
           "random-head": "demo with a random head",
           "lag-ridge-eval": "demo in eval mode"}


def load_tuning_ablation(path=None) -> dict:
    """Results of ``benchmarks/demo_effects.py`` for several tuning recipes (default: the packaged ones)."""
    import json
    from importlib import resources

    if path is None:
        return json.loads(resources.files("bt_tutorial").joinpath("reference/tuning_ablation.json").read_text())
    from pathlib import Path

    return json.loads(Path(path).read_text())


def ablation_table(results: dict, roi: str = "late_language", layer: int | None = None):
    """Alignment effects of each recipe and subject in a ``demo_effects.py`` results file.

    Parameters
    ----------
    results : dict
        From :func:`load_tuning_ablation`.
    roi : str
    layer : int, optional
        Default: each run's layer chosen on its pretrained model.

    Returns
    -------
    table : pandas DataFrame
        ``recipe, subject, layer, comparison, difference, low, high, verdict, tuning_s,
        head_start_r`` (``tuning_s``: seconds of the tuned and the control run together;
        ``head_start_r``: the brain-tuned run's validation r before training).
    """
    import pandas as pd

    rows = []
    for run in results["runs"]:
        k = str(run["measures"]["layer"] if layer is None else layer)
        seconds = sum(run["tuning"][m]["seconds"] for m in ("brain-tuned", "control"))
        start = run["tuning"]["brain-tuned"]["initial"].get("val_r", float("nan"))
        for r in run["measures"]["alignment"][roi][k]:
            rows.append({"recipe": RECIPES.get(run["variant"], run["variant"]), "subject": run["subject"],
                         "layer": int(k), **{c: r[c] for c in ("comparison", "difference", "low", "high",
                                                                "verdict")},
                         "tuning_s": seconds, "head_start_r": round(start, 3)})
    return pd.DataFrame(rows)


LOWLEVEL_TASKS = ("phonemes", "timit_phonemes")


def downstream_summary(table, lowlevel_tasks=LOWLEVEL_TASKS) -> dict:
    """Whether effect (c) holds: every semantic task above the control, no low-level gain.

    Parameters
    ----------
    table : pandas DataFrame
        From :func:`downstream_effects`.

    Returns
    -------
    summary : dict
        ``semantic`` and ``lowlevel`` (task -> verdict against the control),
        ``n_improved`` (semantic tasks above the control) and ``holds``.
    """
    rows = table[table["comparison"] == "brain-tuned - control"]
    verdicts = dict(zip(rows["task"], rows["verdict"]))
    semantic = {t: v for t, v in verdicts.items() if t not in lowlevel_tasks}
    lowlevel = {t: v for t, v in verdicts.items() if t in lowlevel_tasks}
    improved = sum(v == "higher" for v in semantic.values())
    holds = bool(semantic) and improved == len(semantic) and effect_holds("low-level task", lowlevel.values())
    return {"semantic": semantic, "lowlevel": lowlevel, "n_improved": improved, "holds": holds}


def _holds(holds: bool) -> str:
    return "holds" if holds else "does not hold"


WIDTH = 80  # characters of a printed line: the width of a code box of the book


def _sentence(text: str) -> str:
    return textwrap.fill(text, WIDTH)


def _difference(row, digits: int = 3) -> str:
    """``+0.071 [+0.063, +0.079]``: a difference and its interval."""
    return f"{row['difference']:+.{digits}f} [{row['low']:+.{digits}f}, {row['high']:+.{digits}f}]"


def describe_alignment(pairs, layer: int, rois=("late_language", "early_auditory", "primary_auditory")) -> str:
    """Effect (a) in words: every ROI's differences at ``layer`` and the verdict on late language.

    Parameters
    ----------
    pairs : pandas DataFrame
        From :func:`~bt_tutorial.comparison.roi_tables.paired_table`, with ``"late_language"``.
    layer : int
    rois : sequence of str

    Returns
    -------
    text : str
        A block per ROI, one line per comparison (difference, interval, p-value,
        verdict), then whether the effect holds and at how many layers the
        brain-tuned model is above the control in late language. Lines fit ``WIDTH``.
    """
    lines = []
    for roi in rois:
        lines.append(f"{roi.replace('_', ' ')}, layer {layer}:")
        lines += [f"  {comparison:<24} {_difference(row)} {format_p(row['p_value']):<9} {row['verdict']}"
                  for comparison, row in alignment_effects(pairs, roi, layer).iterrows()]
    holds = effect_holds("alignment", alignment_effects(pairs, "late_language", layer)["verdict"])
    late = pairs[(pairs["comparison"] == "brain-tuned - control") & (pairs["roi"] == "late_language")]
    n_higher = sum(verdict(row) == "higher" for _, row in late.iterrows())
    lines += ["", _sentence(f"Effect (a), late-language alignment above pretrained and control at layer "
                            f"{layer}: {_holds(holds)} in this run."),
              f"late language: brain-tuned above the control at {n_higher} of {len(late)} layers"]
    return "\n".join(lines)


def describe_lowlevel(table, layer: int, set_name: str, roi: str = "late language") -> str:
    """Effect (b) in words, from :func:`lowlevel_effects`: each drop, the difference, the verdict.

    Returns
    -------
    text : str
        A heading, one line per comparison (the two drops in %, their difference in
        percentage points with its interval, the verdict), then the verdict on the effect.
    """
    lines = [f"{roi}, layer {layer}, {set_name} (drop in %, difference in points):"]
    for comparison, row in table.iterrows():
        a, b = comparison.split(" - ")
        lines.append(f"  {a} {row['drop_a']:.1f} vs {b} {row['drop_b']:.1f}: {_difference(row, 1)} "
                     f"-> {row['verdict']}")
    holds = effect_holds("lowlevel", table["verdict"])
    lines.append(_sentence(f"Effect (b) with {set_name}, a lower drop for the brain-tuned model than for "
                           f"pretrained and control: {_holds(holds)} in this run."))
    return "\n".join(lines)


def describe_downstream(table, lowlevel_tasks=LOWLEVEL_TASKS) -> str:
    """Effect (c) in words, from :func:`downstream_effects`: each difference, then the verdict.

    Returns
    -------
    text : str
        A block per task, one line per comparison, then one line per task against the
        control and the verdict on the effect.
    """
    lines = []
    for task, rows in table.groupby("task", sort=False):
        lines.append(f"{task}:")
        lines += [f"  {row['comparison']:<24} {_difference(row)} -> {row['verdict']}" for _, row in rows.iterrows()]
    summary = downstream_summary(table, lowlevel_tasks)
    lines.append("")
    lines += [f"{task}: {'improves' if v == 'higher' else 'does not improve'} over the control ({v})"
              for task, v in summary["semantic"].items()]
    lines += [_sentence(f"low-level control task {task}: {v} against the control"
                        + (" (no gain, as expected)" if v != "higher" else " (it improves too)"))
              for task, v in summary["lowlevel"].items()]
    lines.append(_sentence(f"Effect (c), semantic gains over the control without a low-level gain: "
                           f"{_holds(summary['holds'])} in this run ({summary['n_improved']} of "
                           f"{len(summary['semantic'])} semantic tasks improve)."))
    return "\n".join(lines)


def control_share(table):
    """How much of the brain-tuned model's downstream gain the control also has, per task.

    Parameters
    ----------
    table : pandas DataFrame
        From :func:`downstream_effects` with the pairs brain-tuned - pretrained and
        control - pretrained.

    Returns
    -------
    gains : pandas DataFrame
        One row per task: the differences, and their ratio where the tuned model clearly
        gains (verdict ``"higher"``; a ratio over a gain within the noise means nothing).
    """
    gains = table.pivot(index="task", columns="comparison", values="difference")
    tuned, control = gains["brain-tuned - pretrained"], gains["control - pretrained"]
    rows = table[table["comparison"] == "brain-tuned - pretrained"].set_index("task")["verdict"]
    clear = rows.reindex(gains.index) == "higher"
    gains["share of the tuned model's gain that the control also has"] = (control / tuned).where(clear)
    return gains.rename_axis(columns=None)
