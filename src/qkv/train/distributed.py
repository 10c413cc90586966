"""Data-parallel training with ``torchrun``: the same script, one process per device.

    torchrun --nproc_per_node=2 train.py      # gloo on CPU, NCCL on CUDA

Every rank builds the same model from the same seed and iterates the same *global* batches;
each takes a disjoint slice of the rows of every batch (:func:`shard`). DDP (Li et al., 2020)
averages the gradients over ranks during backward, so with the loss scaled as the trainer
does (token sum × world size / global token count) the update equals the single-process update
on the whole global batch. Only rank 0 writes checkpoints, metrics and the progress bar.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launched_rank() -> int:
    """This process's rank as torchrun announced it (0 alone), readable before the group exists."""
    return int(os.environ.get("RANK", "0"))


def setup(device_type: str) -> Dist:
    """Join the process group ``torchrun`` described in the environment (idempotent)."""
    if not launched_by_torchrun():
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def device_for(info: Dist, device_type: str) -> torch.device:
    return torch.device("cuda", info.local_rank) if device_type == "cuda" else torch.device("cpu")


def shard(batch: dict[str, Any], info: Dist) -> dict[str, Any]:
    """This rank's rows of a global batch: contiguous, disjoint, covering every row once.

    Every tensor is split along dim 0 (``tensor_split`` gives near-equal parts when the batch
    does not divide evenly); non-tensor entries are passed through unchanged. A global batch
    needs at least ``world_size`` rows, or some rank gets none.
    """
    if not info.enabled:
        return batch
    return {k: v.tensor_split(info.world_size, dim=0)[info.rank] if isinstance(v, Tensor) else v
            for k, v in batch.items()}


def all_reduce_sum(x: Tensor, info: Dist) -> Tensor:
    """The sum over ranks (in place); identity in a single process."""
    if info.enabled:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def all_reduce_max(x: Tensor, info: Dist) -> Tensor:
    """The maximum over ranks (in place): how ranks agree, e.g. to stop together."""
    if info.enabled:
        dist.all_reduce(x, op=dist.ReduceOp.MAX)
    return x


def gather_objects(obj: Any, info: Dist) -> list[Any]:
    """Every rank's ``obj``, in rank order (e.g. each rank's RNG state for the checkpoint)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


class _ForwardBatch(nn.Module):
    """Routes ``forward`` to ``model.forward_batch``: DDP only syncs gradients for calls that go
    through its own ``forward``, so the model's batch entry point must be reached that way."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> Tensor:
        return self.model.forward_batch(batch)


def wrap(model: nn.Module, info: Dist) -> nn.Module | None:
    """DDP around ``model``, called as ``ddp(batch)`` = ``model.forward_batch(batch)`` with
    gradient averaging; None in a single process (call ``model.forward_batch`` directly)."""
    if not info.enabled:
        return None
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.local_rank] if next(model.parameters()).is_cuda else None
    return DistributedDataParallel(_ForwardBatch(model), device_ids=device_ids)


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["Dist", "setup", "shard", "all_reduce_sum", "all_reduce_max", "gather_objects", "wrap", "barrier",
           "teardown", "device_for", "launched_by_torchrun"]
