import numpy as np

from bt_tutorial.dataset.rois import roi_masks
from bt_tutorial.dataset.surface import to_fsaverage5
from bt_tutorial.synthetic.cortex import ROI_GROUPS, ROI_NAMES, build_cortex


def test_voxels_are_the_nested_fsaverage4_vertices():
    cx = build_cortex()
    assert cx.n_voxels == 5124 and cx.vertex.max() == 2561
    # nested icosahedron: the chosen vertices are evenly spaced on the sphere
    from scipy.spatial import cKDTree

    left = cx.sphere[cx.hemi == 0]
    d = cKDTree(left).query(left, k=2)[0][:, 1]
    assert d.std() / d.mean() < 0.1


def test_every_roi_in_both_hemispheres_language_left_lateralised():
    cx = build_cortex()
    for index in range(1, len(ROI_NAMES)):
        assert ((cx.roi == index) & (cx.hemi == 0)).any() and ((cx.roi == index) & (cx.hemi == 1)).any()
    masks = roi_masks(cx.roi, ROI_NAMES, ROI_GROUPS)
    language = masks["late_language"]
    assert (language & (cx.hemi == 0)).sum() > 1.5 * (language & (cx.hemi == 1)).sum()
    assert masks["early_auditory"].sum() > masks["A1"].sum()
    assert set(ROI_GROUPS["primary_auditory"]) == {"A1"}


def test_to_fsaverage5_keeps_voxel_values_at_their_vertices():
    cx = build_cortex()
    values = np.arange(cx.n_voxels, dtype=float)
    maps = to_fsaverage5(values, cx.vertex, cx.hemi)
    assert maps["left"].shape == maps["right"].shape == (10242,)
    assert np.array_equal(maps["left"][cx.vertex[cx.hemi == 0]], values[cx.hemi == 0])
    assert np.array_equal(maps["right"][cx.vertex[cx.hemi == 1]], values[cx.hemi == 1])
