import numpy as np
import pytest

from bt_tutorial.alignment.layers import brain_alignment, split_responses, story_feature_rows
from bt_tutorial.alignment.models import load_speech_model
from bt_tutorial.config import FeatureParams, get_config
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.rois import roi_masks, roi_means
from bt_tutorial.synthetic.truth import load_ground_truth

SMALL = FeatureParams(context=2.0, stride=1.0, batch_size=8, pool="stride")


def test_feature_rows_line_up_with_responses(tiny_twin, tmp_path):
    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-wav2vec2")
    stories = ds.stories("UTS01")
    n_rows = {s: len(ds.tr_times(s)) for s in stories}
    rows = story_feature_rows(model, ds, stories, [1, 3], SMALL, n_rows, cache_dir=tmp_path, progress=False)
    for s in stories:
        assert rows[3][s].shape == (n_rows[s], 32)
        assert np.allclose(rows[3][s].mean(0), 0, atol=1e-5)
    with pytest.raises(ValueError, match="stagefright: (cached )?features give 12 TR rows.* have 3"):
        story_feature_rows(model, ds, ["stagefright"], [1], SMALL, {"stagefright": 3}, cache_dir=tmp_path,
                           progress=False)


def test_brain_alignment_shapes_on_the_tiny_twin(tiny_twin, tmp_path):
    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-hubert")
    result = brain_alignment(model, ds, "UTS01", layers=[0, 2], params=SMALL, cache_dir=tmp_path,
                             progress=False, n_folds=2)
    n_test = len(ds.tr_times("wheretheressmoke"))
    assert result.layers == [0, 2] and result.scores.shape == (2, result.measured.shape[1])
    assert result.results[2].predictions.shape == (n_test, result.measured.shape[1])
    assert result.peak_layer() in (0, 2)
    lean = brain_alignment(model, ds, "UTS01", layers=[0, 2], params=SMALL, cache_dir=tmp_path,
                           progress=False, n_folds=2, keep_predictions=False)
    assert lean.results[2].predictions is None and "? test TRs" in repr(lean.results[2])
    assert np.array_equal(lean.scores, result.scores)
    n_voxels = result.measured.shape[1]
    some = np.arange(n_voxels) % 4 == 1  # chapter 5 fits only voxels with a usable ceiling
    part = brain_alignment(model, ds, "UTS01", layers=[0, 2], params=SMALL, cache_dir=tmp_path,
                           progress=False, n_folds=2, voxels=some)
    assert part.scores.shape == result.scores.shape and np.array_equal(part.measured, result.measured)
    np.testing.assert_allclose(part.scores[:, some], result.scores[:, some], atol=1e-6)
    np.testing.assert_allclose(part.results[2].predictions[:, some], result.results[2].predictions[:, some],
                               atol=1e-5)
    assert np.isnan(part.scores[:, ~some]).all() and np.isnan(part.results[0].alphas[~some]).all()


def test_first_scored_row_scores_the_later_test_rows_only(tiny_twin, tmp_path):
    """Catches scoring every test row when the authors' rows are asked (eval_utils.py: from row 40), or
    test features shifted against the responses when the first rows are cut."""
    from bt_tutorial.alignment.encoding import pearson_r

    ds = LebelDataset(tiny_twin)
    model = load_speech_model("tiny-hubert")
    kw = dict(layers=[2], params=SMALL, cache_dir=tmp_path, progress=False, n_folds=2)
    whole = brain_alignment(model, ds, "UTS01", **kw)
    late = brain_alignment(model, ds, "UTS01", first_scored_row=4, **kw)
    n_test = whole.measured.shape[0]
    assert late.first_scored_row == 4 and late.measured.shape[0] == n_test - 4
    np.testing.assert_array_equal(late.measured, whole.measured[4:])
    np.testing.assert_allclose(late.results[2].predictions, whole.results[2].predictions[4:], atol=1e-5)
    expected = pearson_r(whole.results[2].predictions[4:], whole.measured[4:])
    np.testing.assert_allclose(late.scores[0], expected, atol=1e-5)
    assert not np.allclose(late.scores, whole.scores, atol=1e-3)
    with pytest.raises(ValueError, match=f"first_scored_row=40 leaves {n_test - 40} of the {n_test} rows"):
        brain_alignment(model, ds, "UTS01", first_scored_row=40, **kw)


