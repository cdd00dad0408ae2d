"""Glasser ROI masks of a ds003020 subject in one command, inputs downloaded on the way.

    python -m bt_tutorial.dataset.roi_build --subject UTS03 --data ~/data/ds003020

prints every input with its size and source, downloads the missing ones (resumable; a
file already here is not asked for again), and writes ``<data>/derivative/roi_masks/
<subject>.npz`` (:func:`bt_tutorial.dataset.atlas.save_roi_masks`), which the chapters read with
numpy only. It needs numpy, scipy and nibabel, nothing else (no pycortex, no FreeSurfer).

The route, subject-native and surface-based:

1. the HCP-MMP1 label of each fsaverage vertex (``?h.HCP-MMP1.annot``, figshare) goes to the
   nearest vertex of the subject's ``?h.sphere.reg`` (ds003020's FreeSurfer folder), both on
   the registration sphere (fsaverage's sphere from TemplateFlow);
2. each subject vertex goes to the voxels that the segment from its white-matter to its pial
   position crosses (``n_samples`` points, nearest voxel: pycortex's ``line_nearest``), through
   the subject's pycortex transform (``matrices.xfm``, ``coord``: surface mm -> voxel x, y, z);
3. each voxel of the cortical mask takes the area with the largest summed weight
   (:func:`bt_tutorial.dataset.atlas.assign_voxels`), and the paper's ROI sets are collected.
"""

from __future__ import annotations

import argparse
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bt_tutorial.command_line import run_command
from bt_tutorial.dataset import atlas
from bt_tutorial.dataset.download import DEFAULT_BASE_URL, dataset_url
from bt_tutorial.dataset.file_formats import file_md5, load_registry, registry_key
from bt_tutorial.dataset.layout import derivative_dir
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.dataset.roi_files import (
    FREESURFER_HEMIS,
    SURFACE_FORMATS,
    read_annot_areas,
    read_coord_xfm,
    read_surface,
    surface_suffix,
)
from bt_tutorial.dataset.rois import PAPER_ROI_SETS
from bt_tutorial.dataset.transfer import DownloadError, download_file, format_size, remote_size

FIGSHARE = "https://ndownloader.figshare.com/files"
TEMPLATEFLOW = "https://templateflow.s3.amazonaws.com/tpl-fsaverage"
ATLAS_FOLDER = "roi_masks/inputs"  # under the derivative folder
N_SAMPLES = 64  # points per vertex on the white -> pial segment, as pycortex's line mappers
MAX_SPHERE_GAP = 0.05  # median distance (unit sphere) from a subject vertex to fsaverage's nearest
SUBJECT_RE = re.compile(r"UTS0[1-8]")


class Source(NamedTuple):
    """One input: its path under the dataset root, its URL, its MD5 where pinned (None: the server's)."""

    relpath: str
    url: str
    md5: str | None


# name -> (file name, URL, MD5). The annotations: Mills (2016), "HCP-MMP1.0 projected on fsaverage",
# https://doi.org/10.6084/m9.figshare.3498446 (the files and MD5s MNE's fetch_hcp_mmp_parcellation uses).
# The spheres: TemplateFlow's fsaverage (164k vertices, the annotations' mesh); S3 checks their MD5.
ATLAS_FILES = {
    "annot_lh": ("lh.HCP-MMP1.annot", f"{FIGSHARE}/5528816", "46a102b59b2fb1bb4bd62d51bf02e975"),
    "annot_rh": ("rh.HCP-MMP1.annot", f"{FIGSHARE}/5528819", "75e96b331940227bbcb07c1c791c2463"),
    "fsaverage_lh": ("tpl-fsaverage_hemi-L_den-164k_sphere.surf.gii",
                     f"{TEMPLATEFLOW}/tpl-fsaverage_hemi-L_den-164k_sphere.surf.gii", None),
    "fsaverage_rh": ("tpl-fsaverage_hemi-R_den-164k_sphere.surf.gii",
                     f"{TEMPLATEFLOW}/tpl-fsaverage_hemi-R_den-164k_sphere.surf.gii", None),
}


