"""A run's output folder: one run at a time, nothing half-written, checkpoints that load no code.

Users resume from shared Drive folders, so a checkpoint is untrusted input: it
holds tensors and plain Python values only and loads with ``weights_only=True``.
Every file an epoch writes goes to a temporary name first and is renamed over
the old one; the checkpoint is written last, so a kill at any moment leaves the
previous epoch's outputs (a backbone folder caught between two renames is put
back at the next start). The last two checkpoints are kept (``checkpoint.pt`` and
``checkpoint.previous.pt``, at ends of epochs or within one): a damaged latest one
falls back to the one before, with a warning.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from bt_tutorial._stack import warn_at_caller

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.previous.pt"
RUN_FILES = (CHECKPOINT, PREVIOUS, "history.json", "head.pt", "backbone")
NOT_COMPARED = {"checkpoint_every_steps"}  # settings that do not change the weights
LOCK = ".run.lock"


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked; the message names the folder and the fix."""


@contextmanager
def locked(out: Path):
    """Hold an exclusive lock on ``out`` (a :class:`filelock.FileLock` on ``out/LOCK``) during a run.

    Raises
    ------
    RunFolderError
        At once, when another run holds the lock.
    """
    from filelock import FileLock, Timeout

    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunFolderError(f"{out} is in use by another run (it holds {out / LOCK}). Wait for that run "
                             "to finish, or give this one another output folder.") from None
    try:
        yield
    finally:
        lock.release()


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


