"""Brain alignment of a speech model, layer by layer: the measuring instrument of the book.

audio -> causal features (:mod:`~bt_tutorial.alignment.features`) -> TR grid and FIR
delays (:mod:`~bt_tutorial.dataset.timing`) -> voxelwise ridge on the training stories
(:mod:`~bt_tutorial.alignment.encoding`) -> Pearson r with the mean of the test story's
repeats, for every requested layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bt_tutorial.alignment.encoding import EncodingResult, fit_encoding_model
from bt_tutorial.alignment.encoding_inputs import voxel_indices
from bt_tutorial.alignment.features import story_rows
from bt_tutorial.config import PAPER_PARAMS, FeatureParams
from bt_tutorial.dataset.rois import check_mask, roi_means
from bt_tutorial.dataset.timing import make_delayed

DELAYS = (1, 2, 3, 4)
MIN_SCORED_ROWS = 10


@dataclass
class AlignmentResult:
    """Encoding results of one model and subject, per layer.

    Attributes
    ----------
    subject, model_name : str
    layers : list of int
    results : dict of int -> EncodingResult
    test_story : str
    measured : ndarray, shape (n_scored_trs, n_voxels)
        Mean of the test story's repeats, on the scored rows.
    first_scored_row : int
        Test rows before this one were left out of the scores (and predictions).
    """

    subject: str
    model_name: str
    layers: list
    results: dict
    test_story: str
    measured: np.ndarray = field(repr=False)
    first_scored_row: int = 0

    @property
    def scores(self) -> np.ndarray:
        """Test correlation of every layer, shape (n_layers, n_voxels); NaN for constant voxels."""
        return np.stack([self.results[k].scores for k in self.layers])

    def peak_layer(self, mask: np.ndarray | None = None) -> int:
        """Layer with the highest mean test r over ``mask`` (all voxels by default).

        It describes the test scores after the fact (where alignment peaks); it is not a
        choice made without the test story, as the probes' layer is
        (:func:`~bt_tutorial.downstream.probes.best_layer`, on validation speakers).
        Voxels without an r (NaN: constant test responses) are left out of the
        means; a mask that selects no voxel with an r is a ValueError.
        """
        scores = self.scores if mask is None else self.scores[:, check_mask(mask, self.scores.shape[1])]
        usable = np.isfinite(scores).all(axis=0)
        if not usable.any():
            raise ValueError(f"No voxel with a test r to choose a layer: the mask selects {scores.shape[1]} "
                             "voxels, none with a finite r in every layer.")
        return self.layers[int(np.argmax(scores[:, usable].mean(axis=1)))]

    def largest_difference(self, other: "AlignmentResult", layer: int = 0) -> float:
        """Largest absolute difference of test r from ``other``'s, over voxels, at one layer.

        Whisper's hidden state 0 comes from parts that brain-tuning leaves frozen, so there a
        tuned model should score as the pretrained one: a check of the pipeline.

        Parameters
        ----------
        other : AlignmentResult
            The same subject and voxels, e.g. the pretrained model's.
        layer : int

        Returns
        -------
        difference : float
            NaN if no voxel has a finite r in both.
        """
        for result in (self, other):
            if layer not in result.layers:
                raise KeyError(f"{result.model_name}: no layer {layer}; its layers are {result.layers}.")
        a, b = self.results[layer].scores, other.results[layer].scores
        if a.shape != b.shape:
            raise ValueError(f"{self.model_name} scores {a.shape[0]} voxels, {other.model_name} {b.shape[0]}: "
                             "compare results on the same voxels.")
        both = np.isfinite(a) & np.isfinite(b)
        return float(np.abs(a[both] - b[both]).max()) if both.any() else float("nan")

    def roi_layer_means(self, masks: dict | None = None, rois=None) -> dict:
        """Mean test r of each ROI at every layer (the layer profile of chapter 2).

        Parameters
        ----------
        masks : dict of str -> ndarray of bool, shape (n_voxels,), optional
            Default: one entry, ``"all voxels"``.
        rois : sequence of str, optional
            The masks to summarise, in this order; default all of them.

        Returns
        -------
        means : dict of str -> ndarray, shape (n_layers,)
            NaN where a ROI has no voxel with a finite r.
        """
        masks = {"all voxels": np.ones(self.scores.shape[1], bool)} if masks is None else masks
        names = list(masks) if rois is None else list(rois)
        missing = [name for name in names if name not in masks]
        if missing:
            raise KeyError(f"No mask named {missing}; the masks are {sorted(masks)}.")
        per_layer = [roi_means(self.results[k].scores, {n: masks[n] for n in names}) for k in self.layers]
        return {name: np.array([means[name] for means in per_layer]) for name in names}


def story_feature_rows(model, dataset, stories, layers, params: FeatureParams = PAPER_PARAMS,
                       n_rows: dict | None = None, cache_dir=None, progress: bool = True) -> dict:
    """Features of each story on its response rows, z-scored per story.

    Parameters
    ----------
    model : SpeechModel
    dataset : LebelDataset
    stories : sequence of str
    layers : sequence of int
    params : FeatureParams
    n_rows : dict of str -> int, optional
        Response rows of each story, checked against the features.

    Returns
    -------
    rows : dict of int -> dict of str -> ndarray, shape (n_rows, hidden_size)
    """
    out = {k: {} for k in layers}
    for story in stories:
        rows = story_rows(model, dataset, story, layers, params, None if n_rows is None else n_rows[story],
                          cache_dir, progress=progress)
        for k in layers:
            out[k][story] = rows[k]
    return out


def split_responses(dataset, subject: str, voxels=None) -> tuple:
    """The training and test responses of ``dataset.split(subject)``, cut to ``voxels``.

    Each story is cut as it is read, so only the kept voxels are held: at real scale
    the training responses of all voxels take 3 GB.

    Parameters
    ----------
    dataset : LebelDataset
    subject : str
    voxels : ndarray of bool, shape (n_voxels,), or of int, optional
        Voxels to keep; default all.

    Returns
    -------
    y_train : list of ndarray, each shape (n_trs_i, n_kept)
    y_test : ndarray, shape (n_test_trs, n_kept)
    kept : ndarray of int, shape (n_kept,)
        Their indices among the ``n_voxels`` of the subject.
    n_voxels : int
    """
    split = dataset.split(subject)
    y_test = dataset.load_responses(subject, split["test"])
    n_voxels = y_test.shape[1]
    kept = voxel_indices(voxels, n_voxels)

    def cut(y):
        return y if len(kept) == n_voxels else y[:, kept]

    return [cut(dataset.load_responses(subject, s)) for s in split["train"]], cut(y_test), kept, n_voxels


def scored_test_rows(first_scored_row: int, n_rows: int, story: str = "the test story") -> slice:
    """The test rows that are scored, ``first_scored_row`` on; a clear error if too few are left.

    The features of every row are built (and delayed) on the whole story first, so the
    scored rows keep the audio and responses that precede them.
    """
    first = int(first_scored_row)
    if not 0 <= first <= n_rows - MIN_SCORED_ROWS:
        raise ValueError(f"first_scored_row={first_scored_row} leaves {n_rows - first} of the {n_rows} rows of "
                         f"{story}; at least {MIN_SCORED_ROWS} are needed (use scored_rows='all' for a short "
                         "story, as the synthetic twin's).")
    return slice(first, None)


def brain_alignment(model, dataset, subject: str, layers=None, params: FeatureParams = PAPER_PARAMS,
                    delays=DELAYS, cache_dir=None, progress: bool = True, keep_predictions: bool = True,
                    voxels=None, first_scored_row: int = 0, **fit_kwargs) -> AlignmentResult:
    """Fit and score voxelwise encoding models for each layer of a model.

    Training stories are those of ``dataset.split(subject)["train"]``; ridge
    penalties are chosen per voxel by cross-validation over whole training
    stories; scores are Pearson r on the test story (mean of its repeats).

    Parameters
    ----------
    model : SpeechModel
    dataset : LebelDataset
    subject : str
    layers : sequence of int, optional
        Default: every hidden state.
    params : FeatureParams
    delays : sequence of int
        FIR delays in TRs.
    keep_predictions : bool
        Keep each layer's test predictions, shape (n_test_trs, n_voxels). At real
        scale they take 110 MB a layer (1.4 GB for 13 layers): leave them out
        (``predictions=None``) when only the scores are needed.
    voxels : ndarray of bool, shape (n_voxels,), or of int, optional
        Fit only these voxels (their scores equal those of a fit on all voxels: each
        voxel's ridge is its own); the others' alphas, scores and predictions are NaN.
        Only their responses are held, which saves time and memory at real scale.
    first_scored_row : int
        Score the test story from this row on (the authors: 40, ``Config.first_scored_row``);
        use the same rows for its noise ceiling.
    **fit_kwargs
        Passed to :func:`~bt_tutorial.alignment.encoding.fit_encoding_model`.

    Returns
    -------
    result : AlignmentResult
    """
    layers = list(range(model.n_layers + 1)) if layers is None else sorted(set(layers))
    split = dataset.split(subject)
    train, test = split["train"], split["test"]
    y_train, y_test, kept, n_voxels = split_responses(dataset, subject, voxels)
    n_rows = {s: len(y) for s, y in zip(train + [test], y_train + [y_test])}
    scored = scored_test_rows(first_scored_row, len(y_test), test)
    rows = story_feature_rows(model, dataset, train + [test], layers, params, n_rows, cache_dir, progress)
    results = {}
    for k in layers:
        x_train = [make_delayed(rows[k][s], delays, f"Story {s}") for s in train]
        x_test = make_delayed(rows[k][test], delays, f"Story {test}")[scored]
        result = fit_encoding_model(x_train, y_train, x_test, y_test[scored], **fit_kwargs)
        if not keep_predictions:
            result = replace(result, predictions=None)
        results[k] = result if len(kept) == n_voxels else result.spread(kept, n_voxels)
    measured = y_test if len(kept) == n_voxels else dataset.load_responses(subject, test)
    return AlignmentResult(subject, model.name, layers, results, test, measured[scored], scored.start)


__all__ = ["AlignmentResult", "EncodingResult", "brain_alignment", "scored_test_rows", "split_responses",
           "story_feature_rows", "DELAYS"]
