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

import itertools
import os
import time
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
    owns_group: bool = False  # this process group was started by feraug, which also ends it

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files."""
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun described, if any; returns where this process runs.

    Under torchrun on CUDA each process takes GPU ``LOCAL_RANK`` (or the only visible one, when a
    scheduler gives each process its own GPU) and NCCL; on CPU (``--device cpu``) gloo. Without
    torchrun's environment this is a no-op.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")),
                    owns_group=not dist.is_initialized())  # fmt: skip
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if visible > 1 and info.local_rank >= visible:
            raise RuntimeError(f"process {info.rank} wants GPU {info.local_rank} but only {visible} are visible: "
                               f"start at most {visible} processes per node")  # fmt: skip
        device = torch.device("cuda", info.local_rank if visible > 1 else 0)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"multi-process training runs on CUDA or CPU, not {device.type}: pass --device cpu "
                         "or start a single process")  # fmt: skip
    if info.owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


#: Counts this process's group shutdowns, so that each meets its peers on its own store key.
_SHUTDOWNS = itertools.count()


def shutdown(info: DistInfo, *, failed: bool = False) -> None:
    """Leave the process group feraug started, at the end of a run (NCCL warns about open groups at exit).

    After a run that ended normally every process first waits for the others: gloo aborts a process
    ("terminate called without an active exception", 1 exit in 3 on a 2-core CPU) when its peer tears the
    group down while one of its collectives is still completing. A collective barrier alone leaves that
    window open for its own last message (a peer may leave it and tear down first: seen once in ~400 runs),
    so the processes then meet once more on the rendezvous store, whose messages do not travel over
    gloo's connections. After a failure nobody waits: a peer that died would leave the barrier hanging.
    """
    if info.owns_group and dist.is_initialized():
        if not failed:
            dist.barrier()
            store = dist.distributed_c10d._get_default_store()  # the one init_process_group rendezvoused on
            key = f"feraug/shutdown/{next(_SHUTDOWNS)}"  # a store can outlive a group (torchrun's agent's does)
            store.add(key, 1)
            while store.add(key, 0) < info.world:
                time.sleep(0.01)
        dist.destroy_process_group()


def shard(batch_size: int, info: DistInfo) -> slice:
    """This process's slice of a global batch; the batch must split evenly."""
    if batch_size % info.world:
        raise ValueError(f"optim.batch_size={batch_size} does not split over {info.world} processes: "
                         f"use a multiple of {info.world}")  # fmt: skip
    per = batch_size // info.world
    return slice(info.rank * per, (info.rank + 1) * per)


def average_gradients(optimizer: torch.optim.Optimizer, world: int) -> None:
    """Replace every gradient the optimizer will use by its mean over the processes."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
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


def mean_and_any(values: torch.Tensor, flag: torch.Tensor, info: DistInfo) -> tuple[torch.Tensor, bool]:
    """Mean of ``values`` over the processes, and whether ``flag`` is set in any: one all-reduce."""
    if info.world == 1:
        return values, bool(flag)
    packed = torch.cat([values.float(), flag.float().view(1)])
    dist.all_reduce(packed)
    return packed[:-1] / info.world, bool(packed[-1] > 0)


def max_over(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Elementwise maximum of ``values`` over the processes (e.g. the slowest process's timings)."""
    if info.world == 1:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def any_true(flag: torch.Tensor, info: DistInfo) -> bool:
    """Whether ``flag`` is set in any process (so that all of them stop together)."""
    return mean_and_any(flag.new_zeros(0, dtype=torch.float32), flag, info)[1]


def _to_cpu(obj: Any) -> Any:
    if torch.is_tensor(obj):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """Every process's ``obj`` in rank order on rank 0 (None elsewhere), tensors moved to the CPU.

    Moving to the CPU first keeps rank 0 from unpickling other ranks' CUDA tensors onto their GPUs.
    """
    if info.world == 1:
        return [obj]
    out: list[Any] | None = [None] * info.world if info.is_main else None
    dist.gather_object(_to_cpu(obj), out, dst=0)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every process (e.g. until rank 0 has written a checkpoint the others will read)."""
    if info.world > 1:
        dist.barrier()
