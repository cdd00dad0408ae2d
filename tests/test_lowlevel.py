"""Low-level features: phone tables, n-grams, feature rows, residual removal, percentage drop."""

from __future__ import annotations

import os
import warnings
from collections import Counter

import numpy as np
import pytest

from bt_tutorial.alignment.encoding import fit_encoding_model
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.stimulus import Intervals
from bt_tutorial.lowlevel.feature_sets import (
    LOWLEVEL_SETS,
    feature_names,
    lowlevel_features,
    lowlevel_rows,
    ngram_vocabularies,
    spectrum_course,
)
from bt_tutorial.lowlevel.impact import lowlevel_impact, percent_drop, remove_lowlevel
from bt_tutorial.lowlevel.phones import (
    ARTICULATION,
    ARTICULATORY_FEATURES,
    PHONES,
    VOWELS,
    phone_ngram_vocabulary,
    phone_ngrams,
)


def _intervals(items):
    labels, starts, ends = zip(*items)
    return Intervals(tuple(labels), np.array(starts, float), np.array(ends, float))


# ------------------------------------------------------------------ phone tables
def test_articulation_table_covers_every_phone():
    """Calls the builder, not only the table built at import (a mutation tool sees only calls)."""
    from bt_tutorial.lowlevel.phones import articulation_table

    built = articulation_table()
    assert built.dtype == np.float32 and np.array_equal(built, ARTICULATION)
    aa = built[PHONES.index("AA")]
    assert aa.sum() == 3 and [ARTICULATORY_FEATURES[j] for j in np.flatnonzero(aa)] == ["voiced", "back", "low"]
    assert len(PHONES) == 39 and len(set(PHONES)) == 39
    assert len(ARTICULATORY_FEATURES) == 22 and ARTICULATION.shape == (39, 22)
    assert set(np.unique(ARTICULATION)) == {0.0, 1.0}
    assert ARTICULATION.sum(1).min() >= 2, "every phone has features"
    assert ARTICULATION.sum(0).min() >= 1, "every feature is used"
    assert len({row.tobytes() for row in ARTICULATION}) == 39, "every phone has its own row"
    voiced = ARTICULATION[:, ARTICULATORY_FEATURES.index("voiced")]
    assert all(voiced[PHONES.index(v)] == 1 for v in VOWELS)
    assert voiced[PHONES.index("P")] == 0 and voiced[PHONES.index("B")] == 1


def test_phone_ngrams_stay_inside_words_and_skip_unknown_labels():
    words = _intervals([("the", 0.0, 0.3), ("cat", 0.3, 0.8), ("oh", 1.0, 1.4)])
    phones = _intervals([("DH", 0.0, 0.1), ("AH", 0.1, 0.3), ("K", 0.3, 0.4), ("AE", 0.4, 0.6),
                         ("T", 0.6, 0.8), ("OW", 1.0, 1.2), ("XX", 1.2, 1.4)])
    diphones, times = phone_ngrams(words, phones, 2)
    assert diphones == [("DH", "AH"), ("K", "AE"), ("AE", "T")]
    assert np.allclose(times, [0.15, 0.45, 0.6])
    triphones, times = phone_ngrams(words, phones, 3)
    assert triphones == [("K", "AE", "T")] and np.allclose(times, [0.55])


# ------------------------------------------------------------------ features of the tiny twin
@pytest.fixture(scope="module")
def tiny(tiny_twin):
    ds = LebelDataset(tiny_twin)
    split = ds.split("UTS01")
    return ds, split["train"], split["test"]


def test_ngram_vocabulary_comes_from_training_stories_only(tiny):
    ds, train, test = tiny
    counts = Counter(g for s in train for g in phone_ngrams(*ds.load_transcript(s), 2)[0])
    vocab = phone_ngram_vocabulary(ds, train, 2, 10_000)
    assert vocab == sorted(counts, key=lambda g: (-counts[g], g))
    assert phone_ngram_vocabulary(ds, train[::-1], 2, 5) == vocab[:5]
    test_only = set(phone_ngrams(*ds.load_transcript(test), 2)[0]) - set(counts)
    assert test_only and not test_only & set(vocab)
    # lowlevel_rows computes the test story's features on the training vocabulary
    rows = lowlevel_rows(ds, [test], train, ("diphones",), top_diphones=10_000)
    expected = lowlevel_features(ds, test, ("diphones",), {"diphones": vocab})["diphones"]
    assert np.array_equal(rows[test]["diphones"], expected)


def test_feature_shapes_on_the_tiny_twin(tiny):
    ds, train, test = tiny
    vocabularies = ngram_vocabularies(ds, train, top_diphones=30, top_triphones=20)
    n_rows = len(ds.tr_times(test))
    feats = lowlevel_features(ds, test, LOWLEVEL_SETS, vocabularies, n_rows=n_rows)
    widths = dict(spectrum=32, phonemes=39, diphones=30, triphones=20, articulation=22, rates=2)
    assert list(feats) == list(LOWLEVEL_SETS)
    for name, x in feats.items():
        assert x.shape == (n_rows, widths[name]) and x.dtype == np.float32, name
        assert np.isfinite(x).all() and np.allclose(x.mean(0), 0, atol=1e-5), name
        assert len(feature_names(name, vocabularies)) == widths[name]
    assert np.allclose(feats["rates"].std(0), 1, atol=1e-4)
    assert feature_names("phonemes+rates")[-2:] == ["phone_rate", "word_rate"]


def test_phone_rate_follows_the_phones():
    """Rows with more phones get a higher phone rate (Lanczos counts of impulses)."""
    class OneStory:
        tr = 2.0

        def n_scan_trs(self, story):
            return 60

        def load_transcript(self, story):
            t = np.concatenate([np.arange(20, 40, 0.05), np.arange(60, 80, 0.4)])
            phones = Intervals(("AH",) * len(t), t, t + 0.04)
            return Intervals(("a",), np.array([0.0]), np.array([100.0])), phones

    rows = lowlevel_features(OneStory(), "s", ("rates", "phonemes"))
    times = np.arange(60 - 5)[10:-5] * 2.0 - 10 + 1.0
    rate = rows["rates"][:, 0]
    dense, sparse = (times > 24) & (times < 36), (times > 64) & (times < 76)
    silent = (times > 46) & (times < 54)
    assert rate[dense].min() > rate[sparse].max() and rate[sparse].min() > rate[silent].max()
    assert np.allclose(rows["phonemes"][:, PHONES.index("AH")], rate, atol=1e-5)


