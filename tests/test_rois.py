import warnings

import numpy as np
import pytest

from bt_tutorial.dataset.rois import roi_masks, roi_means


def test_masks_cover_rois_groups_and_outside():
    names = ["none", "A1", "Belt", "STS"]
    roi = np.array([0, 1, 2, 3, 3, 0])
    masks = roi_masks(roi, names, groups={"auditory": ("A1", "Belt")})
    assert masks["A1"].tolist() == [False, True, False, False, False, False]
    assert masks["auditory"].sum() == 2 and masks["STS"].sum() == 2
    assert masks["outside_rois"].tolist() == [True, False, False, False, False, True]
    assert "none" not in masks  # label 0 is "outside any ROI", not an ROI of its own


def test_roi_means_ignore_nan_and_empty_masks():
    values = np.array([1.0, np.nan, 3.0, 5.0])
    masks = {"a": np.array([True, True, True, False]), "empty": np.zeros(4, bool)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty mask gives NaN without a mean-of-empty warning
        means = roi_means(values, masks)
    assert means["a"] == 2.0 and np.isnan(means["empty"])


def test_hemisphere_masks_split_every_mask():
    from bt_tutorial.dataset.rois import split_hemispheres

    roi = np.array([1, 1, 2, 0])
    masks = roi_masks(roi, ["none", "A1", "STS"], groups={"both": ("A1", "STS")}, hemi=np.array([0, 1, 0, 1]))
    assert masks["A1_L"].tolist() == [True, False, False, False]
    assert masks["both_R"].tolist() == [False, True, False, False]
    assert masks["outside_rois_R"].tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="hemi has shape"):
        split_hemispheres({"a": np.ones(3, bool)}, np.zeros(4))


def test_roi_summary_recovers_planted_means_with_intervals():
    from bt_tutorial.comparison.roi_tables import roi_summary

    rng = np.random.default_rng(0)
    values = np.concatenate([0.5 + 0.1 * rng.standard_normal(400), 0.1 + 0.1 * rng.standard_normal(400)])
    values[:10] = np.nan  # voxels without a usable ceiling
    masks = {"high": np.arange(800) < 400, "low": np.arange(800) >= 400}
    rows = {r["roi"]: r for r in roi_summary(values, masks, n_boot=1000)}
    assert rows["high"]["n_voxels"] == 390
    for name, truth in (("high", 0.5), ("low", 0.1)):
        r = rows[name]
        assert r["low"] < r["mean"] < r["high"] and r["low"] <= truth <= r["high"]
        assert 0.005 < r["high"] - r["low"] < 0.04  # about 4 standard errors of 0.1/sqrt(400)
    default = roi_summary(values, masks, rois=["low"])
    assert [r["roi"] for r in default] == ["low"]  # only the ROIs asked for
    assert default == roi_summary(values, masks, rois=["low"], n_boot=2000, level=0.95, seed=0)  # documented
    assert default != roi_summary(values, masks, rois=["low"], seed=3)  # the seed reaches the bootstrap


def test_paired_test_false_positives_near_level_and_power_on_a_shift():
    from bt_tutorial.stats import paired_comparison

    rng = np.random.default_rng(1)
    for method in ("permutation", "wilcoxon"):
        p = [paired_comparison(rng.standard_normal(60), rng.standard_normal(60), method=method,
                               n_permutations=400, n_boot=50, seed=i).p_value for i in range(300)]
        rate = np.mean(np.array(p) < 0.05)
        assert 0.02 <= rate <= 0.09, (method, rate)  # binomial sd at 300 draws: 0.013
    base = rng.standard_normal(200)
    shifted = paired_comparison(base + 0.2 + 0.3 * rng.standard_normal(200), base, n_boot=200)
    assert shifted.p_value < 0.01 and shifted.low > 0 and 0.1 < shifted.mean_difference < 0.3


def test_compare_in_rois_uses_shared_finite_voxels_and_checks_input():
    from bt_tutorial.comparison.roi_tables import compare_in_rois
    from bt_tutorial.stats import paired_comparison

    a = np.array([1.0, 2.0, np.nan, 4.0])
    b = np.array([0.0, 1.0, 1.0, np.nan])
    masks = {"all": np.ones(4, bool), "first": np.array([1, 0, 0, 0], bool)}
    assert list(compare_in_rois(a, b, masks, n_permutations=10, n_boot=10)) == ["all", "first"]  # all by default
    out = compare_in_rois(a, b, masks, rois=["all"], n_permutations=100, n_boot=50)
    assert list(out) == ["all"] and out["all"].n_voxels == 2 and out["all"].mean_difference == 1.0
    assert out["all"] != compare_in_rois(a, b, masks, rois=["all"], n_permutations=100, n_boot=50, seed=1)["all"]
    with pytest.raises(ValueError, match="same voxels"):
        paired_comparison(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="method must be"):
        paired_comparison(np.ones(3), np.ones(3), method="t")