def write_atomic(path: Path, write, needed: int | None = None) -> None:
    """``write(tmp)`` then rename ``tmp`` over ``path``; a failed write leaves no temporary file.

    Parameters
    ----------
    path : Path
    write : callable (Path) -> None
    needed : int, optional
        Bytes the file takes, said in the error when the disk is full.

    Raises
    ------
    OSError
        ``errno.ENOSPC``, naming ``path`` and the space it needs, when the disk is full.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise _disk_full(path, needed) from exc
        raise


def _disk_full(path: Path, needed: int | None) -> OSError:
    size = f"about {needed / 1e6:,.1f} MB" if needed else "more space"
    try:
        free = f" ({shutil.disk_usage(path.parent).free / 1e6:,.0f} MB free now)"
    except OSError:
        free = ""
    err = OSError(f"Cannot write {path}: the disk is full. It needs {size}{free}; the previous "
                  f"file is kept. Free space on that disk or use an output folder on another one, then "
                  "rerun with --resume (resume=True).")
    err.errno = errno.ENOSPC
    return err


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


def save_checkpoint(path: Path, state: dict, keep_previous: bool = True) -> None:
    """Write a checkpoint of tensors and plain values (numpy arrays become tensors).

    The new file is written in full under a temporary name; then the current ``path``
    becomes ``checkpoint.previous.pt`` (unless ``keep_previous`` is False: after
    falling back from a damaged ``path``, the good previous one stays) and the new
    file takes its place.

    Raises
    ------
    OSError
        When the disk is full: naming the file and the space it needs.
    """
    clean = {k: torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v for k, v in state.items()}

    def write(tmp):
        torch.save(clean, tmp)
        if keep_previous and path.is_file():
            os.replace(path, path.with_name(PREVIOUS))

    write_atomic(path, write, needed=_tensor_bytes(clean))


def _tensor_bytes(value) -> int:
    """Bytes of the tensors in a nest of dicts, lists and tuples."""
    if torch.is_tensor(value):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        value = list(value.values())
    return sum(map(_tensor_bytes, value)) if isinstance(value, (list, tuple)) else 0


CHECKPOINT_KEYS = {"epoch", "history", "model", "optimizer", "scheduler", "rng_cpu", "config", "voxels", "run"}


def load_latest(out: Path, device, warn: bool = True) -> tuple:
    """The newest checkpoint in ``out`` that loads: ``checkpoint.pt``, else the previous one.

    Returns
    -------
    saved : dict or None
        None when ``out`` holds no checkpoint.
    path : Path or None
        The file it came from.
    fell_back : bool
        True when ``checkpoint.pt`` is there but damaged (a ``RuntimeWarning`` names both files).

    Raises
    ------
    RunFolderError
        When no checkpoint there loads (naming each and why).
    """
    latest, previous = out / CHECKPOINT, out / PREVIOUS
    if not latest.is_file():  # killed between the two renames of save_checkpoint
        return (load_checkpoint(previous, device), previous, False) if previous.is_file() else (None, None, False)
    try:
        return load_checkpoint(latest, device), latest, False
    except RunFolderError as err:
        if not previous.is_file():
            raise
        try:
            saved = load_checkpoint(previous, device)
        except RunFolderError as second:
            raise RunFolderError(f"Both checkpoints in {out} are damaged: {_what(err)}; {_what(second)}. Start "
                                 "again with overwrite=True (--overwrite).") from None
        if warn:
            step = (saved.get("progress") or {}).get("step", 0)
            where = f"epoch {saved['epoch'] + 1}, step {step}" if step else f"the end of epoch {saved['epoch']}"
            warn_run("The latest checkpoint is damaged.", f"{_what(err)}; resuming from the previous "
                     f"checkpoint {previous} ({where}) instead.")
        return saved, previous, True


def warn_run(headline: str, detail: str) -> None:
    """A ``RuntimeWarning`` about a run folder: a short headline, then ``detail`` wrapped to 80 columns.

    Python prints a warning after the file and line that caused it (the user's call of
    ``brain_tune``, however deep the folder is read), so the headline stays short and the
    detail, paths included, goes on lines of its own that fit a code box of the book.
    """
    body = textwrap.fill(detail, 80, break_long_words=False, break_on_hyphens=False)
    warn_at_caller(f"{headline}\n{body}", RuntimeWarning)


def _what(err: RunFolderError) -> str:
    """The part of a :func:`load_checkpoint` error that says what is wrong (not the advice)."""
    return str(err).split(";")[0].split(" It is not")[0].rstrip(". ")


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
        reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")
        raise RunFolderError(f"Cannot load {path} safely ({type(exc).__name__}: {reason}). "
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


def training_state(model, optimizer, scheduler, scaler, device) -> dict:
    """What a checkpoint holds to go on bit for bit: weights, optimizer, schedule, random states.

    numpy's global generator is saved too: wav2vec2 and HuBERT draw their SpecAugment
    masks and LayerDrop from it.
    """
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "rng_numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached": float(cached)}}


def restore_training_state(saved: dict, path: Path, model, optimizer, scheduler, scaler, device) -> None:
    """Put back what :func:`training_state` saved (checkpoints of older versions lack numpy's state).

    Raises
    ------
    RunFolderError
        When the checkpoint's weights or optimizer do not fit this model.
    """
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
    except (RuntimeError, ValueError, KeyError) as exc:  # e.g. a head of another size
        raise RunFolderError(f"{path} does not fit this model ({type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0][:200]}): start again with overwrite=True "
                             "(--overwrite), or use another output folder.") from None
    if scaler is not None and saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["rng_cpu"])
    if device.type == "cuda" and saved.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(saved["rng_cuda"])
    if saved.get("rng_numpy"):
        rng = saved["rng_numpy"]
        np.random.set_state(("MT19937", rng["keys"].cpu().numpy().astype(np.uint32), rng["pos"],
                             rng["has_gauss"], rng["cached"]))


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
             for k, v in now["config"].items() if saved["config"].get(k) != v and k not in NOT_COMPARED]
    for key in ("model", "fingerprint", "subject", "data"):
        if saved.get("run", {}).get(key) != now["run"].get(key):
            diffs.append(f"{key}: checkpoint {saved.get('run', {}).get(key)!r}, now {now['run'].get(key)!r}")
    return diffs
