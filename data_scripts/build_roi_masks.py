"""Build the Glasser HCP-MMP1 ROI masks of one ds003020 subject, once.

Writes ``<data>/derivative/roi_masks/<subject>.npz``: the voxel indices (columns of the
subject's responses) of the paper's ROI sets and of each of their Glasser areas, also per
hemisphere. The book reads it with numpy only (``bt_tutorial.atlas.load_roi_masks``).

Steps: the atlas label of each fsaverage vertex (``--lh-annot``/``--rh-annot``) goes to
the nearest vertex of the subject's registered sphere (FreeSurfer ``sphere.reg``), then
to the voxels of the cortical mask through a pycortex mapper (``line_nearest`` by
default); each voxel takes the label with the largest summed vertex weight.

Inputs (``--dry-run`` lists them and whether they exist):
  * the atlas on fsaverage: lh/rh.HCP-MMP1.annot (e.g. figshare, "HCP-MMP1.0 projected
    on fsaverage"); with ``--annot-space subject``, annotations already on the subject;
  * fsaverage's sphere: ``fsaverage/surf/?h.sphere.reg`` of FreeSurfer ($SUBJECTS_DIR or
    $FREESURFER_HOME/subjects), or the ``sphere_left/right`` GIFTI files of nilearn's
    ``fetch_surf_fsaverage("fsaverage")``, given with ``--fsaverage-sphere LH RH``;
  * the subject's sphere: ``derivative/freesurfer_subjdir/<subject>/surf/?h.sphere.reg``;
  * the pycortex database: ``derivative/pycortex-db/<subject>/`` with
    ``transforms/<subject>_auto/mask_thick.nii.gz``.

Needs pycortex (``pip install pycortex``), used as a library on the dataset's pycortex-db:
the script points ``cortex.database`` at ``<data>/derivative/pycortex-db`` for this run
(your pycortex options.cfg is left alone). The first run caches the mapper inside the
pycortex-db (a few minutes).

The pycortex calls (``cortex.get_mapper(subject, xfm, "line_nearest").masks`` on the
dataset's pycortex-db) follow pycortex's documented API but have not been run against
the real ds003020 files by this project's tests, which use a stand-in for pycortex.

Example::

    python data_scripts/build_roi_masks.py --data ~/data/ds003020 --subject UTS01 \\
        --lh-annot lh.HCP-MMP1.annot --rh-annot rh.HCP-MMP1.annot --dry-run
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

try:
    from bt_tutorial import atlas
except ImportError:  # Run from a checkout without installing the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bt_tutorial import atlas
from bt_tutorial.data import LebelDataset
from bt_tutorial.rois import PAPER_ROI_SETS

PYCORTEX_HELP = (
    "pycortex is needed to map surface labels to voxels: `pip install pycortex`. It reads the "
    "dataset's pycortex database (<data>/derivative/pycortex-db, which this script sets as "
    "cortex.database's filestore for the run). The book itself does not need pycortex."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data", type=Path, required=True, metavar="DIR", help="ds003020 root (holds derivative/)")
    add("--subject", required=True, help="subject, e.g. UTS01")
    add("--lh-annot", type=Path, required=True, metavar="FILE", help="left-hemisphere atlas .annot")
    add("--rh-annot", type=Path, required=True, metavar="FILE", help="right-hemisphere atlas .annot")
    add("--annot-space", choices=("fsaverage", "subject"), default="fsaverage",
        help="mesh of the annotations (default: fsaverage, resampled through the spheres)")
    add("--fsaverage-sphere", type=Path, nargs=2, metavar=("LH", "RH"),
        help="fsaverage's lh/rh sphere (default: the first fsaverage/surf/?h.sphere.reg found)")
    add("--subject-sphere", type=Path, nargs=2, metavar=("LH", "RH"),
        help="the subject's lh/rh sphere.reg (default: derivative/freesurfer_subjdir/<subject>/surf)")
    add("--xfm", help="pycortex transform (default: <subject>_auto)")
    add("--mapper", default="line_nearest", help="pycortex mapper type (default: line_nearest)")
    add("--rule", choices=atlas.ASSIGN_RULES, default="majority",
        help="voxel label: largest summed weight (majority) or heaviest vertex (max_weight)")
    add("--out", type=Path, metavar="FILE",
        help="output (default: <data>/derivative/roi_masks/<subject>.npz)")
    add("--force", action="store_true", help="overwrite an existing output")
    add("--dry-run", action="store_true", help="list what would be read and written; compute nothing")
    args = parser.parse_args(argv)
    args.data = args.data.expanduser()
    args.xfm = args.xfm or f"{args.subject}_auto"
    args.out = args.out or atlas.default_roi_path(args.data, args.subject)
    return args


# ------------------------------------------------------------------------ inputs
def fsaverage_sphere_default(data: Path) -> tuple:
    """``?h.sphere.reg`` of the first fsaverage found in the dataset, $SUBJECTS_DIR, $FREESURFER_HOME."""
    candidates = [data / "derivative" / "freesurfer_subjdir" / "fsaverage"]
    candidates += [Path(os.environ[v]) / sub / "fsaverage" for v, sub in
                   (("SUBJECTS_DIR", ""), ("FREESURFER_HOME", "subjects")) if os.environ.get(v)]
    spheres = [(c / "surf" / "lh.sphere.reg", c / "surf" / "rh.sphere.reg") for c in candidates]
    return next((s for s in spheres if s[0].is_file() and s[1].is_file()), spheres[0])


def plan_inputs(args: argparse.Namespace) -> list:
    """What the build reads, as ``(description, path)`` pairs."""
    deriv = args.data / "derivative"
    db = deriv / "pycortex-db" / args.subject
    plan = [("left annotation", args.lh_annot), ("right annotation", args.rh_annot)]
    if args.annot_space == "fsaverage":
        fs_lh, fs_rh = args.fsaverage_sphere or fsaverage_sphere_default(args.data)
        surf = deriv / "freesurfer_subjdir" / args.subject / "surf"
        sub_lh, sub_rh = args.subject_sphere or (surf / "lh.sphere.reg", surf / "rh.sphere.reg")
        plan += [("fsaverage left sphere", fs_lh), ("fsaverage right sphere", fs_rh),
                 ("subject left sphere", sub_lh), ("subject right sphere", sub_rh)]
    plan += [("pycortex surfaces", db / "surfaces"),
             ("pycortex transform", db / "transforms" / args.xfm / "matrices.xfm"),
             ("pycortex reference volume", db / "transforms" / args.xfm / "reference.nii.gz"),
             # the mask that defines the response columns, as LebelDataset.mask_path
             ("cortical mask", db / "transforms" / f"{args.subject}_auto" / "mask_thick.nii.gz")]
    return plan


def format_plan(plan: list, out: Path) -> str:
    """One line per input with ``ok`` or ``MISSING``, then the output."""
    lines = [f"  {'ok' if Path(p).exists() else 'MISSING':>7}  {what}: {p}" for what, p in plan]
    state = "exists, kept unless --force" if out.exists() else "new"
    return "\n".join(["Reads:", *lines, "Writes:", f"  {'':>7}  ROI masks: {out} ({state})"])


def import_pycortex():
    """The ``cortex`` module, or RuntimeError saying how to install it."""
    try:
        import cortex
    except ImportError as exc:
        raise RuntimeError(PYCORTEX_HELP) from exc
    return cortex


def use_filestore(cortex, store: Path) -> None:
    """Point pycortex's database at ``store`` for this process only (options.cfg is left alone).

    pycortex modules share one ``Database`` instance (``cortex.db``, imported by name in
    several modules), so it is changed in place rather than replaced.
    """
    cortex.database.default_filestore = str(store)
    cortex.database.db.filestore = str(store)
    if hasattr(cortex.database.db, "_subjects"):
        cortex.database.db._subjects = None  # the subject list is read lazily from the filestore


# ------------------------------------------------------------------------ surfaces
def read_annot_areas(path, hemi: str) -> tuple:
    """Area of each vertex of an ``.annot`` file and all areas its colour table names.

    Parameters
    ----------
    path : str or Path
    hemi : {"L", "R"}
        Hemisphere of the file; labels of the other one are an error.

    Returns
    -------
    areas : ndarray of str, shape (n_vertices,)
        Hemisphere stripped (``"A1"``); ``""`` where unlabeled.
    names : set of str
        Areas of the atlas.
    """
    from nibabel.freesurfer import read_annot

    labels, _, names = read_annot(str(path))
    parsed = [atlas.parse_glasser_name(n) for n in names]
    wrong = sorted({area for area, h in parsed if area and h not in (None, hemi)})
    if wrong:
        raise ValueError(f"{path} holds labels of the other hemisphere ({wrong[:5]}); pass the lh "
                         "file as --lh-annot and the rh file as --rh-annot.")
    table = np.array([area or "" for area, _ in parsed] + [""])  # vertex label -1 -> ""
    return table[np.where(labels < 0, len(parsed), labels)], set(table) - {""}


def read_sphere(path) -> np.ndarray:
    """Vertex coordinates, shape (n_vertices, 3), of a FreeSurfer surface or a ``.gii``."""
    import nibabel as nib
    from nibabel.freesurfer import read_geometry

    if str(path).endswith(".gii"):
        return np.asarray(nib.load(str(path)).darrays[0].data, dtype=np.float64)
    return np.asarray(read_geometry(str(path))[0], dtype=np.float64)


def resample_labels(source_sphere, source_labels, target_sphere) -> np.ndarray:
    """Label of the nearest source vertex on a common sphere (radii need not match).

    Parameters
    ----------
    source_sphere : ndarray, shape (n_source, 3)
        fsaverage's sphere.
    source_labels : ndarray, shape (n_source,)
    target_sphere : ndarray, shape (n_target, 3)
        The subject's ``sphere.reg``, registered to fsaverage.

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
    return np.asarray(source_labels)[cKDTree(source).query(target)[1]]