def test_twin_masks_have_both_hemispheres(tiny_twin):
    from bt_tutorial.synthetic.truth import twin_roi_masks

    assert not any(name.endswith(("_L", "_R")) for name in twin_roi_masks(tiny_twin, "UTS01", hemispheres=False))
    masks = twin_roi_masks(tiny_twin, "UTS01")
    for group in ("late_language", "early_auditory", "primary_auditory"):
        assert masks[f"{group}_L"].sum() > 0 and masks[f"{group}_R"].sum() > 0
        assert np.array_equal(masks[f"{group}_L"] | masks[f"{group}_R"], masks[group])


def test_area_then_roi_means_weighs_areas_equally_and_counts_low_ceilings_as_zero():
    """Catches a voxel mean in place of the authors' mean of area means, or low ceilings left out
    instead of counted as 0 (multi-brain-tuning, brn_align_utils.py)."""
    from bt_tutorial.dataset.rois import area_then_roi_means

    scores = np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.3, np.nan, 0.2])
    ceiling = np.array([0.5, 0.5, 0.5, 0.5, 0.04, 0.6, 0.5, 0.5])
    masks = {"A": np.array([1, 0, 0, 0, 0, 0, 0, 0], bool), "B": np.array([0, 1, 1, 1, 1, 0, 0, 0], bool),
             "C": np.array([0, 0, 0, 0, 0, 1, 1, 0], bool), "D": np.zeros(8, bool)}
    means = area_then_roi_means(scores, ceiling, masks, {"AB": ("A", "B"), "C": ("C",), "D": ("D",)})
    assert means["AB"] == pytest.approx((1.0 + (0.2 + 0.2 + 0.2 + 0) / 4) / 2)  # area means 1.0 and 0.15
    assert means["C"] == pytest.approx((0.5 + 0) / 2)  # a NaN r counts as 0
    assert np.isnan(means["D"])
    low = area_then_roi_means(np.array([0.05, 0.0]), np.array([0.1, 0.03]), {"L": np.ones(2, bool)}, {"L": ("L",)})
    assert low["L"] == pytest.approx(0.25)  # ceiling 0.1 > 0.05 counts (0.5), 0.03 counts as 0
    fitted = np.array([1, 1, 1, 1, 1, 1, 0, 1], bool)  # voxel 6 not fitted: left out, not 0
    assert area_then_roi_means(scores, ceiling, masks, {"C": ("C",)}, voxels=fitted)["C"] == pytest.approx(0.5)
    with pytest.raises(KeyError, match="areas \\['E'\\]"):
        area_then_roi_means(scores, ceiling, masks, {"x": ("E",)})
    at_threshold = area_then_roi_means(np.array([0.05, 0.05]), np.array([0.05, 0.1]), {"L": np.ones(2, bool)},
                                       {"L": ("L",)})
    assert at_threshold["L"] == pytest.approx(0.25)  # a ceiling of exactly 0.05 is not above it: 0
    with pytest.raises(ValueError, match="must cover the same voxels"):
        area_then_roi_means(scores[:3], ceiling, masks, {"C": ("C",)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ROI without voxels is NaN, without a mean-of-empty warning
        assert np.isnan(area_then_roi_means(scores, ceiling, masks, {"D": ("D",)})["D"])


def test_resampled_means_pair_the_rows_and_chunking_changes_nothing():
    """Catches rows resampled with different voxels, chunks that skip or repeat resamples, and the
    wrong tails of the interval."""
    from bt_tutorial.stats import percentile_interval, resampled_means

    rng = np.random.default_rng(0)
    row = rng.standard_normal(30_000)
    values = np.stack([row, row, row + 1.0])
    means = resampled_means(values, 100, np.random.default_rng(3))  # 46 resamples a chunk
    direct = np.random.default_rng(3).integers(0, 30_000, (100, 30_000))
    np.testing.assert_allclose(means[0], row[direct].mean(axis=1), rtol=1e-12)
    assert np.array_equal(means[0], means[1]) and np.allclose(means[2] - means[0], 1.0)
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    assert percentile_interval(np.append(np.arange(101.0), np.nan), 0.5) == pytest.approx((25.0, 75.0))
    assert percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))  # 95% by default


