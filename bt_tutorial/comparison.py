"""Pretrained vs brain-tuned vs shuffled control: the models of chapters 5-7 and their ROI tables.

Every model is measured with the same instrument (:func:`~bt_tutorial.alignment.brain_alignment`)
on the same voxels; scores are normalised by the noise ceiling and summarised per ROI
and layer with bootstrap intervals, and pairs of models are compared voxel by voxel.
"""

from __future__ import annotations

import numpy as np

from .noise_ceiling import normalized_alignment
from .rois import compare_in_rois, roi_summary
from .brain_tuning.settings import tuned_model_dir

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
                f"python -m bt_tutorial.tune --model {model_name} --subject {subject}{flag} "
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
    from .models import load_speech_model

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


def format_p(p: float) -> str:
    """A p-value as the book prints it: ``"p < 0.001"`` below 0.001, else three decimals.

    Resampling tests cannot go below ``1 / (n + 1)`` (0.0002 with 5000 sign flips, 0.0005
    with 2000), so smaller values say only "as small as the test can tell"; one format keeps
    the same comparison from being printed with several p-values.
    """
    if not np.isfinite(p):
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(row) -> str:
    """Plain words for one row of :func:`paired_table` (interval and p-value at 0.05)."""
    if not np.isfinite(row["p_value"]):
        return "too few voxels to compare"
    if row["p_value"] < 0.05 and row["low"] > 0:
        return "higher"
    if row["p_value"] < 0.05 and row["high"] < 0:
        return "lower"
    return "no clear difference"


def compact_pairs(table):
    """:func:`paired_table` as one row per comparison and ROI, one column per layer.

    Cells read ``+0.012*``: the mean difference, starred where :func:`verdict`
    finds a clear difference (p < 0.05 and an interval excluding 0).

    Returns
    -------
    table : pandas DataFrame of str
    """
    cells = table.assign(cell=[f"{r['difference']:+.3f}" + ("*" if verdict(r) in ("higher", "lower") else "")
                               for _, r in table.iterrows()])
    return cells.pivot(index=["comparison", "roi"], columns="layer", values="cell").rename_axis(columns="layer")
