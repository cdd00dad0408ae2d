"""Voxelwise encoding models: planted weights, story splits, solvers, inputs, backends."""

from __future__ import annotations

import re
import sys
import tracemalloc
import types
import warnings
from dataclasses import replace

import himalaya.backend
import himalaya.ridge
import numpy as np
import pytest
from himalaya.backend import get_backend, set_backend

from bt_tutorial.alignment import encoding
from bt_tutorial.alignment.encoding import EncodingResult, fit_encoding_model, pearson_r, pick_backend, story_splits

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
    monkeypatch.setattr(encoding, "CHUNK_BYTES", 3 * N_TRS * 8 * 70)  # 70 voxels a chunk: 5 chunks, the last short
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
    monkeypatch.setattr(encoding, "CHUNK_BYTES", 3 * N_TRS * 8 * 4)  # 4 voxels a chunk: the subset spans 2
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
            m.setattr(himalaya.backend, "set_backend", lambda name, on_error: asked.append(name) or get_backend())
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


def _stories(n_stories, n_rows, n_features, n_voxels, seed=0, n_test=12):
    """Small training stories and a test story with Y = X W + noise."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_features, n_voxels))
    X = [rng.standard_normal((n_rows, n_features)) for _ in range(n_stories)]
    Y = [x @ W + rng.standard_normal((n_rows, n_voxels)) for x in X]
    X_test = rng.standard_normal((n_test, n_features))
    return X, Y, X_test, X_test @ W + rng.standard_normal((n_test, n_voxels))


def test_story_splits_at_two_stories_and_one_row_stories():
    """Catches story_splits refusing 2 stories or 1-row stories, and an n_folds error that names nothing."""
    assert [(list(t), list(v)) for t, v in story_splits([1, 2])] == [([1, 2], [0]), ([0], [1, 2])]
    assert [(list(t), list(v)) for t, v in story_splits([3, 1], 2)] == [([3], [0, 1, 2]), ([0, 1, 2], [3])]
    for lengths in ([5], [0, 3], [3, 0]):
        with pytest.raises(ValueError, match=re.escape(f"at least 2 stories with rows each, got lengths {lengths}")):
            story_splits(lengths)
    for n_folds in (1, 4):
        with pytest.raises(ValueError, match=re.escape(f"n_folds must be between 2 and 3 (the number of stories), "
                                                       f"got {n_folds}")):
            story_splits([2, 2, 2], n_folds)


def test_pick_backend_asks_for_torch_without_a_gpu_and_only_warns_on_failure(monkeypatch):
    """Catches "auto" asking for torch_cuda without a GPU, and a backend that fails to load raising, not warning."""
    # recorded, not set: without a GPU, himalaya's torch_cuda module skips (not fails) a test importing it
    torch = pytest.importorskip("torch")
    asked = []

    def record(name, on_error="raise"):
        asked.append((name, on_error))
        return types.SimpleNamespace(name=name)

    with monkeypatch.context() as m:
        m.setattr(himalaya.backend, "set_backend", record)
        m.setattr(torch.cuda, "is_available", lambda: False)
        assert pick_backend() == "torch"
        m.setattr(torch.cuda, "is_available", lambda: True)
        assert pick_backend("auto") == "torch_cuda"
    assert asked == [("torch", "warn"), ("torch_cuda", "warn")]

    previous = get_backend().name
    try:
        set_backend("numpy")
        with pytest.warns(UserWarning, match="Setting backend to no_such_backend failed"):
            assert pick_backend("no_such_backend") == "numpy"
        assert get_backend().name == "numpy"
    finally:
        set_backend(previous)


def test_pearson_r_dtype_shape_and_errors():
    """Catches r computed or returned in the wrong precision, an array for 1-D inputs, shape errors unnamed."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    expected = [np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(4)]
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    r = pearson_r(a, b)
    assert r.dtype == np.float64
    np.testing.assert_allclose(r, expected, atol=1e-12)
    r = pearson_r(a32, b32)
    assert r.dtype == np.float32
    np.testing.assert_allclose(r, expected, atol=1e-5)
    # one float64 input: computed in float64, from the float32 values exactly
    exact = [np.corrcoef(a32[:, j].astype(np.float64), b[:, j])[0, 1] for j in range(4)]
    for x, y, want in ((a32, b, exact), (b, a32, exact)):
        r = pearson_r(x, y)
        assert r.dtype == np.float64
        np.testing.assert_allclose(r, want, atol=1e-12)
    ints_a, ints_b = rng.integers(-5, 6, (30, 4)), rng.integers(-5, 6, (30, 4))
    r = pearson_r(ints_a, ints_b)
    assert r.dtype == np.float64
    np.testing.assert_allclose(r, [np.corrcoef(ints_a[:, j], ints_b[:, j])[0, 1] for j in range(4)], atol=1e-12)

    r1 = pearson_r(a[:, 0], b[:, 0])
    assert type(r1) is float and r1 == pytest.approx(expected[0], abs=1e-12)
    with pytest.raises(ValueError, match=re.escape("1-D or 2-D with the same shape, got (30, 4) and (30, 3)")):
        pearson_r(a, b[:, :3])
    with pytest.raises(ValueError, match=re.escape("1-D or 2-D with the same shape, got (5, 3, 2) and (5, 3, 2)")):
        pearson_r(np.ones((5, 3, 2)), np.ones((5, 3, 2)))