def test_scored_rows_setting_per_profile(monkeypatch):
    """Catches a full profile that scores all rows by default (the authors' evaluation drops 40)."""
    assert get_config(profile="full").first_scored_row == 40
    assert get_config(profile="demo").first_scored_row == 0
    assert get_config(profile="full", scored_rows="all").first_scored_row == 0
    monkeypatch.setenv("BT_SCORED_ROWS", "authors")
    assert get_config(profile="demo").first_scored_row == 40
    with pytest.raises(ValueError, match="BT_SCORED_ROWS"):
        get_config(scored_rows="some")


def test_best_layer_leaves_out_voxels_without_r():
    """A constant test voxel has r = NaN (pearson_r): the layer means must not all become NaN."""
    from bt_tutorial.alignment.encoding import EncodingResult
    from bt_tutorial.alignment.layers import AlignmentResult

    def result(scores):
        scores = np.asarray(scores, float)
        return EncodingResult(np.ones(3), scores, np.zeros((5, 3)), "numpy", "primal", np.zeros(3))

    align = AlignmentResult("UTS01", "m", [0, 1], {0: result([0.1, np.nan, 0.1]), 1: result([0.3, np.nan, 0.2])},
                            "wheretheressmoke", np.zeros((5, 3)))
    assert align.peak_layer() == 1
    assert align.peak_layer(np.array([True, False, False])) == 1
    with pytest.raises(ValueError, match="the mask selects 1 voxels, none with a finite r"):
        align.peak_layer(np.array([False, True, False]))


def test_roi_layer_means_give_each_roi_its_own_profile_over_layers():
    """Catches a profile taken over the wrong voxels or layers, NaN r counted, or a ROI silently dropped."""
    from bt_tutorial.alignment.encoding import EncodingResult
    from bt_tutorial.alignment.layers import AlignmentResult

    def result(scores):
        return EncodingResult(np.ones(4), np.asarray(scores, float), None, "numpy", "primal", np.zeros(4))

    align = AlignmentResult("UTS01", "m", [0, 2], {0: result([0.1, 0.3, np.nan, 0.5]),
                                                   2: result([0.2, 0.6, 0.9, 0.0])}, "story", np.zeros((5, 4)))
    masks = {"a": np.array([True, True, False, False]), "b": np.array([False, False, True, True])}
    means = align.roi_layer_means(masks, ["b", "a"])
    assert list(means) == ["b", "a"]
    np.testing.assert_allclose(means["a"], [0.2, 0.4])
    np.testing.assert_allclose(means["b"], [0.5, 0.45])  # the NaN r of layer 0 is left out
    np.testing.assert_allclose(align.roi_layer_means()["all voxels"], [0.3, 0.425])
    with pytest.raises(KeyError, match="No mask named \\['c'\\]"):
        align.roi_layer_means(masks, ["a", "c"])


def test_largest_difference_is_taken_at_the_asked_layer_over_voxels_with_an_r_in_both():
    """Catches the signed instead of the absolute difference, the wrong layer, or NaN voxels let in."""
    from bt_tutorial.alignment.encoding import EncodingResult
    from bt_tutorial.alignment.layers import AlignmentResult

    def align(name, by_layer):
        results = {k: EncodingResult(np.ones(3), np.asarray(r, float), None, "numpy", "primal", np.zeros(3))
                   for k, r in by_layer.items()}
        return AlignmentResult("UTS01", name, list(by_layer), results, "story", np.zeros((5, 3)))

    tuned = align("tuned", {0: [0.1, 0.2, np.nan], 1: [0.9, 0.9, 0.9]})
    pretrained = align("pretrained", {0: [0.15, 0.5, 0.2], 1: [0.0, 0.0, 0.0]})
    assert tuned.largest_difference(pretrained, layer=0) == pytest.approx(0.3)  # |0.2 - 0.5|, not -0.3
    assert tuned.largest_difference(pretrained, layer=1) == pytest.approx(0.9)
    with pytest.raises(KeyError, match="tuned: no layer 3"):
        tuned.largest_difference(pretrained, layer=3)
    nan_only = align("nan", {0: [np.nan, np.nan, np.nan]})
    assert np.isnan(nan_only.largest_difference(pretrained, layer=0))


