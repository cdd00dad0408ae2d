"""What did a model learn? How well its features recover the twin's true drives.

The synthetic twin stores, for every story, the features that drive its voxels:
``semantic`` (principal components of MiniLM sentence embeddings of the recent
words; they drive the late-language voxels) and ``lowlevel`` (mel-band power,
phone and word rates; they drive the auditory voxels). A ridge regression from a
model layer's features on the response rows to one of these sets, fitted on the
training stories (penalty per target chosen by cross-validation over stories)
and scored on the test story, says how much of that set the layer carries.
Comparing pretrained, brain-tuned and control models shows *what* tuning moved.

Only the twin can answer this: real data have no ground truth.
"""

from __future__ import annotations

import numpy as np

from bt_tutorial.alignment.encoding import fit_encoding_model
from bt_tutorial.dataset.rois import roi_means
from bt_tutorial.synthetic.truth import load_ground_truth

TRUTH_SETS = ("semantic", "lowlevel")


def truth_rows(twin_root, stories, set_name: str) -> dict:
    """A ground-truth feature set of each story, on its response rows.

    Returns
    -------
    rows : dict of str -> ndarray, shape (n_rows, n_features)
    """
    if set_name not in TRUTH_SETS:
        raise ValueError(f"set_name must be one of {TRUTH_SETS}, got {set_name!r}.")
    return {s: np.asarray(load_ground_truth(twin_root, story=s)[set_name], np.float32) for s in stories}


def recovery_scores(model_rows: dict, truth: dict, train, test: str, alphas=np.logspace(-1, 6, 8),
                    backend: str = "auto") -> dict:
    """Test correlation of each true feature predicted from each layer.

    Parameters
    ----------
    model_rows : dict of int -> dict of str -> ndarray, shape (n_rows, n_model_features)
        Per layer and story, as :func:`~bt_tutorial.alignment.layers.story_feature_rows`.
    truth : dict of str -> ndarray, shape (n_rows, n_true_features)
        From :func:`truth_rows`, same stories and rows.
    train : sequence of str
    test : str
    alphas : array_like
    backend : str

    Returns
    -------
    scores : dict of int -> ndarray, shape (n_true_features,)
        Pearson r on the test story per true feature; NaN for a feature that is
        constant on the test story (no r).
    """
    for story in list(train) + [test]:
        for k, rows in model_rows.items():
            if len(rows[story]) != len(truth[story]):
                raise ValueError(f"Story {story}: layer {k} has {len(rows[story])} rows but the ground "
                                 f"truth has {len(truth[story])}.")
    y_train = [truth[s] for s in train]
    out = {}
    for k in sorted(model_rows):
        fit = fit_encoding_model([model_rows[k][s] for s in train], y_train, model_rows[k][test], truth[test],
                                 alphas=alphas, backend=backend)
        out[k] = np.asarray(fit.scores)
    return out


def recovery_table(model_rows: dict, twin_root, train, test: str, sets=TRUTH_SETS, **kwargs):
    """Mean recovery r per model, layer and true feature set.

    Parameters
    ----------
    model_rows : dict of str -> dict of int -> dict of str -> ndarray
        ``model_rows[model][layer][story]``.
    twin_root : path of the synthetic twin
    train, test : training stories and the test story

    Returns
    -------
    table : pandas DataFrame
        Columns ``model, layer, truth, mean_r``; ``mean_r`` leaves out true
        features without an r (NaN: constant on the test story), and is NaN
        if none has one.
    """
    import pandas as pd

    rows = []
    for set_name in sets:
        truth = truth_rows(twin_root, list(train) + [test], set_name)
        for name, by_layer in model_rows.items():
            for k, r in recovery_scores(by_layer, truth, train, test, **kwargs).items():
                finite = r[np.isfinite(r)]
                rows.append({"model": name, "layer": k, "truth": set_name,
                             "mean_r": float(finite.mean()) if finite.size else float("nan")})
    return pd.DataFrame(rows)


def recovery_gains(table, layer: int):
    """Change of mean recovery r from the pretrained model, per true set, at one layer.

    Parameters
    ----------
    table : pandas DataFrame
        From :func:`recovery_table`.
    layer : int

    Returns
    -------
    gains : pandas DataFrame
        Index the true sets, one column per model other than ``"pretrained"``.
    """
    at = table[table["layer"] == layer].pivot(index="truth", columns="model", values="mean_r")
    if at.empty or "pretrained" not in at:
        raise KeyError(f"No pretrained recovery at layer {layer}.")
    return at.drop(columns="pretrained").sub(at["pretrained"], axis=0).rename_axis(columns=None)


def true_lowlevel_share(twin_root, subject: str, masks: dict) -> dict:
    """The share of each ROI's true signal that the twin drives by low-level features.

    Returns
    -------
    share : dict of str -> float
        Mean over each mask's voxels of ``1 - semantic_fraction``.
    """
    truth = load_ground_truth(twin_root, subject)
    return roi_means(1 - np.asarray(truth["semantic_fraction"], float), masks)


def lowlevel_share_check(drops, share: dict, layer: int, rois=("early_auditory", "late_language")):
    """The twin's check of chapter 6: measured drops against the true low-level shares.

    Parameters
    ----------
    drops : pandas DataFrame
        From :func:`~bt_tutorial.lowlevel.impact.drop_table`.
    share : dict of str -> float
        From :func:`true_lowlevel_share`.
    layer : int
    rois : (str, str)
        An auditory ROI, then a language ROI: the twin predicts a larger drop in the first.

    Returns
    -------
    check : pandas DataFrame
        One row per model.
    """
    import pandas as pd

    first, second = rois
    rows = []
    for model in drops.index.get_level_values("model").unique():
        d = drops.loc[model, layer]
        rows.append({"model": model, f"true low-level share, {first}": round(share[first], 2),
                     f"true low-level share, {second}": round(share[second], 2),
                     f"drop, {first} (%)": round(d[first], 1), f"drop, {second} (%)": round(d[second], 1),
                     f"{first} drop larger": bool(d[first] > d[second])})
    return pd.DataFrame(rows).set_index("model")
