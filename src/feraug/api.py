"""Python API: train a translation model and translate faces, the same calls the CLI makes."""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from pathlib import Path

import torch

from feraug.config import CycleGANConfig
from feraug.data.classes import emotion_index
from feraug.data.dataset import FaceDataset
from feraug.data.load import load_dataset, without_filtered_rows
from feraug.models.cyclegan import CycleGAN
from feraug.train.budget import BudgetPlan, plan_schedule
from feraug.train.device import gan_autocast_dtype, resolve_device
from feraug.train.distributed import DistInfo, barrier, init_distributed, max_over, shard, shutdown
from feraug.train.runinfo import write_run_info
from feraug.train.sampler import DomainSampler
from feraug.train.seeding import INIT, derive_seed
from feraug.train.trainer import Schedule, Trainer


def cyclegan_domains(cfg: CycleGANConfig, data: FaceDataset | None = None) -> dict[str, FaceDataset]:
    """The source (``a``) and target (``b``) faces of the configured training split."""
    d = cfg.data
    data = data if data is not None else load_dataset(d.data, size=d.size)
    if d.exclude is not None:
        data = without_filtered_rows(data, d.exclude)
    if data.splits:
        data = data.split(d.split)
    out = {}
    for key, emotion in (("a", d.source), ("b", d.target)):
        faces = data.of_class(emotion_index(emotion))
        if d.max_per_domain is not None and len(faces) > d.max_per_domain:
            faces = faces.subset(range(d.max_per_domain))
        out[key] = faces
    return out


def build_cyclegan_trainer(
    cfg: CycleGANConfig, run_dir: Path, *, data: FaceDataset | None = None, progress: bool = True,
    time_budget: float | None = None, started: float | None = None,
) -> Trainer:  # fmt: skip
    """Model, sampler and trainer for ``cfg`` (weights initialized from the run's seed).

    Under torchrun this process joins the data-parallel group and trains on its shard of each batch.
    With ``time_budget`` (seconds, counted from ``started``, a ``time.perf_counter()`` value, default now)
    the schedule is first resolved to fit it
    (:mod:`feraug.train.budget`); the trainer's ``config`` and ``budget`` then hold the resolved schedule.
    """
    start = time.perf_counter() if started is None else started
    t = cfg.train
    dist, device = init_distributed(resolve_device(t.device))
    try:
        domains = _domains(cfg, data, dist)
        plan = None
        if time_budget is not None:
            cfg, plan = _resolve_budget(cfg, time_budget, start, domains, dist, device)
        trainer = _build(cfg, run_dir, domains, progress, dist, device)
        trainer.budget = plan
        return trainer
    except BaseException:
        shutdown(dist)
        raise


def _domains(cfg: CycleGANConfig, data: FaceDataset | None, dist: DistInfo) -> dict[str, FaceDataset]:
    if not dist.is_main:
        barrier(dist)  # rank 0 parses the data first and fills the cache that the others then read
    domains = cyclegan_domains(cfg, data)
    if dist.is_main:
        barrier(dist)
    return domains


def _resolve_budget(cfg: CycleGANConfig, budget_s: float, start: float, domains: dict[str, FaceDataset],
                    dist: DistInfo, device: torch.device) -> tuple[CycleGANConfig, BudgetPlan]:  # fmt: skip
    """Measure a throwaway copy of the run for a few seconds, then fix the schedule that fits ``budget_s``."""
    with tempfile.TemporaryDirectory(prefix="feraug-budget-") as scratch:
        probe = _build(cfg, Path(scratch), domains, False, dist, device)
        per_step, per_checkpoint, per_grid = probe.measure(seconds=min(max(0.05 * budget_s, 3.0), 90.0))
        full = probe.sampler.steps_per_epoch if cfg.train.steps_per_epoch is None else math.ceil(
            max(len(d) for d in domains.values()) / cfg.optim.batch_size)  # fmt: skip
    o, t = cfg.optim, cfg.train
    # every process must resolve the same schedule: the slowest one's elapsed time counts (timings are maxed too)
    elapsed = float(max_over(torch.tensor([time.perf_counter() - start], dtype=torch.float64), dist)[0])
    plan = plan_schedule(budget_s, elapsed_s=elapsed, seconds_per_step=per_step,
                         checkpoint_s=per_checkpoint, sample_s=per_grid, epochs=o.epochs, epochs_decay=o.epochs_decay,
                         full_steps_per_epoch=full, checkpoint_every=t.checkpoint_every,
                         sample_every=t.sample_every)  # fmt: skip
    resolved = cfg.model_copy(update={
        "optim": o.model_copy(update={"epochs": plan.epochs, "epochs_decay": plan.epochs_decay}),
        "train": t.model_copy(update={"steps_per_epoch": plan.steps_per_epoch}),
    })  # fmt: skip
    return type(cfg).model_validate(resolved.model_dump()), plan


