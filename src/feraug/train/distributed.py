"""Data-parallel training over several processes: one per GPU, or CPU processes talking over gloo.

Launch any ``feraug train`` command under ``torchrun --nproc_per_node N -m feraug ...``; the
trainer reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Every process
builds the same model from the same seed, takes its slice of each global batch, and before every
optimizer step the gradients are averaged over the processes (one all-reduce of one flat buffer
per optimizer). With per-sample norms (instance norm, CycleGAN's default) and mean losses this is
the same update as one process on the whole batch, up to floating-point summation order; batch
norm would see per-process statistics. Rank 0 alone writes logs, samples and checkpoints.

Why not ``DistributedDataParallel``: a GAN step freezes and unfreezes networks between its
phases and calls several optimizers, which DDP's parameter hooks handle only with
``find_unused_parameters`` and extra care; averaging gradients in an optimizer pre-step hook works
for every model family unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a data-parallel run (``world == 1``: a plain single-process run)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files."""
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun described, if any; returns where this process runs.

    Under torchrun on CUDA each process takes GPU ``LOCAL_RANK`` and NCCL; on CPU (or ``--device
    cpu``) gloo. Without torchrun's environment this is a no-op.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"process {info.rank} wants GPU {info.local_rank} but only "
                               f"{torch.cuda.device_count()} are visible; use --nproc_per_node <= GPUs")  # fmt: skip
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"multi-process training supports CUDA and CPU, not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def shard(batch_size: int, info: DistInfo) -> slice:
    """This process's slice of a global batch; the batch must split evenly."""
    if batch_size % info.world:
        raise ValueError(f"optim.batch_size={batch_size} does not split over {info.world} processes: "
                         f"use a multiple of {info.world}")  # fmt: skip
    per = batch_size // info.world
    return slice(info.rank * per, (info.rank + 1) * per)


def _grads(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]


def average_gradients(optimizer: torch.optim.Optimizer, world: int) -> None:
    """Replace every gradient the optimizer will use by its mean over the processes."""
    grads = _grads(optimizer)
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    torch._foreach_copy_(grads, [v.view_as(g) for v, g in zip(flat.split([g.numel() for g in grads]), grads,
                                                                  strict=True)])  # fmt: skip


def sync_optimizers(optimizers: dict[str, torch.optim.Optimizer], info: DistInfo) -> None:
    """Average gradients across processes right before each optimizer step (no-op in one process)."""
    if info.world == 1:
        return
    for opt in optimizers.values():
        opt.register_step_pre_hook(lambda o, _args, _kwargs: average_gradients(o, info.world))


def broadcast_parameters(modules: dict[str, torch.nn.Module], info: DistInfo) -> None:
    """Start every process from rank 0's weights (they are seeded alike; this makes it a guarantee)."""
    if info.world == 1:
        return
    for module in modules.values():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def all_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``values`` over the processes."""
    if info.world == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / info.world


def any_true(flag: torch.Tensor, info: DistInfo) -> bool:
    """Whether ``flag`` is set in any process (so that all of them stop together)."""
    if info.world == 1:
        return bool(flag)
    f = flag.to(torch.int32).clone()
    dist.all_reduce(f, op=dist.ReduceOp.MAX)
    return bool(f)


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's ``obj``, in rank order (e.g. the per-process image pools for a checkpoint)."""
    if info.world == 1:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every process (e.g. until rank 0 has written a checkpoint the others will read)."""
    if info.world > 1:
        dist.barrier()
