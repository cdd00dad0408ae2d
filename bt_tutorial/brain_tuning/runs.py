"""A run's output folder: one run at a time, nothing half-written, checkpoints that load no code.

Users resume from shared Drive folders, so a checkpoint is untrusted input: it
holds tensors and plain Python values only and loads with ``weights_only=True``.
Every file an epoch writes goes to a temporary name first and is renamed over
the old one; the checkpoint is written last, so a kill at any moment leaves the
previous epoch's outputs (a backbone folder caught between two renames is put
back at the next start).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"
RUN_FILES = (CHECKPOINT, "history.json", "head.pt", "backbone")
LOCK = ".run.lock"


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked; the message names the folder and the fix."""


@contextmanager
def locked(out: Path):
    """Hold an exclusive lock on ``out`` for the duration of a run.

    Raises
    ------
    RunFolderError
        At once, when another run holds the lock.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    handle = open(path, "a+")
    try:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): the lock file is advisory only
            pass
        except OSError:
            raise RunFolderError(f"{out} is in use by another run (it holds {path}). Wait for that run "
                                 "to finish, or give this one another output folder.") from None
        yield
    finally:
        handle.close()


def prepare_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Sweep temporary files and check that a fresh run may write into ``out``.

    Raises
    ------
    RunFolderError
        When ``out`` holds a run's outputs and neither ``resume`` nor ``overwrite`` is set.
    """
    sweep_temporary(out)
    present = [name for name in RUN_FILES if (out / name).exists()]
    if not present or resume:
        return
    if not overwrite:
        state = "a finished or partial run" if (out / CHECKPOINT).exists() else "a run's outputs"
        raise RunFolderError(f"{out} holds {state} ({', '.join(present)}). Resume it (resume=True, "
                             "--resume), start again with overwrite=True (--overwrite), or choose "
                             "another output folder.")
    for name in present:
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def sweep_temporary(out: Path) -> None:
    """Delete leftovers of an interrupted write; put back a backbone caught between two renames."""
    old, backbone = out / "backbone.old.tmp", out / "backbone"
    if old.is_dir() and not backbone.exists():
        os.replace(old, backbone)
    ours = re.compile("(" + "|".join(map(re.escape, RUN_FILES)) + r")\.(\d+|new|old)\.tmp")
    for path in out.glob("*.tmp"):
        if ours.fullmatch(path.name):  # only what write_atomic and replace_folder leave; never the user's files
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def write_atomic(path: Path, write) -> None:
    """``write(tmp)`` then rename ``tmp`` over ``path``; a failed write leaves no temporary file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise


def replace_folder(path: Path, write) -> None:
    """``write(tmp_folder)``, then swap it in for the folder ``path``."""
    new, old = path.with_name(f"{path.name}.new.tmp"), path.with_name(f"{path.name}.old.tmp")
    shutil.rmtree(new, ignore_errors=True)
    try:
        write(new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if path.exists():
        os.replace(path, old)
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint of tensors and plain values (numpy arrays become tensors)."""
    clean = {k: torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    write_atomic(path, lambda tmp: torch.save(clean, tmp))


CHECKPOINT_KEYS = {"epoch", "history", "model", "optimizer", "scheduler", "rng_cpu", "config", "voxels", "run"}


def load_checkpoint(path: Path, device) -> dict:
    """Load a checkpoint without running code from it.

    Raises
    ------
    RunFolderError
        When the file holds anything but tensors and plain values, or cannot be read.
    """
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # pickle refusals and truncated files alike
        raise RunFolderError(f"Cannot load {path} safely ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
                             "It is not a checkpoint of this version of bt_tutorial, or it is damaged: "
                             "start again with overwrite=True (--overwrite).") from None
    restart = "start again with overwrite=True (--overwrite)."
    missing = sorted(CHECKPOINT_KEYS - set(saved)) if isinstance(saved, dict) else sorted(CHECKPOINT_KEYS)
    if missing:
        raise RunFolderError(f"{path} is not a bt_tutorial checkpoint: it lacks {missing}; " + restart)
    bad = [name for name, t in saved["model"].items() if torch.is_tensor(t) and t.is_floating_point()
           and not torch.isfinite(t).all()]
    if bad:
        raise RunFolderError(f"{path} holds non-finite weights ({bad[:3]}{'...' if len(bad) > 3 else ''}): "
                             "the file is damaged; " + restart)
    return saved


def data_digest(voxels: np.ndarray, targets: list, windows: list) -> str:
    """A short hash of what a run trains on: voxels, target values and window shapes."""
    h = hashlib.sha256(np.ascontiguousarray(voxels, np.int64).tobytes())
    for t, w in zip(targets, windows):
        h.update(np.ascontiguousarray(t, np.float32).tobytes())
        h.update(json.dumps(list(np.shape(w))).encode())
    return h.hexdigest()[:16]


def resume_differences(saved: dict, now: dict) -> list:
    """``"key: checkpoint X, now Y"`` for every setting or run fact that differs."""
    diffs = [f"{k}: checkpoint {saved['config'].get(k)!r}, now {v!r}"
             for k, v in now["config"].items() if saved["config"].get(k) != v]
    for key in ("model", "fingerprint", "subject", "data"):
        if saved.get("run", {}).get(key) != now["run"].get(key):
            diffs.append(f"{key}: checkpoint {saved.get('run', {}).get(key)!r}, now {now['run'].get(key)!r}")
    return diffs