def test_clear_errors(tiny):
    ds, train, test = tiny
    with pytest.raises(ValueError, match="Unknown low-level feature set 'mfcc'"):
        lowlevel_features(ds, test, ("phonemes", "mfcc"))
    with pytest.raises(ValueError, match="Unknown low-level feature set 'pitch' in 'rates\\+pitch'"):
        lowlevel_impact({0: {}}, ds, "UTS01", sets=("rates+pitch",))
    with pytest.raises(ValueError, match="needs vocabularies\\['diphones'\\]"):
        lowlevel_features(ds, test, ("diphones",))
    with pytest.raises(ValueError, match=f"Story {test}: features give"):
        lowlevel_features(ds, test, ("rates",), n_rows=3)
    with pytest.raises(ValueError, match="16 kHz"):
        spectrum_course(np.zeros(44100, np.float32), 44100)
    with pytest.raises(ValueError, match="Story 1: x_train\\[1\\] has 5 rows but low_train\\[1\\] has 6"):
        remove_lowlevel([np.ones((4, 3)), np.ones((5, 3))], [np.ones((4, 2)), np.ones((6, 2))])
    with pytest.raises(ValueError, match="both x_test and low_test"):
        remove_lowlevel([np.ones((4, 3))] * 2, [np.ones((4, 2))] * 2, x_test=np.ones((4, 3)))


# ------------------------------------------------------------------ residuals and drops
def _planted(seed=0, n_stories=6, n_rows=150, n_low=4, n_sem=4, width=32, x_noise=0.5):
    """Model features mixing a low-level and a semantic signal; voxels driven by one of them."""
    rng = np.random.default_rng(seed)
    mix_low, mix_sem = rng.standard_normal((n_low, width)), rng.standard_normal((n_sem, width))
    w_low, w_sem = rng.standard_normal((n_low, 100)), rng.standard_normal((n_sem, 100))

    def story():
        low, sem = rng.standard_normal((n_rows, n_low)), rng.standard_normal((n_rows, n_sem))
        x = low @ mix_low + sem @ mix_sem + x_noise * rng.standard_normal((n_rows, width))
        y = np.hstack([low @ w_low, sem @ w_sem])
        return x, low, y + rng.standard_normal(y.shape) * y.std(0)

    stories = [story() for _ in range(n_stories + 1)]
    return [list(v) for v in zip(*stories[:-1])] + list(stories[-1])


def _r2_of_linear_fit(features, targets):
    """In-sample R^2 of least squares from features to each target column."""
    f, t = features - features.mean(0), targets - targets.mean(0)
    w = np.linalg.lstsq(f, t, rcond=None)[0]
    return 1 - ((t - f @ w) ** 2).sum(0) / (t ** 2).sum(0)


def test_residuals_are_uncorrelated_with_the_lowlevel_features():
    x, low, _, x_test, low_test, _ = _planted()
    resid, resid_test, info = remove_lowlevel(x, low, x_test, low_test, alphas=[1e-6], dtype="float64")
    L = np.concatenate(low) - np.concatenate(low).mean(0)
    R = np.concatenate(resid)
    corr = (L / L.std(0)).T @ (R / R.std(0)) / len(R)
    assert np.abs(corr).max() < 1e-6, "least squares residuals are orthogonal to the regressors"
    assert np.allclose(R.mean(0), 0, atol=1e-8)
    # the weights of the training fit carry over to the test story
    assert _r2_of_linear_fit(low_test, x_test).mean() > 0.4
    assert _r2_of_linear_fit(low_test, resid_test).mean() < 0.1
    assert info["r2_train"].shape == (32,) and info["r2_test"].mean() > 0.4
    # cross-validated alphas on the default grid: ridge shrinkage leaves a little correlation
    def max_corr(a):
        a = np.concatenate(a) - np.concatenate(a).mean(0)
        return np.abs((L / L.std(0)).T @ (a / a.std(0)) / len(a)).max()

    resid, _, info = remove_lowlevel(x, low)
    assert max_corr(x) > 0.3 and max_corr(resid) < 0.05
    assert info["alphas"].shape == (32,) and np.isnan(info["r2_test"]).all()


@pytest.mark.parametrize("x_noise, alphas", [(0.5, None), (0.05, [1e-6])])
def test_percent_drop_on_a_planted_case(x_noise, alphas):
    """Voxels driven by the low-level signal lose ~100 % of r; semantic voxels ~0 %.

    With almost noiseless model features, the copy of the low-level signal that
    ridge shrinkage leaves in the residuals sits in otherwise empty directions,
    where the encoding model reads it at any scale: an exact projection (tiny
    alpha) is needed there.
    """
    x, low, y, x_test, low_test, y_test = _planted(x_noise=x_noise)
    kwargs = {} if alphas is None else dict(alphas=alphas)
    resid, resid_test, _ = remove_lowlevel(x, low, x_test, low_test, **kwargs)
    r_orig = fit_encoding_model(x, y, x_test, y_test).scores
    r_resid = fit_encoding_model(resid, y, resid_test, y_test).scores
    masks = {"lowlevel": np.arange(200) < 100, "semantic": np.arange(200) >= 100}
    drops = percent_drop(r_orig, r_resid, masks)
    assert r_orig[masks["lowlevel"]].mean() > 0.5 and r_orig[masks["semantic"]].mean() > 0.5
    assert 90 < drops["lowlevel"] < 110
    assert abs(drops["semantic"]) < 5