# ------------------------------------------------------------------------ inputs
def plan_sources(subject: str, base_url: str = DEFAULT_BASE_URL, atlas_url: str | None = None,
                 derivative: str = "derivative", surfaces: str | None = None) -> dict:  # fmt: skip
    """Every input of the build, by name.

    Parameters
    ----------
    subject : str
        ``"UTS01"`` to ``"UTS08"``.
    base_url : str
        URL of the ds003020 root.
    atlas_url : str, optional
        A folder URL serving the four atlas files under their file names (a mirror);
        default: their sources. Pinned MD5s hold for a mirror too.
    derivative : {"derivative", "derivatives"}
        Name of the derivative folder, here and on the server.
    surfaces : {".gii", ".npz"}, optional
        Format of the pycortex surfaces; default: the dataset's (:func:`~bt_tutorial.dataset.roi_files.surface_suffix`).

    Returns
    -------
    sources : dict of str -> Source
        ``annot_lh/rh``, ``fsaverage_lh/rh``, ``wm_lh/rh``, ``pia_lh/rh``, ``sphere_lh/rh``,
        ``xfm``, ``mask``.
    """
    if not isinstance(subject, str) or not SUBJECT_RE.fullmatch(subject):
        raise ValueError(f"Unknown subject {subject!r}: use one of UTS01 to UTS08.")
    surfaces = surfaces or surface_suffix(subject)
    if surfaces not in SURFACE_FORMATS:
        raise ValueError(f"Unknown surface format {surfaces!r}: use one of {SURFACE_FORMATS}.")
    db, surf = f"{derivative}/pycortex-db/{subject}", f"{derivative}/freesurfer_subjdir/{subject}/surf"
    relpaths = {f"{kind}_{h}": f"{db}/surfaces/{kind}_{h}{surfaces}" for h, _ in FREESURFER_HEMIS for kind in ("wm", "pia")}
    relpaths.update({f"sphere_{h}": f"{surf}/{h}.sphere.reg" for h, _ in FREESURFER_HEMIS})
    relpaths.update(xfm=f"{db}/transforms/{subject}_auto/matrices.xfm",
                    mask=f"{db}/transforms/{subject}_auto/mask_thick.nii.gz")
    base = base_url.rstrip("/")
    sources = {}
    for name, (filename, url, md5) in ATLAS_FILES.items():
        url = url if atlas_url is None else f"{atlas_url.rstrip('/')}/{urllib.parse.quote(filename)}"
        sources[name] = Source(f"{derivative}/{ATLAS_FOLDER}/{filename}", url, md5)
    sources.update((n, Source(p, f"{base}/{urllib.parse.quote(p)}", None)) for n, p in relpaths.items())
    return sources


