"""bt_tutorial.comparison.workflow: chapters 4-7 in one call, as benchmarks/demo_effects.py runs them."""

import pytest

from bt_tutorial.comparison.workflow import ROIS, measure_effects, train_pair, tuning_settings
from bt_tutorial.config import get_config
from bt_tutorial.dataset.reader import LebelDataset


def test_each_variant_changes_the_demo_recipe_as_it_says():
    """Catches a variant that keeps the demo's lag, head or mode, or a control that reaches the brain-tuned run."""
    demo = tuning_settings("lag-ridge", {})
    assert demo.control is None and demo.epochs == 1
    assert tuning_settings("no-lag", {}).lag_trs == 0 and tuning_settings("lag-1", {}).lag_trs == 1
    assert demo.lag_trs not in (0, 1)
    assert tuning_settings("random-head", {}).head_init == "random" != demo.head_init
    assert tuning_settings("lag-ridge-eval", {}).train_mode is False and demo.train_mode is True
    assert tuning_settings("lag-ridge", {"epochs": 2}, "chunk_permute").control == "chunk_permute"
    assert tuning_settings("lag-ridge", {"epochs": 2}).epochs == 2
    with pytest.raises(ValueError, match="Unknown variant 'lag'"):
        tuning_settings("lag", {})


def test_the_workflow_tunes_a_pair_and_measures_the_alignment_of_every_roi(tiny_twin, tmp_path):
    """Catches the control trained as the brain-tuned model, a run retrained instead of reloaded,
    or the three models not all measured on the twin's ROIs."""
    config = get_config(profile="demo", data_home=tmp_path, model="tiny-whisper")
    dataset = LebelDataset(tiny_twin)
    runs = train_pair(dataset, config, "UTS01", "lag-ridge", {}, tmp_path / "runs")
    assert runs["brain-tuned"]["settings"]["control"] is None
    assert runs["control"]["settings"]["control"] == "chunk_permute"
    assert runs["brain-tuned"]["backbone"] != runs["control"]["backbone"]
    assert runs["brain-tuned"]["n_voxels"] == runs["control"]["n_voxels"] > 0
    again = train_pair(dataset, config, "UTS01", "lag-ridge", {}, tmp_path / "runs")
    assert again["control"]["seconds"] == runs["control"]["seconds"]  # reloaded, not trained again

    report = measure_effects(dataset, config, "UTS01", runs, effects=())
    assert set(report["alignment"]) == set(ROIS)
    layers = report["alignment"]["late_language"]
    assert str(report["layer"]) in layers
    comparisons = {row["comparison"] for row in layers[str(report["layer"])]}
    assert comparisons == {"brain-tuned - pretrained", "brain-tuned - control", "control - pretrained"}
    with pytest.raises(ValueError, match="Unknown effects"):
        measure_effects(dataset, config, "UTS01", runs, effects=("semantic",))