def test_percent_drop_is_a_ratio_of_roi_means():
    r_orig, r_resid = np.array([0.4, 0.2, -0.1, 0.0]), np.array([0.1, 0.1, 0.0, 0.3])
    masks = {"a": np.array([1, 1, 0, 0], bool), "b": np.array([0, 0, 1, 1], bool),
             "empty": np.zeros(4, bool)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drops = percent_drop(r_orig, r_resid, masks)
    assert drops["a"] == pytest.approx(100 * (0.3 - 0.1) / 0.3)
    assert np.isnan(drops["b"]) and np.isnan(drops["empty"])
    assert any("['b', 'empty']" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="same shape"):
        percent_drop(r_orig, r_resid[:3], masks)


def test_lowlevel_impact_keys_shapes_and_voxel_subset_on_the_tiny_twin(tiny):
    ds, train, test = tiny
    rng = np.random.default_rng(0)
    rows = {k: {s: rng.standard_normal((len(ds.tr_times(s)), 16)).astype(np.float32)
                for s in train + [test]} for k in (0, 2)}
    impact = lowlevel_impact(rows, ds, "UTS01", sets=("rates", "phonemes+articulation"),
                             n_folds=2, top_diphones=5)
    n_voxels = ds.load_responses("UTS01", test).shape[1]
    assert impact.layers == [0, 2] and impact.test_story == test
    assert set(impact.r_resid) == {(k, s) for k in (0, 2) for s in ("rates", "phonemes+articulation")}
    assert all(r.shape == (n_voxels,) for r in [*impact.r_orig.values(), *impact.r_resid.values()])
    assert impact.residual_info[(2, "rates")]["alphas"].shape == (16,)
    masks = {"all": np.ones(n_voxels, bool)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random features: mean r may be <= 0
        drops = impact.percent_drop(masks, layer=2)
    assert set(drops) == {"rates", "phonemes+articulation"} and set(drops["rates"]) == {"all"}
    with pytest.raises(ValueError, match="Several layers"):
        impact.percent_drop(masks)
    assert "layer 2, rates" in impact.summary()
    some = np.arange(n_voxels) % 3 == 0  # chapter 6 fits only the voxels its means use
    part = lowlevel_impact({2: rows[2]}, ds, "UTS01", sets=("rates",), n_folds=2, top_diphones=5, voxels=some)
    for got, want in ((part.r_orig[2], impact.r_orig[2]), (part.r_resid[(2, "rates")], impact.r_resid[(2, "rates")])):
        np.testing.assert_allclose(got[some], want[some], atol=1e-5)
        assert np.isnan(got[~some]).all()
    late = lowlevel_impact({2: rows[2]}, ds, "UTS01", sets=("rates",), n_folds=2, top_diphones=5,
                           first_scored_row=3)  # the authors' residual evaluation scores from row 40
    y_test = ds.load_responses("UTS01", test)
    from bt_tutorial.alignment.layers import DELAYS
    from bt_tutorial.dataset.timing import make_delayed
    fit = fit_encoding_model([make_delayed(rows[2][s], DELAYS) for s in train], [ds.load_responses("UTS01", s)
                             for s in train], make_delayed(rows[2][test], DELAYS)[3:], y_test[3:], n_folds=2)
    np.testing.assert_allclose(late.r_orig[2], fit.scores, atol=1e-5)
    bad = {0: dict(rows[0], **{test: rows[0][test][:-1]})}
    with pytest.raises(ValueError, match=f"Story {test}: model_rows\\[0\\] has"):
        lowlevel_impact(bad, ds, "UTS01", sets=("rates",), n_folds=2)
    with pytest.raises(KeyError, match="no story"):
        lowlevel_impact({0: {test: rows[0][test]}}, ds, "UTS01", sets=("rates",), n_folds=2)


def test_drop_table_and_describe_sets():
    from bt_tutorial.lowlevel.feature_sets import describe_sets
    from bt_tutorial.lowlevel.impact import LowLevelImpact, drop_table

    masks = {"a": np.array([True, True, False]), "b": np.array([False, False, True])}
    r_orig = {1: np.array([0.4, 0.6, 0.5]), 2: np.array([0.2, 0.2, 0.4])}
    r_resid = {(1, "spectrum"): np.array([0.2, 0.3, 0.5]), (2, "spectrum"): np.array([0.2, 0.2, 0.1])}
    impact = LowLevelImpact("UTS01", "test", [1, 2], ("spectrum",), r_orig, r_resid)
    assert impact.drop_by_layer(masks) == {"a": [50.0, 0.0], "b": [0.0, 75.0]}
    table = drop_table({"pretrained": impact, "control": impact}, masks)
    assert list(table.columns) == [1, 2] and table.loc[("control", "b"), 2] == 75.0
    assert table.columns.name == "layer" and table.index.names == ["model", "roi"]
    with pytest.raises(KeyError, match="rates"):
        impact.drop_by_layer(masks, "rates")
    two = LowLevelImpact("UTS01", "test", [1, 2], ("spectrum", "rates"), r_orig,
                         {**r_resid, (1, "rates"): r_orig[1], (2, "rates"): r_orig[2]})
    with pytest.raises(KeyError, match="None was not fitted"):  # two sets: which one must be said
        two.drop_by_layer(masks)
    assert drop_table({"m": two}, masks, "rates").loc[("m", "a")].tolist() == [0.0, 0.0]
    rows = {"phonemes": np.zeros((5, 39)), "diphones": np.zeros((5, 7))}
    sets = describe_sets(rows, {"diphones": [("AH", "B"), ("K", "AE"), ("T", "IY"), ("S", "T"), ("N", "D"),
                                             ("L", "IY"), ("R", "AA")]})
    assert sets.loc["phonemes", "features"] == 39
    assert sets.loc["diphones", "first columns"].startswith("AH-B, K-AE, T-IY, S-T, N-D")  # five by default
    assert "L-IY" not in sets.loc["diphones", "first columns"]


def test_set_drop_table_puts_each_model_and_set_on_a_row_and_each_roi_in_a_column():
    """Catches sets and ROIs swapped, the wrong layer, or a model's rows taken from another model."""
    from bt_tutorial.lowlevel.impact import LowLevelImpact, set_drop_table

    masks = {"b": np.array([False, False, True]), "a": np.array([True, True, False])}
    r_orig = {1: np.array([0.4, 0.6, 0.5]), 2: np.array([0.2, 0.2, 0.4])}
    resid = {(1, "spectrum"): np.array([0.2, 0.3, 0.5]), (2, "spectrum"): np.array([0.2, 0.2, 0.1]),
             (1, "rates"): np.array([0.4, 0.6, 0.25]), (2, "rates"): np.array([0.1, 0.1, 0.4])}
    pre = LowLevelImpact("UTS01", "pre", [1, 2], ("spectrum", "rates"), r_orig, resid)
    tuned = LowLevelImpact("UTS01", "tuned", [1, 2], ("spectrum", "rates"), r_orig,
                           {key: np.zeros(3) for key in resid})
    table = set_drop_table({"pretrained": pre, "tuned": tuned}, masks, layer=2)
    assert table.index.names == ["model", "set"] and list(table.columns) == ["b", "a"]
    assert table.loc[("pretrained", "spectrum")].tolist() == [75.0, 0.0]
    assert table.loc[("pretrained", "rates")].tolist() == [0.0, 50.0]
    assert table.loc[("tuned", "rates")].tolist() == [100.0, 100.0]
    assert set_drop_table({"pretrained": pre}, masks, layer=1).loc[("pretrained", "rates"), "b"] == 50.0
    with pytest.raises(ValueError, match="say which one"):
        set_drop_table({"pretrained": pre}, masks)


def test_lowlevel_impact_removes_what_the_lowlevel_set_explains(tiny):
    """Catches a residual fit that is bypassed (every drop 0%): features that are the low-level set
    itself leave residuals with little to predict."""
    ds, train, test = tiny
    stories = train + [test]
    n_rows = {s: len(ds.tr_times(s)) for s in stories}
    low = lowlevel_rows(ds, stories, train, ("rates",), n_rows)
    rng = np.random.default_rng(3)
    rows = {0: {s: low[s]["rates"] + 0.01 * rng.standard_normal(low[s]["rates"].shape) for s in stories}}
    impact = lowlevel_impact(rows, ds, "UTS01", sets=("rates",), lowlevel=low, n_folds=2)
    explained = np.abs(impact.r_orig[0]) > 0.3
    assert explained.sum() >= 5
    before, after = np.abs(impact.r_orig[0][explained]), np.abs(impact.r_resid[(0, "rates")][explained])
    assert np.nanmean(after) < 0.7 * np.nanmean(before)  # 47% lower here; bypassed: equal (tiny data, CV ridge)


# ------------------------------------------------------------------ planted truths for the low-level pieces
def test_spectrum_band_centers_are_the_peaks_of_torchaudios_htk_mel_filters():
    """Catches any change to the mel formula (an independent implementation is the reference)."""
    import torch
    from torchaudio.functional import melscale_fbanks

    from bt_tutorial.lowlevel.feature_sets import spectrum_band_centers

    for n_bands in (1, 8, 32):
        fb = melscale_fbanks(n_freqs=8193, f_min=0.0, f_max=8000.0, n_mels=n_bands, sample_rate=16000,
                             mel_scale="htk")
        peaks = torch.linspace(0, 8000, 8193)[fb.argmax(dim=0)].numpy()
        np.testing.assert_allclose(spectrum_band_centers(n_bands), peaks, atol=1.0)  # bins of 0.98 Hz
    fb = melscale_fbanks(n_freqs=4097, f_min=0.0, f_max=4000.0, n_mels=4, sample_rate=8000, mel_scale="htk")
    peaks = torch.linspace(0, 4000, 4097)[fb.argmax(dim=0)].numpy()
    np.testing.assert_allclose(spectrum_band_centers(4, 8000), peaks, atol=1.0)


def test_spectrum_course_finds_a_planted_tone_in_its_band_at_mid_bin_times():
    """Catches wrong bin times (the middle of each 0.1 s bin), a wrong band order or power, or float64."""
    from bt_tutorial.lowlevel.feature_sets import spectrum_band_centers

    t = np.arange(16000 * 2) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    times, power = spectrum_course(tone, 16000, 32)
    assert power.dtype == np.float32 and power.shape == (len(times), 32)
    np.testing.assert_allclose(times[:3], [0.045, 0.145, 0.245])  # 10 frames of 10 ms per bin
    band = np.argmax(power.mean(0))
    assert band == np.argmin(abs(spectrum_band_centers(32) - 1000.0))
    quiet = spectrum_course(tone / 10, 16000, 32)[1]
    np.testing.assert_allclose(power[:, band] - quiet[:, band], 2.0, atol=1e-3)  # log10 of power: amplitude/10 is -2
    with pytest.raises(ValueError, match="Audio of 0.15 s is too short for a spectrum"):
        spectrum_course(tone[:2400], 16000, 32)
    assert len(spectrum_course(tone[:3360], 16000, 32)[0]) == 2  # 21 frames: two bins are enough


def test_word_of_phone_boundaries():
    """Catches a phone centred on a word boundary given to the earlier word, a phone in a gap or past
    the last word given a word, and a marker other than -1."""
    from bt_tutorial.lowlevel.phones import word_of_phone

    words = _intervals([("a", 0.0, 1.0), ("b", 1.0, 2.0), ("c", 3.0, 4.0)])
    phones = _intervals([("T", -0.5, -0.1), ("AA", 0.2, 0.4), ("B", 0.9, 1.1), ("K", 2.1, 2.5), ("IY", 3.2, 3.4),
                         ("D", 3.9, 4.1), ("EH", 4.5, 5.0)])
    # before all words, inside a, centred on the a|b boundary (b), in the gap, inside c, centred on c's end
    assert word_of_phone(words, phones).tolist() == [-1, 0, 1, -1, 2, -1, -1]


def test_phone_ngrams_of_a_word_include_its_first_phone_and_its_last_run():
    """Catches AA (phone index 0) treated as unknown, the last run of a word dropped, n = 1 refused."""
    from bt_tutorial.lowlevel.phones import phone_ngrams

    words = _intervals([("odd", 0.0, 0.6)])
    phones = _intervals([("AA", 0.0, 0.2), ("D", 0.2, 0.4), ("ZH", 0.4, 0.6)])
    grams, times = phone_ngrams(words, phones, 2)
    assert grams == [("AA", "D"), ("D", "ZH")] and times.dtype == float
    np.testing.assert_allclose(times, [0.2, 0.4])
    assert phone_ngrams(words, phones, 1)[0] == [("AA",), ("D",), ("ZH",)]
    assert phone_ngrams(words, phones, 3)[0] == [("AA", "D", "ZH")]
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        phone_ngrams(words, phones, 0)


def test_ngram_vocabulary_top_one_and_one_story(tiny):
    """Catches top_k = 1 or a single story refused, and a story name passed as a string accepted."""
    ds, train, _ = tiny
    one = phone_ngram_vocabulary(ds, train[:1], 2, 1)
    assert len(one) == 1 and one == phone_ngram_vocabulary(ds, train[:1], 2, 5)[:1]
    with pytest.raises(ValueError, match="top_k must be at least 1, got 0"):
        phone_ngram_vocabulary(ds, train, 2, 0)
    with pytest.raises(ValueError, match="stories must be a non-empty list of story names, got 'x'"):
        phone_ngram_vocabulary(ds, "x", 2, 5)


def test_ngram_values_and_feature_names_of_combined_sets():
    """Catches one-hot values other than 1.0 in float32, and names of 'a+b' keeping only b's."""
    from bt_tutorial.lowlevel.feature_sets import _ngram_values

    values = _ngram_values([("AA", "B"), ("K", "AE"), ("AA", "B")], [("AA", "B"), ("T", "IY")])
    assert values.dtype == np.float32 and values.tolist() == [[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]
    names = feature_names("spectrum+phonemes+articulation+rates", n_bands=4)
    assert len(names) == 4 + 39 + 22 + 2 and names[4] == PHONES[0] and names[-2:] == ["phone_rate", "word_rate"]
    assert names[43] == ARTICULATORY_FEATURES[0]
    with pytest.raises(ValueError, match="Names of 'diphones' need its vocabulary"):
        feature_names("phonemes+diphones", {"triphones": []})


def test_lowlevel_impact_equals_its_pieces_put_together_by_hand(tiny):
    """Catches settings dropped on the way (folds, alphas, delays, scored rows, the training stories
    behind the n-gram vocabulary, the layers asked for): the result must equal the recipe done by hand."""
    from bt_tutorial.dataset.timing import make_delayed
    from bt_tutorial.lowlevel.feature_sets import stack_sets

    ds, train, test = tiny
    stories = train + [test]
    y = {s: ds.load_responses("UTS01", s) for s in stories}
    rng = np.random.default_rng(4)
    rows = {k: {s: rng.standard_normal((len(y[s]), 6)).astype(np.float32) for s in stories} for k in (1, 4)}
    alphas, delays, first = np.logspace(1, 3, 3), (1, 2), 3
    impact = lowlevel_impact(rows, ds, "UTS01", sets=("diphones",), layers=[4], delays=delays, n_folds=2,
                             top_diphones=4, first_scored_row=first, alphas=alphas, residual_alphas=[10.0, 100.0])
    assert impact.layers == [4] and impact.subject == "UTS01"

    low = lowlevel_rows(ds, stories, train, ("diphones",), {s: len(y[s]) for s in stories}, 4)
    assert low[train[0]]["diphones"].shape[1] == 4
    lows = [stack_sets(low[s], "diphones") for s in stories]
    x = [rows[4][s] for s in train]
    resid_train, resid_test, _ = remove_lowlevel(x, lows[:-1], rows[4][test], lows[-1], [10.0, 100.0], 2, "auto")

    def encode(x_train, x_test):
        fit = fit_encoding_model([make_delayed(a, delays) for a in x_train], [y[s] for s in train],
                                 make_delayed(x_test, delays)[first:], y[test][first:], alphas=alphas, n_folds=2)
        return fit.scores

    np.testing.assert_allclose(impact.r_orig[4], encode(x, rows[4][test]), atol=1e-5)
    np.testing.assert_allclose(impact.r_resid[(4, "diphones")], encode(resid_train, resid_test), atol=1e-5)
    with pytest.raises(KeyError, match=r"model_rows has no layer 7; layers: \[1, 4\]"):
        lowlevel_impact(rows, ds, "UTS01", sets=("rates",), layers=[4, 7])
    masks = {"all": np.ones(len(impact.r_orig[4]), bool)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random features: mean r may be <= 0
        np.testing.assert_equal(impact.percent_drop(masks), impact.percent_drop(masks, layer=4))  # the only layer
    with pytest.raises(KeyError, match=r"Layer 1 was not fitted; layers: \[4\]"):
        impact.percent_drop(masks, layer=1)


def test_remove_lowlevel_reports_a_planted_share_of_explained_variance():
    """Catches the reported R^2 of the low-level fit computed wrongly (1 + ..., over all columns at
    once) or a constant feature given a number: x = 2 low + unit noise has R^2 = 4/5."""
    rng = np.random.default_rng(8)
    low = [rng.standard_normal((400, 1)) for _ in range(3)]
    x = [np.column_stack([2 * lo[:, 0] + rng.standard_normal(400), 0.1 * rng.standard_normal(400),
                          np.ones(400)]) for lo in low]
    _, _, info = remove_lowlevel(x, low, alphas=[1e-3], n_folds=3)
    assert info["r2_train"][0] == pytest.approx(0.8, abs=0.03)
    assert abs(info["r2_train"][1]) < 0.02 and np.isnan(info["r2_train"][2])
    assert info["cv_r2"].shape == (3,) and np.allclose(info["alphas"][:2], 1e-3)


# ------------------------------------------------------------------ residual removal: inputs, plumbing, invariances
def test_remove_lowlevel_errors_name_the_argument_and_the_story():
    """Catches checks that are skipped or point at the wrong array: each message names the argument,
    the story index and the shapes that disagree."""
    ok = [np.ones((5, 2)), np.zeros((5, 2))]
    low = [np.ones((5, 1)), np.zeros((5, 1))]
    cases = [
        ((np.ones((5, 2)), low), TypeError, "x_train must be a non-empty list"),
        (([], []), TypeError, "x_train must be a non-empty list"),
        ((ok, np.ones((5, 1))), TypeError, "low_train must be a non-empty list"),
        (([np.ones(5), np.ones(5)], low), ValueError, r"x_train\[0\] must be a non-empty 2-D array .*got shape \(5,\)"),
        ((ok, [np.ones((5, 1)), np.ones((0, 1))]), ValueError, r"low_train\[1\] must be a non-empty 2-D"),
        (([np.ones((5, 2)), np.ones((5, 3))], low), ValueError, r"x_train\[1\] has 3 columns but x_train\[0\] has 2\."),
        ((ok, [np.ones((5, 1)), np.full((5, 1), np.nan)]), ValueError, r"low_train\[1\] has NaN or inf"),
        ((ok, low[:1]), ValueError, "x_train has 2 stories but low_train has 1."),
        ((ok, [np.ones((5, 1)), np.ones((4, 1))]), ValueError, r"Story 1: x_train\[1\] has 5 rows but low_train\[1\] has 4"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            remove_lowlevel(*args)
    test_cases = [
        ((np.ones((3, 3)), np.ones((3, 1))), r"x_test has 3 columns but x_train has 2\."),
        ((np.ones((3, 2)), np.ones((3, 2))), r"low_test has 2 columns but low_train has 1\."),
        ((np.full((3, 2), np.inf), np.ones((3, 1))), r"x_test\[0\] has NaN or inf"),
        ((np.ones((3, 2)), np.full((3, 1), np.nan)), r"low_test\[0\] has NaN or inf"),
        ((np.ones((3, 2)), np.ones((2, 1))), r"x_test\[0\] has 3 rows but low_test\[0\] has 2"),
    ]
    for (x_test, low_test), message in test_cases:
        with pytest.raises(ValueError, match=message):
            remove_lowlevel(ok, low, x_test, low_test)


def _planted_lowlevel(seed=0, n_stories=4, n_rows=60):
    rng = np.random.default_rng(seed)
    low = [rng.standard_normal((n_rows, 2)) for _ in range(n_stories)]
    x = [lo @ np.array([[1.0, 0.0, 2.0], [0.5, 1.0, 0.0]]) + rng.standard_normal((n_rows, 3)) for lo in low]
    return x, low


def test_remove_lowlevel_keeps_the_dtype_asked_for_and_returns_the_weights():
    """Catches the residuals cast to the wrong dtype and the weights left out of ``info``."""
    x, low = _planted_lowlevel()
    for dtype in ("float32", "float64"):
        resid_train, resid_test, info = remove_lowlevel(x[:3], low[:3], x[3], low[3], dtype=dtype)
        assert {r.dtype for r in resid_train} == {np.dtype(dtype)} and resid_test.dtype == np.dtype(dtype)
    assert info["coef"].shape == (2, 3)
    np.testing.assert_allclose(info["coef"], [[1.0, 0.0, 2.0], [0.5, 1.0, 0.0]], atol=0.2)


def test_remove_lowlevel_ignores_a_constant_added_to_the_model_features():
    """Catches the model features left uncentred in the ridge (no intercept in himalaya): adding a
    constant must change neither the chosen alphas nor the residuals."""
    x, low = _planted_lowlevel(1)
    alphas = np.logspace(-2, 4, 7)
    base = remove_lowlevel(x[:3], low[:3], x[3], low[3], alphas=alphas, dtype="float64")
    shifted = remove_lowlevel([a + 1000.0 for a in x[:3]], low[:3], x[3] + 1000.0, low[3], alphas=alphas,
                              dtype="float64")
    np.testing.assert_array_equal(base[2]["alphas"], shifted[2]["alphas"])
    np.testing.assert_allclose(base[1], shifted[1], atol=1e-6)
    for a, b in zip(base[0], shifted[0]):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_low_level_ridge_is_cross_validated_over_whole_stories_on_the_backend_asked_for(monkeypatch):
    """Catches folds that mix rows of a story, a score other than R^2, the fold count or the backend
    dropped on the way to himalaya, and a backend left switched afterwards."""
    from himalaya.backend import get_backend
    from himalaya.scoring import r2_score

    from bt_tutorial.alignment.encoding import story_splits
    from bt_tutorial.lowlevel import impact

    seen = []

    class SpyRidgeCV(impact.RidgeCV):
        def __init__(self, **kwargs):
            seen.append(dict(kwargs, backend=get_backend().name))
            super().__init__(**kwargs)

    monkeypatch.setattr(impact, "RidgeCV", SpyRidgeCV)
    x, low = _planted_lowlevel(2, n_stories=4)
    before = get_backend().name
    remove_lowlevel(x, low, n_folds=3, backend="torch")
    assert get_backend().name == before
    (kwargs,) = seen
    assert kwargs["backend"] == "torch"
    assert kwargs["solver_params"] == dict(score_func=r2_score, warn=False)
    want = story_splits([60] * 4, 3)
    assert len(kwargs["cv"]) == 3
    for (train, val), (want_train, want_val) in zip(kwargs["cv"], want):
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(val, want_val)


def test_percent_drop_leaves_a_voxel_out_of_both_means_and_warns_at_the_caller():
    """Catches a voxel with NaN r in one fit kept in the other's mean, a zero mean r given a drop,
    and the warning pointing inside the package instead of at the caller's line."""
    masks = {"roi": np.array([True, True, True])}
    drops = percent_drop([0.4, 0.2, 0.9], [0.2, 0.1, np.nan], masks)
    assert drops["roi"] == pytest.approx(50.0)  # 0.3 -> 0.15; with the third voxel in r_orig: 0.5 -> 0.15
    drops = percent_drop([0.4, 0.2, np.nan], [0.2, 0.1, 0.9], masks)
    assert drops["roi"] == pytest.approx(50.0)
    with pytest.warns(UserWarning, match=r"\['roi'\]") as record:
        drops = percent_drop([0.1, -0.1, 0.0], [0.05, 0.0, 0.0], masks)
    assert np.isnan(drops["roi"])
    assert record[0].filename == __file__ or "MUTANT_UNDER_TEST" in os.environ  # mutmut adds frames


def test_summary_means_leave_out_nan_voxels():
    """Catches NaN voxels counted in the summary's means, or a mean printed for a fit with no voxels."""
    from bt_tutorial.lowlevel.impact import LowLevelImpact

    impact = LowLevelImpact("UTS01", "story", [3], ("rates",), {3: np.array([0.2, 0.4, np.nan])},
                            {(3, "rates"): np.full(3, np.nan)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        assert impact.summary().splitlines()[1] == "  layer 3, rates: mean r 0.300 -> nan"
    assert repr(impact) == impact.summary()


def test_lowlevel_impact_passes_its_settings_to_every_stage(tiny, monkeypatch):
    """Catches a setting dropped on the way: the subject's split, the n-gram sizes, the progress flag,
    the fold count and backend of both ridges, and the default first scored row (0)."""
    from bt_tutorial.lowlevel import impact

    ds, train, test = tiny
    calls = {}

    def spy(name, real):
        def wrapper(*args, **kwargs):
            calls.setdefault(name, []).append((args, kwargs))
            return real(*args, **kwargs)
        monkeypatch.setattr(impact, name, wrapper)

    for name in ("lowlevel_rows", "remove_lowlevel", "fit_encoding_model", "scored_test_rows"):
        spy(name, getattr(impact, name))
    split = ds.split
    monkeypatch.setattr(ds, "split", lambda subject: calls.setdefault("split", []).append(subject) or split(subject))
    rng = np.random.default_rng(5)
    rows = {0: {s: rng.standard_normal((len(ds.tr_times(s)), 4)).astype(np.float32) for s in train + [test]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lowlevel_impact(rows, ds, "UTS01", sets=("diphones",), n_folds=2, backend="numpy", top_diphones=3,
                        top_triphones=2)
    assert set(calls["split"]) == {"UTS01"}
    (args, kwargs), = calls["lowlevel_rows"]
    assert args[5:] == (3, 2) and kwargs == dict(progress=False)
    (args, kwargs), = calls["remove_lowlevel"]
    assert args[5:] == (2, "numpy")
    assert all(kw["n_folds"] == 2 and kw["backend"] == "numpy" for _, kw in calls["fit_encoding_model"])
    assert len(calls["fit_encoding_model"]) == 2
    (args, _), = calls["scored_test_rows"]
    assert args[0] == 0 and args[2] == test


def test_remove_lowlevel_computes_in_the_dtype_asked_for():
    """Catches inputs left in their own precision: float32 inputs with ``dtype="float64"`` must give
    what float64 inputs give."""
    x, low = _planted_lowlevel(3)
    single = remove_lowlevel([a.astype(np.float32) for a in x[:3]], [a.astype(np.float32) for a in low[:3]],
                             x[3].astype(np.float32), low[3].astype(np.float32), dtype="float64")
    rounded = [np.asarray(a, np.float32).astype(np.float64) for a in (*x, *low)]
    double = remove_lowlevel(rounded[:3], rounded[4:7], rounded[3], rounded[7], dtype="float64")
    np.testing.assert_allclose(single[1], double[1], rtol=0, atol=1e-12)
    for a, b in zip(single[0], double[0]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ feature rows on a hand-made story
class _OneStory:
    """A dataset of one story at TR 1.5 s: 60 scanned TRs, a tone and six words."""

    tr = 1.5

    def __init__(self):
        self.rates_asked = []
        t = np.arange(int(95 * 16000)) / 16000
        self.waveform = (0.1 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * t / 7))).astype(np.float32)
        words = [("one", 4.0, 12.0, ["AA", "B", "K"]), ("two", 20.0, 31.0, ["T", "UW"]),
                 ("three", 40.0, 52.0, ["TH", "R", "IY"]), ("four", 60.0, 66.0, ["F", "AO", "R"]),
                 ("five", 70.0, 80.0, ["F", "AY", "sp", "V"]), ("six", 82.0, 88.0, ["S", "IH", "K", "S"])]
        self.words = _intervals([(w, a, b) for w, a, b, _ in words])
        phones = []
        for _, a, b, labels in words:
            edges = np.linspace(a, b, len(labels) + 1)
            phones += [(lab, s, e) for lab, s, e in zip(labels, edges[:-1], edges[1:])]
        self.phones = _intervals(phones)

    def n_scan_trs(self, story):
        return 60

    def load_audio(self, story, sample_rate=16000):
        from types import SimpleNamespace
        self.rates_asked.append(sample_rate)
        return SimpleNamespace(waveform=self.waveform, sample_rate=sample_rate)

    def load_transcript(self, story):
        return self.words, self.phones


def test_lowlevel_features_follow_the_datasets_tr_and_the_events_by_hand():
    """Catches the dataset's TR, the band count, the story's row count or the known-phone mask lost on
    the way: each set must equal the impulses put on the response rows by hand at TR 1.5 s."""
    from bt_tutorial.dataset.timing import to_response_rows
    from bt_tutorial.lowlevel.phones import phone_indices

    ds = _OneStory()
    vocab = {"diphones": [("AA", "B"), ("F", "AO")], "triphones": [("AA", "B", "K")]}
    got = lowlevel_features(ds, "s", LOWLEVEL_SETS, vocab, n_rows=40, n_bands=8)
    assert ds.rates_asked == [16000]
    times, power = spectrum_course(ds.waveform, 16000, 8)
    np.testing.assert_allclose(got["spectrum"], to_response_rows(power, times, 60, tr=1.5), atol=1e-5)
    index = phone_indices(ds.phones.labels)
    known = index >= 0
    assert known.sum() == len(index) - 1 and (index == 0).any()  # "sp" is dropped, "AA" (index 0) kept
    one_hot = np.eye(len(PHONES))[index[known]]
    centers = ds.phones.centers[known]
    np.testing.assert_allclose(got["phonemes"], to_response_rows(one_hot, centers, 60, tr=1.5), atol=1e-5)
    np.testing.assert_allclose(got["articulation"], to_response_rows(one_hot @ ARTICULATION, centers, 60, tr=1.5),
                               atol=1e-5)
    rates = np.column_stack([to_response_rows(np.ones((len(centers), 1)), centers, 60, tr=1.5),
                             to_response_rows(np.ones((6, 1)), ds.words.centers, 60, tr=1.5)])
    np.testing.assert_allclose(got["rates"], rates, atol=1e-5)
    assert got["diphones"].shape == (40, 2) and got["triphones"].shape == (40, 1)
    assert np.abs(got["diphones"]).sum(0).min() > 0  # each n-gram of the vocabulary occurs once


def test_lowlevel_features_check_the_row_count_of_every_set():
    """Catches the responses' row count not passed to a set (a wrong count must name the story)."""
    ds = _OneStory()
    vocab = {"diphones": [("AA", "B"), ("F", "AO")], "triphones": [("AA", "B", "K")]}
    for name in LOWLEVEL_SETS:
        with pytest.raises(ValueError, match="Story s: features give 40 TR rows but the responses have 39"):
            lowlevel_features(ds, "s", (name,), vocab, n_rows=39)
    with pytest.raises(ValueError, match="Story s: features give 40"):
        lowlevel_rows(ds, ["s"], ["s"], ("rates",), {"s": 39}, vocabularies={})


def test_two_events_are_enough_for_a_rate():
    """Catches the 'too few events' shortcut taken at two events: two words make a non-zero word rate."""
    ds = _OneStory()
    ds.words = _intervals([("one", 4.0, 12.0), ("two", 60.0, 70.0)])
    ds.phones = _intervals([("AA", 4.0, 12.0), ("B", 60.0, 70.0)])
    rates = lowlevel_features(ds, "s", ("rates",), n_rows=40)["rates"]
    assert np.abs(rates).sum(0).min() > 0
    ds.words = _intervals([("one", 4.0, 12.0)])
    assert (lowlevel_features(ds, "s", ("rates",), n_rows=40)["rates"][:, 1] == 0).all()


def test_lowlevel_rows_pass_sizes_bands_and_progress(tiny, capsys):
    """Catches the triphone count, the band count or the progress flag dropped by lowlevel_rows."""
    ds, train, test = tiny
    rows = lowlevel_rows(ds, [test], train, ("spectrum", "diphones", "triphones"), top_diphones=2,
                         top_triphones=3, n_bands=6)
    assert [rows[test][s].shape[1] for s in ("spectrum", "diphones", "triphones")] == [6, 2, 3]
    assert "low-level features" not in capsys.readouterr().err
    lowlevel_rows(ds, [test], train, ("rates",), progress=True)
    assert "low-level features" in capsys.readouterr().err


def test_spectrum_defaults_are_16_khz_and_names_follow_combined_sets():
    """Catches a wrong default rate in the spectrum and names lost when a set is second in "a+b"."""
    from bt_tutorial.lowlevel.feature_sets import spectrum_band_centers

    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    np.testing.assert_array_equal(spectrum_course(wave)[1], spectrum_course(wave, 16000)[1])
    np.testing.assert_array_equal(spectrum_band_centers(), spectrum_band_centers(32, 16000))
    names = feature_names("phonemes+spectrum", n_bands=4)
    assert names[:39] == list(PHONES) and len(names) == 43
    assert names[39:] == [f"{hz:.0f}Hz" for hz in spectrum_band_centers(4)]
    names = feature_names("rates+diphones", {"diphones": [("AA", "B")]})
    assert names == ["phone_rate", "word_rate", "AA-B"]


def test_spectrum_course_equals_a_numpy_stft_through_the_mel_filters():
    """Catches a changed window length, hop or power: an STFT written with numpy is the reference."""
    import torchaudio.functional as AF

    rng = np.random.default_rng(1)
    wave = rng.standard_normal(16000 * 2).astype(np.float64)
    n_fft, hop = 512, 160
    padded = np.pad(wave, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = np.stack([padded[k * hop: k * hop + n_fft] * window for k in range(len(wave) // hop + 1)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    fbank = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, 8000.0, 8, 16000).numpy()
    mel = power @ fbank
    n_bins = len(mel) // 10
    want = np.log10(mel[: n_bins * 10].reshape(n_bins, 10, 8).mean(1) + 1e-10)
    times, got = spectrum_course(wave.astype(np.float32), 16000, 8)
    np.testing.assert_allclose(got, want, atol=1e-3)
    np.testing.assert_allclose(times, (np.arange(n_bins) * 10 + 4.5) * 0.01)


def test_stack_sets_and_check_sets_messages():
    """Catches the missing-set and empty-list checks raising without their message."""
    from bt_tutorial.lowlevel.feature_sets import check_sets, stack_sets

    with pytest.raises(ValueError, match=r"Set 'rates' was not computed; have \['phonemes', 'spectrum'\]\."):
        stack_sets({"spectrum": np.zeros((2, 1)), "phonemes": np.zeros((2, 1))}, "phonemes+rates")
    with pytest.raises(ValueError, match="Give at least one low-level feature set"):
        check_sets(())


def test_phone_indices_of_no_phones_are_integers():
    """Catches an index array that is float when empty (numpy's default), which cannot index."""
    from bt_tutorial.lowlevel.phones import phone_indices

    assert phone_indices([]).dtype.kind == "i" and phone_indices(["AA", "xx"]).tolist() == [0, -1]


def test_percent_drop_warns_at_the_line_that_called_it():
    """Catches a warning that points inside the package (or past the caller) instead of at the call."""
    with pytest.warns(UserWarning, match="undefined") as caught:
        percent_drop(np.array([0.4, -0.1]), np.array([0.1, 0.0]), {"a": np.array([True, False]),
                                                                    "b": np.array([False, True])})
    assert caught[0].filename == __file__


def test_a_rate_with_under_two_events_still_checks_the_rows_and_names_the_story():
    """Catches the zero-events branch of the rates skipping the row check or losing the story's name."""
    from bt_tutorial.lowlevel.feature_sets import _event_rows

    rows = _event_rows(np.ones((1, 1)), np.array([3.0]), 40, "onewordstory", 20, 2.0)
    assert rows.shape == (20, 1) and not rows.any()
    with pytest.raises(ValueError, match="Story onewordstory: features give 20 TR rows but the responses have 19"):
        _event_rows(np.ones((1, 1)), np.array([3.0]), 40, "onewordstory", 19, 2.0)


def test_remove_lowlevel_refuses_features_whose_squares_overflow():
    """Catches a finite 1e20 that overflows the float32 ridge and leaves garbage residuals."""
    x, low = _planted_lowlevel(4)
    low[2][5, 1] = 1e20
    with pytest.raises(ValueError, match=r"low_train\[2\] has values up to 1e\+20: their squares overflow float32"):
        remove_lowlevel(x, low)