def probe_size(url: str, timeout: float = 60) -> int:
    """Size of the file at ``url``: :func:`~bt_tutorial.dataset.transfer.remote_size`, else a one-byte GET.

    figshare redirects to a signed S3 URL that refuses HEAD; the GET of byte 0 (which
    follows the redirect) reads the size from Content-Range.
    """
    try:
        return remote_size(url, timeout)
    except DownloadError as exc:
        first_error = exc
    request = urllib.request.Request(url, headers={"Range": "bytes=0-0", "User-Agent": "bt-tutorial-downloader"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            match = re.fullmatch(r"bytes 0-0/(\d+)", response.headers.get("Content-Range", ""))
            if response.status == 206 and match:
                return int(match.group(1))
    except OSError:
        pass
    raise first_error


def fetch_inputs(sources: dict, root, dry_run: bool = False, timeout: float = 60, progress: bool = True,
                 registry=None, **retry) -> dict:  # fmt: skip
    """Print each input's size and source, then download the missing ones under ``root``.

    A file present under its final name is complete (downloads land in ``.part`` first)
    and is not asked for again, so a second run works offline. A pinned MD5 is checked
    on every run.

    Parameters
    ----------
    sources : dict of str -> Source
        From :func:`plan_sources`.
    root : str or Path
        The dataset root.
    dry_run : bool
        Only print the plan.
    registry : mapping, str or Path, optional
        Sizes and MD5s of ds003020's files (:func:`~bt_tutorial.dataset.file_formats.load_registry`;
        default: ``$BT_DATASET_REGISTRY`` or the shipped one); they check the files of the
        dataset that have no pinned MD5.
    timeout, progress, **retry
        Passed to :func:`~bt_tutorial.dataset.transfer.download_file` (``retries``, ``backoff``).

    Returns
    -------
    paths : dict of str -> Path
    """
    root = Path(root).expanduser()
    checksums = load_registry(registry)
    sources = {name: src if src.md5 or registry_key(src.relpath) not in checksums
               else src._replace(md5=checksums[registry_key(src.relpath)].md5) for name, src in sources.items()}
    lines, todo = [], []
    for src in sources.values():
        dest = root / src.relpath
        if dest.is_file():
            lines.append(f"{'here':>9}  {src.relpath}")
            continue
        size = probe_size(src.url, timeout)
        todo.append((src, dest, size))
        lines.append(f"{format_size(size):>9}  {src.relpath}  <-  {src.url}")
    left = format_size(sum(size for *_, size in todo))
    print("\n".join(["ROI inputs (size, path, source):", *lines, f"{left:>9}  to download, {len(todo)} files"]))
    if dry_run:
        return {}
    for src, dest, size in todo:
        download_file(src.url, dest, size, timeout=timeout, progress=progress, md5=src.md5, **retry)
    for src in sources.values():
        _check_md5(src, root / src.relpath)
    return {name: root / src.relpath for name, src in sources.items()}


def _check_md5(src: Source, path: Path) -> None:
    if src.md5 and file_md5(path) != src.md5:
        raise DownloadError(f"{path} is not the file of {src.url} (its MD5 is not {src.md5}): delete it and "
                            "run the same command again to download it again.")


# --------------------------------------------------------------------- geometry
def resample_labels(source_sphere, source_labels, target_sphere, max_gap: float = MAX_SPHERE_GAP) -> np.ndarray:
    """Label of the nearest source vertex on a common sphere (radii need not match).

    Parameters
    ----------
    source_sphere : ndarray, shape (n_source, 3)
        fsaverage's sphere.
    source_labels : ndarray, shape (n_source,)
    target_sphere : ndarray, shape (n_target, 3)
        The subject's ``sphere.reg``, registered to fsaverage.
    max_gap : float
        Largest median distance (on the unit sphere) from a target vertex to its nearest
        source vertex; more means the spheres are not registered to each other.

    Returns
    -------
    labels : ndarray, shape (n_target,)
    """
    from scipy.spatial import cKDTree

    if len(source_labels) != len(source_sphere):
        raise ValueError(f"{len(source_labels)} atlas labels for {len(source_sphere)} sphere vertices: the "
                         "annotation is not on this fsaverage mesh (full fsaverage has 163842 per hemisphere).")
    source, target = (np.asarray(s, float) / np.linalg.norm(s, axis=1, keepdims=True)
                      for s in (source_sphere, target_sphere))
    gap, nearest = cKDTree(source).query(target)
    if np.median(gap) > max_gap:
        raise ValueError(f"The subject's sphere lies {np.median(gap):.3f} (median, unit sphere) from fsaverage's: "
                         "use the subject's ?h.sphere.reg (registered to fsaverage) and fsaverage's sphere.")
    return np.asarray(source_labels)[nearest]


def line_nearest_matrix(white, pial, coord, shape, n_samples: int = N_SAMPLES):
    """Vertex x voxel weights: the share of each vertex's white -> pial segment in each voxel.

    Parameters
    ----------
    white, pial : ndarray, shape (n_vertices, 3)
        Surface coordinates (mm) of the same vertices.
    coord : ndarray, shape (4, 4)
        Surface mm -> voxel coordinates (x, y, z) (:func:`~bt_tutorial.dataset.roi_files.read_coord_xfm`).
    shape : tuple of int
        Volume shape (x, y, z), as nibabel reads it.
    n_samples : int
        Points on each segment, ends excluded; each weighs ``1 / n_samples``.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix, shape (n_vertices, x * y * z)
        Columns are flat indices of the (z, y, x) volume (``mask.T.ravel()``); points
        outside the volume are dropped.
    """
    from scipy import sparse

    white, pial = np.asarray(white, float), np.asarray(pial, float)
    nx, ny, nz = shape
    matrix = sparse.csr_matrix((len(white), nx * ny * nz))
    for t in np.linspace(0, 1, n_samples + 2)[1:-1]:
        points = white * (1 - t) + pial * t
        voxel = np.floor(points @ coord[:3, :3].T + coord[:3, 3] + 0.5).astype(np.int64)  # half up
        inside = np.all((voxel >= 0) & (voxel < (nx, ny, nz)), axis=1)
        x, y, z = voxel[inside].T
        flat = (z * ny + y) * nx + x
        matrix = matrix + sparse.csr_matrix((np.full(flat.size, 1 / n_samples), (np.flatnonzero(inside), flat)),
                                            shape=matrix.shape)
    return matrix


# ------------------------------------------------------------------------ build
def build_masks(paths: dict, root, subject: str, out, rule: str = "majority", n_samples: int = N_SAMPLES,
                metadata: dict | None = None) -> tuple:  # fmt: skip
    """Compute the masks from the inputs of :func:`fetch_inputs` and write them to ``out``.

    Returns
    -------
    out : Path
    rois : dict of str -> ndarray of int
        Voxel indices of each ROI set and area, also per hemisphere.
    """
    import nibabel as nib

    columns = LebelDataset(root).voxel_columns(subject)
    shape = nib.load(str(paths["mask"])).shape[:3]
    coord = read_coord_xfm(paths["xfm"])
    vertex_areas, mappers, known = [], [], set()
    for h, side in FREESURFER_HEMIS:
        areas, names = read_annot_areas(paths[f"annot_{h}"], side)
        known |= names
        areas = resample_labels(read_surface(paths[f"fsaverage_{h}"]), areas, read_surface(paths[f"sphere_{h}"]))
        white, pial = read_surface(paths[f"wm_{h}"]), read_surface(paths[f"pia_{h}"])
        if not len(areas) == len(white) == len(pial):
            raise ValueError(f"{paths[f'sphere_{h}']} has {len(areas)} vertices but the pycortex surfaces "
                             f"{paths[f'wm_{h}'].name} / {paths[f'pia_{h}'].name} have {len(white)} / {len(pial)}: "
                             "they come from another FreeSurfer reconstruction. Use the subject's own files.")
        vertex_areas.append(areas)
        mappers.append(line_nearest_matrix(white, pial, coord, shape, n_samples))
    atlas.check_roi_names(known, source=f"{paths['annot_lh'].name} / {paths['annot_rh'].name}")
    mapping = atlas.voxel_vertex_matrix(*mappers, columns)
    voxel_areas, hemi = atlas.assign_voxels(mapping, np.concatenate(vertex_areas), len(vertex_areas[0]), rule)
    rois = atlas.roi_sets_from_labels(voxel_areas, hemi, known_areas=known)
    info = dict(route="fsaverage annot -> subject sphere.reg -> line_nearest", rule=rule, n_samples=n_samples,
                module="bt_tutorial.dataset.roi_build", **(metadata or {}))
    return atlas.save_roi_masks(out, rois, columns.size, subject, hemi, metadata=info), rois


def summary(rois: dict, n_voxels: int) -> str:
    """Voxel counts of the paper's ROI sets, both hemispheres and each."""
    lines = [f"{n_voxels} voxels; per ROI set (left / right):"]
    lines += [f"  {n:<18} {rois[n].size:>6}  ({rois[n + '_L'].size} / {rois[n + '_R'].size})"
              for n in PAPER_ROI_SETS]
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(prog="python -m bt_tutorial.dataset.roi_build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--subject", required=True, help="UTS01 to UTS08")
    add("--data", type=Path, required=True, metavar="DIR", help="ds003020 root (inputs are downloaded under it)")
    add("--base-url", default=dataset_url(),
        help=f"URL of the ds003020 root (default: $BT_DATASET_URL or {DEFAULT_BASE_URL})")
    add("--atlas-url", help="a folder URL serving the 4 atlas files under their names (default: their sources)")
    add("--out", type=Path, metavar="FILE", help="output (default: <data>/derivative/roi_masks/<subject>.npz)")
    add("--rule", choices=atlas.ASSIGN_RULES, default="majority",
        help="voxel label: largest summed weight (majority) or heaviest vertex (max_weight)")
    add("--samples", type=_positive_int, default=N_SAMPLES, help=f"points per white -> pial segment (default {N_SAMPLES})")
    add("--force", action="store_true", help="rebuild an existing output")
    add("--dry-run", action="store_true", help="print the inputs with sizes and sources; download nothing")
    add("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit code (0 on success, 2 with a one-line message on bad input)."""
    args = parse_args(argv)
    # DatasetError and RoiFileError are ValueErrors
    return run_command(lambda: build_from_args(args), (OSError, ValueError, DownloadError))


def build_from_args(args) -> int:
    """Download the inputs and build the masks as ``args`` say (nothing when they are built)."""
    root = args.data.expanduser()
    out = args.out or atlas.default_roi_path(root, args.subject)
    if out.exists() and not (args.force or args.dry_run):
        print(f"ROI masks already built: {out} (pass --force to rebuild them).")
        return 0
    found = derivative_dir(root) if root.is_dir() else None
    derivative = found.name if found else "derivative"
    sources = plan_sources(args.subject, args.base_url, args.atlas_url, derivative,
                           surface_suffix(args.subject, root, derivative))
    paths = fetch_inputs(sources, root, args.dry_run, progress=not args.quiet)
    if args.dry_run:
        return 0
    print(f"Building the ROI masks of {args.subject}...")
    out, rois = build_masks(paths, root, args.subject, out, args.rule, args.samples,
                            {"sources": {n: s.url for n, s in sources.items() if n.startswith(("annot", "fs"))}})
    print(summary(rois, atlas.read_roi_info(out)["n_voxels"]))
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
