"""Pretrained vs brain-tuned vs shuffled control: the models of chapters 5-7 and their ROI tables.

Every model is measured with the same instrument (:func:`~bt_tutorial.alignment.layers.brain_alignment`)
on the same voxels; scores are normalised by the noise ceiling and summarised per ROI
and layer with bootstrap intervals, and pairs of models are compared voxel by voxel.
"""

from __future__ import annotations

import numpy as np

from bt_tutorial.alignment.noise_ceiling import normalized_alignment
from bt_tutorial.brain_tuning.settings import tuned_model_dir
from bt_tutorial.stats import bootstrap_mean, paired_comparison, verdict

MODELS = ("pretrained", "brain-tuned", "control")
USABLE_CEILING = 0.2  # ratios over smaller ceilings are mostly noise
PAIRS = (("brain-tuned", "pretrained"), ("control", "pretrained"), ("brain-tuned", "control"))


def tuned_backbone_dirs(data_home, model_name: str, subject: str, control: str = "chunk_permute") -> dict:
    """Folders of the brain-tuned and control backbones that chapter 4 saves.

    Raises
    ------
    FileNotFoundError
        Naming the missing folder and how to make it (chapter 4 or the command line).
    """
    dirs = {"brain-tuned": tuned_model_dir(data_home, model_name, subject) / "backbone",
            "control": tuned_model_dir(data_home, model_name, subject, control) / "backbone"}
    for name, path in dirs.items():
        if not (path / "config.json").is_file():
            flag = "" if name == "brain-tuned" else f" --control {control}"
            raise FileNotFoundError(
                f"No {name} model in {path}. Run chapter 4 first (it saves both runs there), or "
                f"python -m bt_tutorial.brain_tuning --model {model_name} --subject {subject}{flag} "
                f"--out {path.parent}. On Colab a new runtime starts empty: set USE_DRIVE = True in the "
                "setup cell of chapter 4 and of this chapter, so that both keep their data on Google Drive.")
    return dirs


def load_compared_models(data_home, model_name: str, subject: str, control: str = "chunk_permute",
                         device=None) -> dict:
    """The pretrained model and its brain-tuned and control versions.

    Returns
    -------
    models : dict of str -> SpeechModel
        Keys ``MODELS``.
    """
    from bt_tutorial.alignment.models import load_speech_model

    dirs = tuned_backbone_dirs(data_home, model_name, subject, control)
    models = {"pretrained": load_speech_model(model_name, data_home=data_home, device=device)}
    models.update({name: load_speech_model(str(path), device=device) for name, path in dirs.items()})
    return models


def normalized_scores(alignments: dict, ceiling: np.ndarray, min_ceiling: float = USABLE_CEILING) -> dict:
    """Normalised alignment ``r / CC_max`` of every model and layer.

    NaN where the ceiling is too low and where r is NaN (constant test
    responses); :func:`roi_layer_table` and :func:`paired_table` leave NaN voxels out.

    Parameters
    ----------
    alignments : dict of str -> AlignmentResult
    ceiling : ndarray, shape (n_voxels,)

    Returns
    -------
    normalized : dict of str -> ndarray, shape (n_layers, n_voxels)
    """
    return {name: np.stack([normalized_alignment(s, ceiling, min_ceiling) for s in a.scores])
            for name, a in alignments.items()}


def roi_layer_table(normalized: dict, layers, masks: dict, rois, n_boot: int = 1000, seed: int = 0):
    """Per model, layer and ROI: mean normalised alignment with a bootstrap interval.

    Returns
    -------
    table : pandas DataFrame
        Columns ``model, layer, roi, n_voxels, mean, low, high``.
    """
    import pandas as pd

    rows = []
    for name, values in normalized.items():
        for i, layer in enumerate(layers):
            for row in roi_summary(values[i], masks, rois, n_boot=n_boot, seed=seed):
                rows.append({"model": name, "layer": layer, **row})
    return pd.DataFrame(rows)


def paired_table(normalized: dict, layers, masks: dict, rois, pairs=PAIRS, method: str = "permutation",
                 n_permutations: int = 5000, n_boot: int = 1000, seed: int = 0):
    """Voxel-wise paired comparisons of models, per layer and ROI.

    Returns
    -------
    table : pandas DataFrame
        Columns ``comparison, layer, roi, n_voxels, difference, low, high, p_value``
        (difference: first model minus second).
    """
    import pandas as pd

    rows = []
    for a, b in pairs:
        for i, layer in enumerate(layers):
            tests = compare_in_rois(normalized[a][i], normalized[b][i], masks, rois, method=method,
                                    n_permutations=n_permutations, n_boot=n_boot, seed=seed)
            for roi, c in tests.items():
                rows.append({"comparison": f"{a} - {b}", "layer": layer, "roi": roi, "n_voxels": c.n_voxels,
                             "difference": c.mean_difference, "low": c.low, "high": c.high,
                             "p_value": c.p_value})
    return pd.DataFrame(rows)


def compact_pairs(table):
    """:func:`paired_table` as one row per comparison and ROI, one column per layer.

    Cells read ``+0.012*``: the mean difference, starred where :func:`~bt_tutorial.stats.verdict`
    finds a clear difference (p < 0.05 and an interval excluding 0).

    Returns
    -------
    table : pandas DataFrame of str
    """
    cells = table.assign(cell=[f"{r['difference']:+.3f}" + ("*" if verdict(r) in ("higher", "lower") else "")
                               for _, r in table.iterrows()])
    return cells.pivot(index=["comparison", "roi"], columns="layer", values="cell").rename_axis(columns="layer")


def roi_summary(values: np.ndarray, masks: dict, rois=None, n_boot: int = 2000, level: float = 0.95,
                seed: int = 0) -> list:
    """Per-ROI mean with a bootstrap interval.

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
        For example normalised alignment, NaN for voxels without a usable ceiling.
    masks : dict of str -> ndarray of bool
    rois : sequence of str, optional
        Which masks (default: all).

    Returns
    -------
    rows : list of dict
        ``roi``, ``n_voxels`` (finite values), ``mean``, ``low``, ``high``.
    """
    rows = []
    for name in masks if rois is None else rois:
        v = np.asarray(values, float)[masks[name]]
        mean, low, high = bootstrap_mean(v, n_boot, level, seed)
        rows.append({"roi": name, "n_voxels": int(np.isfinite(v).sum()), "mean": mean, "low": low, "high": high})
    return rows


def compare_in_rois(a: np.ndarray, b: np.ndarray, masks: dict, rois=None, **kwargs) -> dict:
    """:func:`~bt_tutorial.stats.paired_comparison` of two models' voxel values in each ROI.

    Returns
    -------
    comparisons : dict of str -> PairedComparison
    """
    return {name: paired_comparison(np.asarray(a)[masks[name]], np.asarray(b)[masks[name]], **kwargs)
            for name in (masks if rois is None else rois)}