def test_pearson_r_planted_edge_values():
    """Catches tiny float32 columns scaled with others or not at all, r past +-1, den == 1 refused, mixed precision."""
    # squares of 1e-30 underflow float32 to 0 unless the column is first scaled by its own max
    rng = np.random.default_rng(4)
    z = rng.standard_normal((50, 2))
    x = np.column_stack([z[:, 0] * 1e20, z[:, 1] * 1e-30]).astype(np.float32)
    np.testing.assert_allclose(pearson_r(x, x * np.float32(-3)), [-1, -1], atol=1e-6)
    np.testing.assert_allclose(pearson_r(x * np.float32(0.5), x), [1, 1], atol=1e-6)

    # exact linear relations: round-off takes the raw r past +-1 in some columns, clipped back
    a = rng.standard_normal((20, 500))
    for dtype, atol in ((np.float32, 1e-6), (np.float64, 1e-14)):
        a_ = a.astype(dtype)
        b_ = a_ * dtype(0.3) + dtype(0.7)
        up, down = pearson_r(a_, b_), pearson_r(a_, -b_)
        assert up.max() == 1 and down.min() == -1
        np.testing.assert_allclose(up, 1, atol=atol)
        np.testing.assert_allclose(down, -1, atol=atol)

    # centred and scaled this column is (1, 0, 0): both sums of squares are exactly 1
    one = np.array([1 + 2.0**-52, 1.0, 1.0])
    assert pearson_r(one, one) == 1.0 and pearson_r(one, -one) == -1.0

    # a float32 column with itself: r = 1 only if both sides are centred alike (the float32
    # mean of values near 1e6 is off by more than the float64 one)
    big = (1e6 + 10 * rng.standard_normal((50, 5))).astype(np.float32)
    np.testing.assert_allclose(pearson_r(big, big), 1, atol=1e-6)