def test_a_mask_of_another_length_is_named():
    """Catches an IndexError (or a silent wrong selection) from another subject's masks."""
    from bt_tutorial.dataset.rois import roi_means

    with pytest.raises(ValueError, match="ROI mask 'late' is bool of shape \\(4,\\), but the values have 5 voxels"):
        roi_means(np.zeros(5), {"late": np.ones(4, bool)})
    with pytest.raises(ValueError, match="ROI mask 'idx' is int64"):
        roi_means(np.zeros(5), {"idx": np.array([0, 1, 0, 1, 0])})


def test_sign_flip_p_value_counts_every_permutation_once():
    """Catches permutations skipped or counted twice across chunks of 500, and a p-value formula other
    than (1 + exceed) / (1 + n): with no difference at all, every flip ties and p is exactly 1."""
    from bt_tutorial.stats import sign_flip_p_value

    for n in (1, 500, 1234):
        assert sign_flip_p_value(np.zeros(7), n_permutations=n) == 1.0
    d = np.random.default_rng(2).normal(0.05, 1, 40)
    p = sign_flip_p_value(d)
    assert p == sign_flip_p_value(d, n_permutations=5000, seed=0) == sign_flip_p_value(list(d))  # documented
    assert p != sign_flip_p_value(d, seed=1) and 0 < p < 1


def test_bootstrap_and_paired_comparison_edge_cases_and_defaults():
    """Catches one value refused, an empty ROI not NaN, a paired comparison of fewer than 2 voxels
    not all NaN, zero differences sent to Wilcoxon, and the seed or documented defaults not used."""
    from bt_tutorial.stats import PairedComparison, bootstrap_mean, paired_comparison

    assert bootstrap_mean(np.array([0.3])) == (0.3, 0.3, 0.3)
    assert np.isnan(bootstrap_mean(np.array([np.nan, np.inf]))).all()
    v = np.random.default_rng(3).normal(0.2, 0.1, 100)
    assert bootstrap_mean(v) == bootstrap_mean(v, n_boot=2000, level=0.95, seed=0) != bootstrap_mean(v, seed=1)
    one = paired_comparison(np.array([1.0, np.nan]), np.array([0.0, 1.0]))
    assert one.n_voxels == 1 and one.method == "permutation"
    assert np.isnan([one.mean_difference, one.low, one.high, one.p_value]).all()
    same = paired_comparison(np.ones(5), np.ones(5), method="wilcoxon")
    assert same.p_value == 1.0 and same.mean_difference == 0.0
    a, b = np.random.default_rng(4).normal(0.1, 1, (2, 60))
    first = paired_comparison(a, b)
    assert isinstance(first, PairedComparison)
    assert first == paired_comparison(list(a), list(b), n_permutations=5000, n_boot=2000, level=0.95, seed=0)
    assert first.low != paired_comparison(a, b, seed=2).low


def test_resampled_means_of_a_huge_roi_take_one_resample_at_a_time():
    """Catches a chunk of 0 resamples (an endless or refused loop) when one resample exceeds the budget."""
    from bt_tutorial.stats import resampled_means

    values = np.zeros((1, 5_000_000), np.float32)
    assert resampled_means(values, 2, np.random.default_rng(0)).shape == (1, 2)


def test_interval_level_wilcoxon_on_a_constant_shift_and_the_missing_area_message():
    """Catches the bootstrap level not passed on (always 95%), a Wilcoxon p of 1 for differences that are
    all the same non-zero value, a result without its upper bound or method, and a missing-area message
    listing more masks than its eight."""
    from scipy.stats import wilcoxon

    from bt_tutorial.dataset.rois import area_then_roi_means
    from bt_tutorial.stats import bootstrap_mean, paired_comparison, percentile_interval, resampled_means

    values = np.random.default_rng(0).standard_normal(50)
    _, low, high = bootstrap_mean(values, n_boot=500, level=0.5, seed=3)
    want = percentile_interval(resampled_means(values, 500, np.random.default_rng(3))[0], 0.5)
    assert (low, high) == want
    result = paired_comparison(np.ones(12), np.zeros(12), method="wilcoxon")
    assert result.p_value == pytest.approx(wilcoxon(np.ones(12)).pvalue) and result.p_value < 0.01
    assert result.method == "wilcoxon" and result.high >= result.low == 1.0
    masks = {f"m{i}": np.ones(3, bool) for i in range(10)}
    with pytest.raises(KeyError) as caught:
        area_then_roi_means(np.ones(3), np.ones(3), masks, {"g": ["A1"]})
    assert "['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']..." in str(caught.value)
