"""The brain-tuning loop: mixed precision, gradient accumulation, checkpoints, resume.

The run folder's rules (one run at a time, atomic writes, safe checkpoints) live in
:mod:`~bt_tutorial.brain_tuning.runs`.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bt_tutorial.alignment.models import reduced_precision
from bt_tutorial.brain_tuning.distributed import Processes
from bt_tutorial.brain_tuning.model import BrainTunedModel, fit_ridge_head, pooled_outputs
from bt_tutorial.brain_tuning.runs import (
    CHECKPOINT,
    RunFolderError,
    data_digest,
    load_latest,
    locked,
    prepare_folder,
    replace_folder,
    restore_training_state,
    resume_differences,
    save_checkpoint,
    training_state,
    warn_run,
    write_atomic,
)
from bt_tutorial.brain_tuning.samples import TuningData, prepare_tuning_data
from bt_tutorial.brain_tuning.schedule import epoch_batches, lr_schedule, optimizer_steps
from bt_tutorial.brain_tuning.settings import TuningConfig


@dataclass
class TuningResult:
    """Outcome of :func:`brain_tune`.

    Attributes
    ----------
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_r``, ``samples_per_s``.
    best_epoch : int
        Chosen by ``config.select_by`` among the trained epochs.
    backbone_dir : Path
        The best tuned backbone, saved with ``save_pretrained`` (load it with
        ``load_speech_model(str(backbone_dir))``).
    voxels : ndarray of int
    completed : bool
        False when the run stopped early on request (``stop_after_steps``).
    initial : dict
        Validation ``val_loss`` and ``val_r`` before training (the starting head),
        and for a ridge head its ``alpha``.
    """

    history: list
    best_epoch: int
    backbone_dir: Path
    voxels: np.ndarray
    completed: bool = True
    initial: dict = field(default_factory=dict)


def _precision(device: torch.device, enabled: bool = True):
    """Autocast context and gradient scaler for the device; fp32 on the CPU.

    bf16 (no scaler) on GPUs of compute capability >= 8.0; fp16 with a gradient
    scaler below (a T4 emulates bf16 slowly, see
    :func:`~bt_tutorial.alignment.models.reduced_precision`).
    """
    if device.type != "cuda" or not enabled:
        return nullcontext, None
    dtype = reduced_precision(device)
    autocast = lambda: torch.autocast("cuda", dtype=dtype)  # noqa: E731
    return autocast, (None if dtype == torch.bfloat16 else torch.amp.GradScaler("cuda"))


def check_device(device) -> str | None:
    """``device`` unchanged if torch accepts it (None: the default choice).

    Raises
    ------
    ValueError
        Naming the device and the accepted forms, before any data load.
    """
    if device is None:
        return None
    try:
        kind = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {device!r}: use 'cpu', 'cuda', 'cuda:0' or 'mps'.") from None
    if kind.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {device!r} asked for, but this machine has no usable CUDA GPU "
                         "(torch.cuda.is_available() is False): use 'cpu', or leave the device out.")
    if kind.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"Device {device!r} asked for, but MPS is not available here: use 'cpu'.")
    return device


def _check_resume(saved: dict, config: TuningConfig, run: dict, voxels: np.ndarray, path: Path) -> None:
    diffs = resume_differences(saved, {"config": asdict(config), "run": run})
    if not np.array_equal(np.asarray(saved["voxels"]), voxels):
        diffs.append("target voxels differ")
    if diffs:
        raise RunFolderError(f"Cannot resume from {path}: " + "; ".join(diffs)
                             + ". Use another output folder, or start again with overwrite=True (--overwrite).")


def _replace_if_stale(out: Path, config: TuningConfig, run: dict, voxels: np.ndarray) -> None:
    """``resume`` with ``overwrite``: a checkpoint this run cannot resume is replaced, with a warning."""
    try:
        saved, path, _ = load_latest(out, "cpu", warn=False)
        if saved is not None:
            _check_resume(saved, config, run, voxels, path)
    except RunFolderError as err:
        reason = str(err).split(" Use another", 1)[0].split(" It is not", 1)[0]
        warn_run("A stale run is replaced.", f"{reason} overwrite=True: the previous run in {out} is "
                 "deleted and training starts again.")
        prepare_folder(out, resume=False, overwrite=True)


def evaluate(model: BrainTunedModel, data: TuningData, batch_size: int, autocast=nullcontext,
             processes: Processes | None = None) -> dict:
    """Mean squared error and mean correlation over voxels, in eval mode, without gradients.

    With several processes each scores its share of the rows and the sums are added.

    Returns
    -------
    scores : dict
        ``val_loss`` (MSE over rows and voxels) and ``val_r`` (Pearson r of each
        voxel's predicted and measured responses over rows, averaged over voxels).
    """
    model.eval()
    device = next(model.parameters()).device
    n_voxels = data.targets[0].shape[1]
    sums = torch.zeros(6, n_voxels, dtype=torch.float64, device=device)  # sq. error, p, y, pp, yy, py
    rows = np.arange(len(data))
    if processes is not None:
        rows = rows[processes.rank::processes.world]
    with torch.no_grad(), autocast():
        for start in range(0, len(rows), batch_size):
            x, y = data.batch(rows[start:start + batch_size])
            p = model(model.speech_model.prepare(x)).double()
            y = y.to(device).double()
            sums += torch.stack([(p - y) ** 2, p, y, p * p, y * y, p * y]).sum(dim=1)
    sums = sums.cpu().numpy()
    if processes is not None:
        sums = processes.sum(sums)
    n = len(data)
    cov = sums[5] - sums[1] * sums[2] / n
    var_p, var_y = sums[3] - sums[1] ** 2 / n, sums[4] - sums[2] ** 2 / n
    denom = np.sqrt(np.clip(var_p * var_y, 0, None))
    r = np.divide(cov, denom, out=np.zeros(n_voxels), where=denom > 1e-12)
    return {"val_loss": float(sums[0].sum() / (n * n_voxels)), "val_r": float(r.mean())}


def init_ridge_head(model: BrainTunedModel, train: TuningData, val: TuningData, batch_size: int,
                    autocast=nullcontext, progress: bool = False) -> dict:
    """Set the head to the ridge regression of the targets on the pretrained pooled outputs.

    Returns
    -------
    head : dict
        See :func:`~bt_tutorial.brain_tuning.model.fit_ridge_head`.
    """
    x_train = pooled_outputs(model, train, batch_size, autocast, progress)
    x_val = pooled_outputs(model, val, batch_size, autocast, progress)
    head = fit_ridge_head(x_train, train.targets, x_val, np.concatenate(val.targets))
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(head["weight"], dtype=model.head.weight.dtype))
        model.head.bias.copy_(torch.as_tensor(head["bias"], dtype=model.head.bias.dtype))
    return head


def brain_tune(speech_model, dataset, subject: str, out_dir, config: TuningConfig = TuningConfig(),
               resume: bool = False, device=None, progress: bool = True,
               stop_after_steps: int | None = None, overwrite: bool = False) -> TuningResult:
    """Brain-tune ``speech_model`` on one subject, with checkpoints in ``out_dir``.

    A checkpoint is written at the end of every epoch and every
    ``config.checkpoint_every_steps`` optimizer steps within one; the last two are kept.

    Parameters
    ----------
    speech_model : SpeechModel
        Tuned in place (its front end is frozen here).
    dataset : LebelDataset
    subject : str
    out_dir : str or Path
        Checkpoint, history and the best backbone (``out_dir/backbone``).
    config : TuningConfig
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (same settings, model, subject and data
        required), within an epoch if it was saved there, to the same weights as a run
        without a break; when that file is damaged, from ``checkpoint.previous.pt``
        with a ``RuntimeWarning``. A fresh run refuses a folder that holds a run unless
        ``overwrite``. A finished run returns at once.
    device : str or torch.device, optional
        Default: CUDA when available. Under ``accelerate launch`` each process
        uses the device accelerate gives it (``"cpu"`` keeps CPU processes).
    progress : bool
    stop_after_steps : int, optional
        Stop after this many optimizer steps of this call, as a disconnect would
        (the steps since the last checkpoint are lost).
    overwrite : bool
        Delete a previous run's outputs in ``out_dir`` and start again. With ``resume``:
        only when its checkpoint cannot be resumed (other settings, model, subject or
        data, or an older bt_tutorial), with a ``RuntimeWarning`` that says why.

    Returns
    -------
    result : TuningResult

    Raises
    ------
    RunFolderError
        ``out_dir`` is in use, holds a run (without ``resume`` or ``overwrite``), or its
        checkpoint does not match this run.
    FloatingPointError
        The training loss became NaN or infinite (naming the epoch and step).
    """
    check_device(device)
    train, val, voxels = prepare_tuning_data(speech_model, dataset, subject, config)
    return train_model(speech_model, train, val, voxels, out_dir, config, resume, device, progress,
                       stop_after_steps, overwrite=overwrite, subject=subject)


def train_model(speech_model, train: TuningData, val: TuningData, voxels: np.ndarray, out_dir,
                config: TuningConfig = TuningConfig(), resume: bool = False, device=None,
                progress: bool = True, stop_after_steps: int | None = None, overwrite: bool = False,
                subject: str | None = None) -> TuningResult:
    """The training loop of :func:`brain_tune` on prepared data (see there for the parameters).

    Under ``accelerate launch`` with N processes, each optimizer step's
    ``effective_batch`` samples are split between the processes, so the
    effective batch, the schedule and the number of steps stay those of one process.
    """
    processes = Processes(check_device(device), find_unused_parameters=speech_model.family != "whisper")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"The output folder {out} is a file: give a folder.")
    run = {"model": speech_model.name, "fingerprint": speech_model.fingerprint(), "subject": subject,
           "data": data_digest(voxels, train.targets + val.targets, train.windows + val.windows)}
    with locked(out) if processes.is_main else nullcontext():
        if processes.is_main:
            prepare_folder(out, resume, overwrite)
            if resume and overwrite:
                _replace_if_stale(out, config, run, voxels)
        processes.wait()
        return _train(speech_model, train, val, voxels, out, config, resume, processes, progress,
                      stop_after_steps, run)


def _train(speech_model, train, val, voxels, out, config, resume, processes, progress, stop_after_steps,
           run) -> TuningResult:
    device = processes.device
    progress = progress and processes.is_main
    speech_model.freeze_feature_encoder()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)  # wav2vec2 / HuBERT draw SpecAugment masks and LayerDrop from numpy
    model = BrainTunedModel(speech_model, len(voxels), train.window_samples).to(device)
    trainable = [p for p in model.backbone.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam([{"params": trainable, "lr": config.lr_backbone},
                                  {"params": model.head.parameters(), "lr": config.lr_head}])
    sizes = [len(t) for t in train.targets]
    steps_per_epoch = optimizer_steps(sizes, config) // config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(steps_per_epoch, config))
    autocast, scaler = _precision(device, config.mixed_precision)
    state = {"epoch": 0, "history": [], "best_val": -float("inf"), "best_epoch": 0, "initial": {}}
    saved, path, fell_back = load_latest(out, device) if resume else (None, None, False)
    if saved is None:
        if config.head_init == "ridge":
            head = init_ridge_head(model, train, val, config.batch_size, autocast, progress)
            state["initial"]["alpha"] = head["alpha"]
        state["initial"].update(evaluate(model, val, config.batch_size, autocast, processes))
    else:
        _check_resume(saved, config, run, voxels, path)
        restore_training_state(saved, path, model, optimizer, scheduler, scaler, device)
        state = {k: saved.get(k, state[k]) for k in state}
    within = (saved or {}).get("progress") or {}  # a checkpoint saved within an epoch: where it stopped
    facts = {"config": asdict(config), "voxels": voxels, "run": run}

    def snapshot(progress_now):
        return {**state, **training_state(model, optimizer, scheduler, scaler, device), **facts,
                "progress": progress_now}

    net = processes.wrap(model)
    steps_done, keep_previous, every = 0, not fell_back, config.checkpoint_every_steps
    for epoch in range(state["epoch"], config.epochs):
        if config.patience is not None and epoch - state["best_epoch"] >= config.patience and state["history"]:
            break
        batches = epoch_batches(sizes, config, epoch)
        model.train(config.train_mode)  # the authors' trainer leaves the model in eval mode
        first, seen, losses = within.get("step", 0), within.get("seen", 0), list(within.get("losses", []))
        t0, within = time.perf_counter() - within.get("seconds", 0.0), {}
        bar = tqdm(range(first, steps_per_epoch), initial=first, total=steps_per_epoch, disable=not progress,
                   desc=f"epoch {epoch + 1}/{config.epochs}")
        for step in bar:
            rows = batches[step]
            mine, weight = processes.share(rows)
            chunks = np.array_split(mine, math.ceil(len(mine) / config.batch_size))
            loss_sum = 0.0
            for i, chunk in enumerate(chunks):
                x, y = train.batch(chunk)
                with processes.no_sync(net, last=i == len(chunks) - 1):
                    with autocast():
                        pred = net(speech_model.prepare(x)).float()
                        loss = torch.nn.functional.mse_loss(pred, y.to(device)) * (weight * len(chunk) / len(rows))
                    (scaler.scale(loss) if scaler else loss).backward()
                loss_sum += loss.item() / processes.world
            loss_sum = processes.sum(loss_sum)
            if not math.isfinite(loss_sum):
                raise FloatingPointError(
                    f"The training loss is {loss_sum} at epoch {epoch + 1}, step {step + 1}: lower the "
                    "learning rates, or set mixed_precision=False. Outputs of earlier epochs are kept in "
                    f"{out}.")
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            seen += len(rows)
            losses.append(loss_sum)
            steps_done += 1
            bar.set_postfix(loss=f"{loss_sum:.3f}", samples_per_s=f"{seen / (time.perf_counter() - t0):.1f}")
            if every and (epoch * steps_per_epoch + step + 1) % every == 0 and step + 1 < steps_per_epoch:
                if processes.is_main:  # the batches seen so far in this epoch are skipped on resume
                    save_checkpoint(out / CHECKPOINT, snapshot({"step": step + 1, "losses": losses, "seen": seen,
                                                                "seconds": time.perf_counter() - t0}),
                                    keep_previous)
                keep_previous = True
                processes.wait()
            if stop_after_steps is not None and steps_done >= stop_after_steps:
                return TuningResult(state["history"], state["best_epoch"], out / "backbone", voxels, False,
                                    state["initial"])
        scores = evaluate(model, val, config.batch_size, autocast, processes)
        state["history"].append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **scores,
                                 "samples_per_s": seen / (time.perf_counter() - t0)})
        merit = scores["val_r"] if config.select_by == "val_r" else -scores["val_loss"]
        best = merit > state["best_val"]
        if best:
            state["best_val"], state["best_epoch"] = merit, epoch + 1
        state["epoch"] = epoch + 1
        if processes.is_main:
            _write_epoch(out, state, speech_model, model, best, snapshot(None), keep_previous)
        keep_previous = True
        processes.wait()
    return TuningResult(state["history"], state["best_epoch"], out / "backbone", voxels, True, state["initial"])


def _write_epoch(out: Path, state: dict, speech_model, model: BrainTunedModel, best: bool,
                 checkpoint: dict, keep_previous: bool = True) -> None:
    """The best backbone and head (when ``best``), the checkpoint and the history of an epoch."""
    if best:
        replace_folder(out / "backbone", speech_model.save_pretrained)
        write_atomic(out / "head.pt", lambda tmp: torch.save(model.head.state_dict(), tmp))
    write_atomic(out / "history.json", lambda tmp: tmp.write_text(json.dumps(state["history"], indent=1)))
    save_checkpoint(out / CHECKPOINT, checkpoint, keep_previous)  # last: it marks the epoch done