def subject_vertex_areas(args: argparse.Namespace, plan: dict) -> tuple:
    """Area of each subject vertex (left then right), the number of left vertices, the atlas areas."""
    annots = {side: read_annot_areas(plan[f"{side} annotation"], hemi)
              for side, hemi in (("left", "L"), ("right", "R"))}
    known = annots["left"][1] | annots["right"][1]
    atlas.check_roi_names(known, source=f"{args.lh_annot.name} / {args.rh_annot.name}")
    per_hemi = []
    for side, (areas, _) in annots.items():
        if args.annot_space == "fsaverage":
            print(f"Resampling the {side} labels onto {args.subject}'s sphere...")
            areas = resample_labels(read_sphere(plan[f"fsaverage {side} sphere"]), areas,
                                    read_sphere(plan[f"subject {side} sphere"]))
        per_hemi.append(areas)
    return np.concatenate(per_hemi), len(per_hemi[0]), known


# ------------------------------------------------------------------------- build
def load_mapping(cortex, args: argparse.Namespace, n_left: int, n_vertices: int):
    """Voxel x vertex matrix of the subject's response columns, from a pycortex mapper."""
    ds = LebelDataset(args.data)
    columns, mask_size = ds.voxel_columns(args.subject), _mask_size(ds.mask_path(args.subject))
    use_filestore(cortex, args.data / "derivative" / "pycortex-db")
    print(f"Loading the pycortex mapper ({args.mapper}; cached in the pycortex-db after the first run)...")
    left, right = cortex.get_mapper(args.subject, args.xfm, args.mapper).masks
    if (left.shape[0], left.shape[0] + right.shape[0]) != (n_left, n_vertices):
        raise ValueError(
            f"The subject's labels cover {n_left} + {n_vertices - n_left} vertices but the pycortex surfaces "
            f"of {args.subject} have {left.shape[0]} + {right.shape[0]}: the spheres or annotations come "
            "from another FreeSurfer reconstruction than the pycortex-db. Use the subject's own files."
        )
    if left.shape[1] != mask_size:
        raise ValueError(f"The pycortex mapper covers {left.shape[1]} volume voxels but "
                         f"{ds.mask_path(args.subject)} has {mask_size}; check --xfm ({args.xfm}).")
    return atlas.voxel_vertex_matrix(left, right, columns), columns.size


