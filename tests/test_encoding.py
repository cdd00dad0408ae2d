"""Voxelwise encoding models: planted weights, story splits, solvers, inputs, backends."""

from __future__ import annotations

import re
import sys
import warnings

import numpy as np
import pytest
from himalaya.backend import get_backend, set_backend

from bt_tutorial import encoding
from bt_tutorial.encoding import (EncodingResult, fit_encoding_model, pearson_r, pick_backend,
                                  story_splits)

N_STORIES, N_TRS, N_FEATURES, N_VOXELS = 6, 150, 40, 300


@pytest.fixture(scope="module")
def planted():
    """Stories with Y = X W + noise; voxel signal-to-noise ratios from 0.1 to 2."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((N_FEATURES, N_VOXELS)) / np.sqrt(N_FEATURES)
    snr = np.linspace(0.1, 2.0, N_VOXELS)

    def story(n):
        X = rng.standard_normal((n, N_FEATURES))
        S = X @ W * snr
        return X, S + rng.standard_normal(S.shape), S

    train = [story(N_TRS) for _ in range(N_STORIES)]
    X_test, Y_test, S_test = story(N_TRS)
    return dict(X=[x for x, _, _ in train], Y=[y for _, y, _ in train],
                X_test=X_test, Y_test=Y_test, S_test=S_test, snr=snr)


@pytest.fixture(scope="module")
def fitted(planted):
    return fit_encoding_model(planted["X"], planted["Y"], planted["X_test"], planted["Y_test"])


def test_ridge_recovers_planted_weights(planted, fitted):
    # the r of the true model on the noisy test responses bounds what ridge can reach
    r_true_model = pearson_r(planted["S_test"], planted["Y_test"])
    assert fitted.scores.mean() > r_true_model.mean() - 0.04
    strong = planted["snr"] >= 1
    assert np.all(fitted.scores[strong] > r_true_model[strong] - 0.1)
    assert pearson_r(fitted.predictions, planted["S_test"]).mean() > 0.9

    third = N_VOXELS // 3
    log_alpha = np.log10(fitted.alphas)
    assert log_alpha[:third].mean() > log_alpha[-third:].mean() + 1


def test_result_types_and_summary(fitted):
    assert isinstance(fitted, EncodingResult)
    for name in ("alphas", "scores", "cv_scores"):
        value = getattr(fitted, name)
        assert isinstance(value, np.ndarray) and value.shape == (N_VOXELS,)
        assert value.dtype.kind == "f" and np.isfinite(value).all()
    assert fitted.predictions.shape == (N_TRS, N_VOXELS)
    assert isinstance(fitted.predictions, np.ndarray) and np.isfinite(fitted.predictions).all()
    assert set(fitted.alphas) <= set(np.logspace(0, 10, 11))
    assert fitted.solver == "primal"  # 900 TRs > 40 features
    text = repr(fitted)
    assert "300 voxels" in text and "mean r=" in text and len(text) < 200


@pytest.mark.parametrize("lengths,n_folds,expected", [
    ([100, 80, 120, 90, 110, 70, 60], None, 5),
    ([50, 40, 30], None, 3),
    ([50, 40, 30, 20], 2, 2),
])
def test_story_splits_hold_out_whole_stories(lengths, n_folds, expected):
    splits = story_splits(lengths, n_folds)
    assert len(splits) == expected
    n_rows = sum(lengths)
    story_of_row = np.repeat(np.arange(len(lengths)), lengths)
    counts = np.zeros(n_rows, dtype=int)
    for train, val in splits:
        counts[val] += 1
        assert len(np.intersect1d(train, val)) == 0
        assert len(train) + len(val) == n_rows
        # each validated story is validated whole
        for story in np.unique(story_of_row[val]):
            assert np.sum(story_of_row[val] == story) == lengths[story]
    assert np.all(counts == 1)


@pytest.mark.parametrize("lengths,n_folds", [([100], None), ([10, 10, 10], 4), ([10, 10], 1)])
def test_story_splits_reject_bad_folds(lengths, n_folds):
    with pytest.raises(ValueError):
        story_splits(lengths, n_folds)


def test_kernel_and_primal_agree(planted):
    # small, because a kernel fit is n_trs^3: this one stays a fraction of a second
    args = (planted["X"][:3], [y[:, :100] for y in planted["Y"][:3]], planted["X_test"],
            planted["Y_test"][:, :100])
    kernel = fit_encoding_model(*args, solver="kernel", dtype="float64")
    primal = fit_encoding_model(*args, solver="primal", dtype="float64")
    assert (kernel.solver, primal.solver) == ("kernel", "primal")
    np.testing.assert_allclose(kernel.scores, primal.scores, atol=1e-3)
    np.testing.assert_allclose(kernel.cv_scores, primal.cv_scores, atol=1e-3)


@pytest.mark.parametrize("solver", ["kernel", "primal"])
def test_voxel_chunks_give_the_fit_of_all_voxels_at_once(planted, monkeypatch, solver):
    args = (planted["X"][:3], [y + 5.0 for y in planted["Y"][:3]], planted["X_test"], planted["Y_test"] + 5.0)
    whole = fit_encoding_model(*args, solver=solver, dtype="float64")
    monkeypatch.setattr(encoding, "_CHUNK_BYTES", 3 * N_TRS * 8 * 70)  # 70 voxels a chunk: 5 chunks, the last short
    chunked = fit_encoding_model(*args, solver=solver, dtype="float64")
    np.testing.assert_array_equal(chunked.alphas, whole.alphas)
    for name in ("scores", "cv_scores", "predictions"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-9, atol=1e-9)
    assert chunked.predictions.shape == planted["Y_test"].shape
    assert abs(chunked.predictions.mean() - 5.0) < 0.3  # in the units of the training responses


@pytest.mark.parametrize("solver", ["primal", "kernel"])
def test_a_voxel_subset_gets_the_fit_of_all_voxels_and_nan_elsewhere(planted, monkeypatch, solver):
    args = (planted["X"][:3], planted["Y"][:3], planted["X_test"], planted["Y_test"])
    whole = fit_encoding_model(*args, solver=solver, dtype="float64")
    n_voxels = planted["Y_test"].shape[1]
    mask = np.zeros(n_voxels, bool)
    mask[[3, 4, 40, 41, 200, n_voxels - 1]] = True
    monkeypatch.setattr(encoding, "_CHUNK_BYTES", 3 * N_TRS * 8 * 4)  # 4 voxels a chunk: the subset spans 2
    for voxels in (mask, np.flatnonzero(mask)[::-1]):
        part = fit_encoding_model(*args, solver=solver, dtype="float64", voxels=voxels)
        for name in ("alphas", "scores", "cv_scores", "predictions"):
            got, want = getattr(part, name), getattr(whole, name)
            assert got.shape == want.shape
            np.testing.assert_allclose(got[..., mask], want[..., mask], rtol=1e-9, atol=1e-9)
            assert np.isnan(got[..., ~mask]).all()
    assert f"{n_voxels - 6} voxels not fitted" in part.summary()


@pytest.mark.parametrize("voxels, error, words", [
    (np.ones(7, bool), ValueError, "mask of shape (7,)"),
    (np.array([0, N_VOXELS]), ValueError, f"indices from 0 to {N_VOXELS}; the responses have {N_VOXELS}"),
    (np.array([-1, 2]), ValueError, "indices from -1"),
    (np.zeros(0, int), ValueError, "no voxel"),
    (np.array([0.5, 2.0]), TypeError, "boolean mask or 1-D voxel indices"),
])
def test_a_bad_voxel_selection_is_named(planted, voxels, error, words):
    args = (planted["X"][:3], planted["Y"][:3], planted["X_test"], planted["Y_test"])
    with pytest.raises(error, match=re.escape(words)):
        fit_encoding_model(*args, voxels=voxels)


def test_auto_solver_picks_kernel_when_features_outnumber_trs():
    rng = np.random.default_rng(1)
    X = [rng.standard_normal((20, 80)) for _ in range(3)]
    Y = [rng.standard_normal((20, 5)) for _ in range(3)]
    result = fit_encoding_model(X, Y, rng.standard_normal((15, 80)), rng.standard_normal((15, 5)))
    assert result.solver == "kernel"


def test_pearson_r_matches_corrcoef_and_handles_constants():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((50, 6)), rng.standard_normal((50, 6))
    b[:, 1] += 3 * a[:, 1]
    expected = [np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(6)]
    np.testing.assert_allclose(pearson_r(a, b), expected, atol=1e-12)
    np.testing.assert_allclose(pearson_r(a.astype(np.float32), b.astype(np.float32)), expected, atol=1e-5)
    assert pearson_r(a[:, 1], b[:, 1]) == pytest.approx(expected[1])

    a[:, 2] = 0.1  # constant, with a mean that floats cannot hold exactly
    b[:, 3] = 7.0
    a[4, 4], b[9, 5] = np.nan, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from inf - inf on the way
        r = pearson_r(a, b)
    # r is undefined for a constant or non-finite column: NaN, not a 0 that would pass for "no fit"
    assert np.isnan(r[2:]).all() and np.isfinite(r[:2]).all()
    np.testing.assert_allclose(r[:2], expected[:2], atol=1e-12)
    assert np.isnan(pearson_r(np.ones(5), np.arange(5.0)))
    assert np.isnan(pearson_r(a.astype(np.float32), b.astype(np.float32))[2:]).all()
    with pytest.raises(ValueError):
        pearson_r(a, b[:, :3])


def test_constant_voxel_does_not_crash(planted):
    Y = [y.copy() for y in planted["Y"]]
    for y in Y:
        y[:, 0] = 5.0
    Y_test = planted["Y_test"].copy()
    Y_test[:, 0] = 5.0
    result = fit_encoding_model(planted["X"], Y, planted["X_test"], Y_test)
    assert np.isnan(result.scores[0]) and np.isfinite(result.scores[1:]).all()
    assert f"mean r={np.mean(result.scores[1:]):.3f}" in result.summary()
    assert "1 constant voxels without r" in result.summary()
    np.testing.assert_allclose(result.predictions[:, 0], 5.0, atol=1e-4)
    assert np.isfinite(result.cv_scores).all() and np.isfinite(result.alphas).all()


def _bad(planted, **changes):
    args = dict(X_train=list(planted["X"]), Y_train=list(planted["Y"]),
                X_test=planted["X_test"], Y_test=planted["Y_test"])
    args.update(changes)
    return args


def test_nan_is_reported_with_its_place(planted):
    X = [x.copy() for x in planted["X"]]
    X[1][3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X_train\[1\].*NaN at row 3, column 2"):
        fit_encoding_model(**_bad(planted, X_train=X))
    Y_test = planted["Y_test"].copy()
    Y_test[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"Y_test.*inf at row 7, column 0"):
        fit_encoding_model(**_bad(planted, Y_test=Y_test))


def test_nonfinite_values_are_counted_and_alphas_must_be_finite_and_positive(planted):
    Y = [y.copy() for y in planted["Y"]]
    Y[0][:3, 5], Y[0][10, 1] = np.inf, np.nan
    with pytest.raises(ValueError, match=r"Y_train\[0\] has 4 non-finite values \(NaN or inf\); the first is inf"):
        fit_encoding_model(**_bad(planted, Y_train=Y))
    for alphas in ([1.0, np.inf], [np.nan, 10.0], [0.0, 1.0], [-1.0], []):
        with pytest.raises(ValueError, match="alphas must be finite and > 0"):
            fit_encoding_model(**_bad(planted), alphas=alphas)
    with pytest.raises(ValueError, match="Y_test has 2 rows; test scores need at least 3"):
        fit_encoding_model(**_bad(planted, X_test=planted["X_test"][:2], Y_test=planted["Y_test"][:2]))


def test_row_mismatch_names_story_and_counts(planted):
    Y = list(planted["Y"])
    Y[2] = Y[2][:-4]
    with pytest.raises(ValueError, match=r"Story 2.*150 rows.*146"):
        fit_encoding_model(**_bad(planted, Y_train=Y))


def test_feature_and_voxel_mismatches(planted):
    with pytest.raises(ValueError, match=r"X_test has 39 features but X_train\[0\] has 40"):
        fit_encoding_model(**_bad(planted, X_test=planted["X_test"][:, :39]))
    with pytest.raises(ValueError, match=r"Y_test has 299 voxels"):
        fit_encoding_model(**_bad(planted, Y_test=planted["Y_test"][:, 1:]))
    with pytest.raises(ValueError, match=r"6 stories but Y_train has 5"):
        fit_encoding_model(**_bad(planted, Y_train=planted["Y"][:5]))
    with pytest.raises(ValueError, match=r"at least 2 stories"):
        fit_encoding_model(**_bad(planted, X_train=planted["X"][:1], Y_train=planted["Y"][:1]))


def test_pick_backend_auto_follows_its_documented_order(monkeypatch):
    """pick_backend("auto"): torch_cuda with a GPU, else torch (CPU), else numpy without torch."""
    torch = pytest.importorskip("torch")
    previous = get_backend().name
    try:
        # start from another backend each time, so a pick_backend that only
        # reports the current one cannot pass
        set_backend("numpy")
        name = pick_backend()
        assert name == ("torch_cuda" if torch.cuda.is_available() else "torch")
        assert get_backend().name == name

        set_backend("numpy")
        with monkeypatch.context() as m:
            m.setattr(torch.cuda, "is_available", lambda: False)
            assert pick_backend("auto") == "torch"
        assert get_backend().name == "torch"

        with monkeypatch.context() as m:
            m.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
            assert pick_backend("auto") == "numpy"
        assert get_backend().name == "numpy"

        set_backend("torch")
        assert pick_backend("numpy") == "numpy"

        # with a GPU, "auto" asks for torch_cuda (recorded here, so this runs without one)
        asked = []
        with monkeypatch.context() as m:
            m.setattr(torch.cuda, "is_available", lambda: True)
            m.setattr(encoding, "set_backend", lambda name, on_error: asked.append(name) or get_backend())
            pick_backend("auto")
        assert asked == ["torch_cuda"]
    finally:
        set_backend(previous)


def test_both_cpu_backends_fit_the_same(planted):
    previous = get_backend().name
    args = (planted["X"][:3], [y[:, :50] for y in planted["Y"][:3]], planted["X_test"],
            planted["Y_test"][:, :50])
    results = {b: fit_encoding_model(*args, backend=b, dtype="float64") for b in ("numpy", "torch")}
    assert get_backend().name == previous
    assert results["numpy"].backend == "numpy" and results["torch"].backend == "torch"
    np.testing.assert_allclose(results["numpy"].scores, results["torch"].scores, atol=1e-6)
    np.testing.assert_array_equal(results["numpy"].alphas, results["torch"].alphas)


def test_same_alphas_and_scores_as_himalaya_kernel_ridge_cv(planted):
    """fit_encoding_model == KernelRidgeCV scored by R^2, on the same leave-stories-out folds."""
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.scoring import r2_score

    alphas = np.logspace(0, 10, 11)
    X, Y = planted["X"], planted["Y"]
    # the folds written out here, not taken from story_splits: 6 stories dealt
    # round-robin into 5 folds, so fold 0 holds out stories 0 and 5
    story_of_row = np.repeat(np.arange(N_STORIES), N_TRS)
    fold_of_story = np.array([0, 1, 2, 3, 4, 0])
    folds = [(np.flatnonzero(fold_of_story[story_of_row] != k),
              np.flatnonzero(fold_of_story[story_of_row] == k)) for k in range(5)]
    X_all, Y_all = np.concatenate(X), np.concatenate(Y)
    x_mean, y_mean = X_all.mean(0), Y_all.mean(0)  # KernelRidgeCV fits no intercept
    previous = get_backend().name
    try:
        set_backend("numpy")
        # score_func: KernelRidgeCV's default CV score is the negative squared
        # error, which picks other alphas for some voxels
        ref = KernelRidgeCV(alphas=alphas, cv=folds, solver_params=dict(score_func=r2_score),
                            warn=False).fit(X_all - x_mean, Y_all - y_mean)
        ref_predictions = ref.predict(planted["X_test"] - x_mean) + y_mean
    finally:
        set_backend(previous)
    # best_alphas_ is exp(-log(alpha)): compare the grid values chosen
    ref_alphas = alphas[np.abs(np.log(ref.best_alphas_)[:, None] - np.log(alphas)).argmin(1)]
    assert len(np.unique(ref_alphas)) >= 3  # a real choice, not one alpha everywhere

    for solver in ("kernel", "primal"):
        ours = fit_encoding_model(X, Y, planted["X_test"], planted["Y_test"], alphas=alphas,
                                  backend="numpy", solver=solver, dtype="float64")
        np.testing.assert_array_equal(ours.alphas, ref_alphas, err_msg=solver)
        np.testing.assert_allclose(ours.cv_scores, ref.cv_scores_, atol=1e-10, err_msg=solver)
        np.testing.assert_allclose(ours.predictions, ref_predictions, atol=1e-9, err_msg=solver)
        np.testing.assert_allclose(ours.scores, pearson_r(ref_predictions, planted["Y_test"]),
                                   atol=1e-10, err_msg=solver)


def test_pearson_r_of_huge_float32_values():
    """Catches squares of 1e20 overflowing float32 (r came out NaN for identical columns)."""
    x = (np.random.default_rng(0).standard_normal((50, 3)) * 1e20).astype(np.float32)
    np.testing.assert_allclose(pearson_r(x, x), 1.0, rtol=1e-6)
    np.testing.assert_allclose(pearson_r(x, -2 * x), -1.0, rtol=1e-6)