@pytest.mark.slow
def test_whisper_tiny_aligns_with_late_language_regions(twin_root):
    """Acceptance: on the demo twin, late-language r is clearly above r outside all ROIs."""
    config = get_config(profile="demo")
    ds = LebelDataset(twin_root)
    model = load_speech_model("whisper-tiny.en", data_home=config.data_home)
    result = brain_alignment(model, ds, "UTS01", params=config.feature_params, progress=False)
    truth = load_ground_truth(twin_root, "UTS01")
    masks = roi_masks(truth["roi"], truth["roi_names"])
    layer = result.peak_layer(masks["late_language"])
    means = roi_means(result.results[layer].scores, masks)
    assert means["late_language"] > 2 * means["outside_rois"]
    assert means["late_language"] - means["outside_rois"] > 0.05


class _PlantedDataset:
    """Stories whose responses are known linear maps of planted features, delayed by 2 TRs."""

    def __init__(self, n_stories=4, n_rows=80, n_features=4, n_voxels=6, seed=0):
        rng = np.random.default_rng(seed)
        self.stories = [f"s{i}" for i in range(n_stories)] + ["test"]
        self.features = {s: rng.standard_normal((n_rows, n_features)) for s in self.stories}
        weights = rng.standard_normal((n_features, n_voxels))
        self.responses = {}
        for s, x in self.features.items():
            delayed = np.vstack([np.zeros((2, n_features)), x[:-2]])
            self.responses[s] = (delayed @ weights + 0.1 * rng.standard_normal((n_rows, n_voxels))).astype(np.float32)

    def split(self, subject):
        return {"train": self.stories[:-1], "validation": "val", "test": "test"}

    def load_responses(self, subject, story):
        return self.responses[story]


def test_brain_alignment_recovers_a_planted_delay(monkeypatch):
    """Catches test features delayed differently from the training ones (test r collapses), and default
    layers that leave out the top hidden state."""
    import types

    from bt_tutorial.alignment import layers as alignment

    data = _PlantedDataset()
    monkeypatch.setattr(alignment, "story_feature_rows", lambda model, dataset, stories, layers, *a, **k: {
        k_: {s: data.features[s] * (k_ + 1) for s in stories} for k_ in layers})
    model = types.SimpleNamespace(name="planted", n_layers=2)
    result = alignment.brain_alignment(model, data, "UTS01", n_folds=2)
    assert result.layers == [0, 1, 2]  # every hidden state, the output included
    assert np.all(result.scores > 0.95), result.scores.min()
    one_delay = alignment.brain_alignment(model, data, "UTS01", layers=[0], delays=(1,), n_folds=2)
    assert np.nanmax(one_delay.scores) < 0.5  # the planted delay is 2 TRs: one TR misses it


def test_brain_alignment_passes_its_settings_and_names_the_result(monkeypatch):
    """Catches a setting dropped on the way (the subject's split, the response row counts, the cache
    folder, the progress flag and its default, the ridge options) and a result labelled with the wrong
    subject, model or test story."""
    import types

    from bt_tutorial.alignment import layers as alignment

    data = _PlantedDataset()
    asked, fits = {}, []
    split = data.split
    data.split = lambda subject: asked.setdefault("split", []).append(subject) or split(subject)

    def feature_rows(model, dataset, stories, layers, params, n_rows, cache_dir, progress):
        asked.update(stories=stories, params=params, n_rows=n_rows, cache_dir=cache_dir, progress=progress)
        return {k: {s: data.features[s] for s in stories} for k in layers}

    real_fit = alignment.fit_encoding_model
    monkeypatch.setattr(alignment, "story_feature_rows", feature_rows)
    monkeypatch.setattr(alignment, "fit_encoding_model", lambda *a, **k: fits.append(k) or real_fit(*a, **k))
    model = types.SimpleNamespace(name="planted", n_layers=1)
    result = alignment.brain_alignment(model, data, "UTS07", layers=[1], params=SMALL, cache_dir="here",
                                       n_folds=3, alphas=[1.0, 10.0])
    assert set(asked["split"]) == {"UTS07"} and asked["stories"] == ["s0", "s1", "s2", "s3", "test"]
    assert asked["n_rows"] == {s: 80 for s in asked["stories"]}
    assert asked["params"] is SMALL and asked["cache_dir"] == "here" and asked["progress"] is True
    assert fits == [dict(n_folds=3, alphas=[1.0, 10.0])]
    assert (result.subject, result.model_name, result.test_story) == ("UTS07", "planted", "test")
    alignment.brain_alignment(model, data, "UTS07", layers=[1], progress=False, n_folds=2)
    assert asked["progress"] is False


