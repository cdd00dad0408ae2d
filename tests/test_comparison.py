"""Model comparison tables and figures on planted data; the tuned-model folders."""

import numpy as np
import pytest
import torch

from bt_tutorial.comparison.roi_tables import normalized_scores, paired_table, roi_layer_table, tuned_backbone_dirs
from bt_tutorial.stats import verdict


class FakeAlignment:
    def __init__(self, scores):
        self.scores = np.asarray(scores)


def planted(seed=0, n=300):
    """Two layers; 'brain-tuned' is 0.1 above 'pretrained' in ROI a only; 'control' equals pretrained + noise."""
    rng = np.random.default_rng(seed)
    ceiling = np.full(n, 0.8)
    ceiling[:20] = 0.05  # unusable voxels
    base = 0.4 + 0.1 * rng.standard_normal((2, n))
    roi_a = np.arange(n) < n // 2
    tuned = base + 0.1 * roi_a + 0.02 * rng.standard_normal((2, n))
    control = base + 0.02 * rng.standard_normal((2, n))
    alignments = {"pretrained": FakeAlignment(base), "brain-tuned": FakeAlignment(tuned),
                  "control": FakeAlignment(control)}
    return alignments, ceiling, {"a": roi_a, "b": ~roi_a}


def test_normalized_scores_divide_by_the_ceiling_and_drop_unusable_voxels():
    alignments, ceiling, _ = planted()
    norm = normalized_scores(alignments, ceiling)
    assert norm["pretrained"].shape == (2, 300)
    assert np.isnan(norm["pretrained"][:, :20]).all()
    np.testing.assert_allclose(norm["pretrained"][:, 20:], alignments["pretrained"].scores[:, 20:] / 0.8)


def test_tables_find_the_planted_difference_only_where_it_is():
    alignments, ceiling, masks = planted()
    norm = normalized_scores(alignments, ceiling)
    table = roi_layer_table(norm, [0, 1], masks, ["a", "b"], n_boot=200)
    assert len(table) == 3 * 2 * 2 and set(table.columns) >= {"model", "layer", "roi", "mean", "low", "high"}
    assert table.query("roi == 'a' and model == 'pretrained'")["n_voxels"].iloc[0] == 130
    pairs = paired_table(norm, [0, 1], masks, ["a", "b"], n_permutations=500, n_boot=200)
    words = {(r.comparison, r.layer, r.roi): verdict(r._asdict()) for r in pairs.itertuples(index=False)}
    for layer in (0, 1):
        assert words[("brain-tuned - pretrained", layer, "a")] == "higher"
        assert words[("brain-tuned - control", layer, "a")] == "higher"
        assert words[("control - pretrained", layer, "a")] == "no clear difference"
    diff = pairs.query("comparison == 'brain-tuned - pretrained' and roi == 'a'")["difference"]
    assert np.allclose(diff, 0.1 / 0.8, atol=0.01)


def test_missing_tuned_models_name_chapter_four(tmp_path):
    with pytest.raises(FileNotFoundError, match="Run chapter 4 first"):
        tuned_backbone_dirs(tmp_path, "whisper-tiny.en", "UTS01")


def test_model_comparison_figures_return_figures():
    from bt_tutorial.plotting.models import plot_paired_differences, plot_percent_drop, plot_roi_layers

    alignments, ceiling, masks = planted()
    norm = normalized_scores(alignments, ceiling)
    fig = plot_roi_layers(roi_layer_table(norm, [0, 1], masks, ["a", "b"], n_boot=50), ["a", "b"])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) >= 3
    fig = plot_paired_differences(paired_table(norm, [0, 1], masks, ["a", "b"], n_permutations=50, n_boot=50), 1)
    assert len(fig.axes[0].patches) == 3 * 2
    drops = {"pretrained": {"rates": {"a": 10.0, "b": 50.0}, "phonemes": {"a": 5.0, "b": 20.0}}}
    fig = plot_percent_drop(drops, ["a", "b"])
    assert [round(p.get_height()) for p in fig.axes[0].patches] == [10, 50, 5, 20]


def test_compact_pairs_star_clear_differences_only():
    from bt_tutorial.comparison.roi_tables import compact_pairs

    alignments, ceiling, masks = planted()
    pairs = paired_table(normalized_scores(alignments, ceiling), [0, 1], masks, ["a", "b"], n_permutations=300,
                         n_boot=100)
    table = compact_pairs(pairs)
    assert table.shape == (3 * 2, 2)
    assert table.loc[("brain-tuned - pretrained", "a"), 0].endswith("*")
    for _, row in pairs.iterrows():  # a star exactly where the verdict is a clear difference
        cell = table.loc[(row["comparison"], row["roi"]), row["layer"]]
        assert cell.endswith("*") == (verdict(row) in ("higher", "lower"))
        assert abs(float(cell.rstrip("*")) - row["difference"]) < 5e-4


def test_load_compared_models_loads_pretrained_tuned_and_control(tmp_path):
    from bt_tutorial.alignment.models import load_speech_model
    from bt_tutorial.brain_tuning.settings import tuned_model_dir
    from bt_tutorial.comparison.roi_tables import MODELS, load_compared_models

    for control, shift in ((None, 1.0), ("chunk_permute", 2.0)):
        model = load_speech_model("tiny-hubert")
        with torch.no_grad():
            next(model.backbone.parameters()).add_(shift)
        model.save_pretrained(tuned_model_dir(tmp_path, "tiny-hubert", "UTS01", control) / "backbone")
    models = load_compared_models(tmp_path, "tiny-hubert", "UTS01", device="cpu")
    assert tuple(models) == MODELS
    prints = {name: m.fingerprint() for name, m in models.items()}
    assert len(set(prints.values())) == 3 and prints["pretrained"] == load_speech_model("tiny-hubert").fingerprint()
    first = {name: next(m.backbone.parameters()).detach() for name, m in models.items()}
    assert torch.allclose(first["control"] - first["pretrained"], torch.full_like(first["control"], 2.0), atol=1e-5)


def test_p_values_print_one_way_whatever_the_test_resolution():
    """Catches the same comparison printed as 0.0005, 0.0002 and 0.000 by tests of different resolution."""
    from bt_tutorial.stats import format_p

    assert format_p(1 / 2001) == format_p(1 / 5001) == "p < 0.001"
    assert format_p(0.001) == "p = 0.001" and format_p(0.0312) == "p = 0.031"
    assert format_p(float("nan")) == "p undefined"