def test_summary_counts_constant_and_unfitted_voxels_and_test_rows():
    """Catches the summary's test-row count, mean/max of no finite r, and constant/unfitted counts going wrong."""
    nan = np.nan
    result = EncodingResult(alphas=np.array([1.0, 10.0, nan, 100.0]), scores=np.array([0.5, nan, nan, 0.1]),
                            predictions=np.zeros((7, 4)), backend="numpy", solver="primal", cv_scores=np.zeros(4))
    assert result.summary() == ("EncodingResult(4 voxels, 7 test TRs, solver='primal', backend='numpy':\n  mean r=0.300, "
                                "max r=0.500, 1 constant voxels without r, 1 voxels not fitted, median alpha=10)")
    kept_none = replace(result, predictions=None)
    assert repr(kept_none).startswith("EncodingResult(4 voxels, ? test TRs, ")
    clean = EncodingResult(alphas=np.array([1.0, 10.0]), scores=np.array([0.2, 0.4]), predictions=np.zeros((5, 2)),
                           backend="torch", solver="kernel", cv_scores=np.zeros(2))
    assert clean.summary() == ("EncodingResult(2 voxels, 5 test TRs, solver='kernel', backend='torch':\n  mean r=0.300, "
                               "max r=0.400, median alpha=5.5)")
    no_r = replace(clean, scores=np.array([nan, nan]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "mean r=nan, max r=nan, 2 constant voxels without r, median alpha=5.5)" in no_r.summary()
    unfitted = replace(clean, alphas=np.array([nan, 10.0]), scores=np.array([nan, 0.4]))
    assert unfitted.summary().endswith("mean r=0.400, max r=0.400, 1 voxels not fitted, median alpha=10)")


def test_spread_places_voxels_keeps_float32_and_names_a_bad_count():
    """Catches spread widening float32 to float64, failing on integer values, and a length error naming nothing."""
    part = EncodingResult(alphas=np.array([10, 1000]), scores=np.array([0.25, 0.5], np.float32),
                          predictions=np.arange(6, dtype=np.float32).reshape(3, 2), backend="numpy",
                          solver="kernel", cv_scores=np.array([0.1, 0.2]))
    full = part.spread(np.array([3, 1]), 4)
    nan = np.nan
    assert (full.alphas.dtype, full.scores.dtype, full.predictions.dtype, full.cv_scores.dtype) == (
        np.float64, np.float32, np.float32, np.float64)
    np.testing.assert_array_equal(full.alphas, [nan, 1000, nan, 10])
    np.testing.assert_array_equal(full.scores, [nan, 0.5, nan, 0.25])
    np.testing.assert_array_equal(full.predictions, [[nan, 1, nan, 0], [nan, 3, nan, 2], [nan, 5, nan, 4]])
    np.testing.assert_array_equal(full.cv_scores, [nan, 0.2, nan, 0.1])
    assert (full.backend, full.solver) == ("numpy", "kernel")
    assert replace(part, predictions=None).spread([0, 2], 3).predictions is None
    with pytest.raises(ValueError, match=re.escape("3 voxel indices for a result of 2 voxels")):
        part.spread([0, 1, 2], 4)


def test_auto_solver_at_equal_sizes_float32_results_and_argument_errors(monkeypatch):
    """Catches kernel at n_samples == n_features, float32 widened, n_folds dropped, a full fit copied by spread."""
    spread_calls = []
    spread = EncodingResult.spread
    monkeypatch.setattr(EncodingResult, "spread", lambda self, *a: spread_calls.append(a[1]) or spread(self, *a))
    for n_features, solver in ((29, "primal"), (30, "primal"), (31, "kernel")):
        result = fit_encoding_model(*_stories(3, 10, n_features, 4), backend="numpy")
        assert result.solver == solver
        assert result.predictions.dtype == np.float32 and result.predictions.shape == (12, 4)
        assert result.alphas.dtype == result.scores.dtype == result.cv_scores.dtype == np.float64
    assert spread_calls == []  # every voxel fitted: nothing to place
    args = _stories(3, 10, 5, 4)
    assert fit_encoding_model(*args, backend="numpy", dtype="float64").predictions.dtype == np.float64
    fit_encoding_model(*args, backend="numpy", voxels=[0, 2])
    assert spread_calls == [4]

    with pytest.raises(ValueError, match=re.escape("solver must be 'auto', 'kernel' or 'primal', got 'svd'")):
        fit_encoding_model(*args, solver="svd")
    for n_folds in (1, 4):
        with pytest.raises(ValueError, match=re.escape(f"n_folds must be between 2 and 3 (the number of stories), "
                                                       f"got {n_folds}")):
            fit_encoding_model(*args, n_folds=n_folds)


def test_progress_bar_only_when_asked_and_for_the_kernel_solver(capsys):
    """Catches a bar by default or from the primal solver, progress=True lost, a primal basis, himalaya's warning."""
    args = _stories(3, 10, 40, 4)  # 30 TRs < 40 features: auto is kernel
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_encoding_model(*args, backend="numpy").solver == "kernel"
        assert capsys.readouterr().out == ""
        assert fit_encoding_model(*args, backend="numpy", progress=True).solver == "kernel"
        assert "1 random sampling with cv" in capsys.readouterr().out
        assert fit_encoding_model(*args, backend="numpy", solver="primal", progress=True).solver == "primal"
        assert capsys.readouterr().out == ""


class _RefitWidths:
    """The current himalaya backend, recording the width of each block of test predictions copied back to numpy."""

    def __init__(self, backend, n_test, widths):
        self._backend, self._n_test, self._widths = backend, n_test, widths

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def to_numpy(self, x):
        if len(x.shape) == 2 and x.shape[0] == self._n_test:
            self._widths.append(x.shape[1])
        return self._backend.to_numpy(x)


@pytest.mark.parametrize("solver", ["primal", "kernel"])
def test_voxel_batches_follow_the_budgets_and_give_the_same_fit(monkeypatch, solver):
    """Catches chunks or batches over their budgets, a refit skipping or redoing voxels, extra CV passes or weights."""
    X, Y, X_test, Y_test = _stories(3, 20, 6, 7, seed=7)
    alphas = [1.0, 10.0, 100.0]
    fit = dict(alphas=alphas, n_folds=2, solver=solver, backend="numpy", dtype="float64")
    whole = fit_encoding_model(X, Y, X_test, Y_test, **fit)

    scored, refits, weights = [], [], []
    r2_score = encoding._r2_score
    monkeypatch.setattr(encoding, "_r2_score", lambda y, p: scored.append(p.shape[-1]) or r2_score(y, p))
    monkeypatch.setattr(himalaya.backend, "get_backend", lambda: _RefitWidths(get_backend(), len(X_test), refits))
    primal_search = himalaya.ridge.solve_group_ridge_random_search

    def primal_spy(*args, **kwargs):
        out = primal_search(*args, **kwargs)
        weights.append(out[1])
        return out

    monkeypatch.setattr(himalaya.ridge, "solve_group_ridge_random_search", primal_spy)
    # 2 folds (stories 0 and 2, then 1): 40 validation rows at most, 3 alphas
    block = 3 * 40 * 3 + 3 * 40 // 2  # 3.5 voxels of predictions: batches of 3
    one_voxel = 60 * 8  # bytes of a voxel's training responses
    for chunk_bytes, block_elements, want_scored, want_refits in (
            (5 * one_voxel, block, [3, 2, 3, 2, 2, 2], [3, 2, 2]),  # chunks of 5 and 2 voxels
            (1, 2**27, [1] * 14, [1] * 7),  # under a voxel's bytes: 1 voxel a chunk
            (2**30, 1, [1] * 14, [1] * 7)):  # under a voxel's block: 1 voxel a batch
        scored.clear()
        refits.clear()
        monkeypatch.setattr(encoding, "CHUNK_BYTES", chunk_bytes)
        monkeypatch.setattr(encoding, "BLOCK_ELEMENTS", block_elements)
        batched = fit_encoding_model(X, Y, X_test, Y_test, **fit)
        assert (scored, refits) == (want_scored, want_refits)
        np.testing.assert_array_equal(batched.alphas, whole.alphas)
        for name in ("scores", "cv_scores", "predictions"):
            np.testing.assert_allclose(getattr(batched, name), getattr(whole, name), rtol=1e-10, atol=1e-12)
    assert weights == ([None] * 10 if solver == "primal" else [])  # one call per chunk: 2, 7 and 1


def test_refit_keeps_eigenvalues_below_one():
    """Catches eigenvalues floored at 1 instead of 0 in the refit: small features, a tiny alpha, exact predictions."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((5, 6))
    X = [rng.standard_normal((20, 5)) * 1e-2 for _ in range(3)]  # eigenvalues of X^T X near 6e-3
    X_test = rng.standard_normal((12, 5)) * 1e-2
    for solver in ("primal", "kernel"):
        result = fit_encoding_model(X, [x @ W for x in X], X_test, X_test @ W, alphas=[1e-10], solver=solver,
                                    backend="numpy", dtype="float64")
        np.testing.assert_allclose(result.predictions, X_test @ W, rtol=1e-6, atol=1e-12, err_msg=solver)


def test_validation_r2_is_zero_for_a_constant_voxel_and_free_of_scale():
    """Catches the validation R^2 of a constant voxel taken as 1, or of a voxel of small variance as 0."""
    X, Y, X_test, Y_test = _stories(3, 30, 5, 1, seed=8)

    def voxels(y):  # a voxel, the same voxel / 1000, a constant voxel
        return np.column_stack([y[:, 0], y[:, 0] * 1e-3, np.full(len(y), 5.0)])

    result = fit_encoding_model(X, [voxels(y) for y in Y], X_test, voxels(Y_test), backend="numpy", dtype="float64")
    # R^2 0 at every alpha: himalaya's tie-break slope (1e-10 log alpha) picks the largest
    assert abs(result.cv_scores[2]) < 1e-8 and result.alphas[2] == 1e10 and np.isnan(result.scores[2])
    assert result.cv_scores[0] > 0.5
    np.testing.assert_allclose(result.cv_scores[1], result.cv_scores[0], rtol=1e-9)
    assert result.alphas[1] == result.alphas[0]
    np.testing.assert_allclose(result.scores[1], result.scores[0], rtol=1e-9)


def test_gather_copies_the_columns_once():
    """Catches np.take buffering each story (mode "raise" with out=): gathering holds nothing but its output."""
    rng = np.random.default_rng(6)
    Ys = [rng.standard_normal((n, 300)) for n in (1000, 1200)]
    cols = np.arange(3, 300, 2)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = encoding._gather(Ys, cols)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, np.concatenate(Ys)[:, cols])
    assert peak < 1.1 * out.nbytes


def test_features_too_large_for_float32_sums_are_refused_naming_the_cell():
    """Catches a finite feature of 1e20 that silently turns every score into NaN (its square overflows
    float32); values of 1e15 still fit."""
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((30, 4)).astype(np.float32) for _ in range(3)]
    Y = [rng.standard_normal((30, 5)).astype(np.float32) for _ in range(3)]
    X[1][3, 2] = 1e20
    with pytest.raises(ValueError, match=r"X_train\[1\] has values up to 1e\+20 \(row 3, column 2\).*overflow float32"):
        fit_encoding_model(X, Y, X[0], Y[0], n_folds=3)
    X[1][3, 2] = 1e15
    assert np.isfinite(fit_encoding_model(X, Y, X[0], Y[0], n_folds=3).scores).all()
