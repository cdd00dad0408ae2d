"""One process or several: what the training loop needs from Hugging Face ``accelerate``.

A plain ``python`` run is one process and trains exactly as before. Under
``accelerate launch --num_processes N`` (several GPUs, or CPU processes with
``--cpu``) every process takes its share of each optimizer step's samples, the
model is wrapped in DistributedDataParallel (no DataParallel), losses are summed
across processes and only the main process writes files.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import numpy as np
import torch

from bt_tutorial.alignment.models import pick_device


def launched_processes() -> int:
    """Number of processes of this run (``WORLD_SIZE``, set by ``accelerate launch``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in a plain run and in the first process of a launched one (``RANK`` 0)."""
    return int(os.environ.get("RANK", "0")) == 0


class Processes:
    """The process group of a training run.

    Parameters
    ----------
    device : str or torch.device, optional
        For one process: default CUDA when available. Several processes use the
        device ``accelerate`` gives each (``"cpu"`` forces CPU processes).
    find_unused_parameters : bool
        For DDP: wav2vec2 and HuBERT have a parameter (``masked_spec_embed``)
        that a step without masked time steps leaves unused.

    Attributes
    ----------
    device : torch.device
    rank, world : int
        This process's index and the number of processes.
    """

    def __init__(self, device=None, find_unused_parameters: bool = False):
        self.accelerator = None
        if launched_processes() > 1:
            from accelerate import Accelerator, DistributedDataParallelKwargs

            kwargs = DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)
            self.accelerator = Accelerator(cpu=str(device) == "cpu", kwargs_handlers=[kwargs])
            self.device = self.accelerator.device
            self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        else:
            self.device = torch.device(pick_device(device))
            self.rank, self.world = 0, 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as the training step calls it (DDP-wrapped with several processes)."""
        return self.accelerator.prepare_model(model) if self.accelerator else model

    def share(self, rows: np.ndarray) -> tuple:
        """This process's rows of one optimizer step, and the weight of its loss.

        With several processes DDP averages gradients, so each loss is scaled by
        the number of processes; a process left without rows (a short last
        step) computes one row with weight 0 so that all processes synchronise.
        """
        mine = rows[self.rank::self.world]
        if mine.size == 0:
            return rows[:1], 0.0
        return mine, float(self.world)

    def no_sync(self, model: torch.nn.Module, last: bool):
        """Skip the gradient all-reduce on all but the last micro-batch of a step."""
        if self.accelerator is None or last:
            return nullcontext()
        return self.accelerator.no_sync(model)

    def sum(self, value):
        """Sum of a number, or element-wise of an array, over all processes."""
        if self.accelerator is None:
            return value
        tensor = torch.as_tensor(np.atleast_1d(value), dtype=torch.float64, device=self.device)
        total = self.accelerator.reduce(tensor, "sum").cpu().numpy()
        return float(total[0]) if np.ndim(value) == 0 else total

    def wait(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()
