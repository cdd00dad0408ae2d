"""Glasser ROI masks for the real data: label names, vertices -> voxels, files, build script.

Everything runs on planted data: tiny spheres, annotations written with nibabel,
hand-made sparse vertex -> voxel matrices, and a stand-in for pycortex.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from bt_tutorial import atlas
from bt_tutorial.rois import PAPER_ROI_SETS

nib = pytest.importorskip("nibabel")
from nibabel.freesurfer import write_annot, write_geometry  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "data_scripts" / "build_roi_masks.py"
PAPER_AREAS = sorted({a for members in PAPER_ROI_SETS.values() for a in members})


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("build_roi_masks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    with pytest.raises(ValueError, match=r"\['STSvp', 'TA2'\].*annot.*L_A1_ROI"):
        atlas.check_roi_names(set(PAPER_AREAS) - {"TA2", "STSvp"}, source="annot")
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
    assert "build_roi_masks.py" in message and "--subject UTS01" in message


def test_bad_files_are_explained(tmp_path):
    with pytest.raises(atlas.RoiFileError, match="not found.*build_roi_masks.py.*--subject UTS02"):
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


# ------------------------------------------------------------ annotations, spheres
AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
FS_LABELS = {"L": ["A1", "LBelt", "STSdp", "V1", "???", "44"], "R": ["A1", "PGi", "STSdp", "V1", "45", "???"]}
PERM = np.array([3, 0, 5, 1, 4, 2])  # subject vertex i sits where fsaverage vertex PERM[i] is


def write_planted_annot(path, hemi):
    """An annotation of the 6 axis vertices whose colour table names every paper area and V1."""
    names = ["???"] + [f"{hemi}_{a}_ROI" for a in PAPER_AREAS + ["V1"]]
    labels = [names.index("???" if a == "???" else f"{hemi}_{a}_ROI") for a in FS_LABELS[hemi]]
    ctab = np.column_stack([np.arange(len(names)), np.zeros((len(names), 2)), np.zeros(len(names))])
    write_annot(str(path), np.array(labels), ctab.astype(int), names)
    return path


def write_sphere(path, coords):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_geometry(str(path), np.asarray(coords, np.float32), np.array([[0, 1, 2]], np.int32))
    return path


def test_read_annot_areas(script, tmp_path):
    areas, names = script.read_annot_areas(write_planted_annot(tmp_path / "lh.annot", "L"), "L")
    assert areas.tolist() == ["A1", "LBelt", "STSdp", "V1", "", "44"]
    assert names == set(PAPER_AREAS) | {"V1"}
    with pytest.raises(ValueError, match="other hemisphere.*--lh-annot"):
        script.read_annot_areas(tmp_path / "lh.annot", "R")


def test_resample_labels_follows_the_registered_sphere(script, tmp_path):
    rng = np.random.default_rng(0)
    subject = write_sphere(tmp_path / "lh.sphere.reg", AXES[PERM] * (1 + 0.05 * rng.random((6, 1))))
    fsaverage = write_sphere(tmp_path / "fs" / "lh.sphere.reg", AXES * 100)
    labels = script.resample_labels(script.read_sphere(fsaverage), np.array(FS_LABELS["L"]),
                                    script.read_sphere(subject))
    assert labels.tolist() == [FS_LABELS["L"][p] for p in PERM]
    with pytest.raises(ValueError, match="not on this fsaverage mesh"):
        script.resample_labels(AXES, np.array(["A1"]), AXES)


# -------------------------------------------------------------------- the script
SUBJECT = "UTS01"
VOLUME = (3, 2, 2)  # nibabel (x, y, z); pycortex volumes are (z, y, x)


def planted_dataset(root: Path) -> dict:
    """A ds003020 corner with the files the script reads, and the expected voxel labels."""
    db = root / "derivative" / "pycortex-db" / SUBJECT
    (db / "surfaces").mkdir(parents=True)
    xfm = db / "transforms" / f"{SUBJECT}_auto"
    xfm.mkdir(parents=True)
    (xfm / "matrices.xfm").write_text("{}")
    (xfm / "reference.nii.gz").write_bytes(b"")
    mask = np.ones(VOLUME, dtype=np.uint8)
    mask[2, 1, 1] = 0  # flat (z, y, x) index 11 is outside the cortex mask
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(xfm / "mask_thick.nii.gz"))
    fs = root / "derivative" / "freesurfer_subjdir"
    for hemi in ("lh", "rh"):
        write_sphere(fs / "fsaverage" / "surf" / f"{hemi}.sphere.reg", AXES * 100)
        write_sphere(fs / SUBJECT / "surf" / f"{hemi}.sphere.reg", AXES[PERM])
    annots = [write_planted_annot(root / f"{h}.HCP-MMP1.annot", h[0].upper()) for h in ("lh", "rh")]
    # each subject vertex i of the left (right) hemisphere falls in volume voxel i (6 + i)
    left = sparse.csr_matrix((np.ones(6), (np.arange(6), np.arange(6))), shape=(6, 12))
    right = sparse.csr_matrix((np.ones(6), (np.arange(6), 6 + np.arange(6))), shape=(6, 12))
    expected = [FS_LABELS["L"][p] for p in PERM] + [FS_LABELS["R"][p] for p in PERM][:5]
    return dict(annots=annots, left=left, right=right, expected=expected)


def fake_pycortex(monkeypatch, left, right) -> dict:
    calls = {}

    def get_mapper(subject, xfm, kind):
        calls["mapper"] = (subject, xfm, kind)
        return types.SimpleNamespace(masks=[left, right])

    module = types.ModuleType("cortex")
    db = types.SimpleNamespace(filestore="~/elsewhere", _subjects={"S1": None})
    module.database = types.SimpleNamespace(default_filestore="~/elsewhere", db=db)
    module.db, module.get_mapper = db, get_mapper
    monkeypatch.setitem(sys.modules, "cortex", module)
    calls["module"] = module
    return calls


def cli(tmp_path, planted, *extra):
    lh, rh = planted["annots"]
    return ["--data", str(tmp_path), "--subject", SUBJECT, "--lh-annot", str(lh), "--rh-annot", str(rh), *extra]


def test_script_builds_masks_with_pycortex(script, tmp_path, monkeypatch, capsys):
    planted = planted_dataset(tmp_path)
    calls = fake_pycortex(monkeypatch, planted["left"], planted["right"])
    with pytest.warns(UserWarning, match="label no voxel"):
        assert script.main(cli(tmp_path, planted)) == 0
    assert calls["mapper"] == (SUBJECT, f"{SUBJECT}_auto", "line_nearest")
    store = str(tmp_path / "derivative" / "pycortex-db")
    assert calls["module"].db.filestore == calls["module"].database.default_filestore == store
    assert calls["module"].db._subjects is None
    masks = atlas.load_roi_masks(atlas.default_roi_path(tmp_path, SUBJECT), n_voxels=11)
    expected, hemi = np.array(planted["expected"]), np.repeat([0, 1], [6, 5])
    for area in ("A1", "LBelt", "STSdp", "44", "45", "PGi"):
        assert np.flatnonzero(masks[area]).tolist() == np.flatnonzero(expected == area).tolist(), area
        for code, side in enumerate("LR"):
            want = np.flatnonzero((expected == area) & (hemi == code))
            assert np.flatnonzero(masks[f"{area}_{side}"]).tolist() == want.tolist()
    late = np.isin(expected, ["STSdp", "44", "45", "PGi"])
    assert np.flatnonzero(masks["late_language"]).tolist() == np.flatnonzero(late).tolist()
    outside = np.isin(expected, ["V1", "???"])
    assert np.flatnonzero(masks["outside_rois"]).tolist() == np.flatnonzero(outside).tolist()
    assert "Wrote" in capsys.readouterr().out
    assert script.main(cli(tmp_path, planted)) == 2  # written once: no silent overwrite
    assert "--force" in capsys.readouterr().err


def test_script_rejects_surfaces_of_another_reconstruction(script, tmp_path, monkeypatch, capsys):
    planted = planted_dataset(tmp_path)
    fake_pycortex(monkeypatch, planted["left"][:5], planted["right"])
    assert script.main(cli(tmp_path, planted)) == 2
    assert "another FreeSurfer reconstruction" in capsys.readouterr().err


def test_script_without_pycortex_says_how_to_install(script, tmp_path, monkeypatch, capsys):
    planted = planted_dataset(tmp_path)
    monkeypatch.setitem(sys.modules, "cortex", None)  # import cortex -> ImportError
    assert script.main(cli(tmp_path, planted)) == 2
    err = capsys.readouterr().err
    assert "pip install pycortex" in err and "pycortex-db" in err
    assert not atlas.default_roi_path(tmp_path, SUBJECT).exists()


def test_script_dry_run_lists_inputs_and_writes_nothing(script, tmp_path, monkeypatch, capsys):
    planted = planted_dataset(tmp_path)
    monkeypatch.setitem(sys.modules, "cortex", None)  # a dry run needs no pycortex
    (tmp_path / "derivative" / "freesurfer_subjdir" / SUBJECT / "surf" / "rh.sphere.reg").unlink()
    assert script.main(cli(tmp_path, planted, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "lh.HCP-MMP1.annot" in out and "mask_thick.nii.gz" in out and "pycortex-db" in out
    assert f"MISSING  subject right sphere: {tmp_path}" in out
    assert out.count("ok  ") == 9 and str(atlas.default_roi_path(tmp_path, SUBJECT)) in out
    assert not (tmp_path / "derivative" / "roi_masks").exists()
    assert script.main(cli(tmp_path, planted, "--dry-run", "--annot-space", "subject")) == 0
    assert "sphere" not in capsys.readouterr().out
