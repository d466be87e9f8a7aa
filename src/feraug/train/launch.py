"""One GAN training run of any family, from its config: data, model, sampler, schedule, budget, processes.

``train(cfg, run_dir)`` trains the family ``cfg`` belongs to (:mod:`feraug.train.families`): a
:class:`~feraug.config.CycleGANConfig` trains a CycleGAN, a :class:`~feraug.config.NoiseGANConfig`
a DCGAN / WGAN-GP / class-conditional GAN. It joins the torchrun group when there is one, fits the
schedule into a time budget when asked, writes the run's records and hands the loop to
:class:`~feraug.train.trainer.Trainer`. :mod:`feraug.api` offers these functions to users.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from feraug.config import Strict
from feraug.core.seeding import INIT, derive_seed
from feraug.data.dataset import FaceDataset
from feraug.train.budget import END_MARGIN, HEADROOM, BudgetPlan, OnTime, plan_schedule
from feraug.train.device import gan_autocast_dtype, resolve_device
from feraug.train.distributed import DistInfo, barrier, init_distributed, max_over, shard, shutdown
from feraug.train.families import Family, family_of
from feraug.train.provenance import write_training_rows
from feraug.train.run_folder import check_start
from feraug.train.runinfo import write_run_info
from feraug.train.trainer import Schedule, Trainer


def build_trainer(
    cfg: Strict, run_dir: Path, *, data: FaceDataset | None = None, progress: bool = True,
    time_budget: float | None = None, started: float | None = None,
) -> Trainer:  # fmt: skip
    """Model, sampler and trainer for ``cfg``, of whichever family it configures (weights from the run's seed).

    Under torchrun this process joins the data-parallel group and trains on its shard of each batch.
    With ``time_budget`` (seconds, counted from ``started``, a ``time.perf_counter()`` value, default now)
    the schedule is first resolved to fit it
    (:mod:`feraug.train.budget`); the trainer's ``config`` and ``budget`` then hold the resolved schedule.
    """
    start = time.perf_counter() if started is None else started
    family = family_of(cfg)
    dist, device = init_distributed(resolve_device(cfg.train.device))
    try:
        domains = _domains(family, cfg, data, dist)
        plan = None
        if time_budget is not None:
            cfg, plan = _resolve_budget(family, cfg, time_budget, start, domains, dist, device)
        trainer = _build(family, cfg, run_dir, domains, progress, dist, device)
        trainer.budget = plan
        if plan is not None:
            end_s = plan.checkpoint_s + plan.sample_s / cfg.train.sample_every
            trainer.on_time = OnTime(start + time_budget * (1 - END_MARGIN), trainer.sampler.steps_per_epoch, end_s)
        rows = [np.asarray(d.rows, dtype=np.int64) for d in domains.values()]
        if family.records is not None:  # e.g. a perceptual loss's frozen classifier
            trainer.run_records, more_rows = family.records(trainer.model, next(iter(domains.values())).source)
            rows.append(np.asarray(more_rows, dtype=np.int64))
        trainer.training_rows = np.concatenate(rows)
        return trainer
    except BaseException:
        shutdown(dist, failed=True)
        raise


def _domains(family: Family, cfg: Strict, data: FaceDataset | None, dist: DistInfo) -> dict[str, FaceDataset]:
    if not dist.is_main:
        barrier(dist)  # rank 0 parses the data first and fills the cache that the others then read
    domains = family.load(cfg, data)
    if dist.is_main:
        barrier(dist)
    return domains


def _resolve_budget(family: Family, cfg: Strict, budget_s: float, start: float, domains: dict[str, FaceDataset],
                    dist: DistInfo, device: torch.device) -> tuple[Strict, BudgetPlan]:  # fmt: skip
    """Measure a throwaway copy of the run for a few seconds, then fix the schedule that fits ``budget_s``."""
    with tempfile.TemporaryDirectory(prefix="feraug-budget-") as scratch:
        probe = _build(family, cfg, Path(scratch), domains, False, dist, device)
        per_step, per_checkpoint, per_grid = probe.measure(seconds=min(max(0.05 * budget_s, 3.0), 90.0))
        full = math.ceil(max(len(d) for d in domains.values()) / cfg.optim.batch_size)  # one pass, uncapped
    o, t = cfg.optim, cfg.train
    # every process must resolve the same schedule: the slowest one's elapsed time counts (timings are maxed too)
    elapsed = float(max_over(torch.tensor([time.perf_counter() - start], dtype=torch.float64), dist)[0])
    plan = plan_schedule(budget_s, elapsed_s=elapsed, seconds_per_step=per_step,
                         checkpoint_s=per_checkpoint, sample_s=per_grid, epochs=o.epochs, epochs_decay=o.epochs_decay,
                         full_steps_per_epoch=full, checkpoint_every=t.checkpoint_every,
                         sample_every=t.sample_every, headroom=HEADROOM)  # fmt: skip
    resolved = cfg.model_copy(update={
        "optim": o.model_copy(update={"epochs": plan.epochs, "epochs_decay": plan.epochs_decay}),
        "train": t.model_copy(update={"steps_per_epoch": plan.steps_per_epoch,
                                      "epoch_steps": [plan.steps_per_epoch] * (plan.epochs + plan.epochs_decay)}),
    })  # fmt: skip
    return type(cfg).model_validate(resolved.model_dump()), plan


def _build(family: Family, cfg: Strict, run_dir: Path, domains: dict[str, FaceDataset], progress: bool,
           dist: DistInfo, device: torch.device) -> Trainer:  # fmt: skip
    t = cfg.train
    torch.manual_seed(derive_seed(t.seed, INIT))
    model = family.model(cfg, device)
    if dist.world > 1 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                              for net in model.networks.values() for m in net.modules()):  # fmt: skip
        warnings.warn("batch norm under several processes normalizes each process's shard separately "
                      "(no SyncBatchNorm); instance norm, CycleGAN's default, is exact", stacklevel=3)  # fmt: skip
    sampler = family.sampler(cfg, domains, device=device, shard=shard(cfg.optim.batch_size, dist))
    schedule = Schedule(cfg.optim.epochs, cfg.optim.epochs_decay, sampler.steps_per_epoch, tuple(t.epoch_steps or ()))
    if max(schedule.epoch_steps) > sampler.steps_per_epoch:
        raise ValueError(f"train.epoch_steps asks for {max(schedule.epoch_steps)} steps in an epoch; an epoch holds "
                         f"at most {sampler.steps_per_epoch} (two passes over the data at batch "
                         f"{cfg.optim.batch_size})")  # fmt: skip
    return Trainer(model, sampler, schedule, run_dir, seed=t.seed, device=device,
                   autocast_dtype=gan_autocast_dtype(device, t.amp), ema_decay=t.ema_decay, log_every=t.log_every,
                   checkpoint_every=t.checkpoint_every, sample_every=t.sample_every, max_loss=t.max_loss,
                   config=cfg.model_dump(mode="json"), progress=progress, dist=dist)  # fmt: skip


def train(
    cfg: Strict, run_dir: str | Path, *, resume: bool = False, data: FaceDataset | None = None,
    progress: bool = True, stop_at: int | None = None, time_budget: float | None = None,
    started: float | None = None,
) -> Trainer:  # fmt: skip
    """Train (or resume) a run of ``cfg``'s family in ``run_dir``; returns the finished trainer.

    ``stop_at`` ends this call after that many steps in total (with a checkpoint); ``resume`` continues.
    ``time_budget`` (seconds) fixes the schedule to end within it, counted from ``started`` (a
    ``time.perf_counter()`` value; default: this call); the resolved
    schedule goes into ``config.yaml`` and the measurements into ``meta.json`` (``budget``).
    """
    run_dir = Path(run_dir)
    check_start(run_dir, resume=resume, time_budget=time_budget)
    trainer = build_trainer(cfg, run_dir, data=data, progress=progress, time_budget=time_budget, started=started)
    try:
        if resume:
            trainer.resume()
        elif trainer.dist.is_main:
            extra = {"budget": trainer.budget.as_dict()} if trainer.budget is not None else {}
            extra["training_rows_sha256"] = write_training_rows(run_dir, trainer.training_rows)
            extra |= trainer.run_records
            write_run_info(run_dir, trainer.config, cfg.train.seed, trainer.device, world=trainer.dist.world,
                           extra=extra)  # fmt: skip
        trainer.fit(stop_at=stop_at)
    except BaseException:
        shutdown(trainer.dist, failed=True)
        raise
    shutdown(trainer.dist)
    return trainer
