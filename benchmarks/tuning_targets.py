"""Where brain-tuning's targets lie on the twin, and how semantic they are (chapter 5's specificity).

    PYTHONPATH=. .venv/bin/python benchmarks/tuning_targets.py [--subjects UTS01 UTS02 UTS03]

The demo tunes on every voxel whose noise ceiling (CC_max on the test story's repeats) is
above the tuning threshold. For each subject this counts those voxels per ROI of the twin
and reads the semantic share the twin planted in them (``semantic_fraction`` of its ground
truth): how much of the loss is semantic signal, and how much low-level.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bt_tutorial.alignment.noise_ceiling import cc_max, select_voxels
from bt_tutorial.brain_tuning.settings import profile_tuning_config
from bt_tutorial.profiles import open_dataset
from bt_tutorial.synthetic.truth import load_ground_truth


def targets_by_roi(dataset, subject: str, threshold: float) -> dict:
    """Tuning targets of one subject per twin ROI, with the planted semantic share.

    Returns
    -------
    summary : dict
        ``"n_targets"``, ``"semantic_share"`` (mean planted share over the targets) and
        ``"rois"``: per ROI name, ``n_voxels``, ``n_targets``, ``share_of_targets`` and
        ``semantic_share`` (mean over the ROI's voxels).
    """
    targets = select_voxels(cc_max(dataset.load_repeats(subject, dataset.split(subject)["test"])), threshold)
    truth = load_ground_truth(dataset.root, subject)
    roi, share = np.asarray(truth["roi"]), np.asarray(truth["semantic_fraction"], float)
    chosen = np.zeros(len(roi), bool)
    chosen[targets] = True
    rois = {}
    for i, name in enumerate(truth["roi_names"]):
        inside = roi == i
        if inside.any():
            rois[str(name)] = {"n_voxels": int(inside.sum()), "n_targets": int((inside & chosen).sum()),
                               "share_of_targets": float((inside & chosen).sum() / max(len(targets), 1)),
                               "semantic_share": float(share[inside].mean())}
    return {"n_targets": int(len(targets)), "semantic_share": float(share[chosen].mean()) if len(targets) else
            float("nan"), "rois": rois}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", nargs="+", default=["UTS01", "UTS02", "UTS03"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tuning_targets.json"))
    args = parser.parse_args(argv)
    dataset = open_dataset()
    threshold = profile_tuning_config("demo").ceiling_threshold
    out = {s: targets_by_roi(dataset, s, threshold) for s in args.subjects}
    for subject, summary in out.items():
        print(f"{subject}: {summary['n_targets']} targets, mean planted semantic share "
              f"{summary['semantic_share']:.2f}")
        for name, row in summary["rois"].items():
            print(f"  {name:6s} {row['n_targets']:5d} of {row['n_voxels']:5d} voxels "
                  f"({row['share_of_targets']:.0%} of the targets), semantic share {row['semantic_share']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threshold": threshold, "subjects": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
