"""How much of a model's brain alignment low-level features explain (Oota et al., ACL 2024).

1. A ridge regression (himalaya ``RidgeCV``, one alpha per model feature,
   chosen by cross-validation over whole training stories) predicts the model
   features from a low-level feature set, fitted on the training stories only.
2. The residuals, model features minus that prediction, are computed for the
   training and the test stories with the same weights.
3. The encoding model is refit on the residuals; the drop of the test
   correlation, ``100 (r_orig - r_resid) / r_orig`` per ROI, is the share of
   the alignment that the low-level set accounts for.

Residuals are not z-scored again: they keep the scale the model features
give them, and the encoding model's alpha grid absorbs their smaller variance.

Ridge shrinks: with alpha ``a`` a direction of the low-level features with
training variance ``lam`` (summed over rows) keeps ``a / (lam + a)`` of its
contribution in the residuals. The encoding model's r does not care about
scale, so where the model features have almost no other variance along that
copy it can still read it and the drop is underestimated (a planted case in
the tests shows 37 % instead of 100 % with nearly noiseless features). Real
model features have variance of their own in those directions; when a set is
small next to the training rows, ``alphas=[1e-6]`` gives an exact projection.
With many low-level features (diphones, triphones) and few rows, an exact
projection overfits: the test residuals then lose the semantic part too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from himalaya.backend import get_backend, set_backend
from himalaya.ridge import RidgeCV
from himalaya.scoring import r2_score

from bt_tutorial._stack import warn_at_caller
from bt_tutorial.alignment.encoding import fit_encoding_model, pick_backend, story_splits
from bt_tutorial.alignment.encoding_inputs import check_alphas, largest_safe
from bt_tutorial.alignment.layers import DELAYS, scored_test_rows, split_responses
from bt_tutorial.dataset.rois import roi_means
from bt_tutorial.dataset.timing import make_delayed
from bt_tutorial.lowlevel.feature_sets import (
    LOWLEVEL_SETS,
    TOP_DIPHONES,
    TOP_TRIPHONES,
    check_sets,
    lowlevel_rows,
    stack_sets,
)
from bt_tutorial.stats import percent_lost

LOWLEVEL_ALPHAS = np.logspace(-2, 7, 10)


def _story_arrays(arrays, name: str, dtype) -> list:
    """Check a list of per-story 2-D finite arrays with the same width."""
    if isinstance(arrays, np.ndarray) or not len(arrays):
        raise TypeError(f"{name} must be a non-empty list with one array per story.")
    out = [np.asarray(a, dtype=dtype) for a in arrays]
    for i, a in enumerate(out):
        if a.ndim != 2 or 0 in a.shape:
            raise ValueError(f"{name}[{i}] must be a non-empty 2-D array (n_rows, n_features), "
                             f"got shape {a.shape}.")
        if a.shape[1] != out[0].shape[1]:
            raise ValueError(f"{name}[{i}] has {a.shape[1]} columns but {name}[0] has {out[0].shape[1]}.")
        if not np.isfinite(a).all():
            raise ValueError(f"{name}[{i}] has NaN or inf values.")
        if np.abs(a).max() > largest_safe(a.dtype):
            raise ValueError(f"{name}[{i}] has values up to {np.abs(a).max():.3g}: their squares overflow "
                             f"{a.dtype}. Z-score the columns first.")
    return out


def _check_pair(x, low, x_name: str, low_name: str, dtype) -> tuple:
    """Model and low-level features of the same stories: same count, same rows per story."""
    x, low = _story_arrays(x, x_name, dtype), _story_arrays(low, low_name, dtype)
    if len(x) != len(low):
        raise ValueError(f"{x_name} has {len(x)} stories but {low_name} has {len(low)}.")
    for i, (a, b) in enumerate(zip(x, low)):
        if len(a) != len(b):
            raise ValueError(f"Story {i}: {x_name}[{i}] has {len(a)} rows but {low_name}[{i}] has "
                             f"{len(b)}; both must be on the story's response rows.")
    return x, low


def remove_lowlevel(x_train, low_train, x_test=None, low_test=None, alphas=LOWLEVEL_ALPHAS,
                    n_folds=None, backend="auto", dtype="float32") -> tuple:
    """Regress low-level features out of model features (cross-validated ridge).

    Weights are fitted on the training stories only (features centred with
    the training means, as himalaya fits no intercept) and applied to the
    training and test stories alike.

    Parameters
    ----------
    x_train : list of ndarray, each shape (n_rows_i, n_model_features)
        Model features of each training story.
    low_train : list of ndarray, each shape (n_rows_i, n_lowlevel_features)
        Low-level features of the same stories, same rows.
    x_test : ndarray, shape (n_test_rows, n_model_features), optional
    low_test : ndarray, shape (n_test_rows, n_lowlevel_features), optional
    alphas : array_like, shape (n_alphas,)
        Candidate alphas; each model feature gets its own by cross-validation.
    n_folds : int or None
        Folds of whole stories, see :func:`~bt_tutorial.alignment.encoding.story_splits`.
    backend : str
        ``"auto"`` or a himalaya backend; the previous one is restored.
    dtype : str

    Returns
    -------
    resid_train : list of ndarray, each shape (n_rows_i, n_model_features)
    resid_test : ndarray, shape (n_test_rows, n_model_features), or None
    info : dict
        ``alphas`` (n_model_features,) chosen alphas; ``cv_r2`` (n_model_features,)
        validation R^2 over the story folds; ``r2_train`` and ``r2_test``
        (n_model_features,) share of each feature's variance the low-level set
        explains (``r2_test`` NaN without test data); ``coef`` (n_lowlevel_features,
        n_model_features) ridge weights.
    """
    x_train, low_train = _check_pair(x_train, low_train, "x_train", "low_train", dtype)
    if (x_test is None) != (low_test is None):
        raise ValueError("Give both x_test and low_test, or neither.")
    if x_test is not None:
        (x_test,), (low_test,) = _check_pair([x_test], [low_test], "x_test", "low_test", dtype)
        for a, b, what in ((x_test, x_train[0], "x"), (low_test, low_train[0], "low")):
            if a.shape[1] != b.shape[1]:
                raise ValueError(f"{what}_test has {a.shape[1]} columns but {what}_train has {b.shape[1]}.")
    X, Y = np.concatenate(low_train), np.concatenate(x_train)
    x_mean, low_mean = Y.mean(0), X.mean(0)
    splits = story_splits([len(x) for x in x_train], n_folds)
    coef, best, cv_r2 = _fit_ridge_cv(X - low_mean, Y - x_mean, alphas, splits, backend)

    def residual(x, low):
        return (x - x_mean - (low - low_mean) @ coef).astype(dtype)

    resid_train = [residual(x, low) for x, low in zip(x_train, low_train)]
    resid_test = None if x_test is None else residual(x_test, low_test)
    info = dict(alphas=best, cv_r2=cv_r2, coef=coef,
                r2_train=_explained(np.concatenate(resid_train), Y),
                r2_test=np.full(Y.shape[1], np.nan) if x_test is None else _explained(resid_test, x_test))
    return resid_train, resid_test, info


def _fit_ridge_cv(X, Y, alphas, splits, backend) -> tuple:
    """himalaya RidgeCV on centred data; numpy weights, alphas and CV scores."""
    alphas = check_alphas(alphas)
    previous = get_backend().name
    try:
        pick_backend(backend)
        b = get_backend()
        model = RidgeCV(alphas=alphas, cv=splits,
                        solver_params=dict(score_func=r2_score, warn=False))
        model.fit(b.asarray(X), b.asarray(Y))
        coef = b.to_numpy(model.coef_).astype(np.float64)
        best = b.to_numpy(model.best_alphas_).astype(np.float64)
        cv_r2 = b.to_numpy(model.cv_scores_).astype(np.float64)
    finally:
        set_backend(previous)
    return coef.reshape(X.shape[1], Y.shape[1]), best, cv_r2


def _explained(resid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """1 - var(resid) / var(x) per column (NaN for constant columns)."""
    var = x.var(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, 1 - resid.var(0) / np.where(var > 0, var, 1), np.nan)


def percent_drop(r_orig, r_resid, masks: dict) -> dict:
    """Percentage drop of the mean test correlation in each ROI.

    ``100 (mean r_orig - mean r_resid) / mean r_orig``, means over the ROI's
    voxels with a finite r in both (a voxel with constant test responses has
    NaN r: it is left out of both means). The ratio of means is used rather
    than the mean of per-voxel ratios, which explode for voxels with r near 0. Where the mean ``r_orig``
    is not positive there is no alignment to lose and the drop is NaN (with a
    warning naming those ROIs).

    Parameters
    ----------
    r_orig, r_resid : ndarray, shape (n_voxels,)
        Test r of the encoding model on the model features and on the residuals.
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
        ROIs, e.g. from :func:`~bt_tutorial.dataset.rois.roi_masks`.

    Returns
    -------
    drops : dict of str -> float
        Percent; 100 when the residuals predict nothing, 0 when they predict as well.
    """
    r_orig, r_resid = np.asarray(r_orig, float), np.asarray(r_resid, float)
    if r_orig.shape != r_resid.shape or r_orig.ndim != 1:
        raise ValueError(f"r_orig and r_resid must be 1-D with the same shape, got {r_orig.shape} "
                         f"and {r_resid.shape}.")
    both = np.isfinite(r_orig) & np.isfinite(r_resid)  # the same voxels in both means
    orig = roi_means(np.where(both, r_orig, np.nan), masks)
    resid = roi_means(np.where(both, r_resid, np.nan), masks)
    drops, undefined = {}, []
    for roi in masks:
        if not orig[roi] > 0:
            undefined.append(roi)
            drops[roi] = float("nan")
        else:
            drops[roi] = percent_lost(orig[roi], resid[roi])
    if undefined:
        warn_at_caller(f"Percentage drop undefined (NaN) for ROIs with mean r_orig <= 0 or no voxels: "
                       f"{undefined}.")
    return drops


@dataclass(repr=False)
class LowLevelImpact:
    """Test r with the model features and with their low-level residuals.

    Attributes
    ----------
    subject, test_story : str
    layers : list of int
    sets : tuple of str
        Low-level sets regressed out (``"a+b"``: both together).
    r_orig : dict of int -> ndarray, shape (n_voxels,)
        Per layer, r of the encoding model on the model features; NaN for
        voxels with constant test responses, which ROI means leave out.
    r_resid : dict of (int, str) -> ndarray, shape (n_voxels,)
        Per layer and set, r of the encoding model refit on the residuals.
    residual_info : dict of (int, str) -> dict
        The ``info`` of :func:`remove_lowlevel` (without ``coef``).
    """

    subject: str
    test_story: str
    layers: list
    sets: tuple
    r_orig: dict
    r_resid: dict
    residual_info: dict = field(default_factory=dict)

    def percent_drop(self, masks: dict, layer: int | None = None) -> dict:
        """Percentage drop per set and ROI for one layer (the only one if None).

        Returns
        -------
        drops : dict of str -> dict of str -> float
            ``drops[set][roi]``, see :func:`~bt_tutorial.lowlevel.impact.percent_drop`.
        """
        if layer is None:
            if len(self.layers) != 1:
                raise ValueError(f"Several layers {self.layers}: say which one.")
            layer = self.layers[0]
        if layer not in self.r_orig:
            raise KeyError(f"Layer {layer} was not fitted; layers: {self.layers}.")
        return {s: percent_drop(self.r_orig[layer], self.r_resid[(layer, s)], masks) for s in self.sets}

    def drop_by_layer(self, masks: dict, set_name: str | None = None) -> dict:
        """Percentage drop of one set in each ROI, at every fitted layer.

        Returns
        -------
        drops : dict of str -> list of float
            ``drops[roi][i]`` for ``self.layers[i]``.
        """
        set_name = set_name or (self.sets[0] if len(self.sets) == 1 else None)
        if set_name not in self.sets:
            raise KeyError(f"Set {set_name!r} was not fitted; sets: {self.sets}.")
        by_layer = [self.percent_drop(masks, k)[set_name] for k in self.layers]
        return {roi: [d[roi] for d in by_layer] for roi in masks}

    def summary(self) -> str:
        """One line per layer and set: mean r original, mean r residual (NaN voxels left out)."""
        lines = [f"LowLevelImpact({self.subject}, test {self.test_story})"]
        for k in self.layers:
            for s in self.sets:
                orig, resid = _finite_mean(self.r_orig[k]), _finite_mean(self.r_resid[(k, s)])
                lines.append(f"  layer {k}, {s}: mean r {orig:.3f} -> {resid:.3f}")
        return "\n".join(lines)

    __repr__ = summary


def lowlevel_impact(model_rows: dict, dataset, subject: str, sets=LOWLEVEL_SETS, layers=None,
                    delays=DELAYS, lowlevel: dict | None = None, top_diphones: int = TOP_DIPHONES,
                    top_triphones: int = TOP_TRIPHONES, residual_alphas=LOWLEVEL_ALPHAS,
                    n_folds=None, backend="auto", voxels=None, first_scored_row: int = 0,
                    progress: bool = False, **fit_kwargs) -> LowLevelImpact:
    """Encoding models on model features and on their low-level residuals.

    Parameters
    ----------
    model_rows : dict of int -> dict of str -> ndarray, shape (n_rows, n_features)
        Model features per layer and story on response rows, z-scored per
        story, as :func:`~bt_tutorial.alignment.layers.story_feature_rows` gives them;
        must hold the training and test stories of ``dataset.split(subject)``.
    dataset : LebelDataset
    subject : str
    sets : sequence of str
        Low-level sets to regress out, one at a time; ``"a+b"`` regresses a and b together.
    layers : sequence of int, optional
        Default: every layer of ``model_rows``.
    delays : sequence of int
        FIR delays of the encoding model (applied to original and residual features).
    lowlevel : dict of str -> dict of str -> ndarray, optional
        Precomputed :func:`~bt_tutorial.lowlevel.feature_sets.lowlevel_rows` (their n-gram
        vocabularies must come from the training stories); computed if None.
    top_diphones, top_triphones : int
        Vocabulary sizes when ``lowlevel`` is computed here.
    residual_alphas : array_like
        Alpha grid of the low-level ridge.
    n_folds : int or None
        Story folds of both ridge regressions.
    backend : str
        himalaya backend of both.
    voxels : ndarray of bool, shape (n_voxels,), or of int, optional
        Fit only these voxels (the ones a summary uses); the others' r are NaN. Only
        their responses are held, which saves time and memory at real scale.
    first_scored_row : int
        Score the test story from this row on, as :func:`~bt_tutorial.alignment.layers.brain_alignment`.
    progress : bool
    **fit_kwargs
        Passed to :func:`~bt_tutorial.alignment.encoding.fit_encoding_model`.

    Returns
    -------
    impact : LowLevelImpact
    """
    sets = check_sets(sets)
    layers = sorted(model_rows) if layers is None else sorted(set(layers))
    missing = [k for k in layers if k not in model_rows]
    if missing:
        raise KeyError(f"model_rows has no layer {missing[0]}; layers: {sorted(model_rows)}.")
    split = dataset.split(subject)
    train, test = split["train"], split["test"]
    y_train, y_test, kept, n_voxels = split_responses(dataset, subject, voxels)
    n_rows = {s: len(y) for s, y in zip(train + [test], y_train + [y_test])}
    _check_model_rows(model_rows, layers, n_rows)
    if lowlevel is None:
        lowlevel = lowlevel_rows(dataset, train + [test], train, sets, n_rows, top_diphones,
                                 top_triphones, progress=progress)
    low = {name: [stack_sets(lowlevel[s], name) for s in train + [test]] for name in sets}
    fit = dict(fit_kwargs, n_folds=n_folds, backend=backend)

    scored = scored_test_rows(first_scored_row, len(y_test), test)

    def encode(x_train, x_test):
        x_train = [make_delayed(x, delays, f"Story {s}") for x, s in zip(x_train, train)]
        x_test = make_delayed(x_test, delays, f"Story {test}")[scored]
        result = fit_encoding_model(x_train, y_train, x_test, y_test[scored], **fit)
        return result.scores if len(kept) == n_voxels else result.spread(kept, n_voxels).scores

    r_orig, r_resid, infos = {}, {}, {}
    for k in layers:
        x = [model_rows[k][s] for s in train]
        r_orig[k] = encode(x, model_rows[k][test])
        for name in sets:
            resid_train, resid_test, info = remove_lowlevel(
                x, low[name][:-1], model_rows[k][test], low[name][-1], residual_alphas, n_folds, backend)
            r_resid[(k, name)] = encode(resid_train, resid_test)
            infos[(k, name)] = {key: v for key, v in info.items() if key != "coef"}
    return LowLevelImpact(subject, test, layers, sets, r_orig, r_resid, infos)


def _finite_mean(values: np.ndarray) -> float:
    finite = np.asarray(values, float)[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _check_model_rows(model_rows: dict, layers, n_rows: dict) -> None:
    for k in layers:
        for story, n in n_rows.items():
            if story not in model_rows[k]:
                raise KeyError(f"model_rows[{k}] has no story {story!r}; it needs the training and "
                               f"test stories {sorted(n_rows)}.")
            got = np.shape(model_rows[k][story])[0]
            if got != n:
                raise ValueError(f"Story {story}: model_rows[{k}] has {got} rows but the responses "
                                 f"have {n}.")


def drop_table(impacts: dict, masks: dict, set_name: str | None = None):
    """Percentage drop per model, ROI and layer, as a table.

    Parameters
    ----------
    impacts : dict of str -> LowLevelImpact
        Per model, fitted on the same layers.
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
    set_name : str, optional
        Needed when the impacts hold several sets.

    Returns
    -------
    table : pandas DataFrame
        Index ``(model, roi)``, one column per layer, values in percent.
    """
    import pandas as pd

    rows = {(name, roi): drops for name, imp in impacts.items()
            for roi, drops in imp.drop_by_layer(masks, set_name).items()}
    layers = next(iter(impacts.values())).layers
    return pd.DataFrame(rows, index=pd.Index(layers, name="layer")).T.rename_axis(["model", "roi"])


def set_drop_table(impacts: dict, masks: dict, layer: int | None = None):
    """Percentage drop per model and low-level set, one column per ROI, at one layer.

    Parameters
    ----------
    impacts : dict of str -> LowLevelImpact
        Per model, fitted on the same sets.
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
    layer : int, optional
        Needed when the impacts hold several layers.

    Returns
    -------
    table : pandas DataFrame
        Index ``(model, set)``, one column per ROI (in the masks' order), values in percent.
    """
    import pandas as pd

    rows = {(name, s): drops for name, imp in impacts.items()
            for s, drops in imp.percent_drop(masks, layer).items()}
    return pd.DataFrame(rows, index=pd.Index(list(masks), name="roi")).T.rename_axis(["model", "set"])
