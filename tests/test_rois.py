import numpy as np

from bt_tutorial.rois import roi_masks, roi_means


def test_masks_cover_rois_groups_and_outside():
    names = ["none", "A1", "Belt", "STS"]
    roi = np.array([0, 1, 2, 3, 3, 0])
    masks = roi_masks(roi, names, groups={"auditory": ("A1", "Belt")})
    assert masks["A1"].tolist() == [False, True, False, False, False, False]
    assert masks["auditory"].sum() == 2 and masks["STS"].sum() == 2
    assert masks["outside_rois"].tolist() == [True, False, False, False, False, True]


def test_roi_means_ignore_nan_and_empty_masks():
    values = np.array([1.0, np.nan, 3.0, 5.0])
    masks = {"a": np.array([True, True, True, False]), "empty": np.zeros(4, bool)}
    means = roi_means(values, masks)
    assert means["a"] == 2.0 and np.isnan(means["empty"])
