"""``python -m bt_tutorial.dataset.roi_build`` end to end, on miniature inputs served from 127.0.0.1.

The fakes: a 4 x 3 x 2 functional volume; 6 vertices per hemisphere whose white -> pial
segments sit in known voxels (one spans three); an fsaverage of the 6 axis points with a
planted HCP-MMP1 annotation; a subject sphere that permutes it. The atlas files are served
like figshare (a redirect to a URL that refuses HEAD), the dataset like S3.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from bt_tutorial._local_http import serving
from bt_tutorial.dataset import atlas, roi_build, roi_files
from bt_tutorial.dataset.rois import PAPER_ROI_SETS

nib = pytest.importorskip("nibabel")
from nibabel.freesurfer import write_annot, write_geometry  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUBJECT = "UTS03"
SHAPE = (4, 3, 2)  # nibabel (x, y, z)
COORD = np.array([[0.5, 0, 0, 1], [0, 0.5, 0, 1], [0, 0, 0.5, 1], [0, 0, 0, 1]])  # mm -> voxel
AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
FS_LABELS = {"L": ["A1", "LBelt", "STSdp", "V1", "???", "44"], "R": ["A1", "PGi", "STSdp", "V1", "45", "???"]}
PERM = np.array([3, 0, 5, 1, 4, 2])  # subject vertex i sits where fsaverage vertex PERM[i] is
AREAS = sorted({a for members in PAPER_ROI_SETS.values() for a in members} | {"V1"})
MASKED_OUT = (3, 0, 1)  # a voxel outside the cortical mask (right vertex 3 falls in it)


def voxel_of(i: int, z: int) -> tuple:
    return i % 4, i // 4, z


def mm(voxel) -> np.ndarray:
    return (np.asarray(voxel, float) - 1) * 2  # inverse of COORD


def write_gifti(path: Path, coords) -> None:
    darrays = [nib.gifti.GiftiDataArray(np.asarray(coords, np.float32), intent="NIFTI_INTENT_POINTSET"),
               nib.gifti.GiftiDataArray(np.array([[0, 1, 2]], np.int32), intent="NIFTI_INTENT_TRIANGLE")]
    nib.save(nib.gifti.GiftiImage(darrays=darrays), str(path))


def write_surface(path: Path, coords) -> None:
    """A GIfTI surface, or pycortex's ``.npz`` (``pts``, ``polys``) as UTS02 has in ds003020."""
    if path.suffix == ".npz":
        np.savez(path, pts=np.asarray(coords, np.float64), polys=np.array([[0, 1, 2]], np.int64))
    else:
        write_gifti(path, coords)


def write_annot_file(path: Path, hemi: str) -> None:
    names = ["???"] + [f"{hemi}_{a}_ROI" for a in AREAS]
    labels = [names.index("???" if a == "???" else f"{hemi}_{a}_ROI") for a in FS_LABELS[hemi]]
    ctab = np.column_stack([np.arange(len(names)), np.zeros((len(names), 3))]).astype(int)
    write_annot(str(path), np.array(labels), ctab, names)


def build_mirror(serve: Path, subject: str = SUBJECT, surfaces: str = ".gii") -> dict:
    """Write the served files; return the expected area of every voxel (x, y, z)."""
    data, at = serve / "ds003020" / "derivative", serve / "atlas"
    db, surf = data / "pycortex-db" / subject, data / "freesurfer_subjdir" / subject / "surf"
    xfm = db / "transforms" / f"{subject}_auto"
    for folder in (db / "surfaces", surf, xfm, at):
        folder.mkdir(parents=True, exist_ok=True)
    (xfm / "matrices.xfm").write_text(json.dumps({"coord": COORD.tolist(), "magnet": np.eye(4).tolist()}))
    mask = np.ones(SHAPE, np.uint8)
    mask[MASKED_OUT] = 0
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(xfm / "mask_thick.nii.gz"))
    expected = {}
    for z, (h, side) in enumerate(roi_files.FREESURFER_HEMIS):
        centers = np.array([mm(voxel_of(i, z)) for i in range(6)])
        white, pial = centers - 0.3, centers + 0.3
        labels = [FS_LABELS[side][p] for p in PERM]
        expected.update({voxel_of(i, z): labels[i] for i in range(6)})
        if side == "L":  # vertex 0 runs from voxel (0, 0, 0) through (0, 1, 0) to (0, 2, 0)
            pial[0] = mm((0, 2, 0))
            expected[(0, 2, 0)] = labels[0]  # (0, 1, 0) keeps vertex 4: weight 1 against 1/2
        write_surface(db / "surfaces" / f"wm_{h}{surfaces}", white)
        write_surface(db / "surfaces" / f"pia_{h}{surfaces}", pial)
        write_geometry(str(surf / f"{h}.sphere.reg"), (AXES[PERM] * 1.02).astype(np.float32),
                       np.array([[0, 1, 2]], np.int32))
        write_annot_file(at / f"{h}.HCP-MMP1.annot", side)
        write_gifti(at / f"tpl-fsaverage_hemi-{side}_den-164k_sphere.surf.gii", AXES * 100)
    expected.pop(MASKED_OUT)
    return {v: ("" if a in ("???",) else a) for v, a in expected.items()}