def _build(cfg: CycleGANConfig, run_dir: Path, domains: dict[str, FaceDataset], progress: bool, dist: DistInfo,
           device: torch.device) -> Trainer:  # fmt: skip
    t, n = cfg.train, cfg.net
    if dist.world > 1 and "batch" in (n.norm, n.d_norm):
        warnings.warn("batch norm under several processes normalizes each process's shard separately "
                      "(no SyncBatchNorm); instance norm, the default, is exact", stacklevel=3)  # fmt: skip
    torch.manual_seed(derive_seed(t.seed, INIT))
    model = CycleGAN(cfg, device)
    sampler = DomainSampler({k: v.images for k, v in domains.items()}, cfg.optim.batch_size, seed=t.seed,
                            device=device, augment=cfg.optim.augment, steps_per_epoch=t.steps_per_epoch,
                            shard=shard(cfg.optim.batch_size, dist))  # fmt: skip
    schedule = Schedule(cfg.optim.epochs, cfg.optim.epochs_decay, sampler.steps_per_epoch)
    return Trainer(model, sampler, schedule, run_dir, seed=t.seed, device=device,
                   autocast_dtype=gan_autocast_dtype(device, t.amp), ema_decay=t.ema_decay, log_every=t.log_every,
                   checkpoint_every=t.checkpoint_every, sample_every=t.sample_every, max_loss=t.max_loss,
                   config=cfg.model_dump(mode="json"), progress=progress, dist=dist)  # fmt: skip


def train_cyclegan(
    cfg: CycleGANConfig, run_dir: str | Path, *, resume: bool = False, data: FaceDataset | None = None,
    progress: bool = True, stop_at: int | None = None, time_budget: float | None = None,
    started: float | None = None,
) -> Trainer:  # fmt: skip
    """Train (or resume) a CycleGAN run in ``run_dir``; returns the finished trainer.

    ``stop_at`` ends this call after that many steps in total (with a checkpoint); ``resume`` continues.
    ``time_budget`` (seconds) fixes the schedule to end within it, counted from ``started`` (a
    ``time.perf_counter()`` value; default: this call); the resolved
    schedule goes into ``config.yaml`` and the measurements into ``meta.json`` (``budget``).
    """
    run_dir = Path(run_dir)
    if not resume and (run_dir / "checkpoints" / "last.pt").exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass resume to continue it or pick another --out")
    if resume and time_budget is not None:
        raise ValueError("a time budget is resolved once, when a run starts (into its config.yaml); "
                         "--resume continues that fixed schedule: drop --time-budget")  # fmt: skip
    trainer = build_cyclegan_trainer(cfg, run_dir, data=data, progress=progress, time_budget=time_budget,
                                     started=started)  # fmt: skip
    try:
        if resume:
            trainer.resume()
        elif trainer.dist.is_main:
            extra = {"budget": trainer.budget.as_dict()} if trainer.budget is not None else {}
            write_run_info(run_dir, trainer.config, cfg.train.seed, trainer.device, world=trainer.dist.world,
                           extra=extra)  # fmt: skip
        trainer.fit(stop_at=stop_at)
    finally:
        shutdown(trainer.dist)
    return trainer
