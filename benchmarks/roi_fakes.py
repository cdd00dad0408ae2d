"""Fakes of the 12 inputs of ``python -m bt_tutorial.dataset.roi_build``, of a real subject's size, and a
local HTTP server for them (used by the ``roi`` stage of ``full_profile_rehearsal.py``).

The fake brain: per hemisphere a folded ellipsoid in surface mm (radial folds, three plane
waves 11 mm long, up to 14 mm deep together: ~960 cm2 of mid surface, as a real
hemisphere), a cortex 2-3 mm thick (white -> pial along the radius), and a pycortex
transform (2.6 mm voxels, a little rotated) into an 84 x 84 x 54 volume. The cortical mask
is pycortex's ``thick`` mask (voxels near the mid surface) cut to exactly ``n_voxels``:
every voxel that a white -> pial segment crosses (sampled as roi_build samples it), then
the voxels nearest to the mid surface. The subject's ``?h.sphere.reg`` and fsaverage's
sphere are two different near-uniform point sets on the same sphere (the subject's anatomy
is a function of its sphere position), meshed by their convex hull; the HCP-MMP1
annotation gives each fsaverage vertex one of 180 Voronoi parcels (the paper's ROI areas
under their real names, the others fillers), ``???`` on a medial wall. Everything is a
function of the spec (numpy seed).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bt_tutorial.dataset.roi_files import SURFACE_SUFFIXES

GENERATOR_VERSION = 3
N_AREAS = 180  # HCP-MMP1 areas per hemisphere
N_SAMPLES = 64  # points per white -> pial segment, as roi_build.N_SAMPLES
HEMIS = (("lh", "L", -1.0), ("rh", "R", 1.0))  # FreeSurfer name, side, sign of x


@dataclass(frozen=True)
class RoiFakeSpec:
    n_vertices: int = 150_000  # subject vertices per hemisphere
    n_fsaverage: int = 163_842  # fsaverage (ico7) vertices per hemisphere
    n_voxels: int = 95_556  # True voxels of mask_thick
    shape: tuple = (84, 84, 54)  # functional volume (x, y, z) as nibabel reads it
    voxel_mm: float = 2.6
    seed: int = 0
    subject: str = "UTS03"  # 95,556 voxels; UTS02's surfaces are .npz in ds003020, the others' .gii


REAL = RoiFakeSpec()
SMALL = RoiFakeSpec(n_vertices=2_000, n_fsaverage=2_562, n_voxels=5_000, shape=(24, 24, 16), voxel_mm=9.0,
                   subject="UTS02")
# the brain in surface mm, whatever the voxel size
CENTRE_X, SEMI_AXES = 38.0, np.array([34.0, 78.0, 52.0])
FOLD_MM, FOLD_WAVELENGTH_MM, THICKNESS_MM = 8.0, 11.0, (2.0, 3.0)  # ~96,000 mm2 per hemisphere
MEDIAL_WALL = 0.75  # sphere vertices with -sign * x beyond this are the medial wall ("???")


def _paper_areas() -> list:
    from bt_tutorial.dataset.rois import PAPER_ROI_SETS

    return list(dict.fromkeys(a for members in PAPER_ROI_SETS.values() for a in members))


def _sphere_points(n: int, rng, jitter: float = 0.0) -> np.ndarray:
    """``n`` near-uniform unit vectors (a Fibonacci lattice, randomly rotated, optionally jittered)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    points = np.column_stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z])
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    points = points @ (q * np.sign(np.diag(r))).T
    if jitter:
        points += rng.normal(0, jitter * np.sqrt(4 * np.pi / n), points.shape)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def _faces(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    return ConvexHull(points).simplices.astype(np.int32)  # a sphere's Delaunay mesh, 2n - 4 triangles


def _cortex(u: np.ndarray, sign: float, rng) -> tuple:
    """White, mid and pial positions (mm) of the vertices at sphere directions ``u``."""
    q = u * SEMI_AXES  # on the smooth ellipsoid, relative to the hemisphere's centre
    radius = np.linalg.norm(q, axis=1, keepdims=True)
    k, phase = 2 * np.pi / FOLD_WAVELENGTH_MM, rng.uniform(0, 2 * np.pi, 4)
    waves = rng.standard_normal((3, 3))  # three plane waves in random directions
    waves /= np.linalg.norm(waves, axis=1, keepdims=True)
    fold = FOLD_MM / np.sqrt(3) * np.sin(k * q @ waves.T + phase[:3]).sum(axis=1, keepdims=True)
    low, high = THICKNESS_MM
    thick = low + (high - low) * (0.5 + 0.5 * np.sin(k / 3 * q[:, 1:2] + phase[3]))
    direction, centre = q / radius, np.array([sign * CENTRE_X, 0.0, 0.0])
    mid = centre + direction * (radius + fold)
    return mid - direction * thick / 2, mid, mid + direction * thick / 2


def _coord(spec: RoiFakeSpec) -> np.ndarray:
    """pycortex ``coord``: surface mm -> voxel (x, y, z); 2.6 mm voxels, 4 degrees of pitch, centred."""
    angle = np.deg2rad(4.0)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    coord = np.eye(4)
    coord[:3, :3] = rotation / spec.voxel_mm
    coord[:3, 3] = (np.array(spec.shape) - 1) / 2
    return coord


def _annotation(fs_points: np.ndarray, sign: float, rng) -> np.ndarray:
    """Label index (0 ``???``, i + 1 parcel i) of each fsaverage vertex: Voronoi parcels of jittered seeds."""
    from scipy.spatial import cKDTree

    n = N_AREAS
    while True:  # a lattice with N_AREAS points off the medial wall, or more
        seeds = _sphere_points(n, rng, jitter=0.3)
        seeds = seeds[-sign * seeds[:, 0] < MEDIAL_WALL * 0.95]
        if len(seeds) >= N_AREAS:
            break
        n += 10
    seeds = seeds[np.sort(rng.choice(len(seeds), N_AREAS, replace=False))]
    labels = cKDTree(seeds).query(fs_points)[1] + 1
    labels[-sign * fs_points[:, 0] > MEDIAL_WALL] = 0
    return labels


def _write_gifti(path: Path, coords: np.ndarray, faces: np.ndarray) -> None:
    import nibabel as nib

    darrays = [nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
               nib.gifti.GiftiDataArray(faces, intent="NIFTI_INTENT_TRIANGLE")]
    nib.save(nib.gifti.GiftiImage(darrays=darrays), str(path))


def _write_surface(path: Path, coords: np.ndarray, faces: np.ndarray) -> None:
    """GIfTI, or pycortex's ``.npz`` (``pts``, ``polys``)."""
    if path.suffix == ".npz":
        np.savez(path, pts=coords.astype(np.float64), polys=faces.astype(np.int64))
    else:
        _write_gifti(path, coords, faces)


def _thick_mask(spec: RoiFakeSpec, coord: np.ndarray, segments: list, mids: np.ndarray) -> tuple:
    """The ``n_voxels`` voxels crossed by a segment, then nearest to the mid surface; (x, y, z) bool."""
    from scipy.spatial import cKDTree

    nx, ny, nz = spec.shape
    hits = np.zeros(nx * ny * nz, np.int64)  # flat (z, y, x), as roi_build's columns
    for white, pial in segments:
        for t in np.linspace(0, 1, N_SAMPLES + 2)[1:-1]:
            voxel = np.floor((white * (1 - t) + pial * t) @ coord[:3, :3].T + coord[:3, 3] + 0.5).astype(np.int64)
            inside = np.all((voxel >= 0) & (voxel < (nx, ny, nz)), axis=1)
            x, y, z = voxel[inside].T
            hits += np.bincount((z * ny + y) * nx + x, minlength=hits.size)
    z, y, x = np.unravel_index(np.arange(hits.size), (nz, ny, nx))
    centres = (np.column_stack([x, y, z]) - coord[:3, 3]) @ np.linalg.inv(coord[:3, :3]).T
    distance = cKDTree(mids).query(centres)[0]
    chosen = np.lexsort((distance, hits == 0))[: spec.n_voxels]
    flat = np.zeros(hits.size, bool)
    flat[chosen] = True
    n_points = N_SAMPLES * sum(len(white) for white, _ in segments)
    figures = dict(voxels_crossed=int(np.sum(hits > 0)), samples_in_volume=round(float(hits.sum() / n_points), 4),
                   samples_in_mask=round(float(hits[flat].sum() / hits.sum()), 4),
                   mask_max_mm_from_mid_surface=round(float(distance[chosen].max()), 1))
    return flat.reshape(nz, ny, nx).T, figures


def write_roi_fakes(folder: Path, spec: RoiFakeSpec) -> dict:
    """Write the served tree ``folder/served/{ds003020,atlas}`` (12 files); return figures of the fakes."""
    import nibabel as nib
    from nibabel.freesurfer import write_annot, write_geometry

    t0 = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    served = folder / "served"
    data, at = served / "ds003020" / "derivative", served / "atlas"
    subject = spec.subject
    db, surf = data / "pycortex-db" / subject, data / "freesurfer_subjdir" / subject / "surf"
    xfm = db / "transforms" / f"{subject}_auto"
    suffix = SURFACE_SUFFIXES.get(subject, ".gii")
    for path in (db / "surfaces", surf, xfm, at):
        path.mkdir(parents=True, exist_ok=True)
    coord = _coord(spec)
    names = _paper_areas()
    names += [f"Area{i:03d}" for i in range(N_AREAS - len(names))]
    segments, mids, areas_mm2 = [], [], []
    for h, side, sign in HEMIS:
        fs_points = _sphere_points(spec.n_fsaverage, rng)
        order = rng.permutation(N_AREAS)  # which area is which parcel
        labels = _annotation(fs_points, sign, rng)
        table = ["???"] + [f"{side}_{names[i]}_ROI" for i in order]
        colours = np.column_stack([np.arange(N_AREAS + 1), (37 * np.arange(N_AREAS + 1)) % 256,
                                   (91 * np.arange(N_AREAS + 1)) % 256, np.zeros(N_AREAS + 1)]).astype(int)
        write_annot(str(at / f"{h}.HCP-MMP1.annot"), labels, colours, table, fill_ctab=True)
        _write_gifti(at / f"tpl-fsaverage_hemi-{side}_den-164k_sphere.surf.gii", fs_points * 100, _faces(fs_points))
        u = _sphere_points(spec.n_vertices, rng, jitter=0.25)
        faces = _faces(u)
        write_geometry(str(surf / f"{h}.sphere.reg"), (u * 100).astype(np.float32), faces,
                       create_stamp="created by benchmarks/roi_fakes.py")  # no date: same bytes each time
        white, mid, pial = _cortex(u, sign, rng)
        _write_surface(db / "surfaces" / f"wm_{h}{suffix}", white, faces)
        _write_surface(db / "surfaces" / f"pia_{h}{suffix}", pial, faces)
        segments.append((white, pial))
        mids.append(mid)
        a, b, c = (mid[faces[:, i]] for i in range(3))
        areas_mm2.append(round(float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2)))
    mask, figures = _thick_mask(spec, coord, segments, np.concatenate(mids))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.diag([spec.voxel_mm] * 3 + [1.0])),
             str(xfm / "mask_thick.nii.gz"))
    (xfm / "matrices.xfm").write_text(json.dumps({"coord": coord.tolist(), "magnet": np.eye(4).tolist()}))
    files = sorted(p for p in served.rglob("*") if p.is_file())
    return dict(spec=asdict(spec), version=GENERATOR_VERSION, subject=subject, mid_surface_mm2=areas_mm2,
                **figures, n_files=len(files), served_mb=round(sum(p.stat().st_size for p in files) / 1e6, 1),
                generate_s=round(time.perf_counter() - t0, 1))


def ensure_roi_fakes(folder: Path, spec: RoiFakeSpec) -> dict:
    """The fakes under ``folder`` (``fakes.json`` says which), written again if missing or of another spec."""
    record = folder / "fakes.json"
    if record.is_file():
        info = json.loads(record.read_text())
        if info.get("spec") == json.loads(json.dumps(asdict(spec))) and info.get("version") == GENERATOR_VERSION:
            return info
    shutil.rmtree(folder, ignore_errors=True)
    info = write_roi_fakes(folder, spec)
    record.write_text(json.dumps(info, indent=1))
    return info


def atlas_pins(served: Path, atlas_files: dict) -> dict:
    """``roi_build.ATLAS_FILES`` with each pinned MD5 replaced by that of the fake (as the tests pin them)."""
    return {name: (f, url, hashlib.md5((served / "atlas" / f).read_bytes()).hexdigest() if md5 else None)
            for name, (f, url, md5) in atlas_files.items()}


