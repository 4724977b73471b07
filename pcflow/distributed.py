"""Data-parallel training across processes with torch.distributed (DistributedDataParallel, launched by torchrun).

Inside an initialised process group with more than one rank, `OneFlow.fit` trains data-parallel: every rank passes
its own shard of the training points, the normalisation is computed over all shards, each rank estimates the
Bernstein radius on its own batches, DistributedDataParallel averages the gradients, and the final radius is the
(1 - alpha) quantile over all shards. Every rank ends with the same model; save it from rank 0.

Example (two processes on one machine, one shard each):
    torchrun --nproc_per_node 2 -m pcflow.cli fit scan.ply -o model.pt
"""

from __future__ import annotations

import gc
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .errors import PcflowError


class SingleProcess:
    """The trivial group: one process holding all the data."""

    rank = 0
    world_size = 1

    def sum(self, array: np.ndarray) -> np.ndarray:
        """Elementwise sum of a float64 array over all ranks."""
        return np.asarray(array, dtype=np.float64)

    def min(self, value: int) -> int:
        """Smallest value of an integer over all ranks."""
        return int(value)

    def gather(self, array: np.ndarray) -> np.ndarray:
        """Concatenation of every rank's 1-D array, in rank order."""
        return array

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module to call for training (DistributedDataParallel across ranks)."""
        return module


class DataParallel(SingleProcess):
    """An initialised torch.distributed process group with more than one rank."""

    def __init__(self):
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        backend = dist.get_backend()
        self.device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")

    def sum(self, array: np.ndarray) -> np.ndarray:
        tensor = torch.as_tensor(np.asarray(array, dtype=np.float64), device=self.device).clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().numpy()

    def min(self, value: int) -> int:
        tensor = torch.tensor([int(value)], dtype=torch.int64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

    def gather(self, array: np.ndarray) -> np.ndarray:
        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, np.asarray(array))
        return np.concatenate(parts)

    def wrap(self, module: nn.Module) -> nn.Module:
        device = next(module.parameters()).device
        device_ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def group() -> SingleProcess:
    """The process group `OneFlow.fit` trains across: `DataParallel` inside an initialised multi-rank group."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DataParallel()
    return SingleProcess()


def launched() -> bool:
    """True when this process was started by torchrun (or another launcher) as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "cpu") -> SingleProcess:
    """Joins the process group that torchrun describes in the environment: gloo on CPUs, nccl on GPUs.

    Returns the group; a single process (no launcher) gets `SingleProcess` and nothing is initialised.
    """
    if not launched():
        return SingleProcess()
    if not dist.is_available():
        raise PcflowError("this torch build has no torch.distributed support")
    if not dist.is_initialized():
        use_cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return group()


def shutdown() -> None:
    """Leaves the process group, if one is initialised: call it once per process when training is done.

    DistributedDataParallel wrappers that only reference cycles still hold (a fit cut short by an exception leaves
    some) are collected first, while the group they use is alive, rather than at interpreter exit, after it.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def shard(array: np.ndarray, parallel: SingleProcess) -> np.ndarray:
    """This rank's share of the rows of `array`: rows rank, rank + world_size, ..."""
    return array[parallel.rank::parallel.world_size]