def test_brain_alignment_names_a_story_too_short_for_its_delays(monkeypatch):
    """Catches the story's name lost from the errors of the delays and of the scored rows."""
    import types

    from bt_tutorial.alignment import layers as alignment

    data = _PlantedDataset()
    model = types.SimpleNamespace(name="planted", n_layers=1)
    for short in ("s2", "test"):
        monkeypatch.setattr(alignment, "story_feature_rows", lambda m, d, stories, layers, *a, **k: {
            k_: {s: data.features[s][:3] if s == short else data.features[s] for s in stories} for k_ in layers})
        with pytest.raises(ValueError, match=f"Story {short} has 3 rows, not more than the largest delay"):
            alignment.brain_alignment(model, data, "UTS01", layers=[0], n_folds=2)
    with pytest.raises(ValueError, match="first_scored_row=75 leaves 5 of the 80 rows of test"):
        alignment.brain_alignment(model, data, "UTS01", layers=[0], n_folds=2, first_scored_row=75)


def test_scored_test_rows_keep_exactly_the_minimum():
    """Catches an off-by-one in the rows-left check: exactly MIN_SCORED_ROWS rows left is allowed."""
    from bt_tutorial.alignment.layers import MIN_SCORED_ROWS, scored_test_rows

    assert scored_test_rows(30, 30 + MIN_SCORED_ROWS) == slice(30, None)
    with pytest.raises(ValueError, match="leaves 9 of the 39 rows of the test story"):
        scored_test_rows(30, 29 + MIN_SCORED_ROWS)


def test_story_feature_rows_pass_row_counts_cache_and_progress(monkeypatch):
    """Catches the cache folder, the progress flag (off by default here) or the row counts dropped on the
    way to each story's features, and a missing row-count table not allowed."""
    from bt_tutorial.alignment import layers as alignment

    calls = []

    def story_rows(model, dataset, story, layers, params, n_rows, cache_dir, progress):
        calls.append((story, n_rows, cache_dir, progress))
        return {k: np.full((2, 1), k) for k in layers}

    monkeypatch.setattr(alignment, "story_rows", story_rows)
    rows = story_feature_rows("m", "d", ["a", "b"], [0, 3], SMALL, {"a": 5, "b": 6}, "cache")
    assert calls == [("a", 5, "cache", True), ("b", 6, "cache", True)] and rows[3]["b"][0, 0] == 3
    calls.clear()
    story_feature_rows("m", "d", ["a"], [0], SMALL, None, "cache", progress=False)
    assert calls == [("a", None, "cache", False)]


def test_split_responses_cuts_every_story_to_the_kept_voxels_sorted(tiny_twin):
    """Catches a cut that drops or mislabels a story's columns, or loses the voxel count."""
    ds = LebelDataset(tiny_twin)
    split = ds.split("UTS01")
    full_test = ds.load_responses("UTS01", split["test"])
    picked = [7, 2, 5]
    y_train, y_test, kept, n_voxels = split_responses(ds, "UTS01", voxels=picked)
    assert n_voxels == full_test.shape[1] and kept.tolist() == sorted(picked)
    assert np.array_equal(y_test, full_test[:, kept])
    assert len(y_train) == len(split["train"])
    for story, y in zip(split["train"], y_train):
        assert np.array_equal(y, ds.load_responses("UTS01", story)[:, kept])
    mask = np.zeros(n_voxels, bool)
    mask[[2, 5]] = True
    assert split_responses(ds, "UTS01", voxels=mask)[2].tolist() == [2, 5]
    everything = split_responses(ds, "UTS01")
    assert everything[2].tolist() == list(range(n_voxels)) and np.array_equal(everything[1], full_test)