def _mask_size(path: Path) -> int:
    import nibabel as nib

    return int(np.prod(nib.load(str(path)).shape))


def build(args: argparse.Namespace) -> Path:
    """Compute and write the ROI masks; return the output path."""
    cortex = import_pycortex()
    plan = dict(plan_inputs(args))
    missing = [f"{what}: {p}" for what, p in plan.items() if not Path(p).exists()]
    if missing:
        raise FileNotFoundError("Missing inputs (see --help for where to get them):\n  " + "\n  ".join(missing))
    if args.out.exists() and not args.force:
        raise FileExistsError(f"{args.out} exists; pass --force to rebuild it.")
    vertex_areas, n_left, known = subject_vertex_areas(args, plan)
    mapping, n_voxels = load_mapping(cortex, args, n_left, vertex_areas.size)
    voxel_areas, hemi = atlas.assign_voxels(mapping, vertex_areas, n_left, args.rule)
    rois = atlas.roi_sets_from_labels(voxel_areas, hemi, known_areas=known)
    metadata = dict(annotations=[args.lh_annot.name, args.rh_annot.name], annot_space=args.annot_space,
                    xfm=args.xfm, mapper=args.mapper, rule=args.rule, script="data_scripts/build_roi_masks.py")
    out = atlas.save_roi_masks(args.out, rois, n_voxels, args.subject, hemi, metadata=metadata)
    print(summary(rois, n_voxels))
    return out


def summary(rois: dict, n_voxels: int) -> str:
    """Voxel counts of the paper's ROI sets, both hemispheres and each."""
    lines = [f"{n_voxels} voxels; per ROI set (left / right):"]
    lines += [f"  {n:<18} {rois[n].size:>6}  ({rois[n + '_L'].size} / {rois[n + '_R'].size})"
              for n in PAPER_ROI_SETS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the script; return the exit code (0 on success, 2 with a one-line message on an expected error)."""
    args = parse_args(argv)
    if args.dry_run:
        print(format_plan(plan_inputs(args), args.out))
        return 0
    try:
        out = build(args)
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