class Handler(http.server.BaseHTTPRequestHandler):
    """Serve ``root`` like S3 (HEAD, GET, one byte range, If-Range on the MD5 ETag); paths under
    ``atlas/`` redirect, like figshare, to ``signed/...``, which refuses HEAD (403)."""

    root: Path
    state: dict

    def log_message(self, format, *args):
        pass

    def do_HEAD(self):
        self._serve(False)

    def do_GET(self):
        self._serve(True)

    def _serve(self, body: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        self.state["requests"].append((self.command, path, self.headers.get("Range")))
        if path.startswith("atlas/"):
            self.send_response(302)
            self.send_header("Location", "/signed/" + path)
            return self.end_headers()
        if path.startswith("signed/"):
            if not body:
                return self.send_error(403)
            path = path[len("signed/"):]
        file = self.root / path
        if not file.is_file():
            return self.send_error(404)
        data = file.read_bytes()
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        first, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match and self.headers.get("If-Range") in (None, etag):
            first, status = int(match.group(1)), 206
        last = int(match.group(2)) if status == 206 and match.group(2) else len(data) - 1
        self.send_response(status)
        self.send_header("Content-Length", str(last + 1 - first))
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.end_headers()
        chunk = data[first:last + 1] if body else b""
        cut = self.state["cut"].pop(path, None) if body else None
        self.wfile.write(chunk if cut is None else chunk[:cut])


@pytest.fixture
def served(tmp_path, monkeypatch, request):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    serve = tmp_path / "served"
    expected = build_mirror(serve, *getattr(request, "param", ()))
    pins = {name: (f, u, hashlib.md5((serve / "atlas" / f).read_bytes()).hexdigest() if md5 else None)
            for name, (f, u, md5) in roi_build.ATLAS_FILES.items()}
    monkeypatch.setattr(roi_build, "ATLAS_FILES", pins)
    rows = ["path,size,md5"] + [f"{f.relative_to(serve / 'ds003020').as_posix()},{f.stat().st_size},"
                                f"{hashlib.md5(f.read_bytes()).hexdigest()}"
                                for f in sorted((serve / "ds003020").rglob("*")) if f.is_file()]
    (tmp_path / "registry.csv").write_text("\n".join(rows) + "\n")  # the shipped one is the real dataset's
    monkeypatch.setenv("BT_DATASET_REGISTRY", str(tmp_path / "registry.csv"))
    state = {"requests": [], "cut": {}}
    handler = type("Mirror", (Handler,), {"root": serve, "state": state})
    with serving(handler) as url:
        yield dict(url=url, state=state, expected=expected, data=tmp_path / "data", serve=serve)


def cli(served, *extra, subject=SUBJECT):
    return ["--subject", subject, "--data", str(served["data"]), "--base-url", served["url"] + "/ds003020",
            "--atlas-url", served["url"] + "/atlas", "--quiet", *extra]


def expected_columns(expected: dict) -> np.ndarray:
    """Area of each response column, in the order of ``flatnonzero(mask.T.ravel())``."""
    mask = np.ones(SHAPE, bool)
    mask[MASKED_OUT] = False
    flat = np.flatnonzero(mask.T.ravel())
    z, y, x = np.unravel_index(flat, SHAPE[::-1])
    return np.array([expected.get((a, b, c), "") for a, b, c in zip(x, y, z)])


def test_one_command_downloads_inputs_and_builds_the_masks(served, capsys):
    served["state"]["cut"]["ds003020/derivative/pycortex-db/UTS03/surfaces/pia_rh.gii"] = 100
    with pytest.warns(UserWarning, match="label no voxel"):
        assert roi_build.main(cli(served)) == 0
    out = capsys.readouterr().out
    sources = roi_build.plan_sources(SUBJECT, served["url"] + "/ds003020", served["url"] + "/atlas")
    assert len(sources) == 12
    for src in sources.values():  # every input with its size and source
        size = (served["serve"] / src.url.split("/", 3)[3]).stat().st_size
        assert re.search(rf"{re.escape(roi_build.format_size(size))}\s+{re.escape(src.relpath)}\s+<-\s+"
                         rf"{re.escape(src.url)}", out), src.relpath
    requests = served["state"]["requests"]
    assert ("GET", "signed/atlas/lh.HCP-MMP1.annot", None) in requests  # through the redirect
    assert ("GET", "ds003020/derivative/pycortex-db/UTS03/surfaces/pia_rh.gii", "bytes=100-") in requests  # resumed

    masks = atlas.load_roi_masks(atlas.default_roi_path(served["data"], SUBJECT), n_voxels=23)
    want = expected_columns(served["expected"])
    hemi = np.where(np.arange(23) < 12, 0, 1)  # columns of z = 0 (left vertices) come first
    for area in ("A1", "LBelt", "STSdp", "44", "45", "PGi"):
        assert np.flatnonzero(masks[area]).tolist() == np.flatnonzero(want == area).tolist(), area
        assert np.flatnonzero(masks[f"{area}_R"]).tolist() == np.flatnonzero((want == area) & (hemi == 1)).tolist()
    for name, members in PAPER_ROI_SETS.items():
        assert np.flatnonzero(masks[name]).tolist() == np.flatnonzero(np.isin(want, members)).tolist(), name
    assert masks["outside_rois"].sum() == 23 - np.isin(want, AREAS[:-1]).sum()
    assert "Wrote" in out and "late_language" in out

    n_requests = len(requests)
    assert roi_build.main(cli(served)) == 0  # built: nothing asked
    assert "already built" in capsys.readouterr().out
    with pytest.warns(UserWarning, match="label no voxel"):
        assert roi_build.main(cli(served, "--force")) == 0  # rebuilt from the files here, offline
    assert len(requests) == n_requests and capsys.readouterr().out.count("  here  ") == 12


@pytest.mark.parametrize("served", [("UTS02", ".npz")], indirect=True)
def test_uts02_surfaces_are_pycortex_npz(served, capsys):
    """Catches a plan that asks UTS02 for .gii surfaces (ds003020 has .npz) or a reader of GIfTI only."""
    assert roi_files.surface_suffix("UTS02") == ".npz" and roi_files.surface_suffix("UTS01") == ".gii"
    with pytest.warns(UserWarning, match="label no voxel"):
        assert roi_build.main(cli(served, subject="UTS02")) == 0
    asked = [path for _, path, _ in served["state"]["requests"] if "/surfaces/" in path]
    assert asked and all(path.endswith(".npz") for path in asked)
    masks = atlas.load_roi_masks(atlas.default_roi_path(served["data"], "UTS02"), n_voxels=23)
    want = expected_columns(served["expected"])
    for name, members in PAPER_ROI_SETS.items():
        assert np.flatnonzero(masks[name]).tolist() == np.flatnonzero(np.isin(want, members)).tolist(), name
    capsys.readouterr()


def test_surfaces_found_locally_decide_the_format(tmp_path):
    folder = tmp_path / "derivative/pycortex-db/UTS01/surfaces"
    folder.mkdir(parents=True)
    for name in ("wm_lh", "wm_rh", "pia_lh", "pia_rh"):
        write_surface(folder / f"{name}.npz", AXES)
    assert roi_files.surface_suffix("UTS01", tmp_path) == ".npz"
    assert roi_build.plan_sources("UTS01", surfaces=".npz")["wm_lh"].relpath.endswith("surfaces/wm_lh.npz")
    assert np.allclose(roi_files.read_surface(folder / "wm_lh.npz"), AXES)
    np.savez(folder / "bad.npz", points=AXES)
    with pytest.raises(ValueError, match="Cannot read the surface .*bad.npz"):
        roi_files.read_surface(folder / "bad.npz")


def test_size_of_a_file_whose_server_refuses_head(served):
    url = served["url"] + "/signed/atlas/lh.HCP-MMP1.annot"  # like figshare's signed S3 URLs: HEAD -> 403
    assert roi_build.probe_size(url, timeout=5) == (served["serve"] / "atlas/lh.HCP-MMP1.annot").stat().st_size
    assert served["state"]["requests"][-2:] == [("HEAD", "signed/atlas/lh.HCP-MMP1.annot", None),
                                                ("GET", "signed/atlas/lh.HCP-MMP1.annot", "bytes=0-0")]
    with pytest.raises(roi_build.DownloadError, match="404|does not exist"):
        roi_build.probe_size(served["url"] + "/signed/atlas/missing.annot", timeout=5)


def test_line_sampling_splits_a_segment_between_voxels():
    white, pial = np.array([mm((0, 0, 0))]), np.array([mm((0, 2, 0))])
    matrix = roi_build.line_nearest_matrix(white, pial, COORD, SHAPE).toarray()[0]
    flat = {(0, y, 0): (0 * 3 + y) * 4 for y in range(3)}
    assert [matrix[flat[(0, y, 0)]] for y in range(3)] == [16 / 64, 32 / 64, 16 / 64]
    assert matrix.sum() == pytest.approx(1)
    outside = roi_build.line_nearest_matrix(white + 100, pial + 100, COORD, SHAPE)
    assert outside.nnz == 0  # points outside the volume are dropped


def test_bad_input_exits_2_with_one_line(served, capsys):
    assert roi_build.main(cli(served)[:1] + ["UTS9"] + cli(served)[2:]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "UTS01 to UTS08" in err
    (served["serve"] / "ds003020/derivative/freesurfer_subjdir/UTS03/surf/rh.sphere.reg").unlink()
    assert roi_build.main(cli(served)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "404" in err and "rh.sphere.reg" in err


def test_wrong_pinned_md5_is_refused(served, monkeypatch, capsys):
    pins = dict(roi_build.ATLAS_FILES)
    pins["annot_rh"] = pins["annot_rh"][:2] + ("0" * 32,)
    monkeypatch.setattr(roi_build, "ATLAS_FILES", pins)
    assert roi_build.main(cli(served)) == 2
    err = capsys.readouterr().err
    assert "rh.HCP-MMP1.annot" in err and "MD5" in err and "run the same command again" in err
    assert not atlas.default_roi_path(served["data"], SUBJECT).exists()


def test_surfaces_of_another_reconstruction_are_refused(served, capsys, monkeypatch):
    monkeypatch.setenv("BT_DATASET_REGISTRY", "none")  # a mirror of another snapshot: no registry to check against
    write_gifti(served["serve"] / "ds003020/derivative/pycortex-db/UTS03/surfaces/wm_lh.gii", np.zeros((5, 3)))
    assert roi_build.main(cli(served)) == 2
    assert "another FreeSurfer reconstruction" in capsys.readouterr().err


def test_unregistered_sphere_and_wrong_hemisphere_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not registered|sphere.reg"):
        roi_build.resample_labels(AXES, np.arange(6), AXES + [[0.5, 0.5, 0]])
    write_annot_file(tmp_path / "lh.annot", "L")
    areas, names = roi_files.read_annot_areas(tmp_path / "lh.annot", "L")
    assert areas.tolist() == ["A1", "LBelt", "STSdp", "V1", "", "44"] and names == set(AREAS)
    with pytest.raises(ValueError, match="other hemisphere"):
        roi_files.read_annot_areas(tmp_path / "lh.annot", "R")


def test_dry_run_prints_the_plan_and_writes_nothing(served, capsys):
    assert roi_build.main(cli(served, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "to download, 12 files" in out and "figshare" not in out  # the mirror's URLs
    assert not served["data"].exists()


@pytest.mark.parametrize("command", [[sys.executable, "-m", "bt_tutorial.dataset.roi_build"],
                                     [sys.executable, str(REPO / "data_scripts" / "build_roi_masks.py")]])
def test_entry_points(command, tmp_path):
    done = subprocess.run([*command, "--subject", "UTS00", "--data", str(tmp_path)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith("error: Unknown subject 'UTS00'")


def test_a_nan_transform_or_zero_samples_are_refused(tmp_path, capsys):
    """Catches every ROI built empty (exit 0) from a NaN in matrices.xfm or --samples 0."""
    xfm = tmp_path / "matrices.xfm"
    coord = np.eye(4)
    coord[0, 3] = np.nan
    xfm.write_text(json.dumps({"coord": coord.tolist()}))  # Python writes NaN, as a broken file might
    with pytest.raises(ValueError, match="matrices.xfm: the 'coord' matrix has non-finite values"):
        roi_files.read_coord_xfm(xfm)
    with pytest.raises(SystemExit):
        roi_build.parse_args(["--subject", "UTS01", "--samples", "0"])
    assert "--samples: must be at least 1, got 0" in capsys.readouterr().err


def test_dataset_inputs_are_checked_against_the_registry(served):
    """Catches a ds003020 input accepted with the wrong content (a same-size change on the mirror, which
    sends no MD5): the registry's MD5 refuses it and the message names the file."""
    from bt_tutorial.dataset.transfer import DownloadError

    target = served["serve"] / "ds003020/derivative/pycortex-db/UTS03/surfaces/wm_lh.gii"
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF
    target.write_bytes(bytes(data))
    sources = roi_build.plan_sources(SUBJECT, served["url"] + "/ds003020", served["url"] + "/atlas")
    with pytest.raises(DownloadError, match=r"wm_lh.gii: the downloaded file does not match the MD5 checksum of "
                                            r"the registry"):
        roi_build.fetch_inputs(sources, served["data"], progress=False, retries=0, backoff=0)
    assert not (served["data"] / "derivative/pycortex-db/UTS03/surfaces/wm_lh.gii").exists()
