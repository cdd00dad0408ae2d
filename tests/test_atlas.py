"""Glasser ROI masks for the real data: label names, vertices -> voxels, mask files.

Everything runs on planted data: hand-made sparse vertex -> voxel matrices and label
arrays. The build command (downloads, surfaces, transforms) is in test_roi_build.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from bt_tutorial.dataset import atlas
from bt_tutorial.dataset.rois import PAPER_ROI_SETS

PAPER_AREAS = sorted({a for members in PAPER_ROI_SETS.values() for a in members})


# ------------------------------------------------------------------ label names
@pytest.mark.parametrize("name, expected", [
    ("L_A1_ROI", ("A1", "L")), (b"R_STSdp_ROI", ("STSdp", "R")), ("L_44_ROI", ("44", "L")),
    ("R_p9-46v_ROI", ("p9-46v", "R")), ("L_TPOJ1", ("TPOJ1", "L")), ("A4_R", ("A4", "R")),
    ("lh.PGi", ("PGi", "L")), ("STSva", ("STSva", None)), ("???", (None, None)),
    ("Unknown", (None, None)), ("lh.Medial_wall", (None, None)),
])  # fmt: skip
def test_parse_glasser_name(name, expected):
    assert atlas.parse_glasser_name(name) == expected


def test_check_roi_names_reports_every_unknown_area():
    atlas.check_roi_names(PAPER_AREAS)  # complete atlas: no error
    with pytest.raises(ValueError, match=r"\['STSva', 'TA2'\].*annot.*L_A1_ROI"):
        atlas.check_roi_names(set(PAPER_AREAS) - {"TA2", "STSva"}, source="annot")
    with pytest.raises(ValueError, match="Heschl"):
        atlas.check_roi_names(PAPER_AREAS, {"auditory": ("A1", "Heschl")})


# ------------------------------------------------------------- vertices -> voxels
def test_majority_and_max_weight_rules_differ_as_documented():
    # voxel 0: two light "A" vertices (0.4 + 0.4) against one heavy "B" vertex (0.6)
    # voxel 1: "B" only; voxel 2: no vertex; voxel 3: a tie between "A" and "B"
    mapping = sparse.csr_matrix(np.array([
        [0.4, 0.4, 0.6, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.5, 0.0],
    ]))  # fmt: skip
    labels = np.array(["A", "A", "B", "B"])
    majority = atlas.voxel_labels_from_vertices(mapping, labels, "majority", fill="")
    heaviest = atlas.voxel_labels_from_vertices(mapping, labels, "max_weight", fill="")
    assert majority.tolist() == ["A", "B", "", "A"]
    assert heaviest.tolist() == ["B", "B", "", "A"]


def test_integer_labels_and_input_checks():
    mapping = sparse.csr_matrix(np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=bool))
    out = atlas.voxel_labels_from_vertices(mapping, np.array([7, 3, 3]))
    assert out.tolist() == [7, 3, -1]
    with pytest.raises(ValueError, match="3 vertex columns for 2 labels"):
        atlas.voxel_labels_from_vertices(mapping, np.array([1, 2]))
    with pytest.raises(ValueError, match="non-negative"):
        atlas.voxel_labels_from_vertices(sparse.csr_matrix([[-1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="rule must be"):
        atlas.voxel_labels_from_vertices(mapping, np.array([7, 3, 3]), rule="mode")


def planted_mapping():
    """Five voxels over 3 left and 3 right vertices.

    Left vertices: A1, A1, ""; right vertices: A1, STSdp, "".
    voxel 0: left A1 only            -> A1, left
    voxel 1: right STSdp + a bit of left A1 -> STSdp, right
    voxel 2: mostly unlabeled left, a little right A1 -> "", left (larger weight)
    voxel 3: nothing                 -> "", -1
    voxel 4: left A1 (0.5) vs right A1 (0.7) -> A1, right
    """
    dense = np.zeros((5, 6))
    dense[0, [0, 1]] = 1.0
    dense[1, [4, 0]] = [0.8, 0.2]
    dense[2, [2, 3]] = [0.9, 0.3]
    dense[4, [0, 3]] = [0.5, 0.7]
    return sparse.csr_matrix(dense), np.array(["A1", "A1", "", "A1", "STSdp", ""])


def test_assign_voxels_gives_area_and_hemisphere():
    mapping, vertex_areas = planted_mapping()
    areas, hemi = atlas.assign_voxels(mapping, vertex_areas, n_left=3)
    assert areas.tolist() == ["A1", "STSdp", "", "", "A1"]
    assert hemi.tolist() == [0, 1, 0, -1, 1]
    assert atlas.voxel_hemispheres(mapping, 3).tolist() == [0, 1, 0, -1, 1]


def test_voxel_vertex_matrix_selects_response_columns():
    left = sparse.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 1, 0]]))  # 2 vertices x 4 volume voxels
    right = sparse.csr_matrix(np.array([[0, 0, 0, 1]]))
    mapping = atlas.voxel_vertex_matrix(left, right, columns=np.array([0, 2, 3]))
    assert mapping.shape == (3, 3)
    assert mapping.toarray().tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


# ---------------------------------------------------------------------- ROI sets
def planted_voxels():
    areas = np.array(["A1", "A1", "LBelt", "STSdp", "44", "V1", "", "TA2", "A4"])
    hemi = np.array([0, 1, 0, 0, 1, 0, -1, 1, 1])
    return areas, hemi


def test_roi_sets_membership_and_hemispheres():
    areas, hemi = planted_voxels()
    with pytest.warns(UserWarning, match="label no voxel"):
        rois = atlas.roi_sets_from_labels(areas, hemi, known_areas=PAPER_AREAS + ["V1"])
    assert rois["primary_auditory"].tolist() == [0, 1]
    assert rois["primary_auditory_L"].tolist() == [0]
    assert rois["primary_auditory_R"].tolist() == [1]
    assert rois["early_auditory"].tolist() == [0, 1, 2, 8]
    assert rois["late_language"].tolist() == [3, 4, 7]
    assert rois["late_language_L"].tolist() == [3]
    assert rois["late_language_R"].tolist() == [4, 7]
    assert rois["STSdp"].tolist() == [3] and rois["TA2_R"].tolist() == [7]
    assert rois["IFJa"].size == 0  # in the atlas, but no voxel: warned, kept empty
    assert rois["outside_rois"].tolist() == [5, 6]
    assert rois["outside_rois_L"].tolist() == [5] and rois["outside_rois_R"].size == 0
    expected = set(PAPER_ROI_SETS) | set(PAPER_AREAS) | {"outside_rois"}
    assert set(rois) == expected | {f"{n}_{h}" for n in expected for h in "LR"}


def test_roi_sets_report_unknown_names():
    areas, hemi = planted_voxels()
    with pytest.raises(ValueError, match=r"\['Heschl'\]"):
        atlas.roi_sets_from_labels(areas, hemi, {"auditory": ("A1", "Heschl")}, known_areas=PAPER_AREAS)
    # without the atlas's names, areas of the sets must label some voxel
    rois = atlas.roi_sets_from_labels(areas, hemi, {"auditory": ("A1", "LBelt")})
    assert rois["auditory"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="IFJa.*voxel labels"):
        atlas.roi_sets_from_labels(areas, hemi)


# ------------------------------------------------------------------------- files
def saved(tmp_path):
    areas, hemi = planted_voxels()
    rois = atlas.roi_sets_from_labels(areas, hemi, {"auditory": ("A1", "LBelt"), "language": ("STSdp", "44")})
    path = atlas.save_roi_masks(tmp_path / "UTS01.npz", rois, areas.size, "UTS01", hemi,
                                metadata={"rule": "majority"})
    return path, rois, hemi


def test_save_and_load_round_trip(tmp_path):
    path, rois, hemi = saved(tmp_path)
    masks = atlas.load_roi_masks(path, n_voxels=9)
    assert list(masks) == list(rois)
    for name, idx in rois.items():
        assert masks[name].dtype == bool and masks[name].shape == (9,)
        assert np.flatnonzero(masks[name]).tolist() == idx.tolist()
    info = atlas.read_roi_info(path)
    assert (info["subject"], info["atlas"], info["n_voxels"]) == ("UTS01", "HCP-MMP1", 9)
    assert info["format_version"] == atlas.FORMAT_VERSION and info["metadata"] == {"rule": "majority"}
    assert info["hemi"].tolist() == hemi.tolist()
    with np.load(path, allow_pickle=False) as npz:  # plain arrays, readable without bt_tutorial
        assert npz["roi__auditory_L"].tolist() == [0, 2]


def test_n_voxels_mismatch_names_file_and_fix(tmp_path):
    path, _, _ = saved(tmp_path)
    with pytest.raises(atlas.RoiFileError) as err:
        atlas.load_roi_masks(path, n_voxels=95556)
    message = str(err.value)
    assert str(path) in message and "9 voxels" in message and "95556" in message
    assert "python -m bt_tutorial.dataset.roi_build" in message and "--subject UTS01" in message


def test_bad_files_are_explained(tmp_path):
    with pytest.raises(atlas.RoiFileError, match="not found.*bt_tutorial.dataset.roi_build.*--subject UTS02"):
        atlas.load_roi_masks(tmp_path / "UTS02.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(atlas.RoiFileError, match="not an ROI mask file"):
        atlas.load_roi_masks(tmp_path / "other.npz")
    path, rois, hemi = saved(tmp_path)
    data = dict(np.load(path))
    data["format_version"] = np.int32(atlas.FORMAT_VERSION + 1)
    np.savez(tmp_path / "newer.npz", **data)
    with pytest.raises(atlas.RoiFileError, match="newer"):
        atlas.load_roi_masks(tmp_path / "newer.npz")
    with pytest.raises(ValueError, match="outside 0..8"):
        atlas.save_roi_masks(tmp_path / "x.npz", {"bad": [9]}, 9, "UTS01")


def test_default_path(tmp_path):
    assert atlas.default_roi_path(tmp_path, "UTS03") == tmp_path / "derivative" / "roi_masks" / "UTS03.npz"


def test_late_language_is_the_papers_16_areas():
    # the authors' list (bridge-ai-neuro/multi-brain-tuning, src/utils/brn_align_utils.py)
    assert sorted(PAPER_ROI_SETS["late_language"]) == sorted(
        ["A5", "44", "45", "IFJa", "IFSp", "PGi", "PGp", "PGs", "TPOJ1", "TPOJ2", "TPOJ3", "STGa", "STSda",
         "STSdp", "TA2", "STSva"])
    assert PAPER_ROI_SETS["early_auditory"] == ("A1", "LBelt", "PBelt", "MBelt", "RI", "A4")
    assert PAPER_ROI_SETS["primary_auditory"] == ("A1",)
